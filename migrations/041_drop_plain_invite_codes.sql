-- The plain codes go for good. Every invite must have been sealed by the step
-- that follows 040 (`python -m app.migrate up` with CODE_KEYS set runs it).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM group_invites WHERE code_digest IS NULL OR code IS NOT NULL) THEN
        RAISE EXCEPTION 'group_invites still holds codes in the clear: run `python -m app.migrate up` with CODE_KEYS set, which seals them after 040';
    END IF;
END
$$;

ALTER TABLE group_invites DROP COLUMN code;
ALTER TABLE group_invites
    ALTER COLUMN code_digest SET NOT NULL,
    ALTER COLUMN code_sealed SET NOT NULL,
    ALTER COLUMN code_key SET NOT NULL;

-- A dropped column's old values stay in the table's files until its rows are
-- rewritten; rewrite them now, so a copy of the data directory holds no code.
CLUSTER group_invites USING group_invites_pkey;
