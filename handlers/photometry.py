"""/api/photometry (POST, PUT), /api/photometry/{id} (GET, PATCH, DELETE), /api/photometry/bulk_delete/{upload_id},
/api/photometry/range: SkyPortal's PhotometryHandler, BulkDeletePhotometryHandler and PhotometryRangeHandler."""

from broker.errors import ValidationError
from broker.objects import photometry as svc
from broker.objects.objs import parse_date
from broker.validation import array, boolean, integer, obj, string

from .base import BaseHandler, Param, endpoint


def _scalar_or_list(schema: dict, description: str) -> dict:
    return {"description": description, "anyOf": [schema, {"type": "array", "items": schema, "minItems": 1}]}


NUM = {"type": ["number", "null"]}
TEXT = {"type": ["string", "null"]}
GROUP_IDS = {"description": 'Groups to share with (besides your single-user group), or "all" (the sitewide group)',
             "anyOf": [array(integer()), {"type": "string", "const": "all"}]}
STREAM_IDS = array(integer(), "Streams whose members may read the points")
ALTDATA = {"description": "Metadata: one object for every point (a list value gives each point its element), or a "
                          "list of one object per point", "anyOf": [{"type": "object"}, {"type": "array"},
                                                                    {"type": "null"}]}
PHOTOMETRY_UPLOAD = obj({
    "obj_id": _scalar_or_list(string(minLength=1), "ID(s) of the object(s)"),
    "instrument_id": _scalar_or_list(integer(), "ID(s) of the instrument(s) (GET /api/instrument?name=ZTF)"),
    "instrument_name": _scalar_or_list(TEXT, "Ours: instrument name(s), instead of instrument_id"),
    "mjd": _scalar_or_list({"type": "number"}, "MJD of the observation(s)"),
    "filter": _scalar_or_list({"type": "string"}, "Bandpass(es), e.g. ztfg"),
    "magsys": _scalar_or_list(TEXT, "Magnitude system(s) of flux/zp or mag (ab, vega, ...; default ab)"),
    "flux": _scalar_or_list(NUM, "Flux(es) in the zp/magsys system (null for a non-detection)"),
    "fluxerr": _scalar_or_list(NUM, "Flux error(s)"),
    "zp": _scalar_or_list(NUM, "Zero point(s) (default 23.9: µJy)"),
    "ref_flux": _scalar_or_list(NUM, "Reference flux(es)"),
    "ref_fluxerr": _scalar_or_list(NUM, "Reference flux error(s)"),
    "ref_zp": _scalar_or_list(NUM, "Zero point(s) of the reference flux (default 23.9)"),
    "mag": _scalar_or_list(NUM, "Magnitude(s) (null for a non-detection)"),
    "magerr": _scalar_or_list(NUM, "Magnitude error(s)"),
    "limiting_mag": _scalar_or_list(NUM, "Limiting magnitude(s)"),
    "limiting_mag_nsigma": _scalar_or_list(NUM, "Significance of the limiting magnitudes (default 3)"),
    "magref": _scalar_or_list(NUM, "Reference magnitude(s)"),
    "e_magref": _scalar_or_list(NUM, "Reference magnitude error(s)"),
    "ra": _scalar_or_list(NUM, "RA [deg]"), "dec": _scalar_or_list(NUM, "Dec [deg]"),
    "ra_unc": _scalar_or_list(NUM, "RA uncertainty [arcsec]"),
    "dec_unc": _scalar_or_list(NUM, "Dec uncertainty [arcsec]"),
    "origin": _scalar_or_list(TEXT, "Origin(s) (part of the duplicate key; null is stored as 'None')"),
    "altdata": ALTDATA,
    "group_ids": GROUP_IDS,
    "stream_ids": STREAM_IDS,
    "assignment_id": {"type": ["integer", "null"], "description": "Classical assignment (none are kept here)"},
    "extinction_corrected": boolean("Whether the magnitudes are MW-dereddened (true is refused here)"),
}, required=("obj_id", "mjd", "filter"))

PHOTOMETRY_PATCH = obj({
    "obj_id": string(minLength=1), "instrument_id": integer(), "instrument_name": string(), "mjd": {"type": "number"},
    "filter": {"type": "string"}, "magsys": TEXT, "flux": NUM, "fluxerr": NUM, "zp": NUM, "ref_flux": NUM,
    "ref_fluxerr": NUM, "ref_zp": NUM, "mag": NUM, "magerr": NUM, "limiting_mag": NUM, "limiting_mag_nsigma": NUM,
    "magref": NUM, "e_magref": NUM, "ra": NUM, "dec": NUM, "ra_unc": NUM, "dec_unc": NUM, "origin": TEXT,
    "altdata": {"type": ["object", "null"]}, "assignment_id": {"type": ["integer", "null"]},
    "group_ids": {**GROUP_IDS, "description": "Replace the point's groups"},
    "stream_ids": {**STREAM_IDS, "description": "Add streams to the point"},
})

RANGE_BODY = obj({
    "instrument_ids": {"type": ["array", "null"], "items": integer(), "description": "Instruments (default: all)"},
    "min_date": {"type": ["string", "null"], "description": "Photometry taken after this UT date"},
    "max_date": {"type": ["string", "null"], "description": "Photometry taken before this UT date"},
})

FORMAT = Param("format", {"type": "string", "enum": ["mag", "flux"]}, "mag (default) or flux")
MAGSYS = Param("magsys", {"type": "string"}, "Magnitude system of the output (default ab)")
REFRESH = Param("refresh", {"type": "boolean"}, "Accepted; no client is notified (no websockets here)")


class PhotometryHandler(BaseHandler):
    def _fmt(self, allowed=("mag", "flux")) -> tuple[str, str]:
        fmt = self.str_arg("format", "mag")
        if fmt not in allowed:
            raise ValidationError(f"Invalid format: must be one of {list(allowed)}, got {fmt!r}", field="format")
        return fmt, self.str_arg("magsys", "ab")

    @endpoint("Retrieve a photometry point", tags="photometry", params=(FORMAT, MAGSYS))
    def get(self, photometry_id):
        fmt, outsys = self._fmt()
        with self.session() as session:
            p = svc.get_point(session, self.principal, int(photometry_id))
            self.success(svc.serialize_all(session, self.principal, [p], fmt, outsys, annotations=True)[0])

    @endpoint("Upload photometry (each field a scalar or a list); a duplicate is a 400", tags="photometry",
              acls=("Upload data",), body=PHOTOMETRY_UPLOAD, params=(REFRESH,))
    def post(self):
        self.bool_arg("refresh")
        with self.session() as session, session.begin():
            ids, upload_id = self._upload(session, "error")
        self.success({"ids": ids, "upload_id": upload_id})

    @endpoint("Update and/or upload photometry: a duplicate of a point you can see is that point", tags="photometry",
              acls=("Upload data",), body=PHOTOMETRY_UPLOAD, params=(
                  REFRESH,
                  Param("duplicate_ignore_flux", {"type": "boolean"},
                        "Admins: a duplicate is the same object, instrument, origin and mjd whatever the flux"),
                  Param("overwrite_flux", {"type": "boolean"},
                        "With duplicate_ignore_flux: rewrite the duplicate's flux with the new one")))
    def put(self):
        self.bool_arg("refresh")
        ignore_flux = self.bool_arg("duplicate_ignore_flux")
        overwrite_flux = self.bool_arg("overwrite_flux")
        if ignore_flux and not self.principal.is_admin:
            raise ValidationError("Ignoring flux/fluxerr when checking for duplicates is reserved to super admin "
                                  "users only", field="duplicate_ignore_flux")
        with self.session() as session, session.begin():
            ids, upload_id = self._upload(session, "reuse", ignore_flux, overwrite_flux)
        # upload_id: ours (SkyPortal's PUT answers ids only); null when no point was new
        self.success({"ids": ids, "upload_id": upload_id})

    def _upload(self, session, duplicates, ignore_flux=False, overwrite_flux=False):
        body = self.body
        groups = svc.upload_groups(session, self.principal, body.get("group_ids"), self.config.admin.sitewide_group)
        streams = svc.upload_streams(session, self.principal, body.get("stream_ids"))
        points = svc.standardize(session, self.principal, body)
        return svc.upload(session, self.principal, points, groups, streams, duplicates=duplicates,
                          ignore_flux=ignore_flux, overwrite_flux=overwrite_flux)

    @endpoint("Update a photometry point (its owner, 'Manage photometry' or an admin)", tags="photometry",
              acls=("Upload data",), body=PHOTOMETRY_PATCH, params=(REFRESH,))
    def patch(self, photometry_id):
        self.bool_arg("refresh")
        with self.session() as session, session.begin():
            svc.patch_point(session, self.principal, int(photometry_id), self.body, self.config.admin.sitewide_group)
        self.success()

    @endpoint("Delete a photometry point (its owner, 'Manage photometry' or an admin)", tags="photometry",
              acls=("Upload data",))
    def delete(self, photometry_id):
        with self.session() as session, session.begin():
            svc.delete_point(session, self.principal, int(photometry_id))
        self.success()


class BulkDeletePhotometryHandler(BaseHandler):
    @endpoint("Delete bulk-uploaded photometry (the points of one upload_id)", tags="photometry",
              acls=("Delete bulk photometry",))
    def delete(self, upload_id):
        with self.session() as session, session.begin():
            n = svc.bulk_delete(session, self.principal, upload_id)
        self.success(f"Deleted {n} photometry point(s).")


class PhotometryRangeHandler(BaseHandler):
    @endpoint("Retrieve photometry over a date range (JSON body: instrument_ids, min_date, max_date)",
              tags="photometry", params=(FORMAT, MAGSYS))
    def get(self):
        outsys = self.str_arg("magsys", "ab")
        if outsys not in svc.ALLOWED_MAGSYSTEMS:
            raise ValidationError("Invalid mag system.", field="magsys")
        fmt = self.str_arg("format", "mag")
        if fmt not in ("mag", "flux"):
            raise ValidationError("Invalid output format.", field="format")
        body = {}
        if self.request.body and self.request.body.strip():
            from broker.validation import validate

            body = validate(self.json_body(), RANGE_BODY)
        min_date = parse_date(body.get("min_date"), "min_date")
        max_date = parse_date(body.get("max_date"), "max_date")
        with self.session() as session:
            self.success(svc.photometry_range(session, self.principal, body.get("instrument_ids"), min_date, max_date,
                                              fmt, outsys))
