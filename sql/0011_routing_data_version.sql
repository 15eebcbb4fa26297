-- Issue 16: the routing data version. Every transaction that changes a table the routing
-- snapshot is built from (the statement-level `*_notify` triggers of 0001_routing.sql and
-- 0004_media.sql, whose function this replaces) adds one to it, in that same transaction; the
-- snapshot loader reads it inside its own REPEATABLE READ transaction. A reload request first
-- reads it: equal to the live snapshot's version means nothing was committed since that
-- snapshot's view, so no build is needed.
--
-- Not a sequence: nextval() is not transactional (a bump would be visible before its change
-- commits, and a snapshot loaded in between would carry the new version without the change).
-- Not one counter row either: every routing writer would queue on it from its first change until
-- it commits (a deck import would hold up every admin change, and two writers touching the same
-- rows in different orders could deadlock on it). Instead each changing transaction inserts its
-- own row (keyed by its transaction id, so no writer waits for another) and the version is the
-- sum of the rows' weights: it grows by exactly one with every committed changing transaction.
-- Now and then (1 % of the changing transactions) a writer folds the committed rows into its
-- own, which keeps the sum and the table small.
CREATE TABLE routing_data_changes (
    xid xid8 PRIMARY KEY DEFAULT pg_current_xact_id(),
    weight bigint NOT NULL DEFAULT 1 CHECK (weight > 0)
);
INSERT INTO routing_data_changes (weight) VALUES (1);

CREATE VIEW routing_data_version AS
    SELECT coalesce(sum(weight), 0)::bigint AS version FROM routing_data_changes;

CREATE OR REPLACE FUNCTION warpd_notify_routing_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO routing_data_changes DEFAULT VALUES ON CONFLICT (xid) DO NOTHING;
    IF random() < 0.01 THEN
        -- fold the committed rows of other transactions into this one's (the sum is kept: a
        -- concurrent folder skips the rows this one deleted once it commits)
        WITH gone AS (
            DELETE FROM routing_data_changes WHERE xid <> pg_current_xact_id() RETURNING weight
        )
        UPDATE routing_data_changes SET weight = weight + (SELECT coalesce(sum(weight), 0) FROM gone)
            WHERE xid = pg_current_xact_id();
    END IF;
    PERFORM pg_notify('warpd_routing', TG_TABLE_NAME);
    RETURN NULL;
END $$;

-- every table the snapshot loader reads has the statement-level trigger (0001 and 0004 created
-- them; this makes sure, so a table added since cannot be missed silently)
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['vendors','gateways','routes','partitions','partition_routes','customers',
        'customer_source_ips','customer_partitions','customer_margin_rules','customer_rates',
        'vendor_rates','overrides','exclusions','npanxx','local_calling','lnp','dno','media_policies']
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = t || '_notify'
                       AND tgrelid = t::regclass) THEN
            EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %I
                            FOR EACH STATEMENT EXECUTE FUNCTION warpd_notify_routing_change()',
                           t || '_notify', t);
        END IF;
    END LOOP;
END $$;
