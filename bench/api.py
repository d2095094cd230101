"""Read latency at scanner sizes: the SkyPortal reads scanners use, at 10⁶ candidates and 10⁷ photometry rows.

One embedded PostgreSQL holds two databases built the same way: "large" (``--objs``, default 10⁶ objects)
and the named baseline "small" (``--small-objs``, 10⁴). Each gets, by COPY (the API only for the stream,
groups, filters, taxonomy and GCN events):

- objects spread over the sky; each passes filter A once (passed_at spread over ``--nights`` nights), 30 % a
  second time, 20 % also filter B (A and B belong to group G1) and 10 % filter C (group G2): ~1.6 candidate
  rows per object;
- ``--points`` (10) alert photometry points per object (10⁷ rows at the default), visible through the stream;
- 1 % saved as sources to G1, 5 % classified "Ia" and 2 % "AGN" (visible to G1);
- ``--events`` (300) GCN events with a cone localization each, plus one LVK preliminary notice with its
  BAYESTAR map (../shared/data/gcn).

A scanner (a "Full user" in G1 and G2, not an admin: every read runs its access checks) then sends each
request ``--repeats`` times (after 3 warm-ups), one at a time, to a server running in this process; p50 and
p99 are printed for both databases and the ratio large/small ("reads that do not grow with the table" is
a ratio near 1). The issue's targets at 10⁶ candidates are printed with MET / NOT MET.

    .venv/bin/python bench/api.py                       # 10⁶ objects, 10⁷ points (about 10 minutes)
    .venv/bin/python bench/api.py --objs 100000         # quicker
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
NOW = datetime(2026, 11, 20, 12, 0, 0)  # the last night ends here (fixed: runs compare)
BANDS = np.array(["ztfg", "ztfr", "ztfi"])

FIRST_PAGE = object()  # (a queryID taken from the read's first page)
TARGETS = {  # request label -> p50 target (ms) at 10⁶ candidates (the issue's)
    "candidates, filter A, page 1": 50,
    "candidates, filter A, page 1000": 100,
    "source with photometry": 30,
    "gcn_event list": 100,
}


def copy(conn, table: str, columns: list[str], cols: list) -> None:
    """COPY ``cols`` (equal-length sequences, already text; None -> NULL) into ``table``."""
    buf = io.StringIO()
    for row in zip(*cols):
        buf.write("\t".join("\\N" if v is None else v for v in row))
        buf.write("\n")
    buf.seek(0)
    with conn.connection.dbapi_connection.cursor() as cur:
        cur.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buf)


def ts(t: np.ndarray) -> np.ndarray:
    """datetime64[us] -> PostgreSQL text."""
    return np.datetime_as_string(t, unit="us")


def build(url: str, cfg, n_objs: int, points: int, nights: int, n_events: int, seed: int, chunk: int = 200_000):
    """Create the schema, the scanner and the rows; return (session factory, admin token, scanner token, setup)."""
    import requests
    import sqlalchemy as sa

    from bench.api_load import serve, setup_poster
    from broker.access.users import create_token, create_user
    from broker.runtime import db
    from broker.runtime.cli import ensure_admin
    from models.objects import healpix_index

    engine = db.make_engine(url, cfg)
    db.upgrade(engine, cfg.admin.sitewide_group)
    sf = db.make_session_factory(engine)
    admin_token = ensure_admin(sf, cfg)
    with sf() as session, session.begin():
        scanner = create_user(session, username="scanner", sitewide_group_name=cfg.admin.sitewide_group,
                              roles=["Full user"], acls=[])
        scanner_id = scanner.id
        scanner_token = create_token(session, scanner, "bench", sorted(scanner.permissions), check_owner=True).id
    base = serve(cfg, sf)
    post = setup_poster(base, admin_token)

    stream = post("/api/streams", {"name": "bench-api"})["id"]
    post(f"/api/streams/{stream}/users", {"user_id": scanner_id})
    g1, g2 = (post("/api/groups", {"name": n})["id"] for n in ("bench-g1", "bench-g2"))
    for g in (g1, g2):
        post(f"/api/groups/{g}/streams", {"stream_id": stream})
        post(f"/api/groups/{g}/users", {"userID": scanner_id, "admin": False})
    fa, fb = (post("/api/filters", {"name": n, "stream_id": stream, "group_id": g1})["id"] for n in ("A", "B"))
    fc = post("/api/filters", {"name": "C", "stream_id": stream, "group_id": g2})["id"]
    tax = post("/api/taxonomy", {"name": "bench", "version": "1", "group_ids": [g1],
                                 "hierarchy": {"class": "Transient", "subclasses": [{"class": "Ia"},
                                                                                    {"class": "AGN"}]}})["taxonomy_id"]

    rng = np.random.default_rng(seed)
    t_end = np.datetime64(NOW, "us")
    span_us = np.int64(nights * 86400 * 1_000_000)
    with engine.connect() as conn:
        instrument = conn.execute(sa.text("SELECT id FROM instruments WHERE name = 'ZTF'")).scalar_one()
        admin_id = conn.execute(sa.text("SELECT id FROM users WHERE username = :u"),
                                {"u": cfg.admin.username}).scalar_one()
        conn.commit()
    t0 = time.perf_counter()
    sample = {}
    n_cand = n_phot = 0
    for start in range(0, n_objs, chunk):
        n = min(chunk, n_objs - start)
        idx = np.arange(start, start + n)
        ids = np.char.add("ZTFbench", np.char.zfill(idx.astype(str), 9))
        ra = rng.uniform(0, 360, n)
        dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
        hpx = healpix_index(ra, dec)
        created = ts(t_end - rng.integers(0, span_us, n).astype("timedelta64[us]"))
        with engine.connect() as conn:
            copy(conn, "objs", ["id", "ra", "dec", "healpix", "created_at", "modified"],
                 [ids, ra.astype(str), dec.astype(str), hpx.astype(str), created, created])
            # candidates: every object passes A; some twice, some B (group G1) or C (group G2)
            passed = t_end - rng.integers(0, span_us, n).astype("timedelta64[us]")
            cands = [(ids, fa, passed)]
            twice = rng.random(n) < 0.3
            cands.append((ids[twice], fa, passed[twice] + rng.integers(1, 3600_000_000, twice.sum())
                          .astype("timedelta64[us]")))
            for f, frac in ((fb, 0.2), (fc, 0.1)):
                m = rng.random(n) < frac
                cands.append((ids[m], f, passed[m]))
            for cid, f, when in cands:
                k = len(cid)
                w = ts(when)
                copy(conn, "candidates", ["obj_id", "filter_id", "passed_at", "passing_alert_id", "created_at",
                                          "modified"],
                     [cid, [str(f)] * k, w, (rng.integers(10**17, 2 * 10**17, k)).astype(str), w, w])
                n_cand += k
            # photometry: `points` alert points per object over the 30 nights before it passed
            pid = np.repeat(ids, points)
            mjd = (np.repeat((passed - np.datetime64("1858-11-17T00:00:00", "us")) / np.timedelta64(1, "D"), points)
                   - rng.uniform(0, 30, n * points))
            flux = rng.lognormal(4, 1, n * points)
            ferr = flux / rng.uniform(3, 50, n * points)
            when = np.repeat(created, points)
            copy(conn, "photometry",
                 ["obj_id", "instrument_id", "mjd", "flux", "fluxerr", "zp", "magsys", "filter", "origin",
                  "instrument_name", "stream_id", "created_at", "modified", "upload_id"],
                 [pid, [str(instrument)] * len(pid), mjd.astype(str), flux.astype(str), ferr.astype(str),
                  ["23.9"] * len(pid), ["ab"] * len(pid), BANDS[rng.integers(0, 3, len(pid))], ["bench"] * len(pid),
                  ["ZTF"] * len(pid), [str(stream)] * len(pid), when, when, np.char.add("alert-", pid)])
            n_phot += len(pid)
            # sources (1 %, group G1) and classifications (5 % Ia, 2 % AGN, visible to G1)
            saved = ids[rng.random(n) < 0.01]
            now = ts(np.full(len(saved), t_end))
            copy(conn, "sources", ["obj_id", "group_id", "saved_by_id", "saved_at", "active", "requested",
                                   "created_at", "modified"],
                 [saved, [str(g1)] * len(saved), [str(admin_id)] * len(saved), now, ["t"] * len(saved),
                  ["f"] * len(saved), now, now])
            for name, frac in (("Ia", 0.05), ("AGN", 0.02)):
                c = ids[rng.random(n) < frac]
                now = ts(np.full(len(c), t_end))
                ids_back = conn.execute(sa.text(
                    "INSERT INTO classifications (classification, taxonomy_id, probability, author_id, author_name, "
                    "obj_id, ml, created_at, modified) SELECT :c, :t, 1.0, :a, 'admin', o, false, now(), now() "
                    "FROM unnest(CAST(:ids AS text[])) AS o RETURNING id"),
                    {"c": name, "t": tax, "a": admin_id, "ids": c.tolist()}).scalars().all()
                conn.execute(sa.text("INSERT INTO classification_groups SELECT unnest(CAST(:ids AS int[])), :g"),
                             {"ids": ids_back, "g": g1})
            conn.commit()
        if start == 0:
            sample["obj"] = str(ids[0])
            sample["saved"] = str(saved[0])
        print(f"  loaded {start + n:,} objects, {n_cand:,} candidate rows, {n_phot:,} photometry rows "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    # GCN: cone events, and one LVK notice with its BAYESTAR map
    dt0 = NOW - timedelta(days=400)
    for i in range(n_events):
        dateobs = (dt0 + timedelta(hours=31 * i)).isoformat()
        post("/api/gcn_event", {"dateobs": dateobs, "aliases": [f"BENCH#{i}"]})
        post("/api/localization", {"dateobs": dateobs, "localization_name": "cone", "ra": float(rng.uniform(0, 360)),
                                   "dec": float(rng.uniform(-60, 60)), "error": 5.0})
    prelim = json.loads((DATA / "gcn" / "igwn_gwalert_preliminary.json").read_text())
    post("/api/gcn_event", {"json": prelim})
    lvk = requests.get(base + "/api/gcn_event", params={"partialdateobs": prelim["event"]["time"][:10]},
                       headers={"Authorization": f"token {admin_token}"}).json()["data"]
    sample["lvk"] = lvk["events"][0]["dateobs"]
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
    print(f"  built in {time.perf_counter() - t0:.0f} s", flush=True)
    return engine, base, scanner_token, {"n": n_objs, "fa": fa, "fb": fb, "fc": fc, "g1": g1, "g2": g2, **sample}


def requests_of(setup: dict) -> dict[str, tuple[str, dict]]:
    last_night = (NOW - timedelta(days=1)).isoformat()
    cand = {"filterIDs": str(setup["fa"]), "numPerPage": 100}
    return {
        "candidates, filter A, page 1": ("/api/candidates", cand),
        # (the small baseline has fewer pages: its last one)
        "candidates, filter A, page 1000": ("/api/candidates", {**cand, "pageNumber": min(1000, setup["n"] // 100)}),
        "candidates, filter A, sorted by ra": ("/api/candidates", {**cand, "sortBy": "ra", "sortOrder": "asc"}),
        "candidates, group G1 (2 filters)": ("/api/candidates", {"groupIDs": str(setup["g1"]), "numPerPage": 100}),
        # SkyPortal's paging: the next page with the queryID the first one answered (its total reused)
        "candidates, group G1, page 2 + queryID": ("/api/candidates", {"groupIDs": str(setup["g1"]), "numPerPage": 100,
                                                                     "pageNumber": 2, "queryID": FIRST_PAGE}),
        "candidates, all, last night": ("/api/candidates", {"numPerPage": 100, "startDate": last_night}),
        "candidates, A, not saved, no AGN": ("/api/candidates", {**cand, "savedStatus": "notSavedToAnyAccessible",
                                                                  "classificationsReject": "AGN"}),
        "candidates, A, classified Ia": ("/api/candidates", {**cand, "classifications": "Ia"}),
        "source with photometry": (f"/api/sources/{setup['saved']}", {"includePhotometry": "true"}),
        "sources, page 1": ("/api/sources", {"numPerPage": 100}),
        "sources in the 90% region": ("/api/sources", {"localizationDateobs": setup["lvk"],
                                                       "localizationCumprob": 0.9, "numPerPage": 100}),
        "candidates in the 90% region": ("/api/candidates", {"localizationDateobs": setup["lvk"],
                                                             "localizationCumprob": 0.9, "numPerPage": 100}),
        "gcn_event list": ("/api/gcn_event", {}),
        "gcn_event one": (f"/api/gcn_event/{setup['lvk']}", {}),
        "photometry of an object": (f"/api/sources/{setup['obj']}/photometry", {}),
    }


def measure(base: str, token: str, setup: dict, repeats: int, only: str | None) -> dict[str, tuple[float, float, int]]:
    import requests

    s = requests.Session()
    s.headers["Authorization"] = f"token {token}"
    out = {}
    for label, (path, params) in requests_of(setup).items():
        if only and only not in label:
            continue
        if params.get("queryID") == FIRST_PAGE:
            first = s.get(base + path, params={**params, "pageNumber": 1, "queryID": ""}).json()["data"]
            params = {**params, "queryID": first["queryID"]}
        ms = []
        for i in range(repeats + 3):
            t = time.perf_counter()
            r = s.get(base + path, params=params)
            dt = (time.perf_counter() - t) * 1000
            if not r.ok:
                raise SystemExit(f"{label}: HTTP {r.status_code} {r.text[:300]}")
            if i >= 3:
                ms.append(dt)
        data = r.json()["data"]
        n = data.get("totalMatches", len(data) if isinstance(data, list) else 1) if isinstance(data, dict) else len(data)
        out[label] = (float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), n)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--objs", type=int, default=1_000_000, help="objects in the large database")
    ap.add_argument("--small-objs", type=int, default=10_000, help="objects in the baseline database")
    ap.add_argument("--points", type=int, default=10, help="photometry points per object")
    ap.add_argument("--nights", type=int, default=30, help="candidates pass over this many nights")
    ap.add_argument("--events", type=int, default=300, help="GCN events with a cone localization")
    ap.add_argument("--repeats", type=int, default=30, help="timed requests per read")
    ap.add_argument("--only", help="only the reads whose label contains this")
    ap.add_argument("--keep", help="build into (or reuse) this data directory and keep it")
    args = ap.parse_args()

    import logging
    import shutil
    import tempfile
    from dataclasses import replace

    from sqlalchemy.engine import make_url

    from broker.runtime import db
    from broker.runtime.config import load_config

    logging.basicConfig(level=logging.WARNING)
    cfg = load_config(env={k: v for k, v in os.environ.items() if not k.startswith("SKYBROKER_")
                           and k not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")})
    cfg = replace(cfg, logging=replace(cfg.logging, level="warning"))
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="skybroker-bench-"))
    cfg = replace(cfg, paths=replace(cfg.paths, data_dir=tmp))
    pg = db.EmbeddedPostgres(tmp / "pgdata")
    try:
        url = pg.start()
        results = {}
        for name, n in (("small", args.small_objs), ("large", args.objs)):
            dbname = f"bench_{name}_{n}_{args.points}"
            db.ensure_database(url, dbname)
            u = make_url(url).set(database=dbname).render_as_string(hide_password=False)
            state = tmp / f"{dbname}.json"
            if state.exists():  # --keep: built by an earlier run
                from bench.api_load import serve

                engine = db.make_engine(u, cfg)
                db.upgrade(engine, cfg.admin.sitewide_group)  # built before a newer migration
                got = json.loads(state.read_text())
                base, token, setup = serve(cfg, db.make_session_factory(engine)), got["token"], got["setup"]
            else:
                print(f"building {name}: {n:,} objects, {args.points} points each", flush=True)
                engine, base, token, setup = build(u, cfg, n, args.points, args.nights, args.events, seed=1)
                state.write_text(json.dumps({"token": token, "setup": setup}))
            results[name] = measure(base, token, setup, args.repeats, args.only)
            engine.dispose()
        print(f"\n{'read':38} {'small p50':>9} {'p99':>7} {'large p50':>9} {'p99':>7} {'ratio':>6}  matches "
              f"(small / large)")
        for label, (p50, p99, n) in results["large"].items():
            s50, s99, sn = results["small"][label]
            print(f"{label:38} {s50:9.1f} {s99:7.1f} {p50:9.1f} {p99:7.1f} {p50 / s50:6.2f}  {sn} / {n}")
        print(f"\n(ms; ratio = large p50 / small p50, the baseline being the same reads at {args.small_objs:,} "
              f"objects; large = {args.objs:,} objects)")
        for label, target in TARGETS.items():
            if label in results["large"]:
                p50 = results["large"][label][0]
                print(f"target {label}: p50 < {target} ms ({p50:.1f} ms): {'MET' if p50 < target else 'NOT MET'}")
        return 0
    finally:
        pg.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
