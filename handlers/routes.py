"""The one route table of the API. Paths use OpenAPI templates; ``{x_id}`` parts are integers."""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import acls, profile  # identity: /api/acls, /api/roles, /api/internal/profile
from . import (candidates, classifications, filters, followup, gcn, groups, ingest, openapi, photometry, sources, streams,
               system, users)
from . import objs  # /api/objs, /api/source_exists
from . import annotations, comments, spectra, thumbnails  # issue 9, part B
from . import kafka_clusters  # issue 11
from . import listings  # issue 14
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
INT_PARAMS |= {"spectrum_id", "annotation_id", "comment_id", "thumbnail_id"}  # issue 9, part B
INT_PARAMS |= {"cluster_id"}  # issue 11
INT_PARAMS |= {"listing_id"}  # issue 14


def route(path: str, handler: type[BaseHandler], methods: str) -> Route:
    return Route(path, handler, frozenset(methods.split()))


ROUTES: tuple[Route, ...] = (
    route("/api/sysinfo", system.SysInfoHandler, "GET"),
    route("/api/db_stats", system.DBStatsHandler, "GET"),
    route("/api/enum_types", system.EnumTypesHandler, "GET"),
    route("/api/groups", groups.GroupHandler, "GET POST"),
    route("/api/groups/public", groups.PublicGroupHandler, "GET"),
    route("/api/groups/{group_id}", groups.GroupHandler, "GET PUT DELETE"),
    route("/api/groups/{group_id}/users", groups.GroupUserHandler, "POST PATCH"),
    route("/api/groups/{group_id}/users/{user_id}", groups.GroupUserHandler, "DELETE"),
    route("/api/groups/{group_id}/usersFromGroups", groups.GroupUsersFromOtherGroupsHandler, "POST"),
    route("/api/groups/{group_id}/streams", groups.GroupStreamHandler, "POST"),
    route("/api/groups/{group_id}/streams/{stream_id}", groups.GroupStreamHandler, "DELETE"),
    route("/api/kafka_clusters", kafka_clusters.KafkaClusterHandler, "GET POST"),
    route("/api/kafka_clusters/{cluster_id}", kafka_clusters.KafkaClusterHandler, "GET PATCH DELETE"),
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
    route("/api/tokens", users.LegacyTokenHandler, "GET POST"),
    route("/api/tokens/{token_id}", users.LegacyTokenHandler, "GET PUT DELETE"),
    route("/api/internal/tokens", users.TokenHandler, "GET POST"),
    route("/api/internal/tokens/{token_id}", users.TokenHandler, "GET PUT DELETE"),
    route("/api/internal/profile", profile.ProfileHandler, "GET PATCH"),
    route("/api/internal/profile/{user_id}", profile.ProfileHandler, "PATCH"),
    route("/api/acls", acls.ACLHandler, "GET"),
    route("/api/roles", acls.RoleHandler, "GET"),
    route("/api/candidates", candidates.CandidateHandler, "GET POST"),
    route("/api/candidates/{obj_id}", candidates.CandidateHandler, "GET HEAD"),
    route("/api/candidates/{obj_id}/{filter_id}", candidates.CandidateHandler, "DELETE"),
    route("/api/sources", sources.SourceHandler, "GET POST"),
    route("/api/sources/{obj_id}", sources.SourceHandler, "GET HEAD PATCH DELETE"),
    route("/api/sources/{obj_id}/photometry", sources.SourcePhotometryHandler, "GET DELETE"),
    route("/api/sources/{obj_id}/classifications", sources.SourceClassificationHandler, "GET DELETE"),
    route("/api/sources/{obj_id}/groups", sources.SourceGroupsHandler, "GET POST"),
    route("/api/source_groups", sources.SourceGroupsUpdateHandler, "POST"),
    route("/api/source_exists", objs.SourceExistsHandler, "GET"),
    route("/api/source_exists/{obj_id}", objs.SourceExistsHandler, "GET"),
    route("/api/objs/{obj_id}", objs.ObjHandler, "DELETE"),
    route("/api/photometry", photometry.PhotometryHandler, "POST PUT"),
    route("/api/photometry/range", photometry.PhotometryRangeHandler, "GET"),
    route("/api/photometry/bulk_delete/{upload_id}", photometry.BulkDeletePhotometryHandler, "DELETE"),
    route("/api/photometry/{photometry_id}", photometry.PhotometryHandler, "GET PATCH DELETE"),
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
    route("/api/followup_request/{followup_request_id}/comment", followup.FollowupRequestCommentHandler, "PUT"),
    route("/api/followup_request/schedule/{instrument_id}", followup.FollowupScheduleHandler, "GET"),
    route("/api/followup_request/prioritization", followup.FollowupPrioritizationHandler, "PUT"),
    route("/api/allocation/report/{instrument_id}", followup.AllocationReportHandler, "GET"),
    route("/api/photometry_request/{followup_request_id}", followup.PhotometryRequestHandler, "GET POST"),
    route("/api/facility", followup.FacilityMessageHandler, "POST"),
    route("/api/default_followup_request", followup.DefaultFollowupHandler, "GET POST"),
    route("/api/default_followup_request/{default_followup_id}", followup.DefaultFollowupHandler, "GET DELETE"),
    # GCN events and localizations (issue 10: SkyPortal's routes; fixed paths before {dateobs})
    route("/api/gcn_event", gcn.GcnEventHandler, "GET POST"),
    route("/api/gcn_event/tags", gcn.GcnEventTagsHandler, "GET POST"),
    route("/api/gcn_event/tags/{dateobs}", gcn.GcnEventTagHandler, "DELETE"),
    route("/api/gcn_event/properties", gcn.GcnEventPropertiesHandler, "GET"),
    route("/api/gcn_event/{dateobs}", gcn.GcnEventHandler, "GET DELETE"),
    route("/api/gcn_event/{dateobs}/alias", gcn.GcnEventAliasHandler, "POST DELETE"),
    route("/api/gcn_event/{dateobs}/summary", gcn.GcnSummaryHandler, "POST GET"),
    route("/api/gcn_event/{dateobs}/summary/{summary_id}", gcn.GcnSummaryHandler, "GET PATCH DELETE"),
    route("/api/gcn_event/{dateobs}/triggered", gcn.GcnEventTriggerHandler, "GET"),
    route("/api/gcn_event/{dateobs}/triggered/{allocation_id}", gcn.GcnEventTriggerHandler, "GET PUT DELETE"),
    route("/api/gcn_event/{dateobs}/crossmatch", gcn.GcnEventCrossmatchHandler, "GET POST"),
    route("/api/sources_in_gcn/{dateobs}", gcn.SourcesInGcnHandler, "GET POST"),
    route("/api/sources_in_gcn/{dateobs}/{source_id}", gcn.SourcesInGcnHandler, "GET PATCH DELETE"),
    route("/api/localization", gcn.LocalizationPostHandler, "POST"),
    route("/api/localization/tags", gcn.LocalizationTagsHandler, "GET"),
    route("/api/localization/properties", gcn.LocalizationPropertiesHandler, "GET"),
    route("/api/localization/{dateobs}/name/{localization_name}", gcn.LocalizationHandler, "GET DELETE"),
    route("/api/localization/{dateobs}/name/{localization_name}/download", gcn.LocalizationDownloadHandler, "GET"),
    route("/api/localizationcrossmatch", gcn.LocalizationCrossmatchHandler, "GET"),
    # annotations, comments, thumbnails, spectra (issue 9, part B)
    route("/api/sources/{obj_id}/annotations", annotations.SourceAnnotationHandler, "GET POST"),
    route("/api/sources/{obj_id}/annotations/{annotation_id}", annotations.SourceAnnotationHandler,
          "GET PUT DELETE"),
    route("/api/spectra/{spectrum_id}/annotations", annotations.SpectrumAnnotationHandler, "GET POST"),
    route("/api/spectra/{spectrum_id}/annotations/{annotation_id}", annotations.SpectrumAnnotationHandler,
          "GET PUT DELETE"),
    route("/api/photometry/{photometry_id}/annotations", annotations.PhotometryAnnotationHandler, "GET POST"),
    route("/api/photometry/{photometry_id}/annotations/{annotation_id}", annotations.PhotometryAnnotationHandler,
          "GET PUT DELETE"),
    route("/api/sources/{obj_id}/comments", comments.SourceCommentHandler, "GET POST"),
    route("/api/sources/{obj_id}/comments/channels", comments.CommentChannelHandler, "GET DELETE"),
    route("/api/sources/{obj_id}/comments/{comment_id}", comments.SourceCommentHandler, "GET PUT DELETE"),
    route("/api/sources/{obj_id}/comments/{comment_id}/attachment", comments.SourceCommentAttachmentHandler, "GET"),
    route("/api/spectra/{spectrum_id}/comments", comments.SpectrumCommentHandler, "GET POST"),
    route("/api/spectra/{spectrum_id}/comments/{comment_id}", comments.SpectrumCommentHandler, "GET PUT DELETE"),
    route("/api/spectra/{spectrum_id}/comments/{comment_id}/attachment", comments.SpectrumCommentAttachmentHandler,
          "GET"),
    route("/api/thumbnail", thumbnails.ThumbnailHandler, "POST"),
    route("/api/thumbnail/{thumbnail_id}", thumbnails.ThumbnailHandler, "GET PUT DELETE"),
    route("/api/thumbnail/{thumbnail_id}/image", thumbnails.ThumbnailImageHandler, "GET"),
    route("/api/spectra", spectra.SpectrumHandler, "GET POST"),
    route("/api/spectra/ascii", spectra.SpectrumASCIIFileHandler, "POST"),
    route("/api/spectra/parse/ascii", spectra.SpectrumASCIIFileParser, "POST"),
    route("/api/spectra/range", spectra.SpectrumRangeHandler, "GET"),
    route("/api/spectra/{spectrum_id}", spectra.SpectrumHandler, "GET PUT DELETE"),
    route("/api/spectrum", spectra.SpectrumHandler, "GET POST"),
    route("/api/spectrum/ascii", spectra.SpectrumASCIIFileHandler, "POST"),
    route("/api/spectrum/parse/ascii", spectra.SpectrumASCIIFileParser, "POST"),
    route("/api/spectrum/range", spectra.SpectrumRangeHandler, "GET"),
    route("/api/spectrum/{spectrum_id}", spectra.SpectrumHandler, "GET PUT DELETE"),
    route("/api/sources/{obj_id}/spectra", spectra.ObjSpectraHandler, "GET"),
    route("/api/listing", listings.ListingHandler, "GET POST DELETE"),
    route("/api/listing/{listing_id}", listings.ListingHandler, "GET PATCH DELETE"),
    route("/api/openapi.json", openapi.OpenAPIHandler, "GET"),
)
