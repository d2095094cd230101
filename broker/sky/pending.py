"""Sky maps that notices point to by URL (LVK and Fermi VOEvents) and that could not be read when the notice
arrived: the notice and its event are stored at once and the map is *pending*; a background loop fetches it
(``gcn.fetch_skymaps``), retrying with backoff, and a map POSTed to ``/api/localization`` for the event
attaches it (by ``notice_id``, or by the name of the URL's file)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from urllib.parse import urlparse

import sqlalchemy as sa
from sqlalchemy.orm import Session

import models

from broker.errors import BrokerError, ValidationError
from broker.runtime.db import first_line, is_outage

log = logging.getLogger("skybroker.skymaps")

FIRST_RETRY_S, LAST_RETRY_S = 60.0, 3600.0


def url_name(url: str) -> str:
    """The localization name of a map fetched from ``url``: its file name, as SkyPortal names it."""
    return urlparse(url).path.rsplit("/", 1)[-1] or "skymap"


def is_pending(notice: models.GcnNotice) -> bool:
    return bool(notice.has_localization and not notice.localization_ingested)


def pending_ids(session: Session, now: datetime, limit: int = 20) -> list[int]:
    """Notices whose map is pending and due for a try, oldest first."""
    N = models.GcnNotice
    return list(session.execute(
        sa.select(N.id).where(N.has_localization, ~N.localization_ingested, N.skymap_url.isnot(None),
                              sa.or_(N.skymap_retry_at.is_(None), N.skymap_retry_at <= now))
        .order_by(N.id).limit(limit)).scalars())


def fetch_one(session: Session, notice_id: int, fetch, now: datetime, recent_days: float | None = None) -> bool:
    """Fetch and store one notice's map in the caller's transaction; on failure record why and when to try
    again (1 min doubling to 1 h). True when the map is stored. An outage is raised (nothing recorded).
    ``recent_days``: the crossmatch window (``ingest.crossmatch_recent_days``; None: gcn's default)."""
    from broker.sky import gcn
    from broker.sky.mapio import read_fits

    notice = session.get(models.GcnNotice, notice_id, with_for_update={"skip_locked": True})
    if notice is None or not is_pending(notice):
        return False
    name = url_name(notice.skymap_url)
    exists = session.execute(sa.select(models.Localization.id).where(
        models.Localization.dateobs == notice.dateobs, models.Localization.localization_name == name)).first()
    try:
        if not exists:  # (a map already stored under that name is kept, as SkyPortal: nothing to fetch)
            sm = read_fits(fetch(notice.skymap_url))
            with session.begin_nested():
                gcn.add_localization(session, notice.event, name, sm, notice.id,
                                     *([] if recent_days is None else [recent_days]))
    except BrokerError as exc:
        delay = record_failure(notice, exc.message, now)
        log.warning("sky map of notice %d (%s) not stored: %s; next try in %.0f s", notice.id,
                    notice.skymap_url, exc.message, delay)
        return False
    notice.localization_ingested = True
    notice.skymap_error = None
    notice.skymap_retry_at = None
    log.info("sky map of notice %d stored as %s", notice.id, name)
    return True


def fetch_pending(session_factory, fetch=None, now: datetime | None = None, limit: int = 20,
                  recent_days: float | None = None) -> int:
    """One round: every due pending map, each in its own transaction (one bad map never stops the others).
    Returns how many were stored."""
    from broker.sky.gcn import fetch_url

    fetch = fetch or fetch_url
    now = now or models.utcnow()
    with session_factory() as session:
        ids = pending_ids(session, now, limit)
    stored = 0
    for notice_id in ids:
        try:
            with session_factory() as session, session.begin():
                stored += fetch_one(session, notice_id, fetch, now, recent_days)
        except Exception as exc:
            if is_outage(exc):
                raise
            log.exception("sky map of notice %d failed: %s", notice_id, first_line(exc))
            with session_factory() as session, session.begin():  # marked, so the loop does not spin on it
                notice = session.get(models.GcnNotice, notice_id)
                if notice is not None:  # (deleted meanwhile: nothing to mark)
                    record_failure(notice, f"{type(exc).__name__}: {first_line(exc)}", now)
    return stored


def record_failure(notice: models.GcnNotice, message: str, now: datetime) -> float:
    """Note a failed try on the notice and when to try again (1 min doubling to 1 h); returns that delay [s]."""
    notice.skymap_attempts = (notice.skymap_attempts or 0) + 1
    notice.skymap_error = message[:2000]
    delay = min(FIRST_RETRY_S * 2 ** (notice.skymap_attempts - 1), LAST_RETRY_S)
    notice.skymap_retry_at = now + timedelta(seconds=delay)
    return delay


def attach(session: Session, event: models.GcnEvent, loc: models.Localization, notice_id: int | None) -> None:
    """A map POSTed for an event ends what was pending: the notice named by ``notice_id`` (our addition; a
    400 naming it unless it is one of this event's notices whose map is pending), or the event's pending
    notices whose URL's file has the localization's name."""
    if notice_id is not None and not any(n.id == notice_id and is_pending(n) for n in event.notices):
        raise ValidationError(f"Invalid notice_id: notice {notice_id} of event {event.dateobs.isoformat()} has no "
                              "pending sky map", field="notice_id")
    for notice in event.notices:
        if not is_pending(notice):
            continue
        if notice.id == notice_id or (notice_id is None and notice.skymap_url
                                      and url_name(notice.skymap_url) == loc.localization_name):
            notice.localization_ingested = True
            notice.skymap_error = notice.skymap_retry_at = None
            if loc.notice_id is None:
                loc.notice_id = notice.id
