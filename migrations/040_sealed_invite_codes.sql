-- Invite codes leave the table in the clear (see app/code_keys.py): each
-- invite keeps a keyed digest to be found by and the code sealed, under the
-- key named in code_key. The digest is unique, as the code was.
--
-- Filling these needs the keys, which SQL does not have: the migration runner
-- seals the existing codes right after this file (app.code_keys
-- seal_plain_codes), and 041 refuses to run until none is left in the clear.
ALTER TABLE group_invites
    ADD COLUMN code_digest bytea
        CONSTRAINT group_invites_code_digest_sha256 CHECK (octet_length(code_digest) = 32),
    ADD COLUMN code_sealed bytea
        -- a 12-byte nonce, the 11 characters of the code and a 16-byte tag
        CONSTRAINT group_invites_code_sealed_length CHECK (octet_length(code_sealed) = 39),
    ADD COLUMN code_key text
        CONSTRAINT group_invites_code_key_present CHECK (code_key <> '');

ALTER TABLE group_invites ALTER COLUMN code DROP NOT NULL;

CREATE UNIQUE INDEX group_invites_code_digest_unique ON group_invites (code_digest);
