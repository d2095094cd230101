"""The pages' interactive plots, made with Bokeh (as SkyPortal's) and embedded as JSON documents that
the page's BokehJS (served from Bokeh's own wheel) renders. Building and serialising Bokeh's models costs
~0.2 s a plot whatever its data, so a document is made once (per set of bands; per localization) and the
page's script puts the request's own data into its named sources (``skybroker.plot``). Glyph
renderers carry names the browser tests read back: ``det:<band>``, ``lim:<band>``, ``flux:<band>``,
``contour:<level>`` and ``sources``."""

from __future__ import annotations

import collections
import functools
import json
import threading

import numpy as np

from bokeh.embed import json_item
from bokeh.models import ColumnDataSource, HoverTool, Legend, TabPanel, Tabs
from bokeh.palettes import Category10_10
from bokeh.plotting import figure

from broker.objects.objs import DETECTION_SNR

# SkyPortal's band colours for the common surveys; others take the next colour of Category10
BAND_COLORS = {"ztfg": "#28a745", "ztfr": "#dc3545", "ztfi": "#f2b600", "lsstu": "#6a3d9a", "lssty": "#7f7f7f",
               "lsstg": "#2ca02c", "lsstr": "#d62728", "lssti": "#ff7f0e", "lsstz": "#8c564b",
               "sdssu": "#6a3d9a", "sdssg": "#2ca02c", "sdssr": "#d62728", "sdssi": "#ff7f0e", "sdssz": "#8c564b"}
TOOLS = "pan,wheel_zoom,box_zoom,reset,save"


def _colors(bands: list[str]) -> dict[str, str]:
    out, spare = {}, iter(Category10_10 * 4)
    for b in bands:
        out[b] = BAND_COLORS.get(b) or next(spare)
    return out


def is_detection(p: dict) -> bool:
    """A detection: a magnitude at S/N >= 5 (SkyPortal's photometry_detection_threshold_nsigma); any other
    point with a limiting magnitude is drawn as an upper limit."""
    return p.get("mag") is not None and (p.get("snr") is None or p["snr"] >= DETECTION_SNR)


def light_curve(points: list[dict]) -> tuple[str, str]:
    """What the page embeds: the light curve's Bokeh document for these points' bands (made once per set
    of bands: building and serialising Bokeh's models costs ~0.2 s, the points almost nothing) and the
    points' columns by data-source name, which the page's script puts into the document's sources."""
    return light_curve_doc(tuple(sorted({p["filter"] for p in points}))), json.dumps(light_curve_data(points))


def light_curve_data(points: list[dict]) -> dict[str, dict[str, list]]:
    """The columns of each data source of :func:`light_curve_doc`, by its name (``src:det:<band>``,
    ``src:lim:<band>``, ``src:flux:<band>``): every point once in magnitude (a detection, or its limit)
    and once in flux (if it has one).

    ``points``: photometry serialised in the "both" format (``mjd``, ``filter``, ``mag``, ``magerr``,
    ``limiting_mag``, ``snr``, ``flux``, ``fluxerr``)."""
    out: dict[str, dict[str, list]] = {}
    for band in sorted({p["filter"] for p in points}):
        mine = [p for p in points if p["filter"] == band]
        det = [p for p in mine if is_detection(p)]
        lim = [p for p in mine if not is_detection(p) and p.get("limiting_mag") is not None]
        with_flux = [p for p in mine if p.get("flux") is not None]
        out[f"src:det:{band}"] = {
            "mjd": [p["mjd"] for p in det], "mag": [p["mag"] for p in det],
            "lo": [p["mag"] - (p["magerr"] or 0) for p in det], "hi": [p["mag"] + (p["magerr"] or 0) for p in det],
            "magerr": [p["magerr"] for p in det], "id": [p["id"] for p in det],
            "origin": [p.get("origin") or "" for p in det]}
        out[f"src:lim:{band}"] = {
            "mjd": [p["mjd"] for p in lim], "limiting_mag": [p["limiting_mag"] for p in lim],
            "id": [p["id"] for p in lim], "origin": [p.get("origin") or "" for p in lim]}
        out[f"src:flux:{band}"] = {
            "mjd": [p["mjd"] for p in with_flux], "flux": [p["flux"] for p in with_flux],
            "lo": [p["flux"] - (p["fluxerr"] or 0) for p in with_flux],
            "hi": [p["flux"] + (p["fluxerr"] or 0) for p in with_flux],
            "fluxerr": [p["fluxerr"] for p in with_flux], "id": [p["id"] for p in with_flux]}
    return out


@functools.lru_cache(maxsize=256)
def light_curve_doc(bands: tuple[str, ...]) -> str:
    """:func:`light_curve_model` as a Bokeh JSON document, made once per set of bands."""
    return json.dumps(json_item(light_curve_model(bands)))


def light_curve_model(bands: tuple[str, ...]) -> Tabs:
    """A light curve with empty sources: a magnitude tab (detections with 1σ bars, upper limits as down
    triangles, brighter up) and a flux tab (µJy, zero point 23.9, each point with its bar), a legend entry
    per band that hides it on click. Renderers are named ``det:<band>``, ``lim:<band>``, ``flux:<band>``,
    their sources ``src:`` + that."""
    colors = _colors(list(bands))
    mag = figure(height=360, sizing_mode="stretch_width", tools=TOOLS, x_axis_label="MJD",
                 y_axis_label="AB magnitude", title="Magnitude")
    mag.y_range.flipped = True
    flux = figure(height=360, sizing_mode="stretch_width", tools=TOOLS, x_axis_label="MJD",
                  y_axis_label="flux (µJy)", title="Flux", x_range=mag.x_range)
    mag_items, flux_items = [], []
    for band in bands:
        c = colors[band]
        src = ColumnDataSource({k: [] for k in ("mjd", "mag", "lo", "hi", "magerr", "id", "origin")},
                               name=f"src:det:{band}")
        bars = mag.segment("mjd", "lo", "mjd", "hi", source=src, color=c, line_alpha=0.7)
        dots = mag.scatter("mjd", "mag", source=src, size=6, color=c, name=f"det:{band}")
        lsrc = ColumnDataSource({k: [] for k in ("mjd", "limiting_mag", "id", "origin")}, name=f"src:lim:{band}")
        limits = mag.scatter("mjd", "limiting_mag", source=lsrc, size=7, color=c, fill_alpha=0.15,
                             marker="inverted_triangle", name=f"lim:{band}")
        mag_items.append((band, [bars, dots, limits]))
        fsrc = ColumnDataSource({k: [] for k in ("mjd", "flux", "lo", "hi", "fluxerr", "id")},
                                name=f"src:flux:{band}")
        fbars = flux.segment("mjd", "lo", "mjd", "hi", source=fsrc, color=c, line_alpha=0.7)
        fdots = flux.scatter("mjd", "flux", source=fsrc, size=6, color=c, name=f"flux:{band}")
        flux_items.append((band, [fbars, fdots]))
    mag.add_tools(HoverTool(renderers=[r for _, rs in mag_items for r in rs[1:]],
                            tooltips=[("MJD", "@mjd{0.00000}"), ("mag", "@mag{0.00} ± @magerr{0.00}"),
                                      ("limit", "@limiting_mag{0.00}"), ("id", "@id"), ("origin", "@origin")]))
    flux.add_tools(HoverTool(renderers=[rs[1] for _, rs in flux_items],
                             tooltips=[("MJD", "@mjd{0.00000}"), ("flux", "@flux{0.00} ± @fluxerr{0.00} µJy"),
                                       ("id", "@id")]))
    for fig, items in ((mag, mag_items), (flux, flux_items)):
        fig.add_layout(Legend(items=items, click_policy="hide", location="top_left"), "right")
    return Tabs(tabs=[TabPanel(child=mag, title="Magnitude"), TabPanel(child=flux, title="Flux")],
                sizing_mode="stretch_width", name="light-curve")


# -- the sky: a Mollweide view (RA increasing to the left, centred on RA 180°, as ligo.skymap's
#    "astro mollweide") -----------------------------------------------------------------------------

SQRT2 = np.sqrt(2.0)
SKY_CENTER_RA = 180.0
SKY_GRID = (360, 180)  # the probability image's pixels (columns, rows)


def mollweide(ra_deg, dec_deg, center_ra: float = SKY_CENTER_RA):
    """(x, y) Mollweide coordinates of positions [deg]: x in [-2√2, 2√2] (east, larger RA, to the left),
    y in [-√2, √2]. The auxiliary angle solves 2θ + sin 2θ = π sin φ by Newton's method."""
    ra = np.asarray(ra_deg, dtype=float)
    lat = np.radians(np.asarray(dec_deg, dtype=float))
    lon = np.radians((ra - center_ra + 180.0) % 360.0 - 180.0)
    theta = lat.copy()
    target = np.pi * np.sin(lat)
    for _ in range(50):
        denom = 2.0 + 2.0 * np.cos(2.0 * theta)  # 0 at the poles, where θ = φ already
        ok = denom > 1e-12
        step = np.where(ok, (2.0 * theta + np.sin(2.0 * theta) - target) / np.where(ok, denom, 1.0), 0.0)
        theta = theta - step
        if np.all(np.abs(step) < 1e-12):
            break
    x = -2.0 * SQRT2 / np.pi * lon * np.cos(theta)
    y = SQRT2 * np.sin(theta)
    return x, y


def inverse_mollweide(x, y, center_ra: float = SKY_CENTER_RA):
    """(ra, dec) [deg] of Mollweide points, NaN outside the ellipse."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    inside = (x / (2 * SQRT2)) ** 2 + (y / SQRT2) ** 2 <= 1.0
    theta = np.arcsin(np.clip(y / SQRT2, -1, 1))
    lat = np.arcsin(np.clip((2 * theta + np.sin(2 * theta)) / np.pi, -1, 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        lon = -np.pi * x / (2 * SQRT2 * np.cos(theta))
    ra = np.where(inside, (center_ra + np.degrees(lon)) % 360.0, np.nan)
    dec = np.where(inside, np.degrees(lat), np.nan)
    return ra, dec


def _split_at_wraps(xs, ys, jump: float = 1.0) -> tuple[list, list]:
    """A projected path cut where it jumps across the projection's edge."""
    cuts = np.flatnonzero(np.abs(np.diff(xs)) > jump) + 1
    return ([list(p) for p in np.split(xs, cuts) if len(p) > 1], [list(p) for p in np.split(ys, cuts) if len(p) > 1])


def _graticule(fig) -> None:
    xs, ys = [], []
    decs = np.linspace(-90, 90, 181)
    for ra in range(0, 360, 30):
        x, y = mollweide(np.full_like(decs, ra + 1e-9), decs)
        xs.append(list(x)), ys.append(list(y))
    ras = np.linspace(SKY_CENTER_RA - 179.999, SKY_CENTER_RA + 179.999, 361)
    for dec in range(-60, 90, 30):
        x, y = mollweide(ras, np.full_like(ras, float(dec)))
        xs.append(list(x)), ys.append(list(y))
    fig.multi_line(xs, ys, color="#9aa3af", line_alpha=0.5, line_width=1)
    hours = list(range(0, 24, 2))
    lx, ly = mollweide([h * 15.0 for h in hours], [0.0] * len(hours))
    fig.text(lx, ly, text=[f"{h}h" for h in hours], text_font_size="9px", text_color="#6b7280",
             text_align="center", text_baseline="bottom")


def sky_sources(sources: list[dict]) -> str:
    """The columns of :func:`sky_map`'s ``src:sources`` for these sources ({id, ra, dec}), as JSON."""
    x, y = mollweide([s["ra"] for s in sources], [s["dec"] for s in sources])
    return json.dumps({"src:sources": {"x": list(x), "y": list(y), "id": [s["id"] for s in sources],
                                       "ra": [s["ra"] for s in sources], "dec": [s["dec"] for s in sources]}})


_SKY_DOCS: "collections.OrderedDict[object, tuple[str, tuple]]" = collections.OrderedDict()
_SKY_DOCS_MAX = 32
_SKY_LOCK = threading.Lock()


def sky_map(key, uniq, probdensity, contour: dict, title: str) -> tuple[str, tuple | None]:
    """A localization on the whole sky as a Bokeh JSON document, made once per ``key`` (the localization
    and when it changed; the other arguments are read only then), and the 90% region's bounds in its
    coordinates (x0, x1, y0, y1) for the page's zoom: the probability density as an image, the credible
    contours of ``contour`` (SkyPortal's GeoJSON, [ra, dec] paths per level) as lines named
    ``contour:<level>``, and an empty source ``src:sources`` for the page's sources (:func:`sky_sources`),
    drawn as points named ``sources``."""
    with _SKY_LOCK:
        if key in _SKY_DOCS:
            _SKY_DOCS.move_to_end(key)
            return _SKY_DOCS[key]
    made = _sky_map(uniq, probdensity, contour, title)
    with _SKY_LOCK:
        _SKY_DOCS[key] = made
        while len(_SKY_DOCS) > _SKY_DOCS_MAX:
            _SKY_DOCS.popitem(last=False)
    return made


def _sky_map(uniq, probdensity, contour: dict, title: str) -> tuple[str, tuple | None]:
    from bokeh.models import ColorBar, LinearColorMapper
    from bokeh.palettes import Viridis256

    from broker.sky import kernels as K

    w, h = SKY_GRID
    gx, gy = np.meshgrid(np.linspace(-2 * SQRT2, 2 * SQRT2, w), np.linspace(-SQRT2, SQRT2, h))
    ra, dec = inverse_mollweide(gx, gy)
    inside = ~np.isnan(ra)
    density = np.zeros(gx.shape)
    idx = K.locate(np.asarray(uniq), ra[inside], dec[inside])
    density[inside] = np.where(idx >= 0, np.asarray(probdensity)[np.clip(idx, 0, None)], 0.0)
    top = density.max()
    # 0: off the sky (transparent); 1..255: the density on a square-root scale
    image = np.zeros(gx.shape, dtype=np.uint8)
    image[inside] = 1 + np.round(254 * np.sqrt(density[inside] / top if top > 0 else 0.0)).astype(np.uint8)
    fig = figure(height=460, sizing_mode="stretch_width", tools=TOOLS, match_aspect=True, title=title,
                 x_range=(-2 * SQRT2 * 1.02, 2 * SQRT2 * 1.02), y_range=(-SQRT2 * 1.04, SQRT2 * 1.04), name="sky")
    fig.axis.visible = False
    fig.grid.visible = False
    mapper = LinearColorMapper(palette=["#00000000", *Viridis256[1:]], low=0, high=255)
    fig.image(image=[image], x=-2 * SQRT2, y=-SQRT2, dw=4 * SQRT2, dh=2 * SQRT2, color_mapper=mapper,
              name="density")
    bar = ColorBar(color_mapper=LinearColorMapper(palette=Viridis256, low=0, high=float(top)), width=10,
                   title="prob. density [1/sr] (square-root scale)")
    fig.add_layout(bar, "right")
    _graticule(fig)
    bounds = None
    colors = {50: "#ffffff", 90: "#ff7f0e"}
    for feature in contour.get("features", []):
        level = feature["properties"].get("credible_level")
        if feature["geometry"]["type"] != "MultiLineString":
            continue
        xs, ys = [], []
        for path in feature["geometry"]["coordinates"]:
            arr = np.asarray(path, dtype=float)
            px, py = mollweide(arr[:, 0], arr[:, 1])
            sx, sy = _split_at_wraps(px, py)
            xs += sx
            ys += sy
        fig.multi_line(xs, ys, color=colors.get(level, "#d62728"), line_width=2, name=f"contour:{level}",
                       legend_label=f"{level}% credible region")
        if level == max(colors) and xs:
            allx, ally = np.concatenate(xs), np.concatenate(ys)
            pad = 0.05 + 0.1 * max(np.ptp(allx), np.ptp(ally))
            bounds = (float(allx.min() - pad), float(allx.max() + pad), float(ally.min() - pad),
                      float(ally.max() + pad))
    src = ColumnDataSource({k: [] for k in ("x", "y", "id", "ra", "dec")}, name="src:sources")
    dots = fig.scatter("x", "y", source=src, size=7, color="#e11d48", line_color="#ffffff", name="sources",
                       legend_label="sources")
    fig.add_tools(HoverTool(renderers=[dots], tooltips=[("source", "@id"), ("RA, Dec", "@ra{0.0000}, @dec{0.0000}")]))
    if fig.legend:
        fig.legend.location = "bottom_left"
        fig.legend.background_fill_alpha = 0.6
    return json.dumps(json_item(fig)), bounds
