//! Building a [`Snapshot`]: the [`SnapshotBuilder`] collects routing rows in any order into
//! the parts being built (vendor rates straight into the key-grouped rate index), shares the
//! others with a previous snapshot ([`SnapshotBuilder::incremental`]), and
//! [`SnapshotBuilder::build`] checks every reference, compiles the small tables and assembles
//! the parts; [`BuildError`] names the offending item.
//!
//! Owns: which parts a build takes from where, the assembly and the stats.
//! Must not touch: how a dip reads the result (see `dip`); compiling (see `compile`, `rates`).

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::compile::{compile, route_index};
use super::parts::{CustomerRows, Part, PartSet, PolicyRows, Slot, TopologyRows};
use super::rates::RatesBuilder;
use super::*;
use crate::numbering::{NumberingData, NumberingError};
use crate::routing::settings::RoutingSettings;

/// Why a snapshot could not be built. Each variant names the offending item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("route {route:?} references unknown vendor id {vendor_id}")]
    UnknownVendor { route: String, vendor_id: Id },
    #[error("{what} references unknown route id {route_id}")]
    UnknownRoute { what: String, route_id: Id },
    #[error("{what} references unknown partition id {partition_id}")]
    UnknownPartition { what: String, partition_id: Id },
    #[error("{what} references unknown customer id {customer_id}")]
    UnknownCustomer { what: String, customer_id: Id },
    #[error("vendor {vendor:?}: dialstring {template:?} has no ${{number}} placeholder")]
    Dialstring { vendor: String, template: String },
    #[error("rate for route id {route_id}: invalid prefix {prefix:?} (digits only)")]
    BadPrefix { route_id: Id, prefix: String },
    #[error("too many routes (limit {limit})")]
    TooManyRoutes { limit: usize },
    #[error("too many distinct billing terms / effective windows (limit {limit})")]
    TooManyTerms { limit: usize },
    #[error("too many rate rows (limit {limit})")]
    TooManyRates { limit: usize },
    #[error("customer {ban:?} and customer id {other} both claim source {ip}")]
    DuplicateSource { ban: String, other: Id, ip: IpNet },
    #[error("the rate index was built for other routes than the topology's (rebuild the rates)")]
    StaleRates,
    #[error("vendor rate for route id {route_id}, whose rates are not being re-read")]
    RouteNotPatched { route_id: Id },
    #[error(transparent)]
    Numbering(#[from] NumberingError),
}

/// The rate part in a builder: shared with the previous snapshot, being built, or the previous
/// one with some routes' rates re-read (`replaced` by route index, `routes` their ids).
enum RatesSlot {
    Kept(Arc<RateIndex>),
    Fresh(RatesBuilder),
    Patch {
        base: Arc<RateIndex>,
        replaced: Vec<bool>,
        routes: Vec<Id>,
        rows: RatesBuilder,
    },
}

/// Collects routing rows (in any order) and compiles them into a [`Snapshot`].
pub struct SnapshotBuilder {
    settings: RoutingSettings,
    topology: Slot<TopologyRows>,
    customers: Slot<CustomerRows>,
    policy: Slot<PolicyRows>,
    numbering: Slot<NumberingData>,
    rates: RatesSlot,
    /// route id → index for vendor rates, from the topology's routes
    route_ix: FxHashMap<Id, RouteIx>,
    /// the trunks/numbers part (issue 19), compiled by its own loader; `inbound_kept`: shared
    /// with the previous snapshot
    inbound: Arc<crate::routing::inbound::Inbound>,
    inbound_kept: bool,
    data_version: Option<i64>,
    source: Option<String>,
}

impl SnapshotBuilder {
    pub fn new(settings: RoutingSettings) -> Self {
        SnapshotBuilder {
            settings,
            topology: Slot::new(),
            customers: Slot::new(),
            policy: Slot::new(),
            numbering: Slot::new(),
            rates: RatesSlot::Fresh(RatesBuilder::default()),
            route_ix: FxHashMap::default(),
            inbound: Arc::default(),
            inbound_kept: false,
            data_version: None,
            source: None,
        }
    }

    /// A builder that shares every part of `prev` except those in `rebuild`, which start empty
    /// and are filled by the same calls as a full build. Settings come from `prev`.
    pub fn incremental(prev: &Snapshot, rebuild: PartSet) -> Self {
        let p = &prev.parts;
        let topology = Slot::keep_unless(&p.topology, rebuild.contains(Part::Topology));
        let route_ix = route_index(topology.get());
        SnapshotBuilder {
            settings: prev.settings.clone(),
            topology,
            customers: Slot::keep_unless(&p.customers, rebuild.contains(Part::Customers)),
            policy: Slot::keep_unless(&p.policy, rebuild.contains(Part::Policy)),
            numbering: Slot::keep_unless(&prev.numbering, rebuild.contains(Part::Numbering)),
            rates: if rebuild.contains(Part::Rates) {
                RatesSlot::Fresh(RatesBuilder::default())
            } else {
                RatesSlot::Kept(prev.rates.clone())
            },
            route_ix,
            inbound: if rebuild.contains(Part::Inbound) {
                Arc::default()
            } else {
                prev.inbound.clone()
            },
            inbound_kept: !rebuild.contains(Part::Inbound),
            data_version: prev.data_version,
            source: None,
        }
    }

    /// The parts this builder builds (the others are shared with the previous snapshot).
    pub fn rebuilding(&self) -> PartSet {
        let mut s = PartSet::NONE;
        let kept = [
            (Part::Topology, self.topology.is_kept()),
            (Part::Customers, self.customers.is_kept()),
            (Part::Policy, self.policy.is_kept()),
            (Part::Numbering, self.numbering.is_kept()),
            (Part::Rates, matches!(self.rates, RatesSlot::Kept(_))),
            (Part::Inbound, self.inbound_kept),
        ];
        for (p, k) in kept {
            if !k {
                s.insert(p);
            }
        }
        s
    }

    /// False when the rate part is kept but was built for other routes (ids or order) than the
    /// topology now has: its route indexes would be wrong, the rates must be rebuilt
    /// ([`SnapshotBuilder::rebuild_rates`]). Call after the topology's routes are in.
    pub fn rates_fit_routes(&self) -> bool {
        match &self.rates {
            RatesSlot::Fresh(_) => true,
            RatesSlot::Kept(r) | RatesSlot::Patch { base: r, .. } => r
                .route_ids
                .iter()
                .copied()
                .eq(self.topology.get().routes.iter().map(|r| r.id)),
        }
    }

    /// Makes the rate part one being built (empty until vendor rates are added).
    pub fn rebuild_rates(&mut self) {
        self.rates = RatesSlot::Fresh(RatesBuilder::default());
    }

    /// Re-reads the rates of `routes` only: the kept rate part minus those routes' entries, plus
    /// the vendor rates added from now on (which must all be of those routes: everything they
    /// have now). False, changing nothing, when the rate part is not kept or does not fit the
    /// topology's routes (then rebuild it whole). Call after the topology's routes are in.
    pub fn patch_rates(&mut self, routes: &[Id]) -> bool {
        let RatesSlot::Kept(base) = &self.rates else {
            return false;
        };
        if !self.rates_fit_routes() {
            return false;
        }
        let mut replaced = vec![false; base.route_ids.len()];
        let mut ids = Vec::new();
        for id in routes {
            // a route without an index has no rows in the kept part, and cannot get any
            // (vendor_rate refuses unknown routes)
            if let Some(&ix) = self.route_ix.get(id) {
                if let Some(r) = replaced.get_mut(ix as usize) {
                    if !*r {
                        *r = true;
                        ids.push(*id);
                    }
                }
            }
        }
        ids.sort_unstable();
        self.rates = RatesSlot::Patch {
            rows: RatesBuilder::patching(base),
            base: base.clone(),
            replaced,
            routes: ids,
        };
        true
    }

    /// The route ids whose rates this builder re-reads ([`SnapshotBuilder::patch_rates`]);
    /// empty when the rate part is kept or built whole.
    pub fn patched_routes(&self) -> &[Id] {
        match &self.rates {
            RatesSlot::Patch { routes, .. } => routes,
            _ => &[],
        }
    }

    /// Customer id → BAN of the customers part (kept or being built), to name rows in errors.
    pub fn customer_bans(&self) -> FxHashMap<Id, String> {
        self.customers
            .get()
            .customers
            .iter()
            .map(|c| (c.id, c.ban.clone()))
            .collect()
    }

    /// Route id → name of the topology part (kept or being built), to name rows in errors.
    pub fn route_names(&self) -> FxHashMap<Id, String> {
        self.topology
            .get()
            .routes
            .iter()
            .map(|r| (r.id, r.name.clone()))
            .collect()
    }

    /// The compiled trunks/numbers part (built by its own loader from its own tables).
    pub fn set_inbound(&mut self, inbound: Arc<crate::routing::inbound::Inbound>) {
        self.inbound = inbound;
        self.inbound_kept = false;
    }

    /// The routing data version (the database's `routing_data_version`) the rows were read at.
    pub fn set_data_version(&mut self, version: i64) {
        self.data_version = Some(version);
    }

    /// Where in the database's history the rows were read (opaque to the core; the daemon keeps
    /// the PostgreSQL snapshot there to ask what changed since).
    pub fn set_source(&mut self, source: String) {
        self.source = Some(source);
    }

    pub fn settings_mut(&mut self) -> &mut RoutingSettings {
        &mut self.settings
    }

    /// Hint for the number of vendor rate rows to come (avoids regrowth on big decks).
    pub fn reserve_rates(&mut self, rows: usize) {
        if let RatesSlot::Fresh(r) = &mut self.rates {
            r.reserve(rows);
        }
    }

    pub fn vendor(&mut self, v: Vendor) {
        self.topology.fresh().vendors.push(v);
    }
    pub fn gateway(&mut self, g: Gateway) {
        self.topology.fresh().gateways.push(g);
    }
    pub fn route(&mut self, r: Route) {
        if self.topology.is_kept() {
            // the kept routes go: index the ones written from now on
            self.route_ix.clear();
        }
        let t = self.topology.fresh();
        let ix = t.routes.len();
        if ix <= RouteIx::MAX as usize {
            self.route_ix.insert(r.id, ix as RouteIx);
        }
        t.routes.push(r);
    }
    pub fn partition(&mut self, p: Partition) {
        self.topology.fresh().partitions.push(p);
    }
    pub fn customer(&mut self, c: Customer) {
        self.customers.fresh().customers.push(c);
    }
    pub fn customer_rate(&mut self, customer_id: Id, r: CustomerRate) {
        self.customers.fresh().rates.push((customer_id, r));
    }
    pub fn override_rule(&mut self, o: Override) {
        self.policy.fresh().overrides.push(o);
    }
    pub fn exclusion(&mut self, e: Exclusion) {
        self.policy.fresh().exclusions.push(e);
    }

    /// Adds one vendor rate row of an already added route (the rate part is then rebuilt).
    pub fn vendor_rate(
        &mut self,
        route_id: Id,
        key: RateKey<'_>,
        row: RateRow,
    ) -> Result<(), BuildError> {
        let Some(&route) = self.route_ix.get(&route_id) else {
            return Err(BuildError::UnknownRoute {
                what: "vendor rate".into(),
                route_id,
            });
        };
        if let RatesSlot::Kept(_) = self.rates {
            self.rebuild_rates();
        }
        match &mut self.rates {
            RatesSlot::Fresh(r) => r.add(route, route_id, key, row),
            RatesSlot::Patch { replaced, rows, .. } => {
                if !replaced.get(route as usize).copied().unwrap_or(false) {
                    return Err(BuildError::RouteNotPatched { route_id });
                }
                rows.add(route, route_id, key, row)
            }
            RatesSlot::Kept(_) => Ok(()),
        }
    }

    pub fn npanxx(&mut self, npanxx: &str, info: NpaNxxInfo) -> Result<(), BuildError> {
        Ok(self.numbering.fresh().add_npanxx(npanxx, info)?)
    }
    pub fn local_calling(&mut self, a: &str, b: &str) -> Result<(), BuildError> {
        Ok(self.numbering.fresh().add_local_pair(a, b)?)
    }
    pub fn lnp(&mut self, tn: &str, lrn: &str) -> Result<(), BuildError> {
        Ok(self.numbering.fresh().add_lnp(tn, lrn)?)
    }
    pub fn dno(&mut self, number: &str) -> Result<(), BuildError> {
        Ok(self.numbering.fresh().add_dno(number)?)
    }

    /// Compiles the small tables and assembles the parts. CPU-heavy when the rate part is
    /// rebuilt on a big deck: call it off the async runtime's workers.
    pub fn build(self, built_at: i64) -> Result<Snapshot, BuildError> {
        let rebuilt = self.rebuilding();
        if !self.rates_fit_routes() {
            return Err(BuildError::StaleRates);
        }
        let SnapshotBuilder {
            settings,
            topology,
            customers,
            policy,
            numbering,
            rates,
            route_ix: _,
            inbound,
            inbound_kept: _,
            data_version,
            source,
        } = self;
        let (topology, customers, policy) =
            (topology.into_arc(), customers.into_arc(), policy.into_arc());
        let compiled = compile(&settings, &topology, &customers, &policy)?;
        let origination = origination(&topology, &inbound);
        let rates = match rates {
            RatesSlot::Kept(r) => r,
            RatesSlot::Fresh(b) => {
                Arc::new(b.finish(topology.routes.iter().map(|r| r.id).collect()))
            }
            RatesSlot::Patch {
                base,
                replaced,
                rows,
                ..
            } => Arc::new(rows.finish_patch(&base, &replaced)),
        };
        let numbering = numbering.into_arc();
        let (npanxx, local_pairs, lnp, dno) = numbering.counts();
        // STIR/SHAKEN origids (issue 20): one UUIDv5 per customer and trunk, every build
        let stir = crate::routing::stir::StirIndex::compile(
            &settings.stir_origid_namespace,
            compiled.customers.iter().map(|c| c.c.ban.as_str()),
            inbound.trunks.iter().map(|t| t.name.as_str()),
        );
        let stats = SnapshotStats {
            built_at,
            vendors: compiled.vendors.len(),
            routes: compiled.routes.len(),
            partitions: compiled.partitions.len(),
            customers: compiled.customers.len(),
            rate_keys: rates.offsets.len().saturating_sub(1),
            rate_entries: rates.entries.len(),
            trie_nodes: rates.trie.node_count(),
            overrides: compiled.overrides.len(),
            exclusions: compiled.exclusions.len(),
            npanxx,
            local_pairs,
            lnp,
            dno,
            // vendors' source networks: origination sources and IP gateways alike
            inbound: crate::routing::inbound::InboundStats {
                origination_sources: origination.len(),
                ..inbound.stats()
            },
            warnings: compiled.warnings,
        };
        Ok(Snapshot {
            settings,
            vendors: compiled.vendors,
            routes: compiled.routes,
            partitions: compiled.partitions,
            customers: compiled.customers,
            customer_by_ban: compiled.customer_by_ban,
            customer_by_id: compiled.customer_by_id,
            customer_by_ip: compiled.customer_by_ip,
            customer_cidrs: compiled.customer_cidrs,
            rates,
            overrides: compiled.overrides,
            exclusions: compiled.exclusions,
            numbering,
            emergency_route: compiled.emergency_route,
            stir,
            inbound,
            origination,
            stats,
            generation: 0,
            data_version,
            parts: SourceParts {
                topology,
                customers,
                policy,
            },
            rebuilt,
            source,
        })
    }
}

/// The vendors' source addresses: every enabled gateway whose host is an IP address and the
/// inbound part's origination sources, with their vendor's name and `enabled` (topology).
fn origination(
    topology: &TopologyRows,
    inbound: &crate::routing::inbound::Inbound,
) -> crate::routing::inbound::Origination {
    let vendors: FxHashMap<Id, (Name, bool)> = topology
        .vendors
        .iter()
        .map(|v| (v.id, (Name::from(v.name.as_str()), v.enabled)))
        .collect();
    let gateways = topology
        .gateways
        .iter()
        .filter(|g| g.enabled)
        .filter_map(|g| {
            // a gateway named by a DNS name is not a source address: only literal IPs count
            let net = g
                .host
                .parse::<ipnet::IpNet>()
                .ok()
                .or_else(|| g.host.parse::<IpAddr>().ok().map(ipnet::IpNet::from))?;
            Some((g.vendor_id, net))
        });
    let sources = inbound
        .origination_rows()
        .iter()
        .map(|o| (o.vendor_id, o.net));
    crate::routing::inbound::Origination::build(gateways.chain(sources).filter_map(|(v, net)| {
        let (name, enabled) = vendors.get(&v)?;
        Some((name.clone(), *enabled, net))
    }))
}
