-- Issue 19: customer trunks, phone numbers (DIDs) and origination sources.
--
-- A customer has one or more trunks. A trunk is recognised on the outbound path by its source
-- CIDRs (trunk_sources) or its SIP digest credentials (trunk_credentials: username + realm + HA1
-- only; a password is never stored), and receives inbound calls on its destinations
-- (trunk_destinations) in failover order. A number (DID) belongs to exactly one customer (its
-- primary key) and, when routable, to one trunk of THAT customer (the composite foreign key).
-- Vendors deliver inbound calls from their gateways' addresses or from origination_sources.
--
-- Existing customers' customer_source_ips keep working unchanged (both are kept, nothing is
-- migrated): a dip by src_ip first looks for a customer source, then for a trunk source.
--
-- Every table here is read by the snapshot loader, so each carries the routing-change trigger of
-- 0011 (bumps routing_data_version, NOTIFY warpd_routing).

CREATE TYPE number_status AS ENUM ('active', 'reserved', 'disabled', 'porting-in');

CREATE TABLE trunks (
    id                   bigserial PRIMARY KEY,
    name                 text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    customer_id          bigint NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    max_concurrent_calls integer CHECK (max_concurrent_calls IS NULL OR max_concurrent_calls >= 0),
    max_cps              integer CHECK (max_cps IS NULL OR max_cps >= 0),
    -- the media policy applied to the trunk's calls (NULL: the customer's/route's as before)
    media_policy_id      bigint REFERENCES media_policies(id) ON DELETE SET NULL,
    enabled              boolean NOT NULL DEFAULT true,
    updated_at           timestamptz NOT NULL DEFAULT now(),
    -- target of numbers' (trunk_id, customer_id): a number's trunk is its customer's
    UNIQUE (id, customer_id)
);
CREATE INDEX trunks_customer ON trunks (customer_id);

-- a source network belongs to one trunk: no two rows overlap (nor equal)
CREATE TABLE trunk_sources (
    trunk_id bigint NOT NULL REFERENCES trunks(id) ON DELETE CASCADE,
    cidr     cidr NOT NULL,
    PRIMARY KEY (trunk_id, cidr),
    CONSTRAINT trunk_sources_no_overlap EXCLUDE USING gist (cidr inet_ops WITH &&)
);

-- SIP digest credentials: HA1 = MD5(username ":" realm ":" password), lower-case hex
CREATE TABLE trunk_credentials (
    id       bigserial PRIMARY KEY,
    trunk_id bigint NOT NULL REFERENCES trunks(id) ON DELETE CASCADE,
    username text NOT NULL CHECK (username ~ '^[A-Za-z0-9._~!$&''()*+,;=%-]{1,64}$'),
    realm    text NOT NULL CHECK (realm ~ '^[A-Za-z0-9.-]{1,128}$'),
    ha1      text NOT NULL CHECK (ha1 ~ '^[0-9a-f]{32}$'),
    UNIQUE (username, realm)
);

-- where calls TO the customer go: a URI template (${number} = the E.164 digits) or host/port/
-- transport (sip:+${number}@host:port;transport=…); priority ascending, weight within a priority
CREATE TABLE trunk_destinations (
    id        bigserial PRIMARY KEY,
    trunk_id  bigint NOT NULL REFERENCES trunks(id) ON DELETE CASCADE,
    uri       text CHECK (uri ~ '^sips?:[^[:space:][:cntrl:]]{1,250}$'),
    host      text CHECK (host ~ '^[A-Za-z0-9.:\[\]-]{1,253}$'),
    port      integer NOT NULL DEFAULT 5060 CHECK (port BETWEEN 1 AND 65535),
    transport sip_transport NOT NULL DEFAULT 'udp',
    priority  integer NOT NULL DEFAULT 10,
    weight    integer NOT NULL DEFAULT 1 CHECK (weight >= 0),
    enabled   boolean NOT NULL DEFAULT true,
    CHECK (uri IS NOT NULL OR host IS NOT NULL)
);
CREATE INDEX trunk_destinations_trunk ON trunk_destinations (trunk_id);

CREATE TABLE numbers (
    -- E.164 with '+': one row per number, so a number belongs to one customer
    number       text PRIMARY KEY CHECK (number ~ '^\+[1-9][0-9]{6,14}$'),
    customer_id  bigint NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    -- NULL: not routable yet (a reserved number); else a trunk of the same customer
    trunk_id     bigint,
    status       number_status NOT NULL DEFAULT 'active',
    voice        boolean NOT NULL DEFAULT true,
    fax          boolean NOT NULL DEFAULT false,
    -- per-number destination override (a SIP URI template like trunk_destinations.uri)
    destination  text CHECK (destination ~ '^sips?:[^[:space:][:cntrl:]]{1,250}$'),
    -- per-minute sell rate of inbound calls to this number (currency units)
    inbound_rate numeric(12,7) NOT NULL DEFAULT 0 CHECK (inbound_rate >= 0 AND inbound_rate <= 429.4967295),
    -- recorded for billing export only
    monthly_fee  numeric(12,7) CHECK (monthly_fee IS NULL OR monthly_fee >= 0),
    cnam         text CHECK (cnam ~ '^[^[:cntrl:]]{1,15}$'),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (trunk_id, customer_id) REFERENCES trunks (id, customer_id) ON DELETE RESTRICT
);
CREATE INDEX numbers_customer ON numbers (customer_id);
CREATE INDEX numbers_trunk ON numbers (trunk_id);

-- addresses a vendor (or peer carrier) delivers inbound calls from, besides its gateways
CREATE TABLE origination_sources (
    vendor_id bigint NOT NULL REFERENCES vendors(id) ON DELETE CASCADE,
    cidr      cidr NOT NULL,
    PRIMARY KEY (vendor_id, cidr),
    CONSTRAINT origination_sources_no_overlap EXCLUDE USING gist (cidr inet_ops WITH &&)
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['trunks','trunk_sources','trunk_credentials','trunk_destinations',
        'numbers','origination_sources']
    LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %I
                        FOR EACH STATEMENT EXECUTE FUNCTION warpd_notify_routing_change()',
                       t || '_notify', t);
    END LOOP;
END $$;
