#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the gateway's PostgreSQL backend tests and the fleet:
#   scripts/postgres.sh start    initdb (once) and start; prints `export XENRAD_PG_URL=postgres://…`
#   scripts/postgres.sh stop     stop the server and delete its directory
#   scripts/postgres.sh halt     stop the server, keep its data (`start` brings it back)
#   scripts/postgres.sh status   running or not (exit 1 when not)
# The cluster lives in $XENRAD_PG_DIR (default /tmp/xenrad-pg), listens on 127.0.0.1 only, on
# $XENRAD_PG_PORT (default 55432) with its own socket directory, so it never touches a system
# cluster. initdb refuses to run as root: as root the cluster belongs to the `postgres` user the
# Debian package creates (install it with `XENRAD_POSTGRES=1 scripts/peers.sh`). Authentication is
# `trust` on loopback: a test cluster, never a deployment. Durability is PostgreSQL's default
# (fsync on, synchronous_commit on): the gateway acknowledges only after its commit returns.
set -euo pipefail
dir="${XENRAD_PG_DIR:-/tmp/xenrad-pg}"
port="${XENRAD_PG_PORT:-55432}"
bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
[ -x "$bin/initdb" ] || { echo "postgres.sh: PostgreSQL is not installed (XENRAD_POSTGRES=1 scripts/peers.sh)" >&2; exit 1; }
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
url="postgres://xenrad@127.0.0.1:$port/postgres"
running() { [ -f "$dir/data/postmaster.pid" ] && as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; }

case "${1:-}" in
start)
  if ! running; then
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      rm -rf "$dir"
      mkdir -p "$dir/sock"
      [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$dir"
      as_owner "$bin/initdb" -D "$dir/data" -U xenrad -A trust -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir/sock -c max_connections=200 -c synchronous_commit=on -c fsync=on" \
      start >/dev/null || { tail -20 "$dir/server.log" >&2; exit 1; }
  fi
  echo "export XENRAD_PG_URL=$url"
  ;;
stop)
  if running; then as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null; fi
  rm -rf "$dir"
  ;;
halt)
  if running; then as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null; fi
  ;;
status)
  if running; then echo "running: $url"; else echo "stopped"; exit 1; fi
  ;;
*)
  echo "usage: $0 start|stop|halt|status" >&2; exit 2
  ;;
esac
