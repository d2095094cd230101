"""Reading sky maps: flat HEALPix FITS (NESTED or RING, optional distance layers) and multi-order
(UNIQ) FITS, plain or gzipped, from bytes. Everything becomes a multi-order :class:`SkyMap`."""

from __future__ import annotations

import gzip
import io
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field

import numpy as np

from broker.errors import ValidationError
from broker.sky.kernels import compact_siblings, order_ipix_to_uniq, pixel_area_sr, uniq_to_order_ipix


@dataclass
class SkyMap:
    uniq: np.ndarray
    probdensity: np.ndarray  # 1/sr
    distmu: np.ndarray | None = None  # Mpc
    distsigma: np.ndarray | None = None
    distnorm: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    MAX_ORDER = 29  # HEALPix's deepest level in 64-bit NUNIQ

    def validate(self, tolerance: float = 0.01) -> "SkyMap":
        """Raise ValidationError naming what is wrong: UNIQ values outside orders 0..29, tiles that repeat
        or overlap, densities that are negative or not finite, distance layers of another length, or a
        total probability off 1 by more than ``tolerance``."""
        uniq = np.asarray(self.uniq)
        if uniq.ndim != 1 or len(uniq) == 0:
            raise ValidationError("Invalid sky map field 'uniq': no tiles", field="uniq")
        if np.any(uniq < 4) or np.any(uniq >= np.int64(16) << (2 * self.MAX_ORDER)):
            raise ValidationError(f"Invalid sky map field 'uniq': values must encode orders 0..{self.MAX_ORDER} (NUNIQ)",
                                  field="uniq")
        dens = np.asarray(self.probdensity, dtype=np.float64)
        if dens.shape != uniq.shape:
            raise ValidationError("Invalid sky map field 'probdensity': needs one value per uniq", field="probdensity")
        if not np.all(np.isfinite(dens)) or np.any(dens < 0):
            raise ValidationError("Invalid sky map field 'probdensity': densities must be finite and non-negative",
                                  field="probdensity")
        for name in ("distmu", "distsigma", "distnorm"):
            layer = getattr(self, name)
            if layer is not None and (np.shape(layer) != uniq.shape or np.any(np.isnan(layer))):
                raise ValidationError(f"Invalid sky map field '{name}': needs one value (not NaN) per uniq", field=name)
        order, ipix = uniq_to_order_ipix(uniq)
        shift = 2 * (self.MAX_ORDER - order)
        start, end = ipix << shift, (ipix + 1) << shift  # each tile as a range of order-29 pixels
        by_start = np.argsort(start, kind="stable")
        if np.any(start[by_start][1:] < end[by_start][:-1]):
            raise ValidationError("Invalid sky map field 'uniq': tiles repeat or overlap", field="uniq")
        total = float(np.sum(dens * pixel_area_sr(order)))
        if not abs(total - 1.0) <= tolerance:
            raise ValidationError(f"Invalid sky map field 'probdensity': total probability {total:.4g}, expected 1", field="probdensity")
        return self

    def ranking(self):
        """The kernels' ranking of the tiles (``kernels._ranked``: order, cumulative probability and area),
        computed once per map and arrays (a map of a million tiles takes 0.1 s to rank)."""
        from broker.sky.kernels import _ranked

        cached = self.__dict__.get("_ranking")
        if cached is None or cached[0] is not self.uniq or cached[1] is not self.probdensity:
            cached = (self.uniq, self.probdensity, _ranked(self.uniq, self.probdensity))
            self.__dict__["_ranking"] = cached
        return cached[2]

    @property
    def total_probability(self) -> float:
        order, _ = uniq_to_order_ipix(self.uniq)
        return float(np.sum(self.probdensity * pixel_area_sr(order)))


TAIL = 1e-6  # probability that a flat map's least probable pixels may share (see read_fits)
MAX_FLAT_NSIDE = 8192
CHUNK_ORDER = 9  # flat maps are read 4**9 = 262,144 pixels at a time


def read_fits(data: bytes, tail: float = TAIL) -> SkyMap:
    """A FITS sky map (gzip or not) → a multi-order SkyMap; ValidationError saying what is wrong.

    A multi-order (UNIQ) file is read as it is. A flat HEALPix map (NESTED or RING, NSIDE up to 8192, with
    or without DISTMU/DISTSIGMA/DISTNORM) is turned into a multi-order one as it is read, in bounded memory:
    the file is decompressed to a temporary file and read 4**9 pixels at a time, in NESTED order (a RING
    file is read through its pixel permutation), and each block's sibling pixels are merged into their
    parents where they are equal in every column (lossless, as ligo.skymap's ``derasterize``) or where all
    of them belong to the map's tail: the least probable pixels, whose probabilities add up to at most
    ``tail`` (1e-6). The tail is chosen in a first pass (per-pixel probabilities binned by their binary
    exponent, so the bound is kept exactly). Every pixel outside the tail keeps its exact density and its
    exact credible level; a tail pixel's credible level moves by at most ``tail``. ``tail=0`` keeps only the
    lossless merging."""
    from astropy.io import fits

    with tempfile.NamedTemporaryFile(prefix="skymap-", suffix=".fits") as tmp:
        if data[:2] == b"\x1f\x8b":
            try:
                with gzip.GzipFile(fileobj=io.BytesIO(data)) as gz:
                    shutil.copyfileobj(gz, tmp, 1 << 20)
            except (OSError, EOFError) as exc:
                raise ValidationError(f"Invalid sky map: broken gzip data ({exc})", field="skymap") from None
        else:
            tmp.write(data)
        tmp.flush()
        tmp.seek(0)
        try:
            hdus = fits.open(tmp.name, memmap=False, lazy_load_hdus=True)
            table = next((h for h in hdus[1:] if isinstance(h, fits.BinTableHDU)), None)
        except (OSError, ValueError, IndexError) as exc:
            raise ValidationError(f"Invalid sky map: not a FITS file ({exc})", field="skymap") from None
        with hdus:
            if table is None:
                raise ValidationError("Invalid sky map: no binary table HDU", field="skymap")
            header = table.header
            names = [n.upper() for n in table.columns.names]
            meta = {k: header.get(k) for k in ("OBJECT", "DATE-OBS", "MJD-OBS", "INSTRUME", "CREATOR", "DISTMEAN",
                                                "DISTSTD", "ORDERING", "NSIDE") if header.get(k) is not None}
            if "UNIQ" in names:
                if "PROBDENSITY" not in names:
                    raise ValidationError("Invalid sky map: a multi-order map needs a PROBDENSITY column",
                                          field="skymap")
                cols = {n.upper(): np.asarray(table.data[n]).astype(np.float64 if n.upper() != "UNIQ" else np.int64)
                        .ravel() for n in table.columns.names}
                sm = SkyMap(cols["UNIQ"], cols["PROBDENSITY"], cols.get("DISTMU"), cols.get("DISTSIGMA"),
                            cols.get("DISTNORM"), meta)
            else:
                layout = (table.fileinfo()["datLoc"], table.columns.dtype.newbyteorder(">"), int(header["NAXIS2"]),
                          table.columns.names)
                sm = None
        if sm is None:
            sm = _read_flat(tmp, *layout, meta, tail)
    if not np.all(np.isfinite(sm.probdensity)) or np.any(sm.probdensity < 0):
        raise ValidationError("Invalid sky map: probability densities must be finite and non-negative",
                              field="skymap")
    return sm


def _read_flat(fh, offset: int, row_dtype, nrows: int, colnames, meta: dict, tail: float) -> SkyMap:
    """The flat map of a FITS table (rows of ``row_dtype`` at ``offset`` of file ``fh``): see read_fits."""
    import mmap

    import healpy as hp

    upper = {n.upper(): n for n in colnames}
    prob_name = upper.get("PROB", colnames[0])
    layers = [n for n in ("DISTMU", "DISTSIGMA", "DISTNORM") if n in upper]
    per_row = int(np.prod(row_dtype[prob_name].shape)) if row_dtype[prob_name].shape else 1
    npix = nrows * per_row
    try:
        nside = hp.npix2nside(npix)
    except ValueError:
        raise ValidationError(f"Invalid sky map: {npix} pixels is not a HEALPix map (12·NSIDE²)",
                              field="skymap") from None
    if nside > MAX_FLAT_NSIDE:
        raise ValidationError(f"Invalid sky map: NSIDE {nside} is above {MAX_FLAT_NSIDE}; send a multi-order map",
                              field="skymap")
    ordering = str(meta.get("ORDERING", "RING")).upper()
    if ordering not in ("NESTED", "RING"):
        raise ValidationError(f"Invalid sky map: ORDERING {ordering!r} is neither NESTED nor RING", field="skymap")
    if os.fstat(fh.fileno()).st_size < offset + nrows * row_dtype.itemsize:
        raise ValidationError("Invalid sky map: the file is shorter than its table (truncated?)", field="skymap")
    order = nside.bit_length() - 1
    chunk = 4 ** min(order, CHUNK_ORDER)
    area = float(pixel_area_sr(order))
    mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        rows = np.ndarray((nrows,), dtype=row_dtype, buffer=mm, offset=offset)

        def block(start: int):
            """Pixels start .. start+chunk (NESTED) of every column, as float64."""
            nest = np.arange(start, start + chunk, dtype=np.int64)
            pix = nest if ordering == "NESTED" else hp.nest2ring(nside, nest)
            out = []
            for name in [prob_name, *(upper[n] for n in layers)]:
                field = rows[name]  # a strided view: (nrows,) or (nrows, per_row); only the block is copied
                if per_row == 1:
                    part = field[start:start + chunk] if ordering == "NESTED" else field[pix]
                elif ordering == "NESTED":
                    lo, hi = start // per_row, -(-(start + chunk) // per_row)
                    skip = start - lo * per_row
                    part = field[lo:hi].reshape(-1)[skip:skip + chunk]
                else:
                    part = field[pix // per_row, pix % per_row]
                out.append(np.asarray(part, dtype=np.float64))
            mm.madvise(mmap.MADV_DONTNEED)  # what was read leaves our memory (the page cache keeps it)
            return out

        # pass 1: the total, and each binary exponent's share of it (the tail's threshold)
        mass = np.zeros(2200)
        for start in range(0, npix, chunk):
            p = block(start)[0]
            if not np.all(np.isfinite(p)) or np.any(p < 0):
                raise ValidationError("Invalid sky map: probabilities must be finite and non-negative", field="skymap")
            mass += np.bincount(np.frexp(p)[1] + 1100, weights=p, minlength=2200)
        total = float(mass.sum())
        if not total > 0:
            raise ValidationError("Invalid sky map: total probability 0", field="skymap")
        # the largest exponent E with all pixels below 2**E adding up to at most tail · total
        cum = np.cumsum(mass)
        below = np.flatnonzero(cum <= tail * total)
        threshold = math.ldexp(1.0, int(below[-1]) - 1100) if below.size else 0.0

        # pass 2: each block merged up to its root, the roots merged with each other at the end
        top = max(order - CHUNK_ORDER, 0)
        done_uniq, done_cols = [], [[] for _ in range(1 + len(layers))]
        roots = ([], [[] for _ in range(1 + len(layers))], [])
        for start in range(0, npix, chunk):
            cols = block(start)
            p = cols[0]
            for name, layer in zip(layers, cols[1:]):
                if np.any(np.isnan(layer)):
                    raise ValidationError(f"Invalid sky map: {name} has NaN values", field="skymap")
            cols[0] = p / area
            (u, c), (ip, rc, sm_) = compact_siblings(order, np.arange(start, start + chunk, dtype=np.int64), cols,
                                                     p < threshold, stop=top)
            done_uniq.append(u)
            for d, x in zip(done_cols, c):
                d.append(x)
            roots[0].append(ip)
            for d, x in zip(roots[1], rc):
                d.append(x)
            roots[2].append(sm_)
    finally:
        del rows
        mm.close()
    (u, c), (ip, rc, _) = compact_siblings(top, np.concatenate(roots[0]), [np.concatenate(x) for x in roots[1]],
                                           np.concatenate(roots[2]), stop=0)
    done_uniq += [u, order_ipix_to_uniq(np.zeros(ip.size, dtype=np.int64), ip)]
    for d, x, y in zip(done_cols, c, rc):
        d += [x, y]
    uniq = np.concatenate(done_uniq)
    srt = np.argsort(uniq, kind="stable")
    # densities as given (a flat map's PROB sums to 1 up to rounding; validate() checks it)
    cols = [np.concatenate(d)[srt] for d in done_cols]
    extra = dict(zip((n.lower() for n in layers), cols[1:]))
    return SkyMap(uniq[srt], cols[0], meta={**meta, "NSIDE": nside}, **extra)


def write_moc_fits(sm: SkyMap, meta: dict) -> bytes:
    """A multi-order (NUNIQ) FITS file of the map and its distance layers, ligo.skymap's layout."""
    from astropy.table import Table

    cols = {"UNIQ": sm.uniq, "PROBDENSITY": sm.probdensity}
    for k in ("distmu", "distsigma", "distnorm"):
        if getattr(sm, k) is not None:
            cols[k.upper()] = getattr(sm, k)
    buf = io.BytesIO()
    Table(cols, meta={"ORDERING": "NUNIQ", **meta}).write(buf, format="fits")
    return buf.getvalue()


def write_flat_fits(path, nside: int, ordering: str, block, columns=("PROB",), block_pixels: int = 1 << 20) -> None:
    """Write a flat HEALPix map to a gzipped FITS file block by block, never holding it whole (an NSIDE-8192
    map has 805 M pixels). ``block(start, stop)`` → {column: values of pixels start..stop} in ``ordering``'s
    (NESTED or RING) numbering; columns are written as 32-bit floats (format E), one pixel per row."""
    from astropy.io import fits

    npix = 12 * nside * nside
    hdr = fits.BinTableHDU.from_columns(fits.ColDefs([fits.Column(name=c, format="E") for c in columns]),
                                        nrows=0).header
    hdr["NAXIS2"] = npix
    hdr["PIXTYPE"], hdr["ORDERING"], hdr["NSIDE"], hdr["INDXSCHM"] = "HEALPIX", ordering, nside, "IMPLICIT"
    row = np.dtype([(c, ">f4") for c in columns])
    with gzip.open(path, "wb", compresslevel=1) as out:
        out.write(fits.PrimaryHDU().header.tostring().encode())
        out.write(hdr.tostring().encode())
        for start in range(0, npix, block_pixels):
            stop = min(npix, start + block_pixels)
            values = block(start, stop)
            rec = np.empty(stop - start, dtype=row)
            for c in columns:
                rec[c] = values[c]
            out.write(rec.tobytes())
        out.write(b"\0" * (-(npix * row.itemsize) % 2880))
