//! What the inbound procedure reads outside the inbound part: customers by id (their BAN and
//! `enabled`, the customers part's) and the vendor an address belongs to (the vendors' gateways,
//! the topology part's, and the `origination_sources` rows of the inbound part).
//!
//! The snapshot is the [`Directory`] of the daemon (`Snapshot` implements it over its customers
//! and its compiled [`Origination`]); [`Peers`] is a directory given directly (unit tests,
//! benchmarks, fuzzing).
//!
//! Owns: the customer/vendor look-ups the inbound part delegates. Must not touch: the inbound
//! rows themselves.

use std::net::IpAddr;

use ipnet::IpNet;
use rustc_hash::FxHashMap;

use super::NetIndex;
use crate::routing::model::{Id, Name};

/// A customer as the inbound procedure sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CustomerRef<'a> {
    pub ban: &'a Name,
    pub enabled: bool,
}

/// Customers by id and vendors by source address, read at answer time.
pub trait Directory {
    /// The customer with this id (None: no such customer).
    fn customer(&self, id: Id) -> Option<CustomerRef<'_>>;
    /// The enabled vendor whose gateways or origination sources hold `ip`.
    fn vendor_by_source(&self, ip: IpAddr) -> Option<&Name>;
}

/// Vendors' source networks compiled: exact addresses in a map, other networks most specific
/// first. Small (vendors' gateways and origination sources): compiled on every snapshot build.
#[derive(Clone, Debug, Default)]
pub struct Origination {
    index: NetIndex,
    vendors: Vec<Name>,
}

impl Origination {
    /// From (vendor, vendor enabled, network) in any order. A disabled vendor's networks are
    /// left out; an address claimed by two vendors goes to the first by name (deterministic).
    pub fn build(rows: impl IntoIterator<Item = (Name, bool, IpNet)>) -> Origination {
        let mut rows: Vec<(Name, IpNet)> = rows
            .into_iter()
            .filter(|r| r.1)
            .map(|(v, _, n)| (v, n))
            .collect();
        rows.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()).then(a.1.cmp(&b.1)));
        let mut o = Origination::default();
        for (vendor, net) in rows {
            if o.vendors.last() != Some(&vendor) {
                o.vendors.push(vendor);
            }
            o.index.insert(net, (o.vendors.len() - 1) as u32);
        }
        o.index.finish();
        o
    }

    pub fn vendor(&self, ip: IpAddr) -> Option<&Name> {
        self.vendors.get(self.index.get(ip)? as usize)
    }

    /// Networks held.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A [`Directory`] given directly.
#[derive(Clone, Debug, Default)]
pub struct Peers {
    customers: FxHashMap<Id, (Name, bool)>,
    sources: Vec<(Name, bool, IpNet)>,
    origination: Origination,
}

impl Peers {
    pub fn new() -> Peers {
        Peers::default()
    }

    /// Adds (or replaces) a customer.
    pub fn add_customer(&mut self, id: Id, ban: &str, enabled: bool) -> &mut Peers {
        self.customers.insert(id, (Name::from(ban), enabled));
        self
    }

    /// Adds a vendor's source network.
    pub fn add_source(&mut self, vendor: &str, enabled: bool, net: IpNet) -> &mut Peers {
        self.sources.push((Name::from(vendor), enabled, net));
        self.origination = Origination::build(self.sources.iter().cloned());
        self
    }
}

impl Directory for Peers {
    fn customer(&self, id: Id) -> Option<CustomerRef<'_>> {
        self.customers.get(&id).map(|(ban, enabled)| CustomerRef {
            ban,
            enabled: *enabled,
        })
    }

    fn vendor_by_source(&self, ip: IpAddr) -> Option<&Name> {
        self.origination.vendor(ip)
    }
}
