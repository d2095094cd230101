"""Telescopes and instruments."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

import models

from broker.access.auth import Principal
from broker.errors import Conflict, NotFound, ValidationError


def get(session: Session, model, ident: int, what: str):
    row = session.get(model, ident)
    if row is None:
        raise NotFound(f"No {what} with ID {ident}")
    return row


def save(session: Session, principal: Principal, model, body: dict, row=None, *, acl: str = "System admin"):
    """Create or update a telescope/instrument (admins, as SkyPortal's 'Manage instruments')."""
    principal.require(acl)
    if "name" in body:
        clash = session.execute(sa.select(model.id).where(model.name == body["name"],
                                                          model.id != (row.id if row else -1))).first()
        if clash:
            raise Conflict(f"A {model.__tablename__[:-1]} named '{body['name']}' already exists", field="name")
    if model is models.Instrument and "telescope_id" in body and session.get(models.Telescope, body["telescope_id"]) is None:
        raise ValidationError(f"Invalid telescope_id: no telescope with ID {body['telescope_id']}", field="telescope_id")
    if row is None:
        row = model(**body)
        session.add(row)
    else:
        for k, v in body.items():
            setattr(row, k, v)
    session.flush()
    return row


def instrument_to_dict(i: models.Instrument) -> dict:
    return {**i.to_dict(), "telescope": i.telescope.to_dict()}
