from __future__ import annotations

from uuid import UUID

import sqlalchemy as sa

from app.repository.prepared import Prepared

# A user's display name refreshed if the token brought a new one, for a
# statement that may do so only ``{when}``; ``{user_id}`` names the parameter.
# A conditional UPDATE rather than ON CONFLICT DO UPDATE ... WHERE, which would
# lock the user's row even when nothing changes and so queue every concurrent
# write of one user behind the others.
RENAME_USER = """
    UPDATE users
       SET display_name = CAST(:display_name AS text), updated_at = now()
     WHERE id = CAST({user_id} AS uuid)
       AND CAST(:display_name AS text) IS NOT NULL
       AND display_name IS DISTINCT FROM CAST(:display_name AS text)
       AND {when}
"""

# Insert a new user, or refresh a changed display name.
_UPSERT = Prepared(
    "user_upsert",
    f"""
    WITH inserted AS (
        INSERT INTO users (id, display_name)
        VALUES (:id, CAST(:display_name AS text))
        ON CONFLICT (id) DO NOTHING
        RETURNING id
    )
    {RENAME_USER.format(user_id=":id", when="NOT EXISTS (SELECT 1 FROM inserted)")}
    """,
)


def upsert_user(conn: sa.Connection, user_id: UUID, display_name: str | None) -> None:
    """Record a token's subject; refresh the display name only when it changed."""
    _UPSERT.rows(conn, {"id": user_id, "display_name": display_name})
