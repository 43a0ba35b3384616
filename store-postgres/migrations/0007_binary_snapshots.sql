-- Snapshots in a compact binary form (schema 3).
--
-- The service now writes an organization's snapshot as postcard bytes, each
-- user's personal data sealed under their key, instead of JSON. The column
-- becomes `bytea`, opaque to the database. Snapshots of older schemas are
-- deleted here: they are only a cache of the log, the service ignores them
-- anyway, and the next snapshot due replaces them.
--
-- Storage EXTERNAL: a large state is moved out of line (TOAST) but not
-- compressed; sealed personal data does not compress, and skipping pglz
-- saves its cost on every write and read of a large organization.

DELETE FROM switchboard.snapshots;

ALTER TABLE switchboard.snapshots
    ALTER COLUMN state TYPE bytea USING convert_to(state::text, 'UTF8');

ALTER TABLE switchboard.snapshots
    ALTER COLUMN state SET STORAGE EXTERNAL;
