#!/usr/bin/env bash
# Sets up and runs warpd with the demo network on this machine (Debian 12):
#  - installs build and database dependencies from Debian packages,
#  - builds warpd (release) from crates.io dependencies,
#  - starts a private PostgreSQL cluster in ./.demo (port 55432, 127.0.0.1 only; never touches
#    a system cluster; WARPD_DEMO_PG_PORT picks another port),
#  - migrates, applies examples/demo/network.toml, and serves dips on 127.0.0.1:8080 (admin API/metrics on 127.0.0.1:8081)
#    and over RESP on the unix socket ./.demo/resp.sock (Kamailio's dips),
#  - brings up the voice stack on this host: RTPEngine (userspace, ng on 127.0.0.1:22222, media
#    ports 30000-30100, recordings in ./.demo/recordings) and Kamailio with kamailio/kamailio.cfg
#    on 127.0.0.1:5060 (WARPD_DEMO_SIP_PORT), media through warpd's ng proxy when it has one,
#  - places the demo calls (scripts/demo-calls.sh: SIPp as customer and as the vendors), signed
#    and verified with STIR/SHAKEN (a demo key and STI-CA made with openssl in ./.demo/stir).
# WARPD_DEMO_STACK=0 runs warpd alone. Stop with Ctrl-C (everything started here is stopped).
# Re-running reuses the cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
scripts/install-deps.sh
cargo build --release --locked
bin="$root/target/release/warpd"

state="$root/.demo"; pgdata="$state/pgdata"; port="${WARPD_DEMO_PG_PORT:-55432}"
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
as_pg=()
if [ "$(id -u)" -eq 0 ]; then as_pg=(runuser -u postgres --); fi
mkdir -p "$state"
if [ ! -f "$pgdata/PG_VERSION" ]; then
  mkdir -p "$pgdata"
  [ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$state"
  "${as_pg[@]}" "$pgbin/initdb" -D "$pgdata" -U warpd --auth=trust -E UTF8 --locale=C >/dev/null
  cat >>"$pgdata/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$state'
CONF
fi
if ! "${as_pg[@]}" "$pgbin/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; then
  "${as_pg[@]}" "$pgbin/pg_ctl" -D "$pgdata" -o "-p $port" -l "$state/postgres.log" -w start >/dev/null
fi
pids=()
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  "${as_pg[@]}" "$pgbin/pg_ctl" -D "$pgdata" -m fast stop >/dev/null 2>&1 || true
}
trap stop_all EXIT
"${as_pg[@]}" "$pgbin/psql" -h 127.0.0.1 -p "$port" -U warpd -d postgres -tAc \
  "SELECT 1 FROM pg_database WHERE datname='warpd'" | grep -q 1 ||
  "${as_pg[@]}" "$pgbin/psql" -h 127.0.0.1 -p "$port" -U warpd -d postgres -qc "CREATE DATABASE warpd"

export WARPD_CONFIG="$root/warpd.example.toml"
export WARPD_DATABASE__URL="postgres://warpd@127.0.0.1:$port/warpd"
export WARPD_LOG__FORMAT=text
export WARPD_CDR__SPOOL_DIR="$state/spool"
# the RESP unix socket kamailio.cfg dips through by default (README "Dip over RESP"; its file
# permissions are its guard, no AUTH; Kamailio runs as the same user here). A path of at most
# 107 bytes (sun_path): a checkout that deep gets the socket under /tmp instead.
resp_sock="$state/resp.sock"
[ ${#resp_sock} -lt 108 ] || resp_sock="$(mktemp -d /tmp/warpd-demo.XXXXXX)/resp.sock"
export WARPD_SERVER__KAMAILIO_RESP_SOCKET="${WARPD_SERVER__KAMAILIO_RESP_SOCKET:-$resp_sock}"
export WARPD_SERVER__KAMAILIO_RESP_REQUIRE_SECRET=false
if [ "${WARPD_DEMO_STACK:-1}" != 0 ]; then
  # STIR/SHAKEN (issue 20, docs/STIR.md): a demo STI-CA and the carrier's signing key and
  # certificate (made once with openssl; never use these outside the demo), the certificate
  # served at its x5u on 127.0.0.1:8099 for the verification of the demo's inbound call
  stir="$state/stir"
  if [ ! -f "$stir/sp.pem" ]; then
    mkdir -p "$stir"
    ( cd "$stir"
      openssl ecparam -name prime256v1 -genkey -noout -out ca.key
      openssl req -x509 -new -key ca.key -subj "/CN=warpd demo STI-CA" -days 3650 -out ca.pem \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
      openssl ecparam -name prime256v1 -genkey -noout -out sp.key
      chmod 600 sp.key ca.key
      openssl req -new -key sp.key -subj "/CN=warpd demo SHAKEN" -out sp.csr
      printf 'keyUsage=critical,digitalSignature\n' >sp.ext
      openssl x509 -req -in sp.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 365 \
        -extfile sp.ext -out sp.pem ) 2>/dev/null
  fi
  mkdir -p "$state/stir-cache"
  export WARPD_STIR__KEY_FILE="$stir/sp.key" WARPD_STIR__CERT_FILE="$stir/sp.pem"
  export WARPD_DEMO_STIR_X5U="http://127.0.0.1:8099/sp.pem" WARPD_DEMO_STIR_KEY="$stir/sp.key"
  # media through warpd: Kamailio's rtpengine module -> warpd (ng proxy) -> RTPEngine below
  export WARPD_MEDIA__NG_LISTEN="127.0.0.1:22223"
  export WARPD_MEDIA__NODES='[{ address = "127.0.0.1:22222", weight = 1 }]'
fi
"$bin" migrate
"$bin" apply examples/demo/network.toml
# the ops console's first admin (a fresh password on every run; shown below)
console_pw=$("$bin" user add admin --role admin 2>/dev/null || "$bin" user passwd admin 2>/dev/null)
# credit control (issue 21): Budget Dialer LLC (10002) is a prepaid customer with $25.00, at most
# $100 a day in New York days (`warpd account show --ban 10002`). Set here rather than as
# `[customers.account]` in examples/demo/network.toml, which the tests' networks copy unlimited.
# Once only: a second run keeps the balance its calls left.
if ! "$bin" account show --ban 10002 --ledger 1 >/dev/null 2>&1; then
  "$bin" account set --ban 10002 --mode prepaid --daily-spend-limit 100 --tz America/New_York
  "$bin" account topup --ban 10002 --amount 25.00 --note "demo opening balance"
fi
# issue 19: the demo vendors' gateways share 127.0.0.1 with customer 10001, whose source it is;
# northstar also delivers calls to the carrier's numbers from 127.0.0.2: an origination source in
# examples/demo/network.toml (`[[origination_sources]]`), where scripts/demo-calls.sh places the
# inbound call
"$bin" serve &
pids+=($!)
listen=$("$bin" check-config | sed -n 's/^kamailio_listen = "\(.*\)"$/\1/p' | head -n1)
admin=$("$bin" check-config | sed -n 's/^admin_listen = "\(.*\)"$/\1/p' | head -n1)
for _ in $(seq 300); do curl -sf "http://${listen:-127.0.0.1:8080}/readyz" >/dev/null && break; sleep 0.1; done

if [ "${WARPD_DEMO_STACK:-1}" != 0 ]; then
  sip_port="${WARPD_DEMO_SIP_PORT:-5060}"
  mkdir -p "$state/recordings" "$state/kamailio"
  rtpengine --config-file="$root/rtpengine/rtpengine.conf" --table=-1 --interface=127.0.0.1 \
    --listen-ng=127.0.0.1:22222 --listen-cli=127.0.0.1:22224 --port-min=30000 --port-max=30100 \
    --recording-dir="$state/recordings" --log-facility=daemon --foreground --log-stderr \
    --pidfile="$state/rtpengine.pid" >"$state/rtpengine.log" 2>&1 &
  pids+=($!)
  # warpd's ng proxy when this warpd has one (config media.ng_listen), else RTPEngine itself
  ng=$("$bin" check-config | sed -n 's/^ng_listen = "\(.*\)"$/\1/p' | head -n1)
  kam_defs=(-A "SIP_PORT=$sip_port" -A WITH_MEDIA -A "RTPENGINE_SOCK=\"udp:${ng:-127.0.0.1:22222}\""
    -A "HTTP_ASYNC_SO=\"${WARPD_KAM_MODULES:-$root/target/kamailio-modules}/http_async_client.so\""
    -A "WARPD_URL=\"http://${listen:-127.0.0.1:8080}\"" -A "WARPD_EVENTS_HTTPCON=\"events=>http://${listen:-127.0.0.1:8080}/v1/events\"" -A "CTL_SOCKET=\"unixs:$state/kamailio/ctl\""
    -A "WARPD_RESP_SERVER=\"name=warpd;unix=$WARPD_SERVER__KAMAILIO_RESP_SOCKET\""
    -A 'AUTH_REALM="warpd.demo"'
    -A WITH_STIR -A "STIR_KEY_PATH=\"$stir/sp.key\"" -A "STIR_X5U=\"$WARPD_DEMO_STIR_X5U\""
    -A "STIR_CA_FILE=\"CertCAFile=$stir/ca.pem\"" -A "STIR_CACHE_DIR=\"$state/stir-cache\"")
  python3 -m http.server 8099 --bind 127.0.0.1 --directory "$stir" >"$state/x5u.log" 2>&1 &
  pids+=($!)
  kamailio -f "$root/kamailio/kamailio.cfg" -DD -E -m 256 -M 16 -x tlsf -P "$state/kamailio/kamailio.pid" \
    -Y "$state/kamailio" "${kam_defs[@]}" >"$state/kamailio.log" 2>&1 &
  pids+=($!)
  sleep 1
  scripts/demo-calls.sh "127.0.0.1:$sip_port" || echo "demo calls failed: see $state/kamailio.log" >&2
  sleep 1   # the last call.end is posted asynchronously
  echo
  echo "CDRs of the demo calls (warpd cdr export; also GET /v1/cdrs):"
  "$bin" cdr export --format json | python3 -c '
import json, sys
cols = ["direction", "trunk", "dnis", "route_id", "vendor", "disposition", "sip_code",
        "attempt_count", "duration_ms", "vendor_billed_s", "cost", "price", "hangup", "cause",
        "stir_attest", "stir_verstat"]
print("  " + " ".join(f"{c:>13}" for c in cols))
for line in sys.stdin:
    r = json.loads(line)
    vals = ["-" if r.get(c) is None else str(r.get(c))[:13] for c in cols]
    print("  " + " ".join(f"{v:>13}" for v in vals))
' || echo "(no CDRs yet)"
fi

cat <<MSG

warpd is serving dips on http://${listen:-127.0.0.1:8080} (the Kamailio listener) and its admin
API, CDRs and metrics on http://${admin:-127.0.0.1:8081} (the admin listener), with the demo network. Try:
  curl -s 'http://127.0.0.1:8080/v1/route?src_ip=127.0.0.1&ani=%2B13125551000&dnis=%2B12125551234'
  curl -s -H 'content-type: application/json' -d '{"jsonrpc":"2.0","id":1,"method":"lcr.route","params":{"src_ip":"127.0.0.1","ani":"+13125551000","dnis":"+12125551234"}}' http://127.0.0.1:8080/rpc
  curl -s -H 'content-type: application/json' -d '{"jsonrpc":"2.0","id":1,"method":"lcr.simulate","params":{"ban":"10001","ani":"+13125551000","dnis":"+12125551234"}}' http://${admin:-127.0.0.1:8081}/rpc
(dips name the customer by source address: server.kamailio_dip_as = "src_ip"; rates are in lcr.simulate)
  $bin --config $WARPD_CONFIG route --ban 10001 --ani +13125551000 --dnis +12125551234

The ops console (docs/CONSOLE.md): http://${admin:-127.0.0.1:8081}/console/
  sign in as: admin    password: ${console_pw}
  (more users: $bin --config $WARPD_CONFIG user add NAME --role admin|ops|readonly)
MSG
if [ "${WARPD_DEMO_STACK:-1}" != 0 ]; then
  cat <<MSG
Kamailio (kamailio/kamailio.cfg) takes calls on 127.0.0.1:$sip_port, RTPEngine relays media;
place the demo calls again with: scripts/demo-calls.sh 127.0.0.1:$sip_port
list the CDRs with: $bin --config $WARPD_CONFIG cdr export
  (over HTTP they need an admin token: t=\$($bin --config $WARPD_CONFIG token create --name demo --role readonly)
   then curl -s -H "Authorization: Bearer \$t" 'http://${admin:-127.0.0.1:8081}/v1/cdrs?ban=10001')
Logs: $state/kamailio.log, $state/rtpengine.log
MSG
fi
echo "Ctrl-C stops everything."
wait "${pids[0]}"
