"""Regressions of what the hostile-input run found (issue 8, item 9): each answered 500 before."""

import uuid

from .test_envelope import assert_error

SURROGATE = '"\\ud800"'  # a lone UTF-16 surrogate, as JSON escapes it: not Unicode text
FAR_DATE = "9999-12-31T23:59:59-14:00"  # parses, but is past year 9999 in UTC


def test_unpaired_surrogates_are_refused_naming_the_field(admin):
    r = admin.post("/api/streams", data='{"name": ' + SURROGATE + '}')
    assert_error(r, 400, "name")
    assert "surrogate" in r.json()["message"]
    assert_error(admin.post("/api/groups", data='{"name": "ok", "description": "x' + SURROGATE[1:] + '}'), 400,
                 "description")


def test_dates_beyond_the_calendar_are_a_400(admin):
    assert_error(admin.get("/api/sources", params={"savedAfter": FAR_DATE}), 400, "savedAfter")
    assert_error(admin.get("/api/candidates", params={"startDate": FAR_DATE}), 400, "startDate")
    assert_error(admin.get("/api/followup_request", params={"startDate": FAR_DATE}), 400, "startDate")
    assert_error(admin.post("/api/gcn_event", json={"dateobs": FAR_DATE}), 400, "dateobs")
    assert_error(admin.get(f"/api/gcn_event/{FAR_DATE}"), 400)


def test_repeated_group_ids_are_taken_once(admin):
    g = admin.post("/api/groups", json={"name": f"dup-{uuid.uuid4().hex[:8]}"}).json()["data"]["id"]
    r = admin.post("/api/taxonomy", json={"name": f"t-{uuid.uuid4().hex[:6]}", "version": "1",
                                          "hierarchy": {"class": "A"}, "group_ids": [g, g]})
    assert r.status_code == 200, r.text
    tid = r.json()["data"]["taxonomy_id"]
    assert admin.put(f"/api/taxonomy/{tid}", json={"group_ids": [g, g]}).status_code == 200


def test_too_long_to_index_is_a_400_not_an_outage(admin):
    import os

    name = os.urandom(6000).hex()  # 12 kB of incompressible text: beyond a btree entry
    r = admin.post("/api/groups", json={"name": name})
    assert_error(r, 400, "database refused")


def test_priorities_must_be_finite_spans(admin):
    r = admin.put("/api/followup_request/prioritization", json={
        "followupRequestIds": [10**8], "priorityType": "magnitude", "minimumPriority": -1e308, "maximumPriority": 1e308})
    assert_error(r, 400, "minimumPriority")


def test_the_sitewide_group_cannot_be_renamed(admin, config):
    groups = admin.get("/api/groups").json()["data"]["all_groups"]
    (sitewide,) = [g for g in groups if g["name"] == config.admin.sitewide_group]
    assert_error(admin.put(f"/api/groups/{sitewide['id']}", json={"name": "renamed"}), 400, "name")
    assert_error(admin.delete(f"/api/groups/{sitewide['id']}"), 403, "sitewide")  # SkyPortal: 403


def test_plot_labels_are_not_mathtext():
    from broker.followup.reports import report_plot

    rep = {"instrument_name": "$x^$\ufeff", "allocations": [{
        "group_name": "$\\frac$", "proposal_id": "\ufeffp", "allocation_id": 1, "hours_allocated": 1.0,
        "hours_used": 0.0, "hours_committed": 0.0}]}
    assert report_plot(rep, "png")[:8] == b"\x89PNG\r\n\x1a\n"
    assert report_plot(rep, "pdf")[:5] == b"%PDF-"
