SELECT stream_id FROM switchboard.claims WHERE namespace = $1 AND value = $2
