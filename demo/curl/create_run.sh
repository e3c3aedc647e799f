#!/usr/bin/env bash
# team-a creates an experiment and a run in it. Prints EXPERIMENT_ID=... and RUN_ID=... lines.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

name="demo-team-a-$(date +%s)-$RANDOM"
echo "create experiment $name as team-a (expect 200)" >&2
call POST /api/2.0/mlflow/experiments/create team-a "{\"name\": \"$name\"}"
expect_status 200
experiment_id="$(json_get experiment_id)"

echo "create a run in it as team-a (expect 200; the gateway adds tag tenant=team-a)" >&2
call POST /api/2.0/mlflow/runs/create team-a \
  "{\"experiment_id\": \"$experiment_id\", \"run_name\": \"demo-run\", \"tags\": [{\"key\": \"purpose\", \"value\": \"demo\"}]}"
expect_status 200
run_id="$(json_get run.info.run_id)"
echo "EXPERIMENT_ID=$experiment_id"
echo "RUN_ID=$run_id"
