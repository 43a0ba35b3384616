-- switchboard.append, version 2: the same checks and effects as migration
-- 0002 (read it for the why of each step), except:
--
-- * the claim statements are skipped when an append carries no claims — most
--   appends: only adding and releasing numbers claim (R-NUM-06) — and so is
--   the event-id pre-check, left to the unique index (see below);
-- * it no longer calls pg_notify. PostgreSQL queues a transaction's
--   notifications under one cluster-wide lock at commit, so notifying appends
--   committed one at a time; the store now announces appends itself, at most
--   one NOTIFY per couple of milliseconds (store-postgres/src/announcer.rs).
--   Direct callers of this function who want subscribers woken at once send
--   `NOTIFY switchboard_events` themselves; otherwise subscribers find the
--   events at their next poll.
--
-- Same signature, so CREATE OR REPLACE swaps it in place, atomically with the
-- migration's transaction; callers are unchanged.
CREATE OR REPLACE FUNCTION switchboard.append(
    p_stream            uuid,
    p_expected          bigint,        -- NULL: any version; n: exactly n (0: no stream)
    p_command_id        uuid,
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
    OUT o_status          text,        -- ok | duplicate | conflict | duplicate_event | claim_taken
    OUT o_actual          bigint,
    OUT o_event_id        uuid,
    OUT o_claim_namespace text,
    OUT o_claim_value     text,
    OUT o_claim_holder    uuid,
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
    THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'switchboard.append: no events, or arrays of different lengths';
    END IF;

    -- Serialise appenders of this stream: create its row if needed, then lock it.
    INSERT INTO switchboard.streams (stream_id, version) VALUES (p_stream, 0)
        ON CONFLICT (stream_id) DO NOTHING;
    SELECT s.version INTO v_actual
        FROM switchboard.streams s WHERE s.stream_id = p_stream FOR UPDATE;

    -- Idempotency: a recorded command returns its first outcome.
    IF p_command_id IS NOT NULL THEN
        SELECT 'duplicate', c.stream_id, c.first_version, c.last_version, c.first_commit,
               c.first_sequence, c.last_commit, c.last_sequence
          INTO o_status, o_stream, o_first_version, o_last_version, o_first_commit,
               o_first_sequence, o_last_commit, o_last_sequence
          FROM switchboard.commands c WHERE c.command_id = p_command_id;
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;

    IF p_expected IS NOT NULL AND p_expected <> v_actual THEN
        o_status := 'conflict';
        o_actual := v_actual;
        RETURN;
    END IF;

    -- Claims (most appends carry none: skip their statements).
    IF coalesce(cardinality(p_claim_takes), 0) > 0 THEN
        -- The first event id (in request order) recorded anywhere already:
        -- checked before the claims, as the contract orders them. Without
        -- claims there is nothing to order it against, and the unique index
        -- on event_id refuses a duplicate at the INSERT below (23505 on
        -- events_event_id_key), which the client turns into the same
        -- duplicate_event answer; that saves an index probe per event.
        SELECT e.id INTO o_event_id
          FROM unnest(p_event_ids) WITH ORDINALITY AS e(id, ord)
         WHERE EXISTS (SELECT 1 FROM switchboard.events x WHERE x.event_id = e.id)
         ORDER BY e.ord LIMIT 1;
        IF FOUND THEN
            o_status := 'duplicate_event';
            RETURN;
        END IF;

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

    v_commit := pg_current_xact_id()::text::bigint;
    -- ORDER BY ord: identity values are drawn in insertion order, so
    -- positions grow with versions inside the append.
    WITH inserted AS (
        INSERT INTO switchboard.events (stream_id, version, event_id, event_type,
                schema_version, payload, actor, occurred_at, command_id,
                causation_id, correlation_id)
        SELECT p_stream, v_actual + e.ord, e.id, e.typ, e.sv, e.payload, e.actor,
               e.at, e.cmd, e.cause, e.corr
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

    UPDATE switchboard.streams SET version = o_last_version WHERE stream_id = p_stream;

    IF p_command_id IS NOT NULL THEN
        INSERT INTO switchboard.commands (command_id, stream_id, first_version,
                last_version, first_commit, first_sequence, last_commit, last_sequence)
        VALUES (p_command_id, p_stream, o_first_version, o_last_version,
                o_first_commit, o_first_sequence, o_last_commit, o_last_sequence);
    END IF;

END;
$$;
