//! The floor of a synchronous RESP dip from Kamailio's `ndb_redis`, for the peer benchmark
//! (`scripts/bench-kamailio.sh`, mode `resp-static`): a unix-socket server that answers every
//! `LCR` with the same saved bytes (warpd's own answer for the benchmark call) and does nothing
//! else: one blocking thread per connection (ndb_redis keeps one connection per Kamailio
//! process), no runtime, no dip. Kamailio's CPU per call against it, next to `resp-unix`
//! (warpd) and `lcr`, splits the RESP dip's cost into what any synchronous round trip costs
//! Kamailio on this machine and what warpd's server adds. A calibration tool, not a warpd
//! listener.
//!
//!     cargo run --release --example static_resp -- /tmp/static.sock answer.resp

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};

use warpd_resp::{decode_command, Limits};

fn serve(mut conn: UnixStream, answer: &[u8]) -> std::io::Result<()> {
    let limits = Limits::default();
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut out = Vec::new();
        loop {
            match decode_command(&buf, &limits) {
                Ok(Some((cmd, used))) => {
                    buf.drain(..used);
                    let name = cmd.first().map(|c| c.to_ascii_uppercase());
                    match name.as_deref() {
                        Some(b"LCR") => out.extend_from_slice(answer),
                        Some(b"PING") => out.extend_from_slice(b"+PONG\r\n"),
                        Some(_) => out.extend_from_slice(b"+OK\r\n"),
                        None => {}
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = conn.write_all(format!("-ERR {e}\r\n").as_bytes());
                    return Ok(());
                }
            }
        }
        conn.write_all(&out)?;
    }
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), Some(file)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: static_resp <unix socket path> <answer file (raw RESP)>");
        std::process::exit(2);
    };
    let answer: &'static [u8] = Vec::leak(std::fs::read(file)?);
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    for conn in listener.incoming() {
        let conn = conn?;
        std::thread::spawn(move || serve(conn, answer));
    }
    Ok(())
}
