"""Poison messages: whatever one message holds, it lands in failed_alerts with its error and the
consumer goes on to ingest the messages after it (issue 8, item 1)."""

import copy
import json
import random
from datetime import datetime, timezone

import sqlalchemy as sa
from confluent_kafka import Producer

from .helpers import count, ingest_config, make_group_with_filter, make_stream, running_ingestor, wait_for

GOOD = {
    "objectId": "ZTF26poison", "candid": 1, "candidate": {
        "candid": 1, "ra": 150.0, "dec": 2.0, "jd": 2461000.5, "fid": 1, "magpsf": 18.5, "sigmapsf": 0.05,
        "isdiffpos": "t", "diffmaglim": 20.5},
    "prv_candidates": [{"candid": 0, "jd": 2460999.5, "fid": 1, "magpsf": 18.9, "sigmapsf": 0.06,
                        "isdiffpos": "t", "ra": 150.0, "dec": 2.0}],
}


def alert(i: int, **cand) -> bytes:
    a = copy.deepcopy(GOOD)
    a["objectId"] = f"ZTF26poison{i:04d}{random.randrange(10**6)}"
    a["candid"] = a["candidate"]["candid"] = 10**12 + i
    a["candidate"].update(cand)
    return json.dumps(a).encode()


def poison_json() -> dict[str, bytes]:
    """Messages that each killed the consumer once, by name."""
    prv_bad = json.loads(alert(1))
    prv_bad["prv_candidates"][0]["ra"] = "not a number"
    nul = json.loads(alert(2))
    nul["objectId"] = "ZTF\u0000nul"
    big = json.loads(alert(3))
    big["candid"] = big["candidate"]["candid"] = 2**70
    cls = json.loads(alert(4))
    cls["classifications"] = [{"classification": "SN\u0000Ia", "probability": 0.5}]
    return {
        "magpsf -1000": alert(5, magpsf=-1000),
        "magpsf 1e308": alert(6, magpsf=1e308),
        "nested": b'{"candidate": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        "prv ra string": json.dumps(prv_bad).encode(),
        "NUL objectId": json.dumps(nul).encode(),
        "candid beyond int64": json.dumps(big).encode(),
        "NUL class": json.dumps(cls).encode(),
        "NaN ra": alert(7).replace(b'"ra": 150.0', b'"ra": NaN', 1),
        "sigmapsf -1": alert(8, sigmapsf=-1.0),
    }


def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "message.max.bytes": 10_000_000})
    for v in values:
        p.produce(topic, v, partition=0)
    assert p.flush(30) == 0


def failed(engine, topic: str) -> dict[int, str]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text('SELECT "offset", error FROM failed_alerts WHERE topic=:t'), {"t": topic}).all()
    return {o: e for o, e in rows}


def test_every_poison_json_alert_fails_alone(admin, make_user, config, engine, session_factory, kafka_bootstrap,
                                             kafka_topic):
    owner = make_user()
    sid = make_stream(admin, kafka_topic, "json")
    _, fid = make_group_with_filter(owner, admin, sid)
    poison = poison_json()
    # good, poison, good, poison, ..., good: every poison message sits in a batch with good ones
    values, bad_offsets = [alert(100)], {}
    for i, (name, raw) in enumerate(poison.items()):
        bad_offsets[len(values)] = name
        values += [raw, alert(101 + i)]
    produce(kafka_bootstrap, kafka_topic, values)
    cfg = ingest_config(config, kafka_bootstrap)
    with running_ingestor(cfg, session_factory) as ing:
        wait_for(lambda: len(failed(engine, kafka_topic)) == len(poison), what="failed alerts")
        wait_for(lambda: count(engine, "SELECT count(*) FROM candidates WHERE filter_id=:f", f=fid)
                 == len(values) - len(poison), what="good alerts")
        assert not ing.stopping
        # the loop is alive: a later alert still goes in
        produce(kafka_bootstrap, kafka_topic, [alert(999)])
        wait_for(lambda: count(engine, "SELECT count(*) FROM candidates WHERE filter_id=:f", f=fid)
                 == len(values) - len(poison) + 1, what="the alert after the poison")
    errors = failed(engine, kafka_topic)
    assert set(errors) == set(bad_offsets)
    assert "magnitude" in errors[min(o for o, n in bad_offsets.items() if n == "magpsf -1000")]
    assert "nested" in errors[min(o for o, n in bad_offsets.items() if n == "nested")]
    assert "prv_candidates[0].ra" in errors[min(o for o, n in bad_offsets.items() if n == "prv ra string")]
    assert "objectId" in errors[min(o for o, n in bad_offsets.items() if n == "NUL objectId")]
    assert "candid" in errors[min(o for o, n in bad_offsets.items() if n == "candid beyond int64")]
    assert "candidate.ra" in errors[min(o for o, n in bad_offsets.items() if n == "NaN ra")]
    assert count(engine, "SELECT failed FROM ingest_counters WHERE stream_id=:s AND filter_id=0", s=sid) == len(poison)


def test_poison_gcn_notices_fail_alone(admin, config, engine, session_factory, kafka_bootstrap, kafka_topic):
    make_stream(admin, kafka_topic, "gcn")
    t = datetime.now(timezone.utc).replace(microsecond=0, tzinfo=None)

    def cone(i, **kw):
        body = {"instrument": "WXT", "id": [f"p{random.randrange(10**9)}"], "ra": 120.0, "dec": -5.0,
                "ra_dec_error": 0.1, "trigger_time": t.replace(second=i % 60).isoformat() + "Z", **kw}
        return json.dumps(body).encode()

    voevent = (b'<?xml version="1.0"?><voe:VOEvent xmlns:voe="http://www.ivoa.net/xml/VOEvent/v2.0" '
               b'ivorn="ivo://nasa.gsfc.gcn/SWIFT#BAT_GRB_Pos_1" role="observation"><What>'
               b'<Param name="TrigID" value="1"/></What><WhereWhen><ObsDataLocation><ObservationLocation>'
               b'<AstroCoords><Time><TimeInstant><ISOTime>2026-11-01T00:00:00</ISOTime></TimeInstant></Time>'
               b'<Position2D><Value2><C1>10</C1><C2>20</C2></Value2><Error2Radius>abc</Error2Radius></Position2D>'
               b'</AstroCoords></ObservationLocation></ObsDataLocation></WhereWhen></voe:VOEvent>')
    poison = [voevent, cone(1, ra_dec_error=1e-320), cone(2, ra="east"), cone(3, ra_dec_error=float("nan")),
              b"{" * 50_000, cone(4, trigger_time="yesterday")]
    values = [cone(10)]
    for i, p in enumerate(poison):
        values += [p, cone(11 + i)]
    before = count(engine, "SELECT count(*) FROM gcnnotices")
    produce(kafka_bootstrap, kafka_topic, values)
    cfg = ingest_config(config, kafka_bootstrap)
    with running_ingestor(cfg, session_factory):
        wait_for(lambda: len(failed(engine, kafka_topic)) == len(poison), what="failed notices")
        wait_for(lambda: count(engine, "SELECT count(*) FROM gcnnotices") == before + len(values) - len(poison),
                 what="good notices")
    errors = failed(engine, kafka_topic)
    assert set(errors) == {1, 3, 5, 7, 9, 11}
    assert "Error2Radius" in errors[1]
    assert "Invalid error: must be 1e-09 to 180 deg" in errors[3] and "Invalid ra: not a number" in errors[5]
    assert all(e.startswith("bad GCN notice") for e in errors.values())
