//! Open-loop HTTP load for the benchmarks: raw HTTP/1.1 over keep-alive connections (a load
//! generator must cost far less CPU per request than the server it measures; reqwest cost more
//! per request than warpd's dip did), requests sent on a fixed schedule, latency counted from each
//! request's scheduled send time so a stalled server cannot hide its queueing.
//!
//! Included by several benches with `#[path = "common/raw_http.rs"] mod raw_http;`.

#![allow(dead_code)]

use std::time::Duration;

/// One keep-alive HTTP/1.1 connection speaking raw bytes.
pub struct RawConn {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

impl RawConn {
    pub async fn connect(addr: &str) -> std::io::Result<RawConn> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(RawConn {
            stream,
            buf: Vec::with_capacity(16 * 1024),
        })
    }

    /// Sends one GET and reads the whole response; `ok` judges status line + body.
    pub async fn get(&mut self, path: &str, ok: fn(&[u8]) -> bool) -> std::io::Result<bool> {
        use tokio::io::AsyncWriteExt;
        let req = format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n");
        self.stream.write_all(req.as_bytes()).await?;
        loop {
            if let Some(head) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let headers = String::from_utf8_lossy(&self.buf[..head]).to_ascii_lowercase();
                let len: usize = headers
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                let need = head + 4 + len;
                while self.buf.len() < need {
                    self.fill().await?;
                }
                let good = self.buf.starts_with(b"HTTP/1.1 200") && ok(&self.buf[head + 4..need]);
                self.buf.drain(..need);
                return Ok(good);
            }
            self.fill().await?;
        }
    }

    async fn fill(&mut self) -> std::io::Result<()> {
        use tokio::io::AsyncReadExt;
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

/// How latency is timed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timing {
    /// Yield-spin to each scheduled send time and count from it: exact, but the spinning costs a
    /// core, so only for a generator on its own core (`http_load --drive`).
    FromSchedule,
    /// Sleep to the send time (tokio's 1 ms timer) and count from the moment the request is sent:
    /// for a generator sharing the server's runtime, where spinning would steal its CPU.
    FromSend,
}

/// Any 200 answer counts.
pub fn any_body(_: &[u8]) -> bool {
    true
}

/// Sends `rate` GETs per second for `secs` seconds over `conns` connections to `addr`
/// (`host:port`); request k asks for `path(k)`. Returns the sorted latencies (µs, see
/// [`Timing`]) and the number of failed requests.
pub async fn open_loop(
    addr: &str,
    rate: u64,
    secs: u64,
    conns: usize,
    path: impl Fn(usize) -> String,
    ok: fn(&[u8]) -> bool,
    timing: Timing,
) -> (Vec<u64>, usize) {
    let per_conn = rate as f64 / conns as f64;
    let interval = Duration::from_secs_f64(1.0 / per_conn);
    let total = (rate * secs) as usize / conns;
    let mut tasks = Vec::new();
    for c in 0..conns {
        let addr = addr.to_string();
        let paths: Vec<String> = (0..total).map(|i| path(c * total + i)).collect();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(total);
            let mut errors = 0usize;
            let Ok(mut conn) = RawConn::connect(&addr).await else {
                return (lat, total);
            };
            // spread the connections' schedules over one interval
            let start = tokio::time::Instant::now()
                + Duration::from_millis(2)
                + interval.mul_f64(c as f64 / conns as f64);
            for (i, path) in paths.iter().enumerate() {
                let scheduled = start + interval * i as u32;
                // tokio's timer wheel has 1 ms granularity: sleep to just before the send time,
                // then yield until it (else up to 1 ms of timer lag counts as server latency)
                let from = match timing {
                    Timing::FromSchedule => {
                        tokio::time::sleep_until(scheduled - Duration::from_millis(2)).await;
                        while tokio::time::Instant::now() < scheduled {
                            tokio::task::yield_now().await;
                        }
                        scheduled
                    }
                    Timing::FromSend => {
                        tokio::time::sleep_until(scheduled).await;
                        tokio::time::Instant::now()
                    }
                };
                match conn.get(path, ok).await {
                    Ok(true) => {}
                    Ok(false) => errors += 1,
                    Err(_) => {
                        errors += 1;
                        match RawConn::connect(&addr).await {
                            Ok(c2) => conn = c2,
                            Err(_) => return (lat, errors + total - i - 1),
                        }
                    }
                }
                lat.push(from.elapsed().as_micros() as u64);
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        if let Ok((l, e)) = t.await {
            all.extend(l);
            errors += e;
        }
    }
    all.sort_unstable();
    (all, errors)
}

/// Prints one load run: dips, rate, errors and latency percentiles (µs; `lat` sorted).
#[allow(dead_code)] // not every bench that includes this file prints with it
pub fn report(name: &str, lat: &[u64], errors: usize, secs: f64) {
    let p = |q: f64| {
        lat.get(((lat.len() as f64 * q) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    println!(
        "{name}: {} dips in {secs:.1}s ({:.0}/s), errors {errors}; latency µs p50 {} p90 {} p99 {} p99.9 {} max {}",
        lat.len(),
        lat.len() as f64 / secs,
        p(0.5),
        p(0.9),
        p(0.99),
        p(0.999),
        lat.last().copied().unwrap_or(0)
    );
}
