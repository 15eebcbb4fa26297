//! Deck import at the size real decks have, against a throwaway PostgreSQL on this machine.
//!
//! 1. client-side work alone: read + parse + validate + COPY-encode a 1,000,000-row CSV (no DB);
//! 2. `deck::store::import` of that file into an empty route (parse + validate + COPY + activate,
//!    one transaction, committed);
//! 3. the same for a second version replacing the first (adds the diff against the previous
//!    version and rewriting the old rows' windows);
//! 4. dip latency over HTTP (warpd's real `server::run`) at 2,000 dips/s, open loop, while a third
//!    1M-row version is imported and the snapshot is rebuilt by the NOTIFY reload.
//!
//! Run: cargo bench --bench deck_import      (WARPD_BENCH_ROWS=… to shrink)

#[path = "../tests/support/mod.rs"]
mod support;

#[path = "common/raw_http.rs"]
mod raw_http;

use std::io::Write;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use warpd::deck::parse::{detect_layout, CsvSource, Mapping, RowSource, Rules, Validator};
use warpd::deck::{self, ImportOptions};

fn prefix(i: usize) -> String {
    // NANP 1+NPA+NXX for the first 640k, then 1+NPA+NXX+X (like routing::synthetic)
    if i < 640_000 {
        format!("1{}{}", 200 + i / 800, 200 + i % 800)
    } else {
        let j = i - 640_000;
        format!(
            "1{}{}{}",
            200 + (j / 10) / 800,
            200 + (j / 10) % 800,
            j % 10
        )
    }
}

fn write_deck(path: &std::path::Path, rows: usize, bump: u32) {
    let f = std::fs::File::create(path).unwrap_or_else(|e| panic!("{e}"));
    let mut w = std::io::BufWriter::new(f);
    let _ = writeln!(w, "Dial Code,Destination,Rate,Initial,Increment");
    for i in 0..rows {
        let rate = 10_000 + (i as u32 * 7919) % 90_000 + bump;
        let _ = writeln!(w, "{},\"US, block {i}\",0.{rate:07},6,6", prefix(i));
    }
    let _ = w.flush();
}

fn percentile(lat: &[u64], q: f64) -> u64 {
    lat.get(((lat.len() as f64 * q) as usize).min(lat.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0)
}

/// Open-loop dips at `rate`/s for `secs` over `conns` keep-alive connections (raw HTTP, see
/// `raw_http`); latency from the scheduled send time (µs), sorted, and the error count (a dip
/// that does not route counts as an error).
async fn dips(addr: String, rows: usize, rate: u64, secs: u64, conns: usize) -> (Vec<u64>, usize) {
    fn routed(body: &[u8]) -> bool {
        body.windows(7).any(|w| w == b"\"route\"")
    }
    raw_http::open_loop(
        &addr,
        rate,
        secs,
        conns,
        move |k| {
            let p = prefix(k * 7 % rows);
            format!(
                "/v1/route?ban=1001&ani=%2B12125550100&dnis=%2B{p}{}",
                &"0000000"[..11 - p.len()]
            )
        },
        routed,
        // the generator shares warpd's runtime here: no spinning
        raw_http::Timing::FromSend,
    )
    .await
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rows: usize = std::env::var("WARPD_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let files: Vec<_> = (0..3)
        .map(|k| {
            let p = dir.path().join(format!("deck{k}.csv"));
            write_deck(&p, rows, k * 1000);
            p
        })
        .collect();
    let size = std::fs::metadata(&files[0]).map(|m| m.len()).unwrap_or(0);
    println!("deck: {rows} rows, {:.1} MiB CSV", size as f64 / 1048576.0);

    // 1. client side only
    let t = Instant::now();
    let f = std::fs::File::open(&files[0]).unwrap_or_else(|e| panic!("{e}"));
    let mut src =
        CsvSource::new(std::io::BufReader::new(f), "deck0.csv").unwrap_or_else(|e| panic!("{e}"));
    let layout = detect_layout("deck0.csv", src.headers(), &Mapping::default(), false)
        .unwrap_or_else(|e| panic!("{e:?}"));
    let mut v = Validator::new("deck0.csv", layout, Rules::default());
    let mut buf = Vec::with_capacity(1 << 20);
    let mut fields = vec![];
    let mut n = 0u64;
    while let Ok(Some(line)) = src.next_row(&mut fields) {
        if let Ok(Some(r)) = v.check(line, &fields) {
            r.write_copy(1, &mut buf);
            n += 1;
            if buf.len() > 1 << 20 {
                buf.clear();
            }
        }
    }
    println!(
        "1. parse + validate + COPY encode (client only): {n} rows in {:.2} s",
        t.elapsed().as_secs_f64()
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    rt.block_on(async move {
        let pg = support::TestPg::start();
        let mut c = warpd::db::connect(&pg.url()).await.unwrap_or_else(|e| panic!("{e}"));
        warpd::db::migrate(&mut c).await.unwrap_or_else(|e| panic!("{e}"));
        c.batch_execute(
            "INSERT INTO vendors (name, billing_model) VALUES ('Bench', 'DNIS');
             INSERT INTO gateways (vendor_id, name, host) SELECT id, 'gw', '192.0.2.1' FROM vendors;
             INSERT INTO routes (name, vendor_id) SELECT 'bench', id FROM vendors;
             INSERT INTO partitions (name) VALUES ('all');
             INSERT INTO partition_routes SELECT p.id, r.id FROM partitions p, routes r;
             INSERT INTO customers (ban, margin_percent, allowed_classes) VALUES ('1001', 15, '{domestic,tollfree,canada,caribbean}');
             INSERT INTO customer_partitions (customer_id, partition_id) SELECT c.id, p.id FROM customers c, partitions p;",
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));

        let import = |k: usize| {
            let path = files[k].clone();
            let url = pg.url();
            async move {
                let mut c = warpd::db::connect(&url).await.unwrap_or_else(|e| panic!("{e}"));
                let f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{e}"));
                let o = ImportOptions::new("bench", &format!("deck{k}.csv"), "bench");
                let t = Instant::now();
                let r = deck::store::import(&mut c, Box::new(f), &o)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                (t.elapsed().as_secs_f64(), r)
            }
        };
        let (secs, r) = import(0).await;
        println!(
            "2. import into an empty route: {} rows in {secs:.2} s (parse+validate+COPY {:.2} s, activate {:.2} s)",
            r.rows,
            r.parse_copy_ms as f64 / 1000.0,
            r.activate_ms as f64 / 1000.0
        );
        let (secs, r) = import(1).await;
        println!(
            "3. import replacing a {rows}-row version: {} rows in {secs:.2} s (parse+validate+COPY {:.2} s, diff {:.2} s, activate {:.2} s; {} up)",
            r.rows,
            r.parse_copy_ms as f64 / 1000.0,
            r.diff_ms as f64 / 1000.0,
            r.activate_ms as f64 / 1000.0,
            r.diff.as_ref().map(|d| d.up).unwrap_or(0)
        );

        // 4. dips during an import
        let example = include_str!("../warpd.example.toml");
        let env = vec![
            ("WARPD_DATABASE__URL".to_string(), pg.url()),
            ("WARPD_RELOAD__DEBOUNCE_MS".to_string(), "200".to_string()),
            ("WARPD_ROUTING__DIP_CACHE_TTL_MS".to_string(), "0".to_string()),
            ("WARPD_LOG__LEVEL".to_string(), "error".to_string()),
            // the benchmark dips by BAN (the default dip-as rule accepts src_ip only)
            ("WARPD_SERVER__KAMAILIO_DIP_AS".to_string(), "any".to_string()),
        ];
        let config = warpd::config::Config::from_str_with_env(example, env).unwrap_or_else(|e| panic!("{e}"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}")).to_string();
        let base = format!("http://{addr}");
        let stop = CancellationToken::new();
        let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
        let listeners = warpd::api::Listeners { kamailio: listener, admin, kamailio_resp: Vec::new() };
        let server = tokio::spawn(warpd::server::run(config, listeners, stop.clone()));
        let http = reqwest::Client::new();
        let t = Instant::now();
        while http.get(format!("{base}/readyz")).send().await.map(|r| r.status().as_u16()).unwrap_or(0) != 200 {
            if t.elapsed() > Duration::from_secs(60) {
                panic!("warpd never became ready");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (lat, err) = dips(addr.clone(), rows, 2_000, 5, 16).await;
        println!(
            "4a. dips, idle: {} at 2000/s, errors {err}; µs p50 {} p99 {} p99.9 {} max {}",
            lat.len(), percentile(&lat, 0.5), percentile(&lat, 0.99), percentile(&lat, 0.999), lat.last().copied().unwrap_or(0)
        );
        let secs_load = 50;
        let load = tokio::spawn(dips(addr.clone(), rows, 2_000, secs_load, 16));
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (secs, _) = import(2).await;
        println!("   import during dips: {secs:.2} s");
        let (lat, err) = load.await.unwrap_or_default();
        println!(
            "4b. dips during the import and the reload that follows ({secs_load} s window): {} at 2000/s, errors {err}; µs p50 {} p99 {} p99.9 {} max {}",
            lat.len(), percentile(&lat, 0.5), percentile(&lat, 0.99), percentile(&lat, 0.999), lat.last().copied().unwrap_or(0)
        );
        stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(15), server).await;
    });
}
