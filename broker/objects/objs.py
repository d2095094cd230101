"""Objects as REST users see them: visibility by group, candidates, sources and their serialisation.

Data other modules own (thumbnails, comments, annotations, spectra, labels, ...) join the source and
candidate answers through two hooks: :data:`DETAILS` (per-object lists, e.g. ``thumbnails``) and
:data:`EXISTS` (SQL conditions "this object has one the caller can see", e.g. ``spectra``). A module
registers with :func:`register_details` / :func:`register_exists`; a query parameter that needs a hook
nobody registered is answered 400 naming the parameter, never silently ignored.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

import arrow
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

import models

from broker.access.auth import Principal, get_readable_group, membership, readable_filters, readable_groups_named
from broker.errors import NotFound, PermissionDenied, ValidationError
from broker.pagination import Page
from broker.runtime.db import fetch

C, F, O, S = models.Candidate, models.Filter, models.Obj, models.Source
REGION_INLINE_MAX = 100_000  # objects of a credible region passed to queries as a list (above: a sub-query)
DETECTION_SNR = 5.0  # as SkyPortal's phot_detection_threshold for mag-format photometry

# SkyPortal's Obj fields a client may set (POST /api/candidates, POST /api/sources, PATCH /api/sources/{id})
OBJ_WRITABLE = ("ra", "dec", "ra_dis", "dec_dis", "ra_err", "dec_err", "offset", "t0", "redshift", "redshift_error",
                "redshift_origin", "summary", "altdata", "dist_nearest_source", "mag_nearest_source",
                "e_mag_nearest_source", "transient", "varstar", "is_roid", "mpc_name", "tns_name", "tns_info", "score",
                "origin", "alias", "detect_photometry_count")


# -- hooks for data other modules own ----------------------------------------------------------------

# name -> fn(session, principal, obj_ids) -> {obj_id: value}; e.g. "thumbnails", "comments", "annotations"
DETAILS: dict[str, Callable[[Session, Principal, list[str]], dict[str, Any]]] = {}
# name -> fn(principal) -> SQL condition on models.Obj.id: the object has one the caller can see; e.g. "spectra"
EXISTS: dict[str, Callable[[Principal], Any]] = {}


def register_details(name: str, fn: Callable[[Session, Principal, list[str]], dict[str, Any]]) -> None:
    DETAILS[name] = fn


def register_exists(name: str, fn: Callable[[Principal], Any]) -> None:
    EXISTS[name] = fn


def _hook(table: dict, name: str, param: str):
    fn = table.get(name)
    if fn is None:
        raise ValidationError(f"Unsupported parameter {param}: this server keeps no {name} for objects", field=param)
    return fn


def details_for(session: Session, principal: Principal, ids: list[str], name: str, param: str) -> dict[str, Any]:
    """The registered ``name`` details of each object (400 naming ``param`` when none is registered)."""
    got = _hook(DETAILS, name, param)(session, principal, ids)
    return {i: got.get(i, []) for i in ids}


def exists_clause(principal: Principal, name: str, param: str):
    return _hook(EXISTS, name, param)(principal)


def _followup_exists(principal: Principal, status: str | None = None):
    from broker.followup.requests import readable_requests

    FR = models.FollowupRequest
    sub = readable_requests(principal).with_only_columns(FR.obj_id).where(FR.obj_id == O.id)
    if status is not None:
        sub = sub.where(sa.cast(FR.status, sa.String).ilike(f"%{status}%"))
    return sub.exists()


def _followup_details(session: Session, principal: Principal, ids: list[str]) -> dict[str, list]:
    from broker.objects.nested import read_nested

    found = read_nested(session, principal, ids, ["followups"])["followups"]
    return {i: _followup_list(session, principal, found[i]) for i in ids}


def _followup_list(session: Session, principal: Principal, request_ids: list[int]) -> list[dict]:
    """The readable requests ``request_ids`` (found with the other nested rows: most objects have none,
    and then nothing more is read), oldest first."""
    from broker.followup.requests import request_to_dict

    if not request_ids:
        return []
    FR = models.FollowupRequest
    mine = caller_groups(session, principal)
    return [request_to_dict(req, groups=mine) for req in session.execute(
        sa.select(FR).where(FR.id.in_(request_ids)).order_by(FR.created_at, FR.id)).scalars()]


def _photometry_exists(principal: Principal):
    P = models.Photometry
    sub = sa.select(P.id).where(P.obj_id == O.id)
    if not principal.is_admin:
        sub = sub.where(photometry_visible_clause(principal))
    return sub.exists()


register_exists("followup_requests", _followup_exists)
register_details("followup_requests", _followup_details)
register_exists("photometry", _photometry_exists)


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
    """The object's columns, as SkyPortal's ``Obj.to_dict`` (without the derived fields)."""
    return obj.to_dict()


def with_derived(rows: list[dict]) -> list[dict]:
    """Add SkyPortal's derived fields to serialised objects (in place): ``gal_lon``/``gal_lat`` [deg],
    ``luminosity_distance`` [Mpc], ``dm`` [mag] and ``angular_diameter_distance`` [Mpc]."""
    if not rows:
        return rows
    from broker.sky.kernels import galactic

    lons, lats = galactic([r["ra"] for r in rows], [r["dec"] for r in rows])
    for r, lon, lat in zip(rows, lons, lats):
        r["gal_lon"], r["gal_lat"] = float(lon), float(lat)
        dl = luminosity_distance(r.get("altdata"), r.get("redshift"))
        if dl is not None and not (math.isfinite(dl) and dl > 0):
            dl = None  # e.g. a redshift beyond what the cosmology integrates
        r["luminosity_distance"] = dl
        r["dm"] = 5.0 * math.log10(dl * 1e6 / 10.0) if dl else None
        z = r.get("redshift")
        if dl:
            r["angular_diameter_distance"] = dl / (1 + z) / (1 + z) if z and z * C_KM_S > HUBBLE_FLOW_KM_S else dl
        else:
            r["angular_diameter_distance"] = None
    return rows


C_KM_S, HUBBLE_FLOW_KM_S = 2.99e5, 350.0  # SkyPortal's: no redshift distance below cz = 350 km/s


def _num(value) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def luminosity_distance(altdata, redshift) -> float | None:
    """SkyPortal's ``Obj.luminosity_distance`` [Mpc]: from ``altdata`` (``dm`` [mag], ``parallax`` [arcsec],
    ``dist_kpc``, ``dist_Mpc``, ``dist_pc``, ``dist_cm``, in that order), else from the redshift (Planck18),
    None inside the local flow (cz < 350 km/s). ``dist_cm`` is scaled as SkyPortal scales it (cm / 3.085e18)."""
    if isinstance(altdata, dict):
        if (dm := _num(altdata.get("dm"))) is not None:
            return 10 ** min(dm / 5.0, 300.0) * 1e-5  # (capped: no float overflow)
        if (plx := _num(altdata.get("parallax"))) is not None and plx > 0:
            return 1e-6 / plx
        for key, scale in (("dist_kpc", 1e-3), ("dist_Mpc", 1.0), ("dist_pc", 1e-6), ("dist_cm", 1 / 3.085e18)):
            if (d := _num(altdata.get(key))) is not None:
                return d * scale
    z = _num(redshift)
    if z:
        if z * C_KM_S < HUBBLE_FLOW_KM_S:
            return None
        return _lum_dist_mpc(z)
    return None


def _lum_dist_mpc(z: float) -> float | None:
    from astropy.cosmology import Planck18

    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a huge z: the integral diverges (the value is then refused)
        try:
            return float(Planck18.luminosity_distance(z).value)
        except (ValueError, ArithmeticError):
            return None


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


def visible_photometry(session: Session, principal: Principal, obj_ids) -> dict[str, list[dict]]:
    """Each object's photometry the caller can read, by mjd, in SkyPortal's "both" format (flux and mag)."""
    from broker.objects.photometry import serialize_all

    P = models.Photometry
    points = session.execute(sa.select(P).where(P.obj_id.in_(list(obj_ids)), photometry_visible_clause(principal))
                             .order_by(P.mjd, P.id)).scalars().all()
    out: dict[str, list] = {o: [] for o in obj_ids}
    for d in serialize_all(session, principal, points, "both", "ab"):
        out[d["obj_id"]].append(d)
    return out


def photometry_visible_clause(principal: Principal):
    """The photometry the caller can read (broker.objects.photometry's rule: groups, streams, owner)."""
    from broker.objects.photometry import visible_clause

    return visible_clause(principal)


def visible_classifications_stmt(principal: Principal) -> sa.Select:
    stmt = sa.select(models.Classification)
    if not principal.is_admin:
        stmt = stmt.where(models.Classification.id.in_(
            sa.select(models.classification_groups.c.classification_id)
            .where(models.classification_groups.c.group_id.in_(user_group_ids(principal)))))
    return stmt


def visible_classifications(session: Session, principal: Principal, obj_ids) -> dict[str, list[dict]]:
    """Each object's classifications the caller can read, oldest first, with ``group_ids`` (the caller's)."""
    return _nested(session, principal, obj_ids, "classifications")


def _nested(session: Session, principal: Principal, obj_ids, kind: str, **kw) -> dict[str, list]:
    from broker.objects.nested import read_nested

    return read_nested(session, principal, obj_ids, [kind], **kw)[kind]


def duplicates(session: Session, principal: Principal, obj_ids) -> dict[str, list[dict]]:
    """Other objects within the association radius, among those the caller can see (another group's
    object is not revealed, not even its name or position)."""
    return _nested(session, principal, obj_ids, "duplicates")


def localizations_of(session: Session, obj_ids) -> dict[str, list[dict]]:
    """The localizations each object lies in, with its credible level and the map's density there."""
    from broker.objects.nested import read_nested

    return read_nested(session, None, obj_ids, ["localizations"])["localizations"]


def _user_brief(u: models.User | None) -> dict | None:
    if u is None:
        return None
    return {"id": u.id, "username": u.username, "first_name": u.first_name, "last_name": u.last_name}


def _source_state(stmt, include_requested: bool = False, requested_only: bool = False):
    """SkyPortal's active/requested choice: active saves; with requested ones too; or requested only."""
    if requested_only:
        return stmt.where(~S.active, S.requested)
    if include_requested:
        return stmt.where(sa.or_(S.active, S.requested))
    return stmt.where(S.active)


def saved_groups(session: Session, principal: Principal, obj_ids, include_requested: bool = False,
                 requested_only: bool = False) -> dict[str, list[dict]]:
    """The caller's groups each object is saved to, as SkyPortal's ``groups``: the group, ``active``,
    ``requested``, ``saved_at``, ``saved_by`` (and our ``saved_by_id``)."""
    return _nested(session, principal, obj_ids, "groups", include_requested=include_requested,
                   requested_only=requested_only)


# -- filters shared by candidates and sources -------------------------------------------------------

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
    require_detections: bool = True  # SkyPortal: the detection filters apply only while this is true
    exclude_forced_photometry: bool = False  # no forced photometry is stored here: nothing to exclude
    min_peak_magnitude: float | None = None  # peak (brightest) detection magnitude <= this
    max_peak_magnitude: float | None = None  # peak magnitude >= this
    min_latest_magnitude: float | None = None  # latest detection magnitude <= this
    max_latest_magnitude: float | None = None  # latest detection magnitude >= this


def _detection_conditions(principal: Principal, q: ObjFilters, oid) -> list:
    """The detection filters as conditions on object ``oid``, over its detections (S/N >= DETECTION_SNR)
    the caller can see: first and last MJD, how many, peak (smallest) magnitude and the latest detection's
    magnitude, as SkyPortal's photstats. Each is a sub-query on the object's own points (the photometry
    index leads with obj_id), never an aggregate over the whole table."""
    P = models.Photometry
    mag = P.zp - 2.5 * sa.func.log(P.flux)
    where = [P.obj_id == oid, P.flux.is_not(None), P.fluxerr > 0, P.flux / P.fluxerr >= DETECTION_SNR]
    if not principal.is_admin:  # only the photometry the caller can see counts
        where.append(photometry_visible_clause(principal))

    def of(column):
        return sa.select(column).where(*where).scalar_subquery()

    conds = [sa.exists().where(*where)]  # no detection: no match, whatever the bounds
    if q.first_detection_after:
        conds.append(of(sa.func.min(P.mjd)) >= _mjd(q.first_detection_after))
    if q.last_detection_before:
        conds.append(of(sa.func.max(P.mjd)) <= _mjd(q.last_detection_before))
    if q.number_detections is not None:
        conds.append(of(sa.func.count()) >= q.number_detections)
    if q.min_peak_magnitude is not None:
        conds.append(of(sa.func.min(mag)) <= q.min_peak_magnitude)
    if q.max_peak_magnitude is not None:
        conds.append(of(sa.func.min(mag)) >= q.max_peak_magnitude)
    latest = sa.select(mag).where(*where).order_by(P.mjd.desc()).limit(1).scalar_subquery()
    if q.min_latest_magnitude is not None:
        conds.append(latest <= q.min_latest_magnitude)
    if q.max_latest_magnitude is not None:
        conds.append(latest >= q.max_latest_magnitude)
    return conds


def obj_conditions(principal: Principal, q: ObjFilters, session: Session, oid=O.id) -> tuple[list, bool]:
    """minRedshift / maxRedshift / localization / detections, shared by candidates and sources, as
    conditions on object id ``oid``: ``(conditions, whether they need the objs row joined on oid)``."""
    conds = []
    if q.localization_dateobs or q.localization_name:
        from broker.sky.gcn import find_localization, region_obj_id_list, region_obj_ids

        if not q.localization_dateobs:
            raise ValidationError("Invalid localizationName: give localizationDateobs too", field="localizationDateobs")
        if not 0 < q.localization_cumprob <= 1:
            raise ValidationError("Invalid localizationCumprob: must be in (0, 1]", field="localizationCumprob")
        loc = find_localization(session, q.localization_dateobs, q.localization_name)
        # the region's objects as a list when it is not huge: the planner cannot estimate the tiles' range
        # join (it guesses a ninth of objs per tile) and would scan every candidate; given the ids, it reads
        # just theirs through the index. A huge region stays a sub-query (a hash join is then right).
        ids = region_obj_id_list(session, loc.id, q.localization_cumprob, REGION_INLINE_MAX)
        if ids is not None:
            conds.append(oid == sa.any_(sa.cast(sa.literal(ids, ARRAY(sa.String)), ARRAY(sa.String))))
        else:
            conds.append(oid.in_(region_obj_ids(loc.id, q.localization_cumprob)))
    wanted = (q.first_detection_after, q.last_detection_before, q.number_detections, q.min_peak_magnitude,
              q.max_peak_magnitude, q.min_latest_magnitude, q.max_latest_magnitude)
    if q.require_detections and any(v is not None for v in wanted):
        conds += _detection_conditions(principal, q, oid)
    if q.min_redshift is not None:
        conds.append(O.redshift >= q.min_redshift)
    if q.max_redshift is not None:
        conds.append(O.redshift <= q.max_redshift)
    return conds, q.min_redshift is not None or q.max_redshift is not None


def _obj_filters(stmt, principal: Principal, q: ObjFilters, session: Session):
    """:func:`obj_conditions` on a statement that selects from objs."""
    conds, _ = obj_conditions(principal, q, session)
    return stmt.where(*conds)


def _visible_classifications(principal: Principal, oid=O.id):
    cls = models.Classification
    stmt = sa.select(cls.id).where(cls.obj_id == oid)
    if not principal.is_admin:
        stmt = stmt.where(cls.id.in_(
            sa.select(models.classification_groups.c.classification_id)
            .where(models.classification_groups.c.group_id.in_(user_group_ids(principal)))))
    return stmt


def _class_match(names: list[str]):
    """``name`` or ``taxonomy:name`` (SkyPortal's sources form) -> SQL condition on a classification."""
    cls = models.Classification
    terms = []
    for n in names:
        if ":" in n:
            tax, name = n.split(":", 1)
            terms.append(sa.and_(cls.classification == name.strip(),
                                 cls.taxonomy_id.in_(sa.select(models.Taxonomy.id)
                                                     .where(models.Taxonomy.name == tax.strip()))))
        else:
            terms.append(cls.classification == n)
    return sa.or_(*terms)


def classification_exists(principal: Principal, names: list[str], oid=O.id):
    """Object ``oid`` has a classification ``names`` matches that the caller can see."""
    return _visible_classifications(principal, oid).where(_class_match(names)).exists()


def _mjd(dt: datetime) -> float:
    return (dt - datetime(1858, 11, 17)).total_seconds() / 86400.0


def _check_order(order: str) -> str:
    order = (order or "desc").lower()
    if order not in ("asc", "desc"):
        raise ValidationError("Invalid sortOrder: must be asc or desc", field="sortOrder")
    return order


def obj_columns() -> list:
    """The serialised columns of ``objs`` (models.Obj.public_keys order), to select objects as rows."""
    return [O.__table__.c[k] for k in O.public_keys()]


def page_of_objs(session: Session, stmt: sa.Select, page: Page) -> tuple[list[tuple[dict, Any]], int]:
    """One page of ``stmt`` (selecting :func:`obj_columns` then one more column) and the total, in one
    query (``count(*) OVER ()``): ``([(object dict, the extra column)], totalMatches)``. A page past the
    last is empty (SkyPortal's sources); the total then costs a count of its own."""
    offset = (page.number - 1) * page.size
    rows = session.execute(stmt.add_columns(sa.func.count().over()).limit(page.size).offset(offset)).all()
    if rows:
        total = rows[0][-1]
    else:
        total = session.execute(sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery())).scalar_one()
    n = len(O.public_keys())
    return [(O.dict_of(row), row[n]) for row in rows], total


def _sort(stmt, column, order: str):
    return stmt.order_by(column.desc().nulls_last() if order == "desc" else column.asc().nulls_last(), O.id)


def _check_sort(sort_by: str, order: str, allowed: set[str]) -> None:
    if sort_by not in allowed:
        raise ValidationError(f"Invalid sortBy: must be one of {sorted(allowed)}", field="sortBy")
    _check_order(order)


# -- candidates (their list: broker.objects.candidates) ------------------------------------------

def _mjd_to_iso(mjd: float) -> str:
    from datetime import timedelta

    return (datetime(1858, 11, 17) + timedelta(days=mjd)).isoformat()


def _add_details(session: Session, principal: Principal, ids: list[str], out: dict,
                 wanted: dict[str, tuple[str, str]]) -> None:
    """Fill the hooks' answers ``wanted`` ({output key: (hook name, parameter)}); an output key ending in
    ``_exists`` asks the EXISTS hook, any other the DETAILS hook."""
    for key, (hook, param) in wanted.items():
        if key.endswith("_exists"):
            clause = exists_clause(principal, hook, param)
            hit = set(session.execute(sa.select(O.id).where(O.id.in_(ids), clause)).scalars()) if ids else set()
            for i in ids:
                out[i][key] = i in hit
        else:
            got = details_for(session, principal, ids, hook, param)
            for i in ids:
                out[i][key] = got[i]


def _nested_hooks(wanted: dict[str, tuple[str, str]]) -> tuple[list[str], dict[str, tuple[str, str]]]:
    """Of the hooks ``wanted``, the standard annotation and thumbnail lists (read with the other nested
    rows, in the same query) and the rest (read by their hooks)."""
    nested, rest = [], {}
    for key, (hook, param) in wanted.items():
        if key == hook and hook in ("annotations", "thumbnails") and hook in DETAILS:
            nested.append(hook)
        else:
            rest[key] = (hook, param)
    return nested, rest


def candidate_details(session: Session, principal: Principal, ids: list[str], filter_ids,
                      include_photometry: bool, wanted: dict[str, tuple[str, str]] | None = None) -> dict[str, dict]:
    """Per candidate: the caller's filters it passed (``filter_ids``, ``passing_group_ids``, the latest
    ``passing_alert_id``), ``is_source``/``saved_groups``, ``classifications``, ``last_detected_at``,
    ``localizations`` (ours), photometry on request and the hooks' details (one query for the nested
    rows: broker.objects.nested)."""
    from broker.objects.nested import read_nested
    from broker.objects.thumbnails import latest_thumbnails

    out = {i: {"filter_ids": [], "passing_group_ids": [], "passing_alert_id": None} for i in ids}
    wanted = dict(wanted or {})
    for hook in ("annotations", "thumbnails"):  # SkyPortal always lists a candidate's annotations and thumbnails
        if hook in DETAILS:
            wanted.setdefault(hook, (hook, hook))
    nested_hooks, wanted = _nested_hooks(wanted)
    got = read_nested(session, principal, ids, ["passes", "groups", "classifications", "localizations",
                                                "detections", *nested_hooks],
                      filter_ids=filter_ids, snr=DETECTION_SNR)
    for i in ids:
        latest = None
        for fid, gid, alert, passed in got["passes"][i]:
            if fid not in out[i]["filter_ids"]:
                out[i]["filter_ids"].append(fid)
            if gid not in out[i]["passing_group_ids"]:
                out[i]["passing_group_ids"].append(gid)
            if latest is None or passed >= latest:
                latest = passed
                out[i]["passing_alert_id"] = alert
        det = got["detections"][i]
        out[i]["localizations"] = got["localizations"][i]
        out[i]["saved_groups"] = got["groups"][i]
        out[i]["is_source"] = bool(got["groups"][i])
        out[i]["classifications"] = got["classifications"][i]
        out[i]["last_detected_at"] = _mjd_to_iso(det[0][1]) if det else None
        if "annotations" in nested_hooks:
            out[i]["annotations"] = got["annotations"][i]
        if "thumbnails" in nested_hooks:
            out[i]["thumbnails"] = latest_thumbnails(got["thumbnails"][i])
    if include_photometry:
        phot = visible_photometry(session, principal, ids)
        for i in ids:
            out[i]["photometry"] = phot[i]
    _add_details(session, principal, ids, out, wanted)
    return out


def deduplicate_photometry(points: list[dict]) -> list[dict]:
    """SkyPortal's deduplicatePhotometry: one point per (mjd, filter), the most recently created."""
    out, seen = [], set()
    for p in sorted(points, key=lambda p: p["created_at"], reverse=True):
        if (p["mjd"], p["filter"]) not in seen:
            seen.add((p["mjd"], p["filter"]))
            out.append(p)
    return out


def get_candidate(session: Session, principal: Principal, obj_id: str, include_photometry: bool = False,
                  include_alerts: bool = False, wanted: dict[str, tuple[str, str]] | None = None) -> dict:
    """One object the caller has as a candidate (through a filter of theirs); 400 otherwise, as SkyPortal."""
    filter_ids = [f.id for f in session.execute(readable_filters(principal)).scalars()]
    row = session.execute(
        sa.select(O, sa.func.max(C.passed_at)).join(C, C.obj_id == O.id)
        .where(O.id == obj_id, C.filter_id.in_(filter_ids)).group_by(O.id)
    ).first()
    if row is None:
        raise ValidationError(f"Invalid ID: no candidate with object ID '{obj_id}'")
    obj, passed = row
    details = candidate_details(session, principal, [obj_id], filter_ids, include_photometry, wanted)[obj_id]
    out = with_derived([{**obj_to_dict(obj), "passed_at": passed.isoformat(), **details}])[0]
    if include_alerts:
        out["passing_alerts"] = [
            {"filter_id": fid, "passing_alert_id": alert, "passed_at": at.isoformat()}
            for fid, alert, at in session.execute(
                sa.select(C.filter_id, C.passing_alert_id, C.passed_at)
                .where(C.obj_id == obj_id, C.filter_id.in_(filter_ids)).order_by(C.passed_at)).all()]
    return out


def candidate_exists(session: Session, principal: Principal, obj_id: str) -> bool:
    fids = readable_filters(principal).with_only_columns(F.id)
    stmt = sa.select(C.id).where(C.obj_id == obj_id, C.filter_id.in_(fids)).limit(1)
    return session.execute(stmt).first() is not None


def _history_entry(principal: Principal, body: dict) -> dict:
    entry = {"set_by_user_id": principal.user_id, "set_at_utc": arrow.utcnow().isoformat(),
             "value": body["redshift"], "uncertainty": body.get("redshift_error")}
    origin = body.get("redshift_origin")
    if isinstance(origin, str) and origin.strip():
        entry["origin"] = origin
    return entry


def apply_obj_fields(obj: models.Obj, principal: Principal, body: dict) -> None:
    """Set the SkyPortal Obj fields ``body`` carries, with SkyPortal's redshift and summary histories."""
    for key in OBJ_WRITABLE:
        if key in body:
            setattr(obj, key, body[key])
    if "redshift" in body:
        obj.redshift_history = [*(obj.redshift_history or []), _history_entry(principal, body)]
    if "summary" in body:
        obj.summary_history = [{"set_by_user_id": principal.user_id, "set_at_utc": arrow.utcnow().isoformat(),
                                "summary": body["summary"], "is_bot": False, "analysis_id": None},
                               *(obj.summary_history or [])]
    if "ra" in body or "dec" in body:
        obj.healpix = int(models.healpix_index(obj.ra, obj.dec))


def _check_position(body: dict) -> None:
    if body.get("ra") is not None and not 0 <= body["ra"] < 360:
        raise ValidationError("Invalid value for field 'ra': must be in [0, 360)", field="ra")
    if body.get("dec") is not None and not -90 <= body["dec"] <= 90:
        raise ValidationError("Invalid value for field 'dec': must be in [-90, 90]", field="dec")


def upsert_obj(session: Session, principal: Principal, body: dict) -> models.Obj:
    """Find the object by id, or create it from ``ra``/``dec`` and the other Obj fields (400 naming what is
    missing).

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
    _check_position(body)
    if obj is not None:
        return obj
    obj = O(id=body["id"], ra=body["ra"], dec=body["dec"])
    apply_obj_fields(obj, principal, body)
    session.add(obj)
    session.flush()
    return obj


def post_candidates(session: Session, principal: Principal, body: dict) -> list[int]:
    """The manual / Kowalski path: the object (created if new) and one candidate per filter.

    As SkyPortal, filter ids the caller cannot read are passed over (a filter deleted since Kowalski
    learnt of it), as long as one is readable."""
    readable = {f.id for f in session.execute(
        readable_filters(principal).where(F.id.in_(body["filter_ids"]))).scalars()}
    if not readable:
        raise ValidationError("Invalid filter_ids: at least one valid filter ID must be provided "
                              f"(none of {sorted(set(body['filter_ids']))} is accessible)", field="filter_ids")
    upsert_obj(session, principal, body)
    passed_at = parse_date(body["passed_at"], "passed_at")
    ids = []
    for fid in [f for f in dict.fromkeys(body["filter_ids"]) if f in readable]:
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
    """As SkyPortal: 400 when the caller has no candidate of that (object, filter) pair."""
    fids = readable_filters(principal).with_only_columns(F.id)
    n = session.execute(sa.delete(C).where(C.obj_id == obj_id, C.filter_id == filter_id,
                                           C.filter_id.in_(fids))).rowcount
    if n == 0:
        raise ValidationError("Invalid (obj_id, filter_id) pairing - no matching candidates")
    return n


# -- sources ------------------------------------------------------------------------------------

@dataclass
class SourceQuery(ObjFilters):
    group_ids: list[int] | None = None
    ra: float | None = None
    dec: float | None = None
    radius: float | None = None  # degrees, as SkyPortal
    source_id: str | None = None  # part of the id (or of the TNS name)
    rejected_source_ids: list[str] | None = None
    alias: str | None = None
    origin: str | None = None
    simbad_class: str | None = None
    has_tns_name: bool = False
    has_no_tns_name: bool = False
    saved_after: datetime | None = None
    saved_before: datetime | None = None
    saved_by_current_user: bool = False
    created_or_modified_after: datetime | None = None
    classifications_simul: bool = False
    nonclassifications: list[str] | None = None
    classified: bool = False
    unclassified: bool = False
    include_requested: bool = False
    requested_only: bool = False
    has_followup_request: bool = False
    followup_request_status: str | None = None
    exists: list[tuple[bool, str, str]] = field(default_factory=list)  # (must exist?, hook, parameter)
    sort_by: str | None = None  # SkyPortal's default: saved_at
    sort_order: str = "desc"
    include_photometry: bool = False
    include_duplicates: bool = False
    remove_nested: bool = False
    details: dict[str, tuple[str, str]] = field(default_factory=dict)  # output key -> (hook, parameter)


SOURCE_SORTS = {"saved_at", "id", "alias", "origin", "ra", "dec", "redshift", "created_at"}  # + altdata.<key>
_TNS_DESIGNATED = re.compile(r"(at|sn)\d{1,4}[a-zA-Z]*", re.IGNORECASE)
_TNS_BARE = re.compile(r"^\d{1,4}[a-zA-Z]*", re.IGNORECASE)


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def cone_clause(ra: float, dec: float, radius_deg: float, ra_col=O.ra, dec_col=O.dec):
    """SQL condition: within ``radius_deg`` of (ra, dec); the declination band uses the index."""
    hav = (sa.func.power(sa.func.sin(sa.func.radians(dec_col - dec) / 2), 2)
           + sa.func.cos(sa.func.radians(dec_col)) * math.cos(math.radians(dec))
           * sa.func.power(sa.func.sin(sa.func.radians(ra_col - ra) / 2), 2))
    return sa.and_(dec_col.between(dec - radius_deg, dec + radius_deg),
                   sa.func.degrees(2 * sa.func.asin(sa.func.sqrt(sa.func.least(hav, 1.0)))) <= radius_deg)


def _check_cone(ra, dec, radius) -> bool:
    if all(v is None for v in (ra, dec, radius)):
        return False
    if any(v is None for v in (ra, dec, radius)):
        raise ValidationError("Invalid cone search: give all of ra, dec and radius", field="radius")
    if not 0 <= ra < 360 or not -90 <= dec <= 90 or radius < 0:
        raise ValidationError("Invalid cone search: ra in [0, 360), dec in [-90, 90], radius >= 0", field="radius")
    return True


def _source_sort_column(q: SourceQuery, saved):
    sort_by = q.sort_by or "saved_at"
    if sort_by.startswith("altdata."):
        path = sort_by.split(".")[1:]
        if not path or not all(path):
            raise ValidationError(f"Invalid sortBy: {sort_by!r}", field="sortBy")
        return O.altdata[tuple(path)] if len(path) > 1 else O.altdata[path[0]]
    if sort_by not in SOURCE_SORTS:
        raise ValidationError(f"Invalid sortBy: must be one of {sorted(SOURCE_SORTS)} or altdata.<key>",
                              field="sortBy")
    return saved.c.saved_at if sort_by == "saved_at" else getattr(O, sort_by)


def _source_filters(stmt, principal: Principal, q: SourceQuery, session: Session):
    if _check_cone(q.ra, q.dec, q.radius):
        stmt = stmt.where(cone_clause(q.ra, q.dec, q.radius))
    if q.source_id:
        sid = q.source_id.strip()
        tns = sid.lower().replace(" ", "")
        cond = O.id.like(_like(sid), escape="\\")
        if _TNS_DESIGNATED.match(tns):
            cond = sa.or_(cond, sa.func.lower(O.tns_name).like(_like(tns[2:]), escape="\\"))
        elif _TNS_BARE.match(tns):
            cond = sa.or_(cond, sa.func.lower(O.tns_name).like(_like(tns), escape="\\"))
        stmt = stmt.where(cond)
    if q.rejected_source_ids:
        stmt = stmt.where(O.id.not_in(q.rejected_source_ids))
    if q.alias:
        stmt = stmt.where(sa.func.lower(sa.func.array_to_string(O.alias, "\x1f"))
                          .like(_like(q.alias.strip().lower()), escape="\\"))
    if q.origin:
        stmt = stmt.where(sa.func.lower(O.origin).like(_like(q.origin.strip().lower()), escape="\\"))
    if q.simbad_class:
        stmt = stmt.where(sa.func.lower(O.altdata["simbad"]["class"].astext)
                          .like(_like(q.simbad_class.strip().lower()), escape="\\"))
    if q.has_tns_name:
        stmt = stmt.where(O.tns_name.is_not(None))
    elif q.has_no_tns_name:
        stmt = stmt.where(O.tns_name.is_(None))
    if q.created_or_modified_after:
        stmt = stmt.where(sa.or_(O.created_at > q.created_or_modified_after, O.modified > q.created_or_modified_after))
    stmt = _obj_filters(stmt, principal, q, session)
    if q.classified or q.unclassified:
        human = _visible_classifications(principal).where(~models.Classification.ml).exists()
        stmt = stmt.where(human if q.classified else ~human)
    else:
        if q.classifications:
            if q.classifications_simul:
                for name in q.classifications:
                    stmt = stmt.where(classification_exists(principal, [name]))
            else:
                stmt = stmt.where(classification_exists(principal, q.classifications))
        if q.nonclassifications:
            stmt = stmt.where(~classification_exists(principal, q.nonclassifications))
    if q.has_followup_request:
        stmt = stmt.where(_followup_exists(principal, q.followup_request_status))
    for must, hook, param in q.exists:
        clause = exists_clause(principal, hook, param)
        stmt = stmt.where(clause if must else ~clause)
    return stmt


def list_sources(session: Session, principal: Principal, q: SourceQuery, page: Page) -> dict:
    """SkyPortal's source list: objects saved to the selected (default: all the caller's) groups.

    A page past the last is an empty page (200), as SkyPortal answers."""
    order = _check_order(q.sort_order)
    if q.group_ids:
        readable_groups_named(session, principal, q.group_ids, "group_ids")
        groups = list(dict.fromkeys(q.group_ids))
    elif principal.is_admin:
        groups = None
    else:
        groups = session.execute(user_group_ids(principal)).scalars().all()
    saved = sa.select(S.obj_id, sa.func.max(S.saved_at).label("saved_at"))
    if groups is not None:
        saved = saved.where(S.group_id.in_(groups))
    saved = _source_state(saved, q.include_requested, q.requested_only)
    if q.saved_after:
        saved = saved.where(S.saved_at >= q.saved_after)
    if q.saved_before:
        saved = saved.where(S.saved_at <= q.saved_before)
    if q.saved_by_current_user:
        saved = saved.where(S.saved_by_id == principal.user_id)
    saved = saved.group_by(S.obj_id).subquery()
    stmt = sa.select(*obj_columns(), saved.c.saved_at).join(saved, saved.c.obj_id == O.id)
    stmt = _source_filters(stmt, principal, q, session)
    stmt = _sort(stmt, _source_sort_column(q, saved), order)
    rows, total = page_of_objs(session, stmt, page)  # past the last page: empty, as SkyPortal
    ids = [o["id"] for o, _ in rows]
    details = source_details(session, principal, ids, q)
    sources = with_derived([{**o, "saved_at": s.isoformat(), **details[o["id"]]} for o, s in rows])
    out = {"sources": sources, "totalMatches": total, "pageNumber": page.number, "numPerPage": page.size}
    if groups is not None and len(groups) == 1:
        out["group_id"] = int(groups[0])
    return out


def source_details(session: Session, principal: Principal, ids, q: SourceQuery,
                   extra: tuple[str, ...] = ()) -> dict[str, dict]:
    """The nested lists of sources ``ids`` (one query for the nested rows: broker.objects.nested);
    ``extra``: more nested kinds to read in that query, answered under ``_<kind>``."""
    from broker.objects.nested import read_nested

    out: dict[str, dict] = {i: {} for i in ids}
    if not ids:
        return out
    wanted = dict(q.details)
    if "annotations" in DETAILS and not q.remove_nested:  # SkyPortal lists them unless removeNested
        wanted.setdefault("annotations", ("annotations", "annotations"))
    nested_hooks, wanted = _nested_hooks(wanted)
    kinds = ["localizations", *nested_hooks, *extra]
    if not q.remove_nested:
        kinds += ["groups", "classifications"]
    if q.include_duplicates:
        kinds.append("duplicates")
    got = read_nested(session, principal, ids, kinds, include_requested=q.include_requested,
                      requested_only=q.requested_only, snr=DETECTION_SNR)
    for i in ids:
        if not q.remove_nested:
            out[i]["groups"] = got["groups"][i]
            out[i]["classifications"] = got["classifications"][i]
        out[i]["localizations"] = got["localizations"][i]
        if q.include_duplicates:
            out[i]["duplicates"] = got["duplicates"][i]
        for hook in nested_hooks:
            out[i][hook] = got[hook][i]
        for kind in extra:
            out[i][f"_{kind}"] = got[kind][i]
    if q.include_photometry:
        phot = visible_photometry(session, principal, ids)
        for i in ids:
            out[i]["photometry"] = phot[i]
    _add_details(session, principal, ids, out, wanted)
    return out


def saved_clause(principal: Principal, obj_id: str, include_requested: bool = False, requested_only: bool = False):
    stmt = _source_state(sa.select(S.id).where(S.obj_id == obj_id), include_requested, requested_only)
    if not principal.is_admin:
        stmt = stmt.where(S.group_id.in_(user_group_ids(principal)))
    return stmt.exists()


def source_exists_for(session: Session, principal: Principal, obj_id: str) -> bool:
    """HEAD /api/sources/{id}: a save (any state, as SkyPortal) of the object to one of the caller's groups."""
    stmt = sa.select(S.id).where(S.obj_id == obj_id)
    if not principal.is_admin:
        stmt = stmt.where(S.group_id.in_(user_group_ids(principal)))
    return session.execute(stmt.limit(1)).first() is not None


def get_source(session: Session, principal: Principal, obj_id: str, q: SourceQuery, tns_name: str | None = None,
               include_candidates: bool = False) -> dict:
    """One source: an object saved to one of the caller's groups (404 otherwise, as SkyPortal)."""
    stmt = sa.select(O).where(O.id == obj_id, saved_clause(principal, obj_id, q.include_requested,
                                                            q.requested_only))
    if tns_name:
        stmt = stmt.where(O.tns_name.in_([tns_name.strip(), tns_name.strip().replace(" ", "")]))
    obj = session.execute(stmt).scalar()
    if obj is None:
        raise NotFound(f"Source not found: no source '{obj_id}' saved to your groups")
    q.include_duplicates = True  # SkyPortal always lists a source's duplicates
    details = source_details(session, principal, [obj_id], q, extra=("detections", "followups"))[obj_id]
    detections, followups = details.pop("_detections"), details.pop("_followups")
    details["duplicates"] = _with_nearby_sources(session, principal, obj, details["duplicates"])
    out = with_derived([{**obj_to_dict(obj), **details}])[0]
    out["followup_requests"] = _followup_list(session, principal, followups)
    if include_candidates:
        fids = readable_filters(principal).with_only_columns(F.id)
        rows = session.execute(sa.select(C, F).join(F, F.id == C.filter_id)
                               .where(C.obj_id == obj_id, C.filter_id.in_(fids))
                               .order_by(C.passed_at.desc())).all()
        out["candidates"] = [{**c.to_dict(), "filter": f.to_dict()} for c, f in rows]
    first, last = detections[0] if detections else (None, None)
    if first is not None:
        out["first_detected"], out["last_detected"] = _mjd_to_iso(first), _mjd_to_iso(last)
    return out


DUPLICATE_RADIUS_DEG = 4 / 3600  # SkyPortal's: sources within 4 arcsec are a source's duplicates


def _with_nearby_sources(session: Session, principal: Principal, obj: models.Obj, dups: list[dict]) -> list[dict]:
    """SkyPortal's duplicates: other sources of the caller's groups within 4 arcsec (none for a moving
    object, nor moving objects), with the pipeline's associations (``dups``)."""
    if obj.is_roid:
        return []
    from broker.objects.nested import MY_GROUPS_SQL

    mine = "" if principal.is_admin else f" AND s.group_id IN ({MY_GROUPS_SQL})"
    r = DUPLICATE_RADIUS_DEG
    rows = fetch(session, f"""
        SELECT objs.id, objs.ra, objs.dec FROM objs
        WHERE objs.dec BETWEEN %(dec0)s AND %(dec1)s
          AND degrees(2 * asin(sqrt(least(power(sin(radians(objs.dec - %(dec)s) / 2), 2)
              + cos(radians(objs.dec)) * %(cosdec)s * power(sin(radians(objs.ra - %(ra)s) / 2), 2), 1.0)))) <= %(r)s
          AND objs.id != %(id)s AND objs.is_roid IS NOT TRUE
          AND EXISTS (SELECT 1 FROM sources s WHERE s.obj_id = objs.id AND s.active{mine})""",
                 {"dec0": obj.dec - r, "dec1": obj.dec + r, "dec": obj.dec, "ra": obj.ra, "r": r, "id": obj.id,
                  "cosdec": math.cos(math.radians(obj.dec)), "uid": principal.user_id})
    by_id = {d["obj_id"]: d for d in dups}
    for oid, ra, dec in rows:
        if oid not in by_id:
            by_id[oid] = {"obj_id": oid, "separation": _sep_arcsec(obj.ra, obj.dec, ra, dec), "ra": ra, "dec": dec}
    return sorted(by_id.values(), key=lambda d: d["separation"])


def _sep_arcsec(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    r1, d1, r2, d2 = map(math.radians, (ra1, dec1, ra2, dec2))
    h = math.sin((d2 - d1) / 2) ** 2 + math.cos(d1) * math.cos(d2) * math.sin((r2 - r1) / 2) ** 2
    return math.degrees(2 * math.asin(min(1.0, math.sqrt(h)))) * 3600


def _require_can_save(session: Session, principal: Principal, group_id: int) -> None:
    get_readable_group(session, principal, group_id)
    if principal.is_admin:
        return
    gu = membership(session, principal, group_id)
    if gu is None or not gu.can_save:
        raise PermissionDenied(f"Insufficient permissions: you cannot save sources to group {group_id}")


def save_source(session: Session, principal: Principal, obj_id: str, group_ids: list[int],
                savers: dict[int, int] | None = None) -> None:
    """Save (or re-save) an object to groups; needs can_save in each. ``savers``: group -> saving user."""
    now = models.utcnow()
    for gid in group_ids:
        _require_can_save(session, principal, gid)
        saver = (savers or {}).get(gid, principal.user_id)
        src = session.execute(sa.select(S).where(S.obj_id == obj_id, S.group_id == gid)).scalar()
        if src is None:
            session.add(S(obj_id=obj_id, group_id=gid, saved_by_id=saver, saved_at=now, active=True))
        elif not src.active:
            src.active, src.saved_at, src.saved_by_id = True, now, saver
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


def delete_source(session: Session, principal: Principal, obj_id: str, group_id: int) -> None:
    """DELETE /api/sources/{id}: unsave from one group of the caller's (400s as SkyPortal's)."""
    if not principal.is_admin and membership(session, principal, group_id) is None:
        raise ValidationError("Inadequate permissions: you are not a member of group "
                              f"{group_id}", field="group_id")
    src = session.execute(sa.select(S).where(S.obj_id == obj_id, S.group_id == group_id)).scalar()
    if src is None:
        raise ValidationError(f"No such source {obj_id} in group {group_id}.", field="group_id")
    src.active, src.unsaved_at, src.unsaved_by_id = False, models.utcnow(), principal.user_id
    session.flush()


def _int_keys(value: dict, name: str) -> dict[int, Any]:
    try:
        return {int(k): v for k, v in value.items()}
    except ValueError:
        raise ValidationError(f"Invalid {name}: keys must be group IDs", field=name) from None


def post_source(session: Session, principal: Principal, body: dict) -> dict:
    """POST /api/sources: create (or find) the object and save it to groups, as SkyPortal's: ``group_ids``
    (default: every group of yours you can save to), ``ignore_if_in_group_ids`` ({group: [groups]}: skip
    saving to a group while the object is saved to one of those), ``saver_per_group_id`` (admins:
    {group: user} saving in that user's name). Answers ``id``, ``saved_to_groups`` (and ``warnings``)."""
    warnings: list[str] = []
    group_ids = body.get("group_ids")
    if group_ids is None:
        group_ids = [gu.group_id for gu in session.execute(
            sa.select(models.GroupUser).join(models.Group)
            .where(models.GroupUser.user_id == principal.user_id, models.GroupUser.can_save,
                   ~models.Group.single_user_group)).scalars()]
        if not group_ids:
            raise ValidationError("Missing required field 'group_ids': you can save to no group by default",
                                  field="group_ids")
    group_ids = list(dict.fromkeys(group_ids))
    if not group_ids:
        raise ValidationError("Invalid group_ids: give at least one group you belong to", field="group_ids")
    readable_groups_named(session, principal, group_ids, "group_ids")
    ignore = _int_keys(body.get("ignore_if_in_group_ids") or {}, "ignore_if_in_group_ids")
    if not set(ignore) <= set(group_ids):
        raise ValidationError("Invalid ignore_if_in_group_ids: its keys must be among group_ids",
                              field="ignore_if_in_group_ids")
    savers: dict[int, int] = {}
    if "saver_per_group_id" in body:
        if not principal.is_admin:
            raise ValidationError("You must be an admin to specify a saver_per_group_id field.",
                                  field="saver_per_group_id")
        for gid, uid in _int_keys(body["saver_per_group_id"], "saver_per_group_id").items():
            if gid not in group_ids:
                continue
            member = session.execute(sa.select(models.GroupUser).where(models.GroupUser.group_id == gid,
                                                                       models.GroupUser.user_id == uid)).scalar()
            if member is None:
                warnings.append(f"Could not save to group {gid} as user {uid} (user is not a member of the group). "
                                f"Using current user {principal.user_id} instead.")
            else:
                savers[gid] = uid
    existed = session.get(O, body["id"]) is not None
    obj = upsert_obj(session, principal, body)
    skipped = []
    if existed:  # SkyPortal applies ignore_if_in_group_ids to objects that existed before
        for gid, others in ignore.items():
            if others and session.execute(sa.select(S.id).where(S.obj_id == obj.id, S.active,
                                                                S.group_id.in_(others)).limit(1)).first():
                skipped.append(gid)
    to_save = [g for g in group_ids if g not in skipped]
    if to_save:
        save_source(session, principal, obj.id, to_save, savers)
    out = {"id": obj.id, "saved_to_groups": to_save}
    if warnings:
        out["warnings"] = warnings
    return out


def patch_source(session: Session, principal: Principal, obj_id: str, body: dict) -> None:
    """PATCH /api/sources/{id}: update the object's fields (the position only while it has no candidates)."""
    obj = session.execute(sa.select(O).where(O.id == obj_id, visible_obj_clause(principal))).scalar()
    if obj is None:
        raise ValidationError(f"Cannot find the object with name {obj_id}")
    if body.get("ra") is not None or body.get("dec") is not None:
        if session.execute(sa.select(C.id).where(C.obj_id == obj_id).limit(1)).first():
            raise ValidationError("Cannot update the position of an object with candidates/alerts", field="ra")
    for key in ("ra", "dec"):
        if key in body and body[key] is None:
            raise ValidationError(f"Invalid value for field '{key}': must not be null", field=key)
    _check_position(body)
    apply_obj_fields(obj, principal, body)
    session.flush()


def source_exists(session: Session, principal: Principal, obj_id: str | None, ra: float | None,
                  dec: float | None, radius: float | None) -> dict:
    """GET /api/source_exists: by name (among objects the caller can see) and/or by position (among the
    sources of the caller's groups), with SkyPortal's messages."""
    cone = ra is not None and dec is not None and radius is not None
    if not obj_id and not cone:
        raise ValidationError("Provide an obj_id, or either ra, dec, and radius for spatial filtering.",
                              field="ra")
    if obj_id:
        if session.execute(sa.select(O.id).where(O.id == obj_id, visible_obj_clause(principal))).first():
            return {"source_exists": True, "message": f"A source with the name {obj_id} already exists."}
        if not cone:
            return {"source_exists": False, "message": f"No sources exist with the name {obj_id}."}
    _check_cone(ra, dec, radius)
    stmt = sa.select(S.obj_id).join(O, O.id == S.obj_id).where(cone_clause(ra, dec, radius))
    if not principal.is_admin:
        stmt = stmt.where(S.group_id.in_(user_group_ids(principal)))
    names = sorted(set(session.execute(stmt.distinct()).scalars()))
    if len(names) == 1:
        return {"source_exists": True, "message": f"A source at that location already exists: {names[0]}."}
    if names:
        return {"source_exists": True, "message": f"Sources at that location already exist: {','.join(names)}."}
    return {"source_exists": False,
            "message": f"No sources exist at this location{f' or with the name {obj_id}' if obj_id else ''}."}


# -- objs ---------------------------------------------------------------------------------------

def delete_obj(session: Session, principal: Principal, obj_id: str) -> None:
    """DELETE /api/objs/{id}: System admins only (SkyPortal's default), and only once the object's data
    (photometry, classifications, crossmatches, and whatever the hooks keep) is gone."""
    obj = session.get(O, obj_id) if principal.is_admin else None
    if obj is None:
        raise ValidationError(f"Cannot find object with ID {obj_id}.")
    # SkyPortal's order: annotations, spectra, photometry, comments, classifications, GCN crossmatches
    held = [("annotations", None), ("spectra", None), ("photometry", models.Photometry.obj_id), ("comments", None),
            ("classifications", models.Classification.obj_id), ("sources in gcns", models.ObjLocalization.obj_id)]
    for label, col in held:
        if col is not None:
            found = session.execute(sa.select(col).where(col == obj_id).limit(1)).first()
        elif label in EXISTS:
            found = session.execute(sa.select(O.id).where(O.id == obj_id, EXISTS[label](principal))).first()
        else:
            found = None
        if found:
            raise ValidationError(
                f"Please remove all associated {label} from object with ID {obj_id} before removing.")
    session.delete(obj)
    session.flush()
