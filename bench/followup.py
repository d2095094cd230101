"""Follow-up benchmark: alert produced → LCO request group accepted, for auto-triggered follow-ups.

In one run, on a real PostgreSQL (embedded, temporary), a real Kafka broker (local KRaft) and the LCO
simulator:

1. ours: a default follow-up rule on a filter; an ingest process and the follow-up worker (LISTEN/NOTIFY)
   run while N alerts of new objects are produced at a steady rate; latency = request group's creation
   at the simulator − the alert's produce time;
2. baseline (named "api-polling client"): the same alerts, no rule; a SkyPortal-style script polls
   GET /api/candidates every second and POSTs /api/followup_request for each new candidate;
3. print p50/p99 of both and the ratio of the p50s.

    .venv/bin/python bench/followup.py --alerts 100
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import arrow  # noqa: E402
import requests  # noqa: E402

from broker.runtime import db  # noqa: E402
from broker.runtime.config import Secret, load_config  # noqa: E402
from broker.runtime.kafka import LocalKafka, free_port, wait_for_port  # noqa: E402
from broker.ingest.replay import derive, encode, read_packets  # noqa: E402

ZTF = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "ztf" / "541234765015015012.avro"
TOKEN = "bench-token"
PAYLOAD = {"observation_choices": ["gp", "rp"], "exposure_time": 300, "exposure_counts": 1}


def serve(app, port):
    def run():
        import tornado.ioloop

        asyncio.set_event_loop(asyncio.new_event_loop())
        app.listen(port, address="127.0.0.1")
        tornado.ioloop.IOLoop.current().start()

    threading.Thread(target=run, daemon=True).start()


def produce(bootstrap, topic, n, rate, seed):
    """Produce n alerts of new objects at ``rate``/s; return {object id: produce time (unix s)}."""
    from confluent_kafka import Producer

    (packet, schema), = read_packets(ZTF, "ztf_avro")
    rng = random.Random(seed)
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    sent = {}
    t0 = time.monotonic()
    for i in range(n):
        alert = derive(packet, i, rng)
        raw = encode(alert, schema, "ztf_avro")
        while time.monotonic() < t0 + i / rate:
            time.sleep(0.001)
        sent[alert["objectId"]] = time.time()
        p.produce(topic, raw)
        p.poll(0)
    p.flush(30)
    return sent


def accepted_times(sim_url, names):
    groups = requests.get(f"{sim_url}/control/state", timeout=30).json()["groups"]
    out = {}
    for g in groups:
        obj = g["requests"][0]["configurations"][0]["target"]["name"]
        if obj in names:
            out[obj] = arrow.get(g["created"]).timestamp()
    return out


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q / 100 * len(values)))] if values else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--alerts", type=int, default=100)
    ap.add_argument("--rate", type=float, default=10.0, help="alerts per second")
    args = ap.parse_args()

    import logging

    logging.basicConfig(level=logging.WARNING)
    cfg = load_config(env={k: v for k, v in os.environ.items() if not k.startswith("SKYBROKER_")
                           and k not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")})
    tmp = Path(tempfile.mkdtemp(prefix="skybroker-bench-"))
    pg = db.EmbeddedPostgres(tmp / "pgdata")
    kafka = LocalKafka(version=cfg.kafka.local.version, data_dir=tmp / "kafka", cache_dir=cfg.paths.cache_dir,
                       port=free_port(), controller_port=free_port())
    procs = None
    try:
        url = pg.start()
        kafka.start(progress=lambda m: print(m, file=sys.stderr))
        engine = db.make_engine(url, cfg)
        db.upgrade(engine, cfg.admin.sitewide_group)
        session_factory = db.make_session_factory(engine)

        from facility_apis.lco_simulator import make_simulator

        sim_port = free_port()
        sim_url = f"http://127.0.0.1:{sim_port}"
        serve(make_simulator({TOKEN: "bench"}), sim_port)
        cfg = replace(cfg, kafka=replace(cfg.kafka, bootstrap_servers=kafka.bootstrap_servers),
                      paths=replace(cfg.paths, data_dir=tmp),
                      database=replace(cfg.database, url=Secret(url)),
                      ingest=replace(cfg.ingest, batch_timeout_ms=20, refresh_interval_s=0.5, stats_interval_s=1.0),
                      facilities=replace(cfg.facilities, poll_interval_s=30.0,
                                         lco=replace(cfg.facilities.lco, url=sim_url, archive_url=sim_url)))

        from broker.runtime.app import make_app
        from broker.runtime.cli import ensure_admin
        from broker.ingest.consumers import start_processes
        from broker.runtime.worker import FollowupWorker

        token = ensure_admin(session_factory, cfg)
        app = make_app(cfg, session_factory)
        api_port = free_port()
        base = f"http://127.0.0.1:{api_port}"
        serve(app, api_port)
        wait_for_port(api_port)
        s = requests.Session()
        s.headers["Authorization"] = f"token {token}"

        def setup(name):
            sid = s.post(f"{base}/api/streams", json={"name": name, "altdata": {"topic": name, "format": "ztf_avro"}}
                         ).json()["data"]["id"]
            gid = s.post(f"{base}/api/groups", json={"name": name}).json()["data"]["id"]
            s.post(f"{base}/api/groups/{gid}/streams", json={"stream_id": sid}).raise_for_status()
            fid = s.post(f"{base}/api/filters", json={"name": name, "stream_id": sid, "group_id": gid}
                         ).json()["data"]["id"]
            return gid, fid

        tel = s.post(f"{base}/api/telescope", json={"name": "LCO 1m", "nickname": "1m", "diameter": 1.0}).json()
        iid = s.post(f"{base}/api/instrument", json={"name": "1M0-SCICAM-SINISTRO", "type": "imager",
                                                     "telescope_id": tel["data"]["id"], "api_classname": "LCO"}
                     ).json()["data"]["id"]
        from confluent_kafka.admin import AdminClient, NewTopic

        kadmin = AdminClient({"bootstrap.servers": kafka.bootstrap_servers})
        for fut in kadmin.create_topics([NewTopic(t, num_partitions=2, replication_factor=1)
                                         for t in ("ours", "baseline")]).values():
            fut.result(30)
        gid, fid = setup("ours")
        bgid, bfid = setup("baseline")
        aids = {}
        for g in (gid, bgid):
            aids[g] = s.post(f"{base}/api/allocation", json={
                "group_id": g, "instrument_id": iid, "proposal_id": "BENCH", "hours_allocated": 1000,
                "altdata": {"API_TOKEN": TOKEN}}).json()["data"]["id"]
        s.post(f"{base}/api/default_followup_request", json={
            "default_followup_name": "bench", "allocation_id": aids[gid], "payload": PAYLOAD,
            "source_filter": {"filter_ids": [fid]}}).raise_for_status()

        procs = start_processes(cfg, 1)
        worker = FollowupWorker(app.followup, engine, cfg.facilities.poll_interval_s).start()
        import sqlalchemy as sa

        deadline = time.monotonic() + 60
        with engine.connect() as conn:  # the consumer has joined and holds both topics
            while time.monotonic() < deadline and not conn.execute(sa.text(
                    "SELECT count(*) FROM ingest_status WHERE topics ? 'ours' AND topics ? 'baseline'")).scalar():
                time.sleep(0.2)
        time.sleep(2.0)

        # 1. ours
        sent = produce(kafka.bootstrap_servers, "ours", args.alerts, args.rate, seed=1)
        deadline = time.monotonic() + 120
        got = {}
        while len(got) < len(sent) and time.monotonic() < deadline:
            got = accepted_times(sim_url, set(sent))
            time.sleep(0.5)
        ours = [got[o] - sent[o] for o in got]
        worker.stop()

        # 2. baseline: a client polling the API every second
        stop = threading.Event()

        def poller():
            seen = set()
            window = {"start_date": arrow.utcnow().isoformat(), "end_date": arrow.utcnow().shift(days=7).isoformat()}
            while not stop.is_set():
                cands = s.get(f"{base}/api/candidates", params={"filterIDs": bfid, "numPerPage": 500}).json()
                for c in cands["data"]["candidates"]:
                    if c["id"] not in seen:
                        seen.add(c["id"])
                        s.post(f"{base}/api/followup_request", json={
                            "obj_id": c["id"], "allocation_id": aids[bgid], "payload": {**PAYLOAD, **window}})
                stop.wait(1.0)

        t = threading.Thread(target=poller, daemon=True)
        t.start()
        bsent = produce(kafka.bootstrap_servers, "baseline", args.alerts, args.rate, seed=2)
        deadline = time.monotonic() + 120
        bgot = {}
        while len(bgot) < len(bsent) and time.monotonic() < deadline:
            bgot = accepted_times(sim_url, set(bsent))
            time.sleep(0.5)
        stop.set()
        baseline = [bgot[o] - bsent[o] for o in bgot]

        print(f"{args.alerts} alerts of new objects at {args.rate:g}/s; LCO simulator on loopback")
        print(f"ours (default follow-up rule, LISTEN/NOTIFY worker): {len(ours)} request groups, "
              f"p50 {pct(ours, 50):.3f} s, p99 {pct(ours, 99):.3f} s")
        print(f"baseline (api-polling client, 1 s poll + POST /api/followup_request): {len(baseline)} request groups, "
              f"p50 {pct(baseline, 50):.3f} s, p99 {pct(baseline, 99):.3f} s")
        print(f"ratio baseline/ours (p50): {pct(baseline, 50) / pct(ours, 50):.1f}x")
        print(f"target p99 < 2 s -> {'MET' if pct(ours, 99) < 2.0 else 'NOT MET'}")
        return 0
    finally:
        if procs:
            procs.stop()
        kafka.stop()
        pg.stop()


if __name__ == "__main__":
    sys.exit(main())
