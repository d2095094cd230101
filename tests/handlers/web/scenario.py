"""A night of real ZTF alerts for the page tests: replayed through Kafka and our ingest into a filter of a
test user's group (the path every alert takes), made once per module that asks."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field

from confluent_kafka.admin import AdminClient, NewTopic

from broker.ingest.replay import derive, encode, publish, read_packets
from tests.broker.ingest.helpers import (count, ingest_config, make_group_with_filter, make_stream,
                                         running_ingestor, wait_for)
from tests.conftest import SHARED

ZTF = SHARED / "data" / "ztf" / "541234765015015012.avro"


@dataclass
class Night:
    owner: object  # the scanner (a test Client)
    gid: int
    fid: int
    obj_ids: list[str]
    packets: list[dict] = field(default_factory=list)


def replay_night(admin, make_user, config, engine, session_factory, kafka_bootstrap, n: int = 3) -> Night:
    topic = f"web-{uuid.uuid4().hex[:10]}"
    kadmin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    for fut in kadmin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)]).values():
        fut.result(30)
    try:
        owner = make_user(prefix="scanner")
        sid = make_stream(admin, topic, "ztf_avro")
        gid, fid = make_group_with_filter(owner, admin, sid)
        rng = random.Random(14)
        (packet, schema), = read_packets(str(ZTF), "ztf_avro")
        packets = [derive(packet, i, rng) for i in range(n)]
        publish(kafka_bootstrap, topic, [encode(p, schema, "ztf_avro") for p in packets])
        with running_ingestor(ingest_config(config, kafka_bootstrap), session_factory):
            wait_for(lambda: count(engine, "SELECT count(*) FROM candidates WHERE filter_id=:f", f=fid) == n,
                     what=f"the {n} replayed alerts")
    finally:
        for fut in kadmin.delete_topics([topic]).values():
            fut.result(30)
    return Night(owner=owner, gid=gid, fid=fid, obj_ids=[p["objectId"] for p in packets], packets=packets)
