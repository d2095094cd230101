"""What a page of objects carries nested (saved groups, classifications, localizations, annotations,
thumbnails, detections, candidate passes, duplicates), read in one round trip.

A source or candidate answer lists several kinds of rows per object; read kind by kind that was a query
each, and on this API the round trips, not the rows, are what a request costs. Here every kind asked for
is one branch of a single ``UNION ALL``; each branch yields ``(kind, obj_id, order, row)`` where ``row``
is a JSON array of the columns (so that branches of different shapes share one result), timestamps as
integer microseconds since the epoch (turned back into the naive-UTC ISO strings ``to_dict`` writes, so
the answers are unchanged to the character). Visibility is each kind's rule, as SQL text made once from
the same SQLAlchemy conditions the rest of the code uses, the caller's id a parameter
(``broker.access.auth.caller_sql``), so that one prepared statement per shape serves every caller.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

import models

from broker.access.auth import Principal, caller_sql
from broker.runtime.db import fetch

EPOCH = datetime(1970, 1, 1)
KINDS = ("groups", "classifications", "localizations", "annotations", "thumbnails", "detections", "passes",
         "duplicates", "followups")


def _us(col: str) -> str:
    """SQL: a timestamp column as integer microseconds since the epoch (exact)."""
    return f"(extract(epoch from {col}) * 1000000)::bigint"


def _iso(us: int | None) -> str | None:
    return None if us is None else (EPOCH + timedelta(microseconds=us)).isoformat()


@functools.lru_cache(maxsize=None)
def _timestamps(model) -> frozenset[str]:
    return frozenset(k for k in model.public_keys() if isinstance(model.__table__.c[k].type, sa.DateTime))


def _json_cols(model, alias: str) -> str:
    """The model's serialised columns as ``json_build_array`` arguments (timestamps as microseconds)."""
    ts = _timestamps(model)
    return ", ".join(_us(f'{alias}."{k}"') if k in ts else f'{alias}."{k}"' for k in model.public_keys())


def _dict(model, values: list) -> dict:
    """:meth:`models.base.Base.to_dict` of a row read by :func:`_json_cols`."""
    ts = _timestamps(model)
    return {k: _iso(v) if k in ts else v for k, v in zip(model.public_keys(), values)}


# -- a non-admin caller's visibility, as SQL text with the parameter ``uid`` (auth.caller_sql: one text
# for every caller, made once) ----------------------------------------------------------------------

MY_GROUPS_SQL = "SELECT group_users.group_id FROM group_users WHERE group_users.user_id = %(uid)s"


@functools.lru_cache(maxsize=None)
def visible_obj_sql() -> str:
    """``objs.visible_obj_clause`` on ``objs.id`` (the table must be named ``objs``)."""
    from broker.objects.objs import visible_obj_clause

    return caller_sql(visible_obj_clause, models.Obj.__table__)


@functools.lru_cache(maxsize=None)
def photometry_visible_sql() -> str:
    """``photometry.visible_clause`` (the table must be named ``photometry``)."""
    from broker.objects.photometry import visible_clause

    return caller_sql(visible_clause, models.Photometry.__table__)


@functools.lru_cache(maxsize=None)
def readable_requests_sql() -> str:
    """``followup.requests.readable_requests``' condition (on ``followup_requests``)."""
    from broker.followup.requests import readable_requests

    return caller_sql(lambda p: readable_requests(p).whereclause, models.FollowupRequest.__table__)


@functools.lru_cache(maxsize=None)
def readable_annotations_sql() -> str:
    """``annotations._readable`` of source annotations (on ``annotations``)."""
    from broker.objects.annotations import RESOURCES, _readable

    return caller_sql(lambda p: _readable(RESOURCES["sources"], p), models.Annotation.__table__)


SOURCE_STATES = {(False, False): "s.active", (True, False): "(s.active OR s.requested)",
                 (False, True): "(NOT s.active AND s.requested)", (True, True): "(NOT s.active AND s.requested)"}


# -- the branches ---------------------------------------------------------------------------------

def _branches(principal: Principal, kinds, include_requested: bool, requested_only: bool, snr: float) -> list[str]:
    admin = principal is None or principal.is_admin  # None: only for kinds everyone sees (localizations)
    mine_s = "" if admin else f" AND s.group_id IN ({MY_GROUPS_SQL})"
    mine_cg = "" if admin else f" AND cg.group_id IN ({MY_GROUPS_SQL})"
    mine_g = "" if admin else f" AND g.id IN ({MY_GROUPS_SQL})"
    G, C, A, T = models.Group, models.Classification, models.Annotation, models.Thumbnail
    sql = {
        "groups": f"""
            SELECT 'groups', s.obj_id, row_number() OVER (ORDER BY s.saved_at, s.group_id),
                   json_build_array({_json_cols(G, "g")}, s.active, s.requested, {_us("s.saved_at")},
                                    s.saved_by_id, u.username, u.first_name, u.last_name)
            FROM sources s JOIN groups g ON g.id = s.group_id LEFT JOIN users u ON u.id = s.saved_by_id
            WHERE s.obj_id = ANY(%(ids)s) AND {SOURCE_STATES[include_requested, requested_only]}{mine_s}""",
        "classifications": f"""
            SELECT 'classifications', c.obj_id, row_number() OVER (ORDER BY c.created_at, c.id),
                   json_build_array({_json_cols(C, "c")},
                                    ARRAY(SELECT cg.group_id FROM classification_groups cg
                                          WHERE cg.classification_id = c.id{mine_cg} ORDER BY cg.group_id))
            FROM classifications c
            WHERE c.obj_id = ANY(%(ids)s){"" if admin else f''' AND EXISTS (
                SELECT 1 FROM classification_groups cg WHERE cg.classification_id = c.id{mine_cg})'''}""",
        "localizations": f"""
            SELECT 'localizations', ol.obj_id, row_number() OVER (ORDER BY l.dateobs DESC, l.id),
                   json_build_array(ol.localization_id, ol.credible_level, ol.probdensity, {_us("l.dateobs")},
                                    l.localization_name)
            FROM obj_localizations ol JOIN localizations l ON l.id = ol.localization_id
            WHERE ol.obj_id = ANY(%(ids)s)""",
        "annotations": f"""
            SELECT 'annotations', annotations.obj_id,
                   row_number() OVER (ORDER BY annotations.origin, annotations.id),
                   json_build_array({_json_cols(A, "annotations")}, u.id, u.username, u.first_name, u.last_name,
                                    (SELECT coalesce(json_agg(json_build_array({_json_cols(G, "g")}) ORDER BY g.id),
                                                     '[]'::json)
                                     FROM group_annotations gt JOIN groups g ON g.id = gt.group_id
                                     WHERE gt.annotation_id = annotations.id{mine_g}))
            FROM annotations LEFT JOIN users u ON u.id = annotations.author_id
            WHERE annotations.obj_id = ANY(%(ids)s){"" if admin else f" AND ({readable_annotations_sql()})"}""",
        "thumbnails": f"""
            SELECT 'thumbnails', t.obj_id, row_number() OVER (ORDER BY t.created_at, t.id),
                   json_build_array({_json_cols(T, "t")})
            FROM thumbnails t WHERE t.obj_id = ANY(%(ids)s)""",
        "detections": f"""
            SELECT 'detections', photometry.obj_id, 0, json_build_array(min(photometry.mjd), max(photometry.mjd))
            FROM photometry
            WHERE photometry.obj_id = ANY(%(ids)s) AND photometry.flux IS NOT NULL AND photometry.fluxerr > 0
              AND photometry.flux / photometry.fluxerr >= {float(snr)!r}
              {"" if admin else f" AND ({photometry_visible_sql()})"}
            GROUP BY photometry.obj_id""",
        "passes": f"""
            SELECT 'passes', c.obj_id, row_number() OVER (ORDER BY c.passed_at, c.id),
                   json_build_array(c.filter_id, f.group_id, c.passing_alert_id, {_us("c.passed_at")})
            FROM candidates c JOIN filters f ON f.id = c.filter_id
            WHERE c.obj_id = ANY(%(ids)s) AND c.filter_id = ANY(%(fids)s)""",
        "duplicates": f"""
            SELECT 'duplicates', d.obj_id, row_number() OVER (ORDER BY d.separation, d.duplicate_obj_id),
                   json_build_array(d.duplicate_obj_id, d.separation, objs.ra, objs.dec)
            FROM obj_duplicates d JOIN objs ON objs.id = d.duplicate_obj_id
            WHERE d.obj_id = ANY(%(ids)s){"" if admin else f" AND ({visible_obj_sql()})"}""",
        "followups": f"""
            SELECT 'followups', followup_requests.obj_id, followup_requests.id, json_build_array(followup_requests.id)
            FROM followup_requests
            WHERE followup_requests.obj_id = ANY(%(ids)s){"" if admin else f" AND ({readable_requests_sql()})"}""",
    }
    return [sql[k] for k in kinds]


def _decode(kind: str, v: list) -> Any:
    if kind == "groups":
        n = len(models.Group.public_keys())
        active, requested, saved_at, saver, username, first, last = v[n:]
        return {**_dict(models.Group, v), "active": active, "requested": requested, "saved_at": _iso(saved_at),
                "saved_by": None if username is None else {"id": saver, "username": username, "first_name": first,
                                                           "last_name": last},
                "saved_by_id": saver}
    if kind == "classifications":
        d = _dict(models.Classification, v)
        d["group_ids"] = list(v[-1] or [])
        return d
    if kind == "localizations":
        lid, cl, pd, dateobs, name = v
        return {"localization_id": lid, "dateobs": _iso(dateobs), "localization_name": name, "credible_level": cl,
                "probdensity": pd}
    if kind == "annotations":
        n = len(models.Annotation.public_keys())
        d = _dict(models.Annotation, v)
        uid, username, first, last, groups = v[n:]
        d["groups"] = [_dict(models.Group, g) for g in groups]
        d["author"] = None if uid is None else {"id": uid, "username": username, "first_name": first,
                                                "last_name": last}
        d["type"] = "source"
        return d
    if kind == "thumbnails":
        return _dict(models.Thumbnail, v)
    if kind == "detections":
        return tuple(v)
    if kind == "passes":
        return tuple(v)
    if kind == "duplicates":
        dup, sep, ra, dec = v
        return {"obj_id": dup, "separation": sep, "ra": ra, "dec": dec}
    return v[0]  # followups: the request id


def read_nested(session, principal: Principal | None, ids, kinds, *, include_requested: bool = False,
                requested_only: bool = False, filter_ids=(), snr: float = 5.0) -> dict[str, dict[str, list]]:
    """``{kind: {obj_id: [rows, in each kind's order]}}`` for ``kinds`` (of KINDS) of objects ``ids``, in one
    query. ``include_requested``/``requested_only``: which saves "groups" lists (SkyPortal's choice);
    ``filter_ids``: the filters whose passes "passes" lists; ``snr``: what "detections" counts."""
    ids = list(dict.fromkeys(ids))
    kinds = [k for k in KINDS if k in set(kinds)]
    out: dict[str, dict[str, list]] = {k: {i: [] for i in ids} for k in kinds}
    if not ids or not kinds:
        return out
    branches = _branches(principal, kinds, include_requested, requested_only, snr)
    uid = None if principal is None else principal.user_id
    rows = fetch(session, "\nUNION ALL\n".join(branches), {"ids": ids, "fids": list(filter_ids), "uid": uid},
                 prepare=True)
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    for kind, obj_id, _, v in rows:
        out[kind][obj_id].append(_decode(kind, v))
    return out
