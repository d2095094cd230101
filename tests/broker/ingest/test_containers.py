"""One-record Avro containers read with their schema parsed once (broker/ingest/containers.py): the same
record as fastavro's own reader, for real ZTF alerts (both schemas), derived copies, deflate and Babamul
containers; anything else is left to the ordinary reader (None), which names the problem."""

import io
from pathlib import Path

import fastavro
import pytest

from broker.ingest import replay
from broker.ingest.containers import OneRecordReader
from broker.ingest.decoding import AlertError, decode_packet

from .test_ingest import ZTF, ZTF_OLD

BABAMUL = Path(__file__).resolve().parents[2] / "data" / "babamul" / "babamul_lsst_example.avro"


def ordinary(raw: bytes):
    reader = fastavro.reader(io.BytesIO(raw))
    (record,) = list(reader)
    return record, reader.writer_schema["name"]


def test_same_records_as_fastavro():
    reader = OneRecordReader()
    raws = [Path(ZTF).read_bytes(), Path(ZTF_OLD).read_bytes(), BABAMUL.read_bytes(),
            *replay.messages([ZTF], "ztf_avro", count=20, derive_new=True, seed=4)]
    for raw in raws:
        assert reader.read(raw) == ordinary(raw)
    cached = len(reader._cache)
    assert cached == 4  # one parsed schema per distinct header: the three files and the derived copies
    # a message of its own file (a new random sync marker, as producers write them): the same schema
    whole = Path(ZTF).read_bytes()
    sync = whole[-16:]
    other = whole.replace(sync, bytes(16 - i for i in range(16)))
    assert other != whole and reader.read(other) == ordinary(other) and len(reader._cache) == cached
    (packet, schema), = replay.read_packets(ZTF, "ztf_avro")
    buf = io.BytesIO()
    fastavro.writer(buf, schema, [packet], codec="deflate")
    assert reader.read(buf.getvalue()) == ordinary(buf.getvalue())


def test_anything_else_is_left_to_the_ordinary_reader():
    reader = OneRecordReader()
    (packet, schema), = replay.read_packets(ZTF, "ztf_avro")
    two = io.BytesIO()
    fastavro.writer(two, schema, [packet, packet])
    whole = Path(ZTF).read_bytes()
    # (b"Obj\x01\x02\x05": a metadata entry of length -3, which once sent the header parser back forever)
    for raw in (two.getvalue(), whole[:-20], whole[:200], whole + b"x", b"Obj\x01\xff\xff", b"Obj\x01\x02\x05",
                b"Obj\x01\x7f\x02a", b"not avro", b""):
        assert reader.read(raw) is None
    with pytest.raises(AlertError, match="exactly one alert, found 2"):
        decode_packet(two.getvalue(), "ztf_avro")
    with pytest.raises(AlertError, match="not a ZTF Avro container"):
        decode_packet(whole[:-20], "ztf_avro")
    with pytest.raises(AlertError, match="not a ZTF Avro container"):
        decode_packet(b"Obj\x01\x02\x05", "ztf_avro")
