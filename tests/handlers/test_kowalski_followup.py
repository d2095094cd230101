"""Kowalski's automatic follow-up (kowalski/alert_brokers/alert_broker.py, alert_sentinel_skyportal's
"automatic follow_up filters" part) against skybroker and the LCO simulator, end to end.

``kowalski_auto_followup`` re-implements, step by step, what Kowalski does for one alert that passed a
filter with ``auto_followup``: list the object's requests, keep those whose status says complete/
submitted/deleted/failed, look for one on the same allocation sharing a target group with a payload
that matches (less priority and dates), then POST a new request (no retries) and a comment — or, if
the match is submitted and the new priority is higher, PUT the payload with the new priority."""

import datetime
import uuid

import pytest
import requests

from tests.conftest import LCO_TOKEN
from tests.facility_apis.payloads import SP_PAYLOADS
from tests.handlers.followup_helpers import sim_groups

IGNORE = {"priority", "urgency", "Urgency", "start_date", "end_date", "advanced", "observation_choices"}


def compare_dicts(a: dict, b: dict, ignore_keys=()) -> bool:
    """Kowalski's: ``a`` equals ``b`` (or is a subset of it), ignoring some keys."""
    for k, v in a.items():
        if k in ignore_keys:
            continue
        if k not in b:
            return False
        if isinstance(v, dict):
            if not compare_dicts(v, b[k]):
                return False
        elif isinstance(v, list):
            if not all(i in b[k] for i in v):
                return False
        elif b[k] != v:
            return False
    return True


def auto_followup_data(obj_id, group_id, allocation_id, priority, comment="auto-triggered"):
    """What Kowalski builds for a passed filter (priority written into the payload, a 7-day window)."""
    payload = {k: v for k, v in SP_PAYLOADS["SINISTROAPI"].items() if k not in ("start_date", "end_date")}
    payload["priority"] = priority
    now = datetime.datetime.utcnow()
    payload["start_date"] = now.strftime("%Y-%m-%dT%H:%M:%S.%f")
    payload["end_date"] = (now + datetime.timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return {
        "allocation_id": allocation_id, "comment": f"{comment} (priority: {priority})", "priority_order": "asc",
        "data": {"obj_id": obj_id, "allocation_id": allocation_id, "target_group_ids": [group_id],
                 "ignore_allocation_ids": [], "payload": payload, "source_group_ids": [group_id],
                 "not_if_classified": True, "not_if_spectra_exist": True, "not_if_tns_classified": True,
                 "not_if_duplicates": True, "radius": 0.5, "ignore_source_group_ids": []},
        "implements_update": True,
    }


def kowalski_auto_followup(api, obj_id, group_id, auto) -> str:
    """One alert's auto follow-up, as Kowalski does it; returns what it did."""
    response = api.get(f"/api/followup_request?sourceID={obj_id}")
    assert response.json()["status"] == "success"
    existing = [r for r in response.json()["data"].get("followup_requests", [])
                if any(s in str(r["status"]).lower() for s in ("complete", "submitted", "deleted", "failed"))]
    now = datetime.datetime.utcnow()
    existing = [r for r in existing if not ("failed" in str(r["status"]).lower() and (
        now - datetime.datetime.strptime(r["modified"], "%Y-%m-%dT%H:%M:%S.%f")).total_seconds() > 12 * 3600)]
    data = auto["data"]
    matches = [r for r in existing
               if r["allocation_id"] == data["allocation_id"]
               and (not set(data["target_group_ids"]).isdisjoint({g["id"] for g in r.get("target_groups", [])})
                    or (len(data["target_group_ids"]) == 0 and len(r.get("target_groups", [])) == 0))
               and compare_dicts(data["payload"], r["payload"], ignore_keys=IGNORE)]
    matches.sort(key=lambda r: r["payload"]["priority"])
    if not matches:
        response = api.post("/api/followup_request", json=data)  # Kowalski: no retries, 30 s
        body = response.json()
        if body["status"] != "success":
            raise ValueError(body.get("message"))
        if body.get("data", {}).get("ignored", False) is not False:
            return "ignored"
        comment = {"text": auto["comment"], "group_ids": list({group_id, *data["target_group_ids"]})}
        r = api.post(f"/api/sources/{obj_id}/comments", json=comment)
        assert r.json()["status"] == "success", r.text
        return "posted"
    request = matches[0]
    if any(s in str(request["status"]).lower() for s in ("complete", "deleted", "failed")):
        return "finished"
    if "submitted" in str(request["status"]).lower() and \
            float(data["payload"]["priority"]) > float(request["payload"]["priority"]):
        update = {"payload": {**request["payload"], "priority": data["payload"]["priority"]},
                  "obj_id": obj_id, "allocation_id": request["allocation_id"]}
        r = api.put(f"/api/followup_request/{request['id']}", json=update)
        assert r.json()["status"] == "success" and r.json().get("data", {}).get("ignored", False) is False, r.text
        return "updated"
    return "kept"


@pytest.fixture
def kowalski(admin, make_user, lco):
    """Kowalski's service user in a group with an LCO allocation (SkyPortal's SINISTROAPI instrument)."""
    kw = make_user(prefix="kowalski")
    gid = kw.post("/api/groups", json={"name": f"kw-{uuid.uuid4().hex[:8]}"}).json()["data"]["id"]
    tel = admin.post("/api/telescope", json={"name": f"LCO 1m {uuid.uuid4().hex[:6]}", "nickname": "1m0",
                                             "diameter": 1.0, "robotic": True}).json()["data"]["id"]
    iid = admin.post("/api/instrument", json={"name": f"Sinistro-{uuid.uuid4().hex[:6]}", "type": "imager",
                                              "telescope_id": tel, "api_classname": "SINISTROAPI",
                                              "listener_classname": "SINISTROAPI"}).json()["data"]["id"]
    r = admin.post("/api/allocation", json={
        "group_id": gid, "instrument_id": iid, "pi": "K", "hours_allocated": 100,
        "_altdata": {"API_TOKEN": LCO_TOKEN, "API_ARCHIVE_TOKEN": LCO_TOKEN, "PROPOSAL_ID": "LCO2031A-001"}})
    assert r.status_code == 200, r.text
    obj_id = f"ZTF31{uuid.uuid4().hex[:7]}"
    assert kw.post("/api/sources", json={"id": obj_id, "ra": 197.4481, "dec": -23.3839,
                                         "group_ids": [gid]}).status_code == 200
    return dict(api=kw, gid=gid, aid=r.json()["data"]["id"], obj_id=obj_id, lco=lco)


def test_kowalski_auto_followup_end_to_end(kowalski):
    api, gid, aid, obj = kowalski["api"], kowalski["gid"], kowalski["aid"], kowalski["obj_id"]
    # the first alert: a request is posted, reaches the portal, and a comment goes on the source
    assert kowalski_auto_followup(api, obj, gid, auto_followup_data(obj, gid, aid, 1.0)) == "posted"
    (group,) = sim_groups(kowalski["lco"])
    assert group["state"] == "PENDING" and group["ipp_value"] == 1.0 and group["proposal"] == "LCO2031A-001"
    comments = api.get(f"/api/sources/{obj}/comments").json()["data"]
    assert [c["text"] for c in comments] == ["auto-triggered (priority: 1.0)"]
    # the next alerts: the duplicate check finds it (nothing new at the portal), even once it is scheduled
    assert kowalski_auto_followup(api, obj, gid, auto_followup_data(obj, gid, aid, 1.0)) == "kept"
    (first,) = api.get("/api/followup_request", params={"sourceID": obj}).json()["data"]["followup_requests"]
    assert api.get(f"/api/photometry_request/{first['id']}").json()["data"]["request_status"] == "submitted"
    requests.post(f"{kowalski['lco'].url}/control/requests/{group['requests'][0]['id']}/schedule")
    assert kowalski_auto_followup(api, obj, gid, auto_followup_data(obj, gid, aid, 0.8)) == "kept"
    assert len(sim_groups(kowalski["lco"])) == 1
    # a higher priority updates it: the portal's group is replaced by one with the new ipp_value
    assert kowalski_auto_followup(api, obj, gid, auto_followup_data(obj, gid, aid, 1.6)) == "updated"
    groups = sorted(sim_groups(kowalski["lco"]), key=lambda g: g["id"])
    assert [(g["state"], g["ipp_value"]) for g in groups] == [("CANCELED", 1.0), ("PENDING", 1.6)]
    (req,) = api.get("/api/followup_request", params={"sourceID": obj}).json()["data"]["followup_requests"]
    assert req["payload"]["priority"] == 1.6 and req["status"] == "submitted"
    # Kowalski's own not_if_duplicates answer, had its check missed it: ignored, nothing posted
    data = auto_followup_data(obj, gid, aid, 1.9)["data"]
    r = api.post("/api/followup_request", json=data)
    assert r.json()["data"]["ignored"] is True and len(sim_groups(kowalski["lco"])) == 2
    # once deleted (cancelled), Kowalski leaves it be
    assert api.delete(f"/api/followup_request/{req['id']}").status_code == 200
    assert kowalski_auto_followup(api, obj, gid, auto_followup_data(obj, gid, aid, 1.9)) == "finished"
    assert len(sim_groups(kowalski["lco"])) == 2


def test_kowalski_constraints_skip_without_error(kowalski):
    api, gid, aid, obj = kowalski["api"], kowalski["gid"], kowalski["aid"], kowalski["obj_id"]
    other = api.post("/api/groups", json={"name": f"kw2-{uuid.uuid4().hex[:8]}"}).json()["data"]["id"]
    auto = auto_followup_data(obj, other, aid, 1.0)  # the filter's group does not hold the source
    assert kowalski_auto_followup(api, obj, other, auto) == "ignored"
    auto = auto_followup_data(obj, gid, aid, 1.0)
    auto["data"]["ignore_source_group_ids"] = [gid]  # autosave's ignore_group_ids: already saved there
    assert kowalski_auto_followup(api, obj, gid, auto) == "ignored"
    assert sim_groups(kowalski["lco"]) == []
