use std::io::Cursor;

use super::pivot::{pack_digits, unpack_digits};
use super::row::push_rate;
use super::*;
use crate::provision::values::fmt_scaled;

fn rows(csv: &[u8], mapping: &Mapping) -> (Vec<String>, Vec<Result<String, String>>) {
    let mut src = CsvSource::new(csv, "t.csv")
        .map_err(|e| e.to_string())
        .unwrap();
    let layout = detect_layout("t.csv", src.headers(), mapping, false).unwrap();
    let mut v = Validator::new("t.csv", layout, Rules::default());
    let mut out = vec![];
    let mut f = vec![];
    loop {
        match src.next_row(&mut f) {
            Ok(None) => break,
            Ok(Some(line)) => match v.check(line, &f) {
                Ok(Some(r)) => {
                    let mut b = vec![];
                    r.write_copy(1, &mut b);
                    out.push(Ok(String::from_utf8(b).unwrap()))
                }
                Ok(None) => {}
                Err(is) => out.push(Err(is
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "))),
            },
            Err(e) => out.push(Err(e.to_string())),
        }
    }
    v.finish(|r| {
        let mut b = vec![];
        r.write_copy(1, &mut b);
        out.push(Ok(String::from_utf8(b).unwrap()))
    });
    (src.headers().to_vec(), out)
}

#[test]
fn long_layout_is_pivoted_per_prefix() {
    let csv = b"Prefix,Jurisdiction,Rate,Description\n\
                1212,Interstate,0.01,NY\n\
                44,flat,0.03,UK\n\
                1212,INTRA,0.02,NY\n\
                1213,inter,0.011,\n\
                1212,local,0.005,NY\n\
                1212,intrastate,0.02,NY\n";
    let (_, r) = rows(csv, &Mapping::default());
    let r: Vec<&str> = r.iter().map(|x| x.as_deref().unwrap()).collect();
    assert_eq!(
        r,
        [
            "1\t1212\t\\N\t\\N\tNY\t0.01\t0.02\t0.005\t6\t6\t-infinity\tinfinity\n",
            "1\t44\t\\N\t\\N\tUK\t0.03\t0.03\t0.03\t6\t6\t-infinity\tinfinity\n",
            "1\t1213\t\\N\t\\N\t\\N\t0.011\t\\N\t\\N\t6\t6\t-infinity\tinfinity\n",
        ]
    );
    // NPA-NXX keys and leading zeros survive the packing
    let (_, r) = rows(
        b"npanxx,zone,rate\n212555,local,0.001\n",
        &Mapping::default(),
    );
    assert!(
        r[0].as_deref().unwrap().starts_with("1\t1212555\t"),
        "{r:?}"
    );
    let mut s = String::new();
    unpack_digits(pack_digits("0044"), &mut s);
    assert_eq!(s, "0044");
}

#[test]
fn long_layout_errors_name_the_line() {
    let csv = b"prefix,zone,rate,increment\n\
                1212,interstate,0.01,6\n\
                1212,moon,0.02,6\n\
                1212,inter,0.03,6\n\
                1212,local,0.01,60\n\
                44,flat,0.01,6\n\
                44,local,0.02,6\n\
                45,,0.02,6\n";
    let (_, r) = rows(csv, &Mapping::default());
    let errs: Vec<&String> = r.iter().filter_map(|x| x.as_ref().err()).collect();
    assert_eq!(errs.len(), 5, "{r:?}");
    assert!(
        errs[0].contains("line 3") && errs[0].contains("unknown zone \"moon\""),
        "{}",
        errs[0]
    );
    assert!(
        errs[1].contains("line 4")
            && errs[1].contains("duplicate prefix 1212 with different rates (first at line 2)"),
        "{}",
        errs[1]
    );
    assert!(
        errs[2].contains("line 5") && errs[2].contains("billing terms"),
        "{}",
        errs[2]
    );
    assert!(
        errs[3].contains("line 7") && errs[3].contains("first at line 6"),
        "{}",
        errs[3]
    );
    assert!(
        errs[4].contains("line 8") && errs[4].contains("unknown zone \"\""),
        "{}",
        errs[4]
    );
    // a zone column without a rate column, or mapped as one beside zone rate columns, is
    // refused; merely named so beside zone rate columns, it is some other column (ignored)
    let headers = |h: &str| {
        CsvSource::new(h.as_bytes(), "t.csv")
            .unwrap()
            .headers()
            .to_vec()
    };
    let m = Mapping::default();
    let e = detect_layout("t.csv", &headers("prefix,zone"), &m, false).unwrap_err();
    assert!(e[0].to_string().contains("a zone column"), "{}", e[0]);
    let zm = Mapping::parse("Zone=zone").unwrap();
    let e = detect_layout("t.csv", &headers("prefix,Zone,inter"), &zm, false).unwrap_err();
    assert!(e[0].to_string().contains("a zone column"), "{}", e[0]);
    let l = detect_layout("t.csv", &headers("prefix,Zone,inter"), &m, false).unwrap();
    assert_eq!(l.fields, [Field::Prefix, Field::Ignore, Field::Interstate]);
    assert_eq!(l.unrecognized, ["Zone"]);
}

#[test]
fn auto_detects_common_names_bom_crlf_quotes_latin1() {
    let csv = b"\xef\xbb\xbfDial Code,Destination,Rate,Initial,Interval,Effective Date\r\n\
                1212,\"New York, NY\",0.0045,6,6,2026-12-01\r\n\
                44,Caf\xe9 UK,\"0.0100\",30,6,\r\n";
    let (h, r) = rows(csv, &Mapping::default());
    assert_eq!(h[0], "Dial Code");
    assert_eq!(
        r[0].as_deref().unwrap(),
        "1\t1212\t\\N\t\\N\tNew York, NY\t0.0045\t0.0045\t0.0045\t6\t6\t2026-12-01T00:00:00Z\tinfinity\n"
    );
    assert_eq!(
        r[1].as_deref().unwrap(),
        "1\t44\t\\N\t\\N\tCafé UK\t0.01\t0.01\t0.01\t30\t6\t-infinity\tinfinity\n"
    );
}

#[test]
fn zones_and_npanxx() {
    let csv = b"NPANXX,Inter,Intra,Local\n212555,0.001,0.002,\n";
    let (_, r) = rows(csv, &Mapping::default());
    assert_eq!(
        r[0].as_deref().unwrap(),
        "1\t1212555\t\\N\t\\N\t\\N\t0.001\t0.002\t\\N\t6\t6\t-infinity\tinfinity\n"
    );
}

#[test]
fn bad_rows_name_line_and_reason() {
    let csv = b"prefix,rate\n1212,abc\n1213,-0.1\n12a4,0.1\n1215,0.1\n1215,0.2\n1215,0.1\n";
    let (_, r) = rows(csv, &Mapping::default());
    let errs: Vec<&String> = r.iter().filter_map(|x| x.as_ref().err()).collect();
    assert_eq!(errs.len(), 4, "{r:?}");
    assert!(errs[0].contains("line 2") && errs[0].contains("not a number"));
    assert!(errs[1].contains("line 3") && errs[1].contains("negative rate"));
    assert!(errs[2].contains("line 4") && errs[2].contains("E.164 digits"));
    assert!(errs[3].contains("line 6") && errs[3].contains("different rates (first at line 5)"));
    // line 7 repeats line 5 exactly: dropped, not an error
    assert_eq!(r.len(), 5);
}

#[test]
fn wrong_columns_are_named() {
    let src = CsvSource::new(&b"code,prise\n1,2\n"[..], "t.csv").unwrap();
    let e = detect_layout("t.csv", src.headers(), &Mapping::default(), false).unwrap_err();
    let msg = e[0].to_string();
    assert!(
        msg.contains("rate") && msg.contains("not recognized: prise"),
        "{msg}"
    );
    // a mapping fixes it
    let m = Mapping::parse("Prise=rate").unwrap();
    detect_layout("t.csv", src.headers(), &m, false).unwrap();
    assert!(Mapping::parse("x=nope").is_err());
}

#[test]
fn empty_file_and_ragged_rows() {
    let e = CsvSource::new(&b""[..], "t.csv").err().unwrap();
    assert!(e.to_string().contains("empty file"), "{e}");
    let e = CsvSource::new(&b"\r\n\r\n"[..], "t.csv").err().unwrap();
    assert!(e.to_string().contains("empty file"), "{e}");
    let (_, r) = rows(b"prefix,rate\n1212,0,1\n", &Mapping::default());
    assert!(r[0].as_ref().unwrap_err().contains("expected 2 fields"));
}

#[test]
fn rates_are_written_minimal() {
    for (v, want) in [
        (0, "0"),
        (45_000, "0.0045"),
        (10_000_000, "1"),
        (u32::MAX, "429.4967295"),
        (1, "0.0000001"),
    ] {
        let mut b = vec![];
        push_rate(v, &mut b);
        assert_eq!(String::from_utf8(b).unwrap(), want);
        assert_eq!(fmt_scaled(i64::from(v), 7), want);
    }
}

#[test]
fn dates() {
    assert_eq!(parse_when("2026-12-01").unwrap(), 1_796_083_200_000_000);
    assert_eq!(parse_when("12/01/2026").unwrap(), 1_796_083_200_000_000);
    assert_eq!(
        parse_when("2026-12-01T00:00Z").unwrap(),
        1_796_083_200_000_000
    );
    assert!(parse_when("tomorrow").is_err());
}

#[test]
fn sniff() {
    assert_eq!(Format::sniff(&[0x1f, 0x8b, 8]), Format::Gzip);
    assert_eq!(Format::sniff(b"PK\x03\x04"), Format::Xlsx);
    assert_eq!(Format::sniff(b"prefix"), Format::Csv);
}

#[test]
fn gzip_is_read_through() {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"prefix,rate\n1,0.5\n").unwrap();
    let bytes = gz.finish().unwrap();
    let (fmt, mut src) = open_source(
        Box::new(Cursor::new(bytes)),
        "t.csv.gz",
        None,
        &Limits::default(),
    )
    .map_err(|e| e.to_string())
    .unwrap();
    assert_eq!(fmt, Format::Gzip);
    let mut f = vec![];
    assert_eq!(src.next_row(&mut f).unwrap(), Some(2));
    assert_eq!(f, vec!["1".to_string(), "0.5".to_string()]);
}

/// A minimal XLSX workbook (inline strings) with the given sheets.
fn xlsx(sheets: &[(&str, &[&[&str]])]) -> Vec<u8> {
    use std::io::Write;
    let mut z = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let o = zip::write::SimpleFileOptions::default();
    let mut put = |name: &str, body: String| {
        z.start_file(name, o).unwrap();
        z.write_all(body.as_bytes()).unwrap();
    };
    let mut ct = String::from(
        r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>"#,
    );
    let mut wb = String::from(
        r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>"#,
    );
    let mut rels = String::from(
        r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">"#,
    );
    for (i, (name, rows)) in sheets.iter().enumerate() {
        let n = i + 1;
        ct.push_str(&format!(r#"<Override PartName="/xl/worksheets/sheet{n}.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>"#));
        wb.push_str(&format!(
            r#"<sheet name="{name}" sheetId="{n}" r:id="rId{n}"/>"#
        ));
        rels.push_str(&format!(r#"<Relationship Id="rId{n}" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet{n}.xml"/>"#));
        let mut sh = String::from(
            r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#,
        );
        for (r, row) in rows.iter().enumerate() {
            sh.push_str(&format!(r#"<row r="{}">"#, r + 1));
            for (c, v) in row.iter().enumerate() {
                let col = (b'A' + c as u8) as char;
                if v.parse::<f64>().is_ok() {
                    sh.push_str(&format!(r#"<c r="{col}{}"><v>{v}</v></c>"#, r + 1));
                } else {
                    sh.push_str(&format!(
                        r#"<c r="{col}{}" t="inlineStr"><is><t>{v}</t></is></c>"#,
                        r + 1
                    ));
                }
            }
            sh.push_str("</row>");
        }
        sh.push_str("</sheetData></worksheet>");
        put(&format!("xl/worksheets/sheet{n}.xml"), sh);
    }
    ct.push_str("</Types>");
    wb.push_str("</sheets></workbook>");
    rels.push_str("</Relationships>");
    put("[Content_Types].xml", ct);
    put("_rels/.rels", r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#.to_string());
    put("xl/workbook.xml", wb);
    put("xl/_rels/workbook.xml.rels", rels);
    z.finish().unwrap().into_inner()
}

#[test]
fn xlsx_single_and_multi_sheet() {
    let rows: &[&[&str]] = &[
        &["Prefix", "Destination", "Rate"],
        &["4420", "London", "0.008"],
        &["44", "UK", "0.01"],
    ];
    let one = xlsx(&[("Deck", rows)]);
    let (fmt, mut src) = open_source(
        Box::new(Cursor::new(one)),
        "d.xlsx",
        None,
        &Limits::default(),
    )
    .map_err(|e| e.to_string())
    .unwrap();
    assert_eq!(fmt, Format::Xlsx);
    assert_eq!(src.headers(), ["Prefix", "Destination", "Rate"]);
    let mut f = vec![];
    assert_eq!(src.next_row(&mut f).unwrap(), Some(2));
    assert_eq!(f, ["4420", "London", "0.008"]);

    let two = xlsx(&[("Notes", &[&["hello"]]), ("Deck", rows)]);
    let e = open_source(
        Box::new(Cursor::new(two.clone())),
        "d.xlsx",
        None,
        &Limits::default(),
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("2 sheets (Notes, Deck)"), "{e}");
    let (_, src) = open_source(
        Box::new(Cursor::new(two.clone())),
        "d.xlsx",
        Some("Deck"),
        &Limits::default(),
    )
    .map_err(|e| e.to_string())
    .unwrap();
    assert_eq!(src.headers()[0], "Prefix");
    let e = open_source(
        Box::new(Cursor::new(two)),
        "d.xlsx",
        Some("Nope"),
        &Limits::default(),
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("no sheet \"Nope\""), "{e}");
    let e = open_source(
        Box::new(Cursor::new(b"PK\x03\x04garbage".to_vec())),
        "d.xlsx",
        None,
        &Limits::default(),
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("not a readable XLSX"), "{e}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
    /// Any bytes: no panic, and every row is either valid or an issue with a line number.
    #[test]
    fn never_panics_on_any_bytes(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
        let mut input = b"prefix,description,rate,min,increment,effective date\n".to_vec();
        input.extend_from_slice(&body);
        let mut src = CsvSource::new(&input[..], "f.csv").unwrap();
        let layout = detect_layout("f.csv", src.headers(), &Mapping::default(), false).unwrap();
        let mut v = Validator::new("f.csv", layout, Rules::default());
        let mut f = vec![];
        for _ in 0..1000 {
            match src.next_row(&mut f) {
                Ok(None) => break,
                Ok(Some(line)) => {
                    proptest::prop_assert!(line >= 2);
                    if let Err(is) = v.check(line, &f) {
                        proptest::prop_assert!(is.iter().all(|i| i.line == Some(line)));
                    }
                }
                Err(i) => { proptest::prop_assert!(i.line.is_some()); break; }
            }
        }
    }

    /// Any bytes under a long (zone) header: no panic, every issue has its row's line, and
    /// every pivoted row is one of the lines read.
    #[test]
    fn long_layout_never_panics(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
        let mut input = b"prefix,zone,rate,min\n".to_vec();
        input.extend_from_slice(&body);
        let mut src = CsvSource::new(&input[..], "f.csv").unwrap();
        let layout = detect_layout("f.csv", src.headers(), &Mapping::default(), false).unwrap();
        let mut v = Validator::new("f.csv", layout, Rules::default());
        let mut f = vec![];
        let mut lines = vec![];
        for _ in 0..1000 {
            match src.next_row(&mut f) {
                Ok(None) => break,
                Ok(Some(line)) => {
                    lines.push(line);
                    match v.check(line, &f) {
                        Err(is) => proptest::prop_assert!(is.iter().all(|i| i.line == Some(line))),
                        Ok(r) => proptest::prop_assert!(r.is_none()),
                    }
                }
                Err(i) => { proptest::prop_assert!(i.line.is_some()); break; }
            }
        }
        let mut ok = true;
        v.finish(|r| ok &= lines.contains(&r.line) && r.prefix.is_some());
        proptest::prop_assert!(ok);
    }

    /// A long deck (zone rows in any order) pivots into exactly the wide rows.
    #[test]
    fn long_layout_round_trips(rows in proptest::collection::vec(
        ("[1-9][0-9]{0,10}", proptest::option::of(0u32..100_000_000u32),
         proptest::option::of(0u32..100_000_000u32), proptest::option::of(0u32..100_000_000u32)), 1..30),
        by_zone in proptest::prelude::any::<bool>()) {
        let mut seen = std::collections::HashSet::new();
        let mut want = vec![];
        let mut lines = vec![];
        for (p, a, b, c) in &rows {
            if (a.is_none() && b.is_none() && c.is_none()) || !seen.insert(p.clone()) { continue; }
            want.push((p.clone(), [*a, *b, *c]));
            for (z, r) in ["interstate", "intrastate", "local"].iter().zip([a, b, c]) {
                if let Some(r) = r {
                    lines.push((*z, format!("{p},{z},{}\n", fmt_scaled(i64::from(*r), 7))));
                }
            }
        }
        if by_zone {
            // all interstate rows, then all intrastate, then local (prefix order is kept)
            lines.sort_by_key(|(z, _)| *z);
        }
        let mut input = "Code,Zone,Price\n".to_string();
        for (_, l) in &lines {
            input.push_str(l);
        }
        let mut src = CsvSource::new(input.as_bytes(), "f.csv").unwrap();
        let layout = detect_layout("f.csv", src.headers(), &Mapping::default(), false).unwrap();
        let mut v = Validator::new("f.csv", layout, Rules::default());
        let mut f = vec![];
        while let Some(line) = src.next_row(&mut f).unwrap() {
            proptest::prop_assert!(v.check(line, &f).unwrap().is_none());
        }
        let mut got = vec![];
        v.finish(|r| got.push((r.prefix.unwrap().to_string(), r.rates)));
        got.sort();
        want.sort();
        proptest::prop_assert_eq!(got, want);
    }

    /// Valid generated rows (with quoting and CRLF) come back exactly.
    #[test]
    fn valid_rows_round_trip(rows in proptest::collection::vec(
        ("[1-9][0-9]{0,10}", "[a-zA-Z ,\"]{0,12}", 0u32..100_000_000u32), 1..30),
        crlf in proptest::prelude::any::<bool>()) {
        let eol = if crlf { "\r\n" } else { "\n" };
        let mut input = format!("Code,Destination,Price{eol}");
        let mut want = vec![];
        let mut seen = std::collections::HashSet::new();
        for (p, d, r) in &rows {
            if !seen.insert(p.clone()) { continue; }
            input.push_str(&format!("{p},\"{}\",{}{eol}", d.replace('"', "\"\""), fmt_scaled(i64::from(*r), 7)));
            want.push((p.clone(), d.trim().to_string(), *r));
        }
        let mut src = CsvSource::new(input.as_bytes(), "f.csv").unwrap();
        let layout = detect_layout("f.csv", src.headers(), &Mapping::default(), false).unwrap();
        let mut v = Validator::new("f.csv", layout, Rules::default());
        let mut f = vec![];
        let mut got = vec![];
        while let Some(line) = src.next_row(&mut f).unwrap() {
            let r = v.check(line, &f).unwrap().unwrap();
            got.push((r.prefix.unwrap().to_string(), r.description.unwrap_or("").to_string(), r.rates[0].unwrap()));
        }
        proptest::prop_assert_eq!(got, want);
    }
}
