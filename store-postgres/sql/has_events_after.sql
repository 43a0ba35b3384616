-- Whether read_all would return anything after position ($1, $2).
SELECT EXISTS (
    SELECT 1
      FROM switchboard.events
     WHERE tx_id < pg_snapshot_xmin(pg_current_snapshot())
       AND (tx_id, position) > ($1::bigint::text::xid8, $2::bigint)
)
