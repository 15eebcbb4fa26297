//! [`Engine`]: the current snapshot behind `ArcSwap`, plus a moka cache of repeated dips.
//! Architecture Invariant: a request does exactly one `load()` ([`Engine::load`]) and reads every
//! piece of routing data it needs from that snapshot; a swap never blocks a dip, and dips in
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
    /// The last generation handed out by `install`; the live one is the snapshot's own.
    installed: AtomicU64,
    ready: AtomicBool,
    settings: RoutingSettings,
    /// Repeated dips of the same call (Kamailio retransmits, re-dips on failover) within the TTL
    /// get the identical answer without recomputing. Keyed by the generation of the snapshot the
    /// answer was computed on, so a swap invalidates it.
    cache: Option<moka::sync::Cache<(u64, DipRequest), Arc<DipAnswer>>>,
}

/// The snapshot a request works on: one `load()` for the whole request.
pub type Current = arc_swap::Guard<Arc<Snapshot>>;

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
            installed: AtomicU64::new(0),
            ready: AtomicBool::new(false),
            settings,
            cache,
        }
    }

    pub fn settings(&self) -> &RoutingSettings {
        &self.settings
    }

    /// Swaps in a new snapshot and returns its generation.
    pub fn install(&self, mut s: Snapshot) -> u64 {
        let g = self.installed.fetch_add(1, Ordering::AcqRel) + 1;
        s.generation = g;
        self.current.store(Arc::new(s));
        self.ready.store(true, Ordering::Release);
        if let Some(c) = &self.cache {
            c.invalidate_all();
        }
        g
    }

    /// The generation of the snapshot serving now.
    pub fn generation(&self) -> u64 {
        self.current.load().generation
    }

    /// True once a snapshot has been loaded.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// The snapshot serving now, for one request: everything the request reads from routing
    /// data (the dip, the customer of a `src_ip`, numbering) comes from this one load, so it
    /// all belongs to one generation even when a swap lands mid-request.
    pub fn load(&self) -> Current {
        self.current.load()
    }

    pub fn dip(&self, req: &DipRequest) -> DipAnswer {
        self.dip_at(req, now_unix())
    }

    pub fn dip_at(&self, req: &DipRequest, now: i64) -> DipAnswer {
        self.dip_on(&self.current.load(), req, &[], now)
    }

    /// The dip on a snapshot the caller loaded ([`load`](Self::load)), leaving out the routes in
    /// `full` (at capacity right now). The answer depends on live counts when `full` is not
    /// empty, so only dips with an empty `full` use the cache; its key is the generation of
    /// `snap` itself, so an answer is never filed under a generation it was not computed on.
    pub fn dip_on(&self, snap: &Snapshot, req: &DipRequest, full: &[Name], now: i64) -> DipAnswer {
        let cache = match &self.cache {
            Some(c) if full.is_empty() => c,
            _ => return super::dip::dip_with_full(snap, req, now, full),
        };
        let key = (snap.generation, req.clone());
        if let Some(hit) = cache.get(&key) {
            return (*hit).clone();
        }
        let answer = super::dip::dip(snap, req, now);
        cache.insert(key, Arc::new(answer.clone()));
        answer
    }

    /// The unix time a dip uses for effective dates and time windows.
    pub fn now() -> i64 {
        now_unix()
    }

    pub fn simulate(&self, req: &DipRequest) -> Simulation {
        super::dip::simulate(&self.current.load(), req, now_unix())
    }
}
