//! The pure decoder of PostgreSQL's binary COPY output (`COPY ... TO STDOUT (FORMAT binary)`):
//! [`BinaryCopy`] splits a byte stream, fed in arbitrary chunks, into tuples of fields, and the
//! `field_*`/`pg_*` helpers read the binary encodings of the column types the snapshot loader
//! uses (int8, text, timestamptz, numeric).
//!
//! Owns: the PGCOPY framing (signature, header extension, tuples, trailer) and those encodings.
//! Must not touch: connections, streams, the runtime (the daemon's `db::loader` reads the COPY
//! stream and feeds the chunks in), routing policy.

/// The fixed start of every binary COPY stream.
pub const PGCOPY_SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// A binary COPY stream that is not what it should be: which table, at which row, and what.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("binary COPY of {table}, row {row} of the stream: {malformed}")]
pub struct CopyError {
    pub table: &'static str,
    /// 1-based: the row being read when the stream went wrong
    pub row: u64,
    pub malformed: Malformed,
}

/// What was malformed in a binary COPY stream.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("bad signature")]
    BadSignature,
    #[error("{found} fields, expected {expected}")]
    FieldCount { found: i16, expected: usize },
    #[error("output ended mid-row")]
    EndedMidRow,
}

/// Incremental parser of `COPY ... TO STDOUT (FORMAT binary)` output: a header, then tuples of
/// `N` fields (i16 field count; per field an i32 length, -1 for NULL, then the bytes), then a
/// trailer (field count -1).
pub struct BinaryCopy<const N: usize> {
    table: &'static str,
    header_done: bool,
    trailer_seen: bool,
    rows: u64,
}

impl<const N: usize> BinaryCopy<N> {
    pub fn new(table: &'static str) -> Self {
        BinaryCopy {
            table,
            header_done: false,
            trailer_seen: false,
            rows: 0,
        }
    }

    /// Tuples parsed so far.
    #[inline]
    pub fn rows(&self) -> u64 {
        self.rows
    }

    fn error(&self, malformed: Malformed) -> CopyError {
        CopyError {
            table: self.table,
            row: self.rows + 1,
            malformed,
        }
    }

    /// At the end of the stream, with `rest` the bytes [`BinaryCopy::parse`] left unconsumed:
    /// an error unless the trailer was read and nothing is left over.
    pub fn finish(&self, rest: &[u8]) -> Result<(), CopyError> {
        if !self.trailer_seen || !rest.is_empty() {
            return Err(self.error(Malformed::EndedMidRow));
        }
        Ok(())
    }

    /// Parses every complete tuple at the start of `buf`, calling `f` for each; returns the
    /// number of bytes consumed (the rest is an incomplete tuple). `f`'s error type takes the
    /// stream's own errors ([`CopyError`]) too.
    pub fn parse<E: From<CopyError>>(
        &mut self,
        buf: &[u8],
        f: &mut impl FnMut(&[Option<&[u8]>; N]) -> Result<(), E>,
    ) -> Result<usize, E> {
        let mut at = 0usize;
        if !self.header_done {
            let fixed = PGCOPY_SIGNATURE.len() + 8;
            let Some(h) = buf.get(..fixed) else {
                return Ok(0);
            };
            if !h.starts_with(PGCOPY_SIGNATURE) {
                return Err(self.error(Malformed::BadSignature).into());
            }
            let ext = be_u32(&h[fixed - 4..]) as usize;
            if buf.len() < fixed + ext {
                return Ok(0);
            }
            at = fixed + ext;
            self.header_done = true;
        }
        let mut fields: [Option<&[u8]>; N] = [None; N];
        while !self.trailer_seen {
            let Some(count) = buf.get(at..at + 2) else {
                break;
            };
            let count = i16::from_be_bytes([count[0], count[1]]);
            if count == -1 {
                self.trailer_seen = true;
                at += 2;
                break;
            }
            if count as usize != N {
                return Err(self
                    .error(Malformed::FieldCount {
                        found: count,
                        expected: N,
                    })
                    .into());
            }
            let mut p = at + 2;
            let mut complete = true;
            for slot in fields.iter_mut() {
                let Some(len) = buf.get(p..p + 4) else {
                    complete = false;
                    break;
                };
                let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
                p += 4;
                if len < 0 {
                    *slot = None;
                    continue;
                }
                let Some(v) = buf.get(p..p + len as usize) else {
                    complete = false;
                    break;
                };
                *slot = Some(v);
                p += len as usize;
            }
            if !complete {
                break;
            }
            f(&fields)?;
            self.rows += 1;
            at = p;
        }
        Ok(at)
    }
}

/// The first four bytes, big-endian (fewer bytes: the value of those).
#[inline]
pub fn be_u32(b: &[u8]) -> u32 {
    b.iter().take(4).fold(0u32, |a, &x| (a << 8) | x as u32)
}

/// An 8-byte big-endian integer (a binary int8); None for any other length.
#[inline]
pub fn be_i64(b: &[u8]) -> Option<i64> {
    Some(i64::from_be_bytes(b.try_into().ok()?))
}

/// Unix seconds (floored) from a binary timestamptz: microseconds since 2000-01-01 UTC, with
/// -infinity / infinity stored as i64::MIN / i64::MAX, which is also what the model uses.
#[inline]
pub fn pg_timestamptz(b: &[u8]) -> Option<i64> {
    const PG_EPOCH_UNIX: i64 = 946_684_800;
    let us = be_i64(b)?;
    Some(match us {
        i64::MIN | i64::MAX => us,
        _ => us.div_euclid(1_000_000) + PG_EPOCH_UNIX,
    })
}

/// A binary `numeric` in units of 1e-7, rounded half away from zero like SQL `round(x * 1e7)`.
/// None for NaN, ±Infinity, malformed input or values beyond i64.
///
/// Layout: ndigits u16, weight i16, sign u16, dscale u16, then ndigits base-10000 digits;
/// value = Σ digit[i] × 10000^(weight − i).
#[inline]
pub fn pg_numeric_scaled(b: &[u8]) -> Option<i64> {
    /// 10^k for k = 0..=19 (the largest power of ten in a u64)
    const POW10: [u64; 20] = {
        let mut t = [1u64; 20];
        let mut k = 1;
        while k < 20 {
            t[k] = t[k - 1] * 10;
            k += 1;
        }
        t
    };
    let h = |i: usize| b.get(i..i + 2).map(|x| u16::from_be_bytes([x[0], x[1]]));
    let ndigits = h(0)? as usize;
    let weight = h(2)? as i16 as i32;
    let negative = match h(4)? {
        0x0000 => false,
        0x4000 => true,
        _ => return None, // NaN, +Infinity, -Infinity
    };
    if b.len() != 8 + 2 * ndigits {
        return None;
    }
    // Accumulate value × 10^8 exactly (the 10^-8 digit decides the rounding; anything smaller
    // cannot change a half-up rounding at 10^-7), then round to 10^-7. u64 holds up to ~1.8e11
    // dollars here, far beyond numeric(12,7).
    let mut acc: u64 = 0;
    for i in 0..ndigits {
        let d = h(8 + 2 * i)? as u64;
        if d > 9999 {
            return None;
        }
        let exp = 4 * (weight - i as i32) + 8;
        if exp >= 0 {
            let m = *POW10.get(exp as usize)?;
            acc = acc.checked_add(d.checked_mul(m)?)?;
        } else if exp > -4 {
            acc += d / POW10[exp.unsigned_abs() as usize];
        }
    }
    let v = i64::try_from(acc / 10 + u64::from(acc % 10 >= 5)).ok()?;
    Some(if negative { -v } else { v })
}

/// A binary int8 field; None for NULL or a malformed value.
#[inline]
pub fn field_i64(f: Option<&[u8]>) -> Option<i64> {
    f.and_then(be_i64)
}

/// A text field; None for NULL or invalid UTF-8.
#[inline]
pub fn field_str(f: Option<&[u8]>) -> Option<&str> {
    f.and_then(|v| std::str::from_utf8(v).ok())
}

/// One rate of a [`PackedRateRow`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PackedRate {
    /// SQL NULL: no rate in this zone
    Null,
    /// in units of 1e-7 (see [`pg_numeric_scaled`])
    Scaled(i64),
    /// NaN, an infinity or beyond i64
    Unreadable,
}

/// `vendor_rates.load_row` (sql/0024): the columns of a vendor rate that the snapshot needs
/// besides its key, packed by PostgreSQL when the row is written, so that a snapshot build
/// gets one value per row from the server instead of eight (each value sent costs the server
/// about as much as reading the row).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackedRateRow {
    pub route_id: i64,
    pub min_seconds: i32,
    pub inc_seconds: i32,
    /// unix seconds ([`pg_timestamptz`]: ±infinity as i64::MIN / i64::MAX)
    pub effective_from: i64,
    pub effective_until: i64,
    /// interstate, intrastate, local
    pub rates: [PackedRate; 3],
}

/// Bytes of `load_row` before the rates.
const PACKED_FIXED: usize = 32;

/// Decodes `load_row`: `int8send(route_id) || int4send(min_seconds) || int4send(inc_seconds) ||
/// timestamptz_send(effective_from) || timestamptz_send(effective_until)`, then for each of
/// rate_inter, rate_intra, rate_local `numeric_send(rate)` (its length follows from its digit
/// count) or `\xffff` for NULL (a digit count no numeric has). None when the layout is not
/// that (too short, trailing bytes, a truncated numeric).
pub fn pg_packed_rate_row(b: &[u8]) -> Option<PackedRateRow> {
    let i32_at = |i: usize| Some(i32::from_be_bytes(b.get(i..i + 4)?.try_into().ok()?));
    let route_id = be_i64(b.get(0..8)?)?;
    let min_seconds = i32_at(8)?;
    let inc_seconds = i32_at(12)?;
    let effective_from = pg_timestamptz(b.get(16..24)?)?;
    let effective_until = pg_timestamptz(b.get(24..PACKED_FIXED)?)?;
    let mut at = PACKED_FIXED;
    let mut rates = [PackedRate::Null; 3];
    for r in &mut rates {
        let ndigits = u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?);
        if ndigits == 0xffff {
            at += 2;
            continue;
        }
        let len = 8 + 2 * ndigits as usize;
        *r = match pg_numeric_scaled(b.get(at..at + len)?) {
            Some(v) => PackedRate::Scaled(v),
            None => PackedRate::Unreadable,
        };
        at += len;
    }
    (at == b.len()).then_some(PackedRateRow {
        route_id,
        min_seconds,
        inc_seconds,
        effective_from,
        effective_until,
        rates,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::Rate;

    fn be_i32(b: &[u8]) -> Option<i32> {
        Some(i32::from_be_bytes(b.try_into().ok()?))
    }

    /// Binary numeric from (weight, sign, base-10000 digits).
    fn numeric(weight: i16, sign: u16, digits: &[u16]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend((digits.len() as u16).to_be_bytes());
        v.extend(weight.to_be_bytes());
        v.extend(sign.to_be_bytes());
        v.extend(7u16.to_be_bytes());
        for d in digits {
            v.extend(d.to_be_bytes());
        }
        v
    }

    #[test]
    fn binary_numerics_scale_exactly() {
        // 0.0045 = 45 x 10000^-1
        assert_eq!(pg_numeric_scaled(&numeric(-1, 0, &[45])), Some(45_000));
        // 0 has no digits
        assert_eq!(pg_numeric_scaled(&numeric(0, 0, &[])), Some(0));
        // 0.0000001 = 0.0000|0010 = 10 x 10000^-2; 0.00001 = 1000 x 10000^-2
        assert_eq!(pg_numeric_scaled(&numeric(-2, 0, &[10])), Some(1));
        assert_eq!(pg_numeric_scaled(&numeric(-2, 0, &[1000])), Some(100));
        // 12345.6789012 = 1|2345|.6789|0120
        assert_eq!(
            pg_numeric_scaled(&numeric(1, 0, &[1, 2345, 6789, 120])),
            Some(123_456_789_012)
        );
        // 429.4967294 (Rate::MAX)
        assert_eq!(
            pg_numeric_scaled(&numeric(0, 0, &[429, 4967, 2940])),
            Some(Rate::MAX.0 as i64)
        );
        // half-up at 1e-7 like round(): 0.00000005 -> 1, 0.00000004 -> 0; negative symmetric
        assert_eq!(pg_numeric_scaled(&numeric(-2, 0, &[5])), Some(1));
        assert_eq!(pg_numeric_scaled(&numeric(-2, 0, &[4])), Some(0));
        // digits below 1e-8 are ignored: 0.000000049999 -> 0
        assert_eq!(pg_numeric_scaled(&numeric(-2, 0, &[4, 9999])), Some(0));
        assert_eq!(
            pg_numeric_scaled(&numeric(-1, 0x4000, &[45])),
            Some(-45_000)
        );
        // 1e4 = 1 x 10000^1
        assert_eq!(
            pg_numeric_scaled(&numeric(1, 0, &[1])),
            Some(100_000_000_000)
        );
        // NaN, infinities, garbage, overflow
        assert_eq!(pg_numeric_scaled(&numeric(0, 0xC000, &[])), None);
        assert_eq!(pg_numeric_scaled(&numeric(0, 0xD000, &[])), None);
        assert_eq!(pg_numeric_scaled(&numeric(0, 0, &[10000])), None);
        assert_eq!(pg_numeric_scaled(&numeric(9, 0, &[1])), None);
        assert_eq!(pg_numeric_scaled(&[0, 1, 0, 0]), None);
    }

    /// (row, bytes) both ways: the bytes as sql/0024's expression writes them.
    #[test]
    fn packed_rate_rows_decode() {
        let ts = |unix: i64| ((unix - 946_684_800) * 1_000_000).to_be_bytes();
        let fixed = |route: i64, min: i32, inc: i32, from: [u8; 8], until: [u8; 8]| {
            let mut v = Vec::new();
            v.extend(route.to_be_bytes());
            v.extend(min.to_be_bytes());
            v.extend(inc.to_be_bytes());
            v.extend(from);
            v.extend(until);
            v
        };
        let cat = |parts: &[&[u8]]| parts.concat();
        let null: &[u8] = &[0xff, 0xff];
        let defaults = fixed(1001, 6, 6, i64::MIN.to_be_bytes(), i64::MAX.to_be_bytes());
        let cases: Vec<(Vec<u8>, PackedRateRow)> = vec![
            (
                cat(&[
                    &defaults,
                    &numeric(-1, 0, &[45]),
                    &numeric(-1, 0, &[12, 3400]),
                    null,
                ]),
                PackedRateRow {
                    route_id: 1001,
                    min_seconds: 6,
                    inc_seconds: 6,
                    effective_from: i64::MIN,
                    effective_until: i64::MAX,
                    rates: [
                        PackedRate::Scaled(45_000),
                        PackedRate::Scaled(12_340),
                        PackedRate::Null,
                    ],
                },
            ),
            (
                cat(&[
                    &fixed(7, 30, 1, ts(1_700_000_000), ts(1_800_000_000)),
                    null,
                    &numeric(0, 0, &[]),
                    &numeric(0, 0xC000, &[]),
                ]),
                PackedRateRow {
                    route_id: 7,
                    min_seconds: 30,
                    inc_seconds: 1,
                    effective_from: 1_700_000_000,
                    effective_until: 1_800_000_000,
                    rates: [
                        PackedRate::Null,
                        PackedRate::Scaled(0),
                        PackedRate::Unreadable,
                    ],
                },
            ),
        ];
        for (bytes, row) in &cases {
            assert_eq!(pg_packed_rate_row(bytes).as_ref(), Some(row));
            // every shorter prefix and any trailing byte is malformed
            for cut in 0..bytes.len() {
                assert_eq!(pg_packed_rate_row(&bytes[..cut]), None, "cut at {cut}");
            }
            assert_eq!(pg_packed_rate_row(&cat(&[bytes, &[0]])), None);
        }
    }

    #[test]
    fn binary_timestamps_map_to_unix_seconds() {
        let ts = |us: i64| pg_timestamptz(&us.to_be_bytes());
        assert_eq!(ts(0), Some(946_684_800));
        assert_eq!(ts(1_500_000), Some(946_684_801));
        assert_eq!(ts(-1), Some(946_684_799), "floored");
        assert_eq!(ts(i64::MIN), Some(i64::MIN));
        assert_eq!(ts(i64::MAX), Some(i64::MAX));
        assert_eq!(pg_timestamptz(&[0; 4]), None);
    }

    /// Binary COPY stream bytes for rows of i32 / NULL fields.
    fn copy_stream(rows: &[&[Option<i32>]]) -> Vec<u8> {
        let mut v = PGCOPY_SIGNATURE.to_vec();
        v.extend(0u32.to_be_bytes());
        v.extend(0u32.to_be_bytes());
        for r in rows {
            v.extend((r.len() as i16).to_be_bytes());
            for f in *r {
                match f {
                    None => v.extend((-1i32).to_be_bytes()),
                    Some(x) => {
                        v.extend(4i32.to_be_bytes());
                        v.extend(x.to_be_bytes());
                    }
                }
            }
        }
        v.extend((-1i16).to_be_bytes());
        v
    }

    #[test]
    fn binary_copy_parses_across_arbitrary_chunk_boundaries() {
        let bytes = copy_stream(&[&[Some(1), None], &[Some(2), Some(3)], &[None, Some(4)]]);
        for split in 1..bytes.len() {
            let mut p = BinaryCopy::<2>::new("t");
            let mut got = Vec::new();
            let mut f = |r: &[Option<&[u8]>; 2]| -> Result<(), CopyError> {
                got.push(r.map(|x| x.and_then(be_i32)));
                Ok(())
            };
            let mut carry = Vec::new();
            for chunk in [&bytes[..split], &bytes[split..]] {
                carry.extend_from_slice(chunk);
                let used = p.parse(&carry, &mut f).unwrap();
                carry.drain(..used);
            }
            assert!(p.trailer_seen && carry.is_empty(), "split {split}");
            assert_eq!(
                got,
                vec![[Some(1), None], [Some(2), Some(3)], [None, Some(4)]],
                "split {split}"
            );
        }
        let mut p = BinaryCopy::<3>::new("t");
        let err = p
            .parse(&bytes, &mut |_| Ok::<(), CopyError>(()))
            .unwrap_err();
        assert!(err.to_string().contains("2 fields, expected 3"), "{err}");
        let mut p = BinaryCopy::<2>::new("t");
        assert!(p
            .parse(b"NOTCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0", &mut |_| Ok::<
                (),
                CopyError,
            >(
                ()
            ))
            .is_err());
    }
}
