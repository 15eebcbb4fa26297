//! [`Warpd`]: the daemon in-process, exactly as `warpd run` starts it (`warpd::server::run` with
//! its two listeners and a cancellation token), on 127.0.0.1 against a [`TestPg`].

use std::ops::Deref;
use std::path::Path;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use warpd::config::Config;

use super::{Api, TestCerts, TestPg};

/// `warpd.example.toml`: the configuration every in-process warpd starts from.
pub const EXAMPLE: &str = include_str!("../../warpd.example.toml");

type Edit = Box<dyn FnOnce(&mut Config)>;

/// How a [`Warpd`] is configured; from [`Warpd::builder`].
pub struct WarpdBuilder {
    toml: String,
    env: Vec<(String, String)>,
    edits: Vec<Edit>,
    listener: Option<tokio::net::TcpListener>,
    resp: Vec<warpd::api::RespListener>,
    wait_ready: bool,
    tls: ApiTls,
}

/// Which listeners the builder put on TLS, the CA the [`Api`] trusts and the identity it shows.
#[derive(Default)]
struct ApiTls {
    kamailio: bool,
    admin: bool,
    ca_pem: Option<Vec<u8>>,
    identity_pem: Option<Vec<u8>>,
}

impl ApiTls {
    fn apply(&self, api: Api) -> Api {
        match &self.ca_pem {
            Some(ca) => api.with_tls(self.kamailio, self.admin, ca, self.identity_pem.as_deref()),
            None => api,
        }
    }
}

/// A running warpd: [`Api`] (by `Deref`) plus the handle to stop it.
pub struct Warpd {
    pub api: Api,
    /// the Kamailio listener
    pub addr: std::net::SocketAddr,
    /// the admin listener
    pub admin_addr: std::net::SocketAddr,
    /// the RESP listener of the Kamailio surface, when [`WarpdBuilder::resp`] asked for one
    pub resp_addr: Option<std::net::SocketAddr>,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), warpd::server::ServeError>>,
    _spool: Option<tempfile::TempDir>,
}

impl Warpd {
    /// `warpd.example.toml` with the database of `pg`, a 50 ms reload debounce,
    /// `server.kamailio_dip_as = "any"` and a spool directory of its own (deleted when the `Warpd` is dropped) unless the test sets one.
    pub fn builder(pg: &TestPg) -> WarpdBuilder {
        WarpdBuilder {
            toml: EXAMPLE.to_string(),
            env: vec![
                ("WARPD_DATABASE__URL".into(), pg.url()),
                ("WARPD_RELOAD__DEBOUNCE_MS".into(), "50".into()),
                // the harness's clients dip by BAN from 127.0.0.1; a test of the restriction sets
                // its own policy (the production default is "src_ip")
                ("WARPD_SERVER__KAMAILIO_DIP_AS".into(), "any".into()),
            ],
            edits: Vec::new(),
            listener: None,
            resp: Vec::new(),
            wait_ready: true,
            tls: ApiTls::default(),
        }
    }

    /// The token `server::run` watches (a test may cancel it itself, e.g. mid-request).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Cancels and joins (bounded by 15 s); what `server::run` returned.
    pub async fn join(self) -> Result<Result<(), warpd::server::ServeError>, String> {
        self.shutdown.cancel();
        match tokio::time::timeout(Duration::from_secs(15), self.task).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(format!("server task panicked: {e}")),
            Err(_) => Err("server did not stop within 15 s".into()),
        }
    }

    /// Cancels, joins, and asserts `server::run` returned `Ok` within 15 s.
    pub async fn stop(self) {
        let done = self.join().await;
        assert!(
            matches!(done, Ok(Ok(()))),
            "server did not stop cleanly: {done:?}"
        );
    }
}

impl Deref for Warpd {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

impl WarpdBuilder {
    /// Sets a `WARPD_…` override (replacing an earlier value of the same key).
    pub fn env(mut self, key: &str, value: impl ToString) -> Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Sets several overrides.
    pub fn envs<'a>(mut self, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        for (k, v) in pairs {
            self = self.env(k, v);
        }
        self
    }

    /// The CDR spool directory (default: a temp dir of this instance).
    pub fn spool(self, dir: &Path) -> Self {
        self.env("WARPD_CDR__SPOOL_DIR", dir.display())
    }

    /// TOML appended to the example (extra sections such as `[media]` or `[consul]`).
    pub fn toml(mut self, extra: &str) -> Self {
        self.toml.push('\n');
        self.toml.push_str(extra);
        self
    }

    /// Edits the parsed configuration.
    pub fn config(mut self, edit: impl FnOnce(&mut Config) + 'static) -> Self {
        self.edits.push(Box::new(edit));
        self
    }

    /// Serves the Kamailio surface on this listener (default: a fresh one on 127.0.0.1:0; the
    /// admin surface always gets a fresh one).
    pub fn listener(mut self, listener: tokio::net::TcpListener) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Serves the Kamailio surface over TLS with `certs`' server certificate
    /// (`[server.kamailio_tls]`); the [`Api`] talks HTTPS to it trusting `certs`' CA.
    pub fn kamailio_tls(mut self, certs: &TestCerts) -> Self {
        self = self.toml(&certs.listener_toml("kamailio_tls", false));
        self.tls.kamailio = true;
        self.tls.ca_pem = Some(certs.ca_pem());
        self
    }

    /// Like [`kamailio_tls`](Self::kamailio_tls) with client certificates required
    /// (`client_ca_file` = `certs`' CA); the [`Api`] presents `certs`' client certificate.
    pub fn kamailio_mtls(mut self, certs: &TestCerts) -> Self {
        self = self.toml(&certs.listener_toml("kamailio_tls", true));
        self.tls.kamailio = true;
        self.tls.ca_pem = Some(certs.ca_pem());
        self.tls.identity_pem = Some(certs.client_identity_pem());
        self
    }

    /// Serves the admin surface over TLS with `certs`' server certificate (`[server.admin_tls]`).
    pub fn admin_tls(mut self, certs: &TestCerts) -> Self {
        self = self.toml(&certs.listener_toml("admin_tls", false));
        self.tls.admin = true;
        self.tls.ca_pem = Some(certs.ca_pem());
        self
    }

    /// Serves the Kamailio surface over RESP too, on a fresh listener on 127.0.0.1:0
    /// ([`Warpd::resp_addr`]).
    pub async fn resp(mut self) -> Self {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        self.resp.push(warpd::api::RespListener::Tcp(l));
        self
    }

    /// Serves the Kamailio surface over RESP on a unix socket at `path` with permissions `mode`
    /// (what `server.kamailio_resp_socket` binds).
    pub fn resp_unix(mut self, path: &Path, mode: u32) -> Self {
        let l = warpd::api::RespListener::bind_unix(path, mode).unwrap();
        self.resp.push(l);
        self
    }

    /// Returns as soon as the task is spawned instead of once `/readyz` answers 200.
    pub fn no_wait_ready(mut self) -> Self {
        self.wait_ready = false;
        self
    }

    /// The configuration this builder describes (for tests that run the binary instead).
    pub fn build_config(self) -> (Config, Option<tempfile::TempDir>) {
        let mut env = self.env;
        let spool = if env.iter().any(|(k, _)| k == "WARPD_CDR__SPOOL_DIR") {
            None
        } else {
            let dir = tempfile::Builder::new()
                .prefix("warpd-spool-")
                .tempdir()
                .expect("spool dir");
            env.push((
                "WARPD_CDR__SPOOL_DIR".into(),
                dir.path().display().to_string(),
            ));
            Some(dir)
        };
        let mut config = Config::from_str_with_env(&self.toml, env)
            .unwrap_or_else(|e| panic!("test configuration refused: {e}"));
        for edit in self.edits {
            edit(&mut config);
        }
        (config, spool)
    }

    /// Starts `server::run` and (unless [`no_wait_ready`](Self::no_wait_ready)) waits until
    /// `/readyz` answers 200, i.e. the first snapshot is loaded.
    pub async fn start(mut self) -> Warpd {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
            .with_test_writer()
            .try_init();
        let listener = match self.listener.take() {
            Some(l) => l,
            None => tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        };
        let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let wait_ready = self.wait_ready;
        let tls = std::mem::take(&mut self.tls);
        let resp = std::mem::take(&mut self.resp);
        let resp_addr = resp.iter().find_map(|l| l.local_addr());
        let (config, spool) = self.build_config();
        let secret = config.server.kamailio_secret.clone();
        let addr = listener.local_addr().unwrap();
        let admin_addr = admin.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let listeners = warpd::api::Listeners {
            kamailio: listener,
            admin,
            kamailio_resp: resp,
        };
        let task = tokio::spawn(warpd::server::run(config, listeners, shutdown.clone()));
        let w = Warpd {
            api: tls.apply(match &secret {
                Some(s) => Api::with_admin(addr, admin_addr).with_kamailio_secret(s),
                None => Api::with_admin(addr, admin_addr),
            }),
            addr,
            admin_addr,
            resp_addr,
            shutdown,
            task,
            _spool: spool,
        };
        if wait_ready {
            w.api.wait_ready().await;
        }
        w
    }
}

/// warpd run as the binary (`warpd --config <file> serve`), for what only a process has: signals.
/// Killed when dropped.
pub struct WarpdProcess {
    pub api: Api,
    pub addr: std::net::SocketAddr,
    pub admin_addr: std::net::SocketAddr,
    /// the RESP listener (`server.kamailio_resp_listen`), when [`WarpdBuilder::resp`] asked for one
    pub resp_addr: Option<std::net::SocketAddr>,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl WarpdProcess {
    /// Sends SIGHUP (reload the snapshot and the listeners' certificates).
    pub fn hangup(&self) {
        self.signal("HUP");
    }

    /// Sends SIGSTOP: the process freezes (its sockets stay open and the kernel still accepts
    /// connections into the listen backlog, but nothing is read or answered).
    pub fn freeze(&self) {
        self.signal("STOP");
    }

    /// Sends SIGCONT: a [`freeze`](Self::freeze)d process runs again.
    pub fn resume(&self) {
        self.signal("CONT");
    }

    fn signal(&self, sig: &str) {
        let st = std::process::Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap_or_else(|e| panic!("kill -{sig}: {e}"));
        assert!(st.success(), "kill -{sig} failed");
    }

    /// What the process logged so far (stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("warpd.log")).unwrap_or_default()
    }
}

impl Deref for WarpdProcess {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Drop for WarpdProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl WarpdBuilder {
    /// Runs the binary with this builder's TOML and `WARPD_…` overrides (config edits cannot
    /// cross a process boundary and are refused) on two free ports, stderr to `warpd.log` in
    /// its temp dir; waits until `/readyz` answers 200 unless [`no_wait_ready`](Self::no_wait_ready).
    /// A RESP listener from [`resp`](Self::resp) / [`resp_unix`](Self::resp_unix) becomes
    /// `server.kamailio_resp_listen` / `kamailio_resp_socket` (released here, bound by the process).
    pub async fn spawn_process(self) -> WarpdProcess {
        assert!(
            self.edits.is_empty(),
            "config(..) edits do not reach a process; use toml(..) or env(..)"
        );
        assert!(
            self.listener.is_none(),
            "listener(..) does not reach a process"
        );
        let dir = tempfile::Builder::new()
            .prefix("warpd-proc-")
            .tempdir()
            .expect("process dir");
        let cfg = dir.path().join("warpd.toml");
        std::fs::write(&cfg, &self.toml).expect("config file");
        let port = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
        };
        let (addr, admin_addr) = (port(), port());
        let mut env = self.env;
        if !env.iter().any(|(k, _)| k == "WARPD_CDR__SPOOL_DIR") {
            env.push((
                "WARPD_CDR__SPOOL_DIR".into(),
                dir.path().join("spool").display().to_string(),
            ));
        }
        env.push(("WARPD_SERVER__KAMAILIO_LISTEN".into(), addr.to_string()));
        env.push(("WARPD_SERVER__ADMIN_LISTEN".into(), admin_addr.to_string()));
        let mut resp_addr = None;
        for l in self.resp {
            match l {
                warpd::api::RespListener::Tcp(l) => {
                    let a = l.local_addr().expect("RESP listener address");
                    resp_addr = Some(a);
                    env.push(("WARPD_SERVER__KAMAILIO_RESP_LISTEN".into(), a.to_string()));
                }
                warpd::api::RespListener::Unix(_, path) => env.push((
                    "WARPD_SERVER__KAMAILIO_RESP_SOCKET".into(),
                    path.display().to_string(),
                )),
            }
        }
        let log = std::fs::File::create(dir.path().join("warpd.log")).expect("log file");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_warpd"))
            .arg("--config")
            .arg(&cfg)
            .arg("serve")
            .env_remove("RUST_LOG")
            .envs(env)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn warpd");
        let p = WarpdProcess {
            api: self.tls.apply(Api::with_admin(addr, admin_addr)),
            addr,
            admin_addr,
            resp_addr,
            child,
            _dir: dir,
        };
        if self.wait_ready {
            p.api.wait_ready().await;
        }
        p
    }
}
