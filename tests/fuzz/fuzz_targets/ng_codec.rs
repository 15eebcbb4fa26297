//! Any datagram a node or Kamailio could send: the ng codec never panics, a dictionary that
//! decodes survives encode → decode unchanged, and the non-building scan of a node's answer
//! (`NgAnswer`) accepts nothing the full decode refuses.
#![no_main]
use libfuzzer_sys::fuzz_target;
use warpd_ng::{encode_datagram, parse_datagram, NgAnswer, NgRequest, Quality};

fuzz_target!(|data: &[u8]| {
    let parsed = parse_datagram(data);
    if let Ok((cookie, dict)) = &parsed {
        let again = encode_datagram(cookie, dict);
        let (cookie2, dict2) = parse_datagram(&again).expect("re-encoded datagram decodes");
        assert_eq!((*cookie, dict), (cookie2, &dict2));
    }
    if let Ok((_, answer)) = NgAnswer::decode(data) {
        let (_, dict) = parsed
            .as_ref()
            .expect("the scan accepted what the decode refused");
        assert!(dict.str("result").is_some());
        let _ = Quality::from_answer(&answer);
    }
    if let Ok((cookie, req)) = NgRequest::decode(data) {
        let _ = req.call_id();
        let _ = req.encode(&cookie);
    }
});
