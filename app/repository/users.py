from __future__ import annotations

from uuid import UUID

import sqlalchemy as sa

_UPSERT = sa.text(
    """
    INSERT INTO users (id, display_name)
    VALUES (:id, :display_name)
    ON CONFLICT (id) DO UPDATE
       SET display_name = COALESCE(EXCLUDED.display_name, users.display_name),
           updated_at = now()
     WHERE EXCLUDED.display_name IS NOT NULL
       AND users.display_name IS DISTINCT FROM EXCLUDED.display_name
    """
)


def upsert_user(conn: sa.Connection, user_id: UUID, display_name: str | None) -> None:
    """Record a token's subject; refresh the display name only when it changed."""
    conn.execute(_UPSERT, {"id": user_id, "display_name": display_name})
