//! Real calls end to end on 127.0.0.1: SIPp as the customer (UAC) → Kamailio running
//! `kamailio/kamailio.cfg` → warpd dip (over RESP on warpd's unix socket, kamailio.cfg's default
//! transport; [`resp_freeze`] dips over TCP) (`server::run` in-process, throwaway PostgreSQL with a copy of
//! the demo network whose vendor gateways are moved to free ports) → SIPp UAS processes as the
//! vendor gateways. One test function runs every scenario in order (they share one warpd and the
//! processes; each step is bounded and everything is stopped on drop):
//!
//! - the cheapest vendor's gateway gets the call (the UAS message logs are counted), and its CDR
//!   has that route at the dip's rates;
//! - the cheapest gateway answers 503 → the call completes on the next one, and the call events
//!   (call.attempt ×2, call.answer, call.end; the end last) leave Kamailio with the right fields (recorded by a
//!   small HTTP sink in front of warpd's POST /v1/events, which forwards them to warpd);
//!   and the call's CDR in PostgreSQL has the carrying route, 2 attempts, its rates, duration,
//!   billed seconds and cost; a busy gateway (486, never failed over) gives a `busy` CDR; a
//!   gateway that never answers is a 408 after the gateway timer and the next one completes the
//!   call; a customer who hangs up while the gateway rings sends a CANCEL that reaches it, no
//!   other gateway is tried, and the CDR is `cancelled` by the caller;
//! - warpd's event endpoint unavailable (the sink answers 503) while a call completes: Kamailio
//!   keeps the events and sends them again; once they are taken the CDR appears, each event
//!   delivered once and in order;
//! - a blocked prefix gets warpd's 403 from Kamailio; a source that is no customer's takes the
//!   inbound path (404 for a number that is not the carrier's);
//! - issue 19: inbound calls to a trunk's number, digest-authenticated trunks, and gateway
//!   health (a dead gateway skipped at once): see [`inbound`] and [`health`];
//! - media: with `WITH_MEDIA` the SDP the customer receives is RTPEngine's (port in its range),
//!   and a fax call's T.38 re-INVITE answer (m=image udptl t38) goes through RTPEngine too, all
//!   through warpd's ng proxy; on the demo's T.38-gateway trunk (bw-intl) the vendor gets that
//!   re-INVITE as G.711 audio while the customer still gets T.38 from RTPEngine; the customer streams 1 s of PCMU RTP (`uac_rtp.xml`) and the demo's recording policy for
//!   customer 10001 (identified by source address) leaves an RTPEngine recording whose metadata
//!   names the BAN and the route and whose pcap holds the RTP packets. (RTCP and the MOS it gives
//!   in the CDR are checked in tests/media_e2e.rs.)
//! - the async_task_route + http_connect fallback mode (no http_async_client) routes the same way;
//! - warpd stopped → 503 at once; warpd hanging → 503 after the dip time-out; with
//!   DIP_FALLBACK_URI the call goes to the static route instead;
//! - warpd (a process) frozen with SIGSTOP for 10 s under 200 calls/s: see [`resp_freeze`].
//!
//! Needs kamailio, sipp and rtpengine (scripts/install-deps.sh) and the http_async_client module
//! built by `scripts/provision-host.sh modules` (run here when the cached .so is missing).

mod credit;
mod gaps;
mod health;
mod inbound;
mod resp_freeze;
mod scenarios;
mod sink;
mod stir;
mod stir_gate;

use crate::support::{self, repo, require_tool, Warpd};
use gaps::*;
use scenarios::*;
use sink::event_sink;

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

const DIP_TIMEOUT_MS: u64 = 300;
const ANI: &str = "+13125550100";
const DNIS: &str = "+12125550100";

/// The http_async_client module built from Debian's source package (cached under target/).
fn http_async_so() -> PathBuf {
    let dir = std::env::var("WARPD_KAM_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo().join("target/kamailio-modules"));
    let so = dir.join("http_async_client.so");
    if !so.exists() {
        let st = Command::new(repo().join("scripts/provision-host.sh"))
            .arg("modules")
            .status()
            .expect("run scripts/provision-host.sh modules");
        assert!(st.success(), "scripts/provision-host.sh modules failed");
    }
    assert!(so.exists(), "{} missing after provisioning", so.display());
    so
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("free udp port")
}

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("free tcp port")
}

/// A child process stopped with SIGTERM (Kamailio then stops its own children), SIGKILL after 3 s.
struct Proc {
    name: String,
    child: Child,
}

impl Proc {
    fn spawn(name: &str, cmd: &mut Command, log: &Path) -> Proc {
        let out = std::fs::File::create(log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Proc {
            name: name.to_string(),
            child,
        }
    }

    fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // the shell's builtin kill: no procps needed on a minimal CI image
        let _ = Command::new("sh")
            .args(["-c", &format!("kill -TERM {}", self.child.id())])
            .status();
        let child = &mut self.child;
        let exited = support::wait::poll_blocking(Duration::from_secs(3), || {
            matches!(child.try_wait(), Ok(Some(_))).then_some(())
        });
        if exited.is_some() {
            return;
        }
        eprintln!("{} did not stop on SIGTERM; killing", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits until something holds `port` (UDP) on 127.0.0.1: a bind there fails.
fn wait_udp_taken(port: u16) {
    support::eventually_blocking(
        format!("something bound to udp {port}"),
        Duration::from_secs(10),
        || UdpSocket::bind(("127.0.0.1", port)).is_err(),
    );
}

struct Kamailio {
    port: u16,
    log: PathBuf,
    _proc: Proc,
}

impl Kamailio {
    /// Starts kamailio/kamailio.cfg on a free port with extra `-A` defines; waits until it answers
    /// OPTIONS. Without gateway probing (`WITHOUT_GW_PROBING`): the scenarios' SIPp gateways come
    /// and go between scenarios and most do not answer OPTIONS; [`health`] runs with it.
    fn start(dir: &Path, name: &str, defines: &[String]) -> Kamailio {
        let mut defines = defines.to_vec();
        defines.push("WITHOUT_GW_PROBING".to_string());
        Kamailio::start_probing(dir, name, &defines)
    }

    /// [`Self::start`] with the shipped gateway probing (keepalive OPTIONS).
    fn start_probing(dir: &Path, name: &str, defines: &[String]) -> Kamailio {
        // kamailio.cfg listens on UDP and TCP on this port: free for both
        let port = (0..100)
            .map(|_| free_udp_port())
            .find(|p| TcpListener::bind(("127.0.0.1", *p)).is_ok())
            .expect("a port free for UDP and TCP");
        let run = dir.join(format!("kam-{name}"));
        std::fs::create_dir_all(&run).expect("run dir");
        let log = dir.join(format!("kamailio-{name}.log"));
        let mut cmd = Command::new("kamailio");
        cmd.arg("-f")
            .arg(repo().join("kamailio/kamailio.cfg"))
            // -x tlsf: the memory manager the systemd drop-in runs in production
            .args(["-DD", "-E", "-m", "64", "-M", "8", "-x", "tlsf", "-P"])
            .arg(run.join("kamailio.pid"))
            .arg("-Y")
            .arg(&run)
            .args(["-A", &format!("SIP_PORT={port}")])
            .args(["-A", "SIP_CHILDREN=2"])
            .arg("-A")
            .arg(format!(
                "CTL_SOCKET=\"unixs:{}\"",
                run.join("ctl").display()
            ))
            .args(["-A", &format!("DIP_TIMEOUT_MS={DIP_TIMEOUT_MS}")])
            // the RESP dip (the default transport) waits as long as the HTTP one
            .args(["-A", &format!("RESP_CMD_TIMEOUT_MS={DIP_TIMEOUT_MS}")])
            .args(["-A", "GW_FR_TIMER_MS=2000"]);
        for d in defines {
            cmd.args(["-A", d]);
        }
        // Kamailio's JSON-RPC listener (credit, issue 21): a port of its own per Kamailio
        if !defines.iter().any(|d| d.starts_with("RPC_PORT=")) {
            cmd.args(["-A", &format!("RPC_PORT={}", free_tcp_port())]);
        }
        let proc = Proc::spawn(&format!("kamailio-{name}"), &mut cmd, &log);
        let k = Kamailio {
            port,
            log,
            _proc: proc,
        };
        k.wait_ready();
        k
    }

    fn wait_ready(&self) {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("udp");
        let me = sock.local_addr().expect("addr");
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let t = Instant::now();
        support::eventually_blocking(
            "kamailio answering OPTIONS",
            Duration::from_secs(15),
            || {
                let options = format!(
                "OPTIONS sip:127.0.0.1:{p} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-probe{n}\r\nFrom: <sip:probe@{me}>;tag=p\r\nTo: <sip:127.0.0.1:{p}>\r\nCall-ID: probe-{n}@test\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
                p = self.port,
                n = t.elapsed().as_millis()
            );
                let _ = sock.send_to(options.as_bytes(), ("127.0.0.1", self.port));
                let mut buf = [0u8; 2048];
                match sock.recv_from(&mut buf) {
                    Ok((n, _)) if String::from_utf8_lossy(&buf[..n]).starts_with("SIP/2.0 200") => {
                        Ok(())
                    }
                    _ => Err(format!(
                        "no 200; log:\n{}",
                        std::fs::read_to_string(&self.log).unwrap_or_default()
                    )),
                }
            },
        );
    }
}

/// A SIPp UAS playing one vendor gateway; its message log says which calls it saw.
struct Uas {
    msgs: PathBuf,
    _proc: Proc,
}

impl Uas {
    fn start(dir: &Path, port: u16, scenario: &str, tag: &str) -> Uas {
        let msgs = dir.join(format!("uas-{port}-{tag}.msg"));
        let mut cmd = Command::new("sipp");
        cmd.arg("-sf")
            .arg(repo().join("tests/sipp").join(scenario))
            .args(["-p", &port.to_string(), "-i", "127.0.0.1", "-nostdin"])
            // answers in-dialog OPTIONS/UPDATE/INFO/NOTIFY with 200 (a caller's refresh)
            .arg("-aa")
            .args(["-buff_size", "1048576", "-trace_msg", "-message_file"])
            .arg(&msgs);
        let proc = Proc::spawn(
            &format!("uas-{port}"),
            &mut cmd,
            &dir.join(format!("uas-{port}-{tag}.out")),
        );
        wait_udp_taken(port);
        Uas { msgs, _proc: proc }
    }

    /// INVITEs this gateway received.
    fn invites(&self) -> usize {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.msgs) {
            let _ = f.read_to_string(&mut s);
        }
        s.lines().filter(|l| l.starts_with("INVITE sip:")).count()
    }
}

struct CallResult {
    ok: bool,
    elapsed: Duration,
    trace: String,
}

/// One customer call with SIPp: `scenario` is a file in tests/sipp (or a path); `ok` when the
/// scenario completed (SIPp exit code 0).
fn call(dir: &Path, kam: &Kamailio, scenario: &Path, dnis: &str, tag: &str) -> CallResult {
    let trace = dir.join(format!("uac-{tag}.msg"));
    let t = Instant::now();
    let out = Command::new("sipp")
        .arg(format!("127.0.0.1:{}", kam.port))
        .arg("-sf")
        .arg(scenario)
        .args(["-key", "ani", ANI, "-key", "dnis", dnis])
        .args(["-m", "1", "-d", "100", "-i", "127.0.0.1", "-p"])
        .arg(free_udp_port().to_string())
        .args(["-nostdin", "-timeout", "15s", "-timeout_error"])
        .args(["-recv_timeout", "8000", "-trace_msg", "-message_file"])
        .arg(&trace)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run sipp uac");
    let elapsed = t.elapsed();
    CallResult {
        ok: out.status.success(),
        elapsed,
        trace: std::fs::read_to_string(&trace).unwrap_or_default()
            + &String::from_utf8_lossy(&out.stderr),
    }
}

/// The most packets in one pcap file under `dir` (RTPEngine's recordings): records are counted
/// by walking the classic pcap layout (24-byte file header, then a 16-byte header per packet
/// whose third field is the captured length).
fn pcap_packets_max(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|e| std::fs::read(e.path()).ok())
        .map(|b| {
            let (mut at, mut n) = (24usize, 0usize);
            while let Some(h) = b.get(at..at + 16) {
                let len = u32::from_le_bytes([h[8], h[9], h[10], h[11]]) as usize;
                at += 16 + len;
                if at > b.len() {
                    break;
                }
                n += 1;
            }
            n
        })
        .max()
        .unwrap_or(0)
}

/// Media ports of `m=<kind>` lines in the 200 OKs the UAC received (SIPp message trace).
fn received_200_ports(trace: &str, kind: &str) -> Vec<u16> {
    trace
        .split("-----------------------------------------------")
        .filter(|m| m.contains("message received") && m.contains("SIP/2.0 200 OK"))
        .flat_map(|m| {
            m.lines()
                .filter_map(|l| l.trim().strip_prefix(&format!("m={kind} ")))
                .filter_map(|l| l.split(' ').next().and_then(|p| p.parse().ok()))
                .collect::<Vec<u16>>()
        })
        .collect()
}

fn call_id_of(trace: &str) -> String {
    trace
        .lines()
        .find_map(|l| l.strip_prefix("Call-ID: "))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| panic!("no Call-ID in trace:\n{trace}"))
}

fn reject_scenario(dir: &Path, code: u16) -> PathBuf {
    let text =
        std::fs::read_to_string(repo().join("tests/sipp/uac_reject.xml")).expect("uac_reject.xml");
    let path = dir.join(format!("uac_reject_{code}.xml"));
    std::fs::write(&path, text.replace("@CODE@", &code.to_string())).expect("write scenario");
    path
}

/// Copies examples/demo to `dir`, moving the vendor gateways (5081..5087) to free UDP ports and
/// optionally replacing customer 10001's source IPs. Returns the network file and the port map.
fn demo_copy(dir: &Path, ports: &BTreeMap<u16, u16>, source_ips: Option<&str>) -> PathBuf {
    let src = repo().join("examples/demo");
    let dst = dir.join("demo");
    for sub in ["rates", "numbering"] {
        std::fs::create_dir_all(dst.join(sub)).expect("mkdir");
        for e in std::fs::read_dir(src.join(sub))
            .expect("read demo dir")
            .flatten()
        {
            std::fs::copy(e.path(), dst.join(sub).join(e.file_name())).expect("copy csv");
        }
    }
    let text = std::fs::read_to_string(src.join("network.toml")).expect("network.toml");
    // whole lines, in one pass: a new port may start with the digits of a later old one
    // (50864 after `port = 5081` → 50864 would then match `port = 5086`)
    let mut text: String = text
        .lines()
        .map(|l| {
            let to = l
                .strip_prefix("port = ")
                .and_then(|p| p.trim().parse::<u16>().ok())
                .and_then(|p| ports.get(&p));
            match to {
                Some(to) => format!("port = {to}\n"),
                None => format!("{l}\n"),
            }
        })
        .collect();
    if let Some(ips) = source_ips {
        text = text.replace(
            "source_ips = [\"127.0.0.1/32\"]",
            &format!("source_ips = [\"{ips}\"]"),
        );
    }
    let path = dst.join("network.toml");
    std::fs::write(&path, text).expect("write network");
    path
}

/// Two per-minute rates as JSON numbers (the CDR's and the dip answer's) are the same rate.
fn same_rate(a: &Value, b: &Value) -> bool {
    (a.as_f64().unwrap_or(-1.0) - b.as_f64().unwrap_or(-2.0)).abs() < 1e-9
}

fn gw_port(uri: &str) -> u16 {
    // sip:+1...@127.0.0.1:PORT;transport=udp
    uri.rsplit_once(':')
        .and_then(|(_, rest)| rest.split(';').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {uri}"))
}

/// warpd's media keys as environment overrides (`media.ng_listen`, `media.nodes`): they work
/// whether or not warpd.example.toml has a `[media]` section.
fn media_env_overrides(ng_listen: &str, rtpengine: &str) -> Vec<(String, String)> {
    vec![
        ("WARPD_MEDIA__NG_LISTEN".to_string(), ng_listen.to_string()),
        (
            "WARPD_MEDIA__NODES".to_string(),
            format!("[{{ address = \"{rtpengine}\", weight = 1 }}]"),
        ),
    ]
}

/// The stack every SIP scenario runs on: PostgreSQL with a copy of the demo network (gateways on
/// free ports), RTPEngine, warpd (in-process, media through its ng proxy), a recording event sink
/// in front of warpd's event endpoint, and the main Kamailio dipping to warpd. Fields drop in
/// order: Kamailio and RTPEngine stop before PostgreSQL, the temp dir goes last.
struct Sip {
    main: Option<Kamailio>,
    _rtpengine: Proc,
    warpd: Option<Warpd>,
    rt: tokio::runtime::Runtime,
    pg: support::TestPg,
    http: reqwest::Client,
    dir: PathBuf,
    ports: BTreeMap<u16, u16>,
    rtp_min: u16,
    /// RTPEngine's ng port (behind warpd's ng proxy)
    rtp_ng: u16,
    rtpengine_sock: String,
    so_define: String,
    /// the RESP dip to this warpd (`WARPD_RESP_SERVER`: its unix socket, kamailio.cfg's default
    /// transport; `resp_freeze` dips over TCP)
    resp_define: String,
    /// warpd's RESP unix socket (`server.kamailio_resp_socket`)
    resp_socket: PathBuf,
    base: String,
    events_url: String,
    warpd_port: u16,
    uac: PathBuf,
    /// the routes of the first dip, and every gateway port in the order they are tried
    routes: Vec<Value>,
    order: Vec<u16>,
    cheapest: u16,
    second: u16,
    /// events Kamailio sent (through the sink), and whether the sink answers 503
    events: Arc<Mutex<Vec<Value>>>,
    sink_down: Arc<AtomicBool>,
    _tmp: Option<tempfile::TempDir>,
}

impl Sip {
    /// `GET /v1/route` by source address (as kamailio.cfg dips); `null` if warpd does not answer.
    fn dip(&self, src_ip: &str, dnis: &str) -> Value {
        let url = format!(
            "{}/v1/route?src_ip={src_ip}&ani={}&dnis={}",
            self.base,
            ANI.replace('+', "%2B"),
            dnis.replace('+', "%2B")
        );
        self.rt.block_on(async {
            match self.http.get(&url).send().await {
                Ok(r) => r.json::<Value>().await.unwrap_or(Value::Null),
                Err(_) => Value::Null,
            }
        })
    }

    /// [`Self::dip`] of a tracked call (limits apply; a routed one stays live until reaped).
    fn dip_call(&self, src_ip: &str, dnis: &str, call_id: &str) -> Value {
        let url = format!(
            "{}/v1/route?src_ip={src_ip}&ani={}&dnis={}&call_id={call_id}",
            self.base,
            ANI.replace('+', "%2B"),
            dnis.replace('+', "%2B")
        );
        self.rt.block_on(async {
            match self.http.get(&url).send().await {
                Ok(r) => r.json::<Value>().await.unwrap_or(Value::Null),
                Err(_) => Value::Null,
            }
        })
    }

    /// Runs SQL on the stack's database (panics on error).
    fn sql(&self, sql: &str) {
        self.rt.block_on(async {
            let client = warpd::db::connect(&self.pg.url()).await.expect("connect");
            client.batch_execute(sql).await.expect(sql);
        })
    }

    /// The call's CDR row as JSON, once written.
    fn cdr_of(&self, call_id: &str) -> Option<Value> {
        self.rt.block_on(async {
            let client = warpd::db::connect(&self.pg.url()).await.ok()?;
            let row = client
                .query_opt(
                    "SELECT row_to_json(c)::text FROM cdrs c WHERE call_id = $1",
                    &[&call_id],
                )
                .await
                .ok()??;
            serde_json::from_str(&row.get::<_, String>(0)).ok()
        })
    }

    fn start() -> Sip {
        for tool in ["kamailio", "sipp", "rtpengine"] {
            require_tool(tool);
        }
        let so = http_async_so();
        let tmp = tempfile::Builder::new()
            .prefix("warpd-e2e-sip-")
            .tempdir()
            .expect("tempdir");
        // WARPD_E2E_KEEP=1 keeps the logs (Kamailio, SIPp traces, RTPEngine) for a look afterwards
        let (dir, tmp) = if std::env::var_os("WARPD_E2E_KEEP").is_some() {
            eprintln!("keeping {}", tmp.path().display());
            (tmp.keep(), None)
        } else {
            (tmp.path().to_path_buf(), Some(tmp))
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");

        // --- database + demo network on free gateway ports ---------------------------------
        let pg = support::TestPg::start();
        let ports: BTreeMap<u16, u16> = (5081..=5087).map(|p| (p, free_udp_port())).collect();
        let network = demo_copy(&dir, &ports, None);
        rt.block_on(async {
            let mut client = warpd::db::connect(&pg.url()).await.expect("connect");
            warpd::db::migrate::migrate(&mut client)
                .await
                .expect("migrate");
            warpd::provision::apply(&mut client, &network, false)
                .await
                .expect("apply demo copy");
        });

        // --- RTPEngine (userspace) and warpd ----------------------------------------------------
        let rtp_ng = free_udp_port();
        // 31000 and up: clear of the fixed ranges of the media tests (30000-30499) running
        // alongside in this binary
        let rtp_min = 31000 + (rtp_ng % 200) * 100;
        std::fs::create_dir_all(dir.join("rec")).expect("rec dir");
        let rtpengine = Proc::spawn(
            "rtpengine",
            Command::new("rtpengine")
                // the host config from rtpengine/, with this test's ports and spool on top
                .arg(format!(
                    "--config-file={}",
                    repo().join("rtpengine/rtpengine.conf").display()
                ))
                .args(["--table=-1", "--interface=127.0.0.1"])
                .arg(format!("--listen-cli=127.0.0.1:{}", free_tcp_port()))
                .arg(format!("--listen-ng=127.0.0.1:{rtp_ng}"))
                .arg(format!("--port-min={rtp_min}"))
                .arg(format!("--port-max={}", rtp_min + 99))
                .arg(format!("--recording-dir={}", dir.join("rec").display()))
                .args([
                    "--recording-method=pcap",
                    "--delete-delay=0",
                    "--foreground",
                ])
                .args(["--log-stderr", "--log-level=5"])
                .arg(format!("--pidfile={}", dir.join("rtpengine.pid").display())),
            &dir.join("rtpengine.log"),
        );
        wait_udp_taken(rtp_ng);

        // media through warpd's ng proxy, as in production
        let ng_proxy = free_udp_port();
        let rtpengine_sock = format!("udp:127.0.0.1:{ng_proxy}");
        let warpd_port = free_tcp_port();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind(("127.0.0.1", warpd_port)))
            .expect("bind warpd");
        let mut builder = Warpd::builder(&pg)
            .spool(&dir.join("spool"))
            .listener(listener)
            // the emergency scenario changes a call limit and waits for it
            .env("WARPD_CALLS__LIMITS_REFRESH_MS", "200")
            .env("WARPD_SERVER__KAMAILIO_SECRET", E2E_SECRET)
            // the RESP dip without pass= (ndb_redis sends AUTH on a reconnect before it applies
            // cmd_timeout: a hanging warpd would block a SIP worker); loopback is its guard
            .env("WARPD_SERVER__KAMAILIO_RESP_REQUIRE_SECRET", "false")
            .env("WARPD_CDR__API_TOKEN", E2E_CDR_TOKEN);
        for (k, v) in media_env_overrides(
            &format!("127.0.0.1:{ng_proxy}"),
            &format!("127.0.0.1:{rtp_ng}"),
        ) {
            builder = builder.env(&k, v);
        }
        // the RESP dip over warpd's unix socket (kamailio.cfg's default transport), with the
        // permissions warpd.example.toml ships (its owner's user and group)
        let resp_socket = dir.join("resp.sock");
        // (bound in the runtime: tokio's listener needs its reactor)
        let builder = rt.block_on(async { builder.resp_unix(&resp_socket, 0o660) });
        let warpd = rt.block_on(builder.start());
        let base = warpd.base.clone();
        let events_url = format!("{base}/v1/events");
        let mut s = Sip {
            main: None,
            _rtpengine: rtpengine,
            warpd: Some(warpd),
            rt,
            pg,
            http: reqwest::Client::builder()
                .default_headers(bearer_header())
                .build()
                .expect("HTTP client"),
            dir,
            ports,
            rtp_min,
            rtp_ng,
            rtpengine_sock,
            so_define: format!("HTTP_ASYNC_SO=\"{}\"", so.display()),
            resp_define: format!(
                "WARPD_RESP_SERVER=\"name=warpd;unix={}\"",
                resp_socket.display()
            ),
            resp_socket,
            base,
            events_url,
            warpd_port,
            uac: repo().join("tests/sipp/uac.xml"),
            routes: Vec::new(),
            order: Vec::new(),
            cheapest: 0,
            second: 0,
            events: Arc::default(),
            sink_down: Arc::new(AtomicBool::new(false)),
            _tmp: tmp,
        };
        let answer = support::eventually_blocking("warpd routing", Duration::from_secs(30), || {
            let a = s.dip("127.0.0.1", DNIS);
            (a["action"] == "route").then_some(a)
        });

        // expected gateway order: every route's uris, in order
        let routes = answer["routes"].as_array().expect("routes").clone();
        assert!(routes.len() >= 2, "{answer}");
        let order: Vec<u16> = routes
            .iter()
            .flat_map(|r| r["uris"].as_array().cloned().unwrap_or_default())
            .map(|u| gw_port(u.as_str().unwrap_or_default()))
            .collect();
        // rates and billing terms: the admin simulation of the same dip (none in the dip answer)
        let (a, d) = (&ANI[1..], &DNIS[1..]);
        let q = format!("src_ip=127.0.0.1&ani=%2B{a}&dnis=%2B{d}");
        let routes =
            s.rt.block_on(s.warpd.as_ref().expect("warpd").priced_routes(&q, &answer));
        assert!(
            routes[0]["rate"].as_f64() <= routes[1]["rate"].as_f64() || routes[0]["forced"] == true,
            "cheapest first: {answer}"
        );
        (s.cheapest, s.second) = (order[0], order[1]);
        assert_ne!(s.cheapest, s.second);
        (s.routes, s.order) = (routes, order);

        // --- the main Kamailio: dips to warpd, events through the recording sink ----------------
        let sink =
            s.rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
                .expect("bind sink");
        // credentials in the URL: http_client sends them as HTTP Basic (the sink passes them on)
        let sink_url = with_secret(&format!(
            "http://{}/v1/events",
            sink.local_addr().expect("sink addr")
        ));
        s.rt.spawn(event_sink(
            sink,
            s.events_url.clone(),
            s.events.clone(),
            s.sink_down.clone(),
        ));
        s.main = Some(Kamailio::start(
            &s.dir,
            "main",
            &[
                s.so_define.clone(),
                s.resp_define.clone(),
                format!("WARPD_URL=\"{}\"", s.base),
                format!("WARPD_SECRET=\"{E2E_SECRET}\""),
                format!("WARPD_EVENTS_HTTPCON=\"events=>{sink_url}\""),
            ],
        ));
        s
    }

    /// The main Kamailio (dips to warpd, events through the sink).
    fn main(&self) -> &Kamailio {
        self.main.as_ref().expect("main kamailio started")
    }

    /// The defines of a second Kamailio on this stack: the module, warpd's dip (RESP and HTTP)
    /// with the Kamailio secret, events straight to warpd. Scenarios add their own.
    fn base_defines(&self) -> Vec<String> {
        vec![
            self.so_define.clone(),
            self.resp_define.clone(),
            format!("WARPD_URL=\"{}\"", self.base),
            format!("WARPD_SECRET=\"{E2E_SECRET}\""),
            format!(
                "WARPD_EVENTS_HTTPCON=\"events=>{}\"",
                with_secret(&self.events_url)
            ),
        ]
    }
}

/// One stack, the scenarios in order (each a named function below; later ones change the
/// database and finally stop warpd, so they share the stack rather than run as separate tests:
/// a Kamailio + RTPEngine + warpd stack per scenario would cost more CI time than the scenarios).
#[test]
fn sip_calls_through_kamailio_are_routed_by_warpd() {
    let mut s = Sip::start();
    cheapest_gateway_gets_the_call(&s);
    ringing_gateway_gives_the_cdr_ring_time_and_the_route_its_pdd(&s);
    each_failover_attempt_carries_its_own_ring_time(&s);
    tcp_gateway_gets_the_call_over_tcp(&s);
    tls_gateway_without_tls_fails_over_to_the_next_gateway(&s);
    failover_after_503_completes_on_the_next_gateway_with_events_in_order(&s);
    busy_cheapest_gateway_gives_486_without_failover(&s);
    silent_gateway_times_out_and_the_next_gateway_completes_the_call(&s);
    caller_cancel_while_ringing_reaches_the_gateway_only(&s);
    events_refused_by_warpd_are_resent_and_the_cdr_appears_once_taken(&s);
    blocked_prefix_gets_warpds_403_and_no_gateway_sees_it(&s);
    emergency_call_at_the_limit_is_routed_with_its_callback_number(&s);
    media_sdp_and_t38_reinvite_go_through_rtpengine(&s);
    fallback_dip_mode_without_http_async_client_routes(&s);
    http_dip_is_the_fallback_of_a_failed_resp_dip(&s);
    inbound::inbound_calls_and_digest_trunks(&s);
    customer_source_moved_away_takes_the_inbound_path(&s);
    health::dead_gateway_is_skipped_at_once_once_its_probe_fails(&s);
    warpd_stopped_gives_503_at_once_or_the_static_fallback_route(&mut s);
    emergency_call_reaches_the_static_emergency_route_when_the_dip_fails(&s);
    warpd_hanging_gives_503_after_the_dip_timeout(&s);
}

/// warpd's `server.kamailio_secret` in this stack: Kamailio sends it (`WARPD_SECRET` as a bearer
/// token on dips, HTTP Basic from the httpcon URLs on events and fallback dips), and so do the
/// test's own requests to the Kamailio listener.
pub(super) const E2E_SECRET: &str = "e2e-kamailio-secret-0123";

/// `http://host/…` with `kamailio:<E2E_SECRET>@` (an http_client named connection's credentials).
pub(super) fn with_secret(url: &str) -> String {
    url.replacen("http://", &format!("http://kamailio:{E2E_SECRET}@"), 1)
}

fn bearer_header() -> reqwest::header::HeaderMap {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert(
        reqwest::header::AUTHORIZATION,
        reqwest::header::HeaderValue::from_str(&format!("Bearer {E2E_SECRET}")).expect("header"),
    );
    h
}
