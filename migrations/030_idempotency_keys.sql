-- Idempotency-Key: the first response to a caller's keyed POST, replayed when
-- the caller sends the same key again within 24 hours. A row is written in
-- the same transaction as the work it answers for, so a request that failed
-- leaves none and one that committed always leaves one.
CREATE TABLE idempotency_keys (
    -- The caller (the token's sub): another user's identical key is another key.
    user_id     uuid NOT NULL,
    key         text NOT NULL
                CONSTRAINT idempotency_keys_key_length CHECK (char_length(key) BETWEEN 1 AND 255),
    -- SHA-256 of the method, route, path parameters and canonical body.
    fingerprint bytea NOT NULL
                CONSTRAINT idempotency_keys_fingerprint_sha256 CHECK (octet_length(fingerprint) = 32),
    status      smallint NOT NULL
                CONSTRAINT idempotency_keys_status_range CHECK (status BETWEEN 200 AND 499),
    -- The response body, sealed (AES-256-GCM) like invite codes are
    -- (app/code_keys.py): a created invite's body holds its code.
    body_sealed bytea NOT NULL,
    body_key    text NOT NULL,
    location    text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (user_id, key)
);

-- Expired keys are deleted oldest first, a bounded batch at a time.
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);
