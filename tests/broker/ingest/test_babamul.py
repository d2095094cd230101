"""Babamul (BOOM's public ZTF and LSST stream): decoded from the message BOOM's own writer made and from alerts
generated from BOOM's schemas (tests/data/babamul: made from boom-astro/boom's Rust types with its own
schema derive; BOOM publishes no .avsc), with its units (LSST nJy; ZTF µJy x 1e9) and band letters; then end
to end through Kafka, a bad alert landing in failed_alerts named by its field."""

import io
import json
import math
from pathlib import Path

import fastavro
import pytest
import sqlalchemy as sa

from broker.ingest.decoding import AlertError, decode
from broker.ingest.replay import publish

from .helpers import count, ingest_config, make_group_with_filter, make_stream, running_ingestor, wait_for
from .test_ingest import ZTF

DATA = Path(__file__).resolve().parents[2] / "data" / "babamul"


def filled(schema, names=None):
    """A value of every field of an Avro type (None for unions with null, the first symbol of an enum),
    so a record can be written with BOOM's schema, whose fields have no defaults."""
    names = {} if names is None else names
    if isinstance(schema, list):
        return None if "null" in schema else filled(schema[0], names)
    if isinstance(schema, str):
        if schema in names:
            return filled(names[schema], names)
        return {"double": 1.0, "float": 1.0, "int": 1, "long": 1, "boolean": False, "string": "x",
                "bytes": b""}[schema]
    kind = schema["type"]
    if kind == "record":
        names[schema["name"]] = schema
        return {f["name"]: filled(f["type"], names) for f in schema["fields"]}
    if kind == "enum":
        names[schema["name"]] = schema
        return schema["symbols"][0]
    if kind == "array":
        filled(schema["items"], names)  # (registers the named types inside)
        return []
    return filled(kind, names)


def message(schema: dict, record: dict) -> bytes:
    """What BOOM publishes: an Avro container of one record, its schema embedded, no codec."""
    buf = io.BytesIO()
    fastavro.writer(buf, fastavro.parse_schema(schema), [record])
    return buf.getvalue()


def ztf_alert(candid=2461234567015015012, mag=18.5, band="r", object_id="ZTF25aagbkaj"):
    schema = json.loads((DATA / "babamul_ztf.avsc").read_text())
    rec = filled(schema)
    ujy = 10 ** (-0.4 * (mag - 23.9))
    rec.update(candid=candid, objectId=object_id)
    rec["candidate"].update(jd=2461000.75, ra=120.5, dec=-12.25, band=band, fid={"g": 1, "r": 2, "i": 3}.get(band, 1),
                            candid=candid, magpsf=mag, sigmapsf=0.05, psfFlux=ujy * 1e9, psfFluxErr=ujy * 0.046 * 1e9,
                            diffmaglim=20.5, isdiffpos=True, drb=0.99, rb=0.8)
    rec["prv_candidates"] = [  # the light curve holds the alert's own detection too
        {"jd": 2461000.75, "psfFlux": ujy * 1e9, "psfFluxErr": ujy * 0.046 * 1e9, "band": band, "ra": 120.5,
         "dec": -12.25},
        {"jd": 2460998.7, "psfFlux": 50.0 * 1e9, "psfFluxErr": 5.0 * 1e9, "band": "g", "ra": 120.5000001,
         "dec": -12.25}]
    rec["prv_nondetections"] = [{"jd": 2460990.7, "psfFluxErr": 10 ** (-0.4 * (20.0 - 23.9)) / 5 * 1e9, "band": "r"}]
    rec["fp_hists"] = [{"jd": 2460995.7, "psfFlux": None, "psfFluxErr": 3e9, "band": "g"}]
    return schema, rec


def test_boom_written_lsst_message():
    a = decode((DATA / "babamul_lsst_example.avro").read_bytes(), "babamul_avro")
    assert (a.survey, a.object_id, a.alert_id) == ("LSST", "LSST170028003401056300", 170028003401056357)
    assert (a.mjd, a.band, a.ra, a.dec) == (61010.123456, "lsstr", 150.1, -30.2)
    assert (a.flux, a.fluxerr) == pytest.approx((5.0, 0.25))  # 5000 nJy = 5 µJy
    assert a.scores == {"reliability": pytest.approx(0.9)}
    prv = [p for p in a.detections if p.mjd < a.mjd]
    assert [(p.band, p.flux, p.fluxerr) for p in prv] == [("lsstg", pytest.approx(4.0), pytest.approx(0.3))]
    # Babamul's jd is UTC; LSST's own midpointMjdTai is TAI (37 s later): points from both paths agree
    assert prv[0].mjd == pytest.approx(2461000.6 - 2400000.5 + 37 / 86400, abs=1e-9)


def test_schema_generated_ztf_alert_units_bands_and_limits():
    a = decode(message(*ztf_alert()), "babamul_avro")
    assert (a.survey, a.object_id, a.alert_id, a.band) == ("ZTF", "ZTF25aagbkaj", 2461234567015015012, "ztfr")
    assert a.mjd == pytest.approx(61000.25)
    assert a.flux == pytest.approx(10 ** (-0.4 * (18.5 - 23.9)), rel=1e-6)  # µJy x 1e9 -> µJy (a float32)
    assert len(a.detections) == 2  # its own point once, and the earlier g detection
    other = a.detections[1]
    assert (other.band, other.flux, other.fluxerr) == ("ztfg", pytest.approx(50.0), pytest.approx(5.0))
    (lim,) = a.upper_limits
    assert lim.flux is None and lim.band == "ztfr" and lim.limiting_mag == pytest.approx(20.0, abs=1e-9)
    assert a.scores == {"drb": pytest.approx(0.99), "rb": pytest.approx(0.8)}
    assert a.extra["magpsf"] == pytest.approx(18.5)


@pytest.mark.parametrize("change,field", [
    (lambda r: r["candidate"].update(band="j"), "candidate.band"),
    (lambda r: r["prv_candidates"][1].update(band="y"), "prv_candidates[1].band"),
    (lambda r: r["candidate"].update(ra=400.0), "candidate"),
    (lambda r: r["prv_nondetections"][0].update(psfFluxErr=0.0), "prv_nondetections[0].psfFluxErr"),
    (lambda r: r["prv_candidates"][1].update(psfFlux=math.nan), "prv_candidates[1].psfFlux"),
])
def test_bad_alerts_name_their_field(change, field):
    schema, rec = ztf_alert()
    change(rec)
    with pytest.raises(AlertError, match=field.replace("[", r"\[").replace("]", r"\]")):
        decode(message(schema, rec), "babamul_avro")


def test_not_babamul(shared_dir):
    with pytest.raises(AlertError, match="not a Babamul Avro container"):
        decode(b"\x00\x00\x00\x04\x4dxx", "babamul_avro")
    raw = Path(ZTF).read_bytes()
    with pytest.raises(AlertError, match="not a Babamul alert"):
        decode(raw, "babamul_avro")


def test_babamul_stream_end_to_end(shared_dir, admin, make_user, config, engine, session_factory, kafka_bootstrap,
                                   kafka_topic):
    owner = make_user()
    sid = make_stream(admin, kafka_topic, "babamul_avro")
    _, fid = make_group_with_filter(owner, admin, sid, {"field": "scores.drb", "op": ">", "value": 0.5})
    _, every = make_group_with_filter(owner, admin, sid)
    schema, good = ztf_alert(object_id="ZTF25babamul")
    _, bad = ztf_alert(candid=2461234567015015099, band="j", object_id="ZTF25babamux")
    lsst = (DATA / "babamul_lsst_example.avro").read_bytes()
    publish(kafka_bootstrap, kafka_topic, [message(schema, good), message(schema, bad), lsst])
    cfg = ingest_config(config, kafka_bootstrap)
    with running_ingestor(cfg, session_factory):
        wait_for(lambda: count(engine, "SELECT count(*) FROM failed_alerts WHERE topic=:t", t=kafka_topic) == 1
                 and count(engine, "SELECT count(*) FROM candidates WHERE filter_id=:f", f=every) == 2,
                 what="two candidates and one failed alert")
    # the drb filter passes the ZTF alert only (the LSST one has no drb)
    assert count(engine, "SELECT count(*) FROM candidates WHERE filter_id=:f", f=fid) == 1
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT filter, flux, fluxerr, limiting_mag FROM photometry WHERE obj_id = :o "
                                    "ORDER BY mjd"), {"o": "ZTF25babamul"}).all()
        error = conn.execute(sa.text("SELECT error FROM failed_alerts WHERE topic=:t"), {"t": kafka_topic}).scalar()
    assert [r[0] for r in rows] == ["ztfr", "ztfg", "ztfr"]  # the limit, the g detection, the alert's point
    assert rows[0][1] is None and rows[0][3] == pytest.approx(20.0, abs=1e-9)
    assert rows[2][1] == pytest.approx(10 ** (-0.4 * (18.5 - 23.9)), rel=1e-6)
    assert "candidate.band" in error
    assert count(engine, "SELECT count(*) FROM photometry WHERE obj_id = 'LSST170028003401056300' "
                         "AND filter = 'lsstr' AND abs(flux - 5.0) < 1e-9") == 1
