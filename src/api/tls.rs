//! TLS on the listeners (rustls with the *ring* provider): each surface's certificate, key and
//! optional client CA ([`TlsFiles`], `[server.kamailio_tls]` / `[server.admin_tls]`) are read
//! from PEM files at start — any problem stops the start with an error naming the key and the
//! file — and again on SIGHUP ([`ListenerTls::reload`]): a complete new `rustls::ServerConfig`
//! is built and swapped in (`ArcSwap`), so new handshakes use it and open connections keep
//! theirs; a file that does not load leaves the current configuration in place, is logged
//! (path and reason, never key material) and counted (`warpd_tls_reloads_total{result="error"}`).
//!
//! Private keys must not be readable by others (see [`crate::tls`]).
//!
//! Owns: loading and swapping the TLS configurations. Must not touch: sockets and the handshake
//! itself (see `server.rs`, which runs it under `server.tls_handshake_timeout_ms` and the connection
//! caps).

use std::sync::Arc;

use arc_swap::ArcSwap;
use prometheus::{IntCounterVec, Opts, Registry};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

use super::Side;
use crate::config::{ServerConfig as ServerSection, TlsFiles};
pub use crate::tls::TlsError;
use crate::tls::{provider, read_certs, read_key};

/// One listener's TLS: its files and the configuration new handshakes use.
pub struct ListenerTls {
    section: &'static str,
    files: TlsFiles,
    current: ArcSwap<ServerConfig>,
}

impl ListenerTls {
    /// Reads the files of `[<section>]`.
    pub fn load(section: &'static str, files: &TlsFiles) -> Result<ListenerTls, TlsError> {
        Ok(ListenerTls {
            section,
            current: ArcSwap::from(build(section, files)?),
            files: files.clone(),
        })
    }

    /// The acceptor for the next handshake.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current.load_full())
    }

    /// Reads the files again and swaps the new configuration in; on error the current one stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        self.current.store(build(self.section, &self.files)?);
        Ok(())
    }
}

/// The TLS of both listeners (None: plain HTTP) and the reload counter.
#[derive(Clone, Default)]
pub struct ListenersTls {
    pub kamailio: Option<Arc<ListenerTls>>,
    pub admin: Option<Arc<ListenerTls>>,
    reloads: Option<IntCounterVec>,
}

impl ListenersTls {
    /// Loads `[server.kamailio_tls]` and `[server.admin_tls]`; registers
    /// `warpd_tls_reloads_total{listener,result}` in `registry`.
    pub fn load(server: &ServerSection, registry: &Registry) -> Result<ListenersTls, TlsError> {
        let one = |section, files: &Option<TlsFiles>| {
            files
                .as_ref()
                .map(|f| ListenerTls::load(section, f).map(Arc::new))
                .transpose()
        };
        let reloads = IntCounterVec::new(
            Opts::new(
                "tls_reloads_total",
                "Listener TLS certificate reloads (SIGHUP), by listener and result",
            ),
            &["listener", "result"],
        )
        .ok();
        if let Some(c) = &reloads {
            let _ = registry.register(Box::new(c.clone()));
        }
        Ok(ListenersTls {
            kamailio: one("server.kamailio_tls", &server.kamailio_tls)?,
            admin: one("server.admin_tls", &server.admin_tls)?,
            reloads,
        })
    }

    /// The TLS of one listener.
    pub fn side(&self, side: Side) -> Option<Arc<ListenerTls>> {
        match side {
            Side::Kamailio => self.kamailio.clone(),
            Side::Admin => self.admin.clone(),
        }
    }

    /// Reloads every configured listener's files (what SIGHUP does); a failure keeps that
    /// listener's current certificate, is logged and counted. Returns the number of failures.
    pub fn reload(&self) -> usize {
        let mut failed = 0;
        for side in [Side::Kamailio, Side::Admin] {
            let Some(tls) = self.side(side) else { continue };
            let result = match tls.reload() {
                Ok(()) => {
                    tracing::info!(listener = side.as_str(), "TLS certificate reloaded");
                    "ok"
                }
                Err(e) => {
                    failed += 1;
                    tracing::error!(listener = side.as_str(), error = %e,
                        "TLS certificate reload failed; keeping the current certificate");
                    "error"
                }
            };
            if let Some(c) = &self.reloads {
                c.with_label_values(&[side.as_str(), result]).inc();
            }
        }
        failed
    }
}

/// A complete server configuration from the files of `[<section>]`.
fn build(section: &str, files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let cert_key = format!("{section}.cert_file");
    let key_key = format!("{section}.key_file");
    let certs = read_certs(&cert_key, &files.cert_file)?;
    let key = read_key(&key_key, &files.key_file)?;
    let provider = provider();
    let certified =
        CertifiedKey::from_der(certs, key, &provider).map_err(|source| match source {
            rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch {
                key: key_key.clone(),
                path: files.key_file.clone(),
                cert_key: cert_key.clone(),
            },
            source => TlsError::Rejected {
                key: key_key.clone(),
                path: files.key_file.clone(),
                source,
            },
        })?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|source| TlsError::Rejected {
            key: cert_key.clone(),
            path: files.cert_file.clone(),
            source,
        })?;
    let builder = match &files.client_ca_file {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let key = format!("{section}.client_ca_file");
            let mut roots = RootCertStore::empty();
            for ca in read_certs(&key, path)? {
                roots.add(ca).map_err(|source| TlsError::Rejected {
                    key: key.clone(),
                    path: path.clone(),
                    source,
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|source| TlsError::ClientCa {
                    key: key.clone(),
                    path: path.clone(),
                    source,
                })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config =
        builder.with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified)));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
