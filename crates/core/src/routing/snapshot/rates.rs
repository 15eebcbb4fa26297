//! Building the rate part ([`RateIndex`]): vendor rate rows go straight into the key-grouped
//! index (one shared trie for every route's prefixes, interned terms, 16-byte entries).
//!
//! A patch ([`RatesBuilder::patching`], [`RatesBuilder::finish_patch`]) re-reads the rows of a
//! few routes only: it continues the previous index's trie, OCN/LATA keys and terms (keys are
//! append-only, so every other route's entries keep theirs) and merges the previous entries minus
//! those routes' with the new rows, key by key.
//!
//! Owns: key assignment, terms interning, the final grouping and ordering of entries.
//! Must not touch: the small tables (see `compile`).

use rustc_hash::FxHashMap;

use super::*;
use crate::routing::trie::DigitTrie;

fn zone_rates(row: &RateRow) -> [u32; 3] {
    let f = |r: Option<Rate>| r.map(|r| r.0.min(Rate::MAX.0)).unwrap_or(NO_RATE);
    [f(row.inter), f(row.intra), f(row.local)]
}

/// The order of one key's entries, which the dip relies on: by route, then newest
/// `effective_from` first (the first entry of a route whose window holds the time is the one in
/// effect).
///
/// Rows of one route, key and `effective_from` (a deck import refuses them, other writers of
/// `vendor_rates` may not) are tied by what they say, never by where they lie in the table:
/// the dearer row first (interstate, then intrastate, then local rate; a zone without a rate
/// counts as the dearest), then the later `effective_until`, then
/// the longer minimum and increment. So every build of the same rows gives the same index,
/// whatever order they arrive in, and an ambiguous deck never understates a vendor's cost.
/// Entries this order calls equal are the same in everything a dip reads.
pub(crate) fn entry_order(terms: &[Terms], x: &RateEntry, y: &RateEntry) -> std::cmp::Ordering {
    let (tx, ty) = (&terms[x.terms as usize], &terms[y.terms as usize]);
    x.route
        .cmp(&y.route)
        .then(ty.from.cmp(&tx.from))
        .then(y.rates.cmp(&x.rates))
        .then(ty.until.cmp(&tx.until))
        .then(ty.min.cmp(&tx.min))
        .then(ty.inc.cmp(&tx.inc))
}

/// The entries of `pending` with every key's entries in `offsets[key]..offsets[key + 1]` (the
/// counts' prefix sums): one sequential read and one write per entry, the writes independent
/// of each other. The order within a key is arbitrary; [`entry_order`] decides it.
///
/// Alternatives measured on 5M rows (`perf`, the bench's full builds): a comparison sort of
/// every entry by key was an eighth of the client's CPU; an in-place distribution (American
/// flag sort, one or two passes) about a third, every swap waiting on the cache miss of the one
/// before. This costs a second array while it runs (16 bytes an entry, next to `pending`'s 20).
fn group_by_key(pending: Vec<(u32, RateEntry)>, offsets: &[u32]) -> Vec<RateEntry> {
    let nkeys = offsets.len().saturating_sub(1);
    let empty = RateEntry {
        route: 0,
        terms: 0,
        rates: [0; 3],
    };
    let mut entries = vec![empty; pending.len()];
    // next[k]: where key k's next entry goes
    let mut next: Vec<u32> = offsets[..nkeys].to_vec();
    for (k, e) in pending {
        let slot = &mut next[k as usize];
        entries[*slot as usize] = e;
        *slot += 1;
    }
    entries
}

/// Collects vendor rate rows (any order) into a [`RateIndex`].
#[derive(Default)]
pub(crate) struct RatesBuilder {
    trie: DigitTrie,
    ocn_lata: FxHashMap<Box<str>, u32>,
    next_key: u32,
    pending: Vec<(u32, RateEntry)>,
    terms_ix: FxHashMap<Terms, u16>,
    terms: Vec<Terms>,
}

impl RatesBuilder {
    /// A builder that continues `base`'s keys and terms, for rows of some routes to be merged
    /// into it ([`RatesBuilder::finish_patch`]).
    pub fn patching(base: &RateIndex) -> RatesBuilder {
        RatesBuilder {
            trie: base.trie.clone(),
            ocn_lata: base.ocn_lata.clone(),
            next_key: base.offsets.len().saturating_sub(1) as u32,
            pending: Vec::new(),
            terms_ix: base
                .terms
                .iter()
                .enumerate()
                .map(|(i, t)| (*t, i as u16))
                .collect(),
            terms: base.terms.clone(),
        }
    }

    pub fn reserve(&mut self, rows: usize) {
        self.pending.reserve(rows);
    }

    /// Adds one row of route `route` (its index; `route_id` names it in errors).
    pub fn add(
        &mut self,
        route: RouteIx,
        route_id: Id,
        key: RateKey<'_>,
        row: RateRow,
    ) -> Result<(), BuildError> {
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

    /// Groups the entries by key (offsets from counts, [`group_by_key`]), then orders each
    /// key's slice by [`entry_order`]. `route_ids`: the routes' ids by index, kept with the index
    /// so that a later build can tell whether the index still fits its routes.
    pub fn finish(self, route_ids: Vec<Id>) -> RateIndex {
        let RatesBuilder {
            mut trie,
            ocn_lata,
            next_key,
            pending,
            terms_ix: _,
            terms,
        } = self;
        let nkeys = next_key as usize;
        let mut offsets = vec![0u32; nkeys + 1];
        for (k, _) in &pending {
            offsets[*k as usize + 1] += 1;
        }
        for i in 0..nkeys {
            offsets[i + 1] += offsets[i];
        }
        let mut entries = group_by_key(pending, &offsets);
        for k in 0..nkeys {
            let (a, b) = (offsets[k] as usize, offsets[k + 1] as usize);
            if b - a > 1 {
                entries[a..b].sort_unstable_by(|x, y| entry_order(&terms, x, y));
            }
        }
        trie.shrink();
        RateIndex {
            trie,
            ocn_lata,
            offsets,
            entries,
            terms,
            route_ids,
        }
    }

    /// Merges `base` (the index this builder was [`patching`](RatesBuilder::patching)) minus the
    /// entries of the routes `replaced` marks (by route index) with the rows added here, which
    /// are those routes' rows now. One sequential pass over `base`'s entries; only keys that got
    /// new rows are re-sorted (a handful of entries each).
    pub fn finish_patch(self, base: &RateIndex, replaced: &[bool]) -> RateIndex {
        let RatesBuilder {
            mut trie,
            ocn_lata,
            next_key,
            mut pending,
            terms_ix: _,
            terms,
        } = self;
        let nkeys = next_key as usize;
        pending.sort_unstable_by_key(|(k, _)| *k);
        let kept = base
            .entries
            .iter()
            .filter(|e| !replaced.get(e.route as usize).copied().unwrap_or(false))
            .count();
        let mut entries: Vec<RateEntry> = Vec::with_capacity(kept + pending.len());
        let mut offsets = Vec::with_capacity(nkeys + 1);
        offsets.push(0u32);
        let mut new = pending.into_iter().peekable();
        for k in 0..nkeys {
            let start = entries.len();
            if let (Some(&a), Some(&b)) = (base.offsets.get(k), base.offsets.get(k + 1)) {
                let old = base.entries.get(a as usize..b as usize).unwrap_or_default();
                entries.extend(
                    old.iter()
                        .filter(|e| !replaced.get(e.route as usize).copied().unwrap_or(false)),
                );
            }
            let mut added = false;
            while let Some((_, e)) = new.next_if(|(nk, _)| *nk as usize == k) {
                entries.push(e);
                added = true;
            }
            if added {
                entries[start..].sort_unstable_by(|x, y| entry_order(&terms, x, y));
            }
            offsets.push(entries.len() as u32);
        }
        trie.shrink();
        RateIndex {
            trie,
            ocn_lata,
            offsets,
            entries,
            terms,
            route_ids: base.route_ids.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// (route, prefix, rate, effective_from): few of each, so ties are common
    fn rows() -> impl Strategy<Value = Vec<(u16, u8, u32, i64)>> {
        proptest::collection::vec((0u16..3, 0u8..6, 0u32..4, 0i64..3), 0..60)
    }

    fn build(rows: &[(u16, u8, u32, i64)]) -> RateIndex {
        let mut b = RatesBuilder::default();
        for &(route, p, rate, from) in rows {
            let row = RateRow {
                inter: Some(Rate(rate)),
                intra: (rate % 2 == 0).then_some(Rate(rate * 10)),
                local: None,
                min_seconds: (rate % 3) as u16,
                inc_seconds: 6,
                effective_from: from,
                effective_until: 10 + rate as i64 % 2,
            };
            let prefix = format!("1{p}");
            b.add(route, Id::from(route), RateKey::Prefix(&prefix), row)
                .unwrap();
        }
        b.finish(vec![])
    }

    /// Key by key, what a dip reads of each entry (terms resolved: their indices depend on
    /// the order rows arrive in).
    #[allow(clippy::type_complexity)]
    fn content(ix: &RateIndex) -> Vec<(Vec<u8>, Vec<(u16, Terms, [u32; 3])>)> {
        let mut keys = Vec::new();
        ix.trie.for_each(|d, k| keys.push((d.to_vec(), k)));
        keys.sort();
        let mut out = Vec::new();
        for (d, k) in keys {
            let (_, es) = ix.key_entries(k).unwrap();
            let es = es
                .iter()
                .map(|e| (e.route, ix.terms[e.terms as usize], e.rates))
                .collect();
            out.push((d, es));
        }
        out
    }

    proptest! {
        /// The same rows in any order give the same index, and among rows of one route, key
        /// and effective_from the dearest comes first (the one a dip uses).
        #[test]
        fn any_arrival_order_gives_the_same_index(rows in rows(), seed in any::<u64>()) {
            let mut shuffled = rows.clone();
            // a deterministic permutation from the seed
            let mut x = seed | 1;
            for i in (1..shuffled.len()).rev() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                shuffled.swap(i, (x % (i as u64 + 1)) as usize);
            }
            let (a, b) = (build(&rows), build(&shuffled));
            prop_assert_eq!(content(&a), content(&b));
            for (_, es) in content(&a) {
                for w in es.windows(2) {
                    let ((r0, t0, x0), (r1, t1, x1)) = (&w[0], &w[1]);
                    prop_assert!(r0 <= r1);
                    if r0 == r1 {
                        prop_assert!(t0.from >= t1.from);
                        if t0.from == t1.from {
                            prop_assert!(x0 >= x1, "the dearer of a tie first: {x0:?} {x1:?}");
                        }
                    }
                }
            }
        }
    }

    /// [`group_by_key`] with empty keys, a key holding a third of the entries, keys in random
    /// order.
    #[test]
    fn grouping_puts_every_entry_in_its_key_range() {
        let entry = |i: u32| RateEntry {
            route: (i % 7) as u16,
            terms: 0,
            rates: [i, 0, 0],
        };
        for (nkeys, n) in [
            (1usize, 5u32),
            (4096, 20_000),
            (4097, 20_000),
            (100_003, 300_000),
        ] {
            let mut x = 0x9E37_79B9_7F4A_7C15u64;
            let pending: Vec<(u32, RateEntry)> = (0..n)
                .map(|i| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // a third of the entries on one key, every 5th key empty
                    let k = if i % 3 == 0 {
                        nkeys as u32 / 2
                    } else {
                        (x % nkeys as u64) as u32
                    };
                    let k = if k % 5 == 4 { k - 1 } else { k };
                    (k, entry(i))
                })
                .collect();
            let mut offsets = vec![0u32; nkeys + 1];
            for (k, _) in &pending {
                offsets[*k as usize + 1] += 1;
            }
            for i in 0..nkeys {
                offsets[i + 1] += offsets[i];
            }
            // the entry's key, by its unique rate
            let key_of: FxHashMap<u32, u32> =
                pending.iter().map(|(k, e)| (e.rates[0], *k)).collect();
            let mut before: Vec<u32> = pending.iter().map(|(_, e)| e.rates[0]).collect();
            let entries = group_by_key(pending, &offsets);
            for k in 0..nkeys {
                for e in &entries[offsets[k] as usize..offsets[k + 1] as usize] {
                    assert_eq!(
                        key_of[&e.rates[0]] as usize, k,
                        "{nkeys} keys: key {k}'s range"
                    );
                }
            }
            // a permutation: nothing lost, nothing doubled
            let mut after: Vec<u32> = entries.iter().map(|e| e.rates[0]).collect();
            before.sort_unstable();
            after.sort_unstable();
            assert_eq!(before, after);
        }
    }

    #[test]
    fn a_tie_of_route_key_and_start_is_won_by_the_dearer_row() {
        let cheap = (0, 1, 5, 0);
        let dear = (0, 1, 7, 0);
        for rows in [[cheap, dear], [dear, cheap]] {
            let ix = build(&rows);
            let mut k = None;
            ix.trie.for_each(|d, key| {
                if d == b"11" {
                    k = Some(key)
                }
            });
            let k = k.unwrap();
            assert_eq!(ix.entry(k, 0, 5).unwrap().rates[0], 7);
        }
    }
}
