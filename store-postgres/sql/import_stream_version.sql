-- Bulk import: lock the stream row (created by import_lock_stream.sql), which
-- orders imports of one stream, and read the stream's version from its events
-- (appends keep no count in the row since migration 0005; one that races the
-- import meets it on UNIQUE (stream_id, version)).
SELECT coalesce((SELECT max(version) FROM switchboard.events WHERE stream_id = $1), 0)
  FROM switchboard.streams WHERE stream_id = $1 FOR UPDATE
