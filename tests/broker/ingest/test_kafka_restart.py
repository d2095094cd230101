"""A Kafka restart under a running consumer loses nothing and doubles nothing; the loop goes on (issue 8)."""

import time

from broker.ingest.replay import messages, publish
from broker.runtime.kafka import LocalKafka, free_port

from .helpers import count, ingest_config, make_group_with_filter, make_stream, running_ingestor, wait_for
from .test_ingest import ZTF


def test_kafka_restart_mid_stream(admin, make_user, config, engine, session_factory, tmp_path):
    # a broker of this test's own: the session's is shared by every other test
    kafka = LocalKafka(version=config.kafka.local.version, data_dir=tmp_path / "kafka",
                       cache_dir=config.paths.cache_dir, port=free_port(), controller_port=free_port(),
                       heap=config.kafka.local.heap)
    kafka.start(progress=lambda m: None)
    try:
        topic = f"restart-{int(time.time() * 1000)}"
        owner = make_user()
        sid = make_stream(admin, topic, "ztf_avro")
        _, fid = make_group_with_filter(owner, admin, sid)
        cfg = ingest_config(config, kafka.bootstrap_servers)
        n_cand = "SELECT count(*) FROM candidates WHERE filter_id=:f"
        with running_ingestor(cfg, session_factory) as ing:
            publish(kafka.bootstrap_servers, topic, messages([ZTF], "ztf_avro", count=20, derive_new=True, seed=31))
            wait_for(lambda: count(engine, n_cand, f=fid) == 20, what="alerts before the restart")
            kafka.stop()  # controlled shutdown, as an operator's restart
            time.sleep(3)  # the consumer polls a broker that is gone
            kafka.start(progress=lambda m: None)
            publish(kafka.bootstrap_servers, topic, messages([ZTF], "ztf_avro", count=20, derive_new=True, seed=32))
            wait_for(lambda: count(engine, n_cand, f=fid) == 40, timeout=120, what="alerts after the restart")
            assert not ing.stopping
        assert count(engine, "SELECT count(DISTINCT passing_alert_id) FROM candidates WHERE filter_id=:f", f=fid) == 40
        assert count(engine, "SELECT consumed FROM ingest_counters WHERE stream_id=:s AND filter_id=0", s=sid) == 40
        assert count(engine, "SELECT count(*) FROM failed_alerts WHERE topic=:t", t=topic) == 0
    finally:
        kafka.stop()
