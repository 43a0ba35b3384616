-- What was recorded for a command id of one stream (ids are scoped to their
-- stream): the append's first event carries the id, digest and size
-- (migration 0006); its last event is found by version in the same stream.
SELECT f.stream_id, f.version, l.version, f.tx_id::text::bigint, f.position,
       l.tx_id::text::bigint, l.position, f.append_command_digest
  FROM switchboard.events f
  JOIN switchboard.events l
    ON l.stream_id = f.stream_id AND l.version = f.version + f.append_size - 1
 WHERE f.stream_id = $1 AND f.append_command_id = $2
