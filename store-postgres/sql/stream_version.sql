-- A stream's version: its highest event version (an index-only look at the
-- end of UNIQUE (stream_id, version)); 0 for a stream without events.
SELECT coalesce(max(version), 0) FROM switchboard.events WHERE stream_id = $1
