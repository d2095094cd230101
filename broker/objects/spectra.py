"""Spectra, as SkyPortal serves them (``/api/spectra``, ``/api/spectra/ascii``, ``/api/sources/{id}/spectra``).

A spectrum is readable by the members of its groups; its owner (or a system admin) may change or
delete it. Default groups of an upload: the uploader's own (single-user) group, always added.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

import models
from models.enums import ALLOWED_SPECTRUM_TYPES

from broker.access.auth import Principal
from broker.errors import PermissionDenied, ValidationError
from broker.objects.annotations import (accessible_groups, annotations_of_spectra, author_dict, groups_named,
                                        spectrum_visible_clause)
from broker.objects.objs import parse_date, parse_strings, register_exists, user_group_ids, visible_obj_clause

S = models.Spectrum
SU = models.spectrum_users
ROLES = {"pi": ("pi", "external_pi"), "reducer": ("reduced_by", "external_reducer"),
         "observer": ("observed_by", "external_observer")}
UNITS = ("Jy", "AB", "erg/s/cm/cm/AA")
MAX_ASCII = 10_000_000  # characters, as SkyPortal (10 MB)
MINIMAL_COLUMNS = ("id", "owner_id", "obj_id", "observed_at", "origin", "type", "label", "instrument_id",
                   "followup_request_id", "assignment_id", "altdata", "original_file_filename", "modified",
                   "created_at")


class NotOwner(PermissionDenied):
    """SkyPortal answers 401 (its AccessError) when someone else's spectrum is changed or deleted."""

    status = 401


def default_spectrum_type() -> str:
    return ALLOWED_SPECTRUM_TYPES[0]


# -- reading ---------------------------------------------------------------------------------------

def readable(principal: Principal) -> sa.Select:
    return sa.select(S).options(selectinload(S.groups), selectinload(S.owner)).where(spectrum_visible_clause(principal))


def _get(session: Session, principal: Principal, spectrum_id: int, message: str) -> models.Spectrum:
    s = session.execute(readable(principal).where(S.id == spectrum_id)).scalar()
    if s is None:
        raise PermissionDenied(message)
    return s


def _contacts(session: Session, ids) -> dict[int, dict]:
    out = {i: {"pis": [], "reducers": [], "observers": [], "external": {}} for i in ids}
    rows = session.execute(sa.select(SU.c.spectrum_id, SU.c.role, SU.c.external, models.User)
                           .join(models.User, models.User.id == SU.c.user_id)
                           .where(SU.c.spectrum_id.in_(list(ids))).order_by(models.User.id)
                           .options(*models.User.names_only())).all()
    for sid, role, external, user in rows:
        out[sid][role + "s"].append(author_dict(user))
        if external is not None:
            out[sid]["external"][ROLES[role][1]] = external
    return out


def _finite_list(values) -> list | None:
    if values is None:
        return None
    return [v if v is None or math.isfinite(v) else None for v in values]


def spectrum_dicts(session: Session, principal: Principal, spectra: list[models.Spectrum], *,
                   include_original_file: bool = False, minimal: bool = False, comments: bool = True,
                   mjd: bool = False) -> list[dict]:
    """SkyPortal's spectrum payload: columns, instrument and telescope names, groups (the caller's),
    owner, pis / reducers / observers (+ external_*), comments and annotations."""
    from broker.objects.comments import comments_of_spectra

    ids = [s.id for s in spectra]
    mine = None if principal.is_admin else set(session.execute(user_group_ids(principal)).scalars())
    contacts = _contacts(session, ids) if not minimal else {}
    notes = comments_of_spectra(session, principal, ids) if comments and not minimal else {}
    annotations = annotations_of_spectra(session, principal, ids) if not minimal else {}
    out = []
    for s in spectra:
        d = s.to_dict()
        d["assignment_id"] = None  # SkyPortal's classical-assignment link; no assignments here
        if include_original_file and not minimal:
            d["original_file_string"] = s.original_file_string
        if minimal:
            out.append({k: d.get(k) for k in MINIMAL_COLUMNS})
            continue
        for k in ("wavelengths", "fluxes", "errors"):
            d[k] = _finite_list(d[k])
        d["instrument_name"] = s.instrument.name
        d["telescope_id"] = s.instrument.telescope_id
        d["telescope_name"] = s.instrument.telescope.name
        d["groups"] = [g.to_dict() for g in sorted(s.groups, key=lambda g: g.id) if mine is None or g.id in mine]
        d["owner"] = author_dict(s.owner)
        c = contacts[s.id]
        d["pis"], d["reducers"], d["observers"] = c["pis"], c["reducers"], c["observers"]
        d.update(c["external"])
        if comments:
            d["comments"] = notes[s.id]
        d["annotations"] = annotations[s.id]
        if mjd:
            d["observed_at_mjd"] = (s.observed_at - datetime(1858, 11, 17)).total_seconds() / 86400.0
        out.append(d)
    return out


def get_spectrum(session: Session, principal: Principal, spectrum_id: int, include_original_file: bool) -> dict:
    s = _get(session, principal, spectrum_id, f"Could not access spectrum {spectrum_id}.")
    return spectrum_dicts(session, principal, [s], include_original_file=include_original_file)[0]


@dataclass
class SpectrumQuery:
    minimal_payload: bool = False
    include_original_file: bool = False
    observed_before: datetime | None = None
    observed_after: datetime | None = None
    modified_before: datetime | None = None
    modified_after: datetime | None = None
    obj_id: str | None = None
    instrument_ids: str | None = None
    group_ids: str | None = None
    followup_request_ids: str | None = None
    assignment_ids: str | None = None
    origin: str | None = None
    label: str | None = None
    type: str | None = None
    comments_filter: str | None = None
    comments_filter_author: str | None = None
    comments_filter_before: datetime | None = None
    comments_filter_after: datetime | None = None


def _id_list(raw: str | None, name: str, model: str, field: str, accessible) -> list[int] | None:
    """SkyPortal's comma-separated ID filter; ``accessible()``: the IDs the caller may name."""
    if raw is None or raw == "":
        return None
    try:
        ids = [int(x) for x in raw.split(",")]
    except ValueError:
        raise ValidationError(f'Invalid {model} IDs field ("{raw}"); Could not parse all elements to integers',
                              field=field) from None
    if not set(ids) <= set(accessible()):
        raise ValidationError(f'Invalid {model} IDs field ("{raw}"); Not all {model} IDs are valid/accessible',
                              field=field)
    return ids


def list_spectra(session: Session, principal: Principal, q: SpectrumQuery) -> list[dict]:
    from broker.followup.requests import readable_requests
    from broker.objects.comments import comment_filter_clause

    instrument_ids = _id_list(q.instrument_ids, "instrumentIDs", "Instrument", "instrumentIDs",
                              lambda: session.execute(sa.select(models.Instrument.id)).scalars())
    group_ids = _id_list(q.group_ids, "groupIDs", "Group", "groupIDs",
                         lambda: [g.id for g in accessible_groups(session, principal)])
    followup_ids = _id_list(q.followup_request_ids, "followupRequestIDs", "FollowupRequest", "followupRequestIDs",
                            lambda: session.execute(readable_requests(principal)
                                                    .with_only_columns(models.FollowupRequest.id)).scalars())
    _id_list(q.assignment_ids, "assignmentIDs", "ClassicalAssignment", "assignmentIDs", lambda: ())
    types = parse_strings(q.type)
    for t in types or ():
        if t not in ALLOWED_SPECTRUM_TYPES:
            raise ValidationError(f'Spectrum type "{t}" is not in list of allowed spectrum types: '
                                  f"{list(ALLOWED_SPECTRUM_TYPES)}.", field="type")
    stmt = readable(principal)
    if instrument_ids:
        stmt = stmt.where(S.instrument_id.in_(instrument_ids))
    if group_ids:
        stmt = stmt.where(S.id.in_(sa.select(models.group_spectra.c.spectrum_id)
                                   .where(models.group_spectra.c.group_id.in_(group_ids))))
    if followup_ids:
        stmt = stmt.where(S.followup_request_id.in_(followup_ids))
    if q.obj_id and q.obj_id.strip():
        stmt = stmt.where(S.obj_id.contains(q.obj_id.strip(), autoescape=True))
    for col, lo, hi in ((S.observed_at, q.observed_after, q.observed_before),
                        (S.modified, q.modified_after, q.modified_before)):
        if lo is not None:
            stmt = stmt.where(col >= lo)
        if hi is not None:
            stmt = stmt.where(col <= hi)
    for col, raw in ((S.origin, q.origin), (S.label, q.label)):
        values = parse_strings(raw)
        if values:
            stmt = stmt.where(sa.or_(*[col.contains(v, autoescape=True) for v in values]))
    if types:
        stmt = stmt.where(S.type.in_(types))
    if any(v is not None for v in (q.comments_filter, q.comments_filter_author, q.comments_filter_before,
                                   q.comments_filter_after)):
        stmt = stmt.where(comment_filter_clause(principal, parse_strings(q.comments_filter),
                                                parse_strings(q.comments_filter_author),
                                                q.comments_filter_before, q.comments_filter_after))
    spectra = session.execute(stmt.order_by(S.observed_at, S.id)).scalars().all()
    return spectrum_dicts(session, principal, list(spectra), include_original_file=q.include_original_file,
                          minimal=q.minimal_payload)


def obj_spectra(session: Session, principal: Principal, obj_id: str, sort_by: str, sort_order: str,
                normalization: str | None, include_original_file: bool) -> dict:
    if sort_by not in ("observed_at", "created_at"):
        raise ValidationError("Invalid sortBy, must be one of: observed_at, created_at.", field="sortBy")
    if sort_order not in ("asc", "desc"):
        raise ValidationError("Invalid sortOrder, must be one of: asc, desc.", field="sortOrder")
    if normalization is not None and normalization != "median":
        raise ValidationError(f'Invalid "normalization" value "{normalization}", use "median" or None',
                              field="normalization")
    obj = session.execute(sa.select(models.Obj.id).where(models.Obj.id == obj_id,
                                                         visible_obj_clause(principal))).scalar()
    if obj is None:
        raise ValidationError("Invalid object ID.", field="obj_id")
    col = getattr(S, sort_by)
    spectra = session.execute(readable(principal).where(S.obj_id == obj_id)
                              .order_by(col.asc() if sort_order == "asc" else col.desc(), S.id)).scalars().all()
    out = spectrum_dicts(session, principal, list(spectra), include_original_file=include_original_file, mjd=True)
    if normalization == "median":
        for d, s in zip(out, spectra):
            fluxes = np.asarray(s.fluxes, dtype=float)
            norm = float(np.median(np.abs(fluxes))) if len(fluxes) else 1.0
            norm = norm if norm != 0.0 else 1e-20
            if not (math.isfinite(norm) and norm > 0):
                waves = np.asarray(s.wavelengths, dtype=float)
                norm = float(fluxes[np.argmin(np.abs(waves - np.median(waves)))])
            d["fluxes"] = _finite_list((fluxes / norm).tolist())
    return {"obj_id": obj, "spectra": out}


def spectra_in_range(session: Session, principal: Principal, instrument_ids: list[int],
                     min_date: datetime | None, max_date: datetime | None) -> list[dict]:
    """``GET /api/spectra/range``: readable spectra of these instruments (all, if none) observed in the range."""
    stmt = readable(principal)
    if instrument_ids:
        stmt = stmt.where(S.instrument_id.in_(instrument_ids))
    if min_date is not None:
        stmt = stmt.where(S.observed_at >= min_date)
    if max_date is not None:
        stmt = stmt.where(S.observed_at <= max_date)
    out = []
    for s in session.execute(stmt.order_by(S.observed_at, S.id)).scalars():
        d = s.to_dict()
        for k in ("wavelengths", "fluxes", "errors"):
            d[k] = _finite_list(d[k])
        out.append(d)
    return out


# -- writing ---------------------------------------------------------------------------------------

def _check_arrays(data: dict) -> None:
    n = len(data["wavelengths"])
    for k in ("fluxes", "errors"):
        if data.get(k) is not None and len(data[k]) != n:
            raise ValidationError(f"Invalid field '{k}': has {len(data[k])} values where wavelengths has {n}",
                                  field=k)
    if n == 0:
        raise ValidationError("Invalid field 'wavelengths': a spectrum needs at least one point", field="wavelengths")


def _observed_at(raw, field: str = "observed_at") -> datetime:
    if isinstance(raw, datetime):
        return raw
    return parse_date(raw, field)


def _contacts_from(session: Session, principal: Principal, body: dict, require_all: bool = True) -> list[tuple]:
    """(user_id, role, external) rows from pi / reduced_by / observed_by and their external_* texts."""
    rows = []
    for role, (ids_key, ext_key) in ROLES.items():
        ids = body.get(ids_key) or []
        external = body.get(ext_key)
        if external is not None and not ids:
            noun = {"pi": "PI", "reducer": "reducer", "observer": "observer"}[role]
            raise ValidationError(
                f"When specifying an external {noun}, at least one valid user must be provided as a {noun} point "
                f"of contact via the '{ids_key}' parameter.", field=ids_key)
        for uid in dict.fromkeys(ids):
            if session.get(models.User, uid) is None:
                raise ValidationError(f"Invalid {role} ID: {uid}.", field=ids_key)
            rows.append((uid, role, external))
    return rows


def _single_user_group(session: Session, principal: Principal) -> int | None:
    return session.execute(sa.select(models.Group.id).where(models.Group.single_user_group,
                                                           models.Group.id.in_(user_group_ids(principal)))).scalar()


def _groups_for_upload(session: Session, principal: Principal, group_ids) -> list[models.Group]:
    if group_ids == "all":
        groups = accessible_groups(session, principal)
    elif group_ids:
        groups = groups_named(session, principal, group_ids)
    else:
        groups = []
    single = _single_user_group(session, principal)
    if single is not None and single not in {g.id for g in groups}:
        groups.append(session.get(models.Group, single))
    return groups


def _followup_request(session: Session, principal: Principal, request_id: int | None):
    if request_id is None:
        return None
    from broker.followup.requests import readable_requests

    fr = session.execute(readable_requests(principal).where(models.FollowupRequest.id == request_id)).scalar()
    if fr is None:
        raise ValidationError(f"Invalid followup_request_id: no accessible follow-up request {request_id}",
                              field="followup_request_id")
    return fr


def _no_assignments(body: dict) -> None:
    if body.get("assignment_id") is not None:
        # SkyPortal refuses an assignment it cannot find; observing runs and their classical
        # assignments do not exist here, so none can be named
        raise ValidationError("Invalid assignment_id: classical assignments are not supported by this broker",
                              field="assignment_id")


def _require_obj(session: Session, principal: Principal, obj_id: str, message: str) -> None:
    if session.execute(sa.select(models.Obj.id).where(models.Obj.id == obj_id,
                                                      visible_obj_clause(principal))).first() is None:
        raise ValidationError(message, field="obj_id")


def _require_instrument(session: Session, instrument_id: int) -> None:
    if session.get(models.Instrument, instrument_id) is None:
        raise ValidationError(f"Cannot find instrument with ID: {instrument_id}", field="instrument_id")


def _store(session: Session, principal: Principal, fields: dict, groups, contacts) -> int:
    s = S(owner_id=principal.user_id, **fields)
    s.groups = list(groups)
    session.add(s)
    session.flush()
    if contacts:
        session.execute(sa.insert(SU), [{"spectrum_id": s.id, "user_id": u, "role": r, "external": e}
                                        for u, r, e in contacts])
    return s.id


SCALARS = ("units", "origin", "type", "label", "altdata", "followup_request_id")


def post_spectrum(session: Session, principal: Principal, body: dict) -> int:
    _no_assignments(body)
    _check_arrays(body)
    if body.get("units") is not None and body["units"] not in UNITS:
        raise ValidationError("units must be Jy, AB, or erg/s/cm/cm/AA", field="units")
    _require_obj(session, principal, body["obj_id"], f"Invalid obj_id: no object '{body['obj_id']}'")
    _require_instrument(session, body["instrument_id"])
    contacts = _contacts_from(session, principal, body)
    groups = _groups_for_upload(session, principal, body.get("group_ids"))
    _followup_request(session, principal, body.get("followup_request_id"))
    fields = {k: body.get(k) for k in SCALARS}
    fields["type"] = fields["type"] or default_spectrum_type()
    return _store(session, principal, dict(
        wavelengths=body["wavelengths"], fluxes=body["fluxes"], errors=body.get("errors"), obj_id=body["obj_id"],
        observed_at=_observed_at(body["observed_at"]), instrument_id=body["instrument_id"], **fields),
        groups, contacts)


def _owned(session: Session, principal: Principal, spectrum_id: int, message: str) -> models.Spectrum:
    s = _get(session, principal, spectrum_id, message)
    if not principal.is_admin and s.owner_id != principal.user_id:
        raise NotOwner("Insufficient permissions: only the owner of a spectrum or a system admin may change it")
    return s


def update_spectrum(session: Session, principal: Principal, spectrum_id: int, body: dict) -> None:
    s = _owned(session, principal, spectrum_id, f"Could not access spectrum {spectrum_id}.")
    _no_assignments(body)
    if body.get("units") is not None and body["units"] not in UNITS:
        raise ValidationError("units must be Jy, AB, or erg/s/cm/cm/AA", field="units")
    if "obj_id" in body and body["obj_id"] != s.obj_id:
        _require_obj(session, principal, body["obj_id"], f"Invalid obj_id: no object '{body['obj_id']}'")
    if body.get("instrument_id") is not None:
        _require_instrument(session, body["instrument_id"])
    _followup_request(session, principal, body.get("followup_request_id"))
    group_ids = body.get("group_ids")
    if group_ids:  # SkyPortal adds the groups named; none is removed
        new = accessible_groups(session, principal) if group_ids == "all" else groups_named(session, principal,
                                                                                             group_ids)
        have = {g.id for g in s.groups}
        s.groups = s.groups + [g for g in new if g.id not in have]
    for role, (ids_key, ext_key) in ROLES.items():
        if body.get(ids_key):  # SkyPortal replaces the contacts of a role named with users
            rows = _contacts_from(session, principal, {ids_key: body[ids_key], ext_key: body.get(ext_key)})
            session.execute(sa.delete(SU).where(SU.c.spectrum_id == s.id, SU.c.role == role))
            session.execute(sa.insert(SU), [{"spectrum_id": s.id, "user_id": u, "role": r, "external": e}
                                            for u, r, e in rows])
        elif body.get(ext_key) is not None:
            raise ValidationError(f"At least one valid user must be provided as a {role} point of contact via the "
                                  f"'{ids_key}' parameter.", field=ids_key)
    for k in ("wavelengths", "fluxes", "errors", "obj_id", "instrument_id", *SCALARS):
        if k in body:
            setattr(s, k, body[k])
    if body.get("type") is None and "type" in body:
        s.type = default_spectrum_type()
    if "observed_at" in body:
        s.observed_at = _observed_at(body["observed_at"])
    _check_arrays({"wavelengths": s.wavelengths, "fluxes": s.fluxes, "errors": s.errors})
    s.modified = models.utcnow()
    session.flush()


def delete_spectrum(session: Session, principal: Principal, spectrum_id: int) -> None:
    s = _owned(session, principal, spectrum_id, "Could not find spectrum.")
    session.delete(s)
    session.flush()


# -- ASCII files -----------------------------------------------------------------------------------

def _jsonable(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (np.generic,)):
        return _jsonable(value.item())
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _header(comments: list[str]) -> dict | None:
    """The file's '#' header: ``KEY: VALUE`` lines (YAML) and FITS cards (``KEY = VALUE / COMMENT``)."""
    import yaml
    from astropy.io import fits
    from astropy.io.fits.verify import VerifyError
    from astropy.utils.exceptions import AstropyWarning

    bad_card = (AstropyWarning, VerifyError, ValueError, KeyError, IndexError, TypeError)

    header: dict = {}
    for line in comments:
        try:
            parsed = yaml.safe_load(line)
        except yaml.YAMLError:
            continue
        if isinstance(parsed, dict):
            header.update(parsed)
    cards = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", AstropyWarning)
        for line in comments:
            try:  # as SkyPortal: a line that is not a valid FITS card is no card
                card = fits.Card.fromstring(line)
                card.verify()
                _ = card.value
                cards.append(card)
            except bad_card:
                continue
    fits_header = fits.Header(cards=cards)
    for key in fits_header.keys():
        try:
            value = fits_header[key]
            comment = fits_header.comments[key]
        except bad_card:
            continue
        if key in ("", "COMMENT", "HISTORY", "END"):
            value = str(value)
        header[key] = {"value": value, "comment": comment} if comment else value
    return _jsonable(header)


def parse_ascii(text: str, wave_column: int = 0, flux_column: int = 1, fluxerr_column: int | None = None) -> dict:
    """SkyPortal's ASCII spectrum: whitespace-separated columns (wavelength, flux[, error, ...]) after an
    optional '#' header. Returns wavelengths / fluxes / errors / altdata; a ValidationError naming
    ``ascii`` (or the column argument) says what is wrong."""
    from astropy.io import ascii as astropy_ascii

    if len(text) > MAX_ASCII:
        raise ValidationError("Error parsing spectrum: File must be smaller than 10MB.", field="ascii")
    raw = text.encode("ascii", "ignore")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table = astropy_ascii.read(io.BytesIO(raw), comment="#", header_start=None, guess=False,
                                       format="no_header")
    except Exception as exc:  # noqa: BLE001 - astropy's readers raise many types on a malformed table
        raise ValidationError(f"Error parsing spectrum: Error parsing ASCII file: {exc}", field="ascii") from None
    names = table.colnames
    if len(names) < 2:
        raise ValidationError("Error parsing spectrum: Input data must have at least 2 columns (wavelength, flux, and "
                              "optionally flux error).", field="ascii")
    out: dict = {}
    for index, arg, key in ((wave_column, "wave_column", "wavelengths"), (flux_column, "flux_column", "fluxes"),
                            (fluxerr_column, "fluxerr_column", "errors")):
        if index is None:
            continue
        if not 0 <= index < len(names):
            raise ValidationError(f"Error parsing spectrum: index {arg} ({index}) is greater than the maximum allowed "
                                  f"value ({len(names) - 1})", field=arg)
        try:
            values = np.asarray(table[names[index]], dtype=float)
        except (TypeError, ValueError):
            raise ValidationError(f"Error parsing spectrum: column {index} ({arg}) is not numeric",
                                  field="ascii") from None
        if not np.all(np.isfinite(values)):
            raise ValidationError(f"Error parsing spectrum: column {index} ({arg}) has NaN or infinite values",
                                  field="ascii")
        out[key] = values.tolist()
    out.setdefault("errors", None)
    out["altdata"] = _header(list(table.meta.get("comments", []))) if table.meta.get("comments") else None
    return out


def parsed_ascii_dict(parsed: dict) -> dict:
    """``/api/spectra/parse/ascii``: the spectrum a file would make (not stored)."""
    return {"wavelengths": parsed["wavelengths"], "fluxes": parsed["fluxes"], "errors": parsed["errors"],
            "altdata": parsed["altdata"], "obj_id": None, "instrument_id": None, "type": None, "label": None,
            "observed_at": None, "units": None, "origin": None}


def post_ascii(session: Session, principal: Principal, body: dict) -> int:
    _no_assignments(body)
    if body.get("type") is not None and body["type"] not in ALLOWED_SPECTRUM_TYPES:
        raise ValidationError(f"Invalid/missing parameters: type: Must be one of: {', '.join(ALLOWED_SPECTRUM_TYPES)}.",
                              field="type")
    parsed = parse_ascii(body["ascii"], body.get("wave_column", 0), body.get("flux_column", 1),
                         body.get("fluxerr_column"))
    _require_obj(session, principal, body["obj_id"], f"Cannot find object with ID: {body['obj_id']}")
    _require_instrument(session, body["instrument_id"])
    groups = _groups_for_upload(session, principal, body.get("group_ids"))
    contacts = _contacts_from(session, principal, body)
    fr = _followup_request(session, principal, body.get("followup_request_id"))
    if fr is not None:  # as SkyPortal: the request's target groups see the spectrum too
        have = {g.id for g in groups}
        groups += [g for g in fr.target_groups if g.id not in have]
    return _store(session, principal, dict(
        wavelengths=parsed["wavelengths"], fluxes=parsed["fluxes"], errors=parsed["errors"], altdata=parsed["altdata"],
        obj_id=body["obj_id"], instrument_id=body["instrument_id"], observed_at=_observed_at(body["observed_at"]),
        type=body.get("type") or default_spectrum_type(), label=body.get("label"),
        followup_request_id=fr.id if fr is not None else None, original_file_string=body["ascii"],
        original_file_filename=Path(body["filename"]).name), groups, contacts)


def _has_spectra(principal: Principal):
    return sa.exists().where(S.obj_id == models.Obj.id, spectrum_visible_clause(principal))


# ``spectrum_exists`` of source answers (see broker.objects.objs's hooks)
register_exists("spectra", _has_spectra)
