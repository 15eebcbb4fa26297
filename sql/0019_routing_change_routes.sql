-- Issue 23: which routes a vendor_rates change touched, so that a warpd re-reads only those
-- routes' rates (a one-route deck activation under 20M rows: ~1M rows read instead of 20M).
--
-- Every statement on vendor_rates logs (its transaction's xid, each route id its rows had
-- before or after it) here, in the same transaction, from statement-level triggers with
-- transition tables (one DISTINCT over the statement's rows, not one insert per row). TRUNCATE
-- has no transition table: it logs route_id NULL, "every route". A warpd's incremental build
-- reads the routes logged by the transactions its live snapshot did not see, in the same
-- REPEATABLE READ transaction as the rows (see sql/0017 and src/db/loader/incremental.rs).
--
-- Pruned with the change log of 0017 (same rule, same horizon): rows below the horizon go.
CREATE TABLE routing_change_routes (
    xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    -- NULL: every route (TRUNCATE)
    route_id bigint,
    CONSTRAINT routing_change_routes_key UNIQUE NULLS NOT DISTINCT (xid, route_id)
);

CREATE FUNCTION warpd_log_vendor_rate_routes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO routing_change_routes (route_id)
            SELECT DISTINCT route_id FROM new_rows ON CONFLICT DO NOTHING;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO routing_change_routes (route_id)
            SELECT DISTINCT route_id FROM old_rows ON CONFLICT DO NOTHING;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO routing_change_routes (route_id)
            SELECT route_id FROM old_rows UNION SELECT route_id FROM new_rows
            ON CONFLICT DO NOTHING;
    ELSE
        INSERT INTO routing_change_routes (route_id) VALUES (NULL) ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER vendor_rates_log_routes_insert AFTER INSERT ON vendor_rates
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION warpd_log_vendor_rate_routes();
CREATE TRIGGER vendor_rates_log_routes_update AFTER UPDATE ON vendor_rates
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION warpd_log_vendor_rate_routes();
CREATE TRIGGER vendor_rates_log_routes_delete AFTER DELETE ON vendor_rates
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION warpd_log_vendor_rate_routes();
CREATE TRIGGER vendor_rates_log_routes_truncate AFTER TRUNCATE ON vendor_rates
    FOR EACH STATEMENT EXECUTE FUNCTION warpd_log_vendor_rate_routes();

-- 0017's function, pruning this log with the change log
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
            -- every transaction below the horizon has finished (pruned < xmin)
            DELETE FROM routing_change_routes
                WHERE xid < (SELECT horizon FROM routing_change_log_horizon);
        END IF;
    END IF;
    PERFORM pg_notify('warpd_routing', TG_TABLE_NAME);
    RETURN NULL;
END $$;

-- the vendor_rates changes committed before this migration logged no routes: a snapshot read
-- before it cannot be patched route by route (the horizon says "build in full")
UPDATE routing_change_log_horizon SET horizon = greatest(horizon, pg_current_xact_id());
