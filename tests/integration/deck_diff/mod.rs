//! The deck diff (issue 22: the console's first diff of two 100k-row versions took 0.9–1.5 s):
//! its counts and rows equal those of the statement it replaced (kept below as the reference),
//! on two versions with every kind of change (added, removed, up, down, mixed, a zone rate
//! appearing or vanishing, zero old rates, OCN/LATA keys, unchanged rows), for several
//! thresholds; and its keyset pages, in each order, add up to every changed row exactly once in
//! that order. Bad cursors are refused naming `after`.
//!
//! Issue 22's second change replaced that statement (kept in [`sql_before`]) by a streaming
//! join in the daemon: its counts, pages and cursors equal the statement's on random versions
//! ([`streaming_diff_equals_the_statement_on_random_versions`]), and
//! [`first_diff_of_two_big_versions_both_ways`] times both (docs/BENCHMARKS.md "Console pages").

mod sql_before;

use crate::support;

use tokio_postgres::Client;
use warpd::deck::{self, DiffPage, DiffReport, DiffSort};

/// The diff statement before issue 22's change (one FULL JOIN on a computed key).
const REFERENCE: &str = "\
    WITH a AS (SELECT coalesce(prefix, ocn || '/' || lata) k, rate_inter i, rate_intra j, rate_local l \
               FROM deck_rates WHERE version_id = $1), \
         b AS (SELECT coalesce(prefix, ocn || '/' || lata) k, rate_inter i, rate_intra j, rate_local l \
               FROM deck_rates WHERE version_id = $2), \
         j AS (SELECT coalesce(a.k, b.k) k, a.i ai, b.i bi, a.k IS NULL added, b.k IS NULL removed, \
                 coalesce(b.i > a.i, false) OR coalesce(b.j > a.j, false) OR coalesce(b.l > a.l, false) up, \
                 coalesce(b.i < a.i, false) OR coalesce(b.j < a.j, false) OR coalesce(b.l < a.l, false) down, \
                 (a.i IS NULL) <> (b.i IS NULL) OR (a.j IS NULL) <> (b.j IS NULL) OR (a.l IS NULL) <> (b.l IS NULL) nullchg, \
                 greatest(abs(b.i - a.i) / nullif(a.i, 0), abs(b.j - a.j) / nullif(a.j, 0), \
                          abs(b.l - a.l) / nullif(a.l, 0)) * 100 AS pct \
               FROM a FULL JOIN b ON a.k = b.k), \
         c AS (SELECT k, ai, bi, pct, CASE WHEN added THEN 'added' WHEN removed THEN 'removed' \
                 WHEN up AND NOT down AND NOT nullchg THEN 'up' \
                 WHEN down AND NOT up AND NOT nullchg THEN 'down' \
                 WHEN up OR down OR nullchg THEN 'changed' ELSE 'unchanged' END AS change FROM j) \
    SELECT change, count(*), count(*) FILTER (WHERE pct > $3::float8), NULL::text, NULL::text, NULL::text, NULL::float8 \
      FROM c GROUP BY change \
    UNION ALL \
    (SELECT 'row', 0, 0, k, change, trim_scale(ai)::text || '|' || coalesce(trim_scale(bi)::text, ''), pct::float8 \
       FROM c WHERE change <> 'unchanged' ORDER BY k LIMIT $4)";

/// (counts by kind, over threshold, rows as "key change old|new pct") of the reference.
async fn reference(c: &Client, warn: f64) -> (Vec<(String, i64)>, i64, Vec<String>) {
    let mut counts = vec![];
    let mut over = 0;
    let mut rows = vec![];
    for r in c
        .query(REFERENCE, &[&1i64, &2i64, &warn, &100_000i64])
        .await
        .unwrap()
    {
        let kind: String = r.get(0);
        if kind == "row" {
            let pct: Option<f64> = r.get(6);
            rows.push(format!(
                "{} {} {} {pct:?}",
                r.get::<_, String>(3),
                r.get::<_, String>(4),
                // NULL (no old interstate rate) reads as no rates at all, as in `diff_page`
                r.get::<_, Option<String>>(5).unwrap_or_else(|| "|".into())
            ));
        } else {
            over += r.get::<_, i64>(2);
            counts.push((kind, r.get(1)));
        }
    }
    counts.sort();
    (counts, over, rows)
}

fn counts(d: &DiffReport) -> Vec<(String, i64)> {
    let mut v: Vec<(String, i64)> = [
        ("added", d.added),
        ("removed", d.removed),
        ("up", d.up),
        ("down", d.down),
        ("changed", d.changed),
        ("unchanged", d.unchanged),
    ]
    .into_iter()
    .filter(|(_, n)| *n > 0)
    .map(|(k, n)| (k.to_string(), n))
    .collect();
    v.sort();
    v
}

fn row_line(r: &deck::DiffRow) -> String {
    format!(
        "{} {} {}|{} {:?}",
        r.key,
        r.change,
        r.old_rate.as_deref().unwrap_or(""),
        r.new_rate.as_deref().unwrap_or(""),
        r.pct
    )
}

fn rate(h: u64, shift: u32) -> Option<String> {
    match (h >> shift) % 9 {
        0 => None,
        1 => Some("0".into()),
        n => Some(format!("0.0{}{}", n, (h >> (shift + 4)) % 10)),
    }
}

/// Versions 1 and 2: 600 keys, each in one or both, with rates drawn so that every kind of
/// change occurs (rates repeat often, so many rows are unchanged).
async fn two_versions(c: &Client) {
    let mut rows = String::new();
    for n in 0..600u64 {
        let h = n.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17) ^ n;
        let key = if n % 10 == 9 {
            format!("\\N\tOCN{}\t{}", n % 7, n)
        } else {
            format!("44{n:04}\t\\N\t\\N")
        };
        let a = [rate(h, 0), rate(h, 8), rate(h, 16)];
        let b = match h % 5 {
            0 => a.clone(),
            1 => [rate(h, 24), a[1].clone(), a[2].clone()],
            _ => [rate(h, 24), rate(h, 32), rate(h, 40)],
        };
        let show = |r: &Option<String>| r.clone().unwrap_or_else(|| "\\N".into());
        if h % 11 != 0 {
            rows.push_str(&format!(
                "1\t{key}\t{}\t{}\t{}\t6\t6\t-infinity\tinfinity\n",
                show(&a[0]),
                show(&a[1]),
                show(&a[2])
            ));
        }
        if h % 13 != 0 {
            rows.push_str(&format!(
                "2\t{key}\t{}\t{}\t{}\t6\t6\t-infinity\tinfinity\n",
                show(&b[0]),
                show(&b[1]),
                show(&b[2])
            ));
        }
    }
    copy_rows(c, rows).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_equals_the_reference_and_pages_cover_every_changed_row_once() {
    let pg = support::TestPg::start();
    let c = support::demo::deck_network_db(&pg).await;
    two_versions(&c).await;
    for warn in [25.0, 0.0, 100.0, 12.5] {
        let (want_counts, want_over, want_rows) = reference(&c, warn).await;
        let d = deck::store::diff_versions(&c, 1, 2, warn, 100_000)
            .await
            .unwrap();
        assert_eq!(counts(&d), want_counts, "counts at {warn}%");
        assert_eq!(d.over_threshold, want_over, "over {warn}%");
        let got: Vec<String> = d.rows.iter().map(row_line).collect();
        assert_eq!(got, want_rows, "rows at {warn}%");
        assert!(d.next.is_none());
    }
    let (kinds, _, all) = reference(&c, 25.0).await;
    for k in ["added", "removed", "up", "down", "changed", "unchanged"] {
        assert!(kinds.iter().any(|(n, _)| n == k), "no {k} rows: {kinds:?}");
    }
    assert!(all.iter().any(|r| r.contains("OCN")), "OCN/LATA rows");

    // pages of 37 in each order: every changed row once, in that order
    for sort in [DiffSort::Key, DiffSort::Change, DiffSort::Pct] {
        let mut seen = vec![];
        let mut after = None;
        let mut pages = 0;
        loop {
            let page = DiffPage {
                sort,
                after: after.clone(),
                limit: 37,
            };
            let d = deck::store::diff_page(&c, 1, 2, 25.0, &page).await.unwrap();
            assert!(d.rows.len() <= 37);
            seen.extend(d.rows.iter().cloned());
            pages += 1;
            match d.next {
                Some(n) => after = Some(n),
                None => break,
            }
            assert!(pages < 100, "{sort:?}: pages never end");
        }
        let lines: Vec<String> = seen.iter().map(row_line).collect();
        let mut want = all.clone();
        let mut sorted_seen = lines.clone();
        sorted_seen.sort();
        want.sort();
        assert_eq!(sorted_seen, want, "{sort:?}: every changed row once");
        let ordered = seen.windows(2).all(|w| match sort {
            DiffSort::Key => w[0].key < w[1].key,
            DiffSort::Change => (&w[0].change, &w[0].key) < (&w[1].change, &w[1].key),
            DiffSort::Pct => match (w[0].pct, w[1].pct) {
                (Some(a), Some(b)) => a > b || (a == b && w[0].key < w[1].key),
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => w[0].key < w[1].key,
            },
        });
        assert!(ordered, "{sort:?}: order {lines:#?}");
    }

    // a cursor that is not one of the order's is refused, naming `after`
    for (sort, after) in [
        (DiffSort::Pct, "4400"),
        (DiffSort::Pct, "abc|4400"),
        (DiffSort::Pct, "inf|4400"),
        (DiffSort::Change, "4400"),
    ] {
        let page = DiffPage {
            sort,
            after: Some(after.into()),
            limit: 10,
        };
        let e = deck::store::diff_page(&c, 1, 2, 25.0, &page)
            .await
            .unwrap_err();
        assert!(e.to_string().starts_with("after:"), "{sort:?} {after}: {e}");
    }
}

/// A diff holds the older version in memory: one recorded above `MAX_HELD_ROWS` rows is refused
/// as the caller's request (a 4xx naming the limit), before anything is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_too_big_to_hold_is_refused_with_a_clear_error() {
    let pg = support::TestPg::start();
    let c = support::demo::deck_network_db(&pg).await;
    two_versions(&c).await;
    let page = DiffPage {
        sort: DiffSort::Key,
        after: None,
        limit: 10,
    };
    // the diff works at the versions' real size
    deck::store::diff_page(&c, 1, 2, 25.0, &page).await.unwrap();
    let too_many = deck::store::MAX_HELD_ROWS as i64 + 1;
    // the versions' recorded row counts (this test's rows were copied in without versions)
    let recorded = |id: i64, rows: i64| {
        let c = &c;
        async move {
            c.execute(
                "INSERT INTO deck_versions (id, route_id, effective_from, state, created_by, row_count) \
                 SELECT $1, min(id), now(), 'staged', 'test', $2 FROM routes \
                 ON CONFLICT (id) DO UPDATE SET row_count = EXCLUDED.row_count",
                &[&id, &rows],
            )
            .await
            .unwrap();
        }
    };
    recorded(1, too_many).await;
    recorded(2, 5).await;
    let e = deck::store::diff_page(&c, 1, 2, 25.0, &page)
        .await
        .unwrap_err();
    assert!(matches!(e, deck::DeckError::BadRequest(_)), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("version 1 has more than 10000000 rows"),
        "{msg}"
    );
    // the newer version is streamed, not held: its size does not matter
    recorded(1, 5).await;
    recorded(2, too_many).await;
    deck::store::diff_page(&c, 1, 2, 25.0, &page).await.unwrap();
}

/// splitmix64: the random versions' generator (seeded: a failure names its seed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A random zone rate: NULL, 0, the extremes of numeric(12,7) rates, or an ordinary one.
fn random_rate(g: &mut Rng) -> String {
    match g.below(12) {
        0 => "\\N".into(),
        1 => "0".into(),
        2 => "0.0000001".into(),
        3 => "429.4967295".into(),
        4 => format!("0.0{}", g.below(100)),
        _ => format!("0.{:07}", g.below(10_000_000)),
    }
}

/// Versions `a` and `b` of up to `n` keys (prefixes and OCN/LATA), each in one or both, with
/// rates that are equal, partly changed or random: as COPY text rows.
fn random_versions(g: &mut Rng, a: i64, b: i64, n: u64) -> String {
    let mut rows = String::new();
    for i in 0..n {
        let key = match g.below(8) {
            0 => format!("\\N\tO{}{}\t{}", g.below(5), i % 3, i),
            _ => format!("{}{i}\t\\N\t\\N", 1 + g.below(9)),
        };
        let ra: Vec<String> = (0..3).map(|_| random_rate(g)).collect();
        let rb: Vec<String> = match g.below(4) {
            0 => ra.clone(),
            1 => {
                let mut r = ra.clone();
                let z = g.below(3) as usize;
                r[z] = random_rate(g);
                r
            }
            _ => (0..3).map(|_| random_rate(g)).collect(),
        };
        let (in_a, in_b) = match g.below(6) {
            0 => (true, false),
            1 => (false, true),
            _ => (true, true),
        };
        for (v, r, present) in [(a, &ra, in_a), (b, &rb, in_b)] {
            if present {
                rows.push_str(&format!(
                    "{v}\t{key}\t{}\t{}\t{}\t6\t6\t-infinity\tinfinity\n",
                    r[0], r[1], r[2]
                ));
            }
        }
    }
    rows
}

async fn copy_rows(c: &Client, rows: String) {
    use futures_util::SinkExt;
    let sink = c
        .copy_in(
            "COPY deck_rates (version_id, prefix, ocn, lata, rate_inter, rate_intra, rate_local, \
             min_seconds, inc_seconds, effective_from, effective_until) FROM STDIN",
        )
        .await
        .unwrap();
    let mut sink = Box::pin(sink);
    sink.send(bytes::Bytes::from(rows)).await.unwrap();
    sink.as_mut().finish().await.unwrap();
}

/// Every page of the diff of `a` and `b` in `sort` order, `limit` rows a page: the streaming
/// diff's, each checked equal to the statement's page (same counts, rows, cursor).
async fn pages_equal(c: &Client, a: i64, b: i64, warn: f64, sort: DiffSort, limit: i64, seed: u64) {
    let mut after = None;
    for n in 0.. {
        let page = DiffPage {
            sort,
            after: after.clone(),
            limit,
        };
        let new = deck::store::diff_page(c, a, b, warn, &page).await.unwrap();
        let old = sql_before::sql_page(c, a, b, warn, &page).await.unwrap();
        assert_eq!(
            serde_json::to_value(&new).unwrap(),
            serde_json::to_value(&old).unwrap(),
            "seed {seed}, {sort:?}, threshold {warn}, limit {limit}, page {n} after {after:?}"
        );
        assert!(n < 500, "pages never end");
        match new.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_diff_equals_the_statement_on_random_versions() {
    let pg = support::TestPg::start();
    let c = support::demo::deck_network_db(&pg).await;
    for seed in 0..6u64 {
        let mut g = Rng(seed);
        let (a, b) = (100 + 2 * seed as i64, 101 + 2 * seed as i64);
        let n = [0, 1, 40, 300, 300, 700][seed as usize];
        copy_rows(&c, random_versions(&mut g, a, b, n)).await;
        for (i, sort) in [DiffSort::Key, DiffSort::Change, DiffSort::Pct]
            .into_iter()
            .enumerate()
        {
            let warn = [25.0, 0.0, 12.5, -1.0, 1e-9, 33.333][(seed as usize + i) % 6];
            let limit = [100_000, 0, 1, 7, 50, 100][(seed as usize * 3 + i) % 6];
            pages_equal(&c, a, b, warn, sort, limit, seed).await;
        }
        // the reversed pair too (the held version is the other one)
        pages_equal(&c, b, a, 25.0, DiffSort::Pct, 37, seed).await;
    }
}

/// Times the first diff of two versions of `WARPD_DIFF_ROWS` prefixes (default 20,000; the
/// console's case is 100,000) whose every rate changed, the statement before against the
/// streaming diff, `WARPD_DIFF_ROUNDS` interleaved rounds (default 1), and checks they agree.
/// docs/BENCHMARKS.md runs it with `--release` and 100,000 and 1,000,000 rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_diff_of_two_big_versions_both_ways() {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let rows = env("WARPD_DIFF_ROWS", 20_000);
    let rounds = env("WARPD_DIFF_ROUNDS", 1);
    let pg = support::TestPg::start();
    let c = support::demo::deck_network_db(&pg).await;
    c.batch_execute(&format!(
        "INSERT INTO deck_rates (version_id, prefix, rate_inter, rate_intra, rate_local, \
           min_seconds, inc_seconds, effective_from, effective_until) \
         SELECT v, '44' || (10000000 + g)::text, CASE v WHEN 1000 THEN 0.03 ELSE 0.025 END, \
           0.03, 0.03, 6, 6, '-infinity', 'infinity' \
         FROM generate_series(1000, 1001) v, generate_series(1, {rows}) g"
    ))
    .await
    .unwrap();
    c.batch_execute("VACUUM ANALYZE deck_rates").await.unwrap();
    let page = DiffPage {
        sort: DiffSort::Key,
        after: None,
        limit: 100,
    };
    let (mut old_ms, mut new_ms) = (vec![], vec![]);
    let mut c = c;
    for _ in 0..rounds {
        // each in a read-only transaction, as `deck::store::diff` runs it
        let tx = c.build_transaction().read_only(true).start().await.unwrap();
        let t = std::time::Instant::now();
        let old = sql_before::sql_page(&tx, 1000, 1001, 25.0, &page)
            .await
            .unwrap();
        old_ms.push(t.elapsed().as_secs_f64() * 1e3);
        tx.commit().await.unwrap();
        let tx = c.build_transaction().read_only(true).start().await.unwrap();
        let t = std::time::Instant::now();
        let new = deck::store::diff_page(&tx, 1000, 1001, 25.0, &page)
            .await
            .unwrap();
        new_ms.push(t.elapsed().as_secs_f64() * 1e3);
        tx.commit().await.unwrap();
        assert_eq!(
            serde_json::to_value(&new).unwrap(),
            serde_json::to_value(&old).unwrap()
        );
        assert_eq!((new.down, new.unchanged), (rows as i64, 0));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2], v[0], v[v.len() - 1])
    };
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    eprintln!(
        "first diff of 2 x {rows} rows, {rounds} round(s), load {}",
        load.trim()
    );
    for (name, v) in [
        ("statement before", &mut old_ms),
        ("streaming diff", &mut new_ms),
    ] {
        let (m, lo, hi) = median(v);
        eprintln!("  {name:<17} median {m:8.1} ms  min {lo:8.1}  max {hi:8.1}");
    }
    // what the held version costs at this size (one version; the other streams past it)
    let mut held =
        warpd_core::deck::diff::HeldVersion::with_capacity(rows as usize, rows as usize * 12);
    for g in 1..=rows {
        let key = format!("44{}", 10_000_000 + g);
        held.push(
            Some(key.as_bytes()),
            &[Some(300_000), Some(300_000), Some(300_000)],
        )
        .unwrap();
    }
    eprintln!(
        "  held version: {} rows, {:.1} MB",
        held.len(),
        held.bytes() as f64 / 1e6
    );
    assert_eq!(held.len() as u64, rows);
}
