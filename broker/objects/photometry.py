"""Photometry as SkyPortal serves it: uploads (POST, PUT), reads, edits and deletes.

Alerts write their photometry in :mod:`broker.ingest.pipeline`; the survey instruments they are
attributed to come from :func:`survey_instrument_ids` here.

Storage is SkyPortal's: flux and fluxerr in µJy (AB, zero point 23.9) whatever system they were
uploaded in, what that loses kept in ``original_user_data``. A point is a duplicate of another only
when object, instrument, origin, mjd, fluxerr and flux all match (SkyPortal's deduplication index):
two detections in one exposure with different fluxes are two points. De-duplication never merges
across groups that cannot see each other: an upload reuses a point the uploader can see, else gets
its own row (``dedup_scope`` = the uploader).
"""

from __future__ import annotations

import functools
import json
import math
import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

import models
from models.enums import ALLOWED_BANDPASSES, ALLOWED_MAGSYSTEMS
from models.objects import photometry_streams

from broker.access.auth import Principal, readable_streams
from broker.errors import ValidationError
from broker.ingest.decoding import MAG_MAX, MAG_MIN
from broker.runtime.db import copy_rows, fetch, register_staging

PHOT_ZP = 23.9  # AB magnitude of 1 µJy: the zero point of every stored flux
PHOT_SYS = "ab"
# SkyPortal's misc.photometry_detection_threshold_nsigma default: the significance an uploaded
# limiting magnitude is taken to have when limiting_mag_nsigma is not given
DEFAULT_LIMIT_NSIGMA = 3.0
# serialisation: the limiting magnitude of a point without one is its 5-sigma flux (as SkyPortal)
SERIALIZE_NSIGMA = 5.0

# m_AB - m_Vega for the bands whose offset is published (Blanton & Roweis 2007, AJ 133, 734, table 1).
# SkyPortal derives these with sncosmo from the bandpass curves and the CALSPEC Vega spectrum (its
# values agree to ~0.02 mag); sncosmo's data are not reachable here, so bands without a published
# offset (ZTF, LSST, PS1, Swift, ATLAS, Gaia, Swope) and the bd17/csp systems cannot be converted: a
# 400 names magsys.
AB_MINUS_VEGA = {
    "bessellux": 0.79, "bessellb": -0.09, "bessellv": 0.02, "bessellr": 0.21, "besselli": 0.45,
    "sdssu": 0.91, "sdssg": -0.08, "sdssr": 0.16, "sdssi": 0.37, "sdssz": 0.54,
    "2massj": 0.91, "2massh": 1.39, "2massks": 1.85,
}


def ab_offset(magsys: str, band: str, where: str = "") -> float:
    """``m_AB - m_magsys`` in ``band``; a ValidationError naming magsys when we cannot convert."""
    if magsys == "ab":
        return 0.0
    if magsys not in ALLOWED_MAGSYSTEMS:
        raise ValidationError(f"Invalid magsys{where}: {magsys!r} is not one of {list(ALLOWED_MAGSYSTEMS)}",
                              field="magsys")
    if magsys == "vega" and band in AB_MINUS_VEGA:
        return AB_MINUS_VEGA[band]
    raise ValidationError(f"Invalid magsys{where}: cannot convert between {magsys!r} and AB in band {band!r} "
                          f"(Vega offsets are known for {', '.join(sorted(AB_MINUS_VEGA))})", field="magsys")


# -- the survey facilities alerts come from ------------------------------------------------------

SURVEY_FACILITIES = {
    "ZTF": (dict(name="Palomar 1.2m Oschin", nickname="P48", lat=33.3580556, lon=-116.861944, elevation=1706.0,
                 diameter=1.26, robotic=True, fixed_location=True),
            dict(type="imager", band="V", filters=["ztfg", "ztfr", "ztfi"])),
    "LSST": (dict(name="Rubin Observatory 8.4m Simonyi", nickname="Rubin", lat=-30.2444, lon=-70.7494,
                  elevation=2663.0, diameter=8.4, robotic=True, fixed_location=True),
             dict(type="imager", band="optical", filters=["lsstu", "lsstg", "lsstr", "lssti", "lsstz", "lssty"])),
}


def ensure_survey_instruments(conn, surveys=tuple(SURVEY_FACILITIES)) -> None:
    """Create the telescope and instrument of each survey if missing (idempotent; ``conn``: a
    Connection or Session). An instrument is named after its survey (``GET /api/instrument?name=ZTF``)."""
    now = models.utcnow()
    for survey in surveys:
        tel, inst = SURVEY_FACILITIES.get(survey, (dict(name=survey, nickname=survey, diameter=1.0, robotic=True,
                                                        fixed_location=True), dict(type="imager", filters=[])))
        conn.execute(insert(models.Telescope).values(**tel, created_at=now, modified=now)
                     .on_conflict_do_nothing(index_elements=["name"]))
        tel_id = conn.execute(sa.select(models.Telescope.id).where(models.Telescope.name == tel["name"])).scalar()
        conn.execute(insert(models.Instrument).values(name=survey, telescope_id=tel_id, created_at=now, modified=now,
                                                      **inst)
                     .on_conflict_do_nothing(index_elements=["name"]))


def ensure_partitions(session: Session, months_ahead: int) -> int:
    """Make photometry's monthly partitions (by mjd) up to ``months_ahead`` months after this one, moving
    rows the default partition held for them (SQL function ``photometry_ensure_partitions``, migration 0020);
    returns how many were made."""
    return int(session.execute(sa.text("SELECT photometry_ensure_partitions(:n)"), {"n": months_ahead}).scalar_one())


def survey_instrument_ids(session: Session, surveys) -> dict[str, int]:
    """Instrument id of each survey name, creating a missing one."""
    names = sorted(set(surveys))
    if not names:
        return {}
    q = sa.select(models.Instrument.name, models.Instrument.id).where(models.Instrument.name.in_(names))
    found = dict(session.execute(q).all())
    if len(found) < len(names):
        ensure_survey_instruments(session, [n for n in names if n not in found])
        found = dict(session.execute(q).all())
    return found


# -- visibility ----------------------------------------------------------------------------------

def _user_groups(principal: Principal) -> sa.Select:
    return sa.select(models.GroupUser.group_id).where(models.GroupUser.user_id == principal.user_id)


def visible_clause(principal: Principal, P=models.Photometry):
    """SQL condition: the caller can read the point (SkyPortal's groups | streams | owner)."""
    if principal.is_admin:
        return sa.true()
    groups = _user_groups(principal)
    streams = sa.select(models.group_streams.c.stream_id).where(models.group_streams.c.group_id.in_(groups))
    return sa.or_(
        P.id.in_(sa.select(models.photometry_groups.c.photometry_id)
                 .where(models.photometry_groups.c.group_id.in_(groups))),
        P.stream_id.in_(streams),
        P.id.in_(sa.select(photometry_streams.c.photometry_id).where(photometry_streams.c.stream_id.in_(streams))),
        P.owner_id == principal.user_id,
    )


def _visible_objs(session: Session, principal: Principal, obj_ids: list[str]) -> set[str]:
    """Of ``obj_ids``, those the caller can see (one query, whatever their number)."""
    from broker.objects.nested import visible_obj_sql

    if not obj_ids:
        return set()
    visible = "" if principal.is_admin else f" AND ({visible_obj_sql()})"
    return {r[0] for r in fetch(session, f"SELECT objs.id FROM objs WHERE objs.id = ANY(%(ids)s){visible}",
                                {"ids": sorted(obj_ids), "uid": principal.user_id}, prepare=True)}


# -- input: SkyPortal's standardize_photometry_data ----------------------------------------------

PER_POINT = ("obj_id", "instrument_id", "instrument_name", "mjd", "filter", "magsys", "flux", "fluxerr", "zp",
             "ref_flux", "ref_fluxerr", "ref_zp", "mag", "magerr", "limiting_mag", "limiting_mag_nsigma", "magref",
             "e_magref", "ra", "dec", "ra_unc", "dec_unc", "origin")
FLUX_ONLY = ("flux", "fluxerr", "zp", "ref_flux", "ref_fluxerr", "ref_zp")
MAG_ONLY = ("mag", "magerr", "limiting_mag_nsigma", "magref", "e_magref")


@dataclass
class Point:
    """One standardized point, ready to store."""

    obj_id: str
    instrument_id: int
    mjd: float
    flux: float | None
    fluxerr: float
    filter: str
    limiting_mag: float | None
    ra: float | None
    dec: float | None
    ra_unc: float | None
    dec_unc: float | None
    origin: str
    ref_flux: float | None
    ref_fluxerr: float | None
    original_user_data: dict | None
    altdata: dict | None

    @property
    def key(self) -> tuple:
        return (self.obj_id, self.instrument_id, self.origin, self.mjd, self.fluxerr, self.flux)


def _broadcast(body: dict) -> list[dict]:
    """Each field a scalar or a list; the lists share one length and scalars apply to every point."""
    lengths = {k: len(v) for k, v in body.items() if k in PER_POINT and isinstance(v, list)}
    n = max(lengths.values(), default=1)
    for k, length in lengths.items():
        if length != n:
            raise ValidationError(f"Invalid field '{k}': has {length} values where other fields have {n}", field=k)
    return [{k: (body[k][i] if isinstance(body.get(k), list) else body.get(k)) for k in PER_POINT} for i in range(n)]


def _altdata(raw, n: int) -> list[dict | None]:
    """SkyPortal's altdata: one dict for every point (a list value gives each point its element), or a
    list of one dict per point; None and "" values are dropped, an empty dict is null."""
    if raw is None or raw == {} or raw == []:
        return [None] * n
    if isinstance(raw, list):
        if len(raw) != n or not all(isinstance(d, dict) or d is None for d in raw):
            raise ValidationError(f"Invalid field 'altdata': a list of altdata needs one object per point ({n})",
                                  field="altdata")
        rows = [dict(d or {}) for d in raw]
    else:
        rows = [{} for _ in range(n)]
        for k, v in raw.items():
            if isinstance(v, list):
                if len(v) == 1:
                    v = v * n
                if len(v) != n:
                    raise ValidationError(f"Invalid field 'altdata.{k}': {k} in altdata incorrect length "
                                          f"({len(v)} values for {n} points)", field=f"altdata.{k}")
                for i in range(n):
                    rows[i][k] = v[i]
            else:
                for i in range(n):
                    rows[i][k] = v
    out = []
    for d in rows:
        d = {k: v for k, v in d.items() if v is not None and v != ""}
        out.append(d or None)
    return out


def _num(row: dict, name: str, where: str, lo=None, hi=None, positive=False) -> float | None:
    v = row[name]
    if v is None:
        return None
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ValidationError(f"Invalid value for field '{name}'{where}: {v!r} is outside [{lo}, {hi}]", field=name)
    if positive and not v > 0:
        raise ValidationError(f"Invalid value for field '{name}'{where}: must be positive (non-zero)", field=name)
    return v


def standardize(session: Session, principal: Principal, body: dict) -> list[Point]:
    """SkyPortal's checks and conversion to µJy (AB), point by point; a 400 names the field (and the
    point, ``[i]``, when the body has several)."""
    if body.get("assignment_id") is not None:
        raise ValidationError("Invalid assignment_id: classical assignments are not kept here", field="assignment_id")
    if body.get("extinction_corrected"):
        raise ValidationError("Invalid extinction_corrected: extinction-corrected uploads cannot be re-reddened "
                              "here (no dust map)", field="extinction_corrected")
    rows = _broadcast(body)
    n = len(rows)
    flux_kind = "flux" in body or "fluxerr" in body
    if flux_kind:
        mixed = [k for k in MAG_ONLY if k in body]
        if mixed:
            raise ValidationError(f"Invalid field '{mixed[0]}': give the points either in flux space "
                                  "(flux, fluxerr, zp) or in magnitude space (mag, magerr, limiting_mag)",
                                  field=mixed[0])
    else:
        mixed = [k for k in FLUX_ONLY if k in body]
        if mixed:
            raise ValidationError(f"Missing required field 'fluxerr': {mixed[0]} is given, so the points are in "
                                  "flux space", field="fluxerr")
    altdata = _altdata(body.get("altdata"), n)

    objs = {r["obj_id"] for r in rows}
    seen = _visible_objs(session, principal, [o for o in objs if isinstance(o, str)])
    for oid in sorted(objs, key=str):
        if oid is None or not isinstance(oid, str) or oid not in seen:
            # as SkyPortal: a 400; an object out of the caller's sight reads like a missing one
            raise ValidationError(f"Invalid obj_id: no object '{oid}'", field="obj_id")
    instruments = _instruments(session, rows)

    out = []
    for i, row in enumerate(rows):
        where = f"[{i}]" if n > 1 else ""
        if row["mjd"] is None:
            raise ValidationError(f"Missing required field 'mjd'{where}", field="mjd")
        band = row["filter"]
        if band not in ALLOWED_BANDPASSES:
            raise ValidationError(f"Invalid value for field 'filter'{where}: {band!r} is not a known bandpass "
                                  f"(allowed: {', '.join(ALLOWED_BANDPASSES)})", field="filter")
        inst = instruments[i]
        if inst.type == "imager" and band not in (inst.filters or []):
            raise ValidationError(f"Invalid value for field 'filter'{where}: instrument {inst.name} has no filter "
                                  f"{band}", field="filter")
        magsys = row["magsys"] if row["magsys"] is not None else PHOT_SYS
        delta = ab_offset(magsys, band, where)
        _num(row, "ra", where, 0, 360)
        _num(row, "dec", where, -90, 90)
        _num(row, "ra_unc", where, 0, None)
        _num(row, "dec_unc", where, 0, None)
        lim = _num(row, "limiting_mag", where, MAG_MIN, MAG_MAX)
        user = {"magsys": magsys}
        if flux_kind:
            fluxerr = _num(row, "fluxerr", where, positive=True)
            if fluxerr is None:
                raise ValidationError(f"Missing required field 'fluxerr'{where}", field="fluxerr")
            zp = _num(row, "zp", where, -100, 100)
            zp = PHOT_ZP if zp is None else zp
            factor = 10 ** (-0.4 * (zp + delta - PHOT_ZP))
            flux = None if row["flux"] is None else row["flux"] * factor
            fluxerr = fluxerr * factor
            ref_flux = ref_fluxerr = None
            if row["ref_flux"] is not None and row["ref_fluxerr"] is not None:
                ref_zp = _num(row, "ref_zp", where, -100, 100)
                rfactor = 10 ** (-0.4 * ((PHOT_ZP if ref_zp is None else ref_zp) + delta - PHOT_ZP))
                ref_flux = row["ref_flux"] * rfactor
                ref_fluxerr = _num(row, "ref_fluxerr", where, positive=True) * rfactor
        else:
            mag = _num(row, "mag", where, MAG_MIN, MAG_MAX)
            magerr = _num(row, "magerr", where, 0, 100)
            if (mag is None) != (magerr is None):
                missing = "magerr" if magerr is None else "mag"
                raise ValidationError(f"Missing required field '{missing}'{where}: mag and magerr must both be "
                                      "null, or both be not null", field=missing)
            nsigma = _num(row, "limiting_mag_nsigma", where, positive=True)
            nsigma = DEFAULT_LIMIT_NSIGMA if nsigma is None else nsigma
            if mag is not None:
                flux = 10 ** (-0.4 * (mag + delta - PHOT_ZP))
                fluxerr = magerr / (2.5 / math.log(10)) * flux
            elif lim is None:
                raise ValidationError(f"Missing required field 'limiting_mag'{where}: non-detections (mag=null) "
                                      f"require a limiting_mag (MJD {row['mjd']})", field="limiting_mag")
            else:
                flux = None
                fluxerr = 10 ** (-0.4 * (lim + delta - PHOT_ZP)) / nsigma
            user["limiting_mag_nsigma"] = nsigma
            ref_flux = ref_fluxerr = None
            if row["magref"] is not None and row["e_magref"] is not None:
                magref = _num(row, "magref", where, MAG_MIN, MAG_MAX)
                ref_flux = 10 ** (-0.4 * (magref + delta - PHOT_ZP))
                ref_fluxerr = _num(row, "e_magref", where, 0, 100) / (2.5 / math.log(10)) * ref_flux
        if lim is not None:
            user["limiting_mag"] = lim
        origin = row["origin"]
        out.append(Point(
            obj_id=row["obj_id"], instrument_id=inst.id, mjd=row["mjd"], flux=flux, fluxerr=fluxerr, filter=band,
            limiting_mag=None if lim is None else lim + delta, ra=row["ra"], dec=row["dec"], ra_unc=row["ra_unc"],
            dec_unc=row["dec_unc"], origin="None" if origin is None else str(origin),  # as SkyPortal stores None
            ref_flux=ref_flux, ref_fluxerr=ref_fluxerr, original_user_data=user, altdata=altdata[i],
        ))
    return out


def _instruments(session: Session, rows: list[dict]) -> list[models.Instrument]:
    """Each point's instrument, by instrument_id (SkyPortal) or, our addition, instrument_name."""
    ids = {r["instrument_id"] for r in rows if r["instrument_id"] is not None}
    names = {r["instrument_name"] for r in rows if r["instrument_id"] is None and r["instrument_name"] is not None}
    by_id, by_name = {}, {}
    if ids:
        by_id = {i.id: i for i in session.execute(
            sa.select(models.Instrument).where(models.Instrument.id.in_(sorted(ids)))).scalars()}
    if names:
        by_name = {i.name: i for i in session.execute(
            sa.select(models.Instrument).where(models.Instrument.name.in_(sorted(names)))).scalars()}
    out = []
    for r in rows:
        if r["instrument_id"] is not None:
            inst = by_id.get(r["instrument_id"])
            if inst is None:
                raise ValidationError(f"Invalid instrument ID: {r['instrument_id']}", field="instrument_id")
        elif r["instrument_name"] is not None:
            inst = by_name.get(r["instrument_name"])
            if inst is None:
                raise ValidationError(f"Invalid instrument_name: no instrument named {r['instrument_name']!r}",
                                      field="instrument_name")
        else:
            raise ValidationError("Missing required field 'instrument_id'", field="instrument_id")
        out.append(inst)
    return out


def upload_groups(session: Session, principal: Principal, raw, sitewide_group: str,
                  single_user: bool = True) -> list[int]:
    """SkyPortal's get_group_ids: the groups given (ours: ones the caller can read), "all" for the
    sitewide group, and (``single_user``) the uploader's single-user group."""
    if raw is None:
        raw = []
    if raw == "all":
        gid = session.execute(sa.select(models.Group.id).where(models.Group.name == sitewide_group)).scalar()
        if gid is None:
            raise ValidationError(f"Invalid group_ids: public group {sitewide_group} not found", field="group_ids")
        wanted = [gid]
    else:
        wanted = list(raw)
    # one query: which of the groups named the caller can read (all for an admin), and their own
    # single-user group
    member = "EXISTS (SELECT 1 FROM group_users gu WHERE gu.group_id = g.id AND gu.user_id = %(uid)s)"
    rows = fetch(session, f"""
        SELECT g.id, g.id = ANY(%(ids)s) AND (%(admin)s OR {member}), g.single_user_group AND {member}
        FROM groups g
        WHERE g.id = ANY(%(ids)s) OR (%(single)s AND g.single_user_group AND {member})""",
                 {"ids": [g for g in wanted if isinstance(g, int) and -2**31 <= g < 2**31], "uid": principal.user_id,
                  "admin": principal.is_admin or raw == "all", "single": single_user}, prepare=True)
    readable = {gid for gid, ok, _ in rows if ok}
    for gid in wanted:
        if gid not in readable:
            raise ValidationError(f"Invalid group IDs: {gid} is not a group you can access", field="group_ids")
    single = min((gid for gid, _, mine in rows if mine), default=None) if single_user else None
    return sorted({*wanted, *([single] if single else [])})


def upload_streams(session: Session, principal: Principal, raw) -> list[int]:
    """SkyPortal's get_stream_ids: streams the caller can access."""
    ids = sorted(set(raw or []))
    if not ids:
        return []
    found = set(session.execute(readable_streams(principal).with_only_columns(models.Stream.id)
                                .where(models.Stream.id.in_(ids))).scalars())
    missing = [i for i in ids if i not in found]
    if missing:
        raise ValidationError(f"Invalid stream IDs: {missing}. Available stream IDs: {sorted(found)}",
                              field="stream_ids")
    return ids


# -- writing --------------------------------------------------------------------------------------

_STAGE = """
    CREATE TEMP TABLE IF NOT EXISTS photometry_upload (
        i int, obj_id text, instrument_id int, mjd float8, flux float8, fluxerr float8, filter text,
        limiting_mag float8, ra float8, dec float8, ra_unc float8, dec_unc float8, origin text,
        ref_flux float8, ref_fluxerr float8, original_user_data text, altdata text
    ) ON COMMIT DELETE ROWS
"""
_COLUMNS = ("i", "obj_id", "instrument_id", "mjd", "flux", "fluxerr", "filter", "limiting_mag", "ra", "dec",
            "ra_unc", "dec_unc", "origin", "ref_flux", "ref_fluxerr", "original_user_data", "altdata")
_UP = sa.table("photometry_upload", *(sa.column(c) for c in _COLUMNS))
register_staging("photometry_upload", _STAGE)
DEDUP_KEY = ("obj_id", "instrument_id", "origin", "mjd", "fluxerr", "flux")
_NOFLUX_KEY = ("obj_id", "instrument_id", "origin", "mjd")


def _same(P, key=DEDUP_KEY):
    return sa.and_(*(P.flux.is_not_distinct_from(_UP.c.flux) if k == "flux" else getattr(P, k) == _UP.c[k]
                     for k in key))


def _stage(session: Session, points: list[Point]) -> None:
    def cell(v):
        return None if v is None else json.dumps(v, allow_nan=False)

    copy_rows(session, _STAGE, "photometry_upload", _COLUMNS,
              ([i, p.obj_id, p.instrument_id, p.mjd, p.flux, p.fluxerr, p.filter, p.limiting_mag, p.ra, p.dec,
                p.ra_unc, p.dec_unc, p.origin, p.ref_flux, p.ref_fluxerr, cell(p.original_user_data), cell(p.altdata)]
               for i, p in enumerate(points)),
              force_not_null=("origin",), analyze=True)  # (without, the dedup join took 2.5 ms, not 0.4)


@functools.lru_cache(maxsize=1024)
def _upload_statements(principal: Principal, ignore_flux: bool) -> tuple:
    """The statements of an upload for this caller (built once: their SQLAlchemy construction and cache
    keys cost more than their execution): the staged points it already sees, the insert of the others
    (bound: upload_id, uid, now), and the caller's own points among the staged ones (bound: uid)."""
    P = models.Photometry
    vis = visible_clause(principal)
    key = _NOFLUX_KEY if ignore_flux else DEDUP_KEY
    find_seen = sa.select(_UP.c.i, P.id).join(P, sa.and_(_same(P, key), vis)).order_by(_UP.c.i, P.id)
    cols = ["obj_id", "instrument_id", "mjd", "flux", "fluxerr", "filter", "limiting_mag", "ra", "dec", "ra_unc",
            "dec_unc", "origin", "ref_flux", "ref_fluxerr"]
    uid, now = sa.bindparam("uid", type_=sa.BigInteger), sa.bindparam("now", type_=sa.DateTime)
    fresh = (sa.select(*(_UP.c[c] for c in cols), sa.cast(_UP.c.original_user_data, P.altdata.type),
                       sa.cast(_UP.c.altdata, P.altdata.type),
                       sa.select(models.Instrument.name).where(models.Instrument.id == _UP.c.instrument_id)
                       .scalar_subquery(),
                       sa.bindparam("upload_id", type_=sa.String), uid, uid, now, now)
             .where(~sa.exists().where(_same(P, key), vis)).order_by(_UP.c.i))
    insert_fresh = (insert(P).from_select([*cols, "original_user_data", "altdata", "instrument_name", "upload_id",
                                           "owner_id", "dedup_scope", "created_at", "modified"], fresh)
                    .on_conflict_do_nothing(constraint="uq_photometry_point").returning(P.id))
    find_own = sa.select(_UP.c.i, P.id).join(P, _same(P)).where(P.dedup_scope == uid)
    return find_seen, insert_fresh, find_own


def upload(session: Session, principal: Principal, points: list[Point], group_ids: list[int],
           stream_ids: list[int], *, duplicates: str, ignore_flux: bool = False,
           overwrite_flux: bool = False) -> tuple[list[int], str | None]:
    """Store ``points``; return their ids, in the order given, and the upload id of the new ones.

    ``duplicates``: "error" (POST): a point that duplicates one the uploader can see, or another of
    the upload, is a 400; "reuse" (PUT): it is that point, and gets the upload's groups and streams.
    ``ignore_flux`` (PUT, admins): a duplicate is the same object, instrument, origin and mjd
    whatever the flux; ``overwrite_flux`` then rewrites the flux (and position, reference, altdata)
    of one such point per key whose origin is set."""
    if not points:
        return [], None
    _stage(session, points)
    find_seen, insert_fresh, find_own = _upload_statements(principal, ignore_flux)
    # 1. the points the uploader already sees (the oldest, if several)
    conn = session.connection()  # Core execution: bound values, not an ORM bulk insert
    matches = conn.execute(find_seen).all()
    reused: dict[int, int] = {}
    for i, pid in matches:
        reused.setdefault(i, pid)
    if duplicates == "error":
        seen: dict[tuple, int] = {}
        dup = []
        for i, p in enumerate(points):
            if i in reused or p.key in seen:
                dup.append(p.key)
            seen.setdefault(p.key, i)
        if dup:
            raise ValidationError(
                "The following photometry already exists in the database (deduplication keys: obj_id, "
                f"instrument_id, origin, mjd, fluxerr, flux): {dup[:20]}{' …' if len(dup) > 20 else ''}",
                field="mjd")
    if overwrite_flux and ignore_flux:
        _overwrite(session, points, matches)
    # 2. the rest become the uploader's own rows (one per key; a repeat of a key is that row)
    upload_id = str(uuid.uuid4())
    params = {"upload_id": upload_id, "uid": principal.user_id, "now": models.utcnow()}
    inserted = conn.execute(insert_fresh, params).all()
    own = dict(conn.execute(find_own, params).all())
    ids = [reused.get(i, own.get(i)) for i in range(len(points))]
    if any(i is None for i in ids):  # a point of the uploader's own scope they can no longer see
        raise ValidationError("Cannot store photometry: a point with the same key exists in your scope but is no "
                              "longer visible to you (its groups were removed)", field="group_ids")
    distinct = sorted(set(ids))
    if group_ids:
        session.execute(sa.text("""
            INSERT INTO photometry_groups (photometry_id, group_id)
            SELECT p, g FROM unnest(CAST(:p AS int[])) AS p CROSS JOIN unnest(CAST(:g AS int[])) AS g
            ON CONFLICT DO NOTHING"""), {"p": distinct, "g": group_ids})
    if stream_ids:
        session.execute(sa.text("""
            INSERT INTO photometry_streams (photometry_id, stream_id)
            SELECT p, s FROM unnest(CAST(:p AS int[])) AS p CROSS JOIN unnest(CAST(:s AS int[])) AS s
            ON CONFLICT DO NOTHING"""), {"p": distinct, "s": stream_ids})
    return ids, (upload_id if inserted else None)


def _overwrite(session: Session, points: list[Point], matches) -> None:
    """duplicate_ignore_flux + overwrite_flux: the matched point takes the new flux and the rest, once per
    (mjd, instrument, filter, origin), only where both origins are set (SkyPortal's rule)."""
    unset = {"none", "", "nan", "null"}
    P = models.Photometry
    by_id = {p.id: p for p in session.execute(
        sa.select(P).where(P.id.in_(sorted({pid for _, pid in matches})))).scalars()} if matches else {}
    done = set()
    for i, pid in matches:
        new, old = points[i], by_id[pid]
        if str(old.origin).strip().lower() in unset or str(new.origin).strip().lower() in unset:
            continue
        k = (old.mjd, old.instrument_id, old.filter, old.origin)
        if k in done:
            continue
        done.add(k)
        old.flux, old.fluxerr, old.filter = new.flux, new.fluxerr, new.filter
        old.ra, old.dec, old.ra_unc, old.dec_unc = new.ra, new.dec, new.ra_unc, new.dec_unc
        old.ref_flux, old.ref_fluxerr, old.altdata = new.ref_flux, new.ref_fluxerr, new.altdata
        old.modified = models.utcnow()
    session.flush()


# -- reading --------------------------------------------------------------------------------------

def get_point(session: Session, principal: Principal, photometry_id: int) -> models.Photometry:
    P = models.Photometry
    p = session.execute(sa.select(P).where(P.id == photometry_id, visible_clause(principal))).scalar()
    if p is None:  # as SkyPortal: a 400
        raise ValidationError(f"Cannot find photometry point with ID: {photometry_id}.", field="photometry_id")
    return p


@dataclass
class Extras:
    """What the serialised points name besides their own columns (one query each, for all of them)."""

    instruments: dict[int, str]
    groups: dict[int, list[dict]]
    streams: dict[int, list[dict]] | None = None
    owners: dict[int, dict] | None = None
    annotations: dict[int, list[dict]] | None = None


def extras(session: Session, principal: Principal, points, owner=False, streams=False,
           annotations=False) -> Extras:
    ids = [p.id for p in points]
    inst_ids = sorted({p.instrument_id for p in points})
    instruments = dict(session.execute(sa.select(models.Instrument.id, models.Instrument.name)
                                       .where(models.Instrument.id.in_(inst_ids))).all()) if inst_ids else {}
    G, PG = models.Group, models.photometry_groups
    q = (sa.select(PG.c.photometry_id, G.id, G.name, G.nickname, G.single_user_group)
         .join(G, G.id == PG.c.group_id).where(PG.c.photometry_id.in_(ids)).order_by(G.id))
    if not principal.is_admin:  # only the caller's groups are named
        q = q.where(G.id.in_(_user_groups(principal)))
    groups: dict[int, list[dict]] = {i: [] for i in ids}
    for pid, gid, name, nick, single in session.execute(q):
        groups[pid].append({"id": gid, "name": name, "nickname": nick, "single_user_group": single})
    out = Extras(instruments, groups)
    if streams:
        S, PS = models.Stream, photometry_streams
        out.streams = {i: [] for i in ids}
        names = dict(session.execute(sa.select(S.id, S.name)).all())
        for p in points:
            if p.stream_id is not None and p.stream_id in names:
                out.streams[p.id].append({"id": p.stream_id, "name": names[p.stream_id]})
        for pid, sid in session.execute(sa.select(PS.c.photometry_id, PS.c.stream_id)
                                        .where(PS.c.photometry_id.in_(ids)).order_by(PS.c.stream_id)):
            if all(s["id"] != sid for s in out.streams[pid]):
                out.streams[pid].append({"id": sid, "name": names.get(sid)})
    if owner:
        U = models.User
        uids = sorted({p.owner_id for p in points if p.owner_id is not None})
        out.owners = {u.id: {"id": u.id, "username": u.username, "first_name": u.first_name,
                             "last_name": u.last_name}
                      for u in session.execute(sa.select(U).where(U.id.in_(uids)).options(*U.names_only())).scalars()} if uids else {}
    if annotations:
        out.annotations = _annotations(session, principal, ids)
    return out


def _annotations(session: Session, principal: Principal, ids: list[int]) -> dict[int, list[dict]]:
    """The points' annotations the caller can read (as GET /api/photometry/{id}/annotations lists them)."""
    from broker.objects import annotations as asvc

    out: dict[int, list[dict]] = {i: [] for i in ids}
    if not ids:
        return out
    r = asvc.RESOURCES["photometry"]
    A = r.model
    mine = asvc._caller_groups(session, principal)
    for a in session.execute(sa.select(A).where(A.photometry_id.in_(ids), asvc._readable(r, principal))
                             .order_by(A.origin, A.id)).scalars():
        out[a.photometry_id].append(asvc.annotation_to_dict(a, r, mine))
    return out


def _iso(d: datetime) -> str:
    return d.isoformat()


def serialize(p: models.Photometry, fmt: str, outsys: str, ex: Extras) -> dict:
    """SkyPortal's serialize(): mag (default) or flux, in magnitude system ``outsys``."""
    if fmt not in ("mag", "flux", "both"):
        raise ValidationError(f"Invalid format: must be one of ['flux', 'mag', 'both'], got {fmt!r}", field="format")
    corr = -ab_offset(outsys, p.filter)  # the stored AB values in ``outsys``
    flux = p.flux
    out = {
        "obj_id": p.obj_id, "ra": p.ra, "dec": p.dec, "filter": p.filter, "mjd": p.mjd,
        "snr": flux / p.fluxerr if flux is not None and p.fluxerr else None,
        "instrument_id": p.instrument_id, "instrument_name": ex.instruments.get(p.instrument_id, p.instrument_name),
        "ra_unc": p.ra_unc, "dec_unc": p.dec_unc, "origin": p.origin, "id": p.id, "altdata": p.altdata,
        "created_at": _iso(p.created_at), "groups": ex.groups.get(p.id, []),
        # ours: the caller's groups by id, the alert it came from, the upload it belongs to
        "group_ids": [g["id"] for g in ex.groups.get(p.id, [])], "alert_id": p.alert_id, "upload_id": p.upload_id,
    }
    if ex.annotations is not None:
        out["annotations"] = ex.annotations.get(p.id, [])
    if ex.owners is not None:
        out["owner"] = ex.owners.get(p.owner_id)
    if ex.streams is not None:
        out["streams"] = ex.streams.get(p.id, [])
    has_ref = p.ref_flux is not None and p.ref_fluxerr is not None
    mag = PHOT_ZP - 2.5 * math.log10(flux) if flux is not None and flux > 0 else None
    magerr = 2.5 / math.log(10) * p.fluxerr / flux if flux is not None and flux > 0 and p.fluxerr > 0 else None
    if has_ref:
        tot = p.ref_flux + (flux or 0.0)
        tot_err = math.sqrt(p.fluxerr ** 2 + p.ref_fluxerr ** 2)
        magref = PHOT_ZP - 2.5 * math.log10(p.ref_flux) if p.ref_flux > 0 else None
        e_magref = 2.5 / math.log(10) * p.ref_fluxerr / p.ref_flux if p.ref_flux > 0 and p.ref_fluxerr > 0 else None
        out.update(ref_flux=p.ref_flux, ref_fluxerr=p.ref_fluxerr, tot_flux=tot, tot_fluxerr=tot_err, magref=magref,
                   e_magref=e_magref,
                   magtot=PHOT_ZP - 2.5 * math.log10(tot) if tot > 0 else None,
                   e_magtot=2.5 / math.log(10) * tot_err / tot if tot > 0 else None)
    if fmt in ("mag", "both"):
        if p.limiting_mag is not None:
            limiting = p.limiting_mag + corr
        elif p.fluxerr > 0:
            limiting = PHOT_ZP - 2.5 * math.log10(SERIALIZE_NSIGMA * p.fluxerr) + corr
        else:
            limiting = None
        out.update(mag=None if mag is None else mag + corr, magerr=magerr, magsys=outsys, limiting_mag=limiting)
        if has_ref and out.get("magref") is not None:
            out["magref"] += corr
    if fmt in ("flux", "both"):
        out.update(flux=flux, magsys=outsys, zp=PHOT_ZP + corr, fluxerr=p.fluxerr)
    return out


def serialize_all(session: Session, principal: Principal, points, fmt: str, outsys: str, **include) -> list[dict]:
    if outsys not in ALLOWED_MAGSYSTEMS:
        raise ValidationError(f"Invalid magsys: {outsys!r} is not one of {list(ALLOWED_MAGSYSTEMS)}", field="magsys")
    ex = extras(session, principal, points, **include)
    return [serialize(p, fmt, outsys, ex) for p in points]


def obj_photometry(session: Session, principal: Principal, obj_id: str, fmt: str, outsys: str,
                   deduplicate: bool = False, **include) -> list[dict]:
    """An object's photometry the caller can read, by mjd (SkyPortal's ObjPhotometryHandler)."""
    P = models.Photometry
    points = session.execute(sa.select(P).where(P.obj_id == obj_id, visible_clause(principal))
                             .order_by(P.mjd, P.id)).scalars().all()
    if fmt == "plot":  # SkyPortal's slim payload for plotting: no groups, owner, streams or annotations
        data = [{k: d[k] for k in ("id", "obj_id", "filter", "mjd", "origin", "mag", "magerr", "limiting_mag")}
                for d in serialize_all(session, principal, points, "mag", outsys)]
        data.sort(key=lambda d: d["mjd"])
        return data
    data = serialize_all(session, principal, points, fmt, outsys, **include)
    if deduplicate:  # one point per (mjd, filter): the most recent
        keep: dict[tuple, dict] = {}
        for d in sorted(data, key=lambda d: (d["created_at"], d["id"]), reverse=True):
            keep.setdefault((d["mjd"], d["filter"]), d)
        data = list(keep.values())
    data.sort(key=lambda d: d["mjd"])
    return data


def phase_fold(session: Session, principal: Principal, obj_id: str, data: list[dict]) -> None:
    """Each point's phase by the period of the object's most recently modified annotation that has one
    (a data key period, Period or PERIOD), as SkyPortal; no period is a 400."""
    from broker.objects import annotations as asvc

    r = asvc.RESOURCES["sources"]
    A = r.model
    q = sa.select(A).where(A.obj_id == obj_id, asvc._readable(r, principal)).order_by(A.modified.desc())
    period = None
    for a in session.execute(q).scalars():
        if isinstance(a.data, dict):
            period = next((a.data[k] for k in ("period", "Period", "PERIOD") if k in a.data), None)
            if period is not None:
                break
    if not isinstance(period, (int, float)) or isinstance(period, bool) or not period > 0:
        raise ValidationError(f"No period for object {obj_id}", field="phaseFoldData")
    for d in data:
        d["phase"] = (d["mjd"] % period) / period


def photometry_range(session: Session, principal: Principal, instrument_ids, min_date: datetime | None,
                     max_date: datetime | None, fmt: str, outsys: str) -> list[dict]:
    """SkyPortal's /api/photometry/range: points shared with the caller's groups, by instrument and date."""
    P, PG = models.Photometry, models.photometry_groups
    q = sa.select(P).where(P.id.in_(sa.select(PG.c.photometry_id).where(PG.c.group_id.in_(_user_groups(principal)))))
    if instrument_ids is not None:
        q = q.where(P.instrument_id.in_(instrument_ids))
    if min_date is not None:
        q = q.where(P.mjd >= _mjd(min_date))
    if max_date is not None:
        q = q.where(P.mjd <= _mjd(max_date))
    points = session.execute(q.order_by(P.id)).scalars().all()
    return serialize_all(session, principal, points, fmt, outsys)


def _mjd(d: datetime) -> float:
    return (d - datetime(1858, 11, 17)).total_seconds() / 86400.0


# -- editing and deleting ------------------------------------------------------------------------

def _editable(session: Session, principal: Principal, photometry_id: int, verb: str) -> models.Photometry:
    """SkyPortal's update/delete access: admins; holders of 'Manage photometry' for points they can read;
    else the owner. A point the caller can read but not change is a 400 saying so."""
    p = get_point(session, principal, photometry_id)
    if principal.is_admin or principal.has("Manage photometry") or p.owner_id == principal.user_id:
        return p
    raise ValidationError(f"You do not have permission to {verb} photometry point {photometry_id}. You must be its "
                          "owner or have the 'Manage photometry' permission.", field="photometry_id")


def patch_point(session: Session, principal: Principal, photometry_id: int, body: dict, sitewide_group: str) -> None:
    """SkyPortal's PATCH: the point's values (flux or mag form, one point), groups and streams."""
    p = _editable(session, principal, photometry_id, "update")
    body = dict(body)
    group_ids = body.pop("group_ids", None)
    stream_ids = body.pop("stream_ids", None)
    values = {k: v for k, v in body.items() if k in PER_POINT or k in ("altdata", "assignment_id")}
    if any(k in values for k in (*FLUX_ONLY, *MAG_ONLY, "limiting_mag", "mjd", "filter", "magsys", "obj_id",
                                 "instrument_id", "instrument_name")):
        # the point as uploaded, with the changes on top, goes through the upload checks again
        base = {"obj_id": p.obj_id, "instrument_id": p.instrument_id, "mjd": p.mjd, "filter": p.filter,
                "origin": p.origin, "ra": p.ra, "dec": p.dec, "ra_unc": p.ra_unc, "dec_unc": p.dec_unc,
                "altdata": p.altdata}
        if "flux" in values or "fluxerr" in values or not any(k in values for k in MAG_ONLY):
            base.update(flux=p.flux, fluxerr=p.fluxerr, zp=PHOT_ZP, magsys=PHOT_SYS)
        if p.limiting_mag is not None:
            base["limiting_mag"] = p.limiting_mag
        if "instrument_name" in values and "instrument_id" not in values:
            base.pop("instrument_id")
        if any(k in values for k in MAG_ONLY):
            for k in FLUX_ONLY:
                base.pop(k, None)
            base.pop("magsys", None)
        (new,) = standardize(session, principal, {**base, **values})
        for k in ("obj_id", "instrument_id", "mjd", "flux", "fluxerr", "filter", "limiting_mag", "ra", "dec",
                  "ra_unc", "dec_unc", "origin", "ref_flux", "ref_fluxerr", "altdata"):
            setattr(p, k, getattr(new, k))
        p.original_user_data = {**(p.original_user_data or {}), **(new.original_user_data or {}), **values}
        p.instrument_name = session.get(models.Instrument, new.instrument_id).name
        p.zp, p.magsys = PHOT_ZP, PHOT_SYS
    elif "altdata" in values:
        if values["altdata"] is not None and not isinstance(values["altdata"], dict):
            raise ValidationError("Invalid field 'altdata': must be an object", field="altdata")
        p.altdata = values["altdata"] or None
    if values.get("assignment_id") is not None:
        raise ValidationError("Invalid assignment_id: classical assignments are not kept here", field="assignment_id")
    p.modified = models.utcnow()
    if group_ids is not None:  # as SkyPortal: exactly these groups (the owner keeps sight of the point)
        if not group_ids:
            raise ValidationError("Invalid group_ids field. Specify at least one valid group ID.", field="group_ids")
        gids = upload_groups(session, principal, group_ids, sitewide_group, single_user=False)
        session.execute(sa.delete(models.photometry_groups).where(models.photometry_groups.c.photometry_id == p.id))
        session.execute(insert(models.photometry_groups).values([{"photometry_id": p.id, "group_id": g}
                                                                 for g in gids]))
    if stream_ids is not None:
        sids = upload_streams(session, principal, stream_ids)
        if not sids:
            raise ValidationError("Invalid stream_ids field. Specify at least one valid stream ID.",
                                  field="stream_ids")
        session.execute(insert(photometry_streams).values([{"photometry_id": p.id, "stream_id": s} for s in sids])
                        .on_conflict_do_nothing())
    session.flush()


def delete_point(session: Session, principal: Principal, photometry_id: int) -> None:
    session.delete(_editable(session, principal, photometry_id, "delete"))
    session.flush()


def bulk_delete(session: Session, principal: Principal, upload_id: str) -> int:
    """Delete an upload's points the caller may delete (SkyPortal: 'Delete bulk photometry')."""
    P = models.Photometry
    q = sa.delete(P).where(P.upload_id == upload_id, P.dedup_scope != 0)
    if not (principal.is_admin or principal.has("Manage photometry")):
        q = q.where(P.owner_id == principal.user_id)
    else:
        q = q.where(visible_clause(principal))
    n = session.execute(q).rowcount
    if n == 0:
        raise ValidationError("Invalid bulk upload id.", field="upload_id")
    return n


def delete_obj_photometry(session: Session, principal: Principal, obj_id: str) -> int:
    """SkyPortal's DELETE /api/sources/{obj_id}/photometry: every point of the object the caller may delete."""
    P = models.Photometry
    q = sa.delete(P).where(P.obj_id == obj_id)
    if not (principal.is_admin or principal.has("Manage photometry")):
        q = q.where(P.owner_id == principal.user_id)
    else:
        q = q.where(visible_clause(principal))
    n = session.execute(q).rowcount
    if n == 0:
        raise ValidationError("Invalid object id.", field="obj_id")
    return n
