"""SkyPortal's source API: POST/GET/HEAD/PATCH/DELETE /api/sources, its list parameters,
/api/source_exists and /api/objs, as SkyPortal's handlers answer them."""

import math
import uuid

import pytest

from tests.broker.ingest.helpers import make_group_with_filter

from .test_envelope import assert_error


def oid(prefix="sp"):
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def sky(admin, make_user):
    """Alice owns a group with a filter; Bob has his own group; Mallory holds 'Manage sources' in Alice's group."""
    alice, bob = make_user(prefix="alice"), make_user(prefix="bob")
    mallory = make_user(prefix="mallory", acls=("Manage sources",))
    viewer = make_user(prefix="viewer", roles=("View only",))
    sid = admin.post("/api/streams", json={"name": f"sp-src-{uuid.uuid4().hex[:6]}"}).json()["data"]["id"]
    gid, fid = make_group_with_filter(alice, admin, sid)
    gid_b, fid_b = make_group_with_filter(bob, admin, sid)
    for who in (mallory, viewer):
        assert admin.post(f"/api/streams/{sid}/users", json={"user_id": who.user_id}).status_code == 200
        r = alice.post(f"/api/groups/{gid}/users", json={"userID": who.user_id})
        assert r.status_code == 200, r.text
    tag = uuid.uuid4().hex[:6]
    tel = admin.post("/api/telescope", json={"name": f"sp-tel-{tag}", "nickname": tag, "diameter": 1.0,
                                             "robotic": True})
    assert tel.status_code == 200, tel.text
    inst = admin.post("/api/instrument", json={"name": f"sp-cam-{tag}", "type": "imager", "filters": ["ztfg", "ztfr"],
                                               "telescope_id": tel.json()["data"]["id"]})
    assert inst.status_code == 200, inst.text
    return dict(admin=admin, alice=alice, bob=bob, mallory=mallory, viewer=viewer, gid=gid, fid=fid, gid_b=gid_b,
                fid_b=fid_b, sid=sid, inst=inst.json()["data"]["id"])


def test_post_source_takes_every_obj_field(sky):
    alice, gid = sky["alice"], sky["gid"]
    name = oid()
    body = {"id": name, "ra": 234.22, "dec": -22.33, "ra_dis": 234.2, "dec_dis": -22.3, "ra_err": 0.1,
            "dec_err": 0.2, "offset": 1.5, "t0": 59000.5, "redshift": 0.1, "redshift_error": 0.01,
            "redshift_origin": "spec", "summary": "a nice one", "altdata": {"simbad": {"class": "QSO"}},
            "dist_nearest_source": 2.0, "mag_nearest_source": 18.0, "e_mag_nearest_source": 0.1,
            "transient": True, "varstar": False, "is_roid": False, "mpc_name": None, "tns_name": "2021abc",
            "tns_info": {"objname": "2021abc"}, "score": 0.87, "origin": "Kowalski", "alias": ["alt-1"],
            "detect_photometry_count": 3, "group_ids": [gid], "refresh_source": True}
    r = alice.post("/api/sources", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["data"] == {"id": name, "saved_to_groups": [gid]}
    src = alice.get(f"/api/sources/{name}").json()["data"]
    for k, v in body.items():
        if k not in ("group_ids", "refresh_source"):
            assert src[k] == v, k
    assert src["redshift_history"][-1]["value"] == 0.1 and src["redshift_history"][-1]["origin"] == "spec"
    assert src["summary_history"][0]["summary"] == "a nice one"
    (g,) = src["groups"]
    assert g["id"] == gid and g["active"] is True and g["requested"] is False
    assert g["saved_by"]["id"] == alice.user_id and g["saved_at"]
    # derived fields, Planck18 at z = 0.1
    assert src["luminosity_distance"] == pytest.approx(475.8, rel=1e-3)
    assert src["dm"] == pytest.approx(5 * math.log10(src["luminosity_distance"] * 1e5))
    assert src["angular_diameter_distance"] == pytest.approx(src["luminosity_distance"] / 1.1 ** 2)
    assert -90 <= src["gal_lat"] <= 90 and 0 <= src["gal_lon"] < 360
    assert src["duplicates"] == [] and src["followup_requests"] == []


def test_numeric_id_and_distances_from_altdata(sky):
    alice, gid = sky["alice"], sky["gid"]
    num = int(uuid.uuid4().int % 10**15)
    r = alice.post("/api/sources", json={"id": num, "ra": 10.0, "dec": 10.0, "group_ids": [gid],
                                         "altdata": {"dm": 28.5}})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["id"] == str(num)
    src = alice.get(f"/api/sources/{num}").json()["data"]
    assert src["id"] == str(num)
    assert src["luminosity_distance"] == pytest.approx(10 ** (28.5 / 5 - 5))
    assert src["dm"] == pytest.approx(28.5)
    assert src["angular_diameter_distance"] == pytest.approx(10 ** (28.5 / 5 - 5))
    # inside the local flow (cz < 350 km/s) there is no redshift distance
    assert alice.patch(f"/api/sources/{num}", json={"altdata": None, "redshift": 0.00001}).status_code == 200
    src = alice.get(f"/api/sources/{num}").json()["data"]
    assert src["dm"] is None and src["luminosity_distance"] is None


def test_post_source_errors(sky, make_user):
    alice, gid = sky["alice"], sky["gid"]
    assert_error(alice.post("/api/sources", json={"id": oid(), "ra": None, "dec": None, "group_ids": [gid]}), 400,
                 "ra")
    assert_error(alice.post("/api/sources", json={"id": "has space", "ra": 1, "dec": 1}), 400, "id")
    assert_error(alice.post("/api/sources", json={"id": oid(), "ra": 1, "dec": 1, "group_ids": [sky["gid_b"]]}),
                 400, "group_ids")
    assert_error(alice.post("/api/sources", json={"id": oid(), "ra": 1, "dec": 1, "group_ids": [gid],
                                                  "saver_per_group_id": {str(gid): sky["bob"].user_id}}),
                 400, "admin")
    assert_error(alice.post("/api/sources", json={"id": oid(), "ra": 1, "dec": 1, "group_ids": [gid],
                                                  "ignore_if_in_group_ids": {"999999": [gid]}}),
                 400, "ignore_if_in_group_ids")
    assert_error(alice.post("/api/sources", json={"id": oid(), "ra": 1, "dec": 1, "colour": "red"}), 400, "colour")
    assert_error(sky["viewer"].post("/api/sources", json={"id": oid(), "ra": 1, "dec": 1}), 401, "Upload data")


def test_saver_per_group_and_ignore_if_in_group(sky):
    admin, alice, gid, gid_b = sky["admin"], sky["alice"], sky["gid"], sky["gid_b"]
    name = oid()
    r = admin.post("/api/sources", json={"id": name, "ra": 5.0, "dec": 5.0, "group_ids": [gid],
                                         "saver_per_group_id": {str(gid): sky["mallory"].user_id}})
    assert r.status_code == 200, r.text
    g = alice.get(f"/api/sources/{name}").json()["data"]["groups"][0]
    assert g["saved_by"]["id"] == sky["mallory"].user_id
    # not a member: saved as the caller, with a warning
    other = oid()
    r = admin.post("/api/sources", json={"id": other, "ra": 5.0, "dec": 5.0, "group_ids": [gid],
                                         "saver_per_group_id": {str(gid): sky["bob"].user_id}})
    assert r.status_code == 200 and "not a member" in r.json()["data"]["warnings"][0]
    # an existing object saved to gid: saving it to gid_b is skipped while it is in gid (Kowalski's autosave)
    r = admin.post("/api/sources", json={"id": name, "group_ids": [gid_b], "ignore_if_in_group_ids": {
        str(gid_b): [gid]}})
    assert r.status_code == 200 and r.json()["data"]["saved_to_groups"] == []
    assert sky["bob"].request("HEAD", f"/api/sources/{name}").status_code == 404


def test_candidate_only_object_is_no_source(sky):
    alice, fid, gid = sky["alice"], sky["fid"], sky["gid"]
    name = oid("cand")
    r = alice.post("/api/candidates", json={"id": name, "ra": 20.0, "dec": 20.0, "filter_ids": [fid],
                                            "passed_at": "2026-01-01T00:00:00", "origin": "Kowalski", "score": 0.9})
    assert r.status_code == 200, r.text
    assert alice.request("HEAD", f"/api/candidates/{name}").status_code == 200
    assert alice.request("HEAD", f"/api/sources/{name}").status_code == 404
    assert_error(alice.get(f"/api/sources/{name}"), 404, "Source not found")
    assert name not in [s["id"] for s in alice.get("/api/sources", params={"sourceID": name}).json()["data"]["sources"]]
    # Kowalski's autosave: id + group_ids only, the object exists
    r = alice.post("/api/sources", json={"id": name, "group_ids": [gid], "origin": "Kowalski"})
    assert r.status_code == 200 and r.json()["data"]["saved_to_groups"] == [gid]
    assert alice.request("HEAD", f"/api/sources/{name}").status_code == 200
    src = alice.get(f"/api/sources/{name}", params={"includeCandidates": "true"}).json()["data"]
    assert src["origin"] == "Kowalski" and src["score"] == 0.9
    assert [c["filter_id"] for c in src["candidates"]] == [fid]
    # Bob sees neither
    assert sky["bob"].request("HEAD", f"/api/sources/{name}").status_code == 404
    assert_error(sky["bob"].get(f"/api/sources/{name}"), 404)


def test_patch_source(sky):
    alice, gid, fid = sky["alice"], sky["gid"], sky["fid"]
    name = oid()
    assert alice.post("/api/sources", json={"id": name, "ra": 30.0, "dec": 1.0, "group_ids": [gid]}).status_code == 200
    r = alice.patch(f"/api/sources/{name}", json={"ra": 31.0, "dec": 2.0, "redshift": 3, "transient": False,
                                                   "ra_dis": 2.3, "tns_name": "2020xyz"})
    assert r.status_code == 200, r.text
    src = alice.get(f"/api/sources/{name}").json()["data"]
    assert (src["ra"], src["dec"], src["redshift"], src["tns_name"]) == (31.0, 2.0, 3, "2020xyz")
    assert src["redshift_history"][-1]["value"] == 3
    assert alice.get("/api/sources", params={"ra": 31.0, "dec": 2.0, "radius": 0.001,
                                             "group_ids": str(gid)}).json()["data"]["totalMatches"] == 1
    assert_error(sky["viewer"].patch(f"/api/sources/{name}", json={"redshift": 1}), 401, "Upload data")
    assert_error(sky["bob"].patch(f"/api/sources/{name}", json={"redshift": 1}), 400, name)
    assert_error(alice.patch(f"/api/sources/{name}", json={"id": "x"}), 400, "id")
    assert_error(alice.patch(f"/api/sources/{name}", json={"dec": 95}), 400, "dec")
    # an object with candidates keeps its position
    assert alice.post("/api/candidates", json={"id": name, "filter_ids": [fid],
                                               "passed_at": "2026-01-01"}).status_code == 200
    assert_error(alice.patch(f"/api/sources/{name}", json={"ra": 32.0}), 400, "candidates")
    assert alice.patch(f"/api/sources/{name}", json={"redshift": 0.5}).status_code == 200


def test_delete_source_unsaves_from_one_group(sky):
    alice, mallory, gid = sky["alice"], sky["mallory"], sky["gid"]
    name = oid()
    assert alice.post("/api/sources", json={"id": name, "ra": 40.0, "dec": 1.0, "group_ids": [gid]}).status_code == 200
    # SkyPortal's permissions decorator: 'Manage sources'
    assert_error(alice.request("DELETE", f"/api/sources/{name}", json={"group_id": gid}), 401, "Manage sources")
    assert_error(mallory.request("DELETE", f"/api/sources/{name}", json={}), 400, "group_id")
    assert_error(mallory.request("DELETE", f"/api/sources/{name}", json={"group_id": sky["gid_b"]}), 400,
                 "Inadequate permissions")
    assert_error(mallory.request("DELETE", f"/api/sources/nope{name}", json={"group_id": gid}), 400, "No such source")
    r = mallory.request("DELETE", f"/api/sources/{name}", json={"group_id": str(gid)})  # (a string, as documented)
    assert r.status_code == 200, r.text
    assert_error(alice.get(f"/api/sources/{name}"), 404)
    assert name not in [s["id"] for s in alice.get("/api/sources", params={"group_ids": str(gid)}).json()["data"][
        "sources"]]
    # an unsaved source still answers HEAD, as SkyPortal (any save row of the caller's groups)
    assert alice.request("HEAD", f"/api/sources/{name}").status_code == 200


def _src(alice, gid, **fields):
    name = oid()
    r = alice.post("/api/sources", json={"id": name, "ra": 100.0, "dec": -5.0, "group_ids": [gid], **fields})
    assert r.status_code == 200, r.text
    return name


def _ids(who, **params):
    r = who.get("/api/sources", params={"numPerPage": 500, **params})
    assert r.status_code == 200, r.text
    return [s["id"] for s in r.json()["data"]["sources"]]


def test_list_filters(sky, admin):
    alice, gid = sky["alice"], sky["gid"]
    g = str(gid)
    tag = uuid.uuid4().hex[:6]
    a = _src(alice, gid, origin=f"Kowalski-{tag}", alias=[f"AT-{tag}"], redshift=0.2,
             altdata={"simbad": {"class": f"QSO{tag}"}}, tns_name=f"2031{tag}")
    b = _src(alice, gid, origin=f"other-{tag}", redshift=0.05)
    assert set(_ids(alice, group_ids=g, origin=f"kowalski-{tag}")) == {a}
    assert set(_ids(alice, group_ids=g, alias=f"at-{tag}")) == {a}
    assert set(_ids(alice, group_ids=g, simbadClass=f"qso{tag}")) == {a}
    assert set(_ids(alice, group_ids=g, sourceID=a[4:])) == {a}
    assert set(_ids(alice, group_ids=g, sourceID=f"AT 2031{tag}")) == {a}  # a TNS name
    assert a in _ids(alice, group_ids=g, hasTNSname="true") and b not in _ids(alice, group_ids=g, hasTNSname="true")
    assert b in _ids(alice, group_ids=g, hasNoTNSname="true")
    both = _ids(alice, group_ids=g, minRedshift=0.01, maxRedshift=0.3)
    assert a in both and b in both
    assert a in _ids(alice, group_ids=g, minRedshift=0.1) and b not in _ids(alice, group_ids=g, minRedshift=0.1)
    assert a not in _ids(alice, group_ids=g, rejectedSourceIDs=f"{a},zzz")
    assert a in _ids(alice, group_ids=g, savedByCurrentUser="true")
    assert a not in _ids(sky["mallory"], group_ids=g, savedByCurrentUser="true")
    assert a in _ids(alice, group_ids=g, createdOrModifiedAfter="2020-01-01")
    assert a not in _ids(alice, group_ids=g, createdOrModifiedAfter="2999-01-01")
    assert a not in _ids(alice, group_ids=g, savedBefore="2020-01-01") and a in _ids(alice, group_ids=g,
                                                                                        savedAfter="2020-01-01")
    # sorting (SkyPortal's sortBy keys), nulls last
    assert set(_ids(alice, group_ids=g, origin=tag)) == {a, b}
    rows = alice.get("/api/sources", params={"group_ids": g, "origin": tag, "sortBy": "redshift",
                                             "sortOrder": "asc"}).json()["data"]["sources"]
    assert [s["id"] for s in rows] == [b, a]
    rows = alice.get("/api/sources", params={"group_ids": g, "origin": tag, "sortBy": "origin",
                                             "sortOrder": "desc"}).json()["data"]["sources"]
    assert [s["id"] for s in rows] == [b, a]
    rows = alice.get("/api/sources", params={"group_ids": g, "origin": tag, "sortBy": "altdata.simbad.class",
                                             "sortOrder": "asc"}).json()["data"]["sources"]
    assert [s["id"] for s in rows] == [a, b]  # b has no altdata: last
    assert_error(alice.get("/api/sources", params={"sortBy": "colour"}), 400, "sortBy")
    assert_error(alice.get("/api/sources", params={"sortBy": "gcn_status"}), 400, "sortBy")
    assert_error(alice.get("/api/sources", params={"sortOrder": "sideways"}), 400, "sortOrder")
    # one group selected: SkyPortal returns its id
    assert alice.get("/api/sources", params={"group_ids": g}).json()["data"]["group_id"] == gid
    assert_error(alice.get("/api/sources", params={"group_ids": str(sky["gid_b"])}), 400, "group_ids")


def test_list_classification_filters(sky, admin):
    alice, gid = sky["alice"], sky["gid"]
    tax_name = f"tax-{uuid.uuid4().hex[:6]}"
    tax = admin.post("/api/taxonomy", json={"name": tax_name, "version": "1", "hierarchy": {
        "class": "Time-domain Source", "subclasses": [{"class": "SN Ia"}, {"class": "AGN"}]}})
    assert tax.status_code == 200, tax.text
    tax_id = tax.json()["data"]["taxonomy_id"]
    a, b, c = (_src(alice, gid) for _ in range(3))
    for obj, cls in ((a, "SN Ia"), (b, "AGN"), (a, "AGN")):
        r = alice.post("/api/classification", json={"obj_id": obj, "taxonomy_id": tax_id, "classification": cls,
                                                     "group_ids": [gid]})
        assert r.status_code == 200, r.text
    g = str(gid)
    assert set(_ids(alice, group_ids=g, classifications=f"{tax_name}: SN Ia")) == {a}
    assert set(_ids(alice, group_ids=g, classifications=f"{tax_name}:AGN")) == {a, b}
    assert set(_ids(alice, group_ids=g, classifications=f"{tax_name}:AGN,{tax_name}:SN Ia",
                    classifications_simul="true")) == {a}
    mine = {a, b, c}
    assert set(_ids(alice, group_ids=g, nonclassifications=f"{tax_name}:AGN")) & mine == {c}
    assert set(_ids(alice, group_ids=g, classified="true")) & mine == {a, b}
    assert set(_ids(alice, group_ids=g, unclassified="true")) & mine == {c}
    rows = alice.get("/api/sources", params={"group_ids": g, "sourceID": a}).json()["data"]["sources"]
    assert {k["classification"] for k in rows[0]["classifications"]} == {"SN Ia", "AGN"}
    rows = alice.get("/api/sources", params={"group_ids": g, "sourceID": a, "removeNested": "true"}).json()["data"]
    assert "groups" not in rows["sources"][0] and "classifications" not in rows["sources"][0]


def test_list_detection_filters(sky):
    """startDate/endDate (first/last detection), numberDetections, peak and latest magnitude."""
    alice, gid = sky["alice"], sky["gid"]
    inst = sky["inst"]
    bright, faint = _src(alice, gid), _src(alice, gid)
    for obj, mags in ((bright, (18.0, 17.0, 17.5)), (faint, (20.0, 19.5, 19.8))):
        r = alice.post("/api/photometry", json={
            "obj_id": obj, "mjd": [60000.0, 60001.0, 60002.0], "mag": list(mags), "magerr": [0.05] * 3,
            "limiting_mag": [22.0] * 3, "magsys": "ab", "filter": "ztfg", "instrument_id": inst,
            "group_ids": [gid]})
        assert r.status_code == 200, r.text
    g = str(gid)
    # SkyPortal: minPeakMagnitude keeps peak <= value, maxPeakMagnitude peak >= value
    assert bright in _ids(alice, group_ids=g, minPeakMagnitude=18)
    assert faint not in _ids(alice, group_ids=g, minPeakMagnitude=18)
    assert faint in _ids(alice, group_ids=g, maxPeakMagnitude=18) and bright not in _ids(alice, group_ids=g,
                                                                                            maxPeakMagnitude=18)
    assert bright in _ids(alice, group_ids=g, minLatestMagnitude=17.6)  # latest 17.5
    assert faint not in _ids(alice, group_ids=g, minLatestMagnitude=17.6)
    assert faint in _ids(alice, group_ids=g, maxLatestMagnitude=19.7)  # latest 19.8
    assert bright in _ids(alice, group_ids=g, numberDetections=3) and bright not in _ids(alice, group_ids=g,
                                                                                            numberDetections=4)
    # MJD 60000 = 2023-02-25; 60002 = 2023-02-27
    assert bright in _ids(alice, group_ids=g, startDate="2023-02-24", endDate="2023-02-28")
    assert bright not in _ids(alice, group_ids=g, startDate="2023-02-26")
    assert bright not in _ids(alice, group_ids=g, endDate="2023-02-26")
    # requireDetections=false: the detection filters do not apply (SkyPortal)
    assert bright in _ids(alice, group_ids=g, startDate="2023-02-26", requireDetections="false")
    one = alice.get(f"/api/sources/{bright}", params={"includePhotometry": "true",
                                                      "includePhotometryExists": "true"}).json()["data"]
    assert len(one["photometry"]) == 3 and one["photometry_exists"] is True
    assert {"mag", "flux"} <= set(one["photometry"][0])
    assert one["first_detected"].startswith("2023-02-25") and one["last_detected"].startswith("2023-02-27")


def test_pagination_past_the_end_is_empty(sky):
    alice, gid = sky["alice"], sky["gid"]
    _src(alice, gid)
    data = alice.get("/api/sources", params={"group_ids": str(gid), "numPerPage": 1, "pageNumber": 10**6}).json()
    assert data["status"] == "success"
    assert data["data"]["sources"] == [] and data["data"]["totalMatches"] >= 1
    assert data["data"]["pageNumber"] == 10**6 and data["data"]["numPerPage"] == 1
    assert alice.get("/api/sources", params={"numPerPage": 10**6}).json()["data"]["numPerPage"] == 500
    assert_error(alice.get("/api/sources", params={"pageNumber": 0}), 400, "pageNumber")


def test_unsupported_skyportal_parameters_are_refused(sky):
    alice = sky["alice"]
    for params in ({"listName": "favorites"}, {"commentsFilter": "hello"}, {"annotationsFilter": "x"},
                   {"hasBeenLabelled": "true"}, {"spatialCatalogName": "x"}, {"includeGeoJSON": "true"},
                   {"hasSpectrumAfter": "2020-01-01"}):
        name = next(iter(params))
        assert_error(alice.get("/api/sources", params=params), 400, name)
    # harmless when off
    assert alice.get("/api/sources", params={"hasBeenLabelled": "false"}).status_code == 200
    assert_error(alice.get("/api/sources", params={"includeColorMagnitude": "true"}), 400, "includeColorMagnitude")


def test_source_exists(sky):
    alice, bob, gid = sky["alice"], sky["bob"], sky["gid"]
    name = oid()
    r = alice.post("/api/sources", json={"id": name, "ra": 150.0, "dec": 33.0, "group_ids": [gid]})
    assert r.status_code == 200, r.text
    data = alice.get(f"/api/source_exists/{name}").json()["data"]
    assert data == {"source_exists": True, "message": f"A source with the name {name} already exists."}
    # another group's object is not revealed
    data = bob.get(f"/api/source_exists/{name}").json()["data"]
    assert data == {"source_exists": False, "message": f"No sources exist with the name {name}."}
    data = alice.get("/api/source_exists", params={"ra": 150.0, "dec": 33.0, "radius": 0.001}).json()["data"]
    assert data["source_exists"] is True and name in data["message"]
    data = bob.get("/api/source_exists", params={"ra": 150.0, "dec": 33.0, "radius": 0.001}).json()["data"]
    assert data == {"source_exists": False, "message": "No sources exist at this location."}
    assert_error(alice.get("/api/source_exists"), 400, "Provide an obj_id")
    assert_error(alice.get("/api/source_exists", params={"ra": 1, "dec": 1}), 400, "Provide an obj_id")


def test_delete_obj(sky, admin):
    alice, gid, fid = sky["alice"], sky["gid"], sky["fid"]
    name = oid()
    assert alice.post("/api/sources", json={"id": name, "ra": 160.0, "dec": 3.0, "group_ids": [gid]}).status_code == 200
    assert alice.post("/api/candidates", json={"id": name, "filter_ids": [fid],
                                               "passed_at": "2026-01-01"}).status_code == 200
    assert_error(alice.delete(f"/api/objs/{name}"), 400, f"Cannot find object with ID {name}")
    assert_error(admin.delete(f"/api/objs/nope-{name}"), 400, "Cannot find object")
    r = admin.delete(f"/api/objs/{name}")
    assert r.status_code == 200, r.text
    assert_error(alice.get(f"/api/sources/{name}"), 404)
    assert alice.request("HEAD", f"/api/candidates/{name}").status_code == 404


def test_delete_obj_refused_while_it_has_photometry(sky, admin):
    alice, gid = sky["alice"], sky["gid"]
    name = _src(alice, gid)
    r = alice.post("/api/photometry", json={"obj_id": name, "mjd": 60000.0, "mag": 18.0, "magerr": 0.1,
                                            "limiting_mag": 21.0, "magsys": "ab", "filter": "ztfr",
                                            "instrument_id": sky["inst"], "group_ids": [gid]})
    assert r.status_code == 200, r.text
    assert_error(admin.delete(f"/api/objs/{name}"), 400, "photometry")
    assert alice.get(f"/api/sources/{name}").status_code == 200


def test_hooked_extras_comments_and_spectra(sky):
    """includeComments / includeCommentExists / includeSpectrumExists / hasSpectrum, served through the hooks
    of the modules that keep comments and spectra."""
    alice, gid = sky["alice"], sky["gid"]
    talked, quiet = _src(alice, gid), _src(alice, gid)
    r = alice.post(f"/api/sources/{talked}/comments", json={"text": "worth a spectrum", "group_ids": [gid]})
    assert r.status_code == 200, r.text
    rows = alice.get("/api/sources", params={"group_ids": str(gid), "numPerPage": 500, "includeComments": "true",
                                             "includeCommentExists": "true", "includeSpectrumExists": "true"})
    by_id = {s["id"]: s for s in rows.json()["data"]["sources"]}
    assert [c["text"] for c in by_id[talked]["comments"]] == ["worth a spectrum"] and by_id[quiet]["comments"] == []
    assert by_id[talked]["comment_exists"] is True and by_id[quiet]["comment_exists"] is False
    assert by_id[talked]["spectrum_exists"] is False
    assert talked not in _ids(alice, group_ids=str(gid), hasSpectrum="true")
    assert talked in _ids(alice, group_ids=str(gid), hasNoSpectrum="true")
    one = alice.get(f"/api/sources/{talked}", params={"includeComments": "true"}).json()["data"]
    assert one["comments"][0]["text"] == "worth a spectrum" and "annotations" in one
