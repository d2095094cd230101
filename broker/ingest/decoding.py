"""Decoding survey alerts and normalising them into one internal record.

Formats (a stream's ``altdata.format``):

* ``ztf_avro``  — an Avro object-container file per message, writer schema embedded (ZTF's current
  ``objectId`` schema and the old ``alertId`` one).
* ``lsst_avro`` — Confluent wire format: magic byte 0, 4-byte big-endian schema id, schemaless Avro
  body. Schema id ``MMmm`` is LSST schema version ``MM.mm``; the schemas come from the
  ``lsst-alert-packet`` package.
* ``json``      — a JSON object shaped like a ZTF alert (``objectId``/``alertId``, ``candidate``,
  ``prv_candidates``) or an LSST alert (``diaSource``, ``prvDiaSources``, ``diaObject``).

Everything becomes an :class:`Alert`: fluxes in µJy (AB zero point 23.9), times in MJD, SkyPortal
band names (``ztfg``/``ztfr``/``ztfi``, ``lsstu``…``lssty``).
"""

from __future__ import annotations

import io
import json
import math
import struct
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import fastavro

from broker.ingest.containers import OneRecordReader

ZP_UJY = 23.9  # AB magnitude of 1 µJy
LN10_OVER_2P5 = math.log(10.0) / 2.5
DETECTION_NSIGMA = 5.0  # upper limits are 5-sigma, as SkyPortal assumes
JD_MJD = 2400000.5
MJD_MIN, MJD_MAX = 40000.0, 100000.0  # 1968 .. 2132: anything else is not a valid observation time

ZTF_BANDS = {1: "ztfg", 2: "ztfr", 3: "ztfi"}
LSST_BANDS = {b: f"lsst{b}" for b in "ugrizy"}
FORMATS = ("ztf_avro", "lsst_avro", "babamul_avro", "json", "gcn")  # gcn: notices (JSON or VOEvent XML), see broker.sky.gcn
# Babamul (BOOM's public ZTF and LSST stream) names bands by their letter; fluxes are LSST nJy, and for ZTF
# µJy x 1e9 (BOOM multiplies ZTF's µJy by 1e9 and calls it nJy): to µJy, x 1e-3 and x 1e-9
BABAMUL = {"BabamulZtfAlert": ("ZTF", {"g": "ztfg", "r": "ztfr", "i": "ztfi"}, 1e-9),
           "BabamulLsstAlert": ("LSST", LSST_BANDS, 1e-3)}
TAI_UTC_DAYS = 37.0 / 86400  # TAI - UTC since 2017: Babamul's jd is UTC, LSST's midpointMjdTai TAI

ZTF_SCORES = ("rb", "drb", "sgscore1", "classtar")
LSST_SCORES = ("reliability", "extendedness")


class AlertError(ValueError):
    """The message cannot be decoded or is not a valid alert; the text says why."""


@dataclass(slots=True)
class Point:
    """One photometric point: a detection (flux set) or an upper limit (flux None)."""

    mjd: float
    band: str
    flux: float | None  # µJy; None for an upper limit
    fluxerr: float  # µJy (for a limit: limiting flux / 5)
    ra: float | None = None
    dec: float | None = None
    limiting_mag: float | None = None
    alert_id: int | None = None


@dataclass(slots=True)
class Alert:
    """The survey-independent record the pipeline works on."""

    survey: str  # "ZTF" | "LSST"
    object_id: str | None  # survey's object name; None: decide by position
    alert_id: int
    ra: float
    dec: float
    mjd: float
    band: str
    flux: float  # µJy
    fluxerr: float  # µJy
    detections: list[Point]  # includes the triggering detection
    upper_limits: list[Point]
    scores: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # the survey's scalar fields of this detection
    classifications: list[dict] = field(default_factory=list)  # carried by JSON alerts
    # image stamps carried by the alert: "Science" / "Template" / "Difference" -> bytes (gzipped FITS)
    cutouts: dict[str, bytes] = field(default_factory=dict)

    @property
    def mag(self) -> float | None:
        return ZP_UJY - 2.5 * math.log10(self.flux) if self.flux > 0 else None

    @property
    def magerr(self) -> float | None:
        return self.fluxerr / self.flux / LN10_OVER_2P5 if self.flux > 0 else None

    @property
    def ndet(self) -> int:
        return len(self.detections)


# -- unit helpers ---------------------------------------------------------------------------

MAG_MIN, MAG_MAX = -30.0, 50.0  # AB magnitudes outside this range are not observations (Sun: -26.7)


def _check_mag(mag: float, name: str) -> None:
    if not MAG_MIN <= mag <= MAG_MAX:
        raise AlertError(f"field {name} is not a magnitude in [{MAG_MIN:g}, {MAG_MAX:g}]: {mag!r}")


def mag_to_flux(mag: float, magerr: float, name: str = "magpsf") -> tuple[float, float]:
    """AB mag ± err → (flux, fluxerr) in µJy; AlertError naming ``name`` for an impossible magnitude."""
    _check_mag(mag, name)
    if not 0.0 <= magerr <= 100.0:
        raise AlertError(f"field {name} has an impossible error: {magerr!r}")
    flux = 10.0 ** (-0.4 * (mag - ZP_UJY))
    return flux, flux * magerr * LN10_OVER_2P5


def limit_to_fluxerr(limiting_mag: float, nsigma: float = DETECTION_NSIGMA, name: str = "diffmaglim") -> float:
    """An n-sigma limiting AB magnitude → the 1-sigma flux error in µJy."""
    _check_mag(limiting_mag, name)
    return 10.0 ** (-0.4 * (limiting_mag - ZP_UJY)) / nsigma


def _opt_num(value: Any, name: str) -> float | None:
    """An optional finite number (None stays None)."""
    return None if value is None else _num(value, name)


def _num(value: Any, name: str) -> float:
    if value is None or isinstance(value, bool):
        raise AlertError(f"field {name} is missing")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise AlertError(f"field {name} is not a number: {value!r}") from None
    if not math.isfinite(out):
        raise AlertError(f"field {name} is not finite: {value!r}")
    return out


def _name(value: Any, name: str, max_len: int = 256) -> str:
    """A name stored as text: a non-empty printable string."""
    if not isinstance(value, str) or not value or len(value) > max_len or not value.isprintable():
        raise AlertError(f"field {name} must be a printable string of 1 to {max_len} characters, got {value!r:.80}")
    return value


def _int64(value: Any, name: str) -> int | None:
    """An optional identifier that must fit a BIGINT column."""
    if value is None:
        return None
    try:
        out = int(value)
    except (TypeError, ValueError):
        raise AlertError(f"field {name} is not an integer: {value!r}") from None
    if not -(1 << 63) <= out < (1 << 63):
        raise AlertError(f"field {name} is out of the 64-bit range: {value!r}")
    return out


def _check_position(ra: float, dec: float, where: str) -> None:
    if not (0.0 <= ra < 360.0):
        raise AlertError(f"{where}.ra out of range [0, 360): {ra}")
    if not (-90.0 <= dec <= 90.0):
        raise AlertError(f"{where}.dec out of range [-90, 90]: {dec}")


def _check_mjd(mjd: float, where: str) -> None:
    if not (MJD_MIN <= mjd <= MJD_MAX):
        raise AlertError(f"{where} is not a valid observation time (MJD {mjd})")


def _scalars(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is None or isinstance(v, (int, float, str, bool))}


# -- ZTF --------------------------------------------------------------------------------------

def _ztf_positive(isdiffpos: Any) -> bool:
    return str(isdiffpos).lower() in ("t", "1", "true")


def normalise_ztf(packet: dict) -> Alert:
    cand = packet.get("candidate")
    if not isinstance(cand, dict):
        raise AlertError("ZTF alert has no candidate record")
    object_id = packet.get("objectId")
    if object_id is not None:
        object_id = _name(object_id, "objectId")
    candid = packet.get("candid", cand.get("candid"))
    if candid is None:
        raise AlertError("ZTF alert has no candid")
    alert_id = _int64(candid, "candid")
    ra, dec = _num(cand.get("ra"), "candidate.ra"), _num(cand.get("dec"), "candidate.dec")
    _check_position(ra, dec, "candidate")
    mjd = _num(cand.get("jd"), "candidate.jd") - JD_MJD
    _check_mjd(mjd, "candidate.jd")
    fid = cand.get("fid")
    if fid not in ZTF_BANDS:
        raise AlertError(f"candidate.fid must be 1, 2 or 3, got {fid!r}")
    mag, magerr = _num(cand.get("magpsf"), "candidate.magpsf"), _num(cand.get("sigmapsf"), "candidate.sigmapsf")
    flux, fluxerr = mag_to_flux(mag, magerr, "candidate.magpsf")
    if not _ztf_positive(cand.get("isdiffpos")):
        flux = -flux
    band = ZTF_BANDS[fid]
    current = Point(mjd, band, flux, fluxerr, ra, dec, _opt_num(cand.get("diffmaglim"), "candidate.diffmaglim"),
                    alert_id)
    detections, limits = [current], []
    for i, prv in enumerate(packet.get("prv_candidates") or ()):
        where = f"prv_candidates[{i}]"
        try:
            pmjd = _num(prv.get("jd"), f"{where}.jd") - JD_MJD
            pband = ZTF_BANDS.get(prv.get("fid"))
            if pband is None:
                raise AlertError(f"{where}.fid must be 1, 2 or 3")
            if prv.get("candid") is not None and prv.get("magpsf") is not None:
                pcandid = _int64(prv["candid"], f"{where}.candid")
                if pcandid == alert_id:
                    continue  # the old schema repeats the current detection in its history
                _check_mjd(pmjd, f"{where}.jd")
                pf, pe = mag_to_flux(_num(prv["magpsf"], f"{where}.magpsf"),
                                     _num(prv.get("sigmapsf"), f"{where}.sigmapsf"), f"{where}.magpsf")
                if not _ztf_positive(prv.get("isdiffpos")):
                    pf = -pf
                detections.append(Point(pmjd, pband, pf, pe, _opt_num(prv.get("ra"), f"{where}.ra"),
                                        _opt_num(prv.get("dec"), f"{where}.dec"),
                                        _opt_num(prv.get("diffmaglim"), f"{where}.diffmaglim"), pcandid))
            elif prv.get("diffmaglim") is not None:
                lim = _num(prv["diffmaglim"], f"{where}.diffmaglim")
                _check_mjd(pmjd, f"{where}.jd")
                limits.append(Point(pmjd, pband, None, limit_to_fluxerr(lim, name=f"{where}.diffmaglim"),
                                    limiting_mag=lim))
        except (TypeError, AttributeError) as exc:
            raise AlertError(f"{where} is malformed: {exc}") from None
    scores = {k: float(cand[k]) for k in ZTF_SCORES if isinstance(cand.get(k), (int, float))}
    return Alert("ZTF", object_id, alert_id, ra, dec, mjd, band, flux, fluxerr, detections, limits,
                 scores, _scalars(cand), _classifications(packet), _cutouts(packet))


# -- LSST -------------------------------------------------------------------------------------

def _lsst_object_id(packet: dict, src: dict) -> str:
    obj = packet.get("diaObject")
    if isinstance(obj, dict) and obj.get("diaObjectId") is not None:
        return f"LSST{obj['diaObjectId']}"
    if src.get("diaObjectId") is not None:
        return f"LSST{src['diaObjectId']}"
    if src.get("ssObjectId") is not None:
        return f"LSSTss{src['ssObjectId']}"
    return f"LSSTsrc{src['diaSourceId']}"


def _lsst_mjd(src: dict) -> Any:
    # schemas before v5 call it midPointTai
    return src.get("midpointMjdTai", src.get("midPointTai"))


def _lsst_dec(src: dict) -> Any:
    # schemas before v5 call it decl
    return src.get("dec", src.get("decl"))


def _lsst_point(src: dict, where: str) -> Point:
    mjd = _num(_lsst_mjd(src), f"{where}.midpointMjdTai")
    _check_mjd(mjd, f"{where}.midpointMjdTai")
    band = LSST_BANDS.get(src.get("band"))
    if band is None:
        raise AlertError(f"{where}.band must be one of ugrizy, got {src.get('band')!r}")
    flux = _num(src.get("psfFlux"), f"{where}.psfFlux") / 1000.0  # nJy -> µJy
    fluxerr = _num(src.get("psfFluxErr"), f"{where}.psfFluxErr") / 1000.0
    return Point(mjd, band, flux, fluxerr, _opt_num(src.get("ra"), f"{where}.ra"),
                 _opt_num(_lsst_dec(src), f"{where}.dec"), None, _int64(src.get("diaSourceId"), f"{where}.diaSourceId"))


def normalise_lsst(packet: dict) -> Alert:
    src = packet.get("diaSource")
    if not isinstance(src, dict):
        raise AlertError("LSST alert has no diaSource record")
    if src.get("diaSourceId") is None:
        raise AlertError("diaSource.diaSourceId is missing")
    alert_id = _int64(packet.get("diaSourceId") or packet.get("alertId") or src["diaSourceId"], "alertId")
    ra, dec = _num(src.get("ra"), "diaSource.ra"), _num(_lsst_dec(src), "diaSource.dec")
    _check_position(ra, dec, "diaSource")
    current = _lsst_point(src, "diaSource")
    detections = [current]
    for i, prv in enumerate(packet.get("prvDiaSources") or ()):
        if prv.get("diaSourceId") == src["diaSourceId"]:
            continue
        detections.append(_lsst_point(prv, f"prvDiaSources[{i}]"))
    limits = []
    for i, lim in enumerate(packet.get("prvDiaNondetectionLimits") or ()):
        mjd = _num(lim.get("midpointMjdTai"), f"prvDiaNondetectionLimits[{i}].midpointMjdTai")
        band = LSST_BANDS.get(lim.get("band"))
        noise = lim.get("diaNoise")
        if band is None or noise is None:
            continue
        _check_mjd(mjd, f"prvDiaNondetectionLimits[{i}].midpointMjdTai")
        noise = _num(noise, f"prvDiaNondetectionLimits[{i}].diaNoise") / 1000.0
        if noise <= 0:
            raise AlertError(f"prvDiaNondetectionLimits[{i}].diaNoise must be positive")
        limits.append(Point(mjd, band, None, noise,
                            limiting_mag=ZP_UJY - 2.5 * math.log10(DETECTION_NSIGMA * noise)))
    scores = {k: float(src[k]) for k in LSST_SCORES if isinstance(src.get(k), (int, float))}
    return Alert("LSST", _lsst_object_id(packet, src), alert_id, ra, dec, current.mjd, current.band,
                 current.flux, current.fluxerr, detections, limits, scores, _scalars(src),
                 _classifications(packet), _cutouts(packet))


# -- Babamul ----------------------------------------------------------------------------------

def _babamul_point(p: dict, where: str, survey: str, bands: dict, to_ujy: float, limit: bool = False) -> Point:
    mjd = _num(p.get("jd"), f"{where}.jd") - JD_MJD + (TAI_UTC_DAYS if survey == "LSST" else 0.0)
    _check_mjd(mjd, f"{where}.jd")
    band = bands.get(p.get("band"))
    if band is None:
        raise AlertError(f"{where}.band must be one of {''.join(bands)} for {survey}, got {p.get('band')!r}")
    fluxerr = _num(p.get("psfFluxErr"), f"{where}.psfFluxErr") * to_ujy
    if limit:  # BOOM keeps a limit as its flux error (limit / 5, as ours): back to the 5-sigma magnitude
        if fluxerr <= 0:
            raise AlertError(f"{where}.psfFluxErr must be positive")
        return Point(mjd, band, None, fluxerr, limiting_mag=ZP_UJY - 2.5 * math.log10(DETECTION_NSIGMA * fluxerr))
    return Point(mjd, band, _num(p.get("psfFlux"), f"{where}.psfFlux") * to_ujy, fluxerr,
                 _opt_num(p.get("ra"), f"{where}.ra"), _opt_num(p.get("dec"), f"{where}.dec"))


def _babamul_object_id(survey: str, object_id: str) -> str:
    """Babamul's objectId, named as our own decoders name the survey's objects (LSST: LSST<diaObjectId>,
    LSSTss<ssObjectId>), so that both paths make one object."""
    if survey == "ZTF":
        return object_id
    return f"LSSTss{object_id[3:]}" if object_id.startswith("sso") else f"LSST{object_id}"


def normalise_babamul(packet: dict, record: str) -> Alert:
    """A Babamul alert (record ``BabamulZtfAlert`` / ``BabamulLsstAlert``): BOOM's candidate (the survey's own
    fields, plus ``psfFlux``/``band``/``jd``), the light curve as ``prv_candidates`` {jd, psfFlux, psfFluxErr,
    band, ra, dec}, ZTF's ``prv_nondetections`` as upper limits. Forced photometry (``fp_hists``) is not
    stored, as for the surveys' own alerts; nor are cutouts (Babamul carries none)."""
    survey, bands, to_ujy = BABAMUL[record]
    cand = packet.get("candidate")
    if not isinstance(cand, dict):
        raise AlertError("Babamul alert has no candidate record")
    object_id = _babamul_object_id(survey, _name(packet.get("objectId"), "objectId"))
    alert_id = _int64(packet.get("candid"), "candid")
    ra, dec = _num(cand.get("ra"), "candidate.ra"), _num(cand.get("dec"), "candidate.dec")
    _check_position(ra, dec, "candidate")
    if survey == "LSST":
        mjd = _num(cand.get("midpointMjdTai"), "candidate.midpointMjdTai")
    else:
        mjd = _num(cand.get("jd"), "candidate.jd") - JD_MJD
    _check_mjd(mjd, "candidate")
    band = bands.get(cand.get("band"))
    if band is None:
        raise AlertError(f"candidate.band must be one of {''.join(bands)} for {survey}, got {cand.get('band')!r}")
    flux = _num(cand.get("psfFlux"), "candidate.psfFlux") * to_ujy
    fluxerr = _num(cand.get("psfFluxErr"), "candidate.psfFluxErr") * to_ujy
    current = Point(mjd, band, flux, fluxerr, ra, dec, _opt_num(cand.get("diffmaglim"), "candidate.diffmaglim"),
                    alert_id)
    detections = [current]
    for i, prv in enumerate(packet.get("prv_candidates") or ()):
        point = _babamul_point(prv, f"prv_candidates[{i}]", survey, bands, to_ujy)
        if point.band == band and abs(point.mjd - mjd) < 1e-6:
            continue  # the light curve holds this detection too
        detections.append(point)
    limits = [_babamul_point(p, f"prv_nondetections[{i}]", survey, bands, to_ujy, limit=True)
              for i, p in enumerate(packet.get("prv_nondetections") or ())]
    names = ZTF_SCORES if survey == "ZTF" else LSST_SCORES
    scores = {k: float(cand[k]) for k in names if isinstance(cand.get(k), (int, float))
              and not isinstance(cand.get(k), bool)}
    return Alert(survey, object_id, alert_id, ra, dec, mjd, band, flux, fluxerr, detections, limits, scores,
                 _scalars(cand))


# -- cutouts ---------------------------------------------------------------------------------

CUTOUT_KINDS = ("Science", "Template", "Difference")


def _cutouts(packet: dict) -> dict[str, bytes]:
    """The alert's image stamps (``cutoutScience`` ...: ZTF's {fileName, stampData}, LSST's bytes);
    kept as they are (drawn into thumbnails only when stored, see broker.objects.thumbnails)."""
    out = {}
    for kind in CUTOUT_KINDS:
        value = packet.get(f"cutout{kind}")
        if isinstance(value, dict):
            value = value.get("stampData")
        if isinstance(value, bytes) and value:
            out[kind] = value
    return out


# -- classifications carried by JSON alerts ---------------------------------------------------

def _classifications(packet: dict) -> list[dict]:
    raw = packet.get("classifications")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise AlertError("classifications must be a list of {classification, probability}")
    out = []
    for i, c in enumerate(raw):
        if not isinstance(c, dict):
            raise AlertError(f"classifications[{i}] needs a 'classification' string")
        _name(c.get("classification"), f"classifications[{i}].classification")
        p = c.get("probability")
        if p is not None and (isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0):
            raise AlertError(f"classifications[{i}].probability must be between 0 and 1")
        out.append({"classification": c["classification"], "probability": p})
    return out


# -- decoding ---------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _lsst_registry():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lsst.alert.packet import SchemaRegistry

        return SchemaRegistry.all_schemas_from_filesystem()


@lru_cache(maxsize=64)
def lsst_schema(schema_id: int):
    """The parsed LSST schema for a Confluent schema id (e.g. 1101 = v11.1)."""
    registry = _lsst_registry()
    if schema_id not in registry.known_ids:
        raise AlertError(f"unknown LSST schema id {schema_id} (known: {sorted(registry.known_ids)})")
    return fastavro.parse_schema(registry.get_by_id(schema_id).definition)


def lsst_schema_ids() -> list[int]:
    return sorted(_lsst_registry().known_ids)


def encode_lsst(packet: dict, schema_id: int) -> bytes:
    """Confluent wire format: magic 0, big-endian schema id, schemaless Avro body."""
    buf = io.BytesIO()
    buf.write(struct.pack(">bI", 0, schema_id))
    fastavro.schemaless_writer(buf, lsst_schema(schema_id), packet)
    return buf.getvalue()


_CONTAINERS = OneRecordReader()  # one-record Avro containers (ZTF, Babamul), their schemas parsed once


def decode_packet(raw: bytes, fmt: str) -> dict:
    """Raw Kafka message value → the survey's packet (a dict)."""
    if fmt == "ztf_avro":
        fast = _CONTAINERS.read(raw)
        if fast is not None:
            return fast[0]
        try:
            records = list(fastavro.reader(io.BytesIO(raw)))
        except Exception as exc:  # fastavro raises many types on corrupt input
            raise AlertError(f"not a ZTF Avro container: {type(exc).__name__}: {exc}") from None
        if len(records) != 1:
            raise AlertError(f"a ZTF Avro message must hold exactly one alert, found {len(records)}")
        return records[0]
    if fmt == "lsst_avro":
        if len(raw) < 5 or raw[0] != 0:
            raise AlertError("not in Confluent wire format (magic byte 0 + 4-byte schema id)")
        (schema_id,) = struct.unpack(">I", raw[1:5])
        schema = lsst_schema(schema_id)
        try:
            return fastavro.schemaless_reader(io.BytesIO(raw[5:]), schema)
        except Exception as exc:  # truncated or foreign bodies raise EOFError, ValueError, ...
            raise AlertError(f"LSST Avro body does not match schema {schema_id}: {type(exc).__name__}: {exc}") from None
    if fmt == "babamul_avro":
        return decode_babamul(raw)[0]
    if fmt == "json":
        try:
            packet = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise AlertError(f"not JSON: {exc}") from None
        except RecursionError:
            raise AlertError("not an alert: JSON nested too deeply") from None
        if not isinstance(packet, dict):
            raise AlertError("a JSON alert must be an object")
        return packet
    raise AlertError(f"unknown alert format {fmt!r}: must be one of {FORMATS}")


def decode_babamul(raw: bytes) -> tuple[dict, str]:
    """A Babamul message: an Avro container holding one alert, its schema embedded (no Confluent framing);
    returns (the alert, its record name)."""
    fast = _CONTAINERS.read(raw)
    if fast is not None and fast[1] in BABAMUL:
        return fast
    try:
        reader = fastavro.reader(io.BytesIO(raw))
        records = list(reader)
    except Exception as exc:  # fastavro raises many types on corrupt input
        raise AlertError(f"not a Babamul Avro container: {type(exc).__name__}: {exc}") from None
    if len(records) != 1:
        raise AlertError(f"a Babamul message must hold exactly one alert, found {len(records)}")
    record = reader.writer_schema.get("name") if isinstance(reader.writer_schema, dict) else None
    if record not in BABAMUL:
        raise AlertError(f"not a Babamul alert: record {record!r} is not one of {sorted(BABAMUL)}")
    return records[0], record


def normalise(packet: dict) -> Alert:
    if "diaSource" in packet:
        return normalise_lsst(packet)
    if "candidate" in packet:
        return normalise_ztf(packet)
    raise AlertError("not a ZTF (candidate) or LSST (diaSource) alert")


def decode(raw: bytes, fmt: str) -> Alert:
    """Raw message → :class:`Alert`, or :class:`AlertError` saying what is wrong."""
    if raw is None:
        raise AlertError("empty message (tombstone)")
    try:
        if fmt == "babamul_avro":
            return normalise_babamul(*decode_babamul(raw))
        return normalise(decode_packet(raw, fmt))
    except AlertError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError, RecursionError) as exc:
        raise AlertError(f"malformed alert: {type(exc).__name__}: {exc}") from None
