DELETE FROM switchboard.snapshots WHERE stream_id = $1
