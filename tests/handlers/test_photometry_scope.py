"""Uploads never merge into (or reveal) another group's point; bulk uploads (issue 8, items 7, 8, 10; issue 9)."""

import uuid

from .test_envelope import assert_error


def _obj_in_two_groups(make_user):
    alice, bob = make_user(prefix="alice"), make_user(prefix="bob")
    ga = alice.post("/api/groups", json={"name": f"a-{uuid.uuid4().hex[:8]}"}).json()["data"]["id"]
    gb = bob.post("/api/groups", json={"name": f"b-{uuid.uuid4().hex[:8]}"}).json()["data"]["id"]
    obj = f"ZTF26{uuid.uuid4().hex[:7]}"
    assert alice.post("/api/sources", json={"id": obj, "ra": 10.0, "dec": 20.0, "group_ids": [ga]}).status_code == 200
    assert bob.post("/api/sources", json={"id": obj, "ra": 10.0, "dec": 20.0, "group_ids": [gb]}).status_code == 200
    return alice, bob, ga, gb, obj


def point(obj, group, mag, **kw):
    return {"obj_id": obj, "mjd": 60000.5, "mag": mag, "magerr": 0.1, "limiting_mag": 21.0, "filter": "ztfg",
            "magsys": "ab", "instrument_name": "ZTF", "origin": "x", "group_ids": [group], **kw}


def test_same_key_in_another_group_is_neither_merged_nor_revealed(make_user):
    alice, bob, ga, gb, obj = _obj_in_two_groups(make_user)
    (secret,) = alice.post("/api/photometry", json=point(obj, ga, 17.0)).json()["data"]["ids"]
    # the very same point (SkyPortal's key: object, instrument, origin, mjd, fluxerr, flux): Bob cannot see
    # Alice's, so his POST is no "already exists" (which would reveal it) and gets a row of its own
    r = bob.post("/api/photometry", json=point(obj, gb, 17.0))
    assert r.status_code == 200, r.text
    (mine,) = r.json()["data"]["ids"]
    assert mine != secret
    assert_error(bob.get(f"/api/photometry/{secret}"), 400, "cannot find")
    mags = [p["mag"] for p in bob.get(f"/api/sources/{obj}/photometry", params={"format": "mag"}).json()["data"]]
    assert len(mags) == 1 and abs(mags[0] - 17.0) < 1e-9
    # alice's point is untouched and still hers alone
    got = alice.get(f"/api/photometry/{secret}", params={"format": "mag"}).json()["data"]
    assert abs(got["mag"] - 17.0) < 1e-9 and gb not in got["group_ids"] and ga in got["group_ids"]
    # a point the poster can see is reused by PUT (idempotent), and a POST of it is SkyPortal's 400
    assert bob.put("/api/photometry", json=point(obj, gb, 17.0)).json()["data"]["ids"] == [mine]
    assert_error(bob.post("/api/photometry", json=point(obj, gb, 17.0)), 400, "already exists")


def test_invisible_and_missing_objects_answer_alike(make_user):
    alice, bob, ga, gb, obj = _obj_in_two_groups(make_user)
    carol = make_user(prefix="carol")
    g = carol.post("/api/groups", json={"name": f"c-{uuid.uuid4().hex[:8]}"}).json()["data"]["id"]
    hidden = assert_error(carol.post("/api/photometry", json=point(obj, g, 18.0)), 400, "obj_id")
    missing = assert_error(carol.post("/api/photometry", json=point("ZTF26nosuchobj", g, 18.0)), 400, "obj_id")
    assert hidden["message"].replace(obj, "X") == missing["message"].replace("ZTF26nosuchobj", "X")


def test_bulk_upload_keeps_order_and_duplicates(make_user):
    alice, _, ga, _, obj = _obj_in_two_groups(make_user)
    n = 5000
    mjd = [60000.0 + i * 0.001 for i in range(n)]
    body = {"obj_id": obj, "mjd": mjd + mjd[:3], "flux": [float(i) for i in range(n)] + [0.0, 1.0, 2.0],
            "fluxerr": 1.0, "zp": 23.9, "filter": "ztfr", "magsys": "ab", "instrument_name": "ZTF",
            "group_ids": [ga]}
    r = alice.put("/api/photometry", json=body)  # PUT: a repeat is the same point (POST refuses repeats)
    assert r.status_code == 200, r.text
    ids = r.json()["data"]["ids"]
    assert len(ids) == n + 3 and len(set(ids)) == n and ids[n:] == ids[:3]
    assert ids[:n] == sorted(ids[:n])  # stored in the order given
    got = alice.get(f"/api/photometry/{ids[1234]}", params={"format": "flux"}).json()["data"]
    assert abs(got["mjd"] - mjd[1234]) < 1e-9 and abs(got["flux"] - 1234.0) < 1e-9
