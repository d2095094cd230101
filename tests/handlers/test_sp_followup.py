"""Allocations, follow-up requests, default rules and facilities as SkyPortal clients use them (SkyPortal's
handlers are the contract: skyportal/handlers/api/followup_request.py, allocation.py, facility_apis/*)."""

import uuid

import pytest
import requests

from facility_apis import registry
from tests.conftest import LCO_TOKEN
from tests.facility_apis.payloads import SP_PAYLOADS
from tests.handlers.followup_helpers import as_sent, sim_groups
from tests.handlers.test_envelope import assert_error

CLASSES = {"SINISTROAPI": ("1m0", "imager"), "SPECTRALAPI": ("2m0", "imager"), "MUSCATAPI": ("2m0", "imager"),
           "FLOYDSAPI": ("2m0", "spectrograph"), "SOARGHTSAPI": ("4m0", "spectrograph"),
           "SOARGHTSIMAGERAPI": ("4m0", "imager"), "SOARTSPECAPI": ("4m0", "spectrograph"),
           "QHY600API": ("0m4", "imager"), "NRESAPI": ("1m0", "spectrograph"), "GENERICAPI": ("1m0", "imager"),
           "SEDMAPI": ("1m0", "imaging spectrograph")}
GENERIC = {"start_date": "2031-03-01", "end_date": "2031-03-08", "priority": 2, "exposure_time": 60}
SEDM = {"observation_type": "IFU", "priority": 3, "start_date": "2031-03-01", "end_date": "2031-03-08"}


@pytest.fixture(scope="module")
def sp_instruments(admin):
    tel = {}
    for cls in ("0m4", "1m0", "2m0", "4m0"):
        r = admin.post("/api/telescope", json={"name": f"SP {cls} {uuid.uuid4().hex[:6]}", "nickname": cls,
                                               "diameter": 1.0, "robotic": True})
        assert r.status_code == 200, r.text
        tel[cls] = r.json()["data"]["id"]
    out = {}
    for api, (cls, kind) in CLASSES.items():
        r = admin.post("/api/instrument", json={"name": f"{api}-{uuid.uuid4().hex[:6]}", "type": kind,
                                                "telescope_id": tel[cls], "api_classname": api,
                                                "listener_classname": api})
        assert r.status_code == 200, r.text
        out[api] = r.json()["data"]["id"]
    return out


@pytest.fixture
def sp(admin, make_user, sp_instruments, lco):
    alice = make_user(prefix="spalice")
    gid = alice.post("/api/groups", json={"name": f"sp-{uuid.uuid4().hex[:8]}"}).json()["data"]["id"]
    other = alice.post("/api/groups", json={"name": f"sp2-{uuid.uuid4().hex[:8]}"}).json()["data"]["id"]
    allocs = {}
    for api, iid in sp_instruments.items():
        r = admin.post("/api/allocation", json={
            "group_id": gid, "instrument_id": iid, "pi": "Alice", "hours_allocated": 10,
            "validity_ranges": [{"start_date": "2030-01-01", "end_date": "2032-01-01"}],
            "default_share_group_ids": [other],
            "_altdata": {"API_TOKEN": LCO_TOKEN, "API_ARCHIVE_TOKEN": LCO_TOKEN, "PROPOSAL_ID": "LCO2031A-001",
                         "UNUSED": ""}})
        assert r.status_code == 200, r.text
        allocs[api] = r.json()["data"]["id"]
    obj_id = f"ZTF31{uuid.uuid4().hex[:7]}"
    assert alice.post("/api/sources", json={"id": obj_id, "ra": 197.4481, "dec": -23.3839,
                                            "group_ids": [gid]}).status_code == 200
    return dict(alice=alice, admin=admin, gid=gid, other=other, allocs=allocs, obj_id=obj_id, lco=lco,
                instruments=sp_instruments)


def post(sp, api="SINISTROAPI", payload=None, **extra):
    return sp["alice"].post("/api/followup_request", json={
        "obj_id": sp["obj_id"], "allocation_id": sp["allocs"][api],
        "payload": payload or SP_PAYLOADS.get(api) or (GENERIC if api == "GENERICAPI" else SEDM), **extra})


def test_allocation_takes_skyportals_fields(sp):
    aid = sp["allocs"]["SINISTROAPI"]
    a = sp["alice"].get(f"/api/allocation/{aid}").json()["data"]
    assert a["validity_ranges"] == [{"start_date": "2030-01-01T00:00:00", "end_date": "2032-01-01T00:00:00"}]
    assert a["default_share_group_ids"] == [sp["other"]] and a["types"] == ["triggered"]
    assert a["has_credentials"] and "_altdata" not in a and "altdata" not in a
    iid = sp["instruments"]["SINISTROAPI"]
    bad = {"group_id": sp["gid"], "instrument_id": iid, "hours_allocated": 1}
    assert_error(sp["admin"].post("/api/allocation", json={
        **bad, "validity_ranges": [{"start_date": "2031-01-02", "end_date": "2031-01-01"}]}), 400,
        "validity_ranges[0].end_date")
    assert_error(sp["admin"].post("/api/allocation", json={**bad, "validity_ranges": [{"start_date": "2031-01-02"}]}),
                 400, "validity_ranges[0]")
    assert_error(sp["admin"].post("/api/allocation", json={**bad, "allocation_admin_ids": [1]}), 400,
                 "allocation_admin_ids")
    assert_error(sp["admin"].post("/api/allocation", json={**bad, "types": ["nope"]}), 400, "types")
    # _altdata is merged into what is stored (SkyPortal's PUT): the token stays, the proposal changes
    assert sp["admin"].put(f"/api/allocation/{aid}", json={"_altdata": {"PROPOSAL_ID": "LCO2031A-002"}}
                           ).status_code == 200
    assert post(sp).status_code == 200
    assert sim_groups(sp["lco"])[0]["proposal"] == "LCO2031A-002"
    listed = sp["alice"].get("/api/allocation", params={"apiType": "api_classname", "apiImplements": "get"}).json()
    ids = {x["id"] for x in listed["data"]}
    assert aid in ids and sp["allocs"]["GENERICAPI"] not in ids


@pytest.mark.parametrize("api", sorted(SP_PAYLOADS))
def test_every_lco_portal_instrument_reaches_the_simulator_as_a_valid_group(sp, api):
    r = post(sp, api)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["request_status"] == "submitted"
    (group,) = sim_groups(sp["lco"])
    expected = registry.load(api)().build("x", SP_PAYLOADS[api], obj_id=sp["obj_id"], ra=197.4481, dec=-23.3839,
                                          proposal="LCO2031A-001", name=f"{sp['obj_id']}-sb{data['id']}r0")
    assert as_sent(group) == expected
    one = sp["alice"].get(f"/api/followup_request/{data['id']}").json()["data"]
    assert one["status"] == "submitted" and one["allocation"]["instrument"]["api_classname"] == api


def test_validity_ranges_and_payload_errors(sp):
    late = {**SP_PAYLOADS["SINISTROAPI"], "start_date": "2033-01-01", "end_date": "2033-01-05"}
    assert_error(post(sp, payload=late), 400, "validity ranges")
    assert_error(post(sp, payload={**SP_PAYLOADS["SINISTROAPI"], "priority": 7}), 400, "priority")
    assert_error(post(sp, payload={**SP_PAYLOADS["SINISTROAPI"], "observation_mode": "SLOW"}), 400,
                 "observation_mode")
    assert_error(post(sp, radius=-1, not_if_duplicates=True), 400, "radius")
    assert_error(post(sp, not_if_assignment_exists=True), 400, "not_if_assignment_exists")
    assert sim_groups(sp["lco"]) == []


def test_top_level_constraints_answer_ignored(sp):
    first = post(sp, not_if_duplicates=True, source_group_ids=[sp["gid"]], radius=0.5)
    assert first.status_code == 200 and first.json()["data"]["request_status"] == "submitted"
    again = post(sp, not_if_duplicates=True)
    assert again.status_code == 200
    assert again.json()["data"] == {"id": None, "ignored": True, "message":
                                    "There is already a follow-up request for this source and allocation, "
                                    "not submitting request."}
    # a neighbour 0.2" away counts as the same source; another allocation named in ignore_allocation_ids too
    near = f"ZTF31{uuid.uuid4().hex[:7]}"
    sp["alice"].post("/api/sources", json={"id": near, "ra": 197.4481, "dec": -23.3839 + 0.2 / 3600,
                                           "group_ids": [sp["gid"]]})
    r = sp["alice"].post("/api/followup_request", json={
        "obj_id": near, "allocation_id": sp["allocs"]["SPECTRALAPI"], "payload": SP_PAYLOADS["SPECTRALAPI"],
        "not_if_duplicates": True, "ignore_allocation_ids": [sp["allocs"]["SINISTROAPI"]], "radius": 1.0})
    assert r.json()["data"]["ignored"] is True and "ignore_allocation_ids" in r.json()["data"]["message"]
    r = post(sp, "SPECTRALAPI", source_group_ids=[sp["other"]])
    assert r.json()["data"]["ignored"] is True and "source_group_ids" in r.json()["data"]["message"]
    r = post(sp, "SPECTRALAPI", ignore_source_group_ids=[sp["gid"]])
    assert r.json()["data"]["ignored"] is True and "ignore_source_group_ids" in r.json()["data"]["message"]
    assert len(sim_groups(sp["lco"])) == 1


def test_listing_in_skyportals_shape(sp):
    a = post(sp, target_group_ids=[sp["gid"]], comment="first").json()["data"]["id"]
    b = post(sp, "SPECTRALAPI").json()["data"]["id"]
    assert sp["alice"].delete(f"/api/followup_request/{b}").status_code == 200
    alice = sp["alice"]
    partial = sp["obj_id"][3:9]  # sourceID is a portion of the ID
    data = alice.get("/api/followup_request", params={"sourceID": partial}).json()["data"]
    rows = data["followup_requests"]
    assert [r["id"] for r in rows] == [a, b] and data["totalMatches"] == 2  # created_at ascending by default
    one = rows[0]
    assert one["target_groups"][0]["id"] == sp["gid"] and one["comment"] == "first"
    assert one["allocation_id"] == sp["allocs"]["SINISTROAPI"] and one["payload"]["priority"] == 1.0
    assert len(one["modified"].split(".")[-1]) == 6  # "%Y-%m-%dT%H:%M:%S.%f", as Kowalski parses it
    assert rows[1]["status"] == "deleted"
    by_status = alice.get("/api/followup_request", params={"sourceID": partial, "status": "SUBMIT"}).json()["data"]
    assert [r["id"] for r in by_status["followup_requests"]] == [a]
    desc = alice.get("/api/followup_request", params={"sourceID": partial, "sortBy": "status",
                                                     "sortOrder": "desc"}).json()["data"]
    assert [r["id"] for r in desc["followup_requests"]] == [a, b]  # "submitted" > "deleted"
    mine = alice.get("/api/followup_request", params={"sourceID": partial, "requesters": str(alice.user_id),
                                                     "priorityThreshold": 1.0,
                                                     "observationStartDate": "2031-02-28"}).json()["data"]
    assert mine["totalMatches"] == 2
    later = alice.get("/api/followup_request", params={"sourceID": partial,
                                                      "observationStartDate": "2031-03-02"}).json()["data"]
    assert later["totalMatches"] == 0
    assert_error(alice.get("/api/followup_request", params={"sortBy": "colour"}), 400, "sortBy")
    assert_error(alice.get("/api/followup_request", params={"requesters": "x"}), 400, "requesters")
    assert_error(alice.get("/api/followup_request", params={"requesters": "999999999"}), 400, "requesters")


def test_put_priority_status_and_comment(sp):
    rid = post(sp).json()["data"]["id"]
    alice = sp["alice"]
    r = alice.put(f"/api/followup_request/{rid}", json={"payload": {**SP_PAYLOADS["SINISTROAPI"], "priority": 1.8},
                                                        "obj_id": sp["obj_id"], "allocation_id": sp["allocs"]["SINISTROAPI"]})
    assert r.status_code == 200, r.text
    groups = sorted(sim_groups(sp["lco"]), key=lambda g: g["id"])
    assert [(g["state"], g["ipp_value"]) for g in groups] == [("CANCELED", 1.0), ("PENDING", 1.8)]
    assert_error(alice.put(f"/api/followup_request/{rid}", json={"obj_id": "someone-else", "payload": {}}), 400)
    r = alice.put(f"/api/followup_request/{rid}", json={"status": "completed"})
    assert r.status_code == 200 and r.json()["data"]["status"] == "completed"
    assert len(sim_groups(sp["lco"])) == 2  # a status is set here only: no facility interaction
    assert_error(alice.put(f"/api/followup_request/{rid}", json={"status": "in a jar"}), 400, "status")
    r = alice.put(f"/api/followup_request/{rid}/comment", json={"comment": "  seeing 2.1 arcsec "})
    assert r.status_code == 200 and r.json()["data"]["comment"] == "seeing 2.1 arcsec"
    assert alice.put(f"/api/followup_request/{rid}/comment", json={"comment": ""}).json()["data"]["comment"] is None
    assert_error(alice.put("/api/followup_request/999999999/comment", json={"comment": "x"}), 400)


def test_photometry_request_get_polls_the_facility(sp):
    rid = post(sp, "QHY600API").json()["data"]["id"]
    (group,) = sim_groups(sp["lco"])
    r = sp["alice"].get(f"/api/photometry_request/{rid}")
    assert r.status_code == 200 and r.json()["data"]["request_status"] == "submitted"
    requests.post(f"{sp['lco'].url}/control/requests/{group['requests'][0]['id']}/complete")
    data = sp["alice"].get(f"/api/photometry_request/{rid}").json()["data"]
    assert data["request_status"] == "completed" and len(data["frames"]) == 2
    generic = post(sp, "GENERICAPI").json()["data"]["id"]
    assert_error(sp["alice"].get(f"/api/photometry_request/{generic}"), 400, "Cannot retrieve")


def test_generic_facility_tracks_and_people_set_status(sp):
    r = post(sp, "GENERICAPI")
    assert r.status_code == 200 and r.json()["data"]["request_status"] == "submitted"
    rid = r.json()["data"]["id"]
    assert sim_groups(sp["lco"]) == []
    r = sp["alice"].put(f"/api/followup_request/{rid}", json={"status": "Observed: complete"})
    assert r.json()["data"]["status"] == "Observed: complete"
    one = sp["alice"].get(f"/api/followup_request/{rid}").json()["data"]
    assert one["facility_status"] == "completed" and one["transactions"] == []
    r = post(sp, "GENERICAPI", status="pending review")
    assert r.json()["data"]["request_status"] == "pending review"


def test_sedm_listener_reports_at_api_facility(sp, make_user):
    rid = post(sp, "SEDMAPI").json()["data"]["id"]
    one = sp["alice"].get(f"/api/followup_request/{rid}").json()["data"]
    assert one["status"] == "submitted" and one["transactions"][0]["response"]["body"] == "accepted"
    listener = make_user(acls=("Post from SEDMAPI",), prefix="sedm")
    assert sp["alice"].post(f"/api/groups/{sp['gid']}/users", json={"userID": listener.user_id}).status_code == 200
    r = listener.post("/api/facility", json={"followup_request_id": rid, "new_status": "Completed"})
    assert r.status_code == 200, r.text
    one = sp["alice"].get(f"/api/followup_request/{rid}").json()["data"]
    assert one["status"] == "Completed" and one["facility_status"] == "completed"
    other = make_user(acls=("Post from LCO",), prefix="notsedm")
    sp["alice"].post(f"/api/groups/{sp['gid']}/users", json={"userID": other.user_id})
    assert_error(other.post("/api/facility", json={"followup_request_id": rid, "new_status": "failed"}), 400)


def test_default_followup_with_skyportals_source_filter(sp, config, session_factory):
    alice = sp["alice"]
    body = {"default_followup_name": f"sp-{uuid.uuid4().hex[:8]}", "allocation_id": sp["allocs"]["GENERICAPI"],
            "payload": {"priority": 2, "exposure_time": 30}, "comment": "auto",
            "source_filter": {"name": "^ZTF31", "group_id": sp["other"]}}
    assert_error(alice.post("/api/default_followup_request", json={**body, "payload": {**body["payload"],
                                                                                        "start_date": "2031-01-01"}}),
                 400, "start_date")
    assert_error(alice.post("/api/default_followup_request", json={**body, "source_filter": {"name": "([a-z",
                                                                                             "group_id": sp["other"]}}),
                 400, "regular expression")
    assert_error(alice.post("/api/default_followup_request", json={**body, "source_filter": {"name": "(a+)+$",
                                                                                             "group_id": sp["other"]}}),
                 400, "nested quantifier")
    r = alice.post("/api/default_followup_request", json={**body, "source_filter": '{"name": "^ZTF31", "group_id": "%d"}'
                                                          % sp["other"], "default_followup_name": body["default_followup_name"] + "s"})
    assert r.status_code == 200, r.text
    rule = alice.get(f"/api/default_followup_request/{r.json()['data']['id']}").json()["data"]
    assert rule["source_filter"] == {"name": "^ZTF31", "group_ids": [sp["other"]]}
    assert alice.delete(f"/api/default_followup_request/{rule['id']}").status_code == 200
    r = alice.post("/api/default_followup_request", json=body)
    assert r.status_code == 200, r.text
    # a second rule with SkyPortal's constraint: checked when its request is submitted
    r = alice.post("/api/default_followup_request", json={**body, "default_followup_name": "x" + body[
        "default_followup_name"], "comment": "second", "not_if_duplicates": True, "validity_days": 3})
    assert r.status_code == 200, r.text
    assert alice.get(f"/api/default_followup_request/{r.json()['data']['id']}").json()["data"][
        "constraints"] == {"not_if_duplicates": True}
    # saved to the rules' group: ZTF31... matches the name regex, "other..." does not
    misses = f"other{uuid.uuid4().hex[:6]}"
    alice.post("/api/sources", json={"id": misses, "ra": 10.0, "dec": 10.0, "group_ids": [sp["other"]]})
    assert alice.post("/api/sources", json={"id": sp["obj_id"], "group_ids": [sp["other"]]}).status_code == 200
    from broker.runtime.app import make_app

    make_app(config, session_factory).followup.submit_pending()  # what the worker does on the NOTIFY
    made = alice.get("/api/followup_request", params={"allocationID": sp["allocs"]["GENERICAPI"]}).json()["data"]
    rows = made["followup_requests"]
    assert [(x["obj_id"], x["comment"]) for x in rows] == [(sp["obj_id"], "auto"), (sp["obj_id"], "second")]
    assert rows[0]["status"] == "submitted"
    assert rows[1]["status"].startswith("not submitted: There is already a follow-up request for this source")


def test_prioritization_takes_skyportals_body(sp):
    rid = post(sp).json()["data"]["id"]
    r = sp["alice"].put("/api/followup_request/prioritization", json={"requestIds": [rid]})
    assert r.status_code == 200, r.text
    assert r.json()["data"][str(rid)]["skipped"] == "no detection to rank by"  # default priorityType: magnitude
    assert_error(sp["alice"].put("/api/followup_request/prioritization", json={"priorityType": "magnitude"}), 400,
                 "requestIds")
