-- Issue 16: the routing data version. One counter, bumped in the same transaction by every
-- statement that changes a table the routing snapshot is built from (the statement-level
-- `*_notify` triggers of 0001_routing.sql and 0004_media.sql, whose function this replaces), and
-- read by the snapshot loader inside its own REPEATABLE READ transaction. A reload request
-- first reads it: equal to the live snapshot's version means nothing was committed since that
-- snapshot's view, so no build is needed.
--
-- A row, not a sequence: nextval() is not transactional (a bump would be visible before its
-- change commits, and a snapshot loaded in between would carry the new version without the
-- change). The price: writers of routing data queue on this row until they commit, which
-- serializes routing writes (admin changes, deck activations); dips and reads are unaffected.
CREATE TABLE routing_data_version (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    version bigint NOT NULL
);
INSERT INTO routing_data_version (id, version) VALUES (true, 1);

CREATE OR REPLACE FUNCTION warpd_notify_routing_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE routing_data_version SET version = version + 1 WHERE id;
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
