"""SkyPortal's candidate list (GET /api/candidates), read at 10⁶–10⁷ candidates without reading them all.

The list is the objects that passed the selected filters, latest pass first. The triggers on candidates keep
``candidate_filter_objs``: one row per (filter, object) with its latest pass, indexed (filter_id,
last_passed_at DESC, obj_id) (migration 0019). So:

- one filter (no end date): a page is a slice of that index;
- several filters: each filter's first ``L`` rows from its index, merged and cut at ``L``; an object's first
  row in that stream is its latest pass, so the objects whose first row lies in the first ``L`` rows are
  exactly the head of the list, in order; ``L`` grows (x4) until the page is covered or the stream ends;
- with an end date, the same stream over the candidate rows themselves (index (filter_id, passed_at DESC,
  obj_id)), as the latest pass before the end date is not the pair's.

Conditions on the object (saved status, classifications, redshift, detections, a localization's region,
read first as a list of ids) filter the rows as they are read. The cost follows the page's depth, not the
table.

``totalMatches`` (SkyPortal always sends it) is, from cheapest: the stream itself when it ended on the page;
for one filter and no other condition, the sum of the filter's ``candidate_counts`` rows (kept by the same
triggers, folded by the worker); else counted from the pairs, each filter adding the objects no larger filter
has (grows with the selection, not with the candidate rows).

Other sorts (ra, dec, redshift, id, created_at: our addition; SkyPortal sorts by passed_at) read objs in
that column's order and keep those with a pass (an index semi-join the planner chooses); ascending
passed_at sorts the aggregate.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session

import models

from broker.access.auth import Principal, readable_filters, readable_groups_named
from broker.errors import ValidationError
from broker.objects.listings import listed_clause
from broker.objects.objs import (ObjFilters, _check_sort, candidate_details, classification_exists, obj_columns,
                                 obj_conditions, user_group_ids, with_derived)
from broker.pagination import Page

C, F, O, S = models.Candidate, models.Filter, models.Obj, models.Source
FO = models.CandidateFilterObj
SAVED_STATUSES = ("all", "savedToAllSelected", "savedToAnySelected", "savedToAnyAccessible",
                  "notSavedToAnyAccessible", "notSavedToAnySelected", "notSavedToAllSelected")
CANDIDATE_SORTS = {"passed_at", "id", "ra", "dec", "redshift", "created_at"}
STREAM_GROWTH = 4  # the merged stream's row limit grows by this factor until the page is covered


@dataclass
class CandidateQuery(ObjFilters):
    filter_ids: list[int] | None = None
    group_ids: list[int] | None = None
    saved_status: str = "all"
    start_date: datetime | None = None
    end_date: datetime | None = None
    classifications_reject: list[str] | None = None
    sort_by: str = "passed_at"  # our addition (SkyPortal orders by passed_at, newest first)
    sort_order: str = "desc"
    include_photometry: bool = False
    list_name: str | None = None  # only objects on the caller's list of this name (SkyPortal's listName)
    list_name_reject: str | None = None  # none on it (listNameReject, e.g. "rejected_candidates")
    details: dict[str, tuple[str, str]] = field(default_factory=dict)  # output key -> (hook, parameter)


def _selected_filters(session: Session, principal: Principal, q: CandidateQuery) -> tuple[list[int], list[int]]:
    """(filter ids, selected group ids) the query runs over; unreadable ones are a 400 naming them."""
    readable = readable_filters(principal).with_only_columns(F.id, F.group_id)  # (no filter rows loaded)
    if q.filter_ids:
        rows = session.execute(readable.where(F.id.in_(q.filter_ids))).all()
        missing = sorted(set(q.filter_ids) - {fid for fid, _ in rows})
        if missing:
            raise ValidationError(f"Invalid filterIDs: no accessible filter(s) {missing}", field="filterIDs")
        return sorted(fid for fid, _ in rows), sorted({gid for _, gid in rows})
    if q.group_ids:
        readable_groups_named(session, principal, q.group_ids, "groupIDs")
        rows = session.execute(sa.select(F.id).where(F.group_id.in_(q.group_ids))).scalars().all()
        return sorted(rows), sorted(q.group_ids)
    rows = session.execute(readable).all()
    return sorted(fid for fid, _ in rows), sorted({gid for _, gid in rows})


def _saved_any(groups, oid):
    return sa.exists().where(S.obj_id == oid, S.active, S.group_id.in_(groups))


def _saved_all(groups: list[int], oid):
    n = (sa.select(sa.func.count(sa.distinct(S.group_id)))
         .where(S.obj_id == oid, S.active, S.group_id.in_(groups)).scalar_subquery())
    return n == len(groups)


@dataclass
class _Selection:
    """What a candidate query selects: passes of ``filter_ids`` in the date window, of objects meeting
    ``conditions(oid)`` (``needs_obj``: they read the objs row, joined on oid)."""

    filter_ids: list[int]
    start: datetime | None
    end: datetime | None
    conditions: object  # (oid column) -> list of SQL conditions
    needs_obj: bool
    plain: bool  # no condition beyond the filters (the maintained counts apply)

    def passes(self, *where):
        """Condition on candidates rows: in the filters' window (``where``: e.g. one filter)."""
        conds = list(where) or [C.filter_id.in_(self.filter_ids)]
        if self.start:
            conds.append(C.passed_at >= self.start)
        if self.end:
            conds.append(C.passed_at <= self.end)
        return conds

    @property
    def by_pairs(self) -> bool:
        """Without an end date, an object's latest pass in the window is its pair's latest pass (a start date
        only keeps the pairs that passed since): the pairs table answers, one row per object and filter."""
        return self.end is None

    def pairs(self, *where):
        """Condition on candidate_filter_objs rows (with :attr:`by_pairs`)."""
        conds = list(where) or [FO.filter_id.in_(self.filter_ids)]
        if self.start:
            conds.append(FO.last_passed_at >= self.start)
        return conds

    def on(self, stmt, oid):
        """``stmt`` restricted to objects ``oid`` meeting the conditions."""
        if self.needs_obj:
            stmt = stmt.join(O, O.id == oid)
        return stmt.where(*self.conditions(oid))


def _selection(session: Session, principal: Principal, q: CandidateQuery, filter_ids: list[int],
               selected: list[int]) -> _Selection:
    base, needs_obj = obj_conditions(principal, q, session, C.obj_id)  # checks the parameters once
    accessible = user_group_ids(principal) if not principal.is_admin else sa.select(models.Group.id)
    saved = {
        "savedToAnyAccessible": lambda oid: _saved_any(accessible, oid),
        "notSavedToAnyAccessible": lambda oid: ~_saved_any(accessible, oid),
        "savedToAnySelected": lambda oid: _saved_any(selected, oid),
        "notSavedToAnySelected": lambda oid: ~_saved_any(selected, oid),
        "savedToAllSelected": lambda oid: _saved_all(selected, oid),
        "notSavedToAllSelected": lambda oid: ~_saved_all(selected, oid),
    }.get(q.saved_status)

    made: list[tuple] = [(C.obj_id, base)]  # (oid column, its conditions): made once for each column

    def conditions(oid):
        conds = next((list(c) for col, c in made if col is oid), None)
        if conds is None:
            conds = obj_conditions(principal, q, session, oid)[0] if base else []
            made.append((oid, list(conds)))
        if q.classifications:
            conds.append(classification_exists(principal, q.classifications, oid))
        if q.classifications_reject:
            conds.append(~classification_exists(principal, q.classifications_reject, oid))
        if saved is not None:
            conds.append(saved(oid))
        if q.list_name is not None:  # SkyPortal's listName / listNameReject: the caller's own lists
            conds.append(listed_clause(principal, q.list_name, oid))
        if q.list_name_reject is not None:
            conds.append(~listed_clause(principal, q.list_name_reject, oid))
        return conds

    plain = (not base and not q.classifications and not q.classifications_reject and saved is None
             and q.list_name is None and q.list_name_reject is None)
    return _Selection(filter_ids, q.start_date, q.end_date, conditions, needs_obj,
                      plain and q.start_date is None and q.end_date is None)


def _newest_page(session: Session, sel: _Selection, page: Page) -> tuple[list[tuple[str, datetime]], int | None]:
    """The page of (obj_id, latest pass) newest first; with the total when the list ended on this page
    (else None). One filter without an end date: a slice of its pairs' index. Otherwise the merged
    per-filter stream (pairs, or candidate rows with an end date), cut at a growing limit."""
    need = page.number * page.size
    if sel.by_pairs and len(sel.filter_ids) == 1:
        stmt = sel.on(sa.select(FO.obj_id, FO.last_passed_at).where(*sel.pairs(FO.filter_id == sel.filter_ids[0])),
                      FO.obj_id)
        rows = [tuple(r) for r in session.execute(stmt.order_by(FO.last_passed_at.desc(), FO.obj_id)
                                                  .limit(page.size).offset(need - page.size))]
        return rows, (need - page.size + len(rows) if 0 < len(rows) < page.size else None)
    limit = max(2 * need, 1000)
    while True:
        # each filter's first `limit` rows from its own index (the planner, left to merge them, may rather
        # sort the largest filter whole), then the first `limit` of those
        if sel.by_pairs:
            branches = [sel.on(sa.select(FO.obj_id, FO.last_passed_at.label("passed_at"))
                               .where(*sel.pairs(FO.filter_id == f)), FO.obj_id)
                        .order_by(FO.last_passed_at.desc(), FO.obj_id).limit(limit) for f in sel.filter_ids]
        else:
            branches = [sel.on(sa.select(C.obj_id, C.passed_at).where(*sel.passes(C.filter_id == f)), C.obj_id)
                        .order_by(C.passed_at.desc(), C.obj_id).limit(limit) for f in sel.filter_ids]
        merged = (sa.union_all(*[b.subquery().select() for b in branches]) if len(branches) > 1
                  else branches[0]).subquery("merged")
        stream = (sa.select(merged.c.obj_id, merged.c.passed_at)
                  .order_by(merged.c.passed_at.desc(), merged.c.obj_id).limit(limit).cte("stream"))
        latest = (sa.select(stream.c.obj_id, sa.func.max(stream.c.passed_at).label("passed_at"))
                  .group_by(stream.c.obj_id).cte("latest"))
        rows = (sa.select(latest.c.obj_id, latest.c.passed_at)
                .order_by(latest.c.passed_at.desc(), latest.c.obj_id)
                .limit(page.size).offset(need - page.size).cte("page"))  # (sorted once, read twice)
        order = (rows.c.passed_at.desc(), rows.c.obj_id)
        n_rows, n_objs, ids, passed = session.execute(sa.select(
            sa.select(sa.func.count()).select_from(stream).scalar_subquery(),
            sa.select(sa.func.count()).select_from(latest).scalar_subquery(),
            sa.select(sa.func.array_agg(aggregate_order_by(rows.c.obj_id, *order))).scalar_subquery(),
            sa.select(sa.func.array_agg(aggregate_order_by(rows.c.passed_at, *order))).scalar_subquery(),
        )).one()
        ended = n_rows < limit
        if ended or n_objs >= need:
            return list(zip(ids or [], passed or [])), (n_objs if ended else None)
        limit *= STREAM_GROWTH


def _sorted_page(session: Session, sel: _Selection, page: Page, sort_by: str,
                 order: str) -> list[tuple[str, datetime | None]]:
    """A page sorted by an objs column (or ascending passed_at): (obj_id, None | latest pass)."""
    offset = (page.number - 1) * page.size
    if sort_by == "passed_at":  # ascending: the objects' latest passes, sorted
        latest = (sa.select(C.obj_id, sa.func.max(C.passed_at).label("passed_at")).where(*sel.passes())
                  .group_by(C.obj_id).subquery())
        stmt = sel.on(sa.select(latest.c.obj_id, latest.c.passed_at), latest.c.obj_id)
        stmt = stmt.order_by(latest.c.passed_at.asc(), latest.c.obj_id)
        return [tuple(r) for r in session.execute(stmt.limit(page.size).offset(offset))]
    col = getattr(O, sort_by)
    has_pass = sa.exists().where(C.obj_id == O.id, *sel.passes())
    stmt = sa.select(O.id).where(has_pass, *sel.conditions(O.id))  # objs is read anyway
    stmt = stmt.order_by(col.desc().nulls_last() if order == "desc" else col.asc().nulls_last(), O.id)
    return [(i, None) for i in session.execute(stmt.limit(page.size).offset(offset)).scalars()]


def _filter_counts(session: Session, filter_ids: list[int]) -> dict[int, int]:
    """Objects per filter, from the counts the triggers keep."""
    CC = models.CandidateCount
    got = dict(session.execute(sa.select(CC.filter_id, sa.func.sum(CC.n)).where(CC.filter_id.in_(filter_ids))
                               .group_by(CC.filter_id)).all())
    return {f: int(got.get(f) or 0) for f in filter_ids}


def _total(session: Session, sel: _Selection) -> int:
    """The number of objects the selection lists. Without an end date, from the pairs: the filters from the
    largest to the smallest, each adding its objects that no filter before it has (an index probe per
    object of the smaller filters, never a sort or hash of them all); the largest's own count, when nothing
    else narrows it, is the maintained one. With an end date, the distinct objects of the candidate rows."""
    if not sel.by_pairs:
        ids = sa.select(C.obj_id).where(*sel.passes()).distinct().subquery()
        return session.execute(sel.on(sa.select(sa.func.count()).select_from(ids), ids.c.obj_id)).scalar_one()
    sizes = _filter_counts(session, sel.filter_ids)
    order = sorted(sel.filter_ids, key=lambda f: (-sizes[f], f))
    earlier = sa.orm.aliased(FO)
    total = 0
    for i, f in enumerate(order):
        if i == 0 and sel.plain:
            total += sizes[f]
            continue
        stmt = sa.select(sa.func.count()).select_from(FO).where(*sel.pairs(FO.filter_id == f))
        if i:
            later = [earlier.obj_id == FO.obj_id, earlier.filter_id.in_(order[:i])]
            if sel.start:
                later.append(earlier.last_passed_at >= sel.start)
            stmt = stmt.where(~sa.exists().where(*later))
        total += session.execute(sel.on(stmt, FO.obj_id)).scalar_one()
    return total


class _QueryTotals:
    """SkyPortal's ``queryID``: the first page of a query answers with a new id, and the pages asked with it
    reuse that query's ``totalMatches`` for ``QUERY_CACHE_S`` (SkyPortal keeps the whole id list under it, as
    long). The pages themselves are read afresh. Kept per API process (another process counts again); an
    id asked with other parameters, or unknown, counts again under a new id."""

    def __init__(self, max_entries: int = 10_000):
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[str, int, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, query_id: str | None, signature: str) -> int | None:
        with self._lock:
            got = self._entries.get(query_id) if query_id else None
            if got is None or got[0] != signature or got[2] < time.monotonic():
                return None
            return got[1]

    def put(self, signature: str, total: int) -> str:
        query_id = str(uuid.uuid4())
        with self._lock:
            self._entries[query_id] = (signature, total, time.monotonic() + QUERY_CACHE_S)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return query_id


QUERY_CACHE_S = 3600.0  # as SkyPortal's default misc.minutes_to_keep_candidate_query_cache (60)
_TOTALS = _QueryTotals()


def list_candidates(session: Session, principal: Principal, q: CandidateQuery, page: Page,
                    query_id: str | None = None) -> dict:
    """SkyPortal's candidate list; ``query_id``: SkyPortal's ``queryID`` (see :class:`_QueryTotals`)."""
    if q.saved_status not in SAVED_STATUSES:
        raise ValidationError(f"Invalid savedStatus: must be one of {list(SAVED_STATUSES)}", field="savedStatus")
    _check_sort(q.sort_by, q.sort_order, CANDIDATE_SORTS)
    filter_ids, selected = _selected_filters(session, principal, q)
    sel = _selection(session, principal, q, filter_ids, selected)
    signature = repr((principal.user_id, principal.is_admin, filter_ids, selected, q))
    cached = _TOTALS.get(query_id, signature)
    total = None
    if not filter_ids:
        rows, total = [], 0
    elif q.sort_by == "passed_at" and q.sort_order == "desc":
        rows, total = _newest_page(session, sel, page)
    else:
        rows = _sorted_page(session, sel, page, q.sort_by, q.sort_order)
    if cached is not None:
        total = cached
    else:
        total = _total(session, sel) if total is None else total
        query_id = _TOTALS.put(signature, total)
    last_page = max(1, -(-total // page.size))
    if not rows and page.number > last_page:  # past the last page: 400, as SkyPortal
        raise ValidationError(f"Page number out of range: pageNumber={page.number}, last page is {last_page}",
                              field="pageNumber")
    ids = [i for i, _ in rows]
    passed = dict(rows)
    missing = [i for i in ids if passed[i] is None]
    if missing:  # sorted by an objs column: the latest pass of each object of the page
        passed.update(session.execute(sa.select(C.obj_id, sa.func.max(C.passed_at))
                                      .where(C.obj_id.in_(missing), *sel.passes()).group_by(C.obj_id)).all())
    objs = {row[0]: O.dict_of(row) for row in session.execute(sa.select(*obj_columns()).where(O.id.in_(ids)))}
    details = candidate_details(session, principal, ids, filter_ids, q.include_photometry, q.details)
    candidates = with_derived([{**objs[i], "passed_at": passed[i].isoformat(), **details[i]} for i in ids])
    return {"candidates": candidates, "totalMatches": total, "pageNumber": page.number, "numPerPage": page.size,
            "queryID": query_id}


def candidate_name_search(session: Session, principal: Principal, prefix: str, limit: int) -> dict:
    """SkyPortal's nameOnly autocomplete: ids of the caller's candidates starting with ``prefix``."""
    fids = readable_filters(principal).with_only_columns(F.id)
    like = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    ids = session.execute(sa.select(C.obj_id).where(C.obj_id.like(like, escape="\\"), C.filter_id.in_(fids))
                          .distinct().order_by(C.obj_id).limit(limit)).scalars().all()
    return {"candidates": [{"id": i} for i in ids]}


def fold_candidate_counts(session: Session) -> int:
    """Fold each filter's count deltas into one row, and drop those of deleted filters; returns the rows
    removed. Concurrent writers only add rows, which the next fold takes (the DELETE's snapshot)."""
    CC = models.CandidateCount
    folded = sa.delete(CC).returning(CC.filter_id, CC.n).cte("folded")
    sums = (sa.select(folded.c.filter_id, sa.func.sum(folded.c.n).label("n"), sa.func.count().label("rows"))
            .group_by(folded.c.filter_id).cte("sums"))
    kept = (sa.insert(CC).from_select(["filter_id", "n"], sa.select(sums.c.filter_id, sums.c.n)
                                      .where(sums.c.filter_id.in_(sa.select(F.id))))
            .returning(CC.filter_id).cte("kept"))
    removed = session.execute(sa.select(sa.func.coalesce(sa.func.sum(sums.c.rows), 0),
                                        sa.select(sa.func.count()).select_from(kept).scalar_subquery())).one()
    return int(removed[0]) - int(removed[1])
