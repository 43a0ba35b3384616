-- The first of the ids $1 (in their order) that an event already recorded
-- carries: names the duplicate after an append met a unique violation.
SELECT e.id
  FROM unnest($1::uuid[]) WITH ORDINALITY AS e(id, ord)
  JOIN switchboard.events x ON x.event_id = e.id
 ORDER BY e.ord
 LIMIT 1
