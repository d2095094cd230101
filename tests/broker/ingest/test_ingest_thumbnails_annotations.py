"""Real ZTF alerts through Kafka: their cutouts become thumbnails and their ML scores annotations, as
Kowalski posts them to SkyPortal; a bad cutout never costs its alert."""

import base64
import gzip
import random

import sqlalchemy as sa

from broker.ingest.replay import derive, encode, publish, read_packets
from broker.objects.thumbnails import check_png

from .helpers import count, ingest_config, make_group_with_filter, make_stream, running_ingestor, wait_for

ZTF = "../shared/data/ztf/541234765015015012.avro"
ZTF_OLD = "../shared/data/ztf/87704463155000.avro"  # the old schema: JPEG stamps, not FITS


def test_ztf_cutouts_and_scores(shared_dir, admin, make_user, config, engine, session_factory, kafka_bootstrap,
                                kafka_topic):
    owner = make_user()
    sid = make_stream(admin, kafka_topic, "ztf_avro")
    gid, fid = make_group_with_filter(owner, admin, sid, autosave=True)
    rng = random.Random(11)
    (packet, schema), = read_packets(ZTF, "ztf_avro")
    good = derive(packet, 0, rng)
    again = derive(packet, 1, rng)  # a later alert of the same object
    again["objectId"] = good["objectId"]
    again["candidate"]["jd"] += 1.0
    broken = derive(packet, 2, rng)  # its science stamp is not a FITS file, its template not even gzip
    broken["cutoutScience"]["stampData"] = gzip.compress(b"this is no FITS image" * 10)
    broken["cutoutTemplate"]["stampData"] = b"\x00\x01garbage"
    (old, old_schema), = read_packets(ZTF_OLD, "ztf_avro")
    old = derive(old, 3, rng)
    payloads = [encode(p, schema, "ztf_avro") for p in (good, broken)] + [encode(old, old_schema, "ztf_avro")]
    publish(kafka_bootstrap, kafka_topic, payloads)
    cfg = ingest_config(config, kafka_bootstrap)
    with running_ingestor(cfg, session_factory):
        wait_for(lambda: count(engine, "SELECT count(*) FROM candidates WHERE filter_id=:f", f=fid) == 3,
                 what="the three alerts")
        publish(kafka_bootstrap, kafka_topic, [encode(again, schema, "ztf_avro")])
        wait_for(lambda: count(engine, "SELECT count(*) FROM candidates WHERE filter_id=:f", f=fid) == 4,
                 what="the later alert")
    # no alert was lost to its cutouts
    assert count(engine, "SELECT count(*) FROM failed_alerts WHERE topic=:t", t=kafka_topic) == 0

    obj = good["objectId"]
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT type, survey, alert_id, data FROM thumbnails WHERE obj_id=:o "
                                    "ORDER BY type"), {"o": obj}).all()
    # the first alert's three cutouts, once (the later alert adds none, as Kowalski posts them once)
    assert [(t, s, a) for t, s, a, _ in rows] == [("new", "ZTF", good["candid"]), ("ref", "ZTF", good["candid"]),
                                                  ("sub", "ZTF", good["candid"])]
    for *_, data in rows:
        assert check_png(bytes(data)) == (189, 189)
    # the broken alert keeps the one cutout that could be drawn; the old alert's JPEG stamps none
    assert count(engine, "SELECT count(*) FROM thumbnails WHERE obj_id=:o", o=broken["objectId"]) == 1
    assert count(engine, "SELECT count(*) FROM thumbnails WHERE obj_id=:o AND type='sub'", o=broken["objectId"]) == 1
    # (an old-schema alert has no objectId: its object is named after the alert)
    assert count(engine, "SELECT count(*) FROM objs WHERE id=:o", o=f"ZTF-{old['candid']}") == 1
    assert count(engine, "SELECT count(*) FROM thumbnails WHERE obj_id=:o", o=f"ZTF-{old['candid']}") == 0

    # through the API, as SkyPortal lists them on the source, and the images themselves
    src = owner.get(f"/api/sources/{obj}", params={"includeThumbnails": "true"}).json()["data"]
    assert sorted(t["type"] for t in src["thumbnails"]) == ["new", "ref", "sub"]
    for t in src["thumbnails"]:
        r = owner.get(t["public_url"])
        assert r.status_code == 200 and r.headers["Content-Type"] == "image/png"
        check_png(r.content)

    # the ML scores: one annotation per filter passed, origin "<group>:<filter>", for the filter's group
    group_name = owner.get(f"/api/groups/{gid}").json()["data"]["name"]
    anns = owner.get(f"/api/sources/{obj}/annotations").json()["data"]
    assert len(anns) == 1
    ann = anns[0]
    assert ann["origin"] == f"{group_name}:f" and ann["author_id"] is None
    assert [g["id"] for g in ann["groups"]] == [gid]
    cand = packet["candidate"]
    # the first alert's scores (the later one does not replace them: Kowalski's update_annotations is off)
    assert ann["data"] == {k: cand[k] for k in ("rb", "drb", "sgscore1", "classtar") if cand.get(k) is not None}
    assert ann["data"]["rb"] == cand["rb"]
    # someone outside the group sees neither
    stranger = make_user()
    assert stranger.get(f"/api/sources/{obj}/annotations").json()["data"] == []
    # a base64 round trip of a stored thumbnail is a valid upload too
    r = owner.post("/api/thumbnail", json={"obj_id": obj, "ttype": "new",
                                           "data": base64.b64encode(bytes(rows[0][3])).decode()})
    assert r.status_code == 200, r.text
