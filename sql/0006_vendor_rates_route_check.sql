-- vendor_rates.route_id: the same integrity as the foreign key, checked once per statement.
--
-- A foreign key checks each inserted row with its own look-up in `routes` (an RI trigger per
-- row): activating a 1,000,000-row deck spent ~5 of its ~7.7 s there (docs/BENCHMARKS.md, rate
-- deck import). A deck activation or `warpd apply` inserts rows of one or a few routes per
-- statement, so the check below looks at the distinct route ids of the statement once.
--
-- What the foreign key gave, and how it is kept:
--   * an inserted/updated row names an existing route      -> vendor_rates_route_check (per statement)
--   * the route cannot vanish before the inserting
--     transaction commits                                  -> the check takes FOR KEY SHARE on those
--                                                             routes, the lock the RI check takes
--   * ON DELETE CASCADE                                     -> routes_delete_vendor_rates
--   * TRUNCATE routes does not leave orphans                -> routes_truncate_vendor_rates
--   * a route id cannot change under its rates              -> routes_id_immutable
-- The error keeps the foreign key's SQLSTATE (23503) and constraint name, so callers that map
-- foreign-key violations see no difference.

ALTER TABLE vendor_rates DROP CONSTRAINT vendor_rates_route_id_fkey;

CREATE FUNCTION warpd_vendor_rates_route_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing bigint;
BEGIN
    PERFORM 1 FROM routes WHERE id IN (SELECT DISTINCT route_id FROM new_rows) FOR KEY SHARE;
    SELECT n.route_id INTO missing
      FROM (SELECT DISTINCT route_id FROM new_rows) n
     WHERE NOT EXISTS (SELECT 1 FROM routes r WHERE r.id = n.route_id)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'insert or update on table "vendor_rates" violates foreign key constraint "vendor_rates_route_id_fkey"'
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = format('Key (route_id)=(%s) is not present in table "routes".', missing),
                  CONSTRAINT = 'vendor_rates_route_id_fkey',
                  TABLE = 'vendor_rates';
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER vendor_rates_route_check_insert AFTER INSERT ON vendor_rates
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION warpd_vendor_rates_route_check();
CREATE TRIGGER vendor_rates_route_check_update AFTER UPDATE ON vendor_rates
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION warpd_vendor_rates_route_check();

CREATE FUNCTION warpd_routes_delete_vendor_rates() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM vendor_rates WHERE route_id IN (SELECT id FROM old_rows);
    RETURN NULL;
END $$;

CREATE TRIGGER routes_delete_vendor_rates AFTER DELETE ON routes
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION warpd_routes_delete_vendor_rates();

CREATE FUNCTION warpd_routes_truncate_vendor_rates() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE vendor_rates;
    RETURN NULL;
END $$;

CREATE TRIGGER routes_truncate_vendor_rates BEFORE TRUNCATE ON routes
    FOR EACH STATEMENT EXECUTE FUNCTION warpd_routes_truncate_vendor_rates();

CREATE FUNCTION warpd_routes_id_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id <> OLD.id THEN
        RAISE EXCEPTION 'routes.id cannot change (route %)', OLD.name
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER routes_id_immutable BEFORE UPDATE OF id ON routes
    FOR EACH ROW EXECUTE FUNCTION warpd_routes_id_immutable();

