//! The random changes of the incremental property test (`incremental.rs`): one change to the
//! seeded network (`seed`, `seed_inbound`) as SQL, and the strategies drawing them.

use proptest::prelude::*;

/// One change to the seeded network (see `seed`), as SQL.
#[derive(Clone, Debug)]
pub(super) enum Change {
    BlockPrefix(u8),
    MaxRate(u8),
    SourceIp(u8),
    SellRate(u8),
    DropSellRates,
    Override(u8, bool),
    DropOverrides,
    Exclusion(u8),
    DropExclusions,
    PartitionRoute(bool),
    RoutePriority(u8),
    GatewayEnabled(bool),
    VendorRate(u8),
    Npanxx(u8),
    Lnp(u8),
    Dno(u8),
    DropDno,
    MediaPolicy,
    NewRoute(u8),
    /// one route's rates re-rated (route 10 or 20)
    RouteRates(bool, u8),
    /// some rows of one route deleted
    DropRouteRates(bool, u8),
    /// a deck activation's shape: one route's `19…` rows replaced by new prefixes
    Deck(bool, u8),
    /// both routes' rates changed in one statement (more than half the routes: read whole)
    BothRoutes(u8),
    /// a customer's BAN or `enabled` (the inbound part names customers by id: not rebuilt)
    CustomerBan(u8),
    CustomerEnabled(bool),
    /// a vendor's `enabled`, a gateway's address (vendors' sources: resolved at answer time)
    VendorEnabled(bool),
    GatewayHost(u8),
    /// the inbound tables themselves
    OriginationSource(u8),
    NumberStatus(bool),
    NewNumber(u8),
    TrunkEnabled(bool),
    /// STIR/SHAKEN (issue 20): a customer's or a trunk's setting, a customer's TN range (by
    /// customer id like the rest of the inbound part)
    StirPolicy(u8, bool),
    TnRange(u8),
    DropTnRanges,
}

fn rate_route(first: bool) -> i64 {
    if first {
        10
    } else {
        20
    }
}

impl Change {
    pub(super) fn sql(&self) -> String {
        match *self {
            Change::BlockPrefix(n) => format!(
                "UPDATE customers SET blocked_prefixes = array_append(blocked_prefixes, '1{n:03}') WHERE id = 1000"
            ),
            Change::MaxRate(n) => format!(
                "UPDATE customers SET max_rate = 0.0{n:03} WHERE id = {}",
                if n % 2 == 0 { 1000 } else { 2000 }
            ),
            Change::SourceIp(n) => format!(
                "INSERT INTO customer_source_ips VALUES (1000, '10.9.{n}.1/32') ON CONFLICT DO NOTHING"
            ),
            Change::SellRate(n) => format!(
                "INSERT INTO customer_rates (customer_id, prefix, rate_inter, rate_intra, rate_local) \
                 VALUES (1000, '1{n:03}', 0.0{n:03}, 0.002, 0.001)"
            ),
            Change::DropSellRates => "DELETE FROM customer_rates WHERE prefix <> '1212555'".into(),
            Change::Override(n, all) => format!(
                "INSERT INTO overrides (customer_id, prefix, route_id, rate) VALUES ({}, '1{n:02}', {}, 0.00{n:02})",
                if all { "NULL" } else { "1000" },
                if n % 2 == 0 { 10 } else { 20 }
            ),
            Change::DropOverrides => "DELETE FROM overrides WHERE prefix <> '1201' AND prefix <> '1'".into(),
            Change::Exclusion(n) => format!(
                "INSERT INTO exclusions (customer_id, prefix, vendor_id) VALUES (1000, '1{n:03}', {})",
                1 + n % 2
            ),
            Change::DropExclusions => "DELETE FROM exclusions WHERE prefix NOT IN ('121255599', '44')".into(),
            Change::PartitionRoute(on) => if on {
                "INSERT INTO partition_routes VALUES (100, 10) ON CONFLICT DO NOTHING".into()
            } else {
                "DELETE FROM partition_routes WHERE partition_id = 100 AND route_id = 10".into()
            },
            Change::RoutePriority(n) => format!("UPDATE routes SET priority = {n} WHERE id = 10"),
            Change::GatewayEnabled(on) => format!("UPDATE gateways SET enabled = {on} WHERE name = 'a2'"),
            Change::VendorRate(n) => format!(
                "INSERT INTO vendor_rates (route_id, prefix, rate_inter, rate_intra, rate_local) \
                 VALUES ({}, '1{n:03}', 0.0{n:03}, 0.003, 0.002) ON CONFLICT DO NOTHING",
                if n % 2 == 0 { 10 } else { 20 }
            ),
            Change::Npanxx(n) => format!(
                "INSERT INTO npanxx (npanxx, state, lata, ocn) VALUES ('3{n:02}555', 'IL', '358', '1111') ON CONFLICT DO NOTHING"
            ),
            Change::Lnp(n) => format!(
                "INSERT INTO lnp VALUES ('21255701{n:02}', '2125560000') ON CONFLICT DO NOTHING"
            ),
            Change::Dno(n) => format!("INSERT INTO dno VALUES ('1312555{n:04}') ON CONFLICT DO NOTHING"),
            Change::DropDno => "DELETE FROM dno WHERE number LIKE '1312%'".into(),
            Change::MediaPolicy => "DELETE FROM media_policies WHERE false".into(),
            Change::NewRoute(n) => format!(
                "INSERT INTO routes (id, name, vendor_id) VALUES ({}, 'extra{n}', 1) ON CONFLICT DO NOTHING",
                100 + n as i64
            ),
            Change::RouteRates(r, n) => format!(
                "UPDATE vendor_rates SET rate_inter = 0.0{n:03} WHERE route_id = {}",
                rate_route(r)
            ),
            Change::DropRouteRates(r, n) => format!(
                "DELETE FROM vendor_rates WHERE route_id = {} AND prefix LIKE '1{}%'",
                rate_route(r),
                n % 10
            ),
            Change::Deck(r, n) => format!(
                "DELETE FROM vendor_rates WHERE route_id = {r} AND prefix LIKE '19%'; \
                 INSERT INTO vendor_rates (route_id, prefix, rate_inter, rate_intra, rate_local, effective_from) \
                 SELECT {r}, '19{n:02}' || i, 0.00{n:02}, 0.001, 0.001, \
                        CASE WHEN i = 0 THEN now() + interval '1 day' ELSE '-infinity' END \
                 FROM generate_series(0, 4) i",
                r = rate_route(r)
            ),
            Change::BothRoutes(n) => format!(
                "UPDATE vendor_rates SET rate_intra = 0.0{n:03} WHERE route_id IN (10, 20)"
            ),
            Change::CustomerBan(n) => format!("UPDATE customers SET ban = 'BAN1-{n}' WHERE id = 1000"),
            Change::CustomerEnabled(on) => format!("UPDATE customers SET enabled = {on} WHERE id = 2000"),
            Change::VendorEnabled(on) => format!("UPDATE vendors SET enabled = {on} WHERE id = 2"),
            Change::GatewayHost(n) => format!("UPDATE gateways SET host = '10.0.{n}.2' WHERE name = 'b1'"),
            Change::OriginationSource(n) => format!(
                "INSERT INTO origination_sources VALUES (1, '100.64.{n}.0/24') ON CONFLICT DO NOTHING"
            ),
            Change::NumberStatus(on) => format!(
                "UPDATE numbers SET status = '{}' WHERE number = '+12125557001'",
                if on { "active" } else { "disabled" }
            ),
            Change::NewNumber(n) => format!(
                "INSERT INTO numbers (number, customer_id, trunk_id) VALUES ('+1212555{:04}', 1000, 1) \
                 ON CONFLICT DO NOTHING",
                7100 + n as u32
            ),
            Change::TrunkEnabled(on) => format!("UPDATE trunks SET enabled = {on} WHERE id = 2"),
            Change::StirPolicy(n, trunk) => format!(
                "INSERT INTO stir_policies (customer_id, trunk_id, max_attest, transit) \
                 VALUES (1000, {}, '{}', {}) ON CONFLICT ON CONSTRAINT stir_policies_scope \
                 DO UPDATE SET max_attest = EXCLUDED.max_attest, transit = EXCLUDED.transit",
                if trunk { "1" } else { "NULL" },
                ["A", "B", "C", "off"][n as usize % 4],
                !trunk && n % 2 == 1
            ),
            Change::TnRange(n) => format!(
                "DELETE FROM stir_tn_ranges WHERE first_tn = '+1312{n:03}0000'; \
                 INSERT INTO stir_tn_ranges (customer_id, first_tn, last_tn) \
                 VALUES ({}, '+1312{n:03}0000', '+1312{n:03}0999')",
                if n % 2 == 0 { 1000 } else { 2000 }
            ),
            Change::DropTnRanges => "DELETE FROM stir_tn_ranges WHERE first_tn LIKE '+13120%'".into(),
        }
    }
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        (0u8..50).prop_map(Change::BlockPrefix),
        (1u8..99).prop_map(Change::MaxRate),
        (0u8..250).prop_map(Change::SourceIp),
        (0u8..99).prop_map(Change::SellRate),
        Just(Change::DropSellRates),
        (0u8..99, any::<bool>()).prop_map(|(n, a)| Change::Override(n, a)),
        Just(Change::DropOverrides),
        (0u8..99).prop_map(Change::Exclusion),
        Just(Change::DropExclusions),
        any::<bool>().prop_map(Change::PartitionRoute),
        (0u8..5).prop_map(Change::RoutePriority),
        any::<bool>().prop_map(Change::GatewayEnabled),
        (0u8..99).prop_map(Change::VendorRate),
        (0u8..99).prop_map(Change::Npanxx),
        (0u8..99).prop_map(Change::Lnp),
        (0u8..99).prop_map(Change::Dno),
        Just(Change::DropDno),
        Just(Change::MediaPolicy),
        (0u8..3).prop_map(Change::NewRoute),
        (any::<bool>(), 1u8..99).prop_map(|(r, n)| Change::RouteRates(r, n)),
        (any::<bool>(), 0u8..10).prop_map(|(r, n)| Change::DropRouteRates(r, n)),
        (any::<bool>(), 0u8..99).prop_map(|(r, n)| Change::Deck(r, n)),
        (1u8..99).prop_map(Change::BothRoutes),
        (0u8..99).prop_map(Change::CustomerBan),
        any::<bool>().prop_map(Change::CustomerEnabled),
        any::<bool>().prop_map(Change::VendorEnabled),
        (0u8..250).prop_map(Change::GatewayHost),
        (0u8..250).prop_map(Change::OriginationSource),
        any::<bool>().prop_map(Change::NumberStatus),
        (0u8..99).prop_map(Change::NewNumber),
        any::<bool>().prop_map(Change::TrunkEnabled),
        (0u8..8, any::<bool>()).prop_map(|(n, t)| Change::StirPolicy(n, t)),
        (0u8..99).prop_map(Change::TnRange),
        Just(Change::DropTnRanges),
    ]
}

/// A case: transactions of 1-3 changes each, and after which of them to build.
pub(super) fn steps() -> impl Strategy<Value = Vec<(Vec<Change>, bool)>> {
    prop::collection::vec(
        (
            prop::collection::vec(change(), 1..4),
            prop::bool::weighted(0.7),
        ),
        1..7,
    )
}
