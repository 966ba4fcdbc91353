#!/usr/bin/env bash
# A fleet of stateless gateways on one PostgreSQL behind HAProxy, in one command:
#   scripts/fleet.sh up [--nodes N]   PostgreSQL (scripts/postgres.sh), N gateways (default 3) on
#                                     their own ports, HAProxy in front with the five public ports
#   scripts/fleet.sh status           what runs (exit 1 when something is down)
#   scripts/fleet.sh down             stops everything `up` started and deletes its directory
# Public ports (HAProxy): FHIR, HL7 and MPPS in HTTP mode with a health check on each node's
# /readyz, MLLP and DICOM in TCP mode (connect check). Defaults are the gateway's own ports
# (8080 8081 8082 3000 11112); XENRAD_FLEET_PORTS="F H M L D" moves them. Node i listens on
# XENRAD_FLEET_NODE_BASE + 10*i + (0..4) (default base 18000). Each node keeps its own data dir
# (DICOM files and journal) under $XENRAD_FLEET_DIR/node-i (default /tmp/xenrad-fleet); the
# database is shared. The gateway binary is $XENRAD_GATEWAY_BIN, else target/debug/xenrad-gateway
# built here with `--features postgres`. The API key is $XENRAD_API_KEY, else one generated into
# $XENRAD_FLEET_DIR/api-key. Needs `XENRAD_FLEET=1 scripts/peers.sh` (postgresql, haproxy).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${XENRAD_FLEET_DIR:-/tmp/xenrad-fleet}"
read -r P_FHIR P_HL7 P_MPPS P_MLLP P_DICOM <<<"${XENRAD_FLEET_PORTS:-8080 8081 8082 3000 11112}"
node_base="${XENRAD_FLEET_NODE_BASE:-18000}"
export XENRAD_PG_DIR="$dir/pg" XENRAD_PG_PORT="${XENRAD_FLEET_PG_PORT:-55433}"

wait_port() { # host port seconds
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "fleet: nothing listens on $1:$2" >&2
  return 1
}
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

up() {
  local nodes=3
  while (($#)); do
    case "$1" in
      --nodes) nodes="$2"; shift 2 ;;
      *) echo "fleet: unknown option $1" >&2; exit 2 ;;
    esac
  done
  command -v haproxy >/dev/null || { echo "fleet: haproxy missing (XENRAD_FLEET=1 scripts/peers.sh)" >&2; exit 1; }
  mkdir -p "$dir"
  local bin="${XENRAD_GATEWAY_BIN:-}"
  if [ -z "$bin" ]; then
    (cd "$root" && cargo build -q -p xenrad-gateway --features postgres)
    bin="$root/target/debug/xenrad-gateway"
  fi
  local key="${XENRAD_API_KEY:-}"
  if [ -z "$key" ]; then
    [ -s "$dir/api-key" ] || od -An -tx1 -N24 /dev/urandom | tr -d ' \n' >"$dir/api-key"
    key="$(cat "$dir/api-key")"
  fi
  local url
  url="$("$root/scripts/postgres.sh" start)"; url="${url#export XENRAD_PG_URL=}"
  echo "$url" >"$dir/database-url"
  local i b fhir="" hl7="" mpps="" mllp="" dicom=""
  for ((i = 1; i <= nodes; i++)); do
    b=$((node_base + 10 * i))
    if ! alive "$dir/node-$i.pid"; then
      mkdir -p "$dir/node-$i"
      XENRAD_API_KEY="$key" nohup "$bin" --database "$url" --data-dir "$dir/node-$i" \
        --fhir-addr "127.0.0.1:$b" --hl7-addr "127.0.0.1:$((b + 1))" --mpps-addr "127.0.0.1:$((b + 2))" \
        --mllp-addr "127.0.0.1:$((b + 3))" --dicom-addr "127.0.0.1:$((b + 4))" \
        --dicomweb-url "http://127.0.0.1:$P_FHIR/dicomweb" \
        >"$dir/node-$i.log" 2>&1 &
      echo $! >"$dir/node-$i.pid"
    fi
    fhir+="    server n$i 127.0.0.1:$b check inter 1s fall 2 rise 1"$'\n'
    hl7+="    server n$i 127.0.0.1:$((b + 1)) check inter 1s fall 2 rise 1"$'\n'
    mpps+="    server n$i 127.0.0.1:$((b + 2)) check inter 1s fall 2 rise 1"$'\n'
    mllp+="    server n$i 127.0.0.1:$((b + 3)) check inter 1s fall 2 rise 1"$'\n'
    dicom+="    server n$i 127.0.0.1:$((b + 4)) check inter 1s fall 2 rise 1"$'\n'
  done
  for ((i = 1; i <= nodes; i++)); do
    b=$((node_base + 10 * i))
    wait_port 127.0.0.1 "$b" 60 || { tail -20 "$dir/node-$i.log" >&2; exit 1; }
    wait_port 127.0.0.1 "$((b + 4))" 60
  done
  cat >"$dir/haproxy.cfg" <<CFG
global
    pidfile $dir/haproxy.pid
    stats socket $dir/haproxy.sock mode 600 level admin
    maxconn 4096
defaults
    timeout connect 5s
    timeout client 310s
    timeout server 310s
    timeout check 2s
    retries 2
    option redispatch
frontend fhir
    mode http
    bind 127.0.0.1:$P_FHIR
    default_backend fhir
backend fhir
    mode http
    option httpchk GET /readyz
$fhir
frontend hl7
    mode http
    bind 127.0.0.1:$P_HL7
    default_backend hl7
backend hl7
    mode http
    option httpchk GET /readyz
$hl7
frontend mpps
    mode http
    bind 127.0.0.1:$P_MPPS
    default_backend mpps
backend mpps
    mode http
    option httpchk GET /readyz
$mpps
frontend mllp
    mode tcp
    bind 127.0.0.1:$P_MLLP
    default_backend mllp
backend mllp
    mode tcp
    balance roundrobin
$mllp
frontend dicom
    mode tcp
    bind 127.0.0.1:$P_DICOM
    default_backend dicom
backend dicom
    mode tcp
    balance roundrobin
$dicom
CFG
  if alive "$dir/haproxy.pid"; then
    kill "$(cat "$dir/haproxy.pid")"; sleep 0.2
  fi
  haproxy -f "$dir/haproxy.cfg" -D -p "$dir/haproxy.pid" >"$dir/haproxy.log" 2>&1 || { cat "$dir/haproxy.log" >&2; exit 1; }
  for p in "$P_FHIR" "$P_HL7" "$P_MPPS" "$P_MLLP" "$P_DICOM"; do wait_port 127.0.0.1 "$p" 20; done
  echo "fleet: $nodes node(s) on $url behind HAProxy: FHIR http://127.0.0.1:$P_FHIR/fhir  HL7 http://127.0.0.1:$P_HL7  MPPS http://127.0.0.1:$P_MPPS  MLLP 127.0.0.1:$P_MLLP  DICOM 127.0.0.1:$P_DICOM  (X-API-Key: $( [ -n "${XENRAD_API_KEY:-}" ] && echo "\$XENRAD_API_KEY" || echo "in $dir/api-key"))"
}

down() {
  if alive "$dir/haproxy.pid"; then kill "$(cat "$dir/haproxy.pid")"; fi
  local f pid
  for f in "$dir"/node-*.pid; do
    [ -e "$f" ] || continue
    if alive "$f"; then
      pid="$(cat "$f")"; kill -TERM "$pid"
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  "$root/scripts/postgres.sh" stop
  rm -rf "$dir"
}

status() {
  local ok=0 f
  "$root/scripts/postgres.sh" status || ok=1
  for f in "$dir"/node-*.pid; do
    [ -e "$f" ] || continue
    if alive "$f"; then echo "$(basename "$f" .pid): running (pid $(cat "$f"))"; else echo "$(basename "$f" .pid): stopped"; ok=1; fi
  done
  if alive "$dir/haproxy.pid"; then echo "haproxy: running"; else echo "haproxy: stopped"; ok=1; fi
  return $ok
}

cmd="${1:-}"; shift || true
case "$cmd" in
  up) up "$@" ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up [--nodes N] | status | down" >&2; exit 2 ;;
esac
