//! Dialstrings of a chosen route: its gateways in failover order for this call, each with the
//! number placed in the vendor's dialstring. Pure.

use std::hash::{Hash, Hasher};

use rustc_hash::FxHasher;

use crate::routing::snapshot::{GatewayC, RouteC};

/// Orders a route's gateways for this call: by priority; within one priority, a weighted shuffle
/// seeded by the call-id (stable for retransmitted dips of the same call), else by weight.
/// `short_code`: the number is a dialed short code (911), not E.164: a `+` the vendor's dialstring
/// puts before `${number}` is left out (`sip:911@…`, never `sip:+911@…`).
pub(super) fn dialstrings(
    r: &RouteC,
    number: &str,
    call_id: Option<&str>,
    short_code: bool,
) -> Vec<String> {
    // on the stack for the usual handful of gateways: the dip allocates only what it returns
    let mut order: smallvec::SmallVec<[&GatewayC; 8]> = r.gateways.iter().collect();
    if let Some(cid) = call_id {
        let mut h = FxHasher::default();
        cid.hash(&mut h);
        let mut state = h.finish() | 1;
        let mut next = move || {
            // xorshift64*: a tiny deterministic PRNG; quality needs are modest (load spreading)
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_F491_4F6C_DD1D)
        };
        let mut i = 0;
        while i < order.len() {
            let p = order[i].priority;
            let end = order[i..]
                .iter()
                .position(|g| g.priority != p)
                .map_or(order.len(), |n| i + n);
            for j in i..end {
                let total: u64 = order[j..end].iter().map(|g| g.weight as u64).sum();
                if total == 0 {
                    break;
                }
                let mut pick = next() % total;
                let mut chosen = j;
                for (n, g) in order[j..end].iter().enumerate() {
                    if pick < g.weight as u64 {
                        chosen = j + n;
                        break;
                    }
                    pick -= g.weight as u64;
                }
                order.swap(j, chosen);
            }
            i = end;
        }
    }
    order
        .iter()
        .map(|g| {
            let head = match g.head.strip_suffix('+') {
                Some(h) if short_code => h,
                _ => g.head.as_str(),
            };
            let mut s = String::with_capacity(head.len() + number.len() + g.tail.len());
            s.push_str(head);
            s.push_str(number);
            s.push_str(&g.tail);
            s
        })
        .collect()
}
