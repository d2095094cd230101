"""Kafka consumers that feed :mod:`broker.ingest.pipeline`.

Each ingest process consumes every Kafka cluster its streams read (:mod:`broker.ingest.clusters`): one
:class:`Ingestor` per cluster, in a thread of its own, with its own consumer group, offsets, outage
handling and lag (:class:`IngestProcess`), so a cluster that is down or refuses our credentials never stalls
the others. ``--processes N`` (and more machines with the same groups) share the partitions. Per batch: consume up to ``ingest.batch_size`` messages or
``ingest.batch_timeout_ms`` → one database transaction → commit → *then* commit the Kafka offsets.
A database outage stops offset commits; the batch is retried with backoff until it commits (or the
process stops, and the batch is redelivered). Streams are re-read every ``ingest.refresh_interval_s``,
so new or changed streams and filters are picked up without a restart.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from confluent_kafka import OFFSET_END, Consumer, KafkaError, KafkaException, TopicPartition
from sqlalchemy.exc import DBAPIError, IntegrityError

import models

from broker.runtime.config import Config
from broker.ingest.clusters import (DEFAULT, ClusterSpec, TopicError, cluster_status, default_cluster, ensure_topics,
                                    load_clusters)
from broker.ingest.pipeline import (Message, StreamRoutes, is_pattern, load_streams, mark_written, next_offsets,
                                    not_yet_written, process_batch, process_isolated)
from broker.runtime.db import first_line, is_outage
from broker.runtime.supervisor import ProcessSupervisor

log = logging.getLogger("skybroker.ingest")


def consumer_name(pid: int | None = None) -> str:
    """How a consumer process is known in ``ingest_status``: host:pid."""
    return f"{socket.gethostname()}:{os.getpid() if pid is None else pid}"


def consumer_config(cfg: Config, cluster: ClusterSpec | None = None, **overrides) -> dict:
    """librdkafka properties of an ingest consumer of ``cluster`` (default: the configuration's)."""
    cluster = cluster or default_cluster(cfg)
    conf = {
        **cluster.client_config(),
        "group.id": cluster.consumer_group(cfg.kafka.group_id),
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
        # librdkafka's log lines into ours, not stderr; its errors come through error_cb (once each), so
        # only its critical lines are logged
        "logger": logging.getLogger("skybroker.kafka"),
        "log_level": 2,
    }
    conf.update(overrides)
    return conf


_AFTER = re.compile(r" \(after \d+ms in state \w+(, \d+ identical error\(s\) suppressed)?\)")


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
    """Consume every active stream's topic on one Kafka cluster and write batches; ``stop()`` ends it
    promptly. The cluster's errors (unreachable, credentials refused, a topic missing or not allowed) are
    kept, reported in ``ingest_status`` at once, and cleared when the cluster answers again."""

    def __init__(self, cfg: Config, session_factory, *, cluster: ClusterSpec | None = None,
                 consumer_overrides: dict | None = None, on_commit=None):
        """``on_commit(messages, result)``, if given, runs after each batch's database commit."""
        self.cfg = cfg
        self.cluster = cluster or default_cluster(cfg)
        self.group_key = self.cluster.offsets_key(cfg.kafka.group_id)  # this cluster's ingest_offsets rows
        self.on_commit = on_commit
        self.session_factory = session_factory
        self.error: str | None = None
        self.error_at: datetime | None = None
        self.topic_errors: dict[str, str] = {}
        self._report_now = False
        self.consumer = Consumer(consumer_config(cfg, self.cluster, error_cb=self._on_error,
                                                 on_commit=self._offsets_committed, **(consumer_overrides or {})))
        self.streams: StreamRoutes = StreamRoutes({}, [])
        self.topics: list[str] = []
        self._uncreated = 0.0  # when a failed creation of missing topics is tried again (0: none failed)
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

    # -- the cluster's errors -------------------------------------------------------------------
    def _on_error(self, err: KafkaError) -> None:
        """librdkafka's error callback (runs inside consume(), in this thread). "All brokers are down" only
        sums up the error before it (refused credentials, a refused connection), which is kept."""
        if err.code() == KafkaError._ALL_BROKERS_DOWN and self.error is not None:
            return
        text = _AFTER.sub("", err.str())
        if text != self.error:
            log.warning("Kafka cluster '%s': %s", self.cluster.name, text)
            self._report_now = True
        self.error, self.error_at = text, models.utcnow()

    def _answered(self) -> None:
        """The cluster answered (messages, an assignment, metadata): its error, if any, is over."""
        if self.error is not None:
            log.info("Kafka cluster '%s' answers again", self.cluster.name)
            self.error = self.error_at = None
            self._report_now = True

    def _topic_error(self, topic: str, text: str) -> None:
        if self.topic_errors.get(topic) != text:
            log.warning("Kafka cluster '%s', topic %s: %s", self.cluster.name, topic, text)
            self.topic_errors[topic] = text
            self._report_now = True

    # -- streams ------------------------------------------------------------------------------
    def refresh_streams(self) -> None:
        with self.session_factory() as session:
            self.streams = load_streams(session, self.cluster.name)
        topics = self.streams.subscription
        if topics != self.topics or 0 < self._uncreated <= time.monotonic():
            self._create_topics(topics)
        if topics != self.topics:
            if topics:
                self.consumer.subscribe(topics, on_assign=self._on_assign)
                log.info("%s subscribed to %s on cluster '%s'", self.name, topics, self.cluster.name)
            else:
                self.consumer.unsubscribe()
            self.topics = topics
            self.topic_errors = {t: e for t, e in self.topic_errors.items() if self.streams.get(t) is not None}
        self._next_refresh = time.monotonic() + self.cfg.ingest.refresh_interval_s

    def _create_topics(self, topics: list[str]) -> None:
        """On the default cluster (ours; other clusters' topics are their operators'), with
        ``kafka.create_topics``, the streams' topic names that do not exist yet are created with their
        partitions (``altdata.partitions``, else ``kafka.topic_partitions``), so that processes and machines of
        the group share them: a topic a consumer's subscription made would have the broker's default, often
        one partition. Patterns are left alone. A failure is the topics' error, shown in the status, and is
        tried again a minute later; the subscription goes on."""
        self._uncreated = 0.0
        if self.cluster.name != DEFAULT or not self.cfg.kafka.create_topics:
            return
        wanted = {t: self.streams[t].partitions or self.cfg.kafka.topic_partitions
                  for t in topics if not is_pattern(t)}
        if not wanted:
            return
        try:
            created = ensure_topics(self.cluster, wanted)
        except TopicError as exc:
            self._uncreated = time.monotonic() + 60.0
            created = exc.created
            for topic in wanted if exc.failed is None else exc.failed:
                self._topic_error(topic, str(exc))
        for topic in created:
            log.info("%s created topic %s with %d partition(s)", self.name, topic, wanted[topic])

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Partitions that this consumer group has never committed start where their stream's ``start``
        says (the consumer's own default is the earliest offset)."""
        self._answered()
        for tp in partitions:
            self.topic_errors.pop(tp.topic, None)
        todo = [tp for tp in partitions if getattr(self.streams.get(tp.topic), "start", "earliest") != "earliest"]
        if todo:
            try:
                fresh = [tp for tp in consumer.committed(todo, timeout=10) if tp.offset < 0]
            except KafkaException as exc:  # rather from the committed offset than a guess: plain assignment
                log.warning("no committed offsets for %s (%s); assigning as they are", todo, exc)
                fresh = []
            by_key = {(tp.topic, tp.partition): tp for tp in partitions}
            at_times = []
            for tp in fresh:
                start = self.streams[tp.topic].start
                if start == "latest":  # the end now, as a number: what arrives from here on is read
                    try:
                        end = consumer.get_watermark_offsets(tp, timeout=10)[1]
                    except KafkaException as exc:
                        log.warning("no end offset for %s (%s); reading from the end when it is known", tp, exc)
                        end = OFFSET_END
                    by_key[(tp.topic, tp.partition)].offset = end
                else:
                    ms = int((start - datetime(1970, 1, 1)).total_seconds() * 1000)
                    at_times.append(TopicPartition(tp.topic, tp.partition, ms))
            if at_times:
                try:
                    for tp in consumer.offsets_for_times(at_times, timeout=10):
                        by_key[(tp.topic, tp.partition)].offset = tp.offset if tp.offset >= 0 else OFFSET_END
                except KafkaException as exc:
                    log.warning("cannot find offsets by time for %s (%s); reading from the earliest", at_times, exc)
        consumer.assign(partitions)

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
                if self._report_now or time.monotonic() >= self._next_report:
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
                # e.g. a topic that does not exist yet, or one we may not read: the consumer retries by itself
                if m.topic():
                    self._topic_error(m.topic(), err.str())
                else:
                    self._on_error(err)
                continue
            ts_type, ts = m.timestamp()
            batch.append(Message(m.topic(), m.partition(), m.offset(), m.value(), ts if ts_type else None,
                                 self.cluster.name))
        if not batch:
            return 0
        self._answered()
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
        group = self.group_key
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
        """Commit the batch's offsets, without waiting: a cluster that goes down right now must not hold this
        loop (a synchronous commit waits for its coordinator for as long as it takes). A commit that fails
        (the cluster went down, the partitions moved in a rebalance) only means redelivery, and the rows
        already hold these offsets (``ingest_offsets``), so nothing is written twice."""
        offsets = [TopicPartition(t, p, o) for (t, p), o in next_offsets(batch).items()]
        try:
            self.consumer.commit(offsets=offsets, asynchronous=True)
        except KafkaException as exc:
            log.warning("offset commit failed (%s); redelivery is harmless", exc)

    def _offsets_committed(self, err, partitions) -> None:
        """librdkafka's commit callback (runs inside consume(), in this thread)."""
        if err is not None and err.code() != KafkaError._NO_OFFSET:
            log.warning("offset commit on cluster '%s' failed (%s); redelivery is harmless", self.cluster.name,
                        err.str() if hasattr(err, "str") else err)

    # -- counters -----------------------------------------------------------------------------
    def lag(self) -> dict[str, int]:
        """Per assigned partition: messages after the committed offset (what a restart would read again
        or read for the first time). One broker round trip per report, not per batch."""
        out = {}
        try:
            assignment = self.consumer.assignment()
            committed = self.consumer.committed(assignment, timeout=3) if assignment else []
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
        if self.error is not None:  # still failing? one metadata round trip says
            try:
                self.consumer.list_topics(timeout=2)
            except KafkaException:
                pass
            else:
                self._answered()
        lag = self.lag()
        log.info("ingest %s, cluster '%s': consumed %d, ingested %d, failed %d, %.0f alerts/s, lag %s, passed %s",
                 self.name, self.cluster.name, st.consumed, st.ingested, st.failed, rate, sum(lag.values()),
                 dict(st.passed))
        st.window_start, st.window_consumed = now, 0
        self._next_report = now + self.cfg.ingest.stats_interval_s
        self._report_now = False
        record_status(self.session_factory, self.name, self.cluster.name, topics=self.topics, lag=lag,
                      alerts_per_second=rate, consumed=st.consumed, error=self.error, error_at=self.error_at,
                      topic_errors=dict(self.topic_errors))


def record_status(session_factory, consumer: str, cluster: str, **values) -> None:
    """Upsert one consumer's status row for one cluster (a database error is logged, not raised)."""
    from sqlalchemy.dialects.postgresql import insert

    row = dict(consumer=consumer, cluster=cluster, updated_at=models.utcnow(), **values)
    stmt = insert(models.IngestStatus).values(**row)
    stmt = stmt.on_conflict_do_update(index_elements=["consumer", "cluster"],
                                      set_={k: stmt.excluded[k] for k in row})
    try:
        with session_factory() as session, session.begin():
            session.execute(stmt)
    except DBAPIError as exc:
        log.warning("could not record ingest status: %s", first_line(exc))


# -- processes ---------------------------------------------------------------------------------

class _ClusterThread:
    """One cluster's :class:`Ingestor` in a thread of its own; ``failed`` holds why it died, if it did."""

    def __init__(self, spec: ClusterSpec, make_ingestor):
        self.spec, self.fingerprint = spec, spec.fingerprint()
        self.ingestor: Ingestor | None = None
        self.failed: str | None = None
        self.thread = threading.Thread(target=self._run, args=(make_ingestor,), daemon=True,
                                       name=f"ingest-{spec.name}")
        self.thread.start()

    def _run(self, make_ingestor) -> None:
        try:
            self.ingestor = make_ingestor(self.spec)
            self.ingestor.run()
        except Exception as exc:  # noqa: BLE001 - any one cluster's failure is recorded; the others go on
            log.exception("the consumer of Kafka cluster '%s' stopped", self.spec.name)
            self.failed = f"consumer stopped: {type(exc).__name__}: {exc}"

    def stop(self) -> None:
        if self.ingestor is not None:
            self.ingestor.stop()

    def join(self, timeout: float = 30.0) -> None:
        self.thread.join(timeout)


class IngestProcess:
    """What one ingest process consumes: every Kafka cluster some stream reads, each with its own
    :class:`Ingestor` thread (own consumer group, commits, outage handling, lag). Clusters and streams are
    re-read every ``ingest.refresh_interval_s``: a new cluster gets a consumer, a changed one (address,
    credentials) is remade, one no stream reads any more is stopped and its status row removed. A cluster's
    consumer that dies is restarted after a backoff (1 s doubling to 60 s) and its error shown in
    ``ingest_status``; a cluster whose credentials cannot be decrypted, or that a stream names but that
    does not exist, is reported there too. The other clusters go on regardless."""

    STOP_TIMEOUT_S = 15.0  # for all the cluster threads together, at shutdown

    def __init__(self, cfg: Config, session_factory, vault, *, on_commit=None):
        self.cfg, self.session_factory, self.vault, self.on_commit = cfg, session_factory, vault, on_commit
        self.name = consumer_name()
        self.threads: dict[str, _ClusterThread] = {}
        self._backoff: dict[str, tuple[float, float]] = {}  # cluster -> (retry at, next delay)
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()
        for t in self.threads.values():
            t.stop()

    def _make(self, spec: ClusterSpec) -> Ingestor:
        return Ingestor(self.cfg, self.session_factory, cluster=spec, on_commit=self.on_commit)

    def run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self.refresh()
                except Exception as exc:  # noqa: BLE001 - the next round tries again; a bug is logged whole
                    if is_outage(exc):
                        log.warning("could not re-read Kafka clusters (%s); trying again", first_line(exc))
                    else:
                        log.exception("re-reading Kafka clusters failed; trying again")
                self._stop.wait(self.cfg.ingest.refresh_interval_s)
        finally:
            for t in self.threads.values():
                t.stop()
            # one deadline for all: a consumer stuck in librdkafka (a broker whose name does not resolve, a
            # long metadata call) must not hold the shutdown; its daemon thread ends with the process
            deadline = time.monotonic() + self.STOP_TIMEOUT_S
            for t in self.threads.values():
                t.join(max(0.0, deadline - time.monotonic()))
            forget_consumer(self.session_factory, self.name)

    def refresh(self) -> None:
        with self.session_factory() as session:
            specs, unreadable = load_clusters(session, self.cfg, self.vault)
            used = {(alt.get("cluster") or DEFAULT) for alt in session.execute(
                sa.select(models.Stream.altdata).where(models.Stream.altdata["topic"].isnot(None),
                                                       models.Stream.altdata["format"].isnot(None))).scalars()}
        now = time.monotonic()
        for name in sorted(used):
            t = self.threads.get(name)
            spec = specs.get(name)
            problem = unreadable.get(name) or (None if spec else "streams name this cluster, which does not exist")
            if t is not None and (problem or t.fingerprint != spec.fingerprint()):
                log.info("Kafka cluster '%s' changed; remaking its consumer", name)
                self._retire(name)
                t = None
            if problem:
                record_status(self.session_factory, self.name, name, error=problem, error_at=models.utcnow())
                continue
            if t is not None and not t.thread.is_alive():
                self._retire(name)
                delay = self._backoff.get(name, (0.0, 1.0))[1]
                self._backoff[name] = (now + delay, min(delay * 2, 60.0))
                log.warning("restarting the consumer of Kafka cluster '%s' in %.0f s", name, delay)
                record_status(self.session_factory, self.name, name, error=t.failed or "consumer stopped",
                              error_at=models.utcnow())
                t = None
            if t is None and now >= self._backoff.get(name, (0.0, 1.0))[0]:
                self.threads[name] = _ClusterThread(spec, self._make)
            elif t is not None and t.ingestor is not None and t.ingestor.stats.batches:
                self._backoff.pop(name, None)  # it runs and writes: the next death starts the backoff again
        for name in [n for n in self.threads if n not in used]:
            self._retire(name)
            forget_consumer(self.session_factory, self.name, name)
        for name in [n for n in self._backoff if n not in used]:
            del self._backoff[name]

    def _retire(self, name: str) -> None:
        t = self.threads.pop(name)
        t.stop()
        t.join(self.STOP_TIMEOUT_S)


def _child(cfg: Config, on_commit=None) -> None:
    """One ingest process: runs an :class:`IngestProcess` until SIGTERM (never an mp.Event: a child killed
    while holding its lock would hang the parent's set() for ever)."""
    import signal

    from broker.followup.vault import vault_from_config
    from broker.runtime import db

    logging.basicConfig(level=cfg.logging.level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s")
    engine = db.make_engine(cfg.database.url.get(), cfg)
    proc = IngestProcess(cfg, db.make_session_factory(engine), vault_from_config(cfg), on_commit=on_commit)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    signal.signal(signal.SIGTERM, lambda signum, frame: proc.stop())
    try:
        proc.run()
    finally:
        engine.dispose()


def forget_consumer(session_factory, name: str, cluster: str | None = None) -> None:
    """Drop a consumer's status rows (it stopped, or died and was noticed), or its row for one cluster."""
    stmt = sa.delete(models.IngestStatus).where(models.IngestStatus.consumer == name)
    if cluster is not None:
        stmt = stmt.where(models.IngestStatus.cluster == cluster)
    try:
        with session_factory() as session, session.begin():
            session.execute(stmt)
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
    """Counters, the consumers that reported within ``stale_after_s`` (one row per process and cluster),
    each cluster's consumers, lag and error, and the failed-alert count."""
    cutoff = models.utcnow() - timedelta(seconds=stale_after_s)
    consumers = [c.to_dict() for c in session.execute(
        sa.select(models.IngestStatus).where(models.IngestStatus.updated_at >= cutoff)
        .order_by(models.IngestStatus.consumer, models.IngestStatus.cluster)).scalars()]
    return {"counters": counters(session), "consumers": consumers,
            "clusters": cluster_status(session, stale_after_s),
            "failed_alerts": session.execute(sa.select(sa.func.count()).select_from(models.FailedAlert)).scalar_one()}


def counters(session) -> list[dict]:
    """Cumulative per-stream (filter_id 0) and per-filter counters."""
    rows = session.execute(sa.select(models.IngestCounter)).scalars().all()
    return [r.to_dict() for r in rows]
