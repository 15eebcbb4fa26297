//! Any uploaded rate deck (CSV, gzip'ed CSV or XLSX, sniffed as on import): the reader, the
//! header detection and the row validation never panic, and every problem names its line. The
//! seeds include the bombs of issue 16 (sparse XLSX, zip and gzip bombs, long fields, escapes).
#![no_main]
use libfuzzer_sys::fuzz_target;
use warpd_core::deck::parse::{detect_layout, open_source, Limits, Mapping, Rules, Validator};

fuzz_target!(|data: &[u8]| {
    let file = Box::new(std::io::Cursor::new(data.to_vec()));
    // the bounds, small: a bomb seed (tests/fuzz/seeds/deck_file) trips them quickly
    let limits = Limits {
        content_bytes: 8 << 20,
        xlsx_bytes: 1 << 20,
        xlsx_unzipped_bytes: 4 << 20,
        ..Limits::default()
    };
    let Ok((_, mut src)) = open_source(file, "f", None, &limits) else {
        return;
    };
    // a prefix deck, else an OCN/LATA one (the route's billing model decides on import)
    let detected = [false, true].into_iter().find_map(|ocn_lata| {
        detect_layout("f", src.headers(), &Mapping::default(), ocn_lata)
            .ok()
            .map(|layout| (layout, ocn_lata))
    });
    let Some((layout, ocn_lata)) = detected else {
        return;
    };
    let rules = Rules {
        ocn_lata,
        ..Rules::default()
    };
    let mut v = Validator::new("f", layout, rules);
    let mut fields = vec![];
    for _ in 0..10_000 {
        match src.next_row(&mut fields) {
            Ok(None) => break,
            Ok(Some(line)) => {
                if let Err(issues) = v.check(line, &fields) {
                    assert!(issues.iter().all(|i| i.line == Some(line)));
                }
            }
            Err(issue) => {
                assert!(issue.line.is_some());
                break;
            }
        }
    }
    v.finish(|_| {});
});
