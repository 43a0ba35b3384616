-- Events of one stream with $2 <= version <= $3, in version order, at most $4.
-- The select list is read by position (lib.rs, `mod col`): keep its order.
SELECT stream_id, version, tx_id::text::bigint AS commit, position, event_id, event_type,
       schema_version, payload, actor, occurred_at, command_id, causation_id, correlation_id
  FROM switchboard.events
 WHERE stream_id = $1 AND version >= $2 AND version <= $3
 ORDER BY version
 LIMIT $4
