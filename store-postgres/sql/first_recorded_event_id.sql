-- The first of the ids $1 (in their order) that an event already recorded
-- carries: names the duplicate after an append met the unique index on
-- event_id (migration 0004 leaves claim-free appends to it).
SELECT e.id
  FROM unnest($1::uuid[]) WITH ORDINALITY AS e(id, ord)
 WHERE EXISTS (SELECT 1 FROM switchboard.events x WHERE x.event_id = e.id)
 ORDER BY e.ord
 LIMIT 1
