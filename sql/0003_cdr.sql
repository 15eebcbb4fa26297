-- warpd schema: calls and CDRs.
-- call_events: durable call events of calls that have no CDR yet (the live and unfinished calls).
--   One row per (call_id, kind, attempt): Kamailio retries collapse on the primary key. A call's
--   rows are deleted in the same transaction that inserts its CDR, so after a restart this table
--   is exactly the set of unfinished calls (warpd rebuilds its live state from it).
-- cdrs: one rated record per call, range-partitioned by month on started_at (partitions are
--   created by warpd on demand, cdrs_yYYYYmMM). UNIQUE (call_id, started_at): a replayed CDR is
--   built from the same events, so it collides and is skipped (ON CONFLICT DO NOTHING).

ALTER TABLE customers
    ADD COLUMN max_concurrent_calls integer CHECK (max_concurrent_calls IS NULL OR max_concurrent_calls >= 0),
    ADD COLUMN max_cps integer CHECK (max_cps IS NULL OR max_cps >= 0),
    -- the customer's billing increments; NULL = same as the vendor's terms of the carrying route
    ADD COLUMN billing_min_seconds integer CHECK (billing_min_seconds IS NULL OR billing_min_seconds >= 0),
    ADD COLUMN billing_inc_seconds integer CHECK (billing_inc_seconds IS NULL OR billing_inc_seconds >= 1);

CREATE TABLE call_events (
    call_id     text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('start', 'attempt', 'answer', 'end')),
    attempt     integer NOT NULL DEFAULT 0,
    body        text NOT NULL,           -- the event as JSON (warpd's own format)
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (call_id, kind, attempt)
);

CREATE TABLE cdrs (
    call_id           text NOT NULL,
    started_at        timestamptz NOT NULL,   -- the dip
    ring_at           timestamptz,            -- first 18x of the carrying attempt, if known
    answered_at       timestamptz,
    ended_at          timestamptz,
    customer_ban      text,
    src_ip            text,
    ani               text,
    dnis              text,
    lrn               text,
    ocn               text,
    lata              text,
    state             text,
    zone              text,
    partition         text,
    route_id          text,                   -- the route that carried the call
    vendor            text,
    attempts          jsonb NOT NULL DEFAULT '[]',
    attempt_count     integer NOT NULL DEFAULT 0,
    vendor_rate       numeric(12,7),          -- buy, per minute
    customer_rate     numeric(12,7),          -- sell, per minute
    vendor_min        integer,
    vendor_inc        integer,
    customer_min      integer,
    customer_inc      integer,
    duration_ms       bigint NOT NULL DEFAULT 0,   -- answer to end
    vendor_billed_s   integer NOT NULL DEFAULT 0,
    customer_billed_s integer NOT NULL DEFAULT 0,
    cost              numeric(16,7) NOT NULL DEFAULT 0,
    price             numeric(16,7) NOT NULL DEFAULT 0,
    disposition       text NOT NULL,          -- answered | busy | no_answer | cancelled | failed | orphan
    sip_code          integer,                -- final SIP code of the call
    hangup            text,                   -- caller | callee | system
    cause             text,
    pdd_ms            integer,
    -- media side (filled when the media component reports them)
    mos               real,
    jitter_ms         real,
    loss_pct          real,
    recording         text,
    flags             text[] NOT NULL DEFAULT '{}',  -- e.g. reaped_max_duration, end_before_answer
    written_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (call_id, started_at)
) PARTITION BY RANGE (started_at);

CREATE INDEX cdrs_ban_started ON cdrs (customer_ban, started_at);
CREATE INDEX cdrs_started ON cdrs (started_at, call_id);
