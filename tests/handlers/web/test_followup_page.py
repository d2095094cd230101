"""Follow-up from the source page, in a real browser: the form is generated from the allocation's instrument
form schema; bad input and the facility's refusals are shown beside the fields; a good request goes to the
LCO simulator and the page follows its status as the worker polls."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import requests

from .conftest import sign_in

SINISTRO = "1M0-SCICAM-SINISTRO"


def _open_form(page, team, start=datetime(2031, 1, 1, tzinfo=timezone.utc), days=7.0):
    """The source page's form on the Sinistro allocation (valid 2030-2032), its window set."""
    sign_in(page, team["alice"])
    page.goto(f"/source/{team['obj_id']}")
    alloc = team["allocs"][SINISTRO]
    page.select_option("#allocation", str(alloc))
    fieldset = page.locator(f"fieldset[data-allocation-id='{alloc}']")
    assert fieldset.is_visible()
    fieldset.locator("[data-name=start_date] input").fill(start.strftime("%Y-%m-%dT%H:%M:%S"))
    fieldset.locator("[data-name=end_date] input").fill((start + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S"))
    return alloc, fieldset


def _requests_of(team):
    return team["alice"].get("/api/followup_request", params={"sourceID": team["obj_id"]}).json()["data"][
        "followup_requests"]


def test_the_form_is_the_instrument_schema(page, team):
    alloc, fieldset = _open_form(page, team)
    schema = team["alice"].get(f"/api/instrument/{team['instruments'][SINISTRO]}").json()["data"]["form_schema"]
    names = fieldset.locator(".form-field").evaluate_all("fs => fs.map(f => f.dataset.name)")
    assert sorted(names) == sorted(schema["properties"])
    # an enum of several is a set of checkboxes, an enum a select with the schema's default chosen
    choices = fieldset.locator("[data-name=observation_choices] input[type=checkbox]")
    assert choices.evaluate_all("cs => cs.map(c => c.value)") == \
        schema["properties"]["observation_choices"]["items"]["enum"]
    assert fieldset.locator("[data-name=mode] select").input_value() == schema["properties"]["mode"]["default"]


def test_bad_input_is_named_beside_its_field_and_nothing_is_written(page, team):
    alloc, fieldset = _open_form(page, team)
    fieldset.locator("[data-name=observation_choices] input[value=gp]").check()
    fieldset.locator("[data-name=exposure_time] input").fill("-5")
    page.click("#followup-form button[type=submit]")
    error = fieldset.locator("[data-error-for=exposure_time]")
    error.wait_for()
    page.wait_for_function("e => e.textContent.length > 0", arg=error.element_handle())
    assert "exposure_time" in error.inner_text()
    assert _requests_of(team) == []
    assert not page.js_errors


def test_the_facility_refusal_is_shown_beside_the_window(page, team):
    alloc, fieldset = _open_form(page, team, days=10 / 1440)
    fieldset.locator("[data-name=observation_choices] input[value=rp]").check()
    fieldset.locator("[data-name=exposure_time] input").fill("3000")  # 50 minutes: no 10-minute window holds it
    page.click("#followup-form button[type=submit]")
    error = fieldset.locator("[data-error-for=end_date]")
    page.wait_for_function("e => e.textContent.length > 0", arg=error.element_handle())
    assert "did not fit into any visible intervals" in error.inner_text()
    assert page.locator("#followup-form .form-error").inner_text() == ""  # shown once, beside the field
    # the refused request is kept as rejected, with the exchange that refused it
    refused, = _requests_of(team)
    assert refused["status"] == "rejected"
    assert refused["facility_status"] == "rejected"
    assert requests.get(f"{team['lco'].url}/control/state", timeout=10).json()["groups"] == []


def test_submit_and_follow_the_status_as_the_worker_polls(page, team, config, session_factory, engine):
    from broker.runtime.app import make_app
    from broker.runtime.worker import FollowupWorker
    from dataclasses import replace

    alloc, fieldset = _open_form(page, team)
    fieldset.locator("[data-name=observation_choices] input[value=gp]").check()
    fieldset.locator("[data-name=observation_choices] input[value=ip]").check()
    fieldset.locator("[data-name=exposure_time] input").fill("120")
    fieldset.locator("[data-name=exposure_counts] input").fill("2")
    page.click("#followup-form button[type=submit]")
    row = page.locator("tr.followup")
    row.first.wait_for()  # the page reloads with the new request
    req, = _requests_of(team)
    assert req["payload"]["observation_choices"] == ["gp", "ip"] and req["payload"]["exposure_counts"] == 2
    assert row.locator(".status").inner_text() == req["status"] == "submitted"
    assert "submitted" in row.locator(".history").inner_text()
    group, = requests.get(f"{team['lco'].url}/control/state", timeout=10).json()["groups"]
    assert [ic["optical_elements"]["filter"] for ic in
            group["requests"][0]["configurations"][0]["instrument_configs"]] == ["gp", "ip"]
    tx = team["alice"].get(f"/api/followup_request/{req['id']}").json()["data"]["transactions"]
    assert "submit" in [t["action"] for t in tx]
    assert row.locator("details summary").inner_text() == f"{len(tx)} exchange{'' if len(tx) == 1 else 's'}"
    # the facility schedules it; the worker polls; the open page shows the new status
    requests.post(f"{team['lco'].url}/control/requests/{group['requests'][0]['id']}/schedule", timeout=10)
    service = make_app(replace(config, facilities=replace(config.facilities, poll_interval_s=0.3)),
                       session_factory).followup
    worker = FollowupWorker(service, engine, 0.3).start()
    try:
        page.wait_for_function("() => document.querySelector('tr.followup .status').textContent"
                               " === 'submitted (scheduled)'", timeout=30_000)
    finally:
        worker.stop()
    page.reload()
    history = row.locator(".history li")
    assert history.evaluate_all("hs => hs.map(h => h.dataset.facilityStatus)") == ["pending", "submitted",
                                                                                  "scheduled"]
    assert history.nth(2).locator("b").inner_text() == "submitted (scheduled)"  # SkyPortal's words
    assert not page.js_errors
