CREATE TYPE group_role AS ENUM ('owner', 'admin', 'member', 'viewer');

CREATE TABLE group_memberships (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    group_id   uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES users (id),
    role       group_role NOT NULL,
    -- Who handed out the invite this membership came from (NULL for the
    -- group's creator). The invite itself is linked in 020_group_invites.sql.
    invited_by uuid REFERENCES users (id),
    joined_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT group_memberships_one_per_user UNIQUE (group_id, user_id)
);

-- "Which groups am I in" and the creator-authority checks go through here.
CREATE INDEX group_memberships_user_idx ON group_memberships (user_id);

-- A group has exactly one owner at a time.
CREATE UNIQUE INDEX group_memberships_one_owner
    ON group_memberships (group_id) WHERE role = 'owner';
