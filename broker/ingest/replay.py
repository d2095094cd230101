"""Publishing alert files to a stream's topic (``skybroker replay``): demos, tests, benchmarks.

Files are read in the stream's format: a ZTF Avro container (one message per alert, writer schema
embedded), an Avro container of LSST alerts (each re-encoded in Confluent wire format with the
schema id of its writer schema, e.g. ``lsst.v11_1.alert`` → 1101) or JSON (an object or a list).
With ``derive``, copies get new ids and random sky positions, keeping their real size and history.
"""

from __future__ import annotations

import copy
import io
import json
import math
import random
import re
import string
from pathlib import Path
from typing import Iterator

import fastavro

from broker.ingest.decoding import encode_lsst

_LSST_NAME = re.compile(r"lsst\.v(\d+)_(\d+)\.alert")


def lsst_schema_id(schema_name: str) -> int:
    m = _LSST_NAME.fullmatch(schema_name)
    if not m:
        raise ValueError(f"not an LSST alert schema name: {schema_name!r}")
    return int(m.group(1)) * 100 + int(m.group(2))


def read_packets(path: str | Path, fmt: str) -> list[tuple[dict, dict | int | None]]:
    """(packet, schema) pairs from a file: schema is the ZTF writer schema or the LSST schema id."""
    raw = Path(path).read_bytes()
    if fmt == "json":
        data = json.loads(raw)
        return [(p, None) for p in (data if isinstance(data, list) else [data])]
    reader = fastavro.reader(io.BytesIO(raw))
    records = list(reader)
    if fmt == "ztf_avro":
        return [(r, reader.writer_schema) for r in records]
    if fmt == "lsst_avro":
        sid = lsst_schema_id(reader.writer_schema["name"])
        return [(r, sid) for r in records]
    raise ValueError(f"unknown format {fmt!r}")


def encode(packet: dict, schema, fmt: str) -> bytes:
    if fmt == "json":
        return json.dumps(packet).encode()
    if fmt == "ztf_avro":
        buf = io.BytesIO()
        fastavro.writer(buf, schema, [packet])
        return buf.getvalue()
    if fmt == "lsst_avro":
        return encode_lsst(packet, schema)
    raise ValueError(f"unknown format {fmt!r}")


def _ztf_name(rng: random.Random) -> str:
    return "ZTF" + str(rng.randint(18, 26)) + "".join(rng.choices(string.ascii_lowercase, k=7))


def derive(packet: dict, n: int, rng: random.Random, *, ra: float | None = None,
           dec: float | None = None) -> dict:
    """A copy with new ids and a (random, or given) position; history moves with it."""
    p = copy.deepcopy(packet)
    if ra is None:
        ra = rng.uniform(0.0, 360.0)
    if dec is None:
        dec = math.degrees(math.asin(rng.uniform(-1.0, 1.0)))  # uniform on the sphere
    base = 10**15 + rng.randrange(10**14) * 1000 + n
    if "candidate" in p:  # ZTF
        if "objectId" in p:
            p["objectId"] = _ztf_name(rng)
        p["candid"] = base
        p["candidate"]["candid"] = base
        dra, ddec = ra - p["candidate"]["ra"], dec - p["candidate"]["dec"]
        p["candidate"]["ra"], p["candidate"]["dec"] = ra, dec
        for k, prv in enumerate(p.get("prv_candidates") or []):
            if prv.get("candid") is not None:
                prv["candid"] = base - k - 1
                if prv.get("ra") is not None:
                    prv["ra"] = (prv["ra"] + dra) % 360.0
                    prv["dec"] = max(-90.0, min(90.0, prv["dec"] + ddec))
    elif "diaSource" in p:  # LSST
        obj_id = base
        src = p["diaSource"]
        if "diaSourceId" in p:
            p["diaSourceId"] = base
        if "alertId" in p:
            p["alertId"] = base
        src["diaSourceId"] = base
        src["ra"] = ra
        src["dec" if "dec" in src else "decl"] = dec
        if src.get("diaObjectId") is not None:
            src["diaObjectId"] = obj_id
        if isinstance(p.get("diaObject"), dict):
            p["diaObject"]["diaObjectId"] = obj_id
            p["diaObject"]["ra"] = ra
            p["diaObject"]["dec" if "dec" in p["diaObject"] else "decl"] = dec
        for k, prv in enumerate(p.get("prvDiaSources") or []):
            prv["diaSourceId"] = base - k - 1
            prv["ra"] = ra
            prv["dec" if "dec" in prv else "decl"] = dec
    else:
        raise ValueError("not a ZTF or LSST alert")
    return p


def messages(files: list[str], fmt: str, *, count: int | None = None, derive_new: bool = False,
             seed: int = 0) -> Iterator[bytes]:
    """The encoded messages to publish: each file's alerts, cycled to ``count`` if given."""
    packets = [pair for f in files for pair in read_packets(f, fmt)]
    if not packets:
        return
    rng = random.Random(seed)
    total = count if count is not None else len(packets)
    for n in range(total):
        packet, schema = packets[n % len(packets)]
        if derive_new:
            packet = derive(packet, n, rng)
        yield encode(packet, schema, fmt)


def publish(cluster: str | dict, topic: str, payloads, *, key_prefix: str = "") -> int:
    """Produce every payload to ``topic`` of ``cluster`` (bootstrap servers, or client properties with the
    cluster's security); wait for all deliveries; return how many."""
    from confluent_kafka import Producer

    errors = []
    conf = {"bootstrap.servers": cluster} if isinstance(cluster, str) else dict(cluster)
    producer = Producer({**conf, "linger.ms": 20, "compression.type": "lz4",
                         "message.max.bytes": 16 * 1024 * 1024, "enable.idempotence": True})

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)

    n = 0
    for payload in payloads:
        while True:
            try:
                producer.produce(topic, payload, key=f"{key_prefix}{n}".encode(), on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
        n += 1
    remaining = producer.flush(60)
    if remaining or errors:
        raise RuntimeError(f"{remaining} messages undelivered, {len(errors)} delivery errors: {errors[:3]}")
    return n
