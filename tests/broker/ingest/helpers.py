"""Helpers for ingestion tests: streams and filters through the API, an Ingestor in a thread."""

from __future__ import annotations

import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import replace

import sqlalchemy as sa

from broker.ingest.consumers import Ingestor


def ingest_config(config, bootstrap: str, create_topics: bool = False, **ingest):
    """The test's ingest settings: its own consumer group; no topic creation unless asked (the session's
    database keeps every earlier test's streams, whose topics those tests deleted)."""
    return replace(
        config,
        kafka=replace(config.kafka, bootstrap_servers=bootstrap, group_id=f"test-{uuid.uuid4().hex[:8]}",
                      create_topics=create_topics),
        ingest=replace(config.ingest, refresh_interval_s=0.5, batch_timeout_ms=100, stats_interval_s=1.0,
                       **ingest),
    )


@contextmanager
def running_ingestor(cfg, session_factory, **overrides):
    ing = Ingestor(cfg, session_factory, consumer_overrides=overrides or None)
    errors = []

    def target():
        try:
            ing.run()
        except BaseException as exc:  # surfaced to the test below
            errors.append(exc)

    t = threading.Thread(target=target, daemon=True)
    t.start()
    try:
        yield ing
    finally:
        ing.stop()
        t.join(30)
    if errors:
        raise errors[0]


def wait_for(predicate, timeout=60.0, interval=0.2, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last value {last!r}")


def count(engine, sql: str, **params) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def make_stream(admin, topic: str, fmt: str, **altdata) -> int:
    r = admin.post("/api/streams", json={"name": f"stream-{topic}",
                                        "altdata": {"topic": topic, "format": fmt, **altdata}})
    assert r.status_code == 200, r.text
    return r.json()["data"]["id"]


def make_group_with_filter(owner, admin, stream_id: int, criteria=None, autosave=False):
    """A group owned by ``owner`` with access to the stream, and one filter on it."""
    admin.post(f"/api/streams/{stream_id}/users", json={"user_id": owner.user_id})
    r = owner.post("/api/groups", json={"name": f"g-{uuid.uuid4().hex[:8]}"})
    assert r.status_code == 200, r.text
    gid = r.json()["data"]["id"]
    r = owner.post(f"/api/groups/{gid}/streams", json={"stream_id": stream_id})
    assert r.status_code == 200, r.text
    body = {"name": "f", "stream_id": stream_id, "group_id": gid, "autosave": autosave}
    if criteria is not None:
        body["criteria"] = criteria
    r = owner.post("/api/filters", json=body)
    assert r.status_code == 200, r.text
    return gid, r.json()["data"]["id"]


@contextmanager
def running_process(cfg, session_factory):
    """An :class:`IngestProcess` (every cluster its streams read) in a thread, as an ingest process runs it."""
    from broker.followup.vault import vault_from_config
    from broker.ingest.consumers import IngestProcess

    proc = IngestProcess(cfg, session_factory, vault_from_config(cfg))
    t = threading.Thread(target=proc.run, daemon=True)
    t.start()
    try:
        yield proc
    finally:
        proc.stop()
        t.join(60)
        assert not t.is_alive(), "the ingest process did not stop"
