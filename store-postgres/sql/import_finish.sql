-- Bulk import: record the stream's version; return the imported range's positions.
WITH done AS (
    UPDATE switchboard.streams SET version = $2 WHERE stream_id = $1
)
SELECT pg_current_xact_id()::text::bigint, min(position), max(position)
  FROM switchboard.events
 WHERE stream_id = $1
