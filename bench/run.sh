#!/usr/bin/env bash
# One command for the side-by-side benchmark (see docs/performance.md):
#   bench/run.sh [--duration SECONDS] [--backends postgres,sqlite]   full run, writes docs/performance.md
#   bench/run.sh --quick                                             ≤ 5 min check before a change lands:
#     the CPU targets of gw-workspace and gw-tag against the forwarder (and the forwarder against
#     itself: the noise), MLflow on SQLite; prints PASS/FAIL, exits 1 on a FAIL, writes nothing.
# Installs what is missing (wasm target, PostgreSQL, wrk and redis-server from Debian, a cached venv with
# MLflow + psycopg2 + Flask-WTF), builds the gateway and the bare forwarder in release mode,
# then runs bench/bench.py, which writes docs/performance.md. Loopback only; every load run is
# bounded in time.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

need_deb() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = "0" ] || die "install ${missing[*]} (Debian packages) first"
  log "installing ${missing[*]} (Debian packages)"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") >&2
}

find_spin
need_deb postgresql wrk redis-server
build_component
log "building the bare forwarder (release)"
(cd "$REPO_ROOT/bench/forwarder" && cargo build --target wasm32-wasip2 --release >&2)
ensure_venv "$REPO_ROOT/bench/requirements.txt"
"$VENV/bin/python" "$REPO_ROOT/bench/bench.py" "$@"
