//! The bounds of a deck file: the bomb files of issue 16 (also the fuzz seeds in
//! tests/fuzz/seeds/deck_file) are refused with an error naming the place, quickly and without
//! allocating what they claim.

use std::io::{Cursor, Write};

use super::*;

const SEEDS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fuzz/seeds/deck_file"
);

fn seed(name: &str) -> Vec<u8> {
    std::fs::read(format!("{SEEDS}/{name}")).unwrap()
}

fn open(bytes: Vec<u8>, limits: &Limits) -> Result<Box<dyn RowSource + Send>, provision::Issue> {
    open_source(Box::new(Cursor::new(bytes)), "f", None, limits).map(|(_, s)| s)
}

/// Reads every row; the first error.
fn drain(mut src: Box<dyn RowSource + Send>) -> Option<provision::Issue> {
    let mut f = vec![];
    loop {
        match src.next_row(&mut f) {
            Ok(None) => return None,
            Ok(Some(_)) => {}
            Err(e) => return Some(e),
        }
    }
}

use crate::provision;

#[test]
fn sparse_sheet_is_read_by_cell_and_its_far_cell_refused() {
    // one cell at A1, one at XFD1048576: the dense range would be 2^34 cells
    let e = open(seed("sparse-xfd1048576.xlsx"), &Limits::default())
        .err()
        .unwrap();
    assert_eq!(e.line, Some(1_048_576));
    assert_eq!(e.field, "sheet \"Deck\", cell XFD1048576");
    assert!(e.message.contains("at most 256 columns"), "{e}");
}

#[test]
fn sparse_rows_far_apart_cost_nothing() {
    // a header at row 1 and a row at 1048576 within the columns is just two rows
    let sheet = r#"<row r="1"><c r="A1" t="inlineStr"><is><t>Prefix</t></is></c><c r="B1" t="inlineStr"><is><t>Rate</t></is></c></row><row r="1048576"><c r="A1048576"><v>44</v></c><c r="B1048576"><v>0.01</v></c></row>"#;
    let mut src = open(xlsx_raw(sheet), &Limits::default()).unwrap();
    assert_eq!(src.headers(), ["Prefix", "Rate"]);
    let mut f = vec![];
    assert_eq!(src.next_row(&mut f).unwrap(), Some(1_048_576));
    assert_eq!(f, ["44", "0.01"]);
    assert_eq!(src.next_row(&mut f).unwrap(), None);
}

#[test]
fn xlsx_parts_are_measured_before_reading() {
    let small = Limits {
        xlsx_unzipped_bytes: 4 << 20,
        ..Limits::default()
    };
    let e = open(seed("unzips-to-8m.xlsx"), &small).err().unwrap();
    assert!(
        e.message.contains(
            "decompress to more than 4194304 bytes (at part \"xl/worksheets/sheet1.xml\")"
        ),
        "{e}"
    );
    // within the bound it is just an empty sheet
    let e = open(seed("unzips-to-8m.xlsx"), &Limits::default())
        .err()
        .unwrap();
    assert!(e.message.contains("empty sheet"), "{e}");
}

#[test]
fn gzip_bomb_stops_at_the_record_bound() {
    // 64 MB of '0' without a line end: one endless header field
    let t = std::time::Instant::now();
    let e = open(seed("zeros-64m.csv.gz"), &Limits::default())
        .err()
        .unwrap();
    assert!(
        e.message.contains("a record longer than 65536 bytes"),
        "{e}"
    );
    assert_eq!(e.line, Some(1));
    assert!(e.to_string().len() < 200, "{e}");
    assert!(t.elapsed().as_secs() < 5);
}

#[test]
fn gzip_content_is_bounded() {
    // empty records only: every record is short, the content is not
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"prefix,rate\n").unwrap();
    for _ in 0..16 {
        gz.write_all(&b",\n".repeat(1 << 15)).unwrap();
    }
    let bytes = gz.finish().unwrap();
    let small = Limits {
        content_bytes: 1 << 20,
        ..Limits::default()
    };
    let e = drain(open(bytes.clone(), &small).unwrap()).unwrap();
    assert!(
        e.message
            .contains("the deck is larger than 1048576 bytes (decompressed)"),
        "{e}"
    );
    assert!(drain(open(bytes, &Limits::default()).unwrap()).is_none());
}

#[test]
fn long_field_is_refused_with_an_excerpt() {
    // 1 MB: past the record bound already
    let e = drain(open(seed("long-field.csv.gz"), &Limits::default()).unwrap()).unwrap();
    assert_eq!(e.line, Some(2));
    assert!(
        e.message.contains("a record longer than 65536 bytes"),
        "{e}"
    );
    assert!(e.to_string().len() < 200, "{e}");
    let csv = format!("prefix,rate\n44,{}\n", "\x1b9".repeat(5000));
    let e = drain(open(csv.into_bytes(), &Limits::default()).unwrap()).unwrap();
    assert_eq!(e.line, Some(2));
    assert_eq!(e.field, "rate");
    assert!(
        e.message.contains("a field longer than 4096 bytes: "),
        "{e}"
    );
    assert!(e.message.ends_with("(10000 bytes)"), "{e}");
    let shown = e.to_string();
    assert!(shown.len() < 400 && !shown.contains('\x1b'), "{e}");
    // a bad field under the bound is quoted short
    let csv = format!("prefix,rate\n44,{}\n", "9x".repeat(2000));
    let mut src = open(csv.into_bytes(), &Limits::default()).unwrap();
    let layout = detect_layout("f", src.headers(), &Mapping::default(), false).unwrap();
    let mut v = Validator::new("f", layout, Rules::default());
    let mut f = vec![];
    src.next_row(&mut f).unwrap();
    let is = v.check(2, &f).err().unwrap();
    assert!(is[0].to_string().len() < 200, "{}", is[0]);
    assert!(is[0].message.contains("(4000 bytes)"), "{}", is[0]);
}

#[test]
fn columns_are_bounded() {
    let header = (0..300)
        .map(|i| format!("c{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let e = open(format!("{header}\n").into_bytes(), &Limits::default())
        .err()
        .unwrap();
    assert!(
        e.message
            .contains("300 fields; a deck has at most 256 columns"),
        "{e}"
    );
    let row = vec!["1"; 300].join(",");
    let e = drain(
        open(
            format!("prefix,rate\n{row}\n").into_bytes(),
            &Limits::default(),
        )
        .unwrap(),
    )
    .unwrap();
    assert!(e.message.contains("300 fields"), "{e}");
}

#[test]
fn escape_sequences_in_headers_are_escaped() {
    let src = open(seed("escape-header.csv"), &Limits::default()).unwrap();
    let e = detect_layout("f", src.headers(), &Mapping::default(), false)
        .err()
        .unwrap();
    let all: String = e.iter().map(|i| i.to_string()).collect();
    assert!(!all.contains('\x1b') && !all.contains('\x07'), "{all:?}");
    assert!(!all.contains('\u{202e}'), "{all:?}");
    assert!(all.contains("\\u{1b}[31mPrefix\\u{7}"), "{all}");
}

/// A one-sheet workbook whose sheet data is `rows` (raw XML).
fn xlsx_raw(rows: &str) -> Vec<u8> {
    let src = seed("sparse-xfd1048576.xlsx");
    let mut zin = zip::ZipArchive::new(Cursor::new(src)).unwrap();
    let mut z = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let o = zip::write::SimpleFileOptions::default();
    for i in 0..zin.len() {
        let mut f = zin.by_index(i).unwrap();
        let name = f.name().to_string();
        z.start_file(name.as_str(), o).unwrap();
        if name == "xl/worksheets/sheet1.xml" {
            write!(z, r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>{rows}</sheetData></worksheet>"#).unwrap();
        } else {
            std::io::copy(&mut f, &mut z).unwrap();
        }
    }
    z.finish().unwrap().into_inner()
}
