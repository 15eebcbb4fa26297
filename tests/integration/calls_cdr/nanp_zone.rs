//! Issue 17: a Caribbean number through a dip and call events to its rated CDR. Customer 10001
//! (allowed `caribbean`) gets +1 876 from ns-premium, whose LRN deck prices it per zone under its
//! `1` row (the jurisdiction: interstate), and from bw-intl, whose international deck prices
//! `1876` by dial code (zone international); each call's CDR records the zone and rate of the
//! route that carried it.

use super::*;

const JAMAICA: &str = "ban=10001&ani=%2B12125550100&dnis=%2B18765550100";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caribbean_call_cdr_records_the_zone_of_the_carrying_route() {
    let f = Scratch::new();
    let mut client = demo_db(&f.pg).await;
    client
        .execute(
            "UPDATE customers SET allowed_classes = array_append(allowed_classes, 'caribbean') \
             WHERE ban = '10001'",
            &[],
        )
        .await
        .unwrap();
    let deck = "prefix,rate,min,increment\n1876,0.0400,60,60\n";
    let o = warpd::deck::ImportOptions::new("bw-intl", "bluewave_caribbean.csv", "test");
    warpd::deck::store::import(&mut client, Box::new(std::io::Cursor::new(deck)), &o)
        .await
        .unwrap();
    let s = start(&f.pg, f.spool.path(), &[]).await;

    let a = s.dip(&format!("{JAMAICA}&call_id=jm-1")).await;
    assert_eq!(a["action"], "route", "{a}");
    assert_eq!(a["zone"], "interstate", "the first route's zone: {a}");
    // rates and billing terms: the admin simulation of the same dip (none in the dip answer)
    let routes = s
        .priced_routes(&format!("{JAMAICA}&call_id=jm-1"), &a)
        .await;
    let names: Vec<(&str, f64, Option<&str>)> = routes
        .iter()
        .map(|r| {
            (
                r["route_id"].as_str().unwrap(),
                r["rate"].as_f64().unwrap(),
                r["zone"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("ns-premium", 0.012, None),
            ("bw-intl", 0.04, Some("international"))
        ],
        "{a}"
    );

    // jm-1 fails over to bw-intl; jm-2 is carried by ns-premium
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    for (id, carrier) in [("jm-1", 1usize), ("jm-2", 0)] {
        if id != "jm-1" {
            assert_eq!(
                s.dip(&format!("{JAMAICA}&call_id={id}")).await["action"],
                "route"
            );
        }
        let mut attempt = 1;
        if carrier == 1 {
            s.rpc_ok("call.attempt", json!({"call_id":id,"attempt":1,"route_id":"ns-premium","sip_code":503,"ts":t0+1.0})).await;
            attempt = 2;
        }
        let route = routes[carrier]["route_id"].as_str().unwrap();
        s.rpc_ok(
            "call.attempt",
            json!({"call_id":id,"attempt":attempt,"route_id":route,"sip_code":200,"ts":t0+2.0}),
        )
        .await;
        s.rpc_ok(
            "call.answer",
            json!({"call_id":id,"attempt":attempt,"route_id":route,"ts":t0+2.0}),
        )
        .await;
        s.rpc_ok(
            "call.end",
            json!({"call_id":id,"ts":t0+32.0,"hangup":"caller"}),
        )
        .await;
    }
    for (id, route, zone) in [
        ("jm-1", "bw-intl", "international"),
        ("jm-2", "ns-premium", "interstate"),
    ] {
        let r = client
            .query_one(
                "SELECT route_id, zone, vendor_rate::text, vendor_billed_s, cost::text, \
                 disposition FROM cdrs WHERE call_id = $1",
                &[&id],
            )
            .await
            .unwrap();
        let rate = routes.iter().find(|x| x["route_id"] == route).unwrap();
        let (min, inc) = (
            rate["billing"]["min"].as_i64().unwrap(),
            rate["billing"]["inc"].as_i64().unwrap(),
        );
        let vb = billed(30_000, min, inc);
        assert_eq!(
            r.get::<_, Option<String>>(0).as_deref(),
            Some(route),
            "{id}"
        );
        assert_eq!(r.get::<_, Option<String>>(1).as_deref(), Some(zone), "{id}");
        assert_eq!(r.get::<_, i32>(3) as i64, vb, "{id}");
        assert_eq!(
            r.get::<_, String>(4),
            money(vb, e7(rate["rate"].as_f64().unwrap())),
            "{id}"
        );
        assert_eq!(r.get::<_, String>(5), "answered", "{id}");
    }
    // the international-style route's own terms (60/60 from its deck) rated jm-1
    let vb: i32 = client
        .query_one(
            "SELECT vendor_billed_s FROM cdrs WHERE call_id = 'jm-1'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(vb, 60);
    s.stop().await;
}
