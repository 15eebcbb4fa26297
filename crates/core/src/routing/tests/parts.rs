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
