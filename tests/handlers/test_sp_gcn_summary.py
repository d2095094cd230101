"""GCN summaries as SkyPortal serves them: /api/gcn_event/{dateobs}/summary (issue 10).

Written from SkyPortal's GcnSummaryHandler and add_gcn_summary (handlers/api/gcn.py): the text's header
(title, number, subject, date, author and the users named, on behalf of a group), the group's sources in
the localization (detections within the window) with the rejected ones apart, and their photometry;
GET/PATCH/DELETE and the 400s. Galaxies and executed observations are not served here: asking for them
is a 400 naming the field.
"""

import random
import uuid
from datetime import datetime, timedelta

import pytest

from .test_envelope import assert_error
from .test_sp_gcn import unique_time


def _mjd(t: datetime) -> float:
    return (t - datetime(1858, 11, 17)).total_seconds() / 86400.0


def _ztf(client) -> int:
    (inst,) = client.get("/api/instrument", params={"name": "ZTF"}).json()["data"]
    return inst["id"]


@pytest.fixture
def sky(admin, make_user):
    """An event with a 0.5 deg cone; Alice's group holds a source inside it with two detections in the
    window and an upper limit after it, a rejected source inside, and a source outside; Bob is elsewhere."""
    alice, bob = make_user(prefix="alice"), make_user(prefix="bob")
    r = alice.patch("/api/internal/profile", json={"first_name": "alice", "last_name": "Liddell",
                                                    "affiliations": ["Wonderland U"]})
    assert r.status_code == 200, r.text
    r = bob.patch("/api/internal/profile", json={"first_name": "Bob", "last_name": "Builder"})
    assert r.status_code == 200, r.text
    gid = alice.post("/api/groups", json={"name": f"gw-{uuid.uuid4().hex[:8]}"}).json()["data"]["id"]
    group_name = alice.get(f"/api/groups/{gid}").json()["data"]["name"]
    t = unique_time()
    ra, dec = round(random.uniform(10, 350), 1), round(random.uniform(-60, 60), 1)
    r = admin.post("/api/gcn_event", json={"dateobs": t, "skymap": {"ra": ra, "dec": dec, "error": 0.5}})
    assert r.status_code == 200, r.text
    cone = f"{ra:.5f}_{dec:.5f}_0.50000"  # SkyPortal names a cone by its numbers
    t0 = _mjd(datetime.fromisoformat(t))
    ztf = _ztf(alice)
    tag = uuid.uuid4().hex[:6]
    inside, rejected, outside = f"ZTF11in{tag}", f"ZTF11rj{tag}", f"ZTF11out{tag}"
    for obj_id, (x, y) in ((inside, (ra + 0.01, dec)), (rejected, (ra, dec + 0.01)), (outside, (ra, dec + 5))):
        r = alice.post("/api/sources", json={"id": obj_id, "ra": x, "dec": y, "group_ids": [gid]})
        assert r.status_code == 200, r.text
        r = alice.post("/api/photometry", json={
            "obj_id": obj_id, "instrument_id": ztf, "mjd": [t0 + 1.25, t0 + 2.5], "filter": "ztfg",
            "mag": [18.04, 18.5], "magerr": [0.1, 0.12], "magsys": "ab", "origin": "fp", "group_ids": [gid]})
        assert r.status_code == 200, r.text
    # an upper limit after the window
    r = alice.post("/api/photometry", json={
        "obj_id": inside, "instrument_id": ztf, "mjd": t0 + 20, "filter": "ztfr", "mag": None, "magerr": None,
        "limiting_mag": 20.53, "magsys": "ab", "group_ids": [gid]})
    assert r.status_code == 200, r.text
    r = alice.post(f"/api/sources_in_gcn/{t}", json={
        "localization_name": cone, "localization_cumprob": 0.95, "source_id": rejected, "status": "rejected",
        "start_date": t, "end_date": "2032-01-01", "explanation": "a known AGN"})
    assert r.status_code == 200, r.text
    end = (datetime.fromisoformat(t) + timedelta(days=10)).isoformat()
    body = {"title": "Candidates in the cone", "number": "42", "subject": "follow-up of the event",
            "userIds": [bob.user_id], "groupId": gid, "startDate": t, "endDate": end, "localizationName": cone,
            "localizationCumprob": 0.95, "numberDetections": 2, "showSources": True, "showGalaxies": False,
            "showObservations": False, "noText": False, "photometryInWindow": True, "statsMethod": "python",
            "acknowledgements": '"Thanks to the night crew."'}
    return dict(alice=alice, bob=bob, admin=admin, gid=gid, group_name=group_name, t=t, inside=inside,
                rejected=rejected, outside=outside, body=body, ra=ra, dec=dec)


def test_summary_text_post_get_patch_delete(sky):
    alice, bob, t = sky["alice"], sky["bob"], sky["t"]
    r = alice.post(f"/api/gcn_event/{t}/summary", json=sky["body"])
    assert r.status_code == 200, r.text
    sid = r.json()["data"]["id"]
    assert isinstance(sid, int)
    r = alice.get(f"/api/gcn_event/{t}/summary/{sid}")
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["id"] == sid and data["title"] == "Candidates in the cone" and data["group_id"] == sky["gid"]
    assert data["sent_by_id"] == alice.user_id and data["dateobs"] == t
    text = data["text"]
    lines = text.split("\n")
    assert lines[0] == "## TITLE: CANDIDATES IN THE CONE"
    assert "#### NUMBER: 42" in lines and "#### SUBJECT: Follow-up of the event" in lines
    assert any(line.startswith("#### DATE: ") for line in lines)
    assert "#### FROM: alice Liddell at Wonderland U" in lines
    assert (f"A. Liddell (Wonderland U), B. Builder (...) report on behalf of the {sky['group_name']} group:"
            in lines)
    assert ("Found **2 sources** in the event's localization, 1 of which has been rejected after "
            "characterization:") in lines
    sources = text.index("Sources:")
    rejected = text.index("Rejected sources:")
    assert sources < text.index(sky["inside"]) < rejected < text.index(sky["rejected"])
    assert sky["outside"] not in text
    row = next(line for line in lines if line.startswith(f"| {sky['inside']}"))
    assert f"{sky['ra'] + 0.01:.4f}" in row and f"{sky['dec']:.4f}" in row
    assert "a known AGN" in next(line for line in lines if line.startswith(f"| {sky['rejected']}"))
    assert "| id " in lines[lines.index("Sources:") + 1] and "| comment" in lines[lines.index("Sources:") + 1]
    # photometry of each source in the window: mag±err, filter, origin, instrument
    head = lines.index(f"Photometry of **{sky['inside']}**:")
    table = lines[head + 2:head + 6]
    assert [c.strip() for c in table[0].strip("|").split("|")] == ["mjd", "mag±err (ab)", "filter", "origin",
                                                                    "instrument"]
    assert table[1].startswith("|---")
    cells = [c.strip() for c in table[2].strip("|").split("|")]
    assert cells[1:] == ["18.04±0.1", "ztfg", "fp", "ZTF"]
    assert float(cells[0]) == pytest.approx(_mjd(datetime.fromisoformat(t)) + 1.25, abs=1e-5)
    assert "18.5±0.12" in table[3]
    assert "< 20.5" not in text  # the upper limit is after endDate
    assert lines[-1] == "*Thanks to the night crew.*"

    # the event lists the summaries of the caller's groups
    (listed,) = alice.get(f"/api/gcn_event/{t}").json()["data"]["summaries"]
    assert listed["id"] == sid and listed["group"]["id"] == sky["gid"] and listed["sent_by"]["id"] == alice.user_id
    assert listed["text"] == text
    assert bob.get(f"/api/gcn_event/{t}").json()["data"]["summaries"] == []
    # only members of the group read it; only its author (or Manage GCNs) changes or deletes it
    assert_error(bob.get(f"/api/gcn_event/{t}/summary/{sid}"), 404, "Summary not found")
    assert_error(bob.patch(f"/api/gcn_event/{t}/summary/{sid}", json={"body": "mine"}), 404, "Summary not found")
    assert_error(bob.delete(f"/api/gcn_event/{t}/summary/{sid}"), 404, "Summary not found")
    assert sky["admin"].get(f"/api/gcn_event/{t}/summary/{sid}").status_code == 200
    assert_error(alice.get(f"/api/gcn_event/{t}/summary/abc"), 400, "Invalid summary_id")
    assert_error(alice.get(f"/api/gcn_event/{t}/summary"), 400, "Summary ID is required")
    assert_error(alice.get(f"/api/gcn_event/2001-01-01T00:00:00/summary/{sid}"), 404)

    r = alice.patch(f"/api/gcn_event/{t}/summary/{sid}", json={"body": '"A shorter text."'})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["text"] == "A shorter text."
    assert alice.get(f"/api/gcn_event/{t}/summary/{sid}").json()["data"]["text"] == "A shorter text."
    assert_error(alice.patch(f"/api/gcn_event/{t}/summary/{sid}", json={}), 400, "body")
    assert alice.delete(f"/api/gcn_event/{t}/summary/{sid}").status_code == 200
    assert_error(alice.get(f"/api/gcn_event/{t}/summary/{sid}"), 404, "Summary not found")


def test_summary_no_text_and_photometry_outside_the_window(sky):
    alice, t = sky["alice"], sky["t"]
    body = {**sky["body"], "title": "tables only", "noText": True, "photometryInWindow": False, "subject": None}
    r = alice.post(f"/api/gcn_event/{t}/summary", json=body)
    assert r.status_code == 200, r.text
    text = alice.get(f"/api/gcn_event/{t}/summary/{r.json()['data']['id']}").json()["data"]["text"]
    assert "TITLE" not in text and "Found" not in text and "Photometry of" not in text and "Thanks" not in text
    assert sky["inside"] in text and sky["rejected"] in text
    limit = next(line for line in text.split("\n") if "< 20.5" in line)
    assert limit.startswith(f"| {sky['inside']}") and "ztfr" in limit  # obj_id column first without text
    # no sources asked for: the header alone
    r = alice.post(f"/api/gcn_event/{t}/summary", json={**sky["body"], "title": "header", "showSources": False})
    assert r.status_code == 200, r.text
    text = alice.get(f"/api/gcn_event/{t}/summary/{r.json()['data']['id']}").json()["data"]["text"]
    assert text.startswith("## TITLE: HEADER") and sky["inside"] not in text


def test_summary_errors_name_the_field(sky, make_user):
    alice, bob, t, body = sky["alice"], sky["bob"], sky["t"], sky["body"]
    url = f"/api/gcn_event/{t}/summary"
    assert_error(alice.post(url, json={**body, "showGalaxies": True}), 400, "showGalaxies")
    assert_error(alice.post(url, json={**body, "showObservations": True}), 400, "showObservations")
    assert_error(alice.post(url, json={**body, "subject": None}), 400, "Subject is required")
    assert_error(alice.post(url, json={k: v for k, v in body.items() if k != "title"}), 400, "title")
    assert_error(alice.post(url, json={k: v for k, v in body.items() if k != "groupId"}), 400, "groupId")
    assert_error(alice.post(url, json={**body, "number": "forty"}), 400, "Number must be an integer")
    assert_error(alice.post(url, json={**body, "userIds": ["x"]}), 400, "User IDs (userIds) must be integers")
    assert_error(alice.post(url, json={**body, "userIds": [2**30]}), 400, "userIds")
    assert_error(alice.post(url, json={**body, "numberDetections": 0}), 400, "numberDetections")
    assert_error(alice.post(url, json={**body, "startDate": "yesterday-ish"}), 400, "startDate")
    assert_error(alice.post(url, json={**body, "statsMethod": "sql"}), 400, "statsMethod")
    assert_error(alice.post(url, json={**body, "localizationName": "nowhere"}), 400, "localizationName")
    assert_error(alice.post(url, json={**body, "colour": "blue"}), 400, "colour")
    # a group the caller is not a member of
    assert_error(bob.post(url, json=body), 400, f"Group not found with ID {sky['gid']}")
    assert_error(alice.post("/api/gcn_event/2001-01-01T00:00:00/summary", json=body), 404)
    # nothing was written by the refused requests; the same title twice for one event is SkyPortal's 400
    r = alice.post(url, json=body)
    assert r.status_code == 200, r.text
    assert_error(alice.post(url, json=body), 400, "same title, group, and event already exists")
    # another member may use the same title
    carol = make_user(prefix="carol")
    assert sky["admin"].post(f"/api/groups/{sky['gid']}/users",
                             json={"userID": carol.user_id}).status_code == 200
    r = carol.post(url, json={**body, "userIds": None})
    assert r.status_code == 200, r.text
    assert alice.get(f"{url}/{r.json()['data']['id']}").status_code == 200
