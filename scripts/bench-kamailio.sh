#!/usr/bin/env bash
# Peer benchmark (docs/BENCHMARKS.md, "Kamailio: native lcr vs warpd dip"): calls per second through
# Kamailio (kamailio/kamailio.cfg) on this machine, same SIPp scenario, same run, three ways:
#   lcr        Kamailio's native lcr module (-A BENCH_NATIVE_LCR), db_text tables holding the same
#              gateways, in the same order, that warpd returns for the benchmark call;
#   drouting   (not in the default MODES) the same with Kamailio's native drouting module
#              (-A BENCH_NATIVE_DROUTING): the issue's other native baseline;
#   dip        the warpd dip (http_async_query, full partition/LCR procedure), events off;
#   dip+events the warpd dip plus the call.attempt/answer/end events;
#   resp       (not in the default MODES) the warpd dip over RESP (ndb_redis, synchronous LCR over a
#              persistent connection, the flat answer array) over TCP on 127.0.0.1 (kamailio.cfg
#              -A WARPD_RESP_TCP), events off; resp+events the same with events;
#   resp-unix  (not in the default MODES) resp over warpd's unix socket (server.kamailio_resp_socket,
#              ndb_redis `unix=`; kamailio.cfg's default transport) instead of TCP on 127.0.0.1:
#              no TCP stack on either side;
#   resp+stir  (issue 20, not in the default MODES) resp with -A WITH_STIR: every call signed
#              (secsipid_build_identity_prvkey with a P-256 key made here with openssl, read once
#              per Kamailio process; attestation from the dip); resp+stirfile the same with
#              -A STIR_KEY_PER_CALL (secsipid_add_identity: the key file read for every
#              signature, the configuration before 2026-12-06 13:30); resp+verify: every customer INVITE carries an Identity header (signed here,
#              certificate served at its x5u by a local HTTP server, cached by secsipid) that
#              Kamailio verifies (secsipid_check_identity) before the dip, which then keeps it.
#              Kamailio's CPU per call against resp's is the cost of signing / verifying.
#   static     (calibration, not in the default MODES) the same http_async_client dip to a server
#              that answers every request with warpd's saved answer and does nothing else
#              (examples/static_dip.rs): the floor of any HTTP dip on this machine.
#   jrpc-static (calibration) the same answer over janssonrpcc (JSON-RPC over TCP netstrings)
#              from examples/static_jsonrpc.rs: the floor of that transport.
#   resp-static (calibration) the RESP dip over a unix socket to examples/static_resp.rs, which
#              answers every LCR with warpd's saved RESP answer (one blocking thread per
#              connection, no dip): what any synchronous RESP round trip costs Kamailio here,
#              against resp-unix (warpd).
# For each, SIPp offers RATES calls/s for DURATION seconds each (INVITE, 200, ACK, BYE, no hold);
# a run is clean when no call failed. Prints a table; the best clean rate of each way and the ratio.
# With events (dip+events) the "cdrs" column counts the run's CDRs: one per offered call when no
# event was lost.
#
#   scripts/bench-kamailio.sh                      # RATES="1000 2000 3000 4000 5000" DURATION=8
#   RATES="3000 4000" DURATION=10 scripts/bench-kamailio.sh
#   DIP_TIMEOUT_MS=2000 MODES="lcr dip" scripts/bench-kamailio.sh    # throughput, not the deadline
#   KEEP=1 ...                                     # keep the logs (path printed at the end)
#   KAM_ARGS="-x tlsf" ...                         # extra Kamailio start options, the same for every mode
#   PIN=1 ...                                      # taskset: warpd + PostgreSQL (and the static
#                                                  # servers) on CPU 0, Kamailio + SIPp on CPU 1;
#                                                  # the table's header says which pinning ran
#                                                  # (the affinity read back from /proc)
#   MODES="lcr static dip" ...                     # with the static-answer floor
#   KAM_WRAP="valgrind --tool=callgrind --trace-children=yes --callgrind-out-file=/tmp/cg/%p" \
#     KAM_START_S=20 RATES=40 ...                   # Kamailio's instructions per call (exact, whatever
#                                                  # the machine's load), per mode: sum the files;
#                                                  # with KAM_WRAP SIPp does not retransmit (-nr)
#                                                  # and waits 30 s, and DIP_TIMEOUT_MS is 2000:
#                                                  # Kamailio under valgrind is slow enough to
#                                                  # draw retransmissions and dip time-outs on a
#                                                  # loaded machine, which it would count as the
#                                                  # calls' work (check: failed = 0)
#   KAMAILIO_CFG=old.cfg EVENTS_PATH=/rpc ...      # an older config that posts JSON-RPC events
#
# Needs: Debian 12, root or sudo for packages (scripts/provision-host.sh), python3 (JSON, ports).
# Everything listens on 127.0.0.1, on free ports, in a temporary directory that is removed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
RATES=${RATES:-"1000 2000 3000 4000 5000"}
DURATION=${DURATION:-8}
MODES=${MODES:-"lcr dip dip+events"}
# the production dip time-out; a dip slower than this is a failed call (503 fallback). Under
# KAM_WRAP (callgrind) 2 s: a warpd starved by the load around it must not open ndb_redis's
# breaker and turn a second of calls into fallbacks, which the count would mix in
[ -n "${DIP_TIMEOUT_MS:-}" ] || [ -z "${KAM_WRAP:-}" ] || DIP_TIMEOUT_MS=2000
DIP_TIMEOUT_MS=${DIP_TIMEOUT_MS:-300}

scripts/provision-host.sh packages modules >/dev/null
# PIN=1: the dip's server side (warpd, PostgreSQL, the static servers) on CPU 0, the SIP side
# (Kamailio, the SIPp customer and gateways) on CPU 1 (the issue's pinned run); children inherit
srv_pin=() sip_pin=()
pinning="none (the scheduler places every process)"
if [ -n "${PIN:-}" ] && [ "${PIN}" != 0 ]; then
  command -v taskset >/dev/null || { echo "PIN=1 needs taskset (util-linux)" >&2; exit 1; }
  [ "$(nproc)" -ge 2 ] || { echo "PIN=1 needs 2 CPUs, this machine has $(nproc)" >&2; exit 1; }
  srv_pin=(taskset -c 0) sip_pin=(taskset -c 1)
  pinning="PIN=1: warpd + PostgreSQL on CPU 0, Kamailio + SIPp on CPU 1"
fi
# KAM_WRAP (callgrind): SIPp sends each request once (see the header) and waits up to 30 s
# for an answer (Kamailio's first calls under valgrind, per process, take seconds)
sipp_nr=() recv_timeout_ms=4000
[ -z "${KAM_WRAP:-}" ] || { sipp_nr=(-nr); recv_timeout_ms=30000; }
# perf stat: the SIPp customer's exact CPU time (it exits before its /proc entry can be read).
# Without perf (or where perf_event_paranoid forbids it) the customer runs bare and the SIPp
# column counts the gateways only.
if ! command -v perf >/dev/null; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -qq install -y --no-install-recommends linux-perf >/dev/null || true
fi
# WARPD_BIN: a prebuilt binary (smoke runs of this script); figures come from the release build
if [ -z "${WARPD_BIN:-}" ]; then cargo build --release --locked -q; fi
case " $MODES " in *" static "*) cargo build --release --locked -q --example static_dip ;; esac
case " $MODES " in *" jrpc-static "*) cargo build --release --locked -q --example static_jsonrpc ;; esac
case " $MODES " in *" resp-static "*) cargo build --release --locked -q --example static_resp ;; esac
bin="${WARPD_BIN:-$root/target/release/warpd}"
so="${WARPD_KAM_MODULES:-$root/target/kamailio-modules}/http_async_client.so"

work=$(mktemp -d /tmp/warpd-bench-kam.XXXXXX)
uac_wrap=()
if perf stat -x, -e task-clock -o /dev/null true 2>/dev/null; then uac_wrap=(perf stat -x, -e task-clock -o "$work/uac-cpu"); fi
pids=()
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
as_pg=(); [ "$(id -u)" -eq 0 ] && as_pg=(runuser -u postgres --)
cleanup() {
  for p in "${pids[@]}" ${kpid:-} ${static_pid:-} ${jstatic_pid:-} ${rstatic_pid:-}; do kill "$p" 2>/dev/null || true; done
  "${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
  # KEEP: the logs stay, the processes (PostgreSQL too) do not
  if [ -n "${KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
free_port() { python3 -c '
import socket,sys
while True:
    s=socket.socket(socket.AF_INET, socket.SOCK_STREAM if sys.argv[1]=="tcp" else socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); p=s.getsockname()[1]
    if sys.argv[1]!="udp+tcp": break
    t=socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try: t.bind(("127.0.0.1",p)); break
    except OSError: pass
print(p)' "$1"; }   # udp, tcp, or udp+tcp (free for both)

# --- PostgreSQL + demo network with the gateways on free ports ----------------------------------
pgport=$(free_port tcp)
mkdir -p "$work/pg"; [ "$(id -u)" -eq 0 ] && chown postgres "$work" "$work/pg"
"${as_pg[@]}" "$pgbin/initdb" -D "$work/pg" -U warpd --auth=trust -E UTF8 --locale=C >/dev/null
printf "listen_addresses='127.0.0.1'\nport=%s\nunix_socket_directories='%s'\nfsync=off\n" "$pgport" "$work/pg" >>"$work/pg/postgresql.conf"
"${srv_pin[@]}" "${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/pg" -l "$work/pg/log" -w start >/dev/null
cp -r examples/demo "$work/demo"
for p in 5081 5082 5083 5084 5085 5086 5087; do
  sed -i "s/^port = $p\$/port = $(free_port udp)/" "$work/demo/network.toml"
done
# no call limits for customer 10001 (the demo allows 20 calls/s, 100 at once) and no route
# capacities (100-500 live calls, which a load test of calls answered at once can reach): this is
# a load test
sed -i '/^max_cps = /d; /^max_concurrent_calls = /d; /^capacity = /d' "$work/demo/network.toml"
export WARPD_DATABASE__URL="postgres://warpd@127.0.0.1:$pgport/postgres" WARPD_LOG__LEVEL=warn
wport=$(free_port tcp)
rport=$(free_port tcp)   # warpd's RESP listener (modes resp, resp+events)
export WARPD_SERVER__KAMAILIO_RESP_LISTEN="127.0.0.1:$rport" WARPD_SERVER__KAMAILIO_RESP_REQUIRE_SECRET=false
export WARPD_SERVER__KAMAILIO_RESP_SOCKET="$work/resp.sock"   # mode resp-unix
aport=$(free_port tcp)   # the admin listener (unused by the benchmark, but warpd binds it)
export WARPD_SERVER__KAMAILIO_LISTEN="127.0.0.1:$wport" WARPD_SERVER__ADMIN_LISTEN="127.0.0.1:$aport"
"$bin" --config warpd.example.toml migrate >/dev/null
"$bin" --config warpd.example.toml apply "$work/demo/network.toml" >/dev/null
"${srv_pin[@]}" "$bin" --config warpd.example.toml serve >"$work/warpd.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$wport/readyz" >/dev/null && break; sleep 0.1; done

ANI=+13125550100 DNIS=+12125550100
curl -sf "http://127.0.0.1:$wport/v1/route?src_ip=127.0.0.1&ani=%2B${ANI#+}&dnis=%2B${DNIS#+}" >"$work/dip.json"
# the same gateways, in warpd's order, as db_text tables for the native modules: lcr (one prefix
# rule, targets by priority) and drouting (one prefix rule in group 0 listing them in order;
# its time recurrence column may not be empty in db_text, so: always, from 2000)
mkdir -p "$work/lcrdb" "$work/drdb"
python3 - "$work/dip.json" "$work" "$DNIS" <<'PY'
import json, sys, re
answer, work, dnis = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
uris = [u for r in answer["routes"] for u in r["uris"]]
gws = [re.match(r"sip:[^@]*@([^:;]+):(\d+)", u).groups() for u in uris]
def table(db, name, header, rows):
    open(f"{work}/{db}/{name}", "w").write(header + " \n" + "".join(r + "\n" for r in rows))
table("lcrdb", "version", "table_name(string) table_version(int)", ["lcr_gw:3", "lcr_rule:3", "lcr_rule_target:1"])
table("lcrdb", "lcr_gw", "id(int,auto) lcr_id(int) gw_name(string,null) ip_addr(string,null) hostname(string,null) port(int,null) params(string,null) uri_scheme(int,null) transport(int,null) strip(int,null) prefix(string,null) tag(string,null) flags(int) defunct(int,null)",
      [f"{i+1}:1:gw{i+1}:{ip}::{port}::1:1:0:::0:0" for i, (ip, port) in enumerate(gws)])
table("lcrdb", "lcr_rule", "id(int,auto) lcr_id(int) prefix(string,null) from_uri(string,null) request_uri(string,null) mt_tvalue(string,null) stopper(int) enabled(int)",
      [f"1:1:{dnis[:5]}::::0:1"])
table("lcrdb", "lcr_rule_target", "id(int,auto) lcr_id(int) rule_id(int) gw_id(int) priority(int) weight(int)",
      [f"{i+1}:1:1:{i+1}:{i+1}:1" for i in range(len(gws))])
table("drdb", "version", "table_name(string) table_version(int)", ["dr_gateways:3", "dr_rules:3", "dr_gw_lists:1", "dr_groups:2"])
table("drdb", "dr_gateways", "gwid(int,auto) type(int) address(string) strip(int) pri_prefix(string,null) attrs(string,null) description(string)",
      [f"{i+1}:0:{ip}\\:{port}:0:::gw{i+1}" for i, (ip, port) in enumerate(gws)])
table("drdb", "dr_rules", "ruleid(int,auto) groupid(string) prefix(string) timerec(string) priority(int) routeid(string) gwlist(string) description(string)",
      [f"1:0:{dnis[:5]}:20000101T000000:0:0:{','.join(str(i+1) for i in range(len(gws)))}:bench"])
table("drdb", "dr_gw_lists", "id(int,auto) gwlist(string) description(string)", [])
table("drdb", "dr_groups", "id(int,auto) username(string) domain(string) groupid(int) description(string)", [])
PY
jport=
case " $MODES " in *" jrpc-static "*)
  jport=$(free_port tcp)
  "${srv_pin[@]}" "$root/target/release/examples/static_jsonrpc" "127.0.0.1:$jport" "$work/dip.json" >"$work/static-jsonrpc.log" 2>&1 &
  jstatic_pid=$!
  sleep 0.5 ;;
esac
case " $MODES " in *" resp-static "*)
  # warpd's RESP answer for the call Kamailio makes (LCR src ani dnis call-id), saved raw
  python3 - "$work/resp.sock" "$ANI" "$DNIS" "$work/dip.resp" <<'PY'
import socket, sys
args = [b"LCR", b"127.0.0.1", sys.argv[2].encode(), sys.argv[3].encode(), b"bench-static"]
cmd = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(cmd)
s.settimeout(0.5)
data = b""
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
except socket.timeout:
    pass
if not data.startswith(b"*"):
    sys.exit(f"warpd's RESP answer for the benchmark call is not an array: {data[:200]!r}")
open(sys.argv[4], "wb").write(data)
PY
  "${srv_pin[@]}" "$root/target/release/examples/static_resp" "$work/static-resp.sock" "$work/dip.resp" >"$work/static-resp.log" 2>&1 &
  rstatic_pid=$!
  for _ in $(seq 50); do [ -S "$work/static-resp.sock" ] && break; sleep 0.1; done ;;
esac
sport=
case " $MODES " in *" static "*)
  sport=$(free_port tcp)
  "${srv_pin[@]}" "$root/target/release/examples/static_dip" "127.0.0.1:$sport" "$work/dip.json" >"$work/static.log" 2>&1 &
  static_pid=$!
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$sport/" >/dev/null && break; sleep 0.1; done ;;
esac
gw_ports=$(python3 -c 'import json,sys,re; a=json.load(open(sys.argv[1])); print(" ".join(re.search(r":(\d+);",u).group(1) for r in a["routes"] for u in r["uris"]))' "$work/dip.json")
for p in $gw_ports; do
  "${sip_pin[@]}" sipp -sf tests/sipp/uas.xml -p "$p" -i 127.0.0.1 -nostdin -buff_size 4194304 "${sipp_nr[@]}" >/dev/null 2>&1 &
  pids+=($!)
done

# STIR/SHAKEN (issue 20; modes resp+stir, resp+verify): a key and certificate, the certificate
# served at its x5u, and an Identity header for the customer's calls signed with them
case " $MODES " in *" resp+stir "*|*" resp+stirfile "*|*" resp+verify "*)
  mkdir -p "$work/stir"
  ( cd "$work/stir"
    openssl ecparam -name prime256v1 -genkey -noout -out sp.key 2>/dev/null
    chmod 600 sp.key
    openssl req -x509 -new -key sp.key -subj "/CN=bench SP" -days 2 -out sp.pem 2>/dev/null )
  xport=$(free_port tcp)
  "${srv_pin[@]}" python3 -m http.server "$xport" --bind 127.0.0.1 --directory "$work/stir" >/dev/null 2>&1 &
  pids+=($!)
  x5u="http://127.0.0.1:$xport/sp.pem"
  # a PASSporT for ANI -> DNIS, ES256 (openssl's DER signature as raw r||s); iat now (the
  # verify mode accepts an hour's age: STIR_MAX_AGE_S below)
  identity=$(python3 - "$work/stir/sp.key" "$x5u" "${ANI#+}" "${DNIS#+}" <<'PY'
import base64, json, subprocess, sys, time
key, x5u, orig, dest = sys.argv[1:5]
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
hdr = b64(json.dumps({"alg": "ES256", "ppt": "shaken", "typ": "passport", "x5u": x5u}).encode())
pl = b64(json.dumps({"attest": "A", "dest": {"tn": [dest]}, "iat": int(time.time()),
                     "orig": {"tn": orig}, "origid": "bench"}).encode())
der = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=f"{hdr}.{pl}".encode(),
                     capture_output=True, check=True).stdout
def ints(d):  # SEQUENCE { INTEGER r, INTEGER s }
    i, out = 2 if d[1] < 0x80 else 3, []
    for _ in range(2):
        n = d[i + 1]; out.append(int.from_bytes(d[i + 2:i + 2 + n], "big")); i += 2 + n
    return out
r, s = ints(der)
print(f"{hdr}.{pl}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))};info=<{x5u}>;alg=ES256;ppt=shaken")
PY
)
  sed '0,/^      Max-Forwards: 70$/s//&\n      Identity: [identity]/' tests/sipp/uac.xml >"$work/uac-identity.xml" ;;
esac

start_kamailio() { # mode -> sets kport, kpid
  kport=$(free_port udp+tcp)   # kamailio.cfg listens on UDP and TCP on SIP_PORT
  local dip_port=$wport resp_server="name=warpd;addr=127.0.0.1;port=$rport"
  [ "$1" != resp-unix ] || resp_server="name=warpd;unix=$work/resp.sock"
  [ "$1" != resp-static ] || resp_server="name=warpd;unix=$work/static-resp.sock"
  [ "$1" != static ] || dip_port=$sport
  local defs=(-A "SIP_PORT=$kport" -A "HTTP_ASYNC_SO=\"$so\"" -A "WARPD_URL=\"http://127.0.0.1:$dip_port\""
    -A "WARPD_EVENTS_HTTPCON=\"events=>http://127.0.0.1:$wport${EVENTS_PATH:-/v1/events}\""
    -A "CTL_SOCKET=\"unixs:$work/kamctl\"" -A "RPC_PORT=$(free_port tcp)" -A SIP_CHILDREN=4 -A "DIP_TIMEOUT_MS=$DIP_TIMEOUT_MS"
    -A "HTTP_ASYNC_WORKERS=${HTTP_ASYNC_WORKERS:-2}"
    -A "WARPD_RESP_SERVER=\"$resp_server\"" -A "RESP_CMD_TIMEOUT_MS=$DIP_TIMEOUT_MS"
    # the benchmark's SIPp gateways do not answer OPTIONS, and native lcr does not probe either
    -A WITHOUT_GW_PROBING)
  # every mode but resp*: the HTTP dip only (kamailio.cfg dips over RESP by default)
  case "$1" in resp*) ;; *) defs+=(-A WITHOUT_RESP_DIP) ;; esac
  case "$1" in
    lcr) defs+=(-A BENCH_NATIVE_LCR -A "LCR_DB_URL=\"text://$work/lcrdb\"" -A WITHOUT_EVENTS) ;;
    drouting) defs+=(-A BENCH_NATIVE_DROUTING -A "DR_DB_URL=\"text://$work/drdb\"" -A WITHOUT_EVENTS) ;;
    dip) defs+=(-A WITHOUT_EVENTS) ;;
    static) defs+=(-A WITHOUT_EVENTS) ;;
    jrpc-static) defs+=(-A WITHOUT_EVENTS -A BENCH_JANSSONRPC -A "JRPC_SERVER=\"conn=calibration;addr=127.0.0.1;port=$jport\"") ;;
    dip+events) ;;
    resp) defs+=(-A WITHOUT_EVENTS) ;;
    resp-unix|resp-static) defs+=(-A WITHOUT_EVENTS) ;;
    resp+events) ;;
    resp+stir|resp+stirfile|resp+verify) mkdir -p "$work/stir-cache"
      [ "$1" != resp+stirfile ] || defs+=(-A STIR_KEY_PER_CALL)
      defs+=(-A WITHOUT_EVENTS -A WITH_STIR -A "STIR_KEY_PATH=\"$work/stir/sp.key\"" -A "STIR_X5U=\"$x5u\""
        -A "STIR_CA_FILE=\"CertCAFile=$work/stir/sp.pem\"" -A "STIR_CACHE_DIR=\"$work/stir-cache\""
        -A STIR_MAX_AGE_S=3600) ;;
  esac
  mkdir -p "$work/run"
  # KAM_WRAP: a command Kamailio runs under, e.g. callgrind (see the header)
  "${sip_pin[@]}" ${KAM_WRAP:-} kamailio -f "${KAMAILIO_CFG:-kamailio/kamailio.cfg}" -DD -E -m 1024 -M 32 ${KAM_ARGS:-} -P "$work/run/k.pid" -Y "$work/run" \
    "${defs[@]}" >"$work/kamailio-$1.log" 2>&1 &
  kpid=$!
  sleep "${KAM_START_S:-1.5}"
  kill -0 "$kpid" || { cat "$work/kamailio-$1.log"; exit 1; }
}

run_sipp() { # rate mode -> prints "offered ok failed seconds uac-cpu-ns"
  local rate=$1 n=$(( $1 * DURATION )) stf="$work/stat-$2-$1.csv" t0 t1
  # with KEEP, SIPp's unexpected messages (why a call failed) are kept too
  local err=(); [ -z "${KEEP:-}" ] || err=(-trace_err -error_file "$work/sipp-errors-$2-$1.log")
  t0=$(date +%s.%N)
  local scenario=(-sf tests/sipp/uac.xml)
  [ "$2" != resp+verify ] || scenario=(-sf "$work/uac-identity.xml" -key identity "$identity")
  "${sip_pin[@]}" "${uac_wrap[@]}" sipp "127.0.0.1:$kport" "${scenario[@]}" -key ani "$ANI" -key dnis "$DNIS" -d 0 \
    -r "$rate" -m "$n" -l $(( rate * 4 )) -p "$(free_port udp)" -i 127.0.0.1 -nostdin \
    -buff_size 4194304 -recv_timeout "$recv_timeout_ms" -timeout $(( DURATION * 3 + 10 + recv_timeout_ms / 1000 ))s "${sipp_nr[@]}" \
    -trace_stat -stf "$stf" -fd 60 "${err[@]}" >/dev/null 2>&1 || true
  t1=$(date +%s.%N)
  local uac_ns=0
  [ ${#uac_wrap[@]} -eq 0 ] || uac_ns=$(awk -F, '/task-clock/ {printf "%.0f\n", $1 * 1e6}' "$work/uac-cpu")
  python3 - "$stf" "$rate" "$t0" "$t1" "${uac_ns:-0}" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1]), delimiter=";"))
h, last = rows[0], rows[-1]
ok, failed = int(last[h.index("SuccessfulCall(C)")]), int(last[h.index("FailedCall(C)")])
print(sys.argv[2], ok, failed, f"{float(sys.argv[4]) - float(sys.argv[3]):.2f}", sys.argv[5])
PY
}

# CPU time (nanoseconds) of processes and of the first one's children (Kamailio's processes all
# fork from main, PostgreSQL's backends from the postmaster), every thread, from the scheduler's
# exact run-time (/proc/PID/task/TID/schedstat). Not utime/stime: those are sampled at timer ticks,
# and SIPp's paced sending runs in step with the tick, which charges it and the processes it wakes
# several times their real CPU.
cpu_ns() { local p; for p in "$@" $(pgrep -P "$1" || true); do cat /proc/"$p"/task/*/schedstat 2>/dev/null; done \
  | awk '{s += $1} END {printf "%.0f\n", s}'; }
warpd_pid=${pids[0]}
cdr_count() { "$pgbin/psql" -h 127.0.0.1 -p "$pgport" -U warpd -d postgres -Atc "SELECT count(*) FROM cdrs"; }
cdrs0=$(cdr_count)
pg_pid=$(head -n1 "$work/pg/postmaster.pid")
uas_pids=("${pids[@]:1}")

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
# the CPUs each process may run on, read back from /proc (what PIN did, or did not do)
cpus() { awk '/^Cpus_allowed_list/ {print $2}' "/proc/$1/status" 2>/dev/null || echo "?"; }
echo "pinning: $pinning" | tee "$work/table.head"
echo "affinity (from /proc): warpd $(cpus "$warpd_pid"), PostgreSQL $(cpus "$pg_pid"), SIPp gateways $(cpus "${uas_pids[0]}")" | tee -a "$work/table.head"
kam_cpus=
printf "%-11s %8s %8s %7s %8s %9s %9s %9s %9s %9s %7s\n" mode offered/s ok failed seconds calls/s kam-us/call warpd-us/call pg-us/call sipp-us/call cdrs >"$work/table"
# rate-major, modes interleaved: a load change on the (shared) machine hits every mode alike
for rate in $RATES; do
  for mode in $MODES; do
    start_kamailio "$mode"
    # the dip server's column: warpd, or the static server in the static mode
    server_pid=$warpd_pid
    [ "$mode" != static ] || server_pid=$static_pid
    [ "$mode" != jrpc-static ] || server_pid=$jstatic_pid
    [ "$mode" != resp-static ] || server_pid=$rstatic_pid
    if [ -z "$kam_cpus" ]; then
      kam_cpus=$(cpus "$kpid")
      echo "affinity (from /proc): Kamailio $kam_cpus" | tee -a "$work/table.head"
    fi
    k0=$(cpu_ns "$kpid"); w0=$(cpu_ns "$server_pid"); p0=$(cpu_ns "$pg_pid"); s0=$(cpu_ns "${uas_pids[@]}")
    read -r offered ok failed secs uac < <(run_sipp "$rate" "$mode")
    k1=$(cpu_ns "$kpid"); w1=$(cpu_ns "$server_pid"); p1=$(cpu_ns "$pg_pid"); s1=$(( $(cpu_ns "${uas_pids[@]}") + uac ))
    # with events, every offered call that reached the dip ends as a CDR: count this run's, once
    # the count stops growing (Kamailio still delivering queued events)
    cdrs=-
    if [ "$mode" = dip+events ]; then
      c=$(cdr_count); prev=-1
      for _ in $(seq 50); do [ "$c" = "$prev" ] && break; prev=$c; sleep 0.3; c=$(cdr_count); done
      cdrs=$(( c - cdrs0 )); cdrs0=$c
    fi
    kill "$kpid"; wait "$kpid" 2>/dev/null || true
    [ -z "${KEEP:-}" ] || mv "$work/kamailio-$mode.log" "$work/kamailio-$mode-$rate.log"
    cps=$(python3 -c "print(round($ok / $secs))")
    # CPU per offered call, in microseconds: Kamailio (all processes), warpd, PostgreSQL (all
    # backends) and SIPp (the customer UAC and the gateway UASes)
    per_call() { python3 -c "print(round(($2 - $1) / 1e3 / max($ok + $failed, 1)))"; }
    kus=$(per_call "$k0" "$k1"); wus=$(per_call "$w0" "$w1"); pus=$(per_call "$p0" "$p1"); sus=$(per_call "$s0" "$s1")
    printf "%-11s %8s %8s %7s %8s %9s %9s %9s %9s %9s %7s\n" "$mode" "$offered" "$ok" "$failed" "$secs" "$cps" "$kus" "$wus" "$pus" "$sus" "$cdrs" | tee -a "$work/table"
    echo "$mode $offered $ok $failed $secs $cps" >>"$work/results"
  done
done
echo; cat "$work/table.head" 2>/dev/null; cat "$work/table"; echo
python3 - "$work/results" <<'PY'
import sys
best, clean_offered, failed_offered = {}, {}, {}
for line in open(sys.argv[1]):
    mode, offered, ok, failed, secs, cps = line.split()
    if int(failed) == 0:
        best[mode] = max(best.get(mode, 0), int(cps))
        clean_offered[mode] = max(clean_offered.get(mode, 0), int(offered))
    else:
        failed_offered.setdefault(mode, []).append(int(offered))
for mode, cps in best.items():
    # a mode's knee lies between its highest clean rate and the next failed one; with no failed
    # rate above it, the highest rate offered was not its limit (offer more to find it)
    above = [o for o in failed_offered.get(mode, []) if o > clean_offered[mode]]
    knee = f"knee between {clean_offered[mode]} and {min(above)} offered" if above else \
        "clean at the highest rate offered: its knee is higher"
    print(f"best clean {mode}: {cps} calls/s ({knee})")
if best.get("lcr") and best.get("dip"):
    print(f"ratio dip/lcr: {best['dip'] / best['lcr']:.2f}")
if best.get("drouting") and best.get("dip"):
    print(f"ratio dip/drouting: {best['dip'] / best['drouting']:.2f}")
if best.get("lcr") and best.get("dip+events"):
    print(f"ratio dip+events/lcr: {best['dip+events'] / best['lcr']:.2f}")
PY
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
