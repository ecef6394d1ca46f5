-- Optional text is either absent (NULL) or says something: never "".
-- The API has always trimmed what it stores; a blank value was kept as "".
UPDATE groups SET description = NULL WHERE description = '';
UPDATE groups SET icon_emoji = NULL WHERE icon_emoji = '';
UPDATE users SET display_name = NULL WHERE display_name = '';

ALTER TABLE groups
    ADD CONSTRAINT groups_description_not_empty CHECK (description <> ''),
    ADD CONSTRAINT groups_icon_emoji_not_empty CHECK (icon_emoji <> '');
ALTER TABLE users
    ADD CONSTRAINT users_display_name_not_empty CHECK (display_name <> '');
