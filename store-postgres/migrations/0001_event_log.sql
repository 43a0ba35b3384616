-- The event log and the tables that are changed atomically with it.
-- Every append runs `switchboard.append` (migration 0002) in one transaction.

CREATE TABLE switchboard.events (
    -- Global event counter (Position.sequence). NOT commit order on its own:
    -- a transaction can take a lower value and commit after a higher one.
    position        bigint GENERATED ALWAYS AS IDENTITY,
    -- The appending transaction (Position.commit). Readers only return rows
    -- whose transaction is older than every running one (see read_all.sql).
    tx_id           xid8 NOT NULL DEFAULT pg_current_xact_id(),
    stream_id       uuid NOT NULL,
    version         bigint NOT NULL CHECK (version >= 1),
    event_id        uuid NOT NULL,
    event_type      text NOT NULL CHECK (length(event_type) BETWEEN 1 AND 200),
    schema_version  bigint NOT NULL CHECK (schema_version BETWEEN 0 AND 4294967295),
    payload         jsonb NOT NULL,
    -- Metadata as queryable columns.
    actor           jsonb NOT NULL,
    occurred_at     timestamptz NOT NULL,
    command_id      uuid,
    causation_id    uuid,
    correlation_id  uuid,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_pkey PRIMARY KEY (position),
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, version)
);

-- Log order for read_all.
CREATE INDEX events_log_order ON switchboard.events (tx_id, position);
CREATE INDEX events_correlation_id ON switchboard.events (correlation_id)
    WHERE correlation_id IS NOT NULL;

-- One row per stream: its version, and the row appenders lock to serialise.
CREATE TABLE switchboard.streams (
    stream_id  uuid PRIMARY KEY,
    version    bigint NOT NULL CHECK (version >= 0)
);

-- The outcome of every append that carried a command id (idempotency).
CREATE TABLE switchboard.commands (
    command_id      uuid PRIMARY KEY,
    stream_id       uuid NOT NULL,
    first_version   bigint NOT NULL,
    last_version    bigint NOT NULL,
    first_commit    bigint NOT NULL,
    first_sequence  bigint NOT NULL,
    last_commit     bigint NOT NULL,
    last_sequence   bigint NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);

-- Store-wide unique keys (phone numbers, ...), changed only by appends.
CREATE TABLE switchboard.claims (
    namespace   text NOT NULL CHECK (length(namespace) BETWEEN 1 AND 200),
    value       text NOT NULL CHECK (length(value) BETWEEN 1 AND 200),
    stream_id   uuid NOT NULL,
    claimed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (namespace, value)
);
CREATE INDEX claims_stream_id ON switchboard.claims (stream_id);

CREATE TABLE switchboard.snapshots (
    stream_id       uuid NOT NULL,
    version         bigint NOT NULL CHECK (version >= 0),
    schema_version  bigint NOT NULL CHECK (schema_version BETWEEN 0 AND 4294967295),
    state           jsonb NOT NULL,
    saved_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream_id, version)
);

CREATE TABLE switchboard.checkpoints (
    name        text PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 200),
    commit      bigint NOT NULL CHECK (commit >= 0),
    sequence    bigint NOT NULL CHECK (sequence >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
