"""Enumerations shared by models and the API (`/api/enum_types`)."""

# SkyPortal's ACL names. "Post from <facility>" ACLs are added per facility listener.
ACLS = (
    "System admin",
    "Manage users",
    "Manage groups",
    "Manage streams",
    "Manage sources",
    "Manage allocations",
    "Manage GCNs",
    "Upload data",
    "Classify",
    "Annotate",
    "Comment",
    "Post taxonomy",
    "Delete taxonomy",
    "Post from LCO",
)

# Roles bundle ACLs (SkyPortal's defaults, trimmed to the ACLs above).
ROLES = {
    "Super admin": ACLS,
    "Group admin": ("Annotate", "Classify", "Comment", "Upload data", "Manage sources"),
    "Full user": ("Annotate", "Classify", "Comment", "Upload data"),
    "View only": (),
}

# Bandpasses as SkyPortal (sncosmo) names them.
ALLOWED_BANDPASSES = (
    "ztfg", "ztfr", "ztfi",
    "lsstu", "lsstg", "lsstr", "lssti", "lsstz", "lssty",
    "sdssu", "sdssg", "sdssr", "sdssi", "sdssz",
    "bessellux", "bessellb", "bessellv", "bessellr", "besselli",
    "atlasc", "atlaso",
    "ps1::g", "ps1::r", "ps1::i", "ps1::z", "ps1::y", "ps1::w",
    "uvot::u", "uvot::b", "uvot::v", "uvot::uvw1", "uvot::uvw2", "uvot::uvm2",
    "2massj", "2massh", "2massks",
    "gaia::g",
    "swope2::u", "swope2::b", "swope2::v", "swope2::g", "swope2::r", "swope2::i",
)

ALLOWED_MAGSYSTEMS = ("ab", "vega", "bd17", "csp")

# Follow-up priorities, 1 (lowest) .. 5 (highest), as SkyPortal.
FOLLOWUP_PRIORITIES = ("1", "2", "3", "4", "5")

ALLOWED_SPECTRUM_TYPES = ("source", "host", "host_center")
THUMBNAIL_TYPES = ("new", "ref", "sub", "sdss", "dr8", "ls", "ps1")

ENUM_TYPES = {
    "ALLOWED_ACLS": ACLS,
    "ALLOWED_ROLES": tuple(ROLES),
    "ALLOWED_BANDPASSES": ALLOWED_BANDPASSES,
    "ALLOWED_MAGSYSTEMS": ALLOWED_MAGSYSTEMS,
    "FOLLOWUP_PRIORITIES": FOLLOWUP_PRIORITIES,
    "ALLOWED_SPECTRUM_TYPES": ALLOWED_SPECTRUM_TYPES,
    "THUMBNAIL_TYPES": THUMBNAIL_TYPES,
}
