//! The compiled, immutable routing snapshot; its builder is [`builder`], its parts [`parts`].
//!
//! A snapshot is assembled from parts shared through `Arc`s (see [`parts`]): a build that
//! re-reads only the customers shares the rate index, the numbering data and the other small
//! tables' rows with the snapshot before it.
//!
//! Layout (Architecture Invariant: memory is O(rate rows) with 16 bytes per row): every vendor rate
//! of every route lives in one `Vec<RateEntry>` grouped by key (a prefix or an OCN/LATA pair).
//! One [`DigitTrie`] maps prefixes to keys for all routes; `offsets[k]..offsets[k+1]` is key k's
//! slice, sorted by route then effective_from descending. Billing terms and effective windows are
//! interned (`Terms`), rates are integers ([`Rate`] units).

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use rustc_hash::FxHashMap;
use serde::Serialize;

use super::inbound::route::{explain_inbound, InboundTrace};
use super::inbound::{
    route_inbound, Credential, CustomerRef, Directory, Inbound, InboundAnswer, InboundRequest,
    Origination, TrunkRef,
};
use super::model::*;
use super::settings::RoutingSettings;
use super::trie::DigitTrie;
use crate::numbering::NumberingData;

mod builder;
mod canonical;
mod compile;
pub mod parts;
mod rates;

pub use builder::{BuildError, SnapshotBuilder};
use parts::{CustomerRows, PolicyRows, TopologyRows};
pub use parts::{Part, PartSet};

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
    /// route ids by route index: the routes this index was built for
    pub route_ids: Vec<Id>,
}

impl RateIndex {
    /// Key `key`'s entries (sorted by route, then newest first) and the index of the first.
    pub fn key_entries(&self, key: u32) -> Option<(usize, &[RateEntry])> {
        let (a, b) = (
            *self.offsets.get(key as usize)? as usize,
            *self.offsets.get(key as usize + 1)? as usize,
        );
        Some((a, self.entries.get(a..b)?))
    }

    /// The entry of `route` under `key` effective at `now`.
    pub fn entry(&self, key: u32, route: RouteIx, now: i64) -> Option<&RateEntry> {
        let (_, slice) = self.key_entries(key)?;
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
    /// `name` as the answer carries it (shared, not copied per dip)
    pub label: Name,
    pub routes: Vec<RouteIx>,
    /// (route, its position in `routes`), sorted by route: the dip finds every route's rate
    /// entry by one merge with each matched key's entries (sorted by route too)
    pub by_route: Vec<(RouteIx, u32)>,
    /// `repeated[i]`: `routes[i]` is listed at an earlier position too
    pub repeated: Vec<bool>,
}

impl PartitionC {
    pub fn new(name: String, routes: Vec<RouteIx>) -> PartitionC {
        let mut by_route: Vec<(RouteIx, u32)> = routes
            .iter()
            .enumerate()
            .map(|(i, &r)| (r, i as u32))
            .collect();
        by_route.sort_unstable();
        let mut repeated = vec![false; routes.len()];
        for w in by_route.windows(2) {
            if w[0].0 == w[1].0 {
                repeated[w[1].1 as usize] = true;
            }
        }
        PartitionC {
            label: name.as_str().into(),
            name,
            routes,
            by_route,
            repeated,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct CustomerC {
    pub c: Customer,
    /// `c.ban` shared with the answers (an inbound answer names its customer)
    pub ban: Name,
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
    /// trunks, numbers, credentials, origination sources
    pub inbound: super::inbound::InboundStats,
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

/// The rows of the small parts, kept so that an incremental build can recompile them with the
/// parts it re-read.
#[derive(Debug, Default)]
pub(crate) struct SourceParts {
    pub topology: Arc<TopologyRows>,
    pub customers: Arc<CustomerRows>,
    pub policy: Arc<PolicyRows>,
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
    pub(crate) customer_by_id: FxHashMap<Id, u32>,
    pub(crate) customer_by_ip: FxHashMap<IpAddr, u32>,
    /// non-host CIDRs, most specific first
    pub(crate) customer_cidrs: Vec<(IpNet, u32)>,
    pub(crate) rates: Arc<RateIndex>,
    /// customer-specific first, then longer prefix first
    pub(crate) overrides: Vec<OverrideC>,
    pub(crate) exclusions: Vec<ExclusionC>,
    pub(crate) numbering: Arc<NumberingData>,
    pub(crate) emergency_route: Option<RouteIx>,
    /// trunks, numbers, credentials, origination sources (issue 19): their own part, built by
    /// their own builder from their own tables
    pub(crate) inbound: Arc<Inbound>,
    /// STIR/SHAKEN origids by customer and trunk index (issue 20), compiled on every build
    pub(crate) stir: super::stir::StirIndex,
    /// the vendors' source addresses: their enabled gateways with an IP host (topology) and
    /// the inbound part's origination sources, compiled on every build (small)
    pub(crate) origination: Origination,
    stats: SnapshotStats,
    /// Set by `Engine::install` when this snapshot goes live (0 before), so the generation and
    /// the data it names are always read together, from one `load()`.
    pub(crate) generation: u64,
    /// The routing data version the rows were read at (None: not loaded from the database).
    pub(crate) data_version: Option<i64>,
    pub(crate) parts: SourceParts,
    /// the parts this snapshot built rather than shared with the one before (all: a full build)
    pub(crate) rebuilt: PartSet,
    /// where in the database's history the rows were read (see [`SnapshotBuilder::set_source`])
    pub(crate) source: Option<String>,
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
                customer_by_id: FxHashMap::default(),
                customer_by_ip: FxHashMap::default(),
                customer_cidrs: vec![],
                rates: Arc::new(RateIndex {
                    trie: DigitTrie::default(),
                    ocn_lata: FxHashMap::default(),
                    offsets: vec![0],
                    entries: vec![],
                    terms: vec![],
                    route_ids: vec![],
                }),
                overrides: vec![],
                exclusions: vec![],
                numbering: Arc::default(),
                emergency_route: None,
                inbound: Arc::default(),
                stir: Default::default(),
                origination: Origination::default(),
                stats: SnapshotStats::default(),
                generation: 0,
                data_version: None,
                parts: SourceParts::default(),
                rebuilt: PartSet::all(),
                source: None,
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

    /// The routing data version (database `routing_data_version`) this snapshot was read at;
    /// None when it was not loaded from the database.
    pub fn data_version(&self) -> Option<i64> {
        self.data_version
    }

    /// The parts this snapshot built (all for a full build; the rest it shares with the
    /// snapshot it was built from).
    pub fn rebuilt(&self) -> PartSet {
        self.rebuilt
    }

    /// Where in the database's history its rows were read (None: not from the database).
    pub fn source(&self) -> Option<&str> {
        self.source.as_deref()
    }

    /// Whether `part` is the very same (shared) data in both snapshots.
    pub fn shares(&self, other: &Snapshot, part: Part) -> bool {
        match part {
            Part::Topology => Arc::ptr_eq(&self.parts.topology, &other.parts.topology),
            Part::Customers => Arc::ptr_eq(&self.parts.customers, &other.parts.customers),
            Part::Policy => Arc::ptr_eq(&self.parts.policy, &other.parts.policy),
            Part::Numbering => Arc::ptr_eq(&self.numbering, &other.numbering),
            Part::Rates => Arc::ptr_eq(&self.rates, &other.rates),
            Part::Inbound => Arc::ptr_eq(&self.inbound, &other.inbound),
        }
    }

    /// The NANP numbering tables this snapshot was built with.
    pub fn numbering(&self) -> &NumberingData {
        &self.numbering
    }

    /// The BAN of the customer a dip names: its `ban`, the customer of its `trunk`, or the
    /// customer whose source IPs/CIDRs (else whose trunk's source CIDRs) match its `src_ip`.
    pub fn ban_for(&self, req: &super::api_types::DipRequest) -> Option<String> {
        match &req.ban {
            Some(b) => Some(b.clone()),
            None => self
                .customer_for(None, req.trunk.as_deref(), req.src_ip)
                .map(|(_, c)| c.c.ban.to_string()),
        }
    }

    /// Whether a dip names a customer of this snapshot (by BAN, trunk, else source address).
    pub fn knows_customer(&self, req: &super::api_types::DipRequest) -> bool {
        self.customer_for(req.ban.as_deref(), req.trunk.as_deref(), req.src_ip)
            .is_some()
    }

    /// The trunks, numbers, credentials and origination sources of this snapshot.
    pub fn inbound(&self) -> &Inbound {
        &self.inbound
    }

    /// The inbound dip on this snapshot (see [`route_inbound`]).
    pub fn route_inbound(&self, req: &InboundRequest) -> InboundAnswer {
        route_inbound(&self.inbound, self, req)
    }

    /// The inbound dip with each step in words.
    pub fn explain_inbound(&self, req: &InboundRequest) -> (InboundAnswer, InboundTrace) {
        explain_inbound(&self.inbound, self, req, true)
    }

    /// Digest credentials by user and realm (an enabled trunk of an enabled customer).
    pub fn credential(&self, user: &str, realm: &str) -> Option<Credential> {
        self.inbound.credential(self, user, realm)
    }

    /// A customer trunk by name.
    pub fn trunk(&self, name: &str) -> Option<TrunkRef> {
        self.inbound.trunk(self, name)
    }

    /// The customer trunk whose source networks hold `ip`.
    pub fn trunk_by_source(&self, ip: IpAddr) -> Option<TrunkRef> {
        self.inbound.trunk_by_source(self, ip)
    }

    pub fn settings(&self) -> &RoutingSettings {
        &self.settings
    }

    /// What `ip` is to warpd (STIR/SHAKEN: whose Identity Kamailio verifies): an enabled
    /// customer's source (its own addresses, else a usable trunk's networks), else a vendor's or
    /// peer's gateway or origination network, else unknown.
    pub fn source_kind(&self, ip: IpAddr) -> super::stir::SourceKind {
        use super::stir::SourceKind;
        if self
            .customer_for(None, None, Some(ip))
            .is_some_and(|(_, c)| c.c.enabled)
        {
            SourceKind::Customer
        } else if self.origination.vendor(ip).is_some() {
            SourceKind::Vendor
        } else {
            SourceKind::Unknown
        }
    }

    /// The customer of a dip (by BAN, by trunk, else by source address: a customer source
    /// first, then a trunk source) and its index. A disabled or unknown trunk names no customer.
    pub(crate) fn customer_for(
        &self,
        ban: Option<&str>,
        trunk: Option<&str>,
        ip: Option<IpAddr>,
    ) -> Option<(u32, &CustomerC)> {
        self.identify(ban, trunk, ip).map(|(ix, c, _, _)| (ix, c))
    }

    /// [`Self::customer_for`] with the trunk the call came over (its index in the inbound part)
    /// and how the customer was identified (STIR/SHAKEN attestation, issue 20).
    pub(crate) fn identify(
        &self,
        ban: Option<&str>,
        trunk: Option<&str>,
        ip: Option<IpAddr>,
    ) -> Option<(u32, &CustomerC, Option<u32>, super::stir::Auth)> {
        use super::stir::Auth;
        let by_trunk = |t: Option<u32>| -> Option<(u32, u32)> {
            let ix = t?;
            let t = self.inbound.trunk_ref(self, ix).filter(|t| t.usable)?;
            Some((*self.customer_by_id.get(&t.customer_id)?, ix))
        };
        let (ix, trunk_ix, auth) = match (ban, trunk, ip) {
            (Some(b), _, _) => (*self.customer_by_ban.get(b)?, None, Auth::Named),
            (None, Some(t), _) => {
                let (c, t) = by_trunk(self.inbound.trunk_ix(t))?;
                (c, Some(t), Auth::Digest)
            }
            (None, None, Some(ip)) => match self.customer_by_ip.get(&ip) {
                Some(i) => (*i, None, Auth::Source),
                None => match self.customer_cidrs.iter().find(|(n, _)| n.contains(&ip)) {
                    Some((_, i)) => (*i, None, Auth::Source),
                    None => {
                        let (c, t) = by_trunk(self.inbound.trunk_ix_by_source(ip))?;
                        (c, Some(t), Auth::Source)
                    }
                },
            },
            (None, None, None) => return None,
        };
        self.customers
            .get(ix as usize)
            .map(|c| (ix, c, trunk_ix, auth))
    }
}

impl Directory for Snapshot {
    fn customer(&self, id: Id) -> Option<CustomerRef<'_>> {
        let c = self
            .customers
            .get(*self.customer_by_id.get(&id)? as usize)?;
        Some(CustomerRef {
            ban: &c.ban,
            enabled: c.c.enabled,
        })
    }

    fn vendor_by_source(&self, ip: IpAddr) -> Option<&Name> {
        self.origination.vendor(ip)
    }
}
