"""Users, their roles/ACLs and API tokens."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

import models
from models.enums import ACLS, ROLES

from broker.access.auth import Principal
from broker.errors import Conflict, NotFound, PermissionDenied, ValidationError


def _acls(session: Session, names) -> list[models.ACL]:
    """The ACLs named (each once, a repeat is ignored); 400 naming an unknown one."""
    out = []
    for name in dict.fromkeys(names):
        acl = session.get(models.ACL, name)
        if acl is None:
            raise ValidationError(f"Invalid ACL '{name}': must be one of {list(ACLS)}", field="acls")
        out.append(acl)
    return out


def _roles(session: Session, names) -> list[models.Role]:
    """The roles named (each once); 400 naming an unknown one."""
    out = []
    for name in dict.fromkeys(names):
        role = session.get(models.Role, name)
        if role is None:
            raise ValidationError(f"Invalid role '{name}': must be one of {list(ROLES)}", field="roles")
        out.append(role)
    return out


def sitewide_group(session: Session, name: str) -> models.Group:
    group = session.execute(sa.select(models.Group).where(models.Group.name == name)).scalar()
    if group is None:
        raise NotFound(f"The sitewide group '{name}' is missing: run 'skybroker db upgrade'")
    return group


def create_user(
    session: Session,
    *,
    username: str,
    sitewide_group_name: str,
    first_name: str | None = None,
    last_name: str | None = None,
    contact_email: str | None = None,
    affiliations: list[str] | None = None,
    roles: list[str] = ("Full user",),
    acls: list[str] = (),
    group_ids_and_admin: list[tuple[int, bool]] = (),
) -> models.User:
    """Create a user with a single-user group, membership of the sitewide group and of ``group_ids``."""
    if not username.strip():
        raise ValidationError("Invalid field 'username': must not be empty", field="username")
    if session.execute(sa.select(models.User.id).where(models.User.username == username)).first():
        raise Conflict(f"User '{username}' already exists", field="username")
    if session.execute(sa.select(models.Group.id).where(models.Group.name == username)).first():
        raise Conflict(f"A group named '{username}' already exists", field="username")
    user = models.User(
        username=username, first_name=first_name, last_name=last_name,
        contact_email=contact_email, affiliations=list(affiliations or []),
        roles=_roles(session, roles), acls=_acls(session, acls),
    )
    session.add(user)
    session.flush()
    single = models.Group(name=username, single_user_group=True, private=True)
    session.add(single)
    session.flush()
    session.add(models.GroupUser(group_id=single.id, user_id=user.id, admin=True, can_save=True))
    memberships = {sitewide_group(session, sitewide_group_name).id: False}
    for gid, admin in group_ids_and_admin:
        if session.get(models.Group, gid) is None:
            raise ValidationError(f"Invalid groupIDsAndAdmin: no group with ID {gid}", field="groupIDsAndAdmin")
        memberships[gid] = admin
    for gid, admin in memberships.items():
        session.add(models.GroupUser(group_id=gid, user_id=user.id, admin=admin, can_save=True))
    session.flush()
    return user


def user_to_dict(user: models.User, *, acls: bool = True) -> dict:
    out = user.to_dict()
    if acls:
        out["roles"] = sorted(r.id for r in user.roles)
        out["acls"] = sorted(a.id for a in user.acls)
        out["permissions"] = sorted(user.permissions)
    return out


def get_user(session: Session, principal: Principal, user_id: int) -> models.User:
    if user_id != principal.user_id and not principal.has("Manage users"):
        # Not revealing whether the user exists.
        raise NotFound(f"No user with ID {user_id}")
    user = session.get(models.User, user_id)
    if user is None:
        raise NotFound(f"No user with ID {user_id}")
    return user


def check_can_place(session: Session, principal: Principal, group_ids_and_admin) -> None:
    """A new user goes only into groups the caller administers (any group, for a System admin); an
    unknown group and another group answer alike."""
    from broker.access.auth import get_readable_group, require_group_admin
    from broker.errors import NotFound

    if principal.is_admin:
        return
    for gid, _ in group_ids_and_admin:
        try:
            require_group_admin(session, principal, get_readable_group(session, principal, gid))
        except (NotFound, PermissionDenied):
            raise ValidationError(f"Invalid groupIDsAndAdmin: no group with ID {gid} that you administer",
                                  field="groupIDsAndAdmin") from None


def single_user_group(session: Session, user: models.User) -> models.Group | None:
    """The user's own group: single-user, of the user's name, with the user in it."""
    return session.execute(sa.select(models.Group).where(
        models.Group.single_user_group, models.Group.name == user.username,
        models.Group.id.in_(sa.select(models.GroupUser.group_id).where(models.GroupUser.user_id == user.id)))
    ).scalar()


def update_user(session: Session, principal: Principal, user_id: int, changes: dict) -> models.User:
    user = get_user(session, principal, user_id)
    if user.id != principal.user_id:
        _check_target(principal, user)
    if "username" in changes and not principal.has("Manage users"):
        raise PermissionDenied("Insufficient permissions: changing a username needs the 'Manage users' ACL")
    if "username" in changes and changes["username"] != user.username:
        new = changes["username"]
        if session.execute(sa.select(models.User.id).where(models.User.username == new)).first():
            raise Conflict(f"User '{new}' already exists", field="username")
        single = single_user_group(session, user)
        if single is not None:  # the user's own group follows the name (it is found by it)
            if session.execute(sa.select(models.Group.id).where(models.Group.name == new)).first():
                raise Conflict(f"A group named '{new}' already exists", field="username")
            single.name = new
    for key, value in changes.items():
        setattr(user, key, value)
    session.flush()
    return user


ADMIN_ACL, ADMIN_ROLE = "System admin", "Super admin"


def check_grant(session: Session, principal: Principal, *, acls=(), roles=(), verb: str = "grant") -> None:
    """Nobody grants (or revokes) an ACL or role they do not hold; 'System admin' and 'Super admin' only
    a System admin may hand out or take away."""
    if principal.is_admin:
        return
    for name in acls:
        if name == ADMIN_ACL or not principal.has(name):
            raise PermissionDenied(f"Insufficient permissions: you cannot {verb} the ACL '{name}'"
                                   + (" (only a System admin can)" if name == ADMIN_ACL else ", which you do not hold"))
    for role in _roles(session, roles):
        lacking = sorted(a.id for a in role.acls if not principal.has(a.id))
        if role.id == ADMIN_ROLE or lacking:
            raise PermissionDenied(f"Insufficient permissions: you cannot {verb} the role '{role.id}'"
                                   + (" (only a System admin can)" if role.id == ADMIN_ROLE
                                      else f": you do not hold {lacking}"))


def _check_target(principal: Principal, user: models.User) -> None:
    """Only a System admin changes the rights of, or deletes, a System admin."""
    if user.is_system_admin and not principal.is_admin:
        raise PermissionDenied("Insufficient permissions: only a System admin can change a System admin")


_ADMINS = sa.text("""
    SELECT count(*) FROM (
        SELECT user_id FROM user_acls WHERE acl_id = 'System admin'
        UNION SELECT ur.user_id FROM user_roles ur JOIN role_acls ra ON ra.role_id = ur.role_id
        WHERE ra.acl_id = 'System admin') AS admins
""")


def _check_not_last_admin(session: Session, user: models.User, still_admin: bool) -> None:
    """The last System admin cannot lose that right (nor be deleted): nobody could grant it again."""
    if user.is_system_admin and not still_admin and session.execute(_ADMINS).scalar() <= 1:
        raise ValidationError("The last System admin cannot lose 'System admin' or be deleted")


def _permissions_without(user: models.User, *, acl: str | None = None, role: str | None = None) -> set[str]:
    """What the user would hold without one of their own ACLs or roles."""
    return ({a.id for a in user.acls if a.id != acl}
            | {a.id for r in user.roles if r.id != role for a in r.acls})


def add_acls(session: Session, principal: Principal, user: models.User, names: list[str]) -> None:
    _check_target(principal, user)
    check_grant(session, principal, acls=names)
    for acl in _acls(session, names):
        if acl not in user.acls:
            user.acls.append(acl)


def remove_acl(session: Session, principal: Principal, user: models.User, name: str) -> None:
    _check_target(principal, user)
    check_grant(session, principal, acls=[name], verb="revoke")
    _check_not_last_admin(session, user, ADMIN_ACL in _permissions_without(user, acl=name))
    for acl in user.acls:
        if acl.id == name:
            user.acls.remove(acl)
            return
    raise NotFound(f"User {user.id} has no ACL '{name}'")


def add_roles(session: Session, principal: Principal, user: models.User, names: list[str]) -> None:
    _check_target(principal, user)
    check_grant(session, principal, roles=names)
    for role in _roles(session, names):
        if role not in user.roles:
            user.roles.append(role)


def remove_role(session: Session, principal: Principal, user: models.User, name: str) -> None:
    _check_target(principal, user)
    check_grant(session, principal, roles=[name] if session.get(models.Role, name) else [], verb="revoke")
    _check_not_last_admin(session, user, ADMIN_ACL in _permissions_without(user, role=name))
    for role in user.roles:
        if role.id == name:
            user.roles.remove(role)
            return
    raise NotFound(f"User {user.id} has no role '{name}'")


def delete_user(session: Session, principal: Principal, user: models.User) -> None:
    _check_target(principal, user)
    _check_not_last_admin(session, user, still_admin=False)
    single = single_user_group(session, user)
    if single is not None:
        session.delete(single)
    session.delete(user)
    session.flush()


def create_token(
    session: Session, user: models.User, name: str, acls: list[str], *, check_owner: bool = True
) -> models.Token:
    """A new token for ``user``; its ACLs must be ones the user holds."""
    if not name.strip():
        raise ValidationError("Invalid field 'name': must not be empty", field="name")
    wanted = _acls(session, acls)
    if check_owner and not user.is_system_admin:
        lacking = [a.id for a in wanted if a.id not in user.permissions]
        if lacking:
            raise PermissionDenied(
                f"Insufficient permissions: you do not hold the ACL(s) {lacking} you asked the token to have"
            )
    exists = session.execute(
        sa.select(models.Token.id).where(models.Token.created_by_id == user.id, models.Token.name == name)
    ).first()
    if exists:
        raise Conflict(f"You already have a token named '{name}'", field="name")
    token = models.Token(name=name, created_by_id=user.id, acls=wanted)
    session.add(token)
    session.flush()
    return token


def get_own_token(session: Session, principal: Principal, token_id: str) -> models.Token:
    token = session.get(models.Token, token_id)
    if token is None or (token.created_by_id != principal.user_id and not principal.has("Manage users")):
        raise NotFound("No such token")
    return token


def token_to_dict(token: models.Token) -> dict:
    out = token.to_dict()
    out["acls"] = sorted(a.id for a in token.acls)
    return out


def rename_token(session: Session, token: models.Token, name: str) -> None:
    clash = session.execute(
        sa.select(models.Token.id).where(models.Token.created_by_id == token.created_by_id,
                                         models.Token.name == name, models.Token.id != token.id)
    ).first()
    if clash:
        raise Conflict(f"You already have a token named '{name}'", field="name")
    token.name = name
    session.flush()
