"""Ingestion benchmark: realistic alerts, Kafka → committed rows, against SkyPortal's one-by-one API path and
against what this machine can consume and decode at all.

In one run, on a real PostgreSQL (embedded, temporary) and a real Kafka broker (local KRaft), for each survey
(``--survey``: ztf, lsst or both):

- the alerts are realistic by default: ~``--alert-kb`` (80) KB with their cutouts, ``--history`` (30)
  previous detections (ZTF ``prv_candidates``; LSST ``prvDiaSources``, and as many ``prvDiaForcedSources``),
  derived from the real ZTF alert of ../shared/data and the lsst-alert-packet sample (new ids and positions:
  ``skybroker replay --derive``'s patching);
1. pipeline: ``--alerts`` (10,000) are published to a 4-partition topic while ``--processes`` (2) ingest
   processes of one consumer group run; wall time from the first produce to the last commit (alerts/s, MB/s),
   each alert's latency from produce (Kafka CreateTime) to database commit (p50/p99), each ingest process's
   peak resident memory (VmHWM);
2. ceiling: as many processes, in a group of their own, only consume and decode the same messages (no
   database): the most this machine gives with Kafka and the decoder alone (alerts/s, MB/s);
3. baseline: ``--baseline-alerts`` (300) alerts posted one by one through POST /api/candidates + POST
   /api/photometry (how Kowalski feeds SkyPortal), alerts/s;

and prints the ratios and the issue's targets (≥ 2,000 alerts/s committed with two processes; p99 < 5 s).

    .venv/bin/python bench/ingest.py                       # both surveys, 10,000 alerts each
    .venv/bin/python bench/ingest.py --survey ztf --alert-kb 0 --history 14   # the sample as it is
"""

from __future__ import annotations

import argparse
import copy
import multiprocessing
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
from broker.ingest.decoding import decode  # noqa: E402
from broker.runtime.config import Secret, load_config  # noqa: E402
from broker.runtime.kafka import LocalKafka, free_port, wait_for_port  # noqa: E402
from broker.ingest.pipeline import mjd_to_datetime  # noqa: E402
from broker.ingest.replay import packet_messages, publish, read_packets  # noqa: E402

ZTF_SAMPLE = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "ztf" / "541234765015015012.avro"
FORMATS = {"ztf": "ztf_avro", "lsst": "lsst_avro"}


def fits_cutout(nbytes: int, rng: random.Random, gz: bool) -> bytes:
    """A FITS image of noise (float32, square) of about ``nbytes`` bytes; gzipped (as ZTF's) or not (as
    Rubin's). Noise compresses little, as real cutouts."""
    import gzip
    import io

    import numpy as np
    from astropy.io import fits

    def make(target: float) -> bytes:
        side = max(int(((target - 2880) / 4) ** 0.5), 1)
        data = np.random.default_rng(rng.randrange(2**32)).normal(100, 10, (side, side)).astype(np.float32)
        buf = io.BytesIO()
        fits.PrimaryHDU(data).writeto(buf)
        return gzip.compress(buf.getvalue(), compresslevel=6) if gz else buf.getvalue()

    out = make(nbytes)
    return make(nbytes * nbytes / len(out)) if gz else out  # (again, grown by what gzip took off)


def _pad_cutouts(packet: dict, schema, fmt: str, keys, put, alert_kb: int, rng: random.Random) -> None:
    """Cutouts (FITS images of noise) so that the encoded alert is about ``alert_kb`` KB."""
    from broker.ingest.replay import encode

    if not alert_kb:
        return
    for k in keys:
        put(packet, k, b"")
    rest = len(encode(packet, schema, fmt))
    each = max(alert_kb * 1024 - rest, 0) // len(keys)
    for k in keys:
        put(packet, k, fits_cutout(each, rng, gz=fmt == "ztf_avro"))


def ztf_packet(history: int, alert_kb: int, rng: random.Random) -> tuple[dict, dict]:
    """The real ZTF alert of ../shared/data with ``history`` previous points (its own, then copies a day
    apart further back) and cutouts making it ``alert_kb`` KB (0: its own cutouts)."""
    (packet, schema), = read_packets(ZTF_SAMPLE, "ztf_avro")
    p = copy.deepcopy(packet)
    prv = list(p.get("prv_candidates") or [])
    own = list(prv)
    while len(prv) < history:
        src = dict(own[len(prv) % len(own)])
        src["jd"] = min(x["jd"] for x in prv) - 1.0
        if src.get("candid") is not None:
            src["candid"] = 10**17 + len(prv)
        prv.append(src)
    p["prv_candidates"] = prv[:history]

    def put(pk, k, blob):
        pk[k] = {**pk[k], "stampData": blob}

    _pad_cutouts(p, schema, "ztf_avro", ("cutoutScience", "cutoutTemplate", "cutoutDifference"), put, alert_kb, rng)
    return p, schema


def lsst_packet(history: int, alert_kb: int, rng: random.Random) -> tuple[dict, int]:
    """The lsst-alert-packet sample with ``history`` prvDiaSources (3 days apart, cycling the bands) and as
    many prvDiaForcedSources, and cutouts making ~``alert_kb`` KB."""
    from lsst.alert.packet import get_schema_root

    (packet, sid), = read_packets(f"{get_schema_root()}/11/1/sample_data/fakeAlert.avro", "lsst_avro")
    p = copy.deepcopy(packet)
    src = p["diaSource"]
    proto = (p.get("prvDiaSources") or [src])[0]
    p["prvDiaSources"], p["prvDiaForcedSources"] = [], []
    for k in range(history):
        d = dict(proto)
        d["midpointMjdTai"] = src["midpointMjdTai"] - 3.0 * (k + 1)
        d["band"] = "ugrizy"[k % 6]
        p["prvDiaSources"].append(d)
        p["prvDiaForcedSources"].append({
            "diaForcedSourceId": 2 * 10**17 + k, "diaObjectId": src.get("diaObjectId") or 0, "ra": src["ra"],
            "dec": src["dec"], "visit": 1000 + k, "detector": 42, "psfFlux": float(rng.gauss(500, 50)),
            "psfFluxErr": 50.0, "midpointMjdTai": src["midpointMjdTai"] - 3.0 * (k + 1) - 1.5,
            "scienceFlux": float(rng.gauss(5000, 50)), "scienceFluxErr": 60.0, "band": "ugrizy"[(k + 3) % 6],
            "timeProcessedMjdTai": src["midpointMjdTai"], "timeWithdrawnMjdTai": None})
    _pad_cutouts(p, sid, "lsst_avro", ("cutoutScience", "cutoutTemplate", "cutoutDifference"),
                 lambda pk, k, blob: pk.__setitem__(k, blob), alert_kb, rng)
    return p, sid


def visit(survey: str, n: int, alert_kb: int, history: int, seed: int = 1) -> list[bytes]:
    """``n`` alerts of ``survey``, new ids and positions each."""
    rng = random.Random(seed)
    packet = (ztf_packet if survey == "ztf" else lsst_packet)(history, alert_kb, rng)
    return list(packet_messages([packet], FORMATS[survey], count=n, derive_new=True, seed=seed))


def record_latency(batch, result):
    """on_commit hook of the benchmark's ingest processes: append produce->commit latencies (ms)."""
    now_ms = time.time() * 1000
    with open(Path(os.environ["SKYBROKER_BENCH_DIR"]) / f"lat-{os.getpid()}.txt", "a") as fh:
        fh.write("".join(f"{now_ms - m.timestamp_ms:.1f}\n" for m in batch if m.timestamp_ms))


def peak_rss_mb(pid: int) -> float:
    """A process's peak resident memory (VmHWM), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_pipeline(cfg, engine, bootstrap, topic, payloads, processes, filter_id, workdir):
    """Ingest processes (one consumer group) run while the visit is published; returns (wall time first
    produce -> last commit, produce time, per-alert latencies in ms, each process's peak RSS in MB)."""
    import sqlalchemy as sa

    from broker.ingest.consumers import start_processes

    os.environ["SKYBROKER_BENCH_DIR"] = str(workdir)
    for f in Path(workdir).glob("lat-*.txt"):
        f.unlink()
    procs = start_processes(cfg, processes, on_commit=record_latency)

    def consumers():
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM ingest_status WHERE topics ? :t "
                                        "AND updated_at > now() at time zone 'utc' - interval '5 seconds'"),
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
            time.sleep(0.1)
    t1 = time.monotonic()
    peaks = [peak_rss_mb(p.pid) for p in procs.processes]
    procs.stop()
    latencies = [float(x) for f in Path(workdir).glob("lat-*.txt") for x in f.read_text().split()]
    return t1 - t0, t_published - t0, latencies, peaks


def _consume_and_decode(bootstrap: str, topic: str, fmt: str, n: int, group: str, done, out) -> None:
    """One ceiling process: consume ``topic`` in ``group`` and decode every alert until ``done`` (shared)
    reaches ``n``; puts (first message time, last message time, count) on ``out``."""
    from confluent_kafka import Consumer

    from broker.ingest.decoding import decode

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    c.subscribe([topic])
    first = last = None
    mine = 0
    try:
        while done.value < n:
            batch = c.consume(500, timeout=0.5)
            if batch and first is None:
                first = time.monotonic()
            for m in batch:
                if m.error() is None:
                    decode(m.value(), fmt)
                    mine += 1
            if batch:
                last = time.monotonic()
                with done.get_lock():
                    done.value += sum(1 for m in batch if m.error() is None)
    finally:
        c.close()
    out.put((first, last, mine))


def run_ceiling(bootstrap: str, topic: str, fmt: str, n: int, processes: int) -> tuple[float, list[int]]:
    """Consume and decode the topic's ``n`` alerts with ``processes`` processes: (seconds from the first
    message to the last, alerts per process)."""
    ctx = multiprocessing.get_context("spawn")
    done, out = ctx.Value("l", 0), ctx.Queue()
    group = f"ceiling-{random.randrange(10**9)}"
    procs = [ctx.Process(target=_consume_and_decode, args=(bootstrap, topic, fmt, n, group, done, out))
             for _ in range(processes)]
    for p in procs:
        p.start()
    got = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(30)
    starts = [g[0] for g in got if g[0] is not None]
    return max(g[1] for g in got if g[1] is not None) - min(starts), [g[2] for g in got]


def run_baseline(base_url, token, payloads, fmt, filter_id, group_id):
    """One alert at a time: POST /api/candidates, then POST /api/photometry with its points."""
    s = requests.Session()
    s.headers["Authorization"] = f"token {token}"
    t0 = time.monotonic()
    for raw in payloads:
        a = decode(raw, fmt)
        r = s.post(f"{base_url}/api/candidates", json={
            "id": a.object_id, "ra": a.ra, "dec": a.dec, "filter_ids": [filter_id],
            "passed_at": mjd_to_datetime(a.mjd).isoformat(),
            "passing_alert_id": a.alert_id})
        r.raise_for_status()
        pts = a.detections
        r = s.post(f"{base_url}/api/photometry", json={
            "obj_id": a.object_id, "mjd": [p.mjd for p in pts], "filter": [p.band for p in pts],
            "flux": [p.flux for p in pts], "fluxerr": [p.fluxerr for p in pts], "zp": 23.9,
            "origin": a.survey, "instrument_name": a.survey, "group_ids": [group_id]})
        r.raise_for_status()
    return time.monotonic() - t0


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q / 100 * len(values)))] if values else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--survey", choices=["ztf", "lsst", "both"], default="both")
    ap.add_argument("--alerts", type=int, default=10000, help="alerts in the visit (per survey)")
    ap.add_argument("--baseline-alerts", type=int, default=300, help="alerts posted one by one")
    ap.add_argument("--alert-kb", type=int, default=80, help="alert size with cutouts, KB (0: the sample's own)")
    ap.add_argument("--history", type=int, default=30, help="previous detections (and LSST forced sources)")
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

        # API server (for setup and the baseline)
        import asyncio

        import sqlalchemy as sa
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
        gid = requests.post(f"{base_url}/api/groups", headers=h, json={"name": "bench"}).json()["data"]["id"]
        failed = False
        for survey in (["ztf", "lsst"] if args.survey == "both" else [args.survey]):
            fmt, topic = FORMATS[survey], f"{survey}-visit"
            kadmin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])[topic].result(30)
            sid = requests.post(f"{base_url}/api/streams", headers=h, json={
                "name": survey, "altdata": {"topic": topic, "format": fmt}}).json()["data"]["id"]
            requests.post(f"{base_url}/api/groups/{gid}/streams", headers=h,
                          json={"stream_id": sid}).raise_for_status()
            fid = requests.post(f"{base_url}/api/filters", headers=h, json={
                "name": "all", "stream_id": sid, "group_id": gid}).json()["data"]["id"]
            requests.post(f"{base_url}/api/filters", headers=h, json={  # a second filter, with criteria
                "name": "bright", "stream_id": sid, "group_id": gid,
                "criteria": {"and": [{"field": "snr", "op": ">", "value": 5},
                                     {"detections": {"op": ">=", "value": 3}}]}}).raise_for_status()

            payloads = visit(survey, args.alerts, args.alert_kb, args.history)
            mb = sum(map(len, payloads)) / 1e6
            with engine.connect() as conn:
                n_phot0 = conn.execute(sa.text("SELECT count(*) FROM photometry")).scalar()
            wall, produce, lat, peaks = run_pipeline(
                replace(cfg, database=replace(cfg.database, url=Secret(url))), engine, kafka.bootstrap_servers,
                topic, payloads, args.processes, fid, tmp)
            with engine.connect() as conn:
                ncand = conn.execute(sa.text("SELECT count(*) FROM candidates WHERE filter_id = :f"),
                                     {"f": fid}).scalar()
                nphot = conn.execute(sa.text("SELECT count(*) FROM photometry")).scalar() - n_phot0
            if ncand != args.alerts:
                print(f"ERROR: only {ncand} of {args.alerts} {survey} alerts committed")
                failed = True
            rate = args.alerts / wall
            cwall, shares = run_ceiling(kafka.bootstrap_servers, topic, fmt, args.alerts, args.processes)
            crate = args.alerts / cwall

            bfid = requests.post(f"{base_url}/api/filters", headers=h, json={
                "name": "baseline", "stream_id": sid, "group_id": gid}).json()["data"]["id"]
            bwall = run_baseline(base_url, token, visit(survey, args.baseline_alerts, args.alert_kb, args.history,
                                                        seed=2), fmt, bfid, gid)
            brate = args.baseline_alerts / bwall

            print(f"\n{survey.upper()}: {args.alerts} alerts of {mb * 1e3 / args.alerts:.1f} KB, {args.history} previous "
                  f"detections{' and forced sources' if survey == 'lsst' else ''}; {nphot} photometry rows "
                  f"written; 2 filters; {args.processes} ingest process(es)")
            print(f"  pipeline (Kafka -> committed rows): {wall:.2f} s (produce {produce:.2f} s) = {rate:.0f} "
                  f"alerts/s, {mb / wall:.1f} MB/s")
            print(f"  latency produce -> commit: p50 {pct(lat, 50) / 1000:.2f} s, p99 {pct(lat, 99) / 1000:.2f} s")
            print(f"  peak memory per ingest process: {', '.join(f'{p:.0f} MB' for p in peaks)}")
            print(f"  ceiling (consume + decode only, {args.processes} process(es), shares {shares}): {crate:.0f} "
                  f"alerts/s, {mb / cwall:.1f} MB/s")
            print(f"  baseline (POST /api/candidates + /api/photometry, one by one): {args.baseline_alerts} alerts "
                  f"in {bwall:.2f} s = {brate:.0f} alerts/s")
            print(f"  ratio pipeline/baseline {rate / brate:.1f}x; pipeline/ceiling {rate / crate:.2f}")
            print(f"  target >= 2000 alerts/s committed: {'MET' if rate >= 2000 else 'NOT MET'}; "
                  f"p99 < 5 s: {'MET' if pct(lat, 99) < 5000 else 'NOT MET'}")
        engine.dispose()
        return 1 if failed else 0
    finally:
        kafka.stop()
        pg.stop()


if __name__ == "__main__":
    sys.exit(main())
