//! The ng proxy's cost against a real rtpengine-daemon (userspace, 127.0.0.1, ports 30400-30999):
//!
//! 1. open loop at WARPD_BENCH_RATE commands/s (default 2,000), WARPD_BENCH_ROUNDS rounds
//!    (default 6) of WARPD_BENCH_SECS seconds (default 5) per path, straight to the node, through
//!    warpd's proxy and through a bare relay (the floor of any extra hop, see [`bare_relay`])
//!    taking turns in ABBA order; every command's latency (send → answer) is recorded;
//!    p50/p99/p99.9 of each path over all its rounds, the differences, each round's own p99
//!    difference and the CPU per command of warpd's media thread and of the relay's thread are
//!    printed; then the direct and proxied streams at the same time (same machine conditions
//!    for both).
//!    WARPD_BENCH_SLOW_US=1000 prints every command slower than 1 ms;
//! 2. closed loop with WARPD_BENCH_INFLIGHT commands in flight (default 64) for 3 s: the ceiling
//!    in commands/s of the node alone and of the node behind the proxy, side by side.
//!
//! The command mix is calls: `offer` (new call-id, ports allocated), then `delete` of that call
//! as soon as the offer is answered (ports freed), so the node's state stays small at any rate.
//! Only `ok` answers count towards the ceiling; error answers are listed by reason.
//!
//! Run: cargo bench --bench media_proxy

#[path = "../tests/media_support/mod.rs"]
mod media_support;

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use media_support::{audio_sdp, bs, RtpEngine};
use warpd::media::{MediaConfig, NodeConfig};

fn env_or<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn offer(run: &str, n: u64) -> Vec<u8> {
    let call = format!("{run}-c{n}");
    format!(
        "{run}-o{n} d7:command5:offer7:call-id{}8:from-tag2:ft3:sdp{}5:flagsl13:trust-addressee",
        bs(&call),
        bs(&audio_sdp(9000))
    )
    .into_bytes()
}

fn delete(run: &str, n: u64) -> Vec<u8> {
    let call = format!("{run}-c{n}");
    format!(
        "{run}-d{n} d7:command6:delete7:call-id{}8:from-tag2:fte",
        bs(&call)
    )
    .into_bytes()
}

/// The error reason of an answer, if it is an error.
fn error_reason(answer: &[u8]) -> Option<String> {
    let (_, d) = warpd::media::codec::parse_datagram(answer).ok()?;
    match d.str("result") {
        Some("ok") | Some("pong") => None,
        _ => Some(d.str("error-reason").unwrap_or("?").to_string()),
    }
}

/// The bench's start, for WARPD_BENCH_SLOW_US reports.
static T0: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
type OnEnd = Arc<dyn Fn(&str) + Send + Sync>;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

struct OpenLoop {
    /// every answer's latency, µs, sorted
    lat: Vec<f64>,
    p50: f64,
    p99: f64,
    p999: f64,
    max: f64,
    sent: u64,
    lost: u64,
    errors: HashMap<String, u64>,
}

/// Starts calls at `rate / 2` per second for `secs`: each call is an `offer`, and its `delete`
/// sent the moment the offer's answer arrives (as Kamailio does: never before), so the command
/// rate is `rate`. Every answer's latency (send → answer) is recorded in µs. `on_end` runs with
/// the call-id when a call's delete is answered, as warpd's CDR path does on Kamailio's
/// `call.end` (it takes the call's quality from the media controller).
fn open_loop(
    target: SocketAddr,
    run: &str,
    rate: u64,
    secs: u64,
    on_end: Option<OnEnd>,
) -> OpenLoop {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap_or_else(|e| panic!("{e}"));
    let rx = sock.try_clone().unwrap_or_else(|e| panic!("{e}"));
    // diagnostics: every command slower than this many µs is printed with its send time
    let slow_us: Option<f64> = std::env::var("WARPD_BENCH_SLOW_US")
        .ok()
        .and_then(|v| v.parse().ok());
    let sent_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let sent = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let receiver = {
        let sent_at = sent_at.clone();
        let done = done.clone();
        let sent = sent.clone();
        let run = run.to_string();
        std::thread::spawn(move || {
            let mut lat = Vec::new();
            let mut errors: HashMap<String, u64> = HashMap::new();
            let mut buf = vec![0u8; 65535];
            let mut idle_since: Option<Instant> = None;
            loop {
                match rx.recv_from(&mut buf) {
                    Ok((n, _)) => {
                        idle_since = None;
                        let now = Instant::now();
                        let data = &buf[..n];
                        let cookie = data.split(|&b| b == b' ').next().unwrap_or_default();
                        let cookie = String::from_utf8_lossy(cookie).into_owned();
                        if let Some(t) = sent_at.lock().ok().and_then(|mut m| m.remove(&cookie)) {
                            let l = now.duration_since(t).as_secs_f64() * 1e6;
                            if slow_us.is_some_and(|s| l > s) {
                                let at = t.duration_since(*T0.get_or_init(Instant::now));
                                eprintln!("slow: {cookie} {l:.0} µs, sent at {at:.3?}");
                            }
                            lat.push(l);
                        }
                        if let (Some(f), Some(n)) =
                            (&on_end, cookie.strip_prefix(&format!("{run}-d")))
                        {
                            f(&format!("{run}-c{n}"));
                        }
                        match error_reason(data) {
                            Some(r) => *errors.entry(r).or_default() += 1,
                            None => {
                                // the offer was answered: end the call now
                                if let Some(n) = cookie
                                    .strip_prefix(&format!("{run}-o"))
                                    .and_then(|n| n.parse::<u64>().ok())
                                {
                                    if let Ok(mut m) = sent_at.lock() {
                                        m.insert(format!("{run}-d{n}"), Instant::now());
                                    }
                                    sent.fetch_add(1, Ordering::Relaxed);
                                    let _ = rx.send_to(&delete(&run, n), target);
                                }
                            }
                        }
                    }
                    Err(_) => {
                        if done.load(Ordering::Relaxed) {
                            let t = *idle_since.get_or_insert_with(Instant::now);
                            if t.elapsed() > Duration::from_millis(500) {
                                break;
                            }
                        }
                    }
                }
            }
            (lat, errors)
        })
    };
    let calls = rate / 2 * secs;
    let interval = Duration::from_secs_f64(2.0 / rate as f64);
    let start = Instant::now();
    for n in 0..calls {
        let due = start + interval * n as u32;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        if let Ok(mut m) = sent_at.lock() {
            m.insert(format!("{run}-o{n}"), Instant::now());
        }
        sent.fetch_add(1, Ordering::Relaxed);
        let _ = sock.send_to(&offer(run, n), target);
    }
    done.store(true, Ordering::Relaxed);
    let (lat, errors) = receiver.join().unwrap_or_default();
    let sent = sent.load(Ordering::Relaxed);
    OpenLoop::new(lat, sent, errors)
}

impl OpenLoop {
    fn new(mut lat: Vec<f64>, sent: u64, errors: HashMap<String, u64>) -> OpenLoop {
        lat.sort_by(f64::total_cmp);
        OpenLoop {
            p50: percentile(&lat, 0.5),
            p99: percentile(&lat, 0.99),
            p999: percentile(&lat, 0.999),
            max: lat.last().copied().unwrap_or(f64::NAN),
            sent,
            lost: sent.saturating_sub(lat.len() as u64),
            errors,
            lat,
        }
    }

    /// All the samples of several runs as one.
    fn pooled(runs: &[OpenLoop]) -> OpenLoop {
        let mut errors: HashMap<String, u64> = HashMap::new();
        for r in runs {
            for (k, v) in &r.errors {
                *errors.entry(k.clone()).or_default() += v;
            }
        }
        OpenLoop::new(
            runs.iter().flat_map(|r| r.lat.iter().copied()).collect(),
            runs.iter().map(|r| r.sent).sum(),
            errors,
        )
    }

    fn print(&self, name: &str) {
        println!(
            "  {name:22} p50 {:7.1} µs  p99 {:7.1} µs  p99.9 {:7.1} µs  max {:8.1} µs  sent {}  unanswered {}  errors {:?}",
            self.p50, self.p99, self.p999, self.max, self.sent, self.lost, self.errors
        );
    }
}

/// `inflight` closed loops (one socket each: send, wait for the answer, next) for `secs`.
fn ceiling(target: SocketAddr, run: &str, inflight: u64, secs: u64) -> f64 {
    let stop = Instant::now() + Duration::from_secs(secs);
    let count = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..inflight)
        .map(|w| {
            let count = count.clone();
            let run = format!("{run}w{w}");
            std::thread::spawn(move || {
                let sock = UdpSocket::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
                sock.set_read_timeout(Some(Duration::from_millis(500)))
                    .unwrap_or_else(|e| panic!("{e}"));
                let mut buf = vec![0u8; 65535];
                let mut i = 0u64;
                while Instant::now() < stop {
                    // offer then delete of the same call, strictly in turn; only `ok` counts
                    let dg = if i % 2 == 0 {
                        offer(&run, i / 2)
                    } else {
                        delete(&run, i / 2)
                    };
                    if sock.send_to(&dg, target).is_ok() {
                        if let Ok((n, _)) = sock.recv_from(&mut buf) {
                            if error_reason(&buf[..n]).is_none() {
                                count.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    i += 1;
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    count.load(Ordering::Relaxed) as f64 / secs as f64
}

/// The floor of any ng proxy on this machine: a relay that does nothing but forward, built like
/// warpd's media thread (its own thread, a current-thread tokio runtime, one socket towards the
/// client and one towards the node). Datagrams from the client go to the node as they are, the
/// node's go back to the last client (each bench stream uses one socket). Comparing it with the
/// direct path measures what the extra hop costs by itself (two wake-ups and two loopback
/// sends); warpd's proxy minus this relay is what warpd's own work costs.
fn bare_relay(node: SocketAddr, shutdown: tokio_util::sync::CancellationToken) -> SocketAddr {
    let bind = || {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("relay bind: {e}"));
        s.set_nonblocking(true)
            .unwrap_or_else(|e| panic!("relay socket: {e}"));
        s
    };
    let (front, back) = (bind(), bind());
    let addr = front
        .local_addr()
        .unwrap_or_else(|e| panic!("relay address: {e}"));
    std::thread::Builder::new()
        .name("bare-relay".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap_or_else(|e| panic!("relay runtime: {e}"));
            rt.block_on(async move {
                let front = tokio::net::UdpSocket::from_std(front)
                    .unwrap_or_else(|e| panic!("relay socket: {e}"));
                let back = tokio::net::UdpSocket::from_std(back)
                    .unwrap_or_else(|e| panic!("relay socket: {e}"));
                let (mut a, mut b) = (vec![0u8; 65_535], vec![0u8; 65_535]);
                let mut client = None;
                loop {
                    tokio::select! {
                        r = front.recv_from(&mut a) => if let Ok((n, from)) = r {
                            client = Some(from);
                            let _ = back.send_to(&a[..n], node).await;
                        },
                        r = back.recv_from(&mut b) => if let (Ok((n, _)), Some(c)) = (r, client) {
                            let _ = front.send_to(&b[..n], c).await;
                        },
                        _ = shutdown.cancelled() => break,
                    }
                }
            });
        })
        .unwrap_or_else(|e| panic!("relay thread: {e}"));
    addr
}

/// Run time so far of this process's thread `name` (warpd's `warpd-media`, the `bare-relay`):
/// the scheduler's exact figure, user + kernel; None where /proc has no schedstat.
fn thread_cpu(name: &str) -> Option<Duration> {
    for t in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if comm.trim() == name {
            let stat = std::fs::read_to_string(t.path().join("schedstat")).ok()?;
            let ns: u64 = stat.split_whitespace().next()?.parse().ok()?;
            return Some(Duration::from_nanos(ns));
        }
    }
    None
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rate = env_or("WARPD_BENCH_RATE", 2000u64);
    let secs = env_or("WARPD_BENCH_SECS", 5u64);
    let inflight = env_or("WARPD_BENCH_INFLIGHT", 64u64);
    let node = RtpEngine::start(30400, 30999);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let cfg = MediaConfig {
        ng_listen: "127.0.0.1:0".into(),
        nodes: vec![NodeConfig {
            address: node.ng.to_string(),
            weight: 1,
        }],
        ..MediaConfig::default()
    };
    let (ctl, proxy) = rt
        .block_on(warpd::media::start(&cfg, None, None, shutdown.clone()))
        .unwrap_or_else(|e| panic!("media start: {e}"));
    let tag = media_support::rand_suffix();

    // the proxied calls end as with Kamailio's call.end: the CDR path takes their quality
    let end: OnEnd = {
        let ctl = ctl.clone();
        Arc::new(move |call_id: &str| {
            let _ = ctl.take_quality(call_id);
        })
    };
    // warm-up
    open_loop(node.ng, &format!("wd{tag}"), 500, 1, None);
    open_loop(proxy, &format!("wp{tag}"), 500, 1, Some(end.clone()));

    // Sequential runs of a few seconds each swing by tens of µs at p99 with the VM's state. So
    // the two paths take turns, `rounds` runs of `secs` each, in ABBA order (direct, proxy,
    // proxy, direct, ...) so that a drift over the run hits both alike; the figures are over
    // all samples of each path, and each round's own difference is printed to show the spread.
    let rounds = env_or("WARPD_BENCH_ROUNDS", 6u64);
    T0.get_or_init(Instant::now);
    let relay = bare_relay(node.ng, shutdown.clone());
    let (mut direct_runs, mut via_runs, mut relay_runs) = (vec![], vec![], vec![]);
    let mut added_p99 = vec![];
    let (mut media_cpu, mut relay_cpu) = (Some(Duration::ZERO), Some(Duration::ZERO));
    // a run of `f`, adding the CPU that thread `name` spent meanwhile to `sum`
    let timed = |name: &str, sum: &mut Option<Duration>, f: &mut dyn FnMut() -> OpenLoop| {
        let before = thread_cpu(name);
        let run = f();
        *sum = match (*sum, before, thread_cpu(name)) {
            (Some(s), Some(b), Some(a)) => Some(s + a.saturating_sub(b)),
            _ => None,
        };
        run
    };
    for r in 0..rounds {
        let d = || open_loop(node.ng, &format!("d{r}{tag}"), rate, secs, None);
        let mut b = || {
            timed("bare-relay", &mut relay_cpu, &mut || {
                open_loop(relay, &format!("b{r}{tag}"), rate, secs, None)
            })
        };
        let mut p = || {
            timed("warpd-media", &mut media_cpu, &mut || {
                open_loop(proxy, &format!("p{r}{tag}"), rate, secs, Some(end.clone()))
            })
        };
        let (d, p, b) = if r % 2 == 0 {
            let d = d();
            let p = p();
            (d, p, b())
        } else {
            let b = b();
            let p = p();
            (d(), p, b)
        };
        added_p99.push(p.p99 - d.p99);
        direct_runs.push(d);
        via_runs.push(p);
        relay_runs.push(b);
    }
    let direct = OpenLoop::pooled(&direct_runs);
    let via = OpenLoop::pooled(&via_runs);
    let bare = OpenLoop::pooled(&relay_runs);
    println!(
        "open loop, {rate} commands/s, {rounds} rounds of {secs} s per path in ABBA order (offer + delete of the same calls)"
    );
    direct.print("direct to rtpengine");
    via.print("through warpd proxy");
    bare.print("through a bare relay");
    println!(
        "  added by a bare relay (the hop alone): p50 {:+.1} µs  p99 {:+.1} µs;  warpd beyond the bare relay: p50 {:+.1} µs  p99 {:+.1} µs",
        bare.p50 - direct.p50,
        bare.p99 - direct.p99,
        via.p50 - bare.p50,
        via.p99 - bare.p99
    );
    println!(
        "  added by the proxy: p50 {:+.1} µs  p99 {:+.1} µs  (each round's p99 difference: {})",
        via.p50 - direct.p50,
        via.p99 - direct.p99,
        added_p99
            .iter()
            .map(|a| format!("{a:+.0}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let proxied: u64 = via_runs.iter().map(|r| r.sent).sum();
    let relayed: u64 = relay_runs.iter().map(|r| r.sent).sum();
    let per = |cpu: Option<Duration>, n: u64| {
        cpu.filter(|_| n > 0)
            .map(|c| c.as_secs_f64() * 1e6 / n as f64)
    };
    if let (Some(w), Some(b)) = (per(media_cpu, proxied), per(relay_cpu, relayed)) {
        println!(
            "  CPU per command (scheduler run time, user + kernel): warpd's media thread {w:.1} µs, the bare relay's thread {b:.1} µs, warpd's own work beyond the relay {:.1} µs",
            w - b
        );
    }

    // the same two streams at the same time, so both see the same machine load (the node then
    // serves 2 × rate)
    let (d2, p2) = std::thread::scope(|s| {
        let d = s.spawn(|| open_loop(node.ng, &format!("sd{tag}"), rate, secs, None));
        let p = s.spawn(|| open_loop(proxy, &format!("sp{tag}"), rate, secs, Some(end.clone())));
        (d.join(), p.join())
    });
    if let (Ok(d2), Ok(p2)) = (d2, p2) {
        println!("open loop, both streams at once, {rate} commands/s each for {secs} s");
        d2.print("direct to rtpengine");
        p2.print("through warpd proxy");
        println!(
            "  added by the proxy: p50 {:+.1} µs  p99 {:+.1} µs",
            p2.p50 - d2.p50,
            p2.p99 - d2.p99
        );
    }

    let (n, p50, p99) = ctl.proxy_overhead();
    println!(
        "warpd's own time per proxied command (receive → answer sent, minus node wait; histogram bucket bounds): {n} commands, p50 ≤ {:.0} µs, p99 ≤ {:.0} µs",
        p50.unwrap_or(f64::NAN) * 1e6,
        p99.unwrap_or(f64::NAN) * 1e6
    );

    let c_direct = ceiling(node.ng, &format!("cd{tag}"), inflight, 3);
    let c_via = ceiling(proxy, &format!("cp{tag}"), inflight, 3);
    println!("closed loop, {inflight} commands in flight, 3 s");
    println!("  direct to rtpengine   {c_direct:8.0} commands/s");
    println!("  through warpd proxy   {c_via:8.0} commands/s");
    shutdown.cancel();
}
