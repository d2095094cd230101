"""Allocations and follow-up requests through the API, against the LCO simulator."""

import uuid

import pytest
import requests

from broker.runtime.app import default_facilities
from tests.conftest import LCO_TOKEN
from tests.facility_apis.payloads import PAYLOADS

from .followup_helpers import as_sent, post, sim_groups
from .test_envelope import assert_error

def test_allocation_credentials_never_leave(team):
    a = team["alice"].get(f"/api/allocation/{team['allocs']['1M0-SCICAM-SINISTRO']}").json()["data"]
    assert a["has_credentials"] is True and "altdata" not in a and "_altdata" not in a
    assert LCO_TOKEN not in team["admin"].get("/api/allocation").text
    assert_error(team["bob"].get(f"/api/allocation/{team['allocs']['1M0-SCICAM-SINISTRO']}"), 400)
    assert_error(team["alice"].post("/api/allocation", json={"group_id": team["gid"], "instrument_id": 1,
                                                             "hours_allocated": 1}), 401, "Manage allocations")


def test_instrument_form_schema(team):
    inst = team["alice"].get(f"/api/instrument/{team['instruments']['2M0-SCICAM-MUSCAT']}").json()["data"]
    assert "exposure_time_g" in inst["form_schema"]["properties"]
    # SkyPortal's MUSCAT form has one exposure_time for every channel; a channel's own time is optional
    assert {"exposure_time", "priority", "observation_mode"} <= set(inst["form_schema"]["properties"])
    assert "exposure_time_z" not in inst["form_schema"]["required"]


@pytest.mark.parametrize("inst", sorted(PAYLOADS))
def test_every_instrument_submits_the_expected_group(team, inst):
    r = post(team, inst)
    assert r.status_code == 200, r.text
    rid = r.json()["data"]["id"]
    (group,) = sim_groups(team["lco"])
    expected = default_facilities(_cfg())["LCO"].build(
        inst, PAYLOADS[inst], obj_id=team["obj_id"], ra=197.4481, dec=-23.3839, proposal="LCO2031A-001",
        name=f"{team['obj_id']}-sb{rid}r0")
    assert as_sent(group) == expected
    one = team["alice"].get(f"/api/followup_request/{rid}").json()["data"]
    assert one["status"] == "submitted" and one["remote_id"] == str(group["id"])
    assert one["remote_request_ids"] == [group["requests"][0]["id"]]
    lookup, tx = one["transactions"]  # looked up by name first: a lost reply never makes a second group
    assert lookup["request"]["method"] == "GET" and lookup["response"]["status"] == 200
    assert tx["action"] == "submit" and tx["response"]["status"] == 201
    assert tx["request"]["headers"]["Authorization"] == "<redacted>" and LCO_TOKEN not in str(one)


def _cfg():
    from broker.runtime.config import load_config

    return load_config(env={})


def test_rejection_is_a_400_with_the_portals_message(team, admin):
    aid = team["allocs"]["1M0-SCICAM-SINISTRO"]
    # SkyPortal merges new _altdata into what is stored: clear it (null) to drop the PROPOSAL_ID
    assert admin.put(f"/api/allocation/{aid}", json={"altdata": None}).status_code == 200
    assert admin.put(f"/api/allocation/{aid}", json={"altdata": {"API_TOKEN": LCO_TOKEN}, "proposal_id": ""}
                     ).status_code == 200
    r = post(team)
    body = assert_error(r, 400, "rejected")
    assert "proposal" in body["message"]
    (req,) = team["alice"].get("/api/followup_request", params={"sourceID": team["obj_id"]}).json()["data"][
        "followup_requests"]
    assert req["status"] == "rejected" and "proposal" in req["status_message"]
    assert sim_groups(team["lco"]) == []


def test_bad_credentials(team, admin):
    aid = team["allocs"]["1M0-SCICAM-SINISTRO"]
    admin.put(f"/api/allocation/{aid}", json={"altdata": {"API_TOKEN": "wrong-token"}})
    assert_error(post(team), 400, "credentials")


def test_outage_then_success_makes_exactly_one_group(team):
    requests.post(f"{team['lco'].url}/control/faults", json={"status": 503, "count": 2})
    r = post(team)
    assert r.status_code == 200, r.text
    assert len(sim_groups(team["lco"])) == 1


def test_lasting_outage_is_a_503_and_the_request_is_kept(team):
    requests.post(f"{team['lco'].url}/control/faults", json={"status": 503, "count": 100})
    try:
        assert_error(post(team), 503, "unavailable")
    finally:
        requests.post(f"{team['lco'].url}/control/faults", json={"count": 0})
    (req,) = team["alice"].get("/api/followup_request", params={"sourceID": team["obj_id"]}).json()["data"][
        "followup_requests"]
    # SkyPortal's words in status, our state in facility_status
    assert req["facility_status"] == "error" and req["status"].startswith("failed to submit: facility unavailable")


def test_cancel_and_update(team):
    rid = post(team).json()["data"]["id"]
    r = team["alice"].put(f"/api/followup_request/{rid}", json={"payload": {**PAYLOADS["1M0-SCICAM-SINISTRO"],
                                                                            "exposure_time": 60}})
    assert r.status_code == 200, r.text
    groups = sorted(sim_groups(team["lco"]), key=lambda g: g["id"])
    assert [g["state"] for g in groups] == ["CANCELED", "PENDING"]
    assert groups[1]["name"].endswith("r1")
    assert groups[1]["requests"][0]["configurations"][0]["instrument_configs"][0]["exposure_time"] == 60.0
    one = team["alice"].get(f"/api/followup_request/{rid}").json()["data"]
    assert one["revision"] == 1 and one["remote_id"] == str(groups[1]["id"])
    assert team["alice"].delete(f"/api/followup_request/{rid}").status_code == 200
    assert [g["state"] for g in sorted(sim_groups(team["lco"]), key=lambda g: g["id"])] == ["CANCELED", "CANCELED"]
    assert team["alice"].get(f"/api/followup_request/{rid}").json()["data"]["status"] == "deleted"  # SkyPortal's word
    assert_error(team["alice"].delete(f"/api/followup_request/{rid}"), 400, "already cancelled")


def test_poller_follows_to_completion_and_frames(team, session_factory, config):
    from broker.runtime.app import make_app

    rid = post(team, "0M4-SCICAM-QHY600").json()["data"]["id"]
    service = make_app(config, session_factory).followup
    (group,) = sim_groups(team["lco"])
    req_id = group["requests"][0]["id"]
    requests.post(f"{team['lco'].url}/control/requests/{req_id}/schedule")
    service.refresh_all()
    one = team["alice"].get(f"/api/followup_request/{rid}").json()["data"]
    # still "submitted" in SkyPortal's words (Kowalski's duplicate check looks for it); ours: scheduled
    assert one["facility_status"] == "scheduled" and "submitted" in one["status"]
    requests.post(f"{team['lco'].url}/control/requests/{req_id}/complete")
    service.refresh_all()
    one = team["alice"].get(f"/api/followup_request/{rid}").json()["data"]
    assert one["status"] == "completed" and len(one["frames"]) == 6
    n_tx = len(one["transactions"])
    service.refresh_all()  # terminal: not polled again
    assert len(team["alice"].get(f"/api/followup_request/{rid}").json()["data"]["transactions"]) == n_tx
    frames = team["alice"].post(f"/api/photometry_request/{rid}").json()["data"]["frames"]
    assert {f["filter"] for f in frames} == {"gp", "rp", "ip"}
    # every status it took, in order, once each (kept by a trigger, whatever changed it)
    history = team["alice"].get(f"/api/followup_request/{rid}").json()["data"]["status_history"]
    assert [h["facility_status"] for h in history] == ["pending", "submitted", "scheduled", "completed"]
    assert [h["status"] for h in history] == ["pending", "submitted", "submitted (scheduled)", "completed"]
    assert [h["created_at"] for h in history] == sorted(h["created_at"] for h in history)


def test_expired_and_failed_map(team, session_factory, config):
    from broker.runtime.app import make_app

    service = make_app(config, session_factory).followup
    a = post(team).json()["data"]["id"]
    b = post(team, payload={**PAYLOADS["1M0-SCICAM-SINISTRO"], "exposure_time": 30}).json()["data"]["id"]
    groups = sorted(sim_groups(team["lco"]), key=lambda g: g["id"])
    requests.post(f"{team['lco'].url}/control/requests/{groups[0]['requests'][0]['id']}/expire")
    requests.post(f"{team['lco'].url}/control/requests/{groups[1]['requests'][0]['id']}/fail")
    service.refresh_all()
    assert team["alice"].get(f"/api/followup_request/{a}").json()["data"]["status"] == "expired"
    assert team["alice"].get(f"/api/followup_request/{b}").json()["data"]["status"] == "failed"


def test_outsiders_neither_see_nor_submit(team):
    rid = post(team).json()["data"]["id"]
    bob = team["bob"]
    assert_error(bob.get(f"/api/followup_request/{rid}"), 400)
    assert rid not in [r["id"] for r in bob.get("/api/followup_request").json()["data"]["followup_requests"]]
    assert_error(post(team, who="bob"), 404)  # bob cannot even see the object
    assert_error(bob.delete(f"/api/followup_request/{rid}"), 400)
    assert len(sim_groups(team["lco"])) == 1


def test_payload_and_allocation_checks(team):
    bad = dict(PAYLOADS["1M0-SCICAM-SINISTRO"], observation_choices=["halpha"])
    assert_error(post(team, payload=bad), 400, "observation_choices[0]")
    late = dict(PAYLOADS["1M0-SCICAM-SINISTRO"], start_date="2033-01-01", end_date="2033-01-05")
    assert_error(post(team, payload=late), 400, "allocation")
    assert sim_groups(team["lco"]) == []


def test_optional_constraints_answer_ignored(team):
    payload = dict(PAYLOADS["1M0-SCICAM-SINISTRO"], ignore_source_group_ids=[team["gid"]])
    r = post(team, payload=payload)
    assert r.status_code == 200 and r.json()["data"]["ignored"] is True
    assert sim_groups(team["lco"]) == []


def test_facility_callbacks(team, make_user):
    rid = post(team).json()["data"]["id"]
    listener = make_user(acls=("Post from LCO",))
    # the facility's identity must belong to the allocation's group: until then the request does not
    # exist for it, exactly as an unknown id
    unknown = listener.post("/api/facility", json={"followup_request_id": 10**8, "new_status": "completed"})
    forged = listener.post("/api/facility", json={"followup_request_id": rid, "new_status": "completed"})
    assert_error(unknown, 400)
    assert_error(forged, 400)
    assert forged.json()["message"].replace(str(rid), "ID") == unknown.json()["message"].replace(str(10**8), "ID")
    r = team["alice"].post(f"/api/groups/{team['gid']}/users", json={"userID": listener.user_id})
    assert r.status_code == 200, r.text
    # a group member without the facility's ACL cannot report either
    assert_error(team["alice"].post("/api/facility", json={"followup_request_id": rid, "new_status": "completed"}),
                 400)
    assert_error(listener.post("/api/facility", json={"followup_request_id": rid, "new_status": "done-ish"}),
                 400, "new_status")
    assert_error(listener.post("/api/facility", json={"followup_request_id": rid, "new_status": "pending"}),
                 400, "new_status")
    r = listener.post("/api/facility", json={"followup_request_id": rid, "new_status": "completed",
                                             "status_message": "observed at ogg"})
    assert r.status_code == 200, r.text
    one = team["alice"].get(f"/api/followup_request/{rid}").json()["data"]
    assert one["status"] == "completed" and one["status_message"] == "observed at ogg"
    assert one["transactions"][-1]["action"] == "callback"
    # a repeated report is a no-op; a finished request cannot be moved
    assert listener.post("/api/facility", json={"followup_request_id": rid, "new_status": "completed"}
                         ).status_code == 200
    assert_error(listener.post("/api/facility", json={"followup_request_id": rid, "new_status": "failed"}),
                 400, "completed")
    assert team["alice"].get(f"/api/followup_request/{rid}").json()["data"]["status"] == "completed"


def test_update_after_a_lost_reply_leaves_one_live_group(team, engine):
    """LCO kept a submission whose reply was lost (the row is error, without a remote id): an update
    looks the earlier revision up by name and cancels it before submitting the new one."""
    requests.post(f"{team['lco'].url}/control/faults", json={"status": 503, "count": 100})
    try:
        r = post(team)
        assert_error(r, 503, "unavailable")
    finally:
        requests.post(f"{team['lco'].url}/control/faults", json={"count": 0})
    (req,) = team["alice"].get("/api/followup_request", params={"sourceID": team["obj_id"]}).json()["data"][
        "followup_requests"]
    assert req["facility_status"] == "error" and not req["remote_id"]
    # what the lost reply hid: the portal did store revision 0 under its name
    group = default_facilities(_cfg())["LCO"].build(
        "1M0-SCICAM-SINISTRO", PAYLOADS["1M0-SCICAM-SINISTRO"], obj_id=team["obj_id"], ra=197.4481,
        dec=-23.3839, proposal="LCO2031A-001", name=f"{team['obj_id']}-sb{req['id']}r0")
    stored = requests.post(f"{team['lco'].url}/api/requestgroups/", json=group,
                           headers={"Authorization": f"Token {LCO_TOKEN}"})
    assert stored.status_code == 201, stored.text
    r = team["alice"].put(f"/api/followup_request/{req['id']}",
                          json={"payload": {**PAYLOADS["1M0-SCICAM-SINISTRO"], "exposure_time": 90}})
    assert r.status_code == 200, r.text
    states = {g["name"][-2:]: g["state"] for g in sim_groups(team["lco"])}
    assert states == {"r0": "CANCELED", "r1": "PENDING"}


def test_unreadable_credentials_are_a_clear_error_and_leave_no_pending_row(team, engine):
    import sqlalchemy as sa

    aid = team["allocs"]["1M0-SCICAM-SINISTRO"]
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE allocations SET altdata = 'gAAAAAnot-a-fernet-token' WHERE id = :a"), {"a": aid})
    body = assert_error(post(team), 400, "decrypted")
    assert "allocation" in body["message"].lower()
    (req,) = team["alice"].get("/api/followup_request", params={"sourceID": team["obj_id"]}).json()["data"][
        "followup_requests"]
    assert req["facility_status"] == "error" and "decrypted" in req["status_message"]
    assert sim_groups(team["lco"]) == []


def test_worker_survives_bad_requests_and_a_database_restart(team, engine, session_factory, config, admin,
                                                           database_outage):
    """Requests that cannot be submitted or polled are marked error; the worker goes on with the rest."""
    import time

    import sqlalchemy as sa

    from broker.runtime.app import make_app
    from broker.runtime.worker import FollowupWorker

    good = post(team, "0M4-SCICAM-QHY600").json()["data"]["id"]
    undecryptable = post(team, "2M0-SCICAM-MUSCAT").json()["data"]["id"]
    unknown_api = post(team, "1M0-NRES-SCICAM").json()["data"]["id"]
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE allocations SET altdata = 'garbage' WHERE id = :a"),
                     {"a": team["allocs"]["2M0-SCICAM-MUSCAT"]})
        conn.execute(sa.text("UPDATE allocations SET instrument_id = :i WHERE id = :a"), {
            "a": team["allocs"]["1M0-NRES-SCICAM"],
            "i": admin.post("/api/instrument", json={
                "name": f"NOPE-{uuid.uuid4().hex[:6]}", "type": "imager", "api_classname": "NOPE",
                "telescope_id": admin.get(f"/api/instrument/{team['instruments']['1M0-NRES-SCICAM']}"
                                          ).json()["data"]["telescope_id"]}).json()["data"]["id"]})
        # a pending request whose facility adapter does not exist (kills a naive worker at start-up)
        conn.execute(sa.text("UPDATE followup_requests SET status = 'pending', remote_id = NULL, "
                             "modified = now() - interval '1 hour' WHERE id = :r"), {"r": unknown_api})
    service = make_app(replace_poll(config), session_factory).followup
    worker = FollowupWorker(service, engine, 0.3).start()
    try:
        time.sleep(1)  # the worker is listening and polling
        with database_outage():  # its LISTEN connection and its pool die (a raw psycopg2 error)
            time.sleep(2)
        assert worker.thread.is_alive()
        for group in sim_groups(team["lco"]):
            if group["name"].endswith(f"sb{good}r0"):
                requests.post(f"{team['lco'].url}/control/requests/{group['requests'][0]['id']}/complete")

        def status(rid):
            return team["alice"].get(f"/api/followup_request/{rid}").json()["data"]["facility_status"]

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (status(good), status(undecryptable), status(unknown_api)) != (
                "completed", "error", "error"):
            time.sleep(0.3)
        assert (status(good), status(undecryptable), status(unknown_api)) == ("completed", "error", "error")
        assert "decrypted" in team["alice"].get(f"/api/followup_request/{undecryptable}").json()["data"][
            "status_message"]
        assert worker.thread.is_alive() and worker.failures >= 1  # it saw the outage and went on
    finally:
        worker.stop()


def replace_poll(config):
    from dataclasses import replace

    return replace(config, facilities=replace(config.facilities, poll_interval_s=0.3))


def test_watchers_and_listing(team):
    rid = post(team).json()["data"]["id"]
    assert team["admin"].post(f"/api/followup_request/watch/{rid}").status_code == 200
    one = team["alice"].get(f"/api/followup_request/{rid}").json()["data"]
    assert team["admin"].user_id in one["watcher_ids"]
    assert team["admin"].delete(f"/api/followup_request/watch/{rid}").status_code == 200
    listing = team["alice"].get("/api/followup_request", params={
        "sourceID": team["obj_id"], "status": "submitted", "instrumentID": team["instruments"]["1M0-SCICAM-SINISTRO"],
        "sortBy": "created_at", "sortOrder": "asc"}).json()["data"]
    assert [r["id"] for r in listing["followup_requests"]] == [rid] and listing["totalMatches"] == 1
    # SkyPortal's status filter is a case-insensitive substring match: no such status matches nothing
    nothing = team["alice"].get("/api/followup_request", params={"status": "nearly"}).json()["data"]
    assert nothing["totalMatches"] == 0


def test_allocation_report_json_and_plots(team, session_factory, config):
    from broker.runtime.app import make_app

    iid = team["instruments"]["0M4-SCICAM-QHY600"]
    rid = post(team, "0M4-SCICAM-QHY600").json()["data"]["id"]
    post(team, "0M4-SCICAM-QHY600", payload={**PAYLOADS["0M4-SCICAM-QHY600"], "exposure_time": 10})
    group = next(g for g in sim_groups(team["lco"]) if g["name"].endswith(f"sb{rid}r0"))
    requests.post(f"{team['lco'].url}/control/requests/{group['requests'][0]['id']}/complete")
    make_app(config, session_factory).followup.refresh_all()
    report = team["alice"].get(f"/api/allocation/report/{iid}").json()["data"]
    (row,) = [r for r in report["allocations"] if r["allocation_id"] == team["allocs"]["0M4-SCICAM-QHY600"]]
    duration = group["requests"][0]["duration"]
    assert row["hours_used"] == pytest.approx(duration / 3600, abs=1e-3)
    assert row["hours_committed"] > 0 and row["requests"] == {"completed": 1, "submitted": 1}
    png = team["alice"].get(f"/api/allocation/report/{iid}", params={"output_format": "png"})
    assert png.headers["Content-Type"] == "image/png" and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    pdf = team["alice"].get(f"/api/allocation/report/{iid}", params={"output_format": "pdf"})
    assert pdf.content[:5] == b"%PDF-"
    assert_error(team["alice"].get(f"/api/allocation/report/{iid}", params={"output_format": "gif"}),
                 400, "output_format")
    bob = team["bob"].get(f"/api/allocation/report/{iid}").json()["data"]
    assert team["allocs"]["0M4-SCICAM-QHY600"] not in [r["allocation_id"] for r in bob["allocations"]]


def test_schedule_and_prioritization_by_magnitude(team):
    alice, gid = team["alice"], team["gid"]
    faint = f"faint-{uuid.uuid4().hex[:6]}"
    assert alice.post("/api/sources", json={"id": faint, "ra": 10.0, "dec": -5.0, "group_ids": [gid]}
                      ).status_code == 200
    for obj, mag in ((team["obj_id"], 16.0), (faint, 19.0)):
        r = alice.post("/api/photometry", json={"obj_id": obj, "mjd": 60000.0, "filter": "ztfr", "mag": mag,
                                               "magerr": 0.05, "group_ids": [gid], "instrument_name": "ZTF"})
        assert r.status_code == 200, r.text
    bright_id = post(team).json()["data"]["id"]
    faint_id = alice.post("/api/followup_request", json={
        "obj_id": faint, "allocation_id": team["allocs"]["1M0-SCICAM-SINISTRO"],
        "payload": PAYLOADS["1M0-SCICAM-SINISTRO"]}).json()["data"]["id"]
    r = alice.put("/api/followup_request/prioritization", json={
        "followupRequestIds": [bright_id, faint_id], "priorityType": "magnitude",
        "minimumPriority": 1, "maximumPriority": 5})
    assert r.status_code == 200, r.text
    res = r.json()["data"]
    assert res[str(bright_id)]["priority"] == 5 and res[str(bright_id)]["ipp_value"] == 2.0
    assert res[str(faint_id)]["priority"] == 1 and res[str(faint_id)]["ipp_value"] == 0.5
    groups = sorted(sim_groups(team["lco"]), key=lambda g: g["id"])
    assert [g["state"] for g in groups] == ["CANCELED", "CANCELED", "PENDING", "PENDING"]
    assert sorted(g["ipp_value"] for g in groups[2:]) == [0.5, 2.0]
    # unchanged priorities resubmit nothing
    again = alice.put("/api/followup_request/prioritization", json={
        "followupRequestIds": [bright_id, faint_id], "priorityType": "magnitude",
        "minimumPriority": 1, "maximumPriority": 5}).json()["data"]
    assert not any(v["resubmitted"] for v in again.values()) and len(sim_groups(team["lco"])) == 4
    assert_error(alice.put("/api/followup_request/prioritization", json={
        "followupRequestIds": [bright_id], "priorityType": "localization"}), 400, "localizationId")
    iid = team["instruments"]["1M0-SCICAM-SINISTRO"]
    sched = alice.get(f"/api/followup_request/schedule/{iid}").json()["data"]["requests"]
    assert [s["id"] for s in sched] == [bright_id, faint_id]  # by priority
    csv_text = alice.get(f"/api/followup_request/schedule/{iid}", params={"output_format": "csv"}).text
    assert csv_text.splitlines()[0].startswith("id,obj_id,ra,dec,status,priority")
    png = alice.get(f"/api/followup_request/schedule/{iid}", params={"output_format": "png"})
    assert png.content[:4] == b"\x89PNG"


def test_prioritization_by_localization(team, admin):
    """The object where the map is denser gets the higher priority (and LCO ipp_value)."""
    import datetime

    alice, gid = team["alice"], team["gid"]
    t = (datetime.datetime.utcnow() - datetime.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S")
    assert admin.post("/api/gcn_event", json={"dateobs": t, "skymap": {
        "localization_name": "cone", "ra": 197.5, "dec": -23.4, "error": 1.0}}).status_code == 200
    loc_id = admin.get(f"/api/gcn_event/{t}").json()["data"]["localizations"][0]["id"]
    far = f"far-{uuid.uuid4().hex[:6]}"
    alice.post("/api/sources", json={"id": far, "ra": 199.0, "dec": -23.4, "group_ids": [gid]})
    near_id = post(team).json()["data"]["id"]  # the team object sits 0.06 deg from the centre
    far_id = alice.post("/api/followup_request", json={
        "obj_id": far, "allocation_id": team["allocs"]["1M0-SCICAM-SINISTRO"],
        "payload": PAYLOADS["1M0-SCICAM-SINISTRO"]}).json()["data"]["id"]
    r = alice.put("/api/followup_request/prioritization", json={
        "followupRequestIds": [near_id, far_id], "priorityType": "localization", "localizationId": loc_id,
        "minimumPriority": 1, "maximumPriority": 5})
    assert r.status_code == 200, r.text
    res = r.json()["data"]
    assert res[str(near_id)]["priority"] == 5 and res[str(far_id)]["priority"] == 1
    assert res[str(near_id)]["basis"] > res[str(far_id)]["basis"]
    ipps = sorted(g["ipp_value"] for g in sim_groups(team["lco"]) if g["state"] == "PENDING")
    assert ipps == [0.5, 2.0]
