"""Sky-map kernels against ligo.skymap (an independent implementation) and closed-form answers."""

import base64
import json
import math
from pathlib import Path

import healpy as hp
import numpy as np
import pytest

from broker.sky import kernels as K
from broker.sky.mapio import read_fits

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "gcn"
ligo = pytest.importorskip("ligo.skymap.postprocess")


@pytest.fixture(scope="module")
def notice_map():
    notice = json.loads((DATA / "igwn_gwalert_preliminary.json").read_text())
    return read_fits(base64.b64decode(notice["event"]["skymap"]))


@pytest.fixture(scope="module")
def bayestar():
    return read_fits((DATA / "bayestar.fits.gz").read_bytes())


def ligo_table(sm):
    from astropy.table import Table

    return Table({"UNIQ": sm.uniq, "PROBDENSITY": sm.probdensity})


def random_positions(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 360, n), np.degrees(np.arcsin(rng.uniform(-1, 1, n)))


def test_flat_credible_levels_equal_ligo(bayestar):
    from astropy.io import fits
    from ligo.skymap.postprocess.util import find_greedy_credible_levels

    with fits.open(DATA / "bayestar.fits.gz") as h:
        prob = np.asarray(h[1].data["PROB"], dtype=float).ravel()
    ours = K.greedy_credible_levels(prob)
    theirs = find_greedy_credible_levels(prob)
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=0)
    assert bayestar.total_probability == pytest.approx(1.0, rel=1e-6)


@pytest.mark.parametrize("which", ["notice_map", "bayestar"])
def test_crossmatch_equals_ligo(which, request):
    from astropy.coordinates import SkyCoord
    from ligo.skymap.postprocess.crossmatch import crossmatch

    sm = request.getfixturevalue(which)
    ra, dec = random_positions(2000, seed=1)
    # plus positions near the mode, where the credible levels are small
    mode = np.argmax(sm.probdensity)
    o, ip = K.uniq_to_order_ipix(sm.uniq[mode:mode + 1])
    mra, mdec = hp.pix2ang(int(2 ** o[0]), int(ip[0]), nest=True, lonlat=True)
    ra = np.concatenate([ra, mra + np.linspace(-3, 3, 200)]) % 360
    dec = np.concatenate([dec, np.full(200, mdec)])
    ours = K.crossmatch(sm.uniq, sm.probdensity, ra, dec)
    theirs = crossmatch(ligo_table(sm), SkyCoord(ra, dec, unit="deg"), contours=(0.5, 0.9))
    np.testing.assert_allclose(ours["credible_level"], theirs.searched_prob, rtol=1e-9)
    np.testing.assert_allclose(ours["searched_area"], theirs.searched_area, rtol=1e-9)
    np.testing.assert_allclose(ours["probdensity"], theirs.probdensity, rtol=1e-9)
    np.testing.assert_allclose(ours["offset"], theirs.offset, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(K.credible_region_area(sm.uniq, sm.probdensity, [0.5, 0.9]), theirs.contour_areas,
                               rtol=1e-9)


def test_moc_levels_are_the_crossmatch_levels(notice_map):
    levels = K.moc_credible_levels(notice_map.uniq, notice_map.probdensity)
    o, ip = K.uniq_to_order_ipix(notice_map.uniq)
    # the centre of each pixel has that pixel's level
    ra, dec = hp.pix2ang(2 ** o, ip, nest=True, lonlat=True)
    got = K.crossmatch(notice_map.uniq, notice_map.probdensity, ra, dec)["credible_level"]
    np.testing.assert_allclose(got, levels, rtol=1e-12)
    assert levels.max() == pytest.approx(1.0, rel=1e-6)


def test_uniform_map_closed_form():
    nside = 64
    prob = np.full(hp.nside2npix(nside), 1.0 / hp.nside2npix(nside))
    uniq, dens = K.flat_to_moc(prob)
    np.testing.assert_allclose(dens, 1 / (4 * math.pi), rtol=1e-12)
    for level in (0.1, 0.5, 0.9):
        assert K.credible_region_area(uniq, dens, level) == pytest.approx(level * K.FULL_SKY_DEG2, rel=1e-12)
    assert K.area_probability(uniq, dens, 1000.0) == pytest.approx(1000.0 / K.FULL_SKY_DEG2, rel=1e-12)


def test_gaussian_map_closed_form():
    """A narrow 2-D Gaussian: the X% region is a disc of area 2πσ²·ln(1/(1-X))."""
    nside, sigma = 1024, 1.0  # deg
    ra, dec = hp.pix2ang(nside, np.arange(hp.nside2npix(nside)), nest=True, lonlat=True)
    d = K.angular_distance(ra, dec, 180.0, 0.0)
    prob = np.exp(-0.5 * (d / sigma) ** 2)
    prob /= prob.sum()
    uniq, dens = K.flat_to_moc(prob)
    for level in (0.5, 0.9):
        expected = 2 * math.pi * sigma**2 * math.log(1 / (1 - level))
        assert K.credible_region_area(uniq, dens, level) == pytest.approx(expected, rel=1e-2)
    # positions at radius r lie at credible level 1 - exp(-r²/2σ²)
    r = np.array([0.5, 1.0, 2.0])
    cl = K.crossmatch(uniq, dens, 180.0 + r, np.zeros(3))["credible_level"]
    # within one pixel (3.4 arcmin) of the exact level: d(level)/dr <= 0.61 per degree
    np.testing.assert_allclose(cl, 1 - np.exp(-r**2 / 2), atol=0.61 * hp.nside2resol(nside, arcmin=True) / 60)
    r90 = math.sqrt(2 * math.log(10))  # 2.146 deg
    assert K.inside_region(uniq, dens, 180.0 + np.array([1.0, 2.0, 2.3]), np.zeros(3), 0.9).tolist() == [
        True, True, False] and r90 > 2.0


def test_ring_and_nested_files_agree(tmp_path, bayestar):
    from astropy.io import fits

    with fits.open(DATA / "bayestar.fits.gz") as h:
        prob = np.asarray(h[1].data["PROB"], dtype=float).ravel()
    ring = hp.reorder(prob, n2r=True)
    path = tmp_path / "ring.fits"
    hp.write_map(path, ring, nest=False, overwrite=True, column_names=["PROB"])
    sm = read_fits(path.read_bytes())
    np.testing.assert_allclose(sm.probdensity, bayestar.probdensity, rtol=1e-12)


def test_bad_files_are_refused():
    from broker.errors import ValidationError

    with pytest.raises(ValidationError, match="not a FITS"):
        read_fits(b"hello")
    with pytest.raises(ValidationError, match="gzip"):
        read_fits(b"\x1f\x8b garbage")


def test_localization_scores_use_the_distance_layer():
    """Same sky position: the object whose redshift puts it near the map's distance scores higher."""
    from astropy.cosmology import Planck18

    from broker.followup.reports import localization_scores
    from broker.sky.mapio import SkyMap

    nside = 32
    prob = np.full(hp.nside2npix(nside), 1.0 / hp.nside2npix(nside))
    uniq, dens = K.flat_to_moc(prob)
    mu = np.full(uniq.size, 100.0)
    sigma = np.full(uniq.size, 10.0)
    norm = np.full(uniq.size, 1.0 / (100.0**2 + 10.0**2))  # ∫ r² N(r; mu, sigma) dr = mu² + sigma²

    z_near = 0.0224  # ~ 100 Mpc
    assert abs(Planck18.luminosity_distance(z_near).value - 100) < 5
    scores = localization_scores(SkyMap(uniq, dens, mu, sigma, norm), {"near": (10.0, 10.0, z_near), "far": (10.0, 10.0, 0.05),
                                         "unknown": (10.0, 10.0, None)})
    assert scores["near"] > scores["far"]
    assert scores["unknown"] == pytest.approx(1 / (4 * math.pi))


def test_galactic_equals_astropy():
    """The rotation kernel against astropy's ICRS → Galactic transform, poles and l = 0/360 wrap included."""
    from astropy.coordinates import SkyCoord

    from broker.sky.kernels import galactic

    rng = np.random.default_rng(7)
    ra = np.concatenate([rng.uniform(0, 360, 2000), [0.0, 266.40499, 192.85948, 359.999999, 10.0]])
    dec = np.concatenate([np.degrees(np.arcsin(rng.uniform(-1, 1, 2000))), [90.0, -28.93617, 27.12825, -90.0, 0.0]])
    lon, lat = galactic(ra, dec)
    ref = SkyCoord(ra, dec, unit="deg").galactic
    dlon = (lon - ref.l.deg + 180.0) % 360.0 - 180.0
    assert np.max(np.abs(lat - ref.b.deg)) < 1e-9
    away = np.abs(ref.b.deg) < 89.9999  # longitude is undefined at the Galactic poles
    assert np.max(np.abs(dlon[away] * np.cos(np.radians(ref.b.deg[away])))) < 1e-9
    assert np.all((lon >= 0) & (lon < 360))
    # the Galactic centre and north pole, as the IAU defines them
    assert abs(lat[-4]) < 1e-3 and abs((lon[-4] + 180) % 360 - 180) < 1e-3
    assert abs(lat[-3] - 90.0) < 1e-3
