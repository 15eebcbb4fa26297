//! The call context seam: per call-id, the customer (BAN) and the ordered route names the dip
//! chose. The proxy asks a [`CallContextSource`]; [`DipContextCache`] is the implementation fed
//! by the dip handler (`api::http::Api::dip`, when the request carries `call_id` and the answer
//! is a route). Live call state elsewhere may implement the same trait later.
//!
//! Owns: the bounded call-id → context cache. Must not touch: routing, the network.

use std::sync::Arc;
use std::time::Duration;

/// What the media controller needs to know about a call from its routing decision.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallContext {
    /// the customer's BAN, when the dip named it (dips by `src_ip` carry none)
    pub ban: Option<String>,
    /// route names in the order the dip answered them (none for an inbound call)
    pub routes: Vec<String>,
    /// the customer trunk of an inbound call (its media policy applies)
    pub trunk: Option<String>,
}

/// Where the media controller looks up a call's routing decision.
pub trait CallContextSource: Send + Sync {
    fn context(&self, call_id: &str) -> Option<CallContext>;
}

/// A bounded, expiring call-id → [`CallContext`] cache filled by dips.
pub struct DipContextCache {
    cache: moka::sync::Cache<String, Arc<CallContext>>,
}

impl DipContextCache {
    pub fn new(capacity: u64, ttl: Duration) -> DipContextCache {
        DipContextCache {
            cache: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
        }
    }

    /// Remembers the decision of a routed dip.
    pub fn remember(&self, call_id: &str, ctx: CallContext) {
        self.cache.insert(call_id.to_string(), Arc::new(ctx));
    }
}

impl CallContextSource for DipContextCache {
    fn context(&self, call_id: &str) -> Option<CallContext> {
        self.cache.get(call_id).map(|c| (*c).clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_and_bounds() {
        let c = DipContextCache::new(10, Duration::from_secs(60));
        c.remember(
            "a",
            CallContext {
                ban: Some("1".into()),
                routes: vec!["r".into()],
                trunk: None,
            },
        );
        assert_eq!(c.context("a").unwrap().routes, vec!["r"]);
        assert!(c.context("b").is_none());
    }
}
