"""Consumed records built as KafkaMessage in aiokafka's own pass (docs/decisions/0100).

aiokafka turns every fetched record into a ``ConsumerRecord`` (a dataclass built by a
Python ``__init__``), and the connector then built a ``KafkaMessage`` from it: two objects
per record. For a consumer whose key and value serializers are both the bytes serializer,
the message is the record's fields as they are, so this module has the consumer's fetcher
build the ``KafkaMessage`` instead of its ``ConsumerRecord``: one object per record.

It reaches into aiokafka's fetcher, per consumer (nothing global is changed): each
``PartitionRecords`` the fetcher stores gets its ``_consumer_record`` step replaced. The
names it relies on are checked first; when they are not there (another aiokafka), nothing
is installed and the consumer decodes ``ConsumerRecord`` as before. A test asserts the
installed aiokafka takes it, so losing it is never silent.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from aiokafka.consumer import fetcher as _fetcher  # type: ignore[import-untyped]

from connector_kafka._messages import KafkaMessage

_new_message = tuple.__new__


def _message(tp: Any, record: Any) -> KafkaMessage[bytes, bytes]:
    """What ``PartitionRecords._consumer_record(tp, record)`` returns instead of a
    ``ConsumerRecord``: the same fields the bytes codec would have copied from it."""
    return _new_message(
        KafkaMessage,
        (
            tp.topic,
            tp.partition,
            record.offset,
            record.key,
            record.value,
            tuple(record.headers),
            record.timestamp,
        ),
    )


def _supported() -> bool:
    records = getattr(_fetcher, "PartitionRecords", None)
    result = getattr(_fetcher, "FetchResult", None)
    unpack = getattr(records, "_unpack_records", None)
    init = getattr(result, "__init__", None)
    return (
        callable(getattr(records, "_consumer_record", None))
        and "_consumer_record" in getattr(getattr(unpack, "__code__", None), "co_names", ())
        and "_partition_records" in getattr(getattr(init, "__code__", None), "co_names", ())
    )


SUPPORTED = _supported()
"""Whether the installed aiokafka has the fetcher this module hooks into."""


def _hook(result: Any) -> None:
    partition_records = getattr(result, "_partition_records", None)
    if partition_records is not None:
        partition_records._consumer_record = _message


class _HookedRecords(OrderedDict[Any, Any]):
    """The fetcher's per-partition results: each one stored has its records built as
    messages."""

    def __setitem__(self, tp: Any, result: Any) -> None:
        _hook(result)
        super().__setitem__(tp, result)


def install(consumer: Any) -> bool:
    """Have the started aiokafka ``consumer`` hand out ``KafkaMessage`` (raw key and value
    bytes) where it would hand out ``ConsumerRecord``. Returns whether it did; call it
    before the first ``getmany``."""
    fetcher: Any = getattr(consumer, "_fetcher", None)
    records = getattr(fetcher, "_records", None)
    if (
        not SUPPORTED
        or type(records) is not OrderedDict
        or getattr(fetcher, "_key_deserializer", None) is not None
        or getattr(fetcher, "_value_deserializer", None) is not None
    ):
        return False
    hooked = _HookedRecords(records)
    for result in hooked.values():  # fetched before now
        _hook(result)
    fetcher._records = hooked
    return True
