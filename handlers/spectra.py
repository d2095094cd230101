"""/api/spectra (alias /api/spectrum), /api/spectra/ascii, /api/spectra/parse/ascii and
/api/sources/{obj_id}/spectra (SkyPortal's spectrum handlers)."""

from broker.objects import spectra as svc
from broker.objects.objs import parse_date
from broker.validation import array, integer, obj, string
from models.enums import ALLOWED_SPECTRUM_TYPES

from .base import BaseHandler
from .base import Param, endpoint

NUMBERS = {"type": "array", "items": {"type": "number"}}
IDS = array(integer())
CONTACTS = {
    "pi": {**IDS, "description": "Users who are PIs of the spectrum (or contacts for external_pi)"},
    "external_pi": {"type": ["string", "null"], "description": "A PI who is not a user"},
    "reduced_by": {**IDS, "description": "Users who reduced the spectrum"},
    "external_reducer": {"type": ["string", "null"], "description": "A reducer who is not a user"},
    "observed_by": {**IDS, "description": "Users who observed the spectrum"},
    "external_observer": {"type": ["string", "null"], "description": "An observer who is not a user"},
}
GROUP_IDS = {"description": 'Groups to share with, or "all" (default: your own group only; it is always added)',
             "anyOf": [{"type": "array", "items": {"type": "integer"}}, {"type": "string", "const": "all"},
                       {"type": "null"}]}
SPECTRUM_FIELDS = {
    "wavelengths": {**NUMBERS, "minItems": 1, "description": "Wavelengths [Angstrom]"},
    "fluxes": {**NUMBERS, "minItems": 1, "description": "Fluxes (F_lambda, arbitrary units)"},
    "errors": {"type": ["array", "null"], "items": {"type": "number"}, "description": "Flux errors"},
    "units": {"type": ["string", "null"], "enum": [*svc.UNITS, None], "description": "Jy, AB or erg/s/cm/cm/AA"},
    "obj_id": string("ID of the object", minLength=1),
    "observed_at": string("When the spectrum was taken (ISO UTC)"),
    "origin": {"type": ["string", "null"], "description": "Origin of the spectrum"},
    "type": {"type": ["string", "null"], "enum": [*ALLOWED_SPECTRUM_TYPES, None], "description": "Type of spectrum"},
    "label": {"type": ["string", "null"], "description": "Label for plot legends"},
    "instrument_id": integer("Instrument that took it"),
    "group_ids": GROUP_IDS,
    "followup_request_id": {"type": ["integer", "null"], "description": "Follow-up request that produced it"},
    "assignment_id": {"type": ["integer", "null"],
                      "description": "Classical assignment that produced it (none exist here: refused)"},
    "altdata": {"type": ["object", "null"], "description": "Other metadata"},
    **CONTACTS,
}
SPECTRUM_POST = obj(SPECTRUM_FIELDS, required=("wavelengths", "fluxes", "obj_id", "observed_at", "instrument_id"))
SPECTRUM_PUT = obj(SPECTRUM_FIELDS)
ASCII_FIELDS = {
    "ascii": string("The file's text: an optional '#' header (KEY: VALUE or FITS cards), then columns"),
    "wave_column": integer("0-based column of the wavelengths (default 0)", minimum=0),
    "flux_column": integer("0-based column of the fluxes (default 1)", minimum=0),
    "fluxerr_column": {"type": ["integer", "null"], "minimum": 0, "description": "0-based column of the errors"},
}
ASCII_PARSE = obj(ASCII_FIELDS, required=("ascii",))
ASCII_POST = obj({
    **ASCII_FIELDS,
    "obj_id": string("ID of the object", minLength=1),
    "instrument_id": integer("Instrument that took it"),
    "type": {"type": "string", "enum": list(ALLOWED_SPECTRUM_TYPES), "description": "Type of spectrum"},
    "label": string("Label for plot legends"),
    "observed_at": string("When the spectrum was taken (ISO UTC)"),
    "group_ids": GROUP_IDS,
    "filename": string("The original file name"),
    "followup_request_id": {"type": ["integer", "null"]},
    "assignment_id": {"type": ["integer", "null"], "description": "Classical assignment (none exist here: refused)"},
    **CONTACTS,
}, required=("ascii", "obj_id", "instrument_id", "observed_at", "filename"))

LIST_PARAMS = (
    Param("minimalPayload", {"type": "boolean"}, "Only metadata (no data, comments, annotations)"),
    Param("includeOriginalFile", {"type": "boolean"}, "Include the uploaded file (original_file_string)"),
    Param("observedBefore", {"type": "string"}), Param("observedAfter", {"type": "string"}),
    Param("modifiedBefore", {"type": "string"}), Param("modifiedAfter", {"type": "string"}),
    Param("objID", {"type": "string"}, "Object ID contains this"),
    Param("instrumentIDs", {"type": "string"}, "Comma-separated instrument IDs"),
    Param("groupIDs", {"type": "string"}, "Comma-separated group IDs"),
    Param("followupRequestIDs", {"type": "string"}, "Comma-separated follow-up request IDs"),
    Param("assignmentIDs", {"type": "string"}, "Comma-separated classical assignment IDs (none exist here)"),
    Param("origin", {"type": "string"}, "Comma-separated: origin contains one of these"),
    Param("label", {"type": "string"}, "Comma-separated: label contains one of these"),
    Param("type", {"type": "string"}, "Comma-separated spectrum types"),
    Param("commentsFilter", {"type": "string"}, "Comma-separated: a comment contains one of these"),
    Param("commentsFilterAuthor", {"type": "string"}, "Comma-separated: a comment's author name contains one"),
    Param("commentsFilterBefore", {"type": "string"}), Param("commentsFilterAfter", {"type": "string"}),
)


class SpectrumHandler(BaseHandler):
    @endpoint("Retrieve a spectrum, or the spectra matching the filters", tags="spectra", params=LIST_PARAMS)
    def get(self, spectrum_id=None):
        include_file = self.bool_arg("includeOriginalFile")
        with self.session() as session:
            if spectrum_id is not None:
                self.success(svc.get_spectrum(session, self.principal, int(spectrum_id), include_file))
                return
            d = lambda name: parse_date(self.str_arg(name), name)  # noqa: E731
            q = svc.SpectrumQuery(
                minimal_payload=self.bool_arg("minimalPayload"), include_original_file=include_file,
                observed_before=d("observedBefore"), observed_after=d("observedAfter"),
                modified_before=d("modifiedBefore"), modified_after=d("modifiedAfter"),
                obj_id=self.str_arg("objID"), instrument_ids=self.str_arg("instrumentIDs"),
                group_ids=self.str_arg("groupIDs"), followup_request_ids=self.str_arg("followupRequestIDs"),
                assignment_ids=self.str_arg("assignmentIDs"), origin=self.str_arg("origin"),
                label=self.str_arg("label"), type=self.str_arg("type"),
                comments_filter=self.str_arg("commentsFilter"),
                comments_filter_author=self.str_arg("commentsFilterAuthor"),
                comments_filter_before=d("commentsFilterBefore"), comments_filter_after=d("commentsFilterAfter"),
            )
            self.success(svc.list_spectra(session, self.principal, q))

    @endpoint("Upload a spectrum", tags="spectra", acls=("Upload data",), body=SPECTRUM_POST)
    def post(self):
        with self.session() as session, session.begin():
            sid = svc.post_spectrum(session, self.principal, self.body)
        self.success({"id": sid})

    @endpoint("Update a spectrum (its owner or a system admin; named groups are added)", tags="spectra",
              acls=("Upload data",), body=SPECTRUM_PUT)
    def put(self, spectrum_id):
        with self.session() as session, session.begin():
            svc.update_spectrum(session, self.principal, int(spectrum_id), self.body)
        self.success()

    @endpoint("Delete a spectrum (its owner or a system admin)", tags="spectra", acls=("Upload data",))
    def delete(self, spectrum_id):
        with self.session() as session, session.begin():
            svc.delete_spectrum(session, self.principal, int(spectrum_id))
        self.success()


class SpectrumASCIIFileHandler(BaseHandler):
    @endpoint("Upload a spectrum from an ASCII file", tags="spectra", acls=("Upload data",), body=ASCII_POST)
    def post(self):
        with self.session() as session, session.begin():
            sid = svc.post_ascii(session, self.principal, self.body)
        self.success({"id": sid})


class SpectrumASCIIFileParser(BaseHandler):
    @endpoint("Parse an ASCII spectrum file (nothing is stored)", tags="spectra", acls=("Upload data",),
              body=ASCII_PARSE)
    def post(self):
        b = self.body
        parsed = svc.parse_ascii(b["ascii"], b.get("wave_column", 0), b.get("flux_column", 1), b.get("fluxerr_column"))
        self.success(svc.parsed_ascii_dict(parsed))


class ObjSpectraHandler(BaseHandler):
    @endpoint("Retrieve an object's spectra", tags="spectra",
              params=(Param("normalization", {"type": "string", "enum": ["median"]}, "median: median flux is 1"),
                      Param("sortBy", {"type": "string", "enum": ["observed_at", "created_at"]}),
                      Param("sortOrder", {"type": "string", "enum": ["asc", "desc"]}),
                      Param("includeOriginalFile", {"type": "boolean"})))
    def get(self, obj_id):
        with self.session() as session:
            self.success(svc.obj_spectra(session, self.principal, obj_id, self.str_arg("sortBy", "observed_at"),
                                         self.str_arg("sortOrder", "asc"), self.str_arg("normalization"),
                                         self.bool_arg("includeOriginalFile")))


class SpectrumRangeHandler(BaseHandler):
    @endpoint("Spectra of instruments observed within a date range", tags="spectra",
              params=(Param("instrument_ids", {"type": "integer"}, "An instrument (repeat for several; default all)"),
                      Param("min_date", {"type": "string"}, "Observed at or after (ISO UTC)"),
                      Param("max_date", {"type": "string"}, "Observed at or before (ISO UTC)")))
    def get(self):
        from broker.errors import ValidationError

        raw = self.get_query_arguments("instrument_ids")
        try:
            ids = [int(i) for i in raw]
        except ValueError:
            raise ValidationError(f"Invalid instrument_ids: {raw}", field="instrument_ids") from None
        with self.session() as session:
            self.success(svc.spectra_in_range(session, self.principal, ids,
                                              parse_date(self.str_arg("min_date"), "min_date"),
                                              parse_date(self.str_arg("max_date"), "max_date")))
