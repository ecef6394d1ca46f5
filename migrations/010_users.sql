-- People this service has seen in a verified token. The id is the token's
-- `sub`; the display name is refreshed from the `name` claim on each write.
CREATE TABLE users (
    id           uuid PRIMARY KEY,
    display_name text CHECK (char_length(display_name) <= 100),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
