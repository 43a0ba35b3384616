-- Events strictly after position ($1, $2), in log order, at most $3.
--
-- Only rows of transactions older than the oldest transaction still running
-- (the snapshot's xmin) are returned. Every such transaction has finished, and
-- every transaction that starts later gets a larger xid8, so no row can ever
-- appear below this horizon again: the order (tx_id, position) of what we
-- return is final, and a reader that has seen (t, p) never misses an event
-- that sorts before it.
-- The select list is read by position (lib.rs, `mod col`): keep its order.
SELECT stream_id, version, tx_id::text::bigint AS commit, position, event_id, event_type,
       schema_version, payload, actor, occurred_at, command_id, causation_id, correlation_id
  FROM switchboard.events
 WHERE tx_id < pg_snapshot_xmin(pg_current_snapshot())
   AND (tx_id, position) > ($1::bigint::text::xid8, $2::bigint)
 ORDER BY tx_id, position
 LIMIT $3
