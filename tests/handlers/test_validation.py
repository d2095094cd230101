"""Body validation: wrong type, missing required, unknown field -> 400 naming the field; nothing written."""

import pytest
import sqlalchemy as sa

from .test_envelope import assert_error

TABLES = ("groups", "group_users", "streams", "filters", "users", "tokens")


def counts(engine):
    with engine.connect() as conn:
        return {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar() for t in TABLES}


@pytest.mark.parametrize("path,body,field,message", [
    ("/api/groups", {"nickname": "x"}, "name", "Missing required field"),
    ("/api/groups", {"name": 5}, "name", "Invalid type"),
    ("/api/groups", {"name": "ok", "colour": "red"}, "colour", "Unknown field"),
    ("/api/groups", {"name": "ok", "group_admins": ["me"]}, "group_admins[0]", "Invalid type"),
    ("/api/streams", {"name": "s", "altdata": "topic"}, "altdata", "Invalid type"),
    ("/api/filters", {"name": "f", "group_id": 1}, "stream_id", "Missing required field"),
    ("/api/filters", {"name": "f", "group_id": "1", "stream_id": 1}, "group_id", "Invalid type"),
    ("/api/filters", {"name": "f", "group_id": 1, "stream_id": 1, "criteria": []}, "criteria", "Invalid type"),
    ("/api/tokens", {"name": "t", "acls": ["Fly"]}, "acls[0]", "Invalid value"),
    ("/api/user", {"username": "u", "admin": True}, "admin", "Unknown field"),
])
def test_bad_bodies_are_refused_and_write_nothing(admin, engine, path, body, field, message):
    before = counts(engine)
    body_out = assert_error(admin.post(path, json=body), 400, message)
    assert f"'{field}'" in body_out["message"]
    assert counts(engine) == before


def test_failure_midway_leaves_no_half_written_group(admin, engine):
    """The group row is inserted before group_admins are checked; the transaction rolls back."""
    before = counts(engine)
    assert_error(admin.post("/api/groups", json={"name": "half", "group_admins": [10**9]}), 400, "group_admins")
    assert counts(engine) == before
    groups = admin.get("/api/groups").json()["data"]["all_groups"]
    assert "half" not in [g["name"] for g in groups]


def test_user_creation_with_bad_group_writes_nothing(admin, engine):
    before = counts(engine)
    assert_error(admin.post("/api/user", json={"username": "ghost", "groupIDsAndAdmin": [[10**9, False]]}),
                 400, "groupIDsAndAdmin")
    assert counts(engine) == before
