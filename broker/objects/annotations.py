"""Annotations on sources, spectra and photometry (SkyPortal's AnnotationHandler), and the ones alert
ingestion makes from the ML scores alerts carry.

As SkyPortal: one annotation per (resource, origin); readable by members of its groups who can also see
the object (and the spectrum / photometry point); changed or deleted only by its author (or a system
admin). The default groups of a new annotation are all the caller's groups.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

import models

from broker.access.auth import Principal, readable_groups
from broker.errors import NotFound, PermissionDenied, ValidationError
from broker.objects.objs import (photometry_visible_clause, register_details, register_exists, user_group_ids,
                                 visible_obj_clause)
from broker.runtime.db import fetch

ORIGIN_RE = re.compile(r"^\w+")  # SkyPortal: a non-empty origin starting with a word character


# -- shared by annotations, comments and spectra ---------------------------------------------------

def groups_named(session: Session, principal: Principal, group_ids, field: str = "group_ids") -> list[models.Group]:
    """The groups ``group_ids`` names, each readable by the caller; else SkyPortal's 400."""
    wanted = list(dict.fromkeys(group_ids))
    found = session.execute(readable_groups(principal).where(models.Group.id.in_(wanted))).scalars().all()
    if {g.id for g in found} != set(wanted):
        raise ValidationError(f"Cannot find one or more groups with IDs: {list(group_ids)}.", field=field)
    return sorted(found, key=lambda g: g.id)


def accessible_groups(session: Session, principal: Principal) -> list[models.Group]:
    """All groups the caller may read (SkyPortal's ``accessible_groups``: every group, for an admin)."""
    return list(session.execute(readable_groups(principal).order_by(models.Group.id)).scalars())


def member_clause(principal: Principal, group_table: sa.Table, key: str, id_col):
    """SQL condition: ``id_col`` is shared (through ``group_table``) with one of the caller's groups."""
    return id_col.in_(sa.select(group_table.c[key]).where(group_table.c.group_id.in_(user_group_ids(principal))))


def spectrum_visible_clause(principal: Principal, id_col=None):
    """SQL condition: the spectrum is shared with one of the caller's groups (true for an admin)."""
    if principal.is_admin:
        return sa.true()
    return member_clause(principal, models.group_spectra, "spectrum_id",
                         models.Spectrum.id if id_col is None else id_col)


def author_dict(user: models.User | None) -> dict | None:
    if user is None:
        return None
    return {"id": user.id, "username": user.username, "first_name": user.first_name,
            "last_name": user.last_name}


# -- resources -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Resource:
    name: str  # the path's associated_resource_type
    model: type
    id_attr: str
    group_table: sa.Table
    type_label: str  # "type" in the source / spectrum listings


RESOURCES = {
    "sources": Resource("sources", models.Annotation, "obj_id", models.group_annotations, "source"),
    "spectra": Resource("spectra", models.AnnotationOnSpectrum, "spectrum_id", models.group_annotations_on_spectra,
                        "spectrum"),
    "photometry": Resource("photometry", models.AnnotationOnPhotometry, "photometry_id",
                           models.group_annotations_on_photometry, "photometry"),
}


def _readable(r: Resource, principal: Principal):
    A = r.model
    if principal.is_admin:
        return sa.true()
    cond = [member_clause(principal, r.group_table, "annotation_id", A.id), visible_obj_clause(principal, A.obj_id)]
    if r.name == "spectra":
        cond.append(spectrum_visible_clause(principal, A.spectrum_id))
    elif r.name == "photometry":
        P = models.Photometry
        cond.append(A.photometry_id.in_(sa.select(P.id).where(photometry_visible_clause(principal))))
    return sa.and_(*cond)


def coerce_resource_id(resource: str, resource_id: str):
    if resource == "sources":
        return resource_id
    try:
        return int(resource_id)
    except (TypeError, ValueError):
        raise ValidationError(f"Invalid resource_id: {resource_id}", field="resource_id") from None


def annotation_to_dict(a, r: Resource, groups: set[int] | None = None) -> dict:
    """SkyPortal's annotation: its columns and ``groups`` (those of the caller's; all for an admin)."""
    out = a.to_dict()
    out["groups"] = [g.to_dict() for g in sorted(a.groups, key=lambda g: g.id) if groups is None or g.id in groups]
    return out


def _caller_groups(session: Session, principal: Principal) -> set[int] | None:
    if principal.is_admin:
        return None
    return set(session.execute(user_group_ids(principal)).scalars())


def list_annotations(session: Session, principal: Principal, resource: str, resource_id: str) -> list[dict]:
    r = RESOURCES[resource]
    rid = coerce_resource_id(resource, resource_id)
    A = r.model
    rows = session.execute(sa.select(A).options(selectinload(A.groups))
                           .where(getattr(A, r.id_attr) == rid, _readable(r, principal))
                           .order_by(A.origin, A.id)).scalars().all()
    mine = _caller_groups(session, principal)
    return [annotation_to_dict(a, r, mine) for a in rows]


def _find(session: Session, principal: Principal, r: Resource, resource_id: str, annotation_id: int):
    A = r.model
    a = session.execute(sa.select(A).where(A.id == annotation_id, _readable(r, principal))).scalar()
    if a is None:
        raise PermissionDenied("Could not find any accessible annotations.")
    if str(getattr(a, r.id_attr)) != resource_id:
        raise ValidationError(f"Annotation resource ID does not match resource ID given in path ({resource_id})")
    return a


def get_annotation(session: Session, principal: Principal, resource: str, resource_id: str,
                   annotation_id: int) -> dict:
    r = RESOURCES[resource]
    coerce_resource_id(resource, resource_id)
    return annotation_to_dict(_find(session, principal, r, resource_id, annotation_id), r,
                              _caller_groups(session, principal))


def _check_origin(origin: str) -> None:
    if not ORIGIN_RE.match(origin):
        raise ValidationError("Invalid/missing parameters: origin: String should match pattern '^\\w+'",
                              field="origin")


def _target_obj(session: Session, principal: Principal, r: Resource, resource_id: str) -> tuple[str, dict]:
    """The object the new annotation is on, and the resource column(s) to set; errors as SkyPortal."""
    rid = coerce_resource_id(r.name, resource_id)
    if r.name == "sources":
        obj = session.execute(sa.select(models.Obj.id).where(models.Obj.id == rid,
                                                             visible_obj_clause(principal))).scalar()
        if obj is None:
            raise NotFound(f"Obj {resource_id} not found")
        return rid, {}
    if r.name == "spectra":
        S = models.Spectrum
        obj_id = session.execute(sa.select(S.obj_id).where(S.id == rid, spectrum_visible_clause(principal),
                                                           visible_obj_clause(principal, S.obj_id))).scalar()
        if obj_id is None:
            raise PermissionDenied(f"Could not access spectrum {resource_id}.")
        return obj_id, {"spectrum_id": rid}
    P = models.Photometry
    stmt = sa.select(P.obj_id).where(P.id == rid)
    if not principal.is_admin:
        stmt = stmt.where(photometry_visible_clause(principal), visible_obj_clause(principal, P.obj_id))
    obj_id = session.execute(stmt).scalar()
    if obj_id is None:
        raise PermissionDenied(f"Could not access photometry {resource_id}.")
    return obj_id, {"photometry_id": rid}


def post_annotation(session: Session, principal: Principal, resource: str, resource_id: str, body: dict) -> int:
    r = RESOURCES[resource]
    _check_origin(body["origin"])
    group_ids = body.get("group_ids")
    groups = (groups_named(session, principal, group_ids) if group_ids
              else accessible_groups(session, principal))
    obj_id, extra = _target_obj(session, principal, r, resource_id)
    A = r.model
    key_col, key = (A.obj_id, obj_id) if r.name == "sources" else (getattr(A, r.id_attr), extra[r.id_attr])
    if session.execute(sa.select(A.id).where(key_col == key, A.origin == body["origin"])).first():
        raise ValidationError(
            f"Annotation already exists: duplicate key value violates unique constraint \"{_unique_name(A)}\": "
            f"an annotation from origin '{body['origin']}' is already on {r.name} {resource_id}; update it instead",
            field="origin")
    a = A(data=body["data"], origin=body["origin"], obj_id=obj_id, author_id=principal.user_id, groups=groups,
          **extra)
    session.add(a)
    session.flush()
    return a.id


def _unique_name(A) -> str:
    return next(c.name for c in A.__table__.constraints if isinstance(c, sa.UniqueConstraint))


def _check_author(a, principal: Principal) -> None:
    if not principal.is_admin and a.author_id != principal.user_id:
        # SkyPortal's update/delete access is the author's only: anyone else finds nothing to change
        raise PermissionDenied("Could not find any accessible annotations.")


def update_annotation(session: Session, principal: Principal, resource: str, resource_id: str, annotation_id: int,
                      body: dict) -> None:
    r = RESOURCES[resource]
    coerce_resource_id(resource, resource_id)
    a = _find(session, principal, r, resource_id, annotation_id)
    _check_author(a, principal)
    if body.get("data") is not None:
        a.data = body["data"]
    if body.get("origin") is not None:
        _check_origin(body["origin"])
        A = r.model
        clash = session.execute(sa.select(A.id).where(getattr(A, r.id_attr) == getattr(a, r.id_attr),
                                                      A.origin == body["origin"], A.id != a.id)).first()
        if clash:
            raise ValidationError(f"Annotation already exists: duplicate key value violates unique constraint "
                                  f"\"{_unique_name(A)}\": origin '{body['origin']}'", field="origin")
        a.origin = body["origin"]
    if body.get("group_ids") is not None:
        a.groups = groups_named(session, principal, body["group_ids"])
    a.modified = models.utcnow()
    session.flush()


def delete_annotation(session: Session, principal: Principal, resource: str, resource_id: str,
                      annotation_id: int) -> None:
    r = RESOURCES[resource]
    coerce_resource_id(resource, resource_id)
    a = _find(session, principal, r, resource_id, annotation_id)
    _check_author(a, principal)
    session.delete(a)
    session.flush()


# -- for other resources' payloads ------------------------------------------------------------

def annotations_of_objs(session: Session, principal: Principal, obj_ids) -> dict[str, list[dict]]:
    """Each object's readable source annotations, by origin, with ``author`` and ``type``: "source"
    (the ``annotations`` of ``GET /api/sources/{obj_id}``; read with broker.objects.nested)."""
    from broker.objects.nested import read_nested

    return read_nested(session, principal, obj_ids, ["annotations"])["annotations"]


def annotations_of_spectra(session: Session, principal: Principal, spectrum_ids) -> dict[int, list[dict]]:
    return _annotations_of(session, principal, "spectra", "spectrum_id", "spectrum", spectrum_ids)


def _annotations_of(session: Session, principal: Principal, resource: str, key: str, label: str, ids) -> dict:
    """Readable annotations of a resource's rows ``ids`` (by ``key``), by origin, with ``author`` and ``type``
    (hand-written SQL: these lists are on every source and candidate answer)."""
    r = RESOURCES[resource]
    A = r.model
    table, group_table = A.__tablename__, r.group_table.name
    out: dict = {i: [] for i in ids}
    if not out:
        return out
    readable = "" if principal.is_admin else f" AND ({_readable_sql(resource)})"
    rows = fetch(session, f"""
        SELECT {A.columns_sql(table)}, u.id, u.username, u.first_name, u.last_name
        FROM {table} LEFT JOIN users u ON u.id = {table}.author_id
        WHERE {table}.{key} = ANY(%(ids)s){readable}
        ORDER BY {table}.origin, {table}.id""", {"ids": list(out), "uid": principal.user_id})
    if not rows:
        return out
    from broker.objects.nested import MY_GROUPS_SQL

    G = models.Group
    mine = "" if principal.is_admin else f" AND g.id IN ({MY_GROUPS_SQL})"
    groups: dict[int, list] = {}
    for row in fetch(session, f"""
            SELECT gt.annotation_id, {G.columns_sql("g")} FROM {group_table} gt JOIN groups g ON g.id = gt.group_id
            WHERE gt.annotation_id = ANY(%(aids)s){mine} ORDER BY g.id""",
                     {"aids": [row[0] for row in rows], "uid": principal.user_id}):
        groups.setdefault(row[0], []).append(G.dict_of(row[1:]))
    n = len(A.public_keys())
    for row in rows:
        d = A.dict_of(row)
        d["groups"] = groups.get(d["id"], [])
        uid, username, first, last = row[n:]
        d["author"] = None if uid is None else {"id": uid, "username": username, "first_name": first,
                                                "last_name": last}
        d["type"] = label
        out[d[key]].append(d)
    return out


@functools.lru_cache(maxsize=None)
def _readable_sql(resource: str) -> str:
    """:func:`_readable` of a non-admin caller as SQL text (on the resource's table, by its name; parameter
    ``uid``)."""
    from broker.access.auth import caller_sql

    return caller_sql(lambda p: _readable(RESOURCES[resource], p), RESOURCES[resource].model.__table__)


# -- ingestion -------------------------------------------------------------------------------------

_INGEST_ANNOTATIONS = sa.text("""
    INSERT INTO annotations (obj_id, origin, data, created_at, modified)
    SELECT o, origin, CAST(d AS jsonb), :now, :now
    FROM unnest(CAST(:o AS text[]), CAST(:origin AS text[]), CAST(:d AS text[])) AS v(o, origin, d)
    ORDER BY o, origin  -- one lock order for every writer
    ON CONFLICT ON CONSTRAINT uq_annotations_obj_origin DO NOTHING
    RETURNING id, obj_id, origin
""")

_INGEST_ANNOTATION_GROUPS = sa.text("""
    INSERT INTO group_annotations (group_id, annotation_id)
    SELECT g, a FROM unnest(CAST(:g AS int[]), CAST(:a AS int[])) AS v(g, a)
    ON CONFLICT DO NOTHING
""")


def ingest_annotations(session: Session, rows: list[tuple[str, str, dict, int]], now: datetime) -> int:
    """Alert ML scores as source annotations, as Kowalski posts them: one per (object, origin) with
    origin ``"<group name>:<filter name>"`` of the filter the alert passed, shared with the filter's
    group. As Kowalski (``update_annotations`` off, its default), an annotation that exists already is
    kept as it is. ``rows``: (obj_id, origin, data, group_id). Returns the number of new annotations."""
    if not rows:
        return 0
    import json

    first: dict[tuple[str, str], tuple[dict, int]] = {}
    for obj_id, origin, data, group_id in rows:
        first.setdefault((obj_id, origin), (data, group_id))
    keys = sorted(first)
    made = session.execute(_INGEST_ANNOTATIONS, {
        "o": [k[0] for k in keys], "origin": [k[1] for k in keys],
        "d": [json.dumps(first[k][0], allow_nan=False) for k in keys], "now": now}).all()
    if made:
        session.execute(_INGEST_ANNOTATION_GROUPS, {"g": [first[(o, origin)][1] for _, o, origin in made],
                                                    "a": [a for a, _, _ in made]})
    return len(made)


def _has_annotations(principal: Principal):
    A = models.Annotation
    return sa.exists().where(A.obj_id == models.Obj.id, _readable(RESOURCES["sources"], principal))


# the ``annotations`` of source / candidate answers (see broker.objects.objs's hooks)
register_details("annotations", annotations_of_objs)
register_exists("annotations", _has_annotations)
