"""/api/photometry."""

from broker.objects import objs as osvc
from broker.errors import ValidationError
from broker.objects import photometry as svc
from broker.validation import array, integer, obj, string

from .base import BaseHandler, Param, endpoint


def _scalar_or_list(schema: dict, description: str) -> dict:
    return {"description": description, "anyOf": [schema, {"type": "array", "items": schema, "minItems": 1}]}


NUM = {"type": ["number", "null"]}
PHOTOMETRY_POST = obj({
    "obj_id": string("ID of the object", minLength=1),
    "mjd": _scalar_or_list({"type": "number"}, "MJD of the observation(s)"),
    "filter": _scalar_or_list({"type": "string"}, "Bandpass(es), e.g. ztfg"),
    "flux": _scalar_or_list(NUM, "Flux(es) in the zp system (null for a non-detection)"),
    "fluxerr": _scalar_or_list(NUM, "Flux error(s)"),
    "zp": _scalar_or_list(NUM, "Zero point(s) (default 23.9: µJy)"),
    "mag": _scalar_or_list(NUM, "AB magnitude(s) (null for a non-detection)"),
    "magerr": _scalar_or_list(NUM, "Magnitude error(s)"),
    "limiting_mag": _scalar_or_list(NUM, "5-sigma limiting magnitude(s)"),
    "magsys": _scalar_or_list({"type": ["string", "null"]}, "Magnitude system(s) (default ab)"),
    "ra": _scalar_or_list(NUM, "RA [deg]"), "dec": _scalar_or_list(NUM, "Dec [deg]"),
    "origin": _scalar_or_list({"type": ["string", "null"]}, "Origin(s) (part of the duplicate key)"),
    "instrument_name": _scalar_or_list({"type": ["string", "null"]}, "Instrument name(s)"),
    "group_ids": {"description": 'Groups to share with, or "all"',
                  "anyOf": [array(integer()), {"type": "string", "const": "all"}]},
}, required=("obj_id", "mjd", "filter"))


class PhotometryHandler(BaseHandler):
    @endpoint("Retrieve photometry", tags="photometry",
              params=(Param("format", {"type": "string", "enum": ["flux", "mag"]}),))
    def get(self, photometry_id):
        fmt = self.str_arg("format", "flux")
        if fmt not in ("flux", "mag"):
            raise ValidationError("Invalid format: must be flux or mag", field="format")
        with self.session() as session:
            p, groups = svc.get_photometry(session, self.principal, int(photometry_id))
            self.success(osvc.photometry_to_dict(p, fmt, groups))

    @endpoint("Upload photometry (each field a scalar or a list)", tags="photometry", acls=("Upload data",),
              body=PHOTOMETRY_POST)
    def post(self):
        with self.session() as session, session.begin():
            ids = svc.post_photometry(session, self.principal, self.body, self.config.admin.sitewide_group)
        self.success({"ids": ids})

    @endpoint("Delete photometry", tags="photometry", acls=("Upload data",))
    def delete(self, photometry_id):
        with self.session() as session, session.begin():
            svc.delete_photometry(session, self.principal, int(photometry_id))
        self.success()
