"""SQLAlchemy 2 typed models, one module per domain. Importing this package registers them all."""

from .base import Base, Timestamped, utcnow
from .classifications import Classification, ClassificationVote, Taxonomy, classification_groups, taxonomy_groups
from .filters import Filter
from .followup import (TERMINAL_STATUSES, Allocation, DefaultFollowupFired, DefaultFollowupRequest,
                       FacilityTransaction, FollowupRequest, FollowupStatus, FollowupStatusChange, Instrument, Telescope,
                       followup_target_groups, followup_watchers)
from .gcn import GcnEvent, GcnNotice, Localization, LocalizationTile, ObjLocalization
from .gcn import (GCN_EVENT_OBJ_STATUSES, GcnEventObj, GcnProperty, GcnTag, GcnTrigger, LocalizationProperty,
                  LocalizationTag)  # issue 10, GCN part
from .gcn import GcnSummary  # issue 10, GCN summaries
from .groups import Group, GroupUser, group_streams
from .ingest import FailedAlert, IngestCounter, IngestOffset, IngestStatus, ObjDuplicate
from .objects import Candidate, CandidateCount, CandidateFilterObj, Obj, Photometry, Source, healpix_index, photometry_groups
from .streams import KafkaCluster, Stream, StreamUser
from .users import ACL, Role, Token, User, role_acls, token_acls, user_acls, user_roles
# annotations, comments, thumbnails, spectra (issue 9, part B)
from .spectra import Spectrum, group_spectra, spectrum_users
from .annotations import (Annotation, AnnotationOnPhotometry, AnnotationOnSpectrum, group_annotations,
                          group_annotations_on_photometry, group_annotations_on_spectra)
from .comments import Comment, CommentOnSpectrum, group_comments, group_comments_on_spectra
from .thumbnails import Thumbnail
from .listings import Listing  # issue 14: the scanning page's reject list

__all__ = [
    "Annotation", "AnnotationOnPhotometry", "AnnotationOnSpectrum", "Comment", "CommentOnSpectrum", "Spectrum",
    "Listing", "Thumbnail", "group_annotations", "group_annotations_on_photometry", "group_annotations_on_spectra",
    "group_comments", "group_comments_on_spectra", "group_spectra", "spectrum_users",
    "GcnEvent", "GcnNotice", "Localization", "LocalizationTile", "ObjLocalization",
    "GCN_EVENT_OBJ_STATUSES", "GcnEventObj", "GcnProperty", "GcnTag", "GcnTrigger", "LocalizationProperty",
    "LocalizationTag", "GcnSummary",
    "Allocation", "DefaultFollowupFired", "DefaultFollowupRequest", "FacilityTransaction", "FollowupRequest",
    "FollowupStatus", "FollowupStatusChange", "Instrument", "TERMINAL_STATUSES", "Telescope", "followup_target_groups",
    "followup_watchers",
    "ACL", "Base", "FailedAlert", "IngestCounter", "IngestOffset", "IngestStatus", "ObjDuplicate", "Candidate", "CandidateCount", "CandidateFilterObj", "Classification", "ClassificationVote", "Filter", "Group", "GroupUser", "Obj",
    "KafkaCluster", "Photometry", "Role", "Source", "Stream", "StreamUser", "Taxonomy", "Timestamped", "Token",
    "User", "classification_groups", "group_streams", "healpix_index", "photometry_groups",
    "role_acls", "taxonomy_groups", "token_acls", "user_acls", "user_roles", "utcnow",
]
