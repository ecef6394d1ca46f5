CREATE TABLE group_invites (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    group_id     uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    -- XXX-XXX-XXX over the 32-character alphabet without 0, O, 1 and I.
    -- Unique across every invite ever issued, revoked ones included.
    code         text NOT NULL
                 CONSTRAINT group_invites_code_format
                 CHECK (code ~ '^[A-HJ-NP-Z2-9]{3}-[A-HJ-NP-Z2-9]{3}-[A-HJ-NP-Z2-9]{3}$'),
    preset_role  group_role NOT NULL DEFAULT 'member'
                 CONSTRAINT group_invites_no_owner_invites CHECK (preset_role <> 'owner'),
    max_uses     integer NOT NULL DEFAULT 1
                 CONSTRAINT group_invites_max_uses_range CHECK (max_uses BETWEEN 1 AND 100),
    current_uses integer NOT NULL DEFAULT 0,
    expires_at   timestamptz NOT NULL,
    created_by   uuid NOT NULL REFERENCES users (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- Revocation is permanent. 'revoked': by an owner or admin (revoked_by);
    -- 'creator_lost_authority': its creator was demoted or left (see below).
    revoked_at     timestamptz,
    revoked_by     uuid REFERENCES users (id),
    revoked_reason text,
    CONSTRAINT group_invites_code_unique UNIQUE (code),
    CONSTRAINT group_invites_uses_within_max
        CHECK (current_uses >= 0 AND current_uses <= max_uses),
    CONSTRAINT group_invites_expires_after_creation CHECK (expires_at > created_at),
    -- Written so no branch can evaluate to NULL (which a CHECK would accept).
    CONSTRAINT group_invites_revocation_complete CHECK (
        CASE
            WHEN revoked_at IS NULL THEN revoked_by IS NULL AND revoked_reason IS NULL
            WHEN revoked_reason IS NULL THEN false
            WHEN revoked_reason = 'revoked' THEN revoked_by IS NOT NULL
            WHEN revoked_reason = 'creator_lost_authority' THEN revoked_by IS NULL
            ELSE false
        END)
);

-- The preview and the join look an invite up by code. The unique index above
-- answers both (revoked codes must stay reserved, so it cannot be partial);
-- the join's conditional UPDATE filters the live state on the single row.

-- The admin listing and the active-invite cap: live invites of one group,
-- newest first. Expiry depends on now() and so is filtered at query time.
CREATE INDEX group_invites_live_by_group
    ON group_invites (group_id, created_at DESC)
    WHERE revoked_at IS NULL AND current_uses < max_uses;

-- The foreign-key side of groups (cascading deletes) and scans over all of a
-- group's invites, live or not.
CREATE INDEX group_invites_group_idx ON group_invites (group_id);

-- A membership remembers the invite it was redeemed from.
ALTER TABLE group_memberships
    ADD COLUMN invite_id uuid REFERENCES group_invites (id) ON DELETE SET NULL;

-- Redemptions of one invite, oldest first.
CREATE INDEX group_memberships_invite_idx
    ON group_memberships (invite_id, joined_at)
    WHERE invite_id IS NOT NULL;

-- An invite lives only as long as its creator's authority: an owner, or an
-- admin for anything below admin. When a membership's role changes or the
-- membership goes, the creator's invites that are now beyond them are revoked
-- for good, whichever code path made the change. (Restoring the role later
-- does not bring leaked codes back.) Taking the invite rows' locks here also
-- orders a demotion against concurrent joins of those invites.
-- SECURITY DEFINER with a pinned search_path: another service changing roles
-- needs no rights on group_invites and cannot point this at another table.
CREATE FUNCTION group_invites_revoke_on_lost_authority() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE group_invites AS i
       SET revoked_at = now(), revoked_reason = 'creator_lost_authority'
     WHERE i.group_id = OLD.group_id
       AND i.created_by = OLD.user_id
       AND i.revoked_at IS NULL
       AND NOT (TG_OP = 'UPDATE'
                AND (NEW.role = 'owner' OR (NEW.role = 'admin' AND i.preset_role <> 'admin')));
    RETURN NULL;
END
$$;

CREATE TRIGGER group_memberships_role_changed
    AFTER UPDATE OF role ON group_memberships
    FOR EACH ROW WHEN (OLD.role IS DISTINCT FROM NEW.role)
    EXECUTE FUNCTION group_invites_revoke_on_lost_authority();

CREATE TRIGGER group_memberships_removed
    AFTER DELETE ON group_memberships
    FOR EACH ROW
    EXECUTE FUNCTION group_invites_revoke_on_lost_authority();
