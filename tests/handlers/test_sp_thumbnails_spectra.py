"""Thumbnails and spectra, as SkyPortal serves them (its test_thumbnail.py / test_spectrum.py)."""

import base64
import uuid
from datetime import datetime

import numpy as np
import pytest

from broker.objects.thumbnails import check_png, encode_png

ASCII = """# OBJECT  = 'ZTF20abpuxna'       / User-specified object name
# EXPTIME =              600.003 / Total exposure time (sec); avg. of R&B
# RA: 230.14
4000.0 1.0e-16 1.0e-18
4010.0 1.2e-16 1.1e-18
4020.0 1.1e-16 1.0e-18
4030.0 0.9e-16 0.9e-18
"""


def png_b64(side=20) -> str:
    rng = np.random.default_rng(side)
    return base64.b64encode(encode_png(rng.integers(0, 255, (side, side, 3), dtype=np.uint8))).decode()


@pytest.fixture
def world(make_user, admin):
    alice, bob = make_user(prefix="alice"), make_user(prefix="bob")
    gid = alice.post("/api/groups", json={"name": f"ts-{uuid.uuid4().hex[:8]}"}).json()["data"]["id"]
    obj_id = f"ZTF26{uuid.uuid4().hex[:7]}"
    r = alice.post("/api/sources", json={"id": obj_id, "ra": 230.14, "dec": 5.5, "group_ids": [gid]})
    assert r.status_code == 200, r.text
    r = admin.post("/api/telescope", json={"name": f"Keck {uuid.uuid4().hex[:6]}", "nickname": "K1",
                                           "diameter": 10.0, "robotic": False})
    assert r.status_code == 200, r.text
    r = admin.post("/api/instrument", json={"name": f"LRIS-{uuid.uuid4().hex[:6]}", "type": "spectrograph",
                                            "telescope_id": r.json()["data"]["id"]})
    assert r.status_code == 200, r.text
    return dict(alice=alice, bob=bob, gid=gid, obj_id=obj_id, inst=r.json()["data"]["id"], admin=admin)


# -- thumbnails ----------------------------------------------------------------------------------

def test_thumbnail_post_get_image_delete(world, make_user):
    a, obj = world["alice"], world["obj_id"]
    data = png_b64()
    r = a.post("/api/thumbnail", json={"obj_id": obj, "data": data, "ttype": "ls"})
    assert r.status_code == 200, r.text
    tid = r.json()["data"]["id"]
    got = a.get(f"/api/thumbnail/{tid}").json()["data"]
    assert (got["obj_id"], got["type"], got["public_url"]) == (obj, "ls", f"/api/thumbnail/{tid}/image")
    assert "data" not in got
    img = a.get(got["public_url"])
    assert img.status_code == 200 and img.headers["Content-Type"] == "image/png"
    assert img.content == base64.b64decode(data)
    # listed on the source, on request
    src = a.get(f"/api/sources/{obj}", params={"includeThumbnails": "true"}).json()["data"]
    assert [t["id"] for t in src["thumbnails"]] == [tid]
    # Bob cannot see the object, so not its thumbnail either
    assert world["bob"].get(f"/api/thumbnail/{tid}").status_code == 400
    # PUT / DELETE need "Manage sources" (401 without it, as SkyPortal)
    assert a.put(f"/api/thumbnail/{tid}", json={"origin": "me"}).status_code == 401
    assert a.delete(f"/api/thumbnail/{tid}").status_code == 401
    manager = world["admin"]
    assert manager.put(f"/api/thumbnail/{tid}", json={"origin": "legacy survey"}).status_code == 200
    assert a.get(f"/api/thumbnail/{tid}").json()["data"]["origin"] == "legacy survey"
    assert manager.delete(f"/api/thumbnail/{tid}").status_code == 200
    assert a.get(f"/api/thumbnail/{tid}").status_code == 400


def test_thumbnail_refuses_what_is_not_a_png(world):
    a, obj = world["alice"], world["obj_id"]
    good = base64.b64decode(png_b64())
    corrupt = bytearray(good)
    corrupt[40] ^= 0xFF  # inside the IDAT chunk: the CRC no longer matches
    cases = {
        "not base64 at all!": "data",
        base64.b64encode(b"GIF89a not a png").decode(): "data",
        base64.b64encode(bytes(corrupt)).decode(): "data",
        base64.b64encode(good[:-12]).decode(): "data",  # no IEND
        png_b64(8): "data",  # 8x8: smaller than SkyPortal's 16 pixels
        png_b64(501): "data",
    }
    for payload, field in cases.items():
        r = a.post("/api/thumbnail", json={"obj_id": obj, "data": payload, "ttype": "new"})
        assert r.status_code == 400, payload[:40]
        assert field in r.json()["message"]
    r = a.post("/api/thumbnail", json={"obj_id": obj, "data": png_b64(), "ttype": "selfie"})
    assert r.status_code == 400 and "ttype" in r.json()["message"]
    r = a.post("/api/thumbnail", json={"obj_id": "ZTF00nosuchobj", "data": png_b64(), "ttype": "new"})
    assert r.status_code == 400 and "obj_id" in r.json()["message"]
    r = world["bob"].post("/api/thumbnail", json={"obj_id": obj, "data": png_b64(), "ttype": "new"})
    assert r.status_code == 400 and "obj_id" in r.json()["message"]
    assert check_png(good) == (20, 20)


# -- spectra -------------------------------------------------------------------------------------

def _spectrum(world, who="alice", **extra):
    body = {"obj_id": world["obj_id"], "observed_at": "2026-11-20T05:00:00", "instrument_id": world["inst"],
            "wavelengths": [664, 665, 666], "fluxes": [234.2, 232.1, 235.3], **extra}
    return world[who].post("/api/spectra", json=body)


def test_spectrum_post_get_and_default_groups(world):
    a = world["alice"]
    r = _spectrum(world, errors=[1.0, 1.1, 1.2], units="Jy", origin="DBSP reduction", label="night 1")
    assert r.status_code == 200, r.text
    sid = r.json()["data"]["id"]
    got = a.get(f"/api/spectra/{sid}").json()["data"]
    assert got["fluxes"] == [234.2, 232.1, 235.3] and got["errors"] == [1.0, 1.1, 1.2]
    assert (got["obj_id"], got["owner_id"], got["type"], got["units"]) == (world["obj_id"], a.user_id, "source",
                                                                            "Jy")
    assert got["instrument_id"] == world["inst"] and got["instrument_name"].startswith("LRIS-")
    # no groups given: the uploader's own group only (SkyPortal's default)
    assert len(got["groups"]) == 1 and got["groups"][0]["single_user_group"]
    assert got["comments"] == [] and got["annotations"] == [] and "original_file_string" not in got
    # the alias path serves the same
    assert a.get(f"/api/spectrum/{sid}").json()["data"]["id"] == sid
    # Bob cannot read it: SkyPortal's 403
    r = world["bob"].get(f"/api/spectra/{sid}")
    assert r.status_code == 403
    # the object's spectra
    r = a.get(f"/api/sources/{world['obj_id']}/spectra", params={"normalization": "median"})
    assert r.status_code == 200, r.text
    out = r.json()["data"]
    assert out["obj_id"] == world["obj_id"] and [s["id"] for s in out["spectra"]] == [sid]
    assert out["spectra"][0]["fluxes"][0] == pytest.approx(234.2 / 234.2)
    mjd = (datetime(2026, 11, 20, 5) - datetime(1858, 11, 17)).total_seconds() / 86400
    assert out["spectra"][0]["observed_at_mjd"] == pytest.approx(mjd, abs=1e-6)
    assert world["bob"].get(f"/api/sources/{world['obj_id']}/spectra").status_code == 400


def test_spectrum_refusals(world, make_user):
    r = _spectrum(world, fluxes=[1.0, 2.0])
    assert r.status_code == 400 and "fluxes" in r.json()["message"]
    body = {"obj_id": world["obj_id"], "observed_at": "2026-11-20", "wavelengths": [1.0], "fluxes": [1.0]}
    r = world["alice"].post("/api/spectra", json=body)
    assert r.status_code == 400 and "instrument_id" in r.json()["message"]
    r = _spectrum(world, instrument_id=10**9)
    assert r.status_code == 400 and "instrument" in r.json()["message"].lower()
    r = _spectrum(world, type="galaxy")
    assert r.status_code == 400 and "type" in r.json()["message"]
    r = _spectrum(world, units="furlongs")
    assert r.status_code == 400 and "units" in r.json()["message"]
    r = _spectrum(world, assignment_id=3)
    assert r.status_code == 400 and "assignment_id" in r.json()["message"]
    r = _spectrum(world, external_pi="Someone Else")
    assert r.status_code == 400 and "pi" in r.json()["message"]
    r = _spectrum(world, observed_at="yesterday-ish")
    assert r.status_code == 400 and "observed_at" in r.json()["message"]
    r = _spectrum(world, who="bob")
    assert r.status_code == 400 and "obj_id" in r.json()["message"]
    viewer = make_user(roles=("View only",))
    r = viewer.post("/api/spectra", json={"obj_id": world["obj_id"], "observed_at": "2026-11-20",
                                          "instrument_id": world["inst"], "wavelengths": [1.0], "fluxes": [1.0]})
    assert r.status_code == 401


def test_spectrum_update_delete_owner_only(world, make_user):
    a, admin = world["alice"], world["admin"]
    r = _spectrum(world, group_ids=[world["gid"]], pi=[a.user_id], external_pi="Prof. X")
    assert r.status_code == 200, r.text
    sid = r.json()["data"]["id"]
    got = a.get(f"/api/spectra/{sid}").json()["data"]
    assert [p["id"] for p in got["pis"]] == [a.user_id] and got["external_pi"] == "Prof. X"
    # Carol is in the group: she reads it but cannot change or delete it (SkyPortal's 401)
    carol = make_user(prefix="carol")
    a.post(f"/api/groups/{world['gid']}/users", json={"userID": carol.user_id})
    assert carol.get(f"/api/spectra/{sid}").status_code == 200
    assert carol.put(f"/api/spectra/{sid}", json={"fluxes": [1.0, 2.0, 3.0]}).status_code == 401
    assert carol.delete(f"/api/spectra/{sid}").status_code == 401
    # owner_id is not a field one can set
    r = admin.put(f"/api/spectra/{sid}", json={"owner_id": carol.user_id})
    assert r.status_code == 400 and "owner_id" in r.json()["message"]
    r = a.put(f"/api/spectra/{sid}", json={"fluxes": [222.2, 232.1, 235.3], "label": "re-reduced"})
    assert r.status_code == 200, r.text
    got = a.get(f"/api/spectra/{sid}").json()["data"]
    assert got["fluxes"][0] == 222.2 and got["label"] == "re-reduced"
    r = a.put(f"/api/spectra/{sid}", json={"wavelengths": [1.0, 2.0]})
    assert r.status_code == 400 and "fluxes" in r.json()["message"]
    # an admin may update and delete anyone's
    assert admin.put(f"/api/spectra/{sid}", json={"origin": "admin fix"}).status_code == 200
    assert a.delete(f"/api/spectra/{sid}").status_code == 200
    assert a.get(f"/api/spectra/{sid}").status_code == 403


def test_spectra_list_filters(world):
    a = world["alice"]
    s1 = _spectrum(world, origin="pipeline A", label="first", group_ids=[world["gid"]]).json()["data"]["id"]
    s2 = _spectrum(world, observed_at="2026-11-22T00:00:00", type="host", origin="pipeline B").json()["data"]["id"]
    mine = {world["obj_id"]}

    def ids(**params):
        r = a.get("/api/spectra", params={"objID": world["obj_id"], **params})
        assert r.status_code == 200, r.text
        assert {s["obj_id"] for s in r.json()["data"]} <= mine
        return [s["id"] for s in r.json()["data"]]

    assert ids() == [s1, s2]  # by observed_at
    assert ids(observedAfter="2026-11-21") == [s2]
    assert ids(observedBefore="2026-11-21") == [s1]
    assert ids(type="host") == [s2]
    assert ids(origin="pipeline A") == [s1]
    assert ids(label="firs") == [s1]
    assert ids(groupIDs=str(world["gid"])) == [s1]
    assert ids(instrumentIDs=str(world["inst"])) == [s1, s2]
    minimal = a.get("/api/spectra", params={"objID": world["obj_id"], "minimalPayload": "true"}).json()["data"]
    assert "fluxes" not in minimal[0] and minimal[0]["id"] == s1
    r = a.get("/api/spectra/range", params={"instrument_ids": [world["inst"]], "min_date": "2026-11-21T00:00:00"})
    assert r.status_code == 200, r.text
    assert [s["id"] for s in r.json()["data"]] == [s2]
    assert [s["id"] for s in world["bob"].get("/api/spectra/range", params={
        "instrument_ids": [world["inst"]]}).json()["data"]] == []
    r = a.get("/api/spectra", params={"groupIDs": "1,abc"})
    assert r.status_code == 400 and "Could not parse all elements to integers" in r.json()["message"]
    r = a.get("/api/spectra", params={"instrumentIDs": str(10**9)})
    assert r.status_code == 400 and "Not all Instrument IDs" in r.json()["message"]
    r = a.get("/api/spectra", params={"type": "galaxy"})
    assert r.status_code == 400 and "not in list of allowed spectrum types" in r.json()["message"]
    # comments on a spectrum, and the comment filters
    r = a.post(f"/api/spectra/{s2}/comments", json={"text": "strong H-alpha", "group_ids": [world["gid"]]})
    assert r.status_code == 200, r.text
    assert ids(commentsFilter="H-alpha") == [s2]
    assert ids(commentsFilterAuthor=a.username) == [s2]
    assert ids(commentsFilter="nothing like it") == []
    # annotations on a spectrum
    r = a.post(f"/api/spectra/{s2}/annotations", json={"origin": "fit", "data": {"z": 0.05}})
    assert r.status_code == 200, r.text
    got = a.get(f"/api/spectra/{s2}").json()["data"]
    assert [c["text"] for c in got["comments"]] == ["strong H-alpha"]
    assert [(x["origin"], x["type"]) for x in got["annotations"]] == [("fit", "spectrum")]
    assert world["bob"].get(f"/api/spectra/{s2}/annotations").json()["data"] == []


def test_spectrum_ascii_parse_and_upload(world):
    a = world["alice"]
    r = a.post("/api/spectra/parse/ascii", json={"ascii": ASCII, "fluxerr_column": 2})
    assert r.status_code == 200, r.text
    parsed = r.json()["data"]
    assert parsed["wavelengths"] == [4000.0, 4010.0, 4020.0, 4030.0]
    assert parsed["fluxes"][1] == pytest.approx(1.2e-16) and parsed["errors"][3] == pytest.approx(0.9e-18)
    assert parsed["altdata"]["OBJECT"] == {"value": "ZTF20abpuxna", "comment": "User-specified object name"}
    assert parsed["altdata"]["RA"] == 230.14
    r = a.post("/api/spectrum/parse/ascii", json={"ascii": "4000 0.01\n4500 0.02\n5000 0.005\n"})
    assert r.status_code == 200 and r.json()["data"]["errors"] is None
    r = a.post("/api/spectra/ascii", json={
        "ascii": ASCII, "fluxerr_column": 2, "obj_id": world["obj_id"], "instrument_id": world["inst"],
        "observed_at": "2026-11-20T05:00:00", "filename": "/tmp/some/dir/ZTF20abpuxna_Keck1.ascii"})
    assert r.status_code == 200, r.text
    sid = r.json()["data"]["id"]
    got = a.get(f"/api/spectra/{sid}", params={"includeOriginalFile": "true"}).json()["data"]
    assert got["original_file_filename"] == "ZTF20abpuxna_Keck1.ascii" and got["original_file_string"] == ASCII
    assert got["errors"][0] == pytest.approx(1.0e-18)
    # bad files are 400s naming what is wrong
    for text, field in (("4000\n4010\n", "ascii"), ("4000 abc\n4010 def\n", "ascii"), ("4000 1\n4010 nan\n", "ascii")):
        r = a.post("/api/spectra/parse/ascii", json={"ascii": text})
        assert r.status_code == 400, text
        assert r.json()["message"].startswith("Error parsing spectrum")
    r = a.post("/api/spectra/parse/ascii", json={"ascii": ASCII, "fluxerr_column": 7})
    assert r.status_code == 400 and "fluxerr_column" in r.json()["message"]
    r = a.post("/api/spectra/ascii", json={"ascii": ASCII, "obj_id": world["obj_id"], "instrument_id": world["inst"],
                                           "observed_at": "2026-11-20"})
    assert r.status_code == 400 and "filename" in r.json()["message"]
