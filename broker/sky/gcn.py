"""GCN notices → events and localizations, as SkyPortal reads them; localizations → tiles and crossmatches.

Notices (SkyPortal's forms):
- VOEvent XML: event time from WhereWhen (rounded to the whole second, as SkyPortal), trigger_id from
  ``TrigID``/``Burst_Id`` (later notices of one trigger join its event), SkyPortal's notice type
  (``Packet_Type`` → e.g. ``SWIFT_XRT_POSITION``), tags, properties, aliases (``LVC#``, ``FERMI#``,
  ``SVOM#``) and an error circle (C1, C2, Error2Radius) as a cone map named ``ra_dec_error``. A sky-map
  URL in a notice is recorded (``has_localization``) but not fetched.
- JSON: LVK ``igwn.gwalert`` (normalised as SkyPortal's ``from_igwn_gwalert``: ``LVC_*`` notice types,
  ``LVC#`` alias, tags, FAR/classification properties, the embedded multi-order map named
  ``<superevent>-<ALERT>.multiorder.fits``) and position notices (``trigger_time``, ``ra``, ``dec``,
  ``ra_dec_error``, e.g. Einstein Probe WXT).
- The dictionary form ``{dateobs, trigger_id?, aliases?, tags?, properties?, group_ids?, skymap?}`` with the
  sky map as multi-order arrays, a cone ``{ra, dec, error}``, an ellipse, a polygon, base64 FITS or a URL.

A notice is stored once (its ivorn is unique). Each localization gets its tiles, SkyPortal's properties
(``area_90``, ``probability_500``, distance) and tags, a GeoJSON contour, and is crossmatched with objects.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import unquote, urlparse

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
from broker.runtime.db import register_staging

RECENT_DAYS = 7.0  # new alerts are crossmatched against localizations of events this recent


@dataclass
class ParsedNotice:
    dateobs: datetime | None
    notice_type: str
    notice_format: str
    aliases: list[str]
    ivorn: str | None = None
    date: datetime | None = None
    retraction: bool = False
    properties: dict = field(default_factory=dict)
    skymap: SkyMap | None = None
    localization_name: str | None = None
    tags: list[str] = field(default_factory=list)
    trigger_id: str | None = None
    stream: str | None = None
    ref_id: str | None = None  # an alias naming the event a notice updates (LVK superevent)
    skymap_url: str | None = None  # a map the notice points to (not fetched)
    localization_properties: dict = field(default_factory=dict)
    localization_tags: list[str] = field(default_factory=list)
    group_ids: list[int] = field(default_factory=list)


def _utc(value, name: str) -> datetime:
    try:
        return arrow.get(value).to("utc").naive
    except (arrow.parser.ParserError, ValueError, TypeError, OverflowError):  # OverflowError: beyond year 1..9999 in UTC
        raise ValidationError(f"Invalid {name}: not a time: {value!r:.80}", field=name) from None


def whole_second(t: datetime) -> datetime:
    """``t`` rounded to the nearest second, as SkyPortal stores a notice's event time."""
    try:
        return (t + timedelta(microseconds=500_000)).replace(microsecond=0)
    except OverflowError:
        return t.replace(microsecond=0)


def _notice_time(value, name: str) -> datetime:
    return whole_second(_utc(value, name))


MIN_ERROR_DEG, MAX_ERROR_DEG = 1e-9, 180.0  # 3.6 µarcsec (1% of an order-29 pixel) .. the whole sky


def _number(value, name: str) -> float:
    """A finite number from a notice field; ValidationError naming the field otherwise."""
    if isinstance(value, bool):
        raise ValidationError(f"Invalid {name}: not a number: {value!r}", field=name)
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValidationError(f"Invalid {name}: not a number: {value!r:.80}", field=name) from None
    if not math.isfinite(out):
        raise ValidationError(f"Invalid {name}: must be finite, got {value!r:.80}", field=name)
    return out


def _check_position(ra: float, dec: float, prefix: str = "") -> None:
    if not 0 <= ra < 360:
        raise ValidationError(f"Invalid {prefix}ra: must be in [0, 360), got {ra:g}", field=f"{prefix}ra")
    if not -90 <= dec <= 90:
        raise ValidationError(f"Invalid {prefix}dec: must be in [-90, 90], got {dec:g}", field=f"{prefix}dec")


def cone_name(ra: float, dec: float, error: float) -> str:
    """SkyPortal's name of a cone localization."""
    return f"{ra:.5f}_{dec:.5f}_{error:.5f}"


def _order_for(size_deg: float, lo: int = 0, hi: int = SkyMap.MAX_ORDER) -> int:
    """The lowest HEALPix order whose pixels are at most ``size_deg`` across (within lo..hi)."""
    # pixel size ~ sqrt(4π / (12 · 4**order)) rad = 58.63° / 2**order
    return int(min(hi, max(lo, math.ceil(math.log2(58.6323 / size_deg)))))


def cone_skymap(ra, dec, error_deg, prefix: str = "") -> SkyMap:
    """An error circle as SkyPortal's ``from_cone`` makes it: a 2-D Gaussian of σ = error, on the HEALPix
    order that puts at least 16 pixels across σ (up to order 29, so arcsecond circles work), over the
    pixels whose centres lie within 4σ."""
    ra, dec = _number(ra, f"{prefix}ra"), _number(dec, f"{prefix}dec")
    error_deg = _number(error_deg, f"{prefix}error")
    _check_position(ra, dec, prefix)
    if not MIN_ERROR_DEG <= error_deg <= MAX_ERROR_DEG:
        raise ValidationError(f"Invalid {prefix}error: must be {MIN_ERROR_DEG:g} to {MAX_ERROR_DEG:g} deg, "
                              f"got {error_deg:g}", field=f"{prefix}error")
    order = _order_for(error_deg / 16)
    nside = 1 << order
    vec = hp.ang2vec(ra, dec, lonlat=True)
    radius = math.radians(min(4 * error_deg, 180.0))
    ipix = np.sort(hp.query_disc(nside, vec, radius, inclusive=False, nest=True))
    ra_p, dec_p = hp.pix2ang(nside, ipix, nest=True, lonlat=True)
    d = K.angular_distance(ra_p, dec_p, ra, dec)
    dens = np.exp(-0.5 * (d / error_deg) ** 2)
    if not dens.sum() > 0:  # a circle far below the finest pixel (order 29): the pixel that holds it
        ipix = np.array([hp.vec2pix(nside, *vec, nest=True)], dtype=np.int64)
        dens = np.ones(1)
    dens /= dens.sum() * K.pixel_area_sr(order)
    return SkyMap(K.order_ipix_to_uniq(order, ipix.astype(np.int64)), dens,
                  meta={"ra": ra, "dec": dec, "error": error_deg})


def _uniform(order: int, ipix) -> SkyMap:
    ipix = np.sort(np.asarray(ipix, dtype=np.int64))
    dens = np.full(ipix.size, 1.0 / (ipix.size * float(K.pixel_area_sr(order))))
    return SkyMap(K.order_ipix_to_uniq(order, ipix), dens)


MAX_REGION_PIXELS = 4_000_000


def ellipse_skymap(ra, dec, amaj, amin, phi, prefix: str = "skymap.") -> SkyMap:
    """A uniform map over an ellipse (semi-axes ``amaj``, ``amin`` [deg], position angle ``phi`` [deg] east
    of north), as SkyPortal's ``from_ellipse`` (at HEALPix order 10, finer for small ellipses)."""
    ra, dec = _number(ra, f"{prefix}ra"), _number(dec, f"{prefix}dec")
    amaj, amin, phi = (_number(v, f"{prefix}{n}") for v, n in ((amaj, "amaj"), (amin, "amin"), (phi, "phi")))
    _check_position(ra, dec, prefix)
    for v, n in ((amaj, "amaj"), (amin, "amin")):
        if not 0 < v <= 90:
            raise ValidationError(f"Invalid {prefix}{n}: must be in (0, 90] deg, got {v:g}", field=f"{prefix}{n}")
    if amin > amaj:
        amaj, amin = amin, amaj
    # no finer than keeps the disc around the ellipse within MAX_REGION_PIXELS
    disc_sr = 2 * math.pi * (1 - math.cos(math.radians(amaj)))
    max_order = SkyMap.MAX_ORDER
    while max_order > 0 and disc_sr / float(K.pixel_area_sr(max_order)) > MAX_REGION_PIXELS:
        max_order -= 1
    order = min(max(10, _order_for(amin / 4)), max_order)
    while True:
        nside = 1 << order
        # pixel centres only (healpy's inclusive mode aborts the process above order 27)
        ipix = hp.query_disc(nside, hp.ang2vec(ra, dec, lonlat=True), math.radians(amaj), inclusive=False, nest=True)
        pra, pdec = hp.pix2ang(nside, ipix, nest=True, lonlat=True)
        x, y = _tangent_offsets(pra, pdec, ra, dec)  # deg: x to the east, y to the north
        pa = math.radians(phi % 180.0)
        u = x * math.sin(pa) + y * math.cos(pa)  # along the major axis
        v = x * math.cos(pa) - y * math.sin(pa)
        inside = (u / amaj) ** 2 + (v / amin) ** 2 <= 1.0
        if inside.any() or order >= max_order:
            break
        order += 1
    if not inside.any():
        raise ValidationError(f"Invalid {prefix}amin: the ellipse holds no HEALPix pixel", field=f"{prefix}amin")
    return _uniform(order, ipix[inside])


def _tangent_offsets(ra, dec, ra0, dec0):
    """Gnomonic offsets [deg] of (ra, dec) from (ra0, dec0): x east, y north."""
    ra, dec = np.radians(ra), np.radians(dec)
    ra0, dec0 = math.radians(ra0), math.radians(dec0)
    cosc = np.sin(dec0) * np.sin(dec) + np.cos(dec0) * np.cos(dec) * np.cos(ra - ra0)
    cosc = np.where(cosc <= 1e-12, 1e-12, cosc)
    x = np.cos(dec) * np.sin(ra - ra0) / cosc
    y = (np.cos(dec0) * np.sin(dec) - np.sin(dec0) * np.cos(dec) * np.cos(ra - ra0)) / cosc
    return np.degrees(np.arctan(x)), np.degrees(np.arctan(y))


def polygon_skymap(polygon, prefix: str = "skymap.") -> SkyMap:
    """A uniform map over a convex polygon of (ra, dec) vertices [deg], as SkyPortal's ``from_polygon``
    (order 10, finer until the polygon holds a pixel)."""
    name = f"{prefix}polygon"
    if isinstance(polygon, str):
        try:
            polygon = json.loads(polygon.replace("(", "[").replace(")", "]"))
        except json.JSONDecodeError:
            raise ValidationError(f"Invalid {name}: not a list of (ra, dec) pairs", field=name) from None
    if not isinstance(polygon, list) or len(polygon) < 3 or not all(
            isinstance(p, (list, tuple)) and len(p) == 2 for p in polygon):
        raise ValidationError(f"Invalid {name}: needs at least 3 (ra, dec) vertices", field=name)
    pts = []
    for i, (r, d) in enumerate(polygon):
        r, d = _number(r, f"{name}[{i}][0]"), _number(d, f"{name}[{i}][1]")
        if not (-360 <= r <= 360 and -90 <= d <= 90):
            raise ValidationError(f"Invalid {name}[{i}]: ra must be in [-360, 360] and dec in [-90, 90]", field=name)
        pts.append(hp.ang2vec(r % 360, d, lonlat=True))
    order, finer = 10, False
    while True:
        try:
            ipix = hp.query_polygon(1 << order, np.array(pts), nest=True)
        except (ValueError, RuntimeError) as exc:  # healpy: not convex, degenerate
            raise ValidationError(f"Invalid {name}: {exc}", field=name) from None
        if ipix.size > MAX_REGION_PIXELS and order > 0 and not finer:
            order -= 1  # a large polygon: coarser
            continue
        if ipix.size or order >= SkyMap.MAX_ORDER:
            break
        order, finer = order + 1, True  # a small polygon: finer until it holds a pixel
    if ipix.size == 0:
        raise ValidationError(f"Invalid {name}: no pixels found in polygon", field=name)
    return _uniform(order, ipix)


# -- notices -------------------------------------------------------------------------------------------

IGWN_NOTICE_TYPES = {"EARLYWARNING": "LVC_EARLY_WARNING", "PRELIMINARY": "LVC_PRELIMINARY",
                     "INITIAL": "LVC_INITIAL", "UPDATE": "LVC_UPDATE", "RETRACTION": "LVC_RETRACTION"}

# GCN Classic packet types (pygcn's NoticeType names) of the notices SkyPortal users receive
PACKET_TYPES = {
    53: "INTEGRAL_WAKEUP", 54: "INTEGRAL_REFINED", 55: "INTEGRAL_OFFLINE", 58: "SNEWS",
    60: "SWIFT_BAT_GRB_ALERT", 61: "SWIFT_BAT_GRB_POS_ACK", 62: "SWIFT_BAT_GRB_POS_NACK", 63: "SWIFT_BAT_GRB_LC",
    64: "SWIFT_BAT_SCALEDMAP", 65: "SWIFT_FOM_OBS", 66: "SWIFT_SC_SLEW", 67: "SWIFT_XRT_POSITION",
    68: "SWIFT_XRT_SPECTRUM", 69: "SWIFT_XRT_IMAGE", 70: "SWIFT_XRT_LC", 71: "SWIFT_XRT_CENTROID",
    72: "SWIFT_UVOT_DBURST", 73: "SWIFT_UVOT_FCHART", 76: "SWIFT_BAT_GRB_LC_PROC", 77: "SWIFT_XRT_SPECTRUM_PROC",
    78: "SWIFT_XRT_IMAGE_PROC", 79: "SWIFT_UVOT_DBURST_PROC", 80: "SWIFT_UVOT_FCHART_PROC", 81: "SWIFT_UVOT_POS",
    82: "SWIFT_BAT_GRB_POS_TEST", 83: "SWIFT_POINTDIR", 84: "SWIFT_BAT_TRANS", 85: "SWIFT_XRT_THRESHPIX",
    86: "SWIFT_XRT_THRESHPIX_PROC", 87: "SWIFT_XRT_SPER", 88: "SWIFT_XRT_SPER_PROC", 89: "SWIFT_UVOT_POS_NACK",
    97: "SWIFT_BAT_QL_POS", 98: "SWIFT_BAT_SUB_THRESHOLD", 99: "SWIFT_BAT_SLEW_POS",
    110: "FERMI_GBM_ALERT", 111: "FERMI_GBM_FLT_POS", 112: "FERMI_GBM_GND_POS", 115: "FERMI_GBM_FIN_POS",
    119: "FERMI_GBM_POS_TEST", 120: "FERMI_LAT_POS_INI", 121: "FERMI_LAT_POS_UPD", 122: "FERMI_LAT_POS_DIAG",
    123: "FERMI_LAT_TRANS", 124: "FERMI_LAT_POS_TEST", 125: "FERMI_LAT_MONITOR", 126: "FERMI_SC_SLEW",
    127: "FERMI_LAT_GND", 128: "FERMI_LAT_OFFLINE", 129: "FERMI_POINTDIR", 131: "FERMI_GBM_SUBTHRESH",
    134: "SWIFT_BAT_MONITOR", 140: "MAXI_UNKNOWN", 141: "MAXI_KNOWN", 142: "MAXI_TEST",
    145: "FERMI_GBM_TRANS", 146: "FERMI_GBM_SUBTHRESH_GND",
    150: "LVC_PRELIMINARY", 151: "LVC_INITIAL", 152: "LVC_UPDATE", 153: "LVC_TEST", 154: "LVC_COUNTERPART",
    157: "AMON_ICECUBE_COINC", 158: "AMON_ICECUBE_HESE", 159: "CALET_GBM_FLT_LC", 160: "CALET_GBM_GND_LC",
    161: "CALET_GBM_FLT_POS", 162: "CALET_GBM_GND_POS", 163: "LVC_EARLY_WARNING", 164: "LVC_RETRACTION",
    169: "AMON_ICECUBE_EHE", 171: "HAWC_BURST_MONITOR", 173: "ICECUBE_ASTROTRACK_GOLD",
    174: "ICECUBE_ASTROTRACK_BRONZE", 176: "ICECUBE_CASCADE",
}

_VOEVENT_PROPERTIES = (
    "HasNS", "HasRemnant", "HasMassGap", "FAR", "BNS", "NSBH", "BBH", "MassGap", "Terrestrial",
    "Burst_Signif", "Data_Signif", "Det_Signif", "Image_Signif", "Rate_Signif", "Trig_Signif", "Burst_Inten",
    "Burst_Peak", "Data_Timescale", "Data_Integ", "Integ_Time", "Trig_Timescale", "Trig_Dur", "Hardness_Ratio",
    "signalness", "energy", "SNR", "Timescale", "Mean_Flux", "Flux_Error", "Lower_Energy_Bound",
    "Upper_Energy_Bound", "Trigger_Type",
)


def _param(root, name: str, path: str = ".//") -> str | None:
    elem = root.find(f"{path}Param[@name='{name}']")
    return None if elem is None else elem.get("value")


def _mission(ivorn: str) -> str:
    mission = urlparse(ivorn).path.lstrip("/")
    return "SVOM" if mission.lower().strip() == "fsc" else mission


def _voevent_tags(root, notice_type: str | None) -> list[str]:
    """SkyPortal's ``get_tags``: stream, GRB/GW/neutrino kind, class, search, instruments, pipeline, ..."""
    ivorn = root.get("ivorn", "")
    tags = [_mission(ivorn)]
    concept = root.find("./Why/Inference/Concept")
    if concept is not None and concept.text:
        if concept.text == "process.variation.burst;em.gamma":
            ident = _param(root, "GRB_Identified")
            tags.append("Not GRB" if ident == "false" else "GRB")
        elif concept.text == "process.variation.trans;em.gamma":
            tags.append("transient")
    if notice_type in {"LVC_PRELIMINARY", "LVC_INITIAL", "LVC_UPDATE", "LVC_RETRACTION"}:
        tags.append("GW")
    elif notice_type in {"ICECUBE_ASTROTRACK_GOLD", "ICECUBE_ASTROTRACK_BRONZE"}:
        tags += ["Neutrino", "IceCube"]
    if notice_type == "ICECUBE_ASTROTRACK_GOLD":
        tags.append("Gold")
    elif notice_type == "ICECUBE_ASTROTRACK_BRONZE":
        tags.append("Bronze")
    if notice_type == "LVC_RETRACTION":
        tags.append("retracted")
    for name in ("Long_short", "Duration_class"):
        value = _param(root, name)
        if value is not None and value.lower() != "unknown":
            tags.append(value.lower())
    classes = []
    for elem in root.iterfind("./What/Group[@type='Classification']/Param"):
        try:
            classes.append((float(elem.get("value")), elem.get("name")))
        except (TypeError, ValueError):
            continue
    if classes:
        tags.append(max(classes)[1])
    search = _param(root, "Search", "./What/")
    if search is not None:
        tags.append(search)
    instruments = _param(root, "Instruments")
    if instruments is not None:
        parts = instruments.split(",")
        tags += parts
        if len(parts) > 1:
            tags.append("MultiInstrument")
    for name in ("Instrument", "Pipeline"):
        value = _param(root, name)
        if value is not None:
            tags.append(value)
    significant = _param(root, "Significant")
    if significant is not None:
        try:
            tags.append("Significant" if int(significant) == 1 else "Subthreshold")
        except ValueError:
            pass
    if _param(root, "StarTrack_Lost_Lock", "./What/Group[@name='Solution_Status']/") == "true":
        tags.append("StarTrack_Lost_Lock")
    if ivorn.startswith("ivo://org.svom/fsc"):
        for part, tag in (("_eclairs-catalog", "ECLAIRs-Catalog"), ("_slewing", "ECLAIRs-Slewing"),
                          ("_not-slewing", "ECLAIRs-Not-Slewing")):
            if part in ivorn:
                tags.append(tag)
    return [t for t in tags if t]


def _voevent_properties(root) -> tuple[dict, list[str]]:
    """SkyPortal's ``get_properties``: numeric notice parameters, and FAR tags."""
    props = {}
    for name in _VOEVENT_PROPERTIES:
        value = _param(root, name)
        if value is None:
            continue
        if name == "Trigger_Type":
            props[name] = str(value)
            continue
        try:
            number = float(value.strip(">="))
        except ValueError:
            continue
        if math.isfinite(number):
            props[name] = number
    tags = []
    if "FAR" in props:
        per_year = props["FAR"] * 365 * 86400
        if per_year <= 1:
            tags.append("< 1 per year")
        if per_year <= 100:
            tags.append("< 1 per 100 years")
    instruments = _param(root, "Instruments")
    if instruments is not None:
        props["num_instruments"] = len(instruments.split(","))
    return props, tags


def _voevent_aliases(root, notice_type: str | None) -> list[str]:
    aliases = []
    if notice_type in ("FERMI_GBM_FLT_POS", "FERMI_GBM_GND_POS", "FERMI_GBM_FIN_POS"):
        url = _param(root, "LightCurve_URL", "./What/") or ""
        m = re.search(r"/triggers/[^/]+/([^/]+)/", url)
        if m:
            aliases.append(f"FERMI#{m.group(1)}")
    graceid = _param(root, "GraceID", "./What/")
    if graceid:
        aliases.append(f"LVC#{graceid}")
    burst = _param(root, "Burst_Id", "./What/Group[@name='Svom_Identifiers']/")
    if burst:
        aliases.append(f"SVOM#{burst}")
    return aliases


def _voevent_skymap_url(root, notice_type: str | None) -> str | None:
    if notice_type == "FERMI_GBM_FIN_POS":
        url = _param(root, "LocationMap_URL", "./What/")
        if url:
            return url.replace("http://", "https://").replace("_locplot_", "_healpix_").replace(".png", ".fit")
    if notice_type == "FERMI_GBM_SUBTHRESH":
        url = _param(root, "HealPix_URL", "./What/")
        if url:
            return url
    group = root.find("./What/Group[@type='GW_SKYMAP']")
    if group is not None:
        for child in group:
            if child.get("name") == "skymap_fits":
                return child.get("value")
    return None


AMON_90_TO_SIGMA = math.sqrt(-2 * math.log(0.05))  # SkyPortal: chi(df=2).ppf(0.95)


def parse_voevent(xml: bytes) -> ParsedNotice:
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise ValidationError(f"Invalid VOEvent: {exc}", field="xml") from None
    if not root.tag.endswith("VOEvent"):
        raise ValidationError(f"Invalid VOEvent: the root element is <{root.tag}>, not <VOEvent>", field="xml")
    ivorn = root.get("ivorn")
    if not ivorn:
        raise ValidationError("Invalid VOEvent: no ivorn", field="xml")
    t0 = None
    for system in ("UTC-FK5-GEO", "UTC-ICRS-GEO"):
        t0 = root.find(f"./WhereWhen/{{*}}ObsDataLocation/{{*}}ObservationLocation/{{*}}AstroCoords"
                       f"[@coord_system_id='{system}']/Time/TimeInstant/ISOTime")
        if t0 is not None:
            break
    if t0 is None:
        t0 = next(root.iter("ISOTime"), None)
    if t0 is None or not (t0.text or "").strip():
        raise ValidationError("Invalid VOEvent: no WhereWhen ISOTime", field="xml")
    dateobs = _notice_time(t0.text.strip(), "ISOTime")
    packet = _param(root, "Packet_Type")
    try:
        notice_type = PACKET_TYPES.get(int(packet), str(int(packet))) if packet is not None else None
    except ValueError:
        notice_type = None
    if notice_type is None and ivorn.startswith("ivo://org.svom/"):
        notice_type = next((f"svom.voevent.{k}" for k in ("eclairs", "grm", "mxt") if f"_{k}" in ivorn), None)
    notice_type = notice_type or _param(root, "AlertType") or "unknown"
    trigger = _param(root, "TrigID") or _param(root, "Burst_Id")
    props, prop_tags = _voevent_properties(root)
    retraction = notice_type == "LVC_RETRACTION" or _param(root, "Retraction", "./What/") == "1"
    url = _voevent_skymap_url(root, notice_type)
    sm = name = None
    if url is None and not retraction:
        loc = root.find("./WhereWhen/ObsDataLocation/ObservationLocation")
        elems = [None if loc is None else loc.find(f"./AstroCoords/Position2D/{p}")
                 for p in ("Value2/C1", "Value2/C2", "Error2Radius")]
        if all(e is not None and (e.text or "").strip() for e in elems):
            ra, dec, err = (_number(e.text, n) for e, n in zip(elems, ("C1", "C2", "Error2Radius")))
            if _mission(ivorn) == "AMON":
                err /= AMON_90_TO_SIGMA
            if err == 0:
                err = 0.001  # SkyPortal: about 4 arcsec
            if err > 0:
                sm, name = cone_skymap(ra % 360, dec, err), cone_name(ra, dec, err)
    date_elem = root.find("./Who/Date")
    date = _utc(date_elem.text.strip(), "Date") if date_elem is not None and date_elem.text else dateobs
    return ParsedNotice(dateobs=dateobs, notice_type=notice_type, notice_format="voevent",
                        aliases=_voevent_aliases(root, notice_type), ivorn=ivorn, date=date, retraction=retraction,
                        properties=props, skymap=sm, localization_name=name,
                        tags=_voevent_tags(root, notice_type) + prop_tags, trigger_id=trigger,
                        stream=_mission(ivorn), skymap_url=url)


def _igwn_tags(notice: dict) -> list[str]:
    tags = ["GW"]
    if str(notice.get("alert_type", "")).upper() == "RETRACTION":
        return tags + ["retracted"]
    event = notice.get("event") or {}
    classification = event.get("classification") or {}
    scores = {k: v for k, v in classification.items() if isinstance(v, (int, float)) and not isinstance(v, bool)} \
        if isinstance(classification, dict) else {}
    if scores:
        tags.append(max(scores, key=scores.get))
    if event.get("search"):
        tags.append(str(event["search"]))
    instruments = event.get("instruments") if isinstance(event.get("instruments"), list) else []
    tags += [str(i) for i in instruments]
    if len(instruments) > 1:
        tags.append("MultiInstrument")
    if event.get("pipeline"):
        tags.append(str(event["pipeline"]))
    if "significant" in event:
        tags.append("Significant" if event["significant"] else "Subthreshold")
    return tags


def parse_json_notice(notice: dict) -> ParsedNotice:
    """A JSON notice as SkyPortal's ``post_gcnevent_from_json`` reads it."""
    if not isinstance(notice, dict):
        raise ValidationError("Invalid notice: a JSON notice must be an object", field="json")
    tags = []
    if notice.get("instrument") == "WXT":
        tags = ["Einstein Probe"]
    elif notice.get("instrument") == "BAT-GUANO":
        tags = ["GUANO"]
    if notice.get("superevent_id") is not None and notice.get("alert_type"):  # LVK igwn.gwalert
        alert_type = str(notice["alert_type"]).upper()
        sid = str(notice["superevent_id"])
        event = notice.get("event") or {}
        if not isinstance(event, dict):
            raise ValidationError("Invalid notice: event must be an object", field="json.event")
        created = notice.get("time_created")
        date = _notice_time(str(created).replace("Z", ""), "time_created") if created else None
        props = {}
        if event.get("far") is not None:
            props["FAR"] = event["far"]
        for key in ("classification", "properties"):
            if isinstance(event.get(key), dict):
                props.update(event[key])
        sm = name = None
        if event.get("skymap"):
            try:
                sm = read_fits(base64.b64decode(event["skymap"], validate=True))
            except (ValueError, TypeError) as exc:
                raise ValidationError(f"Invalid notice: event.skymap is not base64 FITS ({exc})",
                                      field="json.event.skymap") from None
            name = f"{sid}-{alert_type}.multiorder.fits"
        dateobs = _notice_time(str(event["time"]).replace("Z", ""), "event.time") if event.get("time") else None
        if dateobs is None and alert_type != "RETRACTION":
            raise ValidationError("Invalid notice: event.time is missing", field="json.event.time")
        date = date or dateobs
        return ParsedNotice(dateobs=dateobs, notice_type=IGWN_NOTICE_TYPES.get(alert_type, f"LVC_{alert_type}"),
                            notice_format="json", aliases=[f"LVC#{sid}"], ref_id=sid, date=date,
                            retraction=alert_type == "RETRACTION", properties=props, skymap=sm,
                            localization_name=name, tags=tags + _igwn_tags(notice), stream="LVC",
                            ivorn=f"LVC-{date.strftime('%Y-%m-%dT%H:%M:%S')}" if date else None,
                            localization_properties={k: event[k] for k in ("distmean", "diststd") if k in event})
    t = notice.get("trigger_time")
    dateobs = _notice_time(str(t).replace("Z", ""), "trigger_time") if t else None
    ref = notice.get("ref_ID")
    if dateobs is None and not ref:
        raise ValidationError("Invalid notice: no trigger_time and no existing event to update (ref_ID)",
                              field="trigger_time")
    date = _notice_time(str(notice["alert_datetime"]).replace("Z", ""), "alert_datetime") \
        if notice.get("alert_datetime") else dateobs
    instrument = notice.get("instrument") or (str(notice["type"]).replace(" ", "-") if notice.get("type")
                                              else "Unknown")
    ra = dec = err = None
    coincident = notice.get("coincident_events")
    for loc in (coincident if isinstance(coincident, list) else []):
        if isinstance(loc, dict) and isinstance(loc.get("localization"), dict):
            ra, dec, err = (loc["localization"].get(k) for k in ("ra", "dec", "ra_dec_error"))
            break
    else:
        ra, dec, err = notice.get("ra"), notice.get("dec"), notice.get("ra_dec_error")
    sm = name = None
    if None not in (ra, dec, err) and isinstance(err, (list, tuple)):
        # the GCN schema's ellipse: [semi-major, semi-minor, position angle] in degrees
        if len(err) != 3:
            raise ValidationError("Invalid ra_dec_error: an ellipse is [semi-major, semi-minor, position angle] "
                                  "in degrees", field="ra_dec_error")
        ra, dec = _number(ra, "ra"), _number(dec, "dec")
        amaj, amin, phi = (_number(v, f"ra_dec_error[{i}]") for i, v in enumerate(err))
        sm = ellipse_skymap(ra % 360, dec, amaj, amin, phi, prefix="ra_dec_error.")
        name = f"{ra:.5f}_{dec:.5f}_{amaj:.5f}_{amin:.5f}_{phi:.5f}"
    elif None not in (ra, dec, err):
        ra, dec, err = _number(ra, "ra"), _number(dec, "dec"), _number(err, "ra_dec_error")
        if err == 0:
            err = 0.001
        if err > 0:
            sm, name = cone_skymap(ra % 360, dec, err, prefix=""), cone_name(ra, dec, err)
    aliases = [str(a) for a in notice["aliases"]] if isinstance(notice.get("aliases"), list) else []
    ids = notice.get("id") or []
    # our addition: the notice's own identifiers as <instrument>#<id> aliases (EP: "WXT#01709")
    aliases += [f"{instrument}#{i}" for i in (ids if isinstance(ids, list) else [ids]) if i not in (None, "")]
    props = dict(notice.get("properties") or {}) if isinstance(notice.get("properties"), dict) else {}
    return ParsedNotice(dateobs=dateobs, notice_type=str(notice.get("notice_type") or notice.get("alert_type")
                                                         or instrument),
                        notice_format="json", aliases=aliases, ref_id=str(ref) if ref else None, date=date,
                        retraction=bool(notice.get("retraction")), properties=props, skymap=sm,
                        localization_name=name, tags=tags, stream=str(instrument),
                        ivorn=f"{instrument}-{date.strftime('%Y-%m-%dT%H:%M:%S')}" if date else None)


# -- the dictionary form ---------------------------------------------------------------------------------

def fetch_url(url: str, name: str = "skymap.url", timeout: float = 15.0, limit: int = 256 << 20) -> bytes:
    """GET ``url`` (http/https only); a 400 naming ``name`` when it cannot be fetched."""
    import requests

    if urlparse(url).scheme not in ("http", "https"):
        raise ValidationError(f"Invalid {name}: only http(s) URLs are fetched, got {url!r:.120}", field=name)
    try:
        with requests.get(url, timeout=timeout, stream=True, allow_redirects=True) as r:
            r.raise_for_status()
            data = bytearray()
            for chunk in r.iter_content(1 << 20):
                data += chunk
                if len(data) > limit:
                    raise ValidationError(f"Invalid {name}: the file is larger than {limit >> 20} MiB", field=name)
    except requests.RequestException as exc:
        raise ValidationError(f"Invalid {name}: cannot fetch {url!r:.120} ({type(exc).__name__})",
                              field=name) from None
    return bytes(data)


def _fits_string(value: str, field_name: str) -> tuple[SkyMap, str]:
    """``name=<file>;base64,<data>`` (SkyPortal's envelope) or plain base64 → (map, name)."""
    name = "healpix"
    data = value
    if "base64," in value:
        head, data = value.split("base64,", 1)
        if "name=" in head:
            name = unquote(head.split("name=")[-1].replace(";", "")) or name
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(f"Invalid {field_name}: neither base64 FITS nor an http(s) URL",
                              field=field_name) from None
    return read_fits(raw), name


def skymap_from_dictionary(skymap) -> tuple[SkyMap, str]:
    """SkyPortal's dictionary-form ``skymap`` → (map, localization name). May fetch a URL (blocking)."""
    if isinstance(skymap, str):
        if skymap.startswith(("http://", "https://")) or re.match(r"^[a-z][a-z0-9+.-]*://", skymap):
            sm = read_fits(fetch_url(skymap))
            return sm, (urlparse(skymap).path.rsplit("/", 1)[-1] or "skymap")
        return _fits_string(skymap, "skymap")
    if not isinstance(skymap, dict):
        raise ValidationError("Invalid skymap: must be an object, base64 FITS or a URL", field="skymap")
    keys = set(skymap)
    if {"localization_name", "uniq", "probdensity"} <= keys:
        return skymap_from_arrays(skymap, "skymap."), str(skymap["localization_name"])
    if {"ra", "dec", "error"} <= keys:  # SkyPortal names a cone by its numbers (a given name is not used)
        sm = cone_skymap(skymap["ra"], skymap["dec"], skymap["error"], prefix="skymap.")
        return sm, cone_name(sm.meta["ra"], sm.meta["dec"], sm.meta["error"])
    if {"localization_name", "ra", "dec", "amaj", "amin", "phi"} <= keys:
        return (ellipse_skymap(skymap["ra"], skymap["dec"], skymap["amaj"], skymap["amin"], skymap["phi"]),
                str(skymap["localization_name"]))
    if {"localization_name", "polygon"} <= keys:
        return polygon_skymap(skymap["polygon"]), str(skymap["localization_name"])
    if {"localization_name", "content"} <= keys:  # our addition: base64 FITS with its name
        sm, _ = _fits_string(str(skymap["content"]), "skymap.content")
        return sm, str(skymap["localization_name"])
    if "url" in keys:  # our addition: {url, localization_name?}
        sm = read_fits(fetch_url(str(skymap["url"])))
        return sm, str(skymap.get("localization_name") or urlparse(str(skymap["url"])).path.rsplit("/", 1)[-1])
    raise ValidationError("Invalid skymap: give uniq + probdensity (+ localization_name), ra + dec + error, "
                          "an ellipse (ra, dec, amaj, amin, phi), a polygon, base64 FITS or a URL",
                          field="skymap")


def skymap_from_arrays(b: dict, prefix: str = "") -> SkyMap:
    if len(b.get("probdensity") or []) != len(b.get("uniq") or []):
        raise ValidationError(f"Invalid {prefix}probdensity: needs one value per uniq", field=f"{prefix}probdensity")
    try:
        layers = {k: (None if b.get(k) is None else np.asarray(b[k], float)) for k in ("distmu", "distsigma", "distnorm")}
        uniq = np.asarray(b["uniq"], dtype=np.int64)
        dens = np.asarray(b["probdensity"], float)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValidationError(f"Invalid {prefix}uniq: uniq must be integers and the layers numbers ({exc})",
                              field=f"{prefix}uniq") from None
    return SkyMap(uniq, dens, **layers).validate()


def skymap_from_body(b: dict) -> SkyMap:
    """POST /api/localization (our addition): arrays, a cone or base64 FITS."""
    if "fits" in b:
        try:
            return read_fits(base64.b64decode(b["fits"], validate=True))
        except ValueError as exc:
            raise ValidationError(f"Invalid field 'fits': not base64 ({exc})", field="fits") from None
    if "uniq" in b:
        return skymap_from_arrays(b)
    if {"ra", "dec", "error"} <= set(b):
        return cone_skymap(b["ra"], b["dec"], b["error"])
    raise ValidationError("Missing sky map: give uniq + probdensity, ra + dec + error, or fits", field="uniq")


def parse_dictionary(body: dict) -> ParsedNotice:
    """SkyPortal's dictionary form (``post_gcnevent_from_dictionary``): the event time is kept as given."""
    parsed = ParsedNotice(dateobs=_utc(body["dateobs"], "dateobs"), notice_type="dictionary",
                          notice_format="dictionary", aliases=[str(a) for a in body.get("aliases") or []],
                          tags=[str(t) for t in body.get("tags") or []],
                          properties=dict(body.get("properties") or {}),
                          trigger_id=None if body.get("trigger_id") is None else str(body["trigger_id"]),
                          group_ids=list(dict.fromkeys(body.get("group_ids") or [])))
    if body.get("skymap") is not None:
        parsed.skymap, parsed.localization_name = skymap_from_dictionary(body["skymap"])
        if not parsed.localization_name or len(parsed.localization_name) > 255:
            raise ValidationError("Invalid skymap: the localization name must be 1 to 255 characters",
                                  field="skymap.localization_name")
    return parsed


def parse_notice_body(body: dict) -> tuple[ParsedNotice, bytes | None]:
    """An API body: ``{"json": notice}``, ``{"xml": voevent}`` or the dictionary form."""
    if "xml" in body:
        raw = body["xml"].encode()
        return parse_voevent(raw), raw
    if "json" in body:
        notice = body["json"]
        if isinstance(notice, str):
            try:
                notice = json.loads(notice)
            except json.JSONDecodeError as exc:
                raise ValidationError(f"Invalid json: {exc}", field="json") from None
        return parse_json_notice(notice), json.dumps(notice).encode()
    return parse_dictionary(body), None


# -- storing -------------------------------------------------------------------------------------------

def _event_by_alias(session: Session, ref: str) -> models.GcnEvent | None:
    E = models.GcnEvent
    return session.execute(sa.select(E).where(sa.func.lower(sa.cast(E.aliases, sa.String))
                                              .contains(ref.lower(), autoescape=True))
                           .order_by(E.id)).scalars().first()


def _add_tags(session: Session, dateobs: datetime, texts, user_id: int | None) -> None:
    texts = [t for t in dict.fromkeys(texts) if t]
    if texts:
        stmt = insert(models.GcnTag).values([{"dateobs": dateobs, "text": t, "sent_by_id": user_id,
                                              "created_at": models.utcnow(), "modified": models.utcnow()}
                                             for t in texts])
        session.execute(stmt.on_conflict_do_nothing(constraint="uq_gcntags_dateobs_text"))


def store_notice(session: Session, parsed: ParsedNotice, raw: bytes | None, recent_days: float = RECENT_DAYS,
                 *, user_id: int | None = None, on_duplicate: str = "error",
                 readable_group_ids=None) -> tuple[models.GcnEvent, models.GcnNotice | None]:
    """Create or update the event (found by trigger_id, an alias the notice updates, or time), keep the
    notice (once: a known ivorn is a 400, or skipped with ``on_duplicate="skip"``), its tags and
    properties, and add its localization (tiles, properties, contour, crossmatch) unless one of that
    name exists. ``readable_group_ids``: the groups the poster may use for ``group_ids``."""
    E, N = models.GcnEvent, models.GcnNotice
    if parsed.ivorn and raw is not None:
        known = session.execute(sa.select(N.id).where(N.ivorn == parsed.ivorn)).first()
        if known:
            if on_duplicate == "skip":
                event = session.execute(sa.select(E).join(N, N.dateobs == E.dateobs).where(N.id == known[0])).scalar()
                return event, None
            raise ValidationError(f"Cannot post event: GcnNotice with ivorn {parsed.ivorn} already exists.",
                                  field="ivorn")
    event = None
    if parsed.trigger_id is not None:
        event = session.execute(sa.select(E).where(E.trigger_id == parsed.trigger_id).order_by(E.id)).scalars().first()
    if event is None and parsed.ref_id:
        event = _event_by_alias(session, parsed.ref_id)
    if event is None and parsed.dateobs is not None:
        event = session.execute(sa.select(E).where(E.dateobs == parsed.dateobs)).scalar()
    if event is None:
        if parsed.dateobs is None:
            alias = parsed.aliases[0] if parsed.aliases else parsed.ref_id
            raise NotFound(f"Cannot ingest GCN notice: no event time and no existing event {alias} to update")
        groups = parsed.group_ids
        if groups:
            known = set(readable_group_ids if readable_group_ids is not None else [])
            missing = [g for g in groups if g not in known]
            if missing:
                raise ValidationError(f"Invalid group_ids: {missing} not found or not accessible", field="group_ids")
        event = E(dateobs=parsed.dateobs, aliases=[], properties={}, trigger_id=parsed.trigger_id,
                  group_ids=list(groups))
        session.add(event)
        session.flush()
    if parsed.trigger_id is not None and event.trigger_id is None:
        event.trigger_id = parsed.trigger_id
    event.aliases = list(dict.fromkeys([*event.aliases, *parsed.aliases]))
    if parsed.properties:
        event.properties = {**event.properties, **parsed.properties}
        session.add(models.GcnProperty(dateobs=event.dateobs, data=parsed.properties, sent_by_id=user_id))
    tags = list(parsed.tags)
    if parsed.retraction:
        event.retracted = True
        tags.append("retracted")
    _add_tags(session, event.dateobs, tags, user_id)
    notice = None
    if raw is not None:
        has_loc = parsed.skymap is not None or parsed.skymap_url is not None
        notice = N(dateobs=event.dateobs, ivorn=parsed.ivorn, notice_type=parsed.notice_type,
                   notice_format=parsed.notice_format, date=parsed.date or event.dateobs, content=raw,
                   stream=parsed.stream, has_localization=has_loc, localization_ingested=False,
                   skymap_url=parsed.skymap_url if parsed.skymap is None else None)
        session.add(notice)
    session.flush()
    if parsed.skymap is not None:
        L = models.Localization
        exists = session.execute(sa.select(L.id).where(L.dateobs == event.dateobs,
                                                       L.localization_name == parsed.localization_name)).first()
        if not exists:  # as SkyPortal: a localization already stored under that name is kept
            add_localization(session, event, parsed.localization_name, parsed.skymap,
                             None if notice is None else notice.id, recent_days,
                             properties=parsed.localization_properties, tags=parsed.localization_tags)
        if notice is not None:
            notice.localization_ingested = True
    session.expire(event, ["gcn_tags", "gcn_properties", "localizations", "notices"])
    return event, notice


def add_localization(session: Session, event: models.GcnEvent, name: str, sm: SkyMap, notice_id: int | None = None,
                     recent_days: float = RECENT_DAYS, *, properties: dict | None = None,
                     tags: list[str] | None = None) -> models.Localization:
    L = models.Localization
    if session.execute(sa.select(L.id).where(L.dateobs == event.dateobs, L.localization_name == name)).first():
        raise ValidationError(f"Event {event.dateobs.isoformat()} already has a localization named '{name}'",
                              field="localization_name")
    sm.validate()
    a50, a90 = K.credible_region_area(sm.uniq, sm.probdensity, [0.5, 0.9], sm.ranking())

    loc = L(dateobs=event.dateobs, localization_name=name, uniq=b"", probdensity=b"",
            area_50=float(a50), area_90=float(a90), notice_id=notice_id, contour=geojson_contour(sm))
    session.add(loc)
    session.flush()
    _write_arrays(session, loc, sm)
    props, loc_tags = skymap_properties(sm, float(a90))
    props.update(properties or {})
    session.add(models.LocalizationProperty(localization_id=loc.id, data=props))
    for text in dict.fromkeys([*loc_tags, *(tags or [])]):
        session.add(models.LocalizationTag(localization_id=loc.id, text=text))
    _write_tiles(session, loc.id, sm)
    # the objects that passed a filter in the event's first recent_days: the window ingest crossmatches new
    # alerts in (an old event's map is not matched against everything that passed since)
    crossmatch_objects(session, loc, sm, since=event.dateobs, until=event.dateobs + timedelta(days=recent_days))
    return loc


def skymap_properties(sm: SkyMap, area_90: float) -> tuple[dict, list[str]]:
    """SkyPortal's localization properties and tags: ``area_90`` and ``probability_500`` (with their
    thresholds), and the distance from the map's header (``distmean``/``diststd``, "< 150 Mpc")."""
    props, tags = {}, []
    if math.isfinite(area_90):
        props["area_90"] = area_90
        tags += [f"< {t} sq. deg." for t in (200, 500, 1000) if area_90 < t]
    p500 = float(K.area_probability(sm.uniq, sm.probdensity, [500.0], sm.ranking())[0])
    if math.isfinite(p500):
        props["probability_500"] = p500
        if p500 >= 0.9:
            tags.append("> 0.9 in 500 sq. deg.")
    for key in ("DISTMEAN", "DISTSTD", "LOG_BCI", "LOG_BSN"):
        value = sm.meta.get(key)
        if isinstance(value, (int, float)) and math.isfinite(value):
            props[key.lower()] = float(value)
    if "distmean" in props:
        tags += [f"< {t} Mpc" for t in (150, 250) if props["distmean"] <= t]
    return props, tags


# one localizationtiles row in PostgreSQL's binary COPY format: field count, then (length, value) per field;
# the int8range [lo, hi) is its flags byte (lower bound inclusive) and two (length, int8) bounds
_TILE_ROW = np.dtype([
    ("nfields", ">i2"),
    ("len_loc", ">i4"), ("localization_id", ">i4"),
    ("len_range", ">i4"), ("flags", "u1"), ("len_lo", ">i4"), ("lo", ">i8"), ("len_hi", ">i4"), ("hi", ">i8"),
    ("len_dens", ">i4"), ("probdensity", ">f8"),
    ("len_prob", ">i4"), ("prob", ">f8"),
    ("len_uniq", ">i4"), ("uniq", ">i8"),
    ("len_cum", ">i4"), ("cumprob", ">f8"),
])
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_COPY_TRAILER = b"\xff\xff"


_ARRAYS_DDL = ("CREATE TEMP TABLE IF NOT EXISTS localization_arrays_staging (uniq bytea STORAGE EXTERNAL, "
               "probdensity bytea STORAGE EXTERNAL, distmu bytea STORAGE EXTERNAL, distsigma bytea STORAGE EXTERNAL, "
               "distnorm bytea STORAGE EXTERNAL) ON COMMIT DELETE ROWS")
_ARRAYS = ("uniq", "probdensity", "distmu", "distsigma", "distnorm")
register_staging("localization_arrays_staging", _ARRAYS_DDL)


def _write_arrays(session: Session, loc: models.Localization, sm: SkyMap) -> None:
    """The map's arrays into its localization row as little-endian bytes, sent by binary COPY (as they
    are: a bound bytea parameter travels hex-escaped, twice the size, and took seconds for a large map)."""
    fields = [None if getattr(sm, k) is None else
              np.ascontiguousarray(getattr(sm, k), dtype="<i8" if k == "uniq" else "<f8").tobytes() for k in _ARRAYS]
    row = [len(_ARRAYS).to_bytes(2, "big")]
    for f in fields:
        row.append((-1).to_bytes(4, "big", signed=True) if f is None else len(f).to_bytes(4, "big") + f)
    buf = io.BytesIO(_COPY_HEADER + b"".join(row) + _COPY_TRAILER)
    fairy = session.connection().connection
    with fairy.dbapi_connection.cursor() as cur:
        if "localization_arrays_staging" not in fairy.info.get("staging", ()):
            cur.execute(_ARRAYS_DDL)
        cur.execute("DELETE FROM localization_arrays_staging")
        cur.copy_expert("COPY localization_arrays_staging FROM STDIN WITH (FORMAT binary)", buf)
        cur.execute("UPDATE localizations l SET " + ", ".join(f"{k} = a.{k}" for k in _ARRAYS) +
                    " FROM localization_arrays_staging a WHERE l.id = %s", (loc.id,))
    session.expire(loc, list(_ARRAYS))


class _TileRows(io.RawIOBase):
    """The COPY stream of a map's tiles, made ``_TILE_BLOCK`` rows at a time as PostgreSQL reads it (a map
    of millions of tiles is never held as one buffer)."""

    def __init__(self, localization_id: int, sm: SkyMap):
        self.localization_id, self.sm = localization_id, sm
        # in rank order: the key (localization_id, cumprob, uniq) then grows row by row, so its B-tree is
        # only ever appended to (in UNIQ order, every row landed on a random page: 3x slower)
        self.ranked, self.cum, _ = sm.ranking()
        self.pending = _COPY_HEADER
        self.next = 0

    def readable(self) -> bool:
        return True

    def _block(self) -> bytes:
        a, b = self.next, min(self.next + _TILE_BLOCK, len(self.sm.uniq))
        self.next = b
        take = self.ranked[a:b]
        uniq, dens = self.sm.uniq[take], self.sm.probdensity[take]
        order, ipix = K.uniq_to_order_ipix(uniq)
        shift = 2 * (29 - order)
        rows = np.empty(b - a, dtype=_TILE_ROW)
        rows["nfields"] = 6
        rows["len_loc"], rows["localization_id"] = 4, self.localization_id
        rows["len_range"], rows["flags"] = 1 + 12 + 12, 0x02  # RANGE_LB_INC: [lo, hi)
        rows["len_lo"], rows["lo"] = 8, ipix << shift
        rows["len_hi"], rows["hi"] = 8, (ipix + 1) << shift
        rows["len_dens"], rows["probdensity"] = 8, dens
        rows["len_prob"], rows["prob"] = 8, dens * K.pixel_area_sr(order)
        rows["len_uniq"], rows["uniq"] = 8, uniq
        rows["len_cum"], rows["cumprob"] = 8, self.cum[a:b]
        return rows.tobytes() + (_COPY_TRAILER if b == len(self.sm.uniq) else b"")

    def read(self, size: int = -1) -> bytes:
        while not self.pending and self.next < len(self.sm.uniq):
            self.pending = self._block()
        if size is None or size < 0:
            size = len(self.pending)
        out, self.pending = self.pending[:size], self.pending[size:]
        return out


_TILE_BLOCK = 1 << 16


def _write_tiles(session: Session, localization_id: int, sm: SkyMap) -> None:
    """The map's tiles by binary COPY (made by numpy a block at a time: no per-row Python, no whole-map
    buffer), each with its depth-29 range, probability and the cumulative probability at its rank (the
    kernel's ranking: density, then UNIQ, descending), so a credible region is an index range scan
    (``cumprob <= level``), the kernel's region tile for tile."""
    with session.connection().connection.dbapi_connection.cursor() as cur:
        cur.copy_expert("COPY localizationtiles (localization_id, healpix, probdensity, prob, uniq, cumprob) "
                        "FROM STDIN WITH (FORMAT binary)", _TileRows(localization_id, sm), size=1 << 20)


# Objects are stored with a localization (obj_localizations: the candidates' and sources' ``localizations``,
# the default follow-up rules) only inside this credible region: a map covers the whole sky, and storing every
# candidate with every recent map would multiply the candidates table by the number of recent events.
# Queries by region (localizationCumprob) read the tiles and go to 1.
STORED_CREDIBLE_LEVEL = 0.999


def crossmatch_objects(session: Session, loc: models.Localization, sm: SkyMap, *, since: datetime | None = None,
                       until: datetime | None = None, obj_ids: list[str] | None = None) -> int:
    """Store credible level and density for objects inside the map's STORED_CREDIBLE_LEVEL region
    (candidates that passed in [``since``, ``until``], or ``obj_ids``)."""
    O, C = models.Obj, models.Candidate
    stmt = sa.select(O.id, O.ra, O.dec)
    if obj_ids is not None:
        stmt = stmt.where(O.id.in_(obj_ids))
    elif since is not None:
        window = [C.passed_at >= since] + ([C.passed_at <= until] if until is not None else [])
        stmt = stmt.where(O.id.in_(sa.select(C.obj_id).where(*window)))
    rows = session.execute(stmt).all()
    if not rows:
        return 0
    return store_matches(session, loc.id, sm, [r[0] for r in rows], np.array([r[1] for r in rows]),
                         np.array([r[2] for r in rows]))


def store_matches(session: Session, localization_id: int, sm: SkyMap, ids: list[str], ras, decs) -> int:
    """Crossmatch objects ``ids`` at (``ras``, ``decs``) [deg] with a map and store (upsert) the credible
    level and density of those inside its STORED_CREDIBLE_LEVEL region; how many."""
    res = K.crossmatch(sm.uniq, sm.probdensity, ras, decs)
    keep = np.flatnonzero(np.nan_to_num(res["credible_level"], nan=np.inf) <= STORED_CREDIBLE_LEVEL)
    if len(keep):
        session.execute(_UPSERT_OBJ_LOC, {"o": [ids[i] for i in keep], "l": [localization_id] * len(keep),
                                          "c": res["credible_level"][keep].tolist(),
                                          "p": res["probdensity"][keep].tolist()})
    return len(keep)


_UPSERT_OBJ_LOC = sa.text("""
    INSERT INTO obj_localizations (obj_id, localization_id, credible_level, probdensity)
    SELECT o, l, c, p FROM unnest(CAST(:o AS text[]), CAST(:l AS int[]), CAST(:c AS float8[]), CAST(:p AS float8[]))
         AS v(o, l, c, p)
    ON CONFLICT (obj_id, localization_id) DO UPDATE SET credible_level = EXCLUDED.credible_level,
                                                        probdensity = EXCLUDED.probdensity
""")


def region_obj_ids(localization_id: int, cumprob: float, materialized: bool = False) -> sa.Select:
    """Objects inside the ``cumprob`` credible region: the tiles whose cumulative probability (stored with
    them, in the kernel's ranking) is within it, an index range scan, so the region is the kernel's, object
    for object. ``materialized``: the tiles are read first (a CTE), for a query under a LIMIT."""
    T = models.LocalizationTile
    tiles = sa.select(T.healpix).where(T.localization_id == localization_id, T.cumprob <= cumprob)
    region = tiles.cte("region_tiles").prefix_with("MATERIALIZED") if materialized else tiles.subquery()
    # bounds rather than range containment, so each tile is one B-tree range scan of objs.healpix
    return (sa.select(models.Obj.id)
            .join(region, sa.and_(models.Obj.healpix >= sa.func.lower(region.c.healpix),
                                  models.Obj.healpix < sa.func.upper(region.c.healpix))))


def region_obj_id_list(session: Session, localization_id: int, cumprob: float, cap: int) -> list[str] | None:
    """The ids of :func:`region_obj_ids`, or None when there are more than ``cap``; once per session and
    region. The tiles are read first: under a LIMIT the planner, which cannot estimate the range join,
    would rather scan every tile of every map."""
    memo = session.info.setdefault("region_obj_id_list", {})
    key = (localization_id, cumprob, cap)
    if key not in memo:
        ids = session.execute(region_obj_ids(localization_id, cumprob, materialized=True)
                              .limit(cap + 1)).scalars().all()
        memo[key] = ids if len(ids) <= cap else None
    return memo[key]


def stored_skymap(loc: models.Localization) -> SkyMap:
    """A stored localization's map (its arrays are kept as little-endian bytes)."""
    def arr(b, dt):
        return None if b is None else np.frombuffer(b, dtype=dt)

    return SkyMap(arr(loc.uniq, "<i8"), arr(loc.probdensity, "<f8"), arr(loc.distmu, "<f8"),
                  arr(loc.distsigma, "<f8"), arr(loc.distnorm, "<f8"))


def contours(sm: SkyMap, levels=(0.5, 0.9)) -> dict[str, list[int]]:
    """The credible regions of ``levels`` as MOCs: {"50%": sorted UNIQ pixels, ...}."""
    credible = K.moc_credible_levels(sm.uniq, sm.probdensity, sm.ranking())
    return {f"{int(x * 100)}%": np.sort(sm.uniq[credible <= x]).tolist() for x in levels}


def posterior_max(sm: SkyMap) -> tuple[float, float]:
    """(ra, dec) [deg] of the centre of the densest pixel."""
    i = int(np.argmax(sm.probdensity))
    order, ipix = K.uniq_to_order_ipix(sm.uniq[i:i + 1])
    ra, dec = hp.pix2ang(1 << int(order[0]), int(ipix[0]), nest=True, lonlat=True)
    return float(ra), float(dec)


GRID_MAX = 720  # contour grid: at most this many points a side


def geojson_contour(sm: SkyMap, levels=(50, 90)) -> dict:
    """SkyPortal's ``contour``: a GeoJSON FeatureCollection of the densest point (credible_level 0) and the
    50% and 90% credible-region boundaries as MultiLineStrings of [ra, dec] in degrees, traced on a
    longitude-latitude grid around the region, fine enough for its smallest pixels."""
    import contourpy

    ra0, dec0 = posterior_max(sm)
    cl = K.moc_credible_levels(sm.uniq, sm.probdensity, sm.ranking()) * 100
    order, ipix = K.uniq_to_order_ipix(sm.uniq)
    inside = cl <= max(levels) + 5
    if not inside.any():
        inside = cl <= cl.min()
    pra, pdec = hp.pix2ang(np.int64(1) << order[inside], ipix[inside], nest=True, lonlat=True)
    size = 58.6323 / (2.0 ** order[inside])  # pixel sizes [deg]
    dra = (pra - ra0 + 180.0) % 360.0 - 180.0
    pad = float(size.max()) * 1.5
    x0, x1 = max(-180.0, float(dra.min()) - pad), min(180.0, float(dra.max()) + pad)
    y0, y1 = max(-90.0, float(pdec.min()) - pad), min(90.0, float(pdec.max()) + pad)
    step = max(float(size.min()) / 2, (x1 - x0) / GRID_MAX, (y1 - y0) / GRID_MAX)
    xs = np.arange(x0, x1 + step, step)
    ys = np.arange(y0, y1 + step, step).clip(-90, 90)
    gx, gy = np.meshgrid(xs, ys)
    idx = K.locate(sm.uniq, (gx + ra0) % 360.0, gy)
    z = np.where(idx >= 0, cl[np.where(idx >= 0, idx, 0)], 100.0)
    # close the curves at the grid's edge unless it is the sky's own edge
    if ys[0] > -90:
        z[0, :] = 100.0
    if ys[-1] < 90:
        z[-1, :] = 100.0
    if x1 - x0 < 359.0:
        z[:, [0, -1]] = 100.0
    gen = contourpy.contour_generator(x=xs, y=ys, z=z)
    features = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [ra0, dec0]},
                 "properties": {"credible_level": 0}}]
    for level in levels:
        paths = []
        for line in gen.lines(level):
            if len(line) < 2:
                continue
            coords = np.column_stack(((line[:, 0] + ra0) % 360.0, line[:, 1]))
            paths.append(np.round(coords, 6).tolist())
        features.append({"type": "Feature", "properties": {"credible_level": level},
                         "geometry": {"type": "MultiLineString", "coordinates": paths}})
    return {"type": "FeatureCollection", "features": features}


def center(loc: models.Localization, sm: SkyMap | None = None) -> dict:
    """SkyPortal's localization ``center``: the cone's centre (from its name) or the densest point, with
    galactic coordinates; ``ebv`` is None (no dust map here)."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    try:
        ra, dec, _ = (float(x) for x in loc.localization_name.split("_"))
    except ValueError:
        ra, dec = posterior_max(sm if sm is not None else stored_skymap(loc))
    gal = SkyCoord(ra * u.deg, dec * u.deg, frame="icrs").galactic
    return {"ra": ra, "dec": dec, "gal_lat": float(gal.b.deg), "gal_lon": float(gal.l.deg), "ebv": None}


# -- reading -------------------------------------------------------------------------------------------

def readable_events(principal=None) -> sa.Select:
    """Events the caller may read: those without groups, and (for members) those shared with their groups;
    all for a system admin or when no principal is given (internal use)."""
    E = models.GcnEvent
    stmt = sa.select(E)
    if principal is not None and not principal.is_admin:
        mine = sa.select(models.GroupUser.group_id).where(models.GroupUser.user_id == principal.user_id)
        stmt = stmt.where(sa.or_(sa.func.cardinality(E.group_ids) == 0,
                                 E.group_ids.overlap(sa.func.array(mine.scalar_subquery()))))
    return stmt


def find_event(session: Session, dateobs: str, principal=None, *, missing=NotFound) -> models.GcnEvent:
    E = models.GcnEvent
    when = _utc(dateobs, "dateobs")
    event = session.execute(readable_events(principal).where(E.dateobs == when)).scalar()
    if event is None:
        raise missing("GCN event not found" if missing is NotFound else f"No GCN event with dateobs {dateobs}")
    return event


def find_localization(session: Session, dateobs: str, name: str | None, principal=None) -> models.Localization:
    L, E = models.Localization, models.GcnEvent
    when = _utc(dateobs, "localizationDateobs")
    stmt = sa.select(L).where(L.dateobs == when)
    if principal is not None and not principal.is_admin:
        stmt = stmt.where(L.dateobs.in_(readable_events(principal).with_only_columns(E.dateobs)))
    if name:
        stmt = stmt.where(L.localization_name == name)
    loc = session.execute(stmt.order_by(L.created_at.desc())).scalars().first()
    if loc is None:
        raise NotFound(f"Localization not found: no localization for {dateobs}" + (f" named '{name}'" if name else ""))
    return loc


def notice_to_dict(n: models.GcnNotice, content: bool = True) -> dict:
    out = n.to_dict()
    if content:
        out["content"] = n.content.decode("utf-8", errors="replace")
    return out


def _lightcurve(event: models.GcnEvent) -> str | None:
    if not event.notices or event.notices[0].notice_format != "voevent":
        return None
    try:
        root = ET.fromstring(event.notices[0].content)
    except ET.ParseError:
        return None
    url = _param(root, "LightCurve_URL")
    return None if url is None else url.replace("http://", "https://")


def localization_to_dict(loc: models.Localization, *, detail: bool = False, arrays: bool = False) -> dict:
    """SkyPortal's localization: with ``detail`` its properties, GeoJSON contour and centre; with ``arrays``
    the map itself (uniq, probdensity, distance layers)."""
    out = loc.to_dict()
    out["tags"] = [t.to_dict() for t in loc.tags]
    if detail or arrays:
        sm = stored_skymap(loc)
        out["properties"] = [p.to_dict() for p in loc.properties]
        out["contour"] = loc.contour if loc.contour is not None else geojson_contour(sm)
        out["center"] = center(loc, sm)
    if arrays:
        out["uniq"], out["probdensity"] = sm.uniq.tolist(), sm.probdensity.tolist()
        for k in ("distmu", "distsigma", "distnorm"):
            out[k] = None if getattr(sm, k) is None else getattr(sm, k).tolist()
    return out


def event_to_dict(event: models.GcnEvent, *, single: bool = True, notice_content: bool = True) -> dict:
    """SkyPortal's event: ``tags``, ``aliases``, ``gcn_notices``, ``properties`` (one entry per notice or
    poster, newest first), ``localizations`` (newest first; with their maps, contours and centres for a
    single event), ``lightcurve``, ``gcn_triggers``; ``retracted`` is our addition."""
    out = event.to_dict()
    out["tags"] = event.tags
    notices = sorted(event.notices, key=lambda n: (n.date or n.created_at), reverse=not single)
    out["gcn_notices"] = [notice_to_dict(n, content=single and notice_content) for n in notices]
    # the maps themselves are in GET /api/localization/... (SkyPortal puts them here too: megabytes per event)
    out["localizations"] = sorted((localization_to_dict(loc, detail=single) for loc in event.localizations),
                                  key=lambda d: d["created_at"], reverse=True)
    out["gcn_triggers"] = [t.to_dict() for t in event.gcn_triggers]
    # our addition: maps that notices point to and that are not stored yet (broker/sky/pending.py)
    out["localizations_pending"] = [
        {"notice_id": n.id, "url": n.skymap_url, "error": n.skymap_error, "attempts": n.skymap_attempts,
         "next_attempt_at": n.skymap_retry_at.isoformat() if n.skymap_retry_at else None}
        for n in event.notices if n.has_localization and not n.localization_ingested]
    if single:
        out["properties"] = sorted((p.to_dict() for p in event.gcn_properties), key=lambda d: d["created_at"],
                                   reverse=True)
        out["lightcurve"] = _lightcurve(event)
        out["comments"], out["summaries"], out["event_users"] = [], [], []
    else:
        out.pop("properties", None)
    return out


_OPS = {"lt": sa.sql.operators.lt, "le": sa.sql.operators.le, "eq": sa.sql.operators.eq,
        "ne": sa.sql.operators.ne, "ge": sa.sql.operators.ge, "gt": sa.sql.operators.gt}


def _property_condition(column, spec: str, name: str):
    parts = [p.strip() for p in spec.split(":")]
    if len(parts) not in (1, 3) or not parts[0]:
        raise ValidationError(f"Invalid {name} value -- property filter must have 1 or 3 values", field=name)
    if len(parts) == 1:
        return column[parts[0]].astext.is_not(None)
    try:
        value = float(parts[1])
    except ValueError:
        raise ValidationError(f"Invalid {name} value: {parts[1]!r} is not a number", field=name) from None
    if parts[2] not in _OPS:
        raise ValidationError(f"Invalid {name}: operator {parts[2]!r} is not one of {', '.join(_OPS)}", field=name)
    from sqlalchemy.dialects.postgresql import JSONB

    return _OPS[parts[2]](column[parts[0]], sa.cast(sa.literal(json.dumps(value)), JSONB))


def list_events(session: Session, principal, *, start_date=None, end_date=None, partialdateobs=None,
                gcn_tag_keep=None, gcn_tag_remove=None, localization_tag_keep=None, localization_tag_remove=None,
                gcn_properties_filter=None, localization_properties_filter=None, group_ids=None,
                include_retracted: bool = True, sort_order: str = "desc", page=None) -> dict:
    """SkyPortal's event list and its filters; ``{"events", "totalMatches"}``."""
    E, T, L, LT = models.GcnEvent, models.GcnTag, models.Localization, models.LocalizationTag
    stmt = readable_events(principal)
    if partialdateobs:
        p = partialdateobs.strip().lower()
        if len(p) > 10 and p[10] == "t":
            p = p[:10] + " " + p[11:]
        stmt = stmt.where(sa.or_(sa.cast(E.dateobs, sa.String).like(f"{p}%", escape="\\"),
                                 sa.func.lower(sa.cast(E.aliases, sa.String)).contains(p, autoescape=True)))
    if start_date is not None:
        stmt = stmt.where(E.dateobs >= start_date)
    if end_date is not None:
        stmt = stmt.where(E.dateobs <= end_date)
    if group_ids:
        stmt = stmt.where(E.group_ids.overlap(sa.cast(group_ids, sa.ARRAY(sa.Integer))))
    if not include_retracted:
        stmt = stmt.where(~E.retracted)
    if gcn_tag_keep:
        stmt = stmt.where(E.dateobs.in_(sa.select(T.dateobs).where(T.text.in_(gcn_tag_keep))))
    if gcn_tag_remove:
        stmt = stmt.where(E.dateobs.not_in(sa.select(T.dateobs).where(T.text.in_(gcn_tag_remove))))
    loc_tags = sa.select(L.dateobs).join(LT, LT.localization_id == L.id)
    if localization_tag_keep:
        stmt = stmt.where(E.dateobs.in_(loc_tags.where(LT.text.in_(localization_tag_keep))))
    if localization_tag_remove:
        stmt = stmt.where(E.dateobs.not_in(loc_tags.where(LT.text.in_(localization_tag_remove))))
    for spec in gcn_properties_filter or []:
        cond = _property_condition(models.GcnProperty.data, spec, "gcnPropertiesFilter")
        stmt = stmt.where(E.dateobs.in_(sa.select(models.GcnProperty.dateobs).where(cond)))
    for spec in localization_properties_filter or []:
        LP = models.LocalizationProperty
        cond = _property_condition(LP.data, spec, "localizationPropertiesFilter")
        stmt = stmt.where(E.dateobs.in_(sa.select(L.dateobs).join(LP, LP.localization_id == L.id).where(cond)))
    total = session.execute(sa.select(sa.func.count()).select_from(stmt.subquery())).scalar_one()
    stmt = stmt.order_by(E.dateobs.asc() if sort_order == "asc" else E.dateobs.desc())
    if page is not None:
        stmt = stmt.limit(page.size).offset((page.number - 1) * page.size)
    events = session.execute(stmt).scalars().all()
    return {"events": [event_to_dict(e, single=False) for e in events], "totalMatches": int(total)}


# -- aliases, tags, properties ---------------------------------------------------------------------------

def add_alias(session: Session, principal, dateobs: str, alias: str) -> None:
    event = find_event(session, dateobs, principal)
    if alias in event.aliases:
        raise ValidationError(f"{alias} already in {dateobs} aliases.", field="alias")
    event.aliases = [*event.aliases, alias]


def remove_alias(session: Session, principal, dateobs: str, alias: str) -> None:
    for forbidden in ("LVC#", "FERMI#"):
        if forbidden in alias:
            raise ValidationError(f"Cannot delete alias with substring {forbidden}", field="alias")
    event = find_event(session, dateobs, principal)
    if alias not in event.aliases:
        raise ValidationError(f"{alias} not in {dateobs} aliases.", field="alias")
    event.aliases = [a for a in event.aliases if a != alias]


def all_tags(session: Session) -> list[str]:
    return session.execute(sa.select(models.GcnTag.text).distinct().order_by(models.GcnTag.text)).scalars().all()


def add_tag(session: Session, principal, dateobs: str, text: str) -> int:
    event = find_event(session, dateobs, principal, missing=ValidationError)
    T = models.GcnTag
    if session.execute(sa.select(T.id).where(T.dateobs == event.dateobs, T.text == text)).first():
        raise ValidationError(f"Cannot post tag: {dateobs} is already tagged {text!r}", field="text")
    tag = T(dateobs=event.dateobs, text=text, sent_by_id=principal.user_id)
    session.add(tag)
    if text == "retracted":
        event.retracted = True
    session.flush()
    return tag.id


def remove_tag(session: Session, principal, dateobs: str, text: str) -> None:
    event = find_event(session, dateobs, principal)
    T = models.GcnTag
    tag = session.execute(sa.select(T).where(T.dateobs == event.dateobs, T.text == text)).scalar()
    if tag is None:
        raise NotFound("GCN event tag not found")
    session.delete(tag)
    if text == "retracted":
        event.retracted = False


def property_keys(session: Session, model) -> list[str]:
    keys = sa.select(sa.func.jsonb_object_keys(model.data).label("k")).subquery()
    return session.execute(sa.select(keys.c.k).distinct().order_by(keys.c.k)).scalars().all()


# -- triggered allocations -------------------------------------------------------------------------------

def triggers(session: Session, dateobs: str, allocation_id: int | None = None) -> list[dict]:
    G = models.GcnTrigger
    stmt = sa.select(G).where(G.dateobs == _utc(dateobs.strip(), "dateobs"))
    if allocation_id is not None:
        stmt = stmt.where(G.allocation_id == allocation_id)
    return [t.to_dict() for t in session.execute(stmt.order_by(G.id)).scalars()]


_TRUE = ("True", "true", "t", "T", True, "triggered")
_FALSE = ("False", "false", "f", "F", False, "passed")


def set_trigger(session: Session, principal, dateobs: str, allocation_id: int, triggered) -> dict:
    if triggered not in _TRUE and triggered not in _FALSE:
        raise ValidationError("Invalid triggered status: true/triggered or false/passed", field="triggered")
    value = triggered in _TRUE
    G = models.GcnTrigger
    when = _utc(dateobs.strip(), "dateobs")
    row = session.execute(sa.select(G).where(G.dateobs == when, G.allocation_id == allocation_id)).scalar()
    if row is None:
        find_event(session, dateobs.strip(), principal, missing=ValidationError)
        if session.get(models.Allocation, allocation_id) is None:
            raise ValidationError(f"No allocation with ID: {allocation_id}", field="allocation_id")
        row = G(dateobs=when, allocation_id=allocation_id, triggered=value)
        session.add(row)
    else:
        row.triggered = value
    session.flush()
    return row.to_dict()


def delete_trigger(session: Session, dateobs: str, allocation_id: int) -> dict:
    G = models.GcnTrigger
    row = session.execute(sa.select(G).where(G.dateobs == _utc(dateobs.strip(), "dateobs"),
                                             G.allocation_id == allocation_id)).scalar()
    if row is None:
        raise ValidationError(f"No gcn triggered status for dateobs={dateobs} and allocation_id={allocation_id}",
                              field="allocation_id")
    out = row.to_dict()
    session.delete(row)
    return out


# -- crossmatch ------------------------------------------------------------------------------------------

def crossmatch_state(session: Session, principal, dateobs: str) -> list[dict]:
    """Per localization: how many objects the crossmatch placed in it (ours is done when a map or an alert
    arrives, so there is no pending state)."""
    event = find_event(session, dateobs.strip(), principal, missing=ValidationError)
    OL = models.ObjLocalization
    out = []
    for loc in event.localizations:
        n = session.execute(sa.select(sa.func.count()).where(OL.localization_id == loc.id)).scalar_one()
        out.append({"localization_id": loc.id, "localization_name": loc.localization_name, "status": "done",
                    "n_matches": n, "error": None})
    return out


def requeue_crossmatch(session: Session, principal, dateobs: str, recent_days: float = RECENT_DAYS) -> dict:
    """Crossmatch the event's maps again with the objects that passed a filter in its first ``recent_days``
    (``ingest.crossmatch_recent_days``: the window a new map gets)."""
    event = find_event(session, dateobs.strip(), principal, missing=ValidationError)
    n = 0
    for loc in event.localizations:
        n += crossmatch_objects(session, loc, stored_skymap(loc), since=event.dateobs,
                                until=event.dateobs + timedelta(days=recent_days))
    return {"filters_requeued": len(event.localizations), "localizations": len(event.localizations), "matches": n}


def localization_product(session: Session, principal, id1: int, id2: int) -> tuple[bytes, str]:
    """SkyPortal's localization crossmatch: the normalised product of two maps (at NSIDE 512) as a
    multi-order FITS file."""
    from broker.sky.mapio import write_moc_fits

    L = models.Localization
    locs = []
    for i in (id1, id2):
        loc = session.get(L, i)
        if loc is not None and principal is not None and not principal.is_admin:
            if session.execute(readable_events(principal).where(models.GcnEvent.dateobs == loc.dateobs)).first() is None:
                loc = None
        if loc is None:
            raise NotFound("Localization not found")
        locs.append(loc)
    maps = [stored_skymap(loc) for loc in locs]
    flat = K.rasterize(maps[0].uniq, maps[0].probdensity, 9) * K.rasterize(maps[1].uniq, maps[1].probdensity, 9)
    total = flat.sum()
    if not total > 0:
        raise ValidationError("The two localizations do not overlap", field="id2")
    uniq, dens = K.flat_to_moc(flat / total, nest=True)
    keep = dens > 0
    data = write_moc_fits(SkyMap(uniq[keep], dens[keep]), {})
    return data, f"{locs[0].localization_name}_{locs[1].localization_name}.fits"


# -- sources in a GCN event --------------------------------------------------------------------------------

def _event_or_400(session: Session, principal, dateobs: str) -> models.GcnEvent:
    try:
        return find_event(session, dateobs, principal)
    except NotFound:
        raise ValidationError(f"GCN event not found for dateobs: {dateobs}", field="dateobs") from None


def sources_in_gcn(session: Session, principal, dateobs: str, ids: list[str]) -> list[dict]:
    event = _event_or_400(session, principal, dateobs)
    G = models.GcnEventObj
    stmt = sa.select(G).where(G.dateobs == event.dateobs)
    if ids:
        stmt = stmt.where(G.obj_id.in_(ids))
    return [r.to_dict() for r in session.execute(stmt.order_by(G.id)).scalars()]


def set_source_in_gcn(session: Session, principal, dateobs: str, body: dict) -> dict:
    from broker.objects.objs import get_visible_obj

    event = _event_or_400(session, principal, dateobs)
    for name in ("start_date", "end_date"):
        _utc(body[name], name)
    try:
        cumprob = float(body["localization_cumprob"])
    except ValueError:
        raise ValidationError("Invalid localization_cumprob: not a number", field="localization_cumprob") from None
    if not 0 < cumprob <= 1:
        raise ValidationError("Invalid localization_cumprob: must be in (0, 1]", field="localization_cumprob")
    L = models.Localization
    if session.execute(sa.select(L.id).where(L.dateobs == event.dateobs,
                                             L.localization_name == body["localization_name"])).first() is None:
        raise ValidationError("Localization not found", field="localization_name")
    try:
        get_visible_obj(session, principal, body["source_id"])
    except NotFound:
        raise ValidationError(f"Invalid source_id: no source {body['source_id']!r}", field="source_id") from None
    G = models.GcnEventObj
    row = session.execute(sa.select(G).where(G.dateobs == event.dateobs, G.obj_id == body["source_id"])).scalar()
    if row is not None:
        if (row.status == body["status"] and row.explanation == body.get("explanation")
                and row.notes == body.get("notes")):
            raise ValidationError("Source is already confirmed/rejected in this localization with the same "
                                  "explanation and notes", field="status")
    else:
        row = G(dateobs=event.dateobs, obj_id=body["source_id"])
        session.add(row)
    row.status, row.confirmer_id = body["status"], principal.user_id
    for k in ("explanation", "notes"):
        if body.get(k) is not None:
            setattr(row, k, body[k])
    session.flush()
    return {"id": row.id}


def _source_row(session: Session, principal, dateobs: str, source_id: str, what: str) -> models.GcnEventObj:
    event = _event_or_400(session, principal, dateobs)
    G = models.GcnEventObj
    row = session.execute(sa.select(G).where(G.dateobs == event.dateobs, G.obj_id == source_id.strip())).scalar()
    if row is None:
        raise ValidationError(f"Source is not {what} in this GCN event", field="source_id")
    return row


def update_source_in_gcn(session: Session, principal, dateobs: str, source_id: str, body: dict) -> dict:
    row = _source_row(session, principal, dateobs, source_id, "confirmed/rejected")
    row.status, row.confirmer_id = body["status"], principal.user_id
    for k in ("explanation", "notes"):
        if body.get(k) is not None:
            setattr(row, k, body[k])
    return {"id": row.id}


def delete_source_in_gcn(session: Session, principal, dateobs: str, source_id: str) -> dict:
    row = _source_row(session, principal, dateobs, source_id, "confirmed or rejected")
    session.delete(row)
    return {"id": row.id}
