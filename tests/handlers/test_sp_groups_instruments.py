"""SkyPortal drop-in (issue 9, part C): groups, streams, filters, telescopes, instruments and taxonomies answer
with SkyPortal's fields, parameters, rules and statuses (skyportal/handlers/api/{group,stream,filter,telescope,
instrument,taxonomy}.py), and what Kowalski reads at start-up is there."""

import math
import uuid
from datetime import datetime, timedelta

import pytest
import yaml

from .test_envelope import assert_error

MEMBER_KEYS = {"id", "username", "first_name", "last_name", "contact_email", "contact_phone", "oauth_uid", "admin",
               "can_save", "can_share_photometry"}


def uid(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def ok(resp):
    assert resp.status_code == 200, resp.text
    return resp.json()["data"]


def denied(resp, acl):
    """A missing ACL: SkyPortal's permissions decorator answers 401, naming the ACL."""
    assert resp.status_code == 401, resp.text
    assert acl in resp.json()["message"]


@pytest.fixture
def team(admin, make_user):
    """Alice's group (she is its admin) with a stream she reads and a filter on it; Bob and Carol outside."""
    alice, bob, carol = make_user(prefix="alice"), make_user(prefix="bob"), make_user(prefix="carol")
    name = uid("ztf")
    sid = ok(admin.post("/api/streams", json={"name": name, "altdata": {"topic": name, "format": "ztf_avro"}}))["id"]
    ok(admin.post(f"/api/streams/{sid}/users", json={"user_id": alice.user_id}))
    gid = ok(alice.post("/api/groups", json={"name": uid("group"), "nickname": uid("nick"),
                                             "description": "d"}))["id"]
    ok(alice.post(f"/api/groups/{gid}/streams", json={"stream_id": sid}))
    fid = ok(alice.post("/api/filters", json={"name": "bright", "stream_id": sid, "group_id": gid}))["id"]
    return dict(admin=admin, alice=alice, bob=bob, carol=carol, sid=sid, gid=gid, fid=fid)


# -- groups ---------------------------------------------------------------------------------------------

def test_one_group_has_users_streams_and_filters(team):
    alice, gid, sid, fid = team["alice"], team["gid"], team["sid"], team["fid"]
    g = ok(alice.get(f"/api/groups/{gid}"))
    assert {"id", "name", "nickname", "description", "private", "single_user_group", "auto_accept_requests",
            "created_at", "modified"} <= set(g)
    (me,) = g["users"]
    assert set(me) == MEMBER_KEYS
    assert (me["id"], me["admin"], me["can_save"], me["can_share_photometry"]) == (alice.user_id, True, True, False)
    assert [s["id"] for s in g["streams"]] == [sid]
    assert [(f["id"], f["name"], f["stream_id"], f["group_id"]) for f in g["filters"]] == [(fid, "bright", sid, gid)]
    assert "users" not in ok(alice.get(f"/api/groups/{gid}", params={"includeGroupUsers": "false"}))


def test_what_kowalski_reads_at_start_up(team):
    """kowalski/alert_brokers/alert_broker_ztf.py make_filter_templates: GET /api/groups/{group_id}
    ?includeGroupUsers=False, then data.nickname (else data.name) and the name of data.filters[id == filter_id]."""
    r = team["admin"].get(f"/api/groups/{team['gid']}?includeGroupUsers=False")
    assert r.json()["status"] == "success"
    data = r.json()["data"]
    group_name = data["nickname"] if data["nickname"] is not None else data["name"]
    assert group_name.startswith("nick-")
    assert [f["name"] for f in data["filters"] if f["id"] == team["fid"]] == ["bright"]
    assert "users" not in data


def test_group_listing_shape_and_name_query(team, admin, config):
    alice, gid = team["alice"], team["gid"]
    lists = ok(alice.get("/api/groups"))
    assert set(lists) == {"user_groups", "user_accessible_groups", "all_groups"}
    # user_groups: every group she is in, her single-user group too; accessible: never single-user groups
    assert any(g["single_user_group"] and g["name"] == alice.username for g in lists["user_groups"])
    assert not any(g["single_user_group"] for g in lists["user_accessible_groups"])
    assert gid in [g["id"] for g in lists["user_accessible_groups"]]
    mine = [g for g in lists["all_groups"] if g["id"] == gid]
    assert mine and mine[0]["streams"] == [{"id": team["sid"], "name": ok(admin.get(f"/api/streams/{team['sid']}"))
                                            ["name"]}]
    assert not any(g["single_user_group"] for g in lists["all_groups"])
    with_single = ok(alice.get("/api/groups", params={"includeSingleUserGroups": "true"}))["all_groups"]
    assert any(g["single_user_group"] for g in with_single)
    names = [g["name"] for g in lists["all_groups"]]
    assert names == sorted(names, key=str.lower)
    # ?name=: the groups with exactly this name
    name = ok(alice.get(f"/api/groups/{gid}"))["name"]
    found = ok(alice.get("/api/groups", params={"name": name}))
    assert [g["id"] for g in found] == [gid]
    assert ok(alice.get("/api/groups", params={"name": name + "x"})) == []
    # a System admin's accessible groups are all of them
    assert gid in [g["id"] for g in ok(admin.get("/api/groups"))["user_accessible_groups"]]
    public = ok(alice.get("/api/groups/public"))
    assert public["name"] == config.admin.sitewide_group and isinstance(public["id"], int)


def test_group_create_update_delete_rules(team, make_user):
    alice, bob = team["alice"], team["bob"]
    viewer = make_user(roles=(), prefix="viewer")
    denied(viewer.post("/api/groups", json={"name": uid("g")}), "Upload data")
    assert_error(alice.post("/api/groups", json={"name": "   "}), 400, "Missing required parameter")
    gid = ok(alice.post("/api/groups", json={"name": uid("g"), "group_admins": [bob.user_id],
                                             "auto_accept_requests": True}))["id"]
    g = ok(alice.get(f"/api/groups/{gid}"))
    assert g["auto_accept_requests"] is True
    assert {u["id"]: u["admin"] for u in g["users"]} == {alice.user_id: True, bob.user_id: True}
    assert_error(alice.post("/api/groups", json={"name": g["name"]}), 400, "already exists")
    # only its admins update or delete it (SkyPortal: 400 / 403 "Cannot find Group with id")
    carol = team["carol"]
    assert_error(carol.put(f"/api/groups/{gid}", json={"description": "x"}), 400, "Cannot find Group with id")
    assert_error(carol.delete(f"/api/groups/{gid}"), 403, "Cannot find Group with id")
    ok(bob.put(f"/api/groups/{gid}", json={"description": "by bob", "private": True}))
    assert ok(alice.get(f"/api/groups/{gid}"))["description"] == "by bob"
    assert_error(carol.get(f"/api/groups/{gid}"), 400, "Cannot find Group with id")  # private now
    ok(alice.delete(f"/api/groups/{gid}"))
    assert_error(alice.get(f"/api/groups/{gid}"), 400, "Cannot find Group with id")


def test_group_members_rules(team, admin):
    alice, bob, carol, gid, sid = team["alice"], team["bob"], team["carol"], team["gid"], team["sid"]
    # a member must read every stream of the group
    assert_error(alice.post(f"/api/groups/{gid}/users", json={"userID": bob.user_id, "admin": False}), 403,
                 f"does not have stream access with ID {sid}")
    for who in (bob, carol):
        ok(admin.post(f"/api/streams/{sid}/users", json={"user_id": who.user_id}))
    added = ok(alice.post(f"/api/groups/{gid}/users", json={"userID": bob.user_id, "admin": False, "canSave": False,
                                                            "canSharePhotometry": True}))
    assert (added["group_id"], added["user_id"], added["admin"]) == (gid, bob.user_id, False)
    assert_error(alice.post(f"/api/groups/{gid}/users", json={"userID": bob.user_id}), 400, "already a member")
    assert_error(alice.post(f"/api/groups/{gid}/users", json={"userID": 10**9}), 400, "not accessible")
    # a member who is not an admin adds nobody, changes nothing
    assert_error(bob.post(f"/api/groups/{gid}/users", json={"userID": carol.user_id}), 400, "not accessible")
    assert_error(bob.patch(f"/api/groups/{gid}/users", json={"userID": bob.user_id, "admin": True}), 400,
                 "is not a member")
    assert_error(alice.patch(f"/api/groups/{gid}/users", json={"userID": bob.user_id}), 400,
                 "at least one of `admin`, `canSave` or `canSharePhotometry`")
    users = {u["id"]: u for u in ok(alice.get(f"/api/groups/{gid}"))["users"]}
    assert (users[bob.user_id]["can_save"], users[bob.user_id]["can_share_photometry"]) == (False, True)
    ok(alice.patch(f"/api/groups/{gid}/users", json={"userID": bob.user_id, "canSave": True,
                                                     "canSharePhotometry": False}))
    users = {u["id"]: u for u in ok(alice.get(f"/api/groups/{gid}"))["users"]}
    assert (users[bob.user_id]["admin"], users[bob.user_id]["can_save"],
            users[bob.user_id]["can_share_photometry"]) == (False, True, False)
    # only admins remove others; anyone leaves
    ok(alice.post(f"/api/groups/{gid}/users", json={"userID": carol.user_id}))
    assert_error(bob.delete(f"/api/groups/{gid}/users/{carol.user_id}"), 403, "GroupUser does not exist")
    ok(carol.delete(f"/api/groups/{gid}/users/{carol.user_id}"))
    ok(alice.delete(f"/api/groups/{gid}/users/{bob.user_id}"))
    assert_error(alice.delete(f"/api/groups/{gid}/users/{bob.user_id}"), 403, "GroupUser does not exist")
    assert [u["id"] for u in ok(alice.get(f"/api/groups/{gid}"))["users"]] == [alice.user_id]


def test_single_user_groups_are_closed(team, admin):
    bob = team["bob"]
    single = [g for g in ok(bob.get("/api/groups"))["user_groups"] if g["single_user_group"]]
    assert [g["name"] for g in single] == [bob.username]
    sgid = single[0]["id"]
    assert_error(admin.post(f"/api/groups/{sgid}/users", json={"userID": team["carol"].user_id}), 400,
                 "It is a single user group")
    assert_error(admin.post(f"/api/groups/{sgid}/streams", json={"stream_id": team["sid"]}), 400,
                 "It is a single user group")
    assert_error(admin.delete(f"/api/groups/{sgid}/users/{bob.user_id}"), 403, "single user group")
    assert_error(bob.delete(f"/api/groups/{sgid}/users/{bob.user_id}"), 403, "single user group")
    assert_error(admin.delete(f"/api/groups/{sgid}"), 403, "single-user group")


def test_group_streams(team, admin):
    alice, gid, sid = team["alice"], team["gid"], team["sid"]
    assert_error(alice.post(f"/api/groups/{gid}/streams", json={"stream_id": sid}), 400,
                 "Specified stream is already associated with this group.")
    # a filter runs on it: it stays
    assert_error(alice.delete(f"/api/groups/{gid}/streams/{sid}"), 400, f"No stream IDs with ID {sid}")
    other = ok(admin.post("/api/streams", json={"name": uid("other")}))["id"]
    # every member must read it
    bob = team["bob"]
    ok(admin.post(f"/api/streams/{sid}/users", json={"user_id": bob.user_id}))
    ok(alice.post(f"/api/groups/{gid}/users", json={"userID": bob.user_id}))
    assert_error(alice.post(f"/api/groups/{gid}/streams", json={"stream_id": other}), 403,
                 f"Not all users have stream access with ID {other}")
    for who in (alice, bob):
        ok(admin.post(f"/api/streams/{other}/users", json={"user_id": who.user_id}))
    assert ok(alice.post(f"/api/groups/{gid}/streams", json={"stream_id": other})) == {"group_id": gid,
                                                                                        "stream_id": other}
    assert_error(bob.delete(f"/api/groups/{gid}/streams/{other}"), 400, "No stream IDs with ID")
    ok(alice.delete(f"/api/groups/{gid}/streams/{other}"))
    assert [s["id"] for s in ok(alice.get(f"/api/groups/{gid}"))["streams"]] == [sid]
    assert_error(alice.delete(f"/api/groups/{gid}/streams/{other}"), 400, "No stream IDs with ID")


def test_users_from_other_groups(team, admin, make_user):
    alice, gid = team["alice"], team["gid"]
    dave, erin = make_user(prefix="dave"), make_user(prefix="erin")
    src = ok(dave.post("/api/groups", json={"name": uid("src")}))["id"]
    ok(dave.post(f"/api/groups/{src}/users", json={"userID": erin.user_id}))
    # the target group's stream: dave and erin must read it
    assert_error(alice.post(f"/api/groups/{gid}/usersFromGroups", json={"fromGroupIDs": [src]}), 403,
                 "stream access")
    for who in (dave, erin):
        ok(admin.post(f"/api/streams/{team['sid']}/users", json={"user_id": who.user_id}))
    ok(alice.post(f"/api/groups/{gid}/usersFromGroups", json={"fromGroupIDs": [src]}))
    users = {u["id"]: u["admin"] for u in ok(alice.get(f"/api/groups/{gid}"))["users"]}
    assert users == {alice.user_id: True, dave.user_id: False, erin.user_id: False}
    assert_error(alice.post(f"/api/groups/{gid}/usersFromGroups", json={"fromGroupIDs": [10**9]}), 400,
                 "fromGroupIDs")


# -- streams ------------------------------------------------------------------------------------------

def test_auto_join_streams(admin, make_user):
    u = make_user(prefix="joiner")
    closed = ok(admin.post("/api/streams", json={"name": uid("closed")}))["id"]
    open_ = ok(admin.post("/api/streams", json={"name": uid("open"), "auto_join": True}))["id"]
    assert ok(admin.get(f"/api/streams/{open_}"))["auto_join"] is True
    assert ok(admin.get(f"/api/streams/{closed}"))["auto_join"] is False
    # every user sees an auto-join stream, and may add (only) themselves to it
    seen = [s["id"] for s in ok(u.get("/api/streams"))]
    assert open_ in seen and closed not in seen
    assert_error(u.get(f"/api/streams/{closed}"), 400, "Could not retrieve stream")
    assert_error(u.post(f"/api/streams/{closed}/users", json={"user_id": u.user_id}), 400, "Insufficient permissions")
    other = make_user(prefix="other")
    assert_error(u.post(f"/api/streams/{open_}/users", json={"user_id": other.user_id}), 400,
                 "Insufficient permissions")
    assert ok(u.post(f"/api/streams/{open_}/users", json={"user_id": u.user_id})) == {"stream_id": open_,
                                                                                       "user_id": u.user_id}
    assert_error(u.post(f"/api/streams/{open_}/users", json={"user_id": u.user_id}), 400, "already has access")
    ok(admin.patch(f"/api/streams/{closed}", json={"name": uid("renamed"), "auto_join": True}))
    assert closed in [s["id"] for s in ok(u.get("/api/streams"))]
    ok(admin.patch(f"/api/streams/{closed}", json={"auto_join": None, "altdata": None}))
    assert ok(admin.get(f"/api/streams/{closed}"))["auto_join"] is True


def test_stream_access_a_group_needs_stays(team, admin):
    alice, sid = team["alice"], team["sid"]
    assert_error(admin.delete(f"/api/streams/{sid}/users/{alice.user_id}"), 400, "need stream")
    assert_error(admin.delete(f"/api/streams/{sid}/users/{team['bob'].user_id}"), 400, "Stream user does not exist")
    denied(alice.delete(f"/api/streams/{sid}/users/{alice.user_id}"), "Manage streams")


# -- filters ------------------------------------------------------------------------------------------

def test_filter_fields_and_edit_rules(team, admin, make_user):
    alice, bob, gid, sid, fid = team["alice"], team["bob"], team["gid"], team["sid"], team["fid"]
    ok(admin.post(f"/api/streams/{sid}/users", json={"user_id": bob.user_id}))
    ok(alice.post(f"/api/groups/{gid}/users", json={"userID": bob.user_id}))
    # a member (not an admin) reads, creates and deletes filters, but does not edit one
    f = ok(bob.get(f"/api/filters/{fid}"))
    assert f["altdata"] is None and f["criteria"] == {} and f["autosave"] is False
    assert_error(bob.patch(f"/api/filters/{fid}", json={"name": "x"}), 403, "must be a group admin")
    mine = ok(bob.post("/api/filters", json={"name": "bob's", "stream_id": sid, "group_id": gid,
                                             "altdata": {"autoSave": False, "note": 1}, "broker_id": None}))["id"]
    ok(bob.delete(f"/api/filters/{mine}"))
    assert_error(bob.get(f"/api/filters/{mine}"), 400, f"Cannot find a filter with ID: {mine}.")
    # group admins edit: never its group or stream
    ok(alice.patch(f"/api/filters/{fid}", json={"name": "renamed", "altdata": {"autoSave": False},
                                                "group_id": gid, "stream_id": sid}))
    assert_error(alice.patch(f"/api/filters/{fid}", json={"group_id": gid + 1}), 400,
                 "Cannot update group_id or stream_id.")
    assert_error(alice.patch(f"/api/filters/{fid}", json={"stream_id": sid + 1}), 400,
                 "Cannot update group_id or stream_id.")
    ok(alice.patch(f"/api/filters/{fid}", json={"autosave": True, "altdata": None}))
    f = ok(alice.get(f"/api/filters/{fid}"))
    assert (f["name"], f["autosave"], f["altdata"]) == ("renamed", True, {"autoSave": True})
    assert_error(alice.post("/api/filters", json={"name": "b", "stream_id": sid, "group_id": gid, "broker_id": 3}),
                 400, "broker_id")
    viewer = make_user(roles=(), prefix="viewer")
    denied(viewer.post("/api/filters", json={"name": "v", "stream_id": sid, "group_id": gid}), "Upload data")


# -- telescopes ---------------------------------------------------------------------------------------

def telescope(**extra):
    name = uid("tel")
    return {"name": name, "nickname": name[:8], "lat": 10.0, "lon": 20.0, "elevation": 100.0, "diameter": 2.0,
            "skycam_link": "http://example.org/sky.jpg", "weather_link": "http://example.org/weather",
            "robotic": True, "fixed_location": True, **extra}


def test_telescope_fields_queries_and_rules(admin, user, make_user):
    body = telescope()
    tid = ok(user.post("/api/telescope", json=body))["id"]  # any user may add one (SkyPortal)
    one = ok(user.get(f"/api/telescope/{tid}"))
    assert {k: one[k] for k in body} == body
    assert one["instruments"] == [] and one["allocations"] == []
    (listed,) = ok(user.get("/api/telescope", params={"name": body["name"]}))
    assert listed["id"] == tid and {k: listed[k] for k in body} == body
    assert {"is_night_astronomical", "morning", "evening", "allocations"} <= set(listed)
    far = ok(user.post("/api/telescope", json=telescope(lat=-30.0, lon=60.0)))["id"]
    box = {"latitudeMin": -45, "latitudeMax": -15, "longitudeMin": 45, "longitudeMax": 75}
    ids = [t["id"] for t in ok(user.get("/api/telescope", params=box))]
    assert far in ids and tid not in ids
    assert_error(user.get("/api/telescope", params={"latitudeMin": "north"}), 400, "latitudeMin")
    # a fixed telescope needs its place
    assert_error(user.post("/api/telescope", json=telescope(elevation=None)), 400,
                 "Missing latitude, longitude, or elevation")
    assert_error(user.post("/api/telescope", json=telescope(elevation=-5.0)), 400, "elevation must be positive")
    roving = ok(user.post("/api/telescope", json={"name": uid("space"), "nickname": "sp", "diameter": 0.0,
                                                  "fixed_location": False}))["id"]
    (r,) = ok(user.get("/api/telescope", params={"name": ok(user.get(f"/api/telescope/{roving}"))["name"]}))
    assert (r["is_night_astronomical"], r["morning"], r["evening"]) == (False, False, False)
    defaulted = ok(user.post("/api/telescope", json={"name": uid("d"), "nickname": "d", "diameter": 1.0}))["id"]
    assert ok(user.get(f"/api/telescope/{defaulted}"))["fixed_location"] is True
    # changing one: "Manage telescopes", and System admin or "Manage allocations"
    denied(user.put(f"/api/telescope/{tid}", json={"diameter": 3.0}), "Manage telescopes")
    only_acl = make_user(roles=(), acls=("Manage telescopes",), prefix="tels")
    assert_error(only_acl.put(f"/api/telescope/{tid}", json={"diameter": 3.0}), 400, "Invalid telescope ID.")
    ok(admin.put(f"/api/telescope/{tid}", json={"diameter": 3.0, "weather_link": None}))
    one = ok(user.get(f"/api/telescope/{tid}"))
    assert (one["diameter"], one["weather_link"]) == (3.0, None)
    assert_error(admin.put(f"/api/telescope/{tid}", json={"name": body["name"], "fixed_location": True,
                                                          "lat": 95.0}), 400, "lat")
    ok(admin.delete(f"/api/telescope/{tid}"))
    assert_error(user.get(f"/api/telescope/{tid}"), 400, "Could not load telescope")
    assert_error(admin.delete(f"/api/telescope/{tid}"), 400, "Invalid telescope ID.")


def test_night_times_agree_with_astropy():
    """The next astronomical twilights: the Sun is at -18 deg then (astropy's reckoning, to a few arcmin)."""
    import astropy.units as u
    from astropy.coordinates import AltAz, EarthLocation, get_sun
    from astropy.time import Time
    from astropy.utils import iers

    import models
    from broker.followup.instruments import night_info

    iers.conf.auto_download = False
    site = models.Telescope(name="t", nickname="t", lat=-30.24, lon=-70.74, elevation=2700.0, diameter=4.0,
                            fixed_location=True)
    now = datetime(2019, 6, 1, 12, 0, 0)
    info = night_info(site, now)
    loc = EarthLocation(lat=site.lat * u.deg, lon=site.lon * u.deg, height=site.elevation * u.m)
    for key in ("evening", "morning"):
        when = datetime.strptime(info[key], "%Y-%m-%d %H:%M:%S.%f")
        assert now < when < now + timedelta(days=1)
        t = Time(when, scale="utc")
        alt = get_sun(t).transform_to(AltAz(obstime=t, location=loc)).alt.deg
        assert math.isclose(alt, -18.0, abs_tol=0.1), (key, alt)
    # at 12:00 UTC it is 08:00 in Chile: day, the evening twilight comes first
    assert info["is_night_astronomical"] is False
    night = night_info(site, now + timedelta(hours=14))  # 02:00 UTC: Chilean night
    assert night["is_night_astronomical"] is True


# -- instruments --------------------------------------------------------------------------------------

def test_instrument_fields_queries_and_rules(admin, user, make_user):
    tid = ok(admin.post("/api/telescope", json=telescope()))["id"]
    name = uid("CAM")
    body = {"name": name, "type": "imager", "band": "Optical", "telescope_id": tid, "filters": ["ztfg", "ztfr"],
            "sensitivity_data": {"ztfg": {"limiting_magnitude": 20.5, "magsys": "ab", "exposure_time": 30}},
            "configuration_data": {"readout": 8, "slew_rate": 2.5}, "api_classname": None,
            "api_classname_obsplan": None, "listener_classname": None, "treasuremap_id": 44, "tns_id": 196,
            "across_id": str(uuid.uuid4())}
    fov = {"field_fov_type": "circle", "field_fov_attributes": 3.0}
    iid = ok(admin.post("/api/instrument", json={**body, **fov}))["id"]
    one = ok(user.get(f"/api/instrument/{iid}"))
    assert {k: one[k] for k in body} == body
    assert one["telescope"]["id"] == tid and one["has_region"] is True and "region" not in one
    assert one["region_summary"] == "Circle [radius]: 3.0" and one["log_exists"] is False
    assert "circle(" in ok(user.get(f"/api/instrument/{iid}", params={"includeRegion": "true"}))["region"]
    # ?name= filters (Kowalski: GET /api/instrument?name=ZTF, then data[0]["id"])
    (listed,) = ok(user.get("/api/instrument", params={"name": name}))
    assert listed["id"] == iid and listed["number_of_fields"] == 0 and "region" not in listed
    assert listed["telescope"]["id"] == tid and listed["region_summary"] == "Circle [radius]: 3.0"
    assert ok(user.get("/api/instrument", params={"name": name + "-none"})) == []
    # what cannot be: the field says so
    for bad, field in (({"filters": ["nosuchband"]}, "filters"),
                       ({"sensitivity_data": {"ztfi": {"limiting_magnitude": 20}}}, "sensitivity_data"),
                       ({"field_data": {"ID": [1], "RA": [0.0], "Dec": [0.0]}}, "field_data"),
                       ({"field_fov_type": "hexagon", "field_fov_attributes": 1.0}, "field_fov_type"),
                       ({"field_fov_type": "rectangle", "field_fov_attributes": [1.0]}, "field_fov_attributes"),
                       ({"type": "telescope"}, "type"), ({"telescope_id": 10**9}, "telescope_id")):
        assert_error(admin.post("/api/instrument", json={**body, "name": uid("bad"), **bad}), 400, field)
    assert_error(admin.post("/api/instrument", json=body), 400, "already exists")
    # adding one: System admin or "Manage allocations"; changing one: "Manage instruments" too
    denied(user.post("/api/instrument", json={**body, "name": uid("x")}), "Manage allocations")
    allocator = make_user(roles=(), acls=("Manage allocations",), prefix="alloc")
    other = ok(allocator.post("/api/instrument", json={"name": uid("spec"), "type": "spectrograph",
                                                       "telescope_id": tid}))["id"]
    denied(allocator.put(f"/api/instrument/{other}", json={"band": "IR"}), "Manage instruments")
    only_acl = make_user(roles=(), acls=("Manage instruments",), prefix="inst")
    assert_error(only_acl.put(f"/api/instrument/{other}", json={"band": "IR"}), 400, "Missing instrument with ID")
    ok(admin.put(f"/api/instrument/{iid}", json={"filters": ["ztfg"], "field_fov_type": "rectangle",
                                                 "field_fov_attributes": [1.0, 2.0], "tns_id": None}))
    one = ok(user.get(f"/api/instrument/{iid}"))
    assert (one["filters"], one["tns_id"], one["region_summary"]) == (["ztfg"], None,
                                                                      "Rectangle [width, height]: (1.0, 2.0)")
    assert_error(admin.put(f"/api/instrument/{iid}", json={"filters": []}), 400, "sensitivity_data")
    ok(admin.delete(f"/api/instrument/{iid}", params={"fieldsOnly": "true"}))
    assert ok(user.get(f"/api/instrument/{iid}"))["id"] == iid
    assert_error(user.get(f"/api/instrument/{iid}", params={"localizationDateobs": "2001-02-03T04:05:06"}), 404,
                 "GCN event not found")
    assert_error(user.get(f"/api/instrument/{iid}", params={"airmassTime": "noon"}), 400, "airmassTime")
    ok(admin.delete(f"/api/instrument/{iid}"))
    assert_error(user.get(f"/api/instrument/{iid}"), 400, f"No instrument with ID: {iid}")


# -- taxonomies ---------------------------------------------------------------------------------------

def test_the_tdtax_taxonomy_loads(admin, user):
    tdtax = pytest.importorskip("tdtax")
    name = uid("tdtax")
    r = admin.post("/api/taxonomy", json={"name": name, "version": tdtax.__version__, "hierarchy": tdtax.taxonomy,
                                          "provenance": "https://github.com/profjsb/timedomain-taxonomy"})
    tax_id = ok(r)["taxonomy_id"]
    got = ok(user.get(f"/api/taxonomy/{tax_id}"))  # the sitewide group's: every user's
    assert got["hierarchy"] == tdtax.taxonomy and got["isLatest"] is True
    listed = [t for t in ok(user.get("/api/taxonomy")) if t["id"] == tax_id]
    assert listed and [g["id"] for g in listed[0]["groups"]] == listed[0]["group_ids"]
    # the same, as SkyPortal's YAML hierarchy_file
    tax2 = ok(admin.post("/api/taxonomy", json={"name": name, "version": "yaml",
                                                 "hierarchy_file": yaml.safe_dump(tdtax.taxonomy)}))["taxonomy_id"]
    assert ok(admin.get(f"/api/taxonomy/{tax2}"))["hierarchy"] == tdtax.taxonomy
    assert ok(admin.get(f"/api/taxonomy/{tax_id}"))["isLatest"] is False
    # its classes classify
    obj = f"ZTF26x{uuid.uuid4().hex[:6]}"
    ok(admin.post("/api/sources", json={"id": obj, "ra": 12.0, "dec": 34.0}))
    ok(admin.post("/api/classification", json={"obj_id": obj, "classification": "kilonova", "taxonomy_id": tax2,
                                               "probability": 0.7}))
    assert_error(admin.delete(f"/api/taxonomy/{tax2}"), 400, "associated classifications")
    ok(admin.delete(f"/api/taxonomy/{tax_id}"))


def test_taxonomy_rules(admin):
    name = uid("tax")
    assert_error(admin.post("/api/taxonomy", json={"name": name, "version": "1"}), 400,
                 "A JSON of the taxonomy must be given")
    assert_error(admin.post("/api/taxonomy", json={"name": name, "version": "1", "hierarchy_file": "a: [b"}), 400,
                 "hierarchy_file")
    assert_error(admin.post("/api/taxonomy", json={"name": name, "version": "1",
                                                   "hierarchy": {"class": "A", "colour": "red"}}), 400, "colour")
    assert_error(admin.post("/api/taxonomy", json={"name": name, "version": "1",
                                                   "hierarchy": {"ref": "other.yaml"}}), 400, "ref")
    tid = ok(admin.post("/api/taxonomy", json={"name": name, "version": "1", "hierarchy": {
        "class": "A", "tags": ["t"], "links": ["http://example.org"], "comments": "c",
        "subclasses": [{"class": "B"}, {"class": "C", "subclasses": [{"class": "B"}]}]}}))["taxonomy_id"]
    assert_error(admin.put(f"/api/taxonomy/{tid}", json={"hierarchy": {"class": "Z"}}), 400,
                 "Editing the hierarchy not allowed")
    ok(admin.put(f"/api/taxonomy/{tid}", json={"provenance": "here", "isLatest": None}))
    t = ok(admin.get(f"/api/taxonomy/{tid}"))
    assert (t["provenance"], t["isLatest"], t["hierarchy"]["class"]) == ("here", True, "A")
    ok(admin.delete(f"/api/taxonomy/{tid}"))
    assert_error(admin.get(f"/api/taxonomy/{tid}"), 400, "does not exist or is not available")
