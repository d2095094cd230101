"""Helpers for follow-up tests: the LCO simulator's state and posting a follow-up request."""

import requests

from tests.facility_apis.payloads import PAYLOADS

SERVER_FIELDS = {"id", "submitter", "state", "created", "modified"}
REQUEST_SERVER_FIELDS = {"id", "observation_note", "state", "modified", "duration"}


def sim_groups(lco):
    return requests.get(f"{lco.url}/control/state", timeout=10).json()["groups"]


def as_sent(group):
    """A request group as the simulator stored it, less what the portal adds."""
    g = {k: v for k, v in group.items() if k not in SERVER_FIELDS}
    g["requests"] = [{k: v for k, v in r.items() if k not in REQUEST_SERVER_FIELDS} for r in group["requests"]]
    for r in g["requests"]:
        r["configurations"] = [{k: v for k, v in c.items() if k != "id"} for c in r["configurations"]]
    return g



def post(team, inst="1M0-SCICAM-SINISTRO", payload=None, who="alice", **extra):
    return team[who].post("/api/followup_request", json={
        "obj_id": team["obj_id"], "allocation_id": team["allocs"][inst],
        "payload": payload or PAYLOADS[inst], **extra})
