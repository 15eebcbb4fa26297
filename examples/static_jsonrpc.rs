//! The floor of a dip over Kamailio's `janssonrpcc` (JSON-RPC 2.0 over TCP netstrings), for the
//! peer benchmark (`scripts/bench-kamailio.sh`, mode `jrpc-static`): a tokio server (two workers)
//! that answers every request with the same saved result — warpd's own answer for the benchmark
//! call — and does nothing else. It measures what that transport costs Kamailio, against the
//! http_async_client floor (`static_dip`) and the native `lcr` module. A calibration tool, not a
//! warpd listener.
//!
//!     cargo run --release --example static_jsonrpc -- 127.0.0.1:8091 answer.json

use serde_json::value::RawValue;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest request accepted (a dip's params are ~200 bytes).
const MAX_FRAME: usize = 64 * 1024;

/// Splits one netstring (`<len>:<bytes>,`) off the front of `buf`: `Ok(None)` = need more bytes.
fn netstring(buf: &[u8]) -> Result<Option<(&[u8], usize)>, String> {
    let Some(colon) = buf.iter().position(|b| *b == b':') else {
        return if buf.len() > 8 {
            Err("no length prefix".into())
        } else {
            Ok(None)
        };
    };
    let len: usize = std::str::from_utf8(&buf[..colon])
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|n| *n <= MAX_FRAME)
        .ok_or("bad length")?;
    let end = colon + 1 + len;
    if buf.len() <= end {
        return Ok(None);
    }
    if buf[end] != b',' {
        return Err("missing ','".into());
    }
    Ok(Some((&buf[colon + 1..end], end + 1)))
}

#[derive(serde::Deserialize)]
struct Req<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(addr), Some(file)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: static_jsonrpc <listen address> <answer file>");
    };
    let answer: Box<RawValue> = serde_json::from_slice(&std::fs::read(&file)?)?;
    let answer: &'static RawValue = Box::leak(answer);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        loop {
            let (mut stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = Vec::with_capacity(4096);
                let mut out = Vec::with_capacity(4096);
                let mut chunk = [0u8; 16384];
                loop {
                    let n = match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    buf.extend_from_slice(&chunk[..n]);
                    let mut used = 0;
                    out.clear();
                    loop {
                        match netstring(&buf[used..]) {
                            Ok(Some((frame, len))) => {
                                used += len;
                                let id = serde_json::from_slice::<Req>(frame)
                                    .ok()
                                    .and_then(|r| r.id)
                                    .map(|v| v.get())
                                    .unwrap_or("null");
                                let body = format!(
                                    r#"{{"jsonrpc":"2.0","id":{id},"result":{}}}"#,
                                    answer.get()
                                );
                                out.extend_from_slice(format!("{}:", body.len()).as_bytes());
                                out.extend_from_slice(body.as_bytes());
                                out.push(b',');
                            }
                            Ok(None) => break,
                            Err(e) => {
                                eprintln!("bad frame: {e}");
                                return;
                            }
                        }
                    }
                    buf.drain(..used);
                    if !out.is_empty() && stream.write_all(&out).await.is_err() {
                        return;
                    }
                }
            });
        }
    })
}
