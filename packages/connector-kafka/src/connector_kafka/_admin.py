"""Topics and groups: the admin calls, and the broker's answers as typed values.

Functions here make the driver calls and decode the answers; the connector runs them on
its road (timeouts, retries, error translation). A per-topic error in an answer is
raised as aiokafka's exception for its error code, so translation treats it like any
other driver error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import errors as kafka_errors  # type: ignore[import-untyped]
from aiokafka.admin import NewTopic  # type: ignore[import-untyped]
from aiokafka.admin.config_resource import (  # type: ignore[import-untyped]
    ConfigResource,
    ConfigResourceType,
)
from aiokafka.protocol.metadata import MetadataRequest  # type: ignore[import-untyped]

from connector_core import InvalidRequestError

INTERNAL_PREFIX = "__"
"""Kafka's own topics (``__consumer_offsets``, ``__transaction_state``) start with it."""


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    """One partition of a topic: its leader broker and replicas."""

    partition: int
    leader: int
    replicas: tuple[int, ...]
    in_sync_replicas: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class TopicDescription:
    """A topic as the cluster describes it: partitions, replication factor, configs
    (the topic's effective settings, defaults included)."""

    name: str
    partitions: tuple[PartitionInfo, ...]
    replication_factor: int
    internal: bool = False
    configs: Mapping[str, str] = field(default_factory=dict)

    @property
    def partition_count(self) -> int:
        return len(self.partitions)


def _raise_for(code: int, what: str) -> None:
    if code:
        error_class = kafka_errors.for_code(code)
        raise error_class(what)


async def topic_metadata(client: Any, topics: Sequence[str] | None) -> list[dict[str, Any]]:
    """The cluster's metadata of ``topics`` (None: every topic), without creating any:
    the admin client's own describe asks the broker to auto-create what it names."""
    request = MetadataRequest(list(topics) if topics is not None else None, False)
    response = await client.send(client.get_random_node(), request)
    found: list[dict[str, Any]] = response.to_object()["topics"]
    return found


def describe_from_metadata(entry: Mapping[str, Any]) -> TopicDescription:
    """A :class:`TopicDescription` (without configs) from one metadata entry; raises the
    driver's error when the broker reported one for the topic (unknown topic, ...)."""
    name = str(entry["topic"])
    _raise_for(int(entry["error_code"]), f"topic {name!r}")
    partitions = tuple(
        sorted(
            (
                PartitionInfo(
                    partition=int(p["partition"]),
                    leader=int(p["leader"]),
                    replicas=tuple(int(r) for r in p["replicas"]),
                    in_sync_replicas=tuple(int(r) for r in p["isr"]),
                )
                for p in entry["partitions"]
            ),
            key=lambda p: p.partition,
        )
    )
    factor = max((len(p.replicas) for p in partitions), default=0)
    return TopicDescription(
        name=name,
        partitions=partitions,
        replication_factor=factor,
        internal=bool(entry.get("is_internal")) or name.startswith(INTERNAL_PREFIX),
    )


async def describe_topic(client: Any, admin: Any, topic: str) -> TopicDescription:
    """Partitions, replicas and effective configs of ``topic`` (the driver's
    UnknownTopicOrPartitionError when it does not exist)."""
    (entry,) = await topic_metadata(client, [topic])
    description = describe_from_metadata(entry)
    responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    configs: dict[str, str] = {}
    for response in responses:
        for code, message, _type, _name, entries in response.resources:
            _raise_for(int(code), message or f"configs of topic {topic!r}")
            for entry in entries:
                name, value = entry[0], entry[1]
                sensitive = bool(entry[4]) if len(entry) > 4 else False
                if value is not None and not sensitive:
                    configs[str(name)] = str(value)
    return TopicDescription(
        name=description.name,
        partitions=description.partitions,
        replication_factor=description.replication_factor,
        internal=description.internal,
        configs=configs,
    )


async def create_topic(
    client: Any,
    admin: Any,
    topic: str,
    *,
    partitions: int,
    replication_factor: int | None,
    configs: Mapping[str, str],
    timeout_ms: int,
) -> None:
    """Create ``topic``; the driver's TopicAlreadyExistsError (and friends) otherwise.
    ``replication_factor`` None: the cluster's ``default.replication.factor``."""
    if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
        raise InvalidRequestError("partitions must be an integer of at least 1", connector="kafka")
    if replication_factor is None:
        replication_factor = await default_replication_factor(admin)
    if (
        isinstance(replication_factor, bool)
        or not isinstance(replication_factor, int)
        or not 1 <= replication_factor <= 32767
    ):
        raise InvalidRequestError(
            "replication_factor must be an integer from 1 to 32767 (None: the cluster's default)",
            connector="kafka",
        )
    settings = {str(k): str(v) for k, v in configs.items()}
    new_topic = NewTopic(topic, partitions, replication_factor, topic_configs=settings)
    response = await admin.create_topics([new_topic], timeout_ms=timeout_ms)
    for entry in response.topic_errors:
        name, code = entry[0], int(entry[1])
        message = entry[2] if len(entry) > 2 and entry[2] else f"topic {name!r}"
        _raise_for(code, message)
    await _until_usable(client, topic, partitions, timeout_ms / 1000)


async def _until_usable(client: Any, topic: str, partitions: int, timeout: float) -> None:
    # The controller answers before every broker's metadata has the topic: wait until
    # it is described with a leader for each partition, so the next call can use it.
    delay = 0.02
    async with asyncio.timeout(timeout):
        while True:
            (entry,) = await topic_metadata(client, [topic])
            found = entry["partitions"] if int(entry["error_code"]) == 0 else []
            if len(found) == partitions and all(int(p["leader"]) >= 0 for p in found):
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)


async def default_replication_factor(admin: Any) -> int:
    """The cluster's ``default.replication.factor`` (aiokafka's NewTopic cannot ask the
    broker for its default with -1, as the protocol allows)."""
    cluster = await admin.describe_cluster()
    brokers = [int(b["node_id"]) for b in cluster["brokers"]]
    node = int(cluster.get("controller_id", -1))
    if node not in brokers:
        node = brokers[0]
    wanted = {"default.replication.factor": None}
    resource = ConfigResource(ConfigResourceType.BROKER, str(node), wanted)
    for response in await admin.describe_configs([resource]):
        for code, _message, _type, _name, entries in response.resources:
            if int(code) == 0:
                for entry in entries:
                    if entry[0] == "default.replication.factor" and entry[1]:
                        return int(entry[1])
    return min(3, len(brokers))


async def delete_topic(client: Any, admin: Any, topic: str, *, timeout_ms: int) -> None:
    """Delete ``topic``; the driver's UnknownTopicOrPartitionError when it does not exist
    (checked first: the broker answers a delete of an unknown topic without an error)."""
    (entry,) = await topic_metadata(client, [topic])
    describe_from_metadata(entry)
    response = await admin.delete_topics([topic], timeout_ms=timeout_ms)
    for name, code in response.topic_error_codes:
        _raise_for(int(code), f"topic {name!r}")


async def list_topics(client: Any, *, internal: bool = False) -> list[str]:
    """Names of every topic (Kafka's internal topics only with ``internal=True``), sorted."""
    entries = await topic_metadata(client, None)
    names = [str(e["topic"]) for e in entries if int(e["error_code"]) == 0]
    return sorted(n for n in names if internal or not n.startswith(INTERNAL_PREFIX))


async def list_consumer_groups(admin: Any) -> list[str]:
    """Names of every consumer group the cluster knows, sorted."""
    groups = await admin.list_consumer_groups()
    return sorted({str(group[0]) for group in groups})


async def committed_offsets(admin: Any, group_id: str) -> dict[tuple[str, int], int]:
    """The offsets ``group_id`` committed, by (topic, partition)."""
    offsets = await admin.list_consumer_group_offsets(group_id)
    return {
        (str(tp.topic), int(tp.partition)): int(meta.offset)
        for tp, meta in offsets.items()
        if int(meta.offset) >= 0
    }
