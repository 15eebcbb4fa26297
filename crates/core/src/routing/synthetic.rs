//! Deterministic generated networks for benchmarks and load tests (not used by the daemon).
//!
//! The benchmark network of the routing issue: N vendor routes (LRN billing) each pricing the same
//! P NANP prefixes, 2 partitions, C customers. Prefixes are `1` + NPA-NXX (7 digits) and, past the
//! 640,000 NPA-NXX codes, `1` + NPA-NXX-X thousands blocks (8 digits) nested under them, so
//! longest-prefix match has real overlaps. Rates come from a hash of (route, prefix): stable across
//! runs, different per route.

use super::model::*;
use super::settings::RoutingSettings;
use super::snapshot::{BuildError, SnapshotBuilder};

#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub routes: usize,
    pub prefixes: usize,
    pub customers: usize,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            routes: 20,
            prefixes: 1_000_000,
            customers: 1_000,
        }
    }
}

const NPA_NXX: usize = 800 * 800;

/// The i-th prefix (digits, without '+').
pub fn prefix(i: usize) -> String {
    if i < NPA_NXX {
        let (npa, nxx) = (200 + i / 800, 200 + i % 800);
        format!("1{npa:03}{nxx:03}")
    } else {
        let j = i - NPA_NXX;
        let base = j / 10;
        let (npa, nxx) = (200 + (base % NPA_NXX) / 800, 200 + (base % NPA_NXX) % 800);
        format!("1{npa:03}{nxx:03}{}", j % 10)
    }
}

fn mix(mut x: u64) -> u64 {
    // splitmix64 finalizer
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Interstate / intrastate / local rates of route `r` for prefix `i`, in Rate units
/// (0.0010–0.0110 per minute).
pub fn rates(r: usize, i: usize) -> [u32; 3] {
    let h = mix(((r as u64) << 40) ^ i as u64);
    let inter = 10_000 + (h % 100_000) as u32;
    let intra = 10_000 + ((h >> 20) % 100_000) as u32;
    let local = 10_000 + ((h >> 40) % 50_000) as u32;
    [inter, intra, local]
}

pub fn route_id(r: usize) -> Id {
    1000 + r as Id
}

pub fn ban(c: usize) -> String {
    format!("{}", 200_000 + c)
}

/// 10.x.y.z/32 source address of customer `c`.
pub fn customer_ip(c: usize) -> std::net::IpAddr {
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(
        10,
        (c >> 16) as u8,
        (c >> 8) as u8,
        c as u8,
    ))
}

/// Adds everything but the vendor rates; then call [`add_rates`].
pub fn add_topology(b: &mut SnapshotBuilder, spec: &Spec) {
    for r in 0..spec.routes {
        let vid = 1 + r as Id;
        b.vendor(Vendor {
            id: vid,
            name: format!("vendor{r:02}"),
            billing: BillingModel::Lrn,
            dialstring: "sip:+${number}@${host}:${port};transport=${transport}".into(),
            enabled: true,
        });
        for g in 0..2 {
            b.gateway(Gateway {
                id: vid * 10 + g,
                vendor_id: vid,
                name: format!("gw{g}"),
                host: format!("192.0.2.{}", (r * 2 + g as usize) % 250 + 1),
                port: 5060,
                transport: Transport::Udp,
                priority: g as i32,
                weight: 1,
                enabled: true,
            });
        }
        b.route(Route {
            id: route_id(r),
            name: format!("route{r:02}"),
            vendor_id: vid,
            priority: (r % 3) as i32,
            weight: 1,
            capacity: None,
            enabled: true,
        });
    }
    // partition "all" has every route; "half" the even ones
    b.partition(Partition {
        id: 1,
        name: "all".into(),
        route_ids: (0..spec.routes).map(route_id).collect(),
    });
    b.partition(Partition {
        id: 2,
        name: "half".into(),
        route_ids: (0..spec.routes).step_by(2).map(route_id).collect(),
    });
    for c in 0..spec.customers {
        b.customer(Customer {
            id: c as Id + 1,
            ban: ban(c),
            name: format!("customer {c}"),
            enabled: true,
            max_rate: Some(Rate(100_000)),
            blocked_prefixes: vec!["1900".into(), "1976".into()],
            allowed_classes: [DestClass::Domestic, DestClass::Tollfree]
                .into_iter()
                .collect(),
            max_results: 5,
            allow_negative_margin: false,
            margin: Some(MarginRule {
                prefix: String::new(),
                margin_ppm: 150_000,
                fixed_fee: Rate(0),
            }),
            margin_rules: vec![],
            partitions: vec![CustomerPartition {
                partition_id: 1 + (c % 2) as Id,
                priority: 1,
                window: None,
            }],
            source_cidrs: vec![ipnet::IpNet::from(customer_ip(c))],
            emergency_callback: None,
        });
    }
}

pub fn add_rates(b: &mut SnapshotBuilder, spec: &Spec) -> Result<(), BuildError> {
    b.reserve_rates(spec.routes * spec.prefixes);
    for i in 0..spec.prefixes {
        let p = prefix(i);
        for r in 0..spec.routes {
            let [inter, intra, local] = rates(r, i);
            b.vendor_rate(
                route_id(r),
                RateKey::Prefix(&p),
                RateRow {
                    inter: Some(Rate(inter)),
                    intra: Some(Rate(intra)),
                    local: Some(Rate(local)),
                    min_seconds: 6,
                    inc_seconds: 6,
                    effective_from: i64::MIN,
                    effective_until: i64::MAX,
                },
            )?;
        }
    }
    Ok(())
}

/// NPA-NXX data for the first `n` codes: states alternate so calls are a mix of zones.
pub fn add_numbering(b: &mut SnapshotBuilder, n: usize) -> Result<(), BuildError> {
    const STATES: [&str; 4] = ["NY", "CA", "TX", "IL"];
    for i in 0..n.min(NPA_NXX) {
        let p = prefix(i);
        b.npanxx(
            &p[1..7],
            NpaNxxInfo {
                state: STATES[(i / 800) % 4].into(),
                lata: format!("{}", 100 + (i / 800) % 300),
                ocn: format!("{:04}", i % 9000),
                rate_center: String::new(),
            },
        )?;
    }
    Ok(())
}

pub fn builder(spec: &Spec) -> Result<SnapshotBuilder, BuildError> {
    let mut b = SnapshotBuilder::new(RoutingSettings {
        dip_cache_ttl_ms: 0,
        ..Default::default()
    });
    add_topology(&mut b, spec);
    add_rates(&mut b, spec)?;
    add_numbering(&mut b, spec.prefixes)?;
    Ok(b)
}

/// A dialed number inside prefix `i` (10-digit NANP with a suffix).
pub fn number_in(i: usize, salt: usize) -> String {
    let p = prefix(i);
    let mut s = p[1..].to_string();
    while s.len() < 10 {
        s.push(char::from(b'0' + ((salt + s.len()) % 10) as u8));
    }
    s
}
