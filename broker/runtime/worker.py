"""The follow-up worker: submits rule-made requests the moment they are committed, and polls the
facilities for every request that is not finished.

It LISTENs on the ``skybroker_followup`` channel (the ingest transaction NOTIFYs it), so an
auto-triggered request is submitted within milliseconds of its alert's commit; every
``facilities.poll_interval_s`` it refreshes submitted/scheduled requests (terminal ones are never
polled again) and retries requests left pending by a crash (looking them up by name first).
"""

from __future__ import annotations

import logging
import select
import threading
import time

from sqlalchemy.engine import Engine

from broker.followup.default_rules import NOTIFY_CHANNEL
from broker.followup.service import FollowupService
from broker.runtime.db import first_line, is_outage

log = logging.getLogger("skybroker.worker")


class _Loop:
    """A loop in a daemon thread of its own: :meth:`start` runs :meth:`run`, :meth:`stop` ends it."""

    thread_name = "skybroker-loop"

    def __init__(self):
        self._stop = threading.Event()
        self.thread: threading.Thread | None = None

    def run(self) -> None:
        raise NotImplementedError

    def start(self):
        self.thread = threading.Thread(target=self.run, name=self.thread_name, daemon=True)
        self.thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self.thread is not None:
            self.thread.join(timeout)


class FollowupWorker(_Loop):
    thread_name = "skybroker-followup"

    def __init__(self, service: FollowupService, engine: Engine, poll_interval_s: float):
        super().__init__()
        self.service = service
        self.engine = engine
        self.poll_interval_s = poll_interval_s
        self.failures = 0  # rounds that ended in an error (and were started over)

    def run(self) -> None:
        """Until stopped: nothing ends this loop. Requests that fail are marked by the service; a lost
        database is waited for; anything else is logged with its traceback and the loop starts over
        (after 1 s, doubling to 30 s while rounds keep failing at once)."""
        delay = 1.0
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self._listen_loop()
            except Exception as exc:
                if is_outage(exc) or isinstance(exc, OSError):
                    log.warning("follow-up worker lost the database (%s); retrying in %.0f s", first_line(exc), delay)
                else:
                    log.exception("follow-up worker round failed; retrying in %.0f s", delay)
                self.failures += 1
            if time.monotonic() - started > 60.0:  # it had been running well: start the backoff again
                delay = 1.0
            self._stop.wait(delay)
            delay = min(delay * 2, 30.0)

    def _listen_loop(self) -> None:
        raw = self.engine.raw_connection()
        raw.detach()  # LISTEN needs autocommit: this connection must never go back to the pool
        try:
            dbapi = raw.dbapi_connection
            dbapi.autocommit = True
            with dbapi.cursor() as cur:
                cur.execute(f"LISTEN {NOTIFY_CHANNEL}")
            next_poll = 0.0
            self.service.submit_pending()  # anything queued while no worker listened
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= next_poll:
                    self.service.submit_pending(older_than_s=self.poll_interval_s)
                    self.service.refresh_all()
                    next_poll = time.monotonic() + self.poll_interval_s
                ready, _, _ = select.select([dbapi], [], [], min(0.5, max(0.0, next_poll - time.monotonic())))
                if ready:
                    dbapi.poll()
                    if dbapi.notifies:
                        dbapi.notifies.clear()
                        self.service.submit_pending()
        finally:
            raw.close()


class _Periodic(_Loop):
    """Runs :meth:`round` every ``interval_s`` until stopped. Nothing else ends the loop: an outage or a
    bug in one round is logged and the next round starts on time."""

    what = "periodic task"

    def __init__(self, interval_s: float):
        super().__init__()
        self.interval_s = interval_s
        self.rounds = 0

    def round(self) -> None:
        raise NotImplementedError

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self.round()
            except Exception as exc:
                if is_outage(exc):
                    log.warning("%s lost the database (%s); next round in %.0f s", self.what, first_line(exc),
                                self.interval_s)
                else:
                    log.exception("%s round failed; next round in %.0f s", self.what, self.interval_s)
            self.rounds += 1
            self._stop.wait(self.interval_s)


class SkymapFetcher(_Periodic):
    """Every ``interval_s``, fetches the sky maps notices point to by URL and that are still pending
    (:func:`broker.sky.pending.fetch_pending`: each map in its own transaction, a failed one retried later
    with backoff)."""

    thread_name = "skybroker-skymaps"
    what = "sky-map fetcher"

    def __init__(self, session_factory, interval_s: float, fetch=None, recent_days: float | None = None):
        super().__init__(interval_s)
        self.session_factory = session_factory
        self.fetch = fetch
        self.recent_days = recent_days  # ingest.crossmatch_recent_days: a new map's crossmatch window

    def round(self) -> None:
        from broker.sky.pending import fetch_pending

        fetch_pending(self.session_factory, self.fetch, recent_days=self.recent_days)


class Maintenance(_Periodic):
    """Every ``database.maintenance_interval_s``: makes photometry's monthly partitions up to
    ``database.partitions_ahead_months`` ahead (so points land in their month, not the default partition),
    and folds the per-filter candidate count deltas (:func:`broker.objects.candidates.fold_candidate_counts`),
    so a filter's totalMatches stays a sum of a few rows. Each in a transaction of its own."""

    thread_name = "skybroker-maintenance"
    what = "database maintenance"

    def __init__(self, session_factory, interval_s: float, months_ahead: int = 3):
        super().__init__(interval_s)
        self.session_factory = session_factory
        self.months_ahead = months_ahead

    def round(self) -> None:
        """Both steps, each whatever the other did (a step that keeps failing must not stop the other);
        the round then reports the first failure."""
        failure = None
        for step in (self._partitions, self._fold):
            try:
                step()
            except Exception as exc:  # re-raised below, after the other step ran
                failure = failure or exc
        if failure is not None:
            raise failure

    def _partitions(self) -> None:
        from broker.objects.photometry import ensure_partitions

        with self.session_factory() as session, session.begin():
            made = ensure_partitions(session, self.months_ahead)
        if made:
            log.info("made %d photometry partition(s)", made)

    def _fold(self) -> None:
        from broker.objects.candidates import fold_candidate_counts

        with self.session_factory() as session, session.begin():
            removed = fold_candidate_counts(session)
        log.debug("folded %d candidate count rows", removed)
