#!/usr/bin/env bash
# team-a creates an experiment (uniquely named, so the demo can be re-run) and a run in it.
# Expected: HTTP 200 for both. The gateway tags the experiment and the run tenant=team-a and sets
# the run's user to the caller's subject.
# Prints EXPERIMENT_ID=<id> and RUN_ID=<id> on stdout (everything else goes to stderr), e.g.
#   eval "$(demo/curl/create_run.sh)"
set -euo pipefail
# shellcheck source=common.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

name="demo-team-a-$(date +%s)-$RANDOM"
say "[create_run] create experiment '$name' as team-a (expect 200)"
call POST /api/2.0/mlflow/experiments/create team-a "{\"name\": \"$name\"}"
expect_status 200
experiment_id="$(json_get experiment_id)"

say "[create_run] create a run in experiment $experiment_id as team-a (expect 200)"
call POST /api/2.0/mlflow/runs/create team-a \
  "{\"experiment_id\": \"$experiment_id\", \"run_name\": \"demo-run\", \"tags\": [{\"key\": \"purpose\", \"value\": \"demo\"}]}"
expect_status 200
run_id="$(json_get run.info.run_id)"
say "[create_run] OK: experiment $experiment_id, run $run_id"

echo "EXPERIMENT_ID=$experiment_id"
echo "RUN_ID=$run_id"
