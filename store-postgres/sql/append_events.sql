-- The common append — no claims, no data-key changes — as one prepared
-- statement: no function call, no lock row. See
-- migrations/0005_scoped_commands_and_atomic_keys.sql for why each promise still holds.
--
-- $1 stream, $2 expected version (NULL: any), $3 command id, $4 digest,
-- $5.. the events' columns as arrays, in order.
--
-- Returns one row: how many events were inserted (0 when the expected
-- version did not hold), their versions, positions and transaction. A
-- recorded command id fails the statement on commands_pkey, a taken version
-- on events_stream_version_key, a recorded event id on events_event_id_key;
-- the client then tells which (command first, then version, then event ids).
WITH current AS (
    SELECT coalesce(max(version), 0) AS version
      FROM switchboard.events
     WHERE stream_id = $1
), admitted AS (
    SELECT version FROM current WHERE $2::bigint IS NULL OR version = $2::bigint
), appended AS (
    INSERT INTO switchboard.events (stream_id, version, event_id, event_type,
            schema_version, payload, actor, occurred_at, command_id,
            causation_id, correlation_id)
    SELECT $1, admitted.version + e.ord, e.id, e.typ, e.sv, e.payload, e.actor,
           e.at, e.cmd, e.cause, e.corr
      FROM admitted,
           unnest($5::uuid[], $6::text[], $7::bigint[], $8::jsonb[], $9::jsonb[],
                  $10::timestamptz[], $11::uuid[], $12::uuid[], $13::uuid[])
           WITH ORDINALITY AS e(id, typ, sv, payload, actor, at, cmd, cause, corr, ord)
     -- Identity values are drawn in insertion order: positions grow with versions.
     ORDER BY e.ord
    RETURNING version, position, tx_id
), command AS (
    INSERT INTO switchboard.commands (stream_id, command_id, digest, first_version,
            last_version, first_commit, first_sequence, last_commit, last_sequence)
    SELECT $1, $3, $4, min(version), max(version), max(tx_id::text::bigint),
           min(position), max(tx_id::text::bigint), max(position)
      FROM appended
     WHERE $3::uuid IS NOT NULL
    HAVING count(*) > 0
)
SELECT count(*) AS appended, min(version) AS first_version, max(version) AS last_version,
       max(tx_id::text::bigint) AS commit, min(position) AS first_sequence,
       max(position) AS last_sequence
  FROM appended
