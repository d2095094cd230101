"""Publishing alert files to a stream's topic (``skybroker replay``): demos, tests, benchmarks.

Files are read in the stream's format: a ZTF Avro container (one message per alert, writer schema
embedded), an Avro container of LSST alerts (each re-encoded in Confluent wire format with the
schema id of its writer schema, e.g. ``lsst.v11_1.alert`` → 1101) or JSON (an object or a list).
With ``derive``, copies get new ids and random sky positions, keeping their real size and history.
"""

from __future__ import annotations

import io
import json
import math
import random
import re
import string
import struct
from pathlib import Path
from typing import Iterator

import fastavro
import numpy as np

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


class _Container:
    """An Avro container file of one record, ZTF's message format, made fast: the header (magic, schema,
    sync marker) is written once per schema, then each message is that header, one block (count 1, the
    record's size) and the sync marker. The same bytes fastavro.writer writes, without re-serialising the
    schema for every message."""

    def __init__(self, schema):
        self.schema = schema
        self.parsed = fastavro.parse_schema(schema)
        buf = io.BytesIO()
        fastavro.writer(buf, self.parsed, [])
        self.header = buf.getvalue()
        self.sync = self.header[-16:]

    def encode(self, packet: dict) -> bytes:
        body = io.BytesIO()
        fastavro.schemaless_writer(body, self.parsed, packet)
        data = body.getvalue()
        return b"".join((self.header, _long(1), _long(len(data)), data, self.sync))


def _long(n: int) -> bytes:
    """Avro's long: zig-zag, then a base-128 varint."""
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while z & ~0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


_CONTAINERS: dict[int, _Container] = {}


def encode(packet: dict, schema, fmt: str) -> bytes:
    if fmt == "json":
        return json.dumps(packet).encode()
    if fmt == "ztf_avro":
        container = _CONTAINERS.get(id(schema))
        if container is None or container.schema is not schema:  # (an id can be reused by a new schema)
            container = _CONTAINERS[id(schema)] = _Container(schema)
        return container.encode(packet)
    if fmt == "lsst_avro":
        return encode_lsst(packet, schema)
    raise ValueError(f"unknown format {fmt!r}")


def _ztf_name(rng: random.Random) -> str:
    return "ZTF" + str(rng.randint(18, 26)) + "".join(rng.choices(string.ascii_lowercase, k=7))


def derive(packet: dict, n: int, rng: random.Random, *, ra: float | None = None,
           dec: float | None = None) -> dict:
    """A copy with new ids and a (random, or given) position; history moves with it. The copy's own dicts
    (candidate, cutouts, diaSource, history entries) are copies; deeper values (the cutouts' bytes) are
    shared with ``packet``, which is never modified."""
    p = {k: dict(v) if isinstance(v, dict) else v for k, v in packet.items()}  # candidate, cutouts, diaSource...
    for key in ("prv_candidates", "prvDiaSources"):
        if isinstance(p.get(key), list):
            p[key] = [dict(x) if isinstance(x, dict) else x for x in p[key]]
    if ra is None:
        ra = rng.uniform(0.0, 360.0)
    if dec is None:
        dec = math.degrees(math.asin(rng.uniform(-1.0, 1.0)))  # uniform on the sphere
    # ids of 10^17..2·10^17, as real ZTF/LSST ids are large: always nine bytes as Avro longs, so a derived copy
    # can be written over the bytes of another (_Patcher)
    base = 10**17 + rng.randrange(10**14) * 1000 + n
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
                if prv.get("ra") is not None:  # (a detection at the alert's own position stays exactly there)
                    same = prv["ra"] == packet["candidate"]["ra"] and prv["dec"] == packet["candidate"]["dec"]
                    prv["ra"] = ra if same else (prv["ra"] + dra) % 360.0
                    prv["dec"] = dec if same else max(-90.0, min(90.0, prv["dec"] + ddec))
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


def _derived_fields(p: dict) -> list:
    """The values :func:`derive` sets, in a fixed order (None where a packet has no such value)."""
    out = []
    if "candidate" in p:
        c = p["candidate"]
        out += [p.get("objectId"), p.get("candid"), c.get("candid"), c.get("ra"), c.get("dec")]
        for prv in p.get("prv_candidates") or []:
            out += [prv.get("candid"), prv.get("ra"), prv.get("dec")] if prv.get("candid") is not None else []
    else:
        src, obj = p["diaSource"], p.get("diaObject") if isinstance(p.get("diaObject"), dict) else {}
        out += [p.get("diaSourceId"), p.get("alertId"), src.get("diaSourceId"), src.get("ra"),
                src.get("dec", src.get("decl")), src.get("diaObjectId"), obj.get("diaObjectId"), obj.get("ra"),
                obj.get("dec", obj.get("decl"))]
        for prv in p.get("prvDiaSources") or []:
            out += [prv.get("diaSourceId"), prv.get("ra"), prv.get("dec", prv.get("decl"))]
    return out


def _avro(value) -> bytes | None:
    """A value as Avro binary encodes it (str, int as long, float as double); None for anything else."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        raw = value.encode()
        return _long(len(raw)) + raw
    if isinstance(value, int):
        return _long(value)
    if isinstance(value, float):
        return struct.pack("<d", value)
    return None


class _Patcher:
    """Derived copies of one alert made by patching its encoded bytes, not by encoding it again (what makes
    ``replay --derive`` publish tens of thousands of alerts per second).

    The first derived copy is encoded normally; every value :func:`derive` changed is then found in those
    bytes (a value's encoding must occur exactly as often as the fields that hold it, or there is no fast
    path for this alert). A later copy is those bytes with its own values written in place, encoded by numpy
    all at once (doubles as they are; longs, always nine bytes here, as zig-zag varints), provided each new
    encoding has the old one's length and fields that shared a value still do; otherwise it is encoded
    normally."""

    def __init__(self, packet: dict, encoded: bytes):
        self.template = bytearray(encoded)
        self.ok = False
        values = _derived_fields(packet)
        by_enc: dict[bytes, list[int]] = {}
        for i, v in enumerate(values):
            if v is not None:
                e = _avro(v)
                if e is None:
                    return
                by_enc.setdefault(e, []).append(i)
        groups = []
        for e, fields in by_enc.items():
            offsets, start = [], 0
            while (at := encoded.find(e, start)) >= 0:
                offsets.append(at)
                start = at + 1
            if len(offsets) != len(fields):
                return
            kind = type(values[fields[0]])
            if kind is int and len(e) != 9:
                return
            groups.append((kind, fields, offsets, len(e)))
        self.shape = [v is None for v in values]
        self.shared = [g[1] for g in groups if len(g[1]) > 1]
        self.parts = {}
        for kind in (float, int, str):
            sel = [g for g in groups if g[0] is kind]
            self.parts[kind] = ([g[1][0] for g in sel], [g[2] for g in sel], [g[3] for g in sel])
        self.ok = True

    def patch(self, packet: dict) -> bytes | None:
        if not self.ok:
            return None
        values = _derived_fields(packet)
        if [v is None for v in values] != self.shape:
            return None
        for fields in self.shared:
            if any(values[i] != values[fields[0]] for i in fields[1:]):
                return None
        out = bytearray(self.template)
        firsts, offsets, _ = self.parts[float]
        if firsts:
            enc = np.asarray([values[i] for i in firsts], dtype="<f8").tobytes()
            for k, offs in enumerate(offsets):
                for at in offs:
                    out[at:at + 8] = enc[8 * k:8 * k + 8]
        firsts, offsets, _ = self.parts[int]
        if firsts:
            v = np.asarray([values[i] for i in firsts], dtype=np.int64)
            z = ((v << 1) ^ (v >> 63)).view(np.uint64)
            if np.any(z >> np.uint64(56) == 0) or np.any(z >> np.uint64(63) != 0):
                return None  # not nine bytes long
            shifts = np.arange(9, dtype=np.uint64) * np.uint64(7)
            digits = ((z[:, None] >> shifts) & np.uint64(0x7F)).astype(np.uint8)
            digits[:, :8] |= 0x80
            enc = digits.tobytes()
            for k, offs in enumerate(offsets):
                for at in offs:
                    out[at:at + 9] = enc[9 * k:9 * k + 9]
        firsts, offsets, lengths = self.parts[str]
        for i, offs, length in zip(firsts, offsets, lengths):
            enc = _avro(values[i])
            if len(enc) != length:
                return None
            for at in offs:
                out[at:at + length] = enc
        return bytes(out)


def messages(files: list[str], fmt: str, *, count: int | None = None, derive_new: bool = False,
             seed: int = 0) -> Iterator[bytes]:
    """The encoded messages to publish: each file's alerts, cycled to ``count`` if given (Avro copies made
    with ``derive_new`` are patched bytes of the first copy of the same alert: see :class:`_Patcher`)."""
    yield from packet_messages([pair for f in files for pair in read_packets(f, fmt)], fmt, count=count,
                               derive_new=derive_new, seed=seed)


def packet_messages(packets: list[tuple[dict, dict | int | None]], fmt: str, *, count: int | None = None,
                    derive_new: bool = False, seed: int = 0) -> Iterator[bytes]:
    """:func:`messages` of (packet, schema) pairs (as :func:`read_packets` gives) rather than files."""
    if not packets:
        return
    rng = random.Random(seed)
    total = count if count is not None else len(packets)
    patchers: dict[int, _Patcher] = {}
    for n in range(total):
        packet, schema = packets[n % len(packets)]
        if not derive_new:
            yield encode(packet, schema, fmt)
            continue
        copy_ = derive(packet, n, rng)
        patcher = patchers.get(n % len(packets))
        fast = patcher.patch(copy_) if patcher is not None and fmt != "json" else None
        if fast is None:
            fast = encode(copy_, schema, fmt)
            if patcher is None and fmt != "json":
                patchers[n % len(packets)] = _Patcher(copy_, fast)
        yield fast


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
