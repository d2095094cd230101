"""A source's page in a real browser: its light curve renders every point the user may see, the photometry
downloads as CSV, comments are added (and refused beside the field), and the page shows only what the
API would show that user."""

from __future__ import annotations

import csv
import io

import pytest

from .conftest import sign_in
from .scenario import replay_night

# the number of points each glyph renderer of the light curve holds, by its name (det:/lim:/flux: + band)
POINTS_BY_RENDERER = """() => {
  const out = {};
  for (const doc of Bokeh.documents) {
    for (const m of doc.all_models) {
      if (m.type === "GlyphRenderer" && m.name) out[m.name] = m.data_source.get_length();
    }
  }
  return out;
}"""


@pytest.fixture(scope="module")
def source(admin, make_user, config, engine, session_factory, kafka_bootstrap):
    night = replay_night(admin, make_user, config, engine, session_factory, kafka_bootstrap, n=1)
    owner, obj_id = night.owner, night.obj_ids[0]
    assert owner.post("/api/sources", json={"id": obj_id, "group_ids": [night.gid]}).status_code == 200
    # more points by hand: detections and non-detections (a flux under 5 sigma: an upper limit) in two bands
    inst = admin.get("/api/instrument", params={"name": "ZTF"}).json()["data"][0]["id"]
    r = owner.put("/api/photometry", json={
        "obj_id": obj_id, "instrument_id": inst, "group_ids": [night.gid], "magsys": "ab", "zp": 23.9,
        "mjd": [60000.1 + i for i in range(20)], "filter": ["ztfg", "ztfr"] * 10,
        "flux": [50.0 + i if i % 4 else 2.0 for i in range(20)], "fluxerr": [2.0] * 20})
    assert r.status_code == 200, r.text
    return night, obj_id


def test_light_curve_renders_every_point(page, source):
    night, obj_id = source
    points = night.owner.get(f"/api/sources/{obj_id}/photometry").json()["data"]
    assert len(points) > 20
    sign_in(page, night.owner)
    page.goto(f"/source/{obj_id}")
    assert page.locator("#obj-id").inner_text() == obj_id
    page.locator("#light-curve[data-ready='1']").wait_for()  # drawn, with this source's points
    # drawn: the plot's canvas is in the page and has its size
    canvas = page.locator("#light-curve canvas").first
    canvas.wait_for()
    assert canvas.bounding_box()["width"] > 300
    counts = page.evaluate(POINTS_BY_RENDERER)
    det = sum(v for k, v in counts.items() if k.startswith("det:"))
    lim = sum(v for k, v in counts.items() if k.startswith("lim:"))
    # a detection is a magnitude at S/N >= 5; every other point is drawn at its limiting magnitude
    detected = [p for p in points if p["mag"] is not None and p["snr"] >= 5]
    assert det == len(detected) and det > 0
    assert lim == sum(1 for p in points if p not in detected and p["limiting_mag"] is not None) and lim >= 5
    assert det + lim == len(points)
    fluxes = night.owner.get(f"/api/sources/{obj_id}/photometry", params={"format": "flux"}).json()["data"]
    assert sum(v for k, v in counts.items() if k.startswith("flux:")) == \
        sum(1 for p in fluxes if p["flux"] is not None)
    assert {k.split(":")[1] for k in counts if k.startswith("det:") and counts[k]} == {p["filter"] for p in detected}
    assert page.locator("#photometry tbody tr").count() == len(points)
    assert not page.js_errors


def test_photometry_downloads_as_csv(page, source):
    night, obj_id = source
    points = night.owner.get(f"/api/sources/{obj_id}/photometry", params={"format": "flux"}).json()["data"]
    sign_in(page, night.owner)
    page.goto(f"/source/{obj_id}")
    with page.expect_download() as info:
        page.click("#photometry-csv")
    rows = list(csv.DictReader(io.StringIO(open(info.value.path()).read())))
    assert len(rows) == len(points)
    assert sorted(int(r["id"]) for r in rows) == sorted(p["id"] for p in points)
    by_id = {p["id"]: p for p in points}
    for r in rows:
        flux = by_id[int(r["id"])]["flux"]
        assert (r["flux"] == "") if flux is None else float(r["flux"]) == pytest.approx(flux)


def test_comment_added_and_an_empty_one_refused(page, source):
    night, obj_id = source
    sign_in(page, night.owner)
    page.goto(f"/source/{obj_id}")
    page.click("#comment-form button[type=submit]")  # empty: the form refuses it, nothing is sent
    assert page.locator("#comment-text").evaluate("t => t.validity.valueMissing")
    assert night.owner.get(f"/api/sources/{obj_id}/comments").json()["data"] == []
    page.fill("#comment-text", "Looks like a young SN Ia; worth a spectrum.")
    page.click("#comment-form button[type=submit]")
    page.locator("#comments li", has_text="worth a spectrum").wait_for()
    comments = night.owner.get(f"/api/sources/{obj_id}/comments").json()["data"]
    assert [c["text"] for c in comments] == ["Looks like a young SN Ia; worth a spectrum."]


def test_the_page_shows_only_what_the_user_may_see(page, source, make_user):
    night, obj_id = source
    stranger = make_user(prefix="stranger")
    sign_in(page, stranger)
    resp = page.goto(f"/source/{obj_id}")
    assert resp.status == 404
    assert obj_id in page.locator(".message").inner_text()
    resp = page.goto(f"/source/{obj_id}/photometry.csv")
    assert resp.status == 404
