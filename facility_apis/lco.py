"""The LCO adapter: follow-up payloads → v3 request groups on the LCO observe portal.

Submit: ``POST /api/requestgroups/``; a timeout or 5xx is retried with backoff, but before each retry
the portal is asked for a request group of the same (unique) name, so a request that did arrive is
never submitted twice. Cancel: ``POST /api/requestgroups/{id}/cancel/``. Refresh:
``GET /api/requests/{id}/`` and ``/observations/``. Frames: the archive's ``/frames/?request_id=``.
"""

from __future__ import annotations

import re
import time

import arrow

from broker.errors import ValidationError
from broker.validation import validate as validate_schema

from .base import (FacilityAPI, drf_errors, FacilityError, FacilityStatus, FacilityUnavailable, Frame, PortalClient,
                   RefreshResult, SubmitResult)
from .lco_instruments import (FLOYDS_SEQUENCE, GHTS_ARC_S, INSTRUMENTS, MUSCAT_EXPOSURE_MODES, OBSERVATION_TYPES,
                              request_duration)

FollowupStatus = FacilityStatus  # LCO request states are mapped onto the facility-neutral states

# LCO request states -> ours
STATE_MAP = {
    "PENDING": FollowupStatus.submitted,
    "SCHEDULED": FollowupStatus.scheduled,
    "COMPLETED": FollowupStatus.completed,
    "WINDOW_EXPIRED": FollowupStatus.expired,
    "CANCELED": FollowupStatus.cancelled,
    "FAILURE_LIMIT_REACHED": FollowupStatus.failed,
}

_MODES = list(OBSERVATION_TYPES[:3])
_COMMON = {
    "start_date": {"type": "string", "title": "Start Date (UT)",
                   "description": "Start of the window (UTC; a date or a date-time)"},
    "end_date": {"type": "string", "title": "End Date (UT)", "description": "End of the window (UTC)"},
    "exposure_counts": {"type": "integer", "minimum": 1, "default": 1, "title": "Exposure Counts",
                        "description": "Exposures per setting"},
    "maximum_airmass": {"type": "number", "minimum": 1.0, "maximum": 25.0, "default": 2.0,
                        "title": "Maximum Airmass"},
    "minimum_lunar_distance": {"type": "number", "minimum": 0.0, "maximum": 180.0, "default": 30.0,
                               "title": "Minimum Lunar Distance [deg.] (0-180)"},
    "maximum_lunar_phase": {"type": "number", "minimum": 0.0, "maximum": 1.0, "default": 1.0},
    # SkyPortal's names: priority is the portal's ipp_value, observation_mode its observation_type
    "priority": {"type": "number", "minimum": 0.5, "maximum": 2.0, "title": "IPP (0.5-2)",
                 "description": "LCO intra-proposal priority (SkyPortal's name for ipp_value)"},
    "ipp_value": {"type": "number", "minimum": 0.5, "maximum": 2.0, "default": 1.0,
                  "description": "LCO intra-proposal priority (same as priority)"},
    "observation_mode": {"type": "string", "enum": _MODES, "title": "Observation mode",
                         "description": "SkyPortal's name for observation_type"},
    "observation_type": {"type": "string", "enum": _MODES, "default": "NORMAL"},
    # SkyPortal's optional constraints may also sit in the payload (checked before submission)
    "not_if_duplicates": {"type": "boolean", "description": "skip if a request for this object exists"},
    "not_if_classified": {"type": "boolean", "description": "skip if the object is classified"},
    "not_if_spectra_exist": {"type": "boolean", "description": "skip if the object has spectra"},
    "ignore_source_group_ids": {"type": "array", "items": {"type": "integer"},
                                "description": "skip if the object is saved to any of these groups"},
}
_REQUIRED = ("start_date", "end_date")
_EXPOSURE = {"type": "number", "exclusiveMinimum": 0, "title": "Exposure Time [s]"}


def _schema(inst_type: str, choose_type: tuple[str, ...] | None = None) -> dict:
    """The payload form of one LCO-portal instrument type (SkyPortal's form fields and ours)."""
    inst = INSTRUMENTS[inst_type]
    props = dict(_COMMON)
    required = list(_REQUIRED)
    if choose_type:
        props["instrument_type"] = {"type": "string", "enum": list(choose_type), "default": choose_type[0],
                                    "title": "Instrument Type"}
    if inst.kind in ("imager", "soar_imager"):
        props.update({
            "observation_choices": {"type": "array", "minItems": 1, "uniqueItems": True, "title": "Desired Observations",
                                    "items": {"type": "string", "enum": list(inst.optical_elements["filter"])},
                                    "description": "Filters: one instrument config each"},
            "exposure_time": {**_EXPOSURE, "description": "seconds per exposure"},
            "mode": {"type": "string", "enum": list(inst.modes), "default": inst.default_mode},
        })
        required += ["observation_choices", "exposure_time"]
    elif inst.kind == "muscat":
        props["exposure_time"] = {**_EXPOSURE, "description": "every channel [s] (SkyPortal's form)"}
        for c in "griz":
            props[f"exposure_time_{c}"] = {**_EXPOSURE, "description": f"{c} channel [s] (default exposure_time)"}
            props[f"narrowband_{c}_position"] = {"type": "string", "enum": ["in", "out"], "default": "out"}
        props["exposure_mode"] = {"type": "string", "enum": list(MUSCAT_EXPOSURE_MODES), "default": "SYNCHRONOUS"}
        props["mode"] = {"type": "string", "enum": list(inst.modes), "default": inst.default_mode}
    elif inst.kind == "floyds":
        props["exposure_time"] = {**_EXPOSURE, "description": "spectrum [s]"}
        props["slit"] = {"type": "string", "enum": list(inst.optical_elements["slit"]), "default": "slit_2.0as"}
        required.append("exposure_time")
    elif inst.kind == "nres":
        props["exposure_time"] = {**_EXPOSURE, "description": "spectrum [s]"}
        required.append("exposure_time")
    elif inst.kind == "soar_ghts":
        props["exposure_time"] = {**_EXPOSURE, "description": "spectrum [s]"}
        props["instrument_mode"] = {"anyOf": [
            {"type": "string", "enum": list(inst.modes)},
            {"type": "array", "minItems": 1, "uniqueItems": True, "items": {"type": "string", "enum": list(inst.modes)}}],
            "default": [inst.default_mode], "title": "Instrument Mode(s)"}
        props["include_calibrations"] = {"type": "boolean", "default": False, "title": "Include arcs"}
        required.append("exposure_time")
    elif inst.kind == "soar_tspec":
        props["exposure_time"] = {**_EXPOSURE, "description": "spectrum [s]"}
        props["instrument_mode"] = {"type": "string", "enum": list(inst.modes), "default": inst.default_mode,
                                    "title": "Instrument Mode"}
        required.append("exposure_time")
    return {"type": "object", "title": inst_type, "properties": props, "required": required,
            "additionalProperties": False}


SCHEMAS = {t: _schema(t) for t in INSTRUMENTS}


def _iso(value: str, field: str) -> str:
    try:
        return arrow.get(value).to("utc").format("YYYY-MM-DDTHH:mm:ss.SSSSSS") + "Z"
    except (arrow.parser.ParserError, ValueError, TypeError, OverflowError):  # OverflowError: beyond year 1..9999 in UTC
        raise ValidationError(f"Invalid field '{field}': not a date: {value!r}", field=field) from None


# the request group's paths (indices dropped) and the form fields they may come from (build() below), the
# first of which the instrument's form has: a filter, a slit or MUSCAT's narrowband positions; a mode or
# SOAR's instrument_mode. Calibration configurations (FLOYDS' arcs and flats, GHTS' arcs) are built from
# constants, so their exposure errors land on the science exposure's fields: the nearest the form has.
_FORM_FIELDS_OF = (
    ("requests.windows.start", ("start_date",)), ("requests.windows.end", ("end_date",)),
    ("requests.windows", ("start_date",)), ("requests.windows.non_field_errors", ("start_date",)),
    ("requests.non_field_errors", ("end_date",)), ("instrument_configs.exposure_time", ("exposure_time",)),
    ("instrument_configs.exposure_count", ("exposure_counts",)),
    ("instrument_configs.optical_elements", ("observation_choices", "slit", "narrowband_g_position")),
    ("instrument_configs.mode", ("mode", "instrument_mode")), ("constraints.max_airmass", ("maximum_airmass",)),
    ("constraints.min_lunar_distance", ("minimum_lunar_distance",)),
    ("constraints.max_lunar_phase", ("maximum_lunar_phase",)), ("ipp_value", ("ipp_value",)),
    ("observation_type", ("observation_type",)),
)


class LCOAPI(FacilityAPI):
    """The LCO observe portal. ``api_classname`` ``LCO``: the instrument's name is its LCO instrument type;
    the subclasses below are SkyPortal's per-instrument classes, whose instrument type is fixed (or
    chosen in the payload among a few, SOAR's)."""

    name = "LCO"
    settings_section = "lco"
    priority_key = "priority"
    #: the instrument types this adapter drives (None: the instrument's name is the type)
    instrument_types: tuple[str, ...] | None = None

    def __init__(self, *, retries: int = 4, backoff_s: float = 0.5, sleep=time.sleep):
        self.retries = retries
        self.backoff_s = backoff_s
        self._sleep = sleep

    def configure(self, settings) -> "LCOAPI":
        self.settings = settings
        self.retries = getattr(settings, "retries", self.retries)
        return self

    def client(self, token: str | None, archive: bool = False) -> PortalClient:
        return super().client(token, archive)

    # -- payloads -----------------------------------------------------------------------------
    def _type(self, instrument_name: str, payload: dict | None = None) -> str:
        if self.instrument_types is None:
            if instrument_name not in SCHEMAS:
                raise ValidationError(f"LCO has no instrument type '{instrument_name}' "
                                      f"(known: {sorted(SCHEMAS)})", field="instrument")
            return instrument_name
        if len(self.instrument_types) == 1:
            return self.instrument_types[0]
        chosen = (payload or {}).get("instrument_type", self.instrument_types[0])
        if chosen not in self.instrument_types:
            raise ValidationError(f"Invalid field 'instrument_type': must be one of {list(self.instrument_types)}",
                                  field="instrument_type")
        return chosen

    def _schema_for(self, inst_type: str) -> dict:
        if self.instrument_types is not None and len(self.instrument_types) > 1:
            key = (inst_type, self.instrument_types)
            cache = type(self).__dict__.get("_schemas")
            if cache is None:
                cache = {}
                type(self)._schemas = cache
            if key not in cache:
                cache[key] = _schema(inst_type, self.instrument_types)
            return cache[key]
        return SCHEMAS[inst_type]

    def form_schema(self, instrument_name: str) -> dict:
        if self.instrument_types is None or len(self.instrument_types) == 1:
            return self._schema_for(self._type(instrument_name))
        # a choice of instrument types: SkyPortal's one form, the chosen type's fields below it
        merged = {"type": "object", "title": self.name, "properties": {}, "required": list(_REQUIRED),
                  "additionalProperties": False}
        for t in self.instrument_types:
            for k, v in self._schema_for(t)["properties"].items():
                if k in merged["properties"] and k == "observation_choices":
                    items = merged["properties"][k]["items"]["enum"]
                    v = {**v, "items": {**v["items"], "enum": list(dict.fromkeys(items + v["items"]["enum"]))}}
                elif k in merged["properties"] and k == "instrument_mode":
                    continue
                merged["properties"][k] = v
        return merged

    def normalise(self, instrument_name: str, payload: dict) -> dict:
        """SkyPortal's names folded onto ours (priority -> ipp_value, observation_mode -> observation_type);
        both given and different: a 400 naming the field."""
        p = dict(payload)
        for sp, ours in (("priority", "ipp_value"), ("observation_mode", "observation_type")):
            if p.get(sp) is not None:
                if p.get(ours) is not None and p[ours] != p[sp]:
                    raise ValidationError(f"Invalid field '{sp}': it is the same as {ours}, and they differ",
                                          field=sp)
                p[ours] = p[sp]
        return p

    def form_errors(self, instrument_name: str, body) -> dict[str, str]:
        """The portal's refusal by form field: its request-group paths (indices dropped) back to the names
        of this instrument's form schema; a request's own errors (e.g. its duration does not fit the window)
        go to the window. A message repeated for several configurations is given once."""
        fields = self.form_schema(instrument_name)["properties"]
        out: dict[str, list[str]] = {}
        for path, message in drf_errors(body):
            bare = re.sub(r"\[\d+\]", "", path)
            names = next((n for suffix, n in _FORM_FIELDS_OF if bare == suffix or bare.endswith("." + suffix)), ())
            name = next((n for n in names if n in fields), None)
            if name is not None and message not in out.setdefault(name, []):
                out[name].append(message)
        return {name: " ".join(messages) for name, messages in out.items()}

    def validate(self, instrument_name: str, payload: dict) -> None:
        inst_type = self._type(instrument_name, payload)
        validate_schema(payload, self._schema_for(inst_type))
        p = self.normalise(instrument_name, payload)
        if INSTRUMENTS[inst_type].kind == "muscat":
            for c in "griz":
                if p.get(f"exposure_time_{c}") is None and p.get("exposure_time") is None:
                    raise ValidationError(f"Missing required field 'exposure_time_{c}' (or exposure_time)",
                                          field=f"exposure_time_{c}")
        start = arrow.get(_iso(payload["start_date"], "start_date"))
        end = arrow.get(_iso(payload["end_date"], "end_date"))
        if end <= start:
            raise ValidationError("Invalid field 'end_date': must be after start_date", field="end_date")
        if end <= arrow.utcnow():
            raise ValidationError("Invalid field 'end_date': the window has already ended", field="end_date")

    def priority_payload(self, payload: dict, priority: float, lo: float, hi: float) -> dict:
        """A priority in [lo, hi] becomes the portal's ipp_value in [0.5, 2.0]."""
        ipp = 1.0 if hi == lo else round(0.5 + 1.5 * (priority - lo) / (hi - lo), 3)
        out = {**payload, "ipp_value": ipp}
        if "priority" in out:
            out["priority"] = ipp
        return out

    def build(self, instrument_name: str, payload: dict, *, obj_id: str, ra: float, dec: float,
              proposal: str, name: str) -> dict:
        """The v3 request group for a validated payload (the shape of the portal's own records)."""
        inst_type = self._type(instrument_name, payload)
        inst = INSTRUMENTS[inst_type]
        schema = self._schema_for(inst_type)
        p = {k: (v.get("default") if isinstance(v, dict) else None) for k, v in schema["properties"].items()}
        p.update({k: v for k, v in self.normalise(instrument_name, payload).items() if v is not None})
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
        elif inst.kind == "soar_imager":  # SkyPortal's soar.py: one configuration per filter, manual acquisition
            configurations = [configuration("EXPOSE", [ic(
                p["exposure_time"], {"filter": f}, p["mode"],
                extra={"offset_ra": 0, "offset_dec": 0, "defocus": 0, "rotator_angle": 0})],
                acquisition="MANUAL", priority=k)
                for k, f in enumerate(p["observation_choices"], start=1)]
        elif inst.kind == "muscat":
            times = {c: float(p.get(f"exposure_time_{c}") or p["exposure_time"]) for c in "griz"}
            extra = {"exposure_mode": p["exposure_mode"], "bin_x": 1, "bin_y": 1,
                     **{f"exposure_time_{c}": times[c] for c in "griz"}}
            elements = {f"narrowband_{c}_position": p[f"narrowband_{c}_position"] for c in "griz"}
            configurations = [configuration("EXPOSE", [ic(max(times.values()), elements, p["mode"], extra=extra)])]
        elif inst.kind == "floyds":
            configurations = []
            for order, (ctype, seconds) in enumerate(FLOYDS_SEQUENCE, start=1):
                spectrum = ctype == "SPECTRUM"
                configurations.append(configuration(
                    ctype,
                    [ic(p["exposure_time"] if spectrum else seconds, {"slit": p["slit"]}, "default",
                        rotator_mode="VFLOAT", exposure_count=count if spectrum else 1)],
                    acquisition="WCS", guiding=("ON", False), priority=order))
        elif inst.kind == "soar_ghts":
            modes = p["instrument_mode"]
            modes = [modes] if isinstance(modes, str) else list(modes)
            offsets = {"offset_ra": 0, "offset_dec": 0, "rotator_angle": 0}
            spectrum = configuration("SPECTRUM", [ic(p["exposure_time"], {}, m, rotator_mode="SKY", extra=offsets)
                                                  for m in modes], acquisition="MANUAL", guiding=("ON", False))
            configurations = [spectrum]
            if p.get("include_calibrations"):
                def arc():
                    return configuration("ARC", [ic(GHTS_ARC_S[m], {}, m, rotator_mode="SKY", extra=offsets,
                                                    exposure_count=3) for m in modes], guiding=("OFF", True))
                configurations = [arc(), spectrum, arc()]
            for k, conf in enumerate(configurations, start=1):
                conf["priority"] = k
        elif inst.kind == "soar_tspec":
            configurations = [configuration("SPECTRUM", [ic(
                p["exposure_time"], {}, p["instrument_mode"], rotator_mode="SKY",
                extra={"offset_ra": 0, "offset_dec": 0, "rotator_angle": 90})],
                acquisition="MANUAL", guiding=("ON", False))]
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


# -- SkyPortal's LCO-portal classes (skyportal/facility_apis/lco.py, soar.py) ----------------------------

class SINISTROAPI(LCOAPI):
    name = "SINISTROAPI"
    instrument_types = ("1M0-SCICAM-SINISTRO",)


class SPECTRALAPI(LCOAPI):
    name = "SPECTRALAPI"
    instrument_types = ("2M0-SCICAM-SPECTRAL",)


class MUSCATAPI(LCOAPI):
    name = "MUSCATAPI"
    instrument_types = ("2M0-SCICAM-MUSCAT",)


class FLOYDSAPI(LCOAPI):
    name = "FLOYDSAPI"
    instrument_types = ("2M0-FLOYDS-SCICAM",)


class QHY600API(LCOAPI):
    name = "QHY600API"
    instrument_types = ("0M4-SCICAM-QHY600",)


class NRESAPI(LCOAPI):
    name = "NRESAPI"
    instrument_types = ("1M0-NRES-SCICAM",)


class SOARGHTSAPI(LCOAPI):
    """SOAR Goodman spectrograph (blue or red camera, chosen by the payload's instrument_type)."""

    name = "SOARGHTSAPI"
    instrument_types = ("SOAR_GHTS_REDCAM", "SOAR_GHTS_BLUECAM")


class SOARGHTSIMAGERAPI(LCOAPI):
    """SOAR Goodman imager (blue or red camera)."""

    name = "SOARGHTSIMAGERAPI"
    instrument_types = ("SOAR_GHTS_REDCAM_IMAGER", "SOAR_GHTS_BLUECAM_IMAGER")


class SOARTSPECAPI(LCOAPI):
    """SOAR TripleSpec."""

    name = "SOARTSPECAPI"
    instrument_types = ("SOAR_TRIPLESPEC",)
