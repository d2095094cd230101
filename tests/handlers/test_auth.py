"""Token auth and ACLs."""

from .test_envelope import assert_error


def test_no_token_is_401(anonymous):
    r = anonymous.get("/api/sysinfo")
    assert_error(r, 401, "Authentication required")
    assert "Token" in r.headers["WWW-Authenticate"]


def test_unknown_token_is_401(anonymous):
    r = anonymous.get("/api/sysinfo", headers={"Authorization": "token 00000000-0000-0000-0000-000000000000"})
    assert_error(r, 401, "Invalid token")
    assert_error(anonymous.get("/api/sysinfo", headers={"Authorization": "token not-a-uuid"}), 401, "Invalid token")
    assert_error(anonymous.get("/api/sysinfo", headers={"Authorization": "Bearer abc"}), 401, "Malformed")


def test_scheme_is_case_insensitive(user):
    for scheme in ("token", "Token", "TOKEN"):
        r = user.get("/api/sysinfo", headers={"Authorization": f"{scheme} {user.token}"})
        assert r.status_code == 200, scheme


def test_missing_acl_is_401_naming_it(user):
    assert_error(user.get("/api/db_stats"), 401, "'System admin'")
    assert_error(user.post("/api/streams", json={"name": "x"}), 401, "'Manage streams'")
    # the identity endpoints answer a missing ACL with 401, as SkyPortal's permissions decorator does
    assert_error(user.post("/api/user", json={"username": "nobody-new"}), 401, "'Manage users'")


def test_token_acls_limit_the_owner(make_user):
    # A stream manager whose token does not carry "Manage streams" cannot use it.
    c = make_user(acls=("Manage streams",), token_acls=())
    assert_error(c.post("/api/streams", json={"name": "nope"}), 401, "'Manage streams'")
    full = make_user(acls=("Manage streams",))
    assert full.post("/api/streams", json={"name": f"s-{full.username}"}).status_code == 200


def test_tokens_crud_and_subset_rule(user, anonymous):
    r = user.post("/api/tokens", json={"name": "script", "acls": ["Upload data"]})
    assert r.status_code == 200, r.text
    tid = r.json()["data"]["token_id"]
    # the new token works and carries only its ACLs
    other = type(user)(user.base_url, tid)
    assert other.get("/api/sysinfo").status_code == 200
    assert user.get(f"/api/tokens/{tid}").json()["data"]["acls"] == ["Upload data"]
    assert tid in [t["id"] for t in user.get("/api/tokens").json()["data"]]
    # asking for an ACL you lack is refused, naming it (400, as SkyPortal)
    assert_error(user.post("/api/tokens", json={"name": "escalate", "acls": ["System admin"]}), 400, "System admin")
    # duplicate names refused
    assert_error(user.post("/api/tokens", json={"name": "script"}), 400, "already")
    assert user.put(f"/api/tokens/{tid}", json={"name": "renamed"}).status_code == 200
    assert user.get(f"/api/tokens/{tid}").json()["data"]["name"] == "renamed"
    assert user.delete(f"/api/tokens/{tid}").status_code == 200
    assert_error(other.get("/api/sysinfo"), 401, "Invalid token")


def test_tokens_of_others_are_invisible(user, make_user):
    other = make_user()
    assert_error(other.get(f"/api/tokens/{user.token}"), 400)  # SkyPortal answers 400
    assert_error(other.delete(f"/api/tokens/{user.token}"), 400)
    assert user.get("/api/sysinfo").status_code == 200


def test_user_self_and_admin(user, admin, make_user):
    me = user.get(f"/api/user/{user.user_id}").json()["data"]
    assert me["username"] == user.username and "Upload data" in me["permissions"]
    other = make_user()
    # as SkyPortal: every user may read every user; changing one needs 'Manage users' (401 without);
    # your own profile you change through /api/internal/profile
    assert user.get(f"/api/user/{other.user_id}").json()["data"]["username"] == other.username
    assert_error(user.patch(f"/api/user/{user.user_id}", json={"first_name": "Vera"}), 401, "Manage users")
    assert user.patch("/api/internal/profile", json={"first_name": "Vera"}).status_code == 200
    assert user.get(f"/api/user/{user.user_id}").json()["data"]["first_name"] == "Vera"
    # admin grants an ACL, which then works through a new token
    assert admin.post(f"/api/user/{other.user_id}/acls", json={"aclIds": ["Manage streams"]}).status_code == 200
    assert "Manage streams" in admin.get(f"/api/user/{other.user_id}").json()["data"]["acls"]
    assert_error(admin.post(f"/api/user/{other.user_id}/acls", json={"aclIds": ["Fly"]}), 400, "aclIds")
    assert admin.delete(f"/api/user/{other.user_id}/acls/Manage streams").status_code == 200
    assert admin.post(f"/api/user/{other.user_id}/roles", json={"roleIds": ["Group admin"]}).status_code == 200
    assert "Group admin" in admin.get(f"/api/user/{other.user_id}").json()["data"]["roles"]
    assert admin.delete(f"/api/user/{other.user_id}/roles/Group admin").status_code == 200


def test_admin_creates_and_deletes_users(admin):
    import uuid

    name = f"new-{uuid.uuid4().hex[:8]}"
    r = admin.post("/api/user", json={"username": name, "first_name": "A", "roles": ["View only"]})
    assert r.status_code == 200, r.text
    uid = r.json()["data"]["id"]
    data = admin.get(f"/api/user/{uid}").json()["data"]
    assert data["roles"] == ["View only"] and data["first_name"] == "A"
    assert_error(admin.post("/api/user", json={"username": name}), 400, "already exists")
    assert admin.delete(f"/api/user/{uid}").status_code == 200
    assert_error(admin.get(f"/api/user/{uid}"), 400, "Cannot find user")  # SkyPortal answers 400
