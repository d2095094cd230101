"""An LCO observe-portal simulator: validates and answers like the real portal, for tests and demos.

``skybroker simulate lco`` runs it. It keeps request groups in memory and serves:

* ``POST /api/requestgroups/`` — the portal's validation (required fields, ``operator`` rules,
  ``ipp_value`` 0.5–2.0, ``observation_type``, windows ending in the future and after their start,
  instrument types per telescope class and their optical elements and modes, configuration types,
  exposure counts ≥ 1, constraint ranges) with DRF-style nested error bodies; 201 with ids,
  ``state: PENDING`` and durations.
* ``GET /api/requestgroups/`` (``count/next/previous/results``; ``limit``, ``offset``, ``state``,
  ``name``, ``request_id``), ``GET /api/requestgroups/{id}/``, ``POST .../{id}/cancel/`` (only from
  PENDING), ``POST /api/requestgroups/validate/`` (200 with ``errors``), ``GET /api/requests/{id}/`` and
  ``/observations/``, and the archive's ``GET /frames/?request_id=``.
* Controls for tests (no auth): ``POST /control/requests/{id}/{schedule|complete|expire|fail}``,
  ``POST /control/faults`` ``{"status": 503, "count": n, "delay_s": s, "after_processing": bool}``,
  ``GET /control/state``, ``POST /control/reset``.

Authentication: ``Authorization: Token <token>`` with one of the configured tokens; anything else 403.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

import arrow
import tornado.web

from .lco_instruments import (ACQUISITION_MODES, INSTRUMENTS, OBSERVATION_TYPES, OPERATORS, TELESCOPE_CLASSES,
                              request_duration)

SITES = {"0m4": ("coj", "clma", "0m4b"), "1m0": ("lsc", "doma", "1m0a"), "2m0": ("ogg", "clma", "2m0a"),
         "4m0": ("sor", "doma", "4m0a")}


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _stamp(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Faults:
    status: int = 503
    count: int = 0
    delay_s: float = 0.0
    after_processing: bool = False  # process the request, then answer the fault (a lost response)


@dataclass
class SimulatorState:
    tokens: dict[str, str]  # token -> submitter
    groups: dict[int, dict] = field(default_factory=dict)
    requests: dict[int, int] = field(default_factory=dict)  # request id -> group id
    observations: dict[int, list] = field(default_factory=dict)  # request id -> blocks
    next_group: int = 2_000_000
    next_request: int = 4_000_000
    next_observation: int = 9_000_000
    faults: Faults = field(default_factory=Faults)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def request(self, rid: int) -> dict | None:
        gid = self.requests.get(rid)
        if gid is None:
            return None
        return next(r for r in self.groups[gid]["requests"] if r["id"] == rid)


# -- validation, DRF-style ----------------------------------------------------------------------

class Errors:
    """Builds the portal's nested error body: dicts of lists of messages; lists of per-item dicts."""

    def __init__(self):
        self.body: dict = {}

    def add(self, path: tuple, message: str) -> None:
        node: Any = self.body
        for i, key in enumerate(path):
            last = i == len(path) - 1
            if isinstance(key, int):
                continue
            nxt = path[i + 1] if not last else None
            if last:
                node.setdefault(key, []).append(message)
            elif isinstance(nxt, int):
                lst = node.setdefault(key, [])
                if not isinstance(lst, list):
                    return
                while len(lst) <= nxt:
                    lst.append({})
                node = lst[nxt]
            else:
                node = node.setdefault(key, {})

    def __bool__(self) -> bool:
        return bool(self.body)


REQUIRED = "This field is required."


def _number(errors: Errors, path: tuple, value, lo=None, hi=None, required=True):
    if value is None:
        if required:
            errors.add(path, REQUIRED)
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        errors.add(path, "A valid number is required.")
        return None
    if lo is not None and value < lo:
        errors.add(path, f"Ensure this value is greater than or equal to {lo}.")
    if hi is not None and value > hi:
        errors.add(path, f"Ensure this value is less than or equal to {hi}.")
    return value


def _choice(errors: Errors, path: tuple, value, choices):
    if value is None:
        errors.add(path, REQUIRED)
    elif value not in choices:
        errors.add(path, f'"{value}" is not a valid choice.')


def validate_request_group(group: Any) -> tuple[Errors, dict]:
    """The portal's checks; returns (errors, request durations)."""
    e = Errors()
    durations: dict = {}
    if not isinstance(group, dict):
        e.add(("non_field_errors",), "Invalid data. Expected a dictionary.")
        return e, durations
    name = group.get("name")
    if not name:
        e.add(("name",), REQUIRED)
    elif len(str(name)) > 50:
        e.add(("name",), "Ensure this field has no more than 50 characters.")
    if not group.get("proposal"):
        e.add(("proposal",), REQUIRED)
    _number(e, ("ipp_value",), group.get("ipp_value"), 0.5, 2.0)
    _choice(e, ("operator",), group.get("operator"), OPERATORS)
    _choice(e, ("observation_type",), group.get("observation_type"), OBSERVATION_TYPES)
    requests = group.get("requests")
    if not isinstance(requests, list) or not requests:
        e.add(("requests",), REQUIRED if requests is None else "You must specify at least 1 request.")
        return e, durations
    if group.get("operator") == "SINGLE" and len(requests) != 1:
        e.add(("non_field_errors",), "Request groups with operator SINGLE must have exactly one request.")
    if group.get("operator") == "MANY" and len(requests) < 2:
        e.add(("non_field_errors",), "Request groups with operator MANY must have more than one request.")
    now = _now()
    for i, req in enumerate(requests):
        rp = ("requests", i)
        if not isinstance(req, dict):
            e.add(rp + ("non_field_errors",), "Invalid data. Expected a dictionary.")
            continue
        _number(e, rp + ("acceptability_threshold",), req.get("acceptability_threshold", 90), 0, 100)
        _number(e, rp + ("configuration_repeats",), req.get("configuration_repeats", 1), 1)
        _choice(e, rp + ("optimization_type",), req.get("optimization_type", "TIME"), ("TIME", "AIRMASS"))
        loc = req.get("location") or {}
        tclass = loc.get("telescope_class")
        if tclass not in TELESCOPE_CLASSES:
            e.add(rp + ("location", "telescope_class"),
                  REQUIRED if tclass is None else f'"{tclass}" is not a valid telescope class.')
        windows = req.get("windows")
        if not windows:
            e.add(rp + ("windows",), "You must specify at least 1 window.")
        for w, win in enumerate(windows or []):
            wp = rp + ("windows", w)
            try:
                start, end = arrow.get(win["start"]).datetime, arrow.get(win["end"]).datetime
            except (KeyError, TypeError, arrow.parser.ParserError, ValueError):
                e.add(wp + ("non_field_errors",), "Windows need a valid ISO-8601 start and end.")
                continue
            if end <= start:
                e.add(wp + ("end",), "Window end time must be after start time.")
            if end <= now:
                e.add(wp + ("end",), "Window end time must be in the future.")
        confs = req.get("configurations")
        if not confs:
            e.add(rp + ("configurations",), "You must specify at least 1 configuration.")
        for c, conf in enumerate(confs or []):
            cp = rp + ("configurations", c)
            inst = INSTRUMENTS.get(conf.get("instrument_type"))
            if inst is None:
                e.add(cp + ("instrument_type",), f'"{conf.get("instrument_type")}" is not a valid instrument type.')
                continue
            if tclass in TELESCOPE_CLASSES and inst.telescope_class != tclass:
                e.add(cp + ("instrument_type",),
                      f"Invalid instrument type {inst.type} at telescope class {tclass}.")
            if conf.get("type") not in inst.configuration_types:
                e.add(cp + ("type",), f'"{conf.get("type")}" is not a valid configuration type for {inst.type}.')
            cons = conf.get("constraints") or {}
            _number(e, cp + ("constraints", "max_airmass"), cons.get("max_airmass", 1.6), 1.0, 25.0)
            _number(e, cp + ("constraints", "min_lunar_distance"), cons.get("min_lunar_distance", 30.0), 0.0, 180.0)
            _number(e, cp + ("constraints", "max_lunar_phase"), cons.get("max_lunar_phase", 1.0), 0.0, 1.0)
            target = conf.get("target") or {}
            if target.get("type") != "ICRS":
                e.add(cp + ("target", "type"), "Only ICRS targets are accepted here.")
            _number(e, cp + ("target", "ra"), target.get("ra"), 0.0, 360.0)
            _number(e, cp + ("target", "dec"), target.get("dec"), -90.0, 90.0)
            ics = conf.get("instrument_configs")
            if not ics:
                e.add(cp + ("instrument_configs",), "You must specify at least 1 instrument config.")
            for k, ic in enumerate(ics or []):
                ip = cp + ("instrument_configs", k)
                _number(e, ip + ("exposure_count",), ic.get("exposure_count"), 1)
                _number(e, ip + ("exposure_time",), ic.get("exposure_time"), 0.0)
                if ic.get("mode") not in inst.modes:
                    e.add(ip + ("mode",), f'"{ic.get("mode")}" is not a valid mode for {inst.type}.')
                for elem, value in (ic.get("optical_elements") or {}).items():
                    allowed = inst.optical_elements.get(elem)
                    if allowed is None:
                        e.add(ip + ("optical_elements",), f"{inst.type} has no optical element {elem}.")
                    elif value not in allowed:
                        e.add(ip + ("optical_elements",), f"Invalid {elem} {value} for {inst.type}.")
                if inst.kind in ("imager", "soar_imager") and conf.get("type") in ("EXPOSE", "REPEAT_EXPOSE") and \
                        "filter" not in (ic.get("optical_elements") or {}):
                    e.add(ip + ("optical_elements",), "You must specify a filter.")
                if inst.kind == "floyds" and "slit" not in (ic.get("optical_elements") or {}):
                    e.add(ip + ("optical_elements",), "You must specify a slit.")
                rotator = ic.get("rotator_mode") or ""
                if rotator not in inst.rotator_modes and not (rotator == "" and "" not in inst.rotator_modes
                                                              and not inst.spectrograph):
                    e.add(ip + ("rotator_mode",), f'"{rotator}" is not a valid rotator mode for {inst.type}.')
                extra = ic.get("extra_params") or {}
                if "rotator_angle" in extra:
                    _number(e, ip + ("extra_params", "rotator_angle"), extra["rotator_angle"], -360.0, 360.0)
            acquisition = (conf.get("acquisition_config") or {}).get("mode", "OFF")
            if acquisition not in ACQUISITION_MODES:
                e.add(cp + ("acquisition_config", "mode"), f'"{acquisition}" is not a valid acquisition mode.')
            spectrum = conf.get("type") in ("SPECTRUM", "REPEAT_SPECTRUM")
            if inst.spectrograph and spectrum:
                if (conf.get("guiding_config") or {}).get("optional", True):
                    e.add(cp + ("guiding_config", "optional"), "Guiding cannot be optional for spectrographs.")
                if acquisition == "OFF":
                    e.add(cp + ("acquisition_config", "mode"),
                          "A spectrum needs target acquisition (WCS, BRIGHTEST or MANUAL).")
        durations[i] = request_duration(req)
        # the portal's last check: the request must fit a window (the portal intersects the windows with the
        # target's visibility from the sites; here a window is taken as visible throughout)
        spans = []
        for win in windows or []:
            try:
                spans.append((arrow.get(win["end"]) - arrow.get(win["start"])).total_seconds())
            except (KeyError, TypeError, arrow.parser.ParserError, ValueError):
                pass
        if spans and not e and max(spans) <= durations[i]:
            e.add(rp + ("non_field_errors",), f"The request duration {durations[i] / 3600.0} did not fit into any "
                                              f"visible intervals. The largest visible interval within your window "
                                              f"was {max(spans) / 3600.0}")
    return e, durations


# -- state transitions ----------------------------------------------------------------------------

def _group_state(group: dict) -> str:
    states = {r["state"] for r in group["requests"]}
    for s in ("PENDING", "CANCELED", "FAILURE_LIMIT_REACHED", "WINDOW_EXPIRED"):
        if s in states:
            return s
    return "COMPLETED"


def _set_request_state(state: SimulatorState, rid: int, new: str) -> dict:
    req = state.request(rid)
    req["state"] = new
    req["modified"] = _stamp(_now())
    group = state.groups[state.requests[rid]]
    group["state"] = _group_state(group)
    group["modified"] = req["modified"]
    blocks = state.observations.setdefault(rid, [])
    if new in ("COMPLETED", "PENDING") and not blocks:
        state.next_observation += 1
        site, enclosure, telescope = SITES[req["location"]["telescope_class"]]
        start = _now() + (timedelta(hours=2) if new == "PENDING" else -timedelta(seconds=req["duration"]))
        blocks.append({"id": state.next_observation, "request": rid, "site": site, "enclosure": enclosure,
                       "telescope": telescope, "start": _stamp(start),
                       "end": _stamp(start + timedelta(seconds=req["duration"])), "state": "PENDING"})
    for b in blocks:
        b["state"] = {"COMPLETED": "COMPLETED", "PENDING": "PENDING", "CANCELED": "CANCELED"}.get(new, "ABORTED")
    return req


# -- handlers --------------------------------------------------------------------------------------

class _Base(tornado.web.RequestHandler):
    def initialize(self, state: SimulatorState):
        self.state = state

    def set_default_headers(self):
        self.set_header("Content-Type", "application/json")

    def reply(self, status: int, body: Any) -> None:
        self.set_status(status)
        self.finish(json.dumps(body))

    def body(self) -> Any:
        try:
            return json.loads(self.request.body or b"null")
        except ValueError:
            raise tornado.web.HTTPError(400, "JSON parse error")

    def write_error(self, status_code: int, **kwargs) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        detail = exc.log_message if isinstance(exc, tornado.web.HTTPError) and exc.log_message else self._reason
        self.finish(json.dumps({"detail": detail}))


class _Authed(_Base):
    async def prepare(self):
        header = self.request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "token" or token.strip() not in self.state.tokens:
            self.reply(403, {"detail": "Invalid token." if header else
                             "Authentication credentials were not provided."})
            return
        self.submitter = self.state.tokens[token.strip()]
        f = self.state.faults
        if f.delay_s:
            await asyncio.sleep(f.delay_s)
        if f.count > 0 and not f.after_processing:
            f.count -= 1
            self.reply(f.status, {"detail": "Service temporarily unavailable (simulated)."})

    def on_finish_fault(self) -> bool:
        """With ``after_processing``, the work is done but the answer is a fault (a lost response)."""
        f = self.state.faults
        if f.count > 0 and f.after_processing:
            f.count -= 1
            self.reply(f.status, {"detail": "Service temporarily unavailable (simulated)."})
            return True
        return False


class RequestGroupsHandler(_Authed):
    def get(self):
        st = self.state
        groups = sorted(st.groups.values(), key=lambda g: -g["id"])
        for key, pick in (("state", lambda g, v: g["state"] == v), ("name", lambda g, v: g["name"] == v),
                          ("request_id", lambda g, v: any(str(r["id"]) == v for r in g["requests"]))):
            value = self.get_query_argument(key, None)
            if value:
                groups = [g for g in groups if pick(g, value)]
        try:
            limit = int(self.get_query_argument("limit", "10"))
            offset = int(self.get_query_argument("offset", "0"))
        except ValueError:
            self.reply(400, {"detail": "limit and offset must be integers"})
            return
        base = f"{self.request.protocol}://{self.request.host}{self.request.path}"
        args = {k: v[-1].decode() for k, v in self.request.query_arguments.items() if k not in ("limit", "offset")}

        def link(off):
            return f"{base}?{urlencode({**args, 'limit': limit, 'offset': off})}"

        page = groups[offset:offset + limit]
        self.reply(200, {"count": len(groups),
                         "next": link(offset + limit) if offset + limit < len(groups) else None,
                         "previous": link(max(0, offset - limit)) if offset > 0 else None,
                         "results": page})

    def post(self):
        group = self.body()
        errors, durations = validate_request_group(group)
        if errors:
            self.reply(400, errors.body)
            return
        st = self.state
        with st.lock:
            st.next_group += 1
            now = _stamp(_now())
            out = {"id": st.next_group, "submitter": self.submitter, "proposal": group["proposal"],
                   "name": group["name"], "observation_type": group["observation_type"],
                   "operator": group["operator"], "ipp_value": group["ipp_value"], "state": "PENDING",
                   "created": now, "modified": now, "requests": []}
            for i, req in enumerate(group["requests"]):
                st.next_request += 1
                r = {"id": st.next_request, "observation_note": "Submitted to scheduler.", "state": "PENDING",
                     "modified": now, "duration": durations[i], **{k: v for k, v in req.items()}}
                r["configurations"] = [{"id": st.next_request * 10 + c, **conf}
                                       for c, conf in enumerate(req["configurations"])]
                out["requests"].append(r)
                st.requests[r["id"]] = out["id"]
            st.groups[out["id"]] = out
        if not self.on_finish_fault():
            self.reply(201, out)


class RequestGroupHandler(_Authed):
    def get(self, gid):
        group = self.state.groups.get(int(gid))
        if group is None:
            self.reply(404, {"detail": "Not found."})
        else:
            self.reply(200, group)


class CancelHandler(_Authed):
    def post(self, gid):
        st = self.state
        group = st.groups.get(int(gid))
        if group is None:
            self.reply(404, {"detail": "Not found."})
            return
        if group["state"] != "PENDING":
            self.reply(400, {"state": [f"Cannot cancel a request group in state {group['state']}."]})
            return
        with st.lock:
            for r in group["requests"]:
                if r["state"] == "PENDING":
                    _set_request_state(st, r["id"], "CANCELED")
        if not self.on_finish_fault():
            self.reply(200, group)


class ValidateHandler(_Authed):
    def post(self):
        errors, durations = validate_request_group(self.body())
        self.reply(200, {"request_durations": {"requests": [{"duration": d} for d in durations.values()],
                                               "duration": sum(durations.values())},
                         "errors": errors.body})


class RequestHandler(_Authed):
    def get(self, rid, observations=None):
        req = self.state.request(int(rid))
        if req is None:
            self.reply(404, {"detail": "Not found."})
        elif observations:
            self.reply(200, self.state.observations.get(int(rid), []))
        else:
            self.reply(200, req)


class FramesHandler(_Authed):
    """The archive: one frame per exposure of a completed request."""

    def get(self):
        rid = self.get_query_argument("request_id", None)
        frames = []
        for r_id, gid in sorted(self.state.requests.items()):
            req = self.state.request(r_id)
            if req["state"] != "COMPLETED" or (rid and str(r_id) != rid):
                continue
            n = 0
            for conf in req["configurations"]:
                for ic in conf["instrument_configs"]:
                    for _ in range(int(ic["exposure_count"])):
                        n += 1
                        base = f"{req['location']['telescope_class']}-{r_id}-{n:04d}-e91"
                        frames.append({"id": r_id * 1000 + n, "basename": base, "filename": f"{base}.fits.fz",
                                       "url": f"{self.request.protocol}://{self.request.host}/download/{base}.fits.fz",
                                       "DATE_OBS": req["modified"], "REQNUM": r_id,
                                       "FILTER": (ic.get("optical_elements") or {}).get("filter"),
                                       "EXPTIME": str(ic["exposure_time"]), "OBJECT": conf["target"]["name"],
                                       "OBSTYPE": conf["type"], "RLEVEL": 91})
        self.reply(200, {"count": len(frames), "next": None, "previous": None, "results": frames})


class ControlRequestHandler(_Base):
    STATES = {"schedule": "PENDING", "complete": "COMPLETED", "expire": "WINDOW_EXPIRED",
              "fail": "FAILURE_LIMIT_REACHED"}

    def post(self, rid, action):
        if self.state.request(int(rid)) is None:
            self.reply(404, {"detail": "Not found."})
            return
        with self.state.lock:
            req = _set_request_state(self.state, int(rid), self.STATES[action])
        self.reply(200, req)


class ControlFaultsHandler(_Base):
    def post(self):
        b = self.body() or {}
        self.state.faults = Faults(status=int(b.get("status", 503)), count=int(b.get("count", 0)),
                                   delay_s=float(b.get("delay_s", 0.0)),
                                   after_processing=bool(b.get("after_processing", False)))
        self.reply(200, {"faults": vars(self.state.faults)})


class ControlStateHandler(_Base):
    def get(self):
        self.reply(200, {"groups": list(self.state.groups.values())})


class ControlResetHandler(_Base):
    def post(self):
        with self.state.lock:
            self.state.groups.clear()
            self.state.requests.clear()
            self.state.observations.clear()
            self.state.faults = Faults()
        self.reply(200, {})


def make_simulator(tokens: dict[str, str]) -> tornado.web.Application:
    """The simulator app; ``tokens`` maps accepted API tokens to submitter names."""
    st = SimulatorState(tokens=dict(tokens))
    kw = {"state": st}
    app = tornado.web.Application([
        (r"/api/requestgroups/?", RequestGroupsHandler, kw),
        (r"/api/requestgroups/validate/?", ValidateHandler, kw),
        (r"/api/requestgroups/([0-9]+)/?", RequestGroupHandler, kw),
        (r"/api/requestgroups/([0-9]+)/cancel/?", CancelHandler, kw),
        (r"/api/requests/([0-9]+)/?", RequestHandler, kw),
        (r"/api/requests/([0-9]+)/(observations)/?", RequestHandler, kw),
        (r"/frames/?", FramesHandler, kw),
        (r"/control/requests/([0-9]+)/(schedule|complete|expire|fail)/?", ControlRequestHandler, kw),
        (r"/control/faults/?", ControlFaultsHandler, kw),
        (r"/control/state/?", ControlStateHandler, kw),
        (r"/control/reset/?", ControlResetHandler, kw),
    ])
    app.sim_state = st
    return app
