"""Enumerations shared by models and the API (`/api/enum_types`)."""

# SkyPortal's ACL names (skyportal/model_util.py's all_acl_ids), in its order, then ours: "Manage streams"
# (SkyPortal manages streams with "System admin") and "Post from <facility>" per facility listener.
SKYPORTAL_ACLS = (
    "Become user",
    "Comment",
    "Annotate",
    "Manage users",
    "Manage sources",
    "Manage photometry",
    "Manage groups",
    "Manage teams",
    "Manage sharing services",
    "Manage shifts",
    "Manage instruments",
    "Manage allocations",
    "Manage observing runs",
    "Manage telescopes",
    "Manage Analysis Services",
    "Manage Recurring APIs",
    "Manage observation plans",
    "Manage GCNs",
    "Upload data",
    "Run Analyses",
    "System admin",
    "Post taxonomy",
    "Delete taxonomy",
    "Delete bulk photometry",
    "Classify",
)
ACLS = SKYPORTAL_ACLS + (
    "Manage streams",
    "Post from LCO",
    # the facility listeners of facility_apis/registry.py (issue 10): "Post from <listener_classname>"
    "Post from SINISTROAPI", "Post from SPECTRALAPI", "Post from MUSCATAPI", "Post from FLOYDSAPI",
    "Post from SOARGHTSAPI", "Post from SOARGHTSIMAGERAPI", "Post from SOARTSPECAPI", "Post from QHY600API",
    "Post from NRESAPI", "Post from GENERICAPI", "Post from SEDMAPI",
)

# Roles bundle ACLs: SkyPortal's default roles (skyportal/model_util.py's role_acls).
ROLES = {
    "Super admin": ACLS,
    "Group admin": (
        "Annotate", "Comment", "Manage shifts", "Manage sources", "Manage teams", "Manage Analysis Services",
        "Manage Recurring APIs", "Manage GCNs", "Upload data", "Run Analyses", "Post taxonomy", "Manage users",
        "Classify", "Manage observing runs",
    ),
    "Full user": ("Annotate", "Comment", "Upload data", "Classify", "Run Analyses", "Manage observing runs"),
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
# SkyPortal's thumbnail types (enum_types.THUMBNAIL_TYPES)
THUMBNAIL_TYPES = ("new", "ref", "sub", "sdss", "dr8", "ls", "ps1", "sm", "hst", "chandra", "jwst", "new_gz", "ref_gz",
                   "sub_gz")

ENUM_TYPES = {
    "ALLOWED_ACLS": ACLS,
    "ALLOWED_ROLES": tuple(ROLES),
    "ALLOWED_BANDPASSES": ALLOWED_BANDPASSES,
    "ALLOWED_MAGSYSTEMS": ALLOWED_MAGSYSTEMS,
    "FOLLOWUP_PRIORITIES": FOLLOWUP_PRIORITIES,
    "ALLOWED_SPECTRUM_TYPES": ALLOWED_SPECTRUM_TYPES,
    "THUMBNAIL_TYPES": THUMBNAIL_TYPES,
}
