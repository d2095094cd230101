"""SkyPortal's envelope on success and on every kind of error."""

import pytest

from handlers.base import BaseHandler, endpoint


class BoomHandler(BaseHandler):
    @endpoint("raises an unexpected exception", tags="test")
    def get(self):
        raise RuntimeError("secret internal detail /etc/passwd")


@pytest.fixture(scope="module")
def boom(api_server):
    api_server.app.add_handlers(r".*", [(r"/api/test_boom", BoomHandler, {"methods": frozenset({"GET"})})])
    return "/api/test_boom"


def assert_error(resp, status, contains=""):
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"status", "message", "data", "version"}
    # SkyPortal's data {}; ours adds the field the message names (and a facility's messages per field)
    assert body["status"] == "error" and set(body["data"]) <= {"field", "errors"}
    assert all(isinstance(body["data"][k], (str, dict)) and body["data"][k] for k in body["data"])
    assert isinstance(body["version"], str) and body["version"]
    assert contains.lower() in body["message"].lower()
    return body


def test_success_envelope(user):
    r = user.get("/api/sysinfo")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"status", "data", "version"}
    assert body["status"] == "success"
    assert body["data"]["version"] == body["version"]
    assert r.headers["Content-Type"].startswith("application/json")


def test_unknown_route_is_404_envelope(user, anonymous):
    assert_error(user.get("/api/no_such_thing"), 404, "Invalid API endpoint")
    assert_error(anonymous.get("/api/nowhere/at/all"), 404, "Invalid API endpoint")
    assert_error(anonymous.get("/api"), 404, "Invalid API endpoint")
    # outside /api the web pages answer: an HTML 404 (tests/handlers/web)
    r = anonymous.get("/nowhere/at/all")
    assert r.status_code == 404 and r.headers["Content-Type"].startswith("text/html") and "No page at" in r.text


def test_wrong_method_is_405_envelope(user):
    r = user.put("/api/sysinfo", json={})
    assert_error(r, 405, "not allowed")
    assert r.headers["Allow"] == "GET"
    assert_error(user.request("DELETE", "/api/streams"), 405, "not allowed")


def test_malformed_json_is_400(user):
    r = user.post("/api/groups", data=b"{not json", headers={"Content-Type": "application/json"})
    assert_error(r, 400, "Malformed JSON")
    assert_error(user.post("/api/groups", data=b""), 400, "JSON object")
    assert_error(user.post("/api/groups", json=[1, 2]), 400, "must be a JSON object")


def test_uncaught_exception_is_500_without_trace(user, boom):
    body = assert_error(user.get(boom), 500, "Internal server error")
    assert "secret internal detail" not in str(body)
    assert "Traceback" not in str(body)


def test_enum_types(user):
    data = user.get("/api/enum_types").json()["data"]
    assert "ztfg" in data["ALLOWED_BANDPASSES"] and "lssty" in data["ALLOWED_BANDPASSES"]
    assert "System admin" in data["ALLOWED_ACLS"]
    assert data["ALLOWED_MAGSYSTEMS"][0] == "ab"


def test_db_stats_counts(admin, user):
    data = admin.get("/api/db_stats").json()["data"]
    assert data["Number of users"] >= 2
    assert data["Number of tokens"] >= 2
    assert data["Number of groups"] >= 3  # sitewide + one single-user group each
    assert "Number of candidates" in data and "Postgres version" in data


def test_database_outage_is_a_503_and_the_api_recovers(user, database_outage):
    import time

    with database_outage():
        r = user.get("/api/groups")
        assert_error(r, 503, "Database unavailable")
        assert_error(user.post("/api/groups", json={"name": "during-outage"}), 503)
    # the first failure invalidated the pool: its dead connections are replaced
    deadline = time.monotonic() + 30
    while user.get("/api/groups").status_code != 200:
        assert time.monotonic() < deadline, "the API did not recover from the outage"
        time.sleep(0.5)


def test_connections_dropped_while_idle_cost_no_request(user, engine, pg_admin_url):
    """PostgreSQL drops every pooled connection between two requests (a restart): the next request still
    succeeds (its token look-up meets a dead connection, is tried again on a fresh one, and the pool's
    other dead connections are replaced), though the pool does not ping at checkout."""
    import uuid

    import sqlalchemy as sa

    assert user.get("/api/groups").status_code == 200
    assert user.post("/api/groups", json={"name": f"before-drop-{uuid.uuid4().hex[:8]}"}).status_code == 200
    admin_engine = sa.create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin_engine.connect() as conn:
            dropped = conn.execute(sa.text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                           "WHERE datname = :d AND pid <> pg_backend_pid()"),
                                   {"d": engine.url.database}).scalar()
    finally:
        admin_engine.dispose()
    assert dropped >= 1
    r = user.get("/api/groups")
    assert r.status_code == 200, r.text
    assert user.post("/api/groups", json={"name": f"after-drop-{uuid.uuid4().hex[:8]}"}).status_code == 200


def test_an_error_names_its_field_in_data(user):
    """Our addition to SkyPortal's error envelope: data.field, the field the message names (what the web
    pages' forms show the message beside); data stays {} where no one field is at fault."""
    r = user.post("/api/groups", json={"name": "x", "nope": 1})
    assert r.status_code == 400 and r.json()["data"] == {"field": "nope"} and "nope" in r.json()["message"]
    r = user.get("/api/sources", params={"pageNumber": "0"})
    assert r.json()["data"] == {"field": "pageNumber"}
    assert user.get("/api/no_such_route").json()["data"] == {}
