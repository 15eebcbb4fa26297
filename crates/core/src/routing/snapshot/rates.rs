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

    /// Groups the entries by key (offsets from counts), then each key's slice by route and
    /// newest effective_from first. `route_ids`: the routes' ids by index, kept with the index
    /// so that a later build can tell whether the index still fits its routes.
    pub fn finish(self, route_ids: Vec<Id>) -> RateIndex {
        let RatesBuilder {
            mut trie,
            ocn_lata,
            next_key,
            mut pending,
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
                entries[start..].sort_unstable_by(|x, y| {
                    x.route.cmp(&y.route).then(
                        terms[y.terms as usize]
                            .from
                            .cmp(&terms[x.terms as usize].from),
                    )
                });
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
