"""/api/telescope, /api/instrument, /api/allocation, /api/followup_request, /api/facility."""

import sqlalchemy as sa

import models
from broker.followup import requests as svc
from broker.followup import instruments as isvc
from broker.errors import NotFound, ValidationError
from broker.objects.objs import caller_groups
from broker.validation import array, boolean, integer, nullable, obj, string

from .base import PAGINATION_PARAMS, BaseHandler, Param, endpoint

NUM = {"type": "number"}
TELESCOPE = {"name": string("Full name", minLength=1), "nickname": string("Short name", minLength=1),
             "lat": nullable(NUM), "lon": nullable(NUM), "elevation": nullable(NUM),
             "diameter": {"type": "number", "exclusiveMinimum": 0, "description": "metres"},
             "robotic": boolean(), "fixed_location": boolean()}
INSTRUMENT = {"name": string("Name; for LCO the instrument type, e.g. 1M0-SCICAM-SINISTRO", minLength=1),
              "type": string("imager | spectrograph | imaging spectrograph"), "band": nullable(string()),
              "filters": array(string()), "telescope_id": integer(),
              "api_classname": nullable(string("Facility adapter, e.g. LCO")),
              "listener_classname": nullable(string("Callback listener, e.g. LCO"))}
ALLOCATION = {"group_id": integer(), "instrument_id": integer(), "pi": nullable(string()),
              "proposal_id": nullable(string()), "hours_allocated": {"type": "number", "minimum": 0},
              "start_date": nullable(string("UTC start")), "end_date": nullable(string("UTC end")),
              "altdata": nullable({"type": "object", "description": "Facility credentials, e.g. "
                                   '{"API_TOKEN": ..., "ARCHIVE_TOKEN": ..., "PROPOSAL_ID": ...}; '
                                   "stored encrypted, never returned",
                                   "additionalProperties": {"type": "string"}})}
FOLLOWUP_POST = obj({"obj_id": string(minLength=1), "allocation_id": integer(),
                     "payload": {"type": "object", "description": "As the instrument's form schema"},
                     "target_group_ids": array(integer()), "priority": nullable(NUM)},
                    required=("obj_id", "allocation_id", "payload"))
FOLLOWUP_PUT = obj({"payload": {"type": "object"}, "priority": nullable(NUM)}, minProperties=1)
FACILITY_POST = obj({"followup_request_id": integer(), "new_status": string(),
                     "status_message": nullable(string())}, required=("followup_request_id", "new_status"))


class TelescopeHandler(BaseHandler):
    @endpoint("Retrieve all telescopes, or one", tags="telescopes")
    def get(self, telescope_id=None):
        with self.session() as session:
            if telescope_id is not None:
                self.success(isvc.get(session, models.Telescope, int(telescope_id), "telescope").to_dict())
            else:
                self.success([t.to_dict() for t in session.execute(
                    sa.select(models.Telescope).order_by(models.Telescope.id)).scalars()])

    @endpoint("Create a telescope", tags="telescopes", acls=("System admin",),
              body=obj(TELESCOPE, required=("name", "nickname", "diameter")))
    def post(self):
        with self.session() as session, session.begin():
            self.success({"id": isvc.save(session, self.principal, models.Telescope, self.body).id})

    @endpoint("Update a telescope", tags="telescopes", acls=("System admin",), body=obj(TELESCOPE, minProperties=1))
    def put(self, telescope_id):
        with self.session() as session, session.begin():
            row = isvc.get(session, models.Telescope, int(telescope_id), "telescope")
            isvc.save(session, self.principal, models.Telescope, self.body, row)
        self.success()

    @endpoint("Delete a telescope", tags="telescopes", acls=("System admin",))
    def delete(self, telescope_id):
        with self.session() as session, session.begin():
            session.delete(isvc.get(session, models.Telescope, int(telescope_id), "telescope"))
        self.success()


class InstrumentHandler(BaseHandler):
    @endpoint("Retrieve all instruments, or one (with its follow-up form as a JSON schema)", tags="instruments")
    def get(self, instrument_id=None):
        with self.session() as session:
            if instrument_id is None:
                self.success([isvc.instrument_to_dict(i) for i in session.execute(
                    sa.select(models.Instrument).order_by(models.Instrument.id)).scalars()])
                return
            inst = isvc.get(session, models.Instrument, int(instrument_id), "instrument")
            out = isvc.instrument_to_dict(inst)
            out["form_schema"] = (self.application.followup.form_schema(inst) if inst.api_classname else None)
            self.success(out)

    @endpoint("Create an instrument", tags="instruments", acls=("System admin",),
              body=obj(INSTRUMENT, required=("name", "type", "telescope_id")))
    def post(self):
        with self.session() as session, session.begin():
            self.success({"id": isvc.save(session, self.principal, models.Instrument, self.body).id})

    @endpoint("Update an instrument", tags="instruments", acls=("System admin",),
              body=obj(INSTRUMENT, minProperties=1))
    def put(self, instrument_id):
        with self.session() as session, session.begin():
            row = isvc.get(session, models.Instrument, int(instrument_id), "instrument")
            isvc.save(session, self.principal, models.Instrument, self.body, row)
        self.success()

    @endpoint("Delete an instrument", tags="instruments", acls=("System admin",))
    def delete(self, instrument_id):
        with self.session() as session, session.begin():
            session.delete(isvc.get(session, models.Instrument, int(instrument_id), "instrument"))
        self.success()


class AllocationHandler(BaseHandler):
    @endpoint("Retrieve allocations you can use, or one (credentials are never returned)", tags="allocations",
              params=(Param("instrument_id", {"type": "integer"}),))
    def get(self, allocation_id=None):
        with self.session() as session:
            if allocation_id is not None:
                self.success(svc.allocation_to_dict(svc.get_allocation(session, self.principal, int(allocation_id))))
                return
            stmt = svc.readable_allocations(self.principal).order_by(models.Allocation.id)
            inst = self.int_arg("instrument_id")
            if inst is not None:
                stmt = stmt.where(models.Allocation.instrument_id == inst)
            self.success([svc.allocation_to_dict(a) for a in session.execute(stmt).scalars()])

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




class FollowupRequestHandler(BaseHandler):
    @endpoint("Retrieve follow-up requests, or one (with its facility transactions)", tags="followup_requests",
              params=(*PAGINATION_PARAMS, Param("sourceID", {"type": "string"}),
                      Param("instrumentID", {"type": "integer"}), Param("allocationID", {"type": "integer"}),
                      Param("status", {"type": "string"}), Param("startDate", {"type": "string"}),
                      Param("endDate", {"type": "string"}),
                      Param("sortBy", {"type": "string", "enum": sorted(svc.REQUEST_SORTS)}),
                      Param("sortOrder", {"type": "string", "enum": ["asc", "desc"]})))
    def get(self, followup_request_id=None):
        with self.session() as session:
            if followup_request_id is not None:
                req = svc.load_request(session, self.principal, int(followup_request_id))
                self.success(svc.request_to_dict(req, svc.transactions_of(session, req.id),
                                                 caller_groups(session, self.principal)))
                return
            q = svc.RequestQuery(
                obj_id=self.str_arg("sourceID"), allocation_id=self.int_arg("allocationID"),
                instrument_id=self.int_arg("instrumentID"), status=self.str_arg("status"),
                start=svc.parse_when(self.str_arg("startDate"), "startDate"),
                end=svc.parse_when(self.str_arg("endDate"), "endDate"),
                sort_by=self.str_arg("sortBy", "created_at"), sort_order=self.str_arg("sortOrder", "desc"))
            rows, total = svc.list_requests(session, self.principal, q, self.page())
            mine = caller_groups(session, self.principal)
            self.success({"followup_requests": [svc.request_to_dict(r, groups=mine) for r in rows],
                          "totalMatches": total})

    @endpoint("Submit a follow-up request", tags="followup_requests", body=FOLLOWUP_POST)
    async def post(self):
        self.success(await self.blocking(self.application.followup.create, self.principal, self.body))

    @endpoint("Update a follow-up request (LCO: cancel, then resubmit)", tags="followup_requests", body=FOLLOWUP_PUT)
    async def put(self, followup_request_id):
        status = await self.blocking(self.application.followup.update, self.principal, int(followup_request_id),
                                     self.body)
        self.success({"status": status.value if status else None})

    @endpoint("Cancel a follow-up request at the facility (the row stays, cancelled)", tags="followup_requests")
    async def delete(self, followup_request_id):
        await self.blocking(self.application.followup.cancel, self.principal, int(followup_request_id))
        self.success()


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
    "payload": {"type": "object", "description": "As the instrument's form schema; without dates the "
                                                 "window is [now, now + 7 days] when the rule fires"},
    "source_filter": obj({"filter_ids": array(integer(), "fire when an object passes one of these filters"),
                          "group_ids": array(integer(), "fire when an object is saved to one of these groups"),
                          "classifications": array(string(), "and only if it is classified as one of these"),
                          "localization": obj({"cumprob": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                                               "max_age_days": {"type": "number", "exclusiveMinimum": 0}},
                                              required=("cumprob", "max_age_days"),
                                              description="and only inside this credible region of an event "
                                                          "at most this old")}),
    "target_group_ids": array(integer()),
}, required=("default_followup_name", "allocation_id", "payload", "source_filter"))


class DefaultFollowupHandler(BaseHandler):
    @endpoint("Retrieve default follow-up requests, or one", tags="default_followup_requests")
    def get(self, default_followup_id=None):
        D = models.DefaultFollowupRequest
        with self.session() as session:
            stmt = svc.readable_defaults(self.principal).order_by(D.id)
            if default_followup_id is not None:
                rule = session.execute(stmt.where(D.id == int(default_followup_id))).scalar()
                if rule is None:
                    raise NotFound(f"No default follow-up request with ID {default_followup_id}")
                self.success(rule.to_dict())
            else:
                self.success([r.to_dict() for r in session.execute(stmt).scalars()])

    @endpoint("Create default follow-up request.", tags="default_followup_requests", body=DEFAULT_POST)
    def post(self):
        with self.session() as session, session.begin():
            rule = svc.save_default(session, self.principal, self.application.followup, self.body)
            self.success({"id": rule.id})

    @endpoint("Delete a default follow-up request", tags="default_followup_requests")
    def delete(self, default_followup_id):
        D = models.DefaultFollowupRequest
        with self.session() as session, session.begin():
            rule = session.execute(svc.readable_defaults(self.principal).where(D.id == int(default_followup_id))).scalar()
            if rule is None:
                raise NotFound(f"No default follow-up request with ID {default_followup_id}")
            session.delete(rule)
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
    "followupRequestIds": array(integer(), "Requests to re-prioritise", minItems=1),
    "priorityType": {"type": "string", "enum": ["magnitude", "localization"]},
    "minimumPriority": NUM, "maximumPriority": NUM,
    "localizationId": integer("with priorityType localization: the localization to rank by"),
}, required=("followupRequestIds", "priorityType"))


class FollowupPrioritizationHandler(BaseHandler):
    @endpoint("Set priorities from magnitudes or a localization's density (LCO: new ipp_value resubmitted)",
              tags="followup_requests", body=PRIORITIZE_PUT)
    async def put(self):
        self.success(await self.blocking(svc.prioritize, self.application.followup, self.principal, self.body))
