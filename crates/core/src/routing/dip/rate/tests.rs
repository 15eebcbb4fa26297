//! The partition's merged rate lookup ([`resolve`]) finds, for every position, the entry the
//! per-route lookup ([`RateIndex::entry`], key by key, longest first) finds.

use proptest::prelude::*;

use super::*;
use crate::routing::snapshot::SnapshotBuilder;

fn snapshot(routes: usize, rows: &[(usize, String, i64, i64)]) -> Snapshot {
    let mut b = SnapshotBuilder::new(Default::default());
    b.vendor(Vendor {
        id: 1,
        name: "v".into(),
        billing: BillingModel::Lrn,
        dialstring: "sip:${number}@${host}".into(),
        enabled: true,
    });
    for r in 0..routes {
        b.route(Route {
            id: r as Id + 1,
            name: format!("r{r}"),
            vendor_id: 1,
            priority: 0,
            weight: 1,
            capacity: None,
            enabled: true,
        });
    }
    for (r, prefix, from, until) in rows {
        b.vendor_rate(
            *r as Id + 1,
            RateKey::Prefix(prefix),
            RateRow {
                inter: Some(Rate(1)),
                intra: None,
                local: None,
                min_seconds: 0,
                inc_seconds: 1,
                effective_from: *from,
                effective_until: *until,
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }
    b.build(0).unwrap_or_else(|e| panic!("{e}"))
}

fn digits(len: std::ops::Range<usize>) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec!['1', '2']), len)
        .prop_map(|d| d.into_iter().collect())
}

proptest! {
    #[test]
    fn merged_lookup_equals_the_per_route_lookup(
        routes in 1usize..40,
        rows in prop::collection::vec(
            (0usize..40, digits(1..5), prop::sample::select(vec![i64::MIN, 0, 40, 60]),
             prop::sample::select(vec![i64::MAX, 50, 10])),
            0..200),
        partition in prop::collection::vec(0usize..40, 1..70),
        number in digits(1..8),
        now in prop::sample::select(vec![0i64, 45, 55, 100]),
    ) {
        let rows: Vec<_> = rows.into_iter().filter(|r| r.0 < routes).collect();
        let s = snapshot(routes, &rows);
        let part = PartitionC::new(
            "p".into(),
            partition.iter().filter(|&&r| r < routes).map(|&r| r as RouteIx).collect(),
        );
        let keys = s.rates.trie.matches(number.as_bytes());
        let got = resolve(&s.rates, keys.as_slice(), &part, now);
        for (pos, &route) in part.routes.iter().enumerate() {
            let want = keys
                .as_slice()
                .iter()
                .find_map(|&k| s.rates.entry(k, route, now))
                .map(|e| e as *const RateEntry);
            let got = (got[pos] != UNRESOLVED).then(|| &s.rates.entries[got[pos] as usize] as *const RateEntry);
            prop_assert_eq!(want, got, "route {} at {}", route, pos);
        }
    }
}
