"""GCN events and localizations as SkyPortal clients send and read them (issue 10).

Written from SkyPortal's GCN handlers and API tests (handlers/api/gcn.py, gcn_event_obj.py, gcn_crossmatch.py,
utils/gcn.py): the notice forms (VOEvent, igwn.gwalert and Einstein Probe JSON, the dictionary form with each
sky-map form), whole-second event times, tags, aliases, properties, list filters, localizations with their
GeoJSON contours, maps and properties, downloads, the localization crossmatch, triggered allocations and
sources confirmed for an event. Real notices: /work/shared/data/gcn (LVK) and tests/data/gcn (Swift, Fermi,
Einstein Probe; from SkyPortal's test data).
"""

import base64
import json
import math
import random
import uuid
from pathlib import Path

import healpy as hp
import numpy as np
import pytest

from broker.sky import kernels as K
from broker.sky.mapio import read_fits

from .test_envelope import assert_error

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "gcn"
OURS = Path(__file__).resolve().parents[1] / "data" / "gcn"


def post_once(client, body, dateobs):
    """SkyPortal's test idiom: post unless the event is there (a notice is stored once per session)."""
    if client.get(f"/api/gcn_event/{dateobs}").status_code == 404:
        r = client.post("/api/gcn_event", json=body)
        assert r.status_code == 200, r.text
        return r.json()["data"]
    return None


def event(client, dateobs, **params):
    r = client.get(f"/api/gcn_event/{dateobs}", params=params)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def unique_time():
    """A fresh whole-second event time in 2011: long past, so never "recent" for the alert crossmatch."""
    n = uuid.uuid4().int
    return f"2011-{1 + n % 12:02d}-{1 + (n >> 4) % 28:02d}T{(n >> 9) % 24:02d}:{(n >> 14) % 60:02d}:{(n >> 20) % 60:02d}"


def test_swift_notices_join_by_trigger_and_keep_arcsecond_circles(admin):
    xml1 = (OURS / "SWIFT_1125809-092.xml").read_text()
    xml2 = (OURS / "SWIFT_1125809-104.xml").read_text()
    dateobs = "2022-09-30 11:11:52"  # SkyPortal's whole-second look-up (the notice says 11:11:52.12)
    if admin.get(f"/api/gcn_event/{dateobs}").status_code == 404:
        for xml in (xml1, xml2):
            r = admin.post("/api/gcn_event", json={"xml": xml})
            assert r.status_code == 200, r.text
            assert set(r.json()["data"]) == {"gcnevent_id", "dateobs", "notice_id", "localization_pending", "skymap_url"}
            assert r.json()["data"]["localization_pending"] is False  # a circle: stored at once
    ev = event(admin, dateobs)
    assert ev["dateobs"] == "2022-09-30T11:11:52"
    assert ev["trigger_id"] == "1125809"
    names = {loc["localization_name"] for loc in ev["localizations"]}
    # the XRT notice (11:14:42, same TrigID) joined the BAT event; its 0.0013 deg circle is a map
    assert names == {"64.71490_13.35000_0.00130", "64.73730_13.35170_0.05000"}
    assert {"SWIFT", "GRB"} <= set(ev["tags"])
    assert sorted(n["notice_type"] for n in ev["gcn_notices"]) == ["SWIFT_BAT_GRB_POS_ACK", "SWIFT_XRT_POSITION"]
    assert all(n["has_localization"] and n["localization_ingested"] for n in ev["gcn_notices"])
    assert ev["properties"] and "Rate_Signif" in {k for p in ev["properties"] for k in p["data"]}
    tiny = admin.get(f"/api/localization/{dateobs}/name/64.71490_13.35000_0.00130").json()["data"]
    order, _ = K.uniq_to_order_ipix(np.array(tiny["uniq"]))
    assert order.min() >= 19  # at least 16 pixels across 4.7 arcsec
    total = np.sum(np.array(tiny["probdensity"]) * K.pixel_area_sr(order))
    assert total == pytest.approx(1.0, rel=1e-9)
    # 90% of a 2-D Gaussian lies within sqrt(2 ln 10) sigma
    assert tiny["area_90"] == pytest.approx(math.pi * (0.0013 * math.sqrt(2 * math.log(10))) ** 2, rel=0.02)
    # a re-posted VOEvent is stored once: SkyPortal's 400 naming the ivorn
    r = admin.post("/api/gcn_event", json={"xml": xml2})
    assert_error(r, 400, "ivo://nasa.gsfc.gcn/SWIFT#XRT_Pos_1125809-104")
    assert len(event(admin, dateobs)["gcn_notices"]) == 2


def test_fermi_notice_map_contour_and_flat_map(admin):
    xml = (OURS / "GRB180116A_Fermi_GBM_Gnd_Pos.xml").read_text()
    dateobs = "2018-01-16 00:36:53"  # 00:36:52.81 rounded
    post_once(admin, {"xml": xml}, dateobs)
    ev = event(admin, dateobs, excludeNoticeContent="true")
    assert ev["dateobs"] == "2018-01-16T00:36:53"
    assert "GRB" in ev["tags"] and "Fermi" in ev["tags"] and "FERMI#bn180116026" in ev["aliases"]
    assert ev["lightcurve"].startswith("https://heasarc.gsfc.nasa.gov/")
    assert "content" not in ev["gcn_notices"][0]
    assert "<VOEvent" in event(admin, dateobs)["gcn_notices"][0]["content"] or \
        "VOEvent" in event(admin, dateobs)["gcn_notices"][0]["content"]
    name = "214.74000_28.14000_11.19000"
    (summary,) = [loc for loc in ev["localizations"] if loc["localization_name"] == name]
    assert summary["center"]["ra"] == pytest.approx(214.74) and summary["center"]["dec"] == pytest.approx(28.14)
    loc = admin.get(f"/api/localization/{dateobs}/name/{name}", params={"include2DMap": True}).json()["data"]
    assert loc["dateobs"] == "2018-01-16T00:36:53" and loc["localization_name"] == name
    flat = np.array(loc["flat_2d"])
    assert flat.size == hp.nside2npix(512) and np.isclose(flat.sum(), 1)
    # the flat map is RING ordered: its peak is at the circle's centre
    ra, dec = hp.pix2ang(512, int(np.argmax(flat)), lonlat=True)
    assert K.angular_distance(ra, dec, 214.74, 28.14) < 0.2
    # GeoJSON contour: the densest point, then the 50% and 90% circles at sqrt(2 ln 2) and sqrt(2 ln 10) sigma
    features = loc["contour"]["features"]
    assert [f["properties"]["credible_level"] for f in features] == [0, 50, 90]
    assert features[0]["geometry"]["type"] == "Point"
    for f, radius in ((features[1], 11.19 * math.sqrt(2 * math.log(2))),
                      (features[2], 11.19 * math.sqrt(2 * math.log(10)))):
        assert f["geometry"]["type"] == "MultiLineString"
        pts = np.array([p for line in f["geometry"]["coordinates"] for p in line])
        d = K.angular_distance(pts[:, 0], pts[:, 1], 214.74, 28.14)
        assert np.all(np.abs(d - radius) < 1.0), (d.min(), d.max(), radius)
    # SkyPortal's localization properties and tags
    props = loc["properties"][0]["data"]
    assert props["area_90"] == pytest.approx(loc["area_90"]) and 0 < props["probability_500"] < 0.9
    assert {t["text"] for t in loc["tags"]} == set()  # 1200 sq. deg. is above every area threshold
    assert "area_90" in admin.get("/api/localization/properties").json()["data"]


def test_einstein_probe_json_and_localization_fields(admin):
    notice = (OURS / "EP240508.json").read_text()
    dateobs = "2024-05-08T07:38:01"
    post_once(admin, {"json": notice}, dateobs)  # a JSON string, as SkyPortal's test sends it
    ev = event(admin, dateobs)
    assert ev["dateobs"] == dateobs and "Einstein Probe" in ev["tags"]
    name = "229.83800_-29.74700_0.05090"
    loc = admin.get(f"/api/localization/{dateobs}/name/{name}").json()["data"]
    for key in ("id", "dateobs", "localization_name", "uniq", "probdensity", "distmu", "contour", "created_at",
                "area_50", "area_90", "tags", "properties"):
        assert key in loc, key
    assert loc["distmu"] is None and "flat_2d" not in loc
    # the map in the response is the stored one
    fits = admin.get(f"/api/localization/{dateobs}/name/{name}/download")
    assert fits.status_code == 200 and fits.headers["Content-Type"] == "application/fits"
    assert f'filename="{name}.fits"' in fits.headers["Content-Disposition"]
    back = read_fits(fits.content)
    np.testing.assert_array_equal(back.uniq, loc["uniq"])
    np.testing.assert_allclose(back.probdensity, loc["probdensity"], rtol=1e-15)
    assert_error(admin.get(f"/api/localization/{dateobs}/name/nope"), 404)


def test_igwn_gwalert_tags_alias_and_retraction(admin):
    # the real alert, as another superevent at another time (the shared one is posted by other modules)
    prelim = json.loads((SHARED / "igwn_gwalert_preliminary.json").read_text())
    retraction = json.loads((SHARED / "igwn_gwalert_retraction.json").read_text())
    sid = f"MS11{uuid.uuid4().hex[:6]}"
    day = 1 + uuid.uuid4().int % 28
    prelim.update(superevent_id=sid, time_created=f"2011-06-{day:02d}T12:01:07Z")
    prelim["event"]["time"] = f"2011-06-{day:02d}T11:57:26.395Z"
    retraction.update(superevent_id=sid, time_created=f"2011-06-{day:02d}T12:10:57Z")
    dateobs = f"2011-06-{day:02d}T11:57:26"  # whole seconds, as SkyPortal
    r = admin.post("/api/gcn_event", json={"json": json.dumps(prelim)})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["dateobs"] == dateobs
    ev = event(admin, dateobs)
    assert ev["dateobs"] == dateobs
    assert {"GW", "BNS", "Significant"} <= set(ev["tags"]) and ev["aliases"] == [f"LVC#{sid}"]
    assert ev["gcn_notices"][0]["notice_type"] == "LVC_PRELIMINARY" and ev["gcn_notices"][0]["stream"] == "LVC"
    assert ev["properties"][0]["data"]["BNS"] > 0.99 and "FAR" in ev["properties"][0]["data"]
    name = f"{sid}-PRELIMINARY.multiorder.fits"
    assert [loc["localization_name"] for loc in ev["localizations"]] == [name]
    sm = read_fits(base64.b64decode(prelim["event"]["skymap"]))
    flat = admin.get(f"/api/localization/{dateobs}/name/{name}", params={"include2DMap": "true"}).json()["data"]
    # flat_2d is the map at NSIDE 512 in RING order, as ligo.skymap rasterizes it
    from astropy.table import Table
    from ligo.skymap.bayestar import rasterize

    theirs = hp.reorder(rasterize(Table({"UNIQ": sm.uniq, "PROBDENSITY": sm.probdensity}), 9)["PROB"], n2r=True)
    np.testing.assert_allclose(flat["flat_2d"], theirs, rtol=1e-9, atol=1e-15)
    # the 90% contour encloses the 90% region: its points lie at credible levels near 0.9
    lines = flat["contour"]["features"][2]["geometry"]["coordinates"]
    pts = np.array([p for line in lines for p in line])
    cl = K.crossmatch(sm.uniq, sm.probdensity, pts[:, 0], pts[:, 1])["credible_level"]
    assert np.median(np.abs(cl - 0.9)) < 0.03
    # the retraction finds the event by its superevent (it has no event time) and tags it
    r = admin.post("/api/gcn_event", json={"json": retraction})
    assert r.status_code == 200, r.text
    ev = event(admin, dateobs)
    assert "retracted" in ev["tags"] and ev["retracted"] is True
    assert [n["notice_type"] for n in ev["gcn_notices"]] == ["LVC_PRELIMINARY", "LVC_RETRACTION"]
    assert_error(admin.post("/api/gcn_event", json={"json": retraction}), 400, "already exists")
    # removing the tag un-retracts the event
    assert admin.delete(f"/api/gcn_event/tags/{dateobs}", json={"tag": "retracted"}).status_code == 200
    assert event(admin, dateobs)["retracted"] is False


def test_dictionary_forms(admin, tmp_path):
    t = unique_time()
    # polygon, with tags and properties (SkyPortal's test_gcn_from_polygon)
    polygon = [(30.0, 60.0), (40.0, 60.0), (40.0, 70.0), (30.0, 70.0)]
    r = admin.post("/api/gcn_event", json={"dateobs": t, "tags": ["IPN", "GRB"], "properties": {"BNS": 0.9},
                                           "skymap": {"polygon": polygon, "localization_name": "poly"}})
    assert r.status_code == 200, r.text
    ev = event(admin, t.replace("T", " "))
    assert ev["dateobs"] == t and {"IPN", "GRB"} <= set(ev["tags"])
    assert ev["properties"][0]["data"] == {"BNS": 0.9}
    poly = admin.get(f"/api/localization/{t}/name/poly").json()["data"]
    area = poly["area_90"] / 0.9  # a uniform map: 90% of its area
    # 10 deg of RA between dec 60 and 70: 10 * (sin 70 - sin 60) * 180 / pi = 42.2 sq. deg.
    assert area == pytest.approx(10 * (math.sin(math.radians(70)) - math.sin(math.radians(60))) * 180 / math.pi,
                                 rel=0.03)
    # a cone without a name: SkyPortal names it by its numbers
    r = admin.post("/api/gcn_event", json={"dateobs": t, "skymap": {"ra": 12.5, "dec": -45.25, "error": 0.5}})
    assert r.status_code == 200, r.text
    # an ellipse
    r = admin.post("/api/gcn_event", json={"dateobs": t, "skymap": {
        "localization_name": "ell", "ra": 100.0, "dec": 20.0, "amaj": 4.0, "amin": 1.0, "phi": 30.0}})
    assert r.status_code == 200, r.text
    ell = admin.get(f"/api/localization/{t}/name/ell").json()["data"]
    assert ell["area_90"] / 0.9 == pytest.approx(math.pi * 4.0 * 1.0, rel=0.05)
    # multi-order arrays with a name
    uniq, dens = K.flat_to_moc(np.full(hp.nside2npix(4), 1.0 / hp.nside2npix(4)))
    r = admin.post("/api/gcn_event", json={"dateobs": t, "skymap": {
        "localization_name": "allsky", "uniq": uniq.tolist(), "probdensity": dens.tolist()}})
    assert r.status_code == 200, r.text
    # base64 FITS in SkyPortal's "name=<file>;base64,<data>" envelope, and as {localization_name, content}
    b64 = base64.b64encode((SHARED / "bayestar.fits.gz").read_bytes()).decode()
    r = admin.post("/api/gcn_event", json={"dateobs": t, "skymap": f"name=bayestar.fits.gz;base64,{b64}"})
    assert r.status_code == 200, r.text
    small = tmp_path / "small.fits"
    hp.write_map(small, np.full(hp.nside2npix(8), 1.0 / hp.nside2npix(8)), nest=True, column_names=["PROB"])
    content = base64.b64encode(small.read_bytes()).decode()
    r = admin.post("/api/gcn_event", json={"dateobs": t, "skymap": {"localization_name": "b64", "content": content}})
    assert r.status_code == 200, r.text
    # a uniform flat map is one pixel per base tile once equal siblings are merged (as ligo.skymap reads it)
    assert len(admin.get(f"/api/localization/{t}/name/b64").json()["data"]["uniq"]) == 12
    names = {loc["localization_name"] for loc in event(admin, t)["localizations"]}
    assert names == {"poly", "12.50000_-45.25000_0.50000", "ell", "allsky", "bayestar.fits.gz", "b64"}
    bay = admin.get(f"/api/localization/{t}/name/bayestar.fits.gz").json()["data"]
    assert bay["distmu"] is not None and len(bay["distmu"]) == len(bay["uniq"])
    # posting a localization name again keeps the first (as SkyPortal)
    r = admin.post("/api/gcn_event", json={"dateobs": t, "skymap": {"polygon": polygon, "localization_name": "ell"}})
    assert r.status_code == 200
    assert admin.get(f"/api/localization/{t}/name/ell").json()["data"]["area_90"] == pytest.approx(ell["area_90"])


def test_dictionary_errors_name_the_field(admin):
    t = unique_time()
    for skymap, field in (
            ("https://example.invalid/skymap.fits.gz", "skymap.url"),  # no network here: never ignored
            ("ftp://example.invalid/x.fits", "skymap.url"),
            ("not base64 at all!", "skymap"),
            ({"localization_name": "x", "nope": 1}, "nope"),
            ({"ra": 400, "dec": 0, "error": 1}, "skymap.ra"),
            ({"ra": 1, "dec": 0, "error": 0}, "skymap.error"),
            ({"localization_name": "p", "polygon": [[0, 0], [1, 1]]}, "skymap.polygon"),
            ({"localization_name": "e", "ra": 1, "dec": 1, "amaj": -1, "amin": 1, "phi": 0}, "skymap.amaj"),
    ):
        r = admin.post("/api/gcn_event", json={"dateobs": t, "skymap": skymap})
        assert_error(r, 400, field)
    assert admin.get(f"/api/gcn_event/{t}").status_code == 404  # nothing half-written
    assert_error(admin.post("/api/gcn_event", json={"dateobs": t, "group_ids": [10**9]}), 400, "group_ids")
    assert_error(admin.post("/api/gcn_event", json={"dateobs": t, "unknown": 1}), 400)
    assert_error(admin.post("/api/gcn_event", json={"json": {"instrument": "WXT"}}), 400, "trigger_time")


def test_trigger_id_groups_and_list_filters(admin, make_user):
    t1, t2 = unique_time(), unique_time()
    trig = f"T{uuid.uuid4().hex[:8]}"
    tag = f"tag-{uuid.uuid4().hex[:6]}"
    r = admin.post("/api/gcn_event", json={"dateobs": t1, "trigger_id": trig, "tags": [tag],
                                           "properties": {"BNS": 0.9, "NSBH": 0.1},
                                           "skymap": {"ra": 10.0, "dec": 10.0, "error": 1.0}})
    assert r.status_code == 200, r.text
    # a revised time with the same trigger_id updates the event (SkyPortal: trigger_id first)
    r = admin.post("/api/gcn_event", json={"dateobs": t2, "trigger_id": trig, "aliases": [f"EP#{trig}"]})
    assert r.status_code == 200 and r.json()["data"]["dateobs"] == t1
    assert admin.get(f"/api/gcn_event/{t2}").status_code == 404
    assert f"EP#{trig}" in event(admin, t1)["aliases"]

    def listed(**params):
        r = admin.get("/api/gcn_event", params={"numPerPage": 100, **params})
        assert r.status_code == 200, r.text
        return [e["dateobs"] for e in r.json()["data"]["events"]]

    assert listed(gcnTagKeep=tag) == [t1]
    assert t1 not in listed(gcnTagKeep=tag, gcnTagRemove=tag)
    assert listed(gcnTagKeep=tag, startDate=t1, endDate=t1) == [t1]
    assert listed(gcnTagKeep=tag, startDate="2032-01-01") == []
    assert listed(gcnTagKeep=tag, gcnPropertiesFilter="BNS: 0.5: gt, NSBH: 0.5: lt") == [t1]
    assert listed(gcnTagKeep=tag, gcnPropertiesFilter="BNS: 0.5: lt, NSBH: 0.5: lt") == []
    assert listed(gcnTagKeep=tag, gcnPropertiesFilter="NSBH") == [t1]
    assert listed(gcnTagKeep=tag, localizationTagKeep="< 200 sq. deg.") == [t1]
    assert listed(gcnTagKeep=tag, localizationTagRemove="< 200 sq. deg.") == []
    assert listed(gcnTagKeep=tag, localizationPropertiesFilter="area_90: 500: lt") == [t1]
    assert listed(gcnTagKeep=tag, localizationPropertiesFilter="area_90: 1: lt") == []
    assert listed(partialdateobs=t1[:16]) == [t1]
    assert listed(partialdateobs=trig.lower()) == [t1]
    page = admin.get("/api/gcn_event", params={"gcnTagKeep": tag}).json()["data"]
    assert page["totalMatches"] == 1 and set(page["events"][0]) >= {"tags", "localizations", "gcn_notices",
                                                                        "dateobs", "aliases", "trigger_id"}
    for params, field in (({"sortBy": "aliases"}, "sortBy"), ({"sortOrder": "up"}, "sortOrder"),
                          ({"gcnPropertiesFilter": "BNS: x: lt"}, "gcnPropertiesFilter"),
                          ({"gcnPropertiesFilter": "BNS: 1: like"}, "gcnPropertiesFilter"),
                          ({"localizationPropertiesFilter": "a:b"}, "localizationPropertiesFilter"),
                          ({"startDate": "yesterday-ish"}, "startDate"), ({"groupIds": "x"}, "groupIds"),
                          ({"numPerPage": 0}, "numPerPage")):
        assert_error(admin.get("/api/gcn_event", params=params), 400, field)
    asc = listed(sortBy="dateobs", sortOrder="asc", startDate="2011-01-01", endDate="2011-12-31")
    assert asc == sorted(asc) and len(asc) >= 1
    # group_ids: an event shared with a group is read by its members only
    member, outsider = make_user(prefix="gcn-member"), make_user(prefix="gcn-outsider")
    gid = member.post("/api/groups", json={"name": f"gcn-{uuid.uuid4().hex[:8]}"}).json()["data"]["id"]
    t3 = unique_time()
    r = member.post("/api/gcn_event", json={"dateobs": t3, "group_ids": [gid]})
    if r.status_code == 401:  # posting events needs "Manage GCNs" here: the admin posts for the group
        r = admin.post("/api/gcn_event", json={"dateobs": t3, "group_ids": [gid]})
    assert r.status_code == 200, r.text
    assert member.get(f"/api/gcn_event/{t3}").status_code == 200
    assert_error(outsider.get(f"/api/gcn_event/{t3}"), 404)
    assert t3 not in [e["dateobs"] for e in outsider.get("/api/gcn_event", params={
        "startDate": t3, "endDate": t3}).json()["data"]["events"]]
    assert [e["dateobs"] for e in member.get("/api/gcn_event", params={"groupIds": str(gid)}).json()["data"][
        "events"]] == [t3]


def test_tags_aliases_and_properties_routes(admin, user):
    t = unique_time()
    assert admin.post("/api/gcn_event", json={"dateobs": t, "aliases": ["LVC#S1"],
                                              "properties": {"prop_x": 1}}).status_code == 200
    text = f"mytag-{uuid.uuid4().hex[:6]}"
    r = admin.post("/api/gcn_event/tags", json={"dateobs": t, "text": text})
    assert r.status_code == 200 and isinstance(r.json()["data"]["gcntag_id"], int)
    assert text in admin.get("/api/gcn_event/tags").json()["data"]
    assert text in event(admin, t)["tags"]
    assert_error(admin.post("/api/gcn_event/tags", json={"dateobs": t}), 400, "text")
    assert_error(admin.post("/api/gcn_event/tags", json={"dateobs": "2001-01-01", "text": "x"}), 400, "dateobs")
    assert admin.delete(f"/api/gcn_event/tags/{t}", json={"tag": text}).status_code == 200
    assert text not in event(admin, t)["tags"]
    assert_error(admin.delete(f"/api/gcn_event/tags/{t}", json={"tag": text}), 404, "tag not found")
    assert "prop_x" in admin.get("/api/gcn_event/properties").json()["data"]
    # aliases
    assert admin.post(f"/api/gcn_event/{t}/alias", json={"alias": "GRB310101A"}).status_code == 200
    assert event(admin, t)["aliases"] == ["LVC#S1", "GRB310101A"]
    assert_error(admin.post(f"/api/gcn_event/{t}/alias", json={"alias": "GRB310101A"}), 400, "already in")
    assert_error(admin.post(f"/api/gcn_event/{t}/alias", json={}), 400, "alias")
    assert_error(admin.delete(f"/api/gcn_event/{t}/alias", json={"alias": "LVC#S1"}), 400, "LVC#")
    assert admin.delete(f"/api/gcn_event/{t}/alias", json={"alias": "GRB310101A"}).status_code == 200
    assert_error(admin.delete(f"/api/gcn_event/{t}/alias", json={"alias": "GRB310101A"}), 400, "not in")
    assert_error(admin.post("/api/gcn_event/2001-01-01T00:00:00/alias", json={"alias": "x"}), 404)
    assert_error(user.post(f"/api/gcn_event/{t}/alias", json={"alias": "y"}), 401, "Manage GCNs")
    # delete the event
    assert_error(user.delete(f"/api/gcn_event/{t}"), 401)  # a missing ACL: 401, as SkyPortal
    assert admin.delete(f"/api/gcn_event/{t}").status_code == 200
    assert_error(admin.get(f"/api/gcn_event/{t}"), 404, "not found")


def test_triggered_allocations(admin):
    t = unique_time()
    assert admin.post("/api/gcn_event", json={"dateobs": t}).status_code == 200
    tag = uuid.uuid4().hex[:6]
    gid = admin.post("/api/groups", json={"name": f"trig-{tag}"}).json()["data"]["id"]
    tel = admin.post("/api/telescope", json={"name": f"trig tel {tag}", "nickname": "tt", "diameter": 1.0})
    assert tel.status_code == 200, tel.text
    inst = admin.post("/api/instrument", json={"name": f"trig-inst-{tag}", "type": "imager",
                                               "telescope_id": tel.json()["data"]["id"]})
    assert inst.status_code == 200, inst.text
    alloc = admin.post("/api/allocation", json={"group_id": gid, "instrument_id": inst.json()["data"]["id"],
                                                "hours_allocated": 1, "pi": "me"})
    assert alloc.status_code == 200, alloc.text
    aid = alloc.json()["data"]["id"]
    assert admin.get(f"/api/gcn_event/{t}/triggered").json()["data"] == []
    r = admin.put(f"/api/gcn_event/{t}/triggered/{aid}", json={"triggered": True})
    assert r.status_code == 200 and r.json()["data"]["triggered"] is True
    r = admin.put(f"/api/gcn_event/{t}/triggered/{aid}", json={"triggered": "passed"})
    assert r.json()["data"]["triggered"] is False
    (row,) = admin.get(f"/api/gcn_event/{t}/triggered/{aid}").json()["data"]
    assert row["allocation_id"] == aid and row["triggered"] is False
    assert event(admin, t)["gcn_triggers"][0]["allocation_id"] == aid
    assert_error(admin.put(f"/api/gcn_event/{t}/triggered/{aid}", json={"triggered": "maybe"}), 400, "triggered")
    assert_error(admin.put(f"/api/gcn_event/{t}/triggered/{10**8}", json={"triggered": True}), 400, "allocation")
    assert admin.delete(f"/api/gcn_event/{t}/triggered/{aid}").status_code == 200
    assert_error(admin.delete(f"/api/gcn_event/{t}/triggered/{aid}"), 400, "No gcn triggered status")


def _candidate(admin, ra, dec, passed_at):
    tag = uuid.uuid4().hex[:6]
    sid = admin.post("/api/streams", json={"name": f"sig-{tag}"}).json()["data"]["id"]
    gid = admin.post("/api/groups", json={"name": f"sig-{tag}"}).json()["data"]["id"]
    admin.post(f"/api/groups/{gid}/streams", json={"stream_id": sid})
    fid = admin.post("/api/filters", json={"name": "f", "stream_id": sid, "group_id": gid}).json()["data"]["id"]
    obj_id = f"sig{tag}"
    r = admin.post("/api/candidates", json={"id": obj_id, "ra": ra, "dec": dec, "filter_ids": [fid],
                                            "passed_at": passed_at})
    assert r.status_code == 200, r.text
    return obj_id


def test_sources_in_gcn_and_crossmatch(admin):
    t = unique_time()
    # a spot of the sky of its own: the admin's crossmatch sees every test's objects
    ra, dec = round(random.uniform(10, 350), 1), round(random.uniform(-60, 60), 1)
    obj_id = _candidate(admin, ra - 0.01, dec, t)
    r = admin.post("/api/gcn_event", json={"dateobs": t, "skymap": {"ra": ra, "dec": dec, "error": 0.05}})
    assert r.status_code == 200, r.text
    name = f"{ra:.5f}_{dec:.5f}_0.05000"
    (state,) = admin.get(f"/api/gcn_event/{t}/crossmatch").json()["data"]
    assert state["localization_name"] == name and state["n_matches"] == 1
    r = admin.post(f"/api/gcn_event/{t}/crossmatch")
    assert r.status_code == 200 and r.json()["data"]["matches"] == 1
    assert_error(admin.get("/api/gcn_event/2001-01-01/crossmatch"), 400, "No GCN event")
    body = {"localization_name": name, "localization_cumprob": 0.95, "source_id": obj_id, "status": "confirmed",
            "start_date": t, "end_date": "2032-01-01", "explanation": "a kilonova"}
    r = admin.post(f"/api/sources_in_gcn/{t}", json=body)
    assert r.status_code == 200, r.text
    (row,) = admin.get(f"/api/sources_in_gcn/{t}").json()["data"]
    assert row["obj_id"] == obj_id and row["dateobs"] == t and row["status"] == "confirmed"
    assert_error(admin.post(f"/api/sources_in_gcn/{t}", json=body), 400, "already")
    assert admin.get(f"/api/sources_in_gcn/{t}", params={"sourcesIDList": "someone-else"}).json()["data"] == []
    assert admin.patch(f"/api/sources_in_gcn/{t}/{obj_id}", json={"status": "rejected"}).status_code == 200
    assert admin.get(f"/api/sources_in_gcn/{t}/{obj_id}").json()["data"][0]["status"] == "rejected"
    assert_error(admin.patch(f"/api/sources_in_gcn/{t}/{obj_id}", json={"status": "great"}), 400, "status")
    for bad, field in ((dict(body, source_id="nope"), "source_id"), (dict(body, localization_name="x"),
                                                                    "Localization not found"),
                       (dict(body, localization_cumprob=2), "localization_cumprob"),
                       ({k: v for k, v in body.items() if k != "start_date"}, "start_date")):
        assert_error(admin.post(f"/api/sources_in_gcn/{t}", json=bad), 400, field)
    assert_error(admin.get("/api/sources_in_gcn/2001-01-01"), 400, "GCN event not found")
    assert admin.delete(f"/api/sources_in_gcn/{t}/{obj_id}").status_code == 200
    assert admin.get(f"/api/sources_in_gcn/{t}").json()["data"] == []
    assert_error(admin.delete(f"/api/sources_in_gcn/{t}/{obj_id}"), 400, "not confirmed")


def test_localization_crossmatch_is_the_normalised_product(admin):
    t = unique_time()
    for sky in ({"ra": 50.0, "dec": 10.0, "error": 3.0}, {"ra": 52.0, "dec": 10.0, "error": 3.0}):
        assert admin.post("/api/gcn_event", json={"dateobs": t, "skymap": sky}).status_code == 200
    locs = {loc["localization_name"]: loc["id"] for loc in event(admin, t)["localizations"]}
    id1, id2 = locs["50.00000_10.00000_3.00000"], locs["52.00000_10.00000_3.00000"]
    r = admin.get("/api/localizationcrossmatch", params={"id1": id1, "id2": id2})
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/fits"
    sm = read_fits(r.content)
    assert sm.total_probability == pytest.approx(1.0, rel=1e-9)
    # the product of two equal Gaussians peaks half-way between their centres
    i = int(np.argmax(sm.probdensity))
    o, ip = K.uniq_to_order_ipix(sm.uniq[i:i + 1])
    ra, dec = hp.pix2ang(int(2 ** o[0]), int(ip[0]), nest=True, lonlat=True)
    assert K.angular_distance(ra, dec, 51.0, 10.0) < 0.3
    assert_error(admin.get("/api/localizationcrossmatch", params={"id1": id1}), 400, "two localization")
    assert_error(admin.get("/api/localizationcrossmatch", params={"id1": id1, "id2": 10**8}), 404)
    assert isinstance(admin.get("/api/localization/tags").json()["data"], list)
