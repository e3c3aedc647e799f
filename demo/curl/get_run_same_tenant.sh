#!/usr/bin/env bash
# team-a reads its own run. Expected: HTTP 200 with the run (tagged tenant=team-a).
# Usage: get_run_same_tenant.sh RUN_ID   (or RUN_ID=... in the environment)
set -euo pipefail
# shellcheck source=common.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

RUN_ID="${1:-${RUN_ID:-}}"
[ -n "$RUN_ID" ] || { say "usage: $0 RUN_ID   (or set RUN_ID in the environment; create_run.sh prints it)"; exit 2; }

say "[get_run_same_tenant] get run $RUN_ID as team-a (expect 200)"
call GET "/api/2.0/mlflow/runs/get?run_id=$RUN_ID" team-a
expect_status 200
[ "$(json_get run.info.run_id)" = "$RUN_ID" ] || fail "the answer is not run $RUN_ID"
say "[get_run_same_tenant] OK: team-a can read its run"
