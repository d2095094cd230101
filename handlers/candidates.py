"""/api/candidates, as SkyPortal's CandidateHandler."""

from broker.objects import candidates as cands
from broker.objects import objs as svc
from broker.validation import array, integer, nullable, obj, string

from .base import OBJ_FILTER_PARAMS, PAGINATION_PARAMS, BaseHandler, Param, QueryArgs, endpoint
from .objs import OBJ_FIELDS, obj_body, refuse_unsupported, wanted_details

CANDIDATE_POST = obj({
    **OBJ_FIELDS,
    "filter_ids": array(integer(), "List of associated filter IDs", minItems=1),
    "passing_alert_id": nullable(integer("ID of the alert that passed")),
    "passed_at": string("Arrow-parseable datetime when the filters were passed"),
}, required=("id", "filter_ids", "passed_at"))

# include flags -> (output key, hook, SkyPortal's default)
INCLUDES = {
    "includeSpectra": ("spectra", "spectra", False),
    "includeComments": ("comments", "comments", False),
    "includeFollowupRequests": ("followup_requests", "followup_requests", False),
    "includeAssociatedObjs": ("associated_objs", "associated_objs", True),
}
# SkyPortal parameters we cannot honour (400 naming them when used)
UNSUPPORTED_FLAGS = ()
UNSUPPORTED_VALUES = ("sortByAnnotationOrigin", "sortByAnnotationKey", "sortByAnnotationOrder", "annotationFilterList",
                      "photometryAnnotationsFilter",
                      "photometryAnnotationsFilterOrigin", "photometryAnnotationsFilterBefore",
                      "photometryAnnotationsFilterAfter", "photometryAnnotationsFilterMinCount",
                      "annotationExcludeOrigin", "annotationExcludeOutdatedDate")

INCLUDE_PARAMS = (
    Param("includePhotometry", {"type": "boolean"}),
    Param("includeFollowupRequests", {"type": "boolean"}),
)
LIST_PARAMS = (
    *PAGINATION_PARAMS,
    Param("filterIDs", {"type": "string"}, 'Comma-separated filter IDs (e.g. "1,2")'),
    Param("groupIDs", {"type": "string"}, "Comma-separated group IDs"),
    Param("savedStatus", {"type": "string", "enum": list(cands.SAVED_STATUSES)}, "Saved status"),
    Param("startDate", {"type": "string"}, "passed_at >= startDate"),
    Param("endDate", {"type": "string"}, "passed_at <= endDate"),
    Param("classificationsReject", {"type": "string"}, "Comma-separated classes to reject"),
    Param("requireDetections", {"type": "boolean"}, "Apply the detection filters (default true)"),
    Param("excludeForcedPhotometry", {"type": "boolean"}, "Accepted: no forced photometry is stored here"),
    Param("nameOnly", {"type": "boolean"}, "With objID: only the ids of candidates whose id starts with it"),
    Param("objID", {"type": "string"}, "Id prefix, with nameOnly"),
    Param("queryID", {"type": "string"}, "SkyPortal's: the queryID of an earlier page of the same query, whose "
                                         "totalMatches is reused (an hour); each answer carries its queryID"),
    Param("autosave", {"type": "boolean"}, "Save the candidates of this page as sources (as POST /api/sources)"),
    Param("autosaveGroupIds", {"type": "string"}, "Comma-separated groups to autosave to (default: POST "
                                                   "/api/sources's)"),
    Param("listName", {"type": "string"}, "Only candidates on the caller's list of this name, e.g. favorites"),
    Param("listNameReject", {"type": "string"}, "Only candidates NOT on the caller's list of this name, e.g. "
                                                "rejected_candidates"),
    Param("sortBy", {"type": "string", "enum": sorted(cands.CANDIDATE_SORTS)}, "Our addition (default passed_at)"),
    Param("sortOrder", {"type": "string", "enum": ["asc", "desc"]}, "Our addition (default desc)"),
    *INCLUDE_PARAMS,
    *OBJ_FILTER_PARAMS,
)


def _date_arg(args: QueryArgs, name: str) -> str | None:
    """SkyPortal takes "null" and "undefined" for no date here."""
    raw = args.str_arg(name)
    return None if raw is None or raw.strip().lower() in ("null", "undefined") else raw


def candidate_query(args: QueryArgs, wanted: dict | None = None) -> cands.CandidateQuery:
    """The candidate list's query from SkyPortal's parameters (the API's and the scanning page's)."""
    return cands.CandidateQuery(
        filter_ids=svc.parse_ids(args.str_arg("filterIDs"), "filterIDs"),
        group_ids=svc.parse_ids(args.str_arg("groupIDs"), "groupIDs"),
        saved_status=args.str_arg("savedStatus", "all"),
        start_date=svc.parse_date(_date_arg(args, "startDate"), "startDate"),
        end_date=svc.parse_date(_date_arg(args, "endDate"), "endDate"),
        classifications_reject=svc.parse_strings(args.str_arg("classificationsReject")),
        sort_by=args.str_arg("sortBy", "passed_at"), sort_order=args.str_arg("sortOrder", "desc"),
        include_photometry=args.bool_arg("includePhotometry"),
        require_detections=args.bool_arg("requireDetections", True),
        exclude_forced_photometry=args.bool_arg("excludeForcedPhotometry"),
        list_name=args.str_arg("listName"), list_name_reject=args.str_arg("listNameReject"),
        details=wanted or {},
        **args.obj_filter_args(),
    )


class CandidateHandler(BaseHandler):
    @endpoint("Retrieve all candidates (numPerPage defaults to 25, capped at 500), or one", tags="candidates",
              params=(*LIST_PARAMS, Param("includeAlerts", {"type": "boolean"}, "One candidate: its passing alerts")))
    def get(self, obj_id=None):
        refuse_unsupported(self, UNSUPPORTED_FLAGS, UNSUPPORTED_VALUES)
        wanted = wanted_details(self, INCLUDES)
        with self.session() as session:
            if obj_id is not None:
                self.success(svc.get_candidate(session, self.principal, obj_id, self.bool_arg("includePhotometry"),
                                               self.bool_arg("includeAlerts"), wanted))
                return
            page = self.page(default=25)
            if self.bool_arg("nameOnly") and self.str_arg("objID"):
                self.success(cands.candidate_name_search(session, self.principal, self.str_arg("objID"), page.size))
                return
            q = candidate_query(self, wanted)
            autosave_to = svc.parse_ids(self.str_arg("autosaveGroupIds"), "autosaveGroupIds")
            if not self.bool_arg("autosave"):
                self.success(cands.list_candidates(session, self.principal, q, page, self.str_arg("queryID")))
                return
        # SkyPortal's autosave: the page's candidates are saved as sources (the answer shows them as listed)
        with self.session() as session, session.begin():
            out = cands.list_candidates(session, self.principal, q, page, self.str_arg("queryID"))
            for c in out["candidates"]:
                body = {"id": c["id"]} if autosave_to is None else {"id": c["id"], "group_ids": autosave_to}
                svc.post_source(session, self.principal, body)
        self.success(out)

    @endpoint("Check if a Candidate exists", tags="candidates")
    def head(self, obj_id):
        with self.session() as session:
            found = svc.candidate_exists(session, self.principal, obj_id)
        if not found:
            self.set_status(404)
        self.finish()

    @endpoint("Create new candidate(s) (one per filter).", tags="candidates", acls=("Upload data",),
              body=CANDIDATE_POST)
    def post(self):
        with self.session() as session, session.begin():
            ids = svc.post_candidates(session, self.principal, obj_body(self.body))
        self.success({"ids": ids})

    @endpoint("Delete candidate(s)", tags="candidates", acls=("Upload data",))
    def delete(self, obj_id, filter_id):
        with self.session() as session, session.begin():
            svc.delete_candidates(session, self.principal, obj_id, int(filter_id))
        self.success()
