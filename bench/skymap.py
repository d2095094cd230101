"""Sky-map kernel benchmark against ligo.skymap, in one run, on the real maps and a large flat map.

For each map: credible levels of every pixel (ours vs ``find_greedy_credible_levels``), and 10⁶ random
positions crossmatched (ours vs ``ligo.skymap.postprocess.crossmatch``); prints times, the speed ratio
and the largest relative difference of the answers.

    .venv/bin/python bench/skymap.py [--positions 1000000] [--nside 1024]
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import healpy as hp  # noqa: E402
import numpy as np  # noqa: E402

from broker.sky import kernels as K  # noqa: E402
from broker.sky.mapio import read_fits  # noqa: E402

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "gcn"


def timed(fn, repeat=3):
    best, out = math.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def rel_diff(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.max(np.abs(a[ok] - b[ok]) / np.maximum(np.abs(b[ok]), 1e-300))) if ok.any() else 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--positions", type=int, default=1_000_000)
    ap.add_argument("--nside", type=int, default=1024, help="NSIDE of the synthetic large flat map")
    ap.add_argument("--sql-objects", type=int, default=1_000_000,
                    help="objects for the SQL credible-region query (0: skip)")
    args = ap.parse_args()
    from astropy.coordinates import SkyCoord
    from astropy.table import Table
    from ligo.skymap.postprocess.crossmatch import crossmatch
    from ligo.skymap.postprocess.util import find_greedy_credible_levels

    notice = json.loads((DATA / "igwn_gwalert_preliminary.json").read_text())
    maps = {"LVK notice (multi-order)": read_fits(base64.b64decode(notice["event"]["skymap"])),
            "bayestar.fits.gz (flat, NSIDE 256)": read_fits((DATA / "bayestar.fits.gz").read_bytes())}
    # a large flat map: two Gaussian blobs at NSIDE --nside
    npix = hp.nside2npix(args.nside)
    ra, dec = hp.pix2ang(args.nside, np.arange(npix), nest=True, lonlat=True)
    prob = (np.exp(-0.5 * (K.angular_distance(ra, dec, 30, 10) / 5) ** 2)
            + 0.5 * np.exp(-0.5 * (K.angular_distance(ra, dec, 200, -40) / 10) ** 2))
    prob /= prob.sum()
    uniq, dens = K.flat_to_moc(prob)
    from broker.sky.mapio import SkyMap

    maps[f"synthetic (flat, NSIDE {args.nside})"] = SkyMap(uniq, dens)

    rng = np.random.default_rng(0)
    pra = rng.uniform(0, 360, args.positions)
    pdec = np.degrees(np.arcsin(rng.uniform(-1, 1, args.positions)))
    coords = SkyCoord(pra, pdec, unit="deg")
    print(f"{args.positions} random positions; best of 3 runs each")
    worst = 0.0
    for name, sm in maps.items():
        o, _ = K.uniq_to_order_ipix(sm.uniq)
        p = sm.probdensity * K.pixel_area_sr(o)
        t_ours, lv_ours = timed(lambda: K.greedy_credible_levels(p, ranking=sm.probdensity))
        t_theirs, lv_theirs = timed(lambda: find_greedy_credible_levels(p, ranking=sm.probdensity))
        d_lv = rel_diff(lv_ours, lv_theirs)
        table = Table({"UNIQ": sm.uniq, "PROBDENSITY": sm.probdensity})
        t_x, ours = timed(lambda: K.crossmatch(sm.uniq, sm.probdensity, pra, pdec), repeat=2)
        t_lx, theirs = timed(lambda: crossmatch(table, coords, contours=(0.5, 0.9)), repeat=2)
        d_x = max(rel_diff(ours["credible_level"], theirs.searched_prob),
                  rel_diff(ours["searched_area"], theirs.searched_area),
                  rel_diff(K.credible_region_area(sm.uniq, sm.probdensity, [0.5, 0.9]), theirs.contour_areas))
        worst = max(worst, d_lv, d_x)
        print(f"{name}: {len(sm.uniq)} pixels")
        print(f"  credible levels: ours {t_ours * 1e3:.1f} ms, ligo.skymap {t_theirs * 1e3:.1f} ms, "
              f"ratio {t_theirs / t_ours:.1f}x, max rel diff {d_lv:.1e}")
        print(f"  crossmatch:      ours {t_x * 1e3:.1f} ms, ligo.skymap {t_lx * 1e3:.1f} ms, "
              f"ratio {t_lx / t_x:.1f}x, max rel diff {d_x:.1e}")
    print(f"largest relative difference overall: {worst:.1e} (target 1e-9)")
    if args.sql_objects:
        sql_region(maps["LVK notice (multi-order)"], args.sql_objects)
    return 0


def sql_region(sm, n_objects: int) -> None:
    """The 90% region among N objects in PostgreSQL (tiles + window sum), against the kernel on the same rows."""
    import io
    import statistics
    import tempfile

    import sqlalchemy as sa

    import models
    from broker.runtime import db
    from broker.sky import gcn
    from broker.runtime.config import load_config
    from models.objects import healpix_index

    cfg = load_config(env={})
    pg = db.EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="skybroker-bench-")) / "pgdata")
    try:
        engine = db.make_engine(pg.start(), cfg)
        db.upgrade(engine, cfg.admin.sitewide_group)
        rng = np.random.default_rng(1)
        # half the objects near the map's probable area, half anywhere: a realistic mix
        o, ip = K.uniq_to_order_ipix(sm.uniq)
        levels = K.moc_credible_levels(sm.uniq, sm.probdensity)
        hot = rng.choice(np.flatnonzero(levels < 0.99), n_objects // 2)
        hra, hdec = hp.pix2ang(2 ** o[hot], ip[hot], nest=True, lonlat=True)
        ra = np.concatenate([hra + rng.normal(0, 0.2, hra.size), rng.uniform(0, 360, n_objects - hra.size)]) % 360
        dec = np.clip(np.concatenate([hdec + rng.normal(0, 0.2, hdec.size),
                                      np.degrees(np.arcsin(rng.uniform(-1, 1, n_objects - hdec.size)))]), -90, 90)
        hpx = healpix_index(ra, dec)
        buf = io.StringIO()
        for i in range(n_objects):
            buf.write(f"o{i},{float(ra[i])!r},{float(dec[i])!r},{int(hpx[i])},2026-01-01,2026-01-01\n")
        buf.seek(0)
        t = time.perf_counter()
        with engine.begin() as conn:
            with conn.connection.dbapi_connection.cursor() as cur:
                cur.copy_expert("COPY objs (id, ra, dec, healpix, created_at, modified) FROM STDIN WITH (FORMAT csv)",
                                buf)
        with engine.begin() as conn:
            conn.execute(sa.text("ANALYZE objs"))
        sf = db.make_session_factory(engine)
        with sf() as session, session.begin():
            event = models.GcnEvent(dateobs=__import__("datetime").datetime(2026, 6, 5, 11, 57, 26), aliases=[],
                                    properties={})
            session.add(event)
            session.flush()
            loc = gcn.add_localization(session, event, "bench", sm)
            loc_id = loc.id
        with engine.begin() as conn:
            conn.execute(sa.text("ANALYZE localizationtiles"))
        print(f"SQL: {n_objects} objects loaded in {time.perf_counter() - t:.1f} s")
        stmt = sa.select(sa.func.count()).select_from(gcn.region_obj_ids(loc_id, 0.9).subquery())
        times = []
        with engine.connect() as conn:
            for _ in range(5):
                t = time.perf_counter()
                n_sql = conn.execute(stmt).scalar()
                times.append(time.perf_counter() - t)
        t = time.perf_counter()
        n_kernel = int(np.sum(K.crossmatch(sm.uniq, sm.probdensity, ra, dec)["credible_level"] <= 0.9))
        t_kernel = time.perf_counter() - t
        print(f"SQL 90% region among {n_objects} objects: {n_sql} objects, p50 {statistics.median(times):.3f} s "
              f"(kernel on the same positions: {n_kernel} objects, {t_kernel:.3f} s) -> "
              f"{'equal' if n_sql == n_kernel else 'DIFFERENT'}; target < 1 s "
              f"{'MET' if statistics.median(times) < 1 else 'NOT MET'}")
    finally:
        pg.stop()


if __name__ == "__main__":
    sys.exit(main())
