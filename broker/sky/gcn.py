"""GCN notices → events and localizations; localizations → tiles and object crossmatches.

Notices: LVK ``igwn.gwalert`` JSON (alert types EARLYWARNING/PRELIMINARY/INITIAL/UPDATE/RETRACTION, with a
base64 multi-order FITS sky map), JSON notices with a position and error radius (e.g. Einstein Probe:
``ra``, ``dec``, ``ra_dec_error`` [deg], ``trigger_time``) and VOEvent XML (LVK, GRB). Each creates or
updates a GcnEvent keyed by its time, keeps the raw notice, and adds a Localization when a map or an
error circle is given. A retraction marks the event retracted.
"""

from __future__ import annotations

import base64
import json
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime

import arrow
import healpy as hp
import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

import models

from broker.sky import kernels as K
from broker.errors import NotFound, ValidationError
from broker.sky.mapio import SkyMap, read_fits

RECENT_DAYS = 7.0  # new alerts are crossmatched against localizations of events this recent


@dataclass
class ParsedNotice:
    dateobs: datetime
    notice_type: str
    notice_format: str
    aliases: list[str]
    ivorn: str | None = None
    date: datetime | None = None
    retraction: bool = False
    properties: dict = field(default_factory=dict)
    skymap: SkyMap | None = None
    localization_name: str | None = None


def _utc(value, name: str) -> datetime:
    try:
        return arrow.get(value).to("utc").naive
    except (arrow.parser.ParserError, ValueError, TypeError, OverflowError):  # OverflowError: beyond year 1..9999 in UTC
        raise ValidationError(f"Invalid notice: {name} is not a time: {value!r}", field=name) from None


MIN_ERROR_DEG, MAX_ERROR_DEG = 1e-4, 180.0  # 0.36 arcsec .. the whole sky


def _number(value, name: str) -> float:
    """A finite number from a notice field; ValidationError naming the field otherwise."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValidationError(f"Invalid notice: {name} is not a number: {value!r:.80}", field=name) from None
    if not math.isfinite(out):
        raise ValidationError(f"Invalid notice: {name} must be finite, got {value!r:.80}", field=name)
    return out


def cone_skymap(ra: float, dec: float, error_deg: float, order: int | None = None) -> SkyMap:
    """An error circle as a multi-order map: a 2-D Gaussian of σ = error on a grid fine enough for it,
    out to 5σ (beyond, the density is < 4e-6 of the peak). Only the pixels of that disc are computed."""
    ra, dec, error_deg = _number(ra, "ra"), _number(dec, "dec"), _number(error_deg, "error")
    if not (0 <= ra < 360 and -90 <= dec <= 90 and MIN_ERROR_DEG <= error_deg <= MAX_ERROR_DEG):
        raise ValidationError(f"Invalid localization: need 0 <= ra < 360, -90 <= dec <= 90 and an error of "
                              f"{MIN_ERROR_DEG:g} to {MAX_ERROR_DEG:g} deg", field="error")
    if order is None:  # ~10 pixels across σ, within 5..11
        order = int(min(11, max(5, math.ceil(math.log2(58.6 / error_deg * 10 / 4)))))
    nside = 1 << order
    ipix = np.sort(hp.query_disc(nside, hp.ang2vec(ra, dec, lonlat=True), math.radians(min(5 * error_deg, 180.0)),
                                 inclusive=True, nest=True))
    ra_p, dec_p = hp.pix2ang(nside, ipix, nest=True, lonlat=True)
    d = K.angular_distance(ra_p, dec_p, ra, dec)
    prob = np.exp(-0.5 * (d / error_deg) ** 2)
    prob /= prob.sum()
    return SkyMap(K.order_ipix_to_uniq(order, ipix), prob / K.pixel_area_sr(order),
                  meta={"ra": ra, "dec": dec, "error": error_deg})


def parse_json_notice(notice: dict) -> ParsedNotice:
    if "superevent_id" in notice and "alert_type" in notice:  # LVK igwn.gwalert
        alert_type = str(notice["alert_type"])
        alias = f"LVK#{notice['superevent_id']}"
        event = notice.get("event") or {}
        if alert_type == "RETRACTION":
            return ParsedNotice(dateobs=None, notice_type=alert_type, notice_format="json", aliases=[alias],
                                date=_utc(notice.get("time_created"), "time_created"), retraction=True)
        if not event.get("time"):
            raise ValidationError("Invalid notice: event.time is missing", field="event.time")
        props = {k: event.get(k) for k in ("far", "significant", "instruments", "group", "pipeline", "search",
                                           "properties", "classification") if k in event}
        sm = None
        if event.get("skymap"):
            try:
                sm = read_fits(base64.b64decode(event["skymap"]))
            except (ValueError, TypeError) as exc:
                raise ValidationError(f"Invalid notice: event.skymap is not base64 FITS ({exc})",
                                      field="event.skymap") from None
        return ParsedNotice(dateobs=_utc(event["time"], "event.time"), notice_type=alert_type, notice_format="json",
                            aliases=[alias], date=_utc(notice.get("time_created") or event["time"], "time_created"),
                            properties=props, skymap=sm,
                            localization_name=f"{notice['superevent_id']}-{alert_type.lower()}" if sm else None)
    if {"ra", "dec"} <= set(notice):  # a position with an error circle (Einstein Probe and the like)
        t = notice.get("trigger_time") or notice.get("time") or notice.get("dateobs")
        if t is None:
            raise ValidationError("Invalid notice: trigger_time is missing", field="trigger_time")
        err = notice.get("ra_dec_error", notice.get("error"))
        if err is None:
            raise ValidationError("Invalid notice: ra_dec_error (deg) is missing", field="ra_dec_error")
        instrument = notice.get("instrument") or notice.get("mission") or "GCN"
        ident = notice.get("id") or notice.get("trigger_id") or ""
        ids = ident if isinstance(ident, list) else [ident]
        sm = cone_skymap(_number(notice["ra"], "ra"), _number(notice["dec"], "dec"), _number(err, "ra_dec_error"))
        return ParsedNotice(dateobs=_utc(t, "trigger_time"), notice_type=str(notice.get("alert_type", "position")),
                            notice_format="json", aliases=[f"{instrument}#{i}" for i in ids if i],
                            date=_utc(t, "trigger_time"), skymap=sm, localization_name=f"{instrument}-cone",
                            properties={k: notice[k] for k in ("instrument", "mission", "net_count_rate",
                                                                "image_snr") if k in notice})
    raise ValidationError("Invalid notice: neither an igwn.gwalert notice nor a position notice (ra/dec)",
                          field="json")


def parse_voevent(xml: bytes) -> ParsedNotice:
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise ValidationError(f"Invalid VOEvent: {exc}", field="xml") from None
    params = {p.get("name"): p.get("value") for p in root.iter("Param")}
    iso = next((e.text for e in root.iter("ISOTime")), None)
    if iso is None:
        raise ValidationError("Invalid VOEvent: no WhereWhen ISOTime", field="xml")
    ivorn = root.get("ivorn")
    role = root.get("role")
    alias = []
    if params.get("GraceID"):
        alias.append(f"LVC#{params['GraceID']}")
    elif params.get("TrigID"):
        alias.append(f"{ivorn.split('/')[2].split('#')[0] if ivorn else 'GCN'}#{params['TrigID']}")
    alert = params.get("AlertType") or params.get("Packet_Type") or "unknown"
    sm, name = None, None
    c1 = next((e.text for e in root.iter("C1")), None)
    c2 = next((e.text for e in root.iter("C2")), None)
    err = next((e.text for e in root.iter("Error2Radius")), None)
    if c1 and c2 and err and _number(err, "Error2Radius") > 0:
        sm, name = cone_skymap(_number(c1, "C1") % 360, _number(c2, "C2"), _number(err, "Error2Radius")), "voevent-cone"
    props = {k: params[k] for k in ("FAR", "Group", "Pipeline", "Instruments", "Search") if k in params}
    return ParsedNotice(dateobs=_utc(iso, "ISOTime"), notice_type=str(alert), notice_format="voevent",
                        aliases=alias, ivorn=ivorn, date=_utc(next((e.text for e in root.iter("Date")), iso), "Date"),
                        retraction=alert.lower() == "retraction", properties={**props, "role": role},
                        skymap=sm, localization_name=name)


# -- storing -------------------------------------------------------------------------------------------

def store_notice(session: Session, parsed: ParsedNotice, raw: bytes, recent_days: float = RECENT_DAYS) -> models.GcnEvent:
    """Create or update the event, keep the notice, add its localization (tiles, crossmatch)."""
    E = models.GcnEvent
    if parsed.retraction and parsed.dateobs is None:
        event = session.execute(sa.select(E).where(E.aliases.contains(parsed.aliases))).scalar()
        if event is None:
            raise NotFound(f"No event with alias {parsed.aliases[0]} to retract")
    else:
        event = session.execute(sa.select(E).where(E.dateobs == parsed.dateobs)).scalar()
        if event is None:
            event = E(dateobs=parsed.dateobs, aliases=[], properties={})
            session.add(event)
            session.flush()
    event.aliases = sorted(set(event.aliases) | set(parsed.aliases))
    event.properties = {**event.properties, **parsed.properties}
    if parsed.retraction:
        event.retracted = True
    notice = models.GcnNotice(dateobs=event.dateobs, ivorn=parsed.ivorn, notice_type=parsed.notice_type,
                              notice_format=parsed.notice_format, date=parsed.date, content=raw)
    session.add(notice)
    session.flush()
    if parsed.skymap is not None:
        add_localization(session, event, parsed.localization_name, parsed.skymap, notice.id, recent_days)
    return event


def add_localization(session: Session, event: models.GcnEvent, name: str, sm: SkyMap, notice_id: int | None = None,
                     recent_days: float = RECENT_DAYS) -> models.Localization:
    L = models.Localization
    if session.execute(sa.select(L.id).where(L.dateobs == event.dateobs, L.localization_name == name)).first():
        raise ValidationError(f"Event {event.dateobs.isoformat()} already has a localization named '{name}'",
                              field="localization_name")
    sm.validate()
    a50, a90 = K.credible_region_area(sm.uniq, sm.probdensity, [0.5, 0.9])
    def raw(a, dt):
        return None if a is None else np.ascontiguousarray(a, dtype=dt).tobytes()

    loc = L(dateobs=event.dateobs, localization_name=name, uniq=raw(sm.uniq, "<i8"),
            probdensity=raw(sm.probdensity, "<f8"), distmu=raw(sm.distmu, "<f8"),
            distsigma=raw(sm.distsigma, "<f8"), distnorm=raw(sm.distnorm, "<f8"),
            area_50=float(a50), area_90=float(a90), notice_id=notice_id)
    session.add(loc)
    session.flush()
    _write_tiles(session, loc.id, sm)
    crossmatch_objects(session, loc, sm, since=event.dateobs)
    return loc


def _write_tiles(session: Session, localization_id: int, sm: SkyMap) -> None:
    import csv
    import io

    order, ipix = K.uniq_to_order_ipix(sm.uniq)
    shift = 2 * (29 - order)
    lo, hi = ipix << shift, (ipix + 1) << shift
    prob = sm.probdensity * K.pixel_area_sr(order)
    buf = io.StringIO()
    w = csv.writer(buf)
    for row in zip(lo.tolist(), hi.tolist(), sm.probdensity.tolist(), prob.tolist(), sm.uniq.tolist()):
        w.writerow((localization_id, f"[{row[0]},{row[1]})", repr(row[2]), repr(row[3]), row[4]))
    buf.seek(0)
    with session.connection().connection.dbapi_connection.cursor() as cur:
        cur.copy_expert("COPY localizationtiles (localization_id, healpix, probdensity, prob, uniq) "
                        "FROM STDIN WITH (FORMAT csv)", buf)


def crossmatch_objects(session: Session, loc: models.Localization, sm: SkyMap, *, since: datetime | None = None,
                       obj_ids: list[str] | None = None) -> int:
    """Store credible level and density for objects inside the map (candidates since ``since``, or ``obj_ids``)."""
    O = models.Obj
    stmt = sa.select(O.id, O.ra, O.dec)
    if obj_ids is not None:
        stmt = stmt.where(O.id.in_(obj_ids))
    elif since is not None:
        stmt = stmt.where(O.id.in_(sa.select(models.Candidate.obj_id).where(models.Candidate.passed_at >= since)))
    rows = session.execute(stmt).all()
    if not rows:
        return 0
    ids = [r[0] for r in rows]
    res = K.crossmatch(sm.uniq, sm.probdensity, np.array([r[1] for r in rows]), np.array([r[2] for r in rows]))
    keep = np.isfinite(res["credible_level"]) & (res["credible_level"] <= 1.0)
    values = [{"obj_id": ids[i], "localization_id": loc.id, "credible_level": float(res["credible_level"][i]),
               "probdensity": float(res["probdensity"][i])} for i in np.flatnonzero(keep)]
    if values:
        stmt = insert(models.ObjLocalization).values(values)
        session.execute(stmt.on_conflict_do_update(
            index_elements=["obj_id", "localization_id"],
            set_={"credible_level": stmt.excluded.credible_level, "probdensity": stmt.excluded.probdensity}))
    return len(values)


def region_obj_ids(localization_id: int, cumprob: float) -> sa.Select:
    """Objects inside the ``cumprob`` credible region, by a window sum over the tiles in SQL.

    The tiles are ranked as the kernel ranks pixels (density, then UNIQ, descending) and their
    probabilities summed in that order, so the region is the kernel's, object for object.
    """
    T = models.LocalizationTile
    ranked = (sa.select(T.healpix, sa.func.sum(T.prob).over(
        order_by=(T.probdensity.desc(), T.uniq.desc()), rows=(None, 0)).label("cum"))
        .where(T.localization_id == localization_id).subquery())
    region = sa.select(ranked.c.healpix).where(ranked.c.cum <= cumprob).subquery()
    # bounds rather than range containment, so each tile is one B-tree range scan of objs.healpix
    return (sa.select(models.Obj.id)
            .join(region, sa.and_(models.Obj.healpix >= sa.func.lower(region.c.healpix),
                                  models.Obj.healpix < sa.func.upper(region.c.healpix))))


def stored_skymap(loc: models.Localization) -> SkyMap:
    """A stored localization's map (its arrays are kept as little-endian bytes)."""
    def arr(b, dt):
        return None if b is None else np.frombuffer(b, dtype=dt)

    return SkyMap(arr(loc.uniq, "<i8"), arr(loc.probdensity, "<f8"), arr(loc.distmu, "<f8"),
                  arr(loc.distsigma, "<f8"), arr(loc.distnorm, "<f8"))


def contours(sm: SkyMap, levels=(0.5, 0.9)) -> dict[str, list[int]]:
    """The credible regions of ``levels`` as MOCs: {"50%": sorted UNIQ pixels, ...}."""
    credible = K.moc_credible_levels(sm.uniq, sm.probdensity)
    return {f"{int(x * 100)}%": np.sort(sm.uniq[credible <= x]).tolist() for x in levels}


def find_localization(session: Session, dateobs: str, name: str | None) -> models.Localization:
    L = models.Localization
    when = _utc(dateobs, "localizationDateobs")
    stmt = sa.select(L).where(L.dateobs == when)
    if name:
        stmt = stmt.where(L.localization_name == name)
    loc = session.execute(stmt.order_by(L.created_at.desc())).scalars().first()
    if loc is None:
        raise NotFound(f"No localization for {dateobs}" + (f" named '{name}'" if name else ""))
    return loc


def event_to_dict(event: models.GcnEvent) -> dict:
    out = event.to_dict()
    out["notices"] = [n.to_dict() for n in event.notices]
    out["localizations"] = [l.to_dict() for l in event.localizations]
    return out


def skymap_from_body(b: dict) -> SkyMap:
    if "fits" in b:
        try:
            return read_fits(base64.b64decode(b["fits"], validate=True))
        except ValueError as exc:
            raise ValidationError(f"Invalid field 'fits': not base64 ({exc})", field="fits") from None
    if "uniq" in b:
        if len(b.get("probdensity") or []) != len(b["uniq"]):
            raise ValidationError("Invalid field 'probdensity': needs one value per uniq", field="probdensity")
        try:
            layers = {k: (None if b.get(k) is None else np.asarray(b[k], float))
                      for k in ("distmu", "distsigma", "distnorm")}
            uniq = np.asarray(b["uniq"], dtype=np.int64)
            dens = np.asarray(b["probdensity"], float)
        except (TypeError, ValueError, OverflowError) as exc:
            raise ValidationError(f"Invalid sky map: uniq must be integers and the layers numbers ({exc})",
                                  field="uniq") from None
        return SkyMap(uniq, dens, **layers).validate()
    if {"ra", "dec", "error"} <= set(b):
        return cone_skymap(b["ra"], b["dec"], b["error"])
    raise ValidationError("Missing sky map: give uniq + probdensity, ra + dec + error, or fits", field="uniq")


def parse_notice_body(body: dict) -> tuple[ParsedNotice, bytes]:
    """An API body: ``{"json": notice}``, ``{"xml": voevent}`` or ``{"dateobs", "skymap"?, "aliases"?}``."""
    if "json" in body:
        notice = body["json"]
        if isinstance(notice, str):
            try:
                notice = json.loads(notice)
            except json.JSONDecodeError as exc:
                raise ValidationError(f"Invalid field 'json': {exc}", field="json") from None
        raw = json.dumps(notice).encode()
        return parse_json_notice(notice), raw
    if "xml" in body:
        raw = body["xml"].encode()
        return parse_voevent(raw), raw
    parsed = ParsedNotice(dateobs=_utc(body["dateobs"], "dateobs"), notice_type="skymap", notice_format="json",
                          aliases=body.get("aliases", []))
    if "skymap" in body:
        parsed.skymap = skymap_from_body(body["skymap"])
        parsed.localization_name = body["skymap"]["localization_name"]
    return parsed, json.dumps(body).encode()
