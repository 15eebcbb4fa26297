//! Media tests: a real `rtpengine` (Debian rtpengine-daemon, userspace only) on
//! 127.0.0.1 with its own ng port, RTP port range and recording directory; killed on drop. Also
//! a tiny ng sender that talks raw datagrams like Kamailio's rtpengine module does.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct RtpEngine {
    child: Option<Child>,
    pub ng: SocketAddr,
    pub dir: tempfile::TempDir,
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("no free UDP port on 127.0.0.1")
}

impl RtpEngine {
    /// Starts a daemon relaying on ports `port_min..=port_max` (keep ranges disjoint between
    /// tests so they can run in parallel) and waits until it answers `ping`.
    pub fn start(port_min: u16, port_max: u16) -> RtpEngine {
        for attempt in 0..5 {
            let dir = tempfile::Builder::new()
                .prefix("warpd-rtpe-")
                .tempdir()
                .expect("temp dir");
            let port = free_udp_port();
            let ng: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            let log = std::fs::File::create(dir.path().join(format!("rtpengine-{attempt}.log")))
                .expect("log file");
            let child = Command::new(rtpengine_bin())
                .args([
                    "--config-file=none",
                    "--table=-1",
                    "--interface=127.0.0.1",
                    &format!("--listen-ng={ng}"),
                    &format!("--port-min={port_min}"),
                    &format!("--port-max={port_max}"),
                    &format!("--recording-dir={}", dir.path().join("rec").display()),
                    "--recording-method=pcap",
                    "--delete-delay=0",
                    "--foreground",
                    "--log-stderr",
                    &format!("--pidfile={}", dir.path().join("pid").display()),
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start rtpengine (apt-get install rtpengine-daemon)");
            let mut r = RtpEngine {
                child: Some(child),
                ng,
                dir,
            };
            if r.wait_ready(Duration::from_secs(10)) {
                return r;
            }
            // port taken between probe and bind, or slow start: try another port
        }
        panic!("rtpengine did not start");
    }

    fn wait_ready(&mut self, limit: Duration) -> bool {
        super::wait::poll_blocking(limit, || {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(_)) = c.try_wait() {
                    return Some(false); // exited: give up on this port
                }
            }
            let pong = ng_raw(
                self.ng,
                b"ready d7:command4:pinge",
                Duration::from_millis(200),
            )
            .is_some_and(|r| r.ends_with(b"d6:result4:ponge"));
            pong.then_some(true)
        })
        .unwrap_or(false)
    }

    /// Kills the daemon (SIGKILL), as a crashed node.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn recording_dir(&self) -> PathBuf {
        self.dir.path().join("rec")
    }

    /// Files under the recording directory (pcaps and metadata), recursively.
    pub fn recordings(&self) -> Vec<PathBuf> {
        fn walk(p: &std::path::Path, out: &mut Vec<PathBuf>) {
            if let Ok(rd) = std::fs::read_dir(p) {
                for e in rd.flatten() {
                    let path = e.path();
                    if path.is_dir() {
                        walk(&path, out);
                    } else {
                        out.push(path);
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.recording_dir(), &mut out);
        out
    }

    /// A field of the daemon's `statistics` (e.g. `totaloffercount`), found anywhere in the answer.
    pub fn stat(&self, key: &str) -> Option<i64> {
        let cookie = format!("st{}", rand_suffix());
        let req = format!("{cookie} d7:command10:statisticse");
        let r = ng_raw(self.ng, req.as_bytes(), Duration::from_secs(2))?;
        let (_, d) = warpd::media::codec::parse_datagram(&r).ok()?;
        fn find(d: &warpd::media::codec::Dict, key: &str) -> Option<i64> {
            for (k, v) in &d.0 {
                if k == key.as_bytes() {
                    if let Some(i) = v.as_int() {
                        return Some(i);
                    }
                }
                if let Some(sub) = v.as_dict() {
                    if let Some(i) = find(sub, key) {
                        return Some(i);
                    }
                }
            }
            None
        }
        find(&d, key)
    }
}

impl Drop for RtpEngine {
    fn drop(&mut self) {
        self.kill();
    }
}

fn rtpengine_bin() -> PathBuf {
    for p in ["/usr/bin/rtpengine", "/usr/sbin/rtpengine"] {
        if std::path::Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    PathBuf::from("rtpengine")
}

pub fn rand_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    );
    format!("{:x}", h.finish())
}

/// Sends one raw datagram and waits for one answer.
pub fn ng_raw(to: SocketAddr, data: &[u8], timeout: Duration) -> Option<Vec<u8>> {
    let s = UdpSocket::bind("127.0.0.1:0").ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.send_to(data, to).ok()?;
    let mut buf = vec![0u8; 65535];
    let (n, _) = s.recv_from(&mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}

/// A bencoded string.
pub fn bs(s: &str) -> String {
    format!("{}:{s}", s.len())
}

/// An SDP offer/answer body for an audio stream on `port`.
pub fn audio_sdp(port: u16) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 8 9\r\na=rtpmap:9 G722/8000\r\n"
    )
}

/// A T.38 offer on `port`.
pub fn t38_sdp(port: u16) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 10.9.8.7\r\ns=-\r\nc=IN IP4 10.9.8.7\r\nt=0 0\r\nm=image {port} udptl t38\r\na=T38FaxVersion:0\r\na=T38MaxBitRate:14400\r\na=T38FaxRateManagement:transferredTCF\r\na=T38FaxMaxDatagram:400\r\na=T38FaxUdpEC:t38UDPRedundancy\r\n"
    )
}

/// A Kamailio-style offer datagram: keys unsorted (sdp first), flags and replace lists.
pub fn kamailio_offer(
    cookie: &str,
    call_id: &str,
    from_tag: &str,
    sdp: &str,
    extra_flags: &[&str],
) -> Vec<u8> {
    let mut flags = String::from("l13:trust-address");
    for f in extra_flags {
        flags.push_str(&bs(f));
    }
    flags.push('e');
    format!(
        "{cookie} d3:sdp{}7:call-id{}8:from-tag{}7:command5:offer5:flags{flags}7:replacel6:origine13:received-froml3:IP49:127.0.0.1ee",
        bs(sdp),
        bs(call_id),
        bs(from_tag)
    )
    .into_bytes()
}
