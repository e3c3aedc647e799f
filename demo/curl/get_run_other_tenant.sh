#!/usr/bin/env bash
# team-b tries to read team-a's run. Expected: HTTP 403 with error_code PERMISSION_DENIED (the
# message ends with the request id, the same as the X-Request-ID header).
# Usage: get_run_other_tenant.sh RUN_ID   (or RUN_ID=... in the environment)
set -euo pipefail
# shellcheck source=common.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

RUN_ID="${1:-${RUN_ID:-}}"
[ -n "$RUN_ID" ] || { say "usage: $0 RUN_ID   (or set RUN_ID in the environment; create_run.sh prints it)"; exit 2; }

say "[get_run_other_tenant] get team-a's run $RUN_ID as team-b (expect 403 PERMISSION_DENIED)"
call GET "/api/2.0/mlflow/runs/get?run_id=$RUN_ID" team-b
expect_status 403
code="$(json_get error_code)"
[ "$code" = "PERMISSION_DENIED" ] || fail "expected error_code PERMISSION_DENIED, got $code"
say "[get_run_other_tenant] OK: team-b is refused: $(json_get message)"
