"""SkyPortal's listings (/api/listing) and the candidate lists' listName / listNameReject, as its
UserObjListHandler and CandidateHandler have them."""

import uuid

from .test_envelope import assert_error


def _obj(client, gid=None):
    obj_id = f"L{uuid.uuid4().hex[:10]}"
    body = {"id": obj_id, "ra": 10.0, "dec": 20.0}
    if gid is not None:
        body["group_ids"] = [gid]
    assert client.post("/api/sources", json=body).status_code == 200
    return obj_id


def test_listing_lifecycle(user, make_user, admin):
    a, b = _obj(user), _obj(user)
    r = user.post("/api/listing", json={"obj_id": a, "list_name": "favorites"})
    assert r.status_code == 200, r.text
    first = r.json()["data"]["id"]
    assert user.post("/api/listing", json={"obj_id": b, "list_name": "rejected_candidates"}).status_code == 200
    mine = user.get("/api/listing").json()["data"]
    assert [(x["obj_id"], x["list_name"], x["user_id"]) for x in mine] == [
        (a, "favorites", user.user_id), (b, "rejected_candidates", user.user_id)]
    assert [x["obj_id"] for x in user.get("/api/listing", params={"listName": "favorites"}).json()["data"]] == [a]
    assert user.get("/api/listing", params={"listName": ""}).json()["data"] == []  # a name no listing has
    # the same listing twice is refused, as SkyPortal
    assert_error(user.post("/api/listing", json={"obj_id": a, "list_name": "favorites"}), 400, "already exists")
    # PATCH moves it to another list; DELETE by id, or by obj_id and list_name
    assert user.patch(f"/api/listing/{first}", json={"list_name": "watch_later"}).status_code == 200
    assert [x["list_name"] for x in user.get("/api/listing").json()["data"]] == ["watch_later", "rejected_candidates"]
    assert user.delete(f"/api/listing/{first}").status_code == 200
    echoed = {k: mine[1][k] for k in ("obj_id", "list_name", "user_id", "params")}  # a row as GET gave it
    assert user.request("DELETE", "/api/listing", json=echoed).status_code == 200
    assert user.get("/api/listing").json()["data"] == []
    assert_error(user.delete(f"/api/listing/{first}"), 400, "Cannot find listing")


def test_listing_access_and_bad_input(user, make_user, admin):
    other = make_user()
    gid = user.post("/api/groups", json={"name": f"ls-{uuid.uuid4().hex[:8]}"}).json()["data"]["id"]
    obj = _obj(user, gid)  # in a group of the user's own (not the sitewide group, which the other reads)
    lid = user.post("/api/listing", json={"obj_id": obj, "list_name": "favorites"}).json()["data"]["id"]
    # another user neither sees nor changes it, and cannot list for someone else
    assert other.get(f"/api/listing/{user.user_id}").json()["data"] == []
    assert_error(other.patch(f"/api/listing/{lid}", json={"list_name": "x"}), 400, "Cannot find listing")
    assert_error(other.delete(f"/api/listing/{lid}"), 400, "Cannot find listing")
    assert_error(user.post("/api/listing", json={"obj_id": obj, "list_name": "f", "user_id": other.user_id}),
                 400, "Only admins")
    assert_error(other.request("DELETE", "/api/listing", json={"obj_id": obj, "list_name": "favorites",
                                                               "user_id": user.user_id}), 400, "Cannot find Obj")
    # an admin may, and sees every user's lists
    assert admin.post("/api/listing", json={"obj_id": obj, "list_name": "f", "user_id": user.user_id}
                      ).status_code == 200
    assert len(admin.get(f"/api/listing/{user.user_id}").json()["data"]) == 2
    assert_error(admin.patch(f"/api/listing/{lid}", json={"user_id": 2**31 - 1}), 400, "user_id")
    assert_error(user.patch(f"/api/listing/{lid}", json={"user_id": other.user_id}), 400, "Insufficient")
    # bad input: named, nothing written
    body = assert_error(user.post("/api/listing", json={"obj_id": obj, "list_name": "-bad"}), 400, "list_name")
    assert body["data"] == {"field": "list_name"}
    assert_error(user.post("/api/listing", json={"obj_id": "nope", "list_name": "f"}), 400, "Cannot find Obj")
    assert_error(other.post("/api/listing", json={"obj_id": obj, "list_name": "f"}), 400, "Cannot find Obj")
    assert_error(user.post("/api/listing", json={"obj_id": obj, "list_name": "watchlist"}), 400, "params")
    assert_error(user.post("/api/listing", json={"obj_id": obj, "list_name": "watchlist",
                                                 "params": {"arcsec": 0, "cadence": 1}}), 400, "arcsec")
    assert user.post("/api/listing", json={"obj_id": obj, "list_name": "watchlist",
                                           "params": {"arcsec": 5, "cadence": 2}}).status_code == 200
    assert_error(user.post("/api/listing", json={"obj_id": obj}), 400, "list_name")
    assert [x["list_name"] for x in user.get("/api/listing").json()["data"]] == ["favorites", "f", "watchlist"]


def test_candidates_list_name_and_reject(admin, user):
    tag = uuid.uuid4().hex[:6]
    sid = admin.post("/api/streams", json={"name": f"ls-{tag}"}).json()["data"]["id"]
    gid = user.post("/api/groups", json={"name": f"ls-{tag}"}).json()["data"]["id"]
    admin.post(f"/api/streams/{sid}/users", json={"user_id": user.user_id})
    assert admin.post(f"/api/groups/{gid}/streams", json={"stream_id": sid}).status_code == 200
    fid = user.post("/api/filters", json={"name": "f", "stream_id": sid, "group_id": gid}).json()["data"]["id"]
    ids = [f"C{tag}{i}" for i in range(3)]
    for i, obj in enumerate(ids):
        r = admin.post("/api/candidates", json={"id": obj, "ra": 1.0 + i, "dec": 2.0, "filter_ids": [fid],
                                                "passed_at": f"2031-01-0{i + 1}T00:00:00"})
        assert r.status_code == 200, r.text
    user.post("/api/listing", json={"obj_id": ids[0], "list_name": "rejected_candidates"})
    user.post("/api/listing", json={"obj_id": ids[1], "list_name": "favorites"})

    def listed(**params):
        data = user.get("/api/candidates", params={"filterIDs": str(fid), **params}).json()["data"]
        return [c["id"] for c in data["candidates"]], data["totalMatches"]

    assert listed() == ([ids[2], ids[1], ids[0]], 3)
    assert listed(listNameReject="rejected_candidates") == ([ids[2], ids[1]], 2)
    assert listed(listName="favorites") == ([ids[1]], 1)
    assert listed(listName="favorites", listNameReject="favorites") == ([], 0)
    # another user's lists do not count for this one
    assert admin.get("/api/candidates", params={"filterIDs": str(fid), "listNameReject": "rejected_candidates"}
                     ).json()["data"]["totalMatches"] == 3
