"""One batch of Kafka messages → rows, in one database transaction.

decode → normalise → evaluate every filter of the stream (vectorised) → associate positions →
bulk write (objects, photometry, candidates, sources, classifications, duplicates, failed alerts,
counters). Every write is idempotent on a natural key, so a redelivered batch writes nothing twice.
The caller commits the transaction and only then the Kafka offsets.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

import models

from broker.ingest.decoding import Alert, AlertError, decode, decode_packet
from broker.ingest.filter_lang import Batch, Node, compile_criteria
from broker.errors import ValidationError
from broker.runtime.db import copy_rows, is_outage, register_staging

log = logging.getLogger(__name__)

MJD_EPOCH = datetime(1858, 11, 17)


def _text(s: str, limit: int = 2000) -> str:
    """An error message as PostgreSQL text: no NUL characters, bounded length."""
    s = s.replace("\x00", "\\x00")
    return s if len(s) <= limit else s[:limit] + "…"


def _failed_row(m: "Message", stream_id: int | None, error: str, now: datetime) -> dict:
    """A ``failed_alerts`` row: the message whole, where it came from, and why it failed."""
    return dict(stream_id=stream_id, cluster=m.cluster, topic=m.topic, partition=m.partition, offset=m.offset,
                raw=m.value or b"", error=_text(error), now=now)


def mjd_to_datetime(mjd: float) -> datetime:
    return MJD_EPOCH + timedelta(days=mjd)


@dataclass(frozen=True)
class FilterInfo:
    id: int
    group_id: int
    node: Node
    autosave: bool


@dataclass(frozen=True)
class Rules:
    """Default follow-up rules by what fires them."""

    by_filter: dict
    by_group: dict


@dataclass(frozen=True)
class StreamInfo:
    id: int
    name: str
    topic: str
    format: str
    filters: tuple[FilterInfo, ...]
    taxonomy_id: int | None = None
    score_classes: tuple[tuple[str, str], ...] = ()  # (score name, class name)
    taxonomy_classes: frozenset[str] = frozenset()
    rules: Rules = Rules({}, {})
    cluster: str = "default"
    # where a consumer group that has read nothing of a topic yet starts: "earliest", "latest", or a time
    start: str | datetime = "earliest"
    partitions: int | None = None  # altdata.partitions: the topic's, when we create it (else kafka.topic_partitions)


@dataclass
class Message:
    """What the pipeline needs of a Kafka message."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    timestamp_ms: int | None = None
    cluster: str = "default"


# -- which stream a topic belongs to -----------------------------------------------------------------------

DATE = "{date}"


def subscription(topic: str, today: date) -> str:
    """What a stream's ``altdata.topic`` subscribes to: a topic name as it is; a pattern (``^...``, a regular
    expression, as librdkafka takes it) as it is; a name with ``{date}`` (ZTF's nightly
    ``ztf_{date}_programid1``, as Kowalski subscribes) as the pattern of yesterday's and today's UTC dates
    in YYYYMMDD, so that the end of a night is not dropped at midnight."""
    if DATE not in topic:
        return topic
    days = "|".join((today - timedelta(days=d)).strftime("%Y%m%d") for d in (1, 0))
    return "^" + f"({days})".join(part.replace(".", "\\.") for part in topic.split(DATE)) + "$"


def is_pattern(topic: str) -> bool:
    return topic.startswith("^")


class StreamRoutes(dict):
    """topic → :class:`StreamInfo` for one cluster: streams with a topic name, then those with a pattern
    (the stream with the lowest id among those that match), each topic resolved once. ``subscription``:
    what the consumer subscribes to."""

    def __init__(self, exact: dict[str, StreamInfo], patterns: list[tuple[str, StreamInfo]]):
        super().__init__(exact)
        self.patterns = [(re.compile(p), s) for p, s in patterns]
        self.subscription = sorted(exact) + sorted({p for p, _ in patterns})
        self.misses: set[str] = set()

    def __missing__(self, topic: str) -> StreamInfo:
        if topic not in self.misses:
            for regex, stream in self.patterns:
                if regex.search(topic):
                    self[topic] = stream
                    return stream
            self.misses.add(topic)
        raise KeyError(topic)

    def get(self, topic, default=None):
        try:
            return self[topic]
        except KeyError:
            return default

    def by_id(self) -> dict[int, StreamInfo]:
        return {s.id: s for s in list(self.values()) + [s for _, s in self.patterns]}


@dataclass
class BatchResult:
    consumed: int = 0
    ingested: int = 0  # alerts that passed at least one filter and were written
    failed: int = 0
    passed: dict[int, int] = field(default_factory=lambda: defaultdict(int))  # filter id -> alerts

    def add(self, other: "BatchResult") -> None:
        self.consumed += other.consumed
        self.ingested += other.ingested
        self.failed += other.failed
        for fid, n in other.passed.items():
            self.passed[fid] += n


def taxonomy_class_names(hierarchy: dict) -> set[str]:
    """Every class name in a tdtax-style hierarchy ({"class": ..., "subclasses": [...]})."""
    out: set[str] = set()
    stack = [hierarchy]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("class"), str):
                out.add(node["class"])
            stack.extend(node.get("subclasses") or [])
    return out


def parse_start(value) -> str | datetime:
    """A stream's ``altdata.start``: "earliest" (the default), "latest", or an ISO date or time (UTC)."""
    if value in (None, "earliest", "latest"):
        return value or "earliest"
    try:
        t = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError("Invalid field 'altdata.start': must be \"earliest\", \"latest\" or an ISO date "
                              "or time (UTC)", field="altdata.start") from None
    return t.replace(tzinfo=None) - (t.utcoffset() or timedelta(0))


def load_streams(session: Session, cluster: str | None = None, today: date | None = None) -> StreamRoutes:
    """Streams with a topic and a format, with their filters compiled, keyed by topic: those of Kafka
    cluster ``cluster`` (``altdata.cluster``; none named: "default"), or every stream."""
    today = today or models.utcnow().date()
    streams = session.execute(sa.select(models.Stream).order_by(models.Stream.id)).scalars().all()
    filters = session.execute(sa.select(models.Filter).order_by(models.Filter.id)).scalars().all()
    by_stream: dict[int, list[FilterInfo]] = defaultdict(list)
    for f in filters:
        try:
            node = compile_criteria(f.criteria or {})
        except ValidationError as exc:  # saved before a grammar change: skip it, loudly
            log.error("filter %d has invalid criteria and is skipped: %s", f.id, exc.message)
            continue
        by_stream[f.stream_id].append(FilterInfo(f.id, f.group_id, node, f.autosave))
    from broker.followup.default_rules import rules_by_trigger

    rules = Rules(*rules_by_trigger(session))
    exact: dict[str, StreamInfo] = {}
    patterns: list[tuple[str, StreamInfo]] = []
    for s in streams:
        alt = s.altdata or {}
        topic, fmt = alt.get("topic"), alt.get("format")
        if not topic or not fmt:
            continue
        if cluster is not None and (alt.get("cluster") or "default") != cluster:
            continue
        try:
            start = parse_start(alt.get("start"))
        except ValidationError:  # saved before the field was checked: read from the start, loudly
            log.error("stream %d has an invalid altdata.start %r; reading from the earliest", s.id, alt.get("start"))
            start = "earliest"
        cls = alt.get("classifications") or {}
        tax_id = cls.get("taxonomy_id")
        classes: frozenset[str] = frozenset()
        if tax_id is not None:
            tax = session.get(models.Taxonomy, tax_id)
            classes = frozenset(taxonomy_class_names(tax.hierarchy)) if tax else frozenset()
            if tax is None:
                tax_id = None
        info = StreamInfo(
            s.id, s.name, topic, fmt, tuple(by_stream.get(s.id, ())), tax_id,
            tuple(sorted((cls.get("scores") or {}).items())), classes, rules, alt.get("cluster") or "default",
            start, alt.get("partitions") if isinstance(alt.get("partitions"), int) else None,
        )
        sub = subscription(topic, today)
        if is_pattern(sub):
            patterns.append((sub, info))
        else:
            exact.setdefault(topic, info)  # two streams on one topic: the older one reads it
    return StreamRoutes(exact, patterns)


# -- SQL -------------------------------------------------------------------------------------

_ASSOCIATE = sa.text("""
    SELECT v.i, o.id,
           degrees(2 * asin(sqrt(
               sin(radians(o.dec - v.dec) / 2) ^ 2
               + cos(radians(o.dec)) * cos(radians(v.dec)) * sin(radians(o.ra - v.ra) / 2) ^ 2
           ))) * 3600 AS sep
    FROM unnest(CAST(:i AS int[]), CAST(:ra AS float8[]), CAST(:dec AS float8[]), CAST(:id AS text[]))
         AS v(i, ra, dec, id)
    JOIN objs o ON o.dec BETWEEN v.dec - :r AND v.dec + :r AND o.id IS DISTINCT FROM v.id
    WHERE degrees(2 * asin(sqrt(
               sin(radians(o.dec - v.dec) / 2) ^ 2
               + cos(radians(o.dec)) * cos(radians(v.dec)) * sin(radians(o.ra - v.ra) / 2) ^ 2
          ))) * 3600 <= :r_arcsec
""")

_INSERT_OBJS = sa.text("""
    INSERT INTO objs (id, ra, dec, healpix, origin, score, created_at, modified)
    SELECT id, ra, dec, hp, origin, score, :now, :now
    FROM unnest(CAST(:id AS text[]), CAST(:ra AS float8[]), CAST(:dec AS float8[]), CAST(:hp AS int8[]),
                CAST(:origin AS text[]), CAST(:score AS float8[]))
         AS v(id, ra, dec, hp, origin, score)
    ON CONFLICT (id) DO NOTHING
""")

# Photometry arrives by COPY into a per-connection staging table, then one INSERT ... ON CONFLICT:
# several times faster than bound arrays for the tens of thousands of points a batch carries.
_PHOT_STAGE = """
    CREATE TEMP TABLE IF NOT EXISTS photometry_alert_in (
        obj_id text, mjd float8, flux float8, fluxerr float8, filter text, limiting_mag float8,
        ra float8, dec float8, origin text, alert_id int8, stream_id int4, instrument_id int4
    ) ON COMMIT DELETE ROWS
"""
register_staging("photometry_alert_in", _PHOT_STAGE)
_PHOT_COLUMNS = ("obj_id", "mjd", "flux", "fluxerr", "filter", "limiting_mag", "ra", "dec", "origin", "alert_id",
                 "stream_id", "instrument_id")
# The survey's instrument (ZTF, LSST: broker.objects.photometry.survey_instrument_ids); a point is a
# duplicate only when object, instrument, origin, mjd, fluxerr and flux match (SkyPortal's rule).
_INSERT_PHOT = sa.text("""
    INSERT INTO photometry (obj_id, mjd, flux, fluxerr, zp, magsys, filter, limiting_mag, ra, dec,
                            origin, instrument_name, instrument_id, alert_id, stream_id, upload_id, created_at,
                            modified)
    SELECT obj_id, mjd, flux, fluxerr, 23.9, 'ab', filter, limiting_mag, ra, dec, origin, origin, instrument_id,
           alert_id, stream_id, :upload, :now, :now
    FROM photometry_alert_in
    ORDER BY obj_id, instrument_id, origin, mjd, fluxerr, flux  -- one lock order for every writer: no deadlocks
    ON CONFLICT ON CONSTRAINT uq_photometry_point DO NOTHING
""")

_INSERT_CANDIDATES = sa.text("""
    INSERT INTO candidates (obj_id, filter_id, passed_at, passing_alert_id, created_at, modified)
    SELECT obj, f, passed, alert, :now, :now
    FROM unnest(CAST(:obj AS text[]), CAST(:f AS int[]), CAST(:passed AS timestamp[]), CAST(:alert AS int8[]))
         AS v(obj, f, passed, alert)
    ON CONFLICT ON CONSTRAINT uq_candidates_obj_filter_passed DO NOTHING
""")

_INSERT_SOURCES = sa.text("""
    INSERT INTO sources (obj_id, group_id, saved_at, active, requested, created_at, modified)
    SELECT obj, g, :now, true, false, :now, :now
    FROM unnest(CAST(:obj AS text[]), CAST(:g AS int[])) AS v(obj, g)
    ON CONFLICT ON CONSTRAINT uq_sources_obj_group DO NOTHING
""")

_UPSERT_CLASSIFICATIONS = sa.text("""
    INSERT INTO classifications (classification, taxonomy_id, probability, author_name, obj_id, origin, ml,
                                 created_at, modified)
    SELECT cls, :tax, p, :origin, obj, :origin, true, :now, :now
    FROM unnest(CAST(:obj AS text[]), CAST(:cls AS text[]), CAST(:p AS float8[])) AS v(obj, cls, p)
    ON CONFLICT (obj_id, taxonomy_id, classification, origin) WHERE ml AND author_id IS NULL
    DO UPDATE SET probability = EXCLUDED.probability, modified = EXCLUDED.modified
    RETURNING id, obj_id
""")

_CLASSIFICATION_GROUPS = sa.text("""
    INSERT INTO classification_groups (classification_id, group_id)
    SELECT c, g FROM unnest(CAST(:c AS int[]), CAST(:g AS int[])) AS v(c, g)
    ON CONFLICT DO NOTHING
""")

_INSERT_DUPLICATES = sa.text("""
    INSERT INTO obj_duplicates (obj_id, duplicate_obj_id, separation, created_at)
    SELECT a, b, s, :now FROM unnest(CAST(:a AS text[]), CAST(:b AS text[]), CAST(:s AS float8[])) AS v(a, b, s)
    ON CONFLICT DO NOTHING
""")

_INSERT_FAILED = sa.text("""
    INSERT INTO failed_alerts (stream_id, cluster, topic, partition, "offset", raw, error, created_at)
    VALUES (:stream_id, :cluster, :topic, :partition, :offset, :raw, :error, :now)
    ON CONFLICT ON CONSTRAINT uq_failed_alerts_cluster_topic_partition_offset DO NOTHING
""")

_COUNTERS = sa.text("""
    INSERT INTO ingest_counters (stream_id, filter_id, consumed, ingested, passed, failed, updated_at)
    SELECT s, f, c, i, p, x, :now
    FROM unnest(CAST(:s AS int[]), CAST(:f AS int[]), CAST(:c AS int8[]), CAST(:i AS int8[]),
                CAST(:p AS int8[]), CAST(:x AS int8[])) AS v(s, f, c, i, p, x)
    ON CONFLICT (stream_id, filter_id) DO UPDATE SET
        consumed = ingest_counters.consumed + EXCLUDED.consumed,
        ingested = ingest_counters.ingested + EXCLUDED.ingested,
        passed = ingest_counters.passed + EXCLUDED.passed,
        failed = ingest_counters.failed + EXCLUDED.failed,
        updated_at = EXCLUDED.updated_at
""")


def associate(session: Session, ra, dec, ids, radius_arcsec: float) -> list[tuple[int, str, float]]:
    """Existing objects within ``radius_arcsec`` of each position: (index, obj id, separation ″).

    One query for the whole batch; ``ids`` (or None) excludes each position's own object.
    """
    if len(ra) == 0:
        return []
    rows = session.execute(_ASSOCIATE, {
        "i": list(range(len(ra))), "ra": [float(x) for x in ra], "dec": [float(x) for x in dec],
        "id": list(ids), "r": radius_arcsec / 3600.0, "r_arcsec": radius_arcsec,
    }).all()
    return [(int(i), oid, float(sep)) for i, oid, sep in rows]


def process_batch(session: Session, streams: dict[str, StreamInfo], messages: list[Message],
                  radius_arcsec: float, recent_days: float = 7.0) -> BatchResult:
    """Write one batch inside the caller's transaction; return its counts.

    ``recent_days``: new alerts are crossmatched against localizations of events this recent."""
    now = models.utcnow()
    result = BatchResult(consumed=len(messages))
    failed_rows = []
    per_stream: dict[str, list[tuple[Message, Alert]]] = defaultdict(list)
    counters: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    notices_stored = 0

    for m in messages:
        stream = streams.get(m.topic)
        if stream is None:  # unsubscribed meanwhile: keep the message, like any we cannot handle
            failed_rows.append(_failed_row(m, None, "no stream reads this topic", now))
            continue
        counters[(stream.id, 0)][0] += 1
        if stream.format == "gcn":
            error = _store_gcn(session, m, recent_days)
            if error:
                failed_rows.append(_failed_row(m, stream.id, error, now))
                counters[(stream.id, 0)][3] += 1
            else:
                counters[(stream.id, 0)][1] += 1
                notices_stored += 1
            continue
        try:
            alert = decode(m.value, stream.format)
        except AlertError as exc:
            error = str(exc)
        except Exception as exc:  # a decoder bug on one odd message: that message fails, not the stream
            log.exception("unexpected error decoding %s/%d@%d", m.topic, m.partition, m.offset)
            error = f"unexpected error while decoding: {type(exc).__name__}: {exc}"
        else:
            per_stream[m.topic].append((m, alert))
            continue
        failed_rows.append(_failed_row(m, stream.id, error, now))
        counters[(stream.id, 0)][3] += 1

    # which alerts pass which filters
    passing: list[tuple[StreamInfo, Alert, list[FilterInfo]]] = []
    for topic, items in per_stream.items():
        stream = streams[topic]
        alerts = [a for _, a in items]
        masks = _evaluate_filters(stream, alerts)
        for f, mask in masks:
            counters[(stream.id, f.id)][2] += int(mask.sum())
            result.passed[f.id] += int(mask.sum())
        for i, alert in enumerate(alerts):
            passed = [f for f, mask in masks if mask[i]]
            if passed:
                passing.append((stream, alert, passed))
                counters[(stream.id, 0)][1] += 1

    if passing:
        _write_passing(session, passing, radius_arcsec, now, recent_days)
    result.ingested = len(passing) + notices_stored
    result.failed = len(failed_rows)
    for row in failed_rows:
        session.execute(_INSERT_FAILED, row)
    if counters:
        keys = sorted(counters)  # one lock order for every writer
        session.execute(_COUNTERS, {
            "s": [k[0] for k in keys], "f": [k[1] for k in keys],
            "c": [counters[k][0] for k in keys], "i": [counters[k][1] for k in keys],
            "p": [counters[k][2] for k in keys], "x": [counters[k][3] for k in keys], "now": now,
        })
    return result


_DONE = sa.text("""
    SELECT topic, partition, next_offset FROM ingest_offsets
    WHERE group_id = :g AND (topic, partition) IN (SELECT * FROM unnest(CAST(:t AS text[]), CAST(:p AS int[])))
""")

_ADVANCE = sa.text("""
    INSERT INTO ingest_offsets (group_id, topic, partition, next_offset, updated_at)
    SELECT :g, t, p, o, :now FROM unnest(CAST(:t AS text[]), CAST(:p AS int[]), CAST(:o AS int8[])) AS v(t, p, o)
    ORDER BY t, p  -- one lock order for every writer
    ON CONFLICT (group_id, topic, partition)
    DO UPDATE SET next_offset = GREATEST(ingest_offsets.next_offset, EXCLUDED.next_offset),
                  updated_at = EXCLUDED.updated_at
""")


def next_offsets(messages: list[Message]) -> dict[tuple[str, int], int]:
    """(topic, partition) → the offset after the last message of it in ``messages``."""
    last: dict[tuple[str, int], int] = {}
    for m in messages:
        key = (m.topic, m.partition)
        last[key] = max(last.get(key, -1), m.offset + 1)
    return last


def not_yet_written(session: Session, group_id: str, messages: list[Message]) -> list[Message]:
    """The messages this consumer group has not written yet (a redelivered batch whose rows committed
    but whose Kafka offsets did not is skipped, so nothing is counted twice)."""
    parts = sorted(next_offsets(messages))
    if not parts:
        return messages
    done = {(t, p): o for t, p, o in session.execute(_DONE, {
        "g": group_id, "t": [k[0] for k in parts], "p": [k[1] for k in parts]}).all()}
    return [m for m in messages if m.offset >= done.get((m.topic, m.partition), -1)]


def mark_written(session: Session, group_id: str, messages: list[Message]) -> None:
    """Record, in the caller's transaction, that ``messages`` are written."""
    last = next_offsets(messages)
    if last:
        keys = sorted(last)
        session.execute(_ADVANCE, {"g": group_id, "t": [k[0] for k in keys], "p": [k[1] for k in keys],
                                   "o": [last[k] for k in keys], "now": models.utcnow()})


def process_isolated(session: Session, streams: dict[str, StreamInfo], messages: list[Message],
                     radius_arcsec: float, recent_days: float = 7.0) -> BatchResult:
    """The batch again, one message per savepoint, for when the batch as a whole raised: a message
    that raises is kept in ``failed_alerts`` with the error and the others are written. A database
    outage still raises (the caller retries the batch, committing no offsets)."""
    total = BatchResult()
    for m in messages:
        savepoint = session.begin_nested()
        try:
            r = process_batch(session, streams, [m], radius_arcsec, recent_days)
        except Exception as exc:
            if is_outage(exc):
                raise
            savepoint.rollback()
            log.warning("message %s/%d@%d cannot be stored: %s: %s", m.topic, m.partition, m.offset,
                        type(exc).__name__, exc)
            r = record_failure(session, streams, m, f"cannot be stored: {type(exc).__name__}: {exc}")
        else:
            savepoint.commit()
        total.add(r)
    return total


def record_failure(session: Session, streams: dict[str, StreamInfo], m: Message, error: str) -> BatchResult:
    """Keep one message in ``failed_alerts`` with ``error`` and count it."""
    now = models.utcnow()
    stream = streams.get(m.topic)
    sid = stream.id if stream else None
    session.execute(_INSERT_FAILED, _failed_row(m, sid, error, now))
    if stream is not None:
        session.execute(_COUNTERS, {"s": [sid], "f": [0], "c": [1], "i": [0], "p": [0], "x": [1], "now": now})
    return BatchResult(consumed=1, failed=1)


def _evaluate_filters(stream: StreamInfo, alerts: list[Alert]) -> list[tuple[FilterInfo, np.ndarray]]:
    """Each filter's pass mask over the alerts, vectorised; a filter that raises on the batch is
    evaluated alert by alert, and an alert it raises on does not pass it (logged)."""
    batch = Batch(alerts)
    out = []
    for f in stream.filters:
        try:
            mask = np.asarray(f.node.evaluate(batch), dtype=bool)
        except Exception:  # noqa: BLE001 - a criteria/data combination the language did not foresee
            log.exception("filter %d raised on a batch of %d alerts; evaluating them one by one", f.id, len(alerts))
            mask = np.zeros(len(alerts), dtype=bool)
            for i, a in enumerate(alerts):
                try:
                    mask[i] = bool(np.asarray(f.node.evaluate(Batch([a])))[0])
                except Exception as exc:  # noqa: BLE001
                    log.warning("filter %d cannot evaluate alert %s: %s: %s", f.id, a.alert_id, type(exc).__name__, exc)
        out.append((f, mask))
    return out


def _store_gcn(session: Session, m: Message, recent_days: float) -> str | None:
    """A GCN notice from a stream: stored in a savepoint; a bad one returns its error (the batch goes on)."""
    from broker.errors import BrokerError
    from broker.sky.gcn import parse_json_notice, parse_voevent, store_notice

    raw = m.value or b""
    nested = session.begin_nested()
    try:
        if raw.lstrip()[:1] == b"<":
            parsed = parse_voevent(raw)
        else:
            parsed = parse_json_notice(decode_packet(raw, "json"))
        store_notice(session, parsed, raw, recent_days, on_duplicate="skip")  # a re-delivered notice: stored once
    except BrokerError as exc:
        nested.rollback()
        return f"bad GCN notice: {exc.message}"
    except AlertError as exc:
        nested.rollback()
        return f"bad GCN notice: {exc}"
    except Exception as exc:
        if is_outage(exc):
            raise  # the database is gone: the whole batch is retried
        nested.rollback()
        log.exception("unexpected error storing GCN notice %s/%d@%d", m.topic, m.partition, m.offset)
        return f"bad GCN notice: {type(exc).__name__}: {exc}"
    nested.commit()
    return None


def crossmatch_recent(session: Session, ids: list[str], ras, decs, now: datetime, recent_days: float) -> int:
    """Crossmatch objects against the localizations of events of the last ``recent_days`` (not retracted;
    an event dated after ``now`` has no counterpart yet)."""
    from datetime import timedelta

    from broker.sky.gcn import store_matches, stored_skymap

    locs = session.execute(
        sa.select(models.Localization).join(models.GcnEvent, models.GcnEvent.dateobs == models.Localization.dateobs)
        .where(models.GcnEvent.dateobs >= now - timedelta(days=recent_days), models.GcnEvent.dateobs <= now,
               ~models.GcnEvent.retracted)
    ).scalars().all()
    return sum(store_matches(session, loc.id, stored_skymap(loc), ids, ras, decs) for loc in locs)


def _write_passing(session: Session, passing, radius_arcsec: float, now: datetime, recent_days: float = 7.0) -> None:
    from models.objects import healpix_index

    # 1. alerts without a survey object id take the nearest existing object, else a new id
    unnamed = [i for i, (_, a, _) in enumerate(passing) if a.object_id is None]
    if unnamed:
        matches = associate(session, [passing[i][1].ra for i in unnamed], [passing[i][1].dec for i in unnamed],
                            [None] * len(unnamed), radius_arcsec)
        best: dict[int, tuple[float, str]] = {}
        for j, oid, sep in matches:
            if j not in best or sep < best[j][0]:
                best[j] = (sep, oid)
        for j, i in enumerate(unnamed):
            a = passing[i][1]
            a.object_id = best[j][1] if j in best else f"{a.survey}-{a.alert_id}"

    # 2. objects
    objs: dict[str, Alert] = {}
    for _, a, _ in passing:
        objs.setdefault(a.object_id, a)
    ids = sorted(objs)  # one lock order for every writer
    ras = np.array([objs[k].ra for k in ids])
    decs = np.array([objs[k].dec for k in ids])
    # SkyPortal's Obj.origin and Obj.score (as Kowalski posts them: the survey; drb, else rb)
    scores = [objs[k].scores.get("drb", objs[k].scores.get("rb")) for k in ids]
    session.execute(_INSERT_OBJS, {"id": ids, "ra": ras.tolist(), "dec": decs.tolist(),
                                   "hp": healpix_index(ras, decs).tolist(), "now": now,
                                   "origin": [objs[k].survey for k in ids], "score": scores})

    # 2b. inside a recent event's localization?
    crossmatch_recent(session, ids, ras, decs, now, recent_days)

    # 3. duplicates: other objects within the radius (both directions)
    dup_a, dup_b, dup_s = [], [], []
    for i, oid, sep in associate(session, ras, decs, ids, radius_arcsec):
        dup_a += [ids[i], oid]
        dup_b += [oid, ids[i]]
        dup_s += [sep, sep]
    if dup_a:
        session.execute(_INSERT_DUPLICATES, {"a": dup_a, "b": dup_b, "s": dup_s, "now": now})

    # 4. photometry (detections + upper limits), deduplicated on SkyPortal's key: two detections in one
    #    exposure with different fluxes are two points
    from broker.objects.photometry import survey_instrument_ids

    instrument = survey_instrument_ids(session, {a.survey for _, a, _ in passing})
    seen = set()
    rows = []
    for stream, a, _ in passing:
        for p in a.detections + a.upper_limits:
            key = (a.object_id, a.survey, p.mjd, p.fluxerr, p.flux)
            if key not in seen:
                seen.add(key)
                rows.append((a.object_id, p.mjd, p.flux, p.fluxerr, p.band, p.limiting_mag, p.ra, p.dec, a.survey,
                             p.alert_id, stream.id, instrument[a.survey]))
    copy_rows(session, _PHOT_STAGE, "photometry_alert_in", _PHOT_COLUMNS, rows)
    # one upload id for the batch's points (they arrived together), rather than a random one per point:
    # ~15 % of the write, in generating them and in scattering them through their index
    session.execute(_INSERT_PHOT, {"now": now, "upload": f"alerts-{uuid.uuid4()}"})

    # 5. candidates and autosaved sources
    cand = set()
    src = set()
    for _, a, filters in passing:
        passed_at = mjd_to_datetime(a.mjd)
        for f in filters:
            cand.add((a.object_id, f.id, passed_at, a.alert_id))
            if f.autosave:
                src.add((a.object_id, f.group_id))
    rows = sorted(cand, key=lambda r: r[:3])  # one lock order for every writer
    session.execute(_INSERT_CANDIDATES, {"obj": [r[0] for r in rows], "f": [r[1] for r in rows],
                                         "passed": [r[2] for r in rows], "alert": [r[3] for r in rows],
                                         "now": now})
    if src:
        rows = sorted(src)
        session.execute(_INSERT_SOURCES, {"obj": [r[0] for r in rows], "g": [r[1] for r in rows], "now": now})

    # 6. machine classifications carried by the alert, mapped through the stream's taxonomy
    by_stream: dict[int, tuple[StreamInfo, dict]] = {}
    for stream, a, filters in passing:
        if stream.taxonomy_id is None:
            continue
        entry = by_stream.setdefault(stream.id, (stream, {}))[1]
        groups = {f.group_id for f in filters}
        for score, cls in stream.score_classes:
            if score in a.scores and 0.0 <= a.scores[score] <= 1.0:
                entry[(a.object_id, cls)] = (a.scores[score], groups)
        for c in a.classifications:
            if c["classification"] in stream.taxonomy_classes:
                entry[(a.object_id, c["classification"])] = (c["probability"], groups)
    for stream, entry in by_stream.values():
        if not entry:
            continue
        keys = list(entry)
        rows = session.execute(_UPSERT_CLASSIFICATIONS, {
            "obj": [k[0] for k in keys], "cls": [k[1] for k in keys], "p": [entry[k][0] for k in keys],
            "tax": stream.taxonomy_id, "origin": stream.name, "now": now,
        }).all()
        groups_of = defaultdict(set)
        for k in keys:
            groups_of[k[0]] |= entry[k][1]
        c_ids, g_ids = [], []
        for cid, obj in rows:
            for g in groups_of[obj]:
                c_ids.append(cid)
                g_ids.append(g)
        session.execute(_CLASSIFICATION_GROUPS, {"c": c_ids, "g": g_ids})

    # 6b. thumbnails from the cutouts and ML-score annotations, as Kowalski posts them (issue 9, part B:
    #     broker.objects.thumbnails; a cutout that cannot be drawn is skipped, its alert is stored)
    from broker.objects.thumbnails import ingest_alert_products

    ingest_alert_products(session, passing, now)

    # 7. default follow-up rules, after the classifications some of them require: a (rule, object)
    #    fires once, by a filter passed or an autosave group
    from broker.followup.default_rules import fire

    pairs = set()
    for stream, a, filters in passing:
        for f in filters:
            pairs.update((r, a.object_id) for r in stream.rules.by_filter.get(f.id, ()))
            if f.autosave:
                pairs.update((r, a.object_id) for r in stream.rules.by_group.get(f.group_id, ()))
    fire(session, pairs)
