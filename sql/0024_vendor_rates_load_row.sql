-- issue 23: what a snapshot build reads of a vendor rate besides its key, packed into one value
-- by PostgreSQL when the row is written (a generated column: always equal to the columns it is
-- made of, nothing for a writer to maintain). A full build sends every row of vendor_rates, and
-- each value a binary COPY sends costs the server a send function and a buffer, about as much
-- as reading the row; the three numerics cost the most. Measured on 5M rows (server CPU of the
-- loader's COPY): 2.35 s with the eight columns, 1.5 s with this one. The price: a write
-- computes it (about 0.8 µs a row) and the table grows by about 45 bytes a row.
--
-- Layout (decoded by warpd_core::pgcopy::pg_packed_rate_row):
--   route_id int8 | min_seconds int4 | inc_seconds int4 | effective_from, effective_until as
--   timestamptz_send | rate_inter, rate_intra, rate_local each numeric_send, or \xffff for NULL
--
-- Adding it rewrites the table once (about 2 s per million rows, under an exclusive lock; dips
-- go on from the in-memory snapshot meanwhile, deck writes and snapshot builds wait).
-- One definition of the packing, for the column and for any view that stands in for
-- vendor_rates (the deck shadow's candidate view, src/deck/report.rs). IMMUTABLE and a single
-- expression: PostgreSQL inlines it.
CREATE FUNCTION warpd_rate_load_row(route_id bigint, min_seconds integer, inc_seconds integer,
        effective_from timestamptz, effective_until timestamptz,
        rate_inter numeric, rate_intra numeric, rate_local numeric) RETURNS bytea
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN int8send(route_id) || int4send(min_seconds) || int4send(inc_seconds)
        || timestamptz_send(effective_from) || timestamptz_send(effective_until)
        || coalesce(numeric_send(rate_inter), '\xffff'::bytea)
        || coalesce(numeric_send(rate_intra), '\xffff'::bytea)
        || coalesce(numeric_send(rate_local), '\xffff'::bytea);

ALTER TABLE vendor_rates ADD COLUMN load_row bytea NOT NULL GENERATED ALWAYS AS (
    warpd_rate_load_row(route_id, min_seconds, inc_seconds, effective_from, effective_until,
                        rate_inter, rate_intra, rate_local)
) STORED;
