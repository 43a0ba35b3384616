COPY switchboard.events (stream_id, version, event_id, event_type, schema_version, payload,
                         actor, occurred_at, command_id, causation_id, correlation_id)
FROM STDIN (FORMAT binary)
