#!/usr/bin/env bash
# Fuzzes warpd's parsers of outside input with cargo-fuzz (libFuzzer, coverage-guided):
#   ng_codec     ng datagrams from Kamailio or a node (cookie + bencode), NgAnswer's scan
#   deck_file    uploaded rate decks: CSV, gzip'ed CSV, XLSX, header detection, row validation
#   dip_params   dip requests: JSON params and the /v1/route query string; inbound dips and
#                credential look-ups (JSON, query, RESP arguments)
#   call_events  POST /v1/events form lines and the call.* JSON params
#   resp_codec   RESP2 commands from Kamailio's ndb_redis (and replies): crates/resp
# Each target starts from real inputs (the captured RTPEngine exchanges, the demo decks and the
# deck bombs of tests/fuzz/seeds, sample requests) plus what earlier runs found (tests/fuzz/corpus, not committed). A crash stops the run
# with the input saved under tests/fuzz/artifacts/<target>/.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET (default 60)] [TARGET ...]
#
# No sanitizer (-s none): warpd has no unsafe code (#![forbid(unsafe_code)]), and the address
# sanitizer needs a nightly compiler, which this project does not use.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
[ $# -eq 0 ] || shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(ng_codec deck_file dip_params call_events resp_codec)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
c=tests/fuzz/corpus
mkdir -p "$c"/ng_codec "$c"/deck_file "$c"/dip_params "$c"/call_events "$c"/resp_codec
cp crates/ng/src/testdata/*.req crates/ng/src/testdata/*.rsp "$c"/ng_codec/
cp examples/demo/rates/*.csv "$c"/deck_file/
# the bomb files (sparse XLSX at XFD1048576, zip/gzip bombs, a long field, escape sequences)
cp tests/fuzz/seeds/deck_file/* "$c"/deck_file/
printf '%s' '{"ban":"10001","ani":"+13125551000","dnis":"+12125551234","call_id":"a84b4c76e66710"}' >"$c"/dip_params/ban
printf '%s' '{"src_ip":"10.0.0.1","ani":"3125551000","dnis":"011442071234567","lrn":"2125550000","max_results":3}' >"$c"/dip_params/src_ip
printf '%s' 'ban=10001&ani=%2B13125551000&dnis=%2B12125551234&call_id=x' >"$c"/dip_params/query
printf '%s' 'trunk=acme-main&ani=%2B13125551000&dnis=%2B12125551234' >"$c"/dip_params/trunk
printf '%s' '{"src_ip":"192.0.2.7","ani":"+13105550000","dnis":"+12125550100","call_id":"in-1"}' >"$c"/dip_params/inbound_json
printf '%s' 'src_ip=192.0.2.7&ani=%2B13105550000&dnis=2125550100&call_id=in-1' >"$c"/dip_params/inbound_query
printf '%s' '192.0.2.7 +13105550000 +12125550100 in-1' >"$c"/dip_params/inbound_args
printf '%s' 'user=acme&realm=sip.example.net' >"$c"/dip_params/cred_query
printf '%s\n%s\n%s' 'event=attempt&call_id=a84b&attempt=1&route_id=lumen-east&sip_code=503&reason=Service%20Unavailable&ts=1700000000.25' \
  'event=answer&call_id=a84b&attempt=2&route_id=bw&ts=1700000001' \
  'event=end&call_id=a84b&ts=1700000060&hangup=caller&cause=200%20OK&mos=4.3&jitter_ms=2.5&loss_pct=0.1' >"$c"/call_events/form
printf '%s' '{"call_id":"a84b","attempt":1,"route_id":"lumen-east","sip_code":486,"reason":"Busy Here"}' >"$c"/call_events/attempt
printf '*2\r\n$4\r\nAUTH\r\n$6\r\nsecret\r\n*1\r\n$4\r\nPING\r\n' >"$c"/resp_codec/auth
printf '*6\r\n$3\r\nLCR\r\n$8\r\n10.0.0.1\r\n$12\r\n+13125551000\r\n$11\r\n12125551234\r\n$3\r\nabc\r\n$0\r\n\r\n' >"$c"/resp_codec/lcr
printf 'ECHO "a b\\"c" '"'"'d'"'"'\r\n' >"$c"/resp_codec/inline
printf '*4\r\n$5\r\nroute\r\n:200\r\n$-1\r\n*1\r\n+OK\r\n' >"$c"/resp_codec/reply
cd tests/fuzz
cargo fuzz build -s none --fuzz-dir .
for t in "${targets[@]}"; do
  echo "== fuzzing $t for ${secs}s"
  rm -rf "artifacts/$t"
  cargo fuzz run -s none --fuzz-dir . "$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 2>&1 |
    grep -E '^(Done|stat::number_of_executed_units|==[0-9]+== ERROR|SUMMARY)|panicked|crash-|Test unit written' || true
  # a crash leaves its input in artifacts/: fail the run
  if compgen -G "artifacts/$t/*" >/dev/null; then
    echo "fuzz target $t found a failing input:" >&2
    ls "artifacts/$t" >&2
    exit 1
  fi
done
