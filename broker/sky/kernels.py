"""Sky-map kernels: pure functions, arrays in, arrays out (no database, no network, no files).

Conventions: multi-order (UNIQ) maps as two arrays, ``uniq`` (int64, NUNIQ scheme
``uniq = 4·4**order + ipix``, nested ipix) and ``probdensity`` (per steradian); flat maps as one array of
per-pixel probabilities (NESTED or RING). Positions in degrees (ICRS). Areas in square degrees.

Greedy credible levels: pixels are ranked by probability *density* (highest first; ties by descending
UNIQ, as ``ligo.skymap.postprocess.crossmatch`` ranks them); the credible level of a pixel is the
cumulative probability of all pixels ranked before it, itself included.
"""

from __future__ import annotations

import math

import healpy as hp
import numpy as np

SR_TO_DEG2 = (180.0 / math.pi) ** 2
FULL_SKY_DEG2 = 4.0 * 180.0**2 / math.pi


# -- coordinates -------------------------------------------------------------------------------------

# ICRS -> Galactic rotation, as astropy transforms ICRS to its Galactic frame (frame bias to FK5 J2000,
# then FK5 -> Galactic); rows are the Galactic x, y, z axes in ICRS coordinates.
ICRS_TO_GALACTIC = np.array([
    [-0.05487565771259163, -0.8734370519556159, -0.48383507361671546],
    [0.4941094371927268, -0.4448297212232952, 0.7469821839866676],
    [-0.8676661375596576, -0.19807633727300053, 0.4559838136873016],
])


def galactic(ra, dec):
    """ICRS (``ra``, ``dec`` [deg], arrays) → Galactic (``l`` in [0, 360), ``b`` [deg]), equal to astropy's
    ``SkyCoord(ra, dec, unit="deg").galactic`` to ~1e-10 deg, without its per-call overhead."""
    ra, dec = np.radians(np.asarray(ra, dtype=float)), np.radians(np.asarray(dec, dtype=float))
    xyz = np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])
    x, y, z = np.tensordot(ICRS_TO_GALACTIC, xyz, axes=1)
    lon = np.degrees(np.arctan2(y, x)) % 360.0
    lat = np.degrees(np.arctan2(z, np.hypot(x, y)))  # (arcsin loses precision near the poles)
    return lon, lat


# -- pixels ------------------------------------------------------------------------------------------

def uniq_to_order_ipix(uniq):
    """NUNIQ → (order, nested ipix), by integer bit operations only (exact to order 29, as ligo.skymap's
    ``moc.uniq2nest``). ``uniq`` int64 array; NUNIQ = 4·4**order + ipix lies in [2**(2o+2), 2**(2o+4)), so the
    order is (index of the highest set bit − 2) // 2."""
    uniq = np.asarray(uniq, dtype=np.int64)
    msb = np.zeros(uniq.shape, dtype=np.int64)
    x = uniq.copy()
    for s in (32, 16, 8, 4, 2, 1):
        big = x >= (np.int64(1) << s)
        msb += np.where(big, s, 0)
        x = np.where(big, x >> s, x)
    order = (msb - 2) >> 1
    ipix = uniq - (np.int64(4) << (2 * order))
    return order, ipix


def order_ipix_to_uniq(order, ipix):
    order = np.asarray(order, dtype=np.int64)
    return (np.int64(4) << (2 * order)) + np.asarray(ipix, dtype=np.int64)


def pixel_area_sr(order):
    """Area of a pixel of HEALPix ``order`` [sr]: 4π / (12·4**order)."""
    return 4.0 * math.pi / (12.0 * np.power(4.0, np.asarray(order, dtype=np.float64)))


def flat_to_moc(prob, nest: bool = True):
    """A flat map of per-pixel probabilities → (uniq, probdensity [1/sr]) at its single order."""
    prob = np.asarray(prob, dtype=np.float64)
    nside = hp.npix2nside(prob.size)
    order = int(round(math.log2(nside)))
    ipix = np.arange(prob.size, dtype=np.int64)
    if not nest:
        prob = prob[hp.nest2ring(nside, ipix)]  # reorder RING values into NESTED pixel order
    return order_ipix_to_uniq(np.full(prob.size, order), ipix), prob / pixel_area_sr(order)


# -- credible levels -----------------------------------------------------------------------------------

def greedy_credible_levels(prob, ranking=None):
    """Credible level of every entry of ``prob`` (any shape), ranked by ``ranking`` (default ``prob``),
    highest first. For a flat HEALPix map of probabilities this is the map of credible levels."""
    p = np.asarray(prob, dtype=np.float64)
    flat = p.ravel()
    rank = flat if ranking is None else np.ravel(ranking)
    order = np.argsort(rank)[::-1]
    levels = np.empty_like(flat)
    levels[order] = np.cumsum(flat[order])
    return levels.reshape(p.shape)


def _ranked(uniq, probdensity):
    """Pixel order by (density, uniq) descending, with cumulative probability and area."""
    uniq = np.asarray(uniq, dtype=np.int64)
    dens = np.asarray(probdensity, dtype=np.float64)
    # descending density, ties by descending uniq: a stable sort of -density over the pixels taken in
    # descending-uniq order (cheaper than a two-key lexsort; map files are sorted by uniq already)
    by_uniq = np.arange(len(uniq))[::-1] if np.all(uniq[1:] > uniq[:-1]) else np.argsort(uniq, kind="stable")[::-1]
    order = by_uniq[np.argsort(-dens[by_uniq], kind="stable")]
    levels, _ = uniq_to_order_ipix(uniq[order])
    area_sr = pixel_area_sr(levels)
    return order, np.cumsum(dens[order] * area_sr), np.cumsum(area_sr) * SR_TO_DEG2


def moc_credible_levels(uniq, probdensity, ranked=None):
    """Credible level of every pixel of a multi-order map (in the input order). ``ranked``: the map's
    ``_ranked`` if already computed (a map of a million tiles takes 0.1 s to rank)."""
    order, cumprob, _ = ranked or _ranked(uniq, probdensity)
    out = np.empty(len(order))
    out[order] = cumprob
    return out


def _interp_from_zero(x, xp, fp, right):
    return np.interp(x, np.concatenate(([0.0], xp)), np.concatenate(([0.0], fp)), right=right)


def credible_region_area(uniq, probdensity, levels, ranked=None):
    """Area [deg²] of the credible region(s) at ``levels`` (e.g. 0.5, 0.9), interpolated between pixels."""
    _, cumprob, cumarea = ranked or _ranked(uniq, probdensity)
    return _interp_from_zero(np.asarray(levels, dtype=np.float64), cumprob, cumarea, right=FULL_SKY_DEG2)


def area_probability(uniq, probdensity, areas_deg2, ranked=None):
    """Probability enclosed by the most probable ``areas_deg2`` of the map."""
    _, cumprob, cumarea = ranked or _ranked(uniq, probdensity)
    return _interp_from_zero(np.asarray(areas_deg2, dtype=np.float64), cumarea, cumprob, right=1.0)


# -- positions -----------------------------------------------------------------------------------------

def locate(uniq, ra_deg, dec_deg):
    """Index (into ``uniq``) of the pixel holding each position; -1 where the map does not cover it."""
    order, ipix = uniq_to_order_ipix(uniq)
    max_order = int(order.max())
    nside = np.int64(1) << max_order
    start = ipix << (2 * (max_order - order))
    stop = (ipix + 1) << (2 * (max_order - order))
    srt = np.argsort(start)
    start_s, stop_s = start[srt], stop[srt]
    pix = hp.ang2pix(int(nside), np.asarray(ra_deg, dtype=np.float64), np.asarray(dec_deg, dtype=np.float64),
                     nest=True, lonlat=True).astype(np.int64)
    j = np.searchsorted(start_s, pix, side="right") - 1
    ok = (j >= 0) & (pix < stop_s[np.clip(j, 0, None)])
    return np.where(ok, srt[np.clip(j, 0, None)], -1)


def crossmatch(uniq, probdensity, ra_deg, dec_deg):
    """For N positions: probability density [1/sr], credible level (searched probability) and searched
    area [deg²] — the cumulative probability and area of all pixels ranked up to the one holding it —
    and the offset [deg] from the map's mode. NaN where the map does not cover a position."""
    uniq = np.asarray(uniq, dtype=np.int64)
    dens = np.asarray(probdensity, dtype=np.float64)
    order, cumprob, cumarea = _ranked(uniq, dens)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    idx = locate(uniq, ra_deg, dec_deg)
    ok = idx >= 0
    r = rank[np.where(ok, idx, 0)]
    nan = np.full(len(idx), np.nan)
    mode_order, mode_ipix = uniq_to_order_ipix(uniq[order[:1]])
    mode_ra, mode_dec = hp.pix2ang(int(np.int64(1) << int(mode_order[0])), int(mode_ipix[0]), nest=True, lonlat=True)
    return {
        "probdensity": np.where(ok, dens[np.where(ok, idx, 0)], nan),
        "credible_level": np.where(ok, cumprob[r], nan),
        "searched_area": np.where(ok, cumarea[r], nan),
        "offset": angular_distance(ra_deg, dec_deg, mode_ra, mode_dec),
    }


def inside_region(uniq, probdensity, ra_deg, dec_deg, level: float):
    """Boolean mask: positions inside the ``level`` (e.g. 0.9) credible region."""
    cl = crossmatch(uniq, probdensity, ra_deg, dec_deg)["credible_level"]
    return np.nan_to_num(cl, nan=np.inf) <= level


def angular_distance(ra1, dec1, ra2, dec2):
    """Great-circle distance [deg] (degrees in), numerically stable at small separations."""
    ra1, dec1, ra2, dec2 = (np.radians(np.asarray(x, dtype=np.float64)) for x in (ra1, dec1, ra2, dec2))
    hav = np.sin((dec2 - dec1) / 2) ** 2 + np.cos(dec1) * np.cos(dec2) * np.sin((ra2 - ra1) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(hav, 0.0, 1.0))))


def rasterize(uniq, probdensity, order: int, ring: bool = False):
    """A multi-order map as a flat map of per-pixel probabilities at ``order`` (NESTED, or RING), as
    ``ligo.skymap.bayestar.rasterize``: finer pixels are summed, coarser ones spread evenly."""
    o, ipix = uniq_to_order_ipix(uniq)
    prob = np.asarray(probdensity, dtype=np.float64) * pixel_area_sr(o)
    npix = 12 * 4**order
    fine = o >= order
    out = np.bincount(ipix[fine] >> (2 * (o[fine] - order)), weights=prob[fine], minlength=npix).astype(np.float64)
    for level in np.unique(o[~fine]):
        sel = o == level
        k = 4 ** int(order - level)
        start = ipix[sel] << (2 * int(order - level))
        out[(start[:, None] + np.arange(k)).ravel()] += np.repeat(prob[sel] / k, k)
    if ring:
        out = out[hp.ring2nest(1 << order, np.arange(npix))]
    return out


def compact_siblings(level: int, ipix, columns, small, stop: int = 0):
    """Merge sibling tiles into their parents, level by level, from ``level`` up to ``stop``.

    ``ipix``: sorted NESTED indices of tiles all at ``level``; ``columns``: per-tile arrays, the first being
    the probability density [1/sr] (then distance layers); ``small``: per-tile booleans, the tail whose total
    probability the caller has bounded. Four siblings become their parent when every column is equal in all
    four (lossless, as ``ligo.skymap.bayestar.derasterize``), or when all four are small: the parent then has
    the mean density (the same probability) and the other columns of its densest child, and is small.

    Returns ``(uniq, columns)`` of the tiles finished below ``stop`` (unsorted) and ``(ipix, columns, small)``
    of those that reached ``stop``, for the caller to merge further with tiles from elsewhere."""
    ipix = np.asarray(ipix, dtype=np.int64)
    cols = [np.asarray(c, dtype=np.float64) for c in columns]
    small = np.asarray(small, dtype=bool)
    done_uniq, done_cols = [], [[] for _ in cols]

    def finish(lvl, keep):
        done_uniq.append(order_ipix_to_uniq(np.full(int(np.count_nonzero(keep)), lvl), ipix[keep]))
        for dc, c in zip(done_cols, cols):
            dc.append(c[keep])

    while level > stop and ipix.size >= 4:
        n = ipix.size
        first = np.flatnonzero((ipix[:n - 3] & 3) == 0)
        first = first[ipix[first + 3] == ipix[first] + 3]  # four siblings, all present
        if first.size == 0:
            break
        idx = first[:, None] + np.arange(4)
        equal = np.ones(first.size, dtype=bool)
        for c in cols:
            equal &= np.all(c[idx] == c[idx[:, :1]], axis=1)
        merge = equal | np.all(small[idx], axis=1)
        if not merge.any():
            break
        groups = idx[merge]
        member = np.zeros(n, dtype=bool)
        member[groups.ravel()] = True
        finish(level, ~member)
        densest = groups[np.arange(len(groups)), np.argmax(cols[0][groups], axis=1)]
        parent_cols = [cols[0][groups].mean(axis=1)] + [c[densest] for c in cols[1:]]
        lossless = equal[merge]
        parent_cols[0][lossless] = cols[0][groups[lossless, 0]]  # exactly the children's value
        small = np.all(small[groups], axis=1)
        ipix = ipix[groups[:, 0]] >> 2
        cols = parent_cols
        level -= 1
    if level > stop:
        finish(level, np.ones(ipix.size, dtype=bool))
        ipix, cols, small = ipix[:0], [c[:0] for c in cols], small[:0]
    uniq = np.concatenate(done_uniq) if done_uniq else np.zeros(0, dtype=np.int64)
    return (uniq, [np.concatenate(dc) if dc else np.zeros(0) for dc in done_cols]), (ipix, cols, small)
