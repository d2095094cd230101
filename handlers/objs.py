"""/api/objs/{obj_id} and /api/source_exists, and what the candidate and source handlers share:
SkyPortal's Obj body fields and the query-parameter checks."""

from broker.errors import ValidationError
from broker.objects import objs as svc
from broker.validation import array, boolean, integer, nullable, string

from .base import BaseHandler, Param, endpoint

_NUMBER = {"type": "number"}
# SkyPortal's ObjPost fields (numeric ids are taken as strings, as SkyPortal does)
OBJ_FIELDS = {
    "id": {"type": ["string", "integer"], "description": "Name of the object", "minLength": 1,
           "pattern": "^[0-9A-Za-z_.+:;-]+$"},
    "ra": nullable({**_NUMBER, "description": "J2000 Right Ascension [deg] (needed for a new object)"}),
    "dec": nullable({**_NUMBER, "description": "J2000 Declination [deg] (needed for a new object)"}),
    **{k: nullable({**_NUMBER, "description": d}) for k, d in (
        ("ra_dis", "J2000 Right Ascension at discovery time [deg]"),
        ("dec_dis", "J2000 Declination at discovery time [deg]"),
        ("ra_err", "Error on J2000 Right Ascension at discovery time [deg]"),
        ("dec_err", "Error on J2000 Declination at discovery time [deg]"),
        ("offset", "Offset from nearest static object [arcsec]"),
        ("t0", "Reference time"),
        ("redshift", "Redshift"), ("redshift_error", "Redshift error"),
        ("dist_nearest_source", "Distance to the nearest Obj [arcsec]"),
        ("mag_nearest_source", "Magnitude of the nearest Obj [AB]"),
        ("e_mag_nearest_source", "Error on magnitude of the nearest Obj [mag]"),
        ("score", "Machine learning score"),
    )},
    **{k: nullable(string(d)) for k, d in (
        ("redshift_origin", "Redshift source"), ("summary", "Summary of the obj"),
        ("mpc_name", "Minor planet center name"), ("tns_name", "Transient Name Server name"),
        ("origin", "Origin of the object"),
    )},
    **{k: nullable(boolean(d)) for k, d in (
        ("transient", "Whether the object is an astrophysical transient"),
        ("varstar", "Whether the object is a variable star"),
        ("is_roid", "Whether the object is a moving object"),
    )},
    "altdata": nullable({"type": "object", "description": "Misc. alternative metadata (JSON)"}),
    "tns_info": nullable({"type": "object", "description": "TNS info (JSON)"}),
    "alias": nullable(array(string(), "Alternative names for this object")),
    "detect_photometry_count": nullable(integer("How many times the object was detected")),
}
OBJ_NO_ID = {k: v for k, v in OBJ_FIELDS.items() if k != "id"}


def obj_body(body: dict) -> dict:
    """The body with ``id`` as a string (survey ids may arrive as JSON numbers)."""
    if "id" in body:
        body["id"] = str(body["id"])
    return body


def refuse_unsupported(handler: BaseHandler, flags: tuple[str, ...] = (), values: tuple[str, ...] = ()) -> None:
    """SkyPortal parameters this server cannot honour: a 400 naming the parameter when one is asked for
    (a flag set to true, or a value given), never a silently unfiltered answer."""
    for name in flags:
        if handler.bool_arg(name):
            raise ValidationError(f"Unsupported parameter {name}: this server cannot honour it", field=name)
    for name in values:
        if handler.str_arg(name) is not None:
            raise ValidationError(f"Unsupported parameter {name}: this server cannot honour it", field=name)


def wanted_details(handler: BaseHandler, table: dict[str, tuple[str, str, bool]]) -> dict[str, tuple[str, str]]:
    """{output key: (hook, parameter)} for the include flags set: ``table`` maps a parameter to
    (output key, hook, SkyPortal's default). A flag on by default is served when a hook is registered."""
    out = {}
    for param, (key, hook, default) in table.items():
        raw = handler.str_arg(param)
        on = handler.bool_arg(param, default)
        if not on:
            continue
        registry = svc.EXISTS if key.endswith("_exists") else svc.DETAILS
        if hook not in registry:
            if raw is None:
                continue  # a default-on extra nobody serves: left out, as the caller did not ask
            raise ValidationError(f"Unsupported parameter {param}: this server keeps no {hook} for objects",
                                  field=param)
        out[key] = (hook, param)
    return out


class ObjHandler(BaseHandler):
    @endpoint("Delete an Obj (System admins; once its photometry, classifications, crossmatches are gone)",
              tags="objs")
    def delete(self, obj_id):
        with self.session() as session, session.begin():
            svc.delete_obj(session, self.principal, obj_id)
        self.success()


class SourceExistsHandler(BaseHandler):
    @endpoint("Check if a source exists, by ID (among objects you can see) or by position (among your sources)",
              tags="sources", params=(
                  Param("ra", {"type": "number"}, "RA for spatial filtering [deg]"),
                  Param("dec", {"type": "number"}, "Declination for spatial filtering [deg]"),
                  Param("radius", {"type": "number"}, "Radius for spatial filtering [deg]"),
              ))
    def get(self, obj_id=None):
        with self.session() as session:
            self.success(svc.source_exists(session, self.principal, obj_id or None, self.float_arg("ra"),
                                           self.float_arg("dec"), self.float_arg("radius")))
