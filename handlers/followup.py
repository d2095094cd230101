"""/api/telescope, /api/instrument, /api/allocation, /api/followup_request, /api/facility."""

import models
from broker.followup import allocations as asvc
from broker.followup import requests as svc
from broker.followup import instruments as isvc
from broker.errors import ValidationError
from broker.objects.objs import caller_groups
from broker.sky.gcn import STORED_CREDIBLE_LEVEL
from broker.validation import array, boolean, integer, nullable, obj, string

from .base import PAGINATION_PARAMS, BaseHandler, Param, endpoint

NUM = {"type": "number"}
URL = nullable(string("A URL", maxLength=2000))
TELESCOPE = {"name": string("Unabbreviated facility name (e.g., Palomar 200-inch Hale Telescope)", minLength=1),
             "nickname": string("Abbreviated facility name (e.g., P200)", minLength=1),
             "lat": nullable({"type": "number", "minimum": -90, "maximum": 90, "description": "Latitude in deg"}),
             "lon": nullable({"type": "number", "minimum": -180, "maximum": 360, "description": "Longitude in deg"}),
             "elevation": nullable({"type": "number", "description": "Elevation in meters"}),
             "diameter": {"type": "number", "minimum": 0, "description": "Diameter in meters"},
             "skycam_link": {**URL, "description": "Link to the telescope's sky camera"},
             "weather_link": {**URL, "description": "Link to the preferred weather site"},
             "robotic": boolean("Is this telescope robotic? (default false)"),
             "fixed_location": nullable(boolean("Does this telescope have a fixed location (lon, lat, elev)? "
                                                "(default true)")),
             "mpc_obscode": nullable(string("Minor Planet Center observatory code, e.g. I41"))}
TELESCOPE_PUT = {k: (nullable(v) if k in ("name", "nickname", "diameter", "robotic") else v)
                 for k, v in TELESCOPE.items()}
OBJECT = {"type": "object"}
INT32 = {"minimum": -2**31, "maximum": 2**31 - 1}
INSTRUMENT = {"name": string("Instrument name (unique); for LCO the instrument type, e.g. 1M0-SCICAM-SINISTRO",
                             minLength=1),
              "type": {"type": "string", "enum": ["imager", "spectrograph", "imaging spectrograph"],
                       "description": "Instrument type"},
              "band": nullable(string("The spectral band covered (e.g., Optical, IR)")),
              "filters": nullable(array(string(), "Bandpasses of the instrument (none for a spectrograph)")),
              "telescope_id": integer("The ID of the Telescope that hosts the Instrument"),
              "sensitivity_data": nullable({**OBJECT, "description": "{filter: {limiting_magnitude, magsys, "
                                            "exposure_time}}; filters among the instrument's"}),
              "configuration_data": nullable({**OBJECT, "description": "Configuration: filt_change_time, readout, "
                                              "overhead_per_exposure, slew_rate, ..."}),
              "api_classname": nullable(string("Facility adapter for follow-up requests, e.g. LCO")),
              "api_classname_obsplan": nullable(string("Facility adapter for observation plans")),
              "listener_classname": nullable(string("Callback listener, e.g. LCO")),
              "treasuremap_id": nullable(integer("treasuremap.space API ID", **INT32)),
              "tns_id": nullable(integer("TNS API ID", **INT32)),
              "across_id": nullable(string("NASA ACROSS instrument UUID")),
              "field_region": nullable(string("The field shape: a DS9 region (only one of this and "
                                              "field_fov_type)")),
              "field_fov_type": nullable(string("The field shape: circle or rectangle")),
              "field_fov_attributes": {"type": ["number", "array", "null"], "items": NUM,
                                       "description": "Radius (circle) or [width, height] (rectangle), deg"},
              "field_data": {"description": "Field centres (ID, RA, Dec): not supported here (400)"},
              "references": {"description": "Reference images per field: not supported here (400)"}}
ALTDATA = nullable({"type": "object", "description": "Facility credentials, e.g. "
                    '{"API_TOKEN": ..., "API_ARCHIVE_TOKEN": ..., "PROPOSAL_ID": ...}; stored encrypted, never '
                    "returned; empty values are dropped and the rest merged into what is stored",
                    "additionalProperties": nullable({"type": ["string", "number", "boolean"]})})
ALLOCATION = {"group_id": integer(), "instrument_id": integer(), "pi": nullable(string()),
              "proposal_id": nullable(string()), "hours_allocated": {"type": "number", "minimum": 0, "maximum": 1e6},
              "start_date": nullable(string("UTC start")), "end_date": nullable(string("UTC end")),
              "_altdata": ALTDATA,
              "altdata": {**ALTDATA, "description": "Same as _altdata (skybroker's older name)"},
              "validity_ranges": nullable(array(obj({"start_date": string(), "end_date": string()}),
                                                "Windows (UTC) a request's dates must lie in one of")),
              "default_share_group_ids": nullable(array(integer(), "Groups data from this allocation is shared "
                                                                   "with by default")),
              "types": array({"type": "string", "enum": ["triggered", "forced_photometry", "observation_plan"]},
                             "What the allocation is for (default [triggered])", minItems=1),
              "allocation_admin_ids": array(integer(), "SkyPortal's allocation admins: not supported here "
                                                       "(400 unless empty)"),
              "replace_altdata": boolean("SkyPortal's flag: _altdata is merged into what is stored either way")}
CONSTRAINTS = {
    "not_if_duplicates": boolean("Do not submit if a request for this object (within radius) already exists "
                                 "on this allocation or one of ignore_allocation_ids"),
    "source_group_ids": array(integer(), "Submit only if the object is saved to every one of these groups"),
    "ignore_source_group_ids": array(integer(), "Do not submit if an object within radius is saved to any of "
                                                "these groups"),
    "not_if_classified": boolean("Do not submit if an object within radius is classified (not ML)"),
    "not_if_spectra_exist": boolean("Do not submit if an object within radius has spectra"),
    "not_if_tns_classified": boolean("Do not submit if an object within radius has a TNS SN name"),
    "not_if_tns_reported": nullable({"type": "number", "description": "Do not submit if an object within radius "
                                                                      "was reported to TNS more than this many hours ago"}),
    "ignore_allocation_ids": array(integer(), "With not_if_duplicates: also these allocations"),
    "not_if_assignment_exists": boolean("SkyPortal's observing-run assignments: not kept here (400 if true)"),
    "radius": {"type": "number", "minimum": 0, "maximum": 3600, "description": "arcsec (default 0.5)"},
}
UI_FLAGS = {"refreshSource": boolean("SkyPortal's UI refresh flag (no front-end here: no effect)"),
            "refreshRequests": boolean("SkyPortal's UI refresh flag (no front-end here: no effect)")}
FOLLOWUP_POST = obj({"obj_id": string(minLength=1), "allocation_id": integer(),
                     "payload": {"type": "object", "description": "As the instrument's form schema"},
                     "target_group_ids": array(integer()), "priority": nullable(NUM),
                     "comment": nullable(string("A comment on the request")),
                     "status": nullable(string("Initial status; GENERICAPI keeps it, a facility that submits "
                                               "replaces it with its answer")),
                     "watcher_ids": nullable(array(integer(), "Users to watch the request (default: the requester)")),
                     **CONSTRAINTS, **UI_FLAGS},
                    required=("obj_id", "allocation_id", "payload"))
FOLLOWUP_PUT = obj({"payload": {"type": "object"}, "priority": nullable(NUM),
                    "status": string("Set the status (no facility interaction), e.g. completed, deleted",
                                     minLength=1),
                    "comment": nullable(string()), "obj_id": string(), "allocation_id": integer(),
                    "target_group_ids": array(integer()), **UI_FLAGS}, minProperties=1)
FOLLOWUP_COMMENT = obj({"comment": nullable(string("The comment; empty or null clears it"))})
FACILITY_POST = obj({"followup_request_id": integer(), "new_status": string(),
                     "status_message": nullable(string())}, required=("followup_request_id", "new_status"))


class TelescopeHandler(BaseHandler):
    @endpoint("Retrieve all telescopes (with night times and allocations), or one (with its instruments)",
              tags="telescopes",
              params=(Param("name", {"type": "string"}, "Filter by name (exact match)"),
                      Param("latitudeMin", NUM), Param("latitudeMax", NUM),
                      Param("longitudeMin", NUM), Param("longitudeMax", NUM)))
    def get(self, telescope_id=None):
        with self.session() as session:
            if telescope_id is not None:
                self.success(isvc.telescope_detail(session, self.principal, int(telescope_id)))
                return
            stmt = isvc.telescope_query(self.str_arg("name"), self.float_arg("latitudeMin"),
                                        self.float_arg("latitudeMax"), self.float_arg("longitudeMin"),
                                        self.float_arg("longitudeMax"))
            self.success(isvc.telescope_list(session, self.principal, stmt))

    @endpoint("Create a telescope", tags="telescopes", body=obj(TELESCOPE, required=("name", "nickname", "diameter")))
    def post(self):
        with self.session() as session, session.begin():
            self.success({"id": isvc.create_telescope(session, self.principal, self.body).id})

    @endpoint("Update a telescope", tags="telescopes", acls=("Manage telescopes",),
              body=obj(TELESCOPE_PUT, minProperties=1))
    def put(self, telescope_id):
        with self.session() as session, session.begin():
            isvc.update_telescope(session, self.principal, int(telescope_id), self.body)
        self.success()

    @endpoint("Delete a telescope", tags="telescopes", acls=("Manage telescopes",))
    def delete(self, telescope_id):
        with self.session() as session, session.begin():
            isvc.delete_telescope(session, self.principal, int(telescope_id))
        self.success()


class InstrumentHandler(BaseHandler):
    @endpoint("Retrieve all instruments, or one (with its follow-up form as a JSON schema)", tags="instruments",
              params=(Param("name", {"type": "string"}, "Filter by name (exact match)"),
                      Param("includeRegion", {"type": "boolean"}, "Include the DS9 region (default false)"),
                      Param("includeGeoJSON", {"type": "boolean"}, "One instrument: its fields' GeoJSON"),
                      Param("includeGeoJSONSummary", {"type": "boolean"}, "One instrument: its fields' outline"),
                      Param("ignoreCache", {"type": "boolean"}),
                      Param("localizationDateobs", {"type": "string"}, "One instrument: its fields in this "
                            "event's localization"),
                      Param("localizationName", {"type": "string"}),
                      Param("localizationCumprob", NUM, "default 0.95"),
                      Param("airmassTime", {"type": "string"}, "Time of the fields' airmass")))
    def get(self, instrument_id=None):
        include_region = self.bool_arg("includeRegion")
        # accepted with SkyPortal's meaning; skybroker keeps no instrument fields, so they change nothing
        for flag in ("includeGeoJSON", "includeGeoJSONSummary", "ignoreCache"):
            self.bool_arg(flag)
        self.float_arg("localizationCumprob", 0.95)
        dateobs = isvc.parse_when(self.str_arg("localizationDateobs"), "localizationDateobs")
        isvc.parse_when(self.str_arg("airmassTime"), "airmassTime")
        with self.session() as session:
            if instrument_id is None:
                self.success(isvc.instrument_list(session, self.str_arg("name"), include_region))
                return
            out = isvc.instrument_detail(session, self.principal, int(instrument_id), include_region=include_region,
                                         localization_dateobs=dateobs,
                                         localization_name=self.str_arg("localizationName"))
            inst = session.get(models.Instrument, int(instrument_id))
            out["form_schema"] = (self.application.followup.form_schema(inst) if inst.api_classname else None)
            self.success(out)

    @endpoint("Add an instrument (System admin or 'Manage allocations')", tags="instruments",
              body=obj(INSTRUMENT, required=("name", "type", "telescope_id")))
    def post(self):
        with self.session() as session, session.begin():
            self.success({"id": isvc.create_instrument(session, self.principal, self.body).id})

    @endpoint("Update an instrument", tags="instruments", acls=("Manage instruments",),
              body=obj(INSTRUMENT, minProperties=1))
    def put(self, instrument_id):
        with self.session() as session, session.begin():
            isvc.update_instrument(session, self.principal, int(instrument_id), self.body)
        self.success()

    @endpoint("Delete an instrument", tags="instruments", acls=("Manage instruments",),
              params=(Param("fieldsOnly", {"type": "boolean"}, "Delete only its fields (default false)"),))
    def delete(self, instrument_id):
        with self.session() as session, session.begin():
            isvc.delete_instrument(session, self.principal, int(instrument_id), self.bool_arg("fieldsOnly"))
        self.success()


class AllocationHandler(BaseHandler):
    @endpoint("Retrieve allocations you can use, or one (credentials are never returned)", tags="allocations",
              params=(Param("instrument_id", {"type": "integer"}),
                      Param("apiType", {"type": "string", "enum": ["api_classname", "api_classname_obsplan"]},
                            "Only allocations whose instrument has this kind of facility API"),
                      Param("apiImplements", {"type": "string", "enum": ["submit", "update", "delete", "get"]},
                            "Only allocations whose facility implements this")))
    def get(self, allocation_id=None):
        with self.session() as session:
            if allocation_id is not None:
                self.success(svc.allocation_to_dict(svc.get_allocation(session, self.principal, int(allocation_id))))
                return
            rows = asvc.list_allocations(session, self.principal, self.application.followup.adapters,
                                        instrument_id=self.int_arg("instrument_id"),
                                        api_type=self.str_arg("apiType"), implements=self.str_arg("apiImplements"))
            self.success([svc.allocation_to_dict(a) for a in rows])

    @endpoint("Post new allocation on a robotic instrument", tags="allocations", acls=("Manage allocations",),
              body=obj(ALLOCATION, required=("group_id", "instrument_id", "hours_allocated")))
    def post(self):
        with self.session() as session, session.begin():
            a = svc.save_allocation(session, self.principal, self.application.followup.vault, self.body)
            self.success({"id": a.id})

    @endpoint("Update an allocation", tags="allocations", acls=("Manage allocations",),
              body=obj(ALLOCATION, minProperties=1))
    def put(self, allocation_id):
        with self.session() as session, session.begin():
            a = svc.get_allocation(session, self.principal, int(allocation_id))
            svc.save_allocation(session, self.principal, self.application.followup.vault, self.body, a)
        self.success()

    @endpoint("Delete allocation", tags="allocations", acls=("Manage allocations",))
    def delete(self, allocation_id):
        with self.session() as session, session.begin():
            session.delete(svc.get_allocation(session, self.principal, int(allocation_id)))
        self.success()


def _int_list(handler, name: str) -> list[int] | None:
    raw = handler.get_query_arguments(name)
    if not raw:
        return None
    out = []
    for part in ",".join(raw).split(","):
        if part.strip():
            try:
                out.append(int(part))
            except ValueError:
                raise ValidationError(f"{name} must be a comma seperated string list or list of integers",
                                      field=name) from None
    return out


class FollowupRequestHandler(BaseHandler):
    @endpoint("Retrieve follow-up requests, or one (with its facility transactions and, our addition, its status "
              "history)", tags="followup_requests",
              params=(*PAGINATION_PARAMS, Param("sourceID", {"type": "string"}, "Portion of the object ID"),
                      Param("instrumentID", {"type": "integer"}, "Ignored if allocationID is given"),
                      Param("allocationID", {"type": "integer"}),
                      Param("requesters", {"type": "string"}, "Comma-separated user IDs"),
                      Param("priorityThreshold", NUM, "Only requests whose payload priority is at least this"),
                      Param("status", {"type": "string"}, "Portion of the status to match (case-insensitive)"),
                      Param("startDate", {"type": "string"}, "Created on or after"),
                      Param("endDate", {"type": "string"}, "Created on or before"),
                      Param("observationStartDate", {"type": "string"}, "Payload start_date on or after"),
                      Param("observationEndDate", {"type": "string"}, "Payload end_date on or before"),
                      Param("includeObjThumbnails", {"type": "boolean"}, "Accepted; the object comes without "
                                                                         "thumbnails here"),
                      Param("sortBy", {"type": "string", "enum": sorted(svc.REQUEST_SORTS)}, "default created_at"),
                      Param("sortOrder", {"type": "string", "enum": ["asc", "desc"]}, "default asc")))
    def get(self, followup_request_id=None):
        with self.session() as session:
            if followup_request_id is not None:
                req = svc.load_request(session, self.principal, int(followup_request_id))
                out = svc.request_to_dict(req, svc.transactions_of(session, req.id),
                                          caller_groups(session, self.principal))
                out["status_history"] = svc.status_history(session, [req.id])[req.id]  # our addition
                self.success(out)
                return
            self.bool_arg("includeObjThumbnails", True)
            q = svc.RequestQuery(
                obj_id=self.str_arg("sourceID"), allocation_id=self.int_arg("allocationID"),
                instrument_id=self.int_arg("instrumentID"), status=self.str_arg("status"),
                start=svc.parse_when(self.str_arg("startDate"), "startDate"),
                end=svc.parse_when(self.str_arg("endDate"), "endDate"),
                observation_start=svc.parse_when(self.str_arg("observationStartDate"), "observationStartDate"),
                observation_end=svc.parse_when(self.str_arg("observationEndDate"), "observationEndDate"),
                requesters=_int_list(self, "requesters"), priority_threshold=self.float_arg("priorityThreshold"),
                sort_by=self.str_arg("sortBy", "created_at"), sort_order=self.str_arg("sortOrder", "asc"))
            rows, total = svc.list_requests(session, self.principal, q, self.page())
            mine = caller_groups(session, self.principal)
            self.success({"followup_requests": [svc.request_to_dict(r, groups=mine) for r in rows],
                          "totalMatches": total})

    @endpoint("Submit a follow-up request (SkyPortal's constraints at the top level; a constraint that says no "
              "answers {id: null, ignored: true, message})", tags="followup_requests", body=FOLLOWUP_POST)
    async def post(self):
        self.success(await self.blocking(self.application.followup.create, self.principal, self.body))

    @endpoint("Update a follow-up request: with status, only the status (no facility interaction); else the "
              "facility's update (LCO: cancel, then resubmit)", tags="followup_requests", body=FOLLOWUP_PUT)
    async def put(self, followup_request_id):
        fu = self.application.followup
        if "status" in self.body:
            await self.blocking(fu.set_status, self.principal, int(followup_request_id), self.body)
        else:
            await self.blocking(fu.update, self.principal, int(followup_request_id), self.body)
        with self.session() as session:
            req = svc.load_request(session, self.principal, int(followup_request_id))
            self.success({"id": req.id, "status": svc.display_status(req)})

    @endpoint("Delete a follow-up request: cancelled at the facility, the row stays (status 'deleted')",
              tags="followup_requests")
    async def delete(self, followup_request_id):
        await self.blocking(self.application.followup.cancel, self.principal, int(followup_request_id))
        self.success()


class FollowupRequestCommentHandler(BaseHandler):
    @endpoint("Update a follow-up request comment", tags="followup_requests", body=FOLLOWUP_COMMENT)
    def put(self, followup_request_id):
        with self.session() as session, session.begin():
            svc.set_comment(session, self.principal, int(followup_request_id), self.body.get("comment"))
        with self.session() as session:
            self.success(svc.request_to_dict(svc.load_request(session, self.principal, int(followup_request_id)),
                                             groups=caller_groups(session, self.principal)))


class FollowupWatchHandler(BaseHandler):
    @endpoint("Watch a follow-up request", tags="followup_requests")
    def post(self, followup_request_id):
        with self.session() as session, session.begin():
            svc.watch(session, self.principal, int(followup_request_id), True)
        self.success()

    @endpoint("Stop watching a follow-up request", tags="followup_requests")
    def delete(self, followup_request_id):
        with self.session() as session, session.begin():
            svc.watch(session, self.principal, int(followup_request_id), False)
        self.success()


class PhotometryRequestHandler(BaseHandler):
    @endpoint("Get photometry request: poll the facility now for the request's status (and its frames once "
              "completed)", tags="followup_requests",
              params=(Param("refreshSource", {"type": "boolean"}, "SkyPortal's UI flag: no effect here"),
                      Param("refreshRequests", {"type": "boolean"}, "SkyPortal's UI flag: no effect here")))
    async def get(self, followup_request_id):
        self.bool_arg("refreshSource", True)
        self.bool_arg("refreshRequests", False)
        self.success(await self.blocking(self.application.followup.retrieve, self.principal,
                                         int(followup_request_id)))

    @endpoint("Fetch a completed request's frames from the facility archive and attach them",
              tags="followup_requests")
    async def post(self, followup_request_id):
        frames = await self.blocking(self.application.followup.fetch_frames, self.principal, int(followup_request_id))
        self.success({"frames": frames})


class FacilityMessageHandler(BaseHandler):
    @endpoint("Status callback from a remote facility (token with 'Post from <listener>')", tags="facility",
              body=FACILITY_POST)
    def post(self):
        self.application.followup.callback(self.principal, self.body)
        self.success()


DEFAULT_POST = obj({
    "default_followup_name": string("Unique name of the rule", minLength=1),
    "allocation_id": integer(),
    "payload": {"type": "object", "description": "As the instrument's form schema, without dates: the window "
                                                 "is [now, now + validity_days] when the rule fires"},
    "source_filter": {"description": "SkyPortal's {name: regex on the object ID, group_id: fire when saved to "
                                     "it, origin, classification}, as an object or a JSON string; and ours: "
                                     "filter_ids, group_ids, classifications, localization {cumprob, "
                                     "max_age_days}",
                      "anyOf": [obj({
                          "name": string("Regex the object's ID must match"),
                          "group_id": {"type": ["integer", "string"], "description": "Fire when saved to this group"},
                          "origin": nullable(string("Only objects of this origin")),
                          "classification": nullable(string("Only objects classified so")),
                          "filter_ids": array(integer(), "fire when an object passes one of these filters"),
                          "group_ids": array(integer(), "fire when an object is saved to one of these groups"),
                          "classifications": array(string(), "and only if it is classified as one of these"),
                          "localization": obj({"cumprob": {"type": "number", "exclusiveMinimum": 0,
                                                           "maximum": STORED_CREDIBLE_LEVEL},
                                               "max_age_days": {"type": "number", "exclusiveMinimum": 0}},
                                              required=("cumprob", "max_age_days"),
                                              description="and only inside this credible region of an event "
                                                          "at most this old")}),
                          string(maxLength=5000)]},
    "target_group_ids": array(integer()),
    "comment": nullable(string("Comment on each request the rule makes")),
    "priority_order": {"type": "string", "enum": ["asc", "desc"], "description": "asc: higher is more urgent"},
    "validity_days": {"type": "integer", "minimum": 1, "maximum": 365,
                      "description": "The window of the requests it makes (default 7 days)"},
    "implements_update": boolean("Whether its requests may be updated (default true)"),
    **{k: CONSTRAINTS[k] for k in ("not_if_duplicates", "source_group_ids", "ignore_source_group_ids",
                                   "not_if_classified", "not_if_spectra_exist", "not_if_tns_classified",
                                   "not_if_tns_reported", "ignore_allocation_ids", "radius")},
}, required=("default_followup_name", "allocation_id", "payload", "source_filter"))


class DefaultFollowupHandler(BaseHandler):
    @endpoint("Retrieve default follow-up requests, or one", tags="default_followup_requests")
    def get(self, default_followup_id=None):
        from broker.followup import default_rules as rules

        D = models.DefaultFollowupRequest
        with self.session() as session:
            if default_followup_id is not None:
                self.success(rules.default_to_dict(rules.get_default(session, self.principal, int(default_followup_id))))
            else:
                stmt = rules.readable_defaults(self.principal).order_by(D.id)
                self.success([rules.default_to_dict(r) for r in session.execute(stmt).scalars()])

    @endpoint("Create default follow-up request.", tags="default_followup_requests", body=DEFAULT_POST)
    def post(self):
        from broker.followup import default_rules as rules

        with self.session() as session, session.begin():
            rule = rules.save_default(session, self.principal, self.application.followup, self.body)
            self.success({"id": rule.id})

    @endpoint("Delete a default follow-up request", tags="default_followup_requests")
    def delete(self, default_followup_id):
        from broker.followup import default_rules as rules

        with self.session() as session, session.begin():
            session.delete(rules.get_default(session, self.principal, int(default_followup_id)))
        self.success()


def _output_format(handler, allowed) -> str:
    fmt = handler.str_arg("output_format", "json")
    if fmt not in allowed:
        raise ValidationError(f"Invalid output_format: must be one of {list(allowed)}", field="output_format")
    return fmt


def _send_file(handler, data: bytes, fmt: str, name: str) -> None:
    types = {"png": "image/png", "pdf": "application/pdf", "csv": "text/csv; charset=UTF-8"}
    handler.set_header("Content-Type", types[fmt])
    handler.set_header("Content-Disposition", f'attachment; filename="{name}.{fmt}"')
    handler.finish(data)


class AllocationReportHandler(BaseHandler):
    @endpoint("Produce a report on allocations for an instrument (hours used vs allocated)", tags="allocations",
              params=(Param("output_format", {"type": "string", "enum": ["json", "png", "pdf"]},
                            "json (default), or a plot as png or pdf"),))
    def get(self, instrument_id):
        from broker.followup import reports as rep

        fmt = _output_format(self, ("json", "png", "pdf"))
        with self.session() as session:
            report = rep.allocation_report(session, self.principal, int(instrument_id))
        if fmt == "json":
            self.success(report)
        else:
            _send_file(self, rep.report_plot(report, fmt), fmt, f"allocations_{instrument_id}")


class FollowupScheduleHandler(BaseHandler):
    @endpoint("The active follow-up requests on an instrument, by priority", tags="followup_requests",
              params=(Param("output_format", {"type": "string", "enum": ["json", "csv", "png", "pdf"]}),
                      Param("observationStartDate", {"type": "string"}),
                      Param("observationEndDate", {"type": "string"})))
    def get(self, instrument_id):
        from broker.followup import reports as rep

        fmt = _output_format(self, rep.FORMATS)
        start = svc.parse_when(self.str_arg("observationStartDate"), "observationStartDate")
        end = svc.parse_when(self.str_arg("observationEndDate"), "observationEndDate")
        with self.session() as session:
            sched = rep.schedule(session, self.principal, int(instrument_id), start, end)
        if fmt == "json":
            self.success(sched)
        elif fmt == "csv":
            _send_file(self, rep.to_csv(sched["requests"]), "csv", f"schedule_{instrument_id}")
        else:
            _send_file(self, rep.schedule_plot(sched, fmt), fmt, f"schedule_{instrument_id}")


PRIORITIZE_PUT = obj({
    "requestIds": array(integer(), "Requests to re-prioritise (SkyPortal's name)", minItems=1),
    "followupRequestIds": array(integer(), "Same as requestIds (skybroker's older name)", minItems=1),
    "priorityType": {"type": "string", "enum": ["magnitude", "localization"], "description": "default magnitude"},
    "minimumPriority": NUM, "maximumPriority": NUM,
    "localizationId": integer("with priorityType localization: the localization to rank by"),
})


class FollowupPrioritizationHandler(BaseHandler):
    @endpoint("Set priorities from magnitudes or a localization's density (each facility writes them its way: "
              "LCO's ipp_value, resubmitted where it changed)", tags="followup_requests", body=PRIORITIZE_PUT)
    async def put(self):
        from broker.followup.prioritization import prioritize

        self.success(await self.blocking(prioritize, self.application.followup, self.principal, self.body))
