"""Objects as REST users see them: visibility by group, candidates, sources and their serialisation."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import arrow
import sqlalchemy as sa
from sqlalchemy.orm import Session

import models

from broker.access.auth import Principal, get_readable_group, membership, readable_filters, readable_groups_named
from broker.errors import NotFound, PermissionDenied, ValidationError
from broker.pagination import Page, paginate

C, F, O, S = models.Candidate, models.Filter, models.Obj, models.Source
SAVED_STATUSES = ("all", "savedToAllSelected", "savedToAnySelected", "savedToAnyAccessible",
                  "notSavedToAnyAccessible", "notSavedToAnySelected", "notSavedToAllSelected")
DETECTION_SNR = 5.0  # as SkyPortal's phot_detection_threshold for mag-format photometry


# -- visibility --------------------------------------------------------------------------------

def user_group_ids(principal: Principal) -> sa.Select:
    return sa.select(models.GroupUser.group_id).where(models.GroupUser.user_id == principal.user_id)


def visible_obj_clause(principal: Principal, obj_id_col=O.id):
    """SQL condition: the caller can see this object (a candidate of their filters or a source of their groups)."""
    if principal.is_admin:
        return sa.true()
    groups = user_group_ids(principal)
    return sa.or_(
        sa.exists().where(C.obj_id == obj_id_col, C.filter_id == F.id, F.group_id.in_(groups)),
        sa.exists().where(S.obj_id == obj_id_col, S.active, S.group_id.in_(groups)),
    )


def get_visible_obj(session: Session, principal: Principal, obj_id: str) -> models.Obj:
    obj = session.execute(sa.select(O).where(O.id == obj_id, visible_obj_clause(principal))).scalar()
    if obj is None:
        raise NotFound(f"No object with ID '{obj_id}'")
    return obj


def parse_date(raw: str | None, name: str) -> datetime | None:
    if raw is None or raw == "":
        return None
    try:
        return arrow.get(raw).to("utc").naive
    except (arrow.parser.ParserError, ValueError, TypeError, OverflowError):  # OverflowError: beyond year 1..9999 in UTC
        raise ValidationError(f"Invalid {name}: not a date: {raw!r}", field=name) from None


def parse_ids(raw: str | None, name: str) -> list[int] | None:
    if raw is None or raw == "":
        return None
    try:
        return [int(x) for x in raw.split(",") if x.strip()]
    except ValueError:
        raise ValidationError(f"Invalid {name}: expected comma-separated integers, got {raw!r}", field=name) from None


def parse_strings(raw: str | None) -> list[str] | None:
    if raw is None or raw == "":
        return None
    return [x.strip() for x in raw.split(",") if x.strip()]


# -- serialisation -------------------------------------------------------------------------------

def obj_to_dict(obj: models.Obj) -> dict:
    return obj.to_dict()


def photometry_to_dict(p: models.Photometry, fmt: str = "flux", group_ids=None) -> dict:
    out = {
        "id": p.id, "obj_id": p.obj_id, "mjd": p.mjd, "filter": p.filter, "magsys": p.magsys,
        "ra": p.ra, "dec": p.dec, "origin": p.origin, "instrument_name": p.instrument_name,
        "alert_id": p.alert_id, "created_at": p.created_at.isoformat(),
    }
    if fmt == "mag":
        # detections above DETECTION_SNR get a magnitude; the rest are limits
        if p.flux is not None and p.fluxerr > 0 and p.flux / p.fluxerr >= DETECTION_SNR:
            out["mag"] = p.zp - 2.5 * math.log10(p.flux)
            out["magerr"] = 2.5 / math.log(10) * p.fluxerr / p.flux
        else:
            out["mag"] = out["magerr"] = None
        out["limiting_mag"] = (p.limiting_mag if p.limiting_mag is not None
                               else p.zp - 2.5 * math.log10(DETECTION_SNR * p.fluxerr))
    else:
        out.update(flux=p.flux, fluxerr=p.fluxerr, zp=p.zp, limiting_mag=p.limiting_mag)
    if group_ids is not None:
        out["group_ids"] = sorted(group_ids)
    return out


def caller_groups(session: Session, principal: Principal) -> set[int] | None:
    """The caller's group ids, to cut nested group lists to; None for a System admin (sees them all)."""
    if principal.is_admin:
        return None
    return set(session.execute(user_group_ids(principal)).scalars())


def _only(ids, groups: set[int] | None) -> list[int]:
    return sorted(i for i in ids if groups is None or i in groups)


def classification_to_dict(c: models.Classification, include_taxonomy: bool = False,
                           groups: set[int] | None = None) -> dict:
    """``groups``: list only these of its groups (the caller's; None: all)."""
    out = c.to_dict()
    out["group_ids"] = _only((g.id for g in c.groups), groups)
    if include_taxonomy:
        out["taxonomy"] = c.taxonomy.to_dict()
    return out


def visible_photometry(session: Session, principal: Principal, obj_ids) -> dict[str, list[models.Photometry]]:
    stmt = sa.select(models.Photometry).where(models.Photometry.obj_id.in_(list(obj_ids)))
    if not principal.is_admin:
        stmt = stmt.where(photometry_visible_clause(principal))
    out: dict[str, list] = {o: [] for o in obj_ids}
    for p in session.execute(stmt.order_by(models.Photometry.mjd)).scalars():
        out[p.obj_id].append(p)
    return out


def photometry_visible_clause(principal: Principal):
    """Shared with one of the caller's groups, or from a stream one of their groups reads."""
    P = models.Photometry
    groups = user_group_ids(principal)
    return sa.or_(
        P.id.in_(sa.select(models.photometry_groups.c.photometry_id)
                 .where(models.photometry_groups.c.group_id.in_(groups))),
        P.stream_id.in_(sa.select(models.group_streams.c.stream_id)
                        .where(models.group_streams.c.group_id.in_(groups))),
    )


def visible_classifications_stmt(principal: Principal) -> sa.Select:
    stmt = sa.select(models.Classification)
    if not principal.is_admin:
        stmt = stmt.where(models.Classification.id.in_(
            sa.select(models.classification_groups.c.classification_id)
            .where(models.classification_groups.c.group_id.in_(user_group_ids(principal)))))
    return stmt


def visible_classifications(session: Session, principal: Principal, obj_ids) -> dict[str, list[dict]]:
    stmt = visible_classifications_stmt(principal).where(models.Classification.obj_id.in_(list(obj_ids)))
    out: dict[str, list] = {o: [] for o in obj_ids}
    mine = caller_groups(session, principal)
    for c in session.execute(stmt.order_by(models.Classification.created_at)).scalars():
        out[c.obj_id].append(classification_to_dict(c, groups=mine))
    return out


def duplicates(session: Session, principal: Principal, obj_ids) -> dict[str, list[dict]]:
    """Other objects within the association radius, among those the caller can see (another group's
    object is not revealed, not even its name or position)."""
    rows = session.execute(
        sa.select(models.ObjDuplicate.obj_id, models.ObjDuplicate.duplicate_obj_id, models.ObjDuplicate.separation,
                  O.ra, O.dec)
        .join(O, O.id == models.ObjDuplicate.duplicate_obj_id)
        .where(models.ObjDuplicate.obj_id.in_(list(obj_ids)), visible_obj_clause(principal))
        .order_by(models.ObjDuplicate.separation)
    ).all()
    out: dict[str, list] = {o: [] for o in obj_ids}
    for obj_id, dup, sep, ra, dec in rows:
        out[obj_id].append({"obj_id": dup, "separation": sep, "ra": ra, "dec": dec})
    return out


def localizations_of(session: Session, obj_ids) -> dict[str, list[dict]]:
    """The localizations each object lies in, with its credible level and the map's density there."""
    OL, L = models.ObjLocalization, models.Localization
    rows = session.execute(sa.select(OL.obj_id, OL.localization_id, OL.credible_level, OL.probdensity, L.dateobs,
                                     L.localization_name)
                           .join(L, L.id == OL.localization_id).where(OL.obj_id.in_(list(obj_ids)))
                           .order_by(L.dateobs.desc())).all()
    out: dict[str, list] = {o: [] for o in obj_ids}
    for obj_id, lid, cl, pd, dateobs, name in rows:
        out[obj_id].append({"localization_id": lid, "dateobs": dateobs.isoformat(), "localization_name": name,
                            "credible_level": cl, "probdensity": pd})
    return out


def saved_groups(session: Session, principal: Principal, obj_ids) -> dict[str, list[dict]]:
    stmt = (sa.select(S, models.Group).join(models.Group, models.Group.id == S.group_id)
            .where(S.obj_id.in_(list(obj_ids)), S.active))
    if not principal.is_admin:
        stmt = stmt.where(S.group_id.in_(user_group_ids(principal)))
    out: dict[str, list] = {o: [] for o in obj_ids}
    for src, group in session.execute(stmt.order_by(S.saved_at)).all():
        out[src.obj_id].append({**group.to_dict(), "saved_at": src.saved_at.isoformat(),
                                "saved_by_id": src.saved_by_id})
    return out


# -- candidates ---------------------------------------------------------------------------------

@dataclass
class ObjFilters:
    """Filters candidates and sources share: redshift, classifications, localization, detections."""

    classifications: list[str] | None = None
    min_redshift: float | None = None
    max_redshift: float | None = None
    localization_dateobs: str | None = None
    localization_name: str | None = None
    localization_cumprob: float = 0.95
    first_detection_after: datetime | None = None
    last_detection_before: datetime | None = None
    number_detections: int | None = None


@dataclass
class CandidateQuery(ObjFilters):
    filter_ids: list[int] | None = None
    group_ids: list[int] | None = None
    saved_status: str = "all"
    start_date: datetime | None = None
    end_date: datetime | None = None
    classifications_reject: list[str] | None = None
    sort_by: str = "passed_at"
    sort_order: str = "desc"
    include_photometry: bool = False


CANDIDATE_SORTS = {"passed_at", "id", "ra", "dec", "redshift", "created_at"}


def _selected_filters(session: Session, principal: Principal, q: CandidateQuery) -> tuple[list[int], list[int]]:
    """(filter ids, selected group ids) the query runs over; unreadable ones are a 400 naming them."""
    if q.filter_ids:
        rows = session.execute(readable_filters(principal).where(F.id.in_(q.filter_ids))).scalars().all()
        missing = sorted(set(q.filter_ids) - {f.id for f in rows})
        if missing:
            raise ValidationError(f"Invalid filterIDs: no accessible filter(s) {missing}", field="filterIDs")
        return [f.id for f in rows], sorted({f.group_id for f in rows})
    if q.group_ids:
        readable_groups_named(session, principal, q.group_ids, "groupIDs")
        rows = session.execute(sa.select(F.id).where(F.group_id.in_(q.group_ids))).scalars().all()
        return list(rows), sorted(q.group_ids)
    rows = session.execute(readable_filters(principal)).scalars().all()
    return [f.id for f in rows], sorted({f.group_id for f in rows})


def _classification_exists(principal: Principal, names: list[str]):
    cls = models.Classification
    stmt = sa.exists().where(cls.obj_id == O.id, cls.classification.in_(names))
    if not principal.is_admin:
        stmt = stmt.where(cls.id.in_(
            sa.select(models.classification_groups.c.classification_id)
            .where(models.classification_groups.c.group_id.in_(user_group_ids(principal)))))
    return stmt


def _saved_any(groups):
    return sa.exists().where(S.obj_id == O.id, S.active, S.group_id.in_(groups))


def _saved_all(groups: list[int]):
    n = (sa.select(sa.func.count(sa.distinct(S.group_id)))
         .where(S.obj_id == O.id, S.active, S.group_id.in_(groups)).scalar_subquery())
    return n == len(groups)


def _check_sort(sort_by: str, order: str, allowed: set[str]) -> None:
    if sort_by not in allowed:
        raise ValidationError(f"Invalid sortBy: must be one of {sorted(allowed)}", field="sortBy")
    if order not in ("asc", "desc"):
        raise ValidationError("Invalid sortOrder: must be asc or desc", field="sortOrder")


def _redshift_and_classes(stmt, principal: Principal, q, session: Session | None = None):
    """minRedshift / maxRedshift / classifications / localization, shared by candidates and sources."""
    if q.localization_dateobs and session is not None:
        from broker.sky.gcn import find_localization, region_obj_ids

        if not 0 < q.localization_cumprob <= 1:
            raise ValidationError("Invalid localizationCumprob: must be in (0, 1]", field="localizationCumprob")
        loc = find_localization(session, q.localization_dateobs, q.localization_name)
        stmt = stmt.where(O.id.in_(region_obj_ids(loc.id, q.localization_cumprob)))
    if q.first_detection_after or q.last_detection_before or q.number_detections is not None:
        # detections: S/N >= DETECTION_SNR, as the mag-format photometry counts them
        P = models.Photometry
        det = (sa.select(P.obj_id, sa.func.min(P.mjd).label("first"), sa.func.max(P.mjd).label("last"),
                         sa.func.count().label("n"))
               .where(P.flux.is_not(None), P.fluxerr > 0, P.flux / P.fluxerr >= DETECTION_SNR)
               .group_by(P.obj_id))
        if not principal.is_admin:  # only the photometry the caller can see counts
            det = det.where(photometry_visible_clause(principal))
        det = det.subquery()
        stmt = stmt.join(det, det.c.obj_id == O.id)
        if q.first_detection_after:
            stmt = stmt.where(det.c.first >= _mjd(q.first_detection_after))
        if q.last_detection_before:
            stmt = stmt.where(det.c.last <= _mjd(q.last_detection_before))
        if q.number_detections is not None:
            stmt = stmt.where(det.c.n >= q.number_detections)
    if q.min_redshift is not None:
        stmt = stmt.where(O.redshift >= q.min_redshift)
    if q.max_redshift is not None:
        stmt = stmt.where(O.redshift <= q.max_redshift)
    if q.classifications:
        stmt = stmt.where(_classification_exists(principal, q.classifications))
    return stmt


def _mjd(dt: datetime) -> float:
    return (dt - datetime(1858, 11, 17)).total_seconds() / 86400.0


def _sort(stmt, column, order: str):
    return stmt.order_by(column.desc().nulls_last() if order == "desc" else column.asc().nulls_last(), O.id)


def list_candidates(session: Session, principal: Principal, q: CandidateQuery, page: Page) -> dict:
    if q.saved_status not in SAVED_STATUSES:
        raise ValidationError(f"Invalid savedStatus: must be one of {list(SAVED_STATUSES)}", field="savedStatus")
    _check_sort(q.sort_by, q.sort_order, CANDIDATE_SORTS)
    filter_ids, selected = _selected_filters(session, principal, q)
    cand = sa.select(C.obj_id, sa.func.max(C.passed_at).label("passed_at")).where(C.filter_id.in_(filter_ids))
    if q.start_date:
        cand = cand.where(C.passed_at >= q.start_date)
    if q.end_date:
        cand = cand.where(C.passed_at <= q.end_date)
    cand = cand.group_by(C.obj_id).subquery()
    stmt = sa.select(O, cand.c.passed_at).join(cand, cand.c.obj_id == O.id)
    stmt = _redshift_and_classes(stmt, principal, q, session)
    if q.classifications_reject:
        stmt = stmt.where(~_classification_exists(principal, q.classifications_reject))
    accessible = user_group_ids(principal) if not principal.is_admin else sa.select(models.Group.id)
    st = q.saved_status
    if st == "savedToAnyAccessible":
        stmt = stmt.where(_saved_any(accessible))
    elif st == "notSavedToAnyAccessible":
        stmt = stmt.where(~_saved_any(accessible))
    elif st == "savedToAnySelected":
        stmt = stmt.where(_saved_any(selected))
    elif st == "notSavedToAnySelected":
        stmt = stmt.where(~_saved_any(selected))
    elif st == "savedToAllSelected":
        stmt = stmt.where(_saved_all(selected))
    elif st == "notSavedToAllSelected":
        stmt = stmt.where(~_saved_all(selected))
    col = cand.c.passed_at if q.sort_by == "passed_at" else getattr(O, q.sort_by)
    stmt = _sort(stmt, col, q.sort_order)

    rows, total = paginate(session, stmt, page, scalars=False)
    ids = [o.id for o, _ in rows]
    details = candidate_details(session, principal, ids, filter_ids, q.include_photometry)
    candidates = [{**obj_to_dict(o), "passed_at": passed.isoformat(), **details[o.id]} for o, passed in rows]
    return {"candidates": candidates, "totalMatches": total, "pageNumber": page.number, "numPerPage": page.size}


def candidate_details(session: Session, principal: Principal, ids: list[str], filter_ids,
                      include_photometry: bool) -> dict[str, dict]:
    out = {i: {"filter_ids": [], "passing_alert_id": None} for i in ids}
    latest: dict[str, datetime] = {}
    for obj_id, fid, alert, passed in session.execute(
        sa.select(C.obj_id, C.filter_id, C.passing_alert_id, C.passed_at)
        .where(C.obj_id.in_(ids), C.filter_id.in_(filter_ids)).order_by(C.passed_at)
    ).all():
        if fid not in out[obj_id]["filter_ids"]:
            out[obj_id]["filter_ids"].append(fid)
        if obj_id not in latest or passed >= latest[obj_id]:
            latest[obj_id] = passed
            out[obj_id]["passing_alert_id"] = alert
    groups = saved_groups(session, principal, ids)
    classes = visible_classifications(session, principal, ids)
    locs = localizations_of(session, ids)
    phot = visible_photometry(session, principal, ids) if include_photometry else None
    for i in ids:
        out[i]["localizations"] = locs[i]
        out[i]["saved_groups"] = groups[i]
        out[i]["is_source"] = bool(groups[i])
        out[i]["classifications"] = classes[i]
        if phot is not None:
            out[i]["photometry"] = [photometry_to_dict(p) for p in phot[i]]
    return out


def get_candidate(session: Session, principal: Principal, obj_id: str, include_photometry: bool = True) -> dict:
    filter_ids = [f.id for f in session.execute(readable_filters(principal)).scalars()]
    row = session.execute(
        sa.select(O, sa.func.max(C.passed_at)).join(C, C.obj_id == O.id)
        .where(O.id == obj_id, C.filter_id.in_(filter_ids)).group_by(O.id)
    ).first()
    if row is None:
        raise NotFound(f"No candidate with object ID '{obj_id}'")
    obj, passed = row
    details = candidate_details(session, principal, [obj_id], filter_ids, include_photometry)[obj_id]
    return {**obj_to_dict(obj), "passed_at": passed.isoformat(), **details}


def upsert_obj(session: Session, principal: Principal, body: dict) -> models.Obj:
    """Find the object by id, or create it from ``ra``/``dec`` (400 naming what is missing).

    An object that exists but that the caller cannot see (another group's) is asked of exactly as a new
    one (``ra``/``dec`` required, same message), so the answer reveals nothing; it is then the same
    astrophysical object, its stored fields unchanged, now attached to the caller's filter or group."""
    obj = session.get(O, body["id"])
    if obj is not None and session.execute(sa.select(O.id).where(O.id == obj.id,
                                                                 visible_obj_clause(principal))).first():
        return obj
    for key in ("ra", "dec"):
        if body.get(key) is None:
            raise ValidationError(f"Missing required field '{key}' (object '{body['id']}' is new)", field=key)
    if not 0 <= body["ra"] < 360:
        raise ValidationError("Invalid value for field 'ra': must be in [0, 360)", field="ra")
    if not -90 <= body["dec"] <= 90:
        raise ValidationError("Invalid value for field 'dec': must be in [-90, 90]", field="dec")
    if obj is not None:
        return obj
    obj = O(id=body["id"], ra=body["ra"], dec=body["dec"], redshift=body.get("redshift"),
            redshift_error=body.get("redshift_error"), ra_dis=body.get("ra_dis"), dec_dis=body.get("dec_dis"),
            altdata=body.get("altdata"))
    session.add(obj)
    session.flush()
    return obj


def post_candidates(session: Session, principal: Principal, body: dict) -> list[int]:
    """The manual / Kowalski path: the object (created if new) and one candidate per filter."""
    readable = {f.id for f in session.execute(
        readable_filters(principal).where(F.id.in_(body["filter_ids"]))).scalars()}
    missing = sorted(set(body["filter_ids"]) - readable)
    if missing:
        raise ValidationError(f"Invalid filter_ids: no accessible filter(s) {missing}", field="filter_ids")
    upsert_obj(session, principal, body)
    passed_at = parse_date(body["passed_at"], "passed_at")
    ids = []
    for fid in body["filter_ids"]:
        existing = session.execute(sa.select(C).where(C.obj_id == body["id"], C.filter_id == fid,
                                                      C.passed_at == passed_at)).scalar()
        if existing is None:
            existing = C(obj_id=body["id"], filter_id=fid, passed_at=passed_at,
                         passing_alert_id=body.get("passing_alert_id"), uploader_id=principal.user_id)
            session.add(existing)
            session.flush()
        ids.append(existing.id)
    return ids


def delete_candidates(session: Session, principal: Principal, obj_id: str, filter_id: int) -> int:
    f = session.execute(readable_filters(principal).where(F.id == filter_id)).scalar()
    if f is None:
        raise NotFound(f"No filter with ID {filter_id}")
    n = session.execute(sa.delete(C).where(C.obj_id == obj_id, C.filter_id == filter_id)).rowcount
    if n == 0:
        raise NotFound(f"No candidate with object ID '{obj_id}' for filter {filter_id}")
    return n


# -- sources ------------------------------------------------------------------------------------

@dataclass
class SourceQuery(ObjFilters):
    group_ids: list[int] | None = None
    ra: float | None = None
    dec: float | None = None
    radius: float | None = None  # degrees, as SkyPortal
    saved_after: datetime | None = None
    saved_before: datetime | None = None
    sort_by: str = "saved_at"
    sort_order: str = "desc"
    include_photometry: bool = False
    include_duplicates: bool = False


SOURCE_SORTS = {"saved_at", "id", "ra", "dec", "redshift", "created_at"}


def cone_clause(ra: float, dec: float, radius_deg: float, ra_col=O.ra, dec_col=O.dec):
    """SQL condition: within ``radius_deg`` of (ra, dec); the declination band uses the index."""
    hav = (sa.func.power(sa.func.sin(sa.func.radians(dec_col - dec) / 2), 2)
           + sa.func.cos(sa.func.radians(dec_col)) * math.cos(math.radians(dec))
           * sa.func.power(sa.func.sin(sa.func.radians(ra_col - ra) / 2), 2))
    return sa.and_(dec_col.between(dec - radius_deg, dec + radius_deg),
                   sa.func.degrees(2 * sa.func.asin(sa.func.sqrt(sa.func.least(hav, 1.0)))) <= radius_deg)


def list_sources(session: Session, principal: Principal, q: SourceQuery, page: Page) -> dict:
    _check_sort(q.sort_by, q.sort_order, SOURCE_SORTS)
    if q.group_ids:
        readable_groups_named(session, principal, q.group_ids, "group_ids")
        groups = q.group_ids
    else:
        groups = user_group_ids(principal) if not principal.is_admin else sa.select(models.Group.id)
    saved = sa.select(S.obj_id, sa.func.max(S.saved_at).label("saved_at")).where(S.active, S.group_id.in_(groups))
    if q.saved_after:
        saved = saved.where(S.saved_at >= q.saved_after)
    if q.saved_before:
        saved = saved.where(S.saved_at <= q.saved_before)
    saved = saved.group_by(S.obj_id).subquery()
    stmt = sa.select(O, saved.c.saved_at).join(saved, saved.c.obj_id == O.id)
    if None not in (q.ra, q.dec, q.radius):
        stmt = stmt.where(cone_clause(q.ra, q.dec, q.radius))
    elif any(v is not None for v in (q.ra, q.dec, q.radius)):
        raise ValidationError("Invalid cone search: give all of ra, dec and radius", field="radius")
    stmt = _redshift_and_classes(stmt, principal, q, session)
    col = saved.c.saved_at if q.sort_by == "saved_at" else getattr(O, q.sort_by)
    stmt = _sort(stmt, col, q.sort_order)
    rows, total = paginate(session, stmt, page, scalars=False)
    ids = [o.id for o, _ in rows]
    details = source_details(session, principal, ids, q.include_photometry, q.include_duplicates)
    sources = [{**obj_to_dict(o), "saved_at": s.isoformat(), **details[o.id]} for o, s in rows]
    return {"sources": sources, "totalMatches": total, "pageNumber": page.number, "numPerPage": page.size}


def source_details(session: Session, principal: Principal, ids, include_photometry: bool,
                   include_duplicates: bool) -> dict[str, dict]:
    groups = saved_groups(session, principal, ids)
    classes = visible_classifications(session, principal, ids)
    locs = localizations_of(session, ids)
    out = {i: {"groups": groups[i], "classifications": classes[i], "localizations": locs[i]} for i in ids}
    if include_photometry:
        phot = visible_photometry(session, principal, ids)
        for i in ids:
            out[i]["photometry"] = [photometry_to_dict(p) for p in phot[i]]
    if include_duplicates:
        dups = duplicates(session, principal, ids)
        for i in ids:
            out[i]["duplicates"] = dups[i]
    return out


def get_source(session: Session, principal: Principal, obj_id: str, include_photometry: bool,
               include_duplicates: bool) -> dict:
    obj = get_visible_obj(session, principal, obj_id)
    return {**obj_to_dict(obj), **source_details(session, principal, [obj_id], include_photometry,
                                                 include_duplicates)[obj_id]}


def _require_can_save(session: Session, principal: Principal, group_id: int) -> None:
    get_readable_group(session, principal, group_id)
    if principal.is_admin:
        return
    gu = membership(session, principal, group_id)
    if gu is None or not gu.can_save:
        raise PermissionDenied(f"Insufficient permissions: you cannot save sources to group {group_id}")


def save_source(session: Session, principal: Principal, obj_id: str, group_ids: list[int]) -> None:
    """Save (or re-save) an object to groups; needs can_save in each."""
    now = models.utcnow()
    for gid in group_ids:
        _require_can_save(session, principal, gid)
        src = session.execute(sa.select(S).where(S.obj_id == obj_id, S.group_id == gid)).scalar()
        if src is None:
            session.add(S(obj_id=obj_id, group_id=gid, saved_by_id=principal.user_id, saved_at=now, active=True))
        elif not src.active:
            src.active, src.saved_at, src.saved_by_id = True, now, principal.user_id
            src.unsaved_at = src.unsaved_by_id = None
    session.flush()
    from broker.followup.default_rules import fire_for_saved

    fire_for_saved(session, obj_id, group_ids)


def unsave_source(session: Session, principal: Principal, obj_id: str, group_ids: list[int]) -> None:
    now = models.utcnow()
    for gid in group_ids:
        _require_can_save(session, principal, gid)
        src = session.execute(sa.select(S).where(S.obj_id == obj_id, S.group_id == gid, S.active)).scalar()
        if src is None:
            raise NotFound(f"Object '{obj_id}' is not saved to group {gid}")
        src.active, src.unsaved_at, src.unsaved_by_id = False, now, principal.user_id
    session.flush()


def post_source(session: Session, principal: Principal, body: dict) -> str:
    obj = upsert_obj(session, principal, body)
    group_ids = body.get("group_ids")
    if not group_ids:
        group_ids = [gu.group_id for gu in session.execute(
            sa.select(models.GroupUser).join(models.Group)
            .where(models.GroupUser.user_id == principal.user_id, models.GroupUser.can_save,
                   ~models.Group.single_user_group)).scalars()]
        if not group_ids:
            raise ValidationError("Missing required field 'group_ids': you can save to no group by default",
                                  field="group_ids")
    save_source(session, principal, obj.id, group_ids)
    return obj.id
