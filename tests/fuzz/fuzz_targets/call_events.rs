//! Any call event body: `POST /v1/events` form lines and the `call.*` JSON-RPC params. Parsed or
//! refused with the line and field named, never a panic; a parsed event survives the stored
//! JSON form unchanged.
#![no_main]
use libfuzzer_sys::fuzz_target;
use warpd_core::calls::events::{answer_event, attempt_event, end_event, form_events, Event};

fuzz_target!(|data: &[u8]| {
    let mut events = vec![];
    match form_events(data, 1_700_000_000_000_000) {
        Ok(evs) => events.extend(evs),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    for parse in [attempt_event, answer_event, end_event] {
        if let Ok(ev) = parse(data, 1_700_000_000_000_000) {
            events.push(ev);
        }
    }
    for ev in events {
        let back = Event::from_json(ev.to_json().as_bytes()).expect("stored form reads back");
        assert_eq!(back, ev);
    }
});
