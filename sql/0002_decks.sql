-- warpd schema: rate deck versions, column mappings, admin tokens, audit log, recent dip samples.
-- The active rows of a deck stay in vendor_rates (effective_from/until per row; the snapshot
-- honours them at dip time, so a future version activates by itself). Every import is also kept
-- here as a version with its rows, which is what diff, rollback, export and shadow read.

-- one import of a vendor rate deck for a route
CREATE TABLE deck_versions (
    id              bigserial PRIMARY KEY,
    route_id        bigint NOT NULL REFERENCES routes(id) ON DELETE CASCADE,
    -- when this version takes over from the one before it (rows may start later on their own)
    effective_from  timestamptz NOT NULL,
    -- staged: stored, not routed (preview, shadow); live: part of the route's timeline;
    -- rolled_back: withdrawn; replaced: a later import had the same effective time;
    -- baseline: the route's rows as they were before its first import
    state           text NOT NULL CHECK (state IN ('staged', 'live', 'rolled_back', 'replaced', 'baseline')),
    source          text NOT NULL DEFAULT '',
    -- header of the imported file and the field each column was read as (export writes it back)
    columns         text[] NOT NULL DEFAULT '{}',
    fields          text[] NOT NULL DEFAULT '{}',
    row_count       bigint NOT NULL DEFAULT 0,
    skipped_rows    bigint NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      text NOT NULL,
    changed_at      timestamptz,
    changed_by      text
);
CREATE INDEX deck_versions_route ON deck_versions (route_id, effective_from);

-- the rows of every version (history). No foreign key: checked once per import, not per row
-- (a per-row FK trigger costs ~1 s per million rows); rows go with their version by version_id.
CREATE TABLE deck_rates (
    version_id      bigint NOT NULL,
    prefix          text,
    ocn             text,
    lata            text,
    description     text,
    rate_inter      numeric(12,7),
    rate_intra      numeric(12,7),
    rate_local      numeric(12,7),
    min_seconds     integer NOT NULL,
    inc_seconds     integer NOT NULL,
    -- the row's own dates from the file (-infinity / infinity when the file has none)
    effective_from  timestamptz NOT NULL,
    effective_until timestamptz NOT NULL
);
-- rows are appended version by version, so a BRIN index finds a version cheaply
CREATE INDEX deck_rates_version ON deck_rates USING brin (version_id);

-- saved column mapping of a vendor's decks: normalized header -> field
CREATE TABLE deck_mappings (
    vendor_id   bigint PRIMARY KEY REFERENCES vendors(id) ON DELETE CASCADE,
    mapping     jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- admin API bearer tokens; only the SHA-256 of the token is stored
CREATE TABLE admin_tokens (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (name <> ''),
    role        text NOT NULL CHECK (role IN ('admin', 'ops', 'readonly')),
    token_sha256 text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

-- every change made through the admin API or the deck CLI
CREATE TABLE audit_log (
    id      bigserial PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    actor   text NOT NULL,
    action  text NOT NULL,
    target  text NOT NULL,
    before  jsonb,
    after   jsonb
);
CREATE INDEX audit_log_at ON audit_log (at);

-- recent real dips (inputs only) kept for shadow evaluation, bounded by warpd
CREATE TABLE dip_samples (
    id      bigserial PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    request jsonb NOT NULL
);
