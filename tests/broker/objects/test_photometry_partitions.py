"""Photometry partitioned by month of mjd (migration 0020): points land in their month's partition, the
archive or the default one; making partitions ahead moves what the default held, ids unchanged; deleting
points (one, an upload, an object) deletes what names them (groups, streams, annotations), which no
foreign key can do on a partitioned table."""

import uuid
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from broker.objects.photometry import ensure_partitions


def mjd_of(dt: datetime) -> float:
    return (dt - datetime(1858, 11, 17, tzinfo=timezone.utc)).total_seconds() / 86400.0


def where(session, ids):
    """{point id: partition}."""
    return dict(session.execute(sa.text("SELECT id, tableoid::regclass::text FROM photometry WHERE id = ANY(:i)"),
                                {"i": ids}).all())


def dependents(session, ids):
    return tuple(session.execute(sa.text(f"SELECT count(*) FROM {t} WHERE photometry_id = ANY(:i)"),
                                 {"i": ids}).scalar_one()
                 for t in ("photometry_groups", "photometry_streams", "annotations_on_photometry"))


@pytest.fixture
def obj(admin):
    name = f"PART{uuid.uuid4().hex[:8]}"
    gid = admin.post("/api/groups", json={"name": f"part-{uuid.uuid4().hex[:6]}"}).json()["data"]["id"]
    sid = admin.post("/api/streams", json={"name": f"part-{uuid.uuid4().hex[:6]}"}).json()["data"]["id"]
    assert admin.post("/api/sources", json={"id": name, "ra": 10.0, "dec": -5.0, "group_ids": [gid]}).status_code == 200
    ztf = next(i["id"] for i in admin.get("/api/instrument").json()["data"] if i["name"] == "ZTF")
    return dict(name=name, gid=gid, sid=sid, instrument=ztf)


def upload(admin, obj, mjds):
    r = admin.post("/api/photometry", json={"obj_id": obj["name"], "mjd": mjds, "flux": [10.0] * len(mjds),
                                            "fluxerr": [1.0] * len(mjds), "zp": 23.9, "magsys": "ab",
                                            "filter": "ztfg", "instrument_id": obj["instrument"],
                                            "group_ids": [obj["gid"]], "stream_ids": [obj["sid"]]})
    assert r.status_code == 200, r.text
    return r.json()["data"]["ids"]


def test_points_land_in_their_month_and_move_when_it_is_made(admin, obj, session_factory):
    now = datetime.now(timezone.utc)
    ahead = now.month + 5  # past the 3 months the migration made ahead
    far = datetime(now.year + (ahead - 1) // 12, (ahead - 1) % 12 + 1, 15, tzinfo=timezone.utc)
    ids = upload(admin, obj, [55000.5, mjd_of(now), mjd_of(far)])
    with session_factory() as session:
        got = where(session, ids)
    assert got == {ids[0]: "photometry_archive", ids[1]: f"photometry_{now:%Y_%m}", ids[2]: "photometry_default"}
    with session_factory() as session, session.begin():
        months = (far.year - now.year) * 12 + far.month - now.month
        assert ensure_partitions(session, months) >= 1
        assert ensure_partitions(session, months) == 0  # made once
    with session_factory() as session:
        assert where(session, ids)[ids[2]] == f"photometry_{far:%Y_%m}"
        assert session.execute(sa.text("SELECT count(*) FROM photometry_default")).scalar_one() == 0
    points = admin.get(f"/api/sources/{obj['name']}/photometry").json()["data"]
    assert sorted(p["id"] for p in points) == sorted(ids)
    # a PATCH moving a point to another month moves its row; its id (and what names it) stays
    r = admin.patch(f"/api/photometry/{ids[1]}", json={"mjd": 55001.5, "flux": 10.0, "fluxerr": 1.0, "zp": 23.9,
                                                        "magsys": "ab", "filter": "ztfg",
                                                        "instrument_id": obj["instrument"]})
    assert r.status_code == 200, r.text
    with session_factory() as session:
        assert where(session, [ids[1]]) == {ids[1]: "photometry_archive"}
        assert dependents(session, [ids[1]])[1:] == (1, 0)
        groups = session.execute(sa.text("SELECT group_id FROM photometry_groups WHERE photometry_id = :i"),
                                 {"i": ids[1]}).scalars().all()
        assert obj["gid"] in groups


def test_deleting_points_deletes_what_names_them(admin, obj, session_factory):
    ids = upload(admin, obj, [60400.5, 60500.5, 60600.5, 55000.5])
    r = admin.post(f"/api/photometry/{ids[0]}/annotations", json={"origin": "test", "data": {"snr": 5}})
    assert r.status_code == 200, r.text
    with session_factory() as session:
        n_groups = dependents(session, [ids[0]])[0]  # the group asked for (and the sitewide one, as SkyPortal)
        assert n_groups >= 1 and dependents(session, ids) == (4 * n_groups, 4, 1)
    assert admin.delete(f"/api/photometry/{ids[0]}").status_code == 200
    with session_factory() as session:
        assert dependents(session, ids) == (3 * n_groups, 3, 0)
    with session_factory() as session, session.begin():  # the cascade from objs, then the trigger
        session.execute(sa.text("DELETE FROM objs WHERE id = :o"), {"o": obj["name"]})
    with session_factory() as session:
        assert dependents(session, ids) == (0, 0, 0)
        assert where(session, ids) == {}
