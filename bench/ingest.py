"""Ingestion benchmark: Kafka → committed rows, against SkyPortal's one-by-one API path.

In one run, on a real PostgreSQL (embedded, temporary) and a real Kafka broker (local KRaft):

1. publish a "visit" of N LSST alerts derived from the lsst-alert-packet sample (new ids and positions,
   with a realistic history and cutouts, ~`--alert-kb` KB each) while one ingest consumer runs; measure
   the visit's wall time from first produce to last commit (alerts/s) and each alert's latency from
   produce (Kafka CreateTime) to database commit (p50/p99);
2. baseline: the same kind of alerts posted one by one through POST /api/candidates + POST /api/photometry
   (how Kowalski feeds SkyPortal), alerts/s;
3. print the ratio.

    .venv/bin/python bench/ingest.py --alerts 10000
"""

from __future__ import annotations

import argparse
import copy
import os
import random
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests  # noqa: E402

from broker.runtime import db  # noqa: E402
from broker.ingest.decoding import decode, encode_lsst  # noqa: E402
from broker.runtime.config import Secret, load_config  # noqa: E402
from broker.runtime.kafka import LocalKafka, free_port, wait_for_port  # noqa: E402
from broker.ingest.pipeline import mjd_to_datetime  # noqa: E402
from broker.ingest.replay import derive, publish, read_packets  # noqa: E402


def lsst_visit(n: int, alert_kb: int = 0, history: int | None = None, seed: int = 1) -> list[bytes]:
    """N alerts derived from the v11.1 sample: as shipped (its own history, no cutouts), or grown to
    ``history`` previous detections and ``alert_kb`` KB of cutouts."""
    from lsst.alert.packet import get_schema_root

    (packet, sid), = read_packets(f"{get_schema_root()}/11/1/sample_data/fakeAlert.avro", "lsst_avro")
    base = copy.deepcopy(packet)
    if history is not None:
        prv = base["prvDiaSources"][0]
        base["prvDiaSources"] = []
        for k in range(history):  # a detection every ~3 days before this one
            p = copy.deepcopy(prv)
            p["midpointMjdTai"] = base["diaSource"]["midpointMjdTai"] - 3.0 * (k + 1)
            p["band"] = "ugrizy"[k % 6]
            base["prvDiaSources"].append(p)
    rng = random.Random(seed)
    cut = max(0, alert_kb * 1024 // 3)
    if cut:
        blob = rng.randbytes(cut)
        base["cutoutScience"] = base["cutoutTemplate"] = base["cutoutDifference"] = blob
    out = []
    for i in range(n):
        out.append(encode_lsst(derive(base, i, rng), sid))
    return out


def record_latency(batch, result):
    """on_commit hook of the benchmark's ingest processes: append produce->commit latencies (ms)."""
    now_ms = time.time() * 1000
    with open(Path(os.environ["SKYBROKER_BENCH_DIR"]) / f"lat-{os.getpid()}.txt", "a") as fh:
        fh.write("".join(f"{now_ms - m.timestamp_ms:.1f}\n" for m in batch if m.timestamp_ms))


def run_pipeline(cfg, engine, bootstrap, topic, payloads, processes, filter_id, workdir):
    """Ingest processes (one consumer group) run while the visit is published; returns
    (wall time first produce -> last commit, produce time, per-alert latencies in ms)."""
    import sqlalchemy as sa

    from broker.ingest.consumers import start_processes

    os.environ["SKYBROKER_BENCH_DIR"] = str(workdir)
    procs = start_processes(cfg, processes, on_commit=record_latency)

    def consumers():
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM ingest_status WHERE topics ? :t"),
                                {"t": topic}).scalar()

    deadline = time.monotonic() + 120
    while consumers() < processes and time.monotonic() < deadline:  # all joined the group
        time.sleep(0.2)
    time.sleep(2.0)  # let the group settle its assignment
    count = sa.text("SELECT count(*) FROM candidates WHERE filter_id = :f")
    t0 = time.monotonic()
    publish(bootstrap, topic, payloads)
    t_published = time.monotonic()
    with engine.connect() as conn:
        while conn.execute(count, {"f": filter_id}).scalar() < len(payloads) and time.monotonic() - t0 < 600:
            time.sleep(0.25)
    t1 = time.monotonic()
    procs.stop()
    latencies = [float(x) for f in Path(workdir).glob("lat-*.txt") for x in f.read_text().split()]
    return t1 - t0, t_published - t0, latencies


def run_baseline(base_url, token, payloads, filter_id, group_id):
    """One alert at a time: POST /api/candidates, then POST /api/photometry with its points."""
    s = requests.Session()
    s.headers["Authorization"] = f"token {token}"
    t0 = time.monotonic()
    for raw in payloads:
        a = decode(raw, "lsst_avro")
        r = s.post(f"{base_url}/api/candidates", json={
            "id": a.object_id, "ra": a.ra, "dec": a.dec, "filter_ids": [filter_id],
            "passed_at": mjd_to_datetime(a.mjd).isoformat(),
            "passing_alert_id": a.alert_id})
        r.raise_for_status()
        pts = a.detections
        r = s.post(f"{base_url}/api/photometry", json={
            "obj_id": a.object_id, "mjd": [p.mjd for p in pts], "filter": [p.band for p in pts],
            "flux": [p.flux for p in pts], "fluxerr": [p.fluxerr for p in pts], "zp": 23.9,
            "origin": "LSST", "instrument_name": "LSST", "group_ids": [group_id]})
        r.raise_for_status()
    return time.monotonic() - t0


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q / 100 * len(values)))] if values else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--alerts", type=int, default=10000, help="alerts in the visit")
    ap.add_argument("--baseline-alerts", type=int, default=300, help="alerts posted one by one")
    ap.add_argument("--alert-kb", type=int, default=0,
                    help="add this many KB of cutouts per alert (default: none, as the sample)")
    ap.add_argument("--history", type=int, default=None,
                    help="previous detections per alert (default: the sample's own history)")
    ap.add_argument("--processes", type=int, default=2,
                    help="ingest processes in one consumer group (as `skybroker ingest --processes N`)")
    ap.add_argument("--batch-size", type=int, default=None)
    args = ap.parse_args()

    import logging

    logging.basicConfig(level=logging.WARNING)
    cfg = load_config(env={k: v for k, v in os.environ.items() if not k.startswith("SKYBROKER_")
                           and k not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")})
    tmp = Path(tempfile.mkdtemp(prefix="skybroker-bench-"))
    pg = db.EmbeddedPostgres(tmp / "pgdata")
    kafka = LocalKafka(version=cfg.kafka.local.version, data_dir=tmp / "kafka", cache_dir=cfg.paths.cache_dir,
                       port=free_port(), controller_port=free_port(), heap="1g")
    try:
        url = pg.start()
        kafka.start(progress=lambda m: print(m, file=sys.stderr))
        engine = db.make_engine(url, cfg)
        db.upgrade(engine, cfg.admin.sitewide_group)
        session_factory = db.make_session_factory(engine)
        cfg = replace(cfg, kafka=replace(cfg.kafka, bootstrap_servers=kafka.bootstrap_servers),
                      paths=replace(cfg.paths, data_dir=tmp),
                      ingest=replace(cfg.ingest, batch_size=args.batch_size or cfg.ingest.batch_size,
                                     refresh_interval_s=0.5, stats_interval_s=1.0))

        from broker.runtime.cli import ensure_admin
        from confluent_kafka.admin import AdminClient, NewTopic

        token = ensure_admin(session_factory, cfg)
        kadmin = AdminClient({"bootstrap.servers": kafka.bootstrap_servers})
        kadmin.create_topics([NewTopic("lsst-visit", num_partitions=4, replication_factor=1)])["lsst-visit"].result(30)

        # API server (for setup and the baseline)
        import asyncio

        import tornado.ioloop

        from broker.runtime.app import make_app

        port = free_port()
        base_url = f"http://127.0.0.1:{port}"

        def serve():
            asyncio.set_event_loop(asyncio.new_event_loop())
            make_app(cfg, session_factory).listen(port, address="127.0.0.1")
            tornado.ioloop.IOLoop.current().start()

        threading.Thread(target=serve, daemon=True).start()
        wait_for_port(port)
        h = {"Authorization": f"token {token}"}
        sid = requests.post(f"{base_url}/api/streams", headers=h, json={
            "name": "lsst", "altdata": {"topic": "lsst-visit", "format": "lsst_avro"}}).json()["data"]["id"]
        gid = requests.post(f"{base_url}/api/groups", headers=h, json={"name": "bench"}).json()["data"]["id"]
        requests.post(f"{base_url}/api/groups/{gid}/streams", headers=h, json={"stream_id": sid}).raise_for_status()
        fid = requests.post(f"{base_url}/api/filters", headers=h, json={
            "name": "all", "stream_id": sid, "group_id": gid}).json()["data"]["id"]
        fid2 = requests.post(f"{base_url}/api/filters", headers=h, json={
            "name": "bright", "stream_id": sid, "group_id": gid,
            "criteria": {"and": [{"field": "snr", "op": ">", "value": 5},
                                 {"detections": {"op": ">=", "value": 3}}]}}).json()["data"]["id"]

        payloads = lsst_visit(args.alerts, args.alert_kb, args.history)
        size_kb = sum(map(len, payloads)) / len(payloads) / 1024
        wall, produce, lat = run_pipeline(replace(cfg, database=replace(cfg.database, url=Secret(url))), engine,
                                          kafka.bootstrap_servers, "lsst-visit", payloads, args.processes, fid, tmp)
        with engine.connect() as conn:
            import sqlalchemy as sa

            ncand = conn.execute(sa.text("SELECT count(*) FROM candidates WHERE filter_id = :f"), {"f": fid}).scalar()
            nphot = conn.execute(sa.text("SELECT count(*) FROM photometry")).scalar()
        assert ncand == args.alerts, f"only {ncand} of {args.alerts} alerts committed"
        rate = args.alerts / wall

        base_payloads = lsst_visit(args.baseline_alerts, args.alert_kb, args.history, seed=2)
        bwall = run_baseline(base_url, token, base_payloads, fid2, gid)
        brate = args.baseline_alerts / bwall

        hist = "the sample's" if args.history is None else args.history
        print(f"visit: {args.alerts} LSST alerts, {size_kb:.1f} KB each, {hist} previous detections, "
              f"{nphot} photometry rows, 2 filters, {args.processes} consumer(s)")
        print(f"pipeline  (Kafka -> committed rows): {wall:.2f} s for the visit "
              f"(produce {produce:.2f} s) = {rate:.0f} alerts/s")
        print(f"latency produce -> commit: p50 {pct(lat, 50) / 1000:.2f} s, p99 {pct(lat, 99) / 1000:.2f} s")
        print(f"baseline  (POST /api/candidates + /api/photometry, one by one): {args.baseline_alerts} alerts "
              f"in {bwall:.2f} s = {brate:.0f} alerts/s")
        print(f"ratio pipeline/baseline: {rate / brate:.1f}x")
        print(f"target: visit < 5 s -> {'MET' if wall < 5 else 'NOT MET'}; "
              f"p99 < 5 s -> {'MET' if pct(lat, 99) < 5000 else 'NOT MET'}")
        engine.dispose()
        return 0
    finally:
        kafka.stop()
        pg.stop()


if __name__ == "__main__":
    sys.exit(main())
