-- Per-user data keys for crypto-shredding of personal data (R-LIFE-06).
--
-- Personal data in event payloads is sealed with AES-256-GCM under the key of
-- its subject (one key per user of an organization). This is the only table
-- whose rows change after they are written: erasing a user sets their key to
-- NULL and stamps erased_at, which makes every sealed copy of their personal
-- data unreadable (in the events, in backups of the events, in exports taken
-- from them). The row stays as a tombstone so the key is never created again.
-- The old key bytes remain in dead tuples and WAL until VACUUM and WAL
-- recycling; keep backup/WAL retention within the erasure deadline.
CREATE TABLE switchboard.data_keys (
    org_id      uuid NOT NULL,
    user_id     uuid NOT NULL,
    key         bytea CHECK (key IS NULL OR length(key) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    erased_at   timestamptz,
    PRIMARY KEY (org_id, user_id),
    CONSTRAINT data_keys_erased_means_no_key CHECK ((key IS NULL) = (erased_at IS NOT NULL))
);
