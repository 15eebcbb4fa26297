//! CSV decks named by a provisioning file: vendor rate decks, customer sell decks and the numbering
//! tables (NPA-NXX, local calling, LNP, DNO). One streaming pass turns a CSV into canonical rows:
//! the validation pass fingerprints them ([`Digest`]) and collects [`Issue`]s; the load pass turns
//! the same rows into COPY text. Nothing is held in memory except duplicate-detection keys.
//!
//! Owns: column layout and per-row validation of decks. Must not touch: the database (see `db`).

use std::collections::hash_map::Entry;
use std::path::PathBuf;

use rustc_hash::FxHashMap;
use serde::Serialize;

use super::csv_rows::{CsvRow, CsvTable};
use super::values::*;
use super::Issue;

/// Which table a deck fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeckKind {
    VendorRates,
    CustomerRates,
    Npanxx,
    LocalCalling,
    Lnp,
    Dno,
}

impl DeckKind {
    pub fn table(self) -> &'static str {
        match self {
            DeckKind::VendorRates => "vendor_rates",
            DeckKind::CustomerRates => "customer_rates",
            DeckKind::Npanxx => "npanxx",
            DeckKind::LocalCalling => "local_calling",
            DeckKind::Lnp => "lnp",
            DeckKind::Dno => "dno",
        }
    }

    /// Column whose value is the owner id (route / customer), if the deck belongs to one.
    pub fn owner_column(self) -> Option<&'static str> {
        match self {
            DeckKind::VendorRates => Some("route_id"),
            DeckKind::CustomerRates => Some("customer_id"),
            _ => None,
        }
    }

    /// Table columns of the canonical row, and whether each is fingerprinted as an integer.
    pub fn columns(self) -> &'static [(&'static str, ColType)] {
        use ColType::*;
        match self {
            DeckKind::VendorRates => &[
                ("prefix", Text),
                ("ocn", Text),
                ("lata", Text),
                ("rate_inter", Money),
                ("rate_intra", Money),
                ("rate_local", Money),
                ("min_seconds", Int),
                ("inc_seconds", Int),
                ("effective_from", Ts),
                ("effective_until", Ts),
            ],
            DeckKind::CustomerRates => &[
                ("prefix", Text),
                ("rate_inter", Money),
                ("rate_intra", Money),
                ("rate_local", Money),
                ("effective_from", Ts),
                ("effective_until", Ts),
            ],
            DeckKind::Npanxx => &[
                ("npanxx", Text),
                ("state", Text),
                ("lata", Text),
                ("ocn", Text),
                ("rate_center", Text),
            ],
            DeckKind::LocalCalling => &[("a_npanxx", Text), ("b_npanxx", Text)],
            DeckKind::Lnp => &[("tn", Text), ("lrn", Text)],
            DeckKind::Dno => &[("number", Text), ("reason", Text)],
        }
    }

    fn allowed_headers(self) -> &'static [&'static str] {
        match self {
            DeckKind::VendorRates => &[
                "prefix",
                "ocn",
                "lata",
                "interstate",
                "intrastate",
                "local",
                "rate",
                "min",
                "increment",
            ],
            DeckKind::CustomerRates => &["prefix", "interstate", "intrastate", "local", "rate"],
            DeckKind::Npanxx => &["npanxx", "state", "lata", "ocn", "rate_center"],
            DeckKind::LocalCalling => &["a", "b"],
            DeckKind::Lnp => &["tn", "lrn"],
            DeckKind::Dno => &["number", "reason"],
        }
    }
}

/// How a canonical column is stored and fingerprinted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColType {
    Text,
    Int,
    /// numeric(12,7), fingerprinted as the value × 1e7
    Money,
    /// timestamptz, fingerprinted as unix microseconds
    Ts,
}

/// A deck to read: where, what, and the context validation needs.
#[derive(Clone, Debug)]
pub struct DeckSource {
    pub kind: DeckKind,
    pub path: PathBuf,
    /// the name used in messages (the path as written, relative to the provisioning file)
    pub label: String,
    /// vendor rates only: `Some(true)` keys are (ocn, lata), `Some(false)` keys are prefixes,
    /// `None` the vendor is unknown (either layout accepted; the reference error is reported elsewhere)
    pub ocn_lata: Option<bool>,
    /// rate decks: `effective_from` of every row (unix µs)
    pub effective_from: i64,
}

/// Result of one pass over a deck.
#[derive(Debug, Default)]
pub struct DeckScan {
    pub digest: Digest,
    pub issues: Vec<Issue>,
    /// issues found beyond the reported ones
    pub suppressed: u64,
}

const MAX_ISSUES_PER_DECK: usize = 25;

impl DeckScan {
    fn issue(&mut self, i: Issue) {
        if self.issues.len() < MAX_ISSUES_PER_DECK {
            self.issues.push(i);
        } else {
            self.suppressed += 1;
        }
    }
}

/// Packs a digit string (≤ 15 digits) into a u64 that keeps its length ("01" ≠ "1").
fn pack_digits(s: &str) -> u64 {
    let mut v: u64 = 0;
    for b in s.bytes().take(15) {
        v = v * 10 + u64::from(b.wrapping_sub(b'0') % 10);
    }
    (v << 4) | (s.len().min(15) as u64)
}

/// A 10-digit NANP number (`NXX-NXX-XXXX`); an 11-digit form with a leading 1 (or +1) is accepted.
fn nanp10(s: &str) -> Result<&str, String> {
    let t = s.strip_prefix('+').unwrap_or(s);
    let t = if t.len() == 11 {
        t.strip_prefix('1').unwrap_or(t)
    } else {
        t
    };
    let b = t.as_bytes();
    if b.len() == 10 && b.iter().all(u8::is_ascii_digit) && b[0] >= b'2' && b[3] >= b'2' {
        Ok(t)
    } else {
        Err(format!(
            "{s:?} is not a 10-digit NANP number (NPA and NXX start with 2-9)"
        ))
    }
}

fn six_digits(s: &str) -> Result<&str, String> {
    if s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(s)
    } else {
        Err(format!("{s:?} is not a 6-digit NPA-NXX"))
    }
}

fn npanxx_code(s: &str) -> Result<&str, String> {
    let b = s.as_bytes();
    let ok = (b.len() == 6 || b.len() == 7)
        && b.iter().all(u8::is_ascii_digit)
        && b[0] >= b'2'
        && b[3] >= b'2';
    if ok {
        Ok(s)
    } else {
        Err(format!(
            "{s:?} is not an NPA-NXX (6 digits) or NPA-NXX-X (7 digits) with NPA and NXX starting 2-9"
        ))
    }
}

fn opt_text(o: Option<&str>) -> Cell<'_> {
    o.map(Cell::Text).unwrap_or(Cell::Null)
}

fn text_field(row: &CsvRow, col: Option<usize>) -> &str {
    col.map(|c| row.get(c)).unwrap_or("")
}

struct Cols {
    ix: FxHashMap<&'static str, usize>,
}

impl Cols {
    fn get(&self, name: &str) -> Option<usize> {
        self.ix.get(name).copied()
    }
    fn has(&self, name: &str) -> bool {
        self.ix.contains_key(name)
    }
}

/// Checks the header against the deck kind; returns column indices or the header issues.
fn layout<R: std::io::Read>(src: &DeckSource, t: &CsvTable<R>) -> Result<Cols, Vec<Issue>> {
    let line = t.header_line();
    let allowed = src.kind.allowed_headers();
    let mut issues = vec![];
    let mut ix = FxHashMap::default();
    for (i, h) in t.headers().iter().enumerate() {
        match allowed.iter().find(|a| **a == h.as_str()) {
            Some(a) => {
                ix.insert(*a, i);
            }
            None => issues.push(Issue::at_line(
                &src.label,
                line,
                h.clone(),
                format!("unknown column (expected: {})", allowed.join(", ")),
            )),
        }
    }
    let cols = Cols { ix };
    let mut need = |cond: bool, msg: String| {
        if !cond {
            issues.push(Issue::at_line(&src.label, line, "header", msg));
        }
    };
    match src.kind {
        DeckKind::VendorRates | DeckKind::CustomerRates => {
            let by_prefix = cols.has("prefix");
            let by_ocn = cols.has("ocn") || cols.has("lata");
            match (src.kind, src.ocn_lata) {
                (DeckKind::VendorRates, Some(true)) => need(
                    cols.has("ocn") && cols.has("lata") && !by_prefix,
                    "the route's vendor bills by OCN_LATA: the deck needs columns ocn,lata (and no prefix)".into(),
                ),
                (DeckKind::VendorRates, None) => need(
                    by_prefix != (cols.has("ocn") && cols.has("lata")) && !(by_prefix && by_ocn),
                    "the deck needs either a prefix column or ocn,lata columns".into(),
                ),
                _ => need(
                    by_prefix && !by_ocn,
                    "the deck needs a prefix column (ocn/lata decks are only for OCN_LATA vendors)".into(),
                ),
            }
            let zones = ["interstate", "intrastate", "local"]
                .iter()
                .any(|z| cols.has(z));
            need(
                cols.has("rate") != zones,
                "the deck needs either a single rate column or interstate/intrastate/local columns"
                    .into(),
            );
        }
        DeckKind::Npanxx => {
            for c in ["npanxx", "state", "lata", "ocn"] {
                need(cols.has(c), format!("missing column {c}"));
            }
        }
        DeckKind::LocalCalling => need(cols.has("a") && cols.has("b"), "needs columns a,b".into()),
        DeckKind::Lnp => need(
            cols.has("tn") && cols.has("lrn"),
            "needs columns tn,lrn".into(),
        ),
        DeckKind::Dno => need(cols.has("number"), "missing column number".into()),
    }
    if issues.is_empty() {
        Ok(cols)
    } else {
        Err(issues)
    }
}

/// Duplicate detection: first line of each key.
#[derive(Default)]
struct Seen {
    packed: FxHashMap<u64, u64>,
    text: FxHashMap<(Box<str>, Box<str>), u64>,
}

impl Seen {
    fn packed(&mut self, k: u64, line: u64) -> Option<u64> {
        match self.packed.entry(k) {
            Entry::Occupied(e) => Some(*e.get()),
            Entry::Vacant(v) => {
                v.insert(line);
                None
            }
        }
    }
    fn text(&mut self, a: &str, b: &str, line: u64) -> Option<u64> {
        let k = (Box::from(a), Box::from(b));
        match self.text.get(&k) {
            Some(first) => Some(*first),
            None => {
                self.text.insert(k, line);
                None
            }
        }
    }
}

/// Reads one deck, calling `emit` with each canonical row (owner id not included); `emit` returns
/// false to stop early. Validation problems are collected in the result, never emitted.
pub fn scan(src: &DeckSource, emit: &mut dyn FnMut(&[Cell<'_>]) -> bool) -> DeckScan {
    let mut out = DeckScan::default();
    let mut t = match CsvTable::open(&src.path, &src.label) {
        Ok(t) => t,
        Err(i) => {
            out.issue(i);
            return out;
        }
    };
    let cols = match layout(src, &t) {
        Ok(c) => c,
        Err(is) => {
            for i in is {
                out.issue(i);
            }
            return out;
        }
    };
    let mut seen = Seen::default();
    while let Some(r) = t.next_row() {
        let row = match r {
            Ok(row) => row,
            Err(i) => {
                out.issue(i);
                continue;
            }
        };
        let keep_going = match src.kind {
            DeckKind::VendorRates | DeckKind::CustomerRates => {
                rate_row(src, &cols, &row, &mut seen, &mut out, emit)
            }
            DeckKind::Npanxx => npanxx_row(src, &cols, &row, &mut seen, &mut out, emit),
            DeckKind::LocalCalling => local_row(src, &cols, &row, &mut seen, &mut out, emit),
            DeckKind::Lnp => lnp_row(src, &cols, &row, &mut seen, &mut out, emit),
            DeckKind::Dno => dno_row(src, &cols, &row, &mut seen, &mut out, emit),
        };
        if !keep_going {
            break;
        }
    }
    out
}

fn push(out: &mut DeckScan, emit: &mut dyn FnMut(&[Cell<'_>]) -> bool, cells: &[Cell<'_>]) -> bool {
    out.digest.add(cells);
    emit(cells)
}

fn rate_row(
    src: &DeckSource,
    cols: &Cols,
    row: &CsvRow,
    seen: &mut Seen,
    out: &mut DeckScan,
    emit: &mut dyn FnMut(&[Cell<'_>]) -> bool,
) -> bool {
    let f = &src.label;
    let line = row.line;
    let before = out.issues.len() as u64 + out.suppressed;
    // key
    let (prefix, ocn, lata) = if let Some(c) = cols.get("prefix") {
        let p = row.get(c);
        if let Err(m) = check_prefix(p, false) {
            out.issue(Issue::at_line(f, line, "prefix", m));
        } else if let Some(first) = seen.packed(pack_digits(p), line) {
            out.issue(Issue::at_line(
                f,
                line,
                "prefix",
                format!("duplicate prefix {p} (first at line {first})"),
            ));
        }
        (Some(p), None, None)
    } else {
        let ocn = text_field(row, cols.get("ocn"));
        let lata = text_field(row, cols.get("lata"));
        if ocn.is_empty() || !ocn.bytes().all(|b| b.is_ascii_alphanumeric()) {
            out.issue(Issue::at_line(
                f,
                line,
                "ocn",
                format!("{ocn:?} is not an OCN (letters and digits)"),
            ));
        }
        if lata.is_empty() || !lata.bytes().all(|b| b.is_ascii_digit()) {
            out.issue(Issue::at_line(
                f,
                line,
                "lata",
                format!("{lata:?} is not a LATA code (digits)"),
            ));
        }
        if let Some(first) = seen.text(ocn, lata, line) {
            out.issue(Issue::at_line(
                f,
                line,
                "ocn,lata",
                format!("duplicate ocn/lata {ocn}/{lata} (first at line {first})"),
            ));
        }
        (None, Some(ocn), Some(lata))
    };
    // rates
    let rate = |name: &str, out: &mut DeckScan| -> Option<i64> {
        let v = text_field(row, cols.get(name));
        if v.is_empty() {
            return None;
        }
        match parse_rate(v) {
            Ok(r) => Some(i64::from(r)),
            Err(m) => {
                out.issue(Issue::at_line(f, line, name, m));
                None
            }
        }
    };
    let rates: [Option<i64>; 3] = if cols.has("rate") {
        if text_field(row, cols.get("rate")).is_empty() {
            out.issue(Issue::at_line(f, line, "rate", "empty rate"));
        }
        let r = rate("rate", out);
        [r, r, r]
    } else {
        let r = [
            rate("interstate", out),
            rate("intrastate", out),
            rate("local", out),
        ];
        let all_empty = ["interstate", "intrastate", "local"]
            .iter()
            .all(|z| text_field(row, cols.get(z)).is_empty());
        if all_empty {
            out.issue(Issue::at_line(
                f,
                line,
                "interstate",
                "row has no rate in any zone",
            ));
        }
        r
    };
    let int = |name: &str, default: i64, min: i64, out: &mut DeckScan| -> i64 {
        let v = text_field(row, cols.get(name));
        if v.is_empty() {
            return default;
        }
        match v.parse::<i64>() {
            Ok(n) if (min..=i64::from(u16::MAX)).contains(&n) => n,
            _ => {
                out.issue(Issue::at_line(
                    f,
                    line,
                    name,
                    format!("{v:?} is not a whole number of seconds in {min}..=65535"),
                ));
                default
            }
        }
    };
    let (min, inc) = if src.kind == DeckKind::VendorRates {
        (int("min", 6, 0, out), int("increment", 6, 1, out))
    } else {
        (0, 0)
    };
    if out.issues.len() as u64 + out.suppressed != before {
        return true;
    }
    let money = |o: Option<i64>| o.map(Cell::Scaled7).unwrap_or(Cell::Null);
    if src.kind == DeckKind::VendorRates {
        let cells = [
            opt_text(prefix),
            opt_text(ocn),
            opt_text(lata),
            money(rates[0]),
            money(rates[1]),
            money(rates[2]),
            Cell::Int(min),
            Cell::Int(inc),
            Cell::Ts(src.effective_from),
            Cell::Ts(POS_INF),
        ];
        push(out, emit, &cells)
    } else {
        let cells = [
            opt_text(prefix),
            money(rates[0]),
            money(rates[1]),
            money(rates[2]),
            Cell::Ts(src.effective_from),
            Cell::Ts(POS_INF),
        ];
        push(out, emit, &cells)
    }
}

fn npanxx_row(
    src: &DeckSource,
    cols: &Cols,
    row: &CsvRow,
    seen: &mut Seen,
    out: &mut DeckScan,
    emit: &mut dyn FnMut(&[Cell<'_>]) -> bool,
) -> bool {
    let (f, line) = (&src.label, row.line);
    let before = out.issues.len() as u64 + out.suppressed;
    let code = text_field(row, cols.get("npanxx"));
    match npanxx_code(code) {
        Err(m) => out.issue(Issue::at_line(f, line, "npanxx", m)),
        Ok(c) => {
            if let Some(first) = seen.packed(pack_digits(c), line) {
                out.issue(Issue::at_line(
                    f,
                    line,
                    "npanxx",
                    format!("duplicate npanxx {c} (first at line {first})"),
                ));
            }
        }
    }
    let state = text_field(row, cols.get("state"));
    let lata = text_field(row, cols.get("lata"));
    let ocn = text_field(row, cols.get("ocn"));
    let rc = text_field(row, cols.get("rate_center"));
    if state.is_empty() || !state.bytes().all(|b| b.is_ascii_alphabetic()) {
        out.issue(Issue::at_line(
            f,
            line,
            "state",
            format!("{state:?} is not a state/province code"),
        ));
    }
    if lata.is_empty() || !lata.bytes().all(|b| b.is_ascii_digit()) {
        out.issue(Issue::at_line(
            f,
            line,
            "lata",
            format!("{lata:?} is not a LATA code (digits)"),
        ));
    }
    if ocn.is_empty() || !ocn.bytes().all(|b| b.is_ascii_alphanumeric()) {
        out.issue(Issue::at_line(
            f,
            line,
            "ocn",
            format!("{ocn:?} is not an OCN (letters and digits)"),
        ));
    }
    if out.issues.len() as u64 + out.suppressed != before {
        return true;
    }
    push(
        out,
        emit,
        &[
            Cell::Text(code),
            Cell::Text(state),
            Cell::Text(lata),
            Cell::Text(ocn),
            Cell::Text(rc),
        ],
    )
}

fn local_row(
    src: &DeckSource,
    cols: &Cols,
    row: &CsvRow,
    seen: &mut Seen,
    out: &mut DeckScan,
    emit: &mut dyn FnMut(&[Cell<'_>]) -> bool,
) -> bool {
    let (f, line) = (&src.label, row.line);
    let a = six_digits(text_field(row, cols.get("a")));
    let b = six_digits(text_field(row, cols.get("b")));
    let (a, b) = match (a, b) {
        (Ok(a), Ok(b)) => (a, b),
        (a, b) => {
            if let Err(m) = a {
                out.issue(Issue::at_line(f, line, "a", m));
            }
            if let Err(m) = b {
                out.issue(Issue::at_line(f, line, "b", m));
            }
            return true;
        }
    };
    let (pa, pb) = (pack_digits(a) >> 4, pack_digits(b) >> 4);
    let ab = pa * 1_000_000 + pb;
    let ba = pb * 1_000_000 + pa;
    if let Some(first) = seen.packed(ab, line) {
        out.issue(Issue::at_line(
            f,
            line,
            "a,b",
            format!("duplicate pair {a},{b} (first at line {first})"),
        ));
        return true;
    }
    if a != b && seen.packed.contains_key(&ba) {
        // the mirror was listed already and stored both ways
        return true;
    }
    if !push(out, emit, &[Cell::Text(a), Cell::Text(b)]) {
        return false;
    }
    if a != b {
        return push(out, emit, &[Cell::Text(b), Cell::Text(a)]);
    }
    true
}

fn lnp_row(
    src: &DeckSource,
    cols: &Cols,
    row: &CsvRow,
    seen: &mut Seen,
    out: &mut DeckScan,
    emit: &mut dyn FnMut(&[Cell<'_>]) -> bool,
) -> bool {
    let (f, line) = (&src.label, row.line);
    let tn = nanp10(text_field(row, cols.get("tn")));
    let lrn = nanp10(text_field(row, cols.get("lrn")));
    let (tn, lrn) = match (tn, lrn) {
        (Ok(t), Ok(l)) => (t, l),
        (t, l) => {
            if let Err(m) = t {
                out.issue(Issue::at_line(f, line, "tn", m));
            }
            if let Err(m) = l {
                out.issue(Issue::at_line(f, line, "lrn", m));
            }
            return true;
        }
    };
    if let Some(first) = seen.packed(pack_digits(tn), line) {
        out.issue(Issue::at_line(
            f,
            line,
            "tn",
            format!("duplicate tn {tn} (first at line {first})"),
        ));
        return true;
    }
    push(out, emit, &[Cell::Text(tn), Cell::Text(lrn)])
}

fn dno_row(
    src: &DeckSource,
    cols: &Cols,
    row: &CsvRow,
    seen: &mut Seen,
    out: &mut DeckScan,
    emit: &mut dyn FnMut(&[Cell<'_>]) -> bool,
) -> bool {
    let (f, line) = (&src.label, row.line);
    let raw = text_field(row, cols.get("number"));
    let n = raw.strip_prefix('+').unwrap_or(raw);
    if !(4..=15).contains(&n.len()) || !n.bytes().all(|b| b.is_ascii_digit()) {
        out.issue(Issue::at_line(
            f,
            line,
            "number",
            format!("{raw:?} is not E.164 digits (4 to 15 digits, e.g. 18005550100)"),
        ));
        return true;
    }
    if let Some(first) = seen.packed(pack_digits(n), line) {
        out.issue(Issue::at_line(
            f,
            line,
            "number",
            format!("duplicate number {n} (first at line {first})"),
        ));
        return true;
    }
    let reason = text_field(row, cols.get("reason"));
    push(out, emit, &[Cell::Text(n), Cell::Text(reason)])
}
