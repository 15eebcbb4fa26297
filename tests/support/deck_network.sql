-- Test network for tests/deck.rs and tests/admin_api.rs: two international vendors (Alpha, Beta),
-- one route each (alpha, beta), both in partition "intl" of customer 1001, who sells 44 at 0.05;
-- beta has a deck from before (44 at 0.02).
INSERT INTO vendors (name, billing_model) VALUES ('Alpha', 'INTERNATIONAL'), ('Beta', 'INTERNATIONAL');
INSERT INTO gateways (vendor_id, name, host, port) SELECT id, 'gw', '127.0.0.1', 5080 FROM vendors;
INSERT INTO routes (name, vendor_id) SELECT lower(name), id FROM vendors;
INSERT INTO partitions (name) VALUES ('intl');
INSERT INTO partition_routes SELECT p.id, r.id FROM partitions p, routes r;
INSERT INTO customers (ban, name, allowed_classes) VALUES ('1001', 'Acme', '{domestic,tollfree,international}');
INSERT INTO customer_partitions (customer_id, partition_id) SELECT c.id, p.id FROM customers c, partitions p;
INSERT INTO customer_rates (customer_id, prefix, rate_inter, rate_intra, rate_local)
SELECT id, '44', 0.05, 0.05, 0.05 FROM customers;
INSERT INTO vendor_rates (route_id, prefix, rate_inter, rate_intra, rate_local)
SELECT id, '44', 0.02, 0.02, 0.02 FROM routes WHERE name = 'beta';
