#!/usr/bin/env bash
# The demo: team-a creates an experiment and a run; team-a can read the run; team-b can neither
# read it nor find it through search. Needs the gateway in front of a real MLflow, as
# `scripts/up.sh` (OIDC with its local IdP: the machine clients' tokens, from the settings it
# wrote to DATA_DIR) or `scripts/up.sh --dev` (X-Tenant headers) starts it.
# Prints SUCCESS as its last line, or FAIL: <step> and exits non-zero.
# Usage: demo/run_demo.sh   (from any directory; GATEWAY_URL=http://host:port to change target,
#        DATA_DIR=... for a scripts/up.sh that ran with another DATA_DIR)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
GATEWAY_URL="${GATEWAY_URL:-http://localhost:3000}"
GATEWAY_URL="${GATEWAY_URL%/}"
export GATEWAY_URL
wait_seconds="${DEMO_WAIT_SECONDS:-60}"

echo "=== waiting up to ${wait_seconds}s for $GATEWAY_URL/healthz"
deadline=$((SECONDS + wait_seconds))
until curl -sf --max-time 2 "$GATEWAY_URL/healthz" >/dev/null 2>&1; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "FAIL: healthz: the gateway did not answer 200 on $GATEWAY_URL/healthz within ${wait_seconds}s" \
      "(start it with scripts/up.sh from the repository root, or set GATEWAY_URL)"
    exit 1
  fi
  sleep 1
done
echo "gateway is up"
# shellcheck source=curl/common.sh
source "$here/curl/common.sh"
ensure_demo_auth
case "$DEMO_AUTH" in
  oidc) echo "auth_mode=oidc: team-a and team-b call with their machine clients' tokens (svc-team-a, svc-team-b; settings from $DATA_DIR)" ;;
  dev) echo "auth_mode=off (dev mode): team-a and team-b call with X-Tenant headers" ;;
esac

step() {
  local name="$1"; shift
  echo "=== $name"
  if ! "$@"; then
    echo "FAIL: $name"
    exit 1
  fi
}

echo "=== create_run"
if ! ids="$("$here/curl/create_run.sh")"; then
  echo "FAIL: create_run"
  exit 1
fi
EXPERIMENT_ID="$(printf '%s\n' "$ids" | sed -n 's/^EXPERIMENT_ID=//p')"
RUN_ID="$(printf '%s\n' "$ids" | sed -n 's/^RUN_ID=//p')"
if [ -z "$EXPERIMENT_ID" ] || [ -z "$RUN_ID" ]; then
  echo "FAIL: create_run (it printed no EXPERIMENT_ID/RUN_ID)"
  exit 1
fi
echo "team-a's experiment: $EXPERIMENT_ID, run: $RUN_ID"

step get_run_same_tenant "$here/curl/get_run_same_tenant.sh" "$RUN_ID"
step get_run_other_tenant "$here/curl/get_run_other_tenant.sh" "$RUN_ID"
step search_other_tenant "$here/curl/search_other_tenant.sh" "$EXPERIMENT_ID"
echo "SUCCESS"
