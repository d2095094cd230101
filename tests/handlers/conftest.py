"""Fixtures shared by the handler tests: LCO instruments and a team with allocations on them."""

import uuid

import pytest

from tests.conftest import LCO_TOKEN
from tests.facility_apis.payloads import PAYLOADS


@pytest.fixture(scope="module")
def instruments(admin):
    """A telescope per LCO class and the five LCO instruments (once per module)."""
    out = {}
    tel = {}
    for cls, size in (("0m4", 0.4), ("1m0", 1.0), ("2m0", 2.0)):
        r = admin.post("/api/telescope", json={"name": f"LCO {cls} {uuid.uuid4().hex[:6]}", "nickname": cls,
                                               "diameter": size, "robotic": True})
        assert r.status_code == 200, r.text
        tel[cls] = r.json()["data"]["id"]
    existing = {i["name"]: i["id"] for i in admin.get("/api/instrument").json()["data"]}
    for name in PAYLOADS:
        if name in existing:
            out[name] = existing[name]
            continue
        kind = "spectrograph" if ("FLOYDS" in name or "NRES" in name) else "imager"
        r = admin.post("/api/instrument", json={"name": name, "type": kind, "telescope_id": tel[name[:3].lower()],
                                                "api_classname": "LCO", "listener_classname": "LCO"})
        assert r.status_code == 200, r.text
        out[name] = r.json()["data"]["id"]
    return out


@pytest.fixture
def team(admin, make_user, instruments, lco):
    """Alice's group with allocations on every instrument, an object saved to it; Bob outside."""
    alice, bob = make_user(prefix="alice"), make_user(prefix="bob")
    gid = alice.post("/api/groups", json={"name": f"fu-{uuid.uuid4().hex[:8]}"}).json()["data"]["id"]
    allocs = {}
    for name, iid in instruments.items():
        r = admin.post("/api/allocation", json={
            "group_id": gid, "instrument_id": iid, "pi": "Alice", "proposal_id": "LCO2031A-001",
            "hours_allocated": 10, "start_date": "2030-01-01", "end_date": "2032-01-01",
            "altdata": {"API_TOKEN": LCO_TOKEN, "PROPOSAL_ID": "LCO2031A-001"}})
        assert r.status_code == 200, r.text
        allocs[name] = r.json()["data"]["id"]
    obj_id = f"ZTF31{uuid.uuid4().hex[:7]}"
    assert alice.post("/api/sources", json={"id": obj_id, "ra": 197.4481, "dec": -23.3839,
                                            "group_ids": [gid]}).status_code == 200
    return dict(alice=alice, bob=bob, admin=admin, gid=gid, allocs=allocs, obj_id=obj_id, lco=lco,
                instruments=instruments)
