-- The newest snapshot of stream $1 at version $2 or below.
SELECT version, schema_version, state
  FROM switchboard.snapshots
 WHERE stream_id = $1 AND version <= $2
 ORDER BY version DESC
 LIMIT 1
