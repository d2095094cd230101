"""Groups: creation, membership and stream access."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

import models

from broker.access.auth import (Principal, get_readable_group, get_readable_stream, membership,
                     readable_groups, require_group_admin)
from broker.errors import Conflict, NotFound, ValidationError


def group_to_dict(group: models.Group, *, members: bool = False) -> dict:
    out = group.to_dict()
    if members:
        out["users"] = [
            {**gu.user.to_dict(), "admin": gu.admin, "can_save": gu.can_save}
            for gu in sorted(group.group_users, key=lambda gu: gu.user_id)
        ]
        out["streams"] = [s.to_dict() for s in sorted(group.streams, key=lambda s: s.id)]
    return out


def list_groups(session: Session, principal: Principal, include_single_user: bool = False) -> dict:
    """SkyPortal's shape: ``user_groups`` (member of) and ``user_accessible_groups`` (may read)."""
    mine = session.execute(
        sa.select(models.Group)
        .join(models.GroupUser, models.GroupUser.group_id == models.Group.id)
        .where(models.GroupUser.user_id == principal.user_id)
        .order_by(models.Group.name)
    ).scalars().all()
    stmt = readable_groups(principal).order_by(models.Group.name)
    accessible = session.execute(stmt).scalars().all()
    if not include_single_user:
        mine = [g for g in mine if not g.single_user_group]
        accessible = [g for g in accessible if not g.single_user_group]
    out = {
        "user_groups": [group_to_dict(g) for g in mine],
        "user_accessible_groups": [group_to_dict(g) for g in accessible],
    }
    if principal.is_admin:
        out["all_groups"] = out["user_accessible_groups"]
    return out


def _check_unique(session: Session, name: str | None, nickname: str | None, exclude: int | None = None):
    for field, value in (("name", name), ("nickname", nickname)):
        if value is None:
            continue
        col = getattr(models.Group, field)
        stmt = sa.select(models.Group.id).where(col == value)
        if exclude is not None:
            stmt = stmt.where(models.Group.id != exclude)
        if session.execute(stmt).first():
            raise Conflict(f"A group with {field} '{value}' already exists", field=field)


def create_group(session: Session, principal: Principal, body: dict) -> models.Group:
    """Create a group; the creator and ``group_admins`` become its admins."""
    if not body["name"].strip():
        raise ValidationError("Invalid field 'name': must not be empty", field="name")
    _check_unique(session, body["name"], body.get("nickname"))
    group = models.Group(
        name=body["name"], nickname=body.get("nickname"), description=body.get("description"),
        private=body.get("private", False),
    )
    session.add(group)
    session.flush()
    admins = {principal.user_id, *body.get("group_admins", [])}
    for uid in sorted(admins):
        if session.get(models.User, uid) is None:
            raise ValidationError(f"Invalid group_admins: no user with ID {uid}", field="group_admins")
        session.add(models.GroupUser(group_id=group.id, user_id=uid, admin=True, can_save=True))
    session.flush()
    return group


def update_group(session: Session, principal: Principal, group_id: int, body: dict,
                 sitewide_name: str) -> models.Group:
    group = get_readable_group(session, principal, group_id)
    require_group_admin(session, principal, group)
    if group.name == sitewide_name and body.get("name", group.name) != group.name:
        # every user joins it by this name (admin.sitewide_group): renamed, it would be lost
        raise ValidationError("Invalid field 'name': the sitewide group cannot be renamed", field="name")
    _check_unique(session, body.get("name"), body.get("nickname"), exclude=group.id)
    for key, value in body.items():
        setattr(group, key, value)
    session.flush()
    return group


def delete_group(session: Session, principal: Principal, group_id: int, sitewide_name: str) -> None:
    group = get_readable_group(session, principal, group_id)
    require_group_admin(session, principal, group)
    if group.name == sitewide_name:
        raise ValidationError("The sitewide group cannot be deleted")
    session.delete(group)
    session.flush()


def add_member(session: Session, principal: Principal, group_id: int, user_id: int,
               admin: bool, can_save: bool) -> models.GroupUser:
    group = get_readable_group(session, principal, group_id)
    require_group_admin(session, principal, group)
    if session.get(models.User, user_id) is None:
        raise ValidationError(f"Invalid userID: no user with ID {user_id}", field="userID")
    gu = session.execute(
        sa.select(models.GroupUser).where(models.GroupUser.group_id == group_id,
                                          models.GroupUser.user_id == user_id)
    ).scalar()
    if gu is not None:
        raise Conflict(f"User {user_id} is already a member of group {group_id}", field="userID")
    gu = models.GroupUser(group_id=group_id, user_id=user_id, admin=admin, can_save=can_save)
    session.add(gu)
    session.flush()
    return gu


def update_member(session: Session, principal: Principal, group_id: int, user_id: int,
                  changes: dict) -> models.GroupUser:
    group = get_readable_group(session, principal, group_id)
    require_group_admin(session, principal, group)
    gu = session.execute(
        sa.select(models.GroupUser).where(models.GroupUser.group_id == group_id,
                                          models.GroupUser.user_id == user_id)
    ).scalar()
    if gu is None:
        raise NotFound(f"User {user_id} is not a member of group {group_id}")
    for key, value in changes.items():
        setattr(gu, key, value)
    session.flush()
    return gu


def remove_member(session: Session, principal: Principal, group_id: int, user_id: int) -> None:
    group = get_readable_group(session, principal, group_id)
    if user_id != principal.user_id:  # anyone may leave a group
        require_group_admin(session, principal, group)
    if group.single_user_group:
        raise ValidationError("Members cannot be removed from a single-user group")
    gu = membership(session, Principal(user_id, "", "", frozenset()), group_id)
    if gu is None:
        raise NotFound(f"User {user_id} is not a member of group {group_id}")
    session.delete(gu)
    session.flush()


def add_stream(session: Session, principal: Principal, group_id: int, stream_id: int) -> None:
    """Give a group access to a stream; the caller must be able to read the stream."""
    group = get_readable_group(session, principal, group_id)
    require_group_admin(session, principal, group)
    stream = get_readable_stream(session, principal, stream_id)
    if stream in group.streams:
        raise Conflict(f"Group {group_id} already has access to stream {stream_id}", field="stream_id")
    group.streams.append(stream)
    session.flush()


def remove_stream(session: Session, principal: Principal, group_id: int, stream_id: int) -> None:
    group = get_readable_group(session, principal, group_id)
    require_group_admin(session, principal, group)
    for stream in group.streams:
        if stream.id == stream_id:
            if session.execute(
                sa.select(models.Filter.id).where(models.Filter.group_id == group_id,
                                                  models.Filter.stream_id == stream_id)
            ).first():
                raise ValidationError(
                    f"Group {group_id} has filters on stream {stream_id}: delete them first"
                )
            group.streams.remove(stream)
            session.flush()
            return
    raise NotFound(f"Group {group_id} has no access to stream {stream_id}")
