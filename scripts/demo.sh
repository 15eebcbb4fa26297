#!/usr/bin/env bash
# Sets up and runs warpd with the demo network on this machine (Debian 12):
#  - installs build and database dependencies from Debian packages,
#  - builds warpd (release) from crates.io dependencies,
#  - starts a private PostgreSQL cluster in ./.demo (port 55432, 127.0.0.1 only; never touches
#    a system cluster; WARPD_DEMO_PG_PORT picks another port),
#  - migrates, applies examples/demo/network.toml, and serves dips on 127.0.0.1:8080.
# Stop with Ctrl-C (the PostgreSQL cluster is stopped too). Re-running reuses the cluster.
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
trap '"${as_pg[@]}" "$pgbin/pg_ctl" -D "$pgdata" -m fast stop >/dev/null 2>&1 || true' EXIT
"${as_pg[@]}" "$pgbin/psql" -h 127.0.0.1 -p "$port" -U warpd -d postgres -tAc \
  "SELECT 1 FROM pg_database WHERE datname='warpd'" | grep -q 1 ||
  "${as_pg[@]}" "$pgbin/psql" -h 127.0.0.1 -p "$port" -U warpd -d postgres -qc "CREATE DATABASE warpd"

export WARPD_CONFIG="$root/warpd.example.toml"
export WARPD_DATABASE__URL="postgres://warpd@127.0.0.1:$port/warpd"
export WARPD_LOG__FORMAT=text
export WARPD_CDR__SPOOL_DIR="$state/spool"
"$bin" migrate
"$bin" apply examples/demo/network.toml
cat <<MSG

warpd is starting on http://127.0.0.1:8080 with the demo network. Try:
  curl -s 'http://127.0.0.1:8080/v1/route?ban=10001&ani=%2B13125551000&dnis=%2B12125551234'
  curl -s -H 'content-type: application/json' -d '{"jsonrpc":"2.0","id":1,"method":"lcr.route","params":{"ban":"10001","ani":"+13125551000","dnis":"+12125551234"}}' http://127.0.0.1:8080/rpc
  $bin --config $WARPD_CONFIG route --ban 10001 --ani +13125551000 --dnis +12125551234
MSG
"$bin" serve
