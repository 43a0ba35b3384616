-- One round trip per append; see migrations/0002_append_function.sql.
SELECT * FROM switchboard.append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
