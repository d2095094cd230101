"""GCN notices from Kafka, and alerts crossmatched against recent localizations."""

import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from broker.ingest.replay import derive, encode, publish, read_packets

from tests.broker.ingest.helpers import count, ingest_config, make_group_with_filter, make_stream, running_ingestor, wait_for
from tests.broker.ingest.test_ingest import ZTF

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "gcn"


def test_gcn_stream_stores_notices_and_keeps_bad_ones(shared_dir, admin, config, engine, session_factory,
                                                     kafka_bootstrap, kafka_topic):
    sid = make_stream(admin, kafka_topic, "gcn")
    t = (datetime.now(timezone.utc) - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%S")
    good = json.dumps({"instrument": "WXT", "id": [f"k{random.randrange(10**6)}"], "trigger_time": t,
                       "ra": 33.0, "dec": 44.0, "ra_dec_error": 0.1}).encode()
    voevent = (DATA / "GW190425_initial.xml").read_bytes()
    bad = [b'{"ra": 1}', b"<VOEvent broken", b"\x00\x01binary"]
    publish(kafka_bootstrap, kafka_topic, [good, voevent, *bad])
    with running_ingestor(ingest_config(config, kafka_bootstrap), session_factory):
        wait_for(lambda: count(engine, "SELECT consumed FROM ingest_counters WHERE stream_id=:s AND filter_id=0",
                               s=sid) == 5, what="all five notices")
    assert count(engine, "SELECT ingested FROM ingest_counters WHERE stream_id=:s AND filter_id=0", s=sid) == 2
    assert count(engine, "SELECT count(*) FROM failed_alerts WHERE topic=:t", t=kafka_topic) == 3
    ev = admin.get(f"/api/gcn_event/{t}").json()["data"]
    assert ev["localizations"][0]["localization_name"] == "33.00000_44.00000_0.10000"  # SkyPortal's cone name
    assert count(engine, "SELECT count(*) FROM gcnevents WHERE aliases @> '[\"LVC#S190425z\"]'") == 1


def test_alerts_are_crossmatched_with_recent_events(shared_dir, admin, make_user, config, engine, session_factory,
                                                   kafka_bootstrap, kafka_topic):
    owner = make_user()
    sid = make_stream(admin, kafka_topic, "ztf_avro")
    _, fid = make_group_with_filter(owner, admin, sid)
    t = (datetime.now(timezone.utc) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    ra, dec = 250.0 + random.random(), -20.0
    r = admin.post("/api/gcn_event", json={"json": {"instrument": "EP", "id": ["x1"], "trigger_time": t,
                                                    "ra": ra, "dec": dec, "ra_dec_error": 0.2}})
    assert r.status_code == 200, r.text
    # the same spot, dated tomorrow: no alert of today is its counterpart
    future = (datetime.now(timezone.utc) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    r = admin.post("/api/gcn_event", json={"json": {"instrument": "EP", "id": ["x2"], "trigger_time": future,
                                                    "ra": ra, "dec": dec, "ra_dec_error": 0.2}})
    assert r.status_code == 200, r.text
    (packet, schema), = read_packets(ZTF, "ztf_avro")
    rng = random.Random(3)
    inside = derive(packet, 0, rng, ra=ra + 0.1, dec=dec)
    outside = derive(packet, 1, rng, ra=ra + 5, dec=dec)
    publish(kafka_bootstrap, kafka_topic, [encode(inside, schema, "ztf_avro"), encode(outside, schema, "ztf_avro")])
    with running_ingestor(ingest_config(config, kafka_bootstrap), session_factory):
        wait_for(lambda: count(engine, "SELECT count(*) FROM candidates WHERE filter_id=:f", f=fid) == 2)
    c = owner.get(f"/api/candidates/{inside['objectId']}").json()["data"]
    (loc,) = c["localizations"]  # yesterday's event only
    assert loc["dateobs"].startswith(t[:10]), loc
    # the stored level is the kernel's on the stored map; 0.094 deg from the centre of a sigma = 0.2 deg
    # Gaussian it is about 1 - exp(-0.094**2 / 0.08) = 0.10 (give or take a 3.4' pixel)
    import numpy as np

    from broker.sky import kernels as K

    m = admin.get(f"/api/localization/{t}/name/{ra:.5f}_{dec:.5f}_0.20000").json()["data"]  # SkyPortal's name
    kern = K.crossmatch(np.array(m["uniq"]), np.array(m["probdensity"]), [inside["candidate"]["ra"]],
                        [inside["candidate"]["dec"]])
    assert loc["credible_level"] == pytest.approx(float(kern["credible_level"][0]), rel=1e-12)
    assert loc["probdensity"] == pytest.approx(float(kern["probdensity"][0]), rel=1e-12)
    assert 0.0 < loc["credible_level"] < 0.3
    assert owner.get(f"/api/candidates/{outside['objectId']}").json()["data"]["localizations"] == []
    # through the SQL region too
    data = owner.get("/api/candidates", params={"filterIDs": fid, "localizationDateobs": t,
                                                "localizationCumprob": 0.9}).json()["data"]
    assert [x["id"] for x in data["candidates"]] == [inside["objectId"]]


def test_a_new_map_crossmatches_existing_candidates(admin):
    t = (datetime.now(timezone.utc) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    tag = f"{random.randrange(10**8)}"
    sid = admin.post("/api/streams", json={"name": f"s{tag}"}).json()["data"]["id"]
    gid = admin.post("/api/groups", json={"name": f"g{tag}"}).json()["data"]["id"]
    admin.post(f"/api/groups/{gid}/streams", json={"stream_id": sid})
    fid = admin.post("/api/filters", json={"name": "f", "stream_id": sid, "group_id": gid}).json()["data"]["id"]
    later = (datetime.now(timezone.utc) - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S")
    assert admin.post("/api/candidates", json={"id": f"pre{tag}", "ra": 10.0, "dec": 10.0, "filter_ids": [fid],
                                               "passed_at": later}).status_code == 200
    assert admin.post("/api/gcn_event", json={"dateobs": t, "skymap": {
        "localization_name": "cone", "ra": 10.05, "dec": 10.0, "error": 0.5}}).status_code == 200
    (loc,) = admin.get(f"/api/candidates/pre{tag}").json()["data"]["localizations"]  # a candidate, no source
    # SkyPortal names a cone by its numbers (a given localization_name is not used)
    assert loc["localization_name"] == "10.05000_10.00000_0.50000" and 0 < loc["credible_level"] < 0.1


def test_default_rule_inside_a_recent_region(shared_dir, admin, make_user, config, engine, session_factory,
                                             kafka_bootstrap, kafka_topic, lco):
    """A rule with a localization condition fires for the alert inside the region, not the one outside."""
    from broker.runtime.app import make_app
    from broker.runtime.worker import FollowupWorker
    from tests.handlers.followup_helpers import sim_groups

    from tests.broker.followup.test_followup_e2e import PAYLOAD, lco_allocation

    owner = make_user()
    sid = make_stream(admin, kafka_topic, "ztf_avro")
    gid, fid = make_group_with_filter(owner, admin, sid)
    aid = lco_allocation(admin, gid)
    t = (datetime.now(timezone.utc) - timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%S")
    ra, dec = 100.0 + random.random(), 30.0
    assert admin.post("/api/gcn_event", json={"dateobs": t, "skymap": {
        "localization_name": "cone", "ra": ra, "dec": dec, "error": 0.3}}).status_code == 200
    r = owner.post("/api/default_followup_request", json={
        "default_followup_name": f"gw-{random.randrange(10**8)}", "allocation_id": aid, "payload": PAYLOAD,
        "source_filter": {"filter_ids": [fid], "localization": {"cumprob": 0.9, "max_age_days": 2}}})
    assert r.status_code == 200, r.text
    (packet, schema), = read_packets(ZTF, "ztf_avro")
    rng = random.Random(9)
    inside = derive(packet, 0, rng, ra=ra + 0.1, dec=dec)
    outside = derive(packet, 1, rng, ra=ra + 3, dec=dec)
    worker = FollowupWorker(make_app(config, session_factory).followup, engine, poll_interval_s=30).start()
    try:
        with running_ingestor(ingest_config(config, kafka_bootstrap), session_factory):
            publish(kafka_bootstrap, kafka_topic, [encode(inside, schema, "ztf_avro"),
                                                   encode(outside, schema, "ztf_avro")])
            wait_for(lambda: count(engine, "SELECT count(*) FROM candidates WHERE filter_id=:f", f=fid) == 2)
            wait_for(lambda: len(sim_groups(lco)) >= 1, timeout=15)
    finally:
        worker.stop()
    targets = [g["requests"][0]["configurations"][0]["target"]["name"] for g in sim_groups(lco)]
    assert targets == [inside["objectId"]]
