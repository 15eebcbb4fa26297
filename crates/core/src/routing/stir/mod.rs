//! STIR/SHAKEN (issue 20): which attestation an outbound call gets ([`decide`], pure and
//! table-tested), the settings it reads (per customer and trunk: [`StirPolicyRow`], the
//! customer's TN ranges: [`TnRangeRow`], compiled into the snapshot's inbound part), the stable
//! origination identifiers ([`StirIndex`]: one UUIDv5 per customer and per trunk) and the answer
//! Kamailio signs from ([`StirAnswer`]). Kamailio signs (secsipid); warpd never sees a key here.
//!
//! The rules (docs/STIR.md):
//! 1. a call that arrives with an Identity header Kamailio verified (`identity=valid`) keeps it:
//!    no re-signing;
//! 2. a customer or trunk whose setting is `off` is not signed; neither is an ANI that is not a
//!    telephone number;
//! 3. `C` (gateway) for transit traffic (a customer marked `transit`: a peer whose calls warpd
//!    re-originates) and for an international (non-NANP) ANI;
//! 4. `A` (full) when the customer is authenticated (its source address, a trunk's CIDR or
//!    digest credentials, or named by Kamailio) and the ANI is one of its numbers or in one of its
//!    TN ranges; `B` (partial) when the ANI is not theirs;
//! 5. the lower of the customer's and the trunk's caps (`max_attest`) applies last.
//!
//! Owns: the decision and its explanation. Must not touch: signing, keys, I/O.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::model::Id;
pub use uuid::Uuid;

pub mod source;
#[cfg(test)]
mod tests;
pub mod verify;

pub use source::{SourceAnswer, SourceKind};

/// A SHAKEN attestation level, ordered `C < B < A`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Attest {
    C,
    B,
    A,
}

impl Attest {
    pub fn as_str(self) -> &'static str {
        match self {
            Attest::A => "A",
            Attest::B => "B",
            Attest::C => "C",
        }
    }
    pub fn parse(s: &str) -> Option<Attest> {
        match s {
            "A" => Some(Attest::A),
            "B" => Some(Attest::B),
            "C" => Some(Attest::C),
            _ => None,
        }
    }
}

/// A customer's or trunk's setting: the highest attestation its calls get, or no signing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttestCap {
    Max(Attest),
    Off,
}

impl AttestCap {
    /// The stored text: `A`, `B`, `C` or `off`.
    pub fn as_str(self) -> &'static str {
        match self {
            AttestCap::Max(a) => a.as_str(),
            AttestCap::Off => "off",
        }
    }
    pub fn parse(s: &str) -> Option<AttestCap> {
        match s {
            "off" => Some(AttestCap::Off),
            _ => Attest::parse(s).map(AttestCap::Max),
        }
    }
}

/// What Kamailio says about an Identity header the customer's INVITE carried (dip parameter
/// `identity`): absent, verified valid, or present but failing verification.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentityIn {
    #[default]
    None,
    Valid,
    Invalid,
}

impl IdentityIn {
    pub fn parse(s: &str) -> Option<IdentityIn> {
        match s {
            "" | "none" => Some(IdentityIn::None),
            "valid" => Some(IdentityIn::Valid),
            "invalid" => Some(IdentityIn::Invalid),
            _ => None,
        }
    }
}

/// How the dip identified the customer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    /// the source address is the customer's (its own or one of its trunks' CIDRs)
    Source,
    /// a trunk authenticated by SIP digest credentials
    Digest,
    /// Kamailio named the customer (`ban`; the dip-as policy allows that source to)
    Named,
}

impl Auth {
    fn describe(self) -> &'static str {
        match self {
            Auth::Source => "authenticated by its source address",
            Auth::Digest => "authenticated by digest credentials",
            Auth::Named => "named by Kamailio",
        }
    }
}

/// What the ANI is to the customer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AniOwner {
    /// one of its numbers (`numbers`, not disabled)
    Number,
    /// in one of its TN ranges (`stir_tn_ranges`)
    Range,
    /// not the customer's
    Foreign,
}

/// The ANI's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AniKind {
    /// not an E.164 number
    Invalid,
    /// a NANP number (US, Canada, the Caribbean, toll-free)
    Nanp,
    /// a number outside the NANP
    International,
}

/// Where a cap or an `off` setting comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Customer,
    Trunk,
}

impl Scope {
    fn as_str(self) -> &'static str {
        match self {
            Scope::Customer => "customer",
            Scope::Trunk => "trunk",
        }
    }
}

/// Everything [`decide`] reads: facts about one call, gathered from the snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Facts {
    pub auth: Auth,
    pub ani: AniKind,
    pub owner: AniOwner,
    pub transit: bool,
    pub customer_cap: Option<AttestCap>,
    pub trunk_cap: Option<AttestCap>,
    pub identity: IdentityIn,
}

/// What happens to the call's Identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Kamailio signs with this attestation
    Sign(Attest),
    /// the upstream Identity Kamailio verified goes on unchanged
    Keep,
    /// no Identity header
    Unsigned,
}

/// Why: the basis of the level before caps, and the cap that lowered it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Basis {
    UpstreamIdentity,
    Off(Scope),
    AniInvalid,
    Transit,
    InternationalAni,
    Owned(AniOwner, Auth),
    Foreign(Auth),
}

/// [`decide`]'s result: the decision and its explanation (`Display`: the simulation's text).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub decision: Decision,
    pub basis: Basis,
    /// the cap that lowered the level, and the level before it
    pub capped: Option<(Scope, Attest)>,
    /// the customer's Identity failed verification: Kamailio removes it and signs its own
    pub replaced: bool,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.decision {
            Decision::Sign(a) => write!(f, "attest {}: ", a.as_str())?,
            Decision::Keep => f.write_str("keep: ")?,
            Decision::Unsigned => f.write_str("not signed: ")?,
        }
        match self.basis {
            Basis::UpstreamIdentity => {
                f.write_str("the call carries an Identity header Kamailio verified")?
            }
            Basis::Off(s) => write!(f, "signing is off for this {}", s.as_str())?,
            Basis::AniInvalid => f.write_str("the ANI is not a telephone number")?,
            Basis::Transit => f.write_str("transit traffic from a peer (gateway attestation)")?,
            Basis::InternationalAni => {
                f.write_str("the ANI is international (gateway attestation)")?
            }
            Basis::Owned(o, a) => write!(
                f,
                "the customer is {} and the ANI is {}",
                a.describe(),
                match o {
                    AniOwner::Number => "one of its numbers",
                    AniOwner::Range => "in one of its TN ranges",
                    AniOwner::Foreign => "not its own",
                }
            )?,
            Basis::Foreign(a) => write!(
                f,
                "the customer is {} but the ANI is none of its numbers or TN ranges",
                a.describe()
            )?,
        }
        if let Some((s, before)) = self.capped {
            write!(
                f,
                "; {} capped by the {} setting",
                before.as_str(),
                s.as_str()
            )?;
        }
        if self.replaced {
            f.write_str("; the customer's Identity header failed verification and is replaced")?;
        }
        Ok(())
    }
}

/// The attestation procedure: a pure function of the call's facts (the rules in the module
/// documentation, in that order).
pub fn decide(f: &Facts) -> Verdict {
    let verdict = |decision, basis| Verdict {
        decision,
        basis,
        capped: None,
        replaced: f.identity == IdentityIn::Invalid,
    };
    if f.identity == IdentityIn::Valid {
        return Verdict {
            replaced: false,
            ..verdict(Decision::Keep, Basis::UpstreamIdentity)
        };
    }
    if f.customer_cap == Some(AttestCap::Off) {
        return verdict(Decision::Unsigned, Basis::Off(Scope::Customer));
    }
    if f.trunk_cap == Some(AttestCap::Off) {
        return verdict(Decision::Unsigned, Basis::Off(Scope::Trunk));
    }
    let (level, basis) = match (f.ani, f.transit, f.owner) {
        (AniKind::Invalid, _, _) => return verdict(Decision::Unsigned, Basis::AniInvalid),
        (_, true, _) => (Attest::C, Basis::Transit),
        (AniKind::International, false, _) => (Attest::C, Basis::InternationalAni),
        (AniKind::Nanp, false, AniOwner::Foreign) => (Attest::B, Basis::Foreign(f.auth)),
        (AniKind::Nanp, false, o) => (Attest::A, Basis::Owned(o, f.auth)),
    };
    let mut out = verdict(Decision::Sign(level), basis);
    let mut capped = level;
    for (scope, cap) in [
        (Scope::Customer, f.customer_cap),
        (Scope::Trunk, f.trunk_cap),
    ] {
        if let Some(AttestCap::Max(m)) = cap {
            if m < capped {
                capped = m;
                out.capped = Some((scope, level));
            }
        }
    }
    out.decision = Decision::Sign(capped);
    out
}

/// The `stir` of a dip answer: sign with this attestation and origid, or keep the upstream
/// Identity. Absent from the answer: no Identity header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StirAnswer {
    Sign {
        attest: Attest,
        origid: uuid::Uuid,
        /// the PASSporT's `orig.tn`: the ANI in canonical form (E.164 digits, no `+`)
        orig: Tn,
        /// the PASSporT's `dest.tn`: the dialed number in canonical form (E.164 digits, or the
        /// dialed digits of a short code such as 911)
        dest: Tn,
    },
    Keep,
}

/// The RESP fields of a `stir` answer (README "Dip over RESP"), each `""` when not signing.
pub struct StirFields<'a> {
    pub attest: &'static str,
    pub origid: String,
    pub orig: &'a str,
    pub dest: &'a str,
}

impl StirAnswer {
    /// RESP fields: the attestation (`A`/`B`/`C`, `keep`), origid, orig and dest TNs.
    pub fn resp_fields(&self) -> StirFields<'_> {
        match self {
            StirAnswer::Sign {
                attest,
                origid,
                orig,
                dest,
            } => StirFields {
                attest: attest.as_str(),
                origid: origid.to_string(),
                orig: orig.as_str(),
                dest: dest.as_str(),
            },
            StirAnswer::Keep => StirFields {
                attest: "keep",
                origid: String::new(),
                orig: "",
                dest: "",
            },
        }
    }
}

impl Serialize for StirAnswer {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        match self {
            StirAnswer::Sign {
                attest,
                origid,
                orig,
                dest,
            } => {
                m.serialize_entry("attest", attest.as_str())?;
                let mut buf = uuid::Uuid::encode_buffer();
                m.serialize_entry("origid", origid.hyphenated().encode_lower(&mut buf))?;
                m.serialize_entry("orig", orig.as_str())?;
                m.serialize_entry("dest", dest.as_str())?;
            }
            StirAnswer::Keep => m.serialize_entry("keep", &true)?,
        }
        m.end()
    }
}

/// A `stir_policies` row (customer setting when `trunk_id` is None).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StirPolicyRow {
    /// the customer's id (the inbound part names customers by id only)
    pub customer_id: Id,
    pub trunk_id: Option<Id>,
    pub max_attest: AttestCap,
    pub transit: bool,
    pub verify_reject_code: Option<u16>,
}

/// A `stir_tn_ranges` row: inclusive, E.164 with `+`, both of one length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TnRangeRow {
    pub customer_id: Id,
    pub first: String,
    pub last: String,
}

/// A customer's STIR settings, compiled.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CustomerStir {
    pub cap: Option<AttestCap>,
    pub transit: bool,
    /// inbound calls failing verification are refused with this code (436/437/438)
    pub reject_code: Option<u16>,
    /// inclusive number-key ranges, sorted, not overlapping
    pub(crate) ranges: Vec<(u64, u64)>,
}

impl CustomerStir {
    pub(crate) fn in_range(&self, key: u64) -> bool {
        let i = self.ranges.partition_point(|r| r.1 < key);
        self.ranges.get(i).is_some_and(|r| r.0 <= key)
    }
}

/// Why the STIR rows could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StirBuildError {
    #[error("stir_tn_ranges of customer id {customer}: {first:?}-{last:?} is not a range of E.164 numbers of one length")]
    BadRange {
        customer: Id,
        first: String,
        last: String,
    },
}

/// The key of a range bound (`+` and digits); None when not E.164.
pub(crate) fn range_key(tn: &str) -> Option<u64> {
    let d = tn.strip_prefix('+')?;
    if !(7..=15).contains(&d.len()) || d.starts_with('0') || !d.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    d.parse().ok()
}

/// Per-customer settings (by customer id) and per-trunk caps (by trunk id).
pub(crate) type CompiledRows = (
    rustc_hash::FxHashMap<Id, CustomerStir>,
    rustc_hash::FxHashMap<Id, AttestCap>,
);

/// Compiles the policy rows and ranges into per-customer settings and per-trunk caps (by trunk
/// id). Called by the inbound builder.
pub(crate) fn compile_rows(
    policies: Vec<StirPolicyRow>,
    ranges: Vec<TnRangeRow>,
) -> Result<CompiledRows, StirBuildError> {
    let mut customers: rustc_hash::FxHashMap<Id, CustomerStir> = Default::default();
    let mut trunks: rustc_hash::FxHashMap<Id, AttestCap> = Default::default();
    for p in policies {
        match p.trunk_id {
            Some(t) => {
                trunks.insert(t, p.max_attest);
            }
            None => {
                let c = customers.entry(p.customer_id).or_default();
                c.cap = Some(p.max_attest);
                c.transit = p.transit;
                c.reject_code = p.verify_reject_code;
            }
        }
    }
    for r in ranges {
        let (Some(a), Some(b)) = (range_key(&r.first), range_key(&r.last)) else {
            return Err(StirBuildError::BadRange {
                customer: r.customer_id,
                first: crate::excerpt::excerpt(&r.first),
                last: crate::excerpt::excerpt(&r.last),
            });
        };
        if r.first.len() != r.last.len() || a > b {
            return Err(StirBuildError::BadRange {
                customer: r.customer_id,
                first: crate::excerpt::excerpt(&r.first),
                last: crate::excerpt::excerpt(&r.last),
            });
        }
        customers
            .entry(r.customer_id)
            .or_default()
            .ranges
            .push((a, b));
    }
    for c in customers.values_mut() {
        c.ranges.sort_unstable();
    }
    Ok((customers, trunks))
}

/// The namespace origids are derived from when the config names none.
pub const DEFAULT_ORIGID_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x5f1b_3c2e_8d4a_4e7b_9a61_2c0d_7e5f_a913);

/// The origid of a customer (`customer:<BAN>`) or trunk (`trunk:<name>`): UUIDv5 in the
/// configured namespace, so the same customer or trunk always signs with the same origid, across
/// reloads, restarts and warpd instances sharing the namespace.
pub fn origid(namespace: &uuid::Uuid, kind: &str, name: &str) -> uuid::Uuid {
    let mut key = String::with_capacity(kind.len() + 1 + name.len());
    key.push_str(kind);
    key.push(':');
    key.push_str(name);
    uuid::Uuid::new_v5(namespace, key.as_bytes())
}

/// Origids compiled once per snapshot build: by customer index and by trunk index.
#[derive(Clone, Debug, Default)]
pub struct StirIndex {
    pub(crate) customers: Vec<uuid::Uuid>,
    pub(crate) trunks: Vec<uuid::Uuid>,
}

impl StirIndex {
    pub(crate) fn compile<'a>(
        namespace: &uuid::Uuid,
        customer_bans: impl Iterator<Item = &'a str>,
        trunk_names: impl Iterator<Item = &'a str>,
    ) -> StirIndex {
        StirIndex {
            customers: customer_bans
                .map(|b| origid(namespace, "customer", b))
                .collect(),
            trunks: trunk_names.map(|t| origid(namespace, "trunk", t)).collect(),
        }
    }
}

/// The answer of a verdict: Sign with the trunk's origid when the call came over a trunk, else
/// the customer's; `orig`/`dest` the canonical TNs (computed only when signing).
pub(crate) fn answer(
    v: &Verdict,
    index: &StirIndex,
    customer_ix: u32,
    trunk: Option<u32>,
    tns: impl FnOnce() -> (Tn, Tn),
) -> Option<StirAnswer> {
    match v.decision {
        Decision::Unsigned => None,
        Decision::Keep => Some(StirAnswer::Keep),
        Decision::Sign(attest) => {
            let origid = trunk
                .and_then(|t| index.trunks.get(t as usize))
                .or_else(|| index.customers.get(customer_ix as usize))
                .copied()
                .unwrap_or_default();
            let (orig, dest) = tns();
            Some(StirAnswer::Sign {
                attest,
                origid,
                orig,
                dest,
            })
        }
    }
}

/// A telephone number in the PASSporT's canonical form (RFC 8224 §8.3): E.164 digits without
/// `+`, or the dialed digits of a number that is not E.164 (a short code); at most 15 digits,
/// held inline (no allocation on the dip path).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Tn {
    len: u8,
    digits: [u8; 15],
}

impl Tn {
    fn from_digits(d: impl Iterator<Item = u8>) -> Tn {
        let mut t = Tn {
            len: 0,
            digits: [0; 15],
        };
        for b in d.filter(u8::is_ascii_digit).take(15) {
            t.digits[t.len as usize] = b;
            t.len += 1;
        }
        t
    }
    pub fn as_str(&self) -> &str {
        // only ASCII digits are ever stored
        std::str::from_utf8(&self.digits[..self.len as usize]).unwrap_or("")
    }
}

impl fmt::Debug for Tn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl From<&crate::numbering::E164> for Tn {
    fn from(e: &crate::numbering::E164) -> Tn {
        Tn::from_digits(e.digits().iter().copied())
    }
}

/// A number in the PASSporT's canonical form (see [`Tn`]).
pub fn canonical_tn(s: &str) -> Tn {
    match crate::numbering::normalize(s) {
        Some(e) => Tn::from(&e),
        None => Tn::from_digits(s.bytes()),
    }
}

/// The shared name of a trunk's origid kind (`trunk:<name>`), for documentation and tests.
pub fn trunk_origid(namespace: &uuid::Uuid, trunk: &str) -> uuid::Uuid {
    origid(namespace, "trunk", trunk)
}

/// A customer's origid (`customer:<BAN>`).
pub fn customer_origid(namespace: &uuid::Uuid, ban: &str) -> uuid::Uuid {
    origid(namespace, "customer", ban)
}
