//! Console users and sessions: argon2id password hashes (the `argon2` crate's defaults), sessions
//! whose 256-bit random id lives only in the browser's cookie (the database keeps its SHA-256,
//! like admin tokens), a CSRF token per session (synchronizer token: every form carries it, every
//! POST must echo it), lock-out after `console.lockout_failures` failed sign-ins in a row. The
//! `warpd user …` commands call [`add_user`], [`set_password`], [`list_users`], [`disable_user`].
//!
//! Owns: `console_users`, `console_sessions`. Must not touch: pages, HTTP.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use tokio_postgres::GenericClient;

use crate::admin::{hash_token, Principal, Role};

/// Longest password accepted (argon2 takes any length; this bounds the work a request causes).
pub const MAX_PASSWORD: usize = 1024;
/// Shortest password `warpd user add|passwd` accepts.
pub const MIN_PASSWORD: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("user name {0:?}: 1-64 of letters, digits, . _ @ -")]
    BadName(String),
    #[error("role {0:?} is not one of admin, ops, readonly")]
    BadRole(String),
    #[error("password: at least {MIN_PASSWORD} and at most {MAX_PASSWORD} characters")]
    BadPassword,
    #[error("a user named {0:?} exists already")]
    Exists(String),
    #[error("no user named {0:?}")]
    NoSuchUser(String),
    #[error("password hashing: {0}")]
    Hash(String),
    #[error("no randomness: {0}")]
    Random(#[from] getrandom::Error),
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("password check did not finish: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// What a sign-in attempt came to. The page says "wrong user name or password" for both
/// `Refused` kinds: it never tells whether the user exists.
#[derive(Debug, PartialEq, Eq)]
pub enum SignIn {
    /// the new session's id (for the cookie; only its hash is stored)
    Ok {
        session: String,
    },
    Refused,
    /// too many failures: locked until this time (RFC 3339)
    Locked {
        until: String,
    },
}

/// A signed-in user as a page sees it.
#[derive(Clone, Debug)]
pub struct Session {
    pub who: Principal,
    pub csrf: String,
}

fn check_name(name: &str) -> Result<(), AuthError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._@-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(AuthError::BadName(warpd_core::excerpt::plain(name)))
    }
}

/// 256 random bits, hex.
pub fn random_hex() -> Result<String, getrandom::Error> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b)?;
    Ok(hex::encode(b))
}

/// The argon2id PHC string of `password` (random salt; the crate's default cost).
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    if password.chars().count() < MIN_PASSWORD || password.len() > MAX_PASSWORD {
        return Err(AuthError::BadPassword);
    }
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt)?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| AuthError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `hash` (false for a malformed hash).
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A hash of a password nobody has, checked when the user does not exist so that an unknown
/// name costs the same time as a wrong password.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$hRrPJOwJ1v2Uq9s7NhVEnPwjLh5gwR2ehpHqYRnHa5Q";

/// `warpd user add`: a new user with its audit row, in one statement.
pub async fn add_user<C: GenericClient>(
    c: &C,
    name: &str,
    role: &str,
    password: &str,
    actor: &str,
) -> Result<(), AuthError> {
    check_name(name)?;
    let role = Role::parse(role).ok_or_else(|| AuthError::BadRole(role.to_string()))?;
    let hash = hash_password(password)?;
    let n = c
        .execute(
            "WITH u AS (INSERT INTO console_users (name, role, password_hash) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING RETURNING name, role) \
             INSERT INTO audit_log (actor, action, target, after) \
             SELECT $4, 'console_user.create', 'console_user ' || name, \
             jsonb_build_object('name', name, 'role', role) FROM u",
            &[&name, &role.as_str(), &hash, &actor],
        )
        .await?;
    if n == 0 {
        return Err(AuthError::Exists(name.to_string()));
    }
    Ok(())
}

/// `warpd user passwd`: a new password (and the lock lifted); every session of the user ends.
pub async fn set_password<C: GenericClient>(
    c: &C,
    name: &str,
    password: &str,
    actor: &str,
) -> Result<(), AuthError> {
    let hash = hash_password(password)?;
    let n = c
        .execute(
            "WITH u AS (UPDATE console_users SET password_hash = $2, password_set_at = now(), \
             failed_logins = 0, locked_until = NULL WHERE name = $1 RETURNING id, name), \
             s AS (DELETE FROM console_sessions WHERE user_id IN (SELECT id FROM u)) \
             INSERT INTO audit_log (actor, action, target) \
             SELECT $3, 'console_user.password', 'console_user ' || name FROM u",
            &[&name, &hash, &actor],
        )
        .await?;
    if n == 0 {
        return Err(AuthError::NoSuchUser(name.to_string()));
    }
    Ok(())
}

/// `warpd user disable` (or enable): a disabled user cannot sign in and its sessions end.
pub async fn disable_user<C: GenericClient>(
    c: &C,
    name: &str,
    disabled: bool,
    actor: &str,
) -> Result<(), AuthError> {
    let n = c
        .execute(
            "WITH u AS (UPDATE console_users SET disabled = $2, failed_logins = 0, locked_until = NULL \
             WHERE name = $1 RETURNING id, name, disabled), \
             s AS (DELETE FROM console_sessions WHERE user_id IN (SELECT id FROM u)) \
             INSERT INTO audit_log (actor, action, target, after) \
             SELECT $3, CASE WHEN disabled THEN 'console_user.disable' ELSE 'console_user.enable' END, \
             'console_user ' || name, jsonb_build_object('disabled', disabled) FROM u",
            &[&name, &disabled, &actor],
        )
        .await?;
    if n == 0 {
        return Err(AuthError::NoSuchUser(name.to_string()));
    }
    Ok(())
}

/// One row of `warpd user list`.
#[derive(Debug, serde::Serialize)]
pub struct UserRow {
    pub name: String,
    pub role: String,
    pub disabled: bool,
    pub locked_until: Option<String>,
    pub last_login_at: Option<String>,
}

pub async fn list_users<C: GenericClient>(c: &C) -> Result<Vec<UserRow>, AuthError> {
    let rows = c
        .query(
            "SELECT name, role, disabled, \
             to_char(locked_until AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), \
             to_char(last_login_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') \
             FROM console_users ORDER BY name",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| UserRow {
            name: r.get(0),
            role: r.get(1),
            disabled: r.get(2),
            locked_until: r.get(3),
            last_login_at: r.get(4),
        })
        .collect())
}

/// Lock-out settings (`[console]`).
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    pub lockout_failures: u32,
    pub lockout_minutes: u64,
    pub session_ttl_minutes: u64,
}

/// Checks a sign-in and, when it is right, opens a session. Failures count towards the lock; a
/// locked account is refused without its password being checked; the lock and its lifting are
/// audit rows. The password check runs on a blocking thread.
pub async fn sign_in<C: GenericClient>(
    c: &C,
    name: &str,
    password: &str,
    policy: Policy,
) -> Result<SignIn, AuthError> {
    let row = if check_name(name).is_ok() {
        c.query_opt(
            "SELECT id, password_hash, disabled, \
             CASE WHEN locked_until > now() THEN \
               to_char(locked_until AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') END \
             FROM console_users WHERE name = $1",
            &[&name],
        )
        .await?
    } else {
        None
    };
    let (id, hash, disabled, locked): (Option<i64>, String, bool, Option<String>) = match &row {
        Some(r) => (Some(r.get(0)), r.get(1), r.get(2), r.get(3)),
        None => (None, DUMMY_HASH.to_string(), true, None),
    };
    if let Some(until) = locked {
        return Ok(SignIn::Locked { until });
    }
    let pw = password.chars().take(MAX_PASSWORD).collect::<String>();
    let ok = tokio::task::spawn_blocking(move || verify_password(&pw, &hash)).await?;
    let Some(id) = id else {
        return Ok(SignIn::Refused);
    };
    if !ok || disabled {
        if !disabled {
            let locked: Option<String> = c
                .query_one(
                    "WITH u AS (UPDATE console_users SET failed_logins = failed_logins + 1, \
                     locked_until = CASE WHEN failed_logins + 1 >= $2 \
                       THEN now() + make_interval(mins => $3) END \
                     WHERE id = $1 RETURNING name, failed_logins, locked_until), \
                     a AS (INSERT INTO audit_log (actor, action, target, after) \
                       SELECT 'console', 'console_user.lock', 'console_user ' || name, \
                       jsonb_build_object('failed_logins', failed_logins, 'locked_until', locked_until) \
                       FROM u WHERE locked_until IS NOT NULL) \
                     SELECT to_char(locked_until AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM u",
                    &[
                        &id,
                        &(policy.lockout_failures as i32),
                        &(policy.lockout_minutes.min(10_080) as i32),
                    ],
                )
                .await?
                .get(0);
            if let Some(until) = locked {
                return Ok(SignIn::Locked { until });
            }
        }
        return Ok(SignIn::Refused);
    }
    let session = random_hex()?;
    let csrf = random_hex()?;
    c.execute(
        "WITH u AS (UPDATE console_users SET failed_logins = 0, locked_until = NULL, \
         last_login_at = now() WHERE id = $1) \
         INSERT INTO console_sessions (id_sha256, user_id, csrf, expires_at) \
         VALUES ($2, $1, $3, now() + make_interval(mins => $4))",
        &[
            &id,
            &hash_token(&session),
            &csrf,
            &(policy.session_ttl_minutes.min(43_200) as i32),
        ],
    )
    .await?;
    // expired sessions of anyone are swept now and then
    c.execute(
        "DELETE FROM console_sessions WHERE expires_at < now() - interval '1 day'",
        &[],
    )
    .await?;
    Ok(SignIn::Ok { session })
}

/// The live session of a cookie's id: unexpired, its user enabled.
pub async fn session<C: GenericClient>(c: &C, id: &str) -> Result<Option<Session>, AuthError> {
    let row = c
        .query_opt(
            "SELECT u.name, u.role, s.csrf FROM console_sessions s \
             JOIN console_users u ON u.id = s.user_id \
             WHERE s.id_sha256 = $1 AND s.expires_at > now() AND NOT u.disabled",
            &[&hash_token(id)],
        )
        .await?;
    Ok(row.and_then(|r| {
        let role: String = r.get(1);
        Role::parse(&role).map(|role| Session {
            who: Principal {
                name: r.get(0),
                role,
            },
            csrf: r.get(2),
        })
    }))
}

/// Sign-out: the session is deleted.
pub async fn sign_out<C: GenericClient>(c: &C, id: &str) -> Result<(), AuthError> {
    c.execute(
        "DELETE FROM console_sessions WHERE id_sha256 = $1",
        &[&hash_token(id)],
    )
    .await?;
    Ok(())
}

/// Constant-time equality of two tokens.
pub fn same_token(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterx", &h));
        assert!(!verify_password("x", "not a hash"));
        assert_ne!(h, hash_password("correct horse battery").unwrap(), "salted");
        assert!(matches!(
            hash_password("short"),
            Err(AuthError::BadPassword)
        ));
        // the dummy hash parses (an unknown user costs a real verification)
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }

    #[test]
    fn names_and_tokens() {
        for good in ["alice", "a.b-c_d@x"] {
            assert!(check_name(good).is_ok());
        }
        for bad in ["", "a b", "<script>", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("abc", "ab"));
        assert_eq!(random_hex().unwrap().len(), 64);
    }
}
