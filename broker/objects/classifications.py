"""Taxonomies and classifications (user-made; stream-made ones come from the pipeline)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

import models

from broker.access.auth import Principal, readable_groups_named
from broker.errors import Conflict, NotFound, PermissionDenied, ValidationError
from broker.objects.objs import get_visible_obj, user_group_ids, visible_classifications_stmt
from broker.ingest.pipeline import taxonomy_class_names

T, K = models.Taxonomy, models.Classification


# -- taxonomies ----------------------------------------------------------------------------------

# tdtax's node keys (its schema.json); a node may also be {"ref": uri} there, a link skybroker cannot follow
TDTAX_KEYS = {"class", "comments", "tags", "links", "other names", "subclasses"}


def check_hierarchy(node, where: str = "hierarchy") -> None:
    """A tdtax hierarchy: {"class": name, "subclasses": [...], "tags"/"other names"/"links": [...], "comments"}.

    As tdtax's schema (which SkyPortal applies): the top node has only tdtax's keys; every node is an object
    with a non-empty "class" and a list of "subclasses". A class name may appear more than once (tdtax itself
    has two 'kilonova'), and keys of lower nodes beyond tdtax's are kept as they are (tdtax has a 'subclass')."""
    if isinstance(node, dict) and "ref" in node and "class" not in node:
        raise ValidationError(f"Invalid field '{where}': a tdtax 'ref' node (a link to another file) cannot be "
                              "followed here; send the resolved hierarchy", field=where)
    if isinstance(node, dict):
        unknown = set(node) - TDTAX_KEYS
        if unknown:
            raise ValidationError(f"Invalid field '{where}': unknown key(s) {sorted(unknown)}; a tdtax node has "
                                  f"{sorted(TDTAX_KEYS)}", field=where)
        for key in ("tags", "links", "other names"):
            v = node.get(key, [])
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                raise ValidationError(f"Invalid field '{where}.{key}': must be a list of strings",
                                      field=f"{where}.{key}")
        if not isinstance(node.get("comments", ""), str):
            raise ValidationError(f"Invalid field '{where}.comments': must be a string", field=f"{where}.comments")
    stack = [(node, where)]
    while stack:
        n, w = stack.pop()
        if not isinstance(n, dict):
            raise ValidationError(f"Invalid field '{w}': must be an object with a 'class'", field=w)
        if not isinstance(n.get("class"), str) or not n["class"]:
            raise ValidationError(f"Invalid field '{w}.class': must be a non-empty string", field=f"{w}.class")
        subs = n.get("subclasses", [])
        if not isinstance(subs, list):
            raise ValidationError(f"Invalid field '{w}.subclasses': must be a list", field=f"{w}.subclasses")
        stack.extend((s, f"{w}.subclasses[{i}]") for i, s in reversed(list(enumerate(subs))))


def readable_taxonomies(principal: Principal) -> sa.Select:
    stmt = sa.select(T)
    if not principal.is_admin:
        stmt = stmt.where(T.id.in_(
            sa.select(models.taxonomy_groups.c.taxonomy_id)
            .where(models.taxonomy_groups.c.group_id.in_(user_group_ids(principal)))))
    return stmt


def get_taxonomy(session: Session, principal: Principal, taxonomy_id: int) -> models.Taxonomy:
    t = session.execute(readable_taxonomies(principal).where(T.id == taxonomy_id)).scalar()
    if t is None:  # SkyPortal's 400
        raise ValidationError(f"Taxonomy {taxonomy_id} does not exist or is not available to user.",
                              field="taxonomy_id")
    return t


def taxonomy_to_dict(t: models.Taxonomy) -> dict:
    groups = sorted(t.groups, key=lambda g: g.id)
    return {**t.to_dict(), "group_ids": [g.id for g in groups], "groups": [g.to_dict() for g in groups]}


def _groups(session: Session, principal: Principal, group_ids, field: str) -> list[models.Group]:
    return readable_groups_named(session, principal, group_ids, field)


def default_groups(session: Session, principal: Principal, sitewide_group: str) -> list[models.Group]:
    """The caller's groups, except the sitewide one (a classification is not published to everyone
    unless asked for)."""
    return list(session.execute(sa.select(models.Group).where(models.Group.id.in_(user_group_ids(principal)),
                                                              models.Group.name != sitewide_group)).scalars())


def create_taxonomy(session: Session, principal: Principal, body: dict, sitewide_group: str) -> models.Taxonomy:
    check_hierarchy(body["hierarchy"])
    if session.execute(sa.select(T.id).where(T.name == body["name"], T.version == body["version"])).first():
        raise Conflict(f"Taxonomy '{body['name']}' version '{body['version']}' already exists", field="version")
    if "group_ids" in body:
        groups = _groups(session, principal, body["group_ids"], "group_ids")
    else:
        groups = list(session.execute(sa.select(models.Group).where(models.Group.name == sitewide_group)).scalars())
    latest = body.get("isLatest", True)
    if latest:  # only the caller's own versions of the name step down
        session.execute(sa.update(T).where(T.name == body["name"], T.id.in_(
            readable_taxonomies(principal).with_only_columns(T.id))).values(isLatest=False))
    t = T(name=body["name"], hierarchy=body["hierarchy"], version=body["version"],
          provenance=body.get("provenance"), isLatest=latest, groups=groups)
    session.add(t)
    session.flush()
    return t


def _require_taxonomy_owner(session: Session, principal: Principal, t: models.Taxonomy, verb: str) -> None:
    """Changing a taxonomy changes it for every group it is shared with: only a System admin, or a member
    of every one of those groups, may."""
    if principal.is_admin:
        return
    mine = set(session.execute(user_group_ids(principal)).scalars())
    if any(g.id not in mine for g in t.groups):
        raise PermissionDenied(f"Insufficient permissions: this taxonomy is shared with groups you are not in; "
                               f"only a System admin can {verb} it")


def update_taxonomy(session: Session, principal: Principal, taxonomy_id: int, body: dict) -> None:
    t = get_taxonomy(session, principal, taxonomy_id)
    _require_taxonomy_owner(session, principal, t, "change")
    if "hierarchy" in body:
        check_hierarchy(body["hierarchy"])
        keep = taxonomy_class_names(body["hierarchy"])
        visible = visible_classifications_stmt(principal).where(K.taxonomy_id == t.id)
        used = set(session.execute(visible.with_only_columns(K.classification).distinct()).scalars())
        if used - keep:
            raise ValidationError(f"Invalid field 'hierarchy': classifications still use {sorted(used - keep)}",
                                  field="hierarchy")
        if session.execute(sa.select(K.id).where(K.taxonomy_id == t.id, K.classification.not_in(keep))).first():
            raise ValidationError("Invalid field 'hierarchy': other groups' classifications use classes it drops",
                                  field="hierarchy")
    if "group_ids" in body:
        t.groups = _groups(session, principal, body.pop("group_ids"), "group_ids")
    for k, v in body.items():
        setattr(t, k, v)
    session.flush()


def delete_taxonomy(session: Session, principal: Principal, taxonomy_id: int) -> None:
    """Only its owner (see above) deletes a taxonomy, and only while no classification uses it (as SkyPortal:
    classifications are never deleted with their taxonomy)."""
    t = get_taxonomy(session, principal, taxonomy_id)
    _require_taxonomy_owner(session, principal, t, "delete")
    if session.execute(sa.select(K.id).where(K.taxonomy_id == t.id).limit(1)).first():
        raise ValidationError(f"Cannot delete taxonomy {taxonomy_id} because it has associated classifications.")
    session.delete(t)
    session.flush()


# -- classifications -----------------------------------------------------------------------------

def classifications_between(principal: Principal, start=None, end=None) -> sa.Select:
    """Visible classifications made between ``start`` and ``end`` (either may be None), by id."""
    stmt = visible_classifications_stmt(principal).order_by(K.id)
    if start:
        stmt = stmt.where(K.created_at >= start)
    if end:
        stmt = stmt.where(K.created_at <= end)
    return stmt


def get_classification(session: Session, principal: Principal, classification_id: int) -> models.Classification:
    c = session.execute(visible_classifications_stmt(principal).where(K.id == classification_id)).scalar()
    if c is None:
        raise NotFound(f"No classification with ID {classification_id}")
    return c


def _check_class(t: models.Taxonomy, name: str, where: str = "classification") -> None:
    if name not in taxonomy_class_names(t.hierarchy):
        raise ValidationError(f"Invalid field '{where}': '{name}' is not a class of taxonomy '{t.name}' "
                              f"version '{t.version}'", field=where)


def create_classification(session: Session, principal: Principal, body: dict,
                          sitewide_group: str) -> models.Classification:
    get_visible_obj(session, principal, body["obj_id"])
    t = get_taxonomy(session, principal, body["taxonomy_id"])
    _check_class(t, body["classification"])
    groups = (_groups(session, principal, body["group_ids"], "group_ids") if "group_ids" in body
              else default_groups(session, principal, sitewide_group))
    c = K(classification=body["classification"], taxonomy_id=t.id, probability=body.get("probability"),
          author_id=principal.user_id, author_name=principal.username, obj_id=body["obj_id"],
          origin=body.get("origin"), ml=body.get("ml", False), groups=groups)
    session.add(c)
    session.flush()
    if body.get("vote"):
        session.add(models.ClassificationVote(classification_id=c.id, voter_id=principal.user_id, vote=1))
        session.flush()
    return c


def _require_author(principal: Principal, c: models.Classification) -> None:
    if c.author_id != principal.user_id and not principal.is_admin:
        raise PermissionDenied("Insufficient permissions: only the author or an admin may change a classification")


def update_classification(session: Session, principal: Principal, classification_id: int, body: dict) -> None:
    c = get_classification(session, principal, classification_id)
    _require_author(principal, c)
    t = c.taxonomy
    if "taxonomy_id" in body:
        t = get_taxonomy(session, principal, body["taxonomy_id"])
    _check_class(t, body.get("classification", c.classification))
    if "group_ids" in body:
        c.groups = _groups(session, principal, body.pop("group_ids"), "group_ids")
    for k, v in body.items():
        setattr(c, k, v)
    session.flush()


def delete_classification(session: Session, principal: Principal, classification_id: int) -> None:
    c = get_classification(session, principal, classification_id)
    _require_author(principal, c)
    session.delete(c)
    session.flush()


def delete_obj_classifications(session: Session, principal: Principal, obj_id: str) -> int:
    """Delete the caller's classifications of an object (an admin's: all visible ones)."""
    get_visible_obj(session, principal, obj_id)
    stmt = visible_classifications_stmt(principal).where(K.obj_id == obj_id)
    if not principal.is_admin:
        stmt = stmt.where(K.author_id == principal.user_id)
    rows = session.execute(stmt).scalars().all()
    for c in rows:
        session.delete(c)
    session.flush()
    return len(rows)


def vote(session: Session, principal: Principal, classification_id: int, value: int) -> None:
    get_classification(session, principal, classification_id)
    from sqlalchemy.dialects.postgresql import insert

    stmt = insert(models.ClassificationVote).values(classification_id=classification_id,
                                                    voter_id=principal.user_id, vote=value,
                                                    created_at=models.utcnow())
    session.execute(stmt.on_conflict_do_update(constraint="uq_classification_votes_voter",
                                               set_={"vote": value}))


def unvote(session: Session, principal: Principal, classification_id: int) -> None:
    get_classification(session, principal, classification_id)
    n = session.execute(sa.delete(models.ClassificationVote).where(
        models.ClassificationVote.classification_id == classification_id,
        models.ClassificationVote.voter_id == principal.user_id)).rowcount
    if n == 0:
        raise NotFound(f"You have no vote on classification {classification_id}")


def votes_of(session: Session, ids) -> dict[int, list[dict]]:
    out: dict[int, list] = {i: [] for i in ids}
    for v in session.execute(sa.select(models.ClassificationVote)
                             .where(models.ClassificationVote.classification_id.in_(list(ids)))).scalars():
        out[v.classification_id].append({"voter_id": v.voter_id, "vote": v.vote})
    return out
