"""The web pages' load time (issue 14: a source page with 1,000 photometry points in < 300 ms).

A source with ``--points`` (1,000) points in two bands (a third of them non-detections), comments, a
classification and an LCO allocation (so the page builds its follow-up form) is set up through the API on
an embedded PostgreSQL. A client that signed in through the sign-in form then times, over ``--repeats``
warm requests each: the source page (HTML with the embedded Bokeh light curve, the photometry table, the
follow-up section and form), the photometry CSV, the candidates page and the allocations page. The named
baseline, measured in the same run: the API's own answer for the same source and points
(``GET /api/sources/{id}`` + ``GET /api/sources/{id}/photometry?format=both``), which the page adds
rendering to. It prints p50 / p95 in ms and the ratio of each page's p50 to the baseline's.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.api_load import embedded_database, serve, setup_poster  # noqa: E402


def pct(values, q) -> float:
    return float(np.percentile(values, q)) * 1000.0


def timed(session, url: str, repeats: int) -> list[float]:
    out = []
    session.get(url, timeout=60).raise_for_status()  # warm (templates compiled, pools filled)
    for _ in range(repeats):
        t0 = time.perf_counter()
        r = session.get(url, timeout=60)
        out.append(time.perf_counter() - t0)
        r.raise_for_status()
    return out


def setup(base: str, token: str, n_points: int) -> dict:
    post = setup_poster(base, token)
    gid = post("/api/groups", {"name": "pages-bench"})["id"]
    sid = post("/api/streams", {"name": "pages-bench"})["id"]
    post(f"/api/groups/{gid}/streams", {"stream_id": sid})
    fid = post("/api/filters", {"name": "pages", "stream_id": sid, "group_id": gid})["id"]
    rng = np.random.default_rng(14)
    now = "2031-01-01T00:00:00"
    for i in range(25):  # a page of candidates
        post("/api/candidates", {"id": f"ZTFpage{i:03d}", "ra": float(rng.uniform(0, 360)),
                                 "dec": float(rng.uniform(-30, 60)), "filter_ids": [fid], "passed_at": now})
    obj = "ZTFpage000"
    post("/api/sources", {"id": obj, "group_ids": [gid]})
    inst = post("/api/instrument", {"name": "ZTF-bench", "type": "imager", "filters": ["ztfg", "ztfr"], "telescope_id": post(
        "/api/telescope", {"name": "P48 bench", "nickname": "P48b", "diameter": 1.2})["id"]})["id"]
    flux = rng.lognormal(4, 0.6, n_points)
    fluxerr = np.full(n_points, 5.0)
    flux[rng.random(n_points) < 1 / 3] = 3.0  # non-detections (S/N < 5)
    post("/api/photometry", {"obj_id": obj, "instrument_id": inst, "group_ids": [gid], "magsys": "ab", "zp": 23.9,
                             "mjd": list(60000 + np.sort(rng.uniform(0, 400, n_points))),
                             "filter": ["ztfg" if i % 2 else "ztfr" for i in range(n_points)],
                             "flux": list(flux), "fluxerr": list(fluxerr)})
    for i in range(5):
        post(f"/api/sources/{obj}/comments", {"text": f"comment {i}"})
    tel = post("/api/telescope", {"name": "LCO 1m bench", "nickname": "1m0", "diameter": 1.0})["id"]
    lco = post("/api/instrument", {"name": "1M0-SCICAM-SINISTRO", "type": "imager", "telescope_id": tel,
                                   "api_classname": "LCO"})["id"]
    post("/api/allocation", {"group_id": gid, "instrument_id": lco, "pi": "bench", "hours_allocated": 10,
                             "altdata": {"API_TOKEN": "x"}})
    return {"obj": obj}


def sign_in(base: str, token: str):
    import requests

    s = requests.Session()
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', s.get(base + "/login", timeout=30).text).group(1)
    r = s.post(base + "/login", data={"token": token, "_xsrf": xsrf}, allow_redirects=False, timeout=30)
    assert r.status_code == 302, r.text[:300]
    return s


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=40)
    args = ap.parse_args()

    import requests

    # plain http on loopback with requests (which, unlike browsers, sends no Secure cookie over http)
    with embedded_database(secure_cookies=False) as (cfg, session_factory, token):
        base = serve(cfg, session_factory)
        s = setup(base, token, args.points)
        obj = s["obj"]
        api = requests.Session()
        api.headers["Authorization"] = f"token {token}"
        page = sign_in(base, token)
        html = page.get(f"{base}/source/{obj}", timeout=60).text
        assert f'data-points="{args.points}"' in html, "the page does not hold every point"
        print(f"source page: {len(html) / 1024:.0f} KiB of HTML for {args.points} points", flush=True)

        def baseline():
            t0 = time.perf_counter()
            api.get(f"{base}/api/sources/{obj}", timeout=60).raise_for_status()
            api.get(f"{base}/api/sources/{obj}/photometry", params={"format": "both"}, timeout=60).raise_for_status()
            return time.perf_counter() - t0

        baseline()
        base_times = [baseline() for _ in range(args.repeats)]
        rows = [("baseline: API source + photometry (JSON)", base_times)]
        for label, url in ((f"source page ({args.points} points)", f"/source/{obj}"),
                           ("photometry CSV", f"/source/{obj}/photometry.csv"),
                           ("candidates page (25 rows)", "/candidates"),
                           ("allocations page", "/allocations")):
            rows.append((label, timed(page, base + url, args.repeats)))
        b50 = statistics.median(base_times)
        print(f"{'':44s} {'p50 ms':>8s} {'p95 ms':>8s} {'x baseline':>10s}")
        for label, times in rows:
            print(f"{label:44s} {pct(times, 50):8.1f} {pct(times, 95):8.1f} {statistics.median(times) / b50:10.2f}"
                  f"   slowest: {', '.join(f'{t * 1000:.0f}' for t in sorted(times)[-4:])}")
        src = dict(rows)[f"source page ({args.points} points)"]
        verdict = "MET" if pct(src, 95) < 300 else "NOT MET"
        print(f"target: source page with {args.points} points < 300 ms -> p95 {pct(src, 95):.0f} ms: {verdict}")
        return 0


if __name__ == "__main__":
    sys.exit(main())
