"""Kafka consumers that feed :mod:`broker.ingest.pipeline`.

One consumer group for every stream's topic; ``--processes N`` (and more machines with the same
``kafka.group_id``) share the partitions. Per batch: consume up to ``ingest.batch_size`` messages or
``ingest.batch_timeout_ms`` → one database transaction → commit → *then* commit the Kafka offsets.
A database outage stops offset commits; the batch is retried with backoff until it commits (or the
process stops, and the batch is redelivered). Streams are re-read every ``ingest.refresh_interval_s``,
so new or changed streams and filters are picked up without a restart.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

import sqlalchemy as sa
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from sqlalchemy.exc import DBAPIError, IntegrityError

import models

from broker.runtime.config import Config
from broker.ingest.pipeline import (Message, StreamInfo, load_streams, mark_written, next_offsets, not_yet_written,
                                    process_batch, process_isolated)
from broker.runtime.db import first_line, is_outage
from broker.runtime.supervisor import ProcessSupervisor

log = logging.getLogger("skybroker.ingest")


def consumer_name(pid: int | None = None) -> str:
    """How a consumer process is known in ``ingest_status``: host:pid."""
    return f"{socket.gethostname()}:{os.getpid() if pid is None else pid}"


def consumer_config(cfg: Config, **overrides) -> dict:
    conf = {
        "bootstrap.servers": cfg.kafka.bootstrap_servers,
        "group.id": cfg.kafka.group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "max.poll.interval.ms": 900_000,
        # range: every consumer gets a share of every topic (sticky balances totals across topics,
        # which can leave one consumer a whole busy topic)
        "partition.assignment.strategy": "range",
        "topic.metadata.refresh.interval.ms": 5_000,
        "fetch.max.bytes": 64 * 1024 * 1024,
        "client.id": f"skybroker-ingest-{socket.gethostname()}-{os.getpid()}",
    }
    conf.update(overrides)
    return conf


@dataclass
class Stats:
    consumed: int = 0
    ingested: int = 0
    failed: int = 0
    batches: int = 0
    passed: dict = field(default_factory=lambda: defaultdict(int))
    window_start: float = field(default_factory=time.monotonic)
    window_consumed: int = 0


class Ingestor:
    """Consume every active stream's topic and write batches; ``stop()`` ends it promptly."""

    def __init__(self, cfg: Config, session_factory, *, consumer_overrides: dict | None = None,
                 on_commit=None):
        """``on_commit(messages, result)``, if given, runs after each batch's database commit."""
        self.cfg = cfg
        self.on_commit = on_commit
        self.session_factory = session_factory
        self.consumer = Consumer(consumer_config(cfg, **(consumer_overrides or {})))
        self.streams: dict[str, StreamInfo] = {}
        self.topics: list[str] = []
        self._stop = threading.Event()
        self.stats = Stats()
        self.name = consumer_name()
        self._next_refresh = 0.0
        self._next_report = time.monotonic() + cfg.ingest.stats_interval_s

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # -- streams ------------------------------------------------------------------------------
    def refresh_streams(self) -> None:
        with self.session_factory() as session:
            self.streams = load_streams(session)
        topics = sorted(self.streams)
        if topics != self.topics:
            if topics:
                self.consumer.subscribe(topics)
                log.info("%s subscribed to %s", self.name, topics)
            else:
                self.consumer.unsubscribe()
            self.topics = topics
        self._next_refresh = time.monotonic() + self.cfg.ingest.refresh_interval_s

    # -- main loop ----------------------------------------------------------------------------
    def run(self) -> None:
        try:
            while not self.stopping:
                if time.monotonic() >= self._next_refresh:
                    self._with_db_retry(self.refresh_streams)
                if not self.topics:
                    self._stop.wait(min(1.0, self.cfg.ingest.refresh_interval_s))
                    continue
                self.run_once()
                if time.monotonic() >= self._next_report:
                    self.report()
        finally:
            self.consumer.close()  # leaves the group at once, so partitions move promptly

    def run_once(self) -> int:
        """Consume and write one batch; return how many messages it held."""
        msgs = self.consumer.consume(num_messages=self.cfg.ingest.batch_size,
                                     timeout=self.cfg.ingest.batch_timeout_ms / 1000.0)
        batch: list[Message] = []
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                if err.fatal():
                    raise KafkaException(err)
                # e.g. a topic that does not exist yet: the consumer retries by itself
                log.warning("Kafka error on %s: %s", m.topic(), err)
                continue
            ts_type, ts = m.timestamp()
            batch.append(Message(m.topic(), m.partition(), m.offset(), m.value(), ts if ts_type else None))
        if not batch:
            return 0
        result = self._with_db_retry(self._write, batch)
        if result is None:  # stopping before the batch committed: not acknowledged, redelivered later
            return 0
        if self.on_commit is not None:
            self.on_commit(batch, result)
        self._commit_offsets(batch)
        st = self.stats
        st.batches += 1
        st.consumed += result.consumed
        st.window_consumed += result.consumed
        st.ingested += result.ingested
        st.failed += result.failed
        for fid, n in result.passed.items():
            st.passed[fid] += n
        return len(batch)

    def _write(self, batch: list[Message]):
        """The batch in one transaction, with the offsets it covers (what an earlier delivery already
        wrote is skipped); if it raises for any reason but an outage, the batch again one message per
        savepoint, so that only the messages that raise fail (into failed_alerts)."""
        try:
            try:
                return self._transaction(process_batch, batch)
            except IntegrityError as exc:
                # most often a filter or stream deleted while we held its batch: re-read streams, retry
                log.warning("batch hit a constraint (%s); re-reading streams and retrying", exc.orig)
                self.refresh_streams()
                return self._transaction(process_batch, batch)
        except Exception as exc:
            if is_outage(exc):
                raise
            log.warning("batch of %d failed (%s: %s); writing its messages one by one", len(batch),
                        type(exc).__name__, exc)
        return self._transaction(process_isolated, batch)

    def _transaction(self, process, batch: list[Message]):
        group = self.cfg.kafka.group_id
        with self.session_factory() as session, session.begin():
            todo = not_yet_written(session, group, batch)
            result = process(session, self.streams, todo, self.cfg.ingest.association_radius_arcsec,
                             self.cfg.ingest.crossmatch_recent_days)
            mark_written(session, group, batch)
            return result

    def _with_db_retry(self, fn, *args):
        """Run ``fn``; while the database is unavailable, wait (0.5 s doubling to 30 s) and retry."""
        delay = 0.5
        while True:
            try:
                return fn(*args)
            except Exception as exc:
                if not is_outage(exc):
                    raise
                log.warning("database unavailable (%s); retrying in %.1fs, offsets not committed",
                            first_line(exc), delay)
            if self._stop.wait(delay):
                return None
            delay = min(delay * 2, 30.0)

    def _commit_offsets(self, batch: list[Message]) -> None:
        offsets = [TopicPartition(t, p, o) for (t, p), o in next_offsets(batch).items()]
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            # e.g. partitions revoked in a rebalance: the rows are committed; the new owner
            # re-reads these messages and writes nothing twice.
            log.warning("offset commit failed (%s); redelivery is harmless", exc)

    # -- counters -----------------------------------------------------------------------------
    def lag(self) -> dict[str, int]:
        """Per assigned partition: messages after the committed offset (what a restart would read again
        or read for the first time). One broker round trip per report, not per batch."""
        out = {}
        try:
            assignment = self.consumer.assignment()
            committed = self.consumer.committed(assignment, timeout=5) if assignment else []
        except KafkaException as exc:
            log.debug("no committed offsets for the lag report: %s", exc)
            return out
        for tp in committed:
            try:  # cached: the high watermark every fetch response carries
                low, high = self.consumer.get_watermark_offsets(tp, cached=True)
            except KafkaException:
                continue
            high = max(high, 0)
            pos = tp.offset if tp.offset >= 0 else max(low, 0)
            out[f"{tp.topic}/{tp.partition}"] = max(0, high - pos)
        return out

    def report(self) -> None:
        st = self.stats
        now = time.monotonic()
        rate = st.window_consumed / max(now - st.window_start, 1e-9)
        lag = self.lag()
        log.info("ingest %s: consumed %d, ingested %d, failed %d, %.0f alerts/s, lag %s, passed %s",
                 self.name, st.consumed, st.ingested, st.failed, rate, sum(lag.values()), dict(st.passed))
        st.window_start, st.window_consumed = now, 0
        self._next_report = now + self.cfg.ingest.stats_interval_s
        from sqlalchemy.dialects.postgresql import insert

        row = dict(consumer=self.name, topics=self.topics, lag=lag, alerts_per_second=rate,
                   consumed=st.consumed, updated_at=models.utcnow())
        stmt = insert(models.IngestStatus).values(**row)
        stmt = stmt.on_conflict_do_update(index_elements=["consumer"], set_={k: stmt.excluded[k] for k in row})
        try:
            with self.session_factory() as session, session.begin():
                session.execute(stmt)
        except DBAPIError as exc:
            log.warning("could not record ingest status: %s", first_line(exc))


# -- processes ---------------------------------------------------------------------------------

def _child(cfg: Config, on_commit=None) -> None:
    """One ingest process: runs an Ingestor until SIGTERM (never an mp.Event: a child killed while
    holding its lock would hang the parent's set() for ever)."""
    import signal

    from broker.runtime import db

    logging.basicConfig(level=cfg.logging.level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s")
    engine = db.make_engine(cfg.database.url.get(), cfg)
    ing = Ingestor(cfg, db.make_session_factory(engine), on_commit=on_commit)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    signal.signal(signal.SIGTERM, lambda signum, frame: ing.stop())
    try:
        ing.run()
        forget_consumer(ing.session_factory, ing.name)
    finally:
        engine.dispose()


def forget_consumer(session_factory, name: str) -> None:
    """Drop a consumer's status row (it stopped, or died and was noticed)."""
    try:
        with session_factory() as session, session.begin():
            session.execute(sa.delete(models.IngestStatus).where(models.IngestStatus.consumer == name))
    except DBAPIError as exc:
        log.warning("could not remove the status of %s: %s", name, first_line(exc))


class IngestSupervisor(ProcessSupervisor):
    """``n`` ingest processes, kept alive (:class:`ProcessSupervisor`); when it gives up, ``skybroker
    ingest`` exits non-zero, for a supervisor of its own to see. A dead consumer's status row is removed."""

    label = "ingest"

    def __init__(self, cfg: Config, n: int, on_commit=None, *, max_quick_deaths: int = 6, target=None):
        """``target(cfg, on_commit)``: what each process runs (default: an Ingestor)."""
        super().__init__(target or _child, (cfg, on_commit), n, max_quick_deaths=max_quick_deaths)
        self.cfg = cfg
        self._engine = None  # for removing dead consumers' status rows, made when first needed

    def on_death(self, pid: int) -> None:
        if self.cfg.database.url is None:  # nothing to clean (a test target that never reached a database)
            return
        from broker.runtime import db

        if self._engine is None:
            self._engine = db.make_engine(self.cfg.database.url.get(), None)
        forget_consumer(db.make_session_factory(self._engine), consumer_name(pid))

    def stop(self, timeout: float = 30.0) -> None:
        super().stop(timeout)
        if self._engine is not None:
            self._engine.dispose()


def start_processes(cfg: Config, n: int, on_commit=None) -> IngestSupervisor:
    """Start ``n`` supervised ingest processes (``cfg.database.url`` must be set); ``.stop()`` ends them.

    ``on_commit``, a picklable module-level function, is passed to each process's Ingestor."""
    return IngestSupervisor(cfg, n, on_commit).start()


def ingest_stats(session, stale_after_s: float) -> dict:
    """Counters, the consumers that reported within ``stale_after_s`` and the failed-alert count."""
    cutoff = models.utcnow() - timedelta(seconds=stale_after_s)
    consumers = [c.to_dict() for c in session.execute(
        sa.select(models.IngestStatus).where(models.IngestStatus.updated_at >= cutoff)
        .order_by(models.IngestStatus.consumer)).scalars()]
    return {"counters": counters(session), "consumers": consumers,
            "failed_alerts": session.execute(sa.select(sa.func.count()).select_from(models.FailedAlert)).scalar_one()}


def counters(session) -> list[dict]:
    """Cumulative per-stream (filter_id 0) and per-filter counters."""
    rows = session.execute(sa.select(models.IngestCounter)).scalars().all()
    return [r.to_dict() for r in rows]
