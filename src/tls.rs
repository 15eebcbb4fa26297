//! PEM files and the crypto provider shared by the listeners' TLS (`api::tls`) and the
//! PostgreSQL client's (`db::tls`), and [`TlsError`], which names the configuration key and the
//! file of every problem.
//!
//! Private keys must not be readable by others, the rule PostgreSQL applies to `ssl_key_file`:
//! mode 0600 or stricter, or 0640 when owned by root (a group such as `ssl-cert` may read it).
//! Key material is never part of an error or a log line.
//!
//! Owns: reading certificates and keys. Must not touch: sockets, handshakes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why TLS files do not load. Each names the configuration key and the file.
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
    #[error("{key} ({}): the private key does not belong to the certificate of {cert_key}", path.display())]
    KeyMismatch {
        key: String,
        path: PathBuf,
        cert_key: String,
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
pub(crate) fn read_key(key: &str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
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
