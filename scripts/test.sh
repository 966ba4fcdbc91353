#!/usr/bin/env bash
# The project's test command (README): installs the real peers, then runs every
# unit, integration, interoperability, corpus-replay and doc test of the workspace.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
eval "$(scripts/peers.sh)"
# XENRAD_POSTGRES=1: the gateway's store tests and tests/postgres_e2e.rs also run on a
# throwaway PostgreSQL cluster (scripts/postgres.sh), stopped and deleted afterwards.
if [ -n "${XENRAD_POSTGRES:-}" ] && [ -z "${XENRAD_PG_URL:-}" ]; then
  eval "$(scripts/postgres.sh start)"
  trap 'scripts/postgres.sh stop' EXIT
fi
cargo test --workspace --all-features --locked "$@"
