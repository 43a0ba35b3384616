-- One round trip per append; see migrations/0005_scoped_commands_and_atomic_keys.sql.
SELECT * FROM switchboard.append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                                 $16, $17, $18, $19)
