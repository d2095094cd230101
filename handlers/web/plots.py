"""The pages' interactive plots, made with Bokeh (as SkyPortal's) and embedded as JSON documents that
the page's BokehJS (served from Bokeh's own wheel) renders. Glyph renderers carry names the browser tests
read back: ``det:<band>``, ``lim:<band>``, ``flux:<band>`` and ``contour:<level>``."""

from __future__ import annotations

import json

from bokeh.embed import json_item
from bokeh.models import ColumnDataSource, HoverTool, Legend, TabPanel, Tabs
from bokeh.palettes import Category10_10
from bokeh.plotting import figure

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


def light_curve(points: list[dict], obj_id: str) -> str:
    """A light curve as a Bokeh JSON document: a magnitude tab (detections with 1σ bars, upper limits as
    down triangles, brighter up) and a flux tab (µJy, zero point 23.9, every point with its bar), a legend
    entry per band that hides it on click.

    ``points``: photometry serialised in the "both" format (``mjd``, ``filter``, ``mag``, ``magerr``,
    ``limiting_mag``, ``flux``, ``fluxerr``, ``zp``)."""
    bands = sorted({p["filter"] for p in points})
    colors = _colors(bands)
    mag = figure(height=360, sizing_mode="stretch_width", tools=TOOLS, x_axis_label="MJD",
                 y_axis_label="AB magnitude", title=f"{obj_id}: magnitude")
    mag.y_range.flipped = True
    flux = figure(height=360, sizing_mode="stretch_width", tools=TOOLS, x_axis_label="MJD",
                  y_axis_label="flux (µJy)", title=f"{obj_id}: flux", x_range=mag.x_range)
    mag_items, flux_items = [], []
    for band in bands:
        mine = [p for p in points if p["filter"] == band]
        det = [p for p in mine if p.get("mag") is not None]
        lim = [p for p in mine if p.get("mag") is None and p.get("limiting_mag") is not None]
        c = colors[band]
        src = ColumnDataSource({"mjd": [p["mjd"] for p in det], "mag": [p["mag"] for p in det],
                                "lo": [p["mag"] - (p["magerr"] or 0) for p in det],
                                "hi": [p["mag"] + (p["magerr"] or 0) for p in det],
                                "magerr": [p["magerr"] for p in det], "id": [p["id"] for p in det],
                                "origin": [p.get("origin") or "" for p in det]})
        bars = mag.segment("mjd", "lo", "mjd", "hi", source=src, color=c, line_alpha=0.7)
        dots = mag.scatter("mjd", "mag", source=src, size=6, color=c, name=f"det:{band}")
        lsrc = ColumnDataSource({"mjd": [p["mjd"] for p in lim], "limiting_mag": [p["limiting_mag"] for p in lim],
                                 "id": [p["id"] for p in lim], "origin": [p.get("origin") or "" for p in lim]})
        limits = mag.scatter("mjd", "limiting_mag", source=lsrc, size=7, color=c, fill_alpha=0.15,
                             marker="inverted_triangle", name=f"lim:{band}")
        mag_items.append((band, [bars, dots, limits]))
        with_flux = [p for p in mine if p.get("flux") is not None]
        fsrc = ColumnDataSource({"mjd": [p["mjd"] for p in with_flux], "flux": [p["flux"] for p in with_flux],
                                 "lo": [p["flux"] - (p["fluxerr"] or 0) for p in with_flux],
                                 "hi": [p["flux"] + (p["fluxerr"] or 0) for p in with_flux],
                                 "fluxerr": [p["fluxerr"] for p in with_flux], "id": [p["id"] for p in with_flux]})
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
        legend = Legend(items=items, click_policy="hide", location="top_left")
        fig.add_layout(legend, "right")
    tabs = Tabs(tabs=[TabPanel(child=mag, title="Magnitude"), TabPanel(child=flux, title="Flux")],
                sizing_mode="stretch_width", name="light-curve")
    return json.dumps(json_item(tabs))

