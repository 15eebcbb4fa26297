//! A snapshot's canonical form: its routing content as sorted text lines, equal for two
//! snapshots that answer every dip alike however they were built (full or incremental, keys
//! assigned in any order). What tests compare an incremental build with a full one by.
//!
//! Leaves out: when it was built, its generation, data version and source, which parts it
//! shares, and trie keys that no route uses.

use super::*;

impl Snapshot {
    /// The canonical form (see the module documentation).
    pub fn canonical(&self) -> Vec<String> {
        let mut out = Vec::new();
        for v in &self.vendors {
            out.push(format!("vendor {v:?}"));
        }
        for r in &self.routes {
            out.push(format!("route {r:?}"));
        }
        for p in &self.partitions {
            out.push(format!("partition {p:?}"));
        }
        for (i, c) in self.customers.iter().enumerate() {
            out.push(format!("customer {i} {:?} {:?}", c.c, c.partitions));
            let mut sell: Vec<_> = c.sell.iter().collect();
            sell.sort_by(|a, b| a.0.cmp(b.0));
            for (prefix, rates) in sell {
                out.push(format!("customer {i} sell {prefix} {rates:?}"));
            }
        }
        let mut bans: Vec<_> = self.customer_by_ban.iter().collect();
        bans.sort();
        out.push(format!("by ban {bans:?}"));
        let mut ips: Vec<_> = self.customer_by_ip.iter().collect();
        ips.sort();
        out.push(format!("by ip {ips:?}"));
        out.push(format!("by cidr {:?}", self.customer_cidrs));
        for o in &self.overrides {
            out.push(format!("override {o:?}"));
        }
        for e in &self.exclusions {
            out.push(format!("exclusion {e:?}"));
        }
        out.push(format!("emergency route {:?}", self.emergency_route));
        out.extend(self.numbering.canonical());
        // the inbound part as a dip sees it: customers and vendors resolved through this
        // snapshot (a stale BAN or `enabled` shows), maps in sorted order
        out.push(format!("inbound {:?}", self.inbound.stats()));
        out.extend(self.inbound.canonical(self));
        let mut vendors: Vec<String> = self
            .inbound
            .origination_rows()
            .iter()
            .map(|o| {
                format!(
                    "origination {} {:?}",
                    o.net,
                    self.origination.vendor(o.net.addr())
                )
            })
            .collect();
        vendors.sort();
        out.extend(vendors);
        out.push(format!("origination networks {}", self.origination.len()));

        // rates by key name, then route id, with their terms resolved
        let r = &self.rates;
        let mut keys: Vec<(String, u32)> = Vec::new();
        r.trie
            .for_each(|p, k| keys.push((String::from_utf8_lossy(p).into_owned(), k)));
        keys.extend(
            r.ocn_lata
                .iter()
                .map(|(n, &k)| (format!("ocn|lata {n}"), k)),
        );
        keys.sort();
        for (name, k) in keys {
            let (Some(&a), Some(&b)) = (r.offsets.get(k as usize), r.offsets.get(k as usize + 1))
            else {
                continue;
            };
            for e in r.entries.get(a as usize..b as usize).unwrap_or_default() {
                let route = r.route_ids.get(e.route as usize);
                out.push(format!(
                    "rate {name} route {route:?} {:?} {:?}",
                    r.terms.get(e.terms as usize),
                    e.rates
                ));
            }
        }
        let mut s = self.stats.clone();
        s.built_at = 0;
        s.rate_keys = 0;
        s.trie_nodes = 0;
        out.push(format!("stats {s:?}"));
        out
    }
}
