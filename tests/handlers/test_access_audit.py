"""What the endpoint-by-endpoint access audit found (issue 8): another group's rows stay out of sight."""

import uuid

from tests.facility_apis.payloads import PAYLOADS

from .test_envelope import assert_error
from .followup_helpers import post


def _two_groups(make_user):
    a, b = make_user(prefix="alice"), make_user(prefix="bob")
    ga = a.post("/api/groups", json={"name": f"a-{uuid.uuid4().hex[:8]}"}).json()["data"]["id"]
    gb = b.post("/api/groups", json={"name": f"b-{uuid.uuid4().hex[:8]}"}).json()["data"]["id"]
    return a, b, ga, gb


def test_saving_another_groups_object_reveals_nothing(make_user):
    a, b, ga, gb = _two_groups(make_user)
    hidden, missing = f"ZTF26h{uuid.uuid4().hex[:6]}", f"ZTF26m{uuid.uuid4().hex[:6]}"
    assert b.post("/api/sources", json={"id": hidden, "ra": 50.0, "dec": 5.0, "redshift": 0.05,
                                        "group_ids": [gb]}).status_code == 200
    r_hidden = a.post("/api/sources", json={"id": hidden, "group_ids": [ga]})
    r_missing = a.post("/api/sources", json={"id": missing, "group_ids": [ga]})
    assert_error(r_hidden, 400, "ra")
    assert r_hidden.json()["message"].replace(hidden, "X") == r_missing.json()["message"].replace(missing, "X")
    # with a position it is saved like any object; the stored object is not changed by the caller's values
    assert a.post("/api/sources", json={"id": hidden, "ra": 51.0, "dec": 6.0, "group_ids": [ga]}).status_code == 200
    got = a.get(f"/api/sources/{hidden}").json()["data"]
    assert (got["ra"], got["dec"]) == (50.0, 5.0)


def test_detection_filters_count_only_visible_photometry(make_user):
    a, b, ga, gb = _two_groups(make_user)
    obj = f"ZTF26d{uuid.uuid4().hex[:6]}"
    for who, g in ((a, ga), (b, gb)):
        assert who.post("/api/sources", json={"id": obj, "ra": 60.0, "dec": 6.0, "group_ids": [g]}).status_code == 200
    n = 4
    assert b.post("/api/photometry", json={"obj_id": obj, "mjd": [60100.0 + i for i in range(n)], "flux": 100.0,
                                           "fluxerr": 1.0, "zp": 23.9, "filter": "ztfr", "magsys": "ab",
                                           "group_ids": [gb], "instrument_name": "ZTF"}).status_code == 200
    ids = lambda who: [s["id"] for s in who.get("/api/sources", params={  # noqa: E731
        "numberDetections": n, "numPerPage": 500}).json()["data"]["sources"]]
    assert obj in ids(b)
    assert obj not in ids(a)


def test_photometry_names_only_the_callers_groups(make_user, admin):
    a, b, ga, gb = _two_groups(make_user)
    obj = f"ZTF26p{uuid.uuid4().hex[:6]}"
    shared = admin.post("/api/groups", json={"name": f"s-{uuid.uuid4().hex[:8]}"}).json()["data"]["id"]
    for who in (a, b):
        admin.post(f"/api/groups/{shared}/users", json={"userID": who.user_id})
    assert b.post("/api/sources", json={"id": obj, "ra": 70.0, "dec": 7.0, "group_ids": [shared]}).status_code == 200
    (pid,) = b.post("/api/photometry", json={"obj_id": obj, "mjd": 60000.0, "flux": 10.0, "fluxerr": 1.0, "zp": 23.9,
                                             "filter": "ztfr", "magsys": "ab", "group_ids": [shared, gb],
                                             "instrument_name": "ZTF"}
                    ).json()["data"]["ids"]
    assert gb not in a.get(f"/api/photometry/{pid}").json()["data"]["group_ids"]
    assert gb in b.get(f"/api/photometry/{pid}").json()["data"]["group_ids"]


def test_manage_allocations_in_a_target_group_does_not_own_the_time(team, make_user):
    rid = post(team).json()["data"]["id"]
    target = team["alice"].post("/api/groups", json={"name": f"t-{uuid.uuid4().hex[:8]}"}).json()["data"]["id"]
    carol = make_user(prefix="carol", acls=("Manage allocations",))
    team["alice"].post(f"/api/groups/{target}/users", json={"userID": carol.user_id})
    other = team["alice"].post("/api/groups", json={"name": f"o-{uuid.uuid4().hex[:8]}"}).json()["data"]["id"]
    rid2 = post(team, target_group_ids=[target, other]).json()["data"]["id"]
    seen = carol.get(f"/api/followup_request/{rid2}")  # targeted at carol's group: she may see it
    assert seen.status_code == 200 and seen.json()["data"]["target_group_ids"] == [target]
    assert team["alice"].get(f"/api/followup_request/{rid2}").json()["data"]["target_group_ids"] == sorted(
        [target, other])
    assert_error(carol.put(f"/api/followup_request/{rid2}", json={"payload": PAYLOADS["1M0-SCICAM-SINISTRO"]}), 403)
    assert_error(carol.delete(f"/api/followup_request/{rid2}"), 403)
    assert_error(carol.delete(f"/api/followup_request/{rid}"), 400)


def test_constraints_consult_only_what_the_requester_sees(team, make_user):
    b = make_user(prefix="bob2")
    gb = b.post("/api/groups", json={"name": f"b-{uuid.uuid4().hex[:8]}"}).json()["data"]["id"]
    payload = dict(PAYLOADS["1M0-SCICAM-SINISTRO"], ignore_source_group_ids=[gb])
    assert_error(post(team, payload=payload), 400, "ignore_source_group_ids")


def test_new_users_only_into_groups_the_caller_administers(make_user):
    manager = make_user(roles=("Full user",), acls=("Manage users",), prefix="mgr")
    _, b, _, gb = _two_groups(make_user)
    mine = manager.post("/api/groups", json={"name": f"m-{uuid.uuid4().hex[:8]}"}).json()["data"]["id"]
    assert_error(manager.post("/api/user", json={"username": f"u-{uuid.uuid4().hex[:6]}",
                                                 "groupIDsAndAdmin": [[gb, True]]}), 400, "groupIDsAndAdmin")
    r = manager.post("/api/user", json={"username": f"u-{uuid.uuid4().hex[:6]}", "groupIDsAndAdmin": [[mine, False]]})
    assert r.status_code == 200, r.text


def test_a_renamed_user_keeps_their_own_group(make_user, admin):
    bob, x = make_user(prefix="bob"), make_user(prefix="x")
    old = bob.username
    assert admin.patch(f"/api/user/{bob.user_id}", json={"username": old + "-2"}).status_code == 200
    assert admin.patch(f"/api/user/{x.user_id}", json={"username": old}).status_code == 200
    assert admin.delete(f"/api/user/{x.user_id}").status_code == 200
    groups = bob.get("/api/groups", params={"includeSingleUserGroups": "true"}).json()["data"]["user_groups"]
    assert any(g["name"] == old + "-2" and g["single_user_group"] for g in groups), groups


def test_a_taxonomy_shared_beyond_your_groups_is_not_yours_to_change(make_user, admin):
    a, b, ga, gb = _two_groups(make_user)
    tax = admin.post("/api/taxonomy", json={"name": f"t-{uuid.uuid4().hex[:6]}", "version": "1",
                                            "hierarchy": {"class": "A", "subclasses": [{"class": "B"}]},
                                            "group_ids": [ga, gb]}).json()["data"]["taxonomy_id"]
    obj = f"ZTF26t{uuid.uuid4().hex[:6]}"
    assert b.post("/api/sources", json={"id": obj, "ra": 1.0, "dec": 1.0, "group_ids": [gb]}).status_code == 200
    assert b.post("/api/classification", json={"obj_id": obj, "taxonomy_id": tax, "classification": "B",
                                               "group_ids": [gb]}).status_code == 200
    poster = make_user(prefix="curator", acls=("Post taxonomy", "Delete taxonomy"))
    admin.post(f"/api/groups/{ga}/users", json={"userID": poster.user_id})
    r = poster.put(f"/api/taxonomy/{tax}", json={"version": "2"})  # (a hierarchy is never editable: SkyPortal)
    assert_error(r, 403, "shared")
    assert "'B'" not in r.text
    assert_error(poster.delete(f"/api/taxonomy/{tax}"), 403)
    assert b.get(f"/api/sources/{obj}").json()["data"]["classifications"]
