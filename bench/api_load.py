"""API load benchmark: concurrent clients mixing reads and writes, with and without a bulk upload running.

In one run, on a real PostgreSQL (embedded, temporary), three API servers share one database: the two
designs under test, "pool" (one process, handlers' work on a pool of ``--threads`` threads,
``server.handler_threads``) and "processes" (``--processes`` such processes on one port, ``server.processes``,
as SkyPortal deploys several Tornado processes), and the named baseline "handlers on the IOLoop"
(``handler_threads=0``, the first design). Setup goes through the API
(a stream, a group reading it, a filter, 200 candidates saved as sources with 20 photometry points each).
Then, for each server in turn:

1. no bulk: ``--clients`` clients (one process of their own, asyncio) send requests back to back for
   ``--seconds`` (after a 1 s warm-up): GET /api/sources?numPerPage=10, /api/sources/{id},
   /api/candidates, /api/sysinfo, /api/groups (80 %) and POST /api/photometry (3 points),
   POST /api/sources, PUT /api/groups/{id} (20 %); req/s, p50, p99 and every non-2xx answer;
2. bulk: the same load while one more client POSTs a single /api/photometry of ``--bulk-points`` points,
   until it is answered or for at most ``--seconds`` (then the upload is waited for, without load); its
   duration, the clients' p50/p99 during it and the delay added (their p99 during bulk - p99 without).

In both phases a probe GETs /api/sysinfo every 50 ms; "bulk delay" = its max latency during the bulk
upload - its max without (the issue: "a bulk upload never delaying others by more than 100 ms").
Targets (for the designs under test): p99 < 250 ms in both phases, bulk delay < 100 ms. Client CPU is printed:
the load generator shares the machine with the server and PostgreSQL.

    .venv/bin/python bench/api_load.py --clients 50 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BANDS = ["ztfg", "ztfr", "ztfi"]
MIX = {  # request kind -> weight (%)
    "GET /api/sources": 20, "GET /api/sources/{id}": 20, "GET /api/candidates": 15, "GET /api/sysinfo": 10,
    "GET /api/groups": 15, "POST /api/photometry": 12, "POST /api/sources": 4, "PUT /api/groups/{id}": 4,
}


def photometry(obj_id: str, n: int, group_id: int, rng: np.random.Generator) -> dict:
    return {"obj_id": obj_id, "mjd": (60000 + rng.uniform(0, 1000, n)).tolist(),
            "filter": rng.choice(BANDS, n).tolist(), "flux": rng.normal(100, 10, n).tolist(),
            "fluxerr": rng.uniform(1, 5, n).tolist(), "zp": 23.9, "origin": "api-load",
            "instrument_name": "ZTF", "group_ids": [group_id]}


def request(kind: str, k: int, tag: str, setup: dict, rng: np.random.Generator) -> tuple[str, str, dict | None]:
    """(method, path, body) of the k-th request of a kind; ``tag`` keeps new names unique across phases."""
    method, path = kind.split(" ")
    obj = setup["objs"][rng.integers(len(setup["objs"]))]
    if kind == "GET /api/sources":
        return method, "/api/sources?numPerPage=10", None
    if kind == "GET /api/sources/{id}":
        return method, f"/api/sources/{obj}", None
    if kind == "POST /api/photometry":
        return method, path, photometry(obj, 3, setup["group"], rng)
    if kind == "POST /api/sources":
        return method, path, {"id": f"load-{tag}-{k}", "ra": float(rng.uniform(0, 360)),
                              "dec": float(rng.uniform(-30, 60)), "group_ids": [setup["group"]]}
    if kind == "PUT /api/groups/{id}":
        return method, f"/api/groups/{setup['rename']}", {"name": f"api-load-{tag}-{k}"}
    return method, path, None


async def _phase(base: str, token: str, setup: dict, tag: str, clients: int, seconds: float,
                 bulk: bytes | None, mix: dict[str, int]) -> dict:
    """Clients (and the probe) for ``seconds`` after a 1 s warm-up, or while ``bulk`` is being uploaded
    (at most ``seconds``; then the upload is waited for). Latencies: requests started in the window;
    req/s: requests answered in it."""
    from tornado.httpclient import AsyncHTTPClient

    http = AsyncHTTPClient(force_instance=True, max_clients=clients + 2)
    headers = {"Authorization": f"token {token}", "Content-Type": "application/json"}
    rng, counter = np.random.default_rng(), iter(range(10**9))
    kinds, weights = list(mix), np.array(list(mix.values())) / sum(mix.values())
    records, probe, errors, done = [], [], {}, asyncio.Event()
    t0, cpu0 = time.perf_counter(), time.process_time()
    start_at = t0 if bulk else t0 + 1.0

    async def call(kind, method, path, body, out=None):
        start = time.perf_counter()
        try:
            r = await http.fetch(base + path, method=method, headers=headers, raise_error=False,
                                 body=body if body is None or isinstance(body, bytes) else json.dumps(body),
                                 request_timeout=1800, connect_timeout=1800)
            code, message = r.code, (r.body or b"").decode(errors="replace") or str(r.error)
        except OSError as exc:  # connection refused or reset: counted as an error, not raised
            code, message = 599, repr(exc)
        end = time.perf_counter()
        if not 200 <= code < 300:
            errors.setdefault(f"{kind} -> {code}", [0, message[:300]])[0] += 1
        if out is not None and start >= start_at:
            out.append((kind, end, (end - start) * 1000, code))
        return end - start, code

    async def client():
        while not done.is_set():
            kind = kinds[rng.choice(len(kinds), p=weights)]
            await call(kind, *request(kind, next(counter), tag, setup, rng), out=records)

    async def sampler():
        while not done.is_set():
            tick = time.perf_counter()
            await call("probe GET /api/sysinfo", "GET", "/api/sysinfo", None, out=probe)
            await asyncio.sleep(max(0.0, tick + 0.05 - time.perf_counter()))

    tasks = [asyncio.create_task(c()) for c in [client] * clients + [sampler]]
    if bulk:
        upload = asyncio.create_task(call("bulk POST /api/photometry", "POST", "/api/photometry", bulk))
        await asyncio.wait([upload], timeout=seconds)
    else:
        await asyncio.sleep(start_at + seconds - t0)
    end_at, cpu = time.perf_counter(), time.process_time() - cpu0
    done.set()
    await asyncio.gather(*tasks)
    http.close()
    return {"records": records, "probe": [p[2] for p in probe], "window": end_at - start_at,
            "rate": sum(r[1] <= end_at for r in records) / (end_at - start_at), "errors": errors,
            "client_cpu": cpu / (end_at - t0), "bulk": await upload if bulk else None}


def run_phase(*args) -> dict:
    """Entry point of the client process."""
    return asyncio.run(_phase(*args))


def pct(values, q) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def summary(res: dict) -> dict:
    ms = [r[2] for r in res["records"]]
    return {**res, "n": len(ms), "rps": res["rate"], "p50": pct(ms, 50), "p99": pct(ms, 99),
            "n_errors": sum(count for count, _ in res["errors"].values()),
            "probe_p99": pct(res["probe"], 99), "probe_max": max(res["probe"], default=float("nan"))}


def setup_poster(base: str, token: str):
    """``post(path, body) -> data`` with ``token``, for a benchmark's setup: anything but a 2xx stops it."""
    import requests

    s = requests.Session()
    s.headers["Authorization"] = f"token {token}"

    def post(path, body):
        r = s.post(base + path, json=body)
        assert r.ok, f"setup: POST {path} -> {r.status_code} {r.text[:300]}"
        return r.json()["data"]

    return post


def make_setup(base: str, token: str, n_objs: int = 200) -> dict:
    """Stream, group reading it, filter, a group to rename, objects (candidate + source + photometry)."""
    import datetime

    post = setup_poster(base, token)
    sid = post("/api/streams", {"name": "api-load"})["id"]
    gid = post("/api/groups", {"name": "api-load"})["id"]
    post(f"/api/groups/{gid}/streams", {"stream_id": sid})
    fid = post("/api/filters", {"name": "api-load", "stream_id": sid, "group_id": gid})["id"]
    rename = post("/api/groups", {"name": "api-load-rename"})["id"]
    rng, now = np.random.default_rng(1), datetime.datetime.now(datetime.timezone.utc).isoformat()
    objs = [f"ZTFload{i:04d}" for i in range(n_objs)]
    for i, obj in enumerate(objs):
        post("/api/candidates", {"id": obj, "ra": float(rng.uniform(0, 360)), "dec": float(rng.uniform(-30, 60)),
                                 "filter_ids": [fid], "passed_at": now, "passing_alert_id": i})
        post("/api/sources", {"id": obj, "group_ids": [gid]})
        post("/api/photometry", photometry(obj, 20, gid, rng))
    for mode in ("pool", "processes", "ioloop"):  # an object of its own for each bulk upload
        post("/api/sources", {"id": f"bulk-{mode}", "ra": 10.0, "dec": 20.0, "group_ids": [gid]})
    return {"objs": objs, "group": gid, "rename": rename}


@contextlib.contextmanager
def embedded_database(**server):
    """A benchmark's own database: config.yaml's defaults (the environment's skybroker settings ignored;
    ``server`` overrides server settings), an embedded PostgreSQL at the current schema and the first admin;
    yields (config, session factory, admin token) and removes it all afterwards."""
    import logging
    import shutil
    import tempfile
    from dataclasses import replace

    from broker.runtime import db
    from broker.runtime.cli import ensure_admin
    from broker.runtime.config import load_config

    logging.basicConfig(level=logging.WARNING)
    cfg = load_config(env={k: v for k, v in os.environ.items() if not k.startswith("SKYBROKER_")
                           and k not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")})
    tmp = Path(tempfile.mkdtemp(prefix="skybroker-bench-"))
    pg = db.EmbeddedPostgres(tmp / "pgdata")
    try:
        engine = db.make_engine(pg.start(), cfg)
        db.upgrade(engine, cfg.admin.sitewide_group)
        session_factory = db.make_session_factory(engine)
        cfg = replace(cfg, paths=replace(cfg.paths, data_dir=tmp), server=replace(cfg.server, **server))
        yield cfg, session_factory, ensure_admin(session_factory, cfg)
    finally:
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def serve(cfg, session_factory) -> str:
    """Start an API server on a thread with its own event loop; return its base URL."""
    import threading

    import tornado.ioloop

    from broker.runtime.app import freeze_heap, make_app
    from broker.runtime.kafka import free_port, wait_for_port

    port = free_port()

    def run():
        asyncio.set_event_loop(asyncio.new_event_loop())
        app = make_app(cfg, session_factory)
        freeze_heap()  # as listen() does for the real server
        app.listen(port, address="127.0.0.1")
        tornado.ioloop.IOLoop.current().start()

    threading.Thread(target=run, daemon=True).start()
    wait_for_port(port)
    return f"http://127.0.0.1:{port}"


def serve_processes(cfg, n: int):
    """``n`` API server processes sharing one port (``server.processes``, as ``skybroker run`` starts
    them); returns (base URL, supervisor)."""
    from dataclasses import replace

    from broker.runtime.app import serve_process
    from broker.runtime.kafka import free_port, wait_for_port
    from broker.runtime.supervisor import ProcessSupervisor

    port = free_port()
    cfg = replace(cfg, server=replace(cfg.server, host="127.0.0.1", port=port, processes=n))
    sup = ProcessSupervisor(serve_process, (cfg,), n, label="api").start()
    wait_for_port(port)
    time.sleep(2.0)  # every process listening, not just the first
    return f"http://127.0.0.1:{port}", sup


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=50, help="concurrent clients")
    ap.add_argument("--seconds", type=float, default=10, help="duration of each phase (with bulk: at most)")
    ap.add_argument("--bulk-points", type=int, default=50000, help="points in the bulk photometry upload")
    ap.add_argument("--threads", type=int, default=4, help="server.handler_threads of the servers under test")
    ap.add_argument("--processes", type=int, default=2, help="server.processes of the multi-process server")
    ap.add_argument("--floor", action="store_true",
                    help="every client sends GET /api/sysinfo only (one token look-up): what this machine "
                         "can do at best with --clients clients, to read the mix's numbers against")
    ap.add_argument("--by-kind", action="store_true", help="p50/p99 of each request kind too")
    ap.add_argument("--modes", default="pool,processes,ioloop",
                    help="servers to load, comma-separated (the ratios need ioloop, the baseline)")
    args = ap.parse_args()

    import logging
    import multiprocessing
    import shutil
    import tempfile
    from concurrent.futures import ProcessPoolExecutor
    from dataclasses import replace

    from broker.runtime import db
    from broker.runtime.cli import ensure_admin
    from broker.runtime.config import Secret, load_config

    logging.basicConfig(level=logging.WARNING)
    cfg = load_config(env={k: v for k, v in os.environ.items() if not k.startswith("SKYBROKER_")
                           and k not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")})
    tmp = Path(tempfile.mkdtemp(prefix="skybroker-bench-"))
    pg = db.EmbeddedPostgres(tmp / "pgdata")
    clients = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    children = None
    try:
        engine = db.make_engine(pg.start(), cfg)
        db.upgrade(engine, cfg.admin.sitewide_group)
        session_factory = db.make_session_factory(engine)
        cfg = replace(cfg, paths=replace(cfg.paths, data_dir=tmp))
        token = ensure_admin(session_factory, cfg)
        wanted = args.modes.split(",")
        modes = {m: n for m, n in {"pool": args.threads, "processes": args.threads, "ioloop": 0}.items()
                 if m in wanted}
        urls = {m: serve(replace(cfg, server=replace(cfg.server, handler_threads=modes[m])), session_factory)
                for m in ("pool", "ioloop") if m in modes}
        url = engine.url.render_as_string(hide_password=False)
        if "processes" in modes:
            urls["processes"], children = serve_processes(
                replace(cfg, server=replace(cfg.server, handler_threads=args.threads),
                        database=replace(cfg.database, url=Secret(url)),
                        logging=replace(cfg.logging, level="warning")),  # as the in-process servers log
                args.processes)
        setup = make_setup(next(iter(urls.values())), token)
        results = {}
        for mode, n in modes.items():
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")  # fresh statistics, no autovacuum mid-phase
            bulk = json.dumps(photometry(f"bulk-{mode}", args.bulk_points, setup["group"],
                                         np.random.default_rng(2))).encode()
            for phase, body in (("no bulk", None), ("bulk", bulk)):
                tag = f"{mode}-{'bulk' if body else 'steady'}"  # keeps names written by the load unique
                s = results[mode, phase] = summary(clients.submit(
                    run_phase, urls[mode], token, setup, tag, args.clients, args.seconds, body,
                    {"GET /api/sysinfo": 1} if args.floor else MIX).result())
                label = (f"{args.processes} x {n} threads" if mode == "processes" else f"{n} threads" if n
                         else "IOLoop, baseline")
                print(f"{mode:9} ({label:16}) {phase:7}: {s['n']:5d} requests in {s['window']:4.1f} s, "
                      f"{s['rps']:6.1f} req/s, p50 {s['p50']:7.1f} ms, p99 {s['p99']:7.1f} ms, "
                      f"errors {s['n_errors']}; sysinfo probe p99 {s['probe_p99']:.1f} ms, max "
                      f"{s['probe_max']:.1f} ms; client process CPU {100 * s['client_cpu']:.0f} %", flush=True)
                if args.by_kind:
                    for kind in MIX:
                        ms = [r[2] for r in s["records"] if r[0] == kind]
                        print(f"    {kind:24} n {len(ms):5d}  p50 {pct(ms, 50):7.1f} ms  p99 {pct(ms, 99):7.1f} ms")
                for what, (count, message) in sorted(s["errors"].items()):
                    print(f"    ERROR {count} x {what}: {message}")
            b, nb = results[mode, "bulk"], results[mode, "no bulk"]
            print(f"{mode:9} bulk upload: {args.bulk_points} points in {b['bulk'][0]:.1f} s (HTTP {b['bulk'][1]}; "
                  f"under load for the first {b['window']:.1f} s); delay added to the clients' p99 "
                  f"{b['p99'] - nb['p99']:+.1f} ms; bulk delay (probe max during - without) "
                  f"{b['probe_max'] - nb['probe_max']:+.1f} ms", flush=True)
        for mode in ("pool", "processes") if "ioloop" in modes else ():
            if mode not in modes:
                continue
            for phase in ("no bulk", "bulk"):
                p, io = results[mode, phase], results["ioloop", phase]
                print(f"ratio {mode}/IOLoop ({phase}): req/s {p['rps'] / io['rps']:.2f}x, p50 {p['p50'] / io['p50']:.2f}x, "
                      f"p99 {p['p99'] / io['p99']:.2f}x, probe max {p['probe_max'] / io['probe_max']:.2f}x")
        for mode in [m for m in ("pool", "processes") if m in modes]:
            b, nb = results[mode, "bulk"], results[mode, "no bulk"]
            p99 = max(b["p99"], nb["p99"])
            print(f"target p99 < 250 ms ({mode}, worse of both phases: {p99:.1f} ms): "
                  f"{'MET' if p99 < 250 else 'NOT MET'}")
            delay = b["probe_max"] - nb["probe_max"]
            print(f"bulk delay < 100 ms ({mode}: {delay:+.1f} ms): {'MET' if delay < 100 else 'NOT MET'}")
        errors = sum(s["n_errors"] for s in results.values())
        if errors:
            print(f"WARNING: {errors} non-2xx answers (see the ERROR lines)")
        engine.dispose()
        return 1 if errors else 0
    finally:
        if children is not None:
            children.stop()
        clients.shutdown()
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
