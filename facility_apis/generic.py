"""GENERICAPI (SkyPortal's generic.py): requests are tracked here and nothing is submitted anywhere.

Its status is whatever people (``PUT /api/followup_request/{id}`` with ``status``) or the facility's
listener (``POST /api/facility``) set; it is never polled.
"""

from __future__ import annotations

from broker.validation import validate as validate_schema

from .base import FacilityAPI, FacilityStatus, RefreshResult, SubmitResult, check_window

FORM = {
    "type": "object",
    "title": "GENERICAPI",
    "properties": {
        "priority": {"type": "number", "minimum": 1, "maximum": 5, "default": 1, "title": "Priority"},
        "start_date": {"type": "string", "title": "Start Date (UT)"},
        "end_date": {"type": "string", "title": "End Date (UT)"},
        "exposure_time": {"type": "number", "exclusiveMinimum": 0, "title": "Exposure Time [s]"},
        "exposure_counts": {"type": "integer", "minimum": 1, "title": "Exposure Counts"},
        "observation_choices": {"type": "array", "items": {"type": "string"}, "title": "Desired Observations"},
        "observation_type": {"type": "string", "title": "Observation type"},
        "comment": {"type": "string", "title": "Instructions for the observer"},
    },
    "required": ["start_date", "end_date"],
    # free-form: a generic facility's observers read what the requester wrote
    "additionalProperties": True,
}


class GenericAPI(FacilityAPI):
    name = "GENERICAPI"
    needs_credentials = False
    submits = False
    priority_key = "priority"

    def form_schema(self, instrument_name: str) -> dict:
        return FORM

    def validate(self, instrument_name: str, payload: dict) -> None:
        validate_schema(payload, FORM)
        check_window(payload)

    def build(self, instrument_name: str, payload: dict, *, obj_id: str, ra: float, dec: float,
              proposal: str, name: str) -> dict:
        return {"name": name, "obj_id": obj_id, "ra": ra, "dec": dec, "payload": payload}

    def client(self, token: str | None, archive: bool = False):
        return _NoClient()

    def submit(self, client, request: dict) -> SubmitResult:
        return SubmitResult(remote_id=None, remote_request_ids=[], name=request["name"],
                            status=FacilityStatus.submitted, message="tracked (generic facility: nothing sent)")

    def cancel(self, client, remote_id: str | None) -> None:
        return None

    def update(self, client, remote_id, request: dict) -> SubmitResult:
        return self.submit(client, request)

    def refresh(self, client, remote_request_ids: list) -> RefreshResult:
        return RefreshResult(FacilityStatus.submitted, "generic facility: status set by users or callbacks")


class _NoClient:
    """Nothing is sent: an empty exchange log."""

    def __init__(self):
        self.exchanges = []
