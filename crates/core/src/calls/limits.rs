//! Limits: per-customer concurrent-call and calls-per-second limits, customer billing increments,
//! and per-route capacity, as a read-only view (loaded from PostgreSQL by the daemon's
//! `calls::limits::load` and refreshed periodically); plus the token bucket used for calls per
//! second. Pure data.

use std::collections::HashMap;

/// One customer's limits and billing increments.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CustLimits {
    pub max_calls: Option<u32>,
    pub max_cps: Option<u32>,
    pub bill_min: Option<u32>,
    pub bill_inc: Option<u32>,
}

/// Limits of all customers (by BAN) and route capacities (by route name).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LimitsView {
    pub customers: HashMap<String, CustLimits>,
    pub route_capacity: HashMap<String, u32>,
}

/// Token bucket of `rate` tokens per second holding at most `rate` tokens (a burst of one second).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TokenBucket {
    tokens: f64,
    last_us: i64,
}

impl TokenBucket {
    pub fn full(rate: u32, now_us: i64) -> TokenBucket {
        TokenBucket {
            tokens: rate as f64,
            last_us: now_us,
        }
    }

    /// Takes one token if there is one.
    pub fn take(&mut self, rate: u32, now_us: i64) -> bool {
        let dt = (now_us - self.last_us).max(0) as f64 / 1e6;
        self.tokens = (self.tokens + dt * rate as f64).min(rate as f64);
        self.last_us = now_us.max(self.last_us);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket() {
        let mut b = TokenBucket::full(2, 0);
        assert!(b.take(2, 0));
        assert!(b.take(2, 0));
        assert!(!b.take(2, 0), "third call in the same instant");
        assert!(!b.take(2, 400_000));
        assert!(b.take(2, 500_000), "one token back after half a second");
        assert!(!b.take(0, 10_000_000), "a zero limit admits nothing");
    }
}
