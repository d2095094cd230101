"""Deployment information and database statistics."""

from __future__ import annotations

import functools
import platform

import sqlalchemy as sa
from sqlalchemy.orm import Session

import models

from broker import __version__
from broker.runtime.config import Config


@functools.cache
def _cosmology() -> tuple[str, str]:
    """The default cosmology's description and reference (formatting it costs ~0.1 ms: once per process)."""
    from astropy.cosmology import default_cosmology

    cosmo = default_cosmology.get()
    return str(cosmo), cosmo.meta.get("reference", "")


def sysinfo(cfg: Config) -> dict:
    """Public facts about this deployment (never a secret or a connection string)."""
    import astropy

    cosmology, reference = _cosmology()
    return {
        "version": __version__,
        "python": platform.python_version(),
        "astropy": astropy.__version__,
        "cosmology": cosmology,
        "cosmoref": reference,
        "invitationsEnabled": False,
        "database": "embedded PostgreSQL" if cfg.database.embedded else "PostgreSQL",
        "url": cfg.server.url,
    }


def db_stats(session: Session) -> dict:
    """Row counts and candidate date range, as SkyPortal's /api/db_stats names them."""
    def count(model) -> int:
        return session.execute(sa.select(sa.func.count()).select_from(model)).scalar_one()

    oldest, newest = session.execute(
        sa.select(sa.func.min(models.Candidate.created_at), sa.func.max(models.Candidate.created_at))
    ).one()
    return {
        "Number of candidates": count(models.Candidate),
        "Number of sources": count(models.Source),
        "Number of objs": count(models.Obj),
        "Number of photometry": count(models.Photometry),
        "Number of classifications": count(models.Classification),
        "Number of filters": count(models.Filter),
        "Number of streams": count(models.Stream),
        "Number of groups": count(models.Group),
        "Number of users": count(models.User),
        "Number of tokens": count(models.Token),
        "Oldest candidate creation datetime": oldest.isoformat() if oldest else None,
        "Newest candidate creation datetime": newest.isoformat() if newest else None,
        "Postgres version": session.execute(sa.text("SHOW server_version")).scalar(),
    }
