"""The allocations page in a real browser: hours used against granted and requests by status, as the
API's allocation report has them, and the report and schedule plots the API draws."""

from __future__ import annotations

import requests

from tests.handlers.followup_helpers import post, sim_groups

from .conftest import sign_in

SINISTRO = "1M0-SCICAM-SINISTRO"


def test_hours_and_requests_per_allocation(page, team, config, session_factory, make_user):
    from broker.runtime.app import make_app

    done = post(team, SINISTRO).json()["data"]["id"]
    active = post(team, SINISTRO).json()["data"]["id"]
    assert done and active
    group = next(g for g in sim_groups(team["lco"]) if g["name"].endswith(f"sb{done}r0"))
    rid = group["requests"][0]["id"]
    requests.post(f"{team['lco'].url}/control/requests/{rid}/complete", timeout=10)
    make_app(config, session_factory).followup.refresh_all()
    iid = team["instruments"][SINISTRO]
    report = team["alice"].get(f"/api/allocation/report/{iid}").json()["data"]
    mine, = [a for a in report["allocations"] if a["allocation_id"] == team["allocs"][SINISTRO]]
    assert mine["hours_used"] > 0 and mine["requests"] == {"completed": 1, "submitted": 1}

    sign_in(page, team["alice"])
    page.goto("/allocations")
    row = page.locator(f"tr.allocation[data-allocation-id='{team['allocs'][SINISTRO]}']")
    assert row.locator(".hours").inner_text() == f"{mine['hours_used']:.2f} / {mine['hours_allocated']:g} h"
    assert row.locator("progress").evaluate("p => [p.value, p.max]") == [mine["hours_used"], mine["hours_allocated"]]
    assert sorted(row.locator(".by-status .status").all_inner_texts()) == ["completed: 1", "submitted: 1"]
    section = page.locator(f"section.instrument[data-instrument-id='{iid}']")
    for img in (section.locator("img.report-plot"), section.locator("img.schedule-plot")):
        img.scroll_into_view_if_needed()
        page.wait_for_function("i => i.complete && i.naturalWidth > 100", arg=img.element_handle())
    # every instrument of the team's allocations has its section; Bob, in no group of theirs, sees none
    assert page.locator("section.instrument").count() == len(team["allocs"])
    assert not page.js_errors
    sign_in(page, team["bob"])
    page.goto("/allocations")
    assert page.locator("#no-allocations").is_visible()
