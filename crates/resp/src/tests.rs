use super::*;
use proptest::prelude::*;

fn lim() -> Limits {
    Limits::default()
}

/// (value, its exact wire form): encode gives the bytes, decode gives the value back.
fn vectors() -> Vec<(Value, &'static [u8])> {
    vec![
        (Value::Simple("OK".into()), b"+OK\r\n"),
        (Value::Simple("PONG".into()), b"+PONG\r\n"),
        (
            Value::Error("NOAUTH Authentication required.".into()),
            b"-NOAUTH Authentication required.\r\n",
        ),
        (Value::Integer(0), b":0\r\n"),
        (Value::Integer(503), b":503\r\n"),
        (Value::Integer(-7), b":-7\r\n"),
        (Value::Integer(i64::MIN), b":-9223372036854775808\r\n"),
        (Value::bulk(""), b"$0\r\n\r\n"),
        (
            Value::bulk("sip:+12125551234@10.0.0.9:5060"),
            b"$30\r\nsip:+12125551234@10.0.0.9:5060\r\n",
        ),
        (Value::bulk(&b"a\r\nb\0"[..]), b"$5\r\na\r\nb\0\r\n"),
        (Value::Nil, b"$-1\r\n"),
        (Value::Array(vec![]), b"*0\r\n"),
        (
            Value::Array(vec![
                Value::bulk("route"),
                Value::Integer(200),
                Value::bulk(""),
                Value::Array(vec![Value::Nil, Value::Simple("x".into())]),
            ]),
            b"*4\r\n$5\r\nroute\r\n:200\r\n$0\r\n\r\n*2\r\n$-1\r\n+x\r\n",
        ),
    ]
}

#[test]
fn vectors_both_ways() {
    for (v, bytes) in vectors() {
        assert_eq!(v.to_bytes(), bytes, "encode {v:?}");
        assert_eq!(
            decode(bytes, &lim()),
            Ok(Some((v.clone(), bytes.len()))),
            "decode {v:?}"
        );
        // every strict prefix is "read more", never an error or a wrong value
        for cut in 0..bytes.len() {
            assert_eq!(
                decode(&bytes[..cut], &lim()),
                Ok(None),
                "{v:?} cut at {cut}"
            );
        }
        // followed by more input: only its own bytes are consumed
        let mut two = bytes.to_vec();
        two.extend_from_slice(b"+next\r\n");
        assert_eq!(decode(&two, &lim()), Ok(Some((v, bytes.len()))));
    }
}

#[test]
fn nil_array_and_line_breaks_in_simple_strings() {
    assert_eq!(decode(b"*-1\r\n", &lim()), Ok(Some((Value::Nil, 5))));
    assert_eq!(Value::Error("a\r\nb".into()).to_bytes(), b"-a  b\r\n");
}

/// (request bytes, the arguments): what redis-cli, hiredis and a telnet user send.
#[test]
fn commands() {
    let table: Vec<(&[u8], Vec<&[u8]>)> = vec![
        (b"*1\r\n$4\r\nPING\r\n", vec![b"PING"]),
        (b"*2\r\n$4\r\nAUTH\r\n$6\r\nsecret\r\n", vec![b"AUTH", b"secret"]),
        (
            b"*6\r\n$3\r\nLCR\r\n$8\r\n10.0.0.1\r\n$12\r\n+13125551000\r\n$11\r\n12125551234\r\n$3\r\nabc\r\n$0\r\n\r\n",
            vec![b"LCR", b"10.0.0.1", b"+13125551000", b"12125551234", b"abc", b""],
        ),
        (b"PING\r\n", vec![b"PING"]),
        (b"PING\n", vec![b"PING"]),
        (b"  select   0 \r\n", vec![b"select", b"0"]),
        (b"ECHO \"a b\\\"c\\n\" 'd e'\r\n", vec![b"ECHO", b"a b\"c\n", b"d e"]),
        (b"\r\n", vec![]),
        (b"*0\r\n", vec![]),
        (b"*-1\r\n", vec![]),
    ];
    for (bytes, want) in table {
        let want: Vec<Vec<u8>> = want.into_iter().map(<[u8]>::to_vec).collect();
        assert_eq!(
            decode_command(bytes, &lim()),
            Ok(Some((want, bytes.len()))),
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
        for cut in 0..bytes.len() {
            assert_eq!(
                decode_command(&bytes[..cut], &lim()),
                Ok(None),
                "cut at {cut}"
            );
        }
    }
}

/// Input that can never become valid: a typed error, found as soon as the bad header is read.
#[test]
fn bad_input() {
    let small = Limits {
        max_array: 3,
        max_bulk: 8,
        max_line: 16,
        max_depth: 2,
    };
    let long_line = [b'A'; 40];
    let table: Vec<(&[u8], RespError)> = vec![
        (
            b"*4\r\n",
            RespError::TooLong {
                what: "array",
                len: 4,
                max: 3,
            },
        ),
        (
            b"*1\r\n$9\r\n",
            RespError::TooLong {
                what: "bulk",
                len: 9,
                max: 8,
            },
        ),
        (
            b"*1\r\n$1x\r\n",
            RespError::BadLength {
                what: "bulk",
                value: "\"1x\"".into(),
            },
        ),
        (
            b"*1\r\n$1000000000\r\n",
            RespError::TooLong {
                what: "bulk",
                len: 1_000_000_000,
                max: 8,
            },
        ),
        (
            b"*x\r\n",
            RespError::BadLength {
                what: "array",
                value: "\"x\"".into(),
            },
        ),
        (
            b"*-2\r\n",
            RespError::BadLength {
                what: "array",
                value: "-2".into(),
            },
        ),
        (
            b"*+1\r\n",
            RespError::BadLength {
                what: "array",
                value: "\"+1\"".into(),
            },
        ),
        (b"*1\r\n:1\r\n", RespError::NotBulk(0)),
        (b"*1\r\n$-1\r\n", RespError::NotBulk(0)),
        (b"*1\r\n$2\r\nabX", RespError::MissingCrlf),
        (b"*1\r\n$2\r\nab\rX", RespError::MissingCrlf),
        (
            &long_line,
            RespError::TooLong {
                what: "line",
                len: 40,
                max: 16,
            },
        ),
        (
            b"a b c d\r\n",
            RespError::TooLong {
                what: "array",
                len: 4,
                max: 3,
            },
        ),
        (b"ECHO \"abc\r\n", RespError::UnbalancedQuotes),
        (b"ECHO \"a\"b\r\n", RespError::UnbalancedQuotes),
    ];
    for (bytes, want) in table {
        assert_eq!(
            decode_command(bytes, &small),
            Err(want),
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
    let values: Vec<(&[u8], RespError)> = vec![
        (b"?x\r\n", RespError::UnknownType(b'?')),
        (b":1x\r\n", RespError::BadInteger("\"1x\"".into())),
        (b"*1\r\n*1\r\n*1\r\n:1\r\n", RespError::TooDeep(2)),
        // found by the fuzz target: a simple string cannot carry a CR (it would not survive
        // encode → decode)
        (b"+OK\rzz\r\n", RespError::CrInLine),
        (b"-ERR a\rb\n", RespError::CrInLine),
        // also found by it: invalid UTF-8 would come back longer (U+FFFD) than it went in
        (b"-C\xbdC\r\n", RespError::NotUtf8),
        (
            b"$9\r\n",
            RespError::TooLong {
                what: "bulk",
                len: 9,
                max: 8,
            },
        ),
    ];
    for (bytes, want) in values {
        assert_eq!(
            decode(bytes, &small),
            Err(want),
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        "[a-zA-Z0-9 ]{0,12}".prop_map(Value::Simple),
        "[a-zA-Z0-9 ]{0,12}".prop_map(Value::Error),
        any::<i64>().prop_map(Value::Integer),
        proptest::collection::vec(any::<u8>(), 0..32).prop_map(Value::Bulk),
        Just(Value::Nil),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        proptest::collection::vec(inner, 0..6).prop_map(Value::Array)
    })
}

proptest! {
    #[test]
    fn encode_then_decode_is_identity(v in value()) {
        let bytes = v.to_bytes();
        prop_assert_eq!(decode(&bytes, &lim()), Ok(Some((v, bytes.len()))));
    }

    #[test]
    fn commands_round_trip(args in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..8)) {
        let v = Value::Array(args.iter().cloned().map(Value::Bulk).collect());
        let bytes = v.to_bytes();
        prop_assert_eq!(decode_command(&bytes, &lim()), Ok(Some((args, bytes.len()))));
    }

    #[test]
    fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = decode(&bytes, &lim());
        if let Ok(Some((_, n))) = decode_command(&bytes, &lim()) {
            prop_assert!(n <= bytes.len() && n > 0);
        }
    }
}
