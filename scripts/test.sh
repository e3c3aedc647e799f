#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what is missing, then runs formatting and
# lint checks, the native unit tests, and the end-to-end tests (real `spin up`, real MLflow,
# real MLflow Python client), then a short reliability soak (bench/soak.py --short). Extra
# arguments go to pytest (e.g. -k oidc) and skip the soak.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

find_spin
ensure_wasm_target
command -v rustfmt >/dev/null 2>&1 || rustup component add rustfmt >&2
cargo clippy --version >/dev/null 2>&1 || rustup component add clippy >&2

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy (native and wasm32-wasip2)"
cargo clippy --locked --all-targets -- -D warnings
cargo clippy --locked --target wasm32-wasip2 --release -- -D warnings
log "unit tests (native), with a bounded fuzzing run (src/fuzz.rs: 256 cases per property)"
cargo test --locked

build_component
ensure_venv
ensure_redis
ensure_ui_tools
ensure_idp_tools
ensure_client_plugin

log "MLflow auth plugin tests (clients/python, real oidc-provider)"
"$VENV/bin/python" -m pytest -ra -p no:cacheprovider clients/python/tests

log "end-to-end tests (spin up + MLflow $MLFLOW_VERSION)"
export GATEWAY_WASM="$WASM"
"$VENV/bin/python" -m pytest -ra -p no:cacheprovider tests/e2e "$@"

# The short reliability soak (docs/reliability.md), only for a full run (no pytest arguments).
if [ $# -eq 0 ]; then
  log "short reliability soak (bench/soak.py --short, ~2 min)"
  "$VENV/bin/python" bench/soak.py --short
fi
