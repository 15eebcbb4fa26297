//! Issue 16, "Deck files": the files that aborted warpd or blew its memory — a 1.6 KB XLSX with
//! a cell at XFD1048576, gzip bombs, a zip bomb, a long field, a header with escape sequences —
//! are refused (422, a short error naming the place, escaped), through the admin API (raw and
//! multipart, with `dry_run`) and the CLI's import path, while the process's resident memory
//! grows by less than 200 MB and dips keep being answered; a 400 MiB upload is spooled to disk,
//! not memory. The small files are the fuzz seeds in tests/fuzz/seeds/deck_file; the big ones
//! are made here.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::Value;

use super::{start, Stack};

const SEEDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fuzz/seeds/deck_file");

fn seed(name: &str) -> Vec<u8> {
    std::fs::read(format!("{SEEDS}/{name}")).unwrap()
}

/// `kB` of a line of /proc/self/status (warpd runs in this process).
fn status_kb(key: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// The highest VmRSS seen by a thread sampling every 5 ms.
struct RssPeak {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssPeak {
    fn start() -> RssPeak {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(status_kb("VmRSS:")));
        let (s, p) = (stop.clone(), peak.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(status_kb("VmRSS:"), Ordering::Relaxed);
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        });
        RssPeak {
            stop,
            peak,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.peak.load(Ordering::Relaxed)
    }
}

/// `total` bytes of `unit` gzip'ed as many copies of one member (cheap to make, any size).
fn gzip_bomb(head: &[u8], unit: u8, total: usize) -> Vec<u8> {
    const MEMBER: usize = 16 << 20;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(head).unwrap();
    let mut out = gz.finish().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![unit; MEMBER]).unwrap();
    let member = gz.finish().unwrap();
    for _ in 0..total.div_ceil(MEMBER) {
        out.extend_from_slice(&member);
    }
    out
}

/// The sparse seed with its sheet replaced by `mb` MiB of blanks (a zip bomb).
fn xlsx_bomb(mb: usize) -> Vec<u8> {
    let mut zin =
        zip::ZipArchive::new(std::io::Cursor::new(seed("sparse-xfd1048576.xlsx"))).unwrap();
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let o = zip::write::SimpleFileOptions::default()
        .compression_level(Some(9))
        .large_file(true);
    for i in 0..zin.len() {
        let mut f = zin.by_index(i).unwrap();
        let name = f.name().to_string();
        z.start_file(name.as_str(), o).unwrap();
        if name == "xl/worksheets/sheet1.xml" {
            z.write_all(b"<worksheet><sheetData>").unwrap();
            let blank = vec![b' '; 1 << 20];
            for _ in 0..mb {
                z.write_all(&blank).unwrap();
            }
            z.write_all(b"</sheetData></worksheet>").unwrap();
        } else {
            std::io::copy(&mut f, &mut z).unwrap();
        }
    }
    z.finish().unwrap().into_inner()
}

/// A multipart/form-data body with one binary file part and `dry_run=true`.
fn form(file_name: &str, bytes: &[u8]) -> Vec<u8> {
    let mut b = format!(
        "--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    b.extend_from_slice(bytes);
    b.extend_from_slice(
        b"\r\n--b0undary\r\nContent-Disposition: form-data; name=\"dry_run\"\r\n\r\ntrue\r\n--b0undary--\r\n",
    );
    b
}

/// Uploads `bytes` (raw, or as a form), expects 422 whose error contains `want`, is short and
/// holds no control character; then a dip is answered.
async fn refused(st: &Stack, name: &str, bytes: Vec<u8>, multipart: bool, want: &str) {
    let path = format!("/v1/admin/routes/alpha/decks?dry_run=true&name={name}");
    let mut req = st.http.post(st.url(&path)).bearer_auth(&st.ops);
    req = if multipart {
        req.header("content-type", "multipart/form-data; boundary=b0undary")
            .body(form(name, &bytes))
    } else {
        req.body(bytes)
    };
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let body = r.text().await.unwrap();
    assert_eq!(status, 422, "{name}: {body}");
    assert!(
        body.len() < 2048,
        "{name}: an error of {} bytes",
        body.len()
    );
    let e: Value = serde_json::from_str(&body).unwrap();
    let msg = e["error"].as_str().unwrap();
    assert!(msg.contains(want), "{name}: {msg}");
    assert!(
        !msg.chars().any(|c| c.is_control() && c != '\n'),
        "{name}: {msg:?}"
    );
    let a = st.london().await;
    assert!(
        a["routes"][0]["route_id"].is_string(),
        "{name}: dip after it: {a}"
    );
}

/// Sends a raw upload of `mb` MiB (a header, then one endless field), written on the fly over a
/// plain connection so the test holds none of it; the status and body of the answer.
async fn stream_upload(st: &Stack, mb: usize) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = st.admin_base.trim_start_matches("http://").to_string();
    let mut c = tokio::net::TcpStream::connect(addr.as_str()).await.unwrap();
    let head = b"prefix,rate\n44,";
    let len = head.len() + (mb << 20);
    let req = format!(
        "POST /v1/admin/routes/alpha/decks?dry_run=true&name=big.csv HTTP/1.1\r\nHost: {addr}\r\n\
         Authorization: Bearer {}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n",
        st.ops
    );
    c.write_all(req.as_bytes()).await.unwrap();
    c.write_all(head).await.unwrap();
    let chunk = vec![b'9'; 1 << 20];
    for _ in 0..mb {
        c.write_all(&chunk).await.unwrap();
    }
    let mut answer = String::new();
    c.read_to_string(&mut answer).await.unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_upload_goes_to_disk_not_memory() {
    let st = start().await;
    let base = status_kb("VmRSS:");
    let peak = RssPeak::start();
    // 400 MiB (under the 512 MiB upload limit): held in memory it would be 400 MB of RSS
    let (status, body) = stream_upload(&st, 400).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("line 2: cannot read: a record longer"),
        "{body}"
    );
    assert!(body.len() < 2048, "an error of {} bytes", body.len());
    let grew_mb = peak.finish().saturating_sub(base) / 1024;
    assert!(grew_mb < 200, "resident memory grew by {grew_mb} MB");
    assert!(st.london().await["routes"][0]["route_id"].is_string());
    st.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deck_bombs_are_refused_in_bounded_memory_and_dips_keep_answering() {
    let mut st = start().await;
    assert!(st.london().await["routes"][0]["route_id"].is_string());
    // the big ones, made before measuring
    let gzip_1g = gzip_bomb(b"", b'0', 1 << 30);
    let field_1g = gzip_bomb(b"prefix,rate\n44,", b'9', 1 << 30);
    let zip_300m = xlsx_bomb(300);
    let long_field = format!("prefix,rate\n44,{}\n", "x".repeat(50 << 20)).into_bytes();
    let base = status_kb("VmRSS:");
    let peak = RssPeak::start();

    let cell = "sheet \"Deck\", cell XFD1048576";
    refused(
        &st,
        "sparse.xlsx",
        seed("sparse-xfd1048576.xlsx"),
        false,
        cell,
    )
    .await;
    refused(
        &st,
        "sparse.xlsx",
        seed("sparse-xfd1048576.xlsx"),
        true,
        cell,
    )
    .await;
    let record = "a record longer than 65536 bytes";
    refused(&st, "zeros.csv.gz", seed("zeros-64m.csv.gz"), false, record).await;
    refused(&st, "bomb.csv.gz", gzip_1g, true, record).await;
    refused(
        &st,
        "field.csv.gz",
        field_1g,
        false,
        "line 2: cannot read: a record longer",
    )
    .await;
    refused(
        &st,
        "long.csv",
        long_field,
        true,
        "line 2: cannot read: a record longer",
    )
    .await;
    refused(
        &st,
        "zip.xlsx",
        zip_300m,
        false,
        "decompress to more than 268435456 bytes",
    )
    .await;
    refused(
        &st,
        "escape.csv",
        seed("escape-header.csv"),
        false,
        "\\u{1b}[31mPrefix\\u{7}",
    )
    .await;

    // the CLI's path (`warpd deck import` calls the same import with a file)
    let mut f = tempfile::tempfile().unwrap();
    f.write_all(&seed("zeros-64m.csv.gz")).unwrap();
    std::io::Seek::rewind(&mut f).unwrap();
    let mut o = warpd::deck::ImportOptions::new("alpha", "zeros.csv.gz", "test");
    o.dry_run = true;
    let e = warpd::deck::store::import(&mut st.client, Box::new(f), &o)
        .await
        .unwrap_err();
    assert!(e.to_string().contains(record), "{e}");

    let grew_mb = peak.finish().saturating_sub(base) / 1024;
    assert!(grew_mb < 200, "resident memory grew by {grew_mb} MB");
    assert!(st.london().await["routes"][0]["route_id"].is_string());
    st.stop().await;
}
