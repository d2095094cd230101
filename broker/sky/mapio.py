"""Reading sky maps: flat HEALPix FITS (NESTED or RING, optional distance layers) and multi-order
(UNIQ) FITS, plain or gzipped, from bytes. Everything becomes a multi-order :class:`SkyMap`."""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass, field

import numpy as np

from broker.errors import ValidationError
from broker.sky.kernels import flat_to_moc, merge_uniform, pixel_area_sr, uniq_to_order_ipix


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

    @property
    def total_probability(self) -> float:
        order, _ = uniq_to_order_ipix(self.uniq)
        return float(np.sum(self.probdensity * pixel_area_sr(order)))


def read_fits(data: bytes) -> SkyMap:
    """A FITS sky map (gzip or not) → SkyMap; ValidationError saying what is wrong."""
    from astropy.io import fits

    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except OSError as exc:
            raise ValidationError(f"Invalid sky map: broken gzip data ({exc})", field="skymap") from None
    try:
        hdus = fits.open(io.BytesIO(data), memmap=False)
    except (OSError, ValueError) as exc:
        raise ValidationError(f"Invalid sky map: not a FITS file ({exc})", field="skymap") from None
    with hdus:
        table = next((h for h in hdus[1:] if isinstance(h, fits.BinTableHDU)), None)
        if table is None:
            raise ValidationError("Invalid sky map: no binary table HDU", field="skymap")
        header = table.header
        names = [n.upper() for n in table.columns.names]
        cols = {n.upper(): np.asarray(table.data[n]).astype(np.float64 if n.upper() != "UNIQ" else np.int64).ravel()
                for n in table.columns.names}
        meta = {k: header.get(k) for k in ("OBJECT", "DATE-OBS", "MJD-OBS", "INSTRUME", "CREATOR", "DISTMEAN",
                                            "DISTSTD", "ORDERING", "NSIDE") if header.get(k) is not None}
    if "UNIQ" in names:
        if "PROBDENSITY" not in names:
            raise ValidationError("Invalid sky map: a multi-order map needs a PROBDENSITY column", field="skymap")
        sm = SkyMap(cols["UNIQ"], cols["PROBDENSITY"], cols.get("DISTMU"), cols.get("DISTSIGMA"),
                    cols.get("DISTNORM"), meta)
    else:
        prob_name = "PROB" if "PROB" in names else names[0]
        ordering = str(meta.get("ORDERING", "RING")).upper()
        if ordering not in ("NESTED", "RING"):
            raise ValidationError(f"Invalid sky map: ORDERING {ordering!r} is neither NESTED nor RING",
                                  field="skymap")
        prob = cols[prob_name]
        try:
            uniq, dens = flat_to_moc(prob, nest=ordering == "NESTED")
        except ValueError as exc:
            raise ValidationError(f"Invalid sky map: {exc}", field="skymap") from None
        extra = {}
        for key in ("DISTMU", "DISTSIGMA", "DISTNORM"):
            if key in cols:
                v = cols[key]
                extra[key.lower()] = v if ordering == "NESTED" else _ring_to_nest(v)
        # equal siblings merged into their parents, as ligo.skymap reads a flat map as multi-order
        order = int(uniq_to_order_ipix(uniq[:1])[0][0])
        names = ["probdensity", *extra]
        merged_uniq, merged = merge_uniform(order, np.arange(len(uniq), dtype=np.int64),
                                            [dens, *extra.values()])
        cols = dict(zip(names, merged))
        sm = SkyMap(merged_uniq, cols.pop("probdensity"), meta=meta, **cols)
    if not np.all(np.isfinite(sm.probdensity)) or np.any(sm.probdensity < 0):
        raise ValidationError("Invalid sky map: probability densities must be finite and non-negative",
                              field="skymap")
    return sm


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


def _ring_to_nest(values):
    import healpy as hp

    nside = hp.npix2nside(len(values))
    return values[hp.nest2ring(nside, np.arange(len(values)))]
