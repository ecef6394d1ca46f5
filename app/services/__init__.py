"""Use cases. Each function owns one transaction, takes primitives and the
engine, returns plain data and raises ``app.errors`` exceptions. No Flask here."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True)
class Actor:
    """The authenticated caller, as the token describes them."""

    id: UUID
    display_name: str | None = None


MANAGER_ROLES = frozenset({"owner", "admin"})
