-- Records where subscriber $1 stopped. The update takes every value from
-- EXCLUDED (updated_at from the column's default), never a function call in
-- DO UPDATE, as a server sharded by key needs.
INSERT INTO switchboard.checkpoints (name, commit, sequence) VALUES ($1, $2, $3)
ON CONFLICT (name)
DO UPDATE SET commit = EXCLUDED.commit, sequence = EXCLUDED.sequence,
              updated_at = EXCLUDED.updated_at
