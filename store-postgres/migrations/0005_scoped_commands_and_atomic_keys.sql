-- Idempotency keys scoped to their stream, command digests, data keys
-- changed atomically with appends, and erasure that nothing resurrects.
--
-- * `commands` is keyed by (stream_id, command_id): an id used by two
--   organizations is two keys, so one organization's command id can neither
--   collide with nor reveal another's. Each row keeps a digest of its
--   command (NULL for rows recorded before this migration: not compared); an
--   append whose id is recorded with another digest is refused.
-- * `switchboard.append` v3 takes the data-key changes of the append: keys
--   created for subjects sealed for the first time (refused when the subject
--   has a row already: the events would be sealed under a key that is not
--   theirs) and keys shredded for deleted users, in the same transaction as
--   the events. A refused or abandoned append leaves no key; a recorded
--   deletion has always erased its user.
-- * Deletions recorded before this migration whose erasure step did not
--   complete are completed here, and snapshots of schema 1 (which held
--   profiles in clear) are removed: schema 2 seals them under the users' keys.
--
-- * A leaner append. Appends without claims or data-key changes — nearly all
--   of them — are one prepared statement (store-postgres/sql/append_events.sql)
--   instead of a PL/pgSQL call; the function below remains for appends that
--   carry claims or keys. Neither takes the `streams` row lock any more, nor
--   keeps a count there: a stream's version is its highest event version, read
--   from the end of UNIQUE (stream_id, version).
--
--   Why every promise still holds without the lock:
--   * expected version: the new events take versions actual+1..; a concurrent
--     append that took them first makes this one fail on
--     events_stream_version_key (it waits for that transaction, then fails),
--     and the client reports the conflict. Versions stay dense: an append only
--     ever extends the highest version it read.
--   * idempotent command ids: the command row's key (stream_id, command_id)
--     refuses a second append of one command in the same statement or
--     transaction as its events; the client then finds the first outcome.
--   * unique event ids, claims and keys: their unique keys, as before.
--   The client tells the cause of a failed statement by asking, in the
--   contract's order: is the command recorded, does the version differ, is
--   an event id taken; if none, it was a race with a transaction that rolled
--   back, and the append is re-run.
--
--   `streams` stays as the lock that orders bulk imports of one stream.
--   Every statement of an append touches the rows of one stream only (and the
--   store-wide claims), as a server sharded by stream needs.
--
-- Sharding note: every unique key of the append's tables now includes the
-- stream (events(stream_id, version), commands(stream_id, command_id),
-- data_keys(org_id, user_id)) except events(event_id) and claims, the one
-- store-wide key by design.

ALTER TABLE switchboard.commands
    ADD COLUMN digest bytea CHECK (digest IS NULL OR length(digest) = 32),
    DROP CONSTRAINT commands_pkey,
    ADD CONSTRAINT commands_pkey PRIMARY KEY (stream_id, command_id);

INSERT INTO switchboard.data_keys (org_id, user_id, key, erased_at)
SELECT DISTINCT e.stream_id, (e.payload ->> 'user')::uuid, NULL::bytea, now()
  FROM switchboard.events e
 WHERE e.event_type = 'UserDeleted' AND e.payload ? 'user'
    ON CONFLICT (org_id, user_id)
    DO UPDATE SET key = NULL,
                  erased_at = coalesce(switchboard.data_keys.erased_at, EXCLUDED.erased_at);

DELETE FROM switchboard.snapshots WHERE schema_version < 2;

DROP FUNCTION switchboard.append(uuid, bigint, uuid, uuid[], text[], bigint[], jsonb[],
    jsonb[], timestamptz[], uuid[], uuid[], uuid[], boolean[], text[], text[]);

CREATE FUNCTION switchboard.append(
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
        SELECT 'duplicate', c.stream_id, c.first_version, c.last_version, c.first_commit,
               c.first_sequence, c.last_commit, c.last_sequence, c.digest
          INTO o_status, o_stream, o_first_version, o_last_version, o_first_commit,
               o_first_sequence, o_last_commit, o_last_sequence, v_digest
          FROM switchboard.commands c
         WHERE c.stream_id = p_stream AND c.command_id = p_command_id;
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

    -- The event-id pre-check, then claims (most appends carry neither claims
    -- nor new keys: skip their statements).
    IF coalesce(cardinality(p_claim_takes), 0) > 0
       OR coalesce(cardinality(p_key_creates), 0) > 0 THEN
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


    IF p_command_id IS NOT NULL THEN
        INSERT INTO switchboard.commands (stream_id, command_id, digest, first_version,
                last_version, first_commit, first_sequence, last_commit, last_sequence)
        VALUES (p_stream, p_command_id, p_command_digest, o_first_version, o_last_version,
                o_first_commit, o_first_sequence, o_last_commit, o_last_sequence);
    END IF;
END;
$$;
