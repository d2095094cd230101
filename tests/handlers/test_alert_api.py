"""Alerts ingested through Kafka, read back through SkyPortal's candidate/source/photometry/classification API."""

import json
import random

import pytest

from broker.ingest.replay import derive, encode, publish, read_packets
from tests.broker.ingest.helpers import (count, ingest_config, make_group_with_filter, make_stream,
                                         running_ingestor, wait_for)

from .test_envelope import assert_error

ZTF_FILE = "../shared/data/ztf/541234765015015012.avro"
TAXONOMY = {"class": "Time-domain Source", "subclasses": [
    {"class": "Real", "subclasses": [{"class": "SN Ia"}, {"class": "AGN"}]}, {"class": "Bogus"}]}


@pytest.fixture
def world(admin, make_user, config, engine, session_factory, kafka_bootstrap, kafka_topic, monkeypatch):
    """Two ZTF alerts ingested for Alice's group (one autosaved); Bob in none of it."""
    from tests.conftest import REPO

    monkeypatch.chdir(REPO)
    alice, bob = make_user(prefix="alice"), make_user(prefix="bob")
    tax = admin.post("/api/taxonomy", json={"name": f"tdtax-{kafka_topic}", "version": "1", "hierarchy": TAXONOMY})
    assert tax.status_code == 200, tax.text
    tax_id = tax.json()["data"]["taxonomy_id"]
    sid = make_stream(admin, kafka_topic, "ztf_avro",
                      classifications={"taxonomy_id": tax_id, "scores": {"rb": "Real"}})
    gid, fid = make_group_with_filter(alice, admin, sid)
    gid2, fid2 = make_group_with_filter(alice, admin, sid, {"field": "mag", "op": "<", "value": 17.9},
                                        autosave=True)
    (packet, schema), = read_packets(ZTF_FILE, "ztf_avro")
    rng = random.Random()
    a = derive(packet, 0, rng, ra=10.0, dec=20.0)
    b = derive(packet, 1, rng, ra=200.0, dec=-30.0)
    b["candidate"]["magpsf"] = 19.5  # fails the bright filter
    publish(kafka_bootstrap, kafka_topic, [encode(a, schema, "ztf_avro"), encode(b, schema, "ztf_avro")])
    with running_ingestor(ingest_config(config, kafka_bootstrap), session_factory):
        wait_for(lambda: count(engine, "SELECT count(*) FROM candidates WHERE filter_id IN (:f, :g)",
                               f=fid, g=fid2) == 3)
    return dict(alice=alice, bob=bob, admin=admin, sid=sid, gid=gid, fid=fid, gid2=gid2, fid2=fid2,
                a=a["objectId"], b=b["objectId"], tax_id=tax_id)


def test_candidates_list_and_one(world):
    alice, a, b = world["alice"], world["a"], world["b"]
    data = alice.get("/api/candidates", params={"filterIDs": f"{world['fid']},{world['fid2']}"}).json()["data"]
    assert data["totalMatches"] == 2 and data["numPerPage"] == 25 and data["pageNumber"] == 1
    by_id = {c["id"]: c for c in data["candidates"]}
    assert sorted(by_id[a]["filter_ids"]) == sorted([world["fid"], world["fid2"]])
    assert by_id[b]["filter_ids"] == [world["fid"]]
    assert by_id[a]["is_source"] is True and by_id[b]["is_source"] is False
    assert by_id[a]["saved_groups"][0]["id"] == world["gid2"]
    assert by_id[a]["passing_alert_id"] is not None
    assert by_id[a]["passed_at"].startswith("2018-06-2")
    assert "photometry" not in by_id[a]
    # stream classification: rb mapped to "Real", ml, origin = stream
    (cls,) = by_id[a]["classifications"]
    assert cls["classification"] == "Real" and cls["ml"] is True
    assert cls["probability"] == pytest.approx(0.7733333110809326)
    assert "photometry" not in alice.get(f"/api/candidates/{a}").json()["data"]  # SkyPortal: on request only
    one = alice.get(f"/api/candidates/{a}", params={"includePhotometry": "true"}).json()["data"]
    assert len(one["photometry"]) == 15 and one["id"] == a
    assert alice.request("HEAD", f"/api/candidates/{a}").status_code == 200
    assert alice.request("HEAD", "/api/candidates/nope").status_code == 404


def test_candidate_query_parameters(world):
    alice, a, b = world["alice"], world["a"], world["b"]
    q = {"filterIDs": f"{world['fid']},{world['fid2']}"}

    def ids(**params):
        r = alice.get("/api/candidates", params={**q, **params})
        assert r.status_code == 200, r.text
        return {c["id"] for c in r.json()["data"]["candidates"]}

    assert ids(savedStatus="savedToAnySelected") == {a}
    assert ids(savedStatus="notSavedToAnySelected") == {b}
    assert ids(savedStatus="savedToAllSelected") == set()  # saved to gid2 only, not gid
    assert ids(savedStatus="notSavedToAnyAccessible") == {b}
    assert ids(startDate="2019-01-01") == set()
    assert ids(startDate="2018-01-01", endDate="2018-12-31") == {a, b}
    assert ids(classifications="Real") == {a, b}
    assert ids(classificationsReject="Real") == set()
    r = alice.get("/api/candidates", params={"groupIDs": str(world["gid2"])})
    assert {c["id"] for c in r.json()["data"]["candidates"]} == {a}
    page1 = alice.get("/api/candidates", params={**q, "numPerPage": 1, "sortBy": "ra", "sortOrder": "asc"})
    assert [c["id"] for c in page1.json()["data"]["candidates"]] == [a]
    assert_error(alice.get("/api/candidates", params={**q, "numPerPage": 1, "pageNumber": 3}), 400, "pageNumber")
    assert_error(alice.get("/api/candidates", params={"savedStatus": "sometimes"}), 400, "savedStatus")
    assert_error(alice.get("/api/candidates", params={"startDate": "yesterday-ish"}), 400, "startDate")
    assert_error(alice.get("/api/candidates", params={"sortBy": "colour"}), 400, "sortBy")
    with_phot = alice.get("/api/candidates", params={**q, "includePhotometry": "true"}).json()["data"]
    assert all(len(c["photometry"]) == 15 for c in with_phot["candidates"])


def test_candidates_group_isolation(world):
    bob, a = world["bob"], world["a"]
    data = bob.get("/api/candidates").json()["data"]
    assert a not in {c["id"] for c in data["candidates"]}
    assert_error(bob.get("/api/candidates", params={"filterIDs": str(world["fid"])}), 400, "filterIDs")
    assert_error(bob.get("/api/candidates", params={"groupIDs": str(world["gid"])}), 400, "groupIDs")
    assert_error(bob.get(f"/api/candidates/{a}"), 400, "Invalid ID")  # SkyPortal: 400 for an unseen candidate
    assert bob.request("HEAD", f"/api/candidates/{a}").status_code == 404
    assert_error(bob.get(f"/api/sources/{a}"), 404)
    assert a not in {s["id"] for s in bob.get("/api/sources").json()["data"]["sources"]}
    assert_error(bob.get(f"/api/sources/{a}/photometry"), 403)  # SkyPortal's ObjPhotometryHandler: 403
    assert bob.get("/api/classification/sources").json()["data"].count(a) == 0


def test_sources_save_list_cone_unsave(world):
    alice, a, b, gid = world["alice"], world["a"], world["b"], world["gid"]
    assert alice.post("/api/sources", json={"id": b, "group_ids": [gid]}).status_code == 200
    data = alice.get("/api/sources", params={"group_ids": str(gid)}).json()["data"]
    assert {s["id"] for s in data["sources"]} == {b}
    src = data["sources"][0]
    assert src["groups"][0]["id"] == gid and src["groups"][0]["saved_by_id"] == alice.user_id
    cone = alice.get("/api/sources", params={"ra": 10.0, "dec": 20.0, "radius": 0.01}).json()["data"]
    assert {s["id"] for s in cone["sources"]} == {a}
    assert_error(alice.get("/api/sources", params={"ra": 10.0}), 400, "radius")
    one = alice.get(f"/api/sources/{b}", params={"includePhotometry": "true"}).json()["data"]
    assert len(one["photometry"]) == 15 and {g["id"] for g in one["groups"]} == {gid}
    groups = alice.get(f"/api/sources/{b}/groups").json()["data"]
    assert [g["id"] for g in groups] == [gid]
    # SkyPortal: 'Manage sources', group_id in the body
    assert alice.request("DELETE", f"/api/sources/{b}", json={"group_id": gid}).status_code == 401
    assert world["admin"].request("DELETE", f"/api/sources/{b}", json={"group_id": gid}).status_code == 200
    assert alice.get("/api/sources", params={"group_ids": str(gid)}).json()["data"]["totalMatches"] == 0
    assert alice.post("/api/source_groups", json={"objId": b, "inviteGroupIds": [gid]}).status_code == 200
    assert alice.get("/api/sources", params={"group_ids": str(gid)}).json()["data"]["totalMatches"] == 1
    # a brand-new source needs a position
    assert_error(alice.post("/api/sources", json={"id": "brand-new", "group_ids": [gid]}), 400, "ra")
    r = alice.post("/api/sources", json={"id": f"manual-{gid}", "ra": 1.0, "dec": 2.0, "group_ids": [gid]})
    assert r.status_code == 200 and r.json()["data"]["id"] == f"manual-{gid}"


def test_can_save_is_required(world, make_user):
    alice, gid, b = world["alice"], world["gid"], world["b"]
    carol = make_user(prefix="carol")
    # as SkyPortal, a member must be able to read the group's streams
    assert world["admin"].post(f"/api/streams/{world['sid']}/users", json={"user_id": carol.user_id}).status_code == 200
    assert alice.post(f"/api/groups/{gid}/users", json={"userID": carol.user_id, "canSave": False}).status_code == 200
    assert_error(carol.post("/api/sources", json={"id": b, "group_ids": [gid]}), 403, "cannot save")


def test_photometry_formats_and_upload(world):
    alice, bob, a = world["alice"], world["bob"], world["a"]
    flux = alice.get(f"/api/sources/{a}/photometry", params={"format": "flux"}).json()["data"]
    mag = alice.get(f"/api/sources/{a}/photometry").json()["data"]  # magnitudes by default, as SkyPortal
    assert len(flux) == len(mag) == 15
    det = [p for p in mag if p["mag"] is not None]
    lims = [p for p in flux if p["flux"] is None]
    (lim,) = [p for p in mag if p["id"] == lims[0]["id"]]
    assert len(lims) == 1 and lim["limiting_mag"] == pytest.approx(20.892799377441406)
    trig = [p for p in mag if p["alert_id"] == max(x["alert_id"] or 0 for x in mag)]
    assert any(abs(p["mag"] - 17.846) < 1e-3 for p in det)
    assert {p["filter"] for p in flux} == {"ztfg", "ztfr"} and trig
    # upload: mag form and flux form; a repeat returns the same ids
    body = {"obj_id": a, "mjd": [59000.1, 59000.2], "filter": "ztfg", "mag": [18.0, None],
            "magerr": [0.1, None], "limiting_mag": [None, 20.5], "origin": "manual", "instrument_name": "ZTF",
            "magsys": "ab"}
    r = alice.post("/api/photometry", json=body)
    assert r.status_code == 200, r.text
    ids = r.json()["data"]["ids"]
    assert alice.put("/api/photometry", json=body).json()["data"]["ids"] == ids  # PUT: a repeat is the same point
    assert_error(alice.post("/api/photometry", json=body), 400, "already exists")  # POST: SkyPortal's 400
    p = alice.get(f"/api/photometry/{ids[0]}", params={"format": "flux"}).json()["data"]
    assert p["flux"] == pytest.approx(10 ** (-0.4 * (18.0 - 23.9))) and p["zp"] == 23.9
    assert alice.get(f"/api/photometry/{ids[1]}", params={"format": "flux"}).json()["data"]["flux"] is None
    assert_error(bob.get(f"/api/photometry/{ids[0]}"), 400, "cannot find")
    assert_error(alice.post("/api/photometry", json={**body, "filter": "johnson-q"}), 400, "filter")
    assert_error(alice.post("/api/photometry", json={**body, "mag": [-1000, None]}), 400, "mag")
    assert_error(alice.post("/api/photometry", json={**body, "magerr": [-1, None]}), 400, "magerr")
    nan_body = json.dumps({**body, "mag": [float("nan"), None]})  # a NaN literal, which JSON does not have
    assert "NaN" in nan_body
    assert_error(alice.post("/api/photometry", data=nan_body), 400, "mag[0]")
    assert_error(alice.post("/api/photometry", json={**body, "mjd": [1.0]}), 400, "mjd")
    assert_error(alice.post("/api/photometry", json={"obj_id": "nope", "mjd": 1.0, "filter": "ztfg",
                                                     "mag": 18.0, "magerr": 0.1}), 400, "obj_id")
    assert alice.delete(f"/api/photometry/{ids[0]}").status_code == 200
    assert_error(alice.get(f"/api/photometry/{ids[0]}"), 400, "cannot find")


def test_classifications(world, make_user):
    alice, bob, a, tax_id = world["alice"], world["bob"], world["a"], world["tax_id"]
    r = alice.post("/api/classification", json={"obj_id": a, "classification": "SN Ia", "taxonomy_id": tax_id,
                                               "probability": 0.9, "vote": True})
    assert r.status_code == 200, r.text
    cid = r.json()["data"]["classification_id"]
    assert_error(alice.post("/api/classification", json={"obj_id": a, "classification": "Unicorn",
                                                         "taxonomy_id": tax_id}), 400, "not a class")
    assert_error(alice.post("/api/classification", json={"obj_id": a, "classification": "AGN",
                                                         "taxonomy_id": tax_id, "probability": 1.5}), 400, "probability")
    bulk = alice.post("/api/classification", json={"classifications": [
        {"obj_id": a, "classification": "AGN", "taxonomy_id": tax_id, "probability": 0.1},
        {"obj_id": world["b"], "classification": "Bogus", "taxonomy_id": tax_id}]})
    assert bulk.status_code == 200 and len(bulk.json()["data"]["classification_ids"]) == 2
    one = alice.get(f"/api/classification/{cid}", params={"includeTaxonomy": "true"}).json()["data"]
    assert one["author_name"] == alice.username and one["votes"] == [{"voter_id": alice.user_id, "vote": 1}]
    assert one["taxonomy"]["id"] == tax_id
    assert alice.put(f"/api/classification/{cid}", json={"probability": 0.95}).status_code == 200
    assert alice.get(f"/api/classification/{cid}").json()["data"]["probability"] == 0.95
    assert_error(alice.put(f"/api/classification/{cid}", json={"classification": "Unicorn"}), 400, "not a class")
    assert alice.post(f"/api/classification/votes/{cid}", json={"vote": -1}).status_code == 200
    assert alice.get(f"/api/classification/{cid}").json()["data"]["votes"][0]["vote"] == -1
    assert alice.delete(f"/api/classification/votes/{cid}").status_code == 200
    classes = {c["classification"] for c in alice.get(f"/api/sources/{a}/classifications").json()["data"]}
    assert {"SN Ia", "AGN", "Real"} <= classes
    assert a in alice.get("/api/classification/sources").json()["data"]
    listing = alice.get("/api/classification", params={"numPerPage": 500}).json()["data"]
    assert cid in {c["id"] for c in listing["classifications"]}
    # isolation: Bob neither sees nor changes it
    assert_error(bob.get(f"/api/classification/{cid}"), 404)
    assert_error(bob.put(f"/api/classification/{cid}", json={"probability": 0.1}), 404)
    assert cid not in {c["id"] for c in bob.get("/api/classification").json()["data"]["classifications"]}
    assert alice.delete(f"/api/classification/{cid}").status_code == 200
    assert_error(alice.get(f"/api/classification/{cid}"), 404)


def test_taxonomy_api(admin, user):
    r = admin.post("/api/taxonomy", json={"name": "tiny", "version": "a", "hierarchy": {"class": "Thing"}})
    tid = r.json()["data"]["taxonomy_id"]
    assert user.get(f"/api/taxonomy/{tid}").json()["data"]["hierarchy"] == {"class": "Thing"}  # sitewide
    assert_error(user.post("/api/taxonomy", json={"name": "x", "version": "1", "hierarchy": {"class": "A"}}),
                 401, "Post taxonomy")  # a missing ACL: 401, as SkyPortal
    assert_error(admin.post("/api/taxonomy", json={"name": "bad", "version": "1",
                                                   "hierarchy": {"class": "A", "subclasses": [{"klass": "B"}]}}),
                 400, "hierarchy.subclasses[0]")
    r2 = admin.post("/api/taxonomy", json={"name": "tiny", "version": "b", "hierarchy": {"class": "Thing"}})
    assert admin.get(f"/api/taxonomy/{tid}").json()["data"]["isLatest"] is False
    assert admin.get(f"/api/taxonomy/{r2.json()['data']['taxonomy_id']}").json()["data"]["isLatest"] is True
    assert admin.delete(f"/api/taxonomy/{tid}").status_code == 200


def test_manual_candidate_post_and_delete(world):
    alice, fid = world["alice"], world["fid"]
    r = alice.post("/api/candidates", json={"id": f"kowalski-{fid}", "ra": 5.0, "dec": 5.0, "filter_ids": [fid],
                                           "passed_at": "2024-01-02T03:04:05", "passing_alert_id": 123})
    assert r.status_code == 200, r.text
    ids = r.json()["data"]["ids"]
    again = alice.post("/api/candidates", json={"id": f"kowalski-{fid}", "filter_ids": [fid],
                                               "passed_at": "2024-01-02T03:04:05"})
    assert again.json()["data"]["ids"] == ids  # idempotent on (obj, filter, passed_at)
    assert_error(world["bob"].post("/api/candidates", json={"id": "x", "ra": 1, "dec": 1, "filter_ids": [fid],
                                                            "passed_at": "2024-01-01"}), 400, "filter_ids")
    assert alice.delete(f"/api/candidates/kowalski-{fid}/{fid}").status_code == 200
    assert_error(alice.get(f"/api/candidates/kowalski-{fid}"), 400, "Invalid ID")


def test_ingest_stats(world, admin, config, kafka_bootstrap, session_factory):
    # a live consumer is listed (one that stopped, or missed three reports, is not)
    latest = {"auto.offset.reset": "latest"}  # a new group that reads nothing old (the counters stay put)
    with running_ingestor(ingest_config(config, kafka_bootstrap), session_factory, **latest) as ing:
        wait_for(lambda: any(c["consumer"] == ing.name
                             for c in admin.get("/api/ingest_stats").json()["data"]["consumers"]), what="a report")
    data = admin.get("/api/ingest_stats").json()["data"]
    mine = [c for c in data["counters"] if c["stream_id"] == world["sid"]]
    per_stream = [c for c in mine if c["filter_id"] == 0][0]
    assert per_stream["consumed"] == 2 and per_stream["ingested"] == 2 and per_stream["failed"] == 0
    per_filter = {c["filter_id"]: c["passed"] for c in mine if c["filter_id"]}
    assert per_filter == {world["fid"]: 2, world["fid2"]: 1}
    assert data["consumers"] and "lag" in data["consumers"][0]
    assert_error(world["alice"].get("/api/ingest_stats"), 401, "System admin")
