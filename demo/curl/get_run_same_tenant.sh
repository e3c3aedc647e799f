#!/usr/bin/env bash
# team-a reads its own run: 200.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
RUN_ID="${1:-${RUN_ID:-}}"
[ -n "$RUN_ID" ] || { echo "usage: $0 RUN_ID (or RUN_ID=... in the environment)" >&2; exit 2; }
echo "get run $RUN_ID as team-a (expect 200)" >&2
call GET "/api/2.0/mlflow/runs/get?run_id=$RUN_ID" team-a
expect_status 200
