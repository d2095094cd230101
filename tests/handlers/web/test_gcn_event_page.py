"""A GW event's page in a real browser: the real LVK preliminary alert and its sky map, its 50% and 90%
contours on a Mollweide view and the zoom to the region, the sources inside a chosen credible level, and
the default follow-up rule that fired for the replayed alert inside the region."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from broker.sky import kernels as K
from tests.broker.followup.test_followup_e2e import PAYLOAD, lco_allocation
from tests.conftest import SHARED

from .conftest import sign_in
from .scenario import Replayer

CONTOUR_POINTS = """() => {
  const out = {};
  for (const m of Bokeh.documents[0].all_models) {
    if (m.type === "GlyphRenderer" && m.name && m.name.startsWith("contour:")) {
      out[m.name] = m.data_source.data.xs.reduce((n, line) => n + line.length, 0);
    }
  }
  return out;
}"""


# the projected width and height of a named contour
EXTENT = """(name) => {
  const r = [...Bokeh.documents[0].all_models].find(m => m.type === "GlyphRenderer" && m.name === name);
  const xs = r.data_source.data.xs.flat(), ys = r.data_source.data.ys.flat();
  return [Math.max(...xs) - Math.min(...xs), Math.max(...ys) - Math.min(...ys)];
}"""


@pytest.fixture(scope="module")
def gw(admin, make_user, config, engine, session_factory, kafka_bootstrap, lco_simulator):
    alert = json.loads((SHARED / "data" / "gcn" / "igwn_gwalert_preliminary.json").read_text())
    t = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=6)  # recent: alerts crossmatch
    sid = f"MS{t:%y%m%d}{uuid.uuid4().hex[:5]}"
    alert.update(superevent_id=sid, time_created=(t + timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    alert["event"]["time"] = t.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    r = admin.post("/api/gcn_event", json={"json": json.dumps(alert)})
    assert r.status_code == 200, r.text
    dateobs = r.json()["data"]["dateobs"]
    loc, = admin.get(f"/api/gcn_event/{dateobs}").json()["data"]["localizations"]
    sky = admin.get(f"/api/localization/{dateobs}/name/{loc['localization_name']}",
                    ).json()["data"]
    uniq, density = np.asarray(sky["uniq"]), np.asarray(sky["probdensity"])
    ra, dec = loc["center"]["ra"], loc["center"]["dec"]
    far = ((ra + 180.0) % 360.0, -dec)
    rep = Replayer(admin, make_user, config, engine, session_factory, kafka_bootstrap)
    try:
        owner = rep.night.owner
        aid = lco_allocation(admin, rep.night.gid)
        r = owner.post("/api/default_followup_request", json={
            "default_followup_name": f"gw-{uuid.uuid4().hex[:8]}", "allocation_id": aid, "payload": PAYLOAD,
            "source_filter": {"filter_ids": [rep.night.fid], "localization": {"cumprob": 0.9, "max_age_days": 2}}})
        assert r.status_code == 200, r.text
        inside, outside = rep.replay([(ra, dec), far])
    finally:
        rep.close()
    for obj in (inside, outside):
        assert owner.post("/api/sources", json={"id": obj, "group_ids": [rep.night.gid]}).status_code == 200
    levels = K.crossmatch(uniq, density, np.array([ra, far[0]]), np.array([dec, far[1]]))["credible_level"]
    assert levels[0] < 0.5 and levels[1] > 0.9  # where the two fell (the kernels are tested elsewhere)
    return dict(owner=owner, dateobs=dateobs, loc=loc, inside=inside, outside=outside, sid=sid,
                rule=r.json()["data"]["id"])


def test_gw_event_page_draws_its_contours_and_zooms(page, gw):
    sign_in(page, gw["owner"])
    page.goto("/gcn_events")
    page.click(f"a[href='/gcn_events/{gw['dateobs'].replace(':', '%3A')}']")
    page.wait_for_url("**/gcn_events/**")
    assert page.locator("#event-dateobs").inner_text().startswith(gw["dateobs"])
    assert f"LVC#{gw['sid']}" in page.locator("#event-dateobs").inner_text()
    page.locator("#sky-map[data-ready='1']").wait_for()
    page.locator("#sky-map canvas").first.wait_for()
    points = page.evaluate(CONTOUR_POINTS)
    assert set(points) == {"contour:50", "contour:90"} and points["contour:50"] > 10 and points["contour:90"] > 10
    # the 90% contour encloses the 50% one: its projected extent is larger
    extent, inner = (page.evaluate(EXTENT, name) for name in ("contour:90", "contour:50"))
    assert extent[0] >= inner[0] and extent[1] >= inner[1]
    # the sources of the 90% region are drawn, as the table lists them: the one inside, not the one outside
    # (other tests' sources the user may see can be there too: the sitewide group's)
    drawn = page.evaluate("() => Bokeh.documents[0].get_model_by_name('src:sources').data.id")
    listed = page.locator("tr.region-source").evaluate_all("rs => rs.map(r => r.dataset.objId)")
    assert drawn == listed and gw["inside"] in drawn and gw["outside"] not in drawn
    whole = page.evaluate("() => { const f = Bokeh.documents[0].get_model_by_name('sky'); "
                          "return f.x_range.end - f.x_range.start; }")
    page.click("#zoom-region")
    zoomed = page.evaluate("() => { const f = Bokeh.documents[0].get_model_by_name('sky'); "
                           "return [f.x_range.start, f.x_range.end]; }")
    bounds = [float(v) for v in page.locator("#sky-map").get_attribute("data-zoom").split(",")]
    assert zoomed == pytest.approx(bounds[:2]) and zoomed[1] - zoomed[0] < whole
    assert not page.js_errors


def test_sources_in_the_chosen_credible_level_and_the_rule_that_fired(page, gw):
    sign_in(page, gw["owner"])
    page.goto(f"/gcn_events/{gw['dateobs']}")
    ids = page.locator("tr.region-source").evaluate_all("rs => rs.map(r => r.dataset.objId)")
    assert gw["inside"] in ids and gw["outside"] not in ids
    api = gw["owner"].get("/api/sources", params={"localizationDateobs": gw["dateobs"], "localizationCumprob": 0.9,
                                                  "numPerPage": 500}).json()["data"]["sources"]
    assert sorted(ids) == sorted(s["id"] for s in api)  # the API's answer for the same region
    page.fill("input[name=cumprob]", "1")
    page.click("#region-form button[type=submit]")
    page.wait_for_url("**cumprob=1**")
    assert {gw["inside"], gw["outside"]} <= set(page.locator("tr.region-source").evaluate_all(
        "rs => rs.map(r => r.dataset.objId)"))
    rows = page.locator("#fired-rules tbody tr")
    assert rows.count() == 1 and gw["inside"] in rows.first.inner_text()
    page.goto(f"/gcn_events/{gw['dateobs']}?cumprob=7")
    assert "cumprob" in page.locator("[data-error-for=cumprob]").inner_text()
