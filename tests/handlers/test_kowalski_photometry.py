"""Kowalski's ``alert_put_photometry`` replayed on a real ZTF alert: ``PUT /api/photometry`` with the
dataframe-shaped body it builds (kowalski/alert_brokers/alert_broker.py ``make_photometry`` and
alert_broker_ztf.py ``alert_put_photometry``), answered as SkyPortal answers it."""

import copy
import math
import uuid

import numpy as np
import pytest

from broker.ingest.replay import read_packets
from tests.conftest import SHARED

from .test_envelope import assert_error

ZTF_FILE = SHARED / "data" / "ztf" / "541234765015015012.avro"
ZTF_FILTERS = {1: "ztfg", 2: "ztfr", 3: "ztfi"}
POSITIVE = (True, 1, "y", "Y", "t", "1", "T")


def _nan(x):
    return x is None or (isinstance(x, float) and math.isnan(x))


def make_photometry(alert: dict, include_fp_hists: bool = False) -> list[dict]:
    """Kowalski's make_photometry without pandas: the light curve (candidate + prv_candidates), de-duplicated
    on (mjd, magpsf, filter), limits with diffmaglim > 0, fluxes at zero point 23.9, NaN as None."""
    rows = []
    for r in [alert["candidate"], *(alert.get("prv_candidates") or [])]:
        r = dict(r)
        r["filter"] = ZTF_FILTERS[r["fid"]]
        r["mjd"] = float(np.float64(r["jd"] - 2400000.5))
        r["magpsf"] = np.float32(np.nan if r.get("magpsf") is None else r["magpsf"])
        r["sigmapsf"] = np.float32(np.nan if r.get("sigmapsf") is None else r["sigmapsf"])
        rows.append(r)
    seen, lc = set(), []
    for r in rows:
        key = (r["mjd"], "nan" if np.isnan(r["magpsf"]) else float(r["magpsf"]), r["filter"])
        if key not in seen:
            seen.add(key)
            lc.append(r)
    lc.sort(key=lambda r: r["mjd"])
    lc = [r for r in lc if r.get("diffmaglim") is not None and r["diffmaglim"] > 0]
    out = []
    for r in lc:
        coeff = 1.0 if r.get("isdiffpos") in POSITIVE else -1.0
        flux = coeff * float(10 ** (np.float32(-0.4) * (r["magpsf"] - np.float32(23.9))))
        if np.isfinite(r["magpsf"]):
            fluxerr = abs(float(r["sigmapsf"]) * flux * np.log(10) / 2.5)
        else:
            fluxerr = 10 ** (-0.4 * (r["diffmaglim"] - 23.9)) / 5.0  # diffmaglim is the 5-sigma depth
        out.append({"mjd": r["mjd"], "flux": None if _nan(flux) else flux, "fluxerr": float(fluxerr), "zp": 23.9,
                    "zpsys": "ab", "filter": r["filter"], "ra": None if _nan(r.get("ra")) else r.get("ra"),
                    "dec": None if _nan(r.get("dec")) else r.get("dec"), "origin": None,
                    "programid": r["programid"]})
    if include_fp_hists:
        fps = [dict(f) for f in alert.get("fp_hists") or [] if f.get("procstatus") in (0, "0")
               and f.get("diffmaglim") is not None and f["diffmaglim"] > 0]
        seen = set()
        for f in sorted(fps, key=lambda f: f["jd"]):
            zp, flux, fluxerr = f["magzpsci"], f.get("forcediffimflux"), f.get("forcediffimfluxunc")
            if _nan(flux):
                flux, fluxerr = None, 10 ** (-0.4 * (f["diffmaglim"] - zp)) / 5.0
            elif abs(flux / fluxerr) <= 3:  # detections only above 3 sigma
                flux = None
            key = (f["jd"] - 2400000.5, ZTF_FILTERS[f["fid"]], flux)
            if key in seen:
                continue
            seen.add(key)
            out.append({"mjd": f["jd"] - 2400000.5, "flux": flux, "fluxerr": fluxerr, "zp": zp, "zpsys": "ab",
                        "filter": ZTF_FILTERS[f["fid"]], "ra": None, "dec": None, "origin": "alert_fp",
                        "programid": f["programid"]})
    return out


def put_bodies(alert: dict, instrument_id: int, stream_of_program: dict, rows: list[dict]) -> list[dict]:
    """alert_put_photometry: one body per stream, every column a list."""
    bodies = []
    for pid in sorted({r["programid"] for r in rows}):
        sel = [r for r in rows if r["programid"] == pid]
        bodies.append({
            "obj_id": alert["objectId"], "stream_ids": [stream_of_program[pid]], "instrument_id": instrument_id,
            "mjd": [r["mjd"] for r in sel], "flux": [r["flux"] for r in sel], "fluxerr": [r["fluxerr"] for r in sel],
            "zp": [r["zp"] for r in sel], "magsys": [r["zpsys"] for r in sel], "filter": [r["filter"] for r in sel],
            "ra": [r["ra"] for r in sel], "dec": [r["dec"] for r in sel], "origin": [r["origin"] for r in sel],
        })
    return bodies


@pytest.fixture
def kowalski(admin, make_user):
    """Kowalski's user (posting, with access to the ZTF public stream), an object saved to its group, a
    reader in a group that reads the stream, and Carol, who sees the object but not the stream."""
    k, reader, carol = make_user(prefix="kowalski"), make_user(prefix="reader"), make_user(prefix="carol")
    r = admin.post("/api/streams", json={"name": f"ztf_public-{uuid.uuid4().hex[:6]}"})
    assert r.status_code == 200, r.text
    sid = r.json()["data"]["id"]
    for u in (k, reader):
        assert admin.post(f"/api/streams/{sid}/users", json={"user_id": u.user_id}).status_code == 200
    gk = k.post("/api/groups", json={"name": f"k-{uuid.uuid4().hex[:8]}"}).json()["data"]["id"]
    gr = reader.post("/api/groups", json={"name": f"r-{uuid.uuid4().hex[:8]}"}).json()["data"]["id"]
    assert reader.post(f"/api/groups/{gr}/streams", json={"stream_id": sid}).status_code == 200
    gc = carol.post("/api/groups", json={"name": f"c-{uuid.uuid4().hex[:8]}"}).json()["data"]["id"]
    (packet, _), = read_packets(ZTF_FILE, "ztf_avro")
    alert = copy.deepcopy(packet)
    alert["objectId"] = f"ZTF26kw{uuid.uuid4().hex[:6]}"
    c = alert["candidate"]
    for who, g in ((k, gk), (reader, gr), (carol, gc)):
        r = who.post("/api/sources", json={"id": alert["objectId"], "ra": c["ra"], "dec": c["dec"], "group_ids": [g]})
        assert r.status_code == 200, r.text
    (inst,) = k.get("/api/instrument", params={"name": "ZTF"}).json()["data"]  # as Kowalski looks it up
    return dict(k=k, reader=reader, carol=carol, sid=sid, alert=alert, iid=inst["id"])


def test_put_real_alert_is_idempotent_and_readable_through_the_stream(kowalski):
    k, alert, iid, sid = kowalski["k"], kowalski["alert"], kowalski["iid"], kowalski["sid"]
    rows = make_photometry(alert)
    (body,) = put_bodies(alert, iid, {1: sid}, rows)
    assert len(body["mjd"]) == 15 and body["flux"].count(None) == 1
    r = k.put("/api/photometry", json=body)
    assert r.status_code == 200, r.text
    ids = r.json()["data"]["ids"]
    assert len(ids) == 15 and len(set(ids)) == 15
    # Kowalski re-posts the light curve with every alert: the same points
    again = k.put("/api/photometry", json=body)
    assert again.status_code == 200 and again.json()["data"]["ids"] == ids
    # read back as SkyPortal serves it, by a member of a group reading the stream
    path = f"/api/sources/{alert['objectId']}/photometry"
    got = kowalski["reader"].get(path, params={"includeStreamInfo": "true"}).json()["data"]
    assert sorted(p["id"] for p in got) == sorted(ids)
    for p, row in zip(sorted(got, key=lambda p: p["mjd"]), sorted(rows, key=lambda r: r["mjd"])):
        assert p["instrument_id"] == iid and p["instrument_name"] == "ZTF" and p["origin"] == "None"
        assert [s["id"] for s in p["streams"]] == [sid] and p["filter"] == row["filter"]
        if row["flux"] is None:
            assert p["mag"] is None and p["snr"] is None
            assert p["limiting_mag"] == pytest.approx(23.9 - 2.5 * math.log10(5 * row["fluxerr"]))
        elif row["flux"] > 0:
            assert p["mag"] == pytest.approx(23.9 - 2.5 * math.log10(row["flux"]), abs=1e-9)
            assert p["magsys"] == "ab" and p["snr"] == pytest.approx(row["flux"] / row["fluxerr"])
    c = alert["candidate"]
    latest = max(got, key=lambda p: p["mjd"])
    assert latest["mag"] == pytest.approx(c["magpsf"], abs=1e-4) and latest["ra"] == pytest.approx(c["ra"])
    # Carol sees the object but neither the stream nor a group of the points
    assert kowalski["carol"].get(path).json()["data"] == []
    assert_error(kowalski["carol"].get(f"/api/photometry/{ids[0]}"), 400, "cannot find")


def test_next_alert_adds_only_its_new_points(kowalski):
    """The next alert carries this one's candidate in its history, and a second detection in one exposure."""
    k, alert, iid, sid = kowalski["k"], kowalski["alert"], kowalski["iid"], kowalski["sid"]
    (body,) = put_bodies(alert, iid, {1: sid}, make_photometry(alert))
    ids = k.put("/api/photometry", json=body).json()["data"]["ids"]
    nxt = copy.deepcopy(alert)
    old = nxt["candidate"]
    prv_fields = set(nxt["prv_candidates"][0])
    nxt["prv_candidates"] = [*nxt["prv_candidates"], {f: old.get(f) for f in prv_fields}]
    nxt["candidate"] = {**old, "jd": old["jd"] + 1.0, "magpsf": 17.5, "candid": old["candid"] + 1}
    # the same exposure as the old candidate, another source flux: SkyPortal keeps it
    twin = {f: old.get(f) for f in prv_fields}
    twin["magpsf"] = old["magpsf"] + 0.3
    nxt["prv_candidates"].append(twin)
    (body2,) = put_bodies(nxt, iid, {1: sid}, make_photometry(nxt))
    r = k.put("/api/photometry", json=body2)
    assert r.status_code == 200, r.text
    ids2 = r.json()["data"]["ids"]
    assert len(ids2) == 17 and set(ids) < set(ids2) and len(set(ids2)) == 17
    got = kowalski["reader"].get(f"/api/sources/{alert['objectId']}/photometry").json()["data"]
    same_exposure = [p for p in got if p["mjd"] == pytest.approx(old["jd"] - 2400000.5, abs=1e-9)]
    assert len(same_exposure) == 2


def test_forced_photometry_put_ignoring_flux(kowalski, admin):
    """fp_hists go with ?duplicate_ignore_flux=true&overwrite_flux=true (an admin's token, as Kowalski's)."""
    alert, iid, sid = kowalski["alert"], kowalski["iid"], kowalski["sid"]
    c = alert["candidate"]
    # forced-photometry epochs at the alert's real epochs (the stored alert carries no fp_hists)
    epochs = [c, *(p for p in alert["prv_candidates"] if p.get("magpsf") is not None)][:3]
    alert = {**alert, "fp_hists": [{"jd": e["jd"], "fid": e["fid"], "programid": 1, "procstatus": 0,
                                    "diffmaglim": 20.5, "magzpsci": 26.3, "forcediffimflux": 500.0,
                                    "forcediffimfluxunc": 20.0} for e in epochs]}
    fp = [r for r in make_photometry(alert, include_fp_hists=True) if r["origin"] == "alert_fp"]
    (body,) = put_bodies(alert, iid, {1: sid}, fp)
    path = "/api/photometry?duplicate_ignore_flux=true&overwrite_flux=true"
    assert_error(kowalski["k"].put(path, json=body), 400, "reserved to super admin")
    r = admin.put(path, json=body)
    assert r.status_code == 200, r.text
    ids = r.json()["data"]["ids"]
    # a re-measured forced flux at the same epochs replaces the old one
    body2 = {**body, "flux": [f + 100.0 for f in body["flux"]]}
    r = admin.put(path, json=body2)
    assert r.status_code == 200 and r.json()["data"]["ids"] == ids
    p = admin.get(f"/api/photometry/{ids[0]}", params={"format": "flux"}).json()["data"]
    assert p["flux"] == pytest.approx(600.0 * 10 ** (-0.4 * (26.3 - 23.9))) and p["origin"] == "alert_fp"
    # without the flags the new flux is a new point (SkyPortal's key includes the flux)
    r = admin.put("/api/photometry", json={**body, "flux": [f + 200.0 for f in body["flux"]]})
    assert r.status_code == 200 and not set(r.json()["data"]["ids"]) & set(ids)
