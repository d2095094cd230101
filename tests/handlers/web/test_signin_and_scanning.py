"""Sign in, scan a night's replayed ZTF alerts, save one and reject another, in a real browser."""

from __future__ import annotations

import re

import pytest
import requests

from .conftest import sign_in
from .scenario import replay_night


@pytest.fixture(scope="module")
def night(admin, make_user, config, engine, session_factory, kafka_bootstrap):
    return replay_night(admin, make_user, config, engine, session_factory, kafka_bootstrap)


def test_sign_in_refuses_a_bad_token_beside_the_field_and_sign_out_clears_the_cookie(page, user, api_server):
    page.goto("/candidates")
    assert "/login" in page.url  # not signed in: the sign-in page, which comes back here after
    page.fill("#token", "not-a-token")
    page.click(".signin button[type=submit]")
    assert page.locator("#token-error").inner_text() == "Invalid token"
    page.fill("#token", user.token)
    page.click(".signin button[type=submit]")
    page.wait_for_url(re.compile(r".*/candidates$"))
    assert page.locator(".who").inner_text() == user.username
    cookie, = [c for c in page.context.cookies() if c["name"] == "skybroker_token"]
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
    assert cookie["value"] != user.token and "|" in cookie["value"]  # Tornado's signed value, not the bare token
    page.click("text=Sign out")
    page.wait_for_url(re.compile(r".*/login$"))
    assert not [c for c in page.context.cookies() if c["name"] == "skybroker_token"]
    page.goto("/candidates")
    assert "/login" in page.url


def test_a_forged_cookie_is_not_a_sign_in(api_server, user):
    r = requests.get(api_server.url + "/candidates", cookies={"skybroker_token": user.token},
                     allow_redirects=False, timeout=10)
    assert r.status_code == 302 and r.headers["Location"].startswith("/login")
    r = requests.get(api_server.url + "/api/internal/profile", cookies={"skybroker_token": user.token}, timeout=10)
    assert r.status_code == 401


def test_scan_save_and_reject(page, night):
    owner = night.owner
    sign_in(page, owner)
    page.goto(f"/candidates?filterIDs={night.fid}")
    rows = page.locator("tr.candidate")
    assert rows.count() == 3
    assert sorted(rows.nth(i).get_attribute("data-obj-id") for i in range(3)) == sorted(night.obj_ids)
    # each row's three cutouts are real images the browser decoded
    for i in range(3):
        imgs = rows.nth(i).locator(".cutouts img")
        assert imgs.count() == 3
        for j in range(3):
            imgs.nth(j).scroll_into_view_if_needed()
            page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=imgs.nth(j).element_handle())
    keep, drop = rows.nth(0).get_attribute("data-obj-id"), rows.nth(1).get_attribute("data-obj-id")
    row = page.locator(f"tr.candidate[data-obj-id='{keep}']")
    row.locator("select.save-group").select_option(str(night.gid))
    row.locator("button.save").click()
    row.locator(".row-status.ok").wait_for()
    saved = owner.get(f"/api/sources/{keep}").json()["data"]
    assert night.gid in [g["id"] for g in saved["groups"]]
    page.locator(f"tr.candidate[data-obj-id='{drop}'] button.reject").click()
    page.locator(f"tr.candidate.rejected[data-obj-id='{drop}']").wait_for()
    listing = owner.get("/api/listing", params={"listName": "rejected_candidates"}).json()["data"]
    assert [x["obj_id"] for x in listing] == [drop]
    # the rejected candidate is left out of the next scan, and comes back when asked for
    page.goto(f"/candidates?filterIDs={night.fid}")
    assert sorted(page.locator("tr.candidate").evaluate_all("rs => rs.map(r => r.dataset.objId)")) == \
        sorted(set(night.obj_ids) - {drop})
    page.goto(f"/candidates?filterIDs={night.fid}&showRejected=true")
    assert page.locator("tr.candidate").count() == 3
    assert not page.js_errors


def test_a_bad_filter_value_is_named_beside_its_field(page, night):
    sign_in(page, night.owner)
    page.goto(f"/candidates?filterIDs={night.fid}&minLatestMagnitude=bright")
    assert "minLatestMagnitude" in page.locator("[data-error-for=minLatestMagnitude]").inner_text()
    assert page.locator("tr.candidate").count() == 0


def test_another_user_sees_none_of_them(page, night, make_user):
    stranger = make_user(prefix="stranger")
    sign_in(page, stranger)
    page.goto("/candidates")
    assert page.locator("tr.candidate").count() == 0
    page.goto(f"/candidates?filterIDs={night.fid}")
    assert "filterIDs" in page.locator("[data-error-for=filterIDs]").inner_text()


def test_saved_sources_are_listed_and_searched(page, night):
    owner = night.owner
    r = owner.post("/api/sources", json={"id": night.obj_ids[2], "group_ids": [night.gid]})
    assert r.status_code == 200, r.text
    saved = owner.get("/api/sources", params={"group_ids": str(night.gid)}).json()["data"]
    sign_in(page, owner)
    page.goto(f"/sources?group_ids={night.gid}")
    ids = page.locator("tr.source").evaluate_all("rs => rs.map(r => r.dataset.objId)")
    assert ids == [s["id"] for s in saved["sources"]] and saved["totalMatches"] >= 1
    page.fill("input[name=sourceID]", ids[0][-6:])
    page.click("#source-filters button[type=submit]")
    page.wait_for_url("**sourceID=**")
    assert page.locator("tr.source").evaluate_all("rs => rs.map(r => r.dataset.objId)") == [ids[0]]
    page.click("tr.source a")
    page.wait_for_url(f"**/source/{ids[0]}")
    assert page.locator("#obj-id").inner_text() == ids[0]
