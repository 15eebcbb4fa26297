//! A throwaway PostgreSQL cluster per test (initdb + pg_ctl in a temp dir on a free
//! 127.0.0.1 port). Never touches a system cluster; stopped and deleted on drop.
//!
//! CI runs as root and initdb refuses root, so as root the cluster runs as the `postgres` user.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub struct TestPg {
    dir: tempfile::TempDir,
    pub port: u16,
    bin: PathBuf,
    as_postgres: bool,
}

fn pg_bin() -> PathBuf {
    if let Ok(p) = std::env::var("WARPD_PG_BIN") {
        return PathBuf::from(p);
    }
    for v in ["17", "16", "15", "14", "13"] {
        let p = PathBuf::from(format!("/usr/lib/postgresql/{v}/bin"));
        if p.join("initdb").exists() {
            return p;
        }
    }
    panic!(
        "PostgreSQL server binaries not found (apt-get install postgresql, or set WARPD_PG_BIN)"
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}

impl TestPg {
    pub fn start() -> TestPg {
        TestPg::start_with(None)
    }

    /// A cluster with `ssl = on` serving `certs`' server certificate, whose `pg_hba.conf` lets
    /// `warpd` in over TCP only with TLS (`hostssl`; a plain connection is refused) and anyone
    /// over the Unix socket. Same template as [`start`](Self::start): no extra `initdb`.
    pub fn start_tls(certs: &super::TestCerts) -> TestPg {
        TestPg::start_with(Some(certs))
    }

    fn start_with(certs: Option<&super::TestCerts>) -> TestPg {
        let bin = pg_bin();
        let as_postgres = is_root();
        let dir = tempfile::Builder::new()
            .prefix("warpd-pg-")
            .tempdir()
            .expect("temp dir");
        if as_postgres {
            let st = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(st.success(), "chown of test cluster dir failed");
        }
        let pg = TestPg {
            dir,
            port: 0,
            bin,
            as_postgres,
        };
        let data = pg.data_dir();
        // a copy of a cluster made once (initdb costs about a second of CPU, a copy a fraction)
        let template = pg.template();
        let st = Command::new("cp")
            .arg("-a")
            .arg(&template)
            .arg(&data)
            .status()
            .expect("cp");
        assert!(st.success(), "copy of the template cluster failed");
        let mut pg = pg;
        pg.port = free_port();
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 100\nshared_buffers = 128MB\n",
            pg.port,
            pg.dir.path().display()
        );
        let mut conf = conf;
        if let Some(certs) = certs {
            pg.install_tls(certs, &data);
            conf.push_str("ssl = on\nssl_cert_file = 'server.pem'\nssl_key_file = 'server.key'\n");
        }
        std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .and_then(|mut f| std::io::Write::write_all(&mut f, conf.as_bytes()))
            .expect("write postgresql.conf");
        pg.start_server();
        pg
    }

    /// The server's certificate and key in the data directory (owned by the server's user, key
    /// mode 0600 as PostgreSQL demands) and a `pg_hba.conf` that wants TLS over TCP.
    fn install_tls(&self, certs: &super::TestCerts, data: &Path) {
        std::fs::copy(certs.path("server.pem"), data.join("server.pem")).expect("server.pem");
        std::fs::copy(certs.path("server.key"), data.join("server.key")).expect("server.key");
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all warpd 127.0.0.1/32 trust\n",
        )
        .expect("pg_hba.conf");
        if self.as_postgres {
            let st = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(data.join("server.pem"))
                .arg(data.join("server.key"))
                .arg(data.join("pg_hba.conf"))
                .status()
                .expect("chown");
            assert!(st.success(), "chown of TLS files failed");
        }
    }

    /// A fresh cluster (`initdb`) to copy, made once and kept under cargo's target tmp dir (one
    /// per PostgreSQL major version and owner); built under a temporary name and renamed, so
    /// concurrent test processes never see half of one.
    fn template(&self) -> PathBuf {
        let owner = if self.as_postgres { "postgres" } else { "user" };
        let version = self
            .bin
            .parent()
            .and_then(|p| p.file_name())
            .map(|v| v.to_string_lossy().into_owned())
            .unwrap_or_default();
        let root = PathBuf::from(option_env!("CARGO_TARGET_TMPDIR").unwrap_or("/tmp"));
        let dir = root.join(format!("warpd-pg-template-{version}-{owner}"));
        if dir.join("PG_VERSION").exists() {
            return dir;
        }
        let _ = std::fs::create_dir_all(&root);
        let work = tempfile::Builder::new()
            .prefix("warpd-pg-template-")
            .tempdir_in(&root)
            .expect("template temp dir");
        if self.as_postgres {
            let st = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(work.path())
                .status()
                .expect("chown");
            assert!(st.success(), "chown of template dir failed");
        }
        let data = work.path().join("data");
        self.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap_or_default(),
                "-U",
                "warpd",
                "--auth=trust",
                "-N",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        // another process may have won the race: its template is as good as ours
        let _ = std::fs::rename(&data, &dir);
        dir
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let exe = self.bin.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out = cmd
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run {tool}: {e}"));
        assert!(
            out.status.success(),
            "{tool} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts (or restarts after [`stop`](Self::stop)) the server and waits until it accepts connections.
    pub fn start_server(&self) {
        let data = self.data_dir();
        let log = self.dir.path().join("server.log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap_or_default(),
                "-l",
                log.to_str().unwrap_or_default(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
    }

    /// Stops the server immediately (like a crash) so tests can exercise database outages.
    /// Committed transactions survive it, as with production's `synchronous_commit = on`: the
    /// harness runs PostgreSQL with `synchronous_commit = off`, whose crash loses the commits of
    /// the last WAL-writer interval (~200 ms), so a CHECKPOINT comes first (a test that seeded
    /// its data just before the outage used to find an empty database after it).
    pub fn stop(&self) {
        let data = self.data_dir();
        let port = self.port.to_string();
        self.run(
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "warpd",
                "-d",
                "postgres",
                "-qAt",
                "-c",
                "CHECKPOINT",
            ],
        );
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap_or_default(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }

    pub fn url(&self) -> String {
        format!("postgres://warpd@127.0.0.1:{}/postgres", self.port)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TestPg {
    fn drop(&mut self) {
        let data = self.data_dir();
        let exe = self.bin.join("pg_ctl");
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let _ = cmd
            .args(["-D"])
            .arg(&data)
            .args(["-m", "immediate", "-w", "stop"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
