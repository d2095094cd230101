"""Groups: creation, membership and stream access, with SkyPortal's rules.

Who may do what (as SkyPortal):

* every user sees every group that is not private (``GET /api/groups`` ``all_groups``, ``GET /api/groups/{id}``);
  a private group only its members, System admins and holders of "Manage groups";
* a group's admins (and System admins, and holders of "Manage groups") update it, add and remove members,
  change their ``admin`` / ``canSave`` / ``canSharePhotometry`` flags, and give it streams;
* a user joins a group only if they can read every stream of the group, and a stream joins a group only if
  every member can read it;
* anyone may leave a group; nobody is removed from, or added to, a single-user group; the sitewide group and
  single-user groups are never deleted.

SkyPortal answers 400 for a group the caller cannot find or update (403 for delete), so do we.
"""

from __future__ import annotations

import functools

import sqlalchemy as sa
from sqlalchemy.orm import Session

import models

from broker.access.auth import Principal, caller_sql, membership
from broker.errors import Conflict, PermissionDenied, ValidationError
from broker.runtime.db import fetch

# the user fields SkyPortal lists for a group's members (no User.groups: no cycle)
MEMBER_FIELDS = ("id", "username", "first_name", "last_name", "contact_email", "contact_phone", "oauth_uid")


def group_to_dict(group: models.Group, *, members: bool = False) -> dict:
    """The group's columns; with ``members``, also its users and streams (kept for other callers)."""
    out = group.to_dict()
    if members:
        out["users"] = member_dicts(group)
        out["streams"] = [s.to_dict() for s in sorted(group.streams, key=lambda s: s.id)]
    return out


def member_dicts(group: models.Group) -> list[dict]:
    return [
        {**{f: getattr(gu.user, f, None) for f in MEMBER_FIELDS}, "admin": gu.admin, "can_save": gu.can_save,
         "can_share_photometry": gu.can_share_photometry}
        for gu in sorted(group.group_users, key=lambda gu: gu.user_id)
    ]


def manages_groups(principal: Principal) -> bool:
    return principal.has("Manage groups")


def visible_groups(principal: Principal) -> sa.Select:
    """Groups the caller may see: every non-private group, and private ones they belong to (all for a
    System admin or a holder of "Manage groups")."""
    stmt = sa.select(models.Group)
    if not manages_groups(principal):
        stmt = stmt.where(sa.or_(
            models.Group.private.is_(False),
            models.Group.id.in_(sa.select(models.GroupUser.group_id)
                                .where(models.GroupUser.user_id == principal.user_id))))
    return stmt


def _by_name(groups) -> list:
    return sorted(groups, key=lambda g: g.name.lower())


def group_detail(session: Session, principal: Principal, group_id: int, include_users: bool = True) -> dict:
    """``GET /api/groups/{id}``: the group with ``users`` (unless not asked), ``streams`` and ``filters``.

    Members' contact details and the group's filters go to its members, System admins and holders of
    "Manage groups" / "Manage users" only; others seeing a non-private group get its columns and streams."""
    group = session.execute(visible_groups(principal).where(models.Group.id == group_id)).scalar()
    if group is None:
        raise ValidationError(f"Cannot find Group with id {group_id}")
    insider = (manages_groups(principal) or principal.has("Manage users")
               or membership(session, principal, group_id) is not None)
    out = group.to_dict()
    if include_users and insider:
        out["users"] = member_dicts(group)
    out["streams"] = [s.to_dict() for s in sorted(group.streams, key=lambda s: s.id)]
    out["filters"] = [f.to_dict() for f in group.filters] if insider else []
    return out


def groups_named(session: Session, principal: Principal, name: str) -> list[dict]:
    """``GET /api/groups?name=``: the visible groups with exactly this name."""
    rows = session.execute(visible_groups(principal).where(models.Group.name == name)).scalars()
    return [g.to_dict() for g in rows]


def list_groups(session: Session, principal: Principal, include_single_user: bool = False) -> dict:
    """SkyPortal's shape: ``user_groups`` (member of, single-user group included), ``user_accessible_groups``
    (member of, or all for a System admin; never single-user groups) and ``all_groups`` (every visible group,
    with its streams' id and name; single-user groups only with ``includeSingleUserGroups``). One query
    (hand-written: every scanner page asks for it): each group the caller belongs to or sees, flagged."""
    G = models.Group
    visible = "true" if manages_groups(principal) else _visible_groups_sql()
    rows = fetch(session, f"""
        SELECT {G.columns_sql("groups")},
               EXISTS (SELECT 1 FROM group_users gu WHERE gu.group_id = groups.id AND gu.user_id = %(uid)s),
               ({visible}),
               (SELECT coalesce(json_agg(json_build_array(st.id, st.name) ORDER BY st.id), '[]'::json)
                FROM group_streams gs JOIN streams st ON st.id = gs.stream_id WHERE gs.group_id = groups.id)
        FROM groups
        WHERE EXISTS (SELECT 1 FROM group_users gu WHERE gu.group_id = groups.id AND gu.user_id = %(uid)s)
           OR (({visible}) AND (%(single)s OR NOT groups.single_user_group))""",
                 {"uid": principal.user_id, "single": include_single_user}, prepare=True)
    n = len(G.public_keys())
    mine, accessible, everything = [], [], []
    for row in rows:
        group, member, seen, streams = G.dict_of(row), row[n], row[n + 1], row[n + 2]
        single = group["single_user_group"]
        if member:
            mine.append(group)
        if not single and (member or principal.is_admin):
            accessible.append(group)
        if seen and (include_single_user or not single):
            everything.append({**group, "streams": [{"id": i, "name": name} for i, name in streams]})
    return {"user_groups": _by_name_dicts(mine), "user_accessible_groups": _by_name_dicts(accessible),
            "all_groups": _by_name_dicts(everything)}


def _by_name_dicts(groups: list[dict]) -> list[dict]:
    return sorted(groups, key=lambda g: g["name"].lower())


@functools.lru_cache(maxsize=None)
def _visible_groups_sql() -> str:
    """Groups a caller who does not manage groups sees, as SQL text (parameter ``uid``)."""
    return caller_sql(lambda p: visible_groups(p).whereclause, models.Group.__table__)


def public_group(session: Session, sitewide_name: str) -> dict:
    group = session.execute(sa.select(models.Group).where(models.Group.name == sitewide_name)).scalar()
    if group is None:
        raise ValidationError("Public group does not exist")
    return group.to_dict()


def _check_unique(session: Session, name: str | None, nickname: str | None, exclude: int | None = None):
    for field, value in (("name", name), ("nickname", nickname)):
        if value is None:
            continue
        col = getattr(models.Group, field)
        stmt = sa.select(models.Group.id).where(col == value)
        if exclude is not None:
            stmt = stmt.where(models.Group.id != exclude)
        if session.execute(stmt).first():
            raise Conflict(f"Group with {field} {value} already exists. Please select a new one.", field=field)


def create_group(session: Session, principal: Principal, body: dict) -> models.Group:
    """Create a group; the creator and ``group_admins`` become its admins."""
    if not body["name"].strip():
        raise ValidationError("Missing required parameter: `name` (must not be empty)", field="name")
    _check_unique(session, body["name"], body.get("nickname") or None)
    group = models.Group(
        name=body["name"], nickname=body.get("nickname") or None, description=body.get("description") or None,
        private=body.get("private", False), auto_accept_requests=body.get("auto_accept_requests", False),
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


def is_group_admin(session: Session, principal: Principal, group_id: int) -> bool:
    """A System admin, a holder of "Manage groups", or an admin member of the group."""
    if manages_groups(principal):
        return True
    gu = membership(session, principal, group_id)
    return gu is not None and gu.admin


def _managed_group(session: Session, principal: Principal, group_id: int, missing: str) -> models.Group:
    """The group, if the caller may manage it; else a 400 with ``missing`` (SkyPortal cannot tell the two
    apart either: its update query finds no such group)."""
    group = session.get(models.Group, group_id)
    if group is None or not is_group_admin(session, principal, group_id):
        raise ValidationError(f"{missing}: no such group, or you are not one of its admins")
    return group


def update_group(session: Session, principal: Principal, group_id: int, body: dict,
                 sitewide_name: str) -> models.Group:
    group = _managed_group(session, principal, group_id, f"Cannot find Group with id {group_id}")
    if group.name == sitewide_name and body.get("name", group.name) != group.name:
        # every user joins it by this name (admin.sitewide_group): renamed, it would be lost
        raise ValidationError("Invalid field 'name': the sitewide group cannot be renamed", field="name")
    if "name" in body and not body["name"].strip():
        raise ValidationError("Invalid field 'name': must not be empty", field="name")
    _check_unique(session, body.get("name"), body.get("nickname"), exclude=group.id)
    for key, value in body.items():
        setattr(group, key, value)
    session.flush()
    return group


def delete_group(session: Session, principal: Principal, group_id: int, sitewide_name: str) -> None:
    """Group admins delete their group; never the sitewide group nor a single-user group (403, as SkyPortal)."""
    group = session.get(models.Group, group_id)
    if group is None or not is_group_admin(session, principal, group_id):
        raise PermissionDenied(f"Cannot find Group with id {group_id}: no such group, or you are not one of "
                               "its admins")
    if group.name == sitewide_name:
        raise PermissionDenied(f"Cannot find Group with id {group_id} to delete: the sitewide group cannot be "
                               "deleted")
    if group.single_user_group:
        raise PermissionDenied(f"Cannot find Group with id {group_id} to delete: a single-user group cannot be "
                               "deleted")
    session.delete(group)
    session.flush()


def _missing_stream_for(session: Session, group_id: int, user_id: int) -> int | None:
    """A stream of the group the user cannot read, if any."""
    return session.execute(
        sa.select(models.group_streams.c.stream_id)
        .where(models.group_streams.c.group_id == group_id,
               ~sa.exists().where(models.StreamUser.user_id == user_id,
                                  models.StreamUser.stream_id == models.group_streams.c.stream_id))
        .order_by(models.group_streams.c.stream_id).limit(1)
    ).scalar()


def add_member(session: Session, principal: Principal, group_id: int, user_id: int,
               admin: bool, can_save: bool, can_share_photometry: bool = False) -> models.GroupUser:
    group = _managed_group(session, principal, group_id, f"Group with ID {group_id} not accessible")
    if group.single_user_group:
        raise ValidationError(f"Cannot add users to group {group_id}. It is a single user group.")
    user = session.get(models.User, user_id)
    if user is None:
        raise ValidationError(f"User with ID {user_id} not accessible", field="userID")
    missing = _missing_stream_for(session, group_id, user_id)
    if missing is not None:
        raise PermissionDenied(f"User with ID {user_id} ({user.username}) does not have stream access with ID "
                               f"{missing}. Please contact a super-admin to grant access.")
    if membership(session, Principal(user_id, "", "", frozenset()), group_id) is not None:
        raise Conflict(f"User {user_id} is already a member of group {group_id}.", field="userID")
    gu = models.GroupUser(group_id=group_id, user_id=user_id, admin=admin, can_save=can_save,
                          can_share_photometry=can_share_photometry)
    session.add(gu)
    session.flush()
    return gu


def add_members_from_groups(session: Session, principal: Principal, group_id: int,
                            from_group_ids: list[int]) -> list[int]:
    """``usersFromGroups``: every member of ``from_group_ids`` (groups the caller can see) joins the group as a
    non-admin; returns the ids of those added."""
    group = _managed_group(session, principal, group_id, "Cannot access group with given ID")
    if group.single_user_group:
        raise ValidationError(f"Cannot add users to group {group_id}. It is a single user group.")
    wanted = list(dict.fromkeys(from_group_ids))
    found = set(session.execute(
        visible_groups(principal).where(models.Group.id.in_(wanted)).with_only_columns(models.Group.id)).scalars())
    if found != set(wanted):
        raise ValidationError("Cannot access one or more groups with given by fromGroupIDs: "
                              f"{sorted(set(wanted) - found)}", field="fromGroupIDs")
    user_ids = sorted(set(session.execute(
        sa.select(models.GroupUser.user_id).where(models.GroupUser.group_id.in_(wanted))).scalars()) - set(
        session.execute(sa.select(models.GroupUser.user_id).where(models.GroupUser.group_id == group_id)).scalars()))
    for uid in user_ids:
        missing = _missing_stream_for(session, group_id, uid)
        if missing is not None:
            raise PermissionDenied(f"User with ID {uid} does not have stream access with ID {missing}. "
                                   "Please contact a super-admin to grant access.")
        session.add(models.GroupUser(group_id=group_id, user_id=uid, admin=False, can_save=True))
    session.flush()
    return user_ids


def update_member(session: Session, principal: Principal, group_id: int, user_id: int,
                  changes: dict) -> models.GroupUser:
    """Group admins change a member's flags; others are told the member does not exist (400, as SkyPortal)."""
    gu = session.execute(
        sa.select(models.GroupUser).where(models.GroupUser.group_id == group_id,
                                          models.GroupUser.user_id == user_id)
    ).scalar()
    if gu is None or not is_group_admin(session, principal, group_id):
        raise ValidationError(f"User {user_id} is not a member of group {group_id} (or you are not one of its "
                              "admins).", field="userID")
    for key, value in changes.items():
        setattr(gu, key, value)
    session.flush()
    return gu


def remove_member(session: Session, principal: Principal, group_id: int, user_id: int) -> None:
    """Anyone may leave a group, its admins may remove others; nobody leaves a single-user group (403)."""
    group = session.get(models.Group, group_id)
    if group is not None and group.single_user_group:
        raise PermissionDenied("Cannot remove a user from their single user group.")
    gu = None if group is None else membership(session, Principal(user_id, "", "", frozenset()), group_id)
    if gu is None or (user_id != principal.user_id and not is_group_admin(session, principal, group_id)):
        raise PermissionDenied(f"GroupUser does not exist: user {user_id} is not a member of group {group_id}, "
                               "or you are not one of its admins.")
    session.delete(gu)
    session.flush()


def add_stream(session: Session, principal: Principal, group_id: int, stream_id: int) -> None:
    """Give a group a stream: every member must be able to read it (403 otherwise, as SkyPortal)."""
    group = _managed_group(session, principal, group_id, f"Group with ID {group_id} not accessible")
    if group.single_user_group:
        raise ValidationError(f"Cannot add streams to group {group_id}. It is a single user group.")
    if session.get(models.Stream, stream_id) is None:
        raise ValidationError(f"Invalid stream_id: no stream with ID {stream_id}", field="stream_id")
    lacking = session.execute(
        sa.select(sa.func.count()).select_from(models.GroupUser)
        .where(models.GroupUser.group_id == group_id,
               ~sa.exists().where(models.StreamUser.user_id == models.GroupUser.user_id,
                                  models.StreamUser.stream_id == stream_id))
    ).scalar()
    if lacking:
        raise PermissionDenied(f"Not all users have stream access with ID {stream_id} ({lacking} member(s) of "
                               f"group {group_id} cannot read it)")
    if session.execute(sa.select(models.group_streams.c.stream_id).where(
            models.group_streams.c.group_id == group_id, models.group_streams.c.stream_id == stream_id)).first():
        raise Conflict("Specified stream is already associated with this group.", field="stream_id")
    session.execute(sa.insert(models.group_streams).values(group_id=group_id, stream_id=stream_id))
    session.expire(group, ["streams"])


def remove_stream(session: Session, principal: Principal, group_id: int, stream_id: int) -> None:
    """Take a stream from a group; not while one of the group's filters runs on it (400, as SkyPortal)."""
    _managed_group(session, principal, group_id, f"No stream IDs with ID {stream_id} accessible in group {group_id}")
    if session.execute(sa.select(models.Filter.id).where(models.Filter.group_id == group_id,
                                                         models.Filter.stream_id == stream_id)).first():
        raise ValidationError(f"No stream IDs with ID {stream_id} accessible: group {group_id} has filters on "
                              "it; delete them first")
    deleted = session.execute(sa.delete(models.group_streams).where(
        models.group_streams.c.group_id == group_id, models.group_streams.c.stream_id == stream_id)).rowcount
    if not deleted:
        raise ValidationError(f"No stream IDs with ID {stream_id} accessible: group {group_id} has no such stream")
