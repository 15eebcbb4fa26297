//! systemd deployment: the units in systemd/ pass `systemd-analyze verify` with no warning, and the
//! warpd binary speaks the `Type=notify` protocol: READY=1 only once the first snapshot is loaded
//! (/readyz is 200 by then), WATCHDOG=1 at half of WATCHDOG_USEC, STOPPING=1 on SIGTERM. The
//! notification socket is a real AF_UNIX datagram socket standing in for systemd.

use crate::support;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Status code of a plain HTTP/1.1 GET on 127.0.0.1 ("" when unreachable).
fn http_status(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return String::new();
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.split(' ').nth(1).unwrap_or_default().to_string()
}

/// `key=value` lines of a unit file (comments and section headers left out), in order.
fn unit_lines(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .expect("read unit")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// What the deployment promises of the units, line by line: verify checks the syntax, this the
/// content (readiness and watchdog, a dedicated user, the hardening, state and spool
/// directories, PostgreSQL before warpd before Kamailio).
#[test]
fn units_say_what_the_deployment_promises() {
    let warpd = unit_lines(&support::repo().join("systemd/warpd.service"));
    let has = |k: &str, v: &str| warpd.iter().any(|(a, b)| a == k && b == v);
    let value = |k: &str| {
        warpd
            .iter()
            .filter(|(a, _)| a == k)
            .map(|(_, b)| b.clone())
            .collect::<Vec<_>>()
            .join(" ")
    };
    for (k, v) in [
        ("Type", "notify"),
        ("User", "warpd"),
        ("Group", "warpd"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("PrivateTmp", "yes"),
        ("CapabilityBoundingSet", ""),
        ("AmbientCapabilities", ""),
        ("StateDirectory", "warpd warpd/spool"),
        // /run/warpd: the RESP unix socket kamailio.cfg dips through by default
        ("RuntimeDirectory", "warpd"),
        ("RuntimeDirectoryMode", "0750"),
        ("Restart", "on-failure"),
    ] {
        assert!(has(k, v), "warpd.service: {k}={v} missing");
    }
    assert!(
        value("WatchdogSec").ends_with('s'),
        "warpd.service: a watchdog"
    );
    assert!(
        value("After").contains("postgresql.service"),
        "after PostgreSQL"
    );
    assert!(value("Wants").contains("postgresql.service"));
    assert!(
        value("Before").contains("kamailio.service"),
        "before Kamailio"
    );
    assert!(
        !value("EnvironmentFile").is_empty() && !value("ExecStart").contains("URL"),
        "secrets come from the environment file, never the command line"
    );
    let kamailio = unit_lines(&support::repo().join("systemd/kamailio.service.d/warpd.conf"));
    assert!(
        kamailio
            .iter()
            .any(|(k, v)| k == "After" && v.contains("warpd.service")),
        "Kamailio starts after warpd is ready"
    );
    assert!(
        !kamailio
            .iter()
            .any(|(k, v)| k == "Requires" && v.contains("warpd")),
        "a warpd restart must not take Kamailio down (Wants=, not Requires=)"
    );
    assert!(
        kamailio
            .iter()
            .any(|(k, v)| k == "SupplementaryGroups" && v.split_whitespace().any(|g| g == "warpd")),
        "Kamailio joins warpd's group: the RESP socket (/run/warpd/resp.sock, 0660) is its dip"
    );
}

#[test]
fn units_pass_systemd_analyze_verify() {
    support::require_tool("systemd-analyze");
    let dir = tempfile::tempdir().expect("tempdir");
    let units = dir.path();
    // ExecStart must name an existing binary: the one cargo built, instead of /usr/local/bin
    let service =
        std::fs::read_to_string(support::repo().join("systemd/warpd.service")).expect("unit");
    std::fs::write(
        units.join("warpd.service"),
        service.replace("/usr/local/bin/warpd", env!("CARGO_BIN_EXE_warpd")),
    )
    .expect("write unit");
    let mut targets = vec![units.join("warpd.service")];
    // the drop-ins are verified on top of the packaged units they extend, where installed
    for unit in ["kamailio.service", "rtpengine-daemon.service"] {
        support::copy_dir(
            &support::repo().join("systemd").join(format!("{unit}.d")),
            &units.join(format!("{unit}.d")),
        );
        let packaged = Path::new("/lib/systemd/system").join(unit);
        if packaged.exists() {
            std::fs::copy(&packaged, units.join(unit)).expect("copy packaged unit");
            targets.push(units.join(unit));
        }
    }
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&targets)
        .env("SYSTEMD_UNIT_PATH", format!("{}:", units.display()))
        .output()
        .expect("run systemd-analyze");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "verify failed: {stderr}");
    assert!(stderr.trim().is_empty(), "verify warnings: {stderr}");
}

#[test]
fn warpd_notifies_readiness_and_watchdog() {
    let pg = support::TestPg::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("bind notify socket");
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port")
    };
    let (port, admin_port) = (free(), free());
    // systemd sets WATCHDOG_PID to the service's main pid: `exec` keeps the shell's pid
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("WATCHDOG_PID=$$ exec \"$0\" --config \"$1\" serve")
        .arg(env!("CARGO_BIN_EXE_warpd"))
        .arg(support::repo().join("warpd.example.toml"))
        .env("WARPD_DATABASE__URL", pg.url())
        .env("WARPD_SERVER__KAMAILIO_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "WARPD_SERVER__ADMIN_LISTEN",
            format!("127.0.0.1:{admin_port}"),
        )
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "200000")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start warpd");

    let mut seen: Vec<String> = Vec::new();
    let mut ready_at_readyz = None;
    // every notification until READY=1 (checked against /readyz at that moment) and 3 watchdogs
    support::wait::poll_blocking(Duration::from_secs(30), || {
        let mut buf = [0u8; 1024];
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).to_string();
            if msg.contains("READY=1") {
                // the snapshot is in: warpd answers ready at that moment
                let code = http_status(port, "/readyz");
                ready_at_readyz = Some(code);
            }
            seen.push(msg);
        }
        let watchdogs = seen.iter().filter(|m| m.contains("WATCHDOG=1")).count();
        (ready_at_readyz.is_some() && watchdogs >= 3).then_some(())
    });
    // the shell's builtin kill: no procps needed on a minimal CI image
    let _ = Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", child.id())])
        .status();
    support::wait::poll_blocking(Duration::from_secs(10), || {
        let mut buf = [0u8; 1024];
        if let Ok(n) = sock.recv(&mut buf) {
            seen.push(String::from_utf8_lossy(&buf[..n]).to_string());
        }
        seen.iter().any(|m| m.contains("STOPPING=1")).then_some(())
    });
    let status = child.wait().expect("wait warpd");
    assert_eq!(
        ready_at_readyz.as_deref(),
        Some("200"),
        "READY=1 not sent, or sent before /readyz was 200: {seen:?}"
    );
    assert!(
        seen.iter().filter(|m| m.contains("WATCHDOG=1")).count() >= 3,
        "{seen:?}"
    );
    assert!(seen.iter().any(|m| m.contains("STOPPING=1")), "{seen:?}");
    assert!(status.success(), "warpd exit {status:?}");
}
