SELECT stream_id, first_version, last_version, first_commit, first_sequence,
       last_commit, last_sequence
  FROM switchboard.commands
 WHERE command_id = $1
