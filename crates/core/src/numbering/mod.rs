//! Numbering: E.164 normalization and classification of dialed/calling numbers, and the NANP
//! reference tables (NPA-NXX(-X) blocks, local-calling pairs, LNP, DNO) held in a routing snapshot.
//!
//! Owns: number syntax and NANP facts. Must not touch: I/O, routing policy, customers.
//! Architecture Invariant: every function here is pure and allocation-light; it runs on the dip path.

pub mod nanp_countries;

use std::fmt;

use rustc_hash::{FxHashMap, FxHashSet};

/// A normalized number: E.164 digits without the leading '+', at most 15 digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct E164 {
    len: u8,
    digits: [u8; 15],
}

impl E164 {
    fn from_digits(d: &[u8]) -> Option<E164> {
        if d.is_empty() || d.len() > 15 || !d.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let mut digits = [0u8; 15];
        digits[..d.len()].copy_from_slice(d);
        Some(E164 {
            len: d.len() as u8,
            digits,
        })
    }

    /// The ASCII digits, e.g. b"12125551234".
    pub fn digits(&self) -> &[u8] {
        &self.digits[..self.len as usize]
    }

    pub fn as_str(&self) -> &str {
        // only ASCII digits are ever stored
        std::str::from_utf8(self.digits()).unwrap_or("")
    }

    /// True for +1 followed by a valid 10-digit NANP number.
    pub fn is_nanp(&self) -> bool {
        self.len == 11 && self.digits[0] == b'1' && valid_nanp10(&self.digits[1..11])
    }

    /// The 10-digit national number of a NANP E.164.
    pub fn nanp10(&self) -> Option<&[u8]> {
        self.is_nanp().then(|| &self.digits[1..11])
    }
}

impl fmt::Debug for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "+{}", self.as_str())
    }
}

/// NPA and NXX must start with 2-9.
fn valid_nanp10(d: &[u8]) -> bool {
    d.len() == 10 && d.iter().all(u8::is_ascii_digit) && d[0] >= b'2' && d[3] >= b'2'
}

/// Strips visual separators (space, '-', '.', '(', ')') that some switches leave in numbers.
fn strip_visual(s: &str, out: &mut [u8; 24]) -> Option<usize> {
    let mut n = 0;
    for b in s.bytes() {
        match b {
            b' ' | b'-' | b'.' | b'(' | b')' => continue,
            b'0'..=b'9' | b'+' => {
                if n == out.len() {
                    return None;
                }
                out[n] = b;
                n += 1;
            }
            _ => return None,
        }
    }
    Some(n)
}

/// Normalizes a number to E.164. Accepted forms: `+1NXXNXXXXXX`, `1NXXNXXXXXX`, `NXXNXXXXXX`
/// (NANP), `+CC…` and `011CC…` (international, 7–15 digits after the country code prefix).
/// Returns None for anything else (short codes, garbage, invalid NANP).
pub fn normalize(s: &str) -> Option<E164> {
    let mut buf = [0u8; 24];
    let n = strip_visual(s, &mut buf)?;
    let b = &buf[..n];
    if let Some(rest) = b.strip_prefix(b"+") {
        if rest.contains(&b'+') || rest.first() == Some(&b'0') {
            return None;
        }
        if rest.first() == Some(&b'1') {
            return (rest.len() == 11 && valid_nanp10(&rest[1..]))
                .then(|| E164::from_digits(rest))
                .flatten();
        }
        return (7..=15)
            .contains(&rest.len())
            .then(|| E164::from_digits(rest))
            .flatten();
    }
    if b.contains(&b'+') {
        return None;
    }
    if let Some(rest) = b.strip_prefix(b"011") {
        if rest.first() == Some(&b'1') || rest.first() == Some(&b'0') {
            return None;
        }
        return (7..=15)
            .contains(&rest.len())
            .then(|| E164::from_digits(rest))
            .flatten();
    }
    if b.len() == 11 && b[0] == b'1' && valid_nanp10(&b[1..]) {
        return E164::from_digits(b);
    }
    if b.len() == 10 && valid_nanp10(b) {
        let mut d = [0u8; 11];
        d[0] = b'1';
        d[1..].copy_from_slice(b);
        return E164::from_digits(&d);
    }
    None
}

/// Normalizes a 10-digit NANP LRN given in any NANP form (LRN, 1+LRN, +1LRN).
pub fn normalize_lrn(s: &str) -> Option<E164> {
    normalize(s).filter(E164::is_nanp)
}

/// Digits only, for matching emergency short codes (911, 933) before normalization.
pub fn dialed_digits(s: &str) -> Option<String> {
    let mut buf = [0u8; 24];
    let n = strip_visual(s, &mut buf)?;
    let d: String = buf[..n]
        .iter()
        .filter(|b| b.is_ascii_digit())
        .map(|&b| b as char)
        .collect();
    Some(d)
}

/// True when `s` (ignoring visual separators) is exactly the digit string `code` (e.g. "911").
pub fn dialed_equals(s: &str, code: &str) -> bool {
    let mut buf = [0u8; 24];
    match strip_visual(s, &mut buf) {
        Some(n) => &buf[..n] == code.as_bytes(),
        None => false,
    }
}

/// What kind of destination a normalized number is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NumberClass {
    /// NANP geographic number of the US (states, DC and the US territories)
    Nanp,
    /// NANP geographic number in Canada ([`nanp_countries`])
    Canada,
    /// NANP geographic number in another Zone 1 country: the Caribbean and Bermuda
    /// ([`nanp_countries`]; +1 876 Jamaica, +1 809 Dominican Republic, …)
    Caribbean,
    /// NANP 8YY
    TollFree,
    /// NANP 900 NPA or 976 NXX
    Premium,
    International,
}

pub const TOLL_FREE_NPAS: [&[u8; 3]; 7] = [b"800", b"833", b"844", b"855", b"866", b"877", b"888"];

pub fn classify(n: &E164) -> NumberClass {
    match n.nanp10() {
        None => NumberClass::International,
        Some(d) => {
            let npa = &d[0..3];
            if TOLL_FREE_NPAS.iter().any(|t| &t[..] == npa) {
                NumberClass::TollFree
            } else if npa == b"900" || &d[3..6] == b"976" {
                NumberClass::Premium
            } else {
                match nanp_countries::region(npa) {
                    nanp_countries::NanpRegion::Canada => NumberClass::Canada,
                    nanp_countries::NanpRegion::Caribbean => NumberClass::Caribbean,
                    nanp_countries::NanpRegion::Us | nanp_countries::NanpRegion::UsTerritory => {
                        NumberClass::Nanp
                    }
                }
            }
        }
    }
}

static LOG_NUMBERS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Turns clear-text numbers in logs on or off (config `log.log_numbers`; off by default).
pub fn set_log_numbers(on: bool) {
    LOG_NUMBERS.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// A number as it may appear in logs: masked unless `log.log_numbers` is on.
pub fn for_log(s: &str) -> String {
    if LOG_NUMBERS.load(std::sync::atomic::Ordering::Relaxed) {
        s.to_string()
    } else {
        mask(s)
    }
}

/// Masks a number for logs: `+1******1234` (keeps a leading '+', the first digit and the last
/// four). Short strings keep only their length.
pub fn mask(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let plus = chars.first() == Some(&'+');
    let body = if plus { &chars[1..] } else { &chars[..] };
    if body.len() <= 5 {
        return format!("{}{}", if plus { "+" } else { "" }, "*".repeat(body.len()));
    }
    let mut out = String::with_capacity(chars.len());
    if plus {
        out.push('+');
    }
    out.push(body[0]);
    out.extend(std::iter::repeat_n('*', body.len() - 5));
    out.extend(&body[body.len() - 4..]);
    out
}

fn parse_u32(d: &[u8]) -> Option<u32> {
    if d.is_empty() || d.len() > 9 || !d.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(d.iter().fold(0u32, |a, &b| a * 10 + (b - b'0') as u32))
}

fn parse_u64(d: &[u8]) -> Option<u64> {
    if d.is_empty() || d.len() > 19 || !d.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(d.iter().fold(0u64, |a, &b| a * 10 + (b - b'0') as u64))
}

/// Error for a malformed numbering row; names the offending value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberingError {
    #[error("invalid NPA-NXX(-X) {0:?}: expected 6 or 7 digits, NPA and NXX starting 2-9")]
    NpaNxx(String),
    /// the number is shown through [`for_log`]: masked unless number logging is on
    #[error("invalid 10-digit NANP number {:?}", for_log(.0))]
    Tn(String),
    #[error("invalid E.164 number {:?}", for_log(.0))]
    E164(String),
}

/// Dense NPA-NXX table: "no data" and "has thousands blocks" markers.
const NO_INFO: u32 = 0x7FFF_FFFF;
const HAS_BLOCKS: u32 = 0x8000_0000;
/// NPA-NXX codes as numbers are below 10^6.
const NPANXX_SPACE: usize = 1_000_000;

/// NANP block data for an NPA-NXX or NPA-NXX-X.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NpaNxxInfo {
    pub state: String,
    pub lata: String,
    pub ocn: String,
    pub rate_center: String,
}

/// NANP reference data of a snapshot.
#[derive(Default, Debug)]
pub struct NumberingData {
    /// NPA-NXX (as a 6-digit number) → index into `infos`, | HAS_BLOCKS when thousands blocks of
    /// that code exist. Dense (4 MB once anything is added): a dip looks up the ANI and the LRN
    /// with one array read each instead of two hash probes (the hash probes were ~8% of a dip).
    npanxx: Vec<u32>,
    infos: Vec<NpaNxxInfo>,
    /// thousands blocks, keyed by the 7-digit NPA-NXX-X
    blocks: FxHashMap<u32, NpaNxxInfo>,
    local: FxHashSet<(u32, u32)>,
    lnp: FxHashMap<u64, u64>,
    dno: FxHashSet<u64>,
}

impl NumberingData {
    pub fn add_npanxx(&mut self, npanxx: &str, info: NpaNxxInfo) -> Result<(), NumberingError> {
        let b = npanxx.as_bytes();
        let ok = (b.len() == 6 || b.len() == 7)
            && b.iter().all(u8::is_ascii_digit)
            && b[0] >= b'2'
            && b[3] >= b'2';
        let key = parse_u32(b).filter(|_| ok);
        let Some(k) = key else {
            return Err(NumberingError::NpaNxx(npanxx.into()));
        };
        if self.npanxx.is_empty() {
            self.npanxx = vec![NO_INFO; NPANXX_SPACE];
        }
        if b.len() == 6 {
            let slot = &mut self.npanxx[k as usize];
            match *slot & !HAS_BLOCKS {
                NO_INFO => {
                    *slot = (*slot & HAS_BLOCKS) | self.infos.len() as u32;
                    self.infos.push(info);
                }
                ix => self.infos[ix as usize] = info,
            }
        } else {
            self.npanxx[(k / 10) as usize] |= HAS_BLOCKS;
            self.blocks.insert(k, info);
        }
        Ok(())
    }

    pub fn add_local_pair(&mut self, a: &str, b: &str) -> Result<(), NumberingError> {
        let pa = parse_u32(a.as_bytes()).filter(|_| a.len() == 6);
        let pb = parse_u32(b.as_bytes()).filter(|_| b.len() == 6);
        match (pa, pb) {
            (Some(x), Some(y)) => {
                self.local.insert((x, y));
                self.local.insert((y, x));
                Ok(())
            }
            (None, _) => Err(NumberingError::NpaNxx(a.into())),
            (_, None) => Err(NumberingError::NpaNxx(b.into())),
        }
    }

    pub fn add_lnp(&mut self, tn: &str, lrn: &str) -> Result<(), NumberingError> {
        let t = valid_nanp10(tn.as_bytes())
            .then(|| parse_u64(tn.as_bytes()))
            .flatten()
            .ok_or_else(|| NumberingError::Tn(tn.into()))?;
        let l = valid_nanp10(lrn.as_bytes())
            .then(|| parse_u64(lrn.as_bytes()))
            .flatten()
            .ok_or_else(|| NumberingError::Tn(lrn.into()))?;
        self.lnp.insert(t, l);
        Ok(())
    }

    pub fn add_dno(&mut self, number: &str) -> Result<(), NumberingError> {
        let n = normalize(number)
            .and_then(|e| parse_u64(e.digits()))
            .ok_or_else(|| NumberingError::E164(number.into()))?;
        self.dno.insert(n);
        Ok(())
    }

    /// Block data for a 10-digit NANP number: the NPA-NXX-X block if known, else the NPA-NXX.
    pub fn lookup(&self, nanp10: &[u8]) -> Option<&NpaNxxInfo> {
        let k7 = parse_u32(nanp10.get(..7)?)?;
        let e = *self.npanxx.get((k7 / 10) as usize)?;
        if e & HAS_BLOCKS != 0 {
            if let Some(b) = self.blocks.get(&k7) {
                return Some(b);
            }
        }
        self.infos.get((e & !HAS_BLOCKS) as usize)
    }

    pub fn is_local(&self, a10: &[u8], b10: &[u8]) -> bool {
        match (
            a10.get(..6).and_then(parse_u32),
            b10.get(..6).and_then(parse_u32),
        ) {
            (Some(a), Some(b)) => self.local.contains(&(a, b)),
            _ => false,
        }
    }

    /// The LRN of a ported 10-digit number, as an E.164.
    pub fn ported_lrn(&self, nanp10: &[u8]) -> Option<E164> {
        let lrn = *self.lnp.get(&parse_u64(nanp10)?)?;
        normalize(&lrn.to_string())
    }

    pub fn is_dno(&self, n: &E164) -> bool {
        parse_u64(n.digits()).is_some_and(|k| self.dno.contains(&k))
    }

    /// Every entry as sorted text lines: equal for equal contents however they were built.
    pub fn canonical(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (k, &v) in self.npanxx.iter().enumerate() {
            if let Some(info) = self.infos.get((v & !HAS_BLOCKS) as usize) {
                out.push(format!("npanxx {k:06} {info:?}"));
            }
        }
        let mut blocks: Vec<_> = self.blocks.iter().collect();
        blocks.sort_by_key(|(k, _)| **k);
        out.extend(blocks.iter().map(|(k, i)| format!("block {k:07} {i:?}")));
        let mut local: Vec<_> = self.local.iter().collect();
        local.sort();
        out.extend(local.iter().map(|(a, b)| format!("local {a:06} {b:06}")));
        let mut lnp: Vec<_> = self.lnp.iter().collect();
        lnp.sort();
        out.extend(lnp.iter().map(|(a, b)| format!("lnp {a} {b}")));
        let mut dno: Vec<_> = self.dno.iter().collect();
        dno.sort();
        out.extend(dno.iter().map(|d| format!("dno {d}")));
        out
    }

    pub fn counts(&self) -> (usize, usize, usize, usize) {
        (
            self.infos.len() + self.blocks.len(),
            self.local.len() / 2,
            self.lnp.len(),
            self.dno.len(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::NpaNxxInfo as Info;

    #[test]
    fn errors_mask_numbers() {
        // number logging is off unless the config turns it on (no test turns it on)
        let e = NumberingError::Tn("2125551234".into()).to_string();
        assert!(!e.contains("2125551234"), "{e}");
        assert!(e.contains("1234"), "{e}");
    }

    #[test]
    fn npanxx_blocks_win_over_codes() {
        let info = |state: &str| Info {
            state: state.into(),
            lata: "132".into(),
            ocn: "9104".into(),
            rate_center: String::new(),
        };
        let mut n = NumberingData::default();
        n.add_npanxx("2125551", info("NJ")).unwrap();
        n.add_npanxx("212555", info("NY")).unwrap();
        n.add_npanxx("212555", info("NY2")).unwrap();
        assert_eq!(
            n.lookup(b"2125551000").map(|i| i.state.as_str()),
            Some("NJ")
        );
        assert_eq!(
            n.lookup(b"2125552000").map(|i| i.state.as_str()),
            Some("NY2")
        );
        assert!(n.lookup(b"2135551000").is_none());
        assert!(n.lookup(b"21").is_none());
        n.add_npanxx("3125559", info("IL")).unwrap();
        assert_eq!(
            n.lookup(b"3125559999").map(|i| i.state.as_str()),
            Some("IL")
        );
        assert!(n.lookup(b"3125558999").is_none());
        assert_eq!(n.counts().0, 3);
        assert!(n.add_npanxx("112555", info("X")).is_err());
    }

    use super::*;

    #[test]
    fn normalizes_nanp_forms() {
        for s in [
            "+12125551234",
            "12125551234",
            "2125551234",
            "(212) 555-1234",
            "1-212-555-1234",
        ] {
            assert_eq!(
                normalize(s).map(|e| e.as_str().to_string()),
                Some("12125551234".into()),
                "{s}"
            );
        }
    }

    #[test]
    fn normalizes_international_forms() {
        assert_eq!(normalize("+442071234567").unwrap().as_str(), "442071234567");
        assert_eq!(
            normalize("011442071234567").unwrap().as_str(),
            "442071234567"
        );
        assert_eq!(
            classify(&normalize("+442071234567").unwrap()),
            NumberClass::International
        );
    }

    #[test]
    fn rejects_bad_numbers() {
        for s in [
            "",
            "abc",
            "911",
            "+1212555123",
            "1125551234",
            "2120551234",
            "+0123456789",
            "01112125551234",
            "+44+1234567",
            "12345678901234567890",
            "+123456",
        ] {
            assert_eq!(normalize(s), None, "{s}");
        }
    }

    #[test]
    fn classifies_nanp() {
        let c = |s| classify(&normalize(s).unwrap());
        assert_eq!(c("8005551212"), NumberClass::TollFree);
        assert_eq!(c("8885551212"), NumberClass::TollFree);
        assert_eq!(c("9005551212"), NumberClass::Premium);
        assert_eq!(c("2129761212"), NumberClass::Premium);
        assert_eq!(c("2125551212"), NumberClass::Nanp);
        // issue 17: non-US NANP is not domestic
        assert_eq!(c("8765551212"), NumberClass::Caribbean);
        assert_eq!(c("+18095551212"), NumberClass::Caribbean);
        assert_eq!(c("4415551212"), NumberClass::Caribbean);
        assert_eq!(c("4165551212"), NumberClass::Canada);
        assert_eq!(
            c("7875551212"),
            NumberClass::Nanp,
            "Puerto Rico is a US number"
        );
        assert_eq!(c("8885551212"), NumberClass::TollFree);
    }

    #[test]
    fn masks_numbers() {
        assert_eq!(mask("+12125551234"), "+1******1234");
        assert_eq!(mask("12125551234"), "1******1234");
        assert_eq!(mask("911"), "***");
        assert_eq!(mask(""), "");
    }

    #[test]
    fn numbering_tables() {
        let mut n = NumberingData::default();
        let info = |s: &str| NpaNxxInfo {
            state: s.into(),
            lata: "132".into(),
            ocn: "9104".into(),
            rate_center: "NYC".into(),
        };
        n.add_npanxx("212555", info("NY")).unwrap();
        n.add_npanxx("2125551", info("NJ")).unwrap();
        assert_eq!(n.lookup(b"2125551234").unwrap().state, "NJ");
        assert_eq!(n.lookup(b"2125552234").unwrap().state, "NY");
        assert!(n.lookup(b"3125552234").is_none());
        assert!(n.add_npanxx("112555", info("NY")).is_err());
        n.add_local_pair("212555", "718555").unwrap();
        assert!(n.is_local(b"7185550000", b"2125559999"));
        n.add_lnp("2125551234", "3125550000").unwrap();
        assert_eq!(n.ported_lrn(b"2125551234").unwrap().as_str(), "13125550000");
        assert!(n.add_lnp("212555123", "3125550000").is_err());
        n.add_dno("+18005551212").unwrap();
        assert!(n.is_dno(&normalize("8005551212").unwrap()));
    }

    proptest::proptest! {
        #[test]
        fn normalize_never_panics_and_is_idempotent(s in "\\PC{0,30}") {
            if let Some(e) = normalize(&s) {
                let again = normalize(&format!("+{}", e.as_str()));
                proptest::prop_assert_eq!(again, Some(e));
            }
        }
    }
}
