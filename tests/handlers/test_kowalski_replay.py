"""Kowalski's SkyPortal calls, replayed call for call on a real ZTF alert (issue 9, "done when").

The calls, their bodies and the response fields read afterwards follow skyportal/kowalski
(``kowalski/alert_brokers/alert_broker.py`` and ``alert_broker_ztf.py``): start-up (instrument id, ZTF
stream ids, group name and filter name), then ``alert_sentinel_skyportal`` for a new object (candidate,
annotations, photometry PUT, thumbnails, source, autosave comment) and again for the same object once it
exists (candidate, annotation update, source groups, photometry PUT). Kowalski sends GET parameters as a
query string and every other body as JSON, exactly as its ``_api_skyportal`` does. Its pandas light-curve
code is reproduced here with plain Python; its thumbnails are PNGs made from the alert's cutouts with
matplotlib, as its ``make_thumbnail`` makes them.
"""

from __future__ import annotations

import base64
import datetime
import gzip
import io
import math
import uuid

import fastavro
import numpy as np
import pytest
import requests

from tests.conftest import SHARED

ALERT = SHARED / "data" / "ztf" / "541234765015015012.avro"
ZTF_STREAMS = ("ZTF Public", "ZTF Public+Partnership", "ZTF Public+Partnership+Caltech")


class Kowalski:
    """The SkyPortal side of a Kowalski ZTF alert worker."""

    def __init__(self, base_url: str, token: str):
        self.base = base_url
        self.session = requests.Session()
        self.headers = {"Authorization": f"token {token}"}
        self.calls: list[tuple[str, str, int]] = []

    def api(self, method: str, endpoint: str, data=None) -> requests.Response:
        kw = {"params": data} if method == "GET" else {"json": data}
        r = self.session.request(method, self.base + endpoint, headers=self.headers, timeout=30, **kw)
        self.calls.append((method, endpoint, r.status_code))
        return r

    def ok(self, r: requests.Response) -> dict:
        assert r.json()["status"] == "success", (r.request.method, r.url, r.status_code, r.text[:500])
        return r.json()

    # -- start-up (AlertWorker.__init__, ZTFAlertWorker.__init__, make_filter_templates) -------------
    def start(self, group_id: int, filter_id: int) -> None:
        r = self.api("GET", "/api/instrument", {"name": "ZTF"})
        data = self.ok(r)["data"]
        assert len(data) > 0
        self.instrument_id = data[0]["id"]
        self.instrument_name = data[0]["name"]

        streams = self.ok(self.api("GET", "/api/streams"))["data"]
        self.program_to_stream = {}
        for stream in streams:
            if stream.get("name") == "ZTF Public":
                self.program_to_stream[1] = stream["id"]
            if stream.get("name") == "ZTF Public+Partnership":
                self.program_to_stream[2] = stream["id"]
            if stream.get("name") == "ZTF Public+Partnership+Caltech":
                self.program_to_stream[0] = self.program_to_stream[3] = stream["id"]
        assert len(self.program_to_stream) == 4, self.program_to_stream

        group = self.ok(self.api("GET", f"/api/groups/{group_id}?includeGroupUsers=False"))["data"]
        self.group_name = group["nickname"] if group["nickname"] is not None else group["name"]
        self.filter_name = [f["name"] for f in group["filters"] if f["id"] == filter_id][0]

    # -- make_photometry + ZTFAlertWorker.alert_put_photometry ---------------------------------------
    def photometry_bodies(self, alert: dict) -> list[dict]:
        rows = [dict(alert["candidate"])] + [dict(p) for p in alert["prv_candidates"] or []]
        bands = {1: "ztfg", 2: "ztfr", 3: "ztfi"}
        seen, out = set(), []
        for row in rows:
            row["filter"] = bands[row["fid"]]
            row["mjd"] = float(np.float64(row["jd"] - 2400000.5))
            mag = np.float32(row["magpsf"]) if row["magpsf"] is not None else np.float32("nan")
            key = (row["mjd"], float(mag) if not math.isnan(mag) else "nan", row["filter"])
            if key in seen:  # drop_duplicates(subset=["mjd", "magpsf", "filter"])
                continue
            seen.add(key)
            if not (row["diffmaglim"] or 0) > 0:
                continue
            coeff = 1.0 if row.get("isdiffpos") in (True, 1, "y", "Y", "t", "1", "T") else -1.0
            if math.isnan(mag):  # a non-detection: 5-sigma depth
                flux, fluxerr = None, 10 ** (-0.4 * (row["diffmaglim"] - 23.9)) / 5.0
            else:
                flux = float(coeff * 10 ** (-0.4 * (float(mag) - 23.9)))
                fluxerr = float(abs(np.float32(row["sigmapsf"]) * flux * np.log(10) / 2.5))
            row.update(flux=flux, fluxerr=fluxerr, zp=23.9, zpsys="ab", origin=None)
            out.append(row)
        out.sort(key=lambda r: r["mjd"])
        bodies = []
        for stream_id in sorted({self.program_to_stream[r["programid"]] for r in out}):
            sel = [r for r in out if self.program_to_stream[r["programid"]] == stream_id]
            bodies.append({
                "obj_id": alert["objectId"], "stream_ids": [int(stream_id)], "instrument_id": self.instrument_id,
                "mjd": [r["mjd"] for r in sel], "flux": [r["flux"] for r in sel],
                "fluxerr": [r["fluxerr"] for r in sel], "zp": [r["zp"] for r in sel],
                "magsys": [r["zpsys"] for r in sel], "filter": [r["filter"] for r in sel],
                "ra": [r.get("ra") for r in sel], "dec": [r.get("dec") for r in sel],
                "origin": [r["origin"] for r in sel]})
        return bodies

    def put_photometry(self, alert: dict) -> int:
        n = 0
        for body in self.photometry_bodies(alert):
            self.ok(self.api("PUT", "/api/photometry", body))
            n += len(body["mjd"])
        return n

    # -- make_thumbnail --------------------------------------------------------------------------------
    @staticmethod
    def thumbnail(alert: dict, ttype: str, kind: str) -> dict:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from astropy.io import fits
        from astropy.visualization import (AsymmetricPercentileInterval, ImageNormalize, LinearStretch,
                                           LogStretch)

        with gzip.open(io.BytesIO(alert[f"cutout{kind}"]["stampData"]), "rb") as f:
            with fits.open(io.BytesIO(f.read()), ignore_missing_simple=True) as hdu:
                img = np.flipud(np.array(hdu[0].data, dtype=float))
        img[np.greater(np.abs(img), 1e20, out=np.zeros(img.shape, bool), where=~np.isnan(img))] = np.nan
        if np.isnan(img).any():
            img = np.nan_to_num(img, nan=float(np.nanmean(img)))
        img = ImageNormalize(img, stretch=LinearStretch() if kind == "Difference" else LogStretch())(img)
        vmin, vmax = AsymmetricPercentileInterval(lower_percentile=1, upper_percentile=100).get_limits(img)
        fig = plt.figure()
        fig.set_size_inches(4, 4, forward=False)
        ax = plt.Axes(fig, [0.0, 0.0, 1.0, 1.0])
        ax.set_axis_off()
        fig.add_axes(ax)
        ax.imshow(img, cmap="bone", origin="lower", vmin=vmin, vmax=vmax)
        buff = io.BytesIO()
        plt.savefig(buff, dpi=42)
        plt.close("all")
        return {"obj_id": alert["objectId"], "data": base64.b64encode(buff.getvalue()).decode(), "ttype": ttype}

    # -- alert_sentinel_skyportal ---------------------------------------------------------------------
    def sentinel(self, alert: dict, passed_filters: list[dict]) -> dict:
        obj = alert["objectId"]
        is_candidate = self.api("HEAD", f"/api/candidates/{obj}").status_code == 200
        is_source = self.api("HEAD", f"/api/sources/{obj}").status_code == 200
        seen = {"is_candidate": is_candidate, "is_source": is_source}
        if not is_candidate and not is_source:
            self.post_candidate(alert, [f["filter_id"] for f in passed_filters])
            self.post_annotations(alert, passed_filters)
            seen["photometry_points"] = self.put_photometry(alert)
            for ttype, kind in (("new", "Science"), ("ref", "Template"), ("sub", "Difference")):
                self.ok(self.api("POST", "/api/thumbnail", self.thumbnail(alert, ttype, kind)))
            group_ids = [f["group_id"] for f in passed_filters if f.get("autosave", False) is not False]
            r = self.ok(self.api("POST", "/api/sources", {"id": obj, "group_ids": group_ids, "origin": "Kowalski"}))
            saved = r["data"].get("saved_to_groups")
            seen["not_saved_group_ids"] = [] if saved is None else sorted(set(group_ids) - set(saved))
            for f in passed_filters:
                if isinstance(f.get("autosave"), dict) and f["autosave"].get("comment"):
                    self.ok(self.api("POST", f"/api/sources/{obj}/comments",
                                     {"text": f["autosave"]["comment"], "group_ids": [f["group_id"]]}))
        else:
            self.post_candidate(alert, [f["filter_id"] for f in passed_filters])
            self.put_annotations(alert, passed_filters)
            if is_source:
                groups = self.ok(self.api("GET", f"/api/sources/{obj}/groups"))["data"]
                seen["source_group_ids"] = sorted(g["id"] for g in groups)
            seen["photometry_points"] = self.put_photometry(alert)
        return seen

    def post_candidate(self, alert: dict, filter_ids: list[int]) -> None:
        c = alert["candidate"]
        self.ok(self.api("POST", "/api/candidates", {
            "id": alert["objectId"], "ra": c.get("ra"), "dec": c.get("dec"), "score": c.get("drb", c.get("rb")),
            "filter_ids": filter_ids, "passing_alert_id": alert["candid"],
            "passed_at": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f"),
            "origin": "Kowalski"}))

    def _origin(self, f: dict) -> str:
        return f"{self.group_name}:{self.filter_name}"

    def post_annotations(self, alert: dict, passed_filters: list[dict]) -> None:
        for f in passed_filters:
            body = {"obj_id": alert["objectId"], "origin": self._origin(f),
                    "data": f.get("data", {}).get("annotations", {}), "group_ids": [f["group_id"]]}
            if body["data"]:
                self.ok(self.api("POST", f"/api/sources/{alert['objectId']}/annotations", body))

    def put_annotations(self, alert: dict, passed_filters: list[dict]) -> None:
        r = self.ok(self.api("GET", f"/api/sources/{alert['objectId']}/annotations"))
        existing = {a["origin"]: {"annotation_id": a["id"], "author_id": a["author_id"]} for a in r["data"]}
        for f in passed_filters:
            origin = self._origin(f)
            if origin not in existing:
                self.post_annotations(alert, [f])
                continue
            body = {"author_id": existing[origin]["author_id"], "obj_id": alert["objectId"], "origin": origin,
                    "data": f.get("data", {}).get("annotations", {}), "group_ids": [f["group_id"]]}
            if body["data"] and f.get("update_annotations", False):
                self.ok(self.api("PUT", f"/api/sources/{alert['objectId']}/annotations/"
                                        f"{existing[origin]['annotation_id']}", body))


@pytest.fixture
def ztf_alert():
    with open(ALERT, "rb") as f:
        alert = next(iter(fastavro.reader(f)))
    # a fresh object id per test run: the shared database keeps objects between tests
    alert["objectId"] = f"ZTF26{uuid.uuid4().hex[:7]}"
    return alert


@pytest.fixture
def kowalski_setup(admin):
    """What a SkyPortal deployment that Kowalski feeds has: the ZTF streams, a group reading them and a
    filter of that group (names unique per run)."""
    existing = {s["name"]: s["id"] for s in admin.get("/api/streams").json()["data"]}
    for name in ZTF_STREAMS:
        if name not in existing:
            r = admin.post("/api/streams", json={"name": name})
            assert r.status_code == 200, r.text
            existing[name] = r.json()["data"]["id"]
    name = f"kowalski-{uuid.uuid4().hex[:6]}"
    r = admin.post("/api/groups", json={"name": name, "nickname": name[-6:]})
    assert r.status_code == 200, r.text
    gid = r.json()["data"]["id"]
    for stream in ZTF_STREAMS:
        r = admin.post(f"/api/groups/{gid}/streams", json={"stream_id": existing[stream]})
        assert r.status_code == 200, r.text
    r = admin.post("/api/filters", json={"name": f"{name}-filter", "stream_id": existing["ZTF Public"],
                                         "group_id": gid})
    assert r.status_code == 200, r.text
    return {"group_id": gid, "filter_id": r.json()["data"]["id"], "streams": existing, "nickname": name[-6:],
            "filter_name": f"{name}-filter"}


def test_kowalski_feeds_a_new_object_then_updates_it(admin, ztf_alert, kowalski_setup):
    k = Kowalski(admin.base_url, admin.token)
    k.start(kowalski_setup["group_id"], kowalski_setup["filter_id"])
    assert k.instrument_name == "ZTF"
    assert k.group_name == kowalski_setup["nickname"] and k.filter_name == kowalski_setup["filter_name"]

    passed = [{"group_id": kowalski_setup["group_id"], "filter_id": kowalski_setup["filter_id"],
               "autosave": {"comment": "saved by Kowalski"}, "update_annotations": True,
               "data": {"annotations": {"drb": 0.99, "acai_h": 0.12}}}]
    first = k.sentinel(ztf_alert, passed)
    assert first["is_candidate"] is False and first["is_source"] is False
    assert first["not_saved_group_ids"] == []

    obj = ztf_alert["objectId"]
    source = admin.get(f"/api/sources/{obj}", params={"includeComments": "true", "includeThumbnails": "true"}).json()["data"]
    assert source["id"] == obj and source["origin"] == "Kowalski"
    assert kowalski_setup["group_id"] in [g["id"] for g in source["groups"]]
    assert sorted(t["type"] for t in source["thumbnails"]) == ["new", "ref", "sub"]
    assert [c["text"] for c in source["comments"]] == ["saved by Kowalski"]
    annotations = admin.get(f"/api/sources/{obj}/annotations").json()["data"]
    assert [(a["origin"], a["data"]) for a in annotations] == [
        (f"{kowalski_setup['nickname']}:{kowalski_setup['filter_name']}", {"drb": 0.99, "acai_h": 0.12})]

    points = admin.get(f"/api/sources/{obj}/photometry",
                       params={"format": "flux", "includeStreamInfo": "true"}).json()["data"]
    assert len(points) == first["photometry_points"] > 1
    assert {p["instrument_id"] for p in points} == {k.instrument_id}
    assert {s["id"] for p in points for s in p.get("streams", [])} == {kowalski_setup["streams"]["ZTF Public"]}
    detections = [p for p in points if p["flux"] is not None]
    assert detections and len(detections) < len(points)  # upper limits kept as such

    # the same alert again: the object exists now
    passed[0]["data"]["annotations"]["drb"] = 0.5
    again = k.sentinel(ztf_alert, passed)
    assert again["is_candidate"] is True and again["is_source"] is True
    assert kowalski_setup["group_id"] in again["source_group_ids"]
    annotations = admin.get(f"/api/sources/{obj}/annotations").json()["data"]
    assert len(annotations) == 1 and annotations[0]["data"]["drb"] == 0.5
    # PUT /api/photometry is idempotent: the same points are not stored twice
    assert len(admin.get(f"/api/sources/{obj}/photometry").json()["data"]) == len(points)

    failed = [c for c in k.calls if c[0] != "HEAD" and c[2] != 200]  # HEAD answers were checked above
    assert failed == []
