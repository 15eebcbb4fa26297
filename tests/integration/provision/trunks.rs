//! `[[trunks]]` and `[[numbers]]` (issue 19): the demo network's trunk and numbers land in the
//! database and route inbound; applying again writes nothing (the routing data version stays);
//! the password is hashed, never stored; moving a number needs `move_from`; bad input (unknown
//! trunk or customer, a number claimed by two customers, a network of two trunks, a malformed
//! HA1, …) is refused with errors naming the field and nothing applied.

use std::path::Path;

use tokio_postgres::Client;
use warpd::provision::{self, Format};

use super::{db, demo};
use crate::support::TestPg;

async fn version(c: &Client) -> i64 {
    c.query_one("SELECT version FROM routing_data_version", &[])
        .await
        .unwrap()
        .get(0)
}

async fn inbound_counts(c: &Client) -> Vec<i64> {
    let mut out = Vec::new();
    for t in [
        "trunks",
        "trunk_sources",
        "trunk_credentials",
        "trunk_destinations",
        "numbers",
        "origination_sources",
    ] {
        out.push(
            c.query_one(&format!("SELECT count(*) FROM {t}"), &[])
                .await
                .unwrap()
                .get(0),
        );
    }
    out
}

async fn apply(c: &mut Client, text: &str) -> Result<provision::Plan, provision::ProvisionError> {
    provision::apply_str(c, text, Format::Toml, Path::new("."), false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_trunks_and_numbers_apply_idempotently_and_route() {
    let pg = TestPg::start();
    let mut c = db(&pg).await;
    provision::apply(&mut c, &demo(), false).await.unwrap();
    assert_eq!(inbound_counts(&c).await, vec![1, 0, 1, 2, 3, 1]);
    let r = c
        .query_one(
            "SELECT t.name, c.ban, cr.ha1 = md5('acme:warpd.demo:acme-demo-secret'), t.max_concurrent_calls \
             FROM trunks t JOIN customers c ON c.id = t.customer_id JOIN trunk_credentials cr ON cr.trunk_id = t.id",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.get::<_, String>(0), "acme-sip");
    assert_eq!(r.get::<_, String>(1), "10001");
    assert!(r.get::<_, bool>(2), "the HA1 of the password");
    assert_eq!(r.get::<_, Option<i32>>(3), Some(50));
    // the password is nowhere in the database (audit rows included)
    let leaked: i64 = c
        .query_one(
            "SELECT count(*) FROM audit_log \
             WHERE coalesce(before::text, '') || coalesce(after::text, '') LIKE '%acme-demo-secret%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(leaked, 0);
    // again: nothing written
    let v = version(&c).await;
    provision::apply(&mut c, &demo(), false).await.unwrap();
    assert_eq!(
        version(&c).await,
        v,
        "an unchanged apply bumped the data version"
    );

    // the loaded snapshot routes a call to the demo number
    let snap = warpd::db::loader::load_snapshot(&c, Default::default())
        .await
        .unwrap();
    let a = snap.route_inbound(&warpd::routing::inbound::InboundRequest {
        src_ip: "127.0.0.1".parse().unwrap(),
        ani: "+13105550000".into(),
        dnis: "2125557000".into(),
        call_id: None,
        verify: None,
        identity: None,
    });
    let warpd::routing::inbound::InboundAnswer::Route(r) = a else {
        panic!("{a:?}")
    };
    assert_eq!(
        r.uris,
        vec![
            "sip:+12125557000@127.0.0.1:5094;transport=udp",
            "sip:+12125557000@127.0.0.1:5095;transport=udp"
        ]
    );
    // northstar's origination source of the file (127.0.0.2) delivers too
    let from_source = snap.route_inbound(&warpd::routing::inbound::InboundRequest {
        src_ip: "127.0.0.2".parse().unwrap(),
        ani: "+13105550000".into(),
        dnis: "2125557000".into(),
        call_id: None,
        verify: None,
        identity: None,
    });
    assert!(
        matches!(
            from_source,
            warpd::routing::inbound::InboundAnswer::Route(_)
        ),
        "{from_source:?}"
    );

    // moving a number is explicit
    let to_10002 = r#"
[[numbers]]
number = "+12125557002"
customer = "10002"
"#;
    let e = apply(&mut c, to_10002).await.unwrap_err().to_string();
    assert!(
        e.contains("numbers[0].customer") && e.contains("move_from"),
        "{e}"
    );
    apply(&mut c, &format!("{to_10002}move_from = \"10001\"\n"))
        .await
        .unwrap();
    let owner: String = c
        .query_one(
            "SELECT c.ban FROM numbers n JOIN customers c ON c.id = n.customer_id WHERE number = '+12125557002'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(owner, "10002");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_trunks_and_numbers_name_the_field_and_apply_nothing() {
    let pg = TestPg::start();
    let mut c = db(&pg).await;
    provision::apply(&mut c, &demo(), false).await.unwrap();
    // a second trunk of another customer, owning a network
    apply(
        &mut c,
        "[[trunks]]\nname = \"budget\"\ncustomer = \"10002\"\nsource_ips = [\"10.50.0.0/16\"]\n",
    )
    .await
    .unwrap();
    let base = "[[trunks]]\nname = \"t2\"\ncustomer = \"10001\"\n";
    let table: &[(&str, &str, &str)] = &[
        (
            "[[numbers]]\nnumber = \"+12125557100\"\ncustomer = \"10001\"\ntrunk = \"nope\"\n",
            "numbers[0].trunk",
            "unknown trunk",
        ),
        (
            "[[numbers]]\nnumber = \"+12125557100\"\ncustomer = \"10001\"\ntrunk = \"budget\"\n",
            "numbers[0].trunk",
            "another customer",
        ),
        (
            "[[numbers]]\nnumber = \"+12125557100\"\ncustomer = \"10001\"\n\
             [[numbers]]\nnumber = \"+12125557100\"\ncustomer = \"10002\"\n",
            "numbers[1].number",
            "claimed by customer",
        ),
        (
            "[[numbers]]\nnumber = \"12125557100\"\ncustomer = \"10001\"\n",
            "numbers[0].number",
            "not an E.164 number",
        ),
        (
            "[[numbers]]\nnumber = \"+12125557100\"\ncustomer = \"99999\"\n",
            "numbers[0].customer",
            "unknown customer",
        ),
        (
            "[[numbers]]\nnumber = \"+12125557100\"\ncustomer = \"10001\"\nstatus = \"gone\"\n",
            "numbers[0].status",
            "not one of",
        ),
        (
            "[[trunks]]\nname = \"t2\"\ncustomer = \"10001\"\nsource_ips = [\"10.50.3.0/24\"]\n",
            "trunks[0].source_ips[0]",
            "belongs to one trunk",
        ),
        (
            "[[trunks]]\nname = \"t2\"\ncustomer = \"10001\"\nsource_ips = [\"10.9.0.0/16\"]\n\
             [[trunks]]\nname = \"t3\"\ncustomer = \"10001\"\nsource_ips = [\"10.9.1.1\"]\n",
            "trunks[1].source_ips[0]",
            "belongs to one trunk",
        ),
        (
            "[[trunks]]\nname = \"t2\"\ncustomer = \"10001\"\n\
             credentials = [{ username = \"u\", realm = \"r\", ha1 = \"xyz\" }]\n",
            "trunks[0].credentials[0].ha1",
            "not an HA1",
        ),
        (
            "[[trunks]]\nname = \"t2\"\ncustomer = \"10001\"\n\
             credentials = [{ username = \"acme\", realm = \"warpd.demo\", ha1 = \"0123456789abcdef0123456789abcdef\" }]\n",
            "trunks[0].credentials[0].username",
            "belong to trunk \"acme-sip\"",
        ),
        (
            "[[origination_sources]]\nvendor = \"nope\"\ncidrs = [\"192.0.2.0/24\"]\n",
            "origination_sources[0].vendor",
            "unknown vendor",
        ),
        (
            "[[origination_sources]]\nvendor = \"keystone\"\ncidrs = [\"192.0.2.300\"]\n",
            "origination_sources[0].cidrs[0]",
            "192.0.2.300",
        ),
        (
            "[[origination_sources]]\nvendor = \"keystone\"\ncidrs = [\"127.0.0.0/24\"]\n",
            "origination_sources[0].cidrs[0]",
            "of vendor \"northstar\": a network belongs to one vendor",
        ),
        (
            "[[origination_sources]]\nvendor = \"keystone\"\ncidrs = [\"198.51.100.0/24\"]\n\
             [[origination_sources]]\nvendor = \"northstar\"\ncidrs = [\"198.51.100.7\"]\n",
            "origination_sources[1].cidrs[0]",
            "a network belongs to one vendor",
        ),
        (
            "[[trunks]]\nname = \"bad name\"\ncustomer = \"10001\"\n",
            "trunks[0].name",
            "not a trunk name",
        ),
        (
            "[[trunks]]\nname = \"t2\"\ncustomer = \"10001\"\ndestinations = [{ port = 5060 }]\n",
            "trunks[0].destinations[0].host",
            "uri or host",
        ),
        (
            "[[trunks]]\nname = \"t2\"\ncustomer = \"10001\"\ndestinations = [{ host = \"h\", port = 70000 }]\n",
            "trunks[0].destinations[0].port",
            "out of range",
        ),
    ];
    for (file, field, why) in table {
        let before = inbound_counts(&c).await;
        let v = version(&c).await;
        // before bad numbers, a valid trunk: nothing of it may land either
        let text = if file.starts_with("[[numbers]]") {
            format!("{base}{file}")
        } else {
            file.to_string()
        };
        let e = apply(&mut c, &text).await.unwrap_err().to_string();
        assert!(
            e.contains(field) && e.contains(why),
            "{field} / {why}:\n{e}"
        );
        assert!(e.contains("nothing applied"), "{e}");
        assert!(!e.contains("xyz"), "a secret echoed: {e}");
        assert_eq!(
            inbound_counts(&c).await,
            before,
            "{field}: something applied"
        );
        assert_eq!(version(&c).await, v, "{field}: the data version moved");
    }
}
