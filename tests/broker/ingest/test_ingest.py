"""Kafka → database, end to end, on the real ZTF and LSST sample alerts."""

import random

import pytest

from broker.ingest.replay import derive, encode, messages, publish, read_packets

from .helpers import (count, ingest_config, make_group_with_filter, make_stream, running_ingestor,
                             wait_for)

ZTF = "../shared/data/ztf/541234765015015012.avro"
ZTF_OLD = "../shared/data/ztf/87704463155000.avro"


def lsst_sample(version="11/1"):
    from lsst.alert.packet import get_schema_root

    return f"{get_schema_root()}/{version}/sample_data/fakeAlert.avro"


def test_ztf_alert_end_to_end(shared_dir, admin, make_user, config, engine, session_factory,
                              kafka_bootstrap, kafka_topic):
    owner = make_user()
    sid = make_stream(admin, kafka_topic, "ztf_avro")
    gid, fid = make_group_with_filter(owner, admin, sid, autosave=True)
    publish(kafka_bootstrap, kafka_topic, messages([ZTF], "ztf_avro"))
    cfg = ingest_config(config, kafka_bootstrap)
    with running_ingestor(cfg, session_factory):
        wait_for(lambda: count(engine, "SELECT count(*) FROM candidates WHERE filter_id=:f", f=fid) == 1,
                 what="the candidate")
    obj = "ZTF17aabwnkw"
    assert count(engine, "SELECT count(*) FROM objs WHERE id=:o", o=obj) == 1
    # 1 detection + 13 previous detections + 1 upper limit
    assert count(engine, "SELECT count(*) FROM photometry WHERE obj_id=:o AND flux IS NOT NULL", o=obj) == 14
    assert count(engine, "SELECT count(*) FROM photometry WHERE obj_id=:o AND flux IS NULL", o=obj) == 1
    assert count(engine, "SELECT count(*) FROM sources WHERE obj_id=:o AND group_id=:g", o=obj, g=gid) == 1
    # the triggering point: magpsf 17.846 -> 10**(-0.4*(17.846-23.9)) µJy in ztfr
    with engine.connect() as conn:
        import sqlalchemy as sa

        flux, band, zp = conn.execute(sa.text(
            "SELECT flux, filter, zp FROM photometry WHERE obj_id=:o AND alert_id=541234765015015012"),
            {"o": obj}).one()
    assert band == "ztfr" and zp == 23.9
    assert flux == pytest.approx(10 ** (-0.4 * (17.845998764038086 - 23.9)), rel=1e-9)


def test_filters_pass_and_reject(shared_dir, admin, make_user, config, engine, session_factory,
                                 kafka_bootstrap, kafka_topic):
    owner = make_user()
    sid = make_stream(admin, kafka_topic, "ztf_avro")
    _, bright = make_group_with_filter(owner, admin, sid, {"field": "mag", "op": "<", "value": 18})
    _, faint = make_group_with_filter(owner, admin, sid, {"field": "mag", "op": ">", "value": 18})
    _, hist = make_group_with_filter(owner, admin, sid, {"and": [
        {"detections": {"op": ">=", "value": 5, "band": "ztfr"}},
        {"field": "scores.rb", "op": ">", "value": 0.5},
        {"field": "extra.isdiffpos", "in": ["t", "1"]},
        {"not": {"field": "extra.no_such_field", "exists": True}}]})
    publish(kafka_bootstrap, kafka_topic, messages([ZTF], "ztf_avro"))
    with running_ingestor(ingest_config(config, kafka_bootstrap), session_factory):
        wait_for(lambda: count(engine, "SELECT consumed FROM ingest_counters WHERE stream_id=:s AND filter_id=0",
                               s=sid) == 1, what="the alert to be consumed")
    assert count(engine, "SELECT count(*) FROM candidates WHERE filter_id=:f", f=bright) == 1
    assert count(engine, "SELECT count(*) FROM candidates WHERE filter_id=:f", f=faint) == 0
    assert count(engine, "SELECT count(*) FROM candidates WHERE filter_id=:f", f=hist) == 1
    assert count(engine, "SELECT passed FROM ingest_counters WHERE filter_id=:f", f=faint) == 0
    assert count(engine, "SELECT passed FROM ingest_counters WHERE filter_id=:f", f=bright) == 1


def test_lsst_and_old_ztf_alerts_and_association(shared_dir, admin, make_user, config, engine,
                                                 session_factory, kafka_bootstrap, kafka_topic, make_topic):
    """An LSST alert near an existing ZTF object is recorded as its duplicate, both ways."""
    owner = make_user()
    ztf_topic, lsst_topic = kafka_topic, make_topic()
    ztf_sid = make_stream(admin, ztf_topic, "ztf_avro")
    lsst_sid = make_stream(admin, lsst_topic, "lsst_avro")
    ztf_gid, _ = make_group_with_filter(owner, admin, ztf_sid)
    make_group_with_filter(owner, admin, lsst_sid)
    rng = random.Random(7)
    (ztf_packet, ztf_schema), = read_packets(ZTF, "ztf_avro")
    (lsst_packet, lsst_schema), = read_packets(lsst_sample(), "lsst_avro")
    ra, dec = 123.456, -12.345
    z = derive(ztf_packet, 0, rng, ra=ra, dec=dec)
    l = derive(lsst_packet, 1, rng, ra=ra + 0.5 / 3600, dec=dec)  # 0.5" east (cos dec ~ 0.98)
    far = derive(lsst_packet, 2, rng, ra=ra + 10 / 3600, dec=dec)
    publish(kafka_bootstrap, ztf_topic, [encode(z, ztf_schema, "ztf_avro")])
    with running_ingestor(ingest_config(config, kafka_bootstrap), session_factory):
        wait_for(lambda: count(engine, "SELECT count(*) FROM objs WHERE id=:o", o=z["objectId"]) == 1)
        publish(kafka_bootstrap, lsst_topic, [encode(l, lsst_schema, "lsst_avro"),
                                              encode(far, lsst_schema, "lsst_avro")])
        lsst_obj = f"LSST{l['diaObject']['diaObjectId']}"
        wait_for(lambda: count(engine, "SELECT count(*) FROM objs WHERE id LIKE 'LSST%' AND id IN (:a, :b)",
                               a=lsst_obj, b=f"LSST{far['diaObject']['diaObjectId']}") == 2)
    assert count(engine, "SELECT count(*) FROM obj_duplicates WHERE obj_id=:a AND duplicate_obj_id=:b",
                 a=z["objectId"], b=lsst_obj) == 1
    assert count(engine, "SELECT count(*) FROM obj_duplicates WHERE obj_id=:b AND duplicate_obj_id=:a",
                 a=z["objectId"], b=lsst_obj) == 1
    sep = count(engine, "SELECT separation FROM obj_duplicates WHERE obj_id=:a", a=z["objectId"])
    assert sep == pytest.approx(0.5 * 0.97687, rel=1e-3)
    assert count(engine, "SELECT count(*) FROM obj_duplicates WHERE obj_id=:f",
                 f=f"LSST{far['diaObject']['diaObjectId']}") == 0
    # LSST photometry in µJy (psfFlux 1241 nJy) and lsst band names
    assert count(engine, "SELECT count(*) FROM photometry WHERE obj_id=:o AND filter='lsstr' "
                         "AND abs(flux - 1.241) < 1e-9", o=lsst_obj) >= 1
    # the duplicate comes back with the source, through the API (once saved: a candidate is no source)
    assert owner.post("/api/sources", json={"id": z["objectId"], "group_ids": [ztf_gid]}).status_code == 200
    src = owner.get(f"/api/sources/{z['objectId']}", params={"includeDuplicates": "true"}).json()["data"]
    assert [d["obj_id"] for d in src["duplicates"]] == [lsst_obj]
    assert src["duplicates"][0]["separation"] == pytest.approx(sep)


def test_old_ztf_schema_and_json_alerts_and_new_streams_without_restart(
        shared_dir, admin, make_user, config, engine, session_factory, kafka_bootstrap, kafka_topic, make_topic):
    """The ingestor is already running when the streams are created; old-schema ZTF and JSON alerts."""
    import json

    owner = make_user()
    json_topic = make_topic()
    with running_ingestor(ingest_config(config, kafka_bootstrap), session_factory):
        sid = make_stream(admin, kafka_topic, "ztf_avro")
        _, fid = make_group_with_filter(owner, admin, sid)
        jsid = make_stream(admin, json_topic, "json")
        _, jfid = make_group_with_filter(owner, admin, jsid)
        rng = random.Random(11)
        (old, schema), = read_packets(ZTF_OLD, "ztf_avro")
        publish(kafka_bootstrap, kafka_topic, [encode(derive(old, 0, rng, ra=45.0, dec=45.0), schema, "ztf_avro")])
        packet = json.loads(open("../shared/data/ztf/alert.json").read())
        packet["objectId"] = "ZTFjsonalert"
        packet["classifications"] = [{"classification": "SN Ia", "probability": 0.5}]
        publish(kafka_bootstrap, json_topic, [json.dumps(packet).encode()])
        wait_for(lambda: count(engine, "SELECT count(*) FROM candidates WHERE filter_id IN (:f, :g)",
                               f=fid, g=jfid) == 2, what="both alerts (streams created after start)")
    # the old schema has no objectId: a new object named after the alert
    assert count(engine, "SELECT count(*) FROM objs WHERE id LIKE 'ZTF-%' AND abs(ra - 45.0) < 1e-9") == 1
    # 17 upper limits and the detection of the old alert
    assert count(engine, "SELECT count(*) FROM photometry p JOIN objs o ON o.id = p.obj_id "
                         "WHERE abs(o.ra - 45.0) < 1e-9 AND p.flux IS NULL") == 17
    assert count(engine, "SELECT count(*) FROM candidates WHERE obj_id = 'ZTFjsonalert'") == 1


def test_replay_command(shared_dir, admin, config, engine, kafka_bootstrap, kafka_topic):
    import os
    import subprocess
    import sys

    make_stream(admin, kafka_topic, "lsst_avro")
    env = {**os.environ, "DATABASE_URL": engine.url.render_as_string(hide_password=False),
           "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "SKYBROKER_PATHS__DATA_DIR": str(config.paths.data_dir)}
    proc = subprocess.run([sys.executable, "-m", "broker.runtime.cli", "replay", lsst_sample(), "--stream",
                           f"stream-{kafka_topic}", "--count", "7", "--derive"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"published 7 alert(s) to {kafka_topic}" in proc.stdout
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": "probe"})
    try:
        total = sum(c.get_watermark_offsets(TopicPartition(kafka_topic, p), timeout=10)[1] for p in range(3))
    finally:
        c.close()
    assert total == 7
    bad = subprocess.run([sys.executable, "-m", "broker.runtime.cli", "replay", lsst_sample(), "--stream", "no-such"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "no stream named 'no-such'" in bad.stderr


def test_replay_creates_missing_topics_with_partitions(shared_dir, admin, config, engine, kafka_bootstrap):
    """A topic that does not exist yet is created with kafka.topic_partitions partitions (a stream's
    altdata.partitions first), so the ingest processes of one group can share it."""
    import os
    import subprocess
    import sys
    import uuid

    from confluent_kafka.admin import AdminClient

    env = {**os.environ, "DATABASE_URL": engine.url.render_as_string(hide_password=False),
           "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "SKYBROKER_PATHS__DATA_DIR": str(config.paths.data_dir)}
    tag = uuid.uuid4().hex[:8]
    default_topic, own_topic = f"fresh-{tag}", f"fresh2-{tag}"
    make_stream(admin, default_topic, "lsst_avro")
    make_stream(admin, own_topic, "lsst_avro", partitions=2)
    kafka = AdminClient({"bootstrap.servers": kafka_bootstrap})
    try:
        for topic, partitions in ((default_topic, config.kafka.topic_partitions), (own_topic, 2)):
            proc = subprocess.run([sys.executable, "-m", "broker.runtime.cli", "replay", lsst_sample(), "--stream",
                                   f"stream-{topic}", "--count", "12", "--derive"],
                                  env=env, capture_output=True, text=True, timeout=120)
            assert proc.returncode == 0, proc.stderr
            assert f"created topic {topic} with {partitions} partition(s)" in proc.stdout
            md = kafka.list_topics(timeout=10).topics[topic]
            assert len(md.partitions) == partitions
        assert config.kafka.topic_partitions >= 4
        # a second replay finds it: nothing created
        again = subprocess.run([sys.executable, "-m", "broker.runtime.cli", "replay", lsst_sample(), "--stream",
                                f"stream-{own_topic}", "--count", "1"], env=env, capture_output=True, text=True,
                               timeout=120)
        assert again.returncode == 0 and "created topic" not in again.stdout, again.stderr
    finally:
        for fut in kafka.delete_topics([default_topic, own_topic]).values():
            fut.result(30)


def test_ingest_creates_its_streams_missing_topics_with_partitions(admin, config, session_factory, kafka_bootstrap):
    """A stream whose topic does not exist on our cluster yet: the consumer creates it with its partitions
    (altdata.partitions, else kafka.topic_partitions), not the one-partition topic a subscription would make;
    a pattern is left alone; an existing topic is left as it is."""
    import uuid

    from confluent_kafka.admin import AdminClient, NewTopic

    tag = uuid.uuid4().hex[:8]
    plain, own, existing = f"ing-{tag}", f"ing2-{tag}", f"ing3-{tag}"
    kafka = AdminClient({"bootstrap.servers": kafka_bootstrap})
    kafka.create_topics([NewTopic(existing, num_partitions=1)])[existing].result(30)
    make_stream(admin, plain, "ztf_avro")
    make_stream(admin, own, "ztf_avro", partitions=3)
    make_stream(admin, existing, "ztf_avro")
    make_stream(admin, f"^ingpat-{tag}-.*", "ztf_avro")
    cfg = ingest_config(config, kafka_bootstrap, create_topics=True)
    try:
        with running_ingestor(cfg, session_factory):
            def sizes():
                topics = kafka.list_topics(timeout=10).topics
                return {t: len(topics[t].partitions) for t in (plain, own, existing) if t in topics}

            wait_for(lambda: sizes() == {plain: cfg.kafka.topic_partitions, own: 3, existing: 1}, timeout=60,
                     what=f"topics created with their partitions (now {sizes()})")
            assert not [t for t in kafka.list_topics(timeout=10).topics if t.startswith(f"ingpat-{tag}")]
    finally:
        for fut in kafka.delete_topics([plain, own, existing]).values():
            fut.result(30)
