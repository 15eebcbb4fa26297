//! Diff of the desired state against the current [`State`]: produces the human/JSON [`Change`] list,
//! per-kind unchanged counts, and the ordered row operations ([`Op`]) that make the database match.
//! Objects the file does not name are never touched; child lists given in the file (gateways,
//! partition routes, customer source IPs / partitions / margin rules) are replaced to match.
//!
//! Owns: deciding what changes. Must not touch: the database, files.

use std::collections::{BTreeMap, BTreeSet};

use super::plan::{Action, Change, FieldChange, ObjectKind};
use super::state::{IdRow, State};
use super::validate::Desired;
use super::values::Fields;

/// One row operation; `id: Some` updates that row, `None` inserts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Vendor {
        ix: usize,
        id: Option<i64>,
    },
    Gateway {
        vendor: usize,
        ix: usize,
        id: Option<i64>,
    },
    DeleteGateway {
        id: i64,
        name: String,
    },
    Route {
        ix: usize,
        id: Option<i64>,
    },
    Partition {
        ix: usize,
        id: Option<i64>,
    },
    AddPartitionRoute {
        partition: String,
        route: String,
    },
    DeletePartitionRoute {
        partition_id: i64,
        route_id: i64,
    },
    Customer {
        ix: usize,
        id: Option<i64>,
    },
    DeleteSourceIp {
        customer_id: i64,
        cidr: String,
    },
    AddSourceIp {
        customer: String,
        cidr: String,
    },
    CustPartition {
        customer: usize,
        ix: usize,
    },
    DeleteCustPartition {
        customer_id: i64,
        partition_id: i64,
    },
    Margin {
        customer: usize,
        ix: usize,
        id: Option<i64>,
    },
    DeleteMargin {
        id: i64,
    },
    Override {
        ix: usize,
        id: Option<i64>,
    },
    Exclusion {
        ix: usize,
        id: Option<i64>,
    },
    MediaPolicy {
        ix: usize,
        id: Option<i64>,
    },
}

#[derive(Debug, Default)]
pub struct Diff {
    pub changes: Vec<Change>,
    pub unchanged: BTreeMap<ObjectKind, u64>,
    pub ops: Vec<Op>,
}

/// Ops grouped by phase so that parents exist before children and freed source IPs are deleted
/// before anyone re-inserts them.
#[derive(Default)]
struct Phases {
    vendors: Vec<Op>,
    gateways: Vec<Op>,
    routes: Vec<Op>,
    partitions: Vec<Op>,
    partition_routes: Vec<Op>,
    customers: Vec<Op>,
    ip_deletes: Vec<Op>,
    ip_adds: Vec<Op>,
    cust_parts: Vec<Op>,
    margins: Vec<Op>,
    overrides: Vec<Op>,
    exclusions: Vec<Op>,
    media_policies: Vec<Op>,
}

fn field_diff(new: &Fields, old: &Fields) -> Vec<FieldChange> {
    new.iter()
        .filter_map(|(k, v)| {
            let o = old.iter().find(|(ok, _)| ok == k).map(|(_, ov)| ov);
            (o != Some(v)).then(|| FieldChange {
                field: k.to_string(),
                old: o.cloned(),
                new: Some(v.clone()),
            })
        })
        .collect()
}

fn created(fields: &Fields) -> Vec<FieldChange> {
    fields
        .iter()
        .map(|(k, v)| FieldChange {
            field: k.to_string(),
            old: None,
            new: Some(v.clone()),
        })
        .collect()
}

impl Diff {
    fn push(&mut self, kind: ObjectKind, name: String, action: Action, fields: Vec<FieldChange>) {
        self.changes.push(Change {
            kind,
            name,
            action,
            fields,
        });
    }

    fn same(&mut self, kind: ObjectKind) {
        *self.unchanged.entry(kind).or_default() += 1;
    }

    /// Create / update / unchanged of one object; returns true if a write is needed.
    fn object(
        &mut self,
        kind: ObjectKind,
        name: String,
        new: &Fields,
        old: Option<&Fields>,
    ) -> bool {
        match old {
            None => {
                self.push(kind, name, Action::Create, created(new));
                true
            }
            Some(old) => {
                let fc = field_diff(new, old);
                if fc.is_empty() {
                    self.same(kind);
                    false
                } else {
                    self.push(kind, name, Action::Update, fc);
                    true
                }
            }
        }
    }
}

impl Diff {
    /// [`Diff::object`] for a row with an id: queues `op(id of the row, or None to insert)` when
    /// a write is needed.
    fn row(
        &mut self,
        ops: &mut Vec<Op>,
        kind: ObjectKind,
        name: String,
        new: &Fields,
        old: Option<&IdRow>,
        op: impl FnOnce(Option<i64>) -> Op,
    ) {
        if self.object(kind, name, new, old.map(|x| &x.fields)) {
            ops.push(op(old.map(|x| x.id)));
        }
    }
}

/// Computes the plan's changes and the row operations.
pub fn diff(d: &Desired, st: &State) -> Diff {
    let mut out = Diff::default();
    let mut ph = Phases::default();

    for (ix, v) in d.vendors.iter().enumerate() {
        let cur = st.vendors.get(&v.name);
        if out.object(
            ObjectKind::Vendor,
            v.name.clone(),
            &v.fields(),
            cur.map(|c| &c.fields),
        ) {
            ph.vendors.push(Op::Vendor {
                ix,
                id: cur.map(|c| c.id),
            });
        }
        let Some(gws) = &v.gateways else { continue };
        let existing = cur.and_then(|c| st.gateways.get(&c.id));
        for (gx, g) in gws.iter().enumerate() {
            let old = existing.and_then(|e| e.get(&g.name));
            let name = format!("{}/{}", v.name, g.name);
            if out.object(
                ObjectKind::Gateway,
                name,
                &g.fields(),
                old.map(|o| &o.fields),
            ) {
                ph.gateways.push(Op::Gateway {
                    vendor: ix,
                    ix: gx,
                    id: old.map(|o| o.id),
                });
            }
        }
        for (name, row) in existing.into_iter().flatten() {
            if !gws.iter().any(|g| &g.name == name) {
                let full = format!("{}/{name}", v.name);
                out.push(ObjectKind::Gateway, full.clone(), Action::Delete, vec![]);
                ph.gateways.push(Op::DeleteGateway {
                    id: row.id,
                    name: full,
                });
            }
        }
    }

    for (ix, r) in d.routes.iter().enumerate() {
        let cur = st.routes.get(&r.name);
        if out.object(
            ObjectKind::Route,
            r.name.clone(),
            &r.fields(),
            cur.map(|c| &c.fields),
        ) {
            ph.routes.push(Op::Route {
                ix,
                id: cur.map(|c| c.id),
            });
        }
    }

    for (ix, p) in d.partitions.iter().enumerate() {
        let cur = st.partitions.get(&p.name);
        if out.object(
            ObjectKind::Partition,
            p.name.clone(),
            &p.fields(),
            cur.map(|c| &c.fields),
        ) {
            ph.partitions.push(Op::Partition {
                ix,
                id: cur.map(|c| c.id),
            });
        }
        let Some(routes) = &p.routes else { continue };
        let members: BTreeSet<i64> = cur
            .and_then(|c| st.partition_routes.get(&c.id))
            .cloned()
            .unwrap_or_default();
        for r in routes {
            let name = format!("{} -> {r}", p.name);
            let present = st
                .routes
                .get(r)
                .is_some_and(|row| members.contains(&row.id));
            if present {
                out.same(ObjectKind::PartitionRoute);
            } else {
                out.push(ObjectKind::PartitionRoute, name, Action::Create, vec![]);
                ph.partition_routes.push(Op::AddPartitionRoute {
                    partition: p.name.clone(),
                    route: r.clone(),
                });
            }
        }
        if let Some(c) = cur {
            for rid in &members {
                let rname = st
                    .route_name
                    .get(rid)
                    .cloned()
                    .unwrap_or_else(|| format!("#{rid}"));
                if !routes.contains(&rname) {
                    out.push(
                        ObjectKind::PartitionRoute,
                        format!("{} -> {rname}", p.name),
                        Action::Delete,
                        vec![],
                    );
                    ph.partition_routes.push(Op::DeletePartitionRoute {
                        partition_id: c.id,
                        route_id: *rid,
                    });
                }
            }
        }
    }

    for (ix, c) in d.customers.iter().enumerate() {
        let cur = st.customers.get(&c.ban);
        let cid = cur.map(|x| x.id);
        if out.object(
            ObjectKind::Customer,
            c.ban.clone(),
            &c.fields(),
            cur.map(|x| &x.fields),
        ) {
            ph.customers.push(Op::Customer { ix, id: cid });
        }
        if let Some(ips) = &c.source_ips {
            let have = cid
                .and_then(|id| st.source_ips.get(&id))
                .cloned()
                .unwrap_or_default();
            for ip in ips {
                if have.contains(ip) {
                    out.same(ObjectKind::CustomerSourceIp);
                } else {
                    out.push(
                        ObjectKind::CustomerSourceIp,
                        format!("{} {ip}", c.ban),
                        Action::Create,
                        vec![],
                    );
                    ph.ip_adds.push(Op::AddSourceIp {
                        customer: c.ban.clone(),
                        cidr: ip.clone(),
                    });
                }
            }
            if let Some(id) = cid {
                for ip in have.iter().filter(|ip| !ips.contains(ip)) {
                    out.push(
                        ObjectKind::CustomerSourceIp,
                        format!("{} {ip}", c.ban),
                        Action::Delete,
                        vec![],
                    );
                    ph.ip_deletes.push(Op::DeleteSourceIp {
                        customer_id: id,
                        cidr: ip.clone(),
                    });
                }
            }
        }
        if let Some(parts) = &c.partitions {
            let have = cid.and_then(|id| st.cust_partitions.get(&id));
            for (px, p) in parts.iter().enumerate() {
                let old = st
                    .partitions
                    .get(&p.partition)
                    .and_then(|row| have.and_then(|h| h.get(&row.id)));
                let name = format!("{}/{}", c.ban, p.partition);
                if out.object(ObjectKind::CustomerPartition, name, &p.fields(), old) {
                    ph.cust_parts.push(Op::CustPartition {
                        customer: ix,
                        ix: px,
                    });
                }
            }
            if let (Some(id), Some(have)) = (cid, have) {
                for pid in have.keys() {
                    let pname = st
                        .partition_name
                        .get(pid)
                        .cloned()
                        .unwrap_or_else(|| format!("#{pid}"));
                    if !parts.iter().any(|p| p.partition == pname) {
                        out.push(
                            ObjectKind::CustomerPartition,
                            format!("{}/{pname}", c.ban),
                            Action::Delete,
                            vec![],
                        );
                        ph.cust_parts.push(Op::DeleteCustPartition {
                            customer_id: id,
                            partition_id: *pid,
                        });
                    }
                }
            }
        }
        if let Some(rules) = &c.margin_rules {
            let have = cid.and_then(|id| st.margin_rules.get(&id));
            for (rx, r) in rules.iter().enumerate() {
                let old = have.and_then(|h| h.get(&r.prefix));
                let name = format!(
                    "{} prefix {}",
                    c.ban,
                    if r.prefix.is_empty() { "*" } else { &r.prefix }
                );
                if out.object(
                    ObjectKind::MarginRule,
                    name,
                    &r.fields(),
                    old.map(|o| &o.fields),
                ) {
                    ph.margins.push(Op::Margin {
                        customer: ix,
                        ix: rx,
                        id: old.map(|o| o.id),
                    });
                }
            }
            for (prefix, row) in have.into_iter().flatten() {
                if !rules.iter().any(|r| &r.prefix == prefix) {
                    let p = if prefix.is_empty() { "*" } else { prefix };
                    out.push(
                        ObjectKind::MarginRule,
                        format!("{} prefix {p}", c.ban),
                        Action::Delete,
                        vec![],
                    );
                    ph.margins.push(Op::DeleteMargin { id: row.id });
                }
            }
        }
    }

    for (ix, o) in d.overrides.iter().enumerate() {
        let cust = match &o.customer {
            None => Some(None),
            Some(b) => st.customers.get(b).map(|c| Some(c.id)),
        };
        let old = match (cust, st.routes.get(&o.route)) {
            (Some(cid), Some(r)) => st.overrides.get(&(cid, o.prefix.clone(), r.id)),
            _ => None,
        };
        let op = |id| Op::Override { ix, id };
        out.row(
            &mut ph.overrides,
            ObjectKind::Override,
            o.label(),
            &o.fields(),
            old,
            op,
        );
    }

    for (ix, e) in d.exclusions.iter().enumerate() {
        let cust = match &e.customer {
            None => Some(None),
            Some(b) => st.customers.get(b).map(|c| Some(c.id)),
        };
        let vend = match &e.vendor {
            None => Some(None),
            Some(v) => st.vendors.get(v).map(|x| Some(x.id)),
        };
        let old = match (cust, vend) {
            (Some(c), Some(v)) => st.exclusions.get(&(c, e.prefix.clone(), v)),
            _ => None,
        };
        let op = |id| Op::Exclusion { ix, id };
        out.row(
            &mut ph.exclusions,
            ObjectKind::Exclusion,
            e.label(),
            &e.fields(),
            old,
            op,
        );
    }

    for (ix, m) in d.media_policies.iter().enumerate() {
        let old = st
            .media_policies
            .get(&(m.customer.clone(), m.route.clone(), m.trunk.clone()));
        let op = |id| Op::MediaPolicy { ix, id };
        out.row(
            &mut ph.media_policies,
            ObjectKind::MediaPolicy,
            m.label(),
            &m.fields(),
            old,
            op,
        );
    }

    let Phases {
        vendors,
        gateways,
        routes,
        partitions,
        partition_routes,
        customers,
        ip_deletes,
        ip_adds,
        cust_parts,
        margins,
        overrides,
        exclusions,
        media_policies,
    } = ph;
    out.ops = [
        vendors,
        gateways,
        routes,
        partitions,
        partition_routes,
        customers,
        ip_deletes,
        ip_adds,
        cust_parts,
        margins,
        overrides,
        exclusions,
        media_policies,
    ]
    .into_iter()
    .flatten()
    .collect();
    out
}
