"""Annotations and comments, as SkyPortal serves them (its test_annotations*.py / test_comments*.py)."""

import base64
import uuid

import pytest


def _group(owner, *members):
    r = owner.post("/api/groups", json={"name": f"ac-{uuid.uuid4().hex[:8]}"})
    assert r.status_code == 200, r.text
    gid = r.json()["data"]["id"]
    for m in members:
        r = owner.post(f"/api/groups/{gid}/users", json={"userID": m.user_id, "admin": False})
        assert r.status_code == 200, r.text
    return gid


@pytest.fixture
def world(make_user):
    """Alice and Carol share group g1 (a source saved to it); Alice is alone in g2; Bob sees nothing."""
    alice, carol, bob = make_user(prefix="alice"), make_user(prefix="carol"), make_user(prefix="bob")
    g1 = _group(alice, carol)
    g2 = _group(alice)
    obj_id = f"ZTF26{uuid.uuid4().hex[:7]}"
    r = alice.post("/api/sources", json={"id": obj_id, "ra": 150.1, "dec": 2.2, "group_ids": [g1, g2]})
    assert r.status_code == 200, r.text
    return dict(alice=alice, carol=carol, bob=bob, g1=g1, g2=g2, obj_id=obj_id)


# -- annotations ---------------------------------------------------------------------------------

def test_annotation_round_trip_and_unique_origin(world):
    a, obj = world["alice"], world["obj_id"]
    r = a.post(f"/api/sources/{obj}/annotations", json={"origin": "kowalski", "data": {"offset": 1.5},
                                                        "group_ids": [world["g1"]]})
    assert r.status_code == 200, r.text
    aid = r.json()["data"]["annotation_id"]
    r = a.get(f"/api/sources/{obj}/annotations/{aid}")
    assert r.status_code == 200, r.text
    got = r.json()["data"]
    assert (got["data"], got["origin"], got["obj_id"], got["author_id"]) == ({"offset": 1.5}, "kowalski", obj,
                                                                            a.user_id)
    assert [g["id"] for g in got["groups"]] == [world["g1"]]
    # one annotation per (object, origin): SkyPortal's 400 naming the unique constraint
    r = a.post(f"/api/sources/{obj}/annotations", json={"origin": "kowalski", "data": {"offset": 2}})
    assert r.status_code == 400
    assert "duplicate key value violates unique constraint" in r.json()["message"]
    listed = a.get(f"/api/sources/{obj}/annotations").json()["data"]
    assert [x["id"] for x in listed] == [aid]


def test_annotation_body_as_skyportal(world):
    a, obj = world["alice"], world["obj_id"]
    url = f"/api/sources/{obj}/annotations"
    r = a.post(url, json={"data": {"x": 1}})
    assert r.status_code == 400 and "origin" in r.json()["message"]
    r = a.post(url, json={"origin": "", "data": {"x": 1}})
    assert r.status_code == 400 and "origin" in r.json()["message"]
    r = a.post(url, json={"origin": "kowalski"})
    assert r.status_code == 400 and "data" in r.json()["message"]
    r = a.post(url, json={"origin": "kowalski", "data": "Test"})
    assert r.status_code == 400 and "data" in r.json()["message"]
    r = a.post(url, data='{"origin": "kowalski", "data": {"x": NaN}}', headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "data.x" in r.json()["message"]  # strict JSON: no NaN
    # Kowalski sends obj_id (and author_id on PUT): ignored, as SkyPortal
    r = a.post(url, json={"obj_id": obj, "origin": "k2", "data": {"n": 1}})
    assert r.status_code == 200, r.text
    aid = r.json()["data"]["annotation_id"]
    r = a.put(f"{url}/{aid}", json={"obj_id": obj, "author_id": 1, "data": {"n": 2}})
    assert r.status_code == 200, r.text
    assert a.get(f"{url}/{aid}").json()["data"]["data"] == {"n": 2}
    r = a.post(url, json={"origin": "k3", "data": {}, "group_ids": [10**9]})
    assert r.status_code == 400 and "Cannot find one or more groups" in r.json()["message"]


def test_annotation_group_visibility_and_default_groups(world):
    a, c, obj = world["alice"], world["carol"], world["obj_id"]
    only_g2 = a.post(f"/api/sources/{obj}/annotations",
                     json={"origin": "private", "data": {"v": 1}, "group_ids": [world["g2"]]}).json()["data"]
    default = a.post(f"/api/sources/{obj}/annotations", json={"origin": "everyone", "data": {"v": 2}}).json()["data"]
    # Carol (g1) cannot read the g2 annotation: SkyPortal's 403
    r = c.get(f"/api/sources/{obj}/annotations/{only_g2['annotation_id']}")
    assert r.status_code == 403
    assert r.json()["message"] == "Could not find any accessible annotations."
    # the default groups are all of Alice's: Carol (g1) sees that one
    r = c.get(f"/api/sources/{obj}/annotations/{default['annotation_id']}")
    assert r.status_code == 200, r.text
    assert [x["origin"] for x in c.get(f"/api/sources/{obj}/annotations").json()["data"]] == ["everyone"]
    # and they are listed on the source
    src = c.get(f"/api/sources/{obj}").json()["data"]
    assert [(x["origin"], x["type"]) for x in src["annotations"]] == [("everyone", "source")]
    # Bob sees neither
    assert world["bob"].get(f"/api/sources/{obj}/annotations").json()["data"] == []
    # updating the groups lets Carol see it
    r = a.put(f"/api/sources/{obj}/annotations/{only_g2['annotation_id']}",
              json={"data": {"v": 3}, "group_ids": [world["g1"], world["g2"]]})
    assert r.status_code == 200, r.text
    assert c.get(f"/api/sources/{obj}/annotations/{only_g2['annotation_id']}").json()["data"]["data"] == {"v": 3}


def test_annotation_author_only_and_acl(world, make_user, admin):
    a, c, obj = world["alice"], world["carol"], world["obj_id"]
    aid = a.post(f"/api/sources/{obj}/annotations", json={"origin": "mine", "data": {"v": 1}}).json()["data"][
        "annotation_id"]
    # Carol can read it but not change or delete it (SkyPortal: only the author)
    assert c.put(f"/api/sources/{obj}/annotations/{aid}", json={"data": {"v": 9}}).status_code == 403
    assert c.delete(f"/api/sources/{obj}/annotations/{aid}").status_code == 403
    assert a.get(f"/api/sources/{obj}/annotations/{aid}").json()["data"]["data"] == {"v": 1}
    # a wrong object in the path: SkyPortal's 400
    r = a.delete(f"/api/sources/{obj}zzz/annotations/{aid}")
    assert r.status_code == 400
    assert "Annotation resource ID does not match resource ID given in path" in r.json()["message"]
    r = a.delete(f"/api/sources/{obj}/annotations/{aid}")
    assert r.status_code == 200, r.text
    assert a.get(f"/api/sources/{obj}/annotations/{aid}").status_code == 403
    # without the Annotate ACL: SkyPortal's 401
    viewer = make_user(roles=("View only",))
    r = viewer.post(f"/api/sources/{obj}/annotations", json={"origin": "v", "data": {"v": 1}})
    assert r.status_code == 401
    # an unknown object: 404
    r = a.post("/api/sources/ZTF00nosuchobj/annotations", json={"origin": "v", "data": {"v": 1}})
    assert r.status_code == 404
    # an admin may delete anyone's
    aid = a.post(f"/api/sources/{obj}/annotations", json={"origin": "mine2", "data": {"v": 1}}).json()["data"][
        "annotation_id"]
    assert admin.delete(f"/api/sources/{obj}/annotations/{aid}").status_code == 200


def test_annotations_on_photometry_and_resource_mismatch(world, admin):
    a, c, obj = world["alice"], world["carol"], world["obj_id"]
    r = admin.post("/api/telescope", json={"name": f"P48 {uuid.uuid4().hex[:6]}", "nickname": "P48",
                                           "diameter": 1.2, "robotic": True})
    assert r.status_code == 200, r.text
    r = admin.post("/api/instrument", json={"name": f"ZTF-{uuid.uuid4().hex[:6]}", "type": "imager",
                                            "telescope_id": r.json()["data"]["id"], "filters": ["ztfg"]})
    assert r.status_code == 200, r.text
    r = a.post("/api/photometry", json={"obj_id": obj, "mjd": 60000.5, "filter": "ztfg", "mag": 18.1,
                                        "magerr": 0.1, "magsys": "ab", "instrument_id": r.json()["data"]["id"],
                                        "group_ids": [world["g1"]]})
    assert r.status_code == 200, r.text
    pid = r.json()["data"]["ids"][0]
    r = a.post(f"/api/photometry/{pid}/annotations", json={"origin": "cal", "data": {"zp_offset": 0.02}})
    assert r.status_code == 200, r.text
    aid = r.json()["data"]["annotation_id"]
    got = c.get(f"/api/photometry/{pid}/annotations").json()["data"]
    assert [(x["id"], x["photometry_id"], x["obj_id"]) for x in got] == [(aid, pid, obj)]
    # the same origin on the same point again: refused; an unreadable point: 403
    assert a.post(f"/api/photometry/{pid}/annotations", json={"origin": "cal", "data": {}}).status_code == 400
    assert world["bob"].post(f"/api/photometry/{pid}/annotations",
                             json={"origin": "b", "data": {}}).status_code == 403
    # a source annotation asked for on a photometry path does not match
    sid = a.post(f"/api/sources/{obj}/annotations", json={"origin": "s", "data": {}}).json()["data"]["annotation_id"]
    assert a.get(f"/api/sources/{obj}/annotations/{sid}").status_code == 200
    r = a.get(f"/api/photometry/{pid}/annotations/{aid + 10**6}")
    assert r.status_code == 403


# -- comments ------------------------------------------------------------------------------------

def test_comment_round_trip_default_group_and_bot(world, config):
    a, b, obj = world["alice"], world["bob"], world["obj_id"]
    r = a.post(f"/api/sources/{obj}/comments", json={"text": "Looks like a SN Ia"})
    assert r.status_code == 200, r.text
    cid = r.json()["data"]["comment_id"]
    got = a.get(f"/api/sources/{obj}/comments/{cid}").json()["data"]
    assert (got["text"], got["obj_id"], got["author_id"], got["bot"]) == ("Looks like a SN Ia", obj, a.user_id, True)
    # default groups: the sitewide group (SkyPortal's public group)
    assert [g["name"] for g in got["groups"]] == [config.admin.sitewide_group]
    assert got["resourceType"] == "sources"
    # the same comment again is not stored twice
    r = a.post(f"/api/sources/{obj}/comments", json={"text": "Looks like a SN Ia"})
    assert r.json()["data"] == {"comment_id": cid, "message": "Same comment already exists."}
    listed = a.get(f"/api/sources/{obj}/comments").json()["data"]
    assert [c["id"] for c in listed] == [cid]
    assert listed[0]["author"]["username"] == a.username
    # Bob is in the sitewide group but cannot see the object: nothing
    assert b.get(f"/api/sources/{obj}/comments").json()["data"] == []
    assert b.get(f"/api/sources/{obj}/comments/{cid}").status_code == 403
    # on the source, on request
    src = a.get(f"/api/sources/{obj}", params={"includeComments": "true"}).json()["data"]
    assert [c["id"] for c in src["comments"]] == [cid]


def test_comment_groups_author_rules_and_text_search(world, make_user):
    a, c, obj = world["alice"], world["carol"], world["obj_id"]
    private = a.post(f"/api/sources/{obj}/comments", json={"text": "g2 only", "group_ids": [world["g2"]]}).json()[
        "data"]["comment_id"]
    shared = a.post(f"/api/sources/{obj}/comments", json={"text": "for g1 eyes", "group_ids": [world["g1"]]}).json()[
        "data"]["comment_id"]
    assert c.get(f"/api/sources/{obj}/comments/{private}").status_code == 403
    assert [x["id"] for x in c.get(f"/api/sources/{obj}/comments").json()["data"]] == [shared]
    # author only: Carol cannot edit or delete Alice's comment
    assert c.put(f"/api/sources/{obj}/comments/{shared}", json={"text": "hacked"}).status_code == 403
    assert c.delete(f"/api/sources/{obj}/comments/{shared}").status_code == 403
    r = a.put(f"/api/sources/{obj}/comments/{shared}", json={"text": "For G1 eyes, edited",
                                                             "group_ids": [world["g1"], world["g2"]]})
    assert r.status_code == 200, r.text
    assert c.get(f"/api/sources/{obj}/comments/{shared}").json()["data"]["text"] == "For G1 eyes, edited"
    # text search (case-insensitive), paginated
    hits = a.get(f"/api/sources/{obj}/comments", params={"text": "g1 EYES"}).json()["data"]
    assert [x["id"] for x in hits] == [shared]
    # the resource in the path must be the comment's
    other = f"ZTF26{uuid.uuid4().hex[:7]}"
    a.post("/api/sources", json={"id": other, "ra": 1.0, "dec": 1.0, "group_ids": [world["g1"]]})
    r = a.get(f"/api/sources/{other}/comments/{shared}")
    assert r.status_code == 400 and "does not match" in r.json()["message"]
    # the Comment ACL: 401 without it
    viewer = make_user(roles=("View only",))
    assert viewer.post(f"/api/sources/{obj}/comments", json={"text": "x"}).status_code == 401
    assert a.delete(f"/api/sources/{obj}/comments/{shared}").status_code == 200
    assert a.get(f"/api/sources/{obj}/comments/{shared}").status_code == 403
    # bad input names the field
    r = a.post(f"/api/sources/{obj}/comments", json={"text": 5})
    assert r.status_code == 400 and "text" in r.json()["message"]
    r = a.post(f"/api/sources/{obj}/comments", json={"text": "x", "group_ids": [10**9]})
    assert r.status_code == 400 and "Cannot find one or more groups" in r.json()["message"]


def test_comment_attachment(world):
    a, c, obj = world["alice"], world["carol"], world["obj_id"]
    payload = b"wavelength,flux\n4000,1.0\n"
    r = a.post(f"/api/sources/{obj}/comments", json={
        "text": "the table", "group_ids": [world["g1"]],
        "attachment": {"body": base64.b64encode(payload).decode(), "name": "table.csv"}})
    assert r.status_code == 200, r.text
    cid = r.json()["data"]["comment_id"]
    got = c.get(f"/api/sources/{obj}/comments/{cid}").json()["data"]
    assert got["attachment_name"] == "table.csv" and "attachment_bytes" not in got
    r = c.get(f"/api/sources/{obj}/comments/{cid}/attachment")
    assert r.status_code == 200 and r.content == payload
    assert r.headers["Content-Disposition"] == 'attachment; filename="table.csv"'
    r = c.get(f"/api/sources/{obj}/comments/{cid}/attachment", params={"download": "false"})
    assert r.json()["data"] == {"commentId": cid, "attachment": payload.decode(), "attachmentName": "table.csv"}
    r = c.get(f"/api/sources/{obj}/comments/{cid}/attachment", params={"download": "false", "preview": "true"})
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv") and r.content == payload
    # malformed attachments are refused, naming the field
    for bad in ({"body": "x"}, {"body": "%%%not base64%%%", "name": "a.txt"}, "just a string"):
        r = a.post(f"/api/sources/{obj}/comments", json={"text": "bad", "attachment": bad})
        assert r.status_code == 400, bad
        assert "attachment" in r.json()["message"].lower()
    # Bob cannot read it
    assert world["bob"].get(f"/api/sources/{obj}/comments/{cid}/attachment").status_code == 403


def test_comment_channels(world):
    a, c, obj = world["alice"], world["carol"], world["obj_id"]
    main = a.post(f"/api/sources/{obj}/comments", json={"text": "main thread", "group_ids": [world["g1"]]})
    side = c.post(f"/api/sources/{obj}/comments", json={"text": "let's observe", "channel": "follow-up",
                                                        "group_ids": [world["g1"]]})
    assert main.status_code == 200 and side.status_code == 200, side.text
    a.post(f"/api/sources/{obj}/comments", json={"text": "agreed", "channel": "follow-up", "group_ids": [world["g1"]]})
    # the main thread lists only its own; a channel is asked for by name
    assert [x["text"] for x in a.get(f"/api/sources/{obj}/comments").json()["data"]] == ["main thread"]
    got = a.get(f"/api/sources/{obj}/comments", params={"channel": "follow-up"}).json()["data"]
    assert [x["text"] for x in got] == ["let's observe", "agreed"]
    assert a.get(f"/api/sources/{obj}/comments/channels").json()["data"] == ["follow-up"]
    assert world["bob"].get(f"/api/sources/{obj}/comments/channels").json()["data"] == []
    # only the opener (Carol) may delete the conversation
    r = a.delete(f"/api/sources/{obj}/comments/channels", params={"channel": "follow-up"})
    assert r.status_code == 403
    assert a.delete(f"/api/sources/{obj}/comments/channels").status_code == 400
    assert c.delete(f"/api/sources/{obj}/comments/channels", params={"channel": "follow-up"}).status_code == 200
    assert a.get(f"/api/sources/{obj}/comments/channels").json()["data"] == []
    assert [x["text"] for x in a.get(f"/api/sources/{obj}/comments").json()["data"]] == ["main thread"]
