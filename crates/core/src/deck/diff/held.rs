//! One deck version held in memory for the diff's join ([`HeldVersion`]): its keys in one byte
//! arena, its rates as integers, a hash table of row numbers over the keys: 40 bytes a row, the
//! key's bytes, ~6 bytes of table, and the vectors' spare capacity: ~60 bytes a row of a prefix
//! deck (measured: 61 MB for 1M rows while the diff runs). The other version streams past it.
//!
//! Owns: that table and the "matched" marks. Must not touch: what a pair of rows means.

use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::Rates;

/// Too many key bytes for the arena's 32-bit offsets (4 GiB of keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("more than 4 GiB of keys in one version")]
pub struct HeldFull;

/// A rate in the table: `i64::MIN` is NULL (rates are numeric(12,7): |v| < 10^12).
const NULL: i64 = i64::MIN;
/// The "matched" mark in `len`.
const MATCHED: u32 = 1 << 31;
/// No next row with the same key.
const END: u32 = u32::MAX;

struct Row {
    off: u32,
    /// key length; [`MATCHED`] once a row of the other version had its key
    len: u32,
    /// the next row with the same key (versions built from vendor_rates may repeat a prefix)
    next: u32,
    rates: [i64; 3],
}

/// One version's rows, looked up by key. Rows without a key (no prefix and no OCN/LATA) are
/// never looked up: they only come out of [`HeldVersion::unmatched`].
pub struct HeldVersion {
    keys: Vec<u8>,
    rows: Vec<Row>,
    index: HashTable<u32>,
    keyless: Vec<[i64; 3]>,
    hasher: rustc_hash::FxBuildHasher,
}

fn pack(r: &Rates) -> [i64; 3] {
    r.map(|v| v.unwrap_or(NULL))
}

fn unpack(r: &[i64; 3]) -> Rates {
    r.map(|v| (v != NULL).then_some(v))
}

impl HeldVersion {
    /// Room for `rows` rows with `key_bytes` bytes of keys in all (a hint).
    pub fn with_capacity(rows: usize, key_bytes: usize) -> HeldVersion {
        HeldVersion {
            keys: Vec::with_capacity(key_bytes),
            rows: Vec::with_capacity(rows),
            index: HashTable::with_capacity(rows),
            keyless: Vec::new(),
            hasher: rustc_hash::FxBuildHasher,
        }
    }

    fn key(&self, i: u32) -> &[u8] {
        let r = &self.rows[i as usize];
        &self.keys[r.off as usize..r.off as usize + (r.len & !MATCHED) as usize]
    }

    /// Adds a row. A rate of `i64::MIN` cannot be held (it is the table's NULL): no
    /// numeric(12,7) comes near it.
    pub fn push(&mut self, key: Option<&[u8]>, rates: &Rates) -> Result<(), HeldFull> {
        let Some(key) = key else {
            self.keyless.push(pack(rates));
            return Ok(());
        };
        let off = u32::try_from(self.keys.len()).map_err(|_| HeldFull)?;
        let len = u32::try_from(key.len())
            .ok()
            .filter(|l| l & MATCHED == 0)
            .ok_or(HeldFull)?;
        off.checked_add(len).ok_or(HeldFull)?;
        let idx = u32::try_from(self.rows.len())
            .ok()
            .filter(|i| *i != END)
            .ok_or(HeldFull)?;
        self.keys.extend_from_slice(key);
        let h = self.hasher.hash_one(key);
        let (keys, rows) = (&self.keys, &mut self.rows);
        let key_of = |i: u32| {
            let r = &rows[i as usize];
            &keys[r.off as usize..r.off as usize + (r.len & !MATCHED) as usize]
        };
        let mut next = END;
        match self.index.find_mut(h, |i| key_of(*i) == key) {
            // the newest row heads the chain
            Some(first) => {
                next = *first;
                *first = idx;
            }
            None => {
                let hasher = self.hasher;
                self.index
                    .insert_unique(h, idx, |i| hasher.hash_one(key_of(*i)));
            }
        }
        self.rows.push(Row {
            off,
            len,
            next,
            rates: pack(rates),
        });
        Ok(())
    }

    /// Calls `f` with the rates of every held row with `key` and marks them matched; false when
    /// there is none.
    pub fn matches(&mut self, key: &[u8], mut f: impl FnMut(&Rates)) -> bool {
        let h = self.hasher.hash_one(key);
        let Some(&first) = self.index.find(h, |i| self.key(*i) == key) else {
            return false;
        };
        let mut i = first;
        while i != END {
            let r = &mut self.rows[i as usize];
            r.len |= MATCHED;
            f(&unpack(&r.rates));
            i = r.next;
        }
        true
    }

    /// Every row no [`matches`](Self::matches) marked, with its key (`None`: keyless).
    pub fn unmatched(&self, mut f: impl FnMut(Option<&[u8]>, &Rates)) {
        for (i, r) in self.rows.iter().enumerate() {
            if r.len & MATCHED == 0 {
                f(Some(self.key(i as u32)), &unpack(&r.rates));
            }
        }
        for r in &self.keyless {
            f(None, &unpack(r));
        }
    }

    /// Rows held.
    pub fn len(&self) -> usize {
        self.rows.len() + self.keyless.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of memory held (the allocations' capacities).
    pub fn bytes(&self) -> usize {
        self.keys.capacity()
            + self.rows.capacity() * std::mem::size_of::<Row>()
            + self.index.capacity() * (std::mem::size_of::<u32>() + 1)
            + self.keyless.capacity() * std::mem::size_of::<[i64; 3]>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_row_of_a_key_once_and_keeps_the_rest() {
        let mut h = HeldVersion::with_capacity(4, 16);
        let r = |v: i64| [Some(v), None, Some(0)];
        h.push(Some(b"44"), &r(1)).unwrap();
        h.push(Some(b"441"), &r(2)).unwrap();
        h.push(Some(b"44"), &r(3)).unwrap(); // a repeated prefix
        h.push(None, &r(4)).unwrap();
        assert_eq!(h.len(), 4);
        let mut seen = vec![];
        assert!(h.matches(b"44", |x| seen.push(x[0])));
        seen.sort();
        assert_eq!(seen, [Some(1), Some(3)]);
        assert!(!h.matches(b"4", |_| panic!("no such key")));
        let mut rest = vec![];
        h.unmatched(|k, x| rest.push((k.map(<[u8]>::to_vec), *x)));
        assert_eq!(rest, [(Some(b"441".to_vec()), r(2)), (None, r(4))]);
        assert!(h.bytes() > 0);
    }
}
