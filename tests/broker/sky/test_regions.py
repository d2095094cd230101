"""Cones and ellipses as compact multi-order maps (a circle far below the finest pixel still yields a valid
map; the GCN schema's elliptical error), and event listings that never load sky maps."""

import math
from datetime import datetime

import numpy as np
import pytest
import sqlalchemy as sa

from broker.errors import ValidationError
from broker.sky import gcn
from broker.sky import kernels as K


@pytest.mark.parametrize("error_deg", [1e-9, 1e-7, 0.0013, 0.5, 30.0])
def test_cones_of_any_size_are_valid_maps(error_deg):
    sm = gcn.cone_skymap(150.0, -35.0, error_deg)
    sm.validate(tolerance=1e-9)
    assert len(sm.uniq) < 60_000
    at = K.crossmatch(sm.uniq, sm.probdensity, np.array([150.0]), np.array([-35.0]))
    assert at["probdensity"][0] == sm.probdensity.max()  # the densest tile holds the centre


def test_a_cone_below_the_finest_pixel_is_the_pixel_that_holds_it():
    sm = gcn.cone_skymap(10.0, 20.0, 1e-9)
    order, ipix = K.uniq_to_order_ipix(sm.uniq)
    assert list(order) == [29] and sm.total_probability == pytest.approx(1.0)
    with pytest.raises(ValidationError, match="error"):
        gcn.cone_skymap(10.0, 20.0, 1e-320)


def test_an_elliptical_error_in_a_json_notice():
    notice = {"instrument": "WXT", "trigger_time": "2026-11-20T10:00:00Z", "ra": 30.0, "dec": 10.0,
              "ra_dec_error": [0.5, 0.1, 90.0], "id": ["01709"]}
    parsed = gcn.parse_json_notice(notice)
    sm = parsed.skymap
    sm.validate(tolerance=1e-9)
    assert parsed.localization_name == "30.00000_10.00000_0.50000_0.10000_90.00000"
    # position angle 90°: the major axis runs east-west
    east = K.crossmatch(sm.uniq, sm.probdensity, np.array([30.0 + 0.45 / math.cos(math.radians(10))]),
                        np.array([10.0]))
    north = K.crossmatch(sm.uniq, sm.probdensity, np.array([30.0]), np.array([10.0 + 0.15]))
    assert east["probdensity"][0] > 0 and not north["probdensity"][0] > 0  # outside: no tile (NaN), as ligo
    for bad, field in (([0.5, 0.1], "ra_dec_error"), ([0.5, "wide", 3], "ra_dec_error[1]"),
                       ([0.0, 0.1, 0], "ra_dec_error.amaj")):
        with pytest.raises(ValidationError) as exc:
            gcn.parse_json_notice({**notice, "ra_dec_error": bad})
        assert exc.value.field == field


def test_listing_events_never_loads_maps(admin, engine, session_factory):
    """GET /api/gcn_event answers from the events' rows: neither the maps' arrays nor the notices' contents
    (an LVK notice carries its map) are read from the database."""
    notice = {"instrument": "WXT", "id": ["02001"], "trigger_time": "2026-11-20T10:00:00", "ra": 30.0,
              "dec": 10.0, "ra_dec_error": [2.0, 1.0, 45.0]}  # an ellipse, through the API
    r = admin.post("/api/gcn_event", json={"json": notice})
    assert r.status_code == 200, r.text
    statements = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        with session_factory() as session:
            out = gcn.list_events(session, None, start_date=datetime(2026, 11, 19), end_date=datetime(2026, 11, 21))
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    assert any(e["dateobs"].startswith("2026-11-20T10:00:00") and e["localizations"] for e in out["events"])
    text = "\n".join(statements)
    assert "localizations.uniq" not in text and "localizations.probdensity" not in text
    assert "gcnnotices.content" not in text


def test_tiles_go_with_their_localization(admin, engine):
    """Tiles have no foreign key (its per-row check was most of the cost of storing a large map): a trigger
    deletes them with their localization, and with their event's."""
    def tiles(loc_id):
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM localizationtiles WHERE localization_id = :i"),
                                {"i": loc_id}).scalar()

    dateobs = "2026-11-21T03:04:05"
    r = admin.post("/api/gcn_event", json={"dateobs": dateobs, "skymap": {"ra": 10.0, "dec": 5.0, "error": 1.0}})
    assert r.status_code == 200, r.text
    r = admin.post("/api/localization", json={"dateobs": dateobs, "localization_name": "second", "ra": 11.0,
                                               "dec": 5.0, "error": 0.5})
    assert r.status_code == 200, r.text
    second = r.json()["data"]["localization_id"]
    ev = admin.get(f"/api/gcn_event/{dateobs}").json()["data"]
    first = next(loc["id"] for loc in ev["localizations"] if loc["id"] != second)
    assert tiles(first) > 0 and tiles(second) > 0
    assert admin.delete(f"/api/localization/{dateobs}/name/second").status_code == 200
    assert tiles(second) == 0 and tiles(first) > 0
    assert admin.delete(f"/api/gcn_event/{dateobs}").status_code == 200
    assert tiles(first) == 0
