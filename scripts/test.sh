#!/usr/bin/env bash
# The project's test command (README): installs the real peers, then runs every
# unit, integration, interoperability, corpus-replay and doc test of the workspace.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
eval "$(scripts/peers.sh)"
cargo test --workspace --all-features --locked "$@"
