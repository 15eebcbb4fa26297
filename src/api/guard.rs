//! What a listener lets in: [`KamailioAuth`] (the Kamailio surface's source allow-list and shared
//! secret) and [`ConnLimits`] (open connections overall and per source address).
//!
//! The shared secret is a static credential (`Authorization: Bearer <secret>`; or HTTP Basic
//! with the secret as the password, any user name, for Kamailio's http_client named connections,
//! which can carry credentials in their URL but no custom header), not an HMAC of the request:
//! Kamailio's http_async_client sets a static header with `$http_req(hdr)`, an HMAC would need
//! the body and a clock in the Kamailio script for every dip, and the secret only has to stop
//! parties that can reach the port (keep the listener on a private network or add TLS in front;
//! it does not protect against an on-path observer). It is compared in constant time (both sides
//! hashed with SHA-256, the digests compared without early exit).
//!
//! Owns: these checks. Must not touch: statuses (errors go through [`ApiError`]), request
//! semantics.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use hyper::header::{HeaderMap, AUTHORIZATION};
use ipnet::IpNet;
use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::dip_as::DipAsPolicy;
use super::error::ApiError;

/// The Kamailio surface's guard: an allow-list of source networks (empty = any source), an
/// optional shared secret, and as which customers each source may dip ([`DipAsPolicy`]).
#[derive(Clone, Default)]
pub struct KamailioAuth {
    allow: Vec<IpNet>,
    secret: Option<[u8; 32]>,
    dip_as: DipAsPolicy,
}

impl std::fmt::Debug for KamailioAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KamailioAuth")
            .field("allow", &self.allow)
            .field("secret", &self.secret.map(|_| "***"))
            .field("dip_as", &self.dip_as)
            .finish()
    }
}

impl KamailioAuth {
    /// `allow` empty = any source; `secret` None = no secret; dips as any customer until
    /// [`with_dip_as`](Self::with_dip_as).
    pub fn new(allow: Vec<IpNet>, secret: Option<&str>) -> KamailioAuth {
        KamailioAuth {
            allow,
            secret: secret.map(|s| Sha256::digest(s.as_bytes()).into()),
            dip_as: DipAsPolicy::default(),
        }
    }

    /// As which customers each source may dip.
    pub fn with_dip_as(mut self, dip_as: DipAsPolicy) -> KamailioAuth {
        self.dip_as = dip_as;
        self
    }

    pub(crate) fn dip_as(&self) -> &DipAsPolicy {
        &self.dip_as
    }

    /// Lets the request in, or says why not: [`ApiError::SourceNotAllowed`] (403) or
    /// [`ApiError::Unauthorized`] (401). Messages never contain the secret.
    pub(crate) fn check(&self, peer: IpAddr, headers: &HeaderMap) -> Result<(), ApiError> {
        let peer = peer.to_canonical();
        if !self.allow.is_empty() && !self.allow.iter().any(|n| n.contains(&peer)) {
            return Err(ApiError::SourceNotAllowed);
        }
        let Some(want) = &self.secret else {
            return Ok(());
        };
        let got = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(presented_secret);
        match got.as_deref() {
            None => Err(ApiError::Unauthorized(
                "missing; expected Authorization: Bearer <server.kamailio_secret>".into(),
            )),
            Some(got) => {
                let got: [u8; 32] = Sha256::digest(got.as_bytes()).into();
                let diff = got.iter().zip(want).fold(0u8, |acc, (a, b)| acc | (a ^ b));
                if diff == 0 {
                    Ok(())
                } else {
                    Err(ApiError::Unauthorized("wrong shared secret".into()))
                }
            }
        }
    }
}

// The RESP listener's view of the same rules (it has no headers: `AUTH <secret>` per connection).
impl KamailioAuth {
    /// Whether `peer` is on the allow-list (always, when the list is empty).
    pub(crate) fn allows(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.allow.is_empty() || self.allow.iter().any(|n| n.contains(&peer))
    }

    /// Whether a secret is configured (then a RESP connection must `AUTH` first).
    pub(crate) fn requires_secret(&self) -> bool {
        self.secret.is_some()
    }

    /// Whether `presented` is the secret, compared as [`check`](Self::check) does (SHA-256 of
    /// both sides, no early exit). False when no secret is configured.
    pub(crate) fn secret_matches(&self, presented: &[u8]) -> bool {
        let Some(want) = &self.secret else {
            return false;
        };
        let got: [u8; 32] = Sha256::digest(presented).into();
        got.iter().zip(want).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

/// The secret in an `Authorization` value: `Bearer <secret>`, or `Basic base64(<user>:<secret>)`.
fn presented_secret(v: &str) -> Option<String> {
    use base64::Engine as _;
    if let Some(t) = v.strip_prefix("Bearer ") {
        return Some(t.trim().to_string());
    }
    let b = v.strip_prefix("Basic ")?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    text.split_once(':').map(|(_, p)| p.to_string())
}

/// Open connections of one listener: at most `max` overall (a semaphore: the accept loop waits
/// for a permit before accepting, like mini-redis) and `per_source` from one address (further
/// connections are closed at once, so one source cannot starve the others).
pub(crate) struct ConnLimits {
    total: Arc<Semaphore>,
    per_source: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection's share of the limits; released on drop.
pub(crate) struct ConnPermit {
    _total: OwnedSemaphorePermit,
    source: IpAddr,
    limits: Arc<ConnLimits>,
}

impl ConnLimits {
    pub(crate) fn new(max: usize, per_source: usize) -> Arc<ConnLimits> {
        Arc::new(ConnLimits {
            total: Arc::new(Semaphore::new(max.max(1))),
            per_source: per_source.max(1),
            open: Mutex::new(HashMap::new()),
        })
    }

    /// Waits until fewer than `max` connections are open.
    pub(crate) async fn slot(&self) -> Option<OwnedSemaphorePermit> {
        self.total.clone().acquire_owned().await.ok()
    }

    /// Admits a connection from `source` holding `slot`, or None when that source is at its limit.
    pub(crate) fn admit(
        self: &Arc<Self>,
        slot: OwnedSemaphorePermit,
        source: IpAddr,
    ) -> Option<ConnPermit> {
        let source = source.to_canonical();
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(source).or_insert(0);
        if *n >= self.per_source {
            return None;
        }
        *n += 1;
        Some(ConnPermit {
            _total: slot,
            source,
            limits: self.clone(),
        })
    }
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.source);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(AUTHORIZATION, HeaderValue::from_str(a).unwrap());
        }
        h
    }

    #[test]
    fn allow_list_and_secret() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let open = KamailioAuth::default();
        assert!(open.check(ip("203.0.113.9"), &headers(None)).is_ok());
        let a = KamailioAuth::new(
            vec!["10.0.0.0/24".parse().unwrap()],
            Some("0123456789abcdef"),
        );
        let good = headers(Some("Bearer 0123456789abcdef"));
        assert!(a.check(ip("10.0.0.7"), &good).is_ok());
        assert!(a.check(ip("::ffff:10.0.0.7"), &good).is_ok(), "v4-mapped");
        assert!(matches!(
            a.check(ip("10.0.1.7"), &good),
            Err(ApiError::SourceNotAllowed)
        ));
        for bad in [
            None,
            Some("Bearer 0123456789abcdeF"),
            Some("Basic x"),
            Some("Bearer "),
        ] {
            let e = a.check(ip("10.0.0.7"), &headers(bad)).unwrap_err();
            assert!(matches!(e, ApiError::Unauthorized(_)), "{bad:?}");
            assert!(!e.to_string().contains("0123456789abcdef"));
        }
        assert!(!format!("{a:?}").contains("0123456789abcdef"));
        // Basic with the secret as password (http_client named connections), any user
        use base64::Engine as _;
        let basic = |up: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(up)
            )
        };
        assert!(a
            .check(
                ip("10.0.0.7"),
                &headers(Some(&basic("kamailio:0123456789abcdef")))
            )
            .is_ok());
        assert!(a
            .check(ip("10.0.0.7"), &headers(Some(&basic("kamailio:wrong"))))
            .is_err());
        assert!(a
            .check(ip("10.0.0.7"), &headers(Some("Basic !!!")))
            .is_err());
    }

    #[tokio::test]
    async fn per_source_and_total_limits() {
        let l = ConnLimits::new(3, 2);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let p1 = l.admit(l.slot().await.unwrap(), a).unwrap();
        let p2 = l.admit(l.slot().await.unwrap(), a).unwrap();
        assert!(
            l.admit(l.slot().await.unwrap(), a).is_none(),
            "third from a"
        );
        let p3 = l.admit(l.slot().await.unwrap(), b).unwrap();
        // three open: a fourth waits for a slot
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), l.slot())
                .await
                .is_err()
        );
        drop(p1);
        let p4 = l.admit(l.slot().await.unwrap(), a).unwrap();
        drop((p2, p3, p4));
        assert!(l.open.lock().unwrap().is_empty());
    }
}
