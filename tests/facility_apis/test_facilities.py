"""The facility interface: SkyPortal's api_classnames in the registry, each LCO-portal instrument's golden
request group (SkyPortal's payload forms) accepted by the simulator under the v3 rules, the SOAR rules,
GENERICAPI and SEDMAPI, and adapters that never import the ORM."""

import ast
import json
from pathlib import Path

import pytest
import requests

from broker.errors import ValidationError
from facility_apis import registry
from facility_apis.base import FacilityStatus, PortalClient
from facility_apis.lco_simulator import validate_request_group
from tests.conftest import LCO_TOKEN

from .payloads import PROPOSAL, SP_PAYLOADS, TARGET

GOLDEN = Path(__file__).parent / "golden"
SKYPORTAL_CLASSES = ("SINISTROAPI", "SPECTRALAPI", "MUSCATAPI", "FLOYDSAPI", "SOARGHTSAPI", "SOARGHTSIMAGERAPI",
                     "SOARTSPECAPI", "GENERICAPI", "SEDMAPI")


def build(api_name, payload=None):
    api = registry.load(api_name)()
    return api.build("any-name", payload or SP_PAYLOADS[api_name], proposal=PROPOSAL,
                     name=f"{TARGET['obj_id']}-sb1r0", **TARGET)


def test_registry_has_skyportals_classes_and_ours():
    assert set(SKYPORTAL_CLASSES) | {"LCO", "QHY600API", "NRESAPI"} <= set(registry.FACILITIES)
    for name in registry.FACILITIES:
        api = registry.load(name)()
        assert api.form_schema("1M0-SCICAM-SINISTRO" if name == "LCO" else "x")["type"] == "object"


def test_adapters_never_import_the_orm_or_the_broker_services():
    for path in Path("facility_apis").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for n in names:
                assert not n.startswith("models") and not n.startswith("broker.followup"), (path, n)


@pytest.mark.parametrize("api_name", sorted(SP_PAYLOADS))
def test_skyportal_payloads_build_the_golden_group_that_passes_the_v3_rules(api_name):
    registry.load(api_name)().validate("any-name", SP_PAYLOADS[api_name])
    golden = json.loads((GOLDEN / f"{api_name.lower()}_requestgroup.json").read_text())
    assert build(api_name) == golden
    errors, durations = validate_request_group(golden)
    assert not errors, errors.body
    assert durations[0] > 0


@pytest.mark.parametrize("api_name", sorted(SP_PAYLOADS))
def test_every_instrument_reaches_the_simulator(lco, api_name):
    api = registry.load(api_name)()
    c = PortalClient(lco.url, LCO_TOKEN, timeout=5)
    result = api.submit(c, build(api_name))
    assert result.status is FacilityStatus.submitted and result.remote_request_ids
    assert [e.action for e in c.exchanges] == ["lookup", "submit"]


def test_skyportal_field_names_map_onto_the_portals():
    g = build("SINISTROAPI", {**SP_PAYLOADS["SINISTROAPI"], "priority": 1.7, "observation_mode": "TIME_CRITICAL"})
    assert g["ipp_value"] == 1.7 and g["observation_type"] == "TIME_CRITICAL"
    assert g["requests"][0]["location"]["telescope_class"] == "1m0"
    assert [ic["optical_elements"]["filter"] for ic in g["requests"][0]["configurations"][0]["instrument_configs"]] \
        == ["gp", "rp", "ip"]
    muscat = build("MUSCATAPI")["requests"][0]["configurations"][0]["instrument_configs"][0]["extra_params"]
    assert {muscat[f"exposure_time_{c}"] for c in "griz"} == {120.0}
    with pytest.raises(ValidationError) as exc:
        registry.load("SINISTROAPI")().validate("x", {**SP_PAYLOADS["SINISTROAPI"], "ipp_value": 1.2})
    assert exc.value.field == "priority"
    with pytest.raises(ValidationError) as exc:
        registry.load("SOARGHTSAPI")().validate("x", {**SP_PAYLOADS["SOARGHTSAPI"],
                                                      "instrument_type": "SOAR_GHTS_BLUECAM_IMAGER"})
    assert exc.value.field == "instrument_type"
    with pytest.raises(ValidationError) as exc:  # the blue camera has one mode
        registry.load("SOARGHTSAPI")().validate("x", {**SP_PAYLOADS["SOARGHTSAPI"], "instrument_type":
                                                      "SOAR_GHTS_BLUECAM"})
    assert "instrument_mode" in exc.value.message


def test_simulator_validates_soar_as_the_portal_does(lco):
    h = {"Authorization": f"Token {LCO_TOKEN}"}
    rg = build("SOARGHTSAPI")
    spectrum = rg["requests"][0]["configurations"][1]
    spectrum["acquisition_config"]["mode"] = "OFF"
    spectrum["guiding_config"]["optional"] = True
    spectrum["instrument_configs"][0]["mode"] = "GHTS_B_400m1_2x2"
    spectrum["instrument_configs"][0]["rotator_mode"] = "VFLOAT"
    r = requests.post(f"{lco.url}/api/requestgroups/", json=rg, headers=h)
    assert r.status_code == 400
    conf = r.json()["requests"][0]["configurations"][1]
    assert "cannot be optional" in conf["guiding_config"]["optional"][0]
    assert "acquisition" in conf["acquisition_config"]["mode"][0]
    assert "not a valid mode" in conf["instrument_configs"][0]["mode"][0]
    assert "rotator mode" in conf["instrument_configs"][0]["rotator_mode"][0]
    wrong_class = build("SOARTSPECAPI")
    wrong_class["requests"][0]["location"]["telescope_class"] = "2m0"
    body = requests.post(f"{lco.url}/api/requestgroups/", json=wrong_class, headers=h).json()
    assert "at telescope class 2m0" in body["requests"][0]["configurations"][0]["instrument_type"][0]
    imager = build("SOARGHTSIMAGERAPI")
    imager["requests"][0]["configurations"][0]["instrument_configs"][0]["optical_elements"]["filter"] = "z-SDSS"
    body = requests.post(f"{lco.url}/api/requestgroups/", json=imager, headers=h).json()
    assert "Invalid filter z-SDSS" in body["requests"][0]["configurations"][0]["instrument_configs"][0][
        "optical_elements"][0]
    assert requests.get(f"{lco.url}/api/requestgroups/", headers=h).json()["count"] == 0


def test_generic_facility_submits_nothing():
    api = registry.load("GENERICAPI")()
    payload = {"start_date": "2031-01-01", "end_date": "2031-01-02", "priority": 3, "note": "bring a torch"}
    api.validate("x", payload)
    client = api.client(None)
    result = api.submit(client, api.build("x", payload, obj_id="o", ra=1.0, dec=2.0, proposal="", name="o-sb1r0"))
    assert result.status is FacilityStatus.submitted and result.remote_id is None and client.exchanges == []
    with pytest.raises(ValidationError):
        api.validate("x", {"start_date": "2031-01-02", "end_date": "2031-01-01"})


def test_sedm_without_an_endpoint_records_an_accepted_exchange():
    api = registry.load("SEDMAPI")().configure(None)
    payload = {"observation_type": "Mix 'n Match", "observation_choices": ["g", "r", "IFU"], "priority": 2,
               "start_date": "2031-01-01", "end_date": "2031-01-02"}
    api.validate("x", payload)
    group = api.build("x", payload, obj_id="ZTF21aaqjmps", ra=1.0, dec=2.0, proposal="grp", name="ZTF21aaqjmps-sb1r0")
    assert group["Filters"] == "g,r" and group["Followup"] == "IFU" and group["status"] == "new"
    client = api.client(None)
    result = api.submit(client, group)
    assert result.status is FacilityStatus.submitted
    assert [(e.action, e.response["body"]) for e in client.exchanges] == [("submit", "accepted")]
    with pytest.raises(ValidationError) as exc:
        api.validate("x", {**payload, "observation_choices": None, "observation_type": "Mix 'n Match"})
    assert "observation_choices" in exc.value.message
