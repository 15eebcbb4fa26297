//! Snapshots in parts: an incremental build shares the parts it did not rebuild and equals a
//! full build of the same rows.

use super::*;
use crate::routing::synthetic::{self, Spec};

const SPEC: Spec = Spec {
    routes: 4,
    prefixes: 2_000,
    customers: 10,
};

fn full_with(edit: impl Fn(&mut Customer)) -> Snapshot {
    let prev = synthetic::builder(&SPEC).unwrap().build(T0).unwrap();
    let mut b = SnapshotBuilder::incremental(&prev, PartSet::all());
    for v in &prev.parts.topology.vendors {
        b.vendor(v.clone());
    }
    for g in &prev.parts.topology.gateways {
        b.gateway(g.clone());
    }
    for r in &prev.parts.topology.routes {
        b.route(r.clone());
    }
    for p in &prev.parts.topology.partitions {
        b.partition(p.clone());
    }
    for c in &prev.parts.customers.customers {
        let mut c = c.clone();
        edit(&mut c);
        b.customer(c);
    }
    synthetic::add_rates(&mut b, &SPEC).unwrap();
    synthetic::add_numbering(&mut b, SPEC.prefixes).unwrap();
    b.build(T0).unwrap()
}

fn block_first_prefix(c: &mut Customer) {
    if c.ban == synthetic::ban(0) {
        c.blocked_prefixes.push(synthetic::prefix(0));
    }
}

#[test]
fn a_customer_change_rebuilds_only_the_customers_and_equals_a_full_build() {
    let prev = synthetic::builder(&SPEC).unwrap().build(T0).unwrap();
    assert!(prev.rebuilt().is_all());
    let dial = synthetic::number_in(0, 3);
    let ask = req(&synthetic::ban(0), "2125551234", &dial);
    assert!(matches!(dip(&prev, &ask, T0), DipAnswer::Route(_)));

    let only = PartSet::from_iter([Part::Customers]);
    let mut b = SnapshotBuilder::incremental(&prev, only);
    for c in &prev.parts.customers.customers {
        let mut c = c.clone();
        block_first_prefix(&mut c);
        b.customer(c);
    }
    assert_eq!(b.rebuilding(), only);
    let next = b.build(T0).unwrap();
    assert_eq!(next.rebuilt(), only);
    for p in [Part::Topology, Part::Policy, Part::Numbering, Part::Rates] {
        assert!(next.shares(&prev, p), "{p:?} not shared");
    }
    assert!(!next.shares(&prev, Part::Customers));
    assert_eq!(reject(&dip(&next, &ask, T0)).0, 403);
    // the old snapshot still answers as before (dips in flight finish on it)
    assert!(matches!(dip(&prev, &ask, T0), DipAnswer::Route(_)));

    assert_eq!(next.canonical(), full_with(block_first_prefix).canonical());
    assert_ne!(next.canonical(), prev.canonical());
}

#[test]
fn an_emptied_part_is_rebuilt_empty_and_unchanged_parts_rebuild_equal() {
    let prev = synthetic::builder(&SPEC).unwrap().build(T0).unwrap();
    // every customer deleted: the part is rebuilt from nothing
    let next = SnapshotBuilder::incremental(&prev, PartSet::from_iter([Part::Customers]))
        .build(T0)
        .unwrap();
    assert_eq!(next.stats().customers, 0);
    assert_eq!(next.stats().rate_entries, prev.stats().rate_entries);
    // nothing rebuilt: the same content, every part shared
    let same = SnapshotBuilder::incremental(&prev, PartSet::NONE)
        .build(T0)
        .unwrap();
    assert_eq!(same.canonical(), prev.canonical());
    assert!(Part::ALL.iter().all(|&p| same.shares(&prev, p)));
}

#[test]
fn new_routes_make_the_kept_rate_index_stale() {
    let prev = synthetic::builder(&SPEC).unwrap().build(T0).unwrap();
    let mut b = SnapshotBuilder::incremental(&prev, PartSet::from_iter([Part::Topology]));
    let t = prev.parts.topology.clone();
    t.vendors.iter().for_each(|v| b.vendor(v.clone()));
    // the same routes with other priorities still fit the rate index
    for r in &t.routes {
        b.route(Route {
            priority: 9 - r.priority,
            ..r.clone()
        });
    }
    t.partitions.iter().for_each(|p| b.partition(p.clone()));
    assert!(b.rates_fit_routes());
    let next = b.build(T0).unwrap();
    assert!(next.shares(&prev, Part::Rates));

    // one route fewer: the rate index's route indexes would be wrong
    let mut b = SnapshotBuilder::incremental(&prev, PartSet::from_iter([Part::Topology]));
    t.vendors.iter().for_each(|v| b.vendor(v.clone()));
    t.routes.iter().skip(1).for_each(|r| b.route(r.clone()));
    assert!(!b.rates_fit_routes());
    assert_eq!(b.build(T0).err(), Some(BuildError::StaleRates));
}

/// Route `r`'s rows after a new deck: a third of its prefixes gone, the rest re-rated, some
/// prefixes no route had before, an OCN/LATA row and a future-dated row with new terms.
fn new_deck(b: &mut SnapshotBuilder, r: usize) -> Result<(), BuildError> {
    let id = synthetic::route_id(r);
    for i in (0..SPEC.prefixes).filter(|i| i % 3 != 0) {
        let p = synthetic::prefix(i);
        b.vendor_rate(
            id,
            RateKey::Prefix(&p),
            deck_row(7_000 + i as u32, i64::MIN),
        )?;
    }
    for i in 0..50 {
        let p = format!("1999{i:04}");
        b.vendor_rate(id, RateKey::Prefix(&p), deck_row(9_000, i64::MIN))?;
    }
    let p = synthetic::prefix(1);
    b.vendor_rate(id, RateKey::Prefix(&p), deck_row(1, T0 + 3_600))?;
    let key = RateKey::OcnLata {
        ocn: "9999",
        lata: "132",
    };
    b.vendor_rate(id, key, deck_row(5, i64::MIN))
}

fn deck_row(rate: u32, from: i64) -> RateRow {
    RateRow {
        inter: Some(Rate(rate)),
        intra: Some(Rate(rate + 1)),
        local: None,
        min_seconds: 30,
        inc_seconds: 6,
        effective_from: from,
        effective_until: i64::MAX,
    }
}

/// A full build of the synthetic network with route `r`'s rates replaced by [`new_deck`].
fn full_with_deck(r: usize) -> Snapshot {
    let prev = synthetic::builder(&SPEC).unwrap().build(T0).unwrap();
    let t = prev.parts.topology.clone();
    let mut b = SnapshotBuilder::incremental(&prev, PartSet::all());
    t.vendors.iter().for_each(|v| b.vendor(v.clone()));
    t.gateways.iter().for_each(|g| b.gateway(g.clone()));
    t.routes.iter().for_each(|x| b.route(x.clone()));
    t.partitions.iter().for_each(|p| b.partition(p.clone()));
    prev.parts
        .customers
        .customers
        .iter()
        .for_each(|c| b.customer(c.clone()));
    // the synthetic rows of every other route, in the synthetic order
    for i in 0..SPEC.prefixes {
        let p = synthetic::prefix(i);
        for x in (0..SPEC.routes).filter(|&x| x != r) {
            let [inter, intra, local] = synthetic::rates(x, i);
            b.vendor_rate(
                synthetic::route_id(x),
                RateKey::Prefix(&p),
                RateRow {
                    inter: Some(Rate(inter)),
                    intra: Some(Rate(intra)),
                    local: Some(Rate(local)),
                    min_seconds: 6,
                    inc_seconds: 6,
                    effective_from: i64::MIN,
                    effective_until: i64::MAX,
                },
            )
            .unwrap();
        }
    }
    new_deck(&mut b, r).unwrap();
    synthetic::add_numbering(&mut b, SPEC.prefixes).unwrap();
    b.build(T0).unwrap()
}

#[test]
fn a_one_route_deck_patches_the_rate_part_and_equals_a_full_build() {
    let prev = synthetic::builder(&SPEC).unwrap().build(T0).unwrap();
    let r = 1;
    let mut b = SnapshotBuilder::incremental(&prev, PartSet::NONE);
    assert!(b.patch_rates(&[synthetic::route_id(r), 424_242]));
    // the unknown route id has no rows to replace
    assert_eq!(b.patched_routes(), [synthetic::route_id(r)]);
    assert_eq!(b.rebuilding(), PartSet::from_iter([Part::Rates]));
    new_deck(&mut b, r).unwrap();
    // a row of a route whose rates are carried over would be doubled: refused
    let other = synthetic::route_id(2);
    assert_eq!(
        b.vendor_rate(other, RateKey::Prefix("1"), deck_row(1, i64::MIN)),
        Err(BuildError::RouteNotPatched { route_id: other })
    );
    let next = b.build(T0).unwrap();
    for p in [
        Part::Topology,
        Part::Customers,
        Part::Policy,
        Part::Numbering,
    ] {
        assert!(next.shares(&prev, p), "{p:?}");
    }
    assert!(!next.shares(&prev, Part::Rates));
    let want = full_with_deck(r);
    let (got, want) = (next.canonical(), want.canonical());
    let only = |a: &[String], b: &[String]| -> Vec<String> {
        a.iter()
            .filter(|l| !b.contains(l))
            .take(5)
            .cloned()
            .collect()
    };
    assert!(
        got == want,
        "patched only {:?}, full only {:?}",
        only(&got, &want),
        only(&want, &got)
    );
    assert_ne!(got, prev.canonical());
    // the previous index is untouched (dips in flight finish on it)
    assert_eq!(
        prev.canonical(),
        synthetic::builder(&SPEC)
            .unwrap()
            .build(T0)
            .unwrap()
            .canonical()
    );

    // a route whose rows all went: its entries are dropped, the others kept
    let mut b = SnapshotBuilder::incremental(&prev, PartSet::NONE);
    assert!(b.patch_rates(&[synthetic::route_id(0)]));
    let empty = b.build(T0).unwrap();
    assert_eq!(
        empty.stats().rate_entries,
        prev.stats().rate_entries - SPEC.prefixes
    );
}

#[test]
fn a_rate_patch_needs_a_kept_rate_part_that_fits_the_routes() {
    let prev = synthetic::builder(&SPEC).unwrap().build(T0).unwrap();
    // the rates rebuilt whole: nothing to patch
    let mut b = SnapshotBuilder::incremental(&prev, PartSet::from_iter([Part::Rates]));
    assert!(!b.patch_rates(&[synthetic::route_id(0)]));
    // one route fewer: the kept index's route indexes no longer fit
    let mut b = SnapshotBuilder::incremental(&prev, PartSet::from_iter([Part::Topology]));
    let t = prev.parts.topology.clone();
    t.vendors.iter().for_each(|v| b.vendor(v.clone()));
    t.routes.iter().skip(1).for_each(|r| b.route(r.clone()));
    assert!(!b.patch_rates(&[synthetic::route_id(1)]));
    assert!(b.patched_routes().is_empty());
}
