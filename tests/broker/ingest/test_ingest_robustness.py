"""Bad input, redelivery, database outages, kill -9 and several processes: nothing lost, nothing doubled."""

import os
import signal
import subprocess
import sys
import time

import sqlalchemy as sa
from confluent_kafka import Consumer, TopicPartition

from broker.ingest.replay import messages, publish

from .helpers import (count, ingest_config, make_group_with_filter, make_stream, running_ingestor,
                             wait_for)
from .test_ingest import ZTF, lsst_sample


def committed(bootstrap, group, topic, partitions=3):
    from confluent_kafka import KafkaException

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return sum(max(tp.offset, 0) for tp in tps)
    except KafkaException as exc:  # e.g. NOT_COORDINATOR while the group's coordinator loads
        if exc.args[0].retriable() or exc.args[0].code() == 16:
            return -1
        raise
    finally:
        c.close()


def test_garbage_lands_in_failed_alerts_and_the_stream_goes_on(shared_dir, admin, make_user, config, engine,
                                                               session_factory, kafka_bootstrap, kafka_topic):
    owner = make_user()
    sid = make_stream(admin, kafka_topic, "lsst_avro")
    _, fid = make_group_with_filter(owner, admin, sid)
    good = list(messages([lsst_sample()], "lsst_avro", count=3, derive_new=True))
    garbage = [b"\x00\x00\x00\x04\x4d\xff\xff", b"not avro at all", b"\x00\x00\x00\x00\x07xx"]
    # partition 0 only, so the order is known: good, bad, good, bad, good, bad
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": kafka_bootstrap})
    for g, b in zip(good, garbage):
        p.produce(kafka_topic, g, partition=0)
        p.produce(kafka_topic, b, partition=0)
    assert p.flush(30) == 0
    cfg = ingest_config(config, kafka_bootstrap)
    with running_ingestor(cfg, session_factory):
        wait_for(lambda: committed(kafka_bootstrap, cfg.kafka.group_id, kafka_topic) == 6, what="offsets")
    assert count(engine, "SELECT count(*) FROM candidates WHERE filter_id=:f", f=fid) == 3
    with engine.connect() as conn:
        rows = conn.execute(sa.text('SELECT "offset", raw, error FROM failed_alerts WHERE topic=:t ORDER BY 1'),
                            {"t": kafka_topic}).all()
    assert [r[0] for r in rows] == [1, 3, 5]
    assert [bytes(r[1]) for r in rows] == garbage
    assert "schema" in rows[0][2] or "LSST" in rows[0][2]
    assert "Confluent wire format" in rows[1][2]
    assert count(engine, "SELECT failed FROM ingest_counters WHERE stream_id=:s AND filter_id=0", s=sid) == 3


def test_redelivery_writes_nothing_twice(shared_dir, admin, make_user, config, engine, session_factory,
                                         kafka_bootstrap, kafka_topic):
    owner = make_user()
    sid = make_stream(admin, kafka_topic, "ztf_avro")
    _, fid = make_group_with_filter(owner, admin, sid, autosave=True)
    publish(kafka_bootstrap, kafka_topic, messages([ZTF], "ztf_avro", count=20, derive_new=True))
    cfg = ingest_config(config, kafka_bootstrap)
    tables = ("candidates", "photometry", "objs", "sources", "photometry_groups")

    def snapshot():
        with engine.connect() as conn:
            return {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar() for t in tables}

    with running_ingestor(cfg, session_factory):
        wait_for(lambda: count(engine, "SELECT count(*) FROM candidates WHERE filter_id=:f", f=fid) == 20)
    wait_for(lambda: committed(kafka_bootstrap, cfg.kafka.group_id, kafka_topic) == 20)
    first = snapshot()
    # a second consumer group reads everything again (as after a lost offset commit)
    again = ingest_config(config, kafka_bootstrap)
    with running_ingestor(again, session_factory):
        wait_for(lambda: committed(kafka_bootstrap, again.kafka.group_id, kafka_topic) == 20, what="redelivery")
    assert snapshot() == first
    assert count(engine, "SELECT consumed FROM ingest_counters WHERE stream_id=:s AND filter_id=0", s=sid) == 40


def test_database_outage_loses_nothing(shared_dir, admin, make_user, config, engine, session_factory,
                                       kafka_bootstrap, kafka_topic, pg_admin_url):
    owner = make_user()
    sid = make_stream(admin, kafka_topic, "ztf_avro")
    _, fid = make_group_with_filter(owner, admin, sid)
    cfg = ingest_config(config, kafka_bootstrap)
    dbname = engine.url.database
    admin_engine = sa.create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")

    def database(up: bool):
        with admin_engine.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS {str(up).lower()}'))
            if not up:
                conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                     "WHERE datname = :d AND pid <> pg_backend_pid()"), {"d": dbname})

    try:
        with running_ingestor(cfg, session_factory):
            publish(kafka_bootstrap, kafka_topic, messages([ZTF], "ztf_avro", count=10, derive_new=True, seed=1))
            wait_for(lambda: count(engine, "SELECT count(*) FROM candidates WHERE filter_id=:f", f=fid) == 10)
            database(False)
            publish(kafka_bootstrap, kafka_topic, messages([ZTF], "ztf_avro", count=10, derive_new=True, seed=2))
            time.sleep(3)  # the consumer has the batch, fails to write it, and commits no offset
            assert committed(kafka_bootstrap, cfg.kafka.group_id, kafka_topic) == 10
            database(True)
            wait_for(lambda: count(engine, "SELECT count(*) FROM candidates WHERE filter_id=:f", f=fid) == 20,
                     what="the held batch after the outage")
            wait_for(lambda: committed(kafka_bootstrap, cfg.kafka.group_id, kafka_topic) == 20)
    finally:
        database(True)
        admin_engine.dispose()


def _ingest_process(cfg, db_url, processes=1):
    env = {**os.environ, "DATABASE_URL": db_url, "KAFKA_BOOTSTRAP_SERVERS": cfg.kafka.bootstrap_servers,
           "SKYBROKER_KAFKA__GROUP_ID": cfg.kafka.group_id, "SKYBROKER_INGEST__REFRESH_INTERVAL_S": "0.5",
           "SKYBROKER_INGEST__BATCH_SIZE": "200", "SKYBROKER_INGEST__STATS_INTERVAL_S": "1",
           "SKYBROKER_PATHS__DATA_DIR": str(cfg.paths.data_dir), "PYTHONUNBUFFERED": "1", "SKYBROKER_KAFKA__CREATE_TOPICS": "false"}
    return subprocess.Popen([sys.executable, "-m", "broker.runtime.cli", "ingest", "--processes", str(processes)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


def test_kill_9_mid_batch_then_restart(shared_dir, admin, make_user, config, engine, kafka_bootstrap, kafka_topic):
    owner = make_user()
    sid = make_stream(admin, kafka_topic, "lsst_avro")
    _, fid = make_group_with_filter(owner, admin, sid)
    n = 3000
    publish(kafka_bootstrap, kafka_topic, messages([lsst_sample()], "lsst_avro", count=n, derive_new=True))
    cfg = ingest_config(config, kafka_bootstrap)
    url = engine.url.render_as_string(hide_password=False)
    proc = _ingest_process(cfg, url)
    try:
        wait_for(lambda: count(engine, "SELECT count(*) FROM candidates WHERE filter_id=:f", f=fid) > 0,
                 what="ingestion to start")
        os.killpg(proc.pid, signal.SIGKILL)  # the parent and its consumer processes, mid-stream
        proc.wait(10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    partial = count(engine, "SELECT count(*) FROM candidates WHERE filter_id=:f", f=fid)
    assert partial < n, "killed too late to test anything"
    proc = _ingest_process(cfg, url)
    try:
        wait_for(lambda: count(engine, "SELECT count(*) FROM candidates WHERE filter_id=:f", f=fid) == n,
                 timeout=120, what="every alert after the restart")
        wait_for(lambda: committed(kafka_bootstrap, cfg.kafka.group_id, kafka_topic) == n, timeout=60)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    assert count(engine, "SELECT count(DISTINCT passing_alert_id) FROM candidates WHERE filter_id=:f", f=fid) == n
    # the batch the kill interrupted after its database commit is skipped on redelivery: counted once
    assert count(engine, "SELECT consumed FROM ingest_counters WHERE stream_id=:s AND filter_id=0", s=sid) == n


def test_two_processes_share_a_multi_partition_topic(shared_dir, admin, make_user, config, engine,
                                                     kafka_bootstrap, make_topic):
    topic = make_topic(partitions=4)
    owner = make_user()
    sid = make_stream(admin, topic, "ztf_avro")
    _, fid = make_group_with_filter(owner, admin, sid)
    n = 400
    cfg = ingest_config(config, kafka_bootstrap)
    proc = _ingest_process(cfg, engine.url.render_as_string(hide_password=False), processes=2)
    try:
        # both consumers own partitions of the topic before the alerts arrive
        wait_for(lambda: count(engine, "SELECT count(*) FROM ingest_status WHERE EXISTS ("
                                       "SELECT 1 FROM jsonb_object_keys(lag) k WHERE k LIKE :t || '/%') "
                                       "AND updated_at > now() at time zone 'utc' - interval '30 seconds'",
                               t=topic) == 2, timeout=90, what="two consumers sharing the topic")
        publish(kafka_bootstrap, topic, messages([ZTF], "ztf_avro", count=n, derive_new=True, seed=3))
        wait_for(lambda: count(engine, "SELECT count(*) FROM candidates WHERE filter_id=:f", f=fid) == n,
                 timeout=120)
        wait_for(lambda: committed(kafka_bootstrap, cfg.kafka.group_id, topic, partitions=4) == n)

        def shares():
            with engine.connect() as conn:
                return conn.execute(sa.text("SELECT consumed FROM ingest_status WHERE topics ? :t"),
                                    {"t": topic}).scalars().all()

        # both processes consumed a share (as their next reports say)
        wait_for(lambda: len(shares()) == 2 and all(x > 0 for x in shares()) and sum(shares()) == n,
                 what="two shares adding up to every alert")
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out.decode()[-3000:]
    assert count(engine, "SELECT count(DISTINCT passing_alert_id) FROM candidates WHERE filter_id=:f", f=fid) == n
    # stopped consumers are no longer listed
    assert count(engine, "SELECT count(*) FROM ingest_status WHERE topics ? :t", t=topic) == 0


def test_a_batch_written_but_not_acknowledged_is_counted_once(admin, make_user, config, engine, session_factory,
                                                             kafka_bootstrap, kafka_topic):
    """The database commits, then the process dies before Kafka's offset commit: the redelivered batch is
    skipped (its offsets are in the database), so counters and lag are exact."""
    owner = make_user()
    sid = make_stream(admin, kafka_topic, "ztf_avro")
    _, fid = make_group_with_filter(owner, admin, sid)
    publish(kafka_bootstrap, kafka_topic, messages([ZTF], "ztf_avro", count=30, derive_new=True, seed=21))
    cfg = ingest_config(config, kafka_bootstrap)

    class Died(Exception):
        pass

    from broker.ingest.consumers import Ingestor

    ing = Ingestor(cfg, session_factory)

    def die(batch, result):
        raise Died()

    ing.on_commit = die  # after the database commit, before the Kafka commit
    ing.refresh_streams()
    deadline = time.monotonic() + 60
    while count(engine, "SELECT count(*) FROM candidates WHERE filter_id=:f", f=fid) < 30:
        assert time.monotonic() < deadline, "the first delivery never committed"
        try:
            ing.run_once()
        except Died:
            pass
    ing.consumer.close()
    assert committed(kafka_bootstrap, cfg.kafka.group_id, kafka_topic) == 0
    with running_ingestor(cfg, session_factory):  # the same group reads it all again
        wait_for(lambda: committed(kafka_bootstrap, cfg.kafka.group_id, kafka_topic) == 30, what="offsets")
    assert count(engine, "SELECT consumed FROM ingest_counters WHERE stream_id=:s AND filter_id=0", s=sid) == 30
    assert count(engine, "SELECT passed FROM ingest_counters WHERE stream_id=:s AND filter_id=:f", s=sid, f=fid) == 30
