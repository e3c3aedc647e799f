#!/usr/bin/env bash
# team-b searches: team-a's experiment id is refused (403) and team-a's experiment is absent
# from team-b's experiment list.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
EXPERIMENT_ID="${1:-${EXPERIMENT_ID:-}}"
[ -n "$EXPERIMENT_ID" ] || { echo "usage: $0 EXPERIMENT_ID (or EXPERIMENT_ID=... in the environment)" >&2; exit 2; }

echo "search runs of team-a's experiment $EXPERIMENT_ID as team-b (expect 403)" >&2
call POST /api/2.0/mlflow/runs/search team-b "{\"experiment_ids\": [\"$EXPERIMENT_ID\"]}"
expect_status 403

echo "list experiments as team-b (expect 200 without experiment $EXPERIMENT_ID)" >&2
call GET "/api/2.0/mlflow/experiments/search?max_results=1000" team-b
expect_status 200
if BODY="$BODY" python3 -c '
import json, os, sys
ids = [e["experiment_id"] for e in json.loads(os.environ["BODY"]).get("experiments", [])]
sys.exit(0 if sys.argv[1] in ids else 1)' "$EXPERIMENT_ID"; then
  echo "FAIL: team-b can see team-a's experiment" >&2
  exit 1
fi
echo "  team-a's experiment is not in team-b's list" >&2
