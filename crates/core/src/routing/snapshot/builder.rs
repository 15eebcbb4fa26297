//! Building a [`Snapshot`]: the [`SnapshotBuilder`] collects routing rows in any order (vendor
//! rates straight into the key-grouped rate index) and [`SnapshotBuilder::build`] checks every
//! reference and compiles them; [`BuildError`] names the offending item.
//!
//! Owns: the compile step (ids to indexes, dialstrings, interned terms, sorted rate slices).
//! Must not touch: how a dip reads the result (see `dip`).

use std::net::IpAddr;

use ipnet::IpNet;
use rustc_hash::FxHashMap;

use super::*;
use crate::numbering::{NumberingData, NumberingError};
use crate::routing::settings::RoutingSettings;
use crate::routing::trie::DigitTrie;

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
    #[error(transparent)]
    Numbering(#[from] NumberingError),
}

/// Collects routing rows (in any order) and compiles them into a [`Snapshot`].
pub struct SnapshotBuilder {
    settings: RoutingSettings,
    vendors: Vec<Vendor>,
    gateways: Vec<Gateway>,
    routes: Vec<Route>,
    route_ix: FxHashMap<Id, RouteIx>,
    partitions: Vec<Partition>,
    customers: Vec<Customer>,
    customer_rates: Vec<(Id, CustomerRate)>,
    overrides: Vec<Override>,
    exclusions: Vec<Exclusion>,
    trie: DigitTrie,
    ocn_lata: FxHashMap<Box<str>, u32>,
    next_key: u32,
    pending: Vec<(u32, RateEntry)>,
    terms_ix: FxHashMap<Terms, u16>,
    terms: Vec<Terms>,
    numbering: NumberingData,
    inbound: std::sync::Arc<crate::routing::inbound::Inbound>,
    data_version: Option<i64>,
}

fn zone_rates(row: &RateRow) -> [u32; 3] {
    let f = |r: Option<Rate>| r.map(|r| r.0.min(Rate::MAX.0)).unwrap_or(NO_RATE);
    [f(row.inter), f(row.intra), f(row.local)]
}

impl SnapshotBuilder {
    pub fn new(settings: RoutingSettings) -> Self {
        SnapshotBuilder {
            settings,
            vendors: vec![],
            gateways: vec![],
            routes: vec![],
            route_ix: FxHashMap::default(),
            partitions: vec![],
            customers: vec![],
            customer_rates: vec![],
            overrides: vec![],
            exclusions: vec![],
            trie: DigitTrie::default(),
            ocn_lata: FxHashMap::default(),
            next_key: 0,
            pending: vec![],
            terms_ix: FxHashMap::default(),
            terms: vec![],
            numbering: NumberingData::default(),
            inbound: std::sync::Arc::default(),
            data_version: None,
        }
    }

    /// The compiled trunks/numbers part (built by its own `InboundBuilder`).
    pub fn set_inbound(&mut self, inbound: std::sync::Arc<crate::routing::inbound::Inbound>) {
        self.inbound = inbound;
    }

    /// The routing data version (the database's `routing_data_version`) the rows were read at.
    pub fn set_data_version(&mut self, version: i64) {
        self.data_version = Some(version);
    }

    pub fn settings_mut(&mut self) -> &mut RoutingSettings {
        &mut self.settings
    }

    /// Hint for the number of vendor rate rows to come (avoids regrowth on big decks).
    pub fn reserve_rates(&mut self, rows: usize) {
        self.pending.reserve(rows);
    }

    pub fn vendor(&mut self, v: Vendor) {
        self.vendors.push(v);
    }
    pub fn gateway(&mut self, g: Gateway) {
        self.gateways.push(g);
    }
    pub fn route(&mut self, r: Route) {
        let ix = self.routes.len();
        if ix <= RouteIx::MAX as usize {
            self.route_ix.insert(r.id, ix as RouteIx);
        }
        self.routes.push(r);
    }
    pub fn partition(&mut self, p: Partition) {
        self.partitions.push(p);
    }
    pub fn customer(&mut self, c: Customer) {
        self.customers.push(c);
    }
    pub fn customer_rate(&mut self, customer_id: Id, r: CustomerRate) {
        self.customer_rates.push((customer_id, r));
    }
    pub fn override_rule(&mut self, o: Override) {
        self.overrides.push(o);
    }
    pub fn exclusion(&mut self, e: Exclusion) {
        self.exclusions.push(e);
    }

    /// Adds one vendor rate row of an already added route.
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
        let k = match key {
            RateKey::Prefix(p) => {
                let nk = self.next_key;
                let k = self
                    .trie
                    .get_or_insert(p.as_bytes(), nk)
                    .filter(|_| !p.is_empty())
                    .ok_or_else(|| BuildError::BadPrefix {
                        route_id,
                        prefix: p.into(),
                    })?;
                if k == nk {
                    self.next_key += 1;
                }
                k
            }
            RateKey::OcnLata { ocn, lata } => {
                let nk = self.next_key;
                let k = *self
                    .ocn_lata
                    .entry(format!("{}|{}", ocn.trim(), lata.trim()).into_boxed_str())
                    .or_insert(nk);
                if k == nk {
                    self.next_key += 1;
                }
                k
            }
        };
        let t = Terms {
            min: row.min_seconds,
            inc: row.inc_seconds.max(1),
            from: row.effective_from,
            until: row.effective_until,
        };
        let terms = match self.terms_ix.get(&t) {
            Some(&i) => i,
            None => {
                let i = u16::try_from(self.terms.len()).map_err(|_| BuildError::TooManyTerms {
                    limit: u16::MAX as usize,
                })?;
                self.terms.push(t);
                self.terms_ix.insert(t, i);
                i
            }
        };
        if self.pending.len() >= u32::MAX as usize - 1 {
            return Err(BuildError::TooManyRates {
                limit: u32::MAX as usize - 1,
            });
        }
        self.pending.push((
            k,
            RateEntry {
                route,
                terms,
                rates: zone_rates(&row),
            },
        ));
        Ok(())
    }

    pub fn npanxx(&mut self, npanxx: &str, info: NpaNxxInfo) -> Result<(), BuildError> {
        Ok(self.numbering.add_npanxx(npanxx, info)?)
    }
    pub fn local_calling(&mut self, a: &str, b: &str) -> Result<(), BuildError> {
        Ok(self.numbering.add_local_pair(a, b)?)
    }
    pub fn lnp(&mut self, tn: &str, lrn: &str) -> Result<(), BuildError> {
        Ok(self.numbering.add_lnp(tn, lrn)?)
    }
    pub fn dno(&mut self, number: &str) -> Result<(), BuildError> {
        Ok(self.numbering.add_dno(number)?)
    }

    /// Compiles everything. CPU-heavy for big decks: call it off the async runtime's workers.
    pub fn build(self, built_at: i64) -> Result<Snapshot, BuildError> {
        let SnapshotBuilder {
            settings,
            vendors,
            gateways,
            routes,
            route_ix,
            partitions,
            customers,
            customer_rates,
            overrides,
            exclusions,
            mut trie,
            ocn_lata,
            next_key,
            mut pending,
            terms_ix: _,
            terms,
            numbering,
            inbound,
            data_version,
        } = self;
        if routes.len() > RouteIx::MAX as usize {
            return Err(BuildError::TooManyRoutes {
                limit: RouteIx::MAX as usize,
            });
        }
        let mut warnings = Vec::new();

        // vendors and their gateways
        let vendor_ix: FxHashMap<Id, usize> =
            vendors.iter().enumerate().map(|(i, v)| (v.id, i)).collect();
        let mut vendor_gws: Vec<Vec<GatewayC>> = vec![Vec::new(); vendors.len()];
        for g in gateways.iter().filter(|g| g.enabled) {
            let Some(&vi) = vendor_ix.get(&g.vendor_id) else {
                continue;
            };
            let v = &vendors[vi];
            let filled = v
                .dialstring
                .replace("${host}", &g.host)
                .replace("${port}", &g.port.to_string())
                .replace("${transport}", g.transport.as_str());
            let Some((head, tail)) = filled.split_once("${number}") else {
                return Err(BuildError::Dialstring {
                    vendor: v.name.clone(),
                    template: v.dialstring.clone(),
                });
            };
            vendor_gws[vi].push(GatewayC {
                head: head.to_string(),
                tail: tail.to_string(),
                priority: g.priority,
                weight: g.weight,
            });
        }
        for gws in &mut vendor_gws {
            gws.sort_by(|a, b| a.priority.cmp(&b.priority).then(b.weight.cmp(&a.weight)));
        }
        let vendors_c: Vec<VendorC> = vendors
            .iter()
            .map(|v| VendorC {
                name: v.name.as_str().into(),
                billing: v.billing,
                enabled: v.enabled,
            })
            .collect();

        let mut routes_c = Vec::with_capacity(routes.len());
        for r in &routes {
            let Some(&vi) = vendor_ix.get(&r.vendor_id) else {
                return Err(BuildError::UnknownVendor {
                    route: r.name.clone(),
                    vendor_id: r.vendor_id,
                });
            };
            routes_c.push(RouteC {
                name: r.name.as_str().into(),
                vendor: vi,
                priority: r.priority,
                weight: r.weight,
                capacity: r.capacity,
                enabled: r.enabled,
                gateways: vendor_gws[vi].clone(),
                order: 0,
            });
        }
        {
            let mut by_rank: Vec<usize> = (0..routes_c.len()).collect();
            by_rank.sort_by(|&a, &b| {
                let (ra, rb) = (&routes_c[a], &routes_c[b]);
                ra.priority
                    .cmp(&rb.priority)
                    .then(rb.weight.cmp(&ra.weight))
                    .then(ra.name.cmp(&rb.name))
            });
            for (rank, ix) in by_rank.into_iter().enumerate() {
                routes_c[ix].order = rank as u32;
            }
        }

        let partition_ix: FxHashMap<Id, usize> = partitions
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id, i))
            .collect();
        let mut partitions_c = Vec::with_capacity(partitions.len());
        for p in &partitions {
            let mut rs = Vec::with_capacity(p.route_ids.len());
            for rid in &p.route_ids {
                let &ix = route_ix.get(rid).ok_or_else(|| BuildError::UnknownRoute {
                    what: format!("partition {:?}", p.name),
                    route_id: *rid,
                })?;
                rs.push(ix);
            }
            partitions_c.push(PartitionC {
                name: p.name.clone(),
                routes: rs,
            });
        }

        let mut customers_c = Vec::with_capacity(customers.len());
        let mut customer_by_ban = FxHashMap::default();
        let mut customer_by_id = FxHashMap::default();
        let mut customer_by_ip: FxHashMap<IpAddr, u32> = FxHashMap::default();
        let mut customer_cidrs = Vec::new();
        for (i, c) in customers.into_iter().enumerate() {
            let i = i as u32;
            let mut parts = c.partitions.clone();
            parts.sort_by_key(|p| p.priority);
            let mut pc = Vec::with_capacity(parts.len());
            for p in parts {
                let &ix = partition_ix.get(&p.partition_id).ok_or_else(|| {
                    BuildError::UnknownPartition {
                        what: format!("customer {:?}", c.ban),
                        partition_id: p.partition_id,
                    }
                })?;
                pc.push((ix, p.window));
            }
            for net in &c.source_cidrs {
                let is_host = net.prefix_len() == net.max_prefix_len();
                let clash = if is_host {
                    customer_by_ip.insert(net.addr(), i)
                } else {
                    customer_cidrs.push((*net, i));
                    None
                };
                if let Some(other) = clash.filter(|&o| o != i) {
                    return Err(BuildError::DuplicateSource {
                        ban: c.ban.clone(),
                        other: customers_c
                            .get(other as usize)
                            .map(|o: &CustomerC| o.c.id)
                            .unwrap_or(0),
                        ip: *net,
                    });
                }
            }
            customer_by_ban.insert(c.ban.clone(), i);
            customer_by_id.insert(c.id, i);
            customers_c.push(CustomerC {
                c,
                partitions: pc,
                sell: FxHashMap::default(),
            });
        }
        customer_cidrs.sort_by_key(|c| std::cmp::Reverse(c.0.prefix_len()));
        for (cid, r) in customer_rates {
            let &ix = customer_by_id
                .get(&cid)
                .ok_or_else(|| BuildError::UnknownCustomer {
                    what: "customer rate".into(),
                    customer_id: cid,
                })?;
            customers_c[ix as usize]
                .sell
                .entry(r.prefix.clone())
                .or_default()
                .push(r);
        }
        for c in &mut customers_c {
            for v in c.sell.values_mut() {
                v.sort_by_key(|r| std::cmp::Reverse(r.effective_from));
            }
        }

        let mut overrides_c = Vec::with_capacity(overrides.len());
        for o in overrides {
            let &route = route_ix
                .get(&o.route_id)
                .ok_or_else(|| BuildError::UnknownRoute {
                    what: format!("override {}", o.id),
                    route_id: o.route_id,
                })?;
            let customer =
                match o.customer_id {
                    None => None,
                    Some(cid) => Some(*customer_by_id.get(&cid).ok_or_else(|| {
                        BuildError::UnknownCustomer {
                            what: format!("override {}", o.id),
                            customer_id: cid,
                        }
                    })?),
                };
            overrides_c.push(OverrideC {
                id: o.id,
                customer,
                prefix: o.prefix,
                route,
                rate: o.rate,
                valid_from: o.valid_from,
                valid_until: o.valid_until,
                window: o.window,
            });
        }
        overrides_c.sort_by(|a, b| {
            b.customer
                .is_some()
                .cmp(&a.customer.is_some())
                .then(b.prefix.len().cmp(&a.prefix.len()))
                .then(a.id.cmp(&b.id))
        });

        let mut exclusions_c = Vec::with_capacity(exclusions.len());
        for e in exclusions {
            let customer =
                match e.customer_id {
                    None => None,
                    Some(cid) => Some(*customer_by_id.get(&cid).ok_or_else(|| {
                        BuildError::UnknownCustomer {
                            what: format!("exclusion {}", e.id),
                            customer_id: cid,
                        }
                    })?),
                };
            let vendor = match e.vendor_id {
                None => None,
                Some(vid) => match vendor_ix.get(&vid) {
                    Some(&v) => Some(v),
                    None => {
                        warnings.push(format!("exclusion {} names unknown vendor id {vid}", e.id));
                        continue;
                    }
                },
            };
            exclusions_c.push(ExclusionC {
                customer,
                prefix: e.prefix,
                vendor,
            });
        }

        // Rates: group by key (offsets from counts), then each key's slice by route and newest
        // effective_from first.
        let nkeys = next_key as usize;
        let mut offsets = vec![0u32; nkeys + 1];
        for (k, _) in &pending {
            offsets[*k as usize + 1] += 1;
        }
        for i in 0..nkeys {
            offsets[i + 1] += offsets[i];
        }
        pending.sort_unstable_by_key(|(k, _)| *k);
        let mut entries: Vec<RateEntry> = pending.into_iter().map(|(_, e)| e).collect();
        entries.shrink_to_fit();
        for k in 0..nkeys {
            let (a, b) = (offsets[k] as usize, offsets[k + 1] as usize);
            entries[a..b].sort_unstable_by(|x, y| {
                x.route.cmp(&y.route).then(
                    terms[y.terms as usize]
                        .from
                        .cmp(&terms[x.terms as usize].from),
                )
            });
        }
        trie.shrink();

        let emergency_route = match &settings.emergency_route {
            None => None,
            Some(name) => {
                let found = routes_c.iter().position(|r| *r.name == **name);
                if found.is_none() {
                    warnings.push(format!("emergency route {name:?} does not exist"));
                }
                found.map(|i| i as RouteIx)
            }
        };

        let (npanxx, local_pairs, lnp, dno) = numbering.counts();
        let stats = SnapshotStats {
            built_at,
            vendors: vendors_c.len(),
            routes: routes_c.len(),
            partitions: partitions_c.len(),
            customers: customers_c.len(),
            rate_keys: nkeys,
            rate_entries: entries.len(),
            trie_nodes: trie.node_count(),
            overrides: overrides_c.len(),
            exclusions: exclusions_c.len(),
            npanxx,
            local_pairs,
            lnp,
            dno,
            inbound: inbound.stats(),
            warnings,
        };
        Ok(Snapshot {
            settings,
            vendors: vendors_c,
            routes: routes_c,
            partitions: partitions_c,
            customers: customers_c,
            customer_by_ban,
            customer_by_ip,
            customer_cidrs,
            rates: RateIndex {
                trie,
                ocn_lata,
                offsets,
                entries,
                terms,
            },
            overrides: overrides_c,
            exclusions: exclusions_c,
            numbering,
            emergency_route,
            inbound,
            stats,
            generation: 0,
            data_version,
        })
    }
}
