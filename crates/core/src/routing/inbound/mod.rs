//! Customer trunks, phone numbers (DIDs) and origination sources (issue 19): the rows the
//! loader reads ([`TrunkRow`], [`DestinationRow`], [`CredentialRow`], [`NumberRow`],
//! [`OriginationRow`]), their compiled, immutable form [`Inbound`] (one field of the
//! [`Snapshot`](super::Snapshot), built by its own [`InboundBuilder`] from its own tables, so it
//! can be rebuilt on its own), and the pure inbound procedure ([`route::route_inbound`]).
//!
//! The part names customers and vendors by id only: a customer's BAN and `enabled`, a vendor's
//! name, `enabled` and gateways are read at answer time through a [`Directory`] (the snapshot's
//! customers and topology parts), so a customers or vendors change never rebuilds this part (a
//! million numbers) and the answer is always the live customer's.
//!
//! Layout: numbers are keyed by their E.164 digits as one `u64` (at most 15 digits, never a
//! leading 0, so the integer is unique) in an `FxHashMap`: one hash and one probe per dip, about
//! 48 bytes per number (1M numbers ≈ 50 MB with the map's slack).
//!
//! Owns: trunk/number/credential look-ups, the inbound answer. Must not touch: outbound LCR
//! (see `dip`), live-call limits (the calls layer admits with the trunk's limits).

use std::net::IpAddr;

use ipnet::IpNet;
use rustc_hash::FxHashMap;
use serde::Serialize;

use super::model::{Id, Name, Rate, Transport};
use super::stir::{self, AniKind, AniOwner, Auth, IdentityIn};
use crate::numbering;

mod directory;
pub mod params;
pub mod route;
#[cfg(test)]
mod tests;

pub use directory::{CustomerRef, Directory, Origination, Peers};
pub use route::{
    route_inbound, InboundAnswer, InboundReject, InboundRejectReason, InboundRequest, InboundRoute,
};

/// Status of a number (the database's `number_status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NumberStatus {
    Active,
    Reserved,
    Disabled,
    PortingIn,
}

impl NumberStatus {
    pub const ALL: [NumberStatus; 4] = [
        NumberStatus::Active,
        NumberStatus::Reserved,
        NumberStatus::Disabled,
        NumberStatus::PortingIn,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            NumberStatus::Active => "active",
            NumberStatus::Reserved => "reserved",
            NumberStatus::Disabled => "disabled",
            NumberStatus::PortingIn => "porting-in",
        }
    }
    pub fn parse(s: &str) -> Option<NumberStatus> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// A customer trunk as stored (`trunks`).
#[derive(Clone, Debug, PartialEq)]
pub struct TrunkRow {
    pub id: Id,
    pub name: String,
    /// the owning customer (its BAN and `enabled` are the customers part's)
    pub customer_id: Id,
    pub max_calls: Option<u32>,
    pub max_cps: Option<u32>,
    pub media_policy: Option<Id>,
    pub enabled: bool,
    /// source networks (`trunk_sources`)
    pub sources: Vec<IpNet>,
}

/// Where calls to a trunk's customer go (`trunk_destinations`).
#[derive(Clone, Debug, PartialEq)]
pub struct DestinationRow {
    pub id: Id,
    pub trunk_id: Id,
    /// a URI template (`${number}` = E.164 digits); else built from host/port/transport
    pub uri: Option<String>,
    pub host: Option<String>,
    pub port: u16,
    pub transport: Transport,
    pub priority: i32,
    pub weight: u32,
    pub enabled: bool,
}

/// SIP digest credentials of a trunk (`trunk_credentials`): HA1 only, never a password.
#[derive(Clone, Debug, PartialEq)]
pub struct CredentialRow {
    pub trunk_id: Id,
    pub username: String,
    pub realm: String,
    /// 32 lower-case hex digits
    pub ha1: String,
}

/// A phone number (`numbers`).
#[derive(Clone, Debug, PartialEq)]
pub struct NumberRow {
    /// E.164 with '+'
    pub number: String,
    pub customer_id: Id,
    pub trunk_id: Option<Id>,
    pub status: NumberStatus,
    pub voice: bool,
    pub fax: bool,
    pub destination: Option<String>,
    pub inbound_rate: Rate,
    pub cnam: Option<String>,
}

/// A vendor's address inbound calls may come from (`origination_sources`). The vendor's
/// gateways whose host is an IP address count too: the snapshot adds them from its topology
/// ([`Origination`]).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct OriginationRow {
    pub vendor_id: Id,
    pub net: IpNet,
}

/// A destination compiled: its URI split around `${number}`.
#[derive(Clone, Debug)]
pub(crate) struct DestC {
    pub id: Name,
    pub head: String,
    /// None: no `${number}` in the template (the URI is `head` as is)
    pub tail: Option<String>,
    pub priority: i32,
    pub weight: u32,
}

impl DestC {
    pub fn uri(&self, digits: &str) -> String {
        match &self.tail {
            Some(t) => {
                let mut s = String::with_capacity(self.head.len() + digits.len() + t.len());
                s.push_str(&self.head);
                s.push_str(digits);
                s.push_str(t);
                s
            }
            None => self.head.clone(),
        }
    }

    fn compile(id: Name, template: &str, priority: i32, weight: u32) -> DestC {
        let (head, tail) = match template.split_once("${number}") {
            Some((h, t)) => (h.to_string(), Some(t.to_string())),
            None => (template.to_string(), None),
        };
        DestC {
            id,
            head,
            tail,
            priority,
            weight,
        }
    }
}

/// A trunk's limits on top of its customer's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TrunkLimits {
    pub max_calls: Option<u32>,
    pub max_cps: Option<u32>,
}

#[derive(Clone, Debug)]
pub(crate) struct TrunkC {
    pub name: Name,
    /// customer id (resolved through the [`Directory`])
    pub customer: Id,
    pub enabled: bool,
    pub limits: TrunkLimits,
    pub media_policy: Option<Id>,
    /// enabled destinations, by priority ascending then id
    pub dests: Vec<DestC>,
    /// the trunk's STIR/SHAKEN setting (issue 20; `stir_policies` row of the trunk)
    pub stir_cap: Option<stir::AttestCap>,
}

#[derive(Clone, Debug)]
pub(crate) struct NumberC {
    /// customer id (resolved through the [`Directory`])
    pub customer: Id,
    pub trunk: Option<u32>,
    pub status: NumberStatus,
    pub voice: bool,
    pub fax: bool,
    pub destination: Option<DestC>,
    pub rate: Rate,
    pub cnam: Option<Box<str>>,
}

#[derive(Clone, Debug)]
pub(crate) struct CredC {
    pub ha1: Box<str>,
    pub trunk: u32,
}

/// Networks to owners: exact host addresses in a map, other networks most specific first.
#[derive(Clone, Debug, Default)]
pub(crate) struct NetIndex {
    hosts: FxHashMap<IpAddr, u32>,
    nets: Vec<(IpNet, u32)>,
}

impl NetIndex {
    fn insert(&mut self, net: IpNet, owner: u32) {
        if net.prefix_len() == net.max_prefix_len() {
            self.hosts.entry(net.addr()).or_insert(owner);
        } else {
            self.nets.push((net, owner));
        }
    }
    fn finish(&mut self) {
        self.nets
            .sort_by(|a, b| b.0.prefix_len().cmp(&a.0.prefix_len()).then(a.0.cmp(&b.0)));
    }
    pub fn get(&self, ip: IpAddr) -> Option<u32> {
        let ip = ip.to_canonical();
        if let Some(o) = self.hosts.get(&ip) {
            return Some(*o);
        }
        self.nets.iter().find(|(n, _)| n.contains(&ip)).map(|x| x.1)
    }
    pub fn len(&self) -> usize {
        self.hosts.len() + self.nets.len()
    }
}

/// The key of a number: its E.164 digits as an integer (None: not 1-15 ASCII digits).
pub(crate) fn number_key(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    let mut k = 0u64;
    for d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        k = k * 10 + u64::from(d - b'0');
    }
    Some(k)
}

/// Counts of an [`Inbound`] (reload reports, metrics).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct InboundStats {
    pub trunks: usize,
    pub numbers: usize,
    pub credentials: usize,
    pub origination_sources: usize,
}

/// Trunks, numbers, credentials and origination sources, compiled. Immutable once built.
#[derive(Clone, Debug, Default)]
pub struct Inbound {
    pub(crate) trunks: Vec<TrunkC>,
    pub(crate) trunk_by_name: FxHashMap<Name, u32>,
    pub(crate) trunk_sources: NetIndex,
    pub(crate) numbers: FxHashMap<u64, NumberC>,
    pub(crate) creds: FxHashMap<(Box<str>, Box<str>), CredC>,
    /// `origination_sources` rows, sorted (compiled with the gateways into an [`Origination`])
    pub(crate) origination: Vec<OriginationRow>,
    /// STIR/SHAKEN settings and TN ranges by customer id (issue 20): keyed by id like the
    /// rest of the part, so a customers change never rebuilds it
    pub(crate) stir_customers: FxHashMap<Id, stir::CustomerStir>,
}

/// What a credential look-up answers: the trunk's HA1 and names (only for an enabled trunk of
/// an enabled customer).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Credential {
    pub ha1: String,
    pub trunk: Name,
    pub customer: Name,
}

/// A trunk as the outbound dip needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrunkRef {
    pub name: Name,
    /// the customer's BAN
    pub customer: Name,
    pub customer_id: Id,
    pub usable: bool,
    pub limits: TrunkLimits,
}

impl Inbound {
    pub fn stats(&self) -> InboundStats {
        InboundStats {
            trunks: self.trunks.len(),
            numbers: self.numbers.len(),
            credentials: self.creds.len(),
            origination_sources: self.origination.len(),
        }
    }

    /// Digest credentials by user and realm (exact, case-sensitive as SIP compares them).
    pub fn credential<D: Directory + ?Sized>(
        &self,
        dir: &D,
        user: &str,
        realm: &str,
    ) -> Option<Credential> {
        let key = (Box::<str>::from(user), Box::<str>::from(realm));
        let c = self.creds.get(&key)?;
        let t = self.trunk_ref(dir, c.trunk)?;
        t.usable.then(|| Credential {
            ha1: c.ha1.to_string(),
            trunk: t.name,
            customer: t.customer,
        })
    }

    /// A trunk, its customer resolved (None: the customer is not in the directory).
    pub(crate) fn trunk_ref<D: Directory + ?Sized>(&self, dir: &D, ix: u32) -> Option<TrunkRef> {
        let t = self.trunks.get(ix as usize)?;
        let c = dir.customer(t.customer)?;
        Some(TrunkRef {
            name: t.name.clone(),
            customer: c.ban.clone(),
            customer_id: t.customer,
            usable: t.enabled && c.enabled,
            limits: t.limits,
        })
    }

    /// A trunk by name.
    pub fn trunk<D: Directory + ?Sized>(&self, dir: &D, name: &str) -> Option<TrunkRef> {
        self.trunk_ref(dir, *self.trunk_by_name.get(name)?)
    }

    /// The trunk whose source networks contain `ip`.
    pub fn trunk_by_source<D: Directory + ?Sized>(&self, dir: &D, ip: IpAddr) -> Option<TrunkRef> {
        self.trunk_ref(dir, self.trunk_sources.get(ip)?)
    }

    /// The part as sorted text lines, its customers resolved through `dir` (tests compare an
    /// incremental build with a full one by it; see `Snapshot::canonical`).
    pub fn canonical<D: Directory + ?Sized>(&self, dir: &D) -> Vec<String> {
        let customer = |id: Id| dir.customer(id).map(|c| (c.ban.to_string(), c.enabled));
        let mut out: Vec<String> = self
            .trunks
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let dests: Vec<_> = t
                    .dests
                    .iter()
                    .map(|d| (d.id.as_str(), d.uri("N"), d.priority, d.weight))
                    .collect();
                format!(
                    "trunk {i} {} {:?} {} {:?} {:?} {dests:?} stir {:?}",
                    t.name,
                    customer(t.customer),
                    t.enabled,
                    t.limits,
                    t.media_policy,
                    t.stir_cap,
                )
            })
            .collect();
        let mut rest: Vec<String> = self
            .numbers
            .iter()
            .map(|(k, n)| {
                format!(
                    "number {k} {:?} {:?} {:?} {} {} {:?} {:?} {:?}",
                    customer(n.customer),
                    n.trunk,
                    n.status,
                    n.voice,
                    n.fax,
                    n.destination.as_ref().map(|d| d.uri("N")),
                    n.rate,
                    n.cnam
                )
            })
            .collect();
        rest.extend(
            self.creds
                .iter()
                .map(|((u, r), c)| format!("credential {u}@{r} {} {}", c.ha1, c.trunk)),
        );
        rest.extend(
            self.stir_customers
                .iter()
                .map(|(id, c)| format!("stir customer {:?} {c:?}", customer(*id))),
        );
        let src = &self.trunk_sources;
        rest.extend(
            src.hosts
                .iter()
                .map(|(ip, t)| format!("trunk source {ip} {t}")),
        );
        rest.extend(
            src.nets
                .iter()
                .map(|(n, t)| format!("trunk source {n} {t}")),
        );
        rest.sort();
        out.extend(rest);
        out
    }

    /// The `origination_sources` rows (the snapshot compiles them with the vendors' gateways).
    pub fn origination_rows(&self) -> &[OriginationRow] {
        &self.origination
    }

    /// Whether the number with key `k` is the customer's with this id (any status but
    /// disabled).
    pub(crate) fn owns_number(&self, k: u64, customer: Id) -> bool {
        self.numbers
            .get(&k)
            .is_some_and(|n| n.status != NumberStatus::Disabled && n.customer == customer)
    }

    /// The index of a trunk by name (the snapshot's STIR origids are by index).
    pub(crate) fn trunk_ix(&self, name: &str) -> Option<u32> {
        self.trunk_by_name.get(name).copied()
    }

    /// The index of the trunk whose source networks contain `ip`.
    pub(crate) fn trunk_ix_by_source(&self, ip: IpAddr) -> Option<u32> {
        self.trunk_sources.get(ip)
    }

    /// The media policy id of a trunk.
    pub fn media_policy(&self, trunk: &str) -> Option<Id> {
        let ix = *self.trunk_by_name.get(trunk)?;
        self.trunks.get(ix as usize)?.media_policy
    }
}

/// The facts of a call from the snapshot: the customer's settings, the trunk's cap, whether the
/// ANI is the customer's (`customer`: its id, as the part names customers).
pub(crate) fn stir_facts(
    inbound: &Inbound,
    customer: Id,
    trunk: Option<u32>,
    auth: Auth,
    ani: Option<&numbering::E164>,
    identity: IdentityIn,
) -> stir::Facts {
    let settings = inbound.stir_customers.get(&customer);
    let trunk_cap = trunk
        .and_then(|t| inbound.trunks.get(t as usize))
        .and_then(|t| t.stir_cap);
    let (kind, owner) = match ani {
        None => (AniKind::Invalid, AniOwner::Foreign),
        Some(e) => {
            // NANP: country code 1 (US, Canada, the Caribbean, toll-free)
            let kind = if e.digits().first() == Some(&b'1') {
                AniKind::Nanp
            } else {
                AniKind::International
            };
            let owner = match number_key(e.digits()) {
                Some(k) if inbound.owns_number(k, customer) => AniOwner::Number,
                Some(k) if settings.is_some_and(|s| s.in_range(k)) => AniOwner::Range,
                _ => AniOwner::Foreign,
            };
            (kind, owner)
        }
    };
    stir::Facts {
        auth,
        ani: kind,
        owner,
        transit: settings.is_some_and(|s| s.transit),
        customer_cap: settings.and_then(|s| s.cap),
        trunk_cap,
        identity,
    }
}

/// A customer's reject code for inbound calls failing STIR verification (issue 20).
pub(crate) fn stir_reject_code(inbound: &Inbound, customer: Id) -> Option<u16> {
    inbound
        .stir_customers
        .get(&customer)
        .and_then(|c| c.reject_code)
}

/// Why the inbound data could not be built. Each variant names the offending item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InboundBuildError {
    #[error("{what} references unknown trunk id {trunk_id}")]
    UnknownTrunk { what: String, trunk_id: Id },
    #[error("number {number:?}: not an E.164 number (+ and 7-15 digits)")]
    BadNumber { number: String },
    #[error(
        "number {number:?} belongs to customer id {customer} but its trunk {trunk:?} to customer id {owner}"
    )]
    TrunkOfOtherCustomer {
        number: String,
        customer: Id,
        trunk: String,
        owner: Id,
    },
    #[error("trunk destination id {id}: neither uri nor host")]
    EmptyDestination { id: Id },
    #[error(transparent)]
    Stir(#[from] stir::StirBuildError),
}

/// Collects the rows (any order) and compiles them into an [`Inbound`].
#[derive(Default)]
pub struct InboundBuilder {
    trunks: Vec<TrunkRow>,
    dests: Vec<DestinationRow>,
    creds: Vec<CredentialRow>,
    numbers: Vec<NumberRow>,
    origination: Vec<OriginationRow>,
    stir_policies: Vec<stir::StirPolicyRow>,
    tn_ranges: Vec<stir::TnRangeRow>,
}

impl InboundBuilder {
    /// A `stir_policies` row (issue 20).
    pub fn stir_policy(&mut self, p: stir::StirPolicyRow) {
        self.stir_policies.push(p);
    }
    /// A `stir_tn_ranges` row (issue 20).
    pub fn tn_range(&mut self, r: stir::TnRangeRow) {
        self.tn_ranges.push(r);
    }
    pub fn new() -> InboundBuilder {
        InboundBuilder::default()
    }
    pub fn trunk(&mut self, t: TrunkRow) {
        self.trunks.push(t);
    }
    pub fn destination(&mut self, d: DestinationRow) {
        self.dests.push(d);
    }
    pub fn credential(&mut self, c: CredentialRow) {
        self.creds.push(c);
    }
    pub fn number(&mut self, n: NumberRow) {
        self.numbers.push(n);
    }
    pub fn reserve_numbers(&mut self, n: usize) {
        self.numbers.reserve(n);
    }
    pub fn origination(&mut self, o: OriginationRow) {
        self.origination.push(o);
    }

    pub fn build(self) -> Result<Inbound, InboundBuildError> {
        let mut ib = Inbound::default();
        let mut by_id: FxHashMap<Id, u32> = FxHashMap::default();
        let mut trunks = self.trunks;
        trunks.sort_by_key(|t| t.id);
        for t in &trunks {
            let ix = ib.trunks.len() as u32;
            by_id.insert(t.id, ix);
            let name = Name::from(t.name.as_str());
            ib.trunk_by_name.insert(name.clone(), ix);
            for net in &t.sources {
                ib.trunk_sources.insert(*net, ix);
            }
            ib.trunks.push(TrunkC {
                name,
                customer: t.customer_id,
                enabled: t.enabled,
                limits: TrunkLimits {
                    max_calls: t.max_calls,
                    max_cps: t.max_cps,
                },
                media_policy: t.media_policy,
                dests: vec![],
                stir_cap: None,
            });
        }
        ib.trunk_sources.finish();
        let mut dests = self.dests;
        dests.sort_by_key(|d| (d.priority, d.id));
        for d in dests {
            let ix = *by_id
                .get(&d.trunk_id)
                .ok_or_else(|| InboundBuildError::UnknownTrunk {
                    what: format!("trunk destination id {}", d.id),
                    trunk_id: d.trunk_id,
                })?;
            if !d.enabled {
                continue;
            }
            let template = match (&d.uri, &d.host) {
                (Some(u), _) => u.clone(),
                (None, Some(h)) => format!(
                    "sip:+${{number}}@{h}:{};transport={}",
                    d.port,
                    d.transport.as_str()
                ),
                (None, None) => return Err(InboundBuildError::EmptyDestination { id: d.id }),
            };
            let dest = DestC::compile(
                Name::from(d.id.to_string()),
                &template,
                d.priority,
                d.weight,
            );
            ib.trunks[ix as usize].dests.push(dest);
        }
        for c in self.creds {
            let ix = *by_id
                .get(&c.trunk_id)
                .ok_or_else(|| InboundBuildError::UnknownTrunk {
                    what: format!("credentials {:?}@{:?}", c.username, c.realm),
                    trunk_id: c.trunk_id,
                })?;
            ib.creds.insert(
                (c.username.into(), c.realm.into()),
                CredC {
                    ha1: c.ha1.into(),
                    trunk: ix,
                },
            );
        }
        ib.numbers.reserve(self.numbers.len());
        for n in self.numbers {
            let key = n
                .number
                .strip_prefix('+')
                .and_then(|d| number_key(d.as_bytes()))
                .ok_or_else(|| InboundBuildError::BadNumber {
                    number: crate::excerpt::excerpt(&n.number),
                })?;
            let trunk = match n.trunk_id {
                None => None,
                Some(id) => {
                    let ix = *by_id
                        .get(&id)
                        .ok_or_else(|| InboundBuildError::UnknownTrunk {
                            what: format!("number {}", crate::numbering::mask(&n.number)),
                            trunk_id: id,
                        })?;
                    let owner = &ib.trunks[ix as usize];
                    if owner.customer != n.customer_id {
                        return Err(InboundBuildError::TrunkOfOtherCustomer {
                            number: crate::numbering::mask(&n.number),
                            customer: n.customer_id,
                            trunk: owner.name.to_string(),
                            owner: owner.customer,
                        });
                    }
                    Some(ix)
                }
            };
            let destination = n
                .destination
                .as_deref()
                .map(|u| DestC::compile(Name::from("number"), u, 0, 1));
            ib.numbers.insert(
                key,
                NumberC {
                    customer: n.customer_id,
                    trunk,
                    status: n.status,
                    voice: n.voice,
                    fax: n.fax,
                    destination,
                    rate: n.inbound_rate,
                    cnam: n.cnam.map(Into::into),
                },
            );
        }
        let mut origination = self.origination;
        origination.sort();
        origination.dedup();
        ib.origination = origination;
        let (customers, trunk_caps) = stir::compile_rows(self.stir_policies, self.tn_ranges)?;
        ib.stir_customers = customers;
        for (id, cap) in trunk_caps {
            let ix = *by_id
                .get(&id)
                .ok_or_else(|| InboundBuildError::UnknownTrunk {
                    what: "stir_policies row".into(),
                    trunk_id: id,
                })?;
            ib.trunks[ix as usize].stir_cap = Some(cap);
        }
        Ok(ib)
    }
}
