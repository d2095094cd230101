"""The LCO adapter against the simulator: golden request groups, validation, outages, the lifecycle."""

import json
from pathlib import Path

import pytest
import requests

from broker.errors import ValidationError
from facility_apis.base import (FacilityCredentialsError, FacilityRejected, FacilityUnavailable, PortalClient)
from facility_apis.lco import LCOAPI, SCHEMAS
from facility_apis.base import FacilityStatus as FollowupStatus  # adapters speak their own states
from tests.conftest import LCO_TOKEN

from .payloads import PAYLOADS, PROPOSAL, TARGET

GOLDEN = Path(__file__).parent / "golden"


def build(inst, payload=None, name=None):
    return LCOAPI().build(inst, payload or PAYLOADS[inst], proposal=PROPOSAL,
                          name=name or f"{TARGET['obj_id']}-sb1r0", **TARGET)


@pytest.mark.parametrize("inst", sorted(PAYLOADS))
def test_request_group_matches_golden_file(inst):
    LCOAPI().validate(inst, PAYLOADS[inst])
    golden = json.loads((GOLDEN / f"{inst.lower()}_requestgroup.json").read_text())
    assert build(inst) == golden


def test_golden_shape_is_the_portals():
    """Every key the portal's own records carry (shared/reference/000) is in what we send."""
    rg = json.loads((GOLDEN / "1m0-scicam-sinistro_requestgroup.json").read_text())
    assert {"name", "proposal", "ipp_value", "operator", "observation_type", "requests"} <= set(rg)
    req = rg["requests"][0]
    assert {"acceptability_threshold", "configuration_repeats", "optimization_type", "configurations",
            "windows", "location"} <= set(req)
    conf = req["configurations"][0]
    assert {"type", "instrument_type", "priority", "instrument_configs", "acquisition_config", "guiding_config",
            "constraints", "target"} <= set(conf)
    assert {"exposure_time", "exposure_count", "mode", "optical_elements", "rotator_mode", "extra_params",
            "rois"} == set(conf["instrument_configs"][0])
    assert {"max_airmass", "min_lunar_distance", "max_lunar_phase"} <= set(conf["constraints"])
    assert {"type", "name", "ra", "dec", "proper_motion_ra", "proper_motion_dec", "parallax",
            "epoch"} <= set(conf["target"])
    assert [ic["optical_elements"]["filter"] for ic in conf["instrument_configs"]] == ["gp", "rp"]
    assert req["windows"][0]["start"].endswith("Z")


def test_instrument_specifics():
    muscat = build("2M0-SCICAM-MUSCAT")["requests"][0]["configurations"][0]["instrument_configs"][0]
    assert muscat["extra_params"]["exposure_time_z"] == 150 and muscat["extra_params"]["exposure_mode"] == "ASYNCHRONOUS"
    assert muscat["optical_elements"]["narrowband_g_position"] == "in"
    floyds = build("2M0-FLOYDS-SCICAM")["requests"][0]["configurations"]
    assert [c["type"] for c in floyds] == ["LAMP_FLAT", "ARC", "SPECTRUM", "ARC", "LAMP_FLAT"]
    assert all(c["acquisition_config"]["mode"] == "WCS" and c["guiding_config"] == {
        "mode": "ON", "optional": False, "optical_elements": {}, "exposure_time": None, "extra_params": {}}
        for c in floyds)
    nres = build("1M0-NRES-SCICAM")["requests"][0]["configurations"]
    assert [c["type"] for c in nres] == ["NRES_SPECTRUM"]


@pytest.mark.parametrize("inst,change,field", [
    ("1M0-SCICAM-SINISTRO", {"observation_choices": ["halpha"]}, "observation_choices[0]"),
    ("1M0-SCICAM-SINISTRO", {"exposure_time": 0}, "exposure_time"),
    ("1M0-SCICAM-SINISTRO", {"end_date": "2031-02-01T00:00:00"}, "end_date"),
    ("1M0-SCICAM-SINISTRO", {"start_date": "2020-01-01", "end_date": "2020-01-02"}, "end_date"),
    ("2M0-FLOYDS-SCICAM", {"slit": "slit_9as"}, "slit"),
    ("2M0-SCICAM-MUSCAT", {"exposure_time_g": None}, "exposure_time_g"),
    ("1M0-NRES-SCICAM", {"colour": "blue"}, "colour"),
])
def test_payload_validation_names_the_field(inst, change, field):
    payload = {k: v for k, v in {**PAYLOADS[inst], **change}.items() if v is not None}
    with pytest.raises(ValidationError) as exc:
        LCOAPI().validate(inst, payload)
    assert field in exc.value.message


def test_form_schemas_exist_for_every_instrument():
    assert set(SCHEMAS) == {"0M4-SCICAM-QHY600", "1M0-SCICAM-SINISTRO", "2M0-SCICAM-MUSCAT",
                            "2M0-FLOYDS-SCICAM", "1M0-NRES-SCICAM", "2M0-SCICAM-SPECTRAL",  # + SkyPortal's
                            "SOAR_GHTS_BLUECAM_IMAGER", "SOAR_GHTS_REDCAM_IMAGER", "SOAR_GHTS_BLUECAM",
                            "SOAR_GHTS_REDCAM", "SOAR_TRIPLESPEC"}
    with pytest.raises(ValidationError):
        LCOAPI().form_schema("3M0-NOPE")


def client(lco, token=LCO_TOKEN):
    return PortalClient(lco.url, token, timeout=5)


@pytest.mark.parametrize("inst", sorted(PAYLOADS))
def test_every_golden_group_is_accepted_by_the_simulator(lco, inst):
    c = client(lco)
    result = LCOAPI().submit(c, build(inst))
    assert result.status is FollowupStatus.submitted and result.remote_request_ids
    group = requests.get(f"{lco.url}/api/requestgroups/{result.remote_id}/",
                         headers={"Authorization": f"Token {LCO_TOKEN}"}).json()
    assert group["state"] == "PENDING" and group["requests"][0]["duration"] > 0
    assert [e.action for e in c.exchanges] == ["lookup", "submit"]  # by name first: never twice
    assert all(e.request["headers"]["Authorization"] == "<redacted>" for e in c.exchanges)
    assert LCO_TOKEN not in json.dumps([e.request for e in c.exchanges])


def test_rejection_keeps_the_portals_nested_messages(lco):
    rg = build("1M0-SCICAM-SINISTRO")
    rg["ipp_value"] = 3.0
    rg["requests"][0]["configurations"][0]["instrument_configs"][1]["exposure_count"] = 0
    with pytest.raises(FacilityRejected) as exc:
        LCOAPI().submit(client(lco), rg)
    body = exc.value.body
    assert body["ipp_value"] == ["Ensure this value is less than or equal to 2.0."]
    ics = body["requests"][0]["configurations"][0]["instrument_configs"]
    assert ics[0] == {} and ics[1]["exposure_count"] == ["Ensure this value is greater than or equal to 1."]
    assert "requests[0].configurations[0].instrument_configs[1].exposure_count" in exc.value.message


def test_refusals_map_back_to_the_form_fields(lco):
    """The portal's paths come back as the form schema's names (what the source page shows beside them)."""
    rg = build("1M0-SCICAM-SINISTRO")
    rg["ipp_value"] = 3.0
    rg["requests"][0]["configurations"][0]["instrument_configs"][1]["exposure_count"] = 0
    rg["requests"][0]["configurations"][0]["constraints"]["max_airmass"] = 0.5
    rg["requests"][0]["windows"][0]["end"] = "2020-01-01T00:00:00Z"
    with pytest.raises(FacilityRejected) as exc:
        LCOAPI().submit(client(lco), rg)
    errors = LCOAPI().form_errors("1M0-SCICAM-SINISTRO", exc.value.body)
    assert errors == {"ipp_value": "Ensure this value is less than or equal to 2.0.",
                      "exposure_counts": "Ensure this value is greater than or equal to 1.",
                      "maximum_airmass": "Ensure this value is greater than or equal to 1.0.",
                      "end_date": errors["end_date"]} and "in the future" in errors["end_date"]
    schema = LCOAPI().form_schema("1M0-SCICAM-SINISTRO")["properties"]
    assert set(errors) <= set(schema)
    assert LCOAPI().form_errors("1M0-SCICAM-SINISTRO", {"non_field_errors": ["not about a field"]}) == {}
    # the same path is another field on another instrument; a message repeated per configuration comes once
    slit = {"requests": [{"configurations": [{"instrument_configs": [{"optical_elements": ["You must specify a "
                                                                                        "slit."]}] * 3}]}]}
    assert LCOAPI().form_errors("2M0-FLOYDS-SCICAM", slit) == {"slit": "You must specify a slit."}
    mode = {"requests": [{"configurations": [{"instrument_configs": [{"mode": ["Not a mode."]}]}]}]}
    assert LCOAPI().form_errors("SOAR_TRIPLESPEC", mode) == {"instrument_mode": "Not a mode."}


def test_simulator_refuses_a_request_longer_than_its_window(lco):
    """As the portal (observation-portal's RequestSerializer): the request's duration must fit a window."""
    h = {"Authorization": f"Token {LCO_TOKEN}"}
    rg = build("1M0-SCICAM-SINISTRO")
    win = rg["requests"][0]["windows"][0]
    win["start"], win["end"] = "2031-01-01T00:00:00Z", "2031-01-01T00:01:00Z"  # one minute
    r = requests.post(f"{lco.url}/api/requestgroups/", json=rg, headers=h)
    assert r.status_code == 400
    message, = r.json()["requests"][0]["non_field_errors"]
    assert "did not fit into any visible intervals" in message and "0.0166" in message
    assert LCOAPI().form_errors("1M0-SCICAM-SINISTRO", r.json()) == {"end_date": message}
    win["end"] = "2031-01-08T00:00:00Z"
    assert requests.post(f"{lco.url}/api/requestgroups/", json=rg, headers=h).status_code == 201


def test_simulator_validation_rules(lco):
    h = {"Authorization": f"Token {LCO_TOKEN}"}
    rg = build("2M0-FLOYDS-SCICAM")
    rg["operator"] = "MANY"
    rg["requests"][0]["location"]["telescope_class"] = "1m0"
    rg["requests"][0]["windows"][0]["end"] = "2020-01-01T00:00:00Z"
    rg["requests"][0]["configurations"][2]["guiding_config"]["optional"] = True
    r = requests.post(f"{lco.url}/api/requestgroups/", json=rg, headers=h)
    assert r.status_code == 400
    body = r.json()
    assert "MANY" in body["non_field_errors"][0]
    req = body["requests"][0]
    assert "must be in the future" in req["windows"][0]["end"][1]
    assert "at telescope class 1m0" in req["configurations"][0]["instrument_type"][0]
    assert "cannot be optional" in req["configurations"][2]["guiding_config"]["optional"][0]
    v = requests.post(f"{lco.url}/api/requestgroups/validate/", json=build("1M0-NRES-SCICAM"), headers=h).json()
    assert v["errors"] == {} and v["request_durations"]["duration"] > 1800
    assert requests.get(f"{lco.url}/api/requestgroups/", headers=h).json()["count"] == 0  # nothing stored


def test_bad_credentials(lco):
    with pytest.raises(FacilityCredentialsError):
        LCOAPI().submit(client(lco, token="wrong"), build("1M0-SCICAM-SINISTRO"))


def test_outage_then_success_submits_exactly_once(lco):
    requests.post(f"{lco.url}/control/faults", json={"status": 503, "count": 2})
    sleeps = []
    api = LCOAPI(retries=4, backoff_s=0.01, sleep=sleeps.append)
    c = client(lco)
    result = api.submit(c, build("1M0-SCICAM-SINISTRO", name="outage-1"))
    assert sleeps == [0.01, 0.02]  # backoff doubles
    groups = requests.get(f"{lco.url}/control/state").json()["groups"]
    assert [g["id"] for g in groups] == [int(result.remote_id)]
    # the outage hits the look-up too: no second submit until the portal says the group is not there
    assert [e.action for e in c.exchanges] == ["lookup", "lookup", "lookup", "submit"]


def test_lost_response_is_not_submitted_twice(lco):
    """The portal stores the group but the answer is a 503: the retry finds it by name."""
    requests.post(f"{lco.url}/control/faults", json={"status": 503, "count": 1, "after_processing": True})
    api = LCOAPI(retries=3, backoff_s=0.0, sleep=lambda s: None)
    result = api.submit(client(lco), build("1M0-SCICAM-SINISTRO", name="lost-answer"))
    groups = requests.get(f"{lco.url}/control/state").json()["groups"]
    assert len(groups) == 1 and str(groups[0]["id"]) == result.remote_id
    assert "found after a failed attempt" in result.message


def test_outage_that_lasts_raises_unavailable(lco):
    requests.post(f"{lco.url}/control/faults", json={"status": 503, "count": 50})
    with pytest.raises(FacilityUnavailable):
        LCOAPI(retries=3, backoff_s=0.0, sleep=lambda s: None).submit(client(lco), build("1M0-SCICAM-SINISTRO"))
    requests.post(f"{lco.url}/control/faults", json={"count": 0})
    assert requests.get(f"{lco.url}/control/state").json()["groups"] == []


def test_slow_answer_is_a_timeout(lco):
    requests.post(f"{lco.url}/control/faults", json={"delay_s": 1.5})
    c = PortalClient(lco.url, LCO_TOKEN, timeout=0.5)
    with pytest.raises(FacilityUnavailable, match="no answer"):
        c.call("submit", "GET", "/api/requestgroups/")
    requests.post(f"{lco.url}/control/faults", json={"delay_s": 0})


def test_lifecycle_refresh_cancel_and_frames(lco):
    api, c = LCOAPI(), client(lco)
    ids = {}
    for name in ("sched", "done", "expired", "failed", "cancelled"):
        ids[name] = api.submit(c, build("0M4-SCICAM-QHY600", name=name))
    assert api.refresh(c, ids["sched"].remote_request_ids).status is FollowupStatus.submitted
    rid = lambda n: ids[n].remote_request_ids[0]  # noqa: E731
    for name, action in (("sched", "schedule"), ("done", "complete"), ("expired", "expire"), ("failed", "fail")):
        requests.post(f"{lco.url}/control/requests/{rid(name)}/{action}").raise_for_status()
    api.cancel(c, ids["cancelled"].remote_id)
    expect = {"sched": FollowupStatus.scheduled, "done": FollowupStatus.completed,
              "expired": FollowupStatus.expired, "failed": FollowupStatus.failed,
              "cancelled": FollowupStatus.cancelled}
    for name, status in expect.items():
        assert api.refresh(c, ids[name].remote_request_ids).status is status, name
    assert "observations" in api.refresh(c, ids["sched"].remote_request_ids).message
    with pytest.raises(FacilityRejected, match="Cannot cancel"):
        api.cancel(c, ids["done"].remote_id)
    frames = api.frames(PortalClient(lco.url, LCO_TOKEN, 5), ids["done"].remote_request_ids)
    assert len(frames) == 6  # 3 filters x 2 exposures
    assert {f.filter for f in frames} == {"gp", "rp", "ip"} and all(f.reqnum == rid("done") for f in frames)


def test_list_filters_and_pagination(lco):
    api, c = LCOAPI(), client(lco)
    made = [api.submit(c, build("1M0-SCICAM-SINISTRO", name=f"page-{i}")) for i in range(5)]
    h = {"Authorization": f"Token {LCO_TOKEN}"}
    page = requests.get(f"{lco.url}/api/requestgroups/", params={"limit": 2, "offset": 2}, headers=h).json()
    assert page["count"] == 5 and len(page["results"]) == 2 and page["next"] and page["previous"]
    one = requests.get(f"{lco.url}/api/requestgroups/", params={"name": "page-3"}, headers=h).json()
    assert [g["name"] for g in one["results"]] == ["page-3"]
    by_req = requests.get(f"{lco.url}/api/requestgroups/",
                          params={"request_id": made[1].remote_request_ids[0]}, headers=h).json()
    assert [g["name"] for g in by_req["results"]] == ["page-1"]
    api.cancel(c, made[0].remote_id)
    assert requests.get(f"{lco.url}/api/requestgroups/", params={"state": "CANCELED"},
                        headers=h).json()["count"] == 1
