-- What was recorded for a command id of one stream (ids are scoped to their stream).
SELECT stream_id, first_version, last_version, first_commit, first_sequence,
       last_commit, last_sequence, digest
  FROM switchboard.commands
 WHERE stream_id = $1 AND command_id = $2
