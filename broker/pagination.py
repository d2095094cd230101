"""SkyPortal-style pagination: ``pageNumber`` (1-based), ``numPerPage`` (capped), ``totalMatches``."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from broker.errors import ValidationError


@dataclass(frozen=True)
class Page:
    number: int
    size: int


def page_from_args(page_number: str | None, num_per_page: str | None, default: int, cap: int) -> Page:
    """Parse the query arguments; numPerPage above ``cap`` is capped to it."""
    number = _positive_int(page_number, "pageNumber", 1)
    size = min(_positive_int(num_per_page, "numPerPage", default), cap)
    return Page(number, size)


def _positive_int(raw: str | None, name: str, default: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError(f"Invalid {name}: must be a positive integer, got {raw!r}", field=name) from None
    if value < 1:
        raise ValidationError(f"Invalid {name}: must be a positive integer, got {value}", field=name)
    return value


def paginate(session: Session, stmt: sa.Select, page: Page, *, scalars: bool = True) -> tuple[list, int]:
    """Run ``stmt`` for one page; return (rows, totalMatches). A page past the end is an error.

    ``scalars=False`` returns whole rows (for statements selecting several columns)."""
    total = session.execute(sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery())).scalar_one()
    last_page = max(1, -(-total // page.size))
    if page.number > last_page:
        raise ValidationError(
            f"Page number out of range: pageNumber={page.number}, last page is {last_page}",
            field="pageNumber",
        )
    result = session.execute(stmt.limit(page.size).offset((page.number - 1) * page.size))
    return list(result.scalars() if scalars else result.all()), total
