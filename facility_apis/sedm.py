"""SEDMAPI (SkyPortal's sedm.py): a listener facility. Requests go to the SEDM queue as SkyPortal sends
them (a ``jsonfile`` form field holding the request); the queue's answer "accepted" means submitted. Its
progress arrives later at ``POST /api/facility`` from the facility's own "Post from SEDMAPI" identity.

Settings: ``facilities.sedm`` (``url``: the queue's endpoint; null: nothing is sent and the answer is
"accepted", as SkyPortal does without ``app.sedm_endpoint``; ``timeout_s``).
"""

from __future__ import annotations

import json

import requests

from broker.errors import ValidationError
from broker.validation import validate as validate_schema

from .base import (Exchange, FacilityAPI, FacilityRejected, FacilityStatus, FacilityUnavailable, RefreshResult,
                   SubmitResult, check_window)

OBSERVATION_TYPES = ["3-shot (gri)", "4-shot (ugri)", "IFU", "4-shot+IFU", "3-shot+IFU", "Mix 'n Match"]
FILTERS = {"IFU": "", "3-shot (gri)": "g,r,i", "4-shot (ugri)": "u,g,r,i", "4-shot+IFU": "u,g,r,i",
           "3-shot+IFU": "g,r,i"}

FORM = {
    "type": "object",
    "title": "SEDMAPI",
    "properties": {
        "observation_type": {"type": "string", "enum": OBSERVATION_TYPES, "default": "IFU", "title": "Mode"},
        "observation_choices": {"type": "array", "minItems": 1, "uniqueItems": True, "title": "Desired Observations",
                                "items": {"type": "string", "enum": ["u", "g", "r", "i", "IFU"]}},
        "priority": {"type": "number", "minimum": 1, "maximum": 5, "default": 1.0, "title": "Priority"},
        "start_date": {"type": "string", "title": "Start Date (UT)"},
        "end_date": {"type": "string", "title": "End Date (UT)"},
        "advanced": {"type": "boolean", "default": False, "title": "Show Advanced Options"},
        "exposure_time": {"type": "number", "exclusiveMinimum": 0, "title": "Exposure time [s]"},
        "maximum_airmass": {"type": "number", "minimum": 1, "maximum": 3, "title": "Maximum Airmass"},
        "maximum_fwhm": {"type": "number", "minimum": 0, "title": "Maximum FWHM [arcsec]"},
    },
    "required": ["observation_type", "start_date", "end_date"],
    "additionalProperties": False,
}


class SEDMClient:
    """POSTs the request as SkyPortal does (multipart field ``jsonfile``); records each exchange."""

    def __init__(self, url: str | None, timeout: float):
        self.url, self.timeout = url, timeout
        self.exchanges: list[Exchange] = []

    def post(self, action: str, content: dict) -> str:
        record = {"method": "POST", "url": self.url or "mock://sedm", "body": content}
        if not self.url:
            self.exchanges.append(Exchange(action, record, {"status": 200, "body": "accepted"}))
            return "accepted"
        try:
            r = requests.post(self.url, files={"jsonfile": ("jsonfile", json.dumps(content))}, timeout=self.timeout)
        except (requests.Timeout, requests.ConnectionError) as exc:
            self.exchanges.append(Exchange(action, record, {"error": f"connection failed: {type(exc).__name__}"}))
            raise FacilityUnavailable(f"SEDM queue unreachable: {type(exc).__name__}") from exc
        self.exchanges.append(Exchange(action, record, {"status": r.status_code, "body": r.text[:2000]}))
        if r.status_code >= 500:
            raise FacilityUnavailable(f"SEDM queue answered {r.status_code}", r.status_code, r.text)
        if r.status_code != 200 or "accepted" not in r.text.lower():
            raise FacilityRejected(r.text[:500] or f"SEDM queue answered {r.status_code}", r.status_code, r.text)
        return r.text


class SEDMAPI(FacilityAPI):
    name = "SEDMAPI"
    settings_section = "sedm"
    needs_credentials = False
    priority_key = "priority"

    def form_schema(self, instrument_name: str) -> dict:
        return FORM

    def validate(self, instrument_name: str, payload: dict) -> None:
        validate_schema(payload, FORM)
        if payload["observation_type"] == "Mix 'n Match" and not payload.get("observation_choices"):
            raise ValidationError("Missing required field 'observation_choices' for Mix 'n Match",
                                  field="observation_choices")
        check_window(payload)

    def build(self, instrument_name: str, payload: dict, *, obj_id: str, ra: float, dec: float,
              proposal: str, name: str) -> dict:
        rtype = payload["observation_type"]
        if rtype == "Mix 'n Match":
            choices = list(payload["observation_choices"])
            followup = "IFU" if "IFU" in choices else ""
            filters = ",".join(c for c in choices if c != "IFU")
        else:
            filters, followup = FILTERS[rtype], ("IFU" if "IFU" in rtype else "")
        return {"Filters": filters, "Followup": followup, "startdate": payload["start_date"],
                "enddate": payload["end_date"], "priority": payload.get("priority", 1.0), "programname": proposal,
                "requestid": name, "sourceid": obj_id[:26], "sourcename": obj_id[:26], "status": "new",
                "ra": ra, "dec": dec}

    def client(self, token: str | None, archive: bool = False) -> SEDMClient:
        s = getattr(self, "settings", None)
        return SEDMClient(getattr(s, "url", None), getattr(s, "timeout_s", 30.0))

    def submit(self, client: SEDMClient, request: dict) -> SubmitResult:
        client.post("submit", request)
        return SubmitResult(remote_id=str(request["requestid"]), remote_request_ids=[], name=request["requestid"],
                            status=FacilityStatus.submitted, message="accepted by the SEDM queue")

    def cancel(self, client: SEDMClient, remote_id: str) -> None:
        client.post("cancel", {"requestid": remote_id, "status": "delete"})

    def update(self, client: SEDMClient, remote_id, request: dict) -> SubmitResult:
        client.post("update", {**request, "status": "edit"})
        return SubmitResult(remote_id=str(request["requestid"]), remote_request_ids=[], name=request["requestid"],
                            status=FacilityStatus.submitted, message="update accepted by the SEDM queue")

    def refresh(self, client, remote_request_ids: list) -> RefreshResult:
        return RefreshResult(FacilityStatus.submitted, "SEDM reports through its listener")
