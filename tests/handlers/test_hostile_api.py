"""Hostile input: schemathesis over /api/openapi.json, with zero server errors.

Every operation of the API's OpenAPI spec is called with a bounded number of generated requests:
schemathesis's schema-conforming and schema-violating data (wrong types, missing and unexpected
fields, boundary values, other content types, undeclared methods), plus values that generated data
rarely contains but any client can send (NUL, lone UTF-16 surrogates, huge and incompressible
strings, out-of-range dates, mathtext, integers beyond 32/64 bits, +-1e308, duplicated list items).
Requests are authenticated as a super admin of this module's own, so they get past auth into the
handlers, and IDs, dates and similar fields are often pointed at a small seeded world (a group,
stream, filter, source, candidate, photometry, classification, telescope, instruments, allocation,
follow-up request, GCN event with a localization...) so that hostile values also reach existing rows.
Every answer must be

* not a 5xx (schemathesis's ``not_a_server_error``), and
* SkyPortal's JSON envelope (``{"status": "success", "data": ..., "version": ...}`` or
  ``{"status": "error", "message": ..., "data": {}, "version": ...}``), except the documented
  non-JSON answers: the spec itself, file downloads (png/pdf/csv/fits) and HEAD (no body).

One test per operation, ``test_hostile_input[METHOD /path]`` (DELETEs in
``test_hostile_input_delete``, last, so that they do not remove the seeded rows before the other
operations use them). Writes aimed at rows that other tests of the session rely on (the sitewide
group, other users and groups, the shared LCO instrument, this module's admin) are redirected to this
module's own rows. The run is reproducible (``derandomize``, no example database);
``HOSTILE_MAX_EXAMPLES`` sets the number of generated requests per operation (schemathesis's
deterministic examples and coverage cases come on top).
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup

from handlers.openapi import build_spec
from handlers.routes import ROUTES
from tests.conftest import LCO_TOKEN

MAX_EXAMPLES = int(os.environ.get("HOSTILE_MAX_EXAMPLES", "25"))

# a comment attachment comes back as a file (download) or inline with the type its name says (preview)
ATTACHMENT_TYPES = ("application/octet-stream", "image/png", "text/plain", "application/pdf")
# 2xx answers that are files, not envelopes: (method, path template) -> allowed Content-Types
DOWNLOADS = {
    ("GET", "/api/allocation/report/{instrument_id}"): ("image/png", "application/pdf"),
    ("GET", "/api/followup_request/schedule/{instrument_id}"): ("text/csv", "image/png", "application/pdf"),
    ("GET", "/api/localization/{dateobs}/name/{localization_name}/download"): ("application/fits",),
    ("GET", "/api/thumbnail/{thumbnail_id}/image"): ("image/png",),
    ("GET", "/api/sources/{obj_id}/comments/{comment_id}/attachment"): ATTACHMENT_TYPES,
    ("GET", "/api/spectra/{spectrum_id}/comments/{comment_id}/attachment"): ATTACHMENT_TYPES,
}
NOT_ENVELOPED = {("GET", "/api/openapi.json")}  # the spec itself ("not enveloped", says the spec)


def skyportal_envelope(ctx, response, case):
    """Every answer is SkyPortal's JSON envelope, except the documented non-JSON ones."""
    key = (case.method.upper(), case.path)
    if key in NOT_ENVELOPED and response.status_code == 200:
        return None
    if case.method.upper() == "HEAD":
        assert not response.content, f"HEAD answered with a body: {response.content[:200]!r}"
        return None
    ctype = (response.headers.get("content-type") or [""])[0].split(";")[0].strip().lower()
    if key in DOWNLOADS and 200 <= response.status_code < 300 and ctype in DOWNLOADS[key]:
        return None
    assert ctype == "application/json", f"Content-Type {ctype!r}, expected application/json"
    try:
        body = json.loads(response.content)
    except ValueError as exc:
        raise AssertionError(f"body is not valid JSON ({exc}): {response.content[:300]!r}") from None
    assert isinstance(body, dict), f"body is not a JSON object: {response.content[:300]!r}"
    assert isinstance(body.get("version"), str), f"no 'version' in the envelope: {body!r:.300}"
    assert "data" in body, f"no 'data' in the envelope: {body!r:.300}"
    if 200 <= response.status_code < 300:
        assert body.get("status") == "success", f"{response.status_code} with status {body.get('status')!r}"
    else:
        assert body.get("status") == "error", f"{response.status_code} with status {body.get('status')!r}"
        assert isinstance(body.get("message"), str), f"error without a message: {body!r:.300}"
    return None


# -- the seeded world ---------------------------------------------------------------------------

# path parameter -> values of existing rows (filled by the ``world`` fixture, read by the hook below)
KNOWN: dict[str, list] = {}


@pytest.fixture(scope="module")
def hostile_admin(make_user):
    """A super admin of this module's own (the session's ``admin`` is shared with other tests)."""
    return make_user(roles=("Super admin",), acls=("System admin",), prefix="hostile-admin")


@pytest.fixture(scope="module")
def world(hostile_admin, make_user):
    """One row of (nearly) everything, owned by the hostile admin; their IDs go into KNOWN."""
    import numpy as np

    from broker.sky import kernels as K
    from tests.facility_apis.payloads import PAYLOADS

    a = hostile_admin
    tag = uuid.uuid4().hex[:8]

    def post(path, body):
        r = a.post(path, json=body)
        assert r.status_code == 200, (path, r.text)
        return r.json()["data"]

    sid = post("/api/streams", {"name": f"hostile-{tag}"})["id"]
    gid = post("/api/groups", {"name": f"hostile-{tag}"})["id"]
    post(f"/api/groups/{gid}/streams", {"stream_id": sid})
    fid = post("/api/filters", {"name": f"hostile-{tag}", "stream_id": sid, "group_id": gid})["id"]
    obj_id = f"ZTF99{tag}"
    post("/api/sources", {"id": obj_id, "ra": 197.4481, "dec": -23.3839, "group_ids": [gid]})
    cand_id = f"hostile-cand-{tag}"
    post("/api/candidates", {"id": cand_id, "ra": 10.0, "dec": 10.0, "filter_ids": [fid],
                             "passed_at": "2026-01-02T03:04:05"})
    phot_ids = post("/api/photometry", {"obj_id": obj_id, "mjd": 60000.0, "filter": "ztfr", "mag": 18.0,
                                        "magerr": 0.05, "group_ids": [gid], "instrument_name": "ZTF"})["ids"]
    tax_id = post("/api/taxonomy", {"name": f"hostile-{tag}", "version": "1",
                                    "hierarchy": {"class": "Thing", "subclasses": [{"class": "Other"}]}})["taxonomy_id"]
    cls_id = post("/api/classification", {"obj_id": obj_id, "classification": "Thing", "taxonomy_id": tax_id,
                                          "probability": 0.5})["classification_id"]
    tel_id = post("/api/telescope", {"name": f"hostile 1m0 {tag}", "nickname": "1m0", "diameter": 1.0,
                                     "robotic": True})["id"]
    inst_name = "1M0-SCICAM-SINISTRO"
    existing = {i["name"]: i["id"] for i in a.get("/api/instrument").json()["data"]}
    inst_id = existing.get(inst_name) or post("/api/instrument", {
        "name": inst_name, "type": "imager", "telescope_id": tel_id, "api_classname": "LCO",
        "listener_classname": "LCO"})["id"]
    alloc_id = post("/api/allocation", {
        "group_id": gid, "instrument_id": inst_id, "pi": "Hostile", "proposal_id": "LCO2031A-001",
        "hours_allocated": 10, "start_date": "2030-01-01", "end_date": "2032-01-01",
        "altdata": {"API_TOKEN": LCO_TOKEN, "PROPOSAL_ID": "LCO2031A-001"}})["id"]
    fu_id = post("/api/followup_request", {"obj_id": obj_id, "allocation_id": alloc_id,
                                           "payload": PAYLOADS[inst_name]})["id"]
    dfu_id = post("/api/default_followup_request", {
        "default_followup_name": f"hostile-{tag}", "allocation_id": alloc_id,
        # SkyPortal refuses dates in a rule's payload (the window is set when it fires)
        "payload": {k: v for k, v in PAYLOADS[inst_name].items() if k not in ("start_date", "end_date")},
        "source_filter": {"group_ids": [gid]}})["id"]
    dateobs = "2026-03-04T05:06:07"
    post("/api/gcn_event", {"dateobs": dateobs, "aliases": [f"HOSTILE#{tag}"]})
    uniq, dens = K.flat_to_moc(np.full(12, 1.0 / 12))
    post("/api/localization", {"dateobs": dateobs, "localization_name": "hostile",
                               "uniq": uniq.tolist(), "probdensity": dens.tolist()})
    # a spare non-facility instrument: writes aimed at the (shared) LCO instrument go to it instead
    spare_inst_id = post("/api/instrument", {"name": f"hostile-imager-{tag}", "type": "imager",
                                             "telescope_id": tel_id})["id"]
    # annotations, comments, thumbnails, spectra (issue 9, part B)
    import base64

    from broker.objects.thumbnails import encode_png

    spectrum_id = post("/api/spectra", {"obj_id": obj_id, "observed_at": "2026-01-02T03:04:05",
                                        "instrument_id": spare_inst_id, "wavelengths": [4000.0, 4001.0],
                                        "fluxes": [1.0, 2.0], "group_ids": [gid]})["id"]
    comment_id = post(f"/api/sources/{obj_id}/comments", {"text": "hostile", "group_ids": [gid]})["comment_id"]
    annotation_id = post(f"/api/sources/{obj_id}/annotations", {"origin": "hostile", "data": {"x": 1}})[
        "annotation_id"]
    png = base64.b64encode(encode_png(np.zeros((16, 16, 3), dtype=np.uint8))).decode()
    thumbnail_id = post("/api/thumbnail", {"obj_id": obj_id, "ttype": "new", "data": png})["id"]
    decoy = make_user(prefix="hostile-decoy")
    token_id = post("/api/tokens", {"name": f"spare-{tag}"})["token_id"]
    KNOWN.clear()
    KNOWN.update(
        group_id=[gid], stream_id=[sid], filter_id=[fid], user_id=[decoy.user_id], photometry_id=phot_ids,
        classification_id=[cls_id], taxonomy_id=[tax_id], telescope_id=[tel_id], instrument_id=[inst_id],
        allocation_id=[alloc_id], followup_request_id=[fu_id], default_followup_id=[dfu_id],
        obj_id=[obj_id, cand_id], dateobs=[dateobs], localization_name=["hostile"], token_id=[token_id],
        acl_id=["Upload data"], role_id=["View only"],
        spectrum_id=[spectrum_id], comment_id=[comment_id], annotation_id=[annotation_id], thumbnail_id=[thumbnail_id],
        payload=[PAYLOADS[inst_name]], filter=["ztfg", "ztfr"], classification=["Thing", "Other"],
    )
    # IDs are serial: rows with a lower ID than this module's own are the rest of the session's
    own = {k: min(v) for k, v in KNOWN.items() if k.endswith("_id") and isinstance(v[0], int)}
    own["instrument_id"] = spare_inst_id
    yield {**KNOWN, "own": own}
    KNOWN.clear()


# -- the schema, its hooks and the test ---------------------------------------------------------

# The spec is built at collection time (pytest needs the operations then, and the API server only
# exists once fixtures run) by the very function that serves /api/openapi.json;
# test_fuzzed_spec_is_the_served_spec checks that it is what the live server serves. (Loading it from
# the server with schemathesis.pytest.from_fixture fails on pytest 9.2: schemathesis 4.32.5 sets
# ``item._nodeid``, which pytest 9.2 no longer has. With this loader pytest 9.2 names the items
# ``test_hostile_input[METHOD /path]``, but their node IDs lack the ``[...]`` part, hence the operation
# in the failure message below.)
SPEC = build_spec(ROUTES, "http://127.0.0.1")
schema = schemathesis.openapi.from_dict(SPEC)
# the token is always sent (below); don't spend generated requests on a missing or mangled one
schema.config.generation.update(with_security_parameters=False)

# values no client should send but any client can: generated data rarely contains them
HOSTILE_STRINGS = [
    "\x00", "a\x00b", "\ud800", "x\udfffy",                       # NUL, lone surrogates (valid JSON escapes)
    "NaN", "Infinity", "-0", "1e309", "9" * 40, " ", "",           # numbers that are not, blanks
    "x" * 20000, "".join(hashlib.sha256(b"%d" % i).hexdigest() for i in range(100)),  # long; long and incompressible
    "2026-02-30T25:61:61", "0000-00-00", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00",  # dates
    "\u202e\ufeff", "%s%n%x", "$\\frac$", "'; DROP TABLE users; --", "../../etc/passwd", "<script>",
]
HOSTILE_INTS = [0, -1, 2**31 - 1, 2**31, -(2**31) - 1, 2**53 + 1, 2**63 - 1, 2**63, -(2**63) - 1, 10**40]
HOSTILE_FLOATS = [1e308, -1e308, 5e-324, 1e-300, -0.0, -1000.0, 123456789.123456789]
# in URLs, only what ``requests`` can encode (no lone surrogates; NUL is refused by the client)
URL_STRINGS = [v for v in HOSTILE_STRINGS if "\x00" not in v and "\ud800" not in v and "\udfff" not in v]
DATES = ["2026-03-04T05:06:07", "2030-06-01", "2032-01-01T00:00:00"]

# body/query fields that name rows of the seeded world (field -> KNOWN key), or take dates
BODY_IDS = {"obj_id": "obj_id", "objId": "obj_id", "id": "obj_id", "allocation_id": "allocation_id",
            "group_id": "group_id", "stream_id": "stream_id", "filter_id": "filter_id",
            "taxonomy_id": "taxonomy_id", "instrument_id": "instrument_id", "telescope_id": "telescope_id",
            "followup_request_id": "followup_request_id", "user_id": "user_id", "userID": "user_id",
            "dateobs": "dateobs", "localization_name": "localization_name",
            "group_ids": "group_id", "filter_ids": "filter_id", "target_group_ids": "group_id",
            "inviteGroupIds": "group_id", "unsaveGroupIds": "group_id", "followupRequestIds": "followup_request_id",
            "payload": "payload", "filter": "filter", "classification": "classification",
            # query
            "allocationID": "allocation_id", "instrumentID": "instrument_id", "sourceID": "obj_id",
            "localizationDateobs": "dateobs", "localizationName": "localization_name"}
DATE_FIELDS = {"passed_at", "start_date", "end_date", "dateobs", "startDate", "endDate", "observationStartDate",
               "observationEndDate", "firstDetectionAfter", "lastDetectionBefore", "savedAfter", "savedBefore"}


def _leaves(value, path=()):
    """(path, value) of every scalar in a JSON value, and of every list (for duplication)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(value, list):
        yield path, value
        for i, v in enumerate(value):
            yield from _leaves(v, (*path, i))
    else:
        yield path, value


def _replace(value, path, new):
    if not path:
        return new
    head, rest = path[0], path[1:]
    out = dict(value) if isinstance(value, dict) else list(value)
    out[head] = _replace(value[head], rest, new)
    return out


def _known(value):
    """``value`` with its fields that name rows of the seeded world pointed at them."""
    def draw(kind, old):
        if kind is None:
            return st.sampled_from(DATES)
        if not KNOWN.get(kind):
            return st.just(old)
        options = st.sampled_from(KNOWN[kind])
        return options.map(lambda v: [v]) if isinstance(old, list) and not isinstance(KNOWN[kind][0], list) \
            else options

    if not isinstance(value, dict):
        return st.just(value)
    swaps = {k: draw(BODY_IDS.get(k), v) for k, v in value.items()
             if (k in BODY_IDS and KNOWN.get(BODY_IDS[k])) or k in DATE_FIELDS}
    if not swaps:
        return st.just(value)
    return st.fixed_dictionaries(swaps).map(lambda s: {**value, **s})


def _hostile(value, strings):
    """``value`` with one scalar replaced by a hostile value of its type, or one list's item doubled."""
    spots = [(p, v) for p, v in _leaves(value) if not isinstance(v, bool) and v is not None]
    if not spots:
        return st.just(value)

    def mutate(spot):
        path, old = spot
        if isinstance(old, list):
            return st.just(_replace(value, path, old + old[:1]) if old else value)
        if isinstance(old, str):
            pool = strings
        elif isinstance(old, int):
            pool = HOSTILE_INTS
        else:
            pool = HOSTILE_FLOATS + HOSTILE_INTS
        return st.sampled_from(pool).map(lambda new: _replace(value, path, new))

    return st.sampled_from(spots).flatmap(mutate)


def _as_generated_known_or_hostile(value, strings):
    known = _known(value)
    hostile = known.flatmap(lambda v: _hostile(v, strings))
    return st.one_of(st.just(value), known, hostile, hostile.flatmap(lambda v: _hostile(v, strings)))


@schema.hook
def flatmap_body(context, body):
    return _as_generated_known_or_hostile(body, HOSTILE_STRINGS)


@schema.hook
def flatmap_query(context, query):
    return _as_generated_known_or_hostile(query, URL_STRINGS)


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    """Point the path at rows of the seeded world, then maybe make one part hostile."""
    known = {k: st.sampled_from(KNOWN[k]) for k in (path_parameters or {}) if KNOWN.get(k)}
    swapped = st.fixed_dictionaries(known).map(lambda s: {**path_parameters, **s}) if known else st.just(
        path_parameters)
    return st.one_of(st.just(path_parameters), swapped, swapped.flatmap(lambda v: _hostile(v, URL_STRINGS)))


def test_fuzzed_spec_is_the_served_spec(anonymous):
    served = anonymous.get("/api/openapi.json").json()
    assert {**served, "servers": SPEC["servers"]} == SPEC


HYPOTHESIS = settings(max_examples=MAX_EXAMPLES, derandomize=True, database=None, deadline=None,
                      suppress_health_check=list(HealthCheck), print_blob=False)


def protect(case, world):
    """Keep generated writes off the rows the rest of the test session lives on (the sitewide group,
    other tests' users, groups, instruments..., this module's admin): aim them at this module's own."""
    if case.method.upper() in ("GET", "HEAD"):
        return
    params = dict(case.path_parameters or {})
    for name, own in world["own"].items():
        if str(params.get(name, "x")).isdigit() and int(params[name]) < own:
            params[name] = own
    if params != (case.path_parameters or {}):
        case.path_parameters = params


def call_and_check(case, api_server, hostile_admin, world):
    protect(case, world)
    response = case.call(base_url=api_server.url, headers={"Authorization": f"token {hostile_admin.token}"},
                         timeout=60)
    try:
        case.validate_response(response, checks=[not_a_server_error, skyportal_envelope])
    except FailureGroup as exc:
        # name the operation in pytest's one-line summary too
        raise AssertionError(f"{case.method.upper()} {case.path}: {exc}") from None


@schema.exclude(method="DELETE").parametrize()
@HYPOTHESIS
def test_hostile_input(case, api_server, hostile_admin, world):
    call_and_check(case, api_server, hostile_admin, world)


# DELETEs last, leaves before the rows they hang on (the route table lists parents first)
delete_schema = schemathesis.openapi.from_dict({**SPEC, "paths": dict(reversed(SPEC["paths"].items()))})
delete_schema.config.generation.update(with_security_parameters=False)
for _hook in (flatmap_body, flatmap_query, flatmap_path_parameters):
    delete_schema.hook(_hook)


@delete_schema.include(method="DELETE").parametrize()
@HYPOTHESIS
def test_hostile_input_delete(case, api_server, hostile_admin, world):
    call_and_check(case, api_server, hostile_admin, world)
