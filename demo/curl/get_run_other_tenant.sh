#!/usr/bin/env bash
# team-b tries to read team-a's run: 403 PERMISSION_DENIED.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
RUN_ID="${1:-${RUN_ID:-}}"
[ -n "$RUN_ID" ] || { echo "usage: $0 RUN_ID (or RUN_ID=... in the environment)" >&2; exit 2; }
echo "get run $RUN_ID as team-b (expect 403)" >&2
call GET "/api/2.0/mlflow/runs/get?run_id=$RUN_ID" team-b
expect_status 403
[ "$(json_get error_code)" = "PERMISSION_DENIED" ] || { echo "FAIL: expected PERMISSION_DENIED" >&2; exit 1; }
