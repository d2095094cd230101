"""Groups, streams and filters: CRUD with SkyPortal's paths and fields, and group isolation."""

import uuid

import pytest

from .test_envelope import assert_error


def name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def setup(admin, make_user):
    """Alice owns a group with a stream and a filter; Bob is in none of it."""
    alice, bob = make_user(prefix="alice"), make_user(prefix="bob")
    stream_name = name("ztf")
    sid = admin.post("/api/streams", json={"name": stream_name,
                                          "altdata": {"topic": stream_name, "format": "ztf_avro"}}
                     ).json()["data"]["id"]
    assert admin.post(f"/api/streams/{sid}/users", json={"user_id": alice.user_id}).status_code == 200
    r = alice.post("/api/groups", json={"name": name("group"), "nickname": name("g")})
    assert r.status_code == 200, r.text
    gid = r.json()["data"]["id"]
    assert alice.post(f"/api/groups/{gid}/streams", json={"stream_id": sid}).status_code == 200
    r = alice.post("/api/filters", json={"name": "bright", "stream_id": sid, "group_id": gid,
                                         "criteria": {"field": "mag", "op": "<", "value": 18}})
    assert r.status_code == 200, r.text
    return dict(alice=alice, bob=bob, admin=admin, sid=sid, gid=gid, fid=r.json()["data"]["id"])


def test_filter_crud(setup):
    alice, fid, sid, gid = setup["alice"], setup["fid"], setup["sid"], setup["gid"]
    f = alice.get(f"/api/filters/{fid}").json()["data"]
    assert (f["name"], f["stream_id"], f["group_id"]) == ("bright", sid, gid)
    assert f["stream"]["id"] == sid and f["group"]["id"] == gid
    assert f["criteria"] == {"field": "mag", "op": "<", "value": 18} and f["autosave"] is False
    assert fid in [x["id"] for x in alice.get("/api/filters").json()["data"]]
    assert alice.patch(f"/api/filters/{fid}", json={"name": "brighter", "autosave": True}).status_code == 200
    f = alice.get(f"/api/filters/{fid}").json()["data"]
    assert f["name"] == "brighter" and f["autosave"] is True
    assert alice.delete(f"/api/filters/{fid}").status_code == 200
    assert_error(alice.get(f"/api/filters/{fid}"), 400, "Cannot find a filter with ID")


def test_filter_needs_group_stream_access(setup, admin):
    alice, gid = setup["alice"], setup["gid"]
    other = admin.post("/api/streams", json={"name": name("other")}).json()["data"]["id"]
    assert_error(alice.post("/api/filters", json={"name": "x", "stream_id": other, "group_id": gid}),
                 400, "stream_id")
    assert_error(alice.post("/api/filters", json={"name": "x", "stream_id": 10**8, "group_id": gid}),
                 400, "stream_id")


def test_group_members(setup, make_user):
    alice, gid = setup["alice"], setup["gid"]
    carol = make_user(prefix="carol")
    # as SkyPortal, a member must be able to read every stream of the group
    assert_error(alice.post(f"/api/groups/{gid}/users", json={"userID": carol.user_id}), 403,
                 "does not have stream access")
    assert setup["admin"].post(f"/api/streams/{setup['sid']}/users", json={"user_id": carol.user_id}).status_code == 200
    assert alice.post(f"/api/groups/{gid}/users", json={"userID": carol.user_id, "canSave": False}).status_code == 200
    g = alice.get(f"/api/groups/{gid}").json()["data"]
    members = {u["id"]: u for u in g["users"]}
    assert members[alice.user_id]["admin"] is True
    assert members[carol.user_id]["admin"] is False and members[carol.user_id]["can_save"] is False
    assert [s["id"] for s in g["streams"]] == [setup["sid"]]
    # carol now sees the group's filters
    assert setup["fid"] in [f["id"] for f in carol.get("/api/filters").json()["data"]]
    # but is not a group admin
    assert_error(carol.put(f"/api/groups/{gid}", json={"description": "hijack"}), 400, "Cannot find Group with id")
    assert alice.patch(f"/api/groups/{gid}/users", json={"userID": carol.user_id, "admin": True}).status_code == 200
    assert carol.put(f"/api/groups/{gid}", json={"description": "ok now"}).status_code == 200
    assert alice.delete(f"/api/groups/{gid}/users/{carol.user_id}").status_code == 200
    # no longer a member: the (non-private) group is still listed, without its members and filters
    g = carol.get(f"/api/groups/{gid}").json()["data"]
    assert "users" not in g and g["filters"] == []


def test_group_isolation(setup):
    bob, gid, fid, sid = setup["bob"], setup["gid"], setup["fid"], setup["sid"]
    # as SkyPortal, a group that is not private is listed to everyone, but not its members or filters
    g = bob.get(f"/api/groups/{gid}").json()["data"]
    assert "users" not in g and g["filters"] == []
    groups = bob.get("/api/groups").json()["data"]
    assert gid not in [g["id"] for g in groups["user_groups"] + groups["user_accessible_groups"]]
    assert gid in [g["id"] for g in groups["all_groups"]]
    # a private group: not even that
    assert setup["alice"].put(f"/api/groups/{gid}", json={"private": True}).status_code == 200
    assert_error(bob.get(f"/api/groups/{gid}"), 400, "Cannot find Group with id")
    assert gid not in [g["id"] for g in bob.get("/api/groups").json()["data"]["all_groups"]]
    assert bob.get("/api/groups", params={"name": g["name"]}).json()["data"] == []
    assert fid not in [f["id"] for f in bob.get("/api/filters").json()["data"]]
    assert_error(bob.get(f"/api/filters/{fid}"), 400, "Cannot find a filter with ID")
    assert sid not in [s["id"] for s in bob.get("/api/streams").json()["data"]]
    assert_error(bob.get(f"/api/streams/{sid}"), 400, "Could not retrieve stream")
    # cannot modify (SkyPortal's answers: 400, and 403 for a group delete)
    assert_error(bob.patch(f"/api/filters/{fid}", json={"name": "pwned"}), 400, "Cannot find a filter")
    assert_error(bob.delete(f"/api/filters/{fid}"), 400, "Cannot find a filter")
    assert_error(bob.post("/api/filters", json={"name": "x", "stream_id": sid, "group_id": gid}), 400, "group_id")
    assert_error(bob.put(f"/api/groups/{gid}", json={"name": "pwned"}), 400, "Cannot find Group with id")
    assert_error(bob.delete(f"/api/groups/{gid}"), 403, "Cannot find Group with id")
    assert_error(bob.post(f"/api/groups/{gid}/users", json={"userID": bob.user_id}), 400, "not accessible")
    r = bob.patch(f"/api/streams/{sid}", json={"name": "pwned"})
    assert r.status_code == 401 and "Manage streams" in r.json()["message"]
    # and nothing changed
    f = setup["alice"].get(f"/api/filters/{fid}").json()["data"]
    assert f["name"] == "bright"


def test_stream_crud(admin, user):
    n = name("lsst")
    sid = admin.post("/api/streams", json={"name": n, "altdata": {"topic": n, "format": "lsst_avro"}}
                     ).json()["data"]["id"]
    s = admin.get(f"/api/streams/{sid}").json()["data"]
    assert s["name"] == n and s["altdata"] == {"topic": n, "format": "lsst_avro"}
    assert admin.patch(f"/api/streams/{sid}", json={"altdata": {"topic": "t2", "format": "json"}}).status_code == 200
    assert admin.get(f"/api/streams/{sid}").json()["data"]["altdata"]["topic"] == "t2"
    assert_error(admin.post("/api/streams", json={"name": n}), 400, "already exists")
    assert admin.post(f"/api/streams/{sid}/users", json={"user_id": user.user_id}).status_code == 200
    assert sid in [s["id"] for s in user.get("/api/streams").json()["data"]]
    assert admin.delete(f"/api/streams/{sid}/users/{user.user_id}").status_code == 200
    assert sid not in [s["id"] for s in user.get("/api/streams").json()["data"]]
    assert admin.delete(f"/api/streams/{sid}").status_code == 200
    assert_error(admin.get(f"/api/streams/{sid}"), 400, "Could not retrieve stream")


def test_group_delete_and_sitewide(admin, user):
    r = user.post("/api/groups", json={"name": name("tmp")})
    gid = r.json()["data"]["id"]
    assert user.delete(f"/api/groups/{gid}").status_code == 200
    assert_error(user.get(f"/api/groups/{gid}"), 400, "Cannot find Group with id")
    sitewide = [g for g in admin.get("/api/groups").json()["data"]["all_groups"] if g["name"] == "Sitewide Group"]
    assert len(sitewide) == 1
    assert_error(admin.delete(f"/api/groups/{sitewide[0]['id']}"), 403, "sitewide")
    assert_error(user.post("/api/groups", json={"name": "Sitewide Group"}), 400, "already exists")


@pytest.mark.parametrize("criteria,where", [
    ({"magpsf": {"$lt": 18}}, "unknown operator"),
    ({"field": "mag", "op": "~", "value": 1}, "criteria.op"),
    ({"field": "colour", "op": "<", "value": 1}, "unknown field 'colour'"),
    ({"and": [{"field": "mag", "op": "<", "value": 1}, {"field": "ra", "op": "<"}]}, "criteria.and[1]"),
    ({"cone": {"ra": 400, "dec": 0, "radius": 1}}, "criteria.cone.ra"),
    ({"detections": {"op": ">=", "value": "two"}}, "criteria.detections.value"),
    ({"field": "band", "in": []}, "criteria.in"),
])
def test_filter_criteria_are_validated(setup, criteria, where):
    alice, fid, sid, gid = setup["alice"], setup["fid"], setup["sid"], setup["gid"]
    assert_error(alice.post("/api/filters", json={"name": "x", "stream_id": sid, "group_id": gid,
                                                  "criteria": criteria}), 400, where)
    assert_error(alice.patch(f"/api/filters/{fid}", json={"criteria": criteria}), 400, where)
    assert alice.get(f"/api/filters/{fid}").json()["data"]["criteria"] == {"field": "mag", "op": "<", "value": 18}


def test_stream_altdata_is_validated(admin):
    assert_error(admin.post("/api/streams", json={"name": name("s"), "altdata": {"topic": "t"}}),
                 400, "altdata.format")
    assert_error(admin.post("/api/streams", json={"name": name("s"), "altdata": {"topic": "t", "format": "fits"}}),
                 400, "altdata.format")
    assert_error(admin.post("/api/streams", json={"name": name("s"), "altdata": {
        "topic": "t", "format": "json", "classifications": {"taxonomy_id": 10**8}}}), 400, "taxonomy_id")
