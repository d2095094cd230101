"""Flat HEALPix maps at real sizes become compact multi-order maps, within the documented tolerance of
ligo.skymap's answers on the original flat map: every credible level within 1e-6 (the tail), the rest exact."""

from pathlib import Path

import healpy as hp
import numpy as np
import pytest

from broker.errors import ValidationError
from broker.sky import kernels as K
from broker.sky.mapio import TAIL, read_fits
from broker.sky.mapio import write_flat_fits as write_flat

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "gcn"


def levels_at_pixels(sm, nside, nest=True):
    """Our credible level (and density) at the centre of every pixel of a flat map of ``nside``."""
    ra, dec = hp.pix2ang(nside, np.arange(12 * nside * nside), nest=nest, lonlat=True)
    return K.crossmatch(sm.uniq, sm.probdensity, ra, dec)


def level_bounds(prob):
    """Each pixel's credible level on the flat map, whatever order equal pixels are taken in: from the mass of
    the pixels more probable than it plus its own, to the mass of those at least as probable."""
    p = np.asarray(prob, dtype=np.float64)
    srt = np.sort(p)[::-1]
    cum = np.concatenate([[0.0], np.cumsum(srt)])
    neg = -srt  # ascending
    above = cum[np.searchsorted(neg, -p, side="left")]  # mass strictly more probable
    upto = cum[np.searchsorted(neg, -p, side="right")]  # mass at least as probable
    return above + p, upto


def test_uniq_to_order_ipix_is_exact_to_order_29():
    from ligo.skymap.moc import nest2uniq, uniq2nest

    rng = np.random.default_rng(3)
    for order in range(30):
        ipix = np.concatenate([rng.integers(0, 12 * 4**order, 500), [0, 12 * 4**order - 1]]).astype(np.int64)
        uniq = nest2uniq(np.int8(order), ipix)
        o, i = K.uniq_to_order_ipix(uniq)
        lo, li = uniq2nest(uniq)
        assert np.array_equal(o, lo) and np.array_equal(i, li)
        assert np.all(o == order) and np.array_equal(i, ipix)


def test_a_real_flat_map_within_the_tail_of_ligo():
    """bayestar.fits.gz (NSIDE 256, with distance layers): ligo.skymap reads it as a multi-order map
    (``read_sky_map(moc=True)``) and crossmatches every pixel centre; our levels equal theirs without the
    tail (to 1e-9) and within 1e-6 with it, and lie within 1e-6 of the flat map's own (any order of equal
    pixels); densities are exact outside the tail; the distance layer travels with its pixel."""
    from astropy.coordinates import SkyCoord
    from astropy.io import fits
    from ligo.skymap.io import read_sky_map
    from ligo.skymap.postprocess.crossmatch import crossmatch

    raw = (DATA / "bayestar.fits.gz").read_bytes()
    with fits.open(DATA / "bayestar.fits.gz") as h:
        prob = np.asarray(h[1].data["PROB"], dtype=float).ravel()
        distmu = np.asarray(h[1].data["DISTMU"], dtype=float).ravel()
        nest = h[1].header["ORDERING"] == "NESTED"
    nside = hp.npix2nside(prob.size)
    order = int(np.log2(nside))
    sm = read_fits(raw)
    lossless = read_fits(raw, tail=0)
    assert len(sm.uniq) < len(lossless.uniq) <= prob.size
    ra, dec = hp.pix2ang(nside, np.arange(prob.size), nest=nest, lonlat=True)
    theirs = crossmatch(read_sky_map(str(DATA / "bayestar.fits.gz"), moc=True), SkyCoord(ra, dec, unit="deg"))
    for m, tolerance in ((lossless, 1e-9), (sm, TAIL)):
        ours = K.crossmatch(m.uniq, m.probdensity, ra, dec)
        assert np.max(np.abs(ours["credible_level"] - theirs.searched_prob)) <= tolerance
    lo, hi = level_bounds(prob)
    ours = levels_at_pixels(sm, nside, nest)
    assert np.all(ours["credible_level"] >= lo - TAIL - 1e-12) and np.all(ours["credible_level"] <= hi + TAIL + 1e-12)
    outside = hi < 1 - TAIL
    area = float(K.pixel_area_sr(order))
    np.testing.assert_allclose(ours["probdensity"][outside], prob[outside] / area, rtol=1e-12)
    o, ip = K.uniq_to_order_ipix(sm.uniq)
    finest = o == order
    flat = ip[finest] if nest else hp.nest2ring(nside, ip[finest])
    np.testing.assert_array_equal(sm.distmu[finest], distmu[flat])


def test_ring_and_nested_files_give_the_same_map(tmp_path):
    nside = 64
    rng = np.random.default_rng(5)
    prob_nest = rng.random(12 * nside**2) ** 8
    prob_nest /= prob_nest.sum()
    ring_of_nest = hp.nest2ring(nside, np.arange(prob_nest.size))
    prob_ring = np.empty_like(prob_nest)
    prob_ring[ring_of_nest] = prob_nest
    write_flat(tmp_path / "n.fits.gz", nside, "NESTED", lambda a, b: {"PROB": prob_nest[a:b]})
    write_flat(tmp_path / "r.fits.gz", nside, "RING", lambda a, b: {"PROB": prob_ring[a:b]})
    n, r = (read_fits((tmp_path / f).read_bytes()) for f in ("n.fits.gz", "r.fits.gz"))
    np.testing.assert_array_equal(n.uniq, r.uniq)
    np.testing.assert_array_equal(n.probdensity, r.probdensity)


@pytest.mark.parametrize("ordering", ["NESTED", "RING"])
def test_several_pixels_per_row_give_the_same_map(tmp_path, ordering):
    """healpy writes 1024 pixels a row; with two columns each block is read from its own rows (768 a row here,
    so blocks start inside a row), and the map equals the one-pixel-a-row file's."""
    from astropy.io import fits

    nside, per_row = 64, 768
    rng = np.random.default_rng(9)
    prob = rng.random(12 * nside**2) ** 8
    prob /= prob.sum()
    mu = rng.uniform(10, 500, prob.size)
    write_flat(tmp_path / "one.fits.gz", nside, ordering, lambda a, b: {"PROB": prob[a:b], "DISTMU": mu[a:b]},
               columns=("PROB", "DISTMU"))
    hdu = fits.BinTableHDU.from_columns([
        fits.Column(name="PROB", format=f"{per_row}E", array=prob.astype(np.float32).reshape(-1, per_row)),
        fits.Column(name="DISTMU", format=f"{per_row}E", array=mu.astype(np.float32).reshape(-1, per_row))])
    hdu.header["PIXTYPE"], hdu.header["ORDERING"], hdu.header["NSIDE"] = "HEALPIX", ordering, nside
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp_path / "rows.fits")
    one, rows = (read_fits((tmp_path / f).read_bytes()) for f in ("one.fits.gz", "rows.fits"))
    np.testing.assert_array_equal(rows.uniq, one.uniq)
    np.testing.assert_array_equal(rows.probdensity, one.probdensity)
    np.testing.assert_array_equal(rows.distmu, one.distmu)


def test_a_synthetic_nside_4096_map(tmp_path):
    """201 M pixels, zero outside a 1.5° disc: a few tens of thousands of tiles, every credible level within
    1e-6 of the flat map's own (computed on the disc's pixels: the rest hold no probability)."""
    nside = 4096
    vec = hp.ang2vec(200.0, -40.0, lonlat=True)
    disc = np.sort(hp.query_disc(nside, vec, np.radians(1.5), nest=True))
    ra, dec = hp.pix2ang(nside, disc, nest=True, lonlat=True)
    d = K.angular_distance(ra, dec, 200.0, -40.0)
    p = np.exp(-0.5 * (d / 0.5) ** 2)
    p = (p / p.sum()).astype(np.float32)

    def block(a, b):
        out = np.zeros(b - a, dtype=np.float32)
        lo, hi = np.searchsorted(disc, [a, b])
        out[disc[lo:hi] - a] = p[lo:hi]
        return {"PROB": out}

    path = tmp_path / "n4096.fits.gz"
    write_flat(path, nside, "NESTED", block, block_pixels=1 << 22)
    sm = read_fits(path.read_bytes())
    sm.validate()
    assert len(sm.uniq) < 2 * disc.size
    lo, hi = level_bounds(p)
    ours = K.crossmatch(sm.uniq, sm.probdensity, ra, dec)["credible_level"]
    assert np.all(ours >= lo - TAIL - 1e-9) and np.all(ours <= hi + TAIL + 1e-9)
    far = K.crossmatch(sm.uniq, sm.probdensity, np.array([20.0]), np.array([40.0]))
    assert far["probdensity"][0] == 0.0


def test_bad_flat_maps_are_refused(tmp_path):
    nside = 16
    bad = np.full(12 * nside**2, 1.0 / (12 * nside**2))
    bad[7] = np.nan
    write_flat(tmp_path / "nan.fits.gz", nside, "NESTED", lambda a, b: {"PROB": bad[a:b]})
    with pytest.raises(ValidationError, match="finite and non-negative"):
        read_fits((tmp_path / "nan.fits.gz").read_bytes())
    bad[7] = -1.0
    write_flat(tmp_path / "neg.fits.gz", nside, "NESTED", lambda a, b: {"PROB": bad[a:b]})
    with pytest.raises(ValidationError, match="finite and non-negative"):
        read_fits((tmp_path / "neg.fits.gz").read_bytes())
    zero = np.zeros(12 * nside**2)
    write_flat(tmp_path / "zero.fits.gz", nside, "NESTED", lambda a, b: {"PROB": zero[a:b]})
    with pytest.raises(ValidationError, match="total probability 0"):
        read_fits((tmp_path / "zero.fits.gz").read_bytes())
    # a header that claims NSIDE 16384, and nothing after it
    import gzip

    from astropy.io import fits

    hdu = fits.BinTableHDU.from_columns([fits.Column(name="PROB", format="E")], nrows=0)
    hdu.header["NAXIS2"], hdu.header["ORDERING"] = 12 * 16384**2, "NESTED"
    claim = gzip.compress((fits.PrimaryHDU().header.tostring() + hdu.header.tostring()).encode())
    with pytest.raises(ValidationError, match="NSIDE 16384 is above 8192"):
        read_fits(claim)
    hdu.header["NAXIS2"] = 12 * 64**2
    short = gzip.compress((fits.PrimaryHDU().header.tostring() + hdu.header.tostring()).encode() + b"\0" * 2880)
    with pytest.raises(ValidationError, match="truncated"):
        read_fits(short)
    hdu.header["NAXIS2"] = 1000
    with pytest.raises(ValidationError, match="not a HEALPix map"):
        read_fits(gzip.compress((fits.PrimaryHDU().header.tostring() + hdu.header.tostring()).encode()))
