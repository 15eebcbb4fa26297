//! The CSV row reader: quoting, CRLF, BOM, empty files, line numbers; a no-panic property test.

use super::*;
use proptest::prelude::*;

/// (headers, (line, fields) of good rows, error messages)
type Parsed = (Vec<String>, Vec<(u64, Vec<String>)>, Vec<String>);

fn rows(text: &str) -> Parsed {
    let t = CsvTable::from_reader(text.as_bytes(), "t.csv").unwrap();
    let headers = t.headers().to_vec();
    let mut ok = vec![];
    let mut errs = vec![];
    for r in t {
        match r {
            Ok(r) => ok.push((r.line, r.fields)),
            Err(e) => errs.push(e.to_string()),
        }
    }
    (headers, ok, errs)
}

fn v(x: &[&str]) -> Vec<String> {
    x.iter().map(|s| s.to_string()).collect()
}

#[test]
fn csv_quoted_fields_keep_commas_quotes_and_newlines() {
    let (h, r, e) = rows("Prefix,Note\n1212,\"New York, NY\"\n\"1213\",\"say \"\"hi\"\"\"\n1312,\"two\nlines\"\n1415,x\n");
    assert_eq!(h, v(&["prefix", "note"]));
    assert!(e.is_empty(), "{e:?}");
    assert_eq!(
        r,
        vec![
            (2, v(&["1212", "New York, NY"])),
            (3, v(&["1213", "say \"hi\""])),
            (4, v(&["1312", "two\nlines"])),
            (6, v(&["1415", "x"])),
        ]
    );
}

#[test]
fn csv_crlf_bom_blank_lines_and_trimming() {
    let (h, r, e) = rows(
        "\u{feff}prefix , rate\r\n1212, 0.01 \r\n\r\n,\r\n1213,0.02\r\n1312,\"a\r\nb\"\r1415,0.03",
    );
    assert_eq!(h, v(&["prefix", "rate"]));
    assert!(e.is_empty(), "{e:?}");
    assert_eq!(
        r,
        vec![
            (2, v(&["1212", "0.01"])),
            (5, v(&["1213", "0.02"])),
            (6, v(&["1312", "a\nb"])),
            (8, v(&["1415", "0.03"])),
        ]
    );
}

#[test]
fn csv_empty_file_and_header_only() {
    for empty in ["", "\n\n", "\u{feff}"] {
        let err = CsvTable::from_reader(empty.as_bytes(), "empty.csv")
            .err()
            .expect("empty file rejected");
        assert!(err.to_string().contains("empty.csv line 1"), "{err}");
        assert!(err.to_string().contains("header"), "{err}");
    }
    let (h, r, e) = rows("prefix,rate\n");
    assert_eq!(h, v(&["prefix", "rate"]));
    assert!(r.is_empty() && e.is_empty());
}

#[test]
fn csv_wrong_field_count_and_bad_header_name_the_line() {
    let (_, r, e) = rows("prefix,rate\n1212\n1213,0.1,extra\n1312,0.2\n");
    assert_eq!(r, vec![(4, v(&["1312", "0.2"]))]);
    assert_eq!(e.len(), 2);
    assert!(e[0].starts_with("t.csv line 2"), "{e:?}");
    assert!(
        e[1].starts_with("t.csv line 3") && e[1].contains("expected 2 fields"),
        "{e:?}"
    );
    let err = CsvTable::from_reader("a,A\n".as_bytes(), "h.csv")
        .err()
        .unwrap();
    assert!(err.to_string().contains("column named twice"), "{err}");
    let t = CsvTable::from_reader(&b"prefix\n\xff\n"[..], "u.csv").unwrap();
    let e: Vec<String> = t.map(|r| r.unwrap_err().to_string()).collect();
    assert!(e[0].contains("line 2") && e[0].contains("UTF-8"), "{e:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn csv_reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(t) = CsvTable::from_reader(&bytes[..], "p.csv") {
            let width = t.headers().len();
            let mut last = 0;
            for r in t.take(1000).flatten() {
                prop_assert_eq!(r.fields.len(), width);
                prop_assert!(r.line > last);
                last = r.line;
            }
        }
    }

    #[test]
    fn csv_reader_never_panics_on_csvish_text(text in "[a-z0-9,\"\r\n \u{feff}]{0,200}") {
        if let Ok(t) = CsvTable::from_reader(text.as_bytes(), "p.csv") {
            for r in t.take(1000) {
                let _ = r;
            }
        }
    }
}
