//! `[console]`: the ops console served on the admin listener under `/console/` (see
//! `crate::console`, docs/CONSOLE.md).
//!
//! Owns: this section's schema and its checks. Must not touch: sessions or pages.

use serde::{Deserialize, Serialize};

use super::{key_err, ConfigError};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// serve the console (`/console/` on the admin listener)
    pub enabled: bool,
    /// the path a reverse proxy serves warpd's admin listener under, e.g. "/ops" when
    /// `https://host/ops/console/` is proxied to `http://127.0.0.1:8081/console/` with the prefix
    /// stripped: every link, redirect and cookie path the console emits starts with it
    pub external_prefix: String,
    /// a session ends this long after sign-in
    pub session_ttl_minutes: u64,
    /// failed sign-ins in a row that lock an account ...
    pub lockout_failures: u32,
    /// ... for this long
    pub lockout_minutes: u64,
    /// mark the session cookie `Secure` (browsers then send it over HTTPS, and to
    /// http://localhost / 127.0.0.1 only); turn off only for a plain-HTTP management network
    pub cookie_secure: bool,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            enabled: true,
            external_prefix: String::new(),
            session_ttl_minutes: 480,
            lockout_failures: 5,
            lockout_minutes: 15,
            cookie_secure: true,
        }
    }
}

impl ConsoleConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let p = &self.external_prefix;
        let ok_char = |c: char| c.is_ascii_alphanumeric() || "/-._~".contains(c);
        if !p.is_empty()
            && (!p.starts_with('/') || p.ends_with('/') || p.len() > 200 || !p.chars().all(ok_char))
        {
            return Err(key_err(
                "console.external_prefix",
                "must be empty or a path like /ops (leading /, no trailing /, letters, digits, -._~)",
            ));
        }
        if !(1..=43_200).contains(&self.session_ttl_minutes) {
            return Err(key_err(
                "console.session_ttl_minutes",
                "must be between 1 and 43200",
            ));
        }
        if !(1..=100).contains(&self.lockout_failures) {
            return Err(key_err(
                "console.lockout_failures",
                "must be between 1 and 100",
            ));
        }
        if !(1..=10_080).contains(&self.lockout_minutes) {
            return Err(key_err(
                "console.lockout_minutes",
                "must be between 1 and 10080",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_ranges_are_checked() {
        let with = |p: &str| ConsoleConfig {
            external_prefix: p.into(),
            ..ConsoleConfig::default()
        };
        for good in ["", "/ops", "/a/b-c_d.e"] {
            assert!(with(good).validate().is_ok(), "{good}");
        }
        for bad in ["ops", "/ops/", "/o\"ps", "/<x>", "/a b"] {
            let e = with(bad).validate().unwrap_err().to_string();
            assert!(e.contains("console.external_prefix"), "{bad}: {e}");
        }
        let c = ConsoleConfig {
            lockout_failures: 0,
            ..ConsoleConfig::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("console.lockout_failures"));
    }
}
