"""``replay --derive`` makes copies by patching the bytes of the first copy of each alert: every message
decodes to exactly what :func:`derive` makes, for each format, and an alert whose values cannot be patched
in place is encoded normally."""

import io
import random

import fastavro
import pytest

from broker.ingest import replay
from broker.ingest.decoding import decode_packet

from .test_ingest import ZTF, ZTF_OLD, lsst_sample


@pytest.mark.parametrize("path, fmt", [(ZTF, "ztf_avro"), (ZTF_OLD, "ztf_avro"), ("lsst", "lsst_avro")])
def test_patched_copies_are_what_derive_makes(shared_dir, path, fmt):
    path = lsst_sample() if path == "lsst" else path
    fast = list(replay.messages([path], fmt, count=400, derive_new=True, seed=7))
    rng = random.Random(7)
    packets = replay.read_packets(path, fmt)
    for n, message in enumerate(fast):
        packet, _ = packets[n % len(packets)]
        assert decode_packet(message, fmt) == replay.derive(packet, n, rng)
    assert len(set(fast)) == len(fast)  # every copy its own ids and position


def test_the_fast_path_is_taken_and_refuses_what_it_cannot_patch(shared_dir):
    (packet, schema), = replay.read_packets(ZTF, "ztf_avro")[:1]
    rng = random.Random(1)
    first = replay.derive(packet, 0, rng)
    patcher = replay._Patcher(first, replay.encode(first, schema, "ztf_avro"))
    assert patcher.ok
    second = replay.derive(packet, 1, rng)
    patched = patcher.patch(second)
    assert patched is not None and decode_packet(patched, "ztf_avro") == second
    small = dict(second, candid=5)  # one byte as an Avro long, not nine: encoded normally instead
    assert patcher.patch(small) is None


def test_one_record_containers_are_what_fastavro_writes(shared_dir):
    (packet, schema), = replay.read_packets(ZTF, "ztf_avro")[:1]
    mine = replay.encode(packet, schema, "ztf_avro")
    theirs = io.BytesIO()
    fastavro.writer(theirs, schema, [packet])
    assert len(mine) == len(theirs.getvalue())
    assert list(fastavro.reader(io.BytesIO(mine))) == [packet]
