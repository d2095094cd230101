"""End to end: an alert through Kafka → saved as a source → follow-up at the LCO simulator → completed."""

import random
import threading
import uuid

import requests

from broker.runtime.app import make_app
from broker.ingest.replay import derive, encode, publish, read_packets
from broker.runtime.worker import FollowupWorker
from tests.conftest import LCO_TOKEN
from tests.handlers.followup_helpers import as_sent, sim_groups

from tests.broker.ingest.helpers import count, ingest_config, make_group_with_filter, make_stream, running_ingestor, wait_for
from tests.broker.ingest.test_ingest import ZTF

PAYLOAD = {"observation_choices": ["gp", "rp"], "exposure_time": 300, "exposure_counts": 1}


def lco_allocation(admin, gid):
    tel = admin.post("/api/telescope", json={"name": f"1m {uuid.uuid4().hex[:6]}", "nickname": "1m",
                                             "diameter": 1.0}).json()["data"]["id"]
    existing = {i["name"]: i["id"] for i in admin.get("/api/instrument").json()["data"]}
    iid = existing.get("1M0-SCICAM-SINISTRO") or admin.post("/api/instrument", json={
        "name": "1M0-SCICAM-SINISTRO", "type": "imager", "telescope_id": tel, "api_classname": "LCO",
        "listener_classname": "LCO"}).json()["data"]["id"]
    r = admin.post("/api/allocation", json={"group_id": gid, "instrument_id": iid, "proposal_id": "LCO2031A-001",
                                            "hours_allocated": 5, "altdata": {"API_TOKEN": LCO_TOKEN}})
    assert r.status_code == 200, r.text
    return r.json()["data"]["id"]


def test_alert_to_completed_followup(shared_dir, admin, make_user, config, engine, session_factory,
                                     kafka_bootstrap, kafka_topic, lco):
    owner = make_user()
    sid = make_stream(admin, kafka_topic, "ztf_avro")
    gid, fid = make_group_with_filter(owner, admin, sid, autosave=True)
    aid = lco_allocation(admin, gid)
    (packet, schema), = read_packets(ZTF, "ztf_avro")
    alert = derive(packet, 0, random.Random(), ra=150.0, dec=2.0)
    publish(kafka_bootstrap, kafka_topic, [encode(alert, schema, "ztf_avro")])
    obj = alert["objectId"]
    with running_ingestor(ingest_config(config, kafka_bootstrap), session_factory):
        wait_for(lambda: count(engine, "SELECT count(*) FROM sources WHERE obj_id=:o AND group_id=:g",
                               o=obj, g=gid) == 1, what="the autosaved source")
    window = {"start_date": "2031-03-01T00:00:00", "end_date": "2031-03-08T00:00:00"}
    r = owner.post("/api/followup_request", json={"obj_id": obj, "allocation_id": aid,
                                                  "payload": {**PAYLOAD, **window}})
    assert r.status_code == 200, r.text
    rid = r.json()["data"]["id"]
    (group,) = sim_groups(lco)
    service = make_app(config, session_factory).followup
    expected = service.facilities["LCO"].build("1M0-SCICAM-SINISTRO", {**PAYLOAD, **window}, obj_id=obj,
                                               ra=150.0, dec=2.0, proposal="LCO2031A-001",
                                               name=f"{obj}-sb{rid}r0")
    assert as_sent(group) == expected
    requests.post(f"{lco.url}/control/requests/{group['requests'][0]['id']}/complete").raise_for_status()
    worker = FollowupWorker(service, engine, poll_interval_s=0.2).start()
    try:
        wait_for(lambda: owner.get(f"/api/followup_request/{rid}").json()["data"]["status"] == "completed",
                 what="the poller to see COMPLETED")
    finally:
        worker.stop()
    one = owner.get(f"/api/followup_request/{rid}").json()["data"]
    assert len(one["frames"]) == 2 and {f["filter"] for f in one["frames"]} == {"gp", "rp"}


def test_default_followup_fires_once(shared_dir, admin, make_user, config, engine, session_factory,
                                     kafka_bootstrap, kafka_topic, lco):
    owner = make_user()
    sid = make_stream(admin, kafka_topic, "ztf_avro")
    gid, fid = make_group_with_filter(owner, admin, sid)
    aid = lco_allocation(admin, gid)
    r = owner.post("/api/default_followup_request", json={
        "default_followup_name": f"auto-{uuid.uuid4().hex[:6]}", "allocation_id": aid, "payload": PAYLOAD,
        "source_filter": {"filter_ids": [fid]}})
    assert r.status_code == 200, r.text
    # a rule that also wants a classification the object does not have never fires
    assert owner.post("/api/default_followup_request", json={
        "default_followup_name": f"classified-{uuid.uuid4().hex[:6]}", "allocation_id": aid, "payload": PAYLOAD,
        "source_filter": {"filter_ids": [fid], "classifications": ["SN Ia"]}}).status_code == 200
    bad = owner.post("/api/default_followup_request", json={
        "default_followup_name": "no-trigger", "allocation_id": aid, "payload": PAYLOAD, "source_filter": {}})
    assert bad.status_code == 400 and "source_filter" in bad.json()["message"]
    (packet, schema), = read_packets(ZTF, "ztf_avro")
    alert = derive(packet, 0, random.Random(), ra=151.0, dec=3.0)
    second = dict(alert, candid=alert["candid"] + 1, candidate={**alert["candidate"], "jd": alert["candidate"]["jd"] + 1})
    service = make_app(config, session_factory).followup
    worker = FollowupWorker(service, engine, poll_interval_s=30).start()
    try:
        with running_ingestor(ingest_config(config, kafka_bootstrap), session_factory):
            publish(kafka_bootstrap, kafka_topic, [encode(alert, schema, "ztf_avro")])
            # the worker is told (NOTIFY) and submits at once: far sooner than its 30 s poll
            wait_for(lambda: len(sim_groups(lco)) == 1, timeout=15, what="the rule's request group at LCO")
            # a second alert of the same object passes the filter again: the rule does not fire again
            publish(kafka_bootstrap, kafka_topic, [encode(second, schema, "ztf_avro")])
            wait_for(lambda: count(engine, "SELECT count(*) FROM candidates WHERE filter_id=:f", f=fid) == 2)
            threading.Event().wait(1.0)
    finally:
        worker.stop()
    (group,) = sim_groups(lco)
    assert group["requests"][0]["configurations"][0]["target"]["name"] == alert["objectId"]
    reqs = owner.get("/api/followup_request", params={"sourceID": alert["objectId"]}).json()["data"]
    assert reqs["totalMatches"] == 1 and reqs["followup_requests"][0]["status"] == "submitted"
    assert reqs["followup_requests"][0]["default_followup_id"] is not None
    assert count(engine, "SELECT count(*) FROM default_followup_fired WHERE obj_id=:o AND followup_request_id=:r",
                 o=alert["objectId"], r=reqs["followup_requests"][0]["id"]) == 1
