#!/usr/bin/env bash
# Provisions a Debian 12 host for the warpd voice stack (PostgreSQL, Kamailio 5.6, RTPEngine, SIPp).
# The same script serves three callers, by step:
#
#   packages   Debian packages: PostgreSQL, Kamailio (+ utils/json/extra modules), RTPEngine, SIPp,
#              and what building http_async_client needs. Adds a deb-src line for bookworm if none.
#   modules    Builds Kamailio's http_async_client module from Debian's source package of the
#              installed Kamailio version (Debian 12 ships no binary of it). Cached: the .so goes to
#              $WARPD_KAM_MODULES (default target/kamailio-modules) and is built once per checkout;
#              as root it is also installed into Kamailio's modules directory.
#   system     A real host with systemd (vagrant/, production): warpd user, binary, configs, units,
#              PostgreSQL role + database, migrate, load the demo network, enable + start everything.
#              Needs root and target/release/warpd (built by the caller).
#
# No step means "packages modules": what scripts/install-deps.sh (CI), scripts/demo.sh (the README
# run command) and the end-to-end tests (tests/e2e/e2e_sip/) need. The system step is what
# vagrant/provision.sh runs inside the VM after those two.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
APT=(apt-get -o DPkg::Lock::Timeout=600 -qq)
modules_dir="${WARPD_KAM_MODULES:-$root/target/kamailio-modules}"

step_packages() {
  local pkgs=(postgresql kamailio kamailio-utils-modules kamailio-json-modules kamailio-extra-modules
    kamailio-tls-modules   # tls.so: kamailio.cfg -A WITH_TLS (gateways with transport=tls)
    kamailio-redis-modules # ndb_redis.so: kamailio.cfg's default dip transport (RESP to warpd)
    kamailio-secsipid-modules # secsipid.so: STIR/SHAKEN signing and verification (WITH_STIR)
    redis-tools            # redis-cli: poking warpd's RESP listener by hand
    rtpengine-daemon rtpengine-utils sip-tester
    gcc make bison flex pkg-config libcurl4-openssl-dev libevent-dev dpkg-dev
    openssl                # the STIR/SHAKEN e2e test makes its test CA with it
    curl python3)   # curl: demo.sh readiness wait; python3: bench-kamailio.sh
  local need=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
  done
  if ! grep -rqs '^Types:.*deb-src\|^deb-src ' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    # Debian's own source package of Kamailio is where http_async_client comes from.
    $SUDO tee /etc/apt/sources.list.d/warpd-deb-src.sources >/dev/null <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    need+=(--update-sources)
  fi
  if [ ${#need[@]} -gt 0 ]; then
    $SUDO "${APT[@]}" update
    local real=()
    for p in "${need[@]}"; do [ "$p" = --update-sources ] || real+=("$p"); done
    if [ ${#real[@]} -gt 0 ]; then
      # policy-rc.d on CI/test hosts keeps these from starting; the system step enables what it needs
      DEBIAN_FRONTEND=noninteractive $SUDO "${APT[@]}" install -y --no-install-recommends "${real[@]}"
    fi
  fi
}

step_modules() {
  build_http_async
  # Installed beside the package's modules (as root, like the packages themselves), so that
  # kamailio/kamailio.cfg loads with its default defines on this host: `kamailio -c -f
  # kamailio/kamailio.cfg` checks the config as shipped (tests/e2e/kamailio_cfg.rs).
  if [ "$(id -u)" -eq 0 ]; then
    local kmod; kmod=$(dirname "$(dpkg -L kamailio | grep '/modules/tm.so$')")
    cmp -s "$modules_dir/http_async_client.so" "$kmod/http_async_client.so" ||
      install -m 0644 "$modules_dir/http_async_client.so" "$kmod/http_async_client.so"
  fi
}

build_http_async() {
  local so="$modules_dir/http_async_client.so"
  local version; version=$(dpkg-query -W -f='${Version}' kamailio)
  if [ -f "$so" ] && [ "$(cat "$modules_dir/VERSION" 2>/dev/null)" = "$version" ]; then
    return 0
  fi
  local src="$modules_dir/src"
  rm -rf "$src"; mkdir -p "$src"
  local sandbox=(); [ "$(id -u)" -ne 0 ] || sandbox=(-o APT::Sandbox::User=root)
  (cd "$src" && apt-get "${sandbox[@]}" source -qq "kamailio=$version" >/dev/null)
  local dir; dir=$(find "$src" -maxdepth 1 -type d -name 'kamailio-*' | head -n1)
  make -s -C "$dir" FLAVOUR=kamailio cfg >/dev/null
  make -s -C "$dir/src/modules/http_async_client" >/dev/null
  cp "$dir/src/modules/http_async_client/http_async_client.so" "$so.tmp"
  mv "$so.tmp" "$so"
  echo "$version" >"$modules_dir/VERSION"
  rm -rf "$src"
  echo "built $so (kamailio $version)"
}

step_system() {
  [ "$(id -u)" -eq 0 ] || { echo "the system step needs root" >&2; exit 1; }
  local bin="$root/target/release/warpd"
  [ -x "$bin" ] || { echo "$bin missing: cargo build --release first" >&2; exit 1; }
  local kmod; kmod=$(dirname "$(dpkg -L kamailio | grep '/modules/tm.so$')")
  id warpd >/dev/null 2>&1 || useradd --system --home-dir /var/lib/warpd --shell /usr/sbin/nologin warpd
  install -m 0755 "$bin" /usr/local/bin/warpd
  install -m 0644 "$modules_dir/http_async_client.so" "$kmod/http_async_client.so"
  install -d -m 0755 /etc/warpd /usr/share/warpd
  cp -r examples/demo /usr/share/warpd/
  [ -f /etc/warpd/warpd.toml ] || install -m 0640 -g warpd warpd.example.toml /etc/warpd/warpd.toml
  # Kamailio: the warpd config as the package's main config (the package default is kept aside)
  [ -f /etc/kamailio/kamailio.cfg.dist ] || cp /etc/kamailio/kamailio.cfg /etc/kamailio/kamailio.cfg.dist
  install -m 0644 kamailio/kamailio.cfg /etc/kamailio/kamailio.cfg
  [ -f /etc/kamailio/kamailio-local.cfg ] || install -m 0644 kamailio/kamailio-local.cfg.sample /etc/kamailio/kamailio-local.cfg
  install -m 0644 rtpengine/rtpengine.conf /etc/rtpengine/rtpengine.conf
  # RTPEngine writes recordings, warpd (group) reads them
  install -d -o rtpengine -g warpd -m 2750 /var/spool/rtpengine
  install -m 0644 systemd/warpd.service /etc/systemd/system/warpd.service
  for unit in kamailio rtpengine-daemon; do
    install -d "/etc/systemd/system/$unit.service.d"
    install -m 0644 "systemd/$unit.service.d/warpd.conf" "/etc/systemd/system/$unit.service.d/warpd.conf"
  done
  systemctl daemon-reload
  systemctl enable --now postgresql
  runuser -u postgres -- psql -tAc "SELECT 1 FROM pg_roles WHERE rolname='warpd'" | grep -q 1 ||
    runuser -u postgres -- psql -qc "CREATE ROLE warpd LOGIN"
  runuser -u postgres -- psql -tAc "SELECT 1 FROM pg_database WHERE datname='warpd'" | grep -q 1 ||
    runuser -u postgres -- psql -qc "CREATE DATABASE warpd OWNER warpd"
  # local socket, peer authentication: no password anywhere
  local url="postgres://warpd@%2Fvar%2Frun%2Fpostgresql/warpd"
  grep -q '^WARPD_DATABASE__URL=' /etc/warpd/warpd.env 2>/dev/null ||
    echo "WARPD_DATABASE__URL=$url" >>/etc/warpd/warpd.env
  # media: Kamailio's rtpengine module -> warpd's ng proxy (127.0.0.1:22223) -> RTPEngine (22222)
  grep -q '^WARPD_MEDIA__NG_LISTEN=' /etc/warpd/warpd.env ||
    cat >>/etc/warpd/warpd.env <<'ENV'
WARPD_MEDIA__NG_LISTEN=127.0.0.1:22223
WARPD_MEDIA__NODES='[{ address = "127.0.0.1:22222", weight = 1 }]'
ENV
  # the two listeners: Kamailio (same host) reaches the Kamailio surface on loopback; the admin
  # surface (admin API, CDRs, metrics) stays on loopback. A Kamailio on another host: set
  # WARPD_SERVER__KAMAILIO_LISTEN to this host's voice-network address and
  # WARPD_SERVER__KAMAILIO_ALLOW to Kamailio's addresses (README "Two listeners").
  grep -q '^WARPD_SERVER__KAMAILIO_LISTEN=' /etc/warpd/warpd.env ||
    cat >>/etc/warpd/warpd.env <<'ENV'
WARPD_SERVER__KAMAILIO_LISTEN=127.0.0.1:8080
WARPD_SERVER__ADMIN_LISTEN=127.0.0.1:8081
ENV
  # the RESP dip (kamailio.cfg's default transport) on warpd's unix socket in its runtime
  # directory, mode 0660: Kamailio joins warpd's group (systemd/kamailio.service.d/warpd.conf),
  # the file permissions are the guard. Without AUTH: ndb_redis 5.6 sends AUTH on a reconnect
  # before it applies its command time-out, so with pass= a frozen warpd would hold Kamailio's
  # SIP workers (README "Dip over RESP"). Call events and the HTTP dip keep the shared secret
  # below. (A host provisioned before the socket became the default keeps its TCP listener and
  # gets the socket as well.)
  grep -q '^WARPD_SERVER__KAMAILIO_RESP_SOCKET=' /etc/warpd/warpd.env ||
    echo "WARPD_SERVER__KAMAILIO_RESP_SOCKET=/run/warpd/resp.sock" >>/etc/warpd/warpd.env
  grep -q '^WARPD_SERVER__KAMAILIO_RESP_REQUIRE_SECRET=' /etc/warpd/warpd.env ||
    echo "WARPD_SERVER__KAMAILIO_RESP_REQUIRE_SECRET=false" >>/etc/warpd/warpd.env
  # a shared secret for the Kamailio surface, also given to Kamailio (kamailio-local.cfg: bearer
  # on dips, HTTP Basic in the events/fallback connection URLs); readable by the two services only
  if ! grep -q '^WARPD_SERVER__KAMAILIO_SECRET=' /etc/warpd/warpd.env; then
    local secret; secret=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
    echo "WARPD_SERVER__KAMAILIO_SECRET=$secret" >>/etc/warpd/warpd.env
    cat >>/etc/kamailio/kamailio-local.cfg <<CFG
# warpd's server.kamailio_secret (written by scripts/provision-host.sh)
#!define WARPD_SECRET "$secret"
#!define WARPD_HTTPCON "warpd=>http://kamailio:$secret@127.0.0.1:8080"
#!define WARPD_EVENTS_HTTPCON "events=>http://kamailio:$secret@127.0.0.1:8080/v1/events"
CFG
    sed -i -e '/^#!define WARPD_HTTPCON "warpd=>http:\/\/127/d' \
      -e '/^#!define WARPD_EVENTS_HTTPCON "events=>http:\/\/127/d' /etc/kamailio/kamailio-local.cfg
    chmod 0640 /etc/kamailio/kamailio-local.cfg; chgrp kamailio /etc/kamailio/kamailio-local.cfg
  fi
  chmod 0640 /etc/warpd/warpd.env; chgrp warpd /etc/warpd/warpd.env
  runuser -u warpd -- env WARPD_DATABASE__URL="$url" /usr/local/bin/warpd --config /etc/warpd/warpd.toml migrate
  runuser -u warpd -- env WARPD_DATABASE__URL="$url" /usr/local/bin/warpd --config /etc/warpd/warpd.toml \
    apply /usr/share/warpd/demo/network.toml
  systemctl enable --now warpd rtpengine-daemon kamailio
  systemctl --no-pager --lines=0 status warpd kamailio rtpengine-daemon || true
}

steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(packages modules)
for s in "${steps[@]}"; do
  case "$s" in
    packages) step_packages ;;
    modules) mkdir -p "$modules_dir"; step_modules ;;
    system) step_system ;;
    *) echo "unknown step '$s' (packages | modules | system)" >&2; exit 2 ;;
  esac
done
