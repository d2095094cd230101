"""The LCO adapter: follow-up payloads → v3 request groups on the LCO observe portal.

Submit: ``POST /api/requestgroups/``; a timeout or 5xx is retried with backoff, but before each retry
the portal is asked for a request group of the same (unique) name, so a request that did arrive is
never submitted twice. Cancel: ``POST /api/requestgroups/{id}/cancel/``. Refresh:
``GET /api/requests/{id}/`` and ``/observations/``. Frames: the archive's ``/frames/?request_id=``.
"""

from __future__ import annotations

import time

import arrow

from broker.errors import ValidationError
from broker.validation import validate as validate_schema
from models.followup import FollowupStatus

from .base import FacilityAPI, FacilityError, FacilityUnavailable, Frame, PortalClient, RefreshResult, SubmitResult
from .lco_instruments import FLOYDS_SEQUENCE, INSTRUMENTS, MUSCAT_EXPOSURE_MODES, OBSERVATION_TYPES, request_duration

# LCO request states -> ours
STATE_MAP = {
    "PENDING": FollowupStatus.submitted,
    "SCHEDULED": FollowupStatus.scheduled,
    "COMPLETED": FollowupStatus.completed,
    "WINDOW_EXPIRED": FollowupStatus.expired,
    "CANCELED": FollowupStatus.cancelled,
    "FAILURE_LIMIT_REACHED": FollowupStatus.failed,
}

_COMMON = {
    "start_date": {"type": "string", "format": "date-time", "description": "Start of the window (UTC)"},
    "end_date": {"type": "string", "format": "date-time", "description": "End of the window (UTC)"},
    "exposure_counts": {"type": "integer", "minimum": 1, "default": 1, "description": "Exposures per setting"},
    "maximum_airmass": {"type": "number", "minimum": 1.0, "maximum": 25.0, "default": 2.0},
    "minimum_lunar_distance": {"type": "number", "minimum": 0.0, "maximum": 180.0, "default": 30.0,
                               "description": "degrees"},
    "maximum_lunar_phase": {"type": "number", "minimum": 0.0, "maximum": 1.0, "default": 1.0},
    "ipp_value": {"type": "number", "minimum": 0.5, "maximum": 2.0, "default": 1.0,
                  "description": "LCO intra-proposal priority"},
    "observation_type": {"type": "string", "enum": list(OBSERVATION_TYPES[:3]), "default": "NORMAL"},
    # SkyPortal's optional constraints, checked before submission (the request is then ignored)
    "not_if_duplicates": {"type": "boolean", "description": "skip if the object has duplicates"},
    "not_if_classified": {"type": "boolean", "description": "skip if the object is classified"},
    "not_if_spectra_exist": {"type": "boolean", "description": "accepted; no spectra are kept yet"},
    "ignore_source_group_ids": {"type": "array", "items": {"type": "integer"},
                                "description": "skip if the object is saved to any of these groups"},
}
_REQUIRED = ("start_date", "end_date")


def _schema(inst_type: str) -> dict:
    inst = INSTRUMENTS[inst_type]
    props = dict(_COMMON)
    required = list(_REQUIRED)
    if inst.kind == "imager":
        props.update({
            "observation_choices": {"type": "array", "minItems": 1, "uniqueItems": True,
                                    "items": {"type": "string", "enum": list(inst.optical_elements["filter"])},
                                    "description": "Filters: one instrument config each"},
            "exposure_time": {"type": "number", "exclusiveMinimum": 0, "description": "seconds per exposure"},
            "mode": {"type": "string", "enum": list(inst.modes), "default": inst.default_mode},
        })
        required += ["observation_choices", "exposure_time"]
    elif inst.kind == "muscat":
        for c in "griz":
            props[f"exposure_time_{c}"] = {"type": "number", "exclusiveMinimum": 0, "description": f"{c} channel [s]"}
            props[f"narrowband_{c}_position"] = {"type": "string", "enum": ["in", "out"], "default": "out"}
            required.append(f"exposure_time_{c}")
        props["exposure_mode"] = {"type": "string", "enum": list(MUSCAT_EXPOSURE_MODES), "default": "SYNCHRONOUS"}
        props["mode"] = {"type": "string", "enum": list(inst.modes), "default": inst.default_mode}
    elif inst.kind == "floyds":
        props["exposure_time"] = {"type": "number", "exclusiveMinimum": 0, "description": "spectrum [s]"}
        props["slit"] = {"type": "string", "enum": list(inst.optical_elements["slit"]), "default": "slit_2.0as"}
        required.append("exposure_time")
    elif inst.kind == "nres":
        props["exposure_time"] = {"type": "number", "exclusiveMinimum": 0, "description": "spectrum [s]"}
        required.append("exposure_time")
    return {"type": "object", "title": inst_type, "properties": props, "required": required,
            "additionalProperties": False}


SCHEMAS = {t: _schema(t) for t in INSTRUMENTS}


def _iso(value: str, field: str) -> str:
    try:
        return arrow.get(value).to("utc").format("YYYY-MM-DDTHH:mm:ss.SSSSSS") + "Z"
    except (arrow.parser.ParserError, ValueError, TypeError, OverflowError):  # OverflowError: beyond year 1..9999 in UTC
        raise ValidationError(f"Invalid field '{field}': not a date: {value!r}", field=field) from None


class LCOAPI(FacilityAPI):
    name = "LCO"

    def __init__(self, *, retries: int = 4, backoff_s: float = 0.5, sleep=time.sleep):
        self.retries = retries
        self.backoff_s = backoff_s
        self._sleep = sleep

    # -- payloads -----------------------------------------------------------------------------
    def form_schema(self, instrument_name: str) -> dict:
        if instrument_name not in SCHEMAS:
            raise ValidationError(f"LCO has no instrument type '{instrument_name}' "
                                  f"(known: {sorted(SCHEMAS)})", field="instrument")
        return SCHEMAS[instrument_name]

    def validate(self, instrument_name: str, payload: dict) -> None:
        validate_schema(payload, self.form_schema(instrument_name))
        start = arrow.get(_iso(payload["start_date"], "start_date"))
        end = arrow.get(_iso(payload["end_date"], "end_date"))
        if end <= start:
            raise ValidationError("Invalid field 'end_date': must be after start_date", field="end_date")
        if end <= arrow.utcnow():
            raise ValidationError("Invalid field 'end_date': the window has already ended", field="end_date")

    def build(self, instrument_name: str, payload: dict, *, obj_id: str, ra: float, dec: float,
              proposal: str, name: str) -> dict:
        """The v3 request group for a validated payload (the shape of the portal's own records)."""
        inst = INSTRUMENTS[instrument_name]
        p = {k: (v.get("default") if isinstance(v, dict) else None) for k, v in SCHEMAS[instrument_name]["properties"].items()}
        p.update({k: v for k, v in payload.items() if v is not None})
        constraints = {"max_airmass": float(p["maximum_airmass"]),
                       "min_lunar_distance": float(p["minimum_lunar_distance"]),
                       "max_lunar_phase": float(p["maximum_lunar_phase"]), "extra_params": {}}
        target = {"type": "ICRS", "name": obj_id, "ra": float(ra), "dec": float(dec), "proper_motion_ra": 0.0,
                  "proper_motion_dec": 0.0, "parallax": 0.0, "epoch": 2000.0, "hour_angle": None,
                  "extra_params": {}}
        count = int(p["exposure_counts"])

        def configuration(ctype, instrument_configs, acquisition="OFF", guiding=("ON", True), priority=1):
            return {"type": ctype, "instrument_type": inst.type, "priority": priority,
                    "instrument_configs": instrument_configs,
                    "acquisition_config": {"mode": acquisition, "extra_params": {}},
                    "guiding_config": {"mode": guiding[0], "optional": guiding[1], "optical_elements": {},
                                       "exposure_time": None, "extra_params": {}},
                    "constraints": dict(constraints), "target": dict(target), "extra_params": {}}

        def ic(exposure_time, optical_elements, mode, rotator_mode="", extra=None, exposure_count=count):
            return {"exposure_time": float(exposure_time), "exposure_count": exposure_count, "mode": mode,
                    "optical_elements": optical_elements, "rotator_mode": rotator_mode,
                    "extra_params": extra or {}, "rois": []}

        if inst.kind == "imager":
            configurations = [configuration("EXPOSE", [
                ic(p["exposure_time"], {"filter": f}, p["mode"]) for f in p["observation_choices"]])]
        elif inst.kind == "muscat":
            extra = {"exposure_mode": p["exposure_mode"], "bin_x": 1, "bin_y": 1,
                     **{f"exposure_time_{c}": float(p[f"exposure_time_{c}"]) for c in "griz"}}
            elements = {f"narrowband_{c}_position": p[f"narrowband_{c}_position"] for c in "griz"}
            longest = max(float(p[f"exposure_time_{c}"]) for c in "griz")
            configurations = [configuration("EXPOSE", [ic(longest, elements, p["mode"], extra=extra)])]
        elif inst.kind == "floyds":
            configurations = []
            for order, (ctype, seconds) in enumerate(FLOYDS_SEQUENCE, start=1):
                spectrum = ctype == "SPECTRUM"
                configurations.append(configuration(
                    ctype,
                    [ic(p["exposure_time"] if spectrum else seconds, {"slit": p["slit"]}, "default",
                        rotator_mode="VFLOAT", exposure_count=count if spectrum else 1)],
                    acquisition="WCS", guiding=("ON", False), priority=order))
        else:  # nres
            configurations = [configuration("NRES_SPECTRUM", [ic(p["exposure_time"], {}, "default")],
                                            acquisition="WCS", guiding=("ON", False))]
        return {
            "name": name,
            "proposal": proposal,
            "ipp_value": float(p["ipp_value"]),
            "operator": "SINGLE",
            "observation_type": p["observation_type"],
            "requests": [{
                "acceptability_threshold": 90.0,
                "configuration_repeats": 1,
                "optimization_type": "TIME",
                "configurations": configurations,
                "windows": [{"start": _iso(p["start_date"], "start_date"), "end": _iso(p["end_date"], "end_date")}],
                "location": {"telescope_class": inst.telescope_class},
                "extra_params": {},
            }],
        }

    # -- portal I/O ---------------------------------------------------------------------------
    def find_by_name(self, client: PortalClient, name: str) -> dict | None:
        page = client.call("lookup", "GET", "/api/requestgroups/", params={"name": name, "limit": 10})
        for group in (page or {}).get("results", []):
            if group.get("name") == name:
                return group
        return None

    def lookup(self, client: PortalClient, name: str) -> SubmitResult | None:
        group = self.find_by_name(client, name)
        return self._submitted(group, "found") if group else None

    def duration(self, request: dict) -> float:
        return float(sum(request_duration(r) for r in request["requests"]))

    def submit(self, client: PortalClient, request: dict) -> SubmitResult:
        """Look the group up by its unique name, then post it; every retry looks again first, so a
        reply lost after the portal stored the group never makes a second one."""
        delay = self.backoff_s
        last: FacilityError | None = None
        for attempt in range(self.retries):
            if attempt:
                self._sleep(delay)
                delay *= 2
            try:  # there already (an earlier attempt, or a submission whose reply was lost)?
                existing = self.find_by_name(client, request["name"])
            except FacilityUnavailable as exc:
                last = exc
                continue
            if existing is not None:
                return self._submitted(existing, "found after a failed attempt" if attempt else "found by name")
            try:
                created = client.call("submit", "POST", "/api/requestgroups/", body=request, ok=(201,))
            except FacilityUnavailable as exc:
                last = exc
                continue
            return self._submitted(created, "accepted")
        raise last

    @staticmethod
    def _submitted(group: dict, how: str) -> SubmitResult:
        ids = [r["id"] for r in group.get("requests", [])]
        state = group.get("state", "PENDING")
        return SubmitResult(remote_id=str(group["id"]), remote_request_ids=ids, name=group["name"],
                            status=STATE_MAP.get(state, FollowupStatus.submitted),
                            message=f"request group {group['id']} {how} ({state})")

    def cancel(self, client: PortalClient, remote_id: str) -> None:
        delay = self.backoff_s
        for attempt in range(self.retries):
            try:
                client.call("cancel", "POST", f"/api/requestgroups/{remote_id}/cancel/")
                return
            except FacilityUnavailable:
                if attempt == self.retries - 1:
                    raise
                self._sleep(delay)
                delay *= 2

    def refresh(self, client: PortalClient, remote_request_ids: list) -> RefreshResult:
        states, blocks = [], []
        for rid in remote_request_ids:
            req = client.call("refresh", "GET", f"/api/requests/{rid}/")
            states.append(req.get("state", "PENDING"))
            obs = client.call("refresh", "GET", f"/api/requests/{rid}/observations/")
            blocks.extend(o for o in (obs or []) if o.get("state") in ("PENDING", "IN_PROGRESS", "COMPLETED"))
        # the group is as far as its least advanced request
        order = ["PENDING", "SCHEDULED", "COMPLETED", "WINDOW_EXPIRED", "FAILURE_LIMIT_REACHED", "CANCELED"]
        state = min(states, key=lambda s: order.index(s) if s in order else 0) if states else "PENDING"
        status = STATE_MAP.get(state, FollowupStatus.submitted)
        if status is FollowupStatus.submitted and any(b.get("state") == "PENDING" and b.get("start")
                                                      for b in blocks):
            status = FollowupStatus.scheduled
        when = ", ".join(f"{b['start']}–{b['end']}" for b in blocks if b.get("start"))[:500]
        message = f"LCO state {state}" + (f"; observations {when}" if when else "")
        return RefreshResult(status, message, blocks)

    def frames(self, archive: PortalClient, remote_request_ids: list) -> list[Frame]:
        out = []
        for rid in remote_request_ids:
            page = archive.call("frames", "GET", "/frames/", params={"request_id": rid, "limit": 1000})
            for f in (page or {}).get("results", []):
                out.append(Frame(id=f["id"], filename=f.get("filename") or f.get("basename", ""),
                                 url=f.get("url", ""), date_obs=f.get("DATE_OBS"), filter=f.get("FILTER"),
                                 exptime=float(f["EXPTIME"]) if f.get("EXPTIME") else None,
                                 reqnum=f.get("REQNUM")))
        return out
