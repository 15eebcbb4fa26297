//! STIR/SHAKEN key handling (issue 20): the `[stir]` config (the signing key and certificate
//! Kamailio signs with; warpd never signs) and [`check`], run at start and by `warpd stir
//! check`: the key file's permissions (the rule of `tls::read_key`: a key readable by others is
//! refused), the key is an EC P-256 (ES256) private key, the certificate parses, its public key
//! is the key's, and its validity dates. The certificate's notAfter feeds the metric
//! `warpd_stir_cert_days_to_expiry` and `/readyz`.
//!
//! Owns: those checks. Must not touch: key material in errors or logs (only paths and reasons).

use std::path::{Path, PathBuf};

use rustls::pki_types::PrivateKeyDer;
use serde::{Deserialize, Serialize};

use crate::tls::{read_certs, read_key, TlsError};

/// `[stir]`: the files Kamailio's `STIR_KEY_PATH` and the certificate behind `STIR_X5U` name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StirConfig {
    /// the signing key (PEM, EC P-256: `EC PRIVATE KEY` or PKCS#8); mode 0600 (or 0640 owned by
    /// root), else warpd refuses to start
    pub key_file: PathBuf,
    /// the certificate published at the x5u URL (PEM; the first one is the signing one)
    pub cert_file: PathBuf,
    /// days before expiry from which start-up and `warpd stir check` warn
    #[serde(default = "default_warn_days")]
    pub expiry_warn_days: u32,
}

fn default_warn_days() -> u32 {
    30
}

/// Why the STIR key/certificate pair is refused.
#[derive(Debug, thiserror::Error)]
pub enum StirError {
    #[error(transparent)]
    File(#[from] TlsError),
    #[error("stir.key_file ({}): not an EC P-256 private key (ES256 needs one)", path.display())]
    NotP256 { path: PathBuf },
    #[error("stir.cert_file ({}): not an X.509 certificate: {reason}", path.display())]
    Cert { path: PathBuf, reason: String },
    #[error(
        "stir.key_file ({}) is not the key of stir.cert_file ({})",
        key.display(),
        cert.display()
    )]
    Mismatch { key: PathBuf, cert: PathBuf },
}

/// What [`check`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    pub subject: String,
    pub not_before: i64,
    pub not_after: i64,
}

impl CertInfo {
    /// Whole days until notAfter (negative once expired).
    pub fn days_left(&self, now_unix: i64) -> i64 {
        (self.not_after - now_unix).div_euclid(86_400)
    }
}

fn p256_key(path: &Path, key: &PrivateKeyDer<'_>) -> Result<p256::SecretKey, StirError> {
    use p256::pkcs8::DecodePrivateKey;
    let parsed = match key {
        PrivateKeyDer::Sec1(k) => p256::SecretKey::from_sec1_der(k.secret_sec1_der()).ok(),
        PrivateKeyDer::Pkcs8(k) => p256::SecretKey::from_pkcs8_der(k.secret_pkcs8_der()).ok(),
        _ => None,
    };
    parsed.ok_or_else(|| StirError::NotP256 { path: path.into() })
}

/// Checks the key/certificate pair of `[stir]` (see the module documentation).
pub fn check(cfg: &StirConfig) -> Result<CertInfo, StirError> {
    let key = read_key("stir.key_file", &cfg.key_file)?;
    let secret = p256_key(&cfg.key_file, &key)?;
    let certs = read_certs("stir.cert_file", &cfg.cert_file)?;
    let cert_err = |reason: String| StirError::Cert {
        path: cfg.cert_file.clone(),
        reason,
    };
    let (_, cert) = x509_parser::parse_x509_certificate(certs[0].as_ref())
        .map_err(|e| cert_err(e.to_string()))?;
    let public = secret.public_key();
    let point = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&public, false);
    if cert.public_key().subject_public_key.data.as_ref() != point.as_bytes() {
        return Err(StirError::Mismatch {
            key: cfg.key_file.clone(),
            cert: cfg.cert_file.clone(),
        });
    }
    let v = cert.validity();
    Ok(CertInfo {
        subject: warpd_core::excerpt::excerpt(&cert.subject().to_string()),
        not_before: v.not_before.timestamp(),
        not_after: v.not_after.timestamp(),
    })
}

/// The line `warpd stir check` prints (and start-up logs).
pub fn describe(info: &CertInfo, now_unix: i64) -> String {
    let when = chrono::DateTime::from_timestamp(info.not_after, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| info.not_after.to_string());
    let days = info.days_left(now_unix);
    if days < 0 {
        format!("certificate {} EXPIRED on {when}", info.subject)
    } else {
        format!(
            "certificate {} expires {when} (in {days} days)",
            info.subject
        )
    }
}
