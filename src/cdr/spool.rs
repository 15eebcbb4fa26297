//! The local spool: call events that could not be committed to PostgreSQL are appended here and
//! fsync'd before they are acknowledged; when the database is back they are replayed into it and
//! the file is removed.
//!
//! Format of `events.spool`: a sequence of records `len: u32 LE | crc32(payload): u32 LE | payload`.
//! A crash can only leave the LAST record cut short (records are acknowledged after the fsync
//! that completes them), so reading stops at the first record that is short or fails its CRC:
//! everything before it is returned, the damage is reported (logged and counted by the caller).
//! A failed append is rolled back by truncating to the previous length, so later appends never
//! follow garbage.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Largest record accepted when reading (a corrupt length must not allocate gigabytes).
pub const MAX_RECORD: usize = 1 << 20;
const FILE: &str = "events.spool";

/// Appends one record to `out`.
pub fn encode(payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Splits spool bytes into record payloads; the second value describes where and why reading
/// stopped early (a cut or corrupt record), if it did.
pub fn decode(mut b: &[u8]) -> (Vec<&[u8]>, Option<String>) {
    let mut out = vec![];
    let mut offset = 0usize;
    while !b.is_empty() {
        if b.len() < 8 {
            return (
                out,
                Some(format!(
                    "record at byte {offset}: header cut short ({} of 8 bytes)",
                    b.len()
                )),
            );
        }
        let len = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
        let crc = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
        if len > MAX_RECORD {
            return (
                out,
                Some(format!(
                    "record at byte {offset}: length {len} over the limit"
                )),
            );
        }
        if b.len() - 8 < len {
            return (
                out,
                Some(format!(
                    "record at byte {offset}: cut short ({} of {len} payload bytes)",
                    b.len() - 8
                )),
            );
        }
        let payload = &b[8..8 + len];
        if crc32fast::hash(payload) != crc {
            return (
                out,
                Some(format!("record at byte {offset}: checksum mismatch")),
            );
        }
        out.push(payload);
        b = &b[8 + len..];
        offset += 8 + len;
    }
    (out, None)
}

/// What [`Spool::read`] found.
#[derive(Debug, Default)]
pub struct SpoolContents {
    pub records: Vec<Vec<u8>>,
    pub damage: Option<String>,
}

/// The spool file of one warpd.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    path: PathBuf,
    file: Option<File>,
    len: u64,
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Spool {
    /// Opens (creating the directory if needed) without touching an existing file.
    pub fn open(dir: &Path) -> io::Result<Spool> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(FILE);
        let len = match std::fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        Ok(Spool {
            dir: dir.to_path_buf(),
            path,
            file: None,
            len,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes in the spool.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends the payloads as records and fsyncs; on error the file is cut back to its previous
    /// length (nothing half-written stays behind).
    pub fn append<'a>(&mut self, payloads: impl IntoIterator<Item = &'a [u8]>) -> io::Result<()> {
        let mut buf = Vec::new();
        for p in payloads {
            encode(p, &mut buf);
        }
        if buf.is_empty() {
            return Ok(());
        }
        if self.file.is_none() {
            let created = !self.path.exists();
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            if created {
                f.sync_all()?;
                sync_dir(&self.dir)?;
            }
            self.file = Some(f);
        }
        let before = self.len;
        let res = match self.file.as_mut() {
            Some(f) => f.write_all(&buf).and_then(|_| f.sync_data()),
            None => Err(io::Error::other("spool file not open")),
        };
        match res {
            Ok(()) => {
                self.len += buf.len() as u64;
                Ok(())
            }
            Err(e) => {
                if let Some(f) = self.file.as_ref() {
                    let _ = f.set_len(before);
                    let _ = f.sync_data();
                }
                Err(e)
            }
        }
    }

    /// Reads every intact record.
    pub fn read(&self) -> io::Result<SpoolContents> {
        let mut bytes = vec![];
        match File::open(&self.path) {
            Ok(mut f) => {
                f.read_to_end(&mut bytes)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(SpoolContents::default()),
            Err(e) => return Err(e),
        }
        let (recs, damage) = decode(&bytes);
        Ok(SpoolContents {
            records: recs.into_iter().map(<[u8]>::to_vec).collect(),
            damage,
        })
    }

    /// Removes the file (after its records are safely in the database).
    pub fn clear(&mut self) -> io::Result<()> {
        self.file = None;
        match std::fs::remove_file(&self.path) {
            Ok(()) => sync_dir(&self.dir)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        self.len = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn byte_exact_record() {
        let mut b = vec![];
        encode(b"abc", &mut b);
        assert_eq!(&b[..4], &[3, 0, 0, 0]);
        assert_eq!(&b[4..8], &0x352441c2u32.to_le_bytes());
        assert_eq!(&b[8..], b"abc");
    }

    #[test]
    fn append_read_truncated_tail_and_clear() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path()).unwrap();
        s.append([b"one".as_slice(), b"two".as_slice()]).unwrap();
        s.append([b"three".as_slice()]).unwrap();
        let c = s.read().unwrap();
        assert_eq!(
            c.records,
            vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]
        );
        assert!(c.damage.is_none());
        // cut the last record in the middle, as a crash during write would
        let f = OpenOptions::new().write(true).open(s.path()).unwrap();
        f.set_len(s.len() - 2).unwrap();
        let s2 = Spool::open(dir.path()).unwrap();
        let c = s2.read().unwrap();
        assert_eq!(c.records, vec![b"one".to_vec(), b"two".to_vec()]);
        assert!(c.damage.unwrap().contains("cut short"));
        let mut s2 = s2;
        s2.clear().unwrap();
        assert!(s2.read().unwrap().records.is_empty());
        assert!(s2.is_empty());
    }

    proptest! {
        #[test]
        fn round_trip(recs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..20)) {
            let mut b = vec![];
            for r in &recs { encode(r, &mut b); }
            let (out, damage) = decode(&b);
            prop_assert!(damage.is_none());
            prop_assert_eq!(out.len(), recs.len());
            for (a, r) in out.iter().zip(&recs) { prop_assert_eq!(*a, r.as_slice()); }
        }

        #[test]
        fn any_cut_or_garbage_never_panics_and_keeps_a_prefix(
            recs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..32), 1..8),
            cut in any::<prop::sample::Index>(),
            garbage in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut b = vec![];
            for r in &recs { encode(r, &mut b); }
            let at = cut.index(b.len());
            b.truncate(at);
            let (out, _) = decode(&b);
            prop_assert!(out.len() <= recs.len());
            for (a, r) in out.iter().zip(&recs) { prop_assert_eq!(*a, r.as_slice()); }
            let _ = decode(&garbage);
        }
    }
}
