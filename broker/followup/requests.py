"""Follow-up requests: who may read and change them, listing, and their SkyPortal shape.

The follow-up machinery is split by concept: ``allocations`` (time and credentials), ``service`` (the
request service: submit, update, cancel, poll, callbacks), ``default_rules`` (rules that fire requests),
``prioritization`` (priorities from magnitudes or a localization) and ``reports``. This module keeps
the names other packages import from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import arrow
import sqlalchemy as sa
from sqlalchemy.orm import Session

import models
from models.followup import FollowupStatus

from broker.access.auth import Principal
from broker.errors import NoSuchRow, PermissionDenied, ValidationError
from broker.followup.allocations import (allocation_to_dict, credentials, get_allocation,  # noqa: F401 (re-exported)
                                         readable_allocations, save_allocation, usable_allocation)
from broker.objects.objs import caller_groups, user_group_ids

A, FR = models.Allocation, models.FollowupRequest
__all__ = ["allocation_to_dict", "credentials", "get_allocation", "readable_allocations", "save_allocation",
           "usable_allocation", "readable_requests", "load_request", "request_to_dict", "list_requests",
           "RequestQuery", "display_status", "status_from_text", "require_owner_or_admin", "set_comment",
           "transactions_of", "watch", "parse_when", "REQUEST_SORTS"]


def __getattr__(name):  # the service and the rule/priority helpers, re-exported lazily (no import cycle)
    if name == "FollowupService":
        from broker.followup.service import FollowupService

        return FollowupService
    if name in ("save_default", "readable_defaults", "fill_window"):
        from broker.followup import default_rules

        return getattr(default_rules, name)
    if name == "prioritize":
        from broker.followup.prioritization import prioritize

        return prioritize
    raise AttributeError(name)


# -- status in SkyPortal's words ----------------------------------------------------------------------

def display_status_sql():
    """SQL of :func:`display_status` (for SkyPortal's ``status`` substring filter and sorting)."""
    derived = sa.case(
        (FR.status == FollowupStatus.cancelled, sa.literal("deleted")),
        (FR.status == FollowupStatus.scheduled, sa.literal("submitted (scheduled)")),
        (FR.status == FollowupStatus.error,
         sa.literal("failed to submit: ") + sa.func.coalesce(FR.status_message, "")),
        else_=sa.cast(FR.status, sa.String))
    return sa.func.coalesce(FR.status_text, derived)


def display_status(req: models.FollowupRequest) -> str:
    """SkyPortal's status string: "submitted", "completed", "deleted" (cancelled), "failed to submit: ..."
    (could not be submitted), "rejected", ...; a scheduled request is still "submitted (scheduled)". A
    status set by a person or a listener is shown in their words."""
    return status_words(req.status, req.status_text, req.status_message)


def status_words(s: FollowupStatus, text: str | None, message: str | None) -> str:
    """:func:`display_status` of a status, its person's or listener's words and its message."""
    if text:
        return text
    if s is FollowupStatus.cancelled:
        return "deleted"
    if s is FollowupStatus.scheduled:
        return "submitted (scheduled)"
    if s is FollowupStatus.error:
        return f"failed to submit: {message or 'error'}"
    return s.value


_WORDS = (("failed to submit", FollowupStatus.error), ("delete", FollowupStatus.cancelled),
          ("cancel", FollowupStatus.cancelled), ("complete", FollowupStatus.completed),
          ("reject", FollowupStatus.rejected), ("expire", FollowupStatus.expired),
          ("fail", FollowupStatus.failed), ("schedul", FollowupStatus.scheduled),
          ("submit", FollowupStatus.submitted), ("pending", FollowupStatus.pending),
          ("error", FollowupStatus.error))


def status_from_text(text: str, field: str, allowed=None) -> FollowupStatus:
    """The state a SkyPortal status string says ("Completed", "deleted", "failed to submit: ..."); a 400
    naming ``field`` if it says none (or one not in ``allowed``)."""
    low = text.lower()
    try:
        new = FollowupStatus(low)
    except ValueError:
        new = next((s for word, s in _WORDS if word in low), None)
    if new is None:
        raise ValidationError(f"Invalid field '{field}': '{text[:100]}' names none of the states "
                              f"{[s.value for s in FollowupStatus]} (or deleted, complete, failed to submit)",
                              field=field)
    if allowed is not None and new not in allowed:
        raise ValidationError(f"Invalid field '{field}': a facility cannot report '{new.value}'", field=field)
    return new


# -- access --------------------------------------------------------------------------------------------

def readable_requests(principal: Principal) -> sa.Select:
    """Requests under allocations of the caller's groups (or targeted at them)."""
    stmt = sa.select(FR)
    if not principal.is_admin:
        groups = user_group_ids(principal)
        stmt = stmt.where(sa.or_(
            FR.allocation_id.in_(sa.select(A.id).where(A.group_id.in_(groups))),
            FR.id.in_(sa.select(models.followup_target_groups.c.followuprequest_id)
                      .where(models.followup_target_groups.c.group_id.in_(groups)))))
    return stmt


def load_request(session: Session, principal: Principal, request_id: int) -> models.FollowupRequest:
    req = session.execute(readable_requests(principal).where(FR.id == request_id)).scalar()
    if req is None:
        raise NoSuchRow(f"Could not retrieve follow-up request with ID {request_id}")
    return req


def require_owner_or_admin(session: Session, principal: Principal, req: models.FollowupRequest) -> None:
    """The requester, an admin, or a 'Manage allocations' holder in the group of the request's allocation
    (a group a request merely targets does not own its allocation's time)."""
    if principal.is_admin or req.requester_id == principal.user_id:
        return
    if principal.has("Manage allocations") and session.execute(
            user_group_ids(principal).where(models.GroupUser.group_id == req.allocation.group_id)).first():
        return
    raise PermissionDenied("Insufficient permissions: only the requester, an admin or a holder of "
                           "'Manage allocations' may change this follow-up request")


_require_owner_or_admin = require_owner_or_admin


def set_comment(session: Session, principal: Principal, request_id: int, comment) -> None:
    """SkyPortal's PUT /api/followup_request/{id}/comment: "" or null clears it."""
    req = load_request(session, principal, request_id)
    require_owner_or_admin(session, principal, req)
    text = str(comment).strip() if comment is not None else ""
    req.comment = text or None
    req.last_modified_by_id = principal.user_id


# -- listing -------------------------------------------------------------------------------------------

REQUEST_SORTS = {"created_at": FR.created_at, "modified": FR.modified, "status": None, "obj": FR.obj_id,
                 "priority": FR.priority, "id": FR.id}


@dataclass
class RequestQuery:
    obj_id: str | None = None  # SkyPortal's sourceID: a portion of the object's id
    allocation_id: int | None = None
    instrument_id: int | None = None
    status: str | None = None  # a portion of the status string (case-insensitive)
    start: datetime | None = None
    end: datetime | None = None
    observation_start: datetime | None = None
    observation_end: datetime | None = None
    requesters: list[int] | None = None
    priority_threshold: float | None = None
    sort_by: str = "created_at"
    sort_order: str = "asc"


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _payload_date(key: str):
    """The payload's date as a timestamp, NULL where it is missing or not a date."""
    v = FR.payload[key].astext
    return sa.case((v.op("~")(r"^\d{4}-\d{2}-\d{2}([ T][0-9:.]+)?(Z|[+-]00:?00)?$"),
                    sa.func.to_timestamp(sa.func.left(v, 19), 'YYYY-MM-DD"T"HH24:MI:SS')), else_=None)


def list_requests(session: Session, principal: Principal, q: RequestQuery, page) -> tuple[list, int]:
    """Readable follow-up requests matching ``q``, one page of them, and how many match."""
    from broker.pagination import paginate

    stmt = readable_requests(principal)
    if q.obj_id:
        stmt = stmt.where(FR.obj_id.ilike(_like(q.obj_id.strip()), escape="\\"))
    if q.allocation_id is not None:
        stmt = stmt.where(FR.allocation_id == q.allocation_id)
    elif q.instrument_id is not None:  # SkyPortal: ignored if allocationID is given
        stmt = stmt.where(FR.allocation_id.in_(sa.select(A.id).where(A.instrument_id == q.instrument_id)))
    if q.status:
        stmt = stmt.where(display_status_sql().ilike(_like(q.status.strip()), escape="\\"))
    if q.requesters:
        known = set(session.execute(sa.select(models.User.id).where(models.User.id.in_(q.requesters))).scalars())
        if len(known) != len(set(q.requesters)):
            raise ValidationError("One or more of the requesters specified does not exist.", field="requesters")
        stmt = stmt.where(FR.requester_id.in_(q.requesters))
    if q.priority_threshold is not None:
        prio = FR.payload["priority"]
        stmt = stmt.where(sa.func.jsonb_typeof(prio) == "number", prio.astext.cast(sa.Float) >= q.priority_threshold)
    if q.start:
        stmt = stmt.where(FR.created_at >= q.start)
    if q.end:
        stmt = stmt.where(FR.created_at <= q.end)
    if q.observation_start:
        stmt = stmt.where(_payload_date("start_date") >= q.observation_start)
    if q.observation_end:
        stmt = stmt.where(_payload_date("end_date") <= q.observation_end)
    if q.sort_by not in REQUEST_SORTS:
        raise ValidationError(f"Invalid sortBy: must be one of {sorted(REQUEST_SORTS)}", field="sortBy")
    if q.sort_order not in ("asc", "desc"):
        raise ValidationError("Invalid sortOrder: must be asc or desc", field="sortOrder")
    col = REQUEST_SORTS[q.sort_by]
    if col is None:
        col = display_status_sql()
    return paginate(session, stmt.order_by(col.desc() if q.sort_order == "desc" else col.asc(), FR.id), page)


def transactions_of(session: Session, request_id: int) -> list:
    T = models.FacilityTransaction
    return session.execute(sa.select(T).where(T.followup_request_id == request_id).order_by(T.id)).scalars().all()


def status_history(session: Session, request_ids: list[int]) -> dict[int, list[dict]]:
    """Each request's statuses, oldest first (``followup_status_changes``, kept by a trigger): ``status`` in
    SkyPortal's words (as the request's own), ``facility_status`` ours."""
    H = models.FollowupStatusChange
    out: dict[int, list[dict]] = {i: [] for i in request_ids}
    rows = session.execute(sa.select(H).where(H.followup_request_id.in_(request_ids)).order_by(H.id)).scalars()
    for h in rows:
        out[h.followup_request_id].append({
            "status": status_words(h.status, h.status_text, h.status_message), "facility_status": h.status.value,
            "status_message": h.status_message, "created_at": _stamp(h.created_at)})
    return out


def requests_of_obj(session: Session, principal: Principal, obj_id: str) -> list[dict]:
    """The follow-up requests of one object the caller may read, oldest first, each with its facility
    transactions and status history (the source page's follow-up section)."""
    reqs = session.execute(readable_requests(principal).where(FR.obj_id == obj_id).order_by(FR.id)).scalars().all()
    history = status_history(session, [r.id for r in reqs])
    groups = caller_groups(session, principal)
    return [{**request_to_dict(r, transactions_of(session, r.id), groups), "status_history": history[r.id]}
            for r in reqs]


def watch(session: Session, principal: Principal, request_id: int, on: bool) -> None:
    req = load_request(session, principal, request_id)
    if on:
        user = session.get(models.User, principal.user_id)
        if user not in req.watchers:
            req.watchers.append(user)
    else:
        req.watchers = [u for u in req.watchers if u.id != principal.user_id]


def _stamp(dt: datetime | None) -> str | None:
    """SkyPortal's timestamps: always with microseconds (Kowalski parses "%Y-%m-%dT%H:%M:%S.%f")."""
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f") if dt else None


def request_to_dict(req: models.FollowupRequest, transactions: list | None = None,
                    groups: set[int] | None = None) -> dict:
    """SkyPortal's FollowupRequest: status in its words, ``target_groups`` as objects, ``allocation`` with its
    instrument; ours added: ``facility_status`` (our state), ``target_group_ids``, ``watcher_ids``.
    ``groups``: name only these of its target groups (the caller's; None: all)."""
    out = req.to_dict()
    out.pop("status_text", None)
    out["status"] = display_status(req)
    out["facility_status"] = req.status.value
    out["created_at"], out["modified"] = _stamp(req.created_at), _stamp(req.modified)
    a = req.allocation
    out["allocation"] = {"id": a.id, "instrument_id": a.instrument_id, "group_id": a.group_id, "pi": a.pi,
                         "proposal_id": a.proposal_id,
                         "instrument": {"id": a.instrument.id, "name": a.instrument.name,
                                        "api_classname": a.instrument.api_classname},
                         "group": {"id": a.group.id, "name": a.group.name}}
    tg = sorted((g for g in req.target_groups if groups is None or g.id in groups), key=lambda g: g.id)
    out["target_groups"] = [{"id": g.id, "name": g.name, "nickname": g.nickname} for g in tg]
    out["target_group_ids"] = [g.id for g in tg]
    out["watcher_ids"] = sorted(u.id for u in req.watchers)
    out["watchers"] = [{"user_id": u.id, "username": u.username} for u in req.watchers]
    out["requester"] = {"id": req.requester.id, "username": req.requester.username} if req.requester else None
    out["obj"] = {"id": req.obj.id, "ra": req.obj.ra, "dec": req.obj.dec}
    if transactions is not None:
        out["transactions"] = [t.to_dict() for t in transactions]
    return out


def parse_when(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        return arrow.get(value).to("utc").naive
    except (arrow.parser.ParserError, ValueError, TypeError, OverflowError):  # OverflowError: beyond year 1..9999 in UTC
        raise ValidationError(f"Invalid {name}: not a date", field=name) from None
