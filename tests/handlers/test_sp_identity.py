"""Identity as SkyPortal serves it (issue 9, part A): /api/acls, /api/roles, /api/user (+ /acls, /roles),
/api/internal/tokens and /api/internal/profile, with SkyPortal's bodies, fields and status codes, and our
security rules on top (nobody grants what they do not hold, admin rights only from a System admin, a
token never beyond its owner nor beyond the token that made it)."""

import uuid
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

import models
from models.enums import ROLES, SKYPORTAL_ACLS

from .test_envelope import assert_error


def _name(prefix="sp"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def view_only(make_user):
    return make_user(roles=("View only",), prefix="viewonly")


@pytest.fixture
def sysadmin(make_user):
    """A System admin of the test's own (the session's ``admin`` is shared)."""
    return make_user(roles=("Super admin",), acls=("System admin",), prefix="sysadmin")


# -- /api/acls, /api/roles ---------------------------------------------------------------------

def test_every_user_lists_the_acls(view_only):
    r = view_only.get("/api/acls")
    assert r.status_code == 200, r.text
    acls = r.json()["data"]
    assert set(SKYPORTAL_ACLS) <= set(acls)
    for name in ("Comment", "Annotate", "Upload data", "Manage instruments", "Manage telescopes",
                 "Manage photometry", "Run Analyses", "Become user", "Delete bulk photometry"):
        assert name in acls


def test_every_user_lists_the_roles_with_skyportal_acls(view_only):
    r = view_only.get("/api/roles")
    assert r.status_code == 200, r.text
    roles = {role["id"]: role for role in r.json()["data"]}
    assert {"Super admin", "Group admin", "Full user", "View only"} <= set(roles)
    assert set(roles["Full user"]["acls"]) == {"Annotate", "Comment", "Upload data", "Classify", "Run Analyses",
                                               "Manage observing runs"}
    assert "Manage users" in roles["Group admin"]["acls"] and "System admin" not in roles["Group admin"]["acls"]
    assert roles["View only"]["acls"] == []
    assert set(SKYPORTAL_ACLS) <= set(roles["Super admin"]["acls"])
    assert all(isinstance(role["created_at"], str) for role in roles.values())
    assert set(roles["Group admin"]["acls"]) == set(ROLES["Group admin"])


# -- /api/user/{id}/acls, /roles -------------------------------------------------------------------

def test_grant_and_revoke_an_acl(admin, user):
    assert admin.post(f"/api/user/{user.user_id}/acls", json={"aclIds": ["Manage sources"]}).status_code == 200
    assert "Manage sources" in admin.get(f"/api/user/{user.user_id}").json()["data"]["acls"]
    assert admin.delete(f"/api/user/{user.user_id}/acls/Manage sources").status_code == 200
    assert "Manage sources" not in admin.get(f"/api/user/{user.user_id}").json()["data"]["acls"]
    # an empty list changes nothing
    assert admin.post(f"/api/user/{user.user_id}/acls", json={"aclIds": []}).status_code == 200


def test_acl_grant_errors(admin, user, view_only):
    assert_error(admin.post(f"/api/user/{user.user_id}/acls", json={"aclIds": "Annotate"}), 400, "aclIds")
    assert_error(admin.post(f"/api/user/{user.user_id}/acls", json={"aclIds": ["DefinitelyNotARealACL"]}), 400,
                 "DefinitelyNotARealACL")
    assert_error(admin.post("/api/user/2147483000/acls", json={"aclIds": ["Annotate"]}), 400, "user_id")
    assert_error(admin.delete(f"/api/user/{user.user_id}/acls/Manage sources"), 400, "does not have")
    assert_error(admin.delete(f"/api/user/{user.user_id}/acls/Fly"), 400, "acl_id")
    # without 'Manage users': 401, as SkyPortal's permissions decorator
    assert_error(view_only.post(f"/api/user/{user.user_id}/acls", json={"aclIds": ["Annotate"]}), 401,
                 "Manage users")
    assert_error(view_only.delete(f"/api/user/{user.user_id}/acls/Annotate"), 401, "Manage users")
    assert "Manage sources" not in admin.get(f"/api/user/{user.user_id}").json()["data"]["acls"]


def test_grant_and_revoke_a_role(admin, user):
    assert admin.post(f"/api/user/{user.user_id}/roles", json={"roleIds": ["Group admin"]}).status_code == 200
    data = admin.get(f"/api/user/{user.user_id}").json()["data"]
    assert "Group admin" in data["roles"] and "Manage users" in data["permissions"]
    assert admin.delete(f"/api/user/{user.user_id}/roles/Group admin").status_code == 200
    data = admin.get(f"/api/user/{user.user_id}").json()["data"]
    assert "Group admin" not in data["roles"] and "Manage users" not in data["permissions"]


def test_role_grant_errors(admin, user, view_only):
    body = assert_error(admin.post(f"/api/user/{user.user_id}/roles",
                                   json={"roleIds": ["DefinitelyNotARealRole"]}), 400)
    assert "DefinitelyNotARealRole" in body["message"]
    assert_error(admin.post(f"/api/user/{user.user_id}/roles", json={"roleIds": "Group admin"}), 400, "roleIds")
    assert_error(admin.delete(f"/api/user/{user.user_id}/roles/Group admin"), 400, "does not have specified role")
    assert_error(view_only.post(f"/api/user/{user.user_id}/roles", json={"roleIds": ["Group admin"]}), 401,
                 "Manage users")
    assert "Group admin" not in admin.get(f"/api/user/{user.user_id}").json()["data"]["roles"]


def test_a_group_admin_grants_only_what_it_holds(make_user):
    manager = make_user(roles=("Group admin",), prefix="gadmin")
    other = make_user(roles=("View only",))
    assert manager.post(f"/api/user/{other.user_id}/roles", json={"roleIds": ["Full user"]}).status_code == 200
    assert_error(manager.post(f"/api/user/{other.user_id}/acls", json={"aclIds": ["Manage instruments"]}), 403,
                 "Manage instruments")
    assert_error(manager.post(f"/api/user/{other.user_id}/roles", json={"roleIds": ["Super admin"]}), 403,
                 "Super admin")


# -- /api/internal/tokens ---------------------------------------------------------------------------

def test_admin_adds_and_deletes_a_token_for_a_user(admin, user):
    name = _name("tok")
    r = admin.post("/api/internal/tokens", json={"acls": ["Classify", "Annotate", "Comment"],
                                                 "user_id": user.user_id, "name": name})
    assert r.status_code == 200, r.text
    token_id = r.json()["data"]["token_id"]
    listed = admin.get("/api/internal/tokens").json()["data"]
    mine = [t for t in listed if t["id"] == token_id]
    assert mine and mine[0]["created_by_id"] == user.user_id and mine[0]["name"] == name
    assert mine[0]["acls"] == ["Annotate", "Classify", "Comment"]
    # the user sees it too, and it authenticates as them with exactly those ACLs
    assert token_id in [t["id"] for t in user.get("/api/internal/tokens").json()["data"]]
    new = type(user)(user.base_url, token_id)
    assert new.get("/api/internal/profile").json()["data"]["id"] == user.user_id
    # the user holds 'Upload data'; the token does not, and cannot hand it on
    assert_error(new.post("/api/tokens", json={"name": _name(), "acls": ["Upload data"]}), 400, "Upload data")
    by_user = admin.get("/api/internal/tokens", params={"userID": user.user_id}).json()["data"]
    assert {t["created_by_id"] for t in by_user} == {user.user_id} and token_id in [t["id"] for t in by_user]
    assert admin.delete(f"/api/internal/tokens/{token_id}").status_code == 200
    assert all(t["id"] != token_id for t in admin.get("/api/internal/tokens").json()["data"])
    assert_error(new.get("/api/internal/profile"), 401, "Invalid token")


def test_one_token_per_user_except_for_admins(admin, user):
    for _ in range(2):
        r = admin.post("/api/internal/tokens", json={"acls": ["Comment"], "user_id": user.user_id, "name": _name()})
        assert r.status_code == 200, r.text
    # the user already has tokens: SkyPortal allows them no more
    assert_error(user.post("/api/internal/tokens", json={"acls": ["Comment"], "name": _name()}), 400,
                 "maximum number of tokens")
    # our /api/tokens keeps allowing several
    assert user.post("/api/tokens", json={"acls": ["Comment"], "name": _name()}).status_code == 200


def test_token_rules(admin, user, make_user):
    other = make_user()
    # only a System admin makes a token for someone else
    assert_error(user.post("/api/internal/tokens", json={"acls": [], "name": _name(), "user_id": other.user_id}),
                 400, "user_id")
    # never with ACLs the user lacks
    assert_error(admin.post("/api/internal/tokens", json={"acls": ["Manage users"], "name": _name(),
                                                          "user_id": user.user_id}), 400, "Manage users")
    assert_error(admin.post("/api/internal/tokens", json={"acls": ["Comment"], "name": _name(),
                                                          "user_id": 2147483000}), 400, "user_id")
    # acls is required (SkyPortal's body); unknown fields are refused
    assert_error(admin.post("/api/internal/tokens", json={"name": _name()}), 400, "acls")
    assert_error(admin.post("/api/internal/tokens", json={"name": _name(), "acls": [], "admin": True}), 400,
                 "admin")
    # others' tokens are not yours to read, change or delete (400, as SkyPortal); a System admin's they are
    assert_error(other.get(f"/api/internal/tokens/{user.token}"), 400, "Could not load token")
    assert_error(other.put(f"/api/internal/tokens/{user.token}", json={"name": "mine now"}), 400, "does not exist")
    assert_error(other.delete(f"/api/internal/tokens/{user.token}"), 400, "does not exist")
    assert user.token not in [t["id"] for t in other.get("/api/internal/tokens").json()["data"]]
    assert admin.get(f"/api/internal/tokens/{user.token}").json()["data"]["created_by_id"] == user.user_id


def test_a_restricted_token_makes_no_broader_token(make_user):
    narrow = make_user(token_acls=())
    assert_error(narrow.post("/api/tokens", json={"name": _name(), "acls": ["Upload data"]}), 400, "Upload data")
    assert narrow.post("/api/tokens", json={"name": _name(), "acls": []}).status_code == 200


def test_update_a_token(user, admin):
    tid = user.post("/api/tokens", json={"name": _name(), "acls": ["Comment"]}).json()["data"]["token_id"]
    name = _name("renamed")
    assert user.put(f"/api/internal/tokens/{tid}", json={"name": name, "acls": ["Annotate", "Classify"]}).status_code \
        == 200
    data = user.get(f"/api/internal/tokens/{tid}").json()["data"]
    assert data["name"] == name and data["acls"] == ["Annotate", "Classify"]
    assert_error(user.put(f"/api/internal/tokens/{tid}", json={"acls": []}), 400, "No new ACLs")
    assert_error(user.put(f"/api/internal/tokens/{tid}", json={"acls": ["Manage users"]}), 400, "Manage users")
    assert_error(user.put(f"/api/internal/tokens/{tid}", json={"name": "test token"}), 400, "Duplicate token name")
    assert_error(user.put(f"/api/internal/tokens/{tid}", json={"user_id": admin.user_id, "acls": ["Comment"]}), 400,
                 "user_id")
    assert user.get(f"/api/internal/tokens/{tid}").json()["data"]["acls"] == ["Annotate", "Classify"]


# -- /api/internal/profile --------------------------------------------------------------------------

def test_profile_has_skyportals_fields(user):
    r = user.get("/api/internal/profile")
    assert r.status_code == 200, r.text
    p = r.json()["data"]
    for field in ("id", "username", "first_name", "last_name", "contact_email", "contact_phone", "bio", "is_bot",
                  "affiliations", "oauth_uid", "expiration_date", "created_at", "gravatar_url", "acls", "roles",
                  "permissions", "tokens", "preferences", "groupAdmissionRequests", "streams", "is_anonymous"):
        assert field in p, field
    assert p["id"] == user.user_id and p["username"] == user.username
    assert p["roles"] == ["Full user"] and "Upload data" in p["permissions"] and p["acls"] == []
    assert p["preferences"] == {} and p["is_anonymous"] is False
    assert p["gravatar_url"].startswith("https://secure.gravatar.com/avatar/")
    [token] = [t for t in p["tokens"] if t["id"] == user.token]
    assert set(token) == {"id", "name", "acls", "created_at"} and "Upload data" in token["acls"]


def test_profile_update(user, session_factory):
    r = user.patch("/api/internal/profile", json={
        "first_name": "Ada", "last_name": "Lovelace", "affiliations": ["Analytical Engines"],
        "contact_email": "Ada.Lovelace@Example.ORG", "contact_phone": "(555) 123-4567",
        "bio": "writes programs for engines"})
    assert r.status_code == 200, r.text
    p = user.get("/api/internal/profile").json()["data"]
    assert (p["first_name"], p["last_name"], p["affiliations"]) == ("Ada", "Lovelace", ["Analytical Engines"])
    assert p["contact_email"] == "ada.lovelace@example.org" and p["contact_phone"] == "+15551234567"
    assert p["bio"] == "Writes programs for engines."
    # '' clears a contact field
    assert user.patch("/api/internal/profile", json={"contact_phone": ""}).status_code == 200
    assert user.get("/api/internal/profile").json()["data"]["contact_phone"] is None
    # a new username: slugified, and the single-user group follows it
    new = _name("Renamed").upper()
    assert user.patch("/api/internal/profile", json={"username": new}).status_code == 200
    assert user.get("/api/internal/profile").json()["data"]["username"] == new.lower()
    with session_factory() as s:
        names = s.execute(sa.select(models.Group.name).join(models.GroupUser).where(
            models.GroupUser.user_id == user.user_id, models.Group.single_user_group)).scalars().all()
    assert names == [new.lower()]


@pytest.mark.parametrize("body,field,message", [
    ({"username": "abc"}, "username", "at least five characters"),
    ({"contact_email": "not an address"}, "contact_email", "Email does not appear to be valid"),
    ({"contact_phone": "12345"}, "contact_phone", "not valid"),
    ({"contact_phone": "call me"}, "contact_phone", "phone number"),
    ({"bio": "short"}, "bio", "at least 10 characters"),
    ({"is_bot": True}, "bio", "Bot users must have a bio"),
    ({"preferences": []}, "preferences", "preferences"),
    ({"oauth_uid": "x"}, "oauth_uid", "Unknown field"),
])
def test_profile_update_errors(user, body, field, message):
    before = user.get("/api/internal/profile").json()["data"]
    assert_error(user.patch("/api/internal/profile", json=body), 400, message)
    assert user.get("/api/internal/profile").json()["data"] == before


def test_profile_username_taken(user, make_user):
    other = make_user()
    assert_error(user.patch("/api/internal/profile", json={"username": other.username}), 400, "already exists")


def test_a_bot_needs_a_bio(user):
    assert user.patch("/api/internal/profile", json={"bio": "an automated classifier", "is_bot": True}) \
        .status_code == 200
    p = user.get("/api/internal/profile").json()["data"]
    assert p["is_bot"] is True and p["bio"] == "An automated classifier."


def test_preferences_are_merged(user):
    def prefs():
        return user.get("/api/internal/profile").json()["data"]["preferences"]

    assert user.patch("/api/internal/profile", json={"preferences": {
        "newsFeed": {"numItems": 10, "categories": {"sources": True}},
        "classificationShortcuts": {"a": ["AGN"], "b": ["SN Ia"]}}}).status_code == 200
    assert user.patch("/api/internal/profile", json={"preferences": {
        "newsFeed": {"numItems": 20, "blank": ""}, "topSources": {"maxNumSources": 5},
        "classificationShortcuts": {"c": ["Star"]}}}).status_code == 200
    assert prefs() == {"newsFeed": {"numItems": 20, "categories": {"sources": True}},
                       "topSources": {"maxNumSources": 5}, "classificationShortcuts": {"c": ["Star"]}}


def test_only_a_system_admin_updates_another_profile(user, make_user, sysadmin):
    other = make_user()
    assert_error(user.patch(f"/api/internal/profile/{other.user_id}", json={"first_name": "X"}), 400,
                 f"Cannot find User with ID: {other.user_id}")
    assert user.patch(f"/api/internal/profile/{user.user_id}", json={"first_name": "Me"}).status_code == 200
    assert sysadmin.patch(f"/api/internal/profile/{other.user_id}", json={"first_name": "Y"}).status_code == 200
    assert sysadmin.get(f"/api/user/{other.user_id}").json()["data"]["first_name"] == "Y"


# -- /api/user ------------------------------------------------------------------------------------

def test_create_a_user_as_skyportal(admin, session_factory):
    raw = f"New.User+{uuid.uuid4().hex[:6]}@Example.org"
    r = admin.post("/api/user", json={"username": raw, "first_name": "New", "contact_email": "New@Example.org",
                                      "contact_phone": "+44 20 7946 0958", "affiliations": ["Obs"],
                                      "oauth_uid": _name("oauth"), "roles": []})
    assert r.status_code == 200, r.text
    uid = r.json()["data"]["id"]
    u = admin.get(f"/api/user/{uid}").json()["data"]
    slug = raw.lower().replace(".", "-").replace("+", "-").replace("@", "-")
    assert u["username"] == slug
    assert u["roles"] == ["Full user"]  # the default role, for an empty list too
    assert u["contact_email"] == "new@example.org" and u["contact_phone"] == "+442079460958"
    assert "preferences" not in u and u["gravatar_url"].startswith("https://secure.gravatar.com/avatar/")
    with session_factory() as s:
        groups = s.execute(sa.select(models.Group, models.GroupUser).join(models.GroupUser)
                           .where(models.GroupUser.user_id == uid)).all()
        [(single, membership)] = [(g, gu) for g, gu in groups if g.single_user_group]
        assert single.name == slug and membership.admin is False
        assert [gu.user_id for gu in s.execute(sa.select(models.GroupUser)
                                               .where(models.GroupUser.group_id == single.id)).scalars()] == [uid]
        assert len(groups) == 2  # and the sitewide group
    # the same name, however spelled, is taken
    assert_error(admin.post("/api/user", json={"username": raw.upper()}), 400, "already exists")
    # deleting the user deletes their single-user group
    assert admin.delete(f"/api/user/{uid}").status_code == 200
    with session_factory() as s:
        assert s.get(models.Group, single.id) is None


def test_a_new_user_reads_the_streams_of_their_groups(admin, session_factory):
    with session_factory() as s, s.begin():
        stream = models.Stream(name=_name("stream"))
        group = models.Group(name=_name("grp"))
        group.streams.append(stream)
        s.add_all([stream, group])
        s.flush()
        gid, group_name, stream_name = group.id, group.name, stream.name
    uid = admin.post("/api/user", json={"username": _name(), "groupIDsAndAdmin": [[gid, True]]}).json()["data"]["id"]
    users = admin.get("/api/user", params={"stream": stream_name}).json()["data"]["users"]
    assert [u["id"] for u in users] == [uid]
    assert [s_["name"] for s_ in users[0]["streams"]] == [stream_name]
    users = admin.get("/api/user", params={"group": group_name}).json()["data"]["users"]
    assert [u["id"] for u in users] == [uid]


def test_nobody_joins_another_users_single_user_group(admin, user, session_factory):
    with session_factory() as s:
        gid = s.execute(sa.select(models.Group.id).join(models.GroupUser).where(
            models.GroupUser.user_id == user.user_id, models.Group.single_user_group)).scalar_one()
    assert_error(admin.post("/api/user", json={"username": _name(), "groupIDsAndAdmin": [[gid, False]]}), 400,
                 "single-user group")


@pytest.mark.parametrize("body,field", [
    ({"username": "@@@"}, "username"),
    ({"username": "ok-name", "contact_email": "nope@"}, "contact_email"),
    ({"username": "ok-name", "contact_phone": "12"}, "contact_phone"),
    ({"username": "ok-name", "roles": ["Emperor"]}, "roles"),
    ({"username": "ok-name", "affiliations": "Obs"}, "affiliations"),
    ({"username": "ok-name", "expirationDate": "2030-01-01"}, "expirationDate"),
])
def test_create_user_errors(admin, body, field):
    body = {**body, "username": body["username"].replace("ok-name", _name())}
    assert_error(admin.post("/api/user", json=body), 400, field)
    if field != "username":  # nothing was written
        assert admin.get("/api/user", params={"username": body["username"]}).json()["data"]["totalMatches"] == 0


def test_list_users_with_skyportals_filters(admin, user, make_user):
    first, last = _name("First"), _name("Last")
    target = make_user(prefix="listed", acls=("Manage sources",))
    assert admin.patch(f"/api/user/{target.user_id}", json={
        "first_name": first, "last_name": last, "contact_email": f"{last}@example.org"}).status_code == 200
    for params in ({"firstName": first[3:]}, {"lastName": last}, {"username": target.username[2:]},
                   {"email": last.lower()}, {"acl": "Manage sources", "username": target.username},
                   {"role": "Full user", "username": target.username}):
        data = user.get("/api/user", params=params).json()["data"]  # any user may list users
        assert [u["id"] for u in data["users"]] == [target.user_id], params
        assert data["totalMatches"] == 1
    assert user.get("/api/user", params={"role": "Super admin", "username": target.username}).json()["data"] \
        == {"users": [], "totalMatches": 0}
    u = user.get("/api/user", params={"username": target.username}).json()["data"]["users"][0]
    for field in ("id", "username", "first_name", "last_name", "contact_email", "gravatar_url", "roles", "acls",
                  "permissions", "groups"):
        assert field in u, field
    # a non-admin sees only the groups it shares, never single-user ones, and no streams
    assert all(not g["single_user_group"] for g in u["groups"]) and "streams" not in u
    a = admin.get("/api/user", params={"username": target.username}).json()["data"]["users"][0]
    assert any(g["single_user_group"] for g in a["groups"]) and "streams" in a


def test_list_users_sorting(admin, make_user):
    prefix = f"sort{uuid.uuid4().hex[:6]}"
    made = [make_user(prefix=f"{prefix}-{c}") for c in ("b", "a", "c")]
    by_name = admin.get("/api/user", params={"username": prefix}).json()["data"]["users"]
    assert [u["username"] for u in by_name] == sorted(m.username for m in made)
    newest = admin.get("/api/user", params={"username": prefix, "sortBy": "createdAt", "sortOrder": "desc"})
    assert [u["id"] for u in newest.json()["data"]["users"]] == [m.user_id for m in reversed(made)]
    assert_error(admin.get("/api/user", params={"sortBy": "age"}), 400, "sortBy")
    assert_error(admin.get("/api/user", params={"sortOrder": "up"}), 400, "sortOrder")
    assert_error(admin.get("/api/user", params={"includeExpired": "perhaps"}), 400, "includeExpired")


def test_expired_accounts(admin, make_user):
    target = make_user(prefix="expiring")
    past = (datetime.utcnow() - timedelta(days=1)).isoformat()
    assert admin.patch(f"/api/user/{target.user_id}", json={"expirationDate": past}).status_code == 200
    assert_error(target.get("/api/internal/profile"), 403, "User account expired")
    params = {"username": target.username}
    assert admin.get("/api/user", params=params).json()["data"]["totalMatches"] == 0
    listed = admin.get("/api/user", params={**params, "includeExpired": "true"}).json()["data"]["users"]
    assert [u["id"] for u in listed] == [target.user_id] and listed[0]["expiration_date"].startswith(past[:10])
    assert_error(admin.patch(f"/api/user/{target.user_id}", json={"expirationDate": "not a date"}), 400,
                 "expirationDate")
    # expiration_date (the column's name) is ignored, as SkyPortal ignores it; expirationDate null clears it
    assert admin.patch(f"/api/user/{target.user_id}", json={"expiration_date": None}).status_code == 200
    assert_error(target.get("/api/internal/profile"), 403, "User account expired")
    assert admin.patch(f"/api/user/{target.user_id}", json={"expirationDate": None}).status_code == 200
    assert target.get("/api/internal/profile").status_code == 200
    assert admin.get(f"/api/user/{target.user_id}").json()["data"]["expiration_date"] is None


def test_update_and_delete_a_user(make_user, admin):
    manager = make_user(roles=("Full user",), acls=("Manage users",), prefix="manager")
    other = make_user()
    # as SkyPortal: a 'Manage users' holder changes and deletes only itself; a System admin anyone
    assert_error(manager.patch(f"/api/user/{other.user_id}", json={"first_name": "X"}), 400, "Cannot find user")
    assert_error(manager.delete(f"/api/user/{other.user_id}"), 400, "Cannot find/delete user")
    assert manager.patch(f"/api/user/{manager.user_id}", json={"first_name": "Mgr", "is_bot": False}).status_code \
        == 200
    assert admin.patch(f"/api/user/{other.user_id}", json={"first_name": "Z", "affiliations": ["A"],
                                                           "contact_phone": "555-123-4567"}).status_code == 200
    data = admin.get(f"/api/user/{other.user_id}").json()["data"]
    assert (data["first_name"], data["affiliations"], data["contact_phone"]) == ("Z", ["A"], "+15551234567")
    # identity columns are accepted and left alone, as SkyPortal does; what SkyPortal cannot set is refused
    before = admin.get(f"/api/user/{other.user_id}").json()["data"]
    assert admin.patch(f"/api/user/{other.user_id}", json={"id": 999999999, "oauth_uid": "hijacked@example.com",
                                                           "created_at": "2000-01-01"}).status_code == 200
    after = admin.get(f"/api/user/{other.user_id}").json()["data"]
    assert (after["id"], after["oauth_uid"], after["created_at"]) == (before["id"], before["oauth_uid"],
                                                                      before["created_at"])
    for field in ("roles", "acls", "gravatar_url", "permissions"):
        assert_error(admin.patch(f"/api/user/{other.user_id}", json={field: "x"}), 400, field)
    assert_error(admin.patch("/api/user/2147483000", json={"first_name": "X"}), 400, "Cannot find user")
    assert manager.delete(f"/api/user/{manager.user_id}").status_code == 200
    assert_error(admin.get(f"/api/user/{manager.user_id}"), 400, "Cannot find user")
    assert admin.delete(f"/api/user/{other.user_id}").status_code == 200


def test_the_last_admin_cannot_expire(admin, session_factory):
    """Checked in a transaction that strips every other admin first and is then rolled back."""
    from broker.access import users as svc
    from broker.access.auth import Principal
    from broker.errors import ValidationError

    with session_factory() as session:
        session.begin()
        me = session.get(models.User, admin.user_id)
        for u in session.execute(sa.select(models.User).where(models.User.id != me.id)).scalars():
            u.acls = [a for a in u.acls if a.id != "System admin"]
            u.roles = [r for r in u.roles if r.id != "Super admin"]
        session.flush()
        p = Principal(me.id, me.username, "t", frozenset(me.permissions))
        with pytest.raises(ValidationError, match="last System admin"):
            svc.update_user(session, p, me.id, {"expirationDate": "2000-01-01"})
        svc.update_user(session, p, me.id, {"expirationDate": "2999-01-01"})  # a future date keeps it active
        session.rollback()


# -- the normalisations, as SkyPortal's libraries do them ------------------------------------------

@pytest.mark.parametrize("raw,slug", [
    ("testuser@cesium-ml.org", "testuser-cesium-ml-org"), ("Jane Doe", "jane-doe"), ("it's", "its"),
    ("Émile--Zola_", "emile-zola"), ("3f1c2a4e-0b1d-4c1e-9f00-123456789abc", "3f1c2a4e-0b1d-4c1e-9f00-123456789abc"),
])
def test_slugify(raw, slug):
    from broker.access.users import slugify

    assert slugify(raw) == slug


@pytest.mark.parametrize("raw,e164", [
    ("+1 (555) 123-4567", "+15551234567"), ("555.123.4567", "+15551234567"), ("15551234567", "+15551234567"),
    ("+33 1 23 45 67 89", "+33123456789"), ("", None), (None, None),
])
def test_phone_numbers(raw, e164):
    from broker.access.users import normalize_phone

    assert normalize_phone(raw) == e164


@pytest.mark.parametrize("raw", ["blah", "12345", "+0123456789", "+1234567890123456789", "555-1234 ext 5"])
def test_bad_phone_numbers(raw):
    from broker.access.users import normalize_phone
    from broker.errors import ValidationError

    with pytest.raises(ValidationError) as err:
        normalize_phone(raw)
    assert err.value.field == "contact_phone"


def test_preferences_merge_rules():
    from broker.access.users import merge_preferences

    stored = {"notifications": {"gcn_events": {"active": True, "properties": ["a", "b"]}},
              "photometryButtons": {"x": 1, "y": 2}}
    out = merge_preferences(stored, {"notifications": {"gcn_events": {"properties": ["c"]}},
                                     "photometryButtons": {"z": 3}, "favorites": {"name": ""}})
    assert out == {"notifications": {"gcn_events": {"active": True, "properties": ["c"]}},
                   "photometryButtons": {"z": 3}, "favorites": {}}
    assert stored["photometryButtons"] == {"x": 1, "y": 2}  # the stored value is not changed in place
    assert merge_preferences(None, None) == {}
