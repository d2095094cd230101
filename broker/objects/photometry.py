"""Photometry uploaded through the API (alerts write theirs in :mod:`broker.ingest.pipeline`)."""

from __future__ import annotations

import math

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

import models
from models.enums import ALLOWED_BANDPASSES, ALLOWED_MAGSYSTEMS

from broker.access.auth import Principal, get_readable_group
from broker.ingest.decoding import DETECTION_NSIGMA
from broker.errors import NotFound, PermissionDenied, ValidationError
from broker.objects.objs import get_visible_obj, photometry_visible_clause, user_group_ids

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


def post_photometry(session: Session, principal: Principal, body: dict, sitewide_group: str) -> list[int]:
    """Store points (duplicates of existing points return the existing ids); share them with groups."""
    if session.get(models.Obj, body["obj_id"]) is None:
        raise ValidationError(f"Invalid obj_id: no object '{body['obj_id']}' (save it as a source first)",
                              field="obj_id")
    get_visible_obj(session, principal, body["obj_id"])
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
    now = models.utcnow()
    ids = []
    for r in rows:
        values = {**r, "obj_id": body["obj_id"], "owner_id": principal.user_id, "created_at": now, "modified": now}
        stmt = insert(models.Photometry).values(**values).on_conflict_do_nothing(constraint="uq_photometry_point")
        pid = session.execute(stmt.returning(models.Photometry.id)).scalar()
        if pid is None:
            pid = session.execute(sa.select(models.Photometry.id).where(
                models.Photometry.obj_id == body["obj_id"], models.Photometry.filter == r["filter"],
                models.Photometry.mjd == r["mjd"], models.Photometry.instrument_name == r["instrument_name"],
                models.Photometry.origin == r["origin"])).scalar_one()
        ids.append(pid)
    if groups:
        session.execute(insert(models.photometry_groups).values(
            [{"photometry_id": p, "group_id": g} for p in ids for g in groups]).on_conflict_do_nothing())
    return ids


def get_photometry(session: Session, principal: Principal, photometry_id: int) -> tuple[models.Photometry, list[int]]:
    stmt = sa.select(models.Photometry).where(models.Photometry.id == photometry_id)
    if not principal.is_admin:
        stmt = stmt.where(photometry_visible_clause(principal))
    p = session.execute(stmt).scalar()
    if p is None:
        raise NotFound(f"No photometry with ID {photometry_id}")
    groups = session.execute(sa.select(models.photometry_groups.c.group_id)
                             .where(models.photometry_groups.c.photometry_id == photometry_id)).scalars().all()
    return p, list(groups)


def delete_photometry(session: Session, principal: Principal, photometry_id: int) -> None:
    p, _ = get_photometry(session, principal, photometry_id)
    if p.owner_id != principal.user_id and not principal.is_admin:
        raise PermissionDenied("Insufficient permissions: only the uploader or an admin may delete photometry")
    session.delete(p)
    session.flush()
