"""Use cases. Each function takes the caller's unit of work (``app.unit_of_work``)
and primitives, works in ``uow.conn``, returns plain data and raises
``app.errors`` exceptions. None begins or commits a transaction; none imports Flask."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True)
class Actor:
    """The authenticated caller, as the token describes them."""

    id: UUID
    display_name: str | None = None


MANAGER_ROLES = frozenset({"owner", "admin"})
