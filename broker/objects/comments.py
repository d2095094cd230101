"""Comments on sources and on spectra, as SkyPortal's CommentHandler serves them.

A comment is readable by the members of its groups who can see its object (and spectrum); only its
author (or a system admin) may edit or delete it. Default groups: the sitewide (public) group. Comments
made through the API are ``bot`` comments (SkyPortal marks every token-made comment so; every call
here is token-made). An attachment's bytes are kept in the row.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload, undefer

import models

from broker.access.auth import Principal
from broker.errors import PermissionDenied, ValidationError
from broker.objects.annotations import author_dict, groups_named, member_clause, spectrum_visible_clause
from broker.objects.objs import register_details, register_exists, user_group_ids, visible_obj_clause

MAX_ATTACHMENT = 20 * 1024 * 1024  # decoded bytes; SkyPortal refuses to send files larger than 20 MB

EXTENSION_TO_CONTENT_TYPE = {
    "aac": "audio/aac", "mp3": "audio/mpeg", "oga": "audio/ogg", "wav": "audio/wav",
    "mp4": "video/mp4", "ogg": "video/ogg", "ogv": "video/ogg", "webm": "video/webm",
    "apng": "image/apng", "avif": "image/avif", "bmp": "image/bmp", "gif": "image/gif", "ico": "image/x-icon",
    "jpeg": "image/jpeg", "jpg": "image/jpeg", "png": "image/png", "svg": "image/svg+xml", "webp": "image/webp",
    "txt": "text/plain", "log": "text/plain", "logs": "text/plain", "csv": "text/csv", "htm": "text/html",
    "html": "text/html", "js": "text/javascript", "mjs": "text/javascript", "json": "application/json",
    "xml": "application/xml", "pdf": "application/pdf",
}

KINDS = {
    "sources": (models.Comment, models.group_comments, "obj_id"),
    "spectra": (models.CommentOnSpectrum, models.group_comments_on_spectra, "spectrum_id"),
}


def _readable(kind: str, principal: Principal):
    C, table, _ = KINDS[kind]
    if principal.is_admin:
        return sa.true()
    cond = [member_clause(principal, table, "comment_id", C.id), visible_obj_clause(principal, C.obj_id)]
    if kind == "spectra":
        cond.append(spectrum_visible_clause(principal, C.spectrum_id))
    return sa.and_(*cond)


def _caller_groups(session: Session, principal: Principal) -> set[int] | None:
    return None if principal.is_admin else set(session.execute(user_group_ids(principal)).scalars())


def comment_to_dict(c, kind: str, groups: set[int] | None, author: bool = True) -> dict:
    out = c.to_dict()
    out["groups"] = [g.to_dict() for g in sorted(c.groups, key=lambda g: g.id) if groups is None or g.id in groups]
    out["resourceType"] = kind
    if author:
        out["author"] = author_dict(c.author)
    return out


def coerce(kind: str, resource_id: str):
    if kind == "sources":
        return resource_id
    try:
        return int(resource_id)
    except (TypeError, ValueError):
        raise ValidationError(f"Invalid resource_id: {resource_id}", field="resource_id") from None


def list_comments(session: Session, principal: Principal, kind: str, resource_id: str | None, text: str | None,
                  channel: str | None, page_number: int, num_per_page: int) -> list[dict]:
    C, _, col = KINDS[kind]
    if resource_id is None and (text is None or not text.strip()):
        raise ValidationError("Please provide a resource_id or text to search for.")
    stmt = sa.select(C).options(selectinload(C.groups)).where(_readable(kind, principal))
    if kind == "sources":
        stmt = stmt.where(C.channel == channel if channel else C.channel.is_(None))
    elif channel:
        raise ValidationError("Invalid channel: only comments on sources have channels", field="channel")
    if resource_id is not None:
        stmt = stmt.where(getattr(C, col) == coerce(kind, resource_id))
    if text is not None:
        stmt = (stmt.where(C.text.ilike(f"%{_escape_like(text.lower())}%", escape="\\"))
                .order_by(C.created_at.desc(), C.id.desc())
                .offset((page_number - 1) * num_per_page).limit(num_per_page))
    else:
        stmt = stmt.order_by(C.created_at, C.id)
    mine = _caller_groups(session, principal)
    return [comment_to_dict(c, kind, mine) for c in session.execute(stmt).scalars()]


def _escape_like(s: str) -> str:
    return s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _find(session: Session, principal: Principal, kind: str, resource_id: str, comment_id: int):
    C, _, col = KINDS[kind]
    coerce(kind, resource_id)
    c = session.execute(sa.select(C).where(C.id == comment_id, _readable(kind, principal))).scalar()
    if c is None:
        raise PermissionDenied("Could not find any accessible comments.")
    if str(getattr(c, col)) != resource_id:
        raise ValidationError(f"Comment resource ID does not match resource ID given in path ({resource_id})")
    return c


def get_comment(session: Session, principal: Principal, kind: str, resource_id: str, comment_id: int) -> dict:
    c = _find(session, principal, kind, resource_id, comment_id)
    return comment_to_dict(c, kind, _caller_groups(session, principal))


def _attachment(raw) -> tuple[str, bytes] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or "body" not in raw or "name" not in raw:
        raise ValidationError("Malformed comment attachment", field="attachment")
    if raw["body"] is None:
        raise ValidationError("Comment attachment body is empty", field="attachment.body")
    if not isinstance(raw["body"], str) or not isinstance(raw["name"], str) or not raw["name"].strip():
        raise ValidationError("Malformed comment attachment: body and name must be strings", field="attachment")
    try:
        data = base64.b64decode("".join(raw["body"].split("base64,")[-1].split()), validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError("Invalid comment attachment: body is not base64", field="attachment.body") from None
    if len(data) > MAX_ATTACHMENT:
        raise ValidationError(f"Invalid comment attachment: larger than {MAX_ATTACHMENT // 2**20} MB",
                              field="attachment.body")
    return raw["name"], data


def _default_groups(session: Session, principal: Principal, group_ids, sitewide_group: str) -> list[models.Group]:
    if isinstance(group_ids, list) and group_ids:
        return groups_named(session, principal, group_ids)
    public = session.execute(sa.select(models.Group).where(models.Group.name == sitewide_group)).scalar()
    if public is None:
        raise ValidationError(f'No group_ids were specified and the public group "{sitewide_group}" does not exist. '
                              f"Cannot post comment", field="group_ids")
    return [public]


def post_comment(session: Session, principal: Principal, kind: str, resource_id: str, body: dict,
                 sitewide_group: str) -> dict:
    """The new comment's id; the same comment again (same text, attachment, author and groups) is not
    stored twice: its id comes back with SkyPortal's "Same comment already exists." message."""
    C, _, col = KINDS[kind]
    rid = coerce(kind, resource_id)
    attachment = _attachment(body.get("attachment"))
    groups = _default_groups(session, principal, body.get("group_ids"), sitewide_group)
    if kind == "sources":
        if session.execute(sa.select(models.Obj.id).where(models.Obj.id == rid,
                                                          visible_obj_clause(principal))).first() is None:
            raise ValidationError(f"Error posting comment for sources {resource_id}: no object '{resource_id}'",
                                  field="obj_id")
        obj_id, extra = rid, {"channel": body.get("channel") or None}
    else:
        Sp = models.Spectrum
        obj_id = session.execute(sa.select(Sp.obj_id).where(Sp.id == rid, spectrum_visible_clause(principal),
                                                            visible_obj_clause(principal, Sp.obj_id))).scalar()
        if obj_id is None:
            raise ValidationError(f"Could not find any accessible spectra with ID {rid}.", field="spectrum_id")
        extra = {"spectrum_id": rid}
    name, data = attachment if attachment else (None, None)
    same = sa.select(C).options(undefer(C.attachment_bytes)).where(
        C.text == body["text"], getattr(C, col) == rid, C.author_id == principal.user_id, C.bot.is_(True),
        C.attachment_name.is_(None) if name is None else C.attachment_name == name)
    if kind == "sources":
        same = same.where(C.channel.is_(None) if extra["channel"] is None else C.channel == extra["channel"])
    wanted = {g.id for g in groups}
    for existing in session.execute(same).scalars():
        if existing.attachment_bytes == data and {g.id for g in existing.groups} == wanted:
            return {"comment_id": existing.id, "message": "Same comment already exists."}
    c = C(text=body["text"], obj_id=obj_id, author_id=principal.user_id, bot=True, attachment_name=name,
          attachment_bytes=data, **extra)
    c.groups = groups
    session.add(c)
    session.flush()
    return {"comment_id": c.id}


def _check_author(c, principal: Principal) -> None:
    if not principal.is_admin and c.author_id != principal.user_id:
        # SkyPortal's update/delete access is the author's only: anyone else finds nothing to change
        raise PermissionDenied("Could not find any accessible comments.")


def update_comment(session: Session, principal: Principal, kind: str, resource_id: str, comment_id: int,
                   body: dict) -> None:
    c = _find(session, principal, kind, resource_id, comment_id)
    _check_author(c, principal)
    attachment = _attachment(body.get("attachment")) if body.get("attachment") else None
    if "text" in body:
        c.text = body["text"]
    if attachment:
        c.attachment_name, c.attachment_bytes = attachment
    if isinstance(body.get("group_ids"), list) and body["group_ids"]:
        c.groups = groups_named(session, principal, body["group_ids"])
    c.modified = models.utcnow()
    session.flush()


def delete_comment(session: Session, principal: Principal, kind: str, resource_id: str, comment_id: int) -> None:
    c = _find(session, principal, kind, resource_id, comment_id)
    _check_author(c, principal)
    session.delete(c)
    session.flush()


def get_attachment(session: Session, principal: Principal, kind: str, resource_id: str,
                   comment_id: int) -> tuple[str, bytes]:
    c = _find(session, principal, kind, resource_id, comment_id)
    C = KINDS[kind][0]
    data = session.execute(sa.select(C.attachment_bytes).where(C.id == c.id)).scalar()
    if data is None:
        raise ValidationError("Comment has no attachment")
    name = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else " " for ch in (c.attachment_name or ""))
    return name, data


def channels(session: Session, principal: Principal, obj_id: str) -> list[str]:
    """The named conversations on a source the caller can read a comment of."""
    C = models.Comment
    return sorted(session.execute(sa.select(C.channel).distinct().where(
        C.obj_id == obj_id, C.channel.is_not(None), _readable("sources", principal))).scalars())


def delete_channel(session: Session, principal: Principal, obj_id: str, channel: str | None) -> int:
    """Delete a conversation and every comment in it: its opener (the author of its first comment) or a
    system admin only, as SkyPortal."""
    C = models.Comment
    if not channel:
        raise ValidationError("`channel` must be provided", field="channel")
    opener = session.execute(sa.select(C.author_id).where(C.obj_id == obj_id, C.channel == channel)
                             .order_by(C.created_at, C.id).limit(1)).scalar()
    ids = list(session.execute(sa.select(C.id).where(C.obj_id == obj_id, C.channel == channel,
                                                     _readable("sources", principal))).scalars())
    if opener is None or not ids:
        raise ValidationError("Invalid channel", field="channel")
    if not principal.is_admin and opener != principal.user_id:
        raise PermissionDenied("Only the user who opened this conversation can delete it")
    session.execute(sa.delete(C).where(C.id.in_(ids)))
    return len(ids)


# -- for other resources' payloads ------------------------------------------------------------

def comments_of_objs(session: Session, principal: Principal, obj_ids) -> dict[str, list[dict]]:
    """Each object's readable main-thread comments, newest first, with ``author`` and ``groups`` (the
    ``comments`` of ``GET /api/sources/{obj_id}?includeComments=true``)."""
    C = models.Comment
    out: dict[str, list] = {o: [] for o in obj_ids}
    mine = _caller_groups(session, principal)
    rows = session.execute(sa.select(C).options(selectinload(C.groups))
                           .where(C.obj_id.in_(list(obj_ids)), C.channel.is_(None),
                                              _readable("sources", principal))
                           .order_by(C.created_at.desc(), C.id.desc())).scalars()
    for c in rows:
        out[c.obj_id].append(comment_to_dict(c, "sources", mine))
    return out


def comments_of_spectra(session: Session, principal: Principal, spectrum_ids) -> dict[int, list[dict]]:
    C = models.CommentOnSpectrum
    out: dict[int, list] = {s: [] for s in spectrum_ids}
    mine = _caller_groups(session, principal)
    rows = session.execute(sa.select(C).options(selectinload(C.groups))
                           .where(C.spectrum_id.in_(list(spectrum_ids)), _readable("spectra", principal))
                           .order_by(C.created_at.desc(), C.id.desc())).scalars()
    for c in rows:
        out[c.spectrum_id].append(comment_to_dict(c, "spectra", mine))
    return out


def comment_filter_clause(principal: Principal, texts: list[str] | None, authors: list[str] | None,
                          before: datetime | None, after: datetime | None):
    """SQL condition on spectra: one readable comment on it matches the author and text filters and
    the time range (SkyPortal's commentsFilter* of ``GET /api/spectra``)."""
    C = models.CommentOnSpectrum
    cond = [C.spectrum_id == models.Spectrum.id, _readable("spectra", principal)]
    if before is not None:
        cond.append(C.created_at <= before)
    if after is not None:
        cond.append(C.created_at >= after)
    if texts:
        cond.append(sa.or_(*[C.text.contains(t, autoescape=True) for t in texts]))
    if authors:
        cond.append(C.author_id.in_(sa.select(models.User.id).where(
            sa.or_(*[models.User.username.contains(a, autoescape=True) for a in authors]))))
    return sa.exists().where(*cond)


def _has_comments(principal: Principal):
    C = models.Comment
    return sa.exists().where(C.obj_id == models.Obj.id, _readable("sources", principal))


# ``comments`` / ``comment_exists`` of source answers (see broker.objects.objs's hooks)
register_details("comments", comments_of_objs)
register_exists("comments", _has_comments)
