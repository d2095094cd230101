"""Streams on other people's clusters, for real: our local Kafka a second time with SASL/SCRAM over TLS and a
third time with SASL/OAUTHBEARER (client credentials from a local token endpoint), all three read at once by
one ingest process; wrong credentials show on the stream; a cluster taken down and brought back loses
nothing."""

import json
import uuid
from datetime import datetime, timezone
from pathlib import Path


from broker.ingest.replay import messages, publish

from .conftest import OAUTH_CLIENT, OAUTH_SECRET, SCRAM_PASSWORD, SCRAM_USER
from .helpers import count, ingest_config, make_group_with_filter, make_stream, running_process, wait_for
from .test_ingest import ZTF

GW_NOTICE = "../shared/data/gcn/igwn_gwalert_preliminary.json"


def _tag() -> str:
    return uuid.uuid4().hex[:8]


def add_cluster(admin, **body) -> int:
    r = admin.post("/api/kafka_clusters", json=body)
    assert r.status_code == 200, r.text
    return r.json()["data"]["id"]


def scram_cluster(admin, kafka, password=SCRAM_PASSWORD) -> tuple[str, int]:
    name = f"scram-{_tag()}"
    cid = add_cluster(admin, name=name, bootstrap_servers=kafka.secure_bootstrap_servers,
                      security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512", sasl_username=SCRAM_USER,
                      sasl_password=password, ssl_ca_pem=kafka.ca_pem)
    return name, cid


def oauth_cluster(admin, kafka, secret=OAUTH_SECRET) -> tuple[str, int]:
    name = f"oauth-{_tag()}"
    cid = add_cluster(admin, name=name, bootstrap_servers=kafka.secure_bootstrap_servers,
                      security_protocol="SASL_PLAINTEXT", sasl_mechanism="OAUTHBEARER",
                      oauth_client_id=OAUTH_CLIENT, oauth_client_secret=secret,
                      oauth_token_endpoint_url=kafka.tokens.url)
    return name, cid


def ztf(n: int, seed: int) -> list[bytes]:
    return list(messages([ZTF], "ztf_avro", count=n, derive_new=True, seed=seed))


def passed(engine, fid: int) -> int:
    return count(engine, "SELECT count(*) FROM candidates WHERE filter_id=:f", f=fid)


def consumed(engine, sid: int) -> int:
    return count(engine, "SELECT coalesce(sum(consumed), 0) FROM ingest_counters WHERE stream_id=:s AND filter_id=0",
                 s=sid)


def test_streams_on_three_clusters_at_once(shared_dir, admin, make_user, config, engine, session_factory,
                                           kafka_bootstrap, kafka_topic, scram_kafka, oauth_kafka):
    owner = make_user()
    scram_name, scram_id = scram_cluster(admin, scram_kafka)
    oauth_name, oauth_id = oauth_cluster(admin, oauth_kafka)
    tag = _tag()
    # the default cluster: a topic by name
    s_default = make_stream(admin, kafka_topic, "ztf_avro")
    _, f_default = make_group_with_filter(owner, admin, s_default)
    # SCRAM over TLS: ZTF's nightly topics, by pattern (program 1 only)
    s_ztf = make_stream(admin, f"^ztf_{tag}_[0-9]+_programid1$", "ztf_avro", cluster=scram_name)
    _, f_ztf = make_group_with_filter(owner, admin, s_ztf)
    # OAUTHBEARER: a GCN topic
    s_gcn = make_stream(admin, "igwn.gwalert", "gcn", cluster=oauth_name)

    publish(kafka_bootstrap, kafka_topic, ztf(12, seed=1))
    publish(scram_kafka.bootstrap_servers, f"ztf_{tag}_20261124_programid1", ztf(7, seed=2))
    publish(scram_kafka.bootstrap_servers, f"ztf_{tag}_20261125_programid1", ztf(5, seed=3))
    publish(scram_kafka.bootstrap_servers, f"ztf_{tag}_20261125_programid2", ztf(4, seed=4))  # not ours
    publish(oauth_kafka.bootstrap_servers, "igwn.gwalert", [Path(GW_NOTICE).read_bytes()])

    cfg = ingest_config(config, kafka_bootstrap)
    with running_process(cfg, session_factory):
        wait_for(lambda: passed(engine, f_default) == 12, what="the default cluster's alerts")
        wait_for(lambda: passed(engine, f_ztf) == 12, what="both nights of program 1 over SCRAM/TLS")
        wait_for(lambda: count(engine, "SELECT ingested FROM ingest_counters WHERE stream_id=:s AND filter_id=0",
                               s=s_gcn) == 1, what="the GCN notice over OAUTHBEARER")
        stats = wait_for(lambda: (lambda d: d if {scram_name, oauth_name, "default"} <= set(d["clusters"]) else None)(
            admin.get("/api/ingest_stats").json()["data"]), what="every cluster in ingest_stats")
        clusters = {c["name"]: c for c in admin.get("/api/kafka_clusters").json()["data"]}
        streams = {s["id"]: s for s in admin.get("/api/streams").json()["data"]}

    assert consumed(engine, s_ztf) == 12  # program 2's topic matched nothing
    assert count(engine, "SELECT count(*) FROM failed_alerts WHERE stream_id IN (:a, :b, :c)",
                 a=s_default, b=s_ztf, c=s_gcn) == 0
    sid = json.loads(Path(GW_NOTICE).read_text())["superevent_id"]
    assert count(engine, "SELECT count(*) FROM gcnevents WHERE aliases ? :a", a=f"LVC#{sid}") == 1
    assert oauth_kafka.tokens.issued >= 1  # the client-credentials flow ran against the token endpoint
    for name in (scram_name, oauth_name, "default"):
        assert stats["clusters"][name]["consumers"] >= 1
        assert stats["clusters"][name]["error"] is None, stats["clusters"][name]
        assert clusters[name]["status"]["consumers"] >= 1
    assert {c["cluster"] for c in stats["consumers"]} >= {scram_name, oauth_name, "default"}
    assert streams[s_ztf]["ingest_status"] == {"cluster": scram_name, "consumers": 1, "error": None,
                                               "error_at": None, "topic_errors": {}}
    assert streams[s_gcn]["ingest_status"]["cluster"] == oauth_name
    # secrets are named, never shown
    assert clusters[scram_name]["secrets_set"] == ["sasl_password"]
    assert clusters[oauth_name]["secrets_set"] == ["oauth_client_secret"]
    text = admin.get("/api/kafka_clusters").text + admin.get("/api/ingest_stats").text
    assert SCRAM_PASSWORD not in text and OAUTH_SECRET not in text


def test_wrong_credentials_show_on_the_stream_and_the_others_go_on(shared_dir, admin, make_user, config, engine,
                                                                   session_factory, kafka_bootstrap, kafka_topic,
                                                                   scram_kafka, oauth_kafka):
    owner = make_user()
    scram_name, scram_id = scram_cluster(admin, scram_kafka, password="not-the-password")
    oauth_name, oauth_id = oauth_cluster(admin, oauth_kafka, secret="not-the-secret")
    tag = _tag()
    s_scram = make_stream(admin, f"alerts-{tag}", "ztf_avro", cluster=scram_name)
    _, f_scram = make_group_with_filter(owner, admin, s_scram)
    s_oauth = make_stream(admin, f"gcn-{tag}", "gcn", cluster=oauth_name)
    s_default = make_stream(admin, kafka_topic, "ztf_avro")
    _, f_default = make_group_with_filter(owner, admin, s_default)
    publish(scram_kafka.bootstrap_servers, f"alerts-{tag}", ztf(6, seed=5))
    publish(kafka_bootstrap, kafka_topic, ztf(4, seed=6))

    def stream_error(sid):
        r = admin.get(f"/api/streams/{sid}")
        assert r.status_code == 200, r.text
        return r.json()["data"]["ingest_status"]["error"]

    cfg = ingest_config(config, kafka_bootstrap)
    with running_process(cfg, session_factory):
        # the default cluster is not held up by the two that refuse us
        wait_for(lambda: passed(engine, f_default) == 4, what="the default cluster's alerts")
        scram_error = wait_for(lambda: stream_error(s_scram), what="the SCRAM stream's error")
        oauth_error = wait_for(lambda: stream_error(s_oauth), what="the OAuth stream's error")
        assert "Authentication failed" in scram_error and "SCRAM-SHA-512" in scram_error, scram_error
        assert "OAUTHBEARER token" in oauth_error and "invalid_client" in oauth_error, oauth_error
        cluster = admin.get(f"/api/kafka_clusters/{scram_id}").json()["data"]
        assert "Authentication failed" in cluster["status"]["error"]
        assert passed(engine, f_scram) == 0
        # the right password: the consumer is remade, reads everything, and the error goes away
        r = admin.patch(f"/api/kafka_clusters/{scram_id}", json={"sasl_password": SCRAM_PASSWORD})
        assert r.status_code == 200, r.text
        wait_for(lambda: passed(engine, f_scram) == 6, what="the SCRAM stream after the fix")
        wait_for(lambda: stream_error(s_scram) is None, what="the SCRAM error cleared")
        assert stream_error(s_oauth) is not None  # still wrong
    assert "not-the-password" not in admin.get(f"/api/kafka_clusters/{scram_id}").text


def test_a_cluster_taken_down_and_brought_back_loses_nothing(shared_dir, admin, make_user, config, engine,
                                                             session_factory, kafka_bootstrap, kafka_topic,
                                                             scram_kafka):
    owner = make_user()
    scram_name, _ = scram_cluster(admin, scram_kafka)
    tag = _tag()
    topic = f"alerts-{tag}"
    s_scram = make_stream(admin, topic, "ztf_avro", cluster=scram_name)
    _, f_scram = make_group_with_filter(owner, admin, s_scram)
    s_default = make_stream(admin, kafka_topic, "ztf_avro")
    _, f_default = make_group_with_filter(owner, admin, s_default)
    cfg = ingest_config(config, kafka_bootstrap)
    with running_process(cfg, session_factory):
        publish(scram_kafka.bootstrap_servers, topic, ztf(10, seed=7))
        wait_for(lambda: passed(engine, f_scram) == 10, what="the first alerts")
        publish(scram_kafka.bootstrap_servers, topic, ztf(15, seed=8))
        scram_kafka.stop()  # at once: some of these may not be written yet
        try:
            publish(kafka_bootstrap, kafka_topic, ztf(6, seed=9))
            wait_for(lambda: passed(engine, f_default) == 6, what="the default cluster while the other is down")
            wait_for(lambda: admin.get(f"/api/streams/{s_scram}").json()["data"]["ingest_status"]["error"],
                     what="the down cluster's error on its stream")
        finally:
            scram_kafka.start(progress=lambda msg: None)
        publish(scram_kafka.bootstrap_servers, topic, ztf(5, seed=10))
        wait_for(lambda: passed(engine, f_scram) == 30, timeout=120, what="every alert after the restart")
        wait_for(lambda: admin.get(f"/api/streams/{s_scram}").json()["data"]["ingest_status"]["error"] is None,
                 what="the error cleared")
    assert consumed(engine, s_scram) == 30  # nothing read twice
    assert count(engine, "SELECT count(*) FROM failed_alerts WHERE stream_id=:s", s=s_scram) == 0


def test_streams_start_where_they_say(shared_dir, admin, make_user, config, engine, session_factory,
                                      kafka_bootstrap, make_topic):
    """A consumer group that has read nothing of a topic starts at the stream's ``start``: the earliest offset
    (default), the latest (what was there before is skipped), or the first message at or after a time."""
    from confluent_kafka import Producer

    owner = make_user()
    t_latest, t_dated = make_topic(1), make_topic(1)
    s_latest = make_stream(admin, t_latest, "ztf_avro", start="latest")
    _, f_latest = make_group_with_filter(owner, admin, s_latest)
    s_dated = make_stream(admin, t_dated, "ztf_avro", start="2025-06-01T00:00:00Z")
    _, f_dated = make_group_with_filter(owner, admin, s_dated)
    publish(kafka_bootstrap, t_latest, ztf(5, seed=11))  # before the group's first read: skipped
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    old_ms = int(datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp() * 1000)
    for i, payload in enumerate(ztf(7, seed=12)):
        producer.produce(t_dated, payload, timestamp=old_ms if i < 3 else 0)  # 0: the time of sending
    assert producer.flush(30) == 0

    def assigned(topic):  # reported after the assignment, whose start offsets are then fixed
        return count(engine, "SELECT count(*) FROM ingest_status WHERE lag ? :k", k=f"{topic}/0")

    cfg = ingest_config(config, kafka_bootstrap)
    with running_process(cfg, session_factory):
        wait_for(lambda: passed(engine, f_dated) == 4, what="the messages from the start time on")
        wait_for(lambda: assigned(t_latest), what="the latest-start topic assigned")
        publish(kafka_bootstrap, t_latest, ztf(3, seed=13))
        wait_for(lambda: passed(engine, f_latest) == 3, what="what came after the start")
    assert consumed(engine, s_latest) == 3 and consumed(engine, s_dated) == 4


def test_replay_publishes_to_the_streams_own_cluster(shared_dir, admin, config, engine, kafka_bootstrap,
                                                     scram_kafka):
    """``skybroker replay`` publishes on the stream's cluster with its credentials (SCRAM over TLS here); a
    stream that reads a pattern needs ``--topic``, one of the topics it matches."""
    import os
    import subprocess
    import sys

    from confluent_kafka import Consumer, TopicPartition

    from .test_ingest import lsst_sample

    scram_name, _ = scram_cluster(admin, scram_kafka)
    tag = _tag()
    make_stream(admin, f"^lsst_{tag}_.*$", "lsst_avro", cluster=scram_name)
    env = {**os.environ, "DATABASE_URL": engine.url.render_as_string(hide_password=False),
           "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "SKYBROKER_PATHS__DATA_DIR": str(config.paths.data_dir)}

    def replay(*extra):
        return subprocess.run([sys.executable, "-m", "broker.runtime.cli", "replay", lsst_sample(), "--stream",
                               f"stream-^lsst_{tag}_.*$", "--count", "4", "--derive", *extra],
                              env=env, capture_output=True, text=True, timeout=120)

    bad = replay()
    assert bad.returncode == 1 and "--topic" in bad.stderr, bad.stderr
    bad = replay("--topic", "elsewhere")
    assert bad.returncode == 1 and "not 'elsewhere'" in bad.stderr, bad.stderr
    ok = replay("--topic", f"lsst_{tag}_night1")
    assert ok.returncode == 0, ok.stderr
    assert f"published 4 alert(s) to lsst_{tag}_night1 on cluster '{scram_name}'" in ok.stdout
    c = Consumer({"bootstrap.servers": scram_kafka.bootstrap_servers, "group.id": "probe"})
    try:
        parts = c.list_topics(timeout=10).topics[f"lsst_{tag}_night1"].partitions
        assert len(parts) == config.kafka.topic_partitions  # replay made it, with the configured partitions
        assert sum(c.get_watermark_offsets(TopicPartition(f"lsst_{tag}_night1", p), timeout=10)[1]
                   for p in parts) == 4
    finally:
        c.close()
