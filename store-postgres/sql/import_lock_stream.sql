-- Bulk import: create and lock the stream row; the import needs version 0.
INSERT INTO switchboard.streams (stream_id, version) VALUES ($1, 0)
    ON CONFLICT (stream_id) DO NOTHING;
