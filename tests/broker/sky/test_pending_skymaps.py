"""A notice whose sky map is at a URL that cannot be fetched now: the event and the notice are stored, the
answer and the event say the map is pending; the background fetcher stores it later (retrying with backoff),
or a map POSTed for the notice ends the wait. (No network here: the "remote" side is a local file.)"""

import uuid
from datetime import timedelta
from pathlib import Path

import models
from broker.errors import ValidationError
from broker.sky.pending import FIRST_RETRY_S, fetch_pending

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "gcn"
BAYESTAR = (DATA / "bayestar.fits.gz").read_bytes()


def voevent(minute: int) -> tuple[str, str, str]:
    """The GW190425 initial notice as another event: (xml, dateobs, the map's URL)."""
    sid = f"S99{uuid.uuid4().hex[:5]}"
    url = f"https://gracedb.ligo.org/api/superevents/{sid}/files/bayestar.fits.gz"
    dateobs = f"2019-12-31T08:{minute:02d}:05"
    xml = ((DATA / "GW190425_initial.xml").read_text().replace("S190425z", sid)
           .replace("2019-04-25T08:18:05.017147", dateobs + ".0")
           .replace("skyportal/tests/data/bayestar.fits.gz", url))
    return xml, dateobs, url


def post(admin, xml):
    r = admin.post("/api/gcn_event", json={"xml": xml})
    assert r.status_code == 200, r.text
    return r.json()["data"]


def pending_of(admin, dateobs):
    ev = admin.get(f"/api/gcn_event/{dateobs}").json()["data"]
    return ev, ev["localizations_pending"]


def test_a_map_at_an_unreachable_url_is_pending_then_fetched(admin, session_factory):
    xml, dateobs, url = voevent(1)
    out = post(admin, xml)
    assert out["localization_pending"] is True and out["skymap_url"] == url
    ev, pending = pending_of(admin, dateobs)
    assert ev["localizations"] == [] and [p["url"] for p in pending] == [url]
    assert pending[0]["attempts"] == 0 and pending[0]["error"] is None
    # the same notice again is stored once
    again = admin.post("/api/gcn_event", json={"xml": xml})
    assert again.status_code == 400 and "already exists" in again.text

    def offline(u):
        raise ValidationError(f"Invalid skymap.url: cannot fetch {u!r} (ConnectionError)", field="skymap.url")

    now = models.utcnow()
    assert fetch_pending(session_factory, offline, now=now) == 0
    _, pending = pending_of(admin, dateobs)
    mine = next(p for p in pending if p["url"] == url)
    assert mine["attempts"] == 1 and "cannot fetch" in mine["error"]
    assert mine["next_attempt_at"] == (now + timedelta(seconds=FIRST_RETRY_S)).isoformat()
    # not due yet: nothing is tried
    fetched = []
    assert fetch_pending(session_factory, lambda u: fetched.append(u) or BAYESTAR, now=now) == 0
    assert url not in fetched
    # due: fetched and stored under the file's name, and nothing is pending any more
    later = now + timedelta(seconds=FIRST_RETRY_S + 1)
    assert fetch_pending(session_factory, lambda u: BAYESTAR if u == url else offline(u), now=later) >= 1
    ev, pending = pending_of(admin, dateobs)
    assert url not in [p["url"] for p in pending]
    (loc,) = ev["localizations"]
    assert loc["localization_name"] == "bayestar.fits.gz" and loc["notice_id"] == out["notice_id"]
    assert next(n for n in ev["gcn_notices"] if n["id"] == out["notice_id"])["localization_ingested"] is True


def test_a_posted_map_ends_the_wait(admin):
    import base64

    xml, dateobs, url = voevent(2)
    out = post(admin, xml)
    # a notice_id that is not this event's pending notice is a 400 naming it, and nothing is stored
    r = admin.post("/api/localization", json={"dateobs": dateobs, "localization_name": "wrong-notice",
                                               "fits": base64.b64encode(BAYESTAR).decode(),
                                               "notice_id": out["notice_id"] + 10**6})
    assert r.status_code == 400 and "notice_id" in r.json()["message"], r.text
    assert pending_of(admin, dateobs)[0]["localizations"] == []
    r = admin.post("/api/localization", json={"dateobs": dateobs, "localization_name": "from-elsewhere",
                                               "fits": base64.b64encode(BAYESTAR).decode(),
                                               "notice_id": out["notice_id"]})
    assert r.status_code == 200, r.text
    ev, pending = pending_of(admin, dateobs)
    assert pending == []
    assert ev["localizations"][0]["notice_id"] == out["notice_id"]
    # by name: a map called as the URL's file, for a second event
    xml, dateobs, url = voevent(3)
    post(admin, xml)
    r = admin.post("/api/localization", json={"dateobs": dateobs, "localization_name": "bayestar.fits.gz",
                                               "fits": base64.b64encode(BAYESTAR).decode()})
    assert r.status_code == 200, r.text
    assert pending_of(admin, dateobs)[1] == []


def test_the_fetcher_loop_outlives_a_failing_map(admin, session_factory):
    from broker.runtime.worker import SkymapFetcher

    xml, dateobs, url = voevent(4)
    post(admin, xml)

    def broken(u):
        raise RuntimeError("a bug in one map")

    fetcher = SkymapFetcher(session_factory, 0.05, fetch=broken).start()
    try:
        deadline = models.utcnow() + timedelta(seconds=30)
        while fetcher.rounds < 3:
            assert models.utcnow() < deadline, "the fetcher stopped"
            fetcher._stop.wait(0.05)
        assert fetcher.thread.is_alive()
    finally:
        fetcher.stop()
    mine = next(p for p in pending_of(admin, dateobs)[1] if p["url"] == url)
    assert mine["attempts"] == 1 and "RuntimeError: a bug in one map" in mine["error"]


def test_the_fetch_is_off_by_default(config):
    """No network in tests (and none wanted unasked): maps stay pending until gcn.fetch_skymaps is on."""
    assert config.gcn.fetch_skymaps is False and config.gcn.fetch_interval_s > 0
