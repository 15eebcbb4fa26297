//! `warpd user …` (the binary, as an operator runs it): add with a generated password, sign in
//! with it, passwd from stdin, list, disable (sign-in refused, sessions ended), bad input named.

use std::io::Write;
use std::process::{Command, Stdio};

use reqwest::StatusCode;

use super::http::sign_in;
use super::start;

fn warpd(cfg: &std::path::Path, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_warpd"))
        .arg("--config")
        .arg(cfg)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_commands_manage_console_accounts() {
    let st = start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("cli.toml");
    std::fs::write(&cfg, format!("[database]\nurl = \"{}\"\n", st._pg.url())).unwrap();
    let base = st.warpd.admin_url("");
    let base = base.trim_end_matches('/');

    let (ok, pw, err) = warpd(&cfg, &["user", "add", "carol", "--role", "ops"], None);
    assert!(ok, "{err}");
    let pw = pw.trim();
    assert_eq!(pw.len(), 24, "a generated password is printed once: {pw:?}");
    let (s, session, _) = sign_in(base, "carol", pw).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert!(session.is_some());

    let (ok, _, err) = warpd(
        &cfg,
        &["user", "passwd", "carol", "--password-stdin"],
        Some("a much better password\n"),
    );
    assert!(ok, "{err}");
    let (s, _, _) = sign_in(base, "carol", pw).await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "the old password no longer works"
    );
    let (s, _, _) = sign_in(base, "carol", "a much better password").await;
    assert_eq!(s, StatusCode::SEE_OTHER);

    let (ok, list, _) = warpd(&cfg, &["user", "list"], None);
    assert!(
        ok && list
            .lines()
            .any(|l| l.starts_with("carol") && l.contains("ops")),
        "{list}"
    );

    let (ok, _, err) = warpd(&cfg, &["user", "disable", "carol"], None);
    assert!(ok, "{err}");
    let (s, none, _) = sign_in(base, "carol", "a much better password").await;
    assert_eq!((s, none), (StatusCode::UNAUTHORIZED, None));
    let n: i64 = st
        .client
        .query_one(
            "SELECT count(*) FROM console_sessions s JOIN console_users u ON u.id = s.user_id WHERE u.name = 'carol'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "disabling ends the sessions");

    // bad input: named, nothing created
    for (args, stdin, want) in [
        (
            vec!["user", "add", "dave", "--role", "root"],
            None,
            "role \"root\"",
        ),
        (
            vec!["user", "add", "bad name", "--role", "ops"],
            None,
            "user name",
        ),
        (
            vec!["user", "add", "erin", "--password-stdin"],
            Some("short\n"),
            "password: at least 12",
        ),
        (vec!["user", "add", "carol"], None, "exists already"),
        (
            vec!["user", "passwd", "nobody", "--password-stdin"],
            Some("long enough password\n"),
            "no user named",
        ),
    ] {
        let (ok, _, err) = warpd(&cfg, &args, stdin);
        assert!(!ok && err.contains(want), "{args:?}: {err}");
    }
    let audit: Vec<String> = st
        .client
        .query(
            "SELECT action FROM audit_log WHERE target = 'console_user carol' ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        audit,
        [
            "console_user.create",
            "console_user.password",
            "console_user.disable"
        ]
    );
    st.warpd.stop().await;
}
