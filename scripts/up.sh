#!/usr/bin/env bash
# Runs the gateway in front of a real MLflow on this machine:
#   MLflow 3.17.2 on 127.0.0.1:5000 (SQLite, proxied artifacts) and `spin up` on 127.0.0.1:3000.
# Default mode is auth_mode=off (identity from X-Tenant/X-Subject headers) so demo/run_demo.sh
# works. Any SPIN_VARIABLE_* already in the environment wins, e.g. for OIDC:
#   SPIN_VARIABLE_AUTH_MODE=oidc SPIN_VARIABLE_OIDC_ISSUER=https://idp.example.com/realms/x \
#   SPIN_VARIABLE_OIDC_AUDIENCE=mlflow SPIN_VARIABLE_IDP_ORIGIN=https://idp.example.com scripts/up.sh
# Ctrl-C stops everything it started.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MLFLOW_PORT="${MLFLOW_PORT:-5000}"
GATEWAY_LISTEN="${GATEWAY_LISTEN:-127.0.0.1:3000}"
DATA_DIR="${DATA_DIR:-$REPO_ROOT/.spin/up-data}"

find_spin
build_component
ensure_venv
mkdir -p "$DATA_DIR/artifacts"

export SPIN_VARIABLE_AUTH_MODE="${SPIN_VARIABLE_AUTH_MODE:-off}"
export SPIN_VARIABLE_UPSTREAM_ORIGIN="${SPIN_VARIABLE_UPSTREAM_ORIGIN:-http://127.0.0.1:$MLFLOW_PORT}"
export SPIN_VARIABLE_TARGET_BASE_URL="${SPIN_VARIABLE_TARGET_BASE_URL:-http://127.0.0.1:$MLFLOW_PORT}"

cat > "$DATA_DIR/runtime-config.toml" <<TOML
[key_value_store.default]
type = "spin"
path = "$DATA_DIR/gateway-kv.db"
TOML

pids=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  log "stopped"
}
trap cleanup INT TERM EXIT

# Workspace mode needs MLflow's workspaces; tag mode runs MLflow without them (docs/isolation.md:
# with workspaces on, every artifact URI is rooted at workspaces/default/, which tag mode
# refuses as a model version source).
WORKSPACE_FLAGS=(--enable-workspaces)
[ "${SPIN_VARIABLE_TENANT_ISOLATION:-workspace}" = "tag" ] && WORKSPACE_FLAGS=()
log "starting MLflow $MLFLOW_VERSION on 127.0.0.1:$MLFLOW_PORT (data in $DATA_DIR${WORKSPACE_FLAGS[*]:+, workspaces on})"
"$VENV/bin/mlflow" server --host 127.0.0.1 --port "$MLFLOW_PORT" \
  --backend-store-uri "sqlite:///$DATA_DIR/mlflow.db" \
  --artifacts-destination "$DATA_DIR/artifacts" --workers 2 ${WORKSPACE_FLAGS[@]+"${WORKSPACE_FLAGS[@]}"} &
pids+=($!)
for _ in $(seq 1 120); do
  curl -sf "http://127.0.0.1:$MLFLOW_PORT/health" >/dev/null 2>&1 && break
  kill -0 "${pids[0]}" 2>/dev/null || die "MLflow exited during start-up"
  sleep 0.5
done
curl -sf "http://127.0.0.1:$MLFLOW_PORT/health" >/dev/null || die "MLflow did not become healthy"

log "starting the gateway on http://$GATEWAY_LISTEN (auth_mode=$SPIN_VARIABLE_AUTH_MODE, tenant_isolation=${SPIN_VARIABLE_TENANT_ISOLATION:-workspace})"
(cd "$REPO_ROOT" && exec "$SPIN_BIN" up --listen "$GATEWAY_LISTEN" \
  --runtime-config-file "$DATA_DIR/runtime-config.toml") &
pids+=($!)
log "gateway: http://$GATEWAY_LISTEN   (try: demo/run_demo.sh; Ctrl-C to stop)"
wait -n "${pids[@]}" || true
