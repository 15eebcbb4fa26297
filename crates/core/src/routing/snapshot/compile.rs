//! Compiling the small parts' rows into the indexes a dip reads: ids to positions, dialstrings
//! split around `${number}`, partitions by priority, customers by BAN and source address,
//! overrides most specific first. Runs on every build, full or incremental: O(small rows).
//!
//! Owns: the references between small tables and their checks ([`BuildError`]).
//! Must not touch: the rate part (see `rates`), the database.

use std::net::IpAddr;

use ipnet::IpNet;
use rustc_hash::FxHashMap;

use super::parts::{CustomerRows, PolicyRows, TopologyRows};
use super::*;
use crate::routing::settings::RoutingSettings;

/// The compiled small tables of a snapshot.
pub(crate) struct Compiled {
    pub vendors: Vec<VendorC>,
    pub routes: Vec<RouteC>,
    pub partitions: Vec<PartitionC>,
    pub customers: Vec<CustomerC>,
    pub customer_by_ban: FxHashMap<String, u32>,
    pub customer_by_id: FxHashMap<Id, u32>,
    pub customer_by_ip: FxHashMap<IpAddr, u32>,
    pub customer_cidrs: Vec<(IpNet, u32)>,
    pub overrides: Vec<OverrideC>,
    pub exclusions: Vec<ExclusionC>,
    pub emergency_route: Option<RouteIx>,
    pub warnings: Vec<String>,
}

/// Route id → index, in the topology's route order (the rate index's route order).
pub(crate) fn route_index(topology: &TopologyRows) -> FxHashMap<Id, RouteIx> {
    topology
        .routes
        .iter()
        .take(RouteIx::MAX as usize + 1)
        .enumerate()
        .map(|(i, r)| (r.id, i as RouteIx))
        .collect()
}

pub(crate) fn compile(
    settings: &RoutingSettings,
    topology: &TopologyRows,
    customer_rows: &CustomerRows,
    policy: &PolicyRows,
) -> Result<Compiled, BuildError> {
    let TopologyRows {
        vendors,
        gateways,
        routes,
        partitions,
    } = topology;
    if routes.len() > RouteIx::MAX as usize {
        return Err(BuildError::TooManyRoutes {
            limit: RouteIx::MAX as usize,
        });
    }
    let route_ix = route_index(topology);
    let customers = &customer_rows.customers;
    let customer_rates = &customer_rows.rates;
    let overrides = &policy.overrides;
    let exclusions = &policy.exclusions;
    let mut warnings = Vec::new();

    // vendors and their gateways
    let vendor_ix: FxHashMap<Id, usize> =
        vendors.iter().enumerate().map(|(i, v)| (v.id, i)).collect();
    let mut vendor_gws: Vec<Vec<GatewayC>> = vec![Vec::new(); vendors.len()];
    for g in gateways.iter().filter(|g| g.enabled) {
        let Some(&vi) = vendor_ix.get(&g.vendor_id) else {
            continue;
        };
        let v = &vendors[vi];
        let filled = v
            .dialstring
            .replace("${host}", &g.host)
            .replace("${port}", &g.port.to_string())
            .replace("${transport}", g.transport.as_str());
        let Some((head, tail)) = filled.split_once("${number}") else {
            return Err(BuildError::Dialstring {
                vendor: v.name.clone(),
                template: v.dialstring.clone(),
            });
        };
        vendor_gws[vi].push(GatewayC {
            head: head.to_string(),
            tail: tail.to_string(),
            priority: g.priority,
            weight: g.weight,
        });
    }
    for gws in &mut vendor_gws {
        gws.sort_by(|a, b| a.priority.cmp(&b.priority).then(b.weight.cmp(&a.weight)));
    }
    let vendors_c: Vec<VendorC> = vendors
        .iter()
        .map(|v| VendorC {
            name: v.name.as_str().into(),
            billing: v.billing,
            enabled: v.enabled,
        })
        .collect();

    let mut routes_c = Vec::with_capacity(routes.len());
    for r in routes {
        let Some(&vi) = vendor_ix.get(&r.vendor_id) else {
            return Err(BuildError::UnknownVendor {
                route: r.name.clone(),
                vendor_id: r.vendor_id,
            });
        };
        routes_c.push(RouteC {
            name: r.name.as_str().into(),
            vendor: vi,
            priority: r.priority,
            weight: r.weight,
            capacity: r.capacity,
            enabled: r.enabled,
            gateways: vendor_gws[vi].clone(),
            order: 0,
        });
    }
    {
        let mut by_rank: Vec<usize> = (0..routes_c.len()).collect();
        by_rank.sort_by(|&a, &b| {
            let (ra, rb) = (&routes_c[a], &routes_c[b]);
            ra.priority
                .cmp(&rb.priority)
                .then(rb.weight.cmp(&ra.weight))
                .then(ra.name.cmp(&rb.name))
        });
        for (rank, ix) in by_rank.into_iter().enumerate() {
            routes_c[ix].order = rank as u32;
        }
    }

    let partition_ix: FxHashMap<Id, usize> = partitions
        .iter()
        .enumerate()
        .map(|(i, p)| (p.id, i))
        .collect();
    let mut partitions_c = Vec::with_capacity(partitions.len());
    for p in partitions {
        let mut rs = Vec::with_capacity(p.route_ids.len());
        for rid in &p.route_ids {
            let &ix = route_ix.get(rid).ok_or_else(|| BuildError::UnknownRoute {
                what: format!("partition {:?}", p.name),
                route_id: *rid,
            })?;
            rs.push(ix);
        }
        partitions_c.push(PartitionC {
            name: p.name.clone(),
            routes: rs,
        });
    }

    let mut customers_c = Vec::with_capacity(customers.len());
    let mut customer_by_ban = FxHashMap::default();
    let mut customer_by_id = FxHashMap::default();
    let mut customer_by_ip: FxHashMap<IpAddr, u32> = FxHashMap::default();
    let mut customer_cidrs = Vec::new();
    for (i, c) in customers.iter().enumerate() {
        let i = i as u32;
        let mut parts = c.partitions.clone();
        parts.sort_by_key(|p| p.priority);
        let mut pc = Vec::with_capacity(parts.len());
        for p in parts {
            let &ix =
                partition_ix
                    .get(&p.partition_id)
                    .ok_or_else(|| BuildError::UnknownPartition {
                        what: format!("customer {:?}", c.ban),
                        partition_id: p.partition_id,
                    })?;
            pc.push((ix, p.window));
        }
        for net in &c.source_cidrs {
            let is_host = net.prefix_len() == net.max_prefix_len();
            let clash = if is_host {
                customer_by_ip.insert(net.addr(), i)
            } else {
                customer_cidrs.push((*net, i));
                None
            };
            if let Some(other) = clash.filter(|&o| o != i) {
                return Err(BuildError::DuplicateSource {
                    ban: c.ban.clone(),
                    other: customers_c
                        .get(other as usize)
                        .map(|o: &CustomerC| o.c.id)
                        .unwrap_or(0),
                    ip: *net,
                });
            }
        }
        customer_by_ban.insert(c.ban.clone(), i);
        customer_by_id.insert(c.id, i);
        customers_c.push(CustomerC {
            ban: Name::from(c.ban.as_str()),
            c: c.clone(),
            partitions: pc,
            sell: FxHashMap::default(),
        });
    }
    customer_cidrs.sort_by_key(|c| std::cmp::Reverse(c.0.prefix_len()));
    for (cid, r) in customer_rates {
        let cid = *cid;
        let &ix = customer_by_id
            .get(&cid)
            .ok_or_else(|| BuildError::UnknownCustomer {
                what: "customer rate".into(),
                customer_id: cid,
            })?;
        customers_c[ix as usize]
            .sell
            .entry(r.prefix.clone())
            .or_default()
            .push(r.clone());
    }
    for c in &mut customers_c {
        for v in c.sell.values_mut() {
            v.sort_by_key(|r| std::cmp::Reverse(r.effective_from));
        }
    }

    let mut overrides_c = Vec::with_capacity(overrides.len());
    for o in overrides {
        let &route = route_ix
            .get(&o.route_id)
            .ok_or_else(|| BuildError::UnknownRoute {
                what: format!("override {}", o.id),
                route_id: o.route_id,
            })?;
        let customer = match o.customer_id {
            None => None,
            Some(cid) => {
                Some(
                    *customer_by_id
                        .get(&cid)
                        .ok_or_else(|| BuildError::UnknownCustomer {
                            what: format!("override {}", o.id),
                            customer_id: cid,
                        })?,
                )
            }
        };
        overrides_c.push(OverrideC {
            id: o.id,
            customer,
            prefix: o.prefix.clone(),
            route,
            rate: o.rate,
            valid_from: o.valid_from,
            valid_until: o.valid_until,
            window: o.window.clone(),
        });
    }
    overrides_c.sort_by(|a, b| {
        b.customer
            .is_some()
            .cmp(&a.customer.is_some())
            .then(b.prefix.len().cmp(&a.prefix.len()))
            .then(a.id.cmp(&b.id))
    });

    let mut exclusions_c = Vec::with_capacity(exclusions.len());
    for e in exclusions {
        let customer = match e.customer_id {
            None => None,
            Some(cid) => {
                Some(
                    *customer_by_id
                        .get(&cid)
                        .ok_or_else(|| BuildError::UnknownCustomer {
                            what: format!("exclusion {}", e.id),
                            customer_id: cid,
                        })?,
                )
            }
        };
        let vendor = match e.vendor_id {
            None => None,
            Some(vid) => match vendor_ix.get(&vid) {
                Some(&v) => Some(v),
                None => {
                    warnings.push(format!("exclusion {} names unknown vendor id {vid}", e.id));
                    continue;
                }
            },
        };
        exclusions_c.push(ExclusionC {
            customer,
            prefix: e.prefix.clone(),
            vendor,
        });
    }

    let emergency_route = match &settings.emergency_route {
        None => None,
        Some(name) => {
            let found = routes_c.iter().position(|r| *r.name == **name);
            if found.is_none() {
                warnings.push(format!("emergency route {name:?} does not exist"));
            }
            found.map(|i| i as RouteIx)
        }
    };

    Ok(Compiled {
        vendors: vendors_c,
        routes: routes_c,
        partitions: partitions_c,
        customers: customers_c,
        customer_by_ban,
        customer_by_id,
        customer_by_ip,
        customer_cidrs,
        overrides: overrides_c,
        exclusions: exclusions_c,
        emergency_route,
        warnings,
    })
}
