SELECT version FROM switchboard.streams WHERE stream_id = $1
