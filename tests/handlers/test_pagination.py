"""SkyPortal pagination: pageNumber (1-based), numPerPage (capped), totalMatches."""

import pytest

from .test_envelope import assert_error


@pytest.fixture(scope="module")
def many_users(make_user):
    return [make_user(prefix="page") for _ in range(7)]


def test_pages_cover_everything_once(admin, many_users):
    first = admin.get("/api/user", params={"numPerPage": 3, "pageNumber": 1}).json()["data"]
    total = first["totalMatches"]
    assert total >= 8
    seen = []
    for page in range(1, -(-total // 3) + 1):
        data = admin.get("/api/user", params={"numPerPage": 3, "pageNumber": page}).json()["data"]
        assert data["totalMatches"] == total
        assert len(data["users"]) == (3 if page * 3 <= total else total - (page - 1) * 3)
        seen += [u["id"] for u in data["users"]]
    assert len(seen) == len(set(seen)) == total
    assert {u.user_id for u in many_users} <= set(seen)


def test_out_of_range_page(admin, many_users):
    # SkyPortal's user listing answers a page past the end with no users (not an error)
    total = admin.get("/api/user", params={"numPerPage": 5}).json()["data"]["totalMatches"]
    last = -(-total // 5)
    assert admin.get("/api/user", params={"numPerPage": 5, "pageNumber": last}).json()["data"]["users"]
    past = admin.get("/api/user", params={"numPerPage": 5, "pageNumber": last + 1}).json()["data"]
    assert past == {"users": [], "totalMatches": total}


@pytest.mark.parametrize("params,field", [
    ({"pageNumber": 0}, "pageNumber"),
    ({"pageNumber": "two"}, "pageNumber"),
    ({"numPerPage": -1}, "numPerPage"),
    ({"numPerPage": "many"}, "numPerPage"),
])
def test_bad_pagination_arguments(admin, params, field):
    assert_error(admin.get("/api/user", params=params), 400, field)


def test_num_per_page_is_capped(admin, config, many_users):
    cap = config.server.max_num_per_page
    data = admin.get("/api/user", params={"numPerPage": cap * 10}).json()["data"]
    assert len(data["users"]) == min(cap, data["totalMatches"])


def test_username_filter(admin, many_users):
    u = many_users[0]
    data = admin.get("/api/user", params={"username": u.username}).json()["data"]
    assert data["totalMatches"] == 1 and data["users"][0]["id"] == u.user_id
