"""GCN notices and localizations through the API; sky-map queries equal the kernel's regions."""

import base64
import json
import math
import uuid
from pathlib import Path

import healpy as hp
import numpy as np
import pytest

from broker.sky import kernels as K
from broker.sky.gcn import _utc, whole_second
from broker.sky.mapio import read_fits

from .test_envelope import assert_error

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "gcn"


@pytest.fixture(scope="module")
def prelim():
    return json.loads((DATA / "igwn_gwalert_preliminary.json").read_text())


@pytest.fixture(scope="module")
def lvk_event(admin, prelim):
    r = admin.post("/api/gcn_event", json={"json": prelim})
    if r.status_code == 400 and "already exists" in r.text:
        pass  # posted by an earlier test module run in this session (a notice is stored once)
    else:
        assert r.status_code == 200, r.text
    # SkyPortal keeps a notice's event time to the whole second (…26.395Z → …26)
    return whole_second(_utc(prelim["event"]["time"], "time")).isoformat()


def test_lvk_notice_makes_event_and_localization(admin, lvk_event, prelim):
    ev = admin.get(f"/api/gcn_event/{lvk_event}").json()["data"]
    assert ev["aliases"] == ["LVC#MS260605l"] and ev["retracted"] is False  # SkyPortal's LVC# alias
    assert ev["properties"][0]["data"]["BNS"] > 0.99  # SkyPortal: one properties entry per notice
    # the first notice (a retraction may follow, posted by another module of this session)
    assert [n["notice_type"] for n in ev["gcn_notices"]][0] == "LVC_PRELIMINARY"
    (loc,) = ev["localizations"]
    sm = read_fits(base64.b64decode(prelim["event"]["skymap"]))
    a50, a90 = K.credible_region_area(sm.uniq, sm.probdensity, [0.5, 0.9])
    got = admin.get(f"/api/localization/{lvk_event}/name/{loc['localization_name']}").json()["data"]
    assert got["area_50"] == pytest.approx(a50, rel=1e-12) and got["area_90"] == pytest.approx(a90, rel=1e-12)
    fits = admin.get(f"/api/localization/{lvk_event}/name/{loc['localization_name']}/download")
    back = read_fits(fits.content)
    np.testing.assert_array_equal(back.uniq, sm.uniq)
    np.testing.assert_allclose(back.probdensity, sm.probdensity, rtol=1e-15)


def test_sql_region_is_the_kernels_region(admin, user, lvk_event, prelim):
    """Objects returned for the X% region are exactly those the kernel puts inside it."""
    sm = read_fits(base64.b64decode(prelim["event"]["skymap"]))
    rng = np.random.default_rng(5)
    # positions spread over the 99% region and beyond
    levels = K.moc_credible_levels(sm.uniq, sm.probdensity)
    o, ip = K.uniq_to_order_ipix(sm.uniq)
    pick = rng.choice(np.flatnonzero(levels < 0.99), 120, replace=False)
    ra, dec = hp.pix2ang(2 ** o[pick], ip[pick], nest=True, lonlat=True)
    ra = (ra + rng.normal(0, 0.05, ra.size)) % 360
    dec = np.clip(dec + rng.normal(0, 0.05, dec.size), -90, 90)
    tag = uuid.uuid4().hex[:6]
    sid = admin.post("/api/streams", json={"name": f"gcn-{tag}"}).json()["data"]["id"]
    gid = admin.post("/api/groups", json={"name": f"gcn-{tag}"}).json()["data"]["id"]
    admin.post(f"/api/groups/{gid}/streams", json={"stream_id": sid})
    fid = admin.post("/api/filters", json={"name": "f", "stream_id": sid, "group_id": gid}).json()["data"]["id"]
    ids = [f"gw{tag}{i:03d}" for i in range(ra.size)]
    for i, (a, d) in enumerate(zip(ra, dec)):
        r = admin.post("/api/candidates", json={"id": ids[i], "ra": float(a), "dec": float(d), "filter_ids": [fid],
                                                "passed_at": "2026-06-05T12:30:00"})
        assert r.status_code == 200, r.text
    cl = K.crossmatch(sm.uniq, sm.probdensity, ra, dec)["credible_level"]
    for cumprob in (0.5, 0.9):
        expected = {ids[i] for i in np.flatnonzero(cl <= cumprob)}
        data = admin.get("/api/candidates", params={"filterIDs": fid, "numPerPage": 500,
                                                    "localizationDateobs": lvk_event,
                                                    "localizationCumprob": cumprob}).json()["data"]
        assert {c["id"] for c in data["candidates"]} == expected and 0 < len(expected) < len(ids)
    # the default region is 95%
    data = admin.get("/api/candidates", params={"filterIDs": fid, "numPerPage": 500,
                                                "localizationDateobs": lvk_event}).json()["data"]
    assert {c["id"] for c in data["candidates"]} == {ids[i] for i in np.flatnonzero(cl <= 0.95)}
    assert_error(admin.get("/api/candidates", params={"localizationDateobs": "1999-01-01"}), 404)
    assert_error(admin.get("/api/candidates", params={"localizationDateobs": lvk_event,
                                                      "localizationCumprob": 2}), 400, "localizationCumprob")


def test_retraction(admin, lvk_event):
    retraction = json.loads((DATA / "igwn_gwalert_retraction.json").read_text())
    assert admin.post("/api/gcn_event", json={"json": retraction}).status_code == 200
    ev = admin.get(f"/api/gcn_event/{lvk_event}").json()["data"]
    assert ev["retracted"] is True and [n["notice_type"] for n in ev["gcn_notices"]][-1] == "LVC_RETRACTION"
    assert "retracted" in ev["tags"]
    # SkyPortal lists retracted events too; includeRetracted=false (our addition) leaves them out
    listed = admin.get("/api/gcn_event", params={"includeRetracted": "false", "numPerPage": 1000}).json()["data"]
    assert lvk_event[:19] not in [e["dateobs"][:19] for e in listed["events"]]
    with_retracted = admin.get("/api/gcn_event", params={"numPerPage": 1000}).json()["data"]["events"]
    assert lvk_event[:19] in [e["dateobs"][:19] for e in with_retracted]


def test_voevent(admin):
    xml = (DATA / "GW190425_initial.xml").read_text()
    r = admin.post("/api/gcn_event", json={"xml": xml})
    if r.status_code == 400:  # the same notice from the Kafka test of this session: stored once
        assert "already exists" in r.text
    else:
        assert r.status_code == 200, r.text
    ev = admin.get("/api/gcn_event/2019-04-25T08:18:05").json()["data"]  # whole seconds, as SkyPortal
    assert "LVC#S190425z" in ev["aliases"] and "GW" in ev["tags"] and "CBC" not in ev["tags"]
    assert ev["properties"][0]["data"]["FAR"] == pytest.approx(4.53764787126e-13)
    assert ev["gcn_notices"][0]["notice_format"] == "voevent"


def test_position_notice_makes_a_cone(admin):
    t = "2026-07-01T01:02:03"
    notice = {"instrument": "WXT", "id": ["01709"], "trigger_time": t, "ra": 120.5, "dec": -30.25,
              "ra_dec_error": 0.05}
    r = admin.post("/api/gcn_event", json={"json": notice})
    assert r.status_code == 200, r.text
    ev = admin.get(f"/api/gcn_event/{t}").json()["data"]
    assert ev["aliases"] == ["WXT#01709"]
    (loc,) = ev["localizations"]
    assert loc["localization_name"] == "120.50000_-30.25000_0.05000"  # SkyPortal's cone name
    expected = 2 * math.pi * 0.05**2 * math.log(10)
    assert loc["area_90"] == pytest.approx(expected, rel=0.05)


def test_localization_post_and_errors(admin, user):
    t = "2026-08-02T03:04:05"
    assert admin.post("/api/gcn_event", json={"dateobs": t, "aliases": ["TEST#1"]}).status_code == 200
    nside = 16
    prob = np.full(hp.nside2npix(nside), 1.0 / hp.nside2npix(nside))
    uniq, dens = K.flat_to_moc(prob)
    r = admin.post("/api/localization", json={"dateobs": t, "localization_name": "flat",
                                              "uniq": uniq.tolist(), "probdensity": dens.tolist()})
    assert r.status_code == 200, r.text
    loc = admin.get(f"/api/localization/{t}/name/flat").json()["data"]
    assert loc["area_90"] == pytest.approx(0.9 * K.FULL_SKY_DEG2, rel=1e-9)
    fits_b64 = base64.b64encode((DATA / "bayestar.fits.gz").read_bytes()).decode()
    assert admin.post("/api/localization", json={"dateobs": t, "localization_name": "bayestar",
                                                 "fits": fits_b64}).status_code == 200
    assert_error(admin.post("/api/localization", json={"dateobs": t, "localization_name": "flat",
                                                       "ra": 1, "dec": 1, "error": 1}), 400, "already has")
    assert_error(admin.post("/api/localization", json={"dateobs": t, "localization_name": "bad",
                                                       "uniq": uniq.tolist(), "probdensity": (dens * 5).tolist()}),
                 400, "total probability")
    # invalid maps, each refused with the field named and nothing stored
    u, d = uniq.tolist(), dens.tolist()
    n = len(u)
    for why, body, field in (
            ("total 1.4", {"uniq": u, "probdensity": (dens * 1.4).tolist()}, "total probability"),
            ("negative", {"uniq": u, "probdensity": [-d[0], *d[1:]]}, "probdensity"),
            ("NaN layer", {"uniq": u, "probdensity": d, "distmu": [1.0] * (n - 1)}, "distmu"),
            ("repeated tile", {"uniq": [u[0], *u[:-1]], "probdensity": d}, "overlap"),
            ("overlapping orders", {"uniq": [*u, 4 * u[0]], "probdensity": [*d, d[0]]}, "overlap"),
            ("order 30", {"uniq": [16 << 60, *u[1:]], "probdensity": d}, "uniq"),
            ("beyond int64", {"uniq": [2**70, *u[1:]], "probdensity": d}, "uniq"),
            ("ellipse error", {"ra": 1, "dec": 1, "error": [1, 2, 30]}, "error"),
            ("error 1e-320", {"ra": 1, "dec": 1, "error": 1e-320}, "error"),
    ):
        r = admin.post("/api/localization", json={"dateobs": t, "localization_name": why, **body})
        assert r.status_code == 400, why
        assert_error(r, 400, field)
        assert_error(admin.get(f"/api/localization/{t}/name/{why}"), 404)
    assert_error(admin.post("/api/localization", json={"dateobs": "2001-01-01", "localization_name": "x",
                                                       "ra": 1, "dec": 1, "error": 1}), 400, "dateobs")
    assert_error(admin.post("/api/gcn_event", json={"json": {"hello": 1}}), 400, "notice")
    assert_error(admin.post("/api/gcn_event", json={"xml": "<not-xml"}), 400, "VOEvent")
    assert_error(user.post("/api/gcn_event", json={"dateobs": t}), 401, "Manage GCNs")  # SkyPortal: 401
    assert admin.delete(f"/api/gcn_event/{t}").status_code == 200
    assert_error(admin.get(f"/api/gcn_event/{t}"), 404)


def test_contours_and_detection_filters(admin, lvk_event, prelim):
    name = admin.get(f"/api/gcn_event/{lvk_event}").json()["data"]["localizations"][0]["localization_name"]
    loc = admin.get(f"/api/localization/{lvk_event}/name/{name}", params={"includeContour": "true"}).json()["data"]
    sm = read_fits(base64.b64decode(prelim["event"]["skymap"]))
    lv = K.moc_credible_levels(sm.uniq, sm.probdensity)
    # our addition: the regions as MOCs under contour_moc (SkyPortal's contour is GeoJSON)
    assert loc["contour_moc"]["90%"] == sorted(sm.uniq[lv <= 0.9].tolist())
    assert set(loc["contour_moc"]["50%"]) < set(loc["contour_moc"]["90%"])
    assert loc["contour"]["type"] == "FeatureCollection"
    # detection-history filters
    tag = uuid.uuid4().hex[:6]
    sid = admin.post("/api/streams", json={"name": f"det-{tag}"}).json()["data"]["id"]
    gid = admin.post("/api/groups", json={"name": f"det-{tag}"}).json()["data"]["id"]
    admin.post(f"/api/groups/{gid}/streams", json={"stream_id": sid})
    fid = admin.post("/api/filters", json={"name": "f", "stream_id": sid, "group_id": gid}).json()["data"]["id"]
    for obj, mjds in ((f"old{tag}", [60000.0, 60001.0, 60002.0]), (f"new{tag}", [61000.0])):
        admin.post("/api/candidates", json={"id": obj, "ra": 5.0, "dec": 5.0, "filter_ids": [fid],
                                            "passed_at": "2026-01-01"})
        admin.post("/api/photometry", json={"obj_id": obj, "mjd": mjds, "filter": "ztfg", "mag": [18.0] * len(mjds),
                                            "magerr": [0.05] * len(mjds), "group_ids": [gid],
                                            "instrument_name": "ZTF"})

    def ids(**p):
        r = admin.get("/api/candidates", params={"filterIDs": fid, **p})
        assert r.status_code == 200, r.text
        return {c["id"] for c in r.json()["data"]["candidates"]}

    assert ids(numberDetections=2) == {f"old{tag}"}
    assert ids(firstDetectionAfter="2025-01-01") == {f"new{tag}"}  # MJD 61000 = 2025-11-24
    assert ids(lastDetectionBefore="2024-01-01") == {f"old{tag}"}
