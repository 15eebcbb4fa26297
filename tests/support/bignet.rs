//! The benchmark network in PostgreSQL (benches/snapshot_load, the scale test of incremental
//! builds): `routes` vendor routes each pricing the same `prefixes` NANP prefixes (rows =
//! routes × prefixes), 2 partitions, 1,000 customers (BAN 200001..201000, ids 1..1000), 640k
//! NPA-NXX. Same shape as `warpd::routing::synthetic`: prefix i < 640k is 1+NPA+NXX, beyond
//! that 1+NPA+NXX+X. The rows are inserted route by route, one statement each, so each route's
//! rows lie together in the heap as a deck import or activation leaves them (a one-route read
//! then visits that route's pages, not every page of the table).

/// The SQL that generates the network into a migrated, empty database.
pub fn sql(routes: i64, prefixes: i64) -> String {
    format!(
        "INSERT INTO vendors (id, name, billing_model) SELECT r, 'vendor' || r, 'LRN' FROM generate_series(1, {routes}) r;
         INSERT INTO gateways (vendor_id, name, host) SELECT r, 'gw0', '192.0.2.' || (r % 250 + 1) FROM generate_series(1, {routes}) r;
         INSERT INTO routes (id, name, vendor_id, priority) SELECT 1000 + r, 'route' || r, r, r % 3 FROM generate_series(1, {routes}) r;
         INSERT INTO partitions (id, name) VALUES (1, 'all'), (2, 'half');
         INSERT INTO partition_routes SELECT 1, 1000 + r FROM generate_series(1, {routes}) r;
         INSERT INTO partition_routes SELECT 2, 1000 + r FROM generate_series(2, {routes}, 2) r;
         INSERT INTO customers (id, ban, max_rate, margin_percent) SELECT c, (200000 + c)::text, 0.01, 15 FROM generate_series(1, 1000) c;
         INSERT INTO customer_partitions (customer_id, partition_id) SELECT c, 1 + c % 2 FROM generate_series(1, 1000) c;
         CREATE TEMP TABLE p AS
           SELECT i, CASE WHEN i < 640000
               THEN '1' || (200 + i / 800)::text || (200 + i % 800)::text
               ELSE '1' || (200 + ((i - 640000) / 10) / 800)::text || (200 + ((i - 640000) / 10) % 800)::text || ((i - 640000) % 10)::text
             END AS prefix
           FROM generate_series(0, {prefixes} - 1) i;
         ALTER TABLE vendor_rates SET UNLOGGED;
         DO $$ BEGIN FOR r IN 1..{routes} LOOP
           INSERT INTO vendor_rates (route_id, prefix, rate_inter, rate_intra, rate_local)
             SELECT 1000 + r, p.prefix, 0.001 + ((p.i * 31 + r * 7) % 1000) / 100000.0,
                    0.001 + ((p.i * 17 + r * 5) % 1000) / 100000.0, 0.001 + ((p.i * 13 + r) % 500) / 100000.0
             FROM p;
         END LOOP; END $$;
         INSERT INTO npanxx (npanxx, state, lata, ocn)
           SELECT substr(prefix, 2, 6), 'NY', '132', '9104' FROM p WHERE i < 640000;
         DROP TABLE p;
         ANALYZE;"
    )
}
