//! The compiled, immutable routing snapshot and its builder.
//!
//! Layout (Architecture Invariant: memory is O(rate rows) with 16 bytes per row): every vendor rate
//! of every route lives in one `Vec<RateEntry>` grouped by key (a prefix or an OCN/LATA pair).
//! One [`DigitTrie`] maps prefixes to keys for all routes; `offsets[k]..offsets[k+1]` is key k's
//! slice, sorted by route then effective_from descending. Billing terms and effective windows are
//! interned (`Terms`), rates are integers ([`Rate`] units).

use std::net::IpAddr;

use ipnet::IpNet;
use rustc_hash::FxHashMap;
use serde::Serialize;

use super::model::*;
use super::settings::RoutingSettings;
use super::trie::DigitTrie;
use crate::numbering::{NumberingData, NumberingError};

/// In-memory marker for "no rate in this zone".
pub(crate) const NO_RATE: u32 = u32::MAX;

pub(crate) type RouteIx = u16;

#[derive(Clone, Copy, Debug)]
pub(crate) struct RateEntry {
    pub route: RouteIx,
    pub terms: u16,
    /// interstate, intrastate, local
    pub rates: [u32; 3],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Terms {
    pub min: u16,
    pub inc: u16,
    pub from: i64,
    pub until: i64,
}

impl Terms {
    pub fn effective(&self, now: i64) -> bool {
        self.from <= now && now < self.until
    }
}

#[derive(Debug)]
pub(crate) struct RateIndex {
    pub trie: DigitTrie,
    /// key "OCN|LATA"
    pub ocn_lata: FxHashMap<Box<str>, u32>,
    pub offsets: Vec<u32>,
    pub entries: Vec<RateEntry>,
    pub terms: Vec<Terms>,
}

impl RateIndex {
    /// The entry of `route` under `key` effective at `now`.
    pub fn entry(&self, key: u32, route: RouteIx, now: i64) -> Option<&RateEntry> {
        let (a, b) = (
            *self.offsets.get(key as usize)? as usize,
            *self.offsets.get(key as usize + 1)? as usize,
        );
        let slice = self.entries.get(a..b)?;
        let start = slice.partition_point(|e| e.route < route);
        slice[start..]
            .iter()
            .take_while(|e| e.route == route)
            .find(|e| self.terms[e.terms as usize].effective(now))
    }

    /// Key id of an OCN/LATA pair, without allocating.
    pub fn ocn_lata_key(&self, ocn: &str, lata: &str) -> Option<u32> {
        let mut buf = [0u8; 64];
        let n = ocn.len() + 1 + lata.len();
        let b = buf.get_mut(..n)?;
        b[..ocn.len()].copy_from_slice(ocn.as_bytes());
        b[ocn.len()] = b'|';
        b[ocn.len() + 1..].copy_from_slice(lata.as_bytes());
        self.ocn_lata.get(std::str::from_utf8(b).ok()?).copied()
    }

    pub fn terms(&self, e: &RateEntry) -> &Terms {
        &self.terms[e.terms as usize]
    }
}

/// A gateway compiled to a dialstring split around `${number}`.
#[derive(Clone, Debug)]
pub(crate) struct GatewayC {
    pub head: String,
    pub tail: String,
    pub priority: i32,
    pub weight: u32,
}

#[derive(Clone, Debug)]
pub(crate) struct RouteC {
    pub name: Name,
    pub vendor: usize,
    pub priority: i32,
    pub weight: u32,
    #[allow(dead_code)]
    pub capacity: Option<u32>,
    pub enabled: bool,
    /// enabled gateways sorted by priority asc, weight desc
    pub gateways: Vec<GatewayC>,
    /// rank of this route by (priority asc, weight desc, name asc): the dip's tie-break between
    /// equal rates, precomputed so ordering compares integers only
    pub order: u32,
}

#[derive(Clone, Debug)]
pub(crate) struct VendorC {
    pub name: Name,
    pub billing: BillingModel,
    pub enabled: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct PartitionC {
    pub name: String,
    pub routes: Vec<RouteIx>,
}

#[derive(Clone, Debug)]
pub(crate) struct CustomerC {
    pub c: Customer,
    /// (partition index, window), by priority
    pub partitions: Vec<(usize, Option<TimeWindow>)>,
    /// sell deck by prefix
    pub sell: FxHashMap<String, Vec<CustomerRate>>,
}

#[derive(Clone, Debug)]
pub(crate) struct OverrideC {
    pub id: Id,
    pub customer: Option<u32>,
    pub prefix: String,
    pub route: RouteIx,
    pub rate: Option<Rate>,
    pub valid_from: i64,
    pub valid_until: i64,
    pub window: Option<TimeWindow>,
}

#[derive(Clone, Debug)]
pub(crate) struct ExclusionC {
    pub customer: Option<u32>,
    pub prefix: String,
    pub vendor: Option<usize>,
}

/// Counts describing a snapshot (metrics, `warpd.health`, reload reports).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SnapshotStats {
    pub built_at: i64,
    pub vendors: usize,
    pub routes: usize,
    pub partitions: usize,
    pub customers: usize,
    pub rate_keys: usize,
    pub rate_entries: usize,
    pub trie_nodes: usize,
    pub overrides: usize,
    pub exclusions: usize,
    pub npanxx: usize,
    pub local_pairs: usize,
    pub lnp: usize,
    pub dno: usize,
    /// non-fatal problems found while building (e.g. the emergency route does not exist)
    pub warnings: Vec<String>,
}

impl SnapshotStats {
    pub fn sizes(&self) -> [(&'static str, usize); 12] {
        [
            ("vendors", self.vendors),
            ("routes", self.routes),
            ("partitions", self.partitions),
            ("customers", self.customers),
            ("rate_keys", self.rate_keys),
            ("rate_entries", self.rate_entries),
            ("overrides", self.overrides),
            ("exclusions", self.exclusions),
            ("npanxx", self.npanxx),
            ("local_pairs", self.local_pairs),
            ("lnp", self.lnp),
            ("dno", self.dno),
        ]
    }
}

/// The immutable routing data a dip reads. Built by [`SnapshotBuilder`].
#[derive(Debug)]
pub struct Snapshot {
    pub(crate) settings: RoutingSettings,
    pub(crate) vendors: Vec<VendorC>,
    pub(crate) routes: Vec<RouteC>,
    pub(crate) partitions: Vec<PartitionC>,
    pub(crate) customers: Vec<CustomerC>,
    pub(crate) customer_by_ban: FxHashMap<String, u32>,
    pub(crate) customer_by_ip: FxHashMap<IpAddr, u32>,
    /// non-host CIDRs, most specific first
    pub(crate) customer_cidrs: Vec<(IpNet, u32)>,
    pub(crate) rates: RateIndex,
    /// customer-specific first, then longer prefix first
    pub(crate) overrides: Vec<OverrideC>,
    pub(crate) exclusions: Vec<ExclusionC>,
    pub(crate) numbering: NumberingData,
    pub(crate) emergency_route: Option<RouteIx>,
    stats: SnapshotStats,
    /// Set by `Engine::install` when this snapshot goes live (0 before), so the generation and
    /// the data it names are always read together, from one `load()`.
    pub(crate) generation: u64,
}

impl Snapshot {
    /// An empty snapshot (no customers: every dip is rejected). Used before the first load.
    pub fn empty(settings: RoutingSettings) -> Snapshot {
        match SnapshotBuilder::new(settings.clone()).build(0) {
            Ok(s) => s,
            // an empty builder has nothing that can fail; keep a total fallback anyway
            Err(_) => Snapshot {
                settings,
                vendors: vec![],
                routes: vec![],
                partitions: vec![],
                customers: vec![],
                customer_by_ban: FxHashMap::default(),
                customer_by_ip: FxHashMap::default(),
                customer_cidrs: vec![],
                rates: RateIndex {
                    trie: DigitTrie::default(),
                    ocn_lata: FxHashMap::default(),
                    offsets: vec![0],
                    entries: vec![],
                    terms: vec![],
                },
                overrides: vec![],
                exclusions: vec![],
                numbering: NumberingData::default(),
                emergency_route: None,
                stats: SnapshotStats::default(),
                generation: 0,
            },
        }
    }

    pub fn stats(&self) -> SnapshotStats {
        self.stats.clone()
    }

    /// The generation this snapshot was installed as (`Engine::install`); 0 if never installed.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The NANP numbering tables this snapshot was built with.
    pub fn numbering(&self) -> &NumberingData {
        &self.numbering
    }

    /// The BAN of the customer a dip names: its `ban`, or the customer whose source IPs/CIDRs
    /// match its `src_ip`.
    pub fn ban_for(&self, req: &super::api_types::DipRequest) -> Option<String> {
        match &req.ban {
            Some(b) => Some(b.clone()),
            None => self
                .customer_for(None, req.src_ip)
                .map(|(_, c)| c.c.ban.to_string()),
        }
    }

    pub fn settings(&self) -> &RoutingSettings {
        &self.settings
    }

    /// The customer of a dip (by BAN, else by source address) and its index.
    pub(crate) fn customer_for(
        &self,
        ban: Option<&str>,
        ip: Option<IpAddr>,
    ) -> Option<(u32, &CustomerC)> {
        let ix = match (ban, ip) {
            (Some(b), _) => *self.customer_by_ban.get(b)?,
            (None, Some(ip)) => match self.customer_by_ip.get(&ip) {
                Some(i) => *i,
                None => self.customer_cidrs.iter().find(|(n, _)| n.contains(&ip))?.1,
            },
            (None, None) => return None,
        };
        self.customers.get(ix as usize).map(|c| (ix, c))
    }
}

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
        }
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
            stats,
            generation: 0,
        })
    }
}
