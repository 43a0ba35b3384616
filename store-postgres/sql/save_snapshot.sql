INSERT INTO switchboard.snapshots (stream_id, version, schema_version, state)
VALUES ($1, $2, $3, $4)
ON CONFLICT (stream_id, version)
DO UPDATE SET schema_version = EXCLUDED.schema_version, state = EXCLUDED.state, saved_at = now()
