//! [`TestCerts`]: a throwaway certificate authority generated at test time (rcgen), with a
//! server certificate for `localhost` and 127.0.0.1 and a client certificate, as PEM files in a
//! temp dir (keys mode 0600). No private key is ever committed.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::CertificateDer;

/// A CA and the files of the certificates it issued.
pub struct TestCerts {
    dir: tempfile::TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
    /// the server certificate now in `server.pem` (DER)
    pub server_der: CertificateDer<'static>,
}

impl TestCerts {
    /// A new CA named `name`, a server certificate (`server.pem`, `server.key`) and a client
    /// certificate (`client.pem`, `client.key`) it issued, and `ca.pem`.
    pub fn new(name: &str) -> TestCerts {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("warpd test CA {name}"));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("CA key"))
            .expect("CA certificate");
        let dir = tempfile::Builder::new()
            .prefix("warpd-certs-")
            .tempdir()
            .expect("cert dir");
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).expect("ca.pem");
        let mut certs = TestCerts {
            dir,
            ca,
            server_der: CertificateDer::from(Vec::new()),
        };
        certs.server_der = certs.issue("server", ExtendedKeyUsagePurpose::ServerAuth);
        certs.issue("client", ExtendedKeyUsagePurpose::ClientAuth);
        certs
    }

    /// Issues a new certificate and key into `<stem>.pem` / `<stem>.key`; returns its DER.
    pub fn issue(&self, stem: &str, usage: ExtendedKeyUsagePurpose) -> CertificateDer<'static> {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
            .expect("leaf params");
        params
            .distinguished_name
            .push(DnType::CommonName, format!("warpd test {stem}"));
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &self.ca).expect("leaf certificate");
        std::fs::write(self.path(&format!("{stem}.pem")), cert.pem()).expect("cert file");
        write_private(
            &self.path(&format!("{stem}.key")),
            key.serialize_pem().as_bytes(),
        );
        cert.der().clone()
    }

    /// A second server certificate in place of the first (same paths): what an operator's
    /// renewal does before SIGHUP.
    pub fn renew_server(&mut self) -> CertificateDer<'static> {
        self.server_der = self.issue("server", ExtendedKeyUsagePurpose::ServerAuth);
        self.server_der.clone()
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `ca.pem` as bytes.
    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.path("ca.pem")).expect("ca.pem")
    }

    /// The client certificate and key, one PEM (what `reqwest::Identity::from_pem` takes).
    pub fn client_identity_pem(&self) -> Vec<u8> {
        let mut pem = std::fs::read(self.path("client.pem")).expect("client.pem");
        pem.extend(std::fs::read(self.path("client.key")).expect("client.key"));
        pem
    }

    /// The TOML of a listener TLS section `[server.<section>]` with these files.
    pub fn listener_toml(&self, section: &str, client_ca: bool) -> String {
        let mut t = format!(
            "[server.{section}]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
            self.path("server.pem").display(),
            self.path("server.key").display()
        );
        if client_ca {
            t.push_str(&format!(
                "client_ca_file = \"{}\"\n",
                self.path("ca.pem").display()
            ));
        }
        t
    }
}

/// Writes a private key file readable by its owner only.
pub fn write_private(path: &Path, bytes: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, bytes).expect("key file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod 600");
}

/// Completes a TLS handshake with `addr` trusting `ca_pem` and returns the certificate the
/// server presented (its leaf, DER), or the handshake error.
pub async fn presented_cert(
    addr: std::net::SocketAddr,
    ca_pem: &[u8],
) -> Result<CertificateDer<'static>, String> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(c.expect("CA PEM")).expect("CA");
    }
    let config = rustls::ClientConfig::builder_with_provider(warpd::tls::provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let tls = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        connector.connect(name, tcp),
    )
    .await
    .map_err(|_| "handshake timed out".to_string())?
    .map_err(|e| e.to_string())?;
    let (_, conn) = tls.get_ref();
    conn.peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.clone().into_owned())
        .ok_or_else(|| "no peer certificate".into())
}
