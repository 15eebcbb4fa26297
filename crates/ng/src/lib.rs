//! The ng protocol codec: pure functions over bytes, no I/O.
//!
//! An ng datagram is `COOKIE SP bencode(dictionary)` in both directions. [`Bencode`] is the
//! lossless value model, [`parse_datagram`] / [`encode_datagram`] split and join the cookie, and
//! [`NgRequest`] / [`NgResponse`] are the typed views of the two directions.
//!
//! Owns: the wire format. Must not touch: sockets, nodes, policy.
//!
//! Why a hand-rolled bencode (≈150 lines) instead of `serde_bencode`: ng peers do not send
//! canonical bencode — Kamailio's `rtpengine` module writes dictionary keys unsorted and RTPEngine
//! itself answers with keys in insertion order (`sdp` before `result`). `serde_bencode::Value`
//! keeps dictionaries in a `HashMap`, so it loses that order, re-sorts on output and cannot give
//! byte-exact round trips of what the daemon sent; its errors also carry no byte offset. Here a
//! dictionary is an ordered list of pairs: decode → encode is the identity on every valid input
//! (tested byte-exact against captured daemon exchanges and with proptest).
//!
//! The typed layer is a view over that dictionary: [`NgRequest`] exposes the command (an enum;
//! an unknown command is a typed error), call-id, tags, SDP and flags, and setters that edit the
//! dictionary in place; every other key stays where it was, so a proxied request carries
//! everything the sender put in it.

mod bencode;
mod message;
mod quality;

pub use bencode::*;
pub use message::*;
pub use quality::*;

#[cfg(test)]
mod tests;
