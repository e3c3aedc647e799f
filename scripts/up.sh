#!/usr/bin/env bash
# The quick start: runs, on this machine, everything the gateway needs, bound to 127.0.0.1:
#   * MLflow 3.17.2 on MLFLOW_PORT (default 5000; SQLite and proxied artifacts in DATA_DIR,
#     workspaces on unless SPIN_VARIABLE_TENANT_ISOLATION=tag),
#   * a local OpenID provider on IDP_PORT (default 5556): the `oidc-provider` npm package the
#     tests use (tests/idp/oidc_provider.mjs) with demo people and machine clients,
#   * the gateway under `spin up` on GATEWAY_LISTEN (default 127.0.0.1:3000) in OIDC mode, with
#     browser sign-in at that IdP.
# It writes the MLflow client's settings for team-a and team-b into DATA_DIR/quickstart.env and
# DATA_DIR/quickstart-team-b.env and prints how to use them. Ctrl-C stops everything it started.
#
# Usage: scripts/up.sh [--dev]
#   --dev   header dev mode instead (auth_mode=off: X-Tenant/X-Subject/X-Roles headers, no IdP);
#           the same as SPIN_VARIABLE_AUTH_MODE=off scripts/up.sh
# Environment: MLFLOW_PORT, GATEWAY_LISTEN (host:port), IDP_PORT, DATA_DIR (default
# .spin/up-data; demo secrets, MLflow's data and the logs live there), UP_WAIT_SECONDS (default
# 600: how long each server may take to come up). Any SPIN_VARIABLE_* in the environment wins;
# with SPIN_VARIABLE_OIDC_ISSUER set (your own IdP) no local IdP is started.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() { sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
DEV=0
for arg in "$@"; do
  case "$arg" in
    --dev) DEV=1 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$arg' (usage: scripts/up.sh [--dev])" ;;
  esac
done

check_spin_variables
MLFLOW_PORT="${MLFLOW_PORT:-5000}"
GATEWAY_LISTEN="${GATEWAY_LISTEN:-127.0.0.1:3000}"
IDP_PORT="${IDP_PORT:-5556}"
DATA_DIR="${DATA_DIR:-$REPO_ROOT/.spin/up-data}"
UP_WAIT_SECONDS="${UP_WAIT_SECONDS:-600}"

GATEWAY_HOST="${GATEWAY_LISTEN%:*}"
GATEWAY_PORT="${GATEWAY_LISTEN##*:}"
for v in MLFLOW_PORT GATEWAY_PORT IDP_PORT UP_WAIT_SECONDS; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v=${!v} is not a number${v/GATEWAY_PORT/ (from GATEWAY_LISTEN=$GATEWAY_LISTEN, host:port)}"
done
[ "$GATEWAY_HOST" != "$GATEWAY_LISTEN" ] && [ -n "$GATEWAY_HOST" ] \
  || die "GATEWAY_LISTEN=$GATEWAY_LISTEN must be host:port, e.g. 127.0.0.1:3000"
# The URL people open (the browser sign-in's redirect URL is built from it).
case "$GATEWAY_HOST" in 0.0.0.0|'*') GATEWAY_URL="http://127.0.0.1:$GATEWAY_PORT" ;; *) GATEWAY_URL="http://$GATEWAY_HOST:$GATEWAY_PORT" ;; esac

# Which identity: header dev mode, your IdP, or (default) the local IdP started here.
if [ "$DEV" = 1 ]; then
  [ "${SPIN_VARIABLE_AUTH_MODE:-off}" = "off" ] || die "--dev contradicts SPIN_VARIABLE_AUTH_MODE=$SPIN_VARIABLE_AUTH_MODE"
  export SPIN_VARIABLE_AUTH_MODE=off
fi
export SPIN_VARIABLE_AUTH_MODE="${SPIN_VARIABLE_AUTH_MODE:-oidc}"
if [ "$SPIN_VARIABLE_AUTH_MODE" = "off" ]; then
  IDENTITY=dev
elif [ -n "${SPIN_VARIABLE_OIDC_ISSUER:-}" ]; then
  IDENTITY=own-idp
else
  IDENTITY=local-idp
fi

# ---- fail fast: one scripts/up.sh per DATA_DIR, and every port free before anything starts
mkdir -p "$DATA_DIR"
DATA_DIR="$(cd "$DATA_DIR" && pwd)"
exec 9>"$DATA_DIR/.up.lock"
flock -n 9 || die "another scripts/up.sh is running with DATA_DIR=$DATA_DIR: stop it (Ctrl-C in its terminal), or give this one its own DATA_DIR=..."

# port_in_use HOST PORT: whether something listens there (a bind test, as the server would try).
port_in_use() {
  python3 - "$1" "$2" <<'PY'
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind((host, port))
except OSError:
    sys.exit(0)
sys.exit(1)
PY
}
# need_port VARIABLE HOST PORT: dies with a clear message if the port is taken.
need_port() {
  local var="$1" host="$2" port="$3" who=""
  port_in_use "$host" "$port" || return 0
  if command -v ss >/dev/null 2>&1; then
    who="$(ss -Hltnp "sport = :$port" 2>/dev/null | sed -n 's/.*users:((\("[^"]*"\).*/\1/p' | head -n1)"
  fi
  local moved=$((port + 10))
  [ "$var" != GATEWAY_LISTEN ] || moved="$host:$moved"
  die "port $port ($var) on $host is already in use${who:+ by $who}: is scripts/up.sh already running? Stop it, or move this one, e.g. $var=$moved scripts/up.sh (README: \"Ports and data\")"
}
check_ports() {
  need_port MLFLOW_PORT 127.0.0.1 "$MLFLOW_PORT"
  need_port GATEWAY_LISTEN "$GATEWAY_HOST" "$GATEWAY_PORT"
  [ "$IDENTITY" != local-idp ] || need_port IDP_PORT 127.0.0.1 "$IDP_PORT"
}
ports_clash() {
  [ "$MLFLOW_PORT" = "$GATEWAY_PORT" ] && return 0
  [ "$IDENTITY" = local-idp ] && { [ "$IDP_PORT" = "$MLFLOW_PORT" ] || [ "$IDP_PORT" = "$GATEWAY_PORT" ]; }
}
! ports_clash || die "MLFLOW_PORT=$MLFLOW_PORT, GATEWAY_LISTEN=$GATEWAY_LISTEN and IDP_PORT=$IDP_PORT must use different ports"
check_ports

started_at=$SECONDS
find_spin
build_component
ensure_venv
[ "$IDENTITY" != local-idp ] || ensure_idp_tools
mkdir -p "$DATA_DIR/artifacts" "$DATA_DIR/logs"

# ---- processes: each child and everything it starts is stopped on exit (Ctrl-C, an error, or
# one of them ending): SIGTERM, then SIGKILL for what is left after 10 s.
pids=()
descendants() {
  local p
  for p in $(ps -o pid= --ppid "$1" 2>/dev/null); do descendants "$p"; echo "$p"; done
}
cleanup() {
  trap - INT TERM EXIT
  local all=() p alive
  for p in ${pids[@]+"${pids[@]}"}; do
    for d in $(descendants "$p"); do all+=("$d"); done
    all+=("$p")
  done
  if [ ${#all[@]} -gt 0 ]; then
    kill -TERM "${all[@]}" 2>/dev/null || true
    for _ in $(seq 1 100); do
      alive=0
      for p in "${all[@]}"; do kill -0 "$p" 2>/dev/null && alive=1 && break; done
      [ "$alive" = 0 ] && break
      sleep 0.1
    done
    kill -KILL "${all[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
  fi
  log "stopped"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for NAME PID URL LOG: until URL answers 200 while PID lives (never someone else's server).
wait_for() {
  local name="$1" pid="$2" url="$3" logf="${4:-}" deadline=$((SECONDS + UP_WAIT_SECONDS))
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      [ -z "$logf" ] || { printf '%s\n' "--- last lines of $logf:" >&2; tail -n 20 "$logf" >&2; }
      die "$name exited during start-up${logf:+ (log: $logf)}"
    fi
    curl -sf --max-time 5 "$url" >/dev/null 2>&1 && return 0
    [ "$SECONDS" -lt "$deadline" ] || die "$name did not answer 200 on $url within ${UP_WAIT_SECONDS}s (UP_WAIT_SECONDS)${logf:+; log: $logf}"
    sleep 0.5
  done
}

# secret FILE: a random secret kept in DATA_DIR/secrets (0600), the same on every run.
secret() {
  local f="$DATA_DIR/secrets/$1"
  if [ ! -s "$f" ]; then
    (umask 077 && mkdir -p "$DATA_DIR/secrets" && head -c 32 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=' >"$f")
  fi
  cat "$f"
}

# ---- the local IdP
IDP_ISSUER="http://127.0.0.1:$IDP_PORT"
IDP_RESOURCE="urn:mlflow:gateway"
if [ "$IDENTITY" = local-idp ]; then
  GW_SECRET="$(secret gateway-client)"
  A_SECRET="$(secret svc-team-a)"
  B_SECRET="$(secret svc-team-b)"
  if [ ! -s "$DATA_DIR/secrets/session-cookie-key" ]; then
    (umask 077 && head -c 32 /dev/urandom | base64 -w0 >"$DATA_DIR/secrets/session-cookie-key")
  fi
  SESSION_KEY="$(cat "$DATA_DIR/secrets/session-cookie-key")"
  mkdir -p "$DATA_DIR/idp"
  # The IdP's configuration holds the secrets: 0600, rewritten on every run (ports may move).
  (umask 077 && IDP_PORT="$IDP_PORT" IDP_DIR="$DATA_DIR/idp" GATEWAY_URL="$GATEWAY_URL" \
    GW_SECRET="$GW_SECRET" A_SECRET="$A_SECRET" B_SECRET="$B_SECRET" RESOURCE="$IDP_RESOURCE" \
    python3 - >"$DATA_DIR/idp/idp.json" <<'PY'
import json, os
e = os.environ
machine = lambda cid, tenant, secret: {
    "client_id": cid, "client_secret": secret, "grant_types": ["client_credentials"],
    "response_types": [], "redirect_uris": [], "tenant_id": tenant, "roles": ["editor"]}
print(json.dumps({
    "port": int(e["IDP_PORT"]), "audience": "mlflow", "resource": e["RESOURCE"], "ttl": 300,
    "keys_path": os.path.join(e["IDP_DIR"], "keys.json"),
    "clients": [
        {"client_id": "mlflow-gateway", "client_secret": e["GW_SECRET"],
         "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
         "redirect_uris": [e["GATEWAY_URL"] + "/oauth2/callback"],
         "post_logout_redirect_uris": [e["GATEWAY_URL"] + "/"],
         "token_endpoint_auth_method": "client_secret_basic"},
        machine("svc-team-a", "team-a", e["A_SECRET"]),
        machine("svc-team-b", "team-b", e["B_SECRET"]),
    ],
    # The demo people (devInteractions: any password). admin is an admin in both teams.
    "accounts": {
        "alice": {"tenant_id": "team-a", "roles": ["editor"]},
        "bob": {"tenant_id": "team-b", "roles": ["editor"]},
        "admin": {"tenant_id": ["team-a", "team-b"], "roles": ["admin"]},
    },
}, indent=1))
PY
  )
  export SPIN_VARIABLE_OIDC_ISSUER="$IDP_ISSUER"
  export SPIN_VARIABLE_IDP_ORIGIN="${SPIN_VARIABLE_IDP_ORIGIN:-$IDP_ISSUER}"
  export SPIN_VARIABLE_OIDC_AUDIENCE="${SPIN_VARIABLE_OIDC_AUDIENCE:-mlflow}"
  export SPIN_VARIABLE_OIDC_CLIENT_ID="${SPIN_VARIABLE_OIDC_CLIENT_ID:-mlflow-gateway}"
  export SPIN_VARIABLE_OIDC_CLIENT_SECRET="${SPIN_VARIABLE_OIDC_CLIENT_SECRET:-$GW_SECRET}"
  export SPIN_VARIABLE_OIDC_REDIRECT_URL="${SPIN_VARIABLE_OIDC_REDIRECT_URL:-$GATEWAY_URL/oauth2/callback}"
  # The local IdP grants the `mlflow` scope (the access token's audience); a line of
  # `settings` unless the caller's SPIN_VARIABLE_SETTINGS names the scopes itself.
  case "${SPIN_VARIABLE_SETTINGS:-}" in
    *oidc_scopes*) ;;
    *) export SPIN_VARIABLE_SETTINGS="${SPIN_VARIABLE_SETTINGS:+$SPIN_VARIABLE_SETTINGS; }oidc_scopes = openid mlflow" ;;
  esac
  export SPIN_VARIABLE_SESSION_COOKIE_KEYS="${SPIN_VARIABLE_SESSION_COOKIE_KEYS:-$SESSION_KEY}"

  need_port IDP_PORT 127.0.0.1 "$IDP_PORT"
  log "starting the local IdP (oidc-provider) on $IDP_ISSUER (log: $DATA_DIR/logs/idp.log)"
  IDP_NODE_PATH="$IDP_NODE_PATH" node "$REPO_ROOT/tests/idp/oidc_provider.mjs" "$DATA_DIR/idp/idp.json" \
    >"$DATA_DIR/logs/idp.log" 2>&1 9>&- &
  pids+=($!)
fi

export SPIN_VARIABLE_UPSTREAM_ORIGIN="${SPIN_VARIABLE_UPSTREAM_ORIGIN:-http://127.0.0.1:$MLFLOW_PORT}"

cat >"$DATA_DIR/runtime-config.toml" <<TOML
[key_value_store.default]
type = "spin"
path = "$DATA_DIR/gateway-kv.db"
TOML

# ---- MLflow. Workspace mode needs MLflow's workspaces; tag mode runs MLflow without them
# (docs/isolation.md: with workspaces on, every artifact URI is rooted at workspaces/default/,
# which tag mode refuses as a model version source).
WORKSPACE_FLAGS=(--enable-workspaces)
[ "${SPIN_VARIABLE_TENANT_ISOLATION:-workspace}" = "tag" ] && WORKSPACE_FLAGS=()
need_port MLFLOW_PORT 127.0.0.1 "$MLFLOW_PORT"
log "starting MLflow $MLFLOW_VERSION on http://127.0.0.1:$MLFLOW_PORT (data in $DATA_DIR${WORKSPACE_FLAGS[*]:+, workspaces on}; log: $DATA_DIR/logs/mlflow.log)"
# MLFLOW_WEBHOOK_CACHE_TTL=0: MLflow 3.17.2 caches an event's webhooks across workspaces, so one
# tenant's registry events would reach another's webhooks (docs/genai.md).
MLFLOW_WEBHOOK_CACHE_TTL=0 "$VENV/bin/mlflow" server --host 127.0.0.1 --port "$MLFLOW_PORT" \
  --backend-store-uri "sqlite:///$DATA_DIR/mlflow.db" \
  --artifacts-destination "$DATA_DIR/artifacts" --workers 2 ${WORKSPACE_FLAGS[@]+"${WORKSPACE_FLAGS[@]}"} \
  >"$DATA_DIR/logs/mlflow.log" 2>&1 9>&- &
mlflow_pid=$!
pids+=("$mlflow_pid")
if [ "$IDENTITY" = local-idp ]; then
  wait_for "the local IdP" "${pids[0]}" "$IDP_ISSUER/.well-known/openid-configuration" "$DATA_DIR/logs/idp.log"
fi
wait_for MLflow "$mlflow_pid" "http://127.0.0.1:$MLFLOW_PORT/health" "$DATA_DIR/logs/mlflow.log"

# ---- the gateway (its audit lines and operator lines stay on this terminal)
need_port GATEWAY_LISTEN "$GATEWAY_HOST" "$GATEWAY_PORT"
log "starting the gateway on $GATEWAY_URL (auth_mode=$SPIN_VARIABLE_AUTH_MODE, tenant_isolation=${SPIN_VARIABLE_TENANT_ISOLATION:-workspace})"
(cd "$REPO_ROOT" && exec "$SPIN_BIN" up --listen "$GATEWAY_LISTEN" \
  --runtime-config-file "$DATA_DIR/runtime-config.toml" --log-dir "$DATA_DIR/logs/gateway" 9>&-) &
gateway_pid=$!
pids+=("$gateway_pid")
wait_for "the gateway" "$gateway_pid" "$GATEWAY_URL/healthz"
# Ready means MLflow, its workspaces and (OIDC) the IdP's issuer and keys check out; if not,
# the gateway's own "not ready" line above says what is wrong.
deadline=$((SECONDS + UP_WAIT_SECONDS))
until ready="$(curl -s --max-time 30 "$GATEWAY_URL/readyz")" && [[ "$ready" == *'"status":"ready"'* ]]; do
  kill -0 "$gateway_pid" 2>/dev/null || die "the gateway exited during start-up"
  [ "$SECONDS" -lt "$deadline" ] || die "the gateway is not ready after ${UP_WAIT_SECONDS}s: $ready (its \"not ready\" line above says why)"
  sleep 1
done

# ---- the MLflow client's settings, and what to do next
if [ "$IDENTITY" = local-idp ]; then
  write_env() {  # FILE TENANT CLIENT SECRET
    (umask 077 && cat >"$1" <<ENV
# The MLflow client as $2 (machine client $3 at the local IdP), written by scripts/up.sh.
# Use: pip install ./clients/python; set -a; . $1; set +a
MLFLOW_TRACKING_URI=$GATEWAY_URL
MLFLOW_TRACKING_AUTH=gateway-oidc
MLFLOW_GATEWAY_OIDC_ISSUER=$IDP_ISSUER
MLFLOW_GATEWAY_OIDC_CLIENT_ID=$3
MLFLOW_GATEWAY_OIDC_CLIENT_SECRET=$4
ENV
    )
  }
  write_env "$DATA_DIR/quickstart.env" team-a svc-team-a "$A_SECRET"
  write_env "$DATA_DIR/quickstart-team-b.env" team-b svc-team-b "$B_SECRET"
elif [ "$IDENTITY" = own-idp ]; then
  rm -f "$DATA_DIR/quickstart.env" "$DATA_DIR/quickstart-team-b.env"
elif [ "$IDENTITY" = dev ]; then
  write_env() {  # FILE TENANT SUBJECT
    (umask 077 && cat >"$1" <<ENV
# The MLflow client as $3 of $2 (header dev mode), written by scripts/up.sh --dev.
# Use: pip install ./clients/python; set -a; . $1; set +a
MLFLOW_TRACKING_URI=$GATEWAY_URL
MLFLOW_TRACKING_AUTH=gateway-dev
MLFLOW_GATEWAY_DEV_TENANT=$2
MLFLOW_GATEWAY_DEV_SUBJECT=$3
MLFLOW_GATEWAY_DEV_ROLES=editor
ENV
    )
  }
  write_env "$DATA_DIR/quickstart.env" team-a alice
  write_env "$DATA_DIR/quickstart-team-b.env" team-b bob
fi

demo_env=""
[ "$GATEWAY_URL" = "http://127.0.0.1:3000" ] || demo_env="GATEWAY_URL=$GATEWAY_URL "
[ "$DATA_DIR" = "$REPO_ROOT/.spin/up-data" ] || demo_env="${demo_env}DATA_DIR=$DATA_DIR "
{
  echo
  echo "==> ready in $((SECONDS - started_at))s: the gateway is $GATEWAY_URL (MLflow behind it: http://127.0.0.1:$MLFLOW_PORT)"
  case "$IDENTITY" in
    local-idp)
      echo "    Browser: open $GATEWAY_URL/ and sign in at the local IdP ($IDP_ISSUER) as"
      echo "             alice (team-a, editor), bob (team-b, editor) or admin (admin of both); any password"
      echo "    Python:  pip install ./clients/python   (once), then as team-a:"
      echo "             set -a; . $DATA_DIR/quickstart.env; set +a; python train.py"
      echo "             (team-b: $DATA_DIR/quickstart-team-b.env)" ;;
    dev)
      echo "    Header dev mode (auth_mode=off): the caller is whoever X-Tenant/X-Subject say; never expose it."
      echo "    Python:  pip install ./clients/python   (once), then as alice of team-a:"
      echo "             set -a; . $DATA_DIR/quickstart.env; set +a; python train.py"
      echo "             (bob of team-b: $DATA_DIR/quickstart-team-b.env)" ;;
    own-idp)
      echo "    OIDC against your IdP ($SPIN_VARIABLE_OIDC_ISSUER): see README, \"Use it from Python\"." ;;
  esac
  echo "    Demo:    ${demo_env}demo/run_demo.sh"
  echo "    Logs:    $DATA_DIR/logs/ (MLflow$([ "$IDENTITY" != local-idp ] || echo ", the IdP"), the gateway); the gateway's audit lines also follow here. Ctrl-C stops everything."
} >&2
wait -n "${pids[@]}" || true
log "stopping (Ctrl-C, or a process ended: see $DATA_DIR/logs/)"
exit 1
