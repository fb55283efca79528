import connector_kafka
from connector_core import connector_class


def test_exported_names_are_exactly_the_public_api() -> None:
    assert set(connector_kafka.__all__) == {
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
    }
    for name in connector_kafka.__all__:
        assert hasattr(connector_kafka, name)


def test_the_kafka_scheme_is_registered() -> None:
    assert connector_class("kafka") is connector_kafka.KafkaConnector
