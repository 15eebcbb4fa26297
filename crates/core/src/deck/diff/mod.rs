//! The comparison of two deck versions, pure: what a pair of rows with the same key is
//! ([`classify`]), the counts and the over-threshold count, and one keyset page of the changed
//! rows in the chosen order ([`DiffTally`]), fed row pairs by the daemon's streaming join of the
//! two versions (one of them held in a [`HeldVersion`]). The answers are those of the SQL
//! statement that computed diffs until issue 22 (the integration test `deck_diff` compares them
//! on random versions): the same classification, PostgreSQL's numeric percentages to the last
//! bit, the same cursors. Keys compare as bytes (the order of `COLLATE "C"`).
//!
//! Owns: classification, counting, page selection and cursors. Must not touch: reading the
//! versions (the daemon's `deck::store::diff`).

mod held;
mod numeric;

use std::cmp::Ordering;
use std::collections::BinaryHeap;

pub use held::{HeldFull, HeldVersion};
pub use numeric::{pct, rate_text, Rate, Threshold};

/// A row's interstate, intrastate and local rates (10^-7 units; `None` is NULL).
pub type Rates = [Rate; 3];

/// What happened to a key between the two versions. The order is the text order of the names
/// (the "by change" order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Change {
    Added,
    /// some zones up, some down, or a zone rate added/removed
    Changed,
    Down,
    Removed,
    Unchanged,
    Up,
}

impl Change {
    pub const ALL: [Change; 6] = [
        Change::Added,
        Change::Changed,
        Change::Down,
        Change::Removed,
        Change::Unchanged,
        Change::Up,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Change::Added => "added",
            Change::Changed => "changed",
            Change::Down => "down",
            Change::Removed => "removed",
            Change::Unchanged => "unchanged",
            Change::Up => "up",
        }
    }
}

/// The change from `a` (old version's row, `None`: no such key) to `b` (new version's).
pub fn classify(a: Option<&Rates>, b: Option<&Rates>) -> Change {
    let (a, b) = match (a, b) {
        (None, _) => return Change::Added,
        (_, None) => return Change::Removed,
        (Some(a), Some(b)) => (a, b),
    };
    if a == b {
        return Change::Unchanged;
    }
    if (0..3).any(|z| a[z].is_none() != b[z].is_none()) {
        return Change::Changed;
    }
    let up = (0..3).any(|z| matches!((a[z], b[z]), (Some(x), Some(y)) if y > x));
    let down = (0..3).any(|z| matches!((a[z], b[z]), (Some(x), Some(y)) if y < x));
    match (up, down) {
        (true, true) => Change::Changed,
        (true, false) => Change::Up,
        _ => Change::Down,
    }
}

/// The order of a diff's rows; each page continues after a cursor (keyset paging).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DiffSort {
    /// by key (prefix or OCN/LATA)
    #[default]
    Key,
    /// by change (added, changed, down, removed, up), then key
    Change,
    /// largest move first (rows without a percentage last), then key
    Pct,
}

impl DiffSort {
    /// `key`, `change` or `pct`; anything else is `None` (the caller names the parameter).
    pub fn parse(s: &str) -> Option<DiffSort> {
        match s {
            "key" => Some(DiffSort::Key),
            "change" => Some(DiffSort::Change),
            "pct" => Some(DiffSort::Pct),
            _ => None,
        }
    }
}

/// Where a page starts: after this row of the order (the `next` of the page before).
#[derive(Clone, Debug, PartialEq)]
pub enum Cursor {
    Key(String),
    Change {
        change: String,
        key: String,
    },
    /// `pct: None`: after a row without a percentage
    Pct {
        pct: Option<f64>,
        key: String,
    },
}

/// A cursor that is not one of its order's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("after: not a cursor of this diff's order (use the `next` of the page before)")]
pub struct BadCursor;

impl Cursor {
    pub fn parse(sort: DiffSort, s: &str) -> Result<Cursor, BadCursor> {
        match sort {
            DiffSort::Key => Ok(Cursor::Key(s.to_string())),
            DiffSort::Change => {
                let (ch, k) = s.split_once('|').ok_or(BadCursor)?;
                Ok(Cursor::Change {
                    change: ch.to_string(),
                    key: k.to_string(),
                })
            }
            DiffSort::Pct => {
                let (p, k) = s.split_once('|').ok_or(BadCursor)?;
                let pct = match p {
                    "null" => None,
                    p => Some(
                        p.parse::<f64>()
                            .ok()
                            .filter(|p| p.is_finite())
                            .ok_or(BadCursor)?,
                    ),
                };
                Ok(Cursor::Pct {
                    pct,
                    key: k.to_string(),
                })
            }
        }
    }

    /// The cursor after `row` in `sort` order.
    pub fn after(sort: DiffSort, row: &PageRow) -> String {
        match sort {
            DiffSort::Key => row.key.clone(),
            DiffSort::Change => format!("{}|{}", row.change.as_str(), row.key),
            DiffSort::Pct => match row.pct {
                Some(p) => format!("{p}|{}", row.key),
                None => format!("null|{}", row.key),
            },
        }
    }

    /// The row comes after the cursor (SQL's three-valued test: a keyless row compared on its
    /// key does not).
    fn admits(&self, key: Option<&[u8]>, change: Change, pct: Option<f64>) -> bool {
        let key_after = |ck: &str| key.is_some_and(|k| k > ck.as_bytes());
        match self {
            Cursor::Key(ck) => key_after(ck),
            Cursor::Change {
                change: cc,
                key: ck,
            } => match change.as_str().cmp(cc.as_str()) {
                Ordering::Greater => true,
                Ordering::Equal => key_after(ck),
                Ordering::Less => false,
            },
            Cursor::Pct {
                pct: Some(cp),
                key: ck,
            } => match pct {
                None => true,
                Some(p) => p < *cp || (p == *cp && key_after(ck)),
            },
            Cursor::Pct { pct: None, key: ck } => pct.is_none() && key_after(ck),
        }
    }
}

/// The counts of a diff.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiffCounts {
    /// per [`Change`], in [`Change::ALL`] order
    pub by_change: [i64; 6],
    /// rows with a rate moving by more than the threshold percent
    pub over_threshold: i64,
}

impl DiffCounts {
    pub fn get(&self, c: Change) -> i64 {
        self.by_change[c as usize]
    }

    /// Rows that changed (all but the unchanged).
    pub fn changed_rows(&self) -> i64 {
        self.by_change.iter().sum::<i64>() - self.get(Change::Unchanged)
    }
}

/// One changed row of a page.
#[derive(Clone, Debug, PartialEq)]
pub struct PageRow {
    pub key: String,
    pub change: Change,
    /// the interstate (or single) rates, old and new, as `trim_scale` prints them; both `None`
    /// when the old one is NULL (as the statement before issue 22 answered)
    pub old_rate: Option<String>,
    pub new_rate: Option<String>,
    pub pct: Option<f64>,
}

/// The counts and one page.
#[derive(Clone, Debug, PartialEq)]
pub struct DiffOutcome {
    pub counts: DiffCounts,
    pub rows: Vec<PageRow>,
    /// the cursor of the next page, when there may be more changed rows
    pub next: Option<String>,
}

/// A page candidate, ordered by the page's order (the heap keeps the `limit` smallest).
struct Candidate {
    /// the order before the key: 0 (by key), the change, or the percentage descending
    rank: u64,
    /// `None`: keyless (after every key, as SQL's NULLS LAST)
    key: Option<Box<[u8]>>,
    change: Change,
    a: Option<Rates>,
    b: Option<Rates>,
}

fn cmp_rank(r1: u64, k1: Option<&[u8]>, r2: u64, k2: Option<&[u8]>) -> Ordering {
    r1.cmp(&r2)
        .then_with(|| k1.is_none().cmp(&k2.is_none()))
        .then_with(|| k1.cmp(&k2))
}

impl Ord for Candidate {
    fn cmp(&self, o: &Self) -> Ordering {
        cmp_rank(self.rank, self.key.as_deref(), o.rank, o.key.as_deref())
    }
}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl PartialEq for Candidate {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Candidate {}

/// `pct DESC NULLS LAST` as an ascending integer.
fn pct_rank(p: Option<f64>) -> u64 {
    match p {
        None => u64::MAX,
        Some(p) => {
            let p = if p == 0.0 { 0.0 } else { p }; // -0 = 0, as in SQL
            let b = p.to_bits();
            let asc = if b >> 63 == 1 { !b } else { b | 1 << 63 };
            u64::MAX - 1 - asc
        }
    }
}

/// Counts row pairs and keeps the page: feed every pair of the two versions' rows with the
/// same key (and every row without a partner) to [`pair`](Self::pair), then
/// [`finish`](Self::finish). Memory: the page's `limit` rows, whatever the versions' size.
pub struct DiffTally {
    threshold: Threshold,
    sort: DiffSort,
    cursor: Option<Cursor>,
    limit: usize,
    counts: DiffCounts,
    page: BinaryHeap<Candidate>,
}

impl DiffTally {
    /// `warn_pct`: the threshold of `over_threshold`; `limit`: the page's rows.
    pub fn new(warn_pct: f64, sort: DiffSort, cursor: Option<Cursor>, limit: usize) -> Self {
        DiffTally {
            threshold: Threshold::new(warn_pct),
            sort,
            cursor,
            limit,
            counts: DiffCounts::default(),
            page: BinaryHeap::with_capacity(limit.min(16_384) + 1),
        }
    }

    /// One row pair: `a` the old version's row with `key`, `b` the new one's (`None`: the key
    /// is not in that version).
    pub fn pair(&mut self, key: Option<&[u8]>, a: Option<&Rates>, b: Option<&Rates>) {
        let change = classify(a, b);
        self.counts.by_change[change as usize] += 1;
        let (ab, counted) = match (a, b) {
            (Some(a), Some(b)) => (
                Some((a, b)),
                change != Change::Unchanged || self.threshold.negative(),
            ),
            _ => (None, false),
        };
        if counted && ab.is_some_and(|(a, b)| self.threshold.over(a, b)) {
            self.counts.over_threshold += 1;
        }
        if change == Change::Unchanged || self.limit == 0 {
            return;
        }
        let row_pct = || ab.and_then(|(a, b)| pct(a, b));
        let (rank, p) = match self.sort {
            DiffSort::Key => (0, None),
            DiffSort::Change => (change as u64, None),
            DiffSort::Pct => {
                let p = row_pct();
                (pct_rank(p), p)
            }
        };
        if let Some(c) = &self.cursor {
            // only the Pct order's cursor reads the percentage
            if !c.admits(key, change, p) {
                return;
            }
        }
        if self.page.len() >= self.limit {
            match self.page.peek() {
                Some(top) if cmp_rank(rank, key, top.rank, top.key.as_deref()).is_lt() => {
                    self.page.pop();
                }
                _ => return,
            }
        }
        self.page.push(Candidate {
            rank,
            key: key.map(Box::from),
            change,
            a: a.copied(),
            b: b.copied(),
        });
    }

    /// The counts so far.
    pub fn counts(&self) -> DiffCounts {
        self.counts
    }

    pub fn finish(self) -> DiffOutcome {
        let rows: Vec<PageRow> = self
            .page
            .into_sorted_vec()
            .into_iter()
            .map(|c| {
                let (old_rate, new_rate) = match c.a.as_ref().and_then(|a| a[0]) {
                    Some(o) => (Some(rate_text(o)), c.b.and_then(|b| b[0]).map(rate_text)),
                    None => (None, None),
                };
                PageRow {
                    key: c
                        .key
                        .map(|k| String::from_utf8_lossy(&k).into_owned())
                        .unwrap_or_default(),
                    change: c.change,
                    old_rate,
                    new_rate,
                    pct: match (&c.a, &c.b) {
                        (Some(a), Some(b)) => pct(a, b),
                        _ => None,
                    },
                }
            })
            .collect();
        let more = self.limit > 0
            && rows.len() == self.limit
            && self.counts.changed_rows() > self.limit as i64;
        let next = more
            .then(|| rows.last().map(|r| Cursor::after(self.sort, r)))
            .flatten();
        DiffOutcome {
            counts: self.counts,
            rows,
            next,
        }
    }

    /// A row of the streamed (new) version against the held (old) one: a pair with each held
    /// row of its key, or an added row.
    pub fn streamed(&mut self, held: &mut HeldVersion, key: Option<&[u8]>, b: &Rates) {
        let Some(k) = key else {
            return self.pair(None, None, Some(b));
        };
        if !held.matches(k, |a| self.pair(Some(k), Some(a), Some(b))) {
            self.pair(Some(k), None, Some(b));
        }
    }

    /// After the streamed version: the held rows no streamed row matched, removed.
    pub fn removed_rest(&mut self, held: &HeldVersion) {
        held.unmatched(|k, a| self.pair(k, Some(a), None));
    }
}

#[cfg(test)]
mod tests;
