#!/usr/bin/env bash
# Reliability soak (docs/reliability.md): real MLflow client workers through the gateway, then
# MLflow killed and restarted, a slow upstream, Redis frozen, garbage bursts.
#   bench/soak.sh [--steady SECONDS] [--fault SECONDS] [--workers N] [--write-docs]
#   bench/soak.sh --short          # ~2 min variant run by scripts/test.sh
# Loopback only; every phase is bounded in time. Exits non-zero if an acknowledged point is
# missing from MLflow, a stderr line is not JSON, or a request was forwarded past its deadline.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

find_spin
if [ -z "${SOAK_NO_BUILD:-}" ]; then build_component; fi
ensure_venv
ensure_redis
"$VENV/bin/python" "$REPO_ROOT/bench/soak.py" "$@"
