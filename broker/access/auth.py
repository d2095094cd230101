"""Authentication (API tokens) and authorisation (ACLs, row-level access by group)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

import models

from broker.errors import NotFound, PermissionDenied, Unauthenticated, ValidationError
from broker.runtime.db import fetch, literal_sql

_AUTH_RE = re.compile(r"^\s*token\s+(\S+)\s*$", re.IGNORECASE)


class MissingACL(PermissionDenied):
    """The caller lacks an ACL an endpoint needs: SkyPortal's ``permissions`` decorator answers 401."""

    status = 401


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's owner, with the token's effective ACLs."""

    user_id: int
    username: str
    token_id: str
    permissions: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return "System admin" in self.permissions

    def has(self, acl: str) -> bool:
        return self.is_admin or acl in self.permissions

    def require(self, *acls: str) -> None:
        """Raise MissingACL (401, as SkyPortal's ``permissions`` decorator) naming the first ACL the caller lacks."""
        for acl in acls:
            if not self.has(acl):
                raise MissingACL(f"Insufficient permissions: this action needs the '{acl}' ACL")


def authenticate(session: Session | sa.Connection, header: str | None) -> Principal:
    """Resolve an ``Authorization: token <uuid>`` header (scheme case-insensitive). ``session``: a Session,
    or a Connection (the API's is in autocommit: one round trip, no transaction to begin and end)."""
    if not header:
        raise Unauthenticated("Authentication required: send 'Authorization: token <token_id>'")
    m = _AUTH_RE.match(header)
    if not m:
        raise Unauthenticated("Malformed Authorization header: expected 'token <token_id>'")
    token_id = m.group(1)
    try:
        uuid.UUID(token_id)
    except ValueError:
        raise Unauthenticated("Invalid token") from None
    rows = fetch(session, _TOKEN_OWNER, {"t": token_id}, prepare=True)
    row = rows[0] if rows else None
    if row is None:
        raise Unauthenticated("Invalid token")
    user_id, username, expiration, token_acls, owner_acls = row
    if expiration is not None and expiration < models.utcnow():
        raise PermissionDenied("User account expired")  # 403, as SkyPortal
    # a token's ACLs, never more than its owner holds now (models.Token.permissions, in one query)
    mine, owner = set(token_acls), set(owner_acls)
    return Principal(user_id=user_id, username=username, token_id=token_id,
                     permissions=frozenset(mine if "System admin" in owner else mine & owner))


# Every request authenticates: one round trip for the token, its owner and both ACL sets (prepared once
# per connection: planning it was most of its cost).
_TOKEN_OWNER = """
    SELECT u.id, u.username, u.expiration_date,
           ARRAY(SELECT ta.acl_id FROM token_acls ta WHERE ta.token_id = t.id),
           ARRAY(SELECT ua.acl_id FROM user_acls ua WHERE ua.user_id = u.id
                 UNION SELECT ra.acl_id FROM user_roles ur JOIN role_acls ra ON ra.role_id = ur.role_id
                 WHERE ur.user_id = u.id)
    FROM tokens t JOIN users u ON u.id = t.created_by_id
    WHERE t.id = %(t)s
"""


# -- a caller's conditions as SQL text, for hand-written queries -----------------------------------------
# Made once for every non-admin caller: a condition is compiled for a user id no one has, which is then
# replaced by the ``%(uid)s`` parameter; so one prepared statement per shape serves every user.

_NOBODY = -734219053
_PROBE = Principal(user_id=_NOBODY, username="", token_id="", permissions=frozenset())


def caller_sql(clause_of, table) -> str:
    """``clause_of(principal)`` (a non-admin caller's condition on ``table``) as SQL text whose user id
    is the ``%(uid)s`` parameter."""
    text = literal_sql(clause_of(_PROBE), table)
    if str(-_NOBODY) in text.replace(str(_NOBODY), ""):
        raise ValueError("the user id appears in a form that cannot be made a parameter")
    return text.replace(str(_NOBODY), "%(uid)s")


def readable_groups(principal: Principal) -> sa.Select:
    """Groups the caller may read: all for a system admin, else those they belong to."""
    stmt = sa.select(models.Group)
    if not principal.is_admin:
        stmt = stmt.where(
            models.Group.id.in_(
                sa.select(models.GroupUser.group_id).where(models.GroupUser.user_id == principal.user_id)
            )
        )
    return stmt


def get_readable_group(session: Session, principal: Principal, group_id: int) -> models.Group:
    group = session.execute(readable_groups(principal).where(models.Group.id == group_id)).scalar()
    if group is None:
        raise NotFound(f"No group with ID {group_id}")
    return group


def readable_groups_named(session: Session, principal: Principal, group_ids, field: str) -> list[models.Group]:
    """Groups named in a request (each once: a repeated id is taken once): each must be readable, else a
    400 naming the field."""
    out = []
    for gid in dict.fromkeys(group_ids):
        group = session.execute(readable_groups(principal).where(models.Group.id == gid)).scalar()
        if group is None:
            raise ValidationError(f"Invalid {field}: no accessible group {gid}", field=field)
        out.append(group)
    return out


def membership(session: Session, principal: Principal, group_id: int) -> models.GroupUser | None:
    return session.execute(
        sa.select(models.GroupUser).where(
            models.GroupUser.group_id == group_id, models.GroupUser.user_id == principal.user_id
        )
    ).scalar()


def require_group_admin(session: Session, principal: Principal, group: models.Group) -> None:
    """Group admins, holders of "Manage groups" and system admins may manage a group."""
    if principal.has("Manage groups"):
        return
    gu = membership(session, principal, group.id)
    if gu is None or not gu.admin:
        raise PermissionDenied(
            f"Insufficient permissions: only admins of group {group.id} or holders of the "
            "'Manage groups' ACL may do this"
        )


def readable_streams(principal: Principal) -> sa.Select:
    stmt = sa.select(models.Stream)
    if not principal.is_admin:
        stmt = stmt.where(
            models.Stream.id.in_(
                sa.select(models.StreamUser.stream_id).where(models.StreamUser.user_id == principal.user_id)
            )
        )
    return stmt


def get_readable_stream(session: Session, principal: Principal, stream_id: int) -> models.Stream:
    stream = session.execute(readable_streams(principal).where(models.Stream.id == stream_id)).scalar()
    if stream is None:
        raise NotFound(f"No stream with ID {stream_id}")
    return stream


def readable_filters(principal: Principal) -> sa.Select:
    stmt = sa.select(models.Filter)
    if not principal.is_admin:
        stmt = stmt.where(
            models.Filter.group_id.in_(
                sa.select(models.GroupUser.group_id).where(models.GroupUser.user_id == principal.user_id)
            )
        )
    return stmt
