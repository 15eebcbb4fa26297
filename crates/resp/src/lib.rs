//! RESP2, the Redis protocol, as pure functions over bytes: no I/O, no async runtime.
//!
//! warpd speaks it so that Kamailio's `ndb_redis` module (hiredis, one persistent connection per
//! Kamailio process) can dip synchronously: a request is an array of bulk strings
//! (`*3\r\n$4\r\nAUTH\r\n…`) or an inline line (`PING\r\n`, what `telnet`/`nc` send); an answer is
//! any [`Value`].
//!
//! Every length is bounded by [`Limits`] before anything is buffered or allocated: a declared
//! array length, bulk length or inline line over the limit is [`RespError::TooLong`] as soon as
//! its header is read. Input that is valid so far but incomplete is `Ok(None)` ("read more");
//! input that can never become valid is a typed [`RespError`] (the server answers `-ERR …` and
//! closes the connection: after a framing error the stream cannot be resynchronised).
//!
//! Why hand-written instead of the `redis-protocol` crate: the server side needs only the
//! request subset (arrays of bulk strings and inline commands) plus reply encoding, about 200
//! lines; `redis-protocol`'s decoder has no per-frame limits on declared array or bulk lengths
//! (it waits for, and buffers, whatever a length header announces), does not parse inline
//! commands, and brings its own `bytes`/`nom`-style value types the daemon would convert from.
//!
//! Owns: the wire format. Must not touch: sockets, authentication, command semantics.
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;

/// Bounds on what a peer may send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most elements of an array (a command's arguments, or a reply's elements).
    pub max_array: usize,
    /// Longest bulk string.
    pub max_bulk: usize,
    /// Longest line: an inline command, a simple string, an error, a length header.
    pub max_line: usize,
    /// Deepest nesting of arrays in a reply (requests are flat).
    pub max_depth: usize,
}

impl Default for Limits {
    /// A dip has 6 arguments of at most a few hundred bytes; these leave room and no more.
    fn default() -> Limits {
        Limits {
            max_array: 64,
            max_bulk: 4096,
            max_line: 4096,
            max_depth: 4,
        }
    }
}

/// Why input can never become a valid frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RespError {
    #[error("unknown type byte 0x{0:02x}")]
    UnknownType(u8),
    #[error("invalid {what} length {value}")]
    BadLength { what: &'static str, value: String },
    #[error("{what} of {len} bytes/elements is over the limit of {max}")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("expected CRLF after a bulk string")]
    MissingCrlf,
    #[error("invalid integer {0}")]
    BadInteger(String),
    #[error("a command is an array of bulk strings; element {0} is not one")]
    NotBulk(usize),
    #[error("arrays nested deeper than {0}")]
    TooDeep(usize),
    #[error("unbalanced quotes in an inline command")]
    UnbalancedQuotes,
    #[error("a carriage return inside a simple string or error")]
    CrInLine,
    #[error("a simple string or error that is not UTF-8")]
    NotUtf8,
}

/// A RESP2 value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// `+OK`
    Simple(String),
    /// `-ERR message`
    Error(String),
    /// `:42`
    Integer(i64),
    /// `$3\r\nabc`
    Bulk(Vec<u8>),
    /// `$-1` (a nil array `*-1` decodes to this too)
    Nil,
    /// `*2\r\n…`
    Array(Vec<Value>),
}

impl Value {
    /// A bulk string of `s`.
    pub fn bulk(s: impl Into<Vec<u8>>) -> Value {
        Value::Bulk(s.into())
    }

    /// Appends the wire form to `out`. Simple strings and errors have CR/LF replaced by spaces
    /// (they cannot carry them).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Simple(s) => line(out, b'+', s),
            Value::Error(s) => line(out, b'-', s),
            Value::Integer(i) => header(out, b':', *i),
            Value::Bulk(b) => {
                header(out, b'$', b.len() as i64);
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n");
            }
            Value::Nil => out.extend_from_slice(b"$-1\r\n"),
            Value::Array(items) => {
                header(out, b'*', items.len() as i64);
                for v in items {
                    v.encode(out);
                }
            }
        }
    }

    /// The wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

fn line(out: &mut Vec<u8>, t: u8, s: &str) {
    out.push(t);
    out.extend(
        s.bytes()
            .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
    out.extend_from_slice(b"\r\n");
}

fn header(out: &mut Vec<u8>, t: u8, n: i64) {
    let mut s = String::with_capacity(24);
    s.push(t as char);
    let _ = write!(s, "{n}\r\n");
    out.extend_from_slice(s.as_bytes());
}

/// A short printable excerpt of peer input for error messages (never the whole of it).
fn excerpt(b: &[u8]) -> String {
    let s: String = String::from_utf8_lossy(&b[..b.len().min(20)])
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if b.len() > 20 {
        format!("\"{s}…\"")
    } else {
        format!("\"{s}\"")
    }
}

/// The line starting at `pos` (without CRLF) and the position after its LF; None = incomplete.
/// A line may end in a bare LF (as Redis accepts for inline commands).
fn read_line(buf: &[u8], pos: usize, max: usize) -> Result<Option<(&[u8], usize)>, RespError> {
    let rest = &buf[pos..];
    match rest.iter().position(|&b| b == b'\n') {
        Some(i) if i > max + 1 => Err(RespError::TooLong {
            what: "line",
            len: i,
            max,
        }),
        Some(i) => {
            let l = &rest[..i];
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            Ok(Some((l, pos + i + 1)))
        }
        None if rest.len() > max + 1 => Err(RespError::TooLong {
            what: "line",
            len: rest.len(),
            max,
        }),
        None => Ok(None),
    }
}

fn parse_int(l: &[u8]) -> Result<i64, RespError> {
    std::str::from_utf8(l)
        .ok()
        .filter(|s| !s.starts_with('+'))
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| RespError::BadInteger(excerpt(l)))
}

/// A declared length: -1 (nil) or 0..=max.
fn parse_len(l: &[u8], what: &'static str, max: usize) -> Result<Option<usize>, RespError> {
    let n = parse_int(l).map_err(|_| RespError::BadLength {
        what,
        value: excerpt(l),
    })?;
    match n {
        -1 => Ok(None),
        n if n < 0 => Err(RespError::BadLength {
            what,
            value: n.to_string(),
        }),
        n => {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            if n > max {
                Err(RespError::TooLong { what, len: n, max })
            } else {
                Ok(Some(n))
            }
        }
    }
}

/// Decodes one value from the start of `buf`: `Ok(Some((value, bytes consumed)))`, `Ok(None)`
/// when `buf` is a valid but incomplete prefix, or why it can never be valid.
pub fn decode(buf: &[u8], limits: &Limits) -> Result<Option<(Value, usize)>, RespError> {
    decode_at(buf, 0, limits, 0)
}

fn decode_at(
    buf: &[u8],
    pos: usize,
    limits: &Limits,
    depth: usize,
) -> Result<Option<(Value, usize)>, RespError> {
    let Some(&t) = buf.get(pos) else {
        return Ok(None);
    };
    if !matches!(t, b'+' | b'-' | b':' | b'$' | b'*') {
        return Err(RespError::UnknownType(t));
    }
    let Some((l, next)) = read_line(buf, pos + 1, limits.max_line)? else {
        return Ok(None);
    };
    if matches!(t, b'+' | b'-') && l.contains(&b'\r') {
        return Err(RespError::CrInLine);
    }
    let text = || {
        std::str::from_utf8(l)
            .map(str::to_string)
            .map_err(|_| RespError::NotUtf8)
    };
    Ok(match t {
        b'+' => Some((Value::Simple(text()?), next)),
        b'-' => Some((Value::Error(text()?), next)),
        b':' => Some((Value::Integer(parse_int(l)?), next)),
        b'$' => match parse_len(l, "bulk", limits.max_bulk)? {
            None => Some((Value::Nil, next)),
            Some(n) => bulk_body(buf, next, n)?.map(|(b, end)| (Value::Bulk(b.to_vec()), end)),
        },
        _ => match parse_len(l, "array", limits.max_array)? {
            None => Some((Value::Nil, next)),
            Some(n) => {
                if depth >= limits.max_depth {
                    return Err(RespError::TooDeep(limits.max_depth));
                }
                let mut items = Vec::with_capacity(n);
                let mut at = next;
                for _ in 0..n {
                    let Some((v, end)) = decode_at(buf, at, limits, depth + 1)? else {
                        return Ok(None);
                    };
                    items.push(v);
                    at = end;
                }
                Some((Value::Array(items), at))
            }
        },
    })
}

/// The `n` bytes of a bulk string starting at `pos` and the position after their CRLF.
fn bulk_body(buf: &[u8], pos: usize, n: usize) -> Result<Option<(&[u8], usize)>, RespError> {
    let end = pos + n;
    if buf.len() < end + 2 {
        // a wrong byte where the CRLF belongs is an error as soon as it arrives
        if buf.len() > end && buf[end] != b'\r' {
            return Err(RespError::MissingCrlf);
        }
        return Ok(None);
    }
    if &buf[end..end + 2] != b"\r\n" {
        return Err(RespError::MissingCrlf);
    }
    Ok(Some((&buf[pos..end], end + 2)))
}

/// A command's arguments, its name first.
pub type Command = Vec<Vec<u8>>;

/// Decodes one command from the start of `buf`: its arguments (empty for an empty inline line
/// or `*0`, which the server skips) and the bytes consumed; `Ok(None)` = read more.
pub fn decode_command(buf: &[u8], limits: &Limits) -> Result<Option<(Command, usize)>, RespError> {
    let Some(&t) = buf.first() else {
        return Ok(None);
    };
    if t != b'*' {
        return inline(buf, limits);
    }
    let Some((l, mut at)) = read_line(buf, 1, limits.max_line)? else {
        return Ok(None);
    };
    let n = parse_len(l, "array", limits.max_array)?.unwrap_or(0);
    let mut args = Vec::with_capacity(n);
    for i in 0..n {
        match buf.get(at) {
            None => return Ok(None),
            Some(b'$') => {}
            Some(_) => return Err(RespError::NotBulk(i)),
        }
        let Some((l, next)) = read_line(buf, at + 1, limits.max_line)? else {
            return Ok(None);
        };
        let Some(len) = parse_len(l, "bulk", limits.max_bulk)? else {
            return Err(RespError::NotBulk(i));
        };
        let Some((b, end)) = bulk_body(buf, next, len)? else {
            return Ok(None);
        };
        args.push(b.to_vec());
        at = end;
    }
    Ok(Some((args, at)))
}

/// An inline command: space-separated words, `"…"`/`'…'` quoting as redis-cli and Redis read it
/// (backslash escapes inside double quotes: `\"`, `\\`, `\n`, `\r`, `\t`).
fn inline(buf: &[u8], limits: &Limits) -> Result<Option<(Command, usize)>, RespError> {
    let Some((l, next)) = read_line(buf, 0, limits.max_line)? else {
        return Ok(None);
    };
    let mut args: Vec<Vec<u8>> = Vec::new();
    let mut i = 0;
    while i < l.len() {
        if l[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let mut word = Vec::new();
        match l[i] {
            q @ (b'"' | b'\'') => {
                i += 1;
                loop {
                    let Some(&c) = l.get(i) else {
                        return Err(RespError::UnbalancedQuotes);
                    };
                    i += 1;
                    if c == q {
                        break;
                    }
                    if c == b'\\' && q == b'"' {
                        let Some(&e) = l.get(i) else {
                            return Err(RespError::UnbalancedQuotes);
                        };
                        i += 1;
                        word.push(match e {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            other => other,
                        });
                    } else {
                        word.push(c);
                    }
                }
                if l.get(i).is_some_and(|c| !c.is_ascii_whitespace()) {
                    return Err(RespError::UnbalancedQuotes);
                }
            }
            _ => {
                while i < l.len() && !l[i].is_ascii_whitespace() {
                    word.push(l[i]);
                    i += 1;
                }
            }
        }
        if args.len() == limits.max_array {
            return Err(RespError::TooLong {
                what: "array",
                len: args.len() + 1,
                max: limits.max_array,
            });
        }
        args.push(word);
    }
    Ok(Some((args, next)))
}

#[cfg(test)]
mod tests;
