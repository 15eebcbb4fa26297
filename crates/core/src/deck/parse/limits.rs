//! The bounds of a deck file ([`Limits`]) and the [`Guard`] reader that enforces the byte
//! bounds on the stream the CSV reader reads (after gzip decompression). Every bound is checked
//! while reading, before anything grows with the input: a gzip or zip bomb, a 50 MB field or a
//! sheet with one cell at XFD1048576 is refused with an error naming the line, column or cell,
//! and memory stays at the bounds below (README.md, "Deck file limits").
//!
//! Owns: the limits and the byte counting. Must not touch: what the bytes mean.

use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Largest deck content: a CSV as read, a gzip'ed CSV after decompression (1 GiB, twice the
/// HTTP upload limit).
pub const MAX_CONTENT_BYTES: u64 = 1 << 30;
/// Largest record (one CSV record, quoted line ends included; one sheet row's text).
pub const MAX_RECORD_BYTES: usize = 64 << 10;
/// Largest field (one CSV field, one sheet cell's text).
pub const MAX_FIELD_BYTES: usize = 4 << 10;
/// Most columns of a deck (header and rows; a sheet cell right of this column is refused).
pub const MAX_COLUMNS: usize = 256;
/// Largest XLSX file (it is a zip: it is read into memory to be opened).
pub const MAX_XLSX_BYTES: u64 = 64 << 20;
/// Largest total of an XLSX file's parts after decompression (the sheet's XML and the shared
/// strings), counted before calamine reads any of them.
pub const MAX_XLSX_UNZIPPED_BYTES: u64 = 256 << 20;

/// The bounds a deck is read under. [`Limits::default`] is the documented set; tests and the
/// fuzz target use smaller ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub content_bytes: u64,
    pub record_bytes: usize,
    pub field_bytes: usize,
    pub columns: usize,
    pub xlsx_bytes: u64,
    pub xlsx_unzipped_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            content_bytes: MAX_CONTENT_BYTES,
            record_bytes: MAX_RECORD_BYTES,
            field_bytes: MAX_FIELD_BYTES,
            columns: MAX_COLUMNS,
            xlsx_bytes: MAX_XLSX_BYTES,
            xlsx_unzipped_bytes: MAX_XLSX_UNZIPPED_BYTES,
        }
    }
}

/// Which byte bound a [`Guard`] stopped at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tripped {
    Content,
    Record,
}

/// The reader's side of a [`Guard`]: how far the stream may go before the current record must
/// have ended, and which bound stopped it.
#[derive(Clone, Debug, Default)]
pub struct GuardState {
    read: Arc<AtomicU64>,
    record_end: Arc<AtomicU64>,
    content_tripped: Arc<AtomicBool>,
    record_tripped: Arc<AtomicBool>,
}

impl GuardState {
    /// A new record starts: it may use `record_bytes` more than what was read so far (the CSV
    /// reader's look-ahead buffer comes on top).
    pub fn start_record(&self, record_bytes: usize) {
        let now = self.read.load(Ordering::Relaxed);
        self.record_end
            .store(now.saturating_add(record_bytes as u64), Ordering::Relaxed);
    }

    pub fn tripped(&self) -> Option<Tripped> {
        if self.content_tripped.load(Ordering::Relaxed) {
            Some(Tripped::Content)
        } else if self.record_tripped.load(Ordering::Relaxed) {
            Some(Tripped::Record)
        } else {
            None
        }
    }
}

/// Counts the bytes read through it and fails the read past the content bound or past the
/// current record's end (see [`GuardState::start_record`]).
pub struct Guard<R> {
    inner: R,
    content_bytes: u64,
    state: GuardState,
}

impl<R: Read> Guard<R> {
    pub fn new(inner: R, content_bytes: u64, record_bytes: usize) -> (Guard<R>, GuardState) {
        let state = GuardState::default();
        state.start_record(record_bytes);
        (
            Guard {
                inner,
                content_bytes,
                state: state.clone(),
            },
            state,
        )
    }
}

impl<R: Read> Read for Guard<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.state.read.load(Ordering::Relaxed);
        if read >= self.content_bytes {
            // one byte more tells a file of exactly the bound from a bigger one
            let mut one = [0u8; 1];
            if self.inner.read(&mut one)? == 0 {
                return Ok(0);
            }
            self.state.content_tripped.store(true, Ordering::Relaxed);
            return Err(std::io::Error::other(format!(
                "the content is larger than {} bytes",
                self.content_bytes
            )));
        }
        if read >= self.state.record_end.load(Ordering::Relaxed) {
            self.state.record_tripped.store(true, Ordering::Relaxed);
            return Err(std::io::Error::other("record too long"));
        }
        let room = (self.content_bytes - read).min(buf.len() as u64) as usize;
        let n = self.inner.read(&mut buf[..room])?;
        self.state.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}
