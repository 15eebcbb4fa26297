-- warpd schema v1: routing data model (vendors, gateways, routes, partitions, customers, rates,
-- pricing, overrides, exclusions, numbering). Applied once by `warpd migrate`; tracked in
-- warpd_schema_migrations. Money is numeric(12,7) dollars per minute; times are timestamptz.

CREATE TYPE billing_model AS ENUM ('LRN', 'OCN_LATA', 'DNIS', 'INTERNATIONAL');
CREATE TYPE sip_transport AS ENUM ('udp', 'tcp', 'tls');
CREATE TYPE dest_class AS ENUM ('domestic', 'international', 'tollfree', 'premium');

CREATE TABLE vendors (
    id             bigserial PRIMARY KEY,
    name           text NOT NULL UNIQUE CHECK (name <> ''),
    billing_model  billing_model NOT NULL,
    -- dialstring template; placeholders ${number} ${host} ${port} ${transport}
    dialstring     text NOT NULL DEFAULT 'sip:+${number}@${host}:${port};transport=${transport}',
    enabled        boolean NOT NULL DEFAULT true,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE gateways (
    id         bigserial PRIMARY KEY,
    vendor_id  bigint NOT NULL REFERENCES vendors(id) ON DELETE CASCADE,
    name       text NOT NULL CHECK (name <> ''),
    host       text NOT NULL CHECK (host <> ''),
    port       integer NOT NULL DEFAULT 5060 CHECK (port BETWEEN 1 AND 65535),
    transport  sip_transport NOT NULL DEFAULT 'udp',
    priority   integer NOT NULL DEFAULT 10,
    weight     integer NOT NULL DEFAULT 1 CHECK (weight >= 0),
    enabled    boolean NOT NULL DEFAULT true,
    UNIQUE (vendor_id, name)
);

-- a vendor trunk group offered for routing
CREATE TABLE routes (
    id         bigserial PRIMARY KEY,
    name       text NOT NULL UNIQUE CHECK (name <> ''),
    vendor_id  bigint NOT NULL REFERENCES vendors(id) ON DELETE CASCADE,
    priority   integer NOT NULL DEFAULT 10,
    weight     integer NOT NULL DEFAULT 1 CHECK (weight >= 0),
    capacity   integer CHECK (capacity IS NULL OR capacity >= 0),
    enabled    boolean NOT NULL DEFAULT true
);

CREATE TABLE partitions (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (name <> ''),
    description text NOT NULL DEFAULT ''
);

CREATE TABLE partition_routes (
    partition_id bigint NOT NULL REFERENCES partitions(id) ON DELETE CASCADE,
    route_id     bigint NOT NULL REFERENCES routes(id) ON DELETE CASCADE,
    PRIMARY KEY (partition_id, route_id)
);

CREATE TABLE customers (
    id                     bigserial PRIMARY KEY,
    ban                    text NOT NULL UNIQUE CHECK (ban <> ''),
    name                   text NOT NULL DEFAULT '',
    enabled                boolean NOT NULL DEFAULT true,
    max_rate               numeric(12,7) CHECK (max_rate IS NULL OR max_rate >= 0),
    blocked_prefixes       text[] NOT NULL DEFAULT '{}',
    allowed_classes        dest_class[] NOT NULL DEFAULT '{domestic,tollfree}',
    max_results            integer NOT NULL DEFAULT 5 CHECK (max_results BETWEEN 1 AND 100),
    allow_negative_margin  boolean NOT NULL DEFAULT false,
    -- default margin rule: sell = buy * (1 + margin_percent/100) + fixed_fee
    margin_percent         numeric(9,4),
    fixed_fee              numeric(12,7) NOT NULL DEFAULT 0
);

CREATE TABLE customer_source_ips (
    customer_id bigint NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    cidr        cidr NOT NULL UNIQUE,
    PRIMARY KEY (customer_id, cidr)
);

-- ordered partitions of a customer with optional time window
-- days: ISO weekday numbers 1=Mon..7=Sun (empty = every day); start/end local times in tz;
-- end < start means the window crosses midnight.
CREATE TABLE customer_partitions (
    customer_id  bigint NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    partition_id bigint NOT NULL REFERENCES partitions(id) ON DELETE CASCADE,
    priority     integer NOT NULL DEFAULT 10,
    days         smallint[] NOT NULL DEFAULT '{}',
    start_time   time,
    end_time     time,
    tz           text NOT NULL DEFAULT 'UTC',
    PRIMARY KEY (customer_id, partition_id),
    CHECK ((start_time IS NULL) = (end_time IS NULL))
);

-- margin rules more specific than the customer default (longest prefix wins; zone NULL = any zone)
CREATE TABLE customer_margin_rules (
    id              bigserial PRIMARY KEY,
    customer_id     bigint NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    prefix          text NOT NULL DEFAULT '' CHECK (prefix ~ '^[0-9]*$'),
    margin_percent  numeric(9,4) NOT NULL,
    fixed_fee       numeric(12,7) NOT NULL DEFAULT 0,
    UNIQUE (customer_id, prefix)
);

-- customer sell deck (longest prefix of the dialed E.164 digits wins)
CREATE TABLE customer_rates (
    customer_id     bigint NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    prefix          text NOT NULL CHECK (prefix ~ '^[0-9]+$'),
    rate_inter      numeric(12,7) CHECK (rate_inter >= 0),
    rate_intra      numeric(12,7) CHECK (rate_intra >= 0),
    rate_local      numeric(12,7) CHECK (rate_local >= 0),
    effective_from  timestamptz NOT NULL DEFAULT '-infinity',
    effective_until timestamptz NOT NULL DEFAULT 'infinity',
    PRIMARY KEY (customer_id, prefix, effective_from)
);

-- vendor buy rates. Key: prefix (digits of E.164 without '+', e.g. '1212555') for LRN, DNIS and
-- INTERNATIONAL vendors; (ocn, lata) for OCN_LATA vendors. International/toll-free rows carry one rate
-- in all three zone columns.
CREATE TABLE vendor_rates (
    id              bigserial PRIMARY KEY,
    route_id        bigint NOT NULL REFERENCES routes(id) ON DELETE CASCADE,
    prefix          text CHECK (prefix ~ '^[0-9]+$'),
    ocn             text,
    lata            text,
    rate_inter      numeric(12,7) CHECK (rate_inter >= 0),
    rate_intra      numeric(12,7) CHECK (rate_intra >= 0),
    rate_local      numeric(12,7) CHECK (rate_local >= 0),
    min_seconds     integer NOT NULL DEFAULT 6 CHECK (min_seconds >= 0),
    inc_seconds     integer NOT NULL DEFAULT 6 CHECK (inc_seconds >= 1),
    effective_from  timestamptz NOT NULL DEFAULT '-infinity',
    effective_until timestamptz NOT NULL DEFAULT 'infinity',
    CHECK ((prefix IS NOT NULL) <> (ocn IS NOT NULL AND lata IS NOT NULL)),
    CHECK (effective_until > effective_from)
);
CREATE INDEX vendor_rates_route_prefix ON vendor_rates (route_id, prefix, effective_from);
CREATE INDEX vendor_rates_route_ocn ON vendor_rates (route_id, ocn, lata, effective_from) WHERE ocn IS NOT NULL;

-- force a route first (customer NULL = all customers, prefix '' = all destinations)
CREATE TABLE overrides (
    id              bigserial PRIMARY KEY,
    customer_id     bigint REFERENCES customers(id) ON DELETE CASCADE,
    prefix          text NOT NULL DEFAULT '' CHECK (prefix ~ '^[0-9]*$'),
    route_id        bigint NOT NULL REFERENCES routes(id) ON DELETE CASCADE,
    rate            numeric(12,7) CHECK (rate IS NULL OR rate >= 0),
    valid_from      timestamptz NOT NULL DEFAULT '-infinity',
    valid_until     timestamptz NOT NULL DEFAULT 'infinity',
    days            smallint[] NOT NULL DEFAULT '{}',
    start_time      time,
    end_time        time,
    tz              text NOT NULL DEFAULT 'UTC',
    note            text NOT NULL DEFAULT '',
    CHECK ((start_time IS NULL) = (end_time IS NULL))
);
CREATE UNIQUE INDEX overrides_identity ON overrides (coalesce(customer_id, 0), prefix, route_id);

-- exclusions: vendor NULL = the destination prefix is blocked (403); vendor set = that vendor's
-- routes are dropped for the prefix ('' = everywhere). customer NULL = global.
CREATE TABLE exclusions (
    id          bigserial PRIMARY KEY,
    customer_id bigint REFERENCES customers(id) ON DELETE CASCADE,
    prefix      text NOT NULL DEFAULT '' CHECK (prefix ~ '^[0-9]*$'),
    vendor_id   bigint REFERENCES vendors(id) ON DELETE CASCADE,
    note        text NOT NULL DEFAULT '',
    CHECK (vendor_id IS NOT NULL OR prefix <> '')
);
CREATE UNIQUE INDEX exclusions_identity ON exclusions (coalesce(customer_id, 0), prefix, coalesce(vendor_id, 0));

-- numbering -------------------------------------------------------------------------------------
-- NANP blocks: npanxx is 6 digits (NPA-NXX) or 7 digits (NPA-NXX-X thousands block; more specific)
CREATE TABLE npanxx (
    npanxx       text PRIMARY KEY CHECK (npanxx ~ '^[2-9][0-9]{2}[2-9][0-9]{2}[0-9]?$'),
    state        text NOT NULL,
    lata         text NOT NULL,
    ocn          text NOT NULL,
    rate_center  text NOT NULL DEFAULT ''
);

-- pairs of NPA-NXX that are a local call (stored both ways by the importer)
CREATE TABLE local_calling (
    a_npanxx text NOT NULL CHECK (a_npanxx ~ '^[0-9]{6}$'),
    b_npanxx text NOT NULL CHECK (b_npanxx ~ '^[0-9]{6}$'),
    PRIMARY KEY (a_npanxx, b_npanxx)
);

-- ported numbers: 10-digit NANP TN -> 10-digit LRN
CREATE TABLE lnp (
    tn  text PRIMARY KEY CHECK (tn ~ '^[2-9][0-9]{2}[2-9][0-9]{6}$'),
    lrn text NOT NULL CHECK (lrn ~ '^[2-9][0-9]{2}[2-9][0-9]{6}$')
);

-- do-not-originate: E.164 digits without '+' (e.g. 18005551212) that must never appear as ANI
CREATE TABLE dno (
    number text PRIMARY KEY CHECK (number ~ '^[0-9]{4,15}$'),
    reason text NOT NULL DEFAULT ''
);

-- change notification: any change to routing data wakes the snapshot reloader (debounced there)
CREATE FUNCTION warpd_notify_routing_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('warpd_routing', TG_TABLE_NAME);
    RETURN NULL;
END $$;

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['vendors','gateways','routes','partitions','partition_routes','customers',
        'customer_source_ips','customer_partitions','customer_margin_rules','customer_rates',
        'vendor_rates','overrides','exclusions','npanxx','local_calling','lnp','dno']
    LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %I
                        FOR EACH STATEMENT EXECUTE FUNCTION warpd_notify_routing_change()',
                       t || '_notify', t);
    END LOOP;
END $$;
