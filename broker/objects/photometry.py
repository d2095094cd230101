"""Photometry uploaded through the API (alerts write theirs in :mod:`broker.ingest.pipeline`)."""

from __future__ import annotations

import math

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

import models
from models.enums import ALLOWED_BANDPASSES, ALLOWED_MAGSYSTEMS

from broker.access.auth import Principal, get_readable_group
from broker.ingest.decoding import DETECTION_NSIGMA, MAG_MAX, MAG_MIN
from broker.errors import NotFound, PermissionDenied, ValidationError
from broker.objects.objs import get_visible_obj, photometry_visible_clause, user_group_ids
from broker.runtime.db import copy_rows

ARRAY_FIELDS = ("mjd", "flux", "fluxerr", "zp", "mag", "magerr", "limiting_mag", "filter", "magsys",
                "ra", "dec", "origin", "instrument_name")


def _columns(body: dict) -> list[dict]:
    """SkyPortal takes each field as a scalar or a list; lists must share one length."""
    lengths = {k: len(v) for k, v in body.items() if k in ARRAY_FIELDS and isinstance(v, list)}
    n = max(lengths.values(), default=1)
    for k, length in lengths.items():
        if length != n:
            raise ValidationError(f"Invalid field '{k}': has {length} values where other fields have {n}", field=k)
    rows = []
    for i in range(n):
        rows.append({k: (body[k][i] if isinstance(body.get(k), list) else body.get(k)) for k in ARRAY_FIELDS})
    return rows


def _to_flux(row: dict, i: int) -> dict:
    """One point in µJy-compatible flux space: (flux, fluxerr, zp) from either flux or mag input."""
    where = f"[{i}]"
    if row["filter"] not in ALLOWED_BANDPASSES:
        raise ValidationError(f"Invalid value for field 'filter'{where}: {row['filter']!r} is not a known bandpass",
                              field="filter")
    magsys = row["magsys"] or "ab"
    if magsys not in ALLOWED_MAGSYSTEMS:
        raise ValidationError(f"Invalid value for field 'magsys'{where}: must be one of {list(ALLOWED_MAGSYSTEMS)}",
                              field="magsys")
    has_flux = row["fluxerr"] is not None
    has_mag = row["mag"] is not None or row["limiting_mag"] is not None
    if has_flux == has_mag:
        raise ValidationError(f"Invalid photometry{where}: give either flux/fluxerr/zp or mag/magerr/limiting_mag",
                              field="flux")
    for name in ("mag", "limiting_mag"):
        if row[name] is not None and not MAG_MIN <= row[name] <= MAG_MAX:
            raise ValidationError(f"Invalid value for field '{name}'{where}: {row[name]!r} is not an AB magnitude in "
                                  f"[{MAG_MIN:g}, {MAG_MAX:g}]", field=name)
    if row["magerr"] is not None and not 0 <= row["magerr"] <= 100:
        raise ValidationError(f"Invalid value for field 'magerr'{where}: must be between 0 and 100", field="magerr")
    if row["zp"] is not None and not -100 <= row["zp"] <= 100:
        raise ValidationError(f"Invalid value for field 'zp'{where}: must be between -100 and 100", field="zp")
    if has_flux:
        zp = row["zp"] if row["zp"] is not None else 23.9
        if row["fluxerr"] <= 0:
            raise ValidationError(f"Invalid value for field 'fluxerr'{where}: must be positive", field="fluxerr")
        flux, fluxerr, lim = row["flux"], row["fluxerr"], row["limiting_mag"]
    else:
        zp = 23.9
        if row["mag"] is not None:
            if row["magerr"] is None:
                raise ValidationError(f"Missing required field 'magerr'{where}", field="magerr")
            flux = 10 ** (-0.4 * (row["mag"] - zp))
            fluxerr = flux * row["magerr"] * math.log(10) / 2.5
            lim = row["limiting_mag"]
        else:
            flux, lim = None, row["limiting_mag"]
            fluxerr = 10 ** (-0.4 * (lim - zp)) / DETECTION_NSIGMA
    return {"mjd": row["mjd"], "flux": flux, "fluxerr": fluxerr, "zp": zp, "magsys": magsys,
            "filter": row["filter"], "limiting_mag": lim, "ra": row["ra"], "dec": row["dec"],
            "origin": row["origin"] or "", "instrument_name": row["instrument_name"] or ""}


_UPLOAD_STAGE = """
    CREATE TEMP TABLE IF NOT EXISTS photometry_up (
        i int, mjd float8, flux float8, fluxerr float8, zp float8, magsys text, filter text,
        limiting_mag float8, ra float8, dec float8, origin text, instrument_name text
    ) ON COMMIT DELETE ROWS
"""
_UPLOAD_COLUMNS = ("i", "mjd", "flux", "fluxerr", "zp", "magsys", "filter", "limiting_mag", "ra", "dec", "origin",
                   "instrument_name")
_UP = sa.table("photometry_up", *(sa.column(c) for c in _UPLOAD_COLUMNS))
_KEY = ("filter", "mjd", "instrument_name", "origin")


def post_photometry(session: Session, principal: Principal, body: dict, sitewide_group: str) -> list[int]:
    """Store points in bulk (COPY), returning their ids in the order given, and share them with groups.

    A point with the key (object, filter, mjd, instrument, origin) of a point the uploader can already
    see is that point (its id is returned, the groups are added to it). A point the uploader cannot see
    is never touched or revealed: the upload gets its own row (``dedup_scope`` = the uploader)."""
    obj_id = body["obj_id"]
    try:  # as SkyPortal: an invalid object id is a 400; one that exists out of sight reads the same
        get_visible_obj(session, principal, obj_id)
    except NotFound:
        raise ValidationError(f"Invalid obj_id: no object '{obj_id}'", field="obj_id") from None
    group_ids = body.get("group_ids", [])
    if group_ids == "all":
        group_ids = [session.execute(sa.select(models.Group.id).where(models.Group.name == sitewide_group)).scalar()]
    for gid in group_ids:
        get_readable_group(session, principal, gid)
    # always visible to the uploader
    single = session.execute(
        sa.select(models.Group.id).where(models.Group.single_user_group,
                                         models.Group.id.in_(user_group_ids(principal)))).scalar()
    groups = sorted({*group_ids, *([single] if single else [])})
    rows = [_to_flux(r, i) for i, r in enumerate(_columns(body))]
    if not rows:
        return []
    copy_rows(session, _UPLOAD_STAGE, "photometry_up", _UPLOAD_COLUMNS,
              ([i, *(r[c] for c in _UPLOAD_COLUMNS[1:])] for i, r in enumerate(rows)),
              force_not_null=("origin", "instrument_name"))

    P = models.Photometry
    same_key = sa.and_(P.obj_id == obj_id, *(getattr(P, k) == _UP.c[k] for k in _KEY))
    visible_same_key = sa.and_(same_key, photometry_visible_clause(principal))
    # 1. points the uploader already sees (the oldest, if several) are reused
    reused = dict(session.execute(
        sa.select(_UP.c.i, sa.func.min(P.id)).join(P, visible_same_key).group_by(_UP.c.i)).all())
    # 2. the rest become the uploader's own rows (one per key; a repeat of a key is that row)
    now = models.utcnow()
    fresh = (sa.select(sa.literal(obj_id), *(_UP.c[c] for c in _UPLOAD_COLUMNS[1:]),
                       sa.literal(principal.user_id), sa.literal(principal.user_id), sa.literal(now), sa.literal(now))
             .where(~sa.exists().where(visible_same_key)).order_by(_UP.c.i))
    cols = ["obj_id", *_UPLOAD_COLUMNS[1:], "owner_id", "dedup_scope", "created_at", "modified"]
    session.execute(insert(P).from_select(cols, fresh).on_conflict_do_nothing(constraint="uq_photometry_point"))
    own = dict(session.execute(
        sa.select(_UP.c.i, P.id).join(P, same_key).where(P.dedup_scope == principal.user_id)).all())
    ids = [reused.get(i, own.get(i)) for i in range(len(rows))]
    if groups:
        distinct = sorted(set(ids))
        session.execute(sa.text("""
            INSERT INTO photometry_groups (photometry_id, group_id)
            SELECT p, g FROM unnest(CAST(:p AS int[])) AS p CROSS JOIN unnest(CAST(:g AS int[])) AS g
            ON CONFLICT DO NOTHING"""), {"p": distinct, "g": groups})
    return ids


def get_photometry(session: Session, principal: Principal, photometry_id: int) -> tuple[models.Photometry, list[int]]:
    stmt = sa.select(models.Photometry).where(models.Photometry.id == photometry_id)
    if not principal.is_admin:
        stmt = stmt.where(photometry_visible_clause(principal))
    p = session.execute(stmt).scalar()
    if p is None:
        raise NotFound(f"No photometry with ID {photometry_id}")
    stmt = sa.select(models.photometry_groups.c.group_id).where(models.photometry_groups.c.photometry_id == photometry_id)
    if not principal.is_admin:  # only the caller's groups are named
        stmt = stmt.where(models.photometry_groups.c.group_id.in_(user_group_ids(principal)))
    return p, list(session.execute(stmt).scalars().all())


def delete_photometry(session: Session, principal: Principal, photometry_id: int) -> None:
    p, _ = get_photometry(session, principal, photometry_id)
    if p.owner_id != principal.user_id and not principal.is_admin:
        raise PermissionDenied("Insufficient permissions: only the uploader or an admin may delete photometry")
    session.delete(p)
    session.flush()
