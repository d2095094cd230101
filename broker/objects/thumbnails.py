"""Thumbnails: PNG images of an object, uploaded (``POST /api/thumbnail``, as Kowalski posts them) or
made at ingestion from the cutouts alerts carry (as Kowalski's ``make_thumbnail`` makes them).

The PNG bytes are stored in the row (see :mod:`models.thumbnails` for why) and served by
``GET /api/thumbnail/{id}/image``, which every thumbnail's ``public_url`` names.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import io
import logging
import math
import struct
import warnings
import zlib
from datetime import datetime

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

import models
from models.enums import THUMBNAIL_TYPES

from broker.access.auth import Principal
from broker.errors import ValidationError
from broker.objects.objs import register_details, visible_obj_clause
from broker.runtime.db import copy_text_rows, register_staging

log = logging.getLogger(__name__)

T = models.Thumbnail
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MIN_SIDE, MAX_SIDE = 16, 500  # pixels, as SkyPortal
ALERT_TYPES = (("new", "Science"), ("ref", "Template"), ("sub", "Difference"))


# -- PNG ---------------------------------------------------------------------------------------

_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel


def check_png(data: bytes, field: str = "data") -> tuple[int, int]:
    """(width, height) of a well-formed PNG: signature, chunk CRCs, IHDR first, IDAT that inflates to
    exactly the image's size, IEND last. Else a ValidationError naming ``field``."""
    def bad(why: str):
        return ValidationError(f"Invalid {field}: not a valid PNG image ({why})", field=field)

    if not data.startswith(PNG_SIGNATURE):
        raise bad("no PNG signature")
    pos, chunks, idat = len(PNG_SIGNATURE), [], []
    while pos < len(data):
        if pos + 12 > len(data):
            raise bad("truncated chunk")
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if len(body) != length or pos + 12 + length > len(data):
            raise bad("truncated chunk")
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        if zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
            raise bad(f"bad CRC in a {kind!r} chunk")
        chunks.append(kind)
        if kind == b"IHDR":
            ihdr = body
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + length
        if kind == b"IEND":
            break
    if not chunks or chunks[0] != b"IHDR" or len(ihdr) != 13:
        raise bad("no IHDR header")
    if chunks[-1] != b"IEND" or pos != len(data):
        raise bad("no IEND at the end")
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", ihdr)
    if colour not in _CHANNELS or depth not in (1, 2, 4, 8, 16) or not idat:
        raise bad("unsupported header or no image data")
    if colour == 3 and b"PLTE" not in chunks:
        raise bad("a palette image without its palette")
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise ValidationError(f"Invalid {field}: thumbnails must be between ({MIN_SIDE}, {MIN_SIDE}) and "
                              f"({MAX_SIDE}, {MAX_SIDE}) pixels, this one is ({width}, {height})", field=field)
    if interlace == 0:
        row = (width * _CHANNELS[colour] * depth + 7) // 8
        try:
            raw = zlib.decompressobj().decompress(b"".join(idat), height * (row + 1) + 1)
        except zlib.error:
            raise bad("corrupt image data") from None
        if len(raw) != height * (row + 1):
            raise bad("image data of the wrong size")
    return width, height


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def encode_png(rgb: np.ndarray, level: int = 6) -> bytes:
    """An 8-bit RGB PNG of an (h, w, 3) uint8 array."""
    h, w, _ = rgb.shape
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rgb.reshape(h, w * 3)], axis=1).tobytes()
    return (PNG_SIGNATURE + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(raw, level)) + _chunk(b"IEND", b""))


def encode_png_palette(index: np.ndarray, palette: np.ndarray, level: int = 1) -> bytes:
    """An 8-bit palette PNG of an (h, w) uint8 array of indices into ``palette`` ((n, 3) uint8): a third
    of the RGB bytes to compress. Each row is PNG-filtered: "Up" (2) when it repeats the row above, else
    "Sub" (1), so a scaled-up image (rows and pixels repeated) is mostly zeros, which zlib (level 1)
    compresses fast and small: a noisy 189-pixel cutout takes ~5 KB, not ~30."""
    h, w = index.shape
    index = index.astype(np.uint8)
    sub = index.copy()
    sub[:, 1:] -= index[:, :-1]  # (uint8: modulo 256, as the filter is defined)
    same = np.zeros(h, dtype=bool)
    same[1:] = np.all(index[1:] == index[:-1], axis=1)
    rows = np.where(same[:, None], 0, sub)
    raw = np.concatenate([np.where(same, 2, 1).astype(np.uint8)[:, None], rows], axis=1).tobytes()
    return (PNG_SIGNATURE + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 3, 0, 0, 0))
            + _chunk(b"PLTE", palette.astype(np.uint8).tobytes())
            + _chunk(b"IDAT", zlib.compress(raw, level)) + _chunk(b"IEND", b""))


SCALE = 3  # a 63-pixel cutout becomes 189 pixels a side (Kowalski renders 168)
CUTOUT_ERRORS = (OSError, EOFError, ValueError, TypeError, KeyError, IndexError, ArithmeticError, zlib.error)
_FITS_DTYPES = {8: ">u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}


def _fits_image(raw: bytes) -> np.ndarray:
    """The 2-D image of a FITS file's primary HDU, read directly (alert cutouts are this simple); other
    layouts (an image in an extension, ...) go through astropy.io.fits."""
    if raw[:9] != b"SIMPLE  =":
        raise ValueError("not a FITS file")
    cards: dict[str, str] = {}
    pos = 0
    while True:
        if pos + 80 > len(raw):
            raise ValueError("FITS header has no END card")
        card = raw[pos:pos + 80].decode("ascii", "replace")
        pos += 80
        if card.startswith("END") and not card[3:].strip():
            break
        if card[8:10] == "= ":
            cards[card[:8].strip()] = card[10:].split("/")[0].strip()
    start = -(-pos // 2880) * 2880
    try:
        bitpix, naxis = int(cards["BITPIX"]), int(cards["NAXIS"])
        shape = (int(cards.get("NAXIS2", 0)), int(cards.get("NAXIS1", 0)))
    except KeyError as exc:
        raise ValueError(f"FITS header lacks {exc}") from None
    if naxis != 2 or bitpix not in _FITS_DTYPES or cards.get("EXTEND", "F") == "T" and shape[0] * shape[1] == 0:
        return _fits_image_astropy(raw)
    n = shape[0] * shape[1]
    data = np.frombuffer(raw, dtype=_FITS_DTYPES[bitpix], count=n, offset=start).reshape(shape).astype(float)
    scale, zero = float(cards.get("BSCALE", 1.0)), float(cards.get("BZERO", 0.0))
    return data * scale + zero if (scale, zero) != (1.0, 0.0) else data


def _fits_image_astropy(raw: bytes) -> np.ndarray:
    from astropy.io import fits

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(io.BytesIO(raw), ignore_missing_simple=True) as hdul:
            for hdu in hdul:
                if hdu.data is not None and np.ndim(hdu.data) == 2:
                    return np.array(hdu.data, dtype=float)
    raise ValueError("FITS file has no 2-D image")


def _bone_lut() -> np.ndarray:
    """matplotlib's "bone" colour map (Kowalski's), 256 entries."""
    x = np.linspace(0.0, 1.0, 256)
    r = np.interp(x, [0.0, 0.746032, 1.0], [0.0, 0.652778, 1.0])
    g = np.interp(x, [0.0, 0.365079, 0.746032, 1.0], [0.0, 0.319444, 0.777778, 1.0])
    b = np.interp(x, [0.0, 0.365079, 1.0], [0.0, 0.444444, 1.0])
    return (np.stack([r, g, b], axis=-1) * 255 + 0.5).astype(np.uint8)


_BONE = _bone_lut()


def _first_percentile(x: np.ndarray) -> float:
    """``np.percentile(x, 1)`` (linear interpolation), by partitioning around the two neighbouring ranks."""
    flat = x.ravel()
    pos = (flat.size - 1) * 0.01
    lo = int(pos)
    hi = min(lo + 1, flat.size - 1)
    part = np.partition(flat, [lo, hi])
    return float(part[lo] + (part[hi] - part[lo]) * (pos - lo))


def cutout_png(stamp: bytes, kind: str, flip: bool = True) -> bytes:
    """A cutout (gzipped FITS, or plain FITS) drawn as Kowalski's make_thumbnail draws it: North up (ZTF
    images are flipped), absurd values and NaNs replaced by the mean, normalised to the image's range
    with a log stretch (linear for the difference image), shown over the 1st-100th percentile range in
    the "bone" colour map; here scaled up ``SCALE`` times, in numpy (a fraction of a millisecond an
    image)."""
    raw = gzip.decompress(stamp) if stamp[:2] == b"\x1f\x8b" else stamp
    img = _fits_image(raw)
    if img.ndim != 2 or min(img.shape) < 2:
        raise ValueError(f"cutout is not a 2-D image (shape {img.shape})")
    if flip:
        img = np.flipud(img)
    img = img.copy()
    with np.errstate(invalid="ignore"):
        img[np.abs(img) > 1e20] = np.nan
    finite = np.isfinite(img)
    if not finite.any():
        raise ValueError("cutout has no finite pixel")
    if not finite.all():
        img[~finite] = float(img[finite].mean())
    lo, hi = float(img.min()), float(img.max())
    x = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
    if kind != "Difference":
        x = np.log(1000.0 * x + 1.0) / np.log(1001.0)  # astropy's LogStretch(a=1000)
    vmin, vmax = _first_percentile(x), float(x.max())  # np.percentile(x, [1, 100]), in one partition
    scaled = np.clip((x - vmin) / (vmax - vmin), 0.0, 1.0) if vmax > vmin else np.zeros_like(x)
    # image row 0 is the bottom (matplotlib's origin="lower"): PNG rows go top first
    index = (scaled[::-1] * 255 + 0.5).astype(np.uint8)
    big = max(index.shape)
    if big > MAX_SIDE:  # a large cutout is subsampled to fit
        step = -(-big // MAX_SIDE)
        index = index[::step, ::step]
    f = max(1, min(SCALE, MAX_SIDE // max(index.shape)))
    f = max(f, -(-MIN_SIDE // min(index.shape)))
    index = np.repeat(np.repeat(index, f, axis=0), f, axis=1)
    return encode_png_palette(np.ascontiguousarray(index[:MAX_SIDE, :MAX_SIDE]), _BONE)


# -- API -------------------------------------------------------------------------------------------

def public_url(thumbnail_id: int) -> str:
    return f"/api/thumbnail/{thumbnail_id}/image"


def thumbnail_to_dict(t: models.Thumbnail) -> dict:
    return t.to_dict()


def _check_type(ttype: str, field: str) -> None:
    if ttype not in THUMBNAIL_TYPES:
        raise ValidationError(f"Invalid {field}: {ttype!r} is not one of {list(THUMBNAIL_TYPES)}", field=field)


def decode_data(data: str) -> bytes:
    """A base64 PNG (SkyPortal's ``data``; a ``data:image/png;base64,`` prefix is allowed)."""
    try:
        raw = base64.b64decode("".join(data.split("base64,")[-1].split()), validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError("Invalid data: not base64-encoded", field="data") from None
    check_png(raw)
    return raw


def post_thumbnail(session: Session, principal: Principal, body: dict) -> int:
    _check_type(body["ttype"], "ttype")
    raw = decode_data(body["data"])
    if session.execute(sa.select(models.Obj.id).where(models.Obj.id == body["obj_id"],
                                                      visible_obj_clause(principal))).first() is None:
        raise ValidationError(f"Invalid obj_id: {body['obj_id']}", field="obj_id")
    t = T(obj_id=body["obj_id"], type=body["ttype"], survey=body.get("survey"), data=raw, is_grayscale=_grey(raw))
    session.add(t)
    session.flush()
    t.public_url = public_url(t.id)
    session.flush()
    return t.id


def _grey(png: bytes) -> bool | None:
    """Whether a PNG is greyscale by its colour type (greyscale, greyscale + alpha); None: not known."""
    colour = png[25] if len(png) > 25 else None
    return True if colour in (0, 4) else None


def get_thumbnail(session: Session, principal: Principal, thumbnail_id: int) -> models.Thumbnail:
    t = session.execute(sa.select(T).where(T.id == thumbnail_id, visible_obj_clause(principal, T.obj_id))).scalar()
    if t is None:
        raise ValidationError(f"Cannot find Thumbnail with ID: {thumbnail_id}")
    return t


def thumbnail_image(session: Session, principal: Principal, thumbnail_id: int) -> bytes:
    t = get_thumbnail(session, principal, thumbnail_id)
    data = session.execute(sa.select(T.data).where(T.id == t.id)).scalar()
    if data is None:
        raise ValidationError(f"Thumbnail {thumbnail_id} has no stored image (its public_url is {t.public_url!r})")
    return data


def update_thumbnail(session: Session, principal: Principal, thumbnail_id: int, body: dict) -> None:
    t = get_thumbnail(session, principal, thumbnail_id)
    if "type" in body and body["type"] is not None:
        _check_type(body["type"], "type")
    if body.get("obj_id") is not None and body["obj_id"] != t.obj_id:
        if session.execute(sa.select(models.Obj.id).where(models.Obj.id == body["obj_id"],
                                                          visible_obj_clause(principal))).first() is None:
            raise ValidationError(f"Invalid obj_id: {body['obj_id']}", field="obj_id")
    for key, value in body.items():
        if key in ("obj_id", "type") and value is None:
            raise ValidationError(f"Invalid {key}: must not be null", field=key)
        setattr(t, key, value)
    t.modified = models.utcnow()
    session.flush()


def delete_thumbnail(session: Session, principal: Principal, thumbnail_id: int) -> None:
    session.delete(get_thumbnail(session, principal, thumbnail_id))
    session.flush()


def thumbnails_of_objs(session: Session, principal: Principal, obj_ids) -> dict[str, list[dict]]:
    """Each object's thumbnails as SkyPortal lists them on a source (:func:`latest_thumbnails`). The caller
    has checked it can see the objects."""
    from broker.objects.nested import read_nested

    return {o: latest_thumbnails(rows)
            for o, rows in read_nested(session, principal, obj_ids, ["thumbnails"])["thumbnails"].items()}


def latest_thumbnails(rows: list[dict]) -> list[dict]:
    """Of one object's thumbnails (oldest first), the latest per (survey, type) for alert cutouts
    (new/ref/sub), per type for the others, by type then id."""
    latest: dict[tuple, dict] = {}
    for t in rows:
        latest[(t["survey"] if t["type"] in ("new", "ref", "sub") else None, t["type"])] = t
    return sorted(latest.values(), key=lambda t: (t["type"], t["id"]))


# -- ingestion -------------------------------------------------------------------------------------

_HAVE = sa.text("""
    SELECT DISTINCT obj_id, survey FROM thumbnails
    WHERE alert_id IS NOT NULL AND obj_id = ANY(CAST(:o AS text[]))
""")

# The batch's images arrive by COPY into a per-connection staging table (a hex-escaped bytea literal per
# image in one INSERT cost ~1 ms each), then one INSERT that takes ids from the sequence and writes the
# public URL with them.
_THUMB_STAGE = """
    CREATE TEMP TABLE IF NOT EXISTS thumbnails_in (
        obj_id text, type text, survey text, origin text, alert_id int8, data bytea
    ) ON COMMIT DELETE ROWS
"""
register_staging("thumbnails_in", _THUMB_STAGE)
_THUMB_COLUMNS = ("obj_id", "type", "survey", "origin", "alert_id", "data")
_INSERT = sa.text("""
    INSERT INTO thumbnails (id, obj_id, type, survey, origin, alert_id, data, public_url, created_at, modified)
    SELECT n.id, n.obj_id, n.type, n.survey, n.origin, n.alert_id, n.data, '/api/thumbnail/' || n.id || '/image',
           :now, :now
    FROM (SELECT nextval(pg_get_serial_sequence('thumbnails', 'id')) AS id, v.*
          FROM (SELECT * FROM thumbnails_in ORDER BY obj_id, type) v) n  -- one lock order for every writer
    ON CONFLICT (obj_id, survey, type) WHERE alert_id IS NOT NULL DO NOTHING
    RETURNING id
""")


def ingest_thumbnails(session: Session, alerts, now: datetime) -> tuple[int, list[str]]:
    """Thumbnails from the cutouts of ``alerts`` ((alert, stream name) pairs), as Kowalski posts them: for
    an object that has none yet from its survey, the first alert's new / ref / sub images. A cutout
    that cannot be drawn is skipped and reported, never failing its alert. Returns (stored, errors)."""
    pending: dict[tuple[str, str], tuple] = {}
    for alert, stream_name in alerts:
        if alert.cutouts and (alert.object_id, alert.survey) not in pending:
            pending[(alert.object_id, alert.survey)] = (alert, stream_name)
    if not pending:
        return 0, []
    have = set(map(tuple, session.execute(_HAVE, {"o": sorted({k[0] for k in pending})}).all()))
    rows, errors = [], []
    for key in sorted(pending):
        if key in have:
            continue
        alert, stream_name = pending[key]
        for ttype, kind in ALERT_TYPES:
            stamp = alert.cutouts.get(kind)
            if not stamp:
                continue
            try:
                png = cutout_png(stamp, kind, flip=alert.survey == "ZTF")
            except CUTOUT_ERRORS as exc:  # a malformed cutout: this image is skipped, the alert is stored
                errors.append(f"{alert.object_id} alert {alert.alert_id} cutout{kind}: {type(exc).__name__}: {exc}")
                continue
            rows.append((alert.object_id, ttype, alert.survey, stream_name, alert.alert_id, png))
    if errors:
        log.warning("%d alert cutouts could not be made into thumbnails: %s", len(errors), "; ".join(errors[:5]))
    if not rows:
        return 0, errors
    copy_text_rows(session, _THUMB_STAGE, "thumbnails_in", _THUMB_COLUMNS, rows)
    ids = session.execute(_INSERT, {"now": now}).scalars().all()
    return len(ids), errors


_FILTER_NAMES = sa.text("""
    SELECT f.id, f.name, g.name FROM filters f JOIN groups g ON g.id = f.group_id
    WHERE f.id = ANY(CAST(:ids AS int[]))
""")


def ingest_alert_products(session: Session, passing, now: datetime) -> dict:
    """What alert ingestion adds for the alerts that passed filters (``passing``: the pipeline's
    (stream, alert, filters passed) triples), as Kowalski posts them to SkyPortal:

    * thumbnails from the alerts' cutouts (:func:`ingest_thumbnails`);
    * the alert's ML scores (ZTF rb/drb/sgscore1/classtar, LSST reliability/extendedness) as a source
      annotation per filter passed, origin ``"<group name>:<filter name>"``, shared with the filter's
      group (:func:`broker.objects.annotations.ingest_annotations`).

    Two statements a batch, plus the cutouts of objects new to thumbnails. Returns counts."""
    from broker.objects.annotations import ingest_annotations

    made, errors = ingest_thumbnails(session, [(a, stream.name) for stream, a, _ in passing], now)
    fids = sorted({f.id for _, a, filters in passing if a.scores for f in filters})
    rows = []
    if fids:
        names = {fid: (fname, gname) for fid, fname, gname in session.execute(_FILTER_NAMES, {"ids": fids}).all()}
        for _, a, filters in passing:
            data = {k: v for k, v in a.scores.items() if math.isfinite(v)}
            if not data:  # as Kowalski: no annotation without data
                continue
            for f in filters:
                if f.id in names:
                    fname, gname = names[f.id]
                    rows.append((a.object_id, f"{gname}:{fname}", data, f.group_id))
    annotated = ingest_annotations(session, rows, now)
    return {"thumbnails": made, "thumbnail_errors": len(errors), "annotations": annotated}


# ``thumbnails`` of source answers (see broker.objects.objs's hooks)
register_details("thumbnails", thumbnails_of_objs)
