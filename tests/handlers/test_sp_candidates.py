"""SkyPortal's candidate API as Kowalski and SkyPortal's clients use it: POST (every Obj field), HEAD,
GET one / many (SkyPortal's fields and parameters), DELETE."""

import uuid

import pytest

from tests.broker.ingest.helpers import make_group_with_filter

from .test_envelope import assert_error


@pytest.fixture(scope="module")
def scan(admin, make_user):
    alice, bob = make_user(prefix="alice"), make_user(prefix="bob")
    sid = admin.post("/api/streams", json={"name": f"sp-cand-{uuid.uuid4().hex[:6]}"}).json()["data"]["id"]
    gid, fid = make_group_with_filter(alice, admin, sid)
    gid2, fid2 = make_group_with_filter(alice, admin, sid)
    gid_b, fid_b = make_group_with_filter(bob, admin, sid)
    return dict(alice=alice, bob=bob, gid=gid, fid=fid, gid2=gid2, fid2=fid2, gid_b=gid_b, fid_b=fid_b)


def kowalski_body(obj_id, filter_ids, candid=None):
    """What Kowalski's alert_post_candidate sends."""
    return {"id": obj_id, "ra": 123.4, "dec": -12.3, "score": 0.93, "filter_ids": filter_ids,
            "passing_alert_id": candid or 2461234567015015012, "passed_at": "2026-03-01T12:34:56.789012",
            "origin": "Kowalski"}


def test_kowalski_post_head_get(scan):
    alice, fid, fid2, gid, gid2 = scan["alice"], scan["fid"], scan["fid2"], scan["gid"], scan["gid2"]
    name = f"ZTF26{uuid.uuid4().hex[:7]}"
    assert alice.request("HEAD", f"/api/candidates/{name}").status_code == 404
    r = alice.post("/api/candidates", json=kowalski_body(name, [fid, fid2]))
    assert r.status_code == 200, r.text
    ids = r.json()["data"]["ids"]
    assert len(ids) == 2
    # the same (object, filter, passed_at) again: the same candidates (idempotent, as SkyPortal)
    assert alice.post("/api/candidates", json=kowalski_body(name, [fid, fid2])).json()["data"]["ids"] == ids
    assert alice.request("HEAD", f"/api/candidates/{name}").status_code == 200
    one = alice.get(f"/api/candidates/{name}").json()["data"]
    assert (one["id"], one["score"], one["origin"], one["ra"], one["dec"]) == (name, 0.93, "Kowalski", 123.4, -12.3)
    assert one["is_source"] is False and one["saved_groups"] == []
    assert sorted(one["filter_ids"]) == sorted([fid, fid2]) and sorted(one["passing_group_ids"]) == sorted([gid, gid2])
    assert one["passing_alert_id"] == 2461234567015015012
    assert "photometry" not in one  # SkyPortal: only with includePhotometry
    for k in ("dm", "luminosity_distance", "angular_diameter_distance", "gal_lat", "gal_lon", "last_detected_at",
              "transient", "varstar", "is_roid", "alias", "tns_name", "redshift"):
        assert k in one, k
    assert one["transient"] is False and one["offset"] == 0.0
    alerts = alice.get(f"/api/candidates/{name}", params={"includeAlerts": "true"}).json()["data"]["passing_alerts"]
    assert {a["filter_id"] for a in alerts} == {fid, fid2}
    assert alice.get(f"/api/candidates/{name}", params={"includePhotometry": "true"}).json()["data"]["photometry"] == []
    got = alice.get(f"/api/candidates/{name}", params={"includeFollowupRequests": "true"}).json()["data"]
    assert got["followup_requests"] == []


def test_unreadable_filter_ids_are_passed_over(scan):
    """As SkyPortal: Kowalski may post a filter deleted since; the readable ones get their candidates."""
    alice = scan["alice"]
    name = f"ZTF26{uuid.uuid4().hex[:7]}"
    r = alice.post("/api/candidates", json=kowalski_body(name, [scan["fid"], scan["fid_b"], 10**9]))
    assert r.status_code == 200, r.text
    assert len(r.json()["data"]["ids"]) == 1
    assert alice.get(f"/api/candidates/{name}").json()["data"]["filter_ids"] == [scan["fid"]]
    assert scan["bob"].request("HEAD", f"/api/candidates/{name}").status_code == 404


def test_every_obj_field_and_numeric_id(scan):
    alice, fid = scan["alice"], scan["fid"]
    num = int(uuid.uuid4().int % 10**17)
    body = {"id": num, "ra": 234.22, "dec": -22.33, "redshift": 3, "transient": False, "ra_dis": 2.3,
            "varstar": True, "is_roid": False, "ra_err": 0.5, "dec_err": 0.4, "offset": 0.7,
            "redshift_error": 0.1, "tns_name": "2026abc", "altdata": {"k": 1}, "alias": ["x", "y"],
            "detect_photometry_count": 4, "filter_ids": [fid], "passed_at": "2026-03-01 00:00:00"}
    r = scan["alice"].post("/api/candidates", json=body)
    assert r.status_code == 200, r.text
    one = alice.get(f"/api/candidates/{num}").json()["data"]
    assert one["id"] == str(num)
    for k, v in body.items():
        if k not in ("id", "filter_ids", "passed_at"):
            assert one[k] == v, k
    assert one["redshift_history"][-1]["value"] == 3 and one["redshift_history"][-1]["set_by_user_id"] == alice.user_id


def test_post_errors(scan):
    alice, bob, fid = scan["alice"], scan["bob"], scan["fid"]
    name = f"err{uuid.uuid4().hex[:8]}"
    assert_error(alice.post("/api/candidates", json={"id": name, "ra": 1, "dec": 1, "passed_at": "2026-01-01"}),
                 400, "filter_ids")
    assert_error(alice.post("/api/candidates", json={"id": name, "ra": 1, "dec": 1, "filter_ids": [fid]}), 400,
                 "passed_at")
    assert_error(alice.post("/api/candidates", json={"id": name, "filter_ids": [fid], "passed_at": "2026-01-01"}),
                 400, "ra")
    assert_error(alice.post("/api/candidates", json={"id": name, "ra": 1, "dec": 1, "filter_ids": [fid],
                                                     "passed_at": "not a date"}), 400, "passed_at")
    assert_error(alice.post("/api/candidates", json={"id": name, "ra": 1, "dec": 1, "filter_ids": [fid],
                                                     "passed_at": "2026-01-01", "transient": "yes"}), 400, "transient")
    assert_error(bob.post("/api/candidates", json={"id": name, "ra": 1, "dec": 1, "filter_ids": [fid],
                                                   "passed_at": "2026-01-01"}), 400, "filter_ids")


def test_other_groups_candidate_is_invalid(scan):
    alice, bob = scan["alice"], scan["bob"]
    name = f"ZTF26{uuid.uuid4().hex[:7]}"
    assert alice.post("/api/candidates", json=kowalski_body(name, [scan["fid"]])).status_code == 200
    assert bob.request("HEAD", f"/api/candidates/{name}").status_code == 404
    assert_error(bob.get(f"/api/candidates/{name}"), 400, "Invalid ID")
    assert name not in [c["id"] for c in bob.get("/api/candidates").json()["data"]["candidates"]]
    assert_error(bob.delete(f"/api/candidates/{name}/{scan['fid']}"), 400, "Invalid (obj_id, filter_id) pairing")
    assert alice.request("HEAD", f"/api/candidates/{name}").status_code == 200


def test_list_fields_pagination_and_parameters(scan):
    alice, fid2, gid = scan["alice"], scan["fid2"], scan["gid"]
    before = alice.get("/api/candidates", params={"filterIDs": str(fid2)}).json()["data"]["totalMatches"]
    names = [f"L{uuid.uuid4().hex[:9]}" for _ in range(3)]
    for n in names:
        body = {**kowalski_body(n, [fid2]), "passed_at": "2026-03-01T12:34:56"}
        assert alice.post("/api/candidates", json=body).status_code == 200
    assert alice.post("/api/sources", json={"id": names[0], "group_ids": [gid]}).status_code == 200
    total = before + 3
    data = alice.get("/api/candidates", params={"filterIDs": str(fid2), "numPerPage": 2}).json()["data"]
    assert data["totalMatches"] == total and data["numPerPage"] == 2 and data["pageNumber"] == 1
    assert len(data["candidates"]) == 2
    by_id = {c["id"]: c for c in alice.get("/api/candidates", params={"filterIDs": str(fid2)}).json()["data"][
        "candidates"]}
    assert set(names) <= set(by_id)
    first = by_id[names[0]]
    assert first["is_source"] is True and first["saved_groups"][0]["id"] == gid
    assert first["passing_group_ids"] == [scan["gid2"]] and first["filter_ids"] == [fid2]
    assert "dm" in first and "luminosity_distance" in first and "photometry" not in first
    # SkyPortal answers a page past the last with 400
    last = -(-total // 2)
    assert alice.get("/api/candidates", params={"filterIDs": str(fid2), "numPerPage": 2,
                                                "pageNumber": last}).status_code == 200
    assert_error(alice.get("/api/candidates", params={"filterIDs": str(fid2), "numPerPage": 2,
                                                      "pageNumber": last + 1}), 400, "out of range")
    # savedStatus
    saved = alice.get("/api/candidates", params={"filterIDs": str(fid2), "savedStatus": "savedToAnyAccessible"})
    saved_ids = [c["id"] for c in saved.json()["data"]["candidates"]]
    assert names[0] in saved_ids and names[1] not in saved_ids
    # "null" dates are no dates (SkyPortal's front end sends them)
    assert alice.get("/api/candidates", params={"filterIDs": str(fid2), "startDate": "null"}).json()["data"][
        "totalMatches"] == total
    after = alice.get("/api/candidates", params={"filterIDs": str(fid2), "startDate": "2026-03-01T12:34:57"})
    assert not set(names) & {c["id"] for c in after.json()["data"]["candidates"]}
    # nameOnly autocomplete
    got = alice.get("/api/candidates", params={"nameOnly": "true", "objID": names[1][:6]}).json()["data"]
    assert {"id": names[1]} in got["candidates"]
    assert scan["bob"].get("/api/candidates", params={"nameOnly": "true", "objID": names[1][:6]}).json()["data"][
        "candidates"] == []


def test_autosave_saves_the_page(scan):
    """SkyPortal's autosave / autosaveGroupIds (a comma-separated list)."""
    alice, fid, gid, gid2 = scan["alice"], scan["fid"], scan["gid"], scan["gid2"]
    name = f"A{uuid.uuid4().hex[:9]}"
    assert alice.post("/api/candidates", json=kowalski_body(name, [fid])).status_code == 200
    r = alice.get("/api/candidates", params={"filterIDs": str(fid), "numPerPage": 500, "autosave": "true",
                                             "autosaveGroupIds": f"{gid},{gid2}"})
    assert r.status_code == 200, r.text
    assert name in [c["id"] for c in r.json()["data"]["candidates"]]
    groups = {g["id"] for g in alice.get(f"/api/sources/{name}").json()["data"]["groups"]}
    assert groups == {gid, gid2}
    assert_error(alice.get("/api/candidates", params={"autosave": "true", "autosaveGroupIds": "1,x"}), 400,
                 "autosaveGroupIds")
    assert_error(alice.get("/api/candidates", params={"filterIDs": str(fid), "autosave": "true",
                                                      "autosaveGroupIds": str(scan["gid_b"])}), 400, "group_ids")


@pytest.mark.parametrize("params", [{"sortByAnnotationOrigin": "x"},
                                    {"annotationFilterList": "[]"}, {"photometryAnnotationsFilter": "x"}])
def test_unsupported_parameters_are_refused(scan, params):
    assert_error(scan["alice"].get("/api/candidates", params=params), 400, next(iter(params)))


def test_delete_candidate(scan):
    alice, fid = scan["alice"], scan["fid"]
    name = f"D{uuid.uuid4().hex[:9]}"
    assert alice.post("/api/candidates", json=kowalski_body(name, [fid])).status_code == 200
    assert alice.delete(f"/api/candidates/{name}/{fid}").status_code == 200
    assert alice.request("HEAD", f"/api/candidates/{name}").status_code == 404
    assert_error(alice.get(f"/api/candidates/{name}"), 400, "Invalid ID")
    assert_error(alice.delete(f"/api/candidates/{name}/{fid}"), 400, "no matching candidates")
