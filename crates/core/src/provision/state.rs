//! The current rows of the routing tables (except decks) as `warpd apply` compares them with
//! the file: [`State`], with values rendered as the provisioning spec writes them. Read by the
//! daemon (`warpd::provision::db::load_state`) inside the apply transaction.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::values::Fields;
use crate::routing::model::BillingModel;

pub struct VendorRow {
    pub id: i64,
    pub billing: BillingModel,
    pub fields: Fields,
}

pub struct IdRow {
    pub id: i64,
    pub fields: Fields,
}

pub struct RouteRow {
    pub id: i64,
    pub vendor_id: i64,
    pub fields: Fields,
}

/// A media policy's identity: (customer BAN, route name, trunk name).
pub type MediaPolicyKey = (Option<String>, Option<String>, Option<String>);

/// The rows of the routing tables (except decks) as they are before the apply.
#[derive(Default)]
pub struct State {
    pub vendors: HashMap<String, VendorRow>,
    pub vendor_name: HashMap<i64, String>,
    /// vendor id -> gateway name -> row
    pub gateways: HashMap<i64, BTreeMap<String, IdRow>>,
    pub routes: HashMap<String, RouteRow>,
    pub route_name: HashMap<i64, String>,
    /// routes that have at least one vendor rate row
    pub routes_with_rates: HashSet<i64>,
    pub partitions: HashMap<String, IdRow>,
    pub partition_name: HashMap<i64, String>,
    pub partition_routes: HashMap<i64, BTreeSet<i64>>,
    pub customers: HashMap<String, IdRow>,
    pub customer_ban: HashMap<i64, String>,
    /// customer id -> canonical CIDRs
    pub source_ips: HashMap<i64, BTreeSet<String>>,
    pub cidr_owner: HashMap<String, i64>,
    /// customer id -> partition id -> fields
    pub cust_partitions: HashMap<i64, BTreeMap<i64, Fields>>,
    /// customer id -> prefix -> row
    pub margin_rules: HashMap<i64, BTreeMap<String, IdRow>>,
    /// (customer id, prefix, route id)
    pub overrides: HashMap<(Option<i64>, String, i64), IdRow>,
    /// (customer id, prefix, vendor id)
    pub exclusions: HashMap<(Option<i64>, String, Option<i64>), IdRow>,
    /// (customer BAN, route name, trunk name)
    pub media_policies: HashMap<MediaPolicyKey, IdRow>,
}
