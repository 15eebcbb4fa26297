//! Bulk import of numbers from CSV (issue 19, `warpd numbers import` / `POST
//! /v1/admin/numbers/import`): a good file lands with one upsert and one audit row; importing it
//! again changes nothing; moving a number needs `move_from` naming its owner; bad input (malformed E.164, unknown
//! customer or trunk, a trunk of another customer, a number claimed by another customer, a number
//! on two lines, bad cells, bad headers) is refused with every problem named by line and field and
//! nothing applied; 100k numbers import in seconds (docs/BENCHMARKS.md).

use std::io::Cursor;
use std::time::Instant;

use tokio_postgres::Client;
use warpd::provision::numbers_import::{self, ImportReport, NumbersImportError};

use super::{db, demo};
use crate::support::TestPg;

async fn import(
    c: &mut Client,
    csv: &str,
    dry_run: bool,
) -> Result<ImportReport, NumbersImportError> {
    numbers_import::import(c, Cursor::new(csv.to_string()), "t.csv", "test", dry_run).await
}

async fn numbers(c: &Client) -> Vec<(String, String, Option<String>, String)> {
    c.query(
        "SELECT n.number, c.ban, t.name, n.inbound_rate::text FROM numbers n \
         JOIN customers c ON c.id = n.customer_id LEFT JOIN trunks t ON t.id = n.trunk_id ORDER BY 1",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
    .collect()
}

async fn audits(c: &Client) -> i64 {
    c.query_one(
        "SELECT count(*) FROM audit_log WHERE action = 'numbers.import'",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

async fn setup() -> (TestPg, Client) {
    let pg = TestPg::start();
    let mut c = db(&pg).await;
    warpd::provision::apply(&mut c, &demo(), false)
        .await
        .unwrap();
    c.batch_execute(
        "INSERT INTO trunks (name, customer_id) SELECT 'budget-sip', id FROM customers WHERE ban = '10002'",
    )
    .await
    .unwrap();
    (pg, c)
}

const GOOD: &str = "number,customer,trunk,status,inbound_rate,cnam\n\
    +13125550001,10001,acme-sip,,0.0045,Acme One\n\
    +13125550002 , 10002 ,budget-sip,reserved,,\n\
    \"+13125550003\",10001,,porting-in,0.001,\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_csv_imports_once_and_moves_only_when_asked() {
    let (_pg, mut c) = setup().await;
    let before = numbers(&c).await;
    let dry = import(&mut c, GOOD, true).await.unwrap();
    assert_eq!((dry.rows, dry.inserted, dry.dry_run), (3, 3, true));
    assert_eq!(numbers(&c).await, before, "a dry run changes nothing");
    let r = import(&mut c, GOOD, false).await.unwrap();
    assert_eq!((r.rows, r.inserted, r.updated, r.moved), (3, 3, 0, 0));
    let after = numbers(&c).await;
    assert!(after.contains(&(
        "+13125550001".into(),
        "10001".into(),
        Some("acme-sip".into()),
        "0.0045000".into()
    )));
    assert!(after.contains(&(
        "+13125550002".into(),
        "10002".into(),
        Some("budget-sip".into()),
        "0.0000000".into()
    )));
    assert_eq!(audits(&c).await, 1);
    // the same file again: nothing to write, no audit row
    let again = import(&mut c, GOOD, false).await.unwrap();
    assert_eq!((again.inserted, again.updated), (0, 0));
    assert_eq!(audits(&c).await, 1);
    // a demo number of 10001 to 10002: refused without move, done with it
    let mv = "number,customer,trunk\n+12125557000,10002,budget-sip\n";
    let e = import(&mut c, mv, false).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("line 2: customer: number +12125557000 belongs to customer 10001"),
        "{e}"
    );
    assert!(e.to_string().contains("(move_from = 10001)"), "{e}");
    let e = import(
        &mut c,
        "number,customer,move_from\n+12125557000,10002,10003\n",
        false,
    )
    .await
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("belongs to customer 10001, not '10003' (move_from)"),
        "{e}"
    );
    let r = import(
        &mut c,
        "number,customer,trunk,move_from\n+12125557000,10002,budget-sip,10001\n",
        false,
    )
    .await
    .unwrap();
    assert_eq!((r.updated, r.moved), (1, 1));
    let owner: String = c
        .query_one(
            "SELECT c.ban FROM numbers n JOIN customers c ON c.id = n.customer_id WHERE number = '+12125557000'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(owner, "10002");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_lines_are_named_and_nothing_is_applied() {
    let (_pg, mut c) = setup().await;
    let before = numbers(&c).await;
    let h = "number,customer,trunk,status,voice,inbound_rate,cnam,destination";
    // (csv, expected problem text)
    let table: Vec<(String, &str)> = vec![
        (format!("{h}\n12125550001,10001,,,,,,\n"), "line 2: number:"),
        (format!("{h}\n+1212,10001,,,,,,\n"), "line 2: number:"),
        (format!("{h}\n,10001,,,,,,\n"), "line 2: number: missing"),
        (format!("{h}\n+13125550001,,,,,,,\n"), "line 2: customer: missing"),
        (format!("{h}\n+13125550001,99999,,,,,,\n"), "line 2: customer: customer '99999' does not exist"),
        (format!("{h}\n+13125550001,10001,nope,,,,,\n"), "line 2: trunk: trunk 'nope' does not exist"),
        (
            format!("{h}\n+13125550001,10001,bad trunk,,,,,\n"),
            "line 2: trunk: \"bad trunk\" is not a trunk name",
        ),
        (
            format!("{h}\n+13125550001,{},,,,,,\n", "9".repeat(100)),
            "line 2: customer: \"9999",
        ),
        (
            format!("{h}\n+13125550001,10001,budget-sip,,,,,\n"),
            "line 2: trunk: trunk 'budget-sip' belongs to customer 10002",
        ),
        (
            format!("{h}\n+13125550001,10001,,,,,,\n+13125550002,10001,,,,,,\n+13125550001,10001,,,,,,\n"),
            "line 4: number: number +13125550001 is also on line 2",
        ),
        (format!("{h}\n+12125557001,10002,,,,,,\n"), "line 2: customer: number +12125557001 belongs to customer 10001"),
        (format!("{h}\n+13125550001,10001,,gone,,,,\n"), "line 2: status:"),
        (format!("{h}\n+13125550001,10001,,,maybe,,,\n"), "line 2: voice:"),
        (format!("{h}\n+13125550001,10001,,,,-1,,\n"), "line 2: inbound_rate:"),
        (format!("{h}\n+13125550001,10001,,,,,ABCDEFGHIJKLMNOPQ,\n"), "line 2: cnam:"),
        (format!("{h}\n+13125550001,10001,,,,,,http://x\n"), "line 2: destination:"),
        ("number,customer,colour\n+13125550001,10001,red\n".into(), "line 1: header: unknown column \"colour\""),
        ("number,trunk\n+13125550001,x\n".into(), "line 1: customer: required column missing"),
        ("number,customer,number\n".into(), "line 1: number: column appears twice"),
        ("number,customer\n+1312555000\u{0},10001\n".into(), "line 2: number:"),
    ];
    for (csv, want) in &table {
        let e = import(&mut c, csv, false).await.expect_err(csv);
        assert!(matches!(e, NumbersImportError::Lines { .. }), "{csv}: {e}");
        assert!(e.to_string().contains(want), "{csv}: want {want:?} in {e}");
        assert!(e.to_string().contains("nothing applied"), "{e}");
    }
    let e = numbers_import::import(
        &mut c,
        Cursor::new(b"number,customer\n+13125550001,10001\n+13125550002,\xff\n".to_vec()),
        "t.csv",
        "test",
        false,
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("line 3: file: not UTF-8"), "{e}");
    // a good line next to a bad one is not applied either; every bad line is reported
    let mixed = format!("{h}\n+13125550009,10001,,,,,,\n1,10001,,,,,,\n+13125550008,77,,,,,,\n");
    let e = import(&mut c, &mixed, false).await.unwrap_err();
    let s = e.to_string();
    assert!(
        s.contains("line 3: number:") && s.contains("1 problem(s)"),
        "{s}"
    );
    assert_eq!(numbers(&c).await, before);
    assert_eq!(audits(&c).await, 0);
}

/// 100k numbers through the whole import (parse, COPY, checks, upsert, commit), then the same file
/// again: every number inserted once, nothing changed the second time. The time is printed, not
/// asserted (a debug build on a shared machine: 42 s once under load 10); the goal of < 5 s
/// is measured in release and written in docs/BENCHMARKS.md.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_thousand_numbers_import_then_reimport_changes_nothing() {
    let (_pg, mut c) = setup().await;
    let mut csv = String::from("number,customer,trunk,inbound_rate\n");
    for i in 0..100_000u32 {
        csv.push_str(&format!("+1646{i:07},10001,acme-sip,0.0045\n"));
    }
    let t = Instant::now();
    let r = import(&mut c, &csv, false).await.unwrap();
    let first = t.elapsed();
    assert_eq!(r.inserted, 100_000);
    let t = Instant::now();
    let again = import(&mut c, &csv, false).await.unwrap();
    let second = t.elapsed();
    assert_eq!((again.inserted, again.updated), (0, 0));
    eprintln!("numbers import: 100k new in {first:?}, 100k unchanged in {second:?}");
}
