-- The common append — no claims, no data-key changes — as one prepared
-- statement: no function call, no lock row, no row but the events'. See
-- migrations/0005_scoped_commands_and_atomic_keys.sql for why each promise
-- holds without a lock, and 0006_commands_in_events.sql for the command
-- recorded on the append's first event.
--
-- $1 stream, $2 expected version (NULL: any), $3 command id, $4 digest,
-- $5.. the events' columns as arrays, in order.
--
-- Returns one row: how many events were inserted (0 when the expected
-- version did not hold), their versions, positions and transaction. A
-- recorded command id, a taken version or a recorded event id fails the
-- statement with a unique violation (23505); the client then asks which
-- (command first, then version, then event ids), whatever the constraint
-- is called.
WITH current AS (
    SELECT coalesce(max(version), 0) AS version
      FROM switchboard.events
     WHERE stream_id = $1
), admitted AS (
    SELECT version FROM current WHERE $2::bigint IS NULL OR version = $2::bigint
), appended AS (
    INSERT INTO switchboard.events (stream_id, version, event_id, event_type,
            schema_version, payload, actor, occurred_at, command_id,
            causation_id, correlation_id, append_command_id, append_command_digest,
            append_size)
    -- The append's command id, digest and size on its first event only.
    SELECT $1, admitted.version + e.ord, e.id, e.typ, e.sv, e.payload, e.actor,
           e.at, e.cmd, e.cause, e.corr,
           CASE WHEN e.ord = 1 THEN $3::uuid END,
           CASE WHEN e.ord = 1 AND $3::uuid IS NOT NULL THEN $4::bytea END,
           CASE WHEN e.ord = 1 AND $3::uuid IS NOT NULL THEN cardinality($5::uuid[]) END
      FROM admitted,
           unnest($5::uuid[], $6::text[], $7::bigint[], $8::jsonb[], $9::jsonb[],
                  $10::timestamptz[], $11::uuid[], $12::uuid[], $13::uuid[])
           WITH ORDINALITY AS e(id, typ, sv, payload, actor, at, cmd, cause, corr, ord)
     -- Identity values are drawn in insertion order: positions grow with versions.
     ORDER BY e.ord
    RETURNING version, position, tx_id
)
SELECT count(*) AS appended, min(version) AS first_version, max(version) AS last_version,
       max(tx_id::text::bigint) AS commit, min(position) AS first_sequence,
       max(position) AS last_sequence
  FROM appended
