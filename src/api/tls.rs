//! TLS on the listeners (rustls with the *ring* provider): each surface's certificate, key and
//! optional client CA ([`TlsFiles`], `[server.kamailio_tls]` / `[server.admin_tls]`) are read
//! from PEM files at start — any problem stops the start with an error naming the key and the
//! file — and again on SIGHUP ([`ListenerTls::reload`]): a complete new `rustls::ServerConfig`
//! is built and swapped in (`ArcSwap`), so new handshakes use it and open connections keep
//! theirs; a file that does not load leaves the current configuration in place, is logged
//! (path and reason, never key material) and counted (`warpd_tls_reloads_total{result="error"}`).
//!
//! Private keys must not be readable by others, the rule PostgreSQL applies to `ssl_key_file`:
//! mode 0600 or stricter, or 0640 when owned by root (a group such as `ssl-cert` may read it).
//!
//! Owns: loading and swapping the TLS configurations. Must not touch: sockets and the handshake
//! itself (see `server.rs`, which runs it under the header-read timeout and the connection caps).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use prometheus::{IntCounterVec, Opts, Registry};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

use super::Side;
use crate::config::{ServerConfig as ServerSection, TlsFiles};

/// Why a listener's TLS files do not load. Each names the configuration key and the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{key} ({}): cannot read: {source}", path.display())]
    Read {
        key: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{key} ({}): not a PEM file of {what}: {source}", path.display())]
    Pem {
        key: String,
        path: PathBuf,
        what: &'static str,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("{key} ({}): holds no {what}", path.display())]
    Empty {
        key: String,
        path: PathBuf,
        what: &'static str,
    },
    #[error(
        "{key} ({}): the private key file is readable by {who} (mode {mode:04o}); chmod 600 it \
         (or 640 owned by root)", path.display()
    )]
    KeyReadable {
        key: String,
        path: PathBuf,
        who: &'static str,
        mode: u32,
    },
    #[error("{key} ({}): {source}", path.display())]
    Rejected {
        key: String,
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("{key} ({}): a CA certificate is not usable: {source}", path.display())]
    ClientCa {
        key: String,
        path: PathBuf,
        #[source]
        source: rustls::server::VerifierBuilderError,
    },
}

/// The provider every TLS configuration of warpd uses (also the PostgreSQL client's): *ring*,
/// which builds with a C compiler alone (aws-lc-rs wants a much larger native build). rustls
/// 0.23.48 deprecated it for lacking post-quantum key exchange, which these links do not need yet.
#[allow(deprecated)]
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

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
    let certified = CertifiedKey::from_der(certs, key, &provider).map_err(|source| {
        TlsError::Rejected {
            key: format!("{key_key} with {cert_key}"),
            path: files.key_file.clone(),
            source,
        }
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
    let mut config = builder.with_cert_resolver(Arc::new(
        rustls::sign::SingleCertAndKey::from(certified),
    ));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read(key: &str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        key: key.into(),
        path: path.into(),
        source,
    })
}

/// The certificates of a PEM file (at least one).
pub(crate) fn read_certs(key: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(key, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            key: key.into(),
            path: path.into(),
            what: "certificates",
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            key: key.into(),
            path: path.into(),
            what: "certificate (-----BEGIN CERTIFICATE-----)",
        });
    }
    Ok(certs)
}

/// The first private key of a PEM file, whose permissions must keep it private.
fn read_key(key: &str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    check_key_mode(key, path)?;
    let pem = read(key, path)?;
    match PrivateKeyDer::from_pem_slice(&pem) {
        Ok(k) => Ok(k),
        Err(rustls::pki_types::pem::Error::NoItemsFound) => Err(TlsError::Empty {
            key: key.into(),
            path: path.into(),
            what: "private key (-----BEGIN PRIVATE KEY----- or RSA/EC PRIVATE KEY)",
        }),
        Err(source) => Err(TlsError::Pem {
            key: key.into(),
            path: path.into(),
            what: "a private key",
            source,
        }),
    }
}

/// PostgreSQL's rule for `ssl_key_file`: no access for others, group read only when root owns it.
#[cfg(unix)]
fn check_key_mode(key: &str, path: &Path) -> Result<(), TlsError> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).map_err(|source| TlsError::Read {
        key: key.into(),
        path: path.into(),
        source,
    })?;
    let mode = meta.mode() & 0o7777;
    let refuse = |who| {
        Err(TlsError::KeyReadable {
            key: key.into(),
            path: path.into(),
            who,
            mode,
        })
    };
    if mode & 0o007 != 0 {
        return refuse("others");
    }
    if meta.uid() == 0 {
        if mode & 0o030 != 0 {
            return refuse("its group (beyond read)");
        }
    } else if mode & 0o070 != 0 {
        return refuse("its group (allowed only for a root-owned file)");
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_key_mode(_key: &str, _path: &Path) -> Result<(), TlsError> {
    Ok(())
}
