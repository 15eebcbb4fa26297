//! The parts a [`Snapshot`](super::Snapshot) is made of, and which database table feeds which.
//!
//! A snapshot is assembled from immutable parts behind `Arc`s: the rows of the small tables
//! ([`TopologyRows`], [`CustomerRows`], [`PolicyRows`]), the NANP numbering data and the rate
//! index (every vendor rate of every route under one shared prefix trie). An incremental build
//! re-reads only the parts whose tables changed and shares the others with the live snapshot;
//! the small tables' compiled indexes (ids to positions, dialstrings, sorted overrides) are
//! recompiled from the parts' rows on every build, which costs O(small rows), not O(rate rows).
//!
//! Adding a part (recipe, also in ARCHITECTURE.md): one rows struct here, one [`Part`] variant
//! with its tables in [`Part::of_table`], one slot in the builder and one loader function in
//! `src/db/loader` that the loader calls when the part is being rebuilt.
//!
//! Owns: the part list, the table → part map, the part row structs.
//! Must not touch: how parts are read from the database (the daemon's loader) or compiled.

use std::sync::Arc;

use serde::Serialize;

use crate::routing::model::*;

/// One independently rebuilt piece of a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    /// vendors, gateways, routes, partitions
    Topology,
    /// customers with their source addresses, partitions, margin rules and sell decks
    Customers,
    /// overrides and exclusions
    Policy,
    /// NPA-NXX, local calling, LNP, DNO
    Numbering,
    /// vendor rates (the big one)
    Rates,
    /// trunks, their sources, credentials and destinations, numbers (DIDs), origination sources
    /// (issue 19); names customers and vendors by id only (resolved at answer time from the
    /// customers and topology parts), so no customers or vendors change rebuilds it
    Inbound,
}

impl Part {
    pub const ALL: [Part; 6] = [
        Part::Topology,
        Part::Customers,
        Part::Policy,
        Part::Numbering,
        Part::Rates,
        Part::Inbound,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Part::Topology => "topology",
            Part::Customers => "customers",
            Part::Policy => "policy",
            Part::Numbering => "numbering",
            Part::Rates => "rates",
            Part::Inbound => "inbound",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }

    /// The parts built from `table`: `Some(&[])` for a table that notifies routing changes but
    /// feeds no part (media policies are read by the media layer), `None` for a table this list
    /// does not know (the caller then builds everything: a table added without a part is never
    /// missed, only slower).
    pub fn of_table(table: &str) -> Option<&'static [Part]> {
        Some(match table {
            // the inbound part names customers and vendors by id: their BANs, names, `enabled`
            // and gateways are read at answer time from the parts below, never copied into it
            "vendors" | "gateways" | "routes" | "partitions" | "partition_routes" => {
                &[Part::Topology]
            }
            "customers"
            | "customer_source_ips"
            | "customer_partitions"
            | "customer_margin_rules"
            | "customer_rates" => &[Part::Customers],
            "overrides" | "exclusions" => &[Part::Policy],
            "npanxx" | "local_calling" | "lnp" | "dno" => &[Part::Numbering],
            "vendor_rates" => &[Part::Rates],
            "trunks"
            | "trunk_sources"
            | "trunk_credentials"
            | "trunk_destinations"
            | "numbers"
            | "origination_sources"
            | "stir_policies"
            | "stir_tn_ranges" => &[Part::Inbound],
            "media_policies" => &[],
            _ => return None,
        })
    }
}

/// A set of [`Part`]s.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PartSet(u8);

impl PartSet {
    pub const NONE: PartSet = PartSet(0);

    pub fn all() -> PartSet {
        Part::ALL.into_iter().collect()
    }

    pub fn contains(self, p: Part) -> bool {
        self.0 & p.bit() != 0
    }

    pub fn insert(&mut self, p: Part) {
        self.0 |= p.bit();
    }

    pub fn remove(&mut self, p: Part) {
        self.0 &= !p.bit();
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn is_all(self) -> bool {
        self == PartSet::all()
    }

    pub fn iter(self) -> impl Iterator<Item = Part> {
        Part::ALL.into_iter().filter(move |p| self.contains(*p))
    }

    /// The parts fed by `tables`; None when one of them is unknown (see [`Part::of_table`]).
    pub fn of_tables<'a>(tables: impl IntoIterator<Item = &'a str>) -> Option<PartSet> {
        let mut set = PartSet::NONE;
        for t in tables {
            for p in Part::of_table(t)? {
                set.insert(*p);
            }
        }
        Some(set)
    }

    /// Part names, for logs and reload reports.
    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Part::name).collect()
    }
}

impl FromIterator<Part> for PartSet {
    fn from_iter<I: IntoIterator<Item = Part>>(iter: I) -> Self {
        let mut s = PartSet::NONE;
        for p in iter {
            s.insert(p);
        }
        s
    }
}

impl Serialize for PartSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.names().serialize(s)
    }
}

/// Rows of the topology part, in load order (route order fixes the rate index's route indexes).
#[derive(Clone, Debug, Default)]
pub struct TopologyRows {
    pub vendors: Vec<Vendor>,
    pub gateways: Vec<Gateway>,
    pub routes: Vec<Route>,
    pub partitions: Vec<Partition>,
}

/// Rows of the customers part.
#[derive(Clone, Debug, Default)]
pub struct CustomerRows {
    pub customers: Vec<Customer>,
    /// sell-deck rows by customer id
    pub rates: Vec<(Id, CustomerRate)>,
}

/// Rows of the policy part.
#[derive(Clone, Debug, Default)]
pub struct PolicyRows {
    pub overrides: Vec<Override>,
    pub exclusions: Vec<Exclusion>,
}

/// A part in a builder: shared with the previous snapshot (`kept`), or being built afresh.
pub(crate) struct Slot<T> {
    kept: Option<Arc<T>>,
    fresh: T,
}

impl<T: Default> Slot<T> {
    pub fn new() -> Slot<T> {
        Slot {
            kept: None,
            fresh: T::default(),
        }
    }

    /// Kept from `prev` unless `rebuild`.
    pub fn keep_unless(prev: &Arc<T>, rebuild: bool) -> Slot<T> {
        Slot {
            kept: (!rebuild).then(|| prev.clone()),
            fresh: T::default(),
        }
    }

    /// The part being built; writing to a kept part rebuilds it from what is written.
    pub fn fresh(&mut self) -> &mut T {
        self.kept = None;
        &mut self.fresh
    }

    pub fn get(&self) -> &T {
        self.kept.as_deref().unwrap_or(&self.fresh)
    }

    pub fn is_kept(&self) -> bool {
        self.kept.is_some()
    }

    pub fn into_arc(self) -> Arc<T> {
        self.kept.unwrap_or_else(|| Arc::new(self.fresh))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_map_to_parts_and_unknown_tables_to_none() {
        // the inbound part names customers and vendors by id: a customers or vendors change
        // (a million numbers at stake) does not rebuild it
        assert_eq!(
            PartSet::of_tables(["customers", "overrides"]),
            Some([Part::Customers, Part::Policy].into_iter().collect())
        );
        assert_eq!(
            PartSet::of_tables(["vendors", "gateways"]),
            Some([Part::Topology].into_iter().collect())
        );
        assert_eq!(
            PartSet::of_tables(["customer_rates", "overrides"]),
            Some([Part::Customers, Part::Policy].into_iter().collect())
        );
        assert_eq!(
            PartSet::of_tables(["numbers", "trunk_sources"]).map(|s| s.names()),
            Some(vec!["inbound"])
        );
        // STIR/SHAKEN settings and TN ranges (issue 20) are inbound data, by customer id
        assert_eq!(
            PartSet::of_tables(["stir_policies", "stir_tn_ranges"]).map(|s| s.names()),
            Some(vec!["inbound"])
        );
        assert_eq!(PartSet::of_tables(["media_policies"]), Some(PartSet::NONE));
        assert_eq!(PartSet::of_tables(["customers", "no_such_table"]), None);
        assert!(PartSet::all().is_all());
        assert_eq!(
            PartSet::of_tables(["vendor_rates", "lnp"]).map(|s| s.names()),
            Some(vec!["numbering", "rates"])
        );
    }
}
