#!/usr/bin/env bash
# Places demo calls through a running stack (Kamailio with kamailio/kamailio.cfg + warpd with the
# demo network): SIPp plays the demo vendors' gateways (127.0.0.1:5081..5087, examples/demo) for
# the duration, and the customer 10001 (source 127.0.0.1) calling the test numbers of
# examples/demo/network.toml; then (issue 19) a vendor (northstar, from its origination source
# 127.0.0.2) calling the demo number +12125557000 of trunk acme-sip, whose PBX SIPp plays on
# 127.0.0.1:5094, and the trunk acme-sip calling out from 127.0.0.3 with SIP digest credentials
# (realm warpd.demo: Kamailio runs with AUTH_REALM="warpd.demo"). Prints what each call got,
# and (issue 20) the STIR/SHAKEN attestation a gateway received or the verstat the PBX got; with
# WARPD_DEMO_STIR_KEY/_X5U set (scripts/demo.sh) the vendor's first inbound call is signed.
# Used by scripts/demo.sh and, on a
# provisioned host (vagrant/), by hand:
#
#     scripts/demo-calls.sh [KAMAILIO_HOST:PORT]        # default 127.0.0.1:5060
set -euo pipefail
cd "$(dirname "$0")/.."
proxy=${1:-127.0.0.1:5060}
work=$(mktemp -d /tmp/warpd-demo-calls.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

for port in 5081 5082 5083 5084 5085 5086 5087 5094; do
  # uas_options.xml: answers Kamailio's OPTIONS probes too (a gateway that does not is skipped)
  sipp -sf tests/sipp/uas_options.xml -p "$port" -i 127.0.0.1 -nostdin -trace_msg \
    -message_file "$work/gw-$port.msg" >/dev/null 2>&1 &
  pids+=($!)
done
sleep 0.5

gateway_of() { # which demo gateway saw Call-ID $1
  local f; for f in "$work"/gw-*.msg; do
    grep -q "^Call-ID: $1" "$f" 2>/dev/null && { basename "$f" .msg | sed 's/gw-/127.0.0.1:/'; return; }
  done; echo "-"
}

# STIR/SHAKEN (issue 20): the attestation of the Identity header a gateway received for Call-ID
# $1 (the PASSporT's payload decoded), and the verstat the PBX got in P-Asserted-Identity
stir_of() {
  local f; for f in "$work"/gw-*.msg; do
    grep -q "^Call-ID: $1" "$f" 2>/dev/null || continue
    python3 - "$f" "$1" <<'PY'
import base64, json, re, sys
text, callid = open(sys.argv[1], errors="replace").read(), sys.argv[2]
for msg in text.split("-----------------------------------------------"):
    if f"Call-ID: {callid}" not in msg:
        continue
    # a call to the customer: the verstat Kamailio added; a call to a vendor: its PASSporT
    m = re.search(r"verstat=([A-Za-z-]+)", msg)
    if m:
        print(m.group(1)); break
    m = re.search(r"^Identity: *([^.\s]+)\.([^.\s]+)\.", msg, re.M)
    if m:
        p = json.loads(base64.urlsafe_b64decode(m.group(2) + "=" * (-len(m.group(2)) % 4)))
        print(f"signed {p['attest']}"); break
PY
    return
  done
}

# a PASSporT for the vendor's inbound call, signed with the demo key (scripts/demo.sh makes it;
# WARPD_DEMO_STIR_KEY/_X5U): ES256 over header.payload, openssl's DER signature as raw r||s
identity_for() { # orig dest
  [ -n "${WARPD_DEMO_STIR_KEY:-}" ] || return 0
  python3 - "$WARPD_DEMO_STIR_KEY" "$WARPD_DEMO_STIR_X5U" "$1" "$2" <<'PY'
import base64, json, subprocess, sys, time, uuid
key, x5u, orig, dest = sys.argv[1:5]
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
hdr = b64(json.dumps({"alg": "ES256", "ppt": "shaken", "typ": "passport", "x5u": x5u}).encode())
pl = b64(json.dumps({"attest": "A", "dest": {"tn": [dest.lstrip("+")]}, "iat": int(time.time()),
                     "orig": {"tn": orig.lstrip("+")}, "origid": str(uuid.uuid4())}).encode())
der = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=f"{hdr}.{pl}".encode(),
                     capture_output=True, check=True).stdout
i, rs = 2 if der[1] < 0x80 else 3, []
for _ in range(2):
    n = der[i + 1]; rs.append(int.from_bytes(der[i + 2:i + 2 + n], "big")); i += 2 + n
print(f"{hdr}.{pl}.{b64(rs[0].to_bytes(32, 'big') + rs[1].to_bytes(32, 'big'))};info=<{x5u}>;alg=ES256;ppt=shaken")
PY
}

n=0; answered=0
call() { # description ani dnis [source address [scenario [sipp arguments...]]]
  n=$((n + 1))
  local msgs="$work/uac-$n.msg" from=${4:-127.0.0.1} scenario=${5:-tests/sipp/uac.xml}
  sipp "$proxy" -sf "$scenario" -key ani "$2" -key dnis "$3" -m 1 -d 1000 \
    -p "$((15070 + n))" -i "$from" -nostdin -timeout 15s -timeout_error -recv_timeout 8000 \
    -trace_msg -message_file "$msgs" "${@:6}" >/dev/null 2>&1 || true
  local final callid
  # the first final reply (a digest challenge, 407, is answered by the scenario)
  final=$(grep -E '^SIP/2.0 [2-6][0-9][0-9]' "$msgs" | grep -v -E ' (100|407) ' | head -n1 | tr -d '\r')
  callid=$(grep -m1 '^Call-ID:' "$msgs" | awk '{print $2}' | tr -d '\r')
  [[ "$final" == "SIP/2.0 200"* ]] && answered=$((answered + 1))
  printf "  %-31s %s -> %s: %-28s gateway %-15s %s\n" "$1" "$2" "$3" "${final#SIP/2.0 }" \
    "$(gateway_of "$callid")" "$(stir_of "$callid")"
}

echo "demo calls through $proxy (customer 10001 from 127.0.0.1):"
call "interstate NY -> IL (override)" +12125550100 +13125550100
call "interstate IL -> NY (cheapest)" +13125550100 +12125550100
call "intrastate CA" +12132290100 +14155550100
call "local NYC" +12122260100 +12125550100
call "toll-free" +12125550100 +18005550100
call "international UK" +12125550100 +442071234567
call "blocked premium 1-900" +12125550100 +19005550100
call "Bahamas (excluded)" +12125550100 +12425550100
echo "issue 19: an inbound call and a digest-authenticated trunk:"
ident=$(identity_for +13105550000 +12125557000)
if [ -n "$ident" ]; then
  # the vendor signs its call (STIR/SHAKEN): Kamailio verifies it, the PBX gets verstat
  sed '0,/^      Max-Forwards: 70$/s//&\n      Identity: [identity]/' tests/sipp/uac.xml >"$work/uac-identity.xml"
  call "inbound, signed by the vendor" +13105550000 +12125557000 127.0.0.2 "$work/uac-identity.xml" \
    -key identity "$ident"
fi
call "inbound to acme-sip's number" +13105550000 +12125557000 127.0.0.2
call "acme-sip with digest credentials" +12125557000 +13125550100 127.0.0.3 \
  tests/sipp/uac_auth.xml -au acme -ap acme-demo-secret
echo "$answered of $n calls answered"
