//! [`Engine`]: the current snapshot behind `ArcSwap`, plus a moka cache of repeated dips.
//! Architecture Invariant: a dip does exactly one `load()`; a swap never blocks a dip, and dips in
//! flight finish on the snapshot they loaded.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use super::api_types::{DipAnswer, DipRequest, Simulation};
use super::model::Name;
use super::settings::RoutingSettings;
use super::snapshot::Snapshot;

pub struct Engine {
    current: ArcSwap<Snapshot>,
    generation: AtomicU64,
    ready: AtomicBool,
    settings: RoutingSettings,
    /// Repeated dips of the same call (Kamailio retransmits, re-dips on failover) within the TTL
    /// get the identical answer without recomputing. Keyed by snapshot generation, so a swap
    /// invalidates it.
    cache: Option<moka::sync::Cache<(u64, DipRequest), Arc<DipAnswer>>>,
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Engine {
    pub fn new(settings: RoutingSettings) -> Engine {
        let cache = (settings.dip_cache_ttl_ms > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(settings.dip_cache_capacity)
                .time_to_live(Duration::from_millis(settings.dip_cache_ttl_ms))
                .build()
        });
        Engine {
            current: ArcSwap::from_pointee(Snapshot::empty(settings.clone())),
            generation: AtomicU64::new(0),
            ready: AtomicBool::new(false),
            settings,
            cache,
        }
    }

    pub fn settings(&self) -> &RoutingSettings {
        &self.settings
    }

    /// Swaps in a new snapshot and returns its generation.
    pub fn install(&self, s: Snapshot) -> u64 {
        self.current.store(Arc::new(s));
        let g = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        self.ready.store(true, Ordering::Release);
        if let Some(c) = &self.cache {
            c.invalidate_all();
        }
        g
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// True once a snapshot has been loaded.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    pub fn dip(&self, req: &DipRequest) -> DipAnswer {
        self.dip_at(req, now_unix())
    }

    /// [`dip`](Self::dip) that also drops the routes in `full` (at capacity right now). The
    /// answer depends on live counts, so it bypasses the cache unless `full` is empty.
    pub fn dip_with_full(&self, req: &DipRequest, full: &[Name]) -> DipAnswer {
        if full.is_empty() {
            return self.dip(req);
        }
        super::dip::dip_with_full(&self.current.load(), req, now_unix(), full)
    }

    /// The BAN of the customer a dip names: its `ban`, or the customer whose source IPs/CIDRs
    /// match its `src_ip` in the current snapshot.
    pub fn ban_for(&self, req: &DipRequest) -> Option<String> {
        match &req.ban {
            Some(b) => Some(b.clone()),
            None => self
                .snapshot()
                .customer_for(None, req.src_ip)
                .map(|(_, c)| c.c.ban.to_string()),
        }
    }

    pub fn dip_at(&self, req: &DipRequest, now: i64) -> DipAnswer {
        let snap = self.current.load();
        let Some(cache) = &self.cache else {
            return super::dip::dip(&snap, req, now);
        };
        let key = (self.generation.load(Ordering::Acquire), req.clone());
        if let Some(hit) = cache.get(&key) {
            return (*hit).clone();
        }
        let answer = super::dip::dip(&snap, req, now);
        cache.insert(key, Arc::new(answer.clone()));
        answer
    }

    pub fn simulate(&self, req: &DipRequest) -> Simulation {
        super::dip::simulate(&self.current.load(), req, now_unix())
    }
}
