-- The command row folded into the event rows: one row fewer per append.
--
-- * The outcome of an append that carried a command id is no longer a row of
--   its own in `commands` but three columns of the append's first event:
--   `append_command_id`, `append_command_digest` and `append_size` (how many
--   events the append recorded). The rest of the outcome is read from the
--   events themselves: the first event's version, transaction and position,
--   and the last event's, found by (stream_id, version + size - 1). Both are
--   rows of one stream.
-- * Idempotency stays scoped to the stream and enforced by the database: a
--   unique partial index on (stream_id, append_command_id) refuses a second
--   append of one command in the statement that records its events. The
--   client tells what a refused statement met by asking (command first,
--   then version, then event ids), never by a constraint's name.
-- * Existing `commands` rows are moved onto the first event of their append
--   (their digest kept, NULL for rows older than migration 0005), then the
--   table is dropped; a view of the same name and columns shows the
--   recorded commands as the table did, for people and tools.
--   Cost on a large log: the UPDATE writes a new version of one event row per
--   recorded command (most appends carry one), in the migration's single
--   transaction; a VACUUM afterwards reclaims the old versions.
-- * `switchboard.append` (for appends with claims or key changes) records the
--   command the same way; its event-id check runs on every call (before, it
--   was skipped when an append only shredded keys, and the client named the
--   duplicate from the unique index's constraint name, which a shard
--   renames), as a join instead of a correlated subquery over unnest.
--
-- Sharding: every unique key of the append's tables includes stream_id
-- except events(event_id), whose promise (an event id unique in the whole
-- store) a server sharded by stream could only keep through a table keyed
-- by the id (like claims), and the claims themselves.

ALTER TABLE switchboard.events
    ADD COLUMN append_command_id     uuid,
    ADD COLUMN append_command_digest bytea,
    ADD COLUMN append_size           integer,
    ADD CONSTRAINT events_append_command_check CHECK (
        (append_command_id IS NULL
            AND append_command_digest IS NULL AND append_size IS NULL)
        OR (append_command_id IS NOT NULL AND append_size >= 1
            AND (append_command_digest IS NULL OR length(append_command_digest) = 32)));

UPDATE switchboard.events e
   SET append_command_id = c.command_id,
       append_command_digest = c.digest,
       append_size = (c.last_version - c.first_version + 1)::integer
  FROM switchboard.commands c
 WHERE e.stream_id = c.stream_id AND e.version = c.first_version;

CREATE UNIQUE INDEX events_append_command_key ON switchboard.events (stream_id, append_command_id)
    WHERE append_command_id IS NOT NULL;

DROP TABLE switchboard.commands;

-- What the `commands` table held, from the events.
CREATE VIEW switchboard.commands AS
SELECT f.append_command_id AS command_id, f.stream_id, f.version AS first_version,
       l.version AS last_version, f.tx_id::text::bigint AS first_commit,
       f.position AS first_sequence, l.tx_id::text::bigint AS last_commit,
       l.position AS last_sequence, f.recorded_at, f.append_command_digest AS digest
  FROM switchboard.events f
  JOIN switchboard.events l
    ON l.stream_id = f.stream_id AND l.version = f.version + f.append_size - 1
 WHERE f.append_command_id IS NOT NULL;

CREATE OR REPLACE FUNCTION switchboard.append(
    p_stream            uuid,
    p_expected          bigint,        -- NULL: any version; n: exactly n (0: no stream)
    p_command_id        uuid,
    p_command_digest    bytea,         -- NULL: not compared
    p_event_ids         uuid[],
    p_event_types       text[],
    p_schema_versions   bigint[],
    p_payloads          jsonb[],
    p_actors            jsonb[],
    p_occurred_at       timestamptz[],
    p_command_ids       uuid[],
    p_causation_ids     uuid[],
    p_correlation_ids   uuid[],
    p_claim_takes       boolean[],     -- true: claim, false: release
    p_claim_namespaces  text[],
    p_claim_values      text[],
    p_key_creates       uuid[],        -- subjects whose key this append creates
    p_key_bytes         bytea[],       -- their keys, in the same order
    p_key_shreds        uuid[],        -- subjects whose key this append shreds
    OUT o_status          text,        -- ok | duplicate | conflict | duplicate_event
                                       -- | claim_taken | idempotency_key_reused | key_exists
    OUT o_actual          bigint,
    OUT o_event_id        uuid,
    OUT o_claim_namespace text,
    OUT o_claim_value     text,
    OUT o_claim_holder    uuid,
    OUT o_subject         uuid,
    OUT o_first_version   bigint,
    OUT o_last_version    bigint,
    OUT o_first_commit    bigint,
    OUT o_first_sequence  bigint,
    OUT o_last_commit     bigint,
    OUT o_last_sequence   bigint,
    OUT o_stream          uuid         -- the stream the outcome is about
)
LANGUAGE plpgsql
AS $$
DECLARE
    v_actual bigint;
    v_commit bigint;
    v_digest bytea;
BEGIN
    -- The client validates requests; this guards direct callers of the function.
    IF coalesce(cardinality(p_event_ids), 0) = 0
       OR cardinality(p_event_types) IS DISTINCT FROM cardinality(p_event_ids)
       OR cardinality(p_schema_versions) IS DISTINCT FROM cardinality(p_event_ids)
       OR cardinality(p_payloads) IS DISTINCT FROM cardinality(p_event_ids)
       OR cardinality(p_actors) IS DISTINCT FROM cardinality(p_event_ids)
       OR cardinality(p_occurred_at) IS DISTINCT FROM cardinality(p_event_ids)
       OR cardinality(p_command_ids) IS DISTINCT FROM cardinality(p_event_ids)
       OR cardinality(p_causation_ids) IS DISTINCT FROM cardinality(p_event_ids)
       OR cardinality(p_correlation_ids) IS DISTINCT FROM cardinality(p_event_ids)
       OR coalesce(cardinality(p_claim_takes), 0) <> coalesce(cardinality(p_claim_namespaces), 0)
       OR coalesce(cardinality(p_claim_takes), 0) <> coalesce(cardinality(p_claim_values), 0)
       OR coalesce(cardinality(p_key_creates), 0) <> coalesce(cardinality(p_key_bytes), 0)
    THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'switchboard.append: no events, or arrays of different lengths';
    END IF;

    -- The stream's version, from its events: no lock row. A concurrent
    -- append that takes the same versions fails one of the two on
    -- UNIQUE (stream_id, version); the client re-runs it, and the checks
    -- below then see the winner.
    SELECT coalesce(max(e.version), 0) INTO v_actual
      FROM switchboard.events e WHERE e.stream_id = p_stream;

    -- Idempotency, scoped to the stream: a recorded command returns its first
    -- outcome, unless the same id was recorded for another command.
    IF p_command_id IS NOT NULL THEN
        -- The command's first event carries it; its last event is found
        -- by version in the same stream.
        SELECT 'duplicate', f.stream_id, f.version, l.version, f.tx_id::text::bigint,
               f.position, l.tx_id::text::bigint, l.position, f.append_command_digest
          INTO o_status, o_stream, o_first_version, o_last_version, o_first_commit,
               o_first_sequence, o_last_commit, o_last_sequence, v_digest
          FROM switchboard.events f
          JOIN switchboard.events l
            ON l.stream_id = f.stream_id AND l.version = f.version + f.append_size - 1
         WHERE f.stream_id = p_stream AND f.append_command_id = p_command_id;
        IF FOUND THEN
            IF v_digest IS NOT NULL AND p_command_digest IS NOT NULL
               AND v_digest <> p_command_digest THEN
                o_status := 'idempotency_key_reused';
                o_stream := NULL; o_first_version := NULL; o_last_version := NULL;
                o_first_commit := NULL; o_first_sequence := NULL;
                o_last_commit := NULL; o_last_sequence := NULL;
            END IF;
            RETURN;
        END IF;
    END IF;

    IF p_expected IS NOT NULL AND p_expected <> v_actual THEN
        o_status := 'conflict';
        o_actual := v_actual;
        RETURN;
    END IF;

    -- The first event id (in request order) recorded anywhere already,
    -- checked before the claims and keys, as the contract orders them.
    -- Always: this function serves only appends with claims or key changes
    -- (the others are sql/append_events.sql), and the client re-runs it
    -- after any unique violation (23505, told by SQLSTATE alone) trusting
    -- this check to name a recorded event id.
    SELECT e.id INTO o_event_id
      FROM unnest(p_event_ids) WITH ORDINALITY AS e(id, ord)
      JOIN switchboard.events x ON x.event_id = e.id
     ORDER BY e.ord LIMIT 1;
    IF FOUND THEN
        o_status := 'duplicate_event';
        RETURN;
    END IF;

    IF coalesce(cardinality(p_claim_takes), 0) > 0 THEN
        -- The first claim change (in request order) on a key another stream holds.
        SELECT c.ns, c.val, k.stream_id INTO o_claim_namespace, o_claim_value, o_claim_holder
          FROM unnest(p_claim_namespaces, p_claim_values) WITH ORDINALITY AS c(ns, val, ord)
          JOIN switchboard.claims k ON k.namespace = c.ns AND k.value = c.val
         WHERE k.stream_id <> p_stream
         ORDER BY c.ord LIMIT 1;
        IF FOUND THEN
            o_status := 'claim_taken';
            RETURN;
        END IF;
    END IF;

    -- Keys: a subject that has a row (a key, or the tombstone of an erased
    -- one) cannot get a new key. A concurrent creation that slips past this
    -- check fails the INSERT (23505 on data_keys_pkey); the client re-runs
    -- the append and this check then names the subject.
    IF coalesce(cardinality(p_key_creates), 0) > 0 THEN
        SELECT u.id INTO o_subject
          FROM unnest(p_key_creates) WITH ORDINALITY AS u(id, ord)
          JOIN switchboard.data_keys k ON k.org_id = p_stream AND k.user_id = u.id
         ORDER BY u.ord LIMIT 1;
        IF FOUND THEN
            o_status := 'key_exists';
            RETURN;
        END IF;
    END IF;

    -- Every check passed: from here on, only writes (a RETURN above this
    -- line has written nothing but the stream's lock row).
    IF coalesce(cardinality(p_claim_takes), 0) > 0 THEN
        -- Apply claims: the last change to each key decides. Keys are written in
        -- (namespace, value) order so that concurrent appends cannot deadlock.
        WITH last AS (
            SELECT DISTINCT ON (c.ns, c.val) c.take, c.ns, c.val
              FROM unnest(p_claim_takes, p_claim_namespaces, p_claim_values)
                   WITH ORDINALITY AS c(take, ns, val, ord)
             ORDER BY c.ns, c.val, c.ord DESC
        ), released AS (
            DELETE FROM switchboard.claims k USING last
             WHERE NOT last.take AND k.namespace = last.ns AND k.value = last.val
               AND k.stream_id = p_stream
        )
        INSERT INTO switchboard.claims (namespace, value, stream_id)
        SELECT last.ns, last.val, p_stream FROM last WHERE last.take
         ORDER BY last.ns, last.val
            ON CONFLICT (namespace, value) DO NOTHING;

        -- A key another transaction took after our check (ON CONFLICT waited for
        -- it to commit): roll everything back; the client retries and the check
        -- above then names the holder.
        PERFORM 1
           FROM unnest(p_claim_takes, p_claim_namespaces, p_claim_values) AS c(take, ns, val)
           JOIN switchboard.claims k ON k.namespace = c.ns AND k.value = c.val
          WHERE c.take AND k.stream_id <> p_stream;
        IF FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'serialization_failure',
                MESSAGE = 'a claim was taken concurrently; retry the append';
        END IF;
    END IF;


    -- Keys, checked above.
    IF coalesce(cardinality(p_key_creates), 0) > 0 THEN
        INSERT INTO switchboard.data_keys (org_id, user_id, key)
        SELECT p_stream, u.id, u.k
          FROM unnest(p_key_creates, p_key_bytes) AS u(id, k)
         ORDER BY u.id;
    END IF;
    IF coalesce(cardinality(p_key_shreds), 0) > 0 THEN
        INSERT INTO switchboard.data_keys (org_id, user_id, key, erased_at)
        SELECT DISTINCT p_stream, u.id, NULL::bytea, now()
          FROM unnest(p_key_shreds) AS u(id)
         ORDER BY 2
            ON CONFLICT (org_id, user_id)
            DO UPDATE SET key = NULL,
                          erased_at = coalesce(switchboard.data_keys.erased_at, EXCLUDED.erased_at);
    END IF;

    v_commit := pg_current_xact_id()::text::bigint;
    -- ORDER BY ord: identity values are drawn in insertion order, so
    -- positions grow with versions inside the append.
    WITH inserted AS (
        INSERT INTO switchboard.events (stream_id, version, event_id, event_type,
                schema_version, payload, actor, occurred_at, command_id,
                causation_id, correlation_id, append_command_id,
                append_command_digest, append_size)
        -- The append's command id, digest and size on its first event only.
        SELECT p_stream, v_actual + e.ord, e.id, e.typ, e.sv, e.payload, e.actor,
               e.at, e.cmd, e.cause, e.corr,
               CASE WHEN e.ord = 1 THEN p_command_id END,
               CASE WHEN e.ord = 1 AND p_command_id IS NOT NULL THEN p_command_digest END,
               CASE WHEN e.ord = 1 AND p_command_id IS NOT NULL
                    THEN cardinality(p_event_ids) END
          FROM unnest(p_event_ids, p_event_types, p_schema_versions, p_payloads,
                      p_actors, p_occurred_at, p_command_ids, p_causation_ids,
                      p_correlation_ids)
               WITH ORDINALITY AS e(id, typ, sv, payload, actor, at, cmd, cause, corr, ord)
         ORDER BY e.ord
        RETURNING position
    )
    SELECT min(position), max(position) INTO o_first_sequence, o_last_sequence FROM inserted;

    o_status := 'ok';
    o_stream := p_stream;
    o_first_version := v_actual + 1;
    o_last_version := v_actual + cardinality(p_event_ids);
    o_first_commit := v_commit;
    o_last_commit := v_commit;
END;
$$;
