from __future__ import annotations

from uuid import UUID

import sqlalchemy as sa

from app.repository.prepared import Prepared

# Insert a new user, or refresh a changed display name. Written as a
# conditional UPDATE rather than ON CONFLICT DO UPDATE ... WHERE, which would
# lock the user's row even when nothing changes and so queue every concurrent
# write of one user behind the others.
_UPSERT = Prepared(
    "user_upsert",
    """
    WITH inserted AS (
        INSERT INTO users (id, display_name)
        VALUES (:id, CAST(:display_name AS text))
        ON CONFLICT (id) DO NOTHING
        RETURNING id
    )
    UPDATE users
       SET display_name = CAST(:display_name AS text), updated_at = now()
     WHERE id = :id
       AND CAST(:display_name AS text) IS NOT NULL
       AND display_name IS DISTINCT FROM CAST(:display_name AS text)
       AND NOT EXISTS (SELECT 1 FROM inserted)
    """,
)

# For a statement that changes something only for a token's user: their display
# name refreshed if the token brought a new one, once ``{done}`` (a data-
# modifying CTE of that statement) has a row; ``{user_id}`` names the parameter.
RENAME_USER = """
    UPDATE users
       SET display_name = CAST(:display_name AS text), updated_at = now()
     WHERE id = CAST({user_id} AS uuid)
       AND CAST(:display_name AS text) IS NOT NULL
       AND display_name IS DISTINCT FROM CAST(:display_name AS text)
       AND EXISTS (SELECT 1 FROM {done})
"""


def upsert_user(conn: sa.Connection, user_id: UUID, display_name: str | None) -> None:
    """Record a token's subject; refresh the display name only when it changed."""
    _UPSERT.rows(conn, {"id": user_id, "display_name": display_name})
