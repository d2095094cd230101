"""Telescopes and instruments, with SkyPortal's fields, queries and rules.

* Any user may create a telescope (SkyPortal's ``create = public``); updating or deleting one takes the
  "Manage telescopes" ACL (checked by the handler) and System admin or "Manage allocations" (else SkyPortal's
  400 "Invalid telescope ID.").
* Creating an instrument takes System admin or "Manage allocations"; updating or deleting one "Manage
  instruments" (handler) and the same (else 400 "Missing instrument with ID ...").
* An instrument's field shape is kept as a DS9 region (``field_region``, or ``field_fov_type`` with
  ``field_fov_attributes``); its tiled fields (``field_data``, ``references``) are not supported: a 400 names
  the field.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from sqlalchemy.orm import Session

import models
from models.enums import ALLOWED_BANDPASSES

from broker.access.auth import MissingACL, Principal
from broker.errors import Conflict, NotFound, ValidationError

TELESCOPE_MANAGERS = "System admin or 'Manage allocations'"


def get(session: Session, model, ident: int, what: str):
    """A telescope or instrument by id; SkyPortal's 400 when there is none."""
    row = session.get(model, ident)
    if row is None:
        if model is models.Telescope:
            raise ValidationError(f"Could not load telescope with ID {ident}")
        raise ValidationError(f"No instrument with ID: {ident}")
    return row


def _may_manage(principal: Principal) -> bool:
    return principal.has("Manage allocations")  # System admins have every ACL


# -- telescopes --------------------------------------------------------------------------------------

def _check_location(body: dict, row: models.Telescope | None = None) -> None:
    """A telescope with a fixed location needs lat, lon and elevation, in range (SkyPortal checks it when
    ``fixed_location`` is sent true)."""
    if not body.get("fixed_location"):
        return
    merged = {k: body.get(k, getattr(row, k, None) if row is not None else None) for k in ("lat", "lon", "elevation")}
    if any(v is None for v in merged.values()):
        missing = [k for k, v in merged.items() if v is None]
        raise ValidationError(f"Missing latitude, longitude, or elevation; required if the telescope is fixed "
                              f"(missing: {', '.join(missing)})", field=missing[0])
    if not (-90 <= merged["lat"] <= 90 and -180 <= merged["lon"] <= 180 and merged["elevation"] >= 0):
        raise ValidationError("Latitude must be between -90 and 90, longitude between -180 and 180, and elevation "
                              "must be positive", field="lat")


def _check_name(session: Session, model, name: str | None, row=None) -> None:
    if name is None:
        return
    if not name.strip():
        raise ValidationError("Invalid field 'name': must not be empty", field="name")
    clash = session.execute(sa.select(model.id).where(model.name == name,
                                                      model.id != (row.id if row is not None else -1))).first()
    if clash:
        raise Conflict(f"A {model.__tablename__[:-1]} named '{name}' already exists", field="name")


def create_telescope(session: Session, principal: Principal, body: dict) -> models.Telescope:
    _check_name(session, models.Telescope, body["name"])
    _check_location(body)
    values = {k: v for k, v in body.items() if not (k == "fixed_location" and v is None)}
    row = models.Telescope(**values)
    session.add(row)
    session.flush()
    return row


def managed_telescope(session: Session, principal: Principal, telescope_id: int) -> models.Telescope:
    row = session.get(models.Telescope, telescope_id)
    if row is None or not _may_manage(principal):
        raise ValidationError(f"Invalid telescope ID. (no telescope {telescope_id}, or changing it needs "
                              f"{TELESCOPE_MANAGERS})")
    return row


def update_telescope(session: Session, principal: Principal, telescope_id: int, body: dict) -> None:
    row = managed_telescope(session, principal, telescope_id)
    _check_name(session, models.Telescope, body.get("name"), row)
    for key in ("name", "nickname", "diameter", "robotic", "fixed_location"):
        if key in body and body[key] is None:
            raise ValidationError(f"Invalid field '{key}': must not be null", field=key)
    _check_location(body, row)
    for key, value in body.items():
        setattr(row, key, value)
    session.flush()


def delete_telescope(session: Session, principal: Principal, telescope_id: int) -> None:
    session.delete(managed_telescope(session, principal, telescope_id))
    session.flush()


def telescope_query(name: str | None = None, lat_min: float | None = None, lat_max: float | None = None,
                    lon_min: float | None = None, lon_max: float | None = None) -> sa.Select:
    stmt = sa.select(models.Telescope).order_by(models.Telescope.id)
    if name is not None:
        stmt = stmt.where(models.Telescope.name == name)
    for col, op, value in ((models.Telescope.lat, "ge", lat_min), (models.Telescope.lat, "le", lat_max),
                           (models.Telescope.lon, "ge", lon_min), (models.Telescope.lon, "le", lon_max)):
        if value is not None:
            stmt = stmt.where(col >= value if op == "ge" else col <= value)
    return stmt


def _allocations_by_instrument(session: Session, principal: Principal, instrument_ids: list[int]) -> dict:
    from broker.followup.requests import allocation_to_dict, readable_allocations

    out: dict[int, list[dict]] = {}
    if not instrument_ids:
        return out
    rows = session.execute(readable_allocations(principal).where(
        models.Allocation.instrument_id.in_(instrument_ids)).order_by(models.Allocation.id)).scalars()
    for a in rows:
        out.setdefault(a.instrument_id, []).append(allocation_to_dict(a))
    return out


def telescope_detail(session: Session, principal: Principal, telescope_id: int) -> dict:
    """One telescope with its instruments and the allocations on them the caller may see."""
    t = get(session, models.Telescope, telescope_id, "telescope")
    instruments = session.execute(sa.select(models.Instrument).where(models.Instrument.telescope_id == t.id)
                                  .order_by(models.Instrument.id)).scalars().all()
    allocs = _allocations_by_instrument(session, principal, [i.id for i in instruments])
    return {**t.to_dict(), "instruments": [instrument_columns(i) for i in instruments],
            "allocations": [a for i in instruments for a in allocs.get(i.id, [])]}


def telescope_list(session: Session, principal: Principal, stmt: sa.Select, now: datetime | None = None) -> list:
    """Telescopes with SkyPortal's night information and the allocations on their instruments the caller may
    see (each with ``allocation_users``: skybroker has no per-allocation users, so it is empty)."""
    telescopes = session.execute(stmt).scalars().all()
    inst_rows = session.execute(sa.select(models.Instrument.id, models.Instrument.telescope_id).where(
        models.Instrument.telescope_id.in_([t.id for t in telescopes]))).all() if telescopes else []
    allocs = _allocations_by_instrument(session, principal, [i for i, _ in inst_rows])
    by_tel: dict[int, list[dict]] = {}
    for iid, tid in sorted(inst_rows):
        by_tel.setdefault(tid, []).extend({**a, "allocation_users": []} for a in allocs.get(iid, []))
    now = now or datetime.now(timezone.utc).replace(tzinfo=None)
    return [{**t.to_dict(), **night_info(t, now), "allocations": by_tel.get(t.id, [])} for t in telescopes]


# -- the Sun, for SkyPortal's is_night_astronomical / morning / evening -------------------------------

def _sun_altitude(when: datetime, lat: float, lon: float) -> float:
    """The Sun's altitude [deg] (low-precision solar coordinates, good to ~0.01 deg: minutes in time)."""
    d = (when - datetime(2000, 1, 1, 12)).total_seconds() / 86400.0
    g = math.radians((357.529 + 0.98560028 * d) % 360)
    q = (280.459 + 0.98564736 * d) % 360
    ecl_lon = math.radians(q + 1.915 * math.sin(g) + 0.020 * math.sin(2 * g))
    eps = math.radians(23.439 - 0.00000036 * d)
    ra = math.atan2(math.cos(eps) * math.sin(ecl_lon), math.cos(ecl_lon))
    dec = math.asin(math.sin(eps) * math.sin(ecl_lon))
    gmst = math.radians((280.46061837 + 360.98564736629 * d) % 360)
    ha = gmst + math.radians(lon) - ra
    phi = math.radians(lat)
    return math.degrees(math.asin(math.sin(phi) * math.sin(dec) + math.cos(phi) * math.cos(dec) * math.cos(ha)))


def _next_crossing(lat: float, lon: float, start: datetime, rising: bool, level: float = -18.0) -> datetime | None:
    """The next time after ``start`` the Sun crosses ``level`` going up (``rising``) or down, within two days."""
    step = timedelta(minutes=10)
    t0, a0 = start, _sun_altitude(start, lat, lon)
    for _ in range(2 * 24 * 6):
        t1 = t0 + step
        a1 = _sun_altitude(t1, lat, lon)
        if (a0 < level <= a1) if rising else (a0 >= level > a1):
            lo, hi = t0, t1
            for _ in range(12):  # 10 min / 2**12: well under a second
                mid = lo + (hi - lo) / 2
                above = _sun_altitude(mid, lat, lon) >= level
                if above == rising:
                    hi = mid
                else:
                    lo = mid
            return hi
        t0, a0 = t1, a1
    return None


def night_info(t: models.Telescope, now: datetime) -> dict:
    """SkyPortal's ``is_night_astronomical``, ``morning`` and ``evening`` (the next astronomical twilights, UTC,
    ``YYYY-MM-DD HH:MM:SS.sss``; false for a telescope without a fixed location or where there is none)."""
    if not t.fixed_location or t.lat is None or t.lon is None or t.elevation is None:
        return {"is_night_astronomical": False, "morning": False, "evening": False}
    morning = _next_crossing(t.lat, t.lon, now, rising=True)
    evening = _next_crossing(t.lat, t.lon, now, rising=False)

    def iso(x: datetime | None):
        return x.strftime("%Y-%m-%d %H:%M:%S.") + f"{x.microsecond // 1000:03d}" if x else False

    night = morning is not None and evening is not None and morning < evening
    return {"is_night_astronomical": night, "morning": iso(morning), "evening": iso(evening)}


# -- instruments -------------------------------------------------------------------------------------

UNSUPPORTED_INSTRUMENT_FIELDS = ("field_data", "references")
FOV_TYPES = ("circle", "rectangle")


def instrument_columns(i: models.Instrument, include_region: bool = True) -> dict:
    out = i.to_dict()
    if not include_region:
        out.pop("region", None)  # SkyPortal defers it: only with includeRegion
    return out


def instrument_to_dict(i: models.Instrument, include_region: bool = True) -> dict:
    return {**instrument_columns(i, include_region), "telescope": i.telescope.to_dict()}


def region_summary(i: models.Instrument) -> str:
    """SkyPortal's one-line description of the field shape."""
    region = i.region or ""
    if not i.has_region or not region:
        return ""
    try:
        if "box" in region:
            parts = region.split("box")[-1].strip().lstrip("(").split(")")[0].split(",")
            return f"Rectangle [width, height]: {float(parts[2]), float(parts[3])}"
        if "circle" in region:
            parts = region.split("circle")[-1].strip().lstrip("(").split(")")[0].split(",")
            return f"Circle [radius]: {float(parts[2])}"
    except (IndexError, ValueError):
        return ""
    if "polygon" in region:
        return f"Polygon [num. fields]: {region.count('polygon')}"
    return ""


def _fov_region(kind: str, attributes) -> str:
    """A DS9 region centred on (0, 0), as SkyPortal builds from ``field_fov_type``."""
    if kind.lower() not in FOV_TYPES:
        raise ValidationError("Invalid field_fov_type: field_fov_type must be circle or rectangle",
                              field="field_fov_type")
    values = attributes if isinstance(attributes, list) else [attributes]
    try:
        values = [float(v) for v in values]
    except (TypeError, ValueError):
        raise ValidationError("Invalid field_fov_attributes: field_fov_attributes must be a list of floats or a "
                              "float", field="field_fov_attributes") from None
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise ValidationError("Invalid field_fov_attributes: sizes must be positive", field="field_fov_attributes")
    head = "# Region file format: DS9 astropy/regions\nicrs\n"
    if kind.lower() == "circle":
        if len(values) != 1:
            raise ValidationError("Invalid field_fov_attributes: If field_fov_type is circle, then should supply "
                                  "only radius for field_fov_attributes", field="field_fov_attributes")
        return head + f"circle(0.0000000,0.0000000,{values[0]:.7f})\n"
    if len(values) != 2:
        raise ValidationError("Invalid field_fov_attributes: If field_fov_type is rectangle, then should supply "
                              "width and height for field_fov_attributes", field="field_fov_attributes")
    return head + f"box(0.0000000,0.0000000,{values[0]:.7f},{values[1]:.7f},0.0000000)\n"


def _instrument_values(session: Session, body: dict, row: models.Instrument | None) -> dict:
    """The columns a POST/PUT body sets, checked: filters, sensitivity data and the field shape."""
    values = dict(body)
    for key in UNSUPPORTED_INSTRUMENT_FIELDS:
        if values.get(key) is not None:
            raise ValidationError(f"Invalid {key}: instrument field tiles are not supported by skybroker (send "
                                  "the field shape with field_region or field_fov_type only)", field=key)
        values.pop(key, None)
    region, kind = values.pop("field_region", None), values.pop("field_fov_type", None)
    attributes = values.pop("field_fov_attributes", None)
    if region is not None and kind is not None:
        raise ValidationError("must supply only one of field_region or field_fov_type", field="field_region")
    if kind is not None:
        if attributes is None:
            raise ValidationError("field_fov_attributes required if field_fov_type supplied",
                                  field="field_fov_attributes")
        region = _fov_region(kind, attributes)
    elif attributes is not None:
        raise ValidationError("Invalid field_fov_attributes: only with field_fov_type", field="field_fov_attributes")
    if region is not None:
        if not any(shape in region for shape in ("circle", "box", "polygon")):
            raise ValidationError("Invalid field_region: a DS9 region with a circle, box or polygon is needed",
                                  field="field_region")
        values["region"], values["has_region"] = region, True
    for key in ("name", "type", "telescope_id"):
        if key in values and values[key] is None:
            raise ValidationError(f"Invalid field '{key}': must not be null", field=key)
    if "filters" in values:
        if values["filters"] is None:
            values["filters"] = []
        unknown = [f for f in values["filters"] if f not in ALLOWED_BANDPASSES]
        if unknown:
            raise ValidationError(f"Invalid filters: {unknown} not among the allowed bandpasses "
                                  f"{list(ALLOWED_BANDPASSES)}", field="filters")
        values["filters"] = list(dict.fromkeys(values["filters"]))
    filters = values.get("filters", row.filters if row is not None else [])
    sens = values.get("sensitivity_data")
    if sens and not set(sens).issubset(filters):
        raise ValidationError("Invalid sensitivity_data: Sensitivity_data filters must be a subset of the instrument "
                              f"filters ({sorted(set(sens) - set(filters))} are not)", field="sensitivity_data")
    if "sensitivity_data" not in values and row is not None and row.sensitivity_data \
            and not set(row.sensitivity_data).issubset(filters):
        raise ValidationError("Invalid filters: Filter names must be present in both sensitivity_data property and "
                              "filters property", field="filters")
    if "telescope_id" in values and session.get(models.Telescope, values["telescope_id"]) is None:
        raise ValidationError(f"Invalid telescope_id: No telescope with id {values['telescope_id']}",
                              field="telescope_id")
    return values


def create_instrument(session: Session, principal: Principal, body: dict) -> models.Instrument:
    if not _may_manage(principal):
        raise MissingACL(f"Insufficient permissions: creating an instrument needs {TELESCOPE_MANAGERS}")
    values = _instrument_values(session, body, None)
    clash = session.execute(sa.select(models.Instrument).where(models.Instrument.name == values["name"])).scalar()
    if clash is not None:
        raise Conflict(f"Instrument with name {clash.name} already exists for telescope {clash.telescope_id}",
                       field="name")
    _check_name(session, models.Instrument, values["name"])
    row = models.Instrument(**values)
    session.add(row)
    session.flush()
    return row


def managed_instrument(session: Session, principal: Principal, instrument_id: int) -> models.Instrument:
    row = session.get(models.Instrument, instrument_id)
    if row is None or not _may_manage(principal):
        raise ValidationError(f"Missing instrument with ID {instrument_id} (or changing it needs "
                              f"{TELESCOPE_MANAGERS})")
    return row


def update_instrument(session: Session, principal: Principal, instrument_id: int, body: dict) -> None:
    row = managed_instrument(session, principal, instrument_id)
    values = _instrument_values(session, body, row)
    _check_name(session, models.Instrument, values.get("name"), row)
    if "filters" in values:
        dropped = set(row.filters) - set(values["filters"])
        for filt in sorted(dropped):
            n = session.execute(sa.select(sa.func.count()).select_from(models.Photometry).where(
                models.Photometry.instrument_id == row.id, models.Photometry.filter == filt)).scalar()
            if n:
                raise ValidationError(f"Cannot remove filter {filt} from instrument {row.name}: {n} photometry "
                                      "points must be first deleted.", field="filters")
    for key, value in values.items():
        setattr(row, key, value)
    session.flush()


def delete_instrument(session: Session, principal: Principal, instrument_id: int, fields_only: bool = False) -> None:
    """Delete an instrument; ``fieldsOnly``: only its fields (skybroker keeps none: nothing to delete)."""
    row = managed_instrument(session, principal, instrument_id)
    if fields_only:
        row.has_fields = False
    else:
        session.delete(row)
    session.flush()


def instrument_list(session: Session, name: str | None = None, include_region: bool = False) -> list[dict]:
    stmt = sa.select(models.Instrument).order_by(models.Instrument.id)
    if name is not None:
        stmt = stmt.where(models.Instrument.name == name)
    return [{**instrument_to_dict(i, include_region), "number_of_fields": 0, "region_summary": region_summary(i),
             "log_exists": False} for i in session.execute(stmt).scalars()]


def parse_when(raw: str | None, field: str) -> datetime | None:
    if raw is None:
        return None
    import arrow

    try:
        return arrow.get(raw).to("utc").naive
    except (arrow.parser.ParserError, ValueError, TypeError):
        raise ValidationError(f"Invalid date format for {field}: '{raw}'. Expected ISO 8601 format "
                              "(YYYY-MM-DDTHH:MM:SS.sss)", field=field) from None


def instrument_detail(session: Session, principal: Principal, instrument_id: int, *, include_region: bool,
                      localization_dateobs: datetime | None, localization_name: str | None) -> dict:
    """One instrument (SkyPortal's single GET). With a localization, its ``fields`` in it: skybroker keeps no
    instrument fields, so the list is empty, once the localization is found (404 otherwise, as SkyPortal)."""
    i = get(session, models.Instrument, instrument_id, "instrument")
    out = {**instrument_to_dict(i, include_region), "status": i.status, "log_exists": False,
           "region_summary": region_summary(i)}
    if localization_dateobs is not None:
        if localization_name is not None:
            stmt = sa.select(models.Localization.id).where(models.Localization.dateobs == localization_dateobs,
                                                          models.Localization.localization_name == localization_name)
            missing = "Localization not found"
        else:
            stmt = sa.select(models.GcnEvent.id).where(models.GcnEvent.dateobs == localization_dateobs)
            missing = "GCN event not found"
        if session.execute(stmt.limit(1)).first() is None:
            raise NotFound(f"{missing} (localizationDateobs {localization_dateobs.isoformat()})")
        out["fields"] = []
    return out
