-- Saves a snapshot; one written again at the same version replaces it.
-- Every value of the update comes from EXCLUDED (the row proposed, its
-- `saved_at` the column's default), so the statement reads nothing but the
-- row it writes: what a server sharded by stream needs.
INSERT INTO switchboard.snapshots (stream_id, version, schema_version, state)
VALUES ($1, $2, $3, $4)
ON CONFLICT (stream_id, version)
DO UPDATE SET schema_version = EXCLUDED.schema_version, state = EXCLUDED.state, saved_at = EXCLUDED.saved_at
