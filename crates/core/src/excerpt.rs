//! Quoting input in error messages: [`excerpt`] (quoted) and [`plain`] (unquoted, for a column
//! name used as an error's field) keep at most [`EXCERPT_CHARS`] characters of the value and
//! escape every control character (an escape sequence in a deck header must not reach the
//! operator's terminal), so an error about a 50 MB field is a line, not 50 MB.
//!
//! Owns: how outside text is shown in messages. Every error that quotes a deck's or a
//! provisioning file's content goes through here.

use std::fmt::Write;

/// At most this many characters of a value are quoted (then `…` and the value's length).
pub const EXCERPT_CHARS: usize = 40;

/// `"value"` with control characters, quotes and backslashes escaped as Rust's `{:?}` does;
/// a longer value is cut after [`EXCERPT_CHARS`] characters and says how long it was.
pub fn excerpt(s: &str) -> String {
    let mut out = String::with_capacity(EXCERPT_CHARS + 16);
    out.push('"');
    let cut = push_escaped(s, &mut out, true);
    out.push('"');
    if cut {
        let _ = write!(out, " ({} bytes)", s.len());
    }
    out
}

/// The value escaped and cut like [`excerpt`], without quotes (a column name as an error's field).
pub fn plain(s: &str) -> String {
    let mut out = String::with_capacity(EXCERPT_CHARS + 16);
    if push_escaped(s, &mut out, false) {
        let _ = write!(out, " ({} bytes)", s.len());
    }
    out
}

/// Names (column headers) for a message: each as [`plain`], at most [`LIST_NAMES`] of them.
pub fn list(names: &[String]) -> String {
    let mut s: Vec<String> = names.iter().take(LIST_NAMES).map(|n| plain(n)).collect();
    if names.len() > LIST_NAMES {
        s.push(format!("… ({} in all)", names.len()));
    }
    s.join(", ")
}

/// At most this many names are listed by [`list`].
pub const LIST_NAMES: usize = 20;

/// Appends the escaped head of `s`; true when it was cut.
fn push_escaped(s: &str, out: &mut String, quoted: bool) -> bool {
    for (n, c) in s.chars().enumerate() {
        if n == EXCERPT_CHARS {
            out.push('…');
            return true;
        }
        match c {
            '"' if quoted => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || is_invisible(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    false
}

/// Characters that change how a terminal shows the rest of the line (bidi overrides, zero-width).
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// The longest error message an error body carries (bytes).
pub const MESSAGE_MAX: usize = 2048;

/// An error message as a body carries it: at most [`MESSAGE_MAX`] bytes (cut at a character
/// boundary, then `…` and the message's length). The last guard against a message that quotes
/// a caller's value whole (a 60 kB path segment in a "does not exist").
pub fn bounded_message(s: String) -> String {
    if s.len() <= MESSAGE_MAX {
        return s;
    }
    let mut cut = MESSAGE_MAX;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}… ({} bytes)", &s[..cut], s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_quoted_and_escaped() {
        assert_eq!(excerpt("0.01"), "\"0.01\"");
        assert_eq!(excerpt("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(excerpt("\x1b[31mRate\x07"), "\"\\u{1b}[31mRate\\u{7}\"");
        assert_eq!(plain("\u{202e}Rate\r\n"), "\\u{202e}Rate\\r\\n");
        assert_eq!(excerpt(""), "\"\"");
    }

    #[test]
    fn long_values_are_cut() {
        let big = "x".repeat(50 << 20);
        let e = excerpt(&big);
        assert!(e.len() < 80, "{e}");
        assert!(e.starts_with(&format!("\"{}…\"", "x".repeat(EXCERPT_CHARS))));
        assert!(e.ends_with(&format!("({} bytes)", 50 << 20)));
        // multi-byte characters are never split
        let e = plain(&"é".repeat(100));
        assert!(e.starts_with(&"é".repeat(EXCERPT_CHARS)), "{e}");
    }
}

/// A serde error message without the value it quotes: `invalid value: integer `12125551234`,
/// expected u16` becomes `invalid value: integer, expected u16`. For inputs whose values may be
/// phone numbers (call events), so a refused value is never echoed into a log line or a reply.
pub fn serde_message_without_value(msg: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        let Some(rest) = msg.strip_prefix(prefix) else {
            continue;
        };
        let Some(i) = rest.rfind(", expected ") else {
            continue;
        };
        let unexpected = &rest[..i];
        // the kind comes first ("integer", "floating point", "string"), the value after it,
        // in backticks or quotes
        let kind = unexpected
            .find(['`', '"'])
            .map_or(unexpected, |q| &unexpected[..q])
            .trim();
        return format!("{prefix}{kind}{}", &rest[i..]);
    }
    msg.to_string()
}

#[cfg(test)]
mod value_free_tests {
    use super::serde_message_without_value as f;
    use super::{bounded_message, MESSAGE_MAX};

    #[test]
    fn serde_messages_lose_the_value_and_keep_the_kind() {
        let cases = [
            (
                "invalid value: integer `12125551234`, expected u16",
                "invalid value: integer, expected u16",
            ),
            (
                "invalid type: string \"+12125551234\", expected u16",
                "invalid type: string, expected u16",
            ),
            (
                "invalid type: floating point `1.5`, expected u32",
                "invalid type: floating point, expected u32",
            ),
            (
                "invalid type: null, expected a string",
                "invalid type: null, expected a string",
            ),
            ("missing field `call_id`", "missing field `call_id`"),
        ];
        for (msg, want) in cases {
            assert_eq!(f(msg), want, "{msg}");
        }
    }

    #[test]
    fn bounded_message_cuts_long_messages_at_a_character() {
        assert_eq!(bounded_message("short".into()), "short");
        let long = format!("customer {:?} does not exist", "é".repeat(5_000));
        let b = bounded_message(long.clone());
        assert!(b.len() < MESSAGE_MAX + 32, "{}", b.len());
        assert!(b.ends_with(&format!("… ({} bytes)", long.len())), "{b}");
    }
}
