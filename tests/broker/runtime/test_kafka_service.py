"""The local Kafka broker started by our own script answers real produce/consume."""

import time

from confluent_kafka import Consumer, KafkaException, Producer


def consume_all(bootstrap, topic, n, timeout=30.0):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{topic}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    out = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < n and time.monotonic() < deadline:
            msg = c.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            out.append((msg.key(), msg.value()))
            c.commit(message=msg, asynchronous=False)
    finally:
        c.close()
    return out


def test_fixture_produces_and_consumes(kafka_bootstrap, kafka_topic):
    p = Producer({"bootstrap.servers": kafka_bootstrap})
    for i in range(5):
        p.produce(kafka_topic, key=f"k{i}".encode(), value=f"alert {i}".encode())
    assert p.flush(30) == 0
    got = consume_all(kafka_bootstrap, kafka_topic, 5)
    assert sorted(v for _, v in got) == [f"alert {i}".encode() for i in range(5)]


def test_each_test_gets_its_own_empty_topic(kafka_bootstrap, kafka_topic):
    from confluent_kafka.admin import AdminClient

    md = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(kafka_topic, timeout=10)
    assert len(md.topics[kafka_topic].partitions) == 3
    c = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": "probe"})
    try:
        for part in md.topics[kafka_topic].partitions:
            from confluent_kafka import TopicPartition

            for attempt in range(50):  # a new topic's partition may have no leader for a moment
                try:
                    low, high = c.get_watermark_offsets(TopicPartition(kafka_topic, part), timeout=10)
                    break
                except KafkaException:
                    if attempt == 49:
                        raise
                    time.sleep(0.2)
            assert high - low == 0
    finally:
        c.close()
