-- Bulk import: lock the stream row (created by import_lock_stream.sql).
SELECT version FROM switchboard.streams WHERE stream_id = $1 FOR UPDATE
