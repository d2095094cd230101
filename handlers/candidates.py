"""/api/candidates."""

from broker.objects import objs as svc
from broker.validation import array, integer, nullable, obj, string

from .base import OBJ_FILTER_PARAMS, PAGINATION_PARAMS, BaseHandler, Param, endpoint

OBJ_FIELDS = {
    "id": string("Name of the object", minLength=1, pattern="^[0-9A-Za-z_.+-]+$"),
    "ra": {"type": "number", "description": "J2000 Right Ascension [deg] (needed for a new object)"},
    "dec": {"type": "number", "description": "J2000 Declination [deg] (needed for a new object)"},
    "ra_dis": nullable({"type": "number"}), "dec_dis": nullable({"type": "number"}),
    "redshift": nullable({"type": "number"}), "redshift_error": nullable({"type": "number"}),
    "altdata": nullable({"type": "object"}),
}
CANDIDATE_POST = obj({
    **OBJ_FIELDS,
    "filter_ids": array(integer(), "List of associated filter IDs", minItems=1),
    "passing_alert_id": nullable(integer("ID of the alert that passed")),
    "passed_at": string("Arrow-parseable datetime when the filters were passed"),
}, required=("id", "filter_ids", "passed_at"))

LIST_PARAMS = (
    *PAGINATION_PARAMS,
    Param("filterIDs", {"type": "string"}, 'Comma-separated filter IDs (e.g. "1,2")'),
    Param("groupIDs", {"type": "string"}, "Comma-separated group IDs"),
    Param("savedStatus", {"type": "string", "enum": list(svc.SAVED_STATUSES)}, "Saved status"),
    Param("startDate", {"type": "string"}, "passed_at >= startDate"),
    Param("endDate", {"type": "string"}, "passed_at <= endDate"),
    Param("classificationsReject", {"type": "string"}, "Comma-separated classes to reject"),
    Param("sortBy", {"type": "string", "enum": sorted(svc.CANDIDATE_SORTS)}),
    Param("sortOrder", {"type": "string", "enum": ["asc", "desc"]}),
    Param("includePhotometry", {"type": "boolean"}),
    *OBJ_FILTER_PARAMS,
)


class CandidateHandler(BaseHandler):
    @endpoint("Retrieve all candidates (numPerPage defaults to 25, capped at 500), or one", tags="candidates",
              params=LIST_PARAMS)
    def get(self, obj_id=None):
        with self.session() as session:
            if obj_id is not None:
                self.success(svc.get_candidate(session, self.principal, obj_id,
                                               self.bool_arg("includePhotometry", True)))
                return
            q = svc.CandidateQuery(
                filter_ids=svc.parse_ids(self.str_arg("filterIDs"), "filterIDs"),
                group_ids=svc.parse_ids(self.str_arg("groupIDs"), "groupIDs"),
                saved_status=self.str_arg("savedStatus", "all"),
                start_date=svc.parse_date(self.str_arg("startDate"), "startDate"),
                end_date=svc.parse_date(self.str_arg("endDate"), "endDate"),
                classifications_reject=svc.parse_strings(self.str_arg("classificationsReject")),
                sort_by=self.str_arg("sortBy", "passed_at"), sort_order=self.str_arg("sortOrder", "desc"),
                include_photometry=self.bool_arg("includePhotometry"),
                **self.obj_filter_args(),
            )
            self.success(svc.list_candidates(session, self.principal, q, self.page(default=25)))

    @endpoint("Check if a Candidate exists", tags="candidates")
    def head(self, obj_id):
        with self.session() as session:
            svc.get_candidate(session, self.principal, obj_id, include_photometry=False)
        self.exists()

    @endpoint("Create new candidate(s) (one per filter).", tags="candidates", acls=("Upload data",),
              body=CANDIDATE_POST)
    def post(self):
        with self.session() as session, session.begin():
            ids = svc.post_candidates(session, self.principal, self.body)
        self.success({"ids": ids})

    @endpoint("Delete candidate(s)", tags="candidates", acls=("Upload data",))
    def delete(self, obj_id, filter_id):
        with self.session() as session, session.begin():
            svc.delete_candidates(session, self.principal, obj_id, int(filter_id))
        self.success()
