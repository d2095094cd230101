"""Nobody grants an ACL or role they do not hold; admin rights only from a System admin (issue 8, item 4)."""

from .test_envelope import assert_error


def test_manage_users_cannot_make_itself_admin(make_user, admin):
    manager = make_user(roles=(), acls=("Manage users",))
    me = manager.user_id
    assert_error(manager.post(f"/api/user/{me}/acls", json={"aclIds": ["System admin"]}), 403, "System admin")
    assert_error(manager.post(f"/api/user/{me}/roles", json={"roleIds": ["Super admin"]}), 403, "Super admin")
    # nor hand out an ACL it does not hold, to itself or anyone
    other = make_user(roles=())
    assert_error(manager.post(f"/api/user/{other.user_id}/acls", json={"aclIds": ["Manage groups"]}), 403,
                 "Manage groups")
    assert_error(manager.post(f"/api/user/{other.user_id}/roles", json={"roleIds": ["Full user"]}), 403, "Full user")
    assert_error(manager.post("/api/user", json={"username": f"evil-{me}", "acls": ["System admin"]}), 403,
                 "System admin")
    assert_error(manager.post("/api/user", json={"username": f"evil2-{me}", "roles": ["Super admin"]}), 403,
                 "Super admin")
    # and so no admin token either
    assert_error(manager.post("/api/tokens", json={"name": "x", "acls": ["System admin"]}), 400, "System admin")
    user = admin.get(f"/api/user/{me}").json()["data"]
    assert "System admin" not in user["permissions"]
    # what it holds, it may grant
    r = manager.post(f"/api/user/{other.user_id}/acls", json={"aclIds": ["Manage users"]})
    assert r.status_code == 200, r.text


def test_only_a_system_admin_touches_admins(make_user, admin):
    manager = make_user(roles=(), acls=("Manage users",))
    target = make_user(roles=("Super admin",), acls=("System admin",), prefix="admin2")
    assert_error(manager.delete(f"/api/user/{target.user_id}/acls/System admin"), 403)
    assert_error(manager.delete(f"/api/user/{target.user_id}/roles/Super admin"), 403)
    # as SkyPortal, only a System admin deletes another user (400: not one the caller may delete)
    assert_error(manager.delete(f"/api/user/{target.user_id}"), 400, "Cannot find/delete user")
    assert admin.get(f"/api/user/{target.user_id}").status_code == 200
    # a System admin may grant and revoke admin rights
    r = admin.post(f"/api/user/{manager.user_id}/acls", json={"aclIds": ["System admin"]})
    assert r.status_code == 200, r.text
    r = admin.delete(f"/api/user/{manager.user_id}/acls/System admin")
    assert r.status_code == 200, r.text


def test_the_last_admin_cannot_remove_itself(admin, session_factory):
    """Checked in a transaction that strips every other admin first and is then rolled back."""
    import pytest
    import sqlalchemy as sa

    import models
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
            svc.delete_user(session, p, me.id)
        svc.remove_acl(session, p, me.id, "System admin")  # allowed: the Super admin role still makes it an admin
        session.flush()
        assert me.is_system_admin
        with pytest.raises(ValidationError, match="last System admin"):
            svc.remove_role(session, p, me.id, "Super admin")
        session.rollback()
