"""Nights of real ZTF alerts for the page tests: replayed through Kafka and our ingest into a filter of a
test user's group (the path every alert takes)."""

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
    obj_ids: list[str] = field(default_factory=list)


class Replayer:
    """A scanner with a group, a stream on a topic of its own and a filter on it; :meth:`replay` sends
    alerts derived from a real ZTF alert through Kafka and the ingest consumer."""

    def __init__(self, admin, make_user, config, engine, session_factory, kafka_bootstrap):
        self.config, self.engine, self.session_factory, self.bootstrap = config, engine, session_factory, kafka_bootstrap
        self.topic = f"web-{uuid.uuid4().hex[:10]}"
        kadmin = AdminClient({"bootstrap.servers": kafka_bootstrap})
        for fut in kadmin.create_topics([NewTopic(self.topic, num_partitions=1, replication_factor=1)]).values():
            fut.result(30)
        owner = make_user(prefix="scanner")
        gid, fid = make_group_with_filter(owner, admin, make_stream(admin, self.topic, "ztf_avro"))
        self.night = Night(owner=owner, gid=gid, fid=fid)
        self.rng = random.Random(uuid.uuid4().int)  # new objects in every test module

    def replay(self, positions: list[tuple[float, float] | None]) -> list[str]:
        """One alert per position (None: the alert's own), each a new object; their object ids."""
        (packet, schema), = read_packets(str(ZTF), "ztf_avro")
        base = len(self.night.obj_ids)
        packets = [derive(packet, base + i, self.rng, **({} if p is None else {"ra": p[0], "dec": p[1]}))
                   for i, p in enumerate(positions)]
        publish(self.bootstrap, self.topic, [encode(p, schema, "ztf_avro") for p in packets])
        expected = base + len(packets)
        with running_ingestor(ingest_config(self.config, self.bootstrap), self.session_factory):
            wait_for(lambda: count(self.engine, "SELECT count(*) FROM candidates WHERE filter_id=:f",
                                   f=self.night.fid) == expected, what=f"the {len(packets)} replayed alerts")
        ids = [p["objectId"] for p in packets]
        self.night.obj_ids += ids
        return ids

    def close(self) -> None:
        kadmin = AdminClient({"bootstrap.servers": self.bootstrap})
        for fut in kadmin.delete_topics([self.topic]).values():
            fut.result(30)


def replay_night(admin, make_user, config, engine, session_factory, kafka_bootstrap, n: int = 3) -> Night:
    rep = Replayer(admin, make_user, config, engine, session_factory, kafka_bootstrap)
    try:
        rep.replay([None] * n)
    finally:
        rep.close()
    return rep.night
