#!/usr/bin/env bash
# The seed's demo: team-a creates a run; team-a can read it; team-b cannot read it or see it.
# Needs a running gateway in dev mode (scripts/up.sh). Prints SUCCESS or FAIL.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
GATEWAY_URL="${GATEWAY_URL:-http://localhost:3000}"
export GATEWAY_URL

echo "waiting for $GATEWAY_URL/healthz"
for _ in $(seq 1 120); do
  curl -sf "$GATEWAY_URL/healthz" >/dev/null 2>&1 && break
  sleep 0.5
done
curl -sf "$GATEWAY_URL/healthz" >/dev/null || { echo "FAIL: gateway not reachable at $GATEWAY_URL (start it with scripts/up.sh)"; exit 1; }

step() {
  local name="$1"; shift
  echo "--- $name"
  if ! "$@"; then
    echo "FAIL: $name"
    exit 1
  fi
}

ids="$("$here/curl/create_run.sh")" || { echo "FAIL: create_run"; exit 1; }
EXPERIMENT_ID="$(printf '%s\n' "$ids" | sed -n 's/^EXPERIMENT_ID=//p')"
RUN_ID="$(printf '%s\n' "$ids" | sed -n 's/^RUN_ID=//p')"
[ -n "$EXPERIMENT_ID" ] && [ -n "$RUN_ID" ] || { echo "FAIL: create_run printed no ids"; exit 1; }
echo "--- create_run: experiment $EXPERIMENT_ID, run $RUN_ID"

step get_run_same_tenant "$here/curl/get_run_same_tenant.sh" "$RUN_ID"
step get_run_other_tenant "$here/curl/get_run_other_tenant.sh" "$RUN_ID"
step search_other_tenant "$here/curl/search_other_tenant.sh" "$EXPERIMENT_ID"
echo "SUCCESS"
