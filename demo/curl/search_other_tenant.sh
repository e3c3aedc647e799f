#!/usr/bin/env bash
# team-b looks for team-a's data through search. Expected:
#   1. runs/search naming team-a's experiment id -> HTTP 403 PERMISSION_DENIED;
#   2. experiments/search -> HTTP 200 whose list (absent when empty) lacks team-a's experiment.
# Usage: search_other_tenant.sh EXPERIMENT_ID   (or EXPERIMENT_ID=... in the environment)
set -euo pipefail
# shellcheck source=common.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

EXPERIMENT_ID="${1:-${EXPERIMENT_ID:-}}"
[ -n "$EXPERIMENT_ID" ] || { say "usage: $0 EXPERIMENT_ID   (or set EXPERIMENT_ID in the environment; create_run.sh prints it)"; exit 2; }

say "[search_other_tenant] search runs of team-a's experiment $EXPERIMENT_ID as team-b (expect 403 PERMISSION_DENIED)"
call POST /api/2.0/mlflow/runs/search team-b "{\"experiment_ids\": [\"$EXPERIMENT_ID\"]}"
expect_status 403
code="$(json_get error_code)"
[ "$code" = "PERMISSION_DENIED" ] || fail "expected error_code PERMISSION_DENIED, got $code"

say "[search_other_tenant] list experiments as team-b (expect 200 without experiment $EXPERIMENT_ID)"
call GET "/api/2.0/mlflow/experiments/search?max_results=100" team-b
expect_status 200
verdict="$(BODY="$BODY" python3 -c '
import json, os, sys
try:
    experiments = json.loads(os.environ["BODY"]).get("experiments") or []
    ids = [str(e.get("experiment_id")) for e in experiments]
except (ValueError, AttributeError, TypeError) as e:
    print("unparseable response: %s" % e)
    sys.exit()
print("visible" if sys.argv[1] in ids else "absent (team-b sees %d experiment(s))" % len(ids))
' "$EXPERIMENT_ID")"
case "$verdict" in
  absent*) say "[search_other_tenant] OK: team-a's experiment is $verdict" ;;
  visible) fail "team-b can see team-a's experiment $EXPERIMENT_ID" ;;
  *) fail "experiments/search: $verdict" ;;
esac
