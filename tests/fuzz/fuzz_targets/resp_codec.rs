//! Any bytes a Kamailio (ndb_redis) or any other peer could send to the RESP listener: the codec
//! never panics, never consumes more than it was given, a command that decodes survives
//! encode → decode unchanged, and a value that decodes re-encodes to bytes that decode to it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use warpd_resp::{decode, decode_command, Limits, Value};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(Some((args, n))) = decode_command(data, &limits) {
        assert!(n > 0 && n <= data.len());
        if !args.is_empty() {
            let again = Value::Array(args.iter().cloned().map(Value::Bulk).collect()).to_bytes();
            let (args2, m) = decode_command(&again, &limits)
                .expect("re-encoded command decodes")
                .expect("re-encoded command is complete");
            assert_eq!((args, again.len()), (args2, m));
        }
    }
    if let Ok(Some((v, n))) = decode(data, &limits) {
        assert!(n > 0 && n <= data.len());
        let again = v.to_bytes();
        assert_eq!(decode(&again, &limits), Ok(Some((v, again.len()))));
    }
});
