INSERT INTO switchboard.checkpoints (name, commit, sequence) VALUES ($1, $2, $3)
ON CONFLICT (name)
DO UPDATE SET commit = EXCLUDED.commit, sequence = EXCLUDED.sequence, updated_at = now()
