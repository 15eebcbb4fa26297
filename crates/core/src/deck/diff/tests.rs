use super::*;
use proptest::prelude::*;

/// (key, old row, new row)
type Pair = (Option<Vec<u8>>, Option<Rates>, Option<Rates>);
/// (key, change, pct) of a page row
type Line = (Option<Vec<u8>>, Change, Option<f64>);

const fn r(i: i64) -> Rate {
    Some(i)
}

#[test]
fn classify_table() {
    // (old, new, change)
    let table: &[(Option<Rates>, Option<Rates>, Change)] = &[
        (None, Some([r(1), r(1), r(1)]), Change::Added),
        (Some([r(1), r(1), r(1)]), None, Change::Removed),
        (
            Some([r(1), None, r(3)]),
            Some([r(1), None, r(3)]),
            Change::Unchanged,
        ),
        (
            Some([None, None, None]),
            Some([None, None, None]),
            Change::Unchanged,
        ),
        (
            Some([r(1), r(1), r(1)]),
            Some([r(2), r(1), r(1)]),
            Change::Up,
        ),
        (
            Some([r(1), r(1), r(1)]),
            Some([r(1), r(1), r(0)]),
            Change::Down,
        ),
        (
            Some([r(1), r(1), r(1)]),
            Some([r(2), r(0), r(1)]),
            Change::Changed,
        ),
        (
            Some([r(1), None, r(1)]),
            Some([r(1), r(1), r(1)]),
            Change::Changed,
        ),
        (
            Some([r(1), r(1), r(1)]),
            Some([r(1), r(1), None]),
            Change::Changed,
        ),
        (
            Some([r(1), None, r(1)]),
            Some([r(2), None, r(1)]),
            Change::Up,
        ),
    ];
    for (a, b, want) in table {
        assert_eq!(classify(a.as_ref(), b.as_ref()), *want, "{a:?} -> {b:?}");
    }
    let names: Vec<&str> = Change::ALL.iter().map(|c| c.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "Change's order is its names' order");
}

#[test]
fn cursors_parse_as_before_and_bad_ones_are_refused() {
    assert_eq!(
        Cursor::parse(DiffSort::Key, "44|1"),
        Ok(Cursor::Key("44|1".into()))
    );
    assert_eq!(
        Cursor::parse(DiffSort::Pct, "null|44"),
        Ok(Cursor::Pct {
            pct: None,
            key: "44".into()
        })
    );
    for (sort, bad) in [
        (DiffSort::Pct, "4400"),
        (DiffSort::Pct, "abc|4400"),
        (DiffSort::Pct, "inf|4400"),
        (DiffSort::Pct, "NaN|4400"),
        (DiffSort::Change, "4400"),
    ] {
        assert_eq!(Cursor::parse(sort, bad), Err(BadCursor), "{sort:?} {bad}");
    }
}

#[test]
fn pct_rank_orders_largest_first_and_none_last() {
    let ps = [
        Some(1e9),
        Some(100.0),
        Some(16.5),
        Some(0.0),
        Some(-0.0),
        None,
    ];
    for w in ps.windows(2) {
        assert!(pct_rank(w[0]) <= pct_rank(w[1]), "{w:?}");
    }
    assert_eq!(pct_rank(Some(0.0)), pct_rank(Some(-0.0)));
}

/// The reference: every pair computed, sorted whole, filtered by the cursor, cut at `limit`.
fn model(
    pairs: &[Pair],
    sort: DiffSort,
    cursor: Option<&Cursor>,
    limit: usize,
) -> (Vec<Line>, [i64; 6]) {
    let mut counts = [0i64; 6];
    let mut rows = vec![];
    for (k, a, b) in pairs {
        let c = classify(a.as_ref(), b.as_ref());
        counts[c as usize] += 1;
        if c == Change::Unchanged {
            continue;
        }
        let p = match (a, b) {
            (Some(a), Some(b)) => pct(a, b),
            _ => None,
        };
        if cursor.is_some_and(|cur| !cur.admits(k.as_deref(), c, p)) {
            continue;
        }
        rows.push((k.clone(), c, p));
    }
    let key_ord = |a: &Option<Vec<u8>>, b: &Option<Vec<u8>>| match (a, b) {
        (Some(a), Some(b)) => a.cmp(b),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    rows.sort_by(|x, y| match sort {
        DiffSort::Key => key_ord(&x.0, &y.0),
        DiffSort::Change => x.1.cmp(&y.1).then_with(|| key_ord(&x.0, &y.0)),
        DiffSort::Pct => match (x.2, y.2) {
            (Some(p), Some(q)) => q.total_cmp(&p),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        }
        .then_with(|| key_ord(&x.0, &y.0)),
    });
    rows.truncate(limit);
    (rows, counts)
}

fn rates() -> impl Strategy<Value = Rates> {
    let z = prop_oneof![Just(None), (0i64..4).prop_map(|v| Some(v * 100_000))];
    [z.clone(), z.clone(), z]
}

fn pairs() -> impl Strategy<Value = Vec<Pair>> {
    // distinct keys (a version's keys are), a few keyless rows
    proptest::collection::btree_map("[0-9]{1,3}", (rates(), rates(), 0u8..6), 0..60).prop_map(|m| {
        m.into_iter()
            .map(|(k, (a, b, side))| {
                let key = (side != 5).then(|| k.into_bytes());
                match side {
                    0 => (key, None, Some(b)),
                    1 => (key, Some(a), None),
                    _ if key.is_none() => (key, Some(a), None),
                    _ => (key, Some(a), Some(b)),
                }
            })
            .collect()
    })
}

fn sorts() -> impl Strategy<Value = DiffSort> {
    prop_oneof![
        Just(DiffSort::Key),
        Just(DiffSort::Change),
        Just(DiffSort::Pct)
    ]
}

proptest! {
    /// The tally's page (a bounded heap over the stream) is the model's (a full sort), in
    /// any order of the pairs, and its pages, followed by `next`, give every changed row once.
    #[test]
    fn tally_pages_equal_a_full_sort(ps in pairs(), sort in sorts(), limit in 0usize..8, seed in any::<u64>()) {
        let mut shuffled = ps.clone();
        // a deterministic shuffle: the stream's order must not matter
        let n = shuffled.len();
        for i in (1..n).rev() {
            let j = (seed.wrapping_mul(i as u64 + 1).rotate_left(13) % (i as u64 + 1)) as usize;
            shuffled.swap(i, j);
        }
        let mut cursor: Option<Cursor> = None;
        let mut all = vec![];
        for _ in 0..100 {
            let mut t = DiffTally::new(25.0, sort, cursor.clone(), limit);
            for (k, a, b) in &shuffled {
                t.pair(k.as_deref(), a.as_ref(), b.as_ref());
            }
            let out = t.finish();
            let (want, counts) = model(&ps, sort, cursor.as_ref(), limit);
            prop_assert_eq!(out.counts.by_change, counts);
            let got: Vec<Line> = out.rows.iter()
                .map(|r| ((!r.key.is_empty()).then(|| r.key.clone().into_bytes()), r.change, r.pct))
                .collect();
            prop_assert_eq!(&got, &want);
            all.extend(got);
            match out.next {
                Some(n) => cursor = Some(Cursor::parse(sort, &n).unwrap()),
                None => break,
            }
        }
        // keyless rows are only ever on the first page (as SQL's NULL keys): count the rest
        let changed = counts_changed(&ps);
        if limit > 0 && ps.iter().all(|p| p.0.is_some()) {
            prop_assert_eq!(all.len() as i64, changed);
        }
    }

    /// The held-version join gives the same pairs as the pairs themselves: same counts, same rows.
    #[test]
    fn held_join_equals_the_pairs(ps in pairs(), sort in sorts()) {
        let mut held = HeldVersion::with_capacity(ps.len(), 0);
        for (k, a, _) in &ps {
            if let Some(a) = a {
                held.push(k.as_deref(), a).unwrap();
            }
        }
        let mut t = DiffTally::new(10.0, sort, None, 1000);
        for (k, _, b) in &ps {
            if let Some(b) = b {
                t.streamed(&mut held, k.as_deref(), b);
            }
        }
        t.removed_rest(&held);
        let joined = t.finish();
        let mut direct = DiffTally::new(10.0, sort, None, 1000);
        for (k, a, b) in &ps {
            direct.pair(k.as_deref(), a.as_ref(), b.as_ref());
        }
        let direct = direct.finish();
        prop_assert_eq!(joined.counts, direct.counts);
        // keyless rows tie in every order (as NULL keys in SQL): compare them as a set
        let canon = |rows: &[PageRow]| {
            let mut v: Vec<String> = rows.iter().map(|r| format!("{r:?}")).collect();
            v.sort();
            v
        };
        prop_assert_eq!(canon(&joined.rows), canon(&direct.rows));
    }
}

fn counts_changed(ps: &[Pair]) -> i64 {
    ps.iter()
        .filter(|(_, a, b)| classify(a.as_ref(), b.as_ref()) != Change::Unchanged)
        .count() as i64
}

#[test]
fn over_threshold_counts_changed_rows_or_all_below_zero() {
    let a = [r(1_000_000), None, None];
    let b = [r(2_000_000), None, None];
    let mut t = DiffTally::new(25.0, DiffSort::Key, None, 10);
    t.pair(Some(b"1"), Some(&a), Some(&b)); // +100 %
    t.pair(Some(b"2"), Some(&a), Some(&a)); // unchanged
    t.pair(Some(b"3"), None, Some(&b)); // added: no percentage
    assert_eq!(t.counts().over_threshold, 1);
    let mut t = DiffTally::new(-1.0, DiffSort::Key, None, 10);
    t.pair(Some(b"2"), Some(&a), Some(&a));
    assert_eq!(
        t.counts().over_threshold,
        1,
        "a negative threshold counts unchanged rows"
    );
    let out = t.finish();
    assert!(out.rows.is_empty() && out.next.is_none());
}
