"""connector-kafka: Kafka through aiokafka, on connector_core's contract.

An idempotent (or transactional) producer, consumer groups with at-least-once delivery
(``consume()`` and the ``process()`` runner with dead-letter topics), admin calls, and
bounded reads with per-partition checkpoints. Import from here; the ``_modules``
behind this file are private.
"""

from connector_kafka._admin import PartitionInfo, TopicDescription
from connector_kafka._config import (
    Acks,
    Compression,
    Format,
    IsolationLevel,
    KafkaConfig,
    OffsetReset,
    SaslMechanism,
    SecurityProtocol,
)
from connector_kafka._connector import KafkaConnector, __version__
from connector_kafka._consumer import ConsumerBatches, KafkaConsumer
from connector_kafka._discover import TopicStream
from connector_kafka._errors import HandlerError
from connector_kafka._messages import (
    DeliveryReport,
    KafkaMessage,
    OutgoingMessage,
    PartitionLag,
    TopicPartition,
)
from connector_kafka._process import DeadLetter
from connector_kafka._read import TopicReader
from connector_kafka._serializers import (
    BytesSerializer,
    JsonSerializer,
    PydanticSerializer,
    Serializer,
    StringSerializer,
)
from connector_kafka._transaction import KafkaTransaction

__all__ = [
    "Acks",
    "BytesSerializer",
    "Compression",
    "ConsumerBatches",
    "DeadLetter",
    "DeliveryReport",
    "Format",
    "HandlerError",
    "IsolationLevel",
    "JsonSerializer",
    "KafkaConfig",
    "KafkaConnector",
    "KafkaConsumer",
    "KafkaMessage",
    "KafkaTransaction",
    "OffsetReset",
    "OutgoingMessage",
    "PartitionInfo",
    "PartitionLag",
    "PydanticSerializer",
    "SaslMechanism",
    "SecurityProtocol",
    "Serializer",
    "StringSerializer",
    "TopicDescription",
    "TopicPartition",
    "TopicReader",
    "TopicStream",
    "__version__",
]
