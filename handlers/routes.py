"""The one route table of the API. Paths use OpenAPI templates; ``{x_id}`` parts are integers."""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import (candidates, classifications, filters, followup, gcn, groups, ingest, openapi, photometry, sources, streams,
               system, users)
from .base import BaseHandler


@dataclass(frozen=True)
class Route:
    path: str  # OpenAPI template, e.g. /api/groups/{group_id}
    handler: type[BaseHandler]
    methods: frozenset[str]

    @property
    def pattern(self) -> str:
        def group(m: re.Match) -> str:
            name = m.group(1)
            body = "[0-9]+" if name in INT_PARAMS else "[^/]+"
            return f"(?P<{name}>{body})"

        return re.sub(r"\{(\w+)\}", group, self.path) + "/?"


INT_PARAMS = {"group_id", "stream_id", "filter_id", "user_id", "photometry_id", "classification_id",
              "taxonomy_id", "telescope_id", "instrument_id", "allocation_id", "followup_request_id", "default_followup_id"}


def route(path: str, handler: type[BaseHandler], methods: str) -> Route:
    return Route(path, handler, frozenset(methods.split()))


ROUTES: tuple[Route, ...] = (
    route("/api/sysinfo", system.SysInfoHandler, "GET"),
    route("/api/db_stats", system.DBStatsHandler, "GET"),
    route("/api/enum_types", system.EnumTypesHandler, "GET"),
    route("/api/groups", groups.GroupHandler, "GET POST"),
    route("/api/groups/{group_id}", groups.GroupHandler, "GET PUT DELETE"),
    route("/api/groups/{group_id}/users", groups.GroupUserHandler, "POST PATCH"),
    route("/api/groups/{group_id}/users/{user_id}", groups.GroupUserHandler, "DELETE"),
    route("/api/groups/{group_id}/streams", groups.GroupStreamHandler, "POST"),
    route("/api/groups/{group_id}/streams/{stream_id}", groups.GroupStreamHandler, "DELETE"),
    route("/api/streams", streams.StreamHandler, "GET POST"),
    route("/api/streams/{stream_id}", streams.StreamHandler, "GET PATCH DELETE"),
    route("/api/streams/{stream_id}/users", streams.StreamUserHandler, "POST"),
    route("/api/streams/{stream_id}/users/{user_id}", streams.StreamUserHandler, "DELETE"),
    route("/api/filters", filters.FilterHandler, "GET POST"),
    route("/api/filters/{filter_id}", filters.FilterHandler, "GET PATCH DELETE"),
    route("/api/user", users.UserHandler, "GET POST"),
    route("/api/user/{user_id}", users.UserHandler, "GET PATCH DELETE"),
    route("/api/user/{user_id}/acls", users.UserACLHandler, "POST"),
    route("/api/user/{user_id}/acls/{acl_id}", users.UserACLHandler, "DELETE"),
    route("/api/user/{user_id}/roles", users.UserRoleHandler, "POST"),
    route("/api/user/{user_id}/roles/{role_id}", users.UserRoleHandler, "DELETE"),
    route("/api/tokens", users.TokenHandler, "GET POST"),
    route("/api/tokens/{token_id}", users.TokenHandler, "GET PUT DELETE"),
    route("/api/candidates", candidates.CandidateHandler, "GET POST"),
    route("/api/candidates/{obj_id}", candidates.CandidateHandler, "GET HEAD"),
    route("/api/candidates/{obj_id}/{filter_id}", candidates.CandidateHandler, "DELETE"),
    route("/api/sources", sources.SourceHandler, "GET POST"),
    route("/api/sources/{obj_id}", sources.SourceHandler, "GET HEAD DELETE"),
    route("/api/sources/{obj_id}/photometry", sources.SourcePhotometryHandler, "GET"),
    route("/api/sources/{obj_id}/classifications", sources.SourceClassificationHandler, "GET DELETE"),
    route("/api/sources/{obj_id}/groups", sources.SourceGroupsHandler, "GET POST"),
    route("/api/source_groups", sources.SourceGroupsUpdateHandler, "POST"),
    route("/api/photometry", photometry.PhotometryHandler, "POST"),
    route("/api/photometry/{photometry_id}", photometry.PhotometryHandler, "GET DELETE"),
    route("/api/classification", classifications.ClassificationHandler, "GET POST"),
    route("/api/classification/{classification_id}", classifications.ClassificationHandler, "GET PUT DELETE"),
    route("/api/classification/votes/{classification_id}", classifications.ClassificationVoteHandler,
          "POST DELETE"),
    route("/api/classification/sources", classifications.ClassificationSourcesHandler, "GET"),
    route("/api/taxonomy", classifications.TaxonomyHandler, "GET POST"),
    route("/api/taxonomy/{taxonomy_id}", classifications.TaxonomyHandler, "GET PUT DELETE"),
    route("/api/ingest_stats", ingest.IngestStatsHandler, "GET"),
    route("/api/telescope", followup.TelescopeHandler, "GET POST"),
    route("/api/telescope/{telescope_id}", followup.TelescopeHandler, "GET PUT DELETE"),
    route("/api/instrument", followup.InstrumentHandler, "GET POST"),
    route("/api/instrument/{instrument_id}", followup.InstrumentHandler, "GET PUT DELETE"),
    route("/api/allocation", followup.AllocationHandler, "GET POST"),
    route("/api/allocation/{allocation_id}", followup.AllocationHandler, "GET PUT DELETE"),
    route("/api/followup_request", followup.FollowupRequestHandler, "GET POST"),
    route("/api/followup_request/{followup_request_id}", followup.FollowupRequestHandler, "GET PUT DELETE"),
    route("/api/followup_request/watch/{followup_request_id}", followup.FollowupWatchHandler, "POST DELETE"),
    route("/api/followup_request/schedule/{instrument_id}", followup.FollowupScheduleHandler, "GET"),
    route("/api/followup_request/prioritization", followup.FollowupPrioritizationHandler, "PUT"),
    route("/api/allocation/report/{instrument_id}", followup.AllocationReportHandler, "GET"),
    route("/api/photometry_request/{followup_request_id}", followup.PhotometryRequestHandler, "POST"),
    route("/api/facility", followup.FacilityMessageHandler, "POST"),
    route("/api/default_followup_request", followup.DefaultFollowupHandler, "GET POST"),
    route("/api/default_followup_request/{default_followup_id}", followup.DefaultFollowupHandler, "GET DELETE"),
    route("/api/gcn_event", gcn.GcnEventHandler, "GET POST"),
    route("/api/gcn_event/{dateobs}", gcn.GcnEventHandler, "GET DELETE"),
    route("/api/localization", gcn.LocalizationPostHandler, "POST"),
    route("/api/localization/{dateobs}/name/{localization_name}", gcn.LocalizationHandler, "GET DELETE"),
    route("/api/localization/{dateobs}/name/{localization_name}/download", gcn.LocalizationDownloadHandler, "GET"),
    route("/api/openapi.json", openapi.OpenAPIHandler, "GET"),
)
