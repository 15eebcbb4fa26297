-- Issue 23: what changed, for incremental snapshot builds. Every transaction that changes a
-- table the routing snapshot is built from logs (its xid, the table) here, in that same
-- transaction, from the statement-level trigger function of 0011 (replaced below). A warpd
-- keeps the PostgreSQL snapshot (`pg_current_snapshot()`) its routing snapshot was read at;
-- the next build, in its own REPEATABLE READ transaction, reads the rows logged by transactions
-- that snapshot did not see (`NOT pg_visible_in_snapshot(xid, old)`): exactly the changes
-- committed since, whatever notifications were missed. It re-reads only the snapshot parts
-- those tables feed (routing::Part::of_table) and shares the others.
--
-- One row per (transaction, table): a deck import of a million rows in one transaction logs one
-- row per table it touched. Rows older than 10 minutes are pruned now and then (1 % of the
-- changing transactions); `routing_change_log_horizon` then records the newest pruned xid + 1,
-- and a warpd whose old snapshot's xmin is below it cannot tell what changed: it builds in full.
CREATE TABLE routing_change_log (
    xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    table_name text NOT NULL,
    logged_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (xid, table_name)
);

CREATE TABLE routing_change_log_horizon (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    -- every logged transaction below this xid may have been pruned
    horizon xid8 NOT NULL
);
INSERT INTO routing_change_log_horizon (horizon) VALUES (pg_current_xact_id());

CREATE OR REPLACE FUNCTION warpd_notify_routing_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    pruned xid8;
BEGIN
    INSERT INTO routing_data_changes DEFAULT VALUES ON CONFLICT (xid) DO NOTHING;
    INSERT INTO routing_change_log (table_name) VALUES (TG_TABLE_NAME) ON CONFLICT DO NOTHING;
    IF random() < 0.01 THEN
        -- fold the committed rows of other transactions into this one's (the sum is kept: a
        -- concurrent folder skips the rows this one deleted once it commits)
        WITH gone AS (
            DELETE FROM routing_data_changes WHERE xid <> pg_current_xact_id() RETURNING weight
        )
        UPDATE routing_data_changes SET weight = weight + (SELECT coalesce(sum(weight), 0) FROM gone)
            WHERE xid = pg_current_xact_id();
        -- prune the change log: only rows of transactions finished before any running one began
        WITH gone AS (
            DELETE FROM routing_change_log
            WHERE logged_at < now() - interval '10 minutes'
              AND xid < pg_snapshot_xmin(pg_current_snapshot())
            RETURNING xid
        )
        SELECT max(xid::text::bigint)::text::xid8 INTO pruned FROM gone;
        IF pruned IS NOT NULL THEN
            UPDATE routing_change_log_horizon
                SET horizon = greatest(horizon, (pruned::text::bigint + 1)::text::xid8);
        END IF;
    END IF;
    PERFORM pg_notify('warpd_routing', TG_TABLE_NAME);
    RETURN NULL;
END $$;
