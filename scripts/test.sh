#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what is missing, then runs formatting and
# lint checks, the native unit tests, and the end-to-end tests (real `spin up`, real MLflow,
# real MLflow Python client) under Spin 4.x on SQLite in each isolation mode and the
# representative slice under Spin 3.6.3 and on Redis (README, "Spin versions"), then a short
# reliability soak (bench/soak.py --short). Prints each stage's duration at the end.
#
# The two isolation modes and the Spin 3 stage run side by side, each pytest on its own block
# of ports (E2E_PORTS): E2E_ISOLATION=workspace runs every e2e test; E2E_ISOLATION=tag runs every
# test but the mode-independent ones (marker mode_independent, tests/e2e/harness/__init__.py).
# E2E_ISOLATION=<mode> runs the whole suite in that mode only, then the Spin 3 stage.
# Extra arguments go to pytest (e.g. -k oidc; a -m of yours replaces mode_independent's in the
# second mode) and skip the slice stage and the soak; to run a stage alone:
# SPIN_BIN=<spin> E2E_KV=redis pytest -m spin_slice tests/e2e.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

# ---------------------------------------------------------------- stage timings
# Every stage appends "<seconds><TAB><name>" to $TIMINGS (background stages too); the table is
# printed on exit, failed or not.
WORK="$(mktemp -d "${TMPDIR:-/tmp}/mlflow-gateway-test.XXXXXX")"
TIMINGS="$WORK/timings.tsv"
: >"$TIMINGS"
STAGE=""
STAGE_T0=0
LANES=()  # pids of the background lanes
record() { printf '%s\t%s\n' "$2" "$1" >>"$TIMINGS"; }
stage_end() {
  if [ -n "$STAGE" ]; then record "$STAGE" $((SECONDS - STAGE_T0)); fi
  STAGE=""
}
stage() {
  stage_end
  STAGE="$1"
  STAGE_T0=$SECONDS
  log "$1"
}
report() {
  local rc=$?
  if [ -n "$STAGE" ] && [ "$rc" -ne 0 ]; then STAGE="$STAGE (FAILED)"; fi
  stage_end
  if [ "${#LANES[@]}" -gt 0 ]; then  # interrupted or failed while background lanes run
    kill -TERM "${LANES[@]}" 2>/dev/null || true
    wait "${LANES[@]}" 2>/dev/null || true
  fi
  {
    printf '\n==> stage timings (wall clock; the e2e lanes run at the same time)\n'
    while IFS=$'\t' read -r secs name; do
      printf '  %-52s %6ss %6s min\n' "$name" "$secs" "$(awk -v s="$secs" 'BEGIN { printf "%.1f", s / 60 }')"
    done <"$TIMINGS"
    printf '  %-52s %6ss %6s min\n' "total" "$SECONDS" "$(awk -v s="$SECONDS" 'BEGIN { printf "%.1f", s / 60 }')"
  } >&2
  rm -rf "$WORK"
  exit "$rc"
}
trap report EXIT

# ---------------------------------------------------------------- Rust

stage "setup: Spin, Rust tools"
find_spin
find_spin3
ensure_wasm_target
command -v rustfmt >/dev/null 2>&1 || rustup component add rustfmt >&2
cargo clippy --version >/dev/null 2>&1 || rustup component add clippy >&2

stage "cargo fmt --check"
cargo fmt --all -- --check
stage "cargo clippy (native, wasm32-wasip2)"
cargo clippy --locked --all-targets -- -D warnings
cargo clippy --locked --target wasm32-wasip2 --release -- -D warnings
# with a bounded fuzzing run (src/fuzz.rs: 256 cases per property)
stage "unit tests (cargo test)"
cargo test --locked

stage "build (release, wasm32-wasip2)"
build_component

# ---------------------------------------------------------------- Python

stage "setup: venv, Redis, Chromium, npm tools, plugin"
ensure_venv
ensure_redis
ensure_ui_tools
ensure_idp_tools
ensure_client_plugin

# the MLflow auth plugin against the real oidc-provider
stage "client plugin tests (clients/python)"
"$VENV/bin/python" -m pytest -ra -p no:cacheprovider clients/python/tests
stage_end

export GATEWAY_WASM="$WASM"
FULL=1
if [ $# -gt 0 ]; then FULL=""; fi
# Redis killed and restarted costs ~2 min of waiting for Spin's Redis client to reconnect: it
# runs once, in the Spin 3 stage when that runs (the client is redis-rs 0.32.5 in both Spin
# 3.6.3 and 4.0.2), else in each mode.
ONCE=(--deselect tests/e2e/test_kv_redis.py::test_redis_killed_mid_run_fails_closed_then_recovers)
if [ -z "$FULL" ] || [ -z "$SPIN3_BIN" ]; then ONCE=(); fi

# One pytest run: e2e <label> <env assignments...> -- <pytest arguments...>. In a background
# lane (LANE=background) pytest runs as a job of the lane's shell, so that the lane's SIGTERM
# trap can pass the signal on at once; pytest then tears down what it started
# (tests/e2e/conftest.py).
LANE=main
e2e() {
  local label="$1" t0=$SECONDS rc=0
  shift
  local vars=()
  while [ "$1" != "--" ]; do vars+=("$1"); shift; done
  shift
  if [ "$LANE" = background ]; then
    env "${vars[@]}" "$VENV/bin/python" -m pytest -ra -p no:cacheprovider "$@" &
    wait $! || rc=$?
  else
    env "${vars[@]}" "$VENV/bin/python" -m pytest -ra -p no:cacheprovider "$@" || rc=$?
  fi
  record "$label" $((SECONDS - t0))
  return "$rc"
}

# lane <log file> <command...>: runs the command in the background, its output to the file.
lane() {
  local out="$1"
  shift
  (
    LANE=background
    trap 'kill -TERM $(jobs -p) 2>/dev/null; wait; exit 143' TERM
    "$@"
  ) >"$out" 2>&1 &
  LANES+=($!)
}

# The representative slice (tests/e2e/harness/selection.py SPIN_SLICE, marker spin_slice) again
# under Spin 3.6.3 (containerd-shim-spin v0.24's runtime) with every gateway on Redis, in the
# default isolation mode (workspace), as the SpinKube manifests deploy it.
SPIN3=""
if [ -n "$FULL" ] && [ -n "$SPIN3_BIN" ]; then SPIN3="$("$SPIN3_BIN" --version | head -n1)"; fi
spin3_stage() {
  log "Spin 3 stage: the slice under $SPIN3, key-value store on Redis"
  e2e "Spin 3.6.3: the slice, on Redis$1" SPIN_BIN="$SPIN3_BIN" E2E_KV=redis E2E_ISOLATION=workspace \
    "${@:2}" -- -m spin_slice tests/e2e
}

# The suite in each isolation mode (docs/isolation.md): the harness starts MLflow with
# --enable-workspaces and the gateway with tenant_isolation=workspace, or neither.
read -r -a MODES <<<"${E2E_ISOLATION:-workspace tag}"
if [ "${#MODES[@]}" -eq 1 ]; then
  log "end-to-end tests (spin up + MLflow $MLFLOW_VERSION), tenant_isolation=${MODES[0]}"
  e2e "e2e, ${MODES[0]}" E2E_ISOLATION="${MODES[0]}" -- tests/e2e "${ONCE[@]}" "$@"
  if [ -n "$SPIN3" ]; then spin3_stage ""; fi
else
  [ "${MODES[*]}" = "workspace tag" ] || die "E2E_ISOLATION must be workspace, tag or unset"
  # Three lanes at once, each pytest on its own block of ports (E2E_PORTS) and with its own
  # artifacts folder (E2E_ARTIFACTS): workspace mode, every test, in the foreground; tag mode
  # without the mode-independent tests, and the Spin 3 stage, in the background, their output
  # shown when they end. The first lane failing, or an interrupt, stops the others.
  T_LANES=$SECONDS
  LOGS=("$WORK/lane-tag.log")
  lane "${LOGS[0]}" e2e "e2e, tag, not mode_independent (lane 2)" \
    E2E_ISOLATION=tag E2E_PORTS=24000-27999 E2E_ARTIFACTS="$REPO_ROOT/tests/e2e/.artifacts/tag" -- \
    -m "not mode_independent" tests/e2e "${ONCE[@]}" "$@"
  if [ -n "$SPIN3" ]; then
    LOGS+=("$WORK/lane-spin3.log")
    lane "${LOGS[1]}" spin3_stage " (lane 3)" \
      E2E_PORTS=28000-31999 E2E_ARTIFACTS="$REPO_ROOT/tests/e2e/.artifacts/spin3"
  fi
  log "tenant_isolation=tag${SPIN3:+ and the Spin 3 stage} run alongside (output follows when they end)"
  log "end-to-end tests (spin up + MLflow $MLFLOW_VERSION), tenant_isolation=workspace"
  rc=0
  e2e "e2e, workspace, every test (lane 1)" E2E_ISOLATION=workspace E2E_PORTS=20000-23999 -- \
    tests/e2e "${ONCE[@]}" "$@" || rc=$?
  if [ "$rc" -ne 0 ]; then kill -TERM "${LANES[@]}" 2>/dev/null || true; fi
  failed=()
  if [ "$rc" -ne 0 ]; then failed+=("lane 1 (workspace): exit $rc"); fi
  for i in "${!LANES[@]}"; do
    rc=0
    wait "${LANES[$i]}" || rc=$?
    log "output of lane $((i + 2)):"
    cat "${LOGS[$i]}" >&2
    if [ "$rc" -ne 0 ]; then failed+=("lane $((i + 2)): exit $rc"); fi
  done
  LANES=()
  record "e2e, all lanes" $((SECONDS - T_LANES))
  [ "${#failed[@]}" -eq 0 ] || die "end-to-end tests failed: ${failed[*]}"
fi

# Only for a full run (no pytest arguments): the soak, alone (it measures latencies).
if [ -n "$FULL" ]; then
  stage "soak (bench/soak.py --short)"
  E2E_ISOLATION=workspace "$VENV/bin/python" bench/soak.py --short
  stage_end

  if [ -n "$SPIN3_SKIPPED" ]; then
    log "SKIPPED: the Spin $SPIN3_VERSION stage did not run: $SPIN3_SKIPPED"
  fi
fi
