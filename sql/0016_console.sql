-- The ops console (src/console/, docs/CONSOLE.md): its users and their sessions.
-- Passwords are argon2id PHC strings; session ids are 256 random bits stored as SHA-256 hex (the
-- cookie holds the id, the database only its hash); each session carries its CSRF token.

CREATE TABLE console_users (
    id              bigserial PRIMARY KEY,
    name            text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9._@-]{1,64}$'),
    role            text NOT NULL CHECK (role IN ('admin', 'ops', 'readonly')),
    password_hash   text NOT NULL,
    disabled        boolean NOT NULL DEFAULT false,
    -- failed sign-ins since the last success; at console.lockout_failures the account locks
    failed_logins   integer NOT NULL DEFAULT 0,
    locked_until    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    password_set_at timestamptz NOT NULL DEFAULT now(),
    last_login_at   timestamptz
);

CREATE TABLE console_sessions (
    id_sha256   text PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES console_users (id) ON DELETE CASCADE,
    csrf        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX console_sessions_user ON console_sessions (user_id);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);
