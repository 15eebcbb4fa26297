//! TLS to PostgreSQL: `sslmode` and `sslrootcert` of `database.url` as libpq defines them, for
//! every connection warpd opens (pools, LISTEN, the snapshot loader's streams, the call writer,
//! COPY paths): they all get their [`PgTarget`] from [`target`], the one place the connector is
//! built (rustls via `tokio-postgres-rustls`, *ring* provider).
//!
//! | `sslmode`     | TLS                              | server certificate checked            |
//! |---------------|----------------------------------|---------------------------------------|
//! | `disable`     | never                            | —                                     |
//! | `prefer`      | if the server offers it (default, as libpq) | no (unless `sslrootcert`: as `verify-ca`) |
//! | `require`     | always                           | no (unless `sslrootcert`: as `verify-ca`) |
//! | `verify-ca`   | always                           | chain to `sslrootcert`                |
//! | `verify-full` | always                           | chain to `sslrootcert` and host name  |
//!
//! Unlike libpq, there is no default `~/.postgresql/root.crt`: `verify-ca` and `verify-full`
//! need `sslrootcert=<PEM file>` (an error at start otherwise). The file is read by each call
//! of [`target`]: once for a pool (at start), again for each connection opened outside one.
//!
//! Owns: the connection string's TLS parameters and the connector. Must not touch: what runs
//! over the connection.

use std::path::PathBuf;
use std::sync::Arc;

use percent_encoding::percent_decode_str;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres::config::SslMode as DriverSslMode;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::Socket;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{pg_detail, DbError};

/// A connection warpd drives itself (LISTEN, the loader's streams).
pub type PgConnection =
    tokio_postgres::Connection<Socket, <MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream>;

/// `sslmode` as libpq defines it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(v: &str) -> Result<SslMode, DbError> {
        Ok(match v {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => {
                return Err(DbError::Config(format!(
                    "sslmode {}: expected disable, prefer, require, verify-ca or verify-full",
                    warpd_core::excerpt::excerpt(v)
                )))
            }
        })
    }
}

/// Where and how to connect: the driver's configuration and the TLS connector.
#[derive(Clone)]
pub struct PgTarget {
    pub config: tokio_postgres::Config,
    pub tls: MakeRustlsConnect,
    pub mode: SslMode,
}

impl PgTarget {
    /// Opens a connection; the caller drives the returned connection.
    pub async fn connect(&self) -> Result<(tokio_postgres::Client, PgConnection), DbError> {
        self.config
            .connect(self.tls.clone())
            .await
            .map_err(DbError::Connect)
    }
}

/// Parses `url` (a `postgres://` URL or `key=value` string) with its `sslmode`/`sslrootcert`,
/// reads the root certificates and builds the connector.
pub fn target(url: &str) -> Result<PgTarget, DbError> {
    let (rest, params) = split_ssl_params(url)?;
    let mut config: tokio_postgres::Config = rest
        .parse()
        .map_err(|e: tokio_postgres::Error| DbError::Config(pg_detail(&e)))?;
    let mode = match &params.mode {
        Some(m) => SslMode::parse(m)?,
        None => SslMode::Prefer,
    };
    config.ssl_mode(match mode {
        SslMode::Disable => DriverSslMode::Disable,
        SslMode::Prefer => DriverSslMode::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => DriverSslMode::Require,
    });
    let provider = crate::tls::provider();
    let roots = match &params.rootcert {
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for ca in
                crate::tls::read_certs("database.url sslrootcert", path).map_err(DbError::Tls)?
            {
                roots.add(ca).map_err(|source| {
                    DbError::Tls(crate::tls::TlsError::Rejected {
                        key: "database.url sslrootcert".into(),
                        path: path.clone(),
                        source,
                    })
                })?;
            }
            Some(Arc::new(roots))
        }
        None if matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull) => {
            return Err(DbError::Config(
                "sslmode verify-ca and verify-full need sslrootcert=<PEM file of the server's CA>"
                    .into(),
            ))
        }
        None => None,
    };
    let verifier: Arc<dyn ServerCertVerifier> = match roots {
        // libpq: with a root certificate, `prefer`/`require` verify the chain like `verify-ca`
        Some(roots) => {
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| DbError::Config(format!("sslrootcert: {e}")))?;
            Arc::new(ChainVerifier {
                inner: webpki,
                check_name: mode == SslMode::VerifyFull,
            })
        }
        None => Arc::new(Unverified(provider.clone())),
    };
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| DbError::Config(format!("TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(PgTarget {
        config,
        tls: MakeRustlsConnect::new(client),
        mode,
    })
}

/// `sslmode` and `sslrootcert` as given.
#[derive(Debug, Default, PartialEq)]
struct SslParams {
    mode: Option<String>,
    rootcert: Option<PathBuf>,
}

impl SslParams {
    fn take(&mut self, key: &str, value: String) -> bool {
        match key {
            "sslmode" => self.mode = Some(value),
            "sslrootcert" => self.rootcert = Some(PathBuf::from(value)),
            _ => return false,
        }
        true
    }
}

/// The connection string without `sslmode`/`sslrootcert` (the driver knows neither
/// `verify-*` nor `sslrootcert`), and those two.
fn split_ssl_params(url: &str) -> Result<(String, SslParams), DbError> {
    let mut params = SslParams::default();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let Some((base, query)) = url.split_once('?') else {
            return Ok((url.to_string(), params));
        };
        let mut kept = Vec::new();
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
            if !params.take(&decode(k), decode(v)) {
                kept.push(pair);
            }
        }
        let rest = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return Ok((rest, params));
    }
    // key=value: libpq's syntax (values optionally single-quoted, backslash escapes)
    let mut kept = Vec::new();
    let mut rest = url.trim_start();
    while !rest.is_empty() {
        let start = rest;
        let key_end = rest
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(rest.len());
        let key = &rest[..key_end];
        rest = rest[key_end..].trim_start();
        let Some(after) = rest.strip_prefix('=') else {
            return Err(DbError::Config(format!(
                "expected `=` after {}",
                warpd_core::excerpt::excerpt(key)
            )));
        };
        rest = after.trim_start();
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let quoted = rest.starts_with('\'');
        if quoted {
            chars.next();
        }
        let mut end = rest.len();
        let mut closed = !quoted;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(n);
                    }
                }
                '\'' if quoted => {
                    end = i + 1;
                    closed = true;
                    break;
                }
                c if !quoted && c.is_whitespace() => {
                    end = i;
                    break;
                }
                c => value.push(c),
            }
        }
        if !closed {
            return Err(DbError::Config(format!(
                "unterminated quoted value of {}",
                warpd_core::excerpt::excerpt(key)
            )));
        }
        let pair = &start[..start.len() - rest.len() + end];
        rest = rest[end..].trim_start();
        if !params.take(key, value) {
            kept.push(pair);
        }
    }
    Ok((kept.join(" "), params))
}

/// `prefer`/`require` without `sslrootcert`: encrypted, the certificate not checked (libpq's
/// behaviour; it protects against passive listeners only). Handshake signatures are still
/// verified, so the server must hold the key of the certificate it shows.
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca` (chain only) and `verify-full` (chain and host name) over webpki.
#[derive(Debug)]
struct ChainVerifier {
    inner: Arc<WebPkiServerVerifier>,
    check_name: bool,
}

impl ServerCertVerifier for ChainVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            // webpki checks the name after the chain: a name error means the chain is good
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            r => r,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssl_params_are_taken_out_of_both_forms() {
        let cases: &[(&str, &str, Option<&str>, Option<&str>)] = &[
            ("postgres://u@h/db", "postgres://u@h/db", None, None),
            (
                "postgres://u@h/db?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem",
                "postgres://u@h/db",
                Some("verify-full"),
                Some("/etc/ca.pem"),
            ),
            (
                "postgresql://u:p@h:5/db?application_name=w&sslmode=require&connect_timeout=3",
                "postgresql://u:p@h:5/db?application_name=w&connect_timeout=3",
                Some("require"),
                None,
            ),
            (
                "host=h user=u sslmode=verify-ca sslrootcert='/a b/ca.pem' dbname=x",
                "host=h user=u dbname=x",
                Some("verify-ca"),
                Some("/a b/ca.pem"),
            ),
            (
                "host = h password='it\\'s' sslmode = disable",
                "host = h password='it\\'s'",
                Some("disable"),
                None,
            ),
        ];
        for (url, rest, mode, root) in cases {
            let (r, p) = split_ssl_params(url).unwrap();
            assert_eq!(&r, rest, "{url}");
            assert_eq!(p.mode.as_deref(), *mode, "{url}");
            assert_eq!(
                p.rootcert.as_deref().and_then(|p| p.to_str()),
                *root,
                "{url}"
            );
        }
    }

    #[test]
    fn bad_ssl_settings_are_config_errors_naming_the_parameter() {
        let cases = [
            ("postgres://u@h/db?sslmode=verify", "sslmode"),
            ("postgres://u@h/db?sslmode=verify-full", "sslrootcert"),
            ("host=h sslmode=verify-ca", "sslrootcert"),
            ("host=h password='open", "unterminated"),
            ("host=h sslmode", "expected `=`"),
            (
                "postgres://u@h/db?sslmode=require&sslrootcert=/nonexistent/ca.pem",
                "/nonexistent/ca.pem",
            ),
        ];
        for (url, want) in cases {
            let e = match target(url) {
                Ok(_) => panic!("{url} accepted"),
                Err(e) => e.to_string(),
            };
            assert!(e.contains(want), "{url}: {e}");
        }
    }

    #[test]
    fn no_connection_bypasses_the_connector() {
        // every connection must come from `target`: no unencrypted connector anywhere in src/
        let needle = concat!("No", "Tls");
        let mut dirs = vec![std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src"
        ))];
        let mut seen = 0;
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    seen += 1;
                    let text = std::fs::read_to_string(&path).unwrap();
                    assert!(!text.contains(needle), "{} uses {needle}", path.display());
                }
            }
        }
        assert!(seen > 50, "{seen} files");
    }

    #[test]
    fn default_is_prefer_like_libpq() {
        let t = target("postgres://u@h/db").unwrap();
        assert_eq!(t.mode, SslMode::Prefer);
        assert_eq!(t.config.get_ssl_mode(), DriverSslMode::Prefer);
        let t = target("postgres://u@h/db?sslmode=verify-full&sslrootcert=/dev/null");
        assert!(t.is_err(), "an empty CA file is refused");
    }
}
