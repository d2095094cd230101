"""/api/photometry as SkyPortal serves it: POST/PUT (duplicates), GET (mag/flux, magsys), PATCH, DELETE,
bulk_delete, range, /api/sources/{id}/photometry, and ingest keeping two detections of one exposure."""

import math
import random
import uuid

import pytest

from .test_envelope import assert_error


def ztf_id(client) -> int:
    (inst,) = client.get("/api/instrument", params={"name": "ZTF"}).json()["data"]
    return inst["id"]


@pytest.fixture
def alice_obj(make_user):
    """Alice, her group and an object saved to it; Bob in a group of his own."""
    alice, bob = make_user(prefix="alice"), make_user(prefix="bob")
    ga = alice.post("/api/groups", json={"name": f"a-{uuid.uuid4().hex[:8]}"}).json()["data"]["id"]
    gb = bob.post("/api/groups", json={"name": f"b-{uuid.uuid4().hex[:8]}"}).json()["data"]["id"]
    obj = f"ZTF26sp{uuid.uuid4().hex[:6]}"
    assert alice.post("/api/sources", json={"id": obj, "ra": 30.0, "dec": 10.0, "group_ids": [ga]}).status_code == 200
    return dict(alice=alice, bob=bob, ga=ga, gb=gb, obj=obj, ztf=ztf_id(alice))


def mag_point(s, **kw):
    return {"obj_id": s["obj"], "instrument_id": s["ztf"], "mjd": 60000.5, "filter": "ztfg", "mag": 18.0,
            "magerr": 0.1, "magsys": "ab", "group_ids": [s["ga"]], **kw}


def test_ztf_facility_out_of_the_box(admin):
    (inst,) = admin.get("/api/instrument", params={"name": "ZTF"}).json()["data"]
    assert inst["type"] == "imager" and set(inst["filters"]) == {"ztfg", "ztfr", "ztfi"}
    tel = admin.get(f"/api/telescope/{inst['telescope_id']}").json()["data"]
    assert tel["name"] == "Palomar 1.2m Oschin" and tel["nickname"] == "P48"


def test_post_then_duplicates(alice_obj):
    s, alice = alice_obj, alice_obj["alice"]
    r = alice.post("/api/photometry", json=mag_point(s, mjd=[60000.5, 60000.6]))
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert set(data) == {"ids", "upload_id"} and len(data["ids"]) == 2 and isinstance(data["upload_id"], str)
    # POST of a point that exists: a 400 naming SkyPortal's key; PUT: the same ids
    assert_error(alice.post("/api/photometry", json=mag_point(s)), 400, "already exists")
    again = alice.put("/api/photometry", json=mag_point(s, mjd=[60000.5, 60000.6]))
    assert again.status_code == 200, again.text
    assert again.json()["data"]["ids"] == data["ids"] and again.json()["data"]["upload_id"] is None
    # the same exposure, another flux: another point (SkyPortal's key includes flux and fluxerr)
    (other,) = alice.post("/api/photometry", json=mag_point(s, mag=18.5)).json()["data"]["ids"]
    assert other not in data["ids"]
    # a repeat inside one upload: POST refuses, PUT gives both the same id
    assert_error(alice.post("/api/photometry", json=mag_point(s, mjd=[60001.0, 60001.0])), 400, "already exists")
    ids = alice.put("/api/photometry", json=mag_point(s, mjd=[60001.0, 60001.0])).json()["data"]["ids"]
    assert ids[0] == ids[1]
    # two identical upper limits are one point
    lim = mag_point(s, mag=None, magerr=None, limiting_mag=20.5, mjd=60002.0)
    (l1,) = alice.put("/api/photometry", json=lim).json()["data"]["ids"]
    assert alice.put("/api/photometry", json=lim).json()["data"]["ids"] == [l1]


def test_get_formats_and_fields(alice_obj):
    s, alice = alice_obj, alice_obj["alice"]
    body = {"obj_id": s["obj"], "instrument_id": s["ztf"], "mjd": [60010.0, 60011.0], "filter": ["ztfg", "ztfr"],
            "flux": [100.0, None], "fluxerr": [5.0, 4.0], "zp": 25.0, "magsys": "ab", "ra": [30.0001, None],
            "dec": [10.0001, None], "ra_unc": 0.1, "dec_unc": 0.2, "ref_flux": [50.0, None],
            "ref_fluxerr": [2.0, None], "altdata": {"exptime": [30, 60], "camera": "ztf"},
            "group_ids": [s["ga"]]}
    r = alice.post("/api/photometry", json=body)
    assert r.status_code == 200, r.text
    det, lim = r.json()["data"]["ids"]
    factor = 10 ** (-0.4 * (25.0 - 23.9))
    p = alice.get(f"/api/photometry/{det}").json()["data"]  # magnitudes by default
    assert p["mag"] == pytest.approx(25.0 - 2.5 * math.log10(100.0)) and p["magsys"] == "ab"
    assert p["magerr"] == pytest.approx(2.5 / math.log(10) * 5.0 / 100.0)
    assert p["snr"] == pytest.approx(20.0) and p["instrument_id"] == s["ztf"] and p["instrument_name"] == "ZTF"
    assert p["ra_unc"] == 0.1 and p["dec_unc"] == 0.2 and p["origin"] == "None"
    assert p["altdata"] == {"exptime": 30, "camera": "ztf"}
    assert [g["id"] for g in p["groups"] if not g["single_user_group"]] == [s["ga"]]
    # ref_zp defaults to 23.9 (SkyPortal), whatever zp is
    assert p["ref_flux"] == pytest.approx(50.0) and p["tot_flux"] == pytest.approx(50.0 + 100.0 * factor)
    assert "flux" not in p and "annotations" in p and "created_at" in p
    f = alice.get(f"/api/photometry/{det}", params={"format": "flux"}).json()["data"]
    assert f["flux"] == pytest.approx(100.0 * factor) and f["fluxerr"] == pytest.approx(5.0 * factor)
    assert f["zp"] == 23.9 and "mag" not in f
    q = alice.get(f"/api/photometry/{lim}").json()["data"]
    assert q["mag"] is None and q["snr"] is None
    assert q["limiting_mag"] == pytest.approx(23.9 - 2.5 * math.log10(5 * 4.0 * factor))
    assert_error(alice.get(f"/api/photometry/{det}", params={"format": "counts"}), 400, "format")


def test_magsys_conversion(alice_obj):
    s, alice = alice_obj, alice_obj["alice"]
    # no published Vega offset for the ZTF bands: a 400 naming magsys, in and out
    r = alice.post("/api/photometry", json=mag_point(s, filter="ztfg", magsys="vega"))
    assert_error(r, 400, "magsys")
    (pid,) = alice.post("/api/photometry", json=mag_point(s, mjd=60020.0)).json()["data"]["ids"]
    assert_error(alice.get(f"/api/photometry/{pid}", params={"magsys": "vega"}), 400, "magsys")
    assert_error(alice.get(f"/api/photometry/{pid}", params={"magsys": "nosuch"}), 400, "magsys")


def test_vega_upload_round_trip(alice_obj, admin):
    s, alice = alice_obj, alice_obj["alice"]
    tel = admin.post("/api/telescope", json={"name": f"T-{uuid.uuid4().hex[:6]}", "nickname": "t", "diameter": 1.0})
    assert tel.status_code == 200, tel.text
    inst = admin.post("/api/instrument", json={"name": f"Cam-{uuid.uuid4().hex[:6]}", "type": "imager",
                                               "telescope_id": tel.json()["data"]["id"],
                                               "filters": ["bessellv", "sdssg"]})
    assert inst.status_code == 200, inst.text
    iid = inst.json()["data"]["id"]
    (pid,) = alice.post("/api/photometry", json=mag_point(s, instrument_id=iid, filter="bessellv", mag=15.0,
                                                         magsys="vega")).json()["data"]["ids"]
    ab = alice.get(f"/api/photometry/{pid}").json()["data"]
    assert ab["mag"] == pytest.approx(15.02) and ab["magsys"] == "ab"
    vega = alice.get(f"/api/photometry/{pid}", params={"magsys": "vega"}).json()["data"]
    assert vega["mag"] == pytest.approx(15.0) and vega["magsys"] == "vega"
    # the instrument has no ztfg: SkyPortal's imager filter check
    assert_error(alice.post("/api/photometry", json=mag_point(s, instrument_id=iid)), 400, "filter")


def test_bad_input_names_the_field(alice_obj):
    s, alice = alice_obj, alice_obj["alice"]
    body = mag_point(s)
    del body["instrument_id"]
    assert_error(alice.post("/api/photometry", json=body), 400, "instrument_id")
    assert_error(alice.post("/api/photometry", json=mag_point(s, instrument_id=99999999)), 400, "instrument")
    # ours: an instrument by name
    assert alice.post("/api/photometry", json={**body, "instrument_name": "ZTF", "mjd": 60030.0}).status_code == 200
    assert_error(alice.post("/api/photometry", json=mag_point(s, magerr=None)), 400, "magerr")
    assert_error(alice.post("/api/photometry", json=mag_point(s, mag=None, magerr=None)), 400, "limiting_mag")
    assert_error(alice.post("/api/photometry", json={**mag_point(s), "fluxerr": 1.0}), 400, "mag")
    assert_error(alice.post("/api/photometry", json={"obj_id": s["obj"], "instrument_id": s["ztf"], "mjd": 1.0,
                                                     "filter": "ztfg", "flux": 1.0, "fluxerr": 0.0}), 400, "fluxerr")
    assert_error(alice.post("/api/photometry", json=mag_point(s, stream_ids=[99999999])), 400, "stream")
    assert_error(alice.post("/api/photometry", json=mag_point(s, assignment_id=3)), 400, "assignment_id")
    assert_error(alice.post("/api/photometry", json=mag_point(s, mjd=[1.0, 2.0], filter=["ztfg"] * 3)), 400,
                 "where other fields have 3")
    assert_error(alice.post("/api/photometry", json=mag_point(s, altdata={"a": [1, 2, 3]}, mjd=[1.0, 2.0])),
                 400, "altdata")
    # nothing half-written: the object has no photometry at mjd 1 or 2
    mjds = {p["mjd"] for p in alice.get(f"/api/sources/{s['obj']}/photometry").json()["data"]}
    assert not mjds & {1.0, 2.0}


def test_patch_and_delete_permissions(alice_obj, make_user):
    s, alice, bob = alice_obj, alice_obj["alice"], alice_obj["bob"]
    shared = alice.post("/api/groups", json={"name": f"s-{uuid.uuid4().hex[:8]}"}).json()["data"]["id"]
    alice.post(f"/api/groups/{shared}/users", json={"userID": bob.user_id})
    (pid,) = alice.post("/api/photometry", json=mag_point(s, mjd=60040.0, group_ids=[shared])).json()["data"]["ids"]
    r = alice.patch(f"/api/photometry/{pid}", json={"mag": 17.0, "magerr": 0.05, "magsys": "ab"})
    assert r.status_code == 200, r.text
    p = alice.get(f"/api/photometry/{pid}").json()["data"]
    assert p["mag"] == pytest.approx(17.0) and p["magerr"] == pytest.approx(0.05) and p["mjd"] == 60040.0
    # flux form: SkyPortal's PhotometryFlux
    r = alice.patch(f"/api/photometry/{pid}", json={"flux": 200.0, "fluxerr": 10.0, "zp": 25.0, "magsys": "ab"})
    assert r.status_code == 200, r.text
    f = alice.get(f"/api/photometry/{pid}", params={"format": "flux"}).json()["data"]
    assert f["flux"] == pytest.approx(200.0 * 10 ** (-0.4 * 1.1)) and f["fluxerr"] == pytest.approx(10.0 * 10 ** -0.44)
    assert_error(alice.patch(f"/api/photometry/{pid}", json={"filter": "nosuchband"}), 400, "filter")
    # bob reads it (shared group) but may not change or delete it
    assert bob.get(f"/api/photometry/{pid}").status_code == 200
    assert_error(bob.patch(f"/api/photometry/{pid}", json={"mag": 1.0, "magerr": 0.1}), 400, "permission")
    assert_error(bob.delete(f"/api/photometry/{pid}"), 400, "permission")
    # groups replaced: bob loses sight of it, and then reads it as missing
    assert alice.patch(f"/api/photometry/{pid}", json={"group_ids": [s["ga"]]}).status_code == 200
    assert_error(bob.get(f"/api/photometry/{pid}"), 400, "cannot find")
    assert alice.delete(f"/api/photometry/{pid}").status_code == 200
    assert_error(alice.get(f"/api/photometry/{pid}"), 400, "cannot find")


def test_bulk_delete_and_range(alice_obj, make_user):
    s, alice = alice_obj, alice_obj["alice"]
    r = alice.post("/api/photometry", json=mag_point(s, mjd=[60050.0, 60051.0, 60052.0]))
    ids, upload_id = r.json()["data"]["ids"], r.json()["data"]["upload_id"]
    got = alice.get("/api/photometry/range", json={"instrument_ids": [s["ztf"]], "min_date": "2023-04-16T12:00:00",
                                                   "max_date": "2023-04-18T00:00:00"}).json()["data"]
    assert sorted(p["id"] for p in got if p["id"] in ids) == ids[1:]  # mjd 60051, 60052: 2023-04-17, -18
    assert_error(alice.get("/api/photometry/range", params={"magsys": "nosuch"}), 400, "mag system")
    assert alice.delete(f"/api/photometry/bulk_delete/{upload_id}").status_code == 401  # lacks the ACL
    deleter = make_user(prefix="deleter", acls=("Delete bulk photometry",))
    assert_error(deleter.delete(f"/api/photometry/bulk_delete/{upload_id}"), 400, "invalid bulk upload id")
    owner_del = make_user(prefix="owner", acls=("Delete bulk photometry",))
    g = owner_del.post("/api/groups", json={"name": f"o-{uuid.uuid4().hex[:8]}"}).json()["data"]["id"]
    r = owner_del.post("/api/sources", json={"id": s["obj"], "ra": 30.0, "dec": 10.0, "group_ids": [g]})
    assert r.status_code == 200, r.text
    r = owner_del.post("/api/photometry", json=mag_point(s, mjd=[60060.0, 60061.0], group_ids=[g]))
    assert r.status_code == 200, r.text
    up = r.json()["data"]["upload_id"]
    r = owner_del.delete(f"/api/photometry/bulk_delete/{up}")
    assert r.status_code == 200 and r.json()["data"] == "Deleted 2 photometry point(s)."
    assert all(alice.get(f"/api/photometry/{i}").status_code == 200 for i in ids)


def test_source_photometry_params(alice_obj):
    s, alice, bob = alice_obj, alice_obj["alice"], alice_obj["bob"]
    alice.post("/api/photometry", json=mag_point(s, mjd=[60070.0, 60070.0], mag=[18.0, 18.2]))
    path = f"/api/sources/{s['obj']}/photometry"
    data = alice.get(path).json()["data"]
    assert len(data) == 2 and all("mag" in p and "flux" not in p for p in data)
    assert len(alice.get(path, params={"deduplicatePhotometry": "true"}).json()["data"]) == 1
    plot = alice.get(path, params={"format": "plot"}).json()["data"]
    assert set(plot[0]) == {"id", "obj_id", "filter", "mjd", "origin", "mag", "magerr", "limiting_mag"}
    own = alice.get(path, params={"includeOwnerInfo": "true", "includeStreamInfo": "true"}).json()["data"]
    assert own[0]["owner"]["id"] == alice.user_id and own[0]["streams"] == []
    assert alice.get(path, params={"individualOrSeries": "series"}).json()["data"] == []
    assert_error(alice.get(path, params={"includeExtinction": "true"}), 400, "includeExtinction")
    assert_error(alice.get(path, params={"phaseFoldData": "true"}), 400, "period")
    assert_error(alice.get(path, params={"format": "counts"}), 400, "format")
    assert_error(bob.get(path), 403)


def test_ingest_keeps_two_detections_of_one_exposure(admin, make_user, session_factory, config, shared_dir):
    """A second real ZTF detection in the same exposure (same object, band and mjd, another flux) is kept."""
    import copy

    from broker.ingest.pipeline import Message, load_streams, process_batch
    from broker.ingest.replay import derive, encode, read_packets
    from tests.broker.ingest.helpers import make_group_with_filter, make_stream

    topic = f"sp-phot-{uuid.uuid4().hex[:8]}"
    alice = make_user(prefix="alice")
    sid = make_stream(admin, topic, "ztf_avro")
    make_group_with_filter(alice, admin, sid)
    (packet, schema), = read_packets("../shared/data/ztf/541234765015015012.avro", "ztf_avro")
    a = derive(packet, 0, random.Random(), ra=40.0, dec=12.0)
    first = next(p for p in a["prv_candidates"] if p.get("magpsf") is not None)
    twin = copy.deepcopy(first)
    twin["magpsf"] += 0.4  # a second detection in the same exposure
    twin["candid"] = a["candid"] - 1000  # a candid of its own (derive numbers the history below the alert's)
    a["prv_candidates"] = list(a["prv_candidates"]) + [twin]
    with session_factory() as session, session.begin():
        streams = load_streams(session)
        process_batch(session, streams, [Message(topic, 0, 0, encode(a, schema, "ztf_avro"))], 1.0)
    # redelivered: nothing twice
    with session_factory() as session, session.begin():
        process_batch(session, streams, [Message(topic, 0, 0, encode(a, schema, "ztf_avro"))], 1.0)
    data = alice.get(f"/api/sources/{a['objectId']}/photometry").json()["data"]
    same = [p for p in data if p["mjd"] == pytest.approx(first["jd"] - 2400000.5, abs=1e-9)]
    assert sorted(round(p["mag"], 3) for p in same) == sorted([round(first["magpsf"], 3), round(twin["magpsf"], 3)])
    assert len(data) == 16 and all(p["instrument_name"] == "ZTF" for p in data)


def test_migration_keeps_older_points(new_database):
    """0012 on a database with photometry of the older schema: every point gets an instrument, fluxes go to
    µJy AB, a second detection of one exposure can then be stored."""
    import sqlalchemy as sa
    from alembic import command

    from broker.runtime import db

    engine = db.make_engine(new_database())
    try:
        with engine.begin() as conn:
            command.upgrade(db._alembic_config(conn), "0011")
            conn.execute(sa.text("""
                INSERT INTO objs (id, ra, dec, healpix, created_at, modified) VALUES ('old1', 1, 2, 0, now(), now());
                INSERT INTO photometry (obj_id, created_at, modified, mjd, flux, fluxerr, zp, magsys, filter, origin,
                                        instrument_name, dedup_scope)
                VALUES ('old1', now(), now(), 60000.0, 100.0, 10.0, 25.0, 'ab', 'ztfg', 'ZTF', 'ZTF', 0),
                       ('old1', now(), now(), 60001.0, 10.0, 1.0, 23.9, 'vega', 'sdssg', 'x', '', 7),
                       ('old1', now(), now(), 60002.0, 10.0, 1.0, 23.9, 'ab', 'ztfr', 'x', 'My Cam', 7)"""))
            command.upgrade(db._alembic_config(conn), "0012")
            rows = conn.execute(sa.text("""
                SELECT p.mjd, p.flux, p.zp, p.magsys, i.name FROM photometry p JOIN instruments i ON i.id = p.instrument_id
                ORDER BY p.mjd""")).all()
            assert [r[4] for r in rows] == ["ZTF", "Unknown", "My Cam"]
            assert rows[0][1] == pytest.approx(100.0 * 10 ** (-0.4 * (25.0 - 23.9))) and rows[0][2] == 23.9
            assert rows[1][1] == pytest.approx(10.0 * 10 ** (0.4 * 0.08)) and rows[1][3] == "ab"
            ztf = conn.execute(sa.text("SELECT id FROM instruments WHERE name = 'ZTF'")).scalar()
            conn.execute(sa.text("""
                INSERT INTO photometry (obj_id, instrument_id, created_at, modified, mjd, flux, fluxerr, zp, magsys,
                                        filter, origin)
                VALUES ('old1', :i, now(), now(), 60000.0, 50.0, 10.0, 23.9, 'ab', 'ztfg', 'ZTF')"""), {"i": ztf})
            assert conn.execute(sa.text("SELECT count(*) FROM photometry WHERE mjd = 60000.0")).scalar() == 2
            command.downgrade(db._alembic_config(conn), "0011")
            command.upgrade(db._alembic_config(conn), "head")
    finally:
        engine.dispose()
