#!/usr/bin/env bash
# Supported MLflow versions (docs/versions.md; not part of the test command): for each MLflow
# version given (default: 3.10.1, the oldest with workspaces, and 3.18.0), a cached venv with that
# MLflow, then against it, with the component built once:
#   - the route inventory (tests/e2e/test_route_inventory.py), with the routes the policy table
#     does not know, the rows that match no route of that MLflow (both always in full), and the
#     differences with the pinned MLflow's routes, deny families and tag-writing routes;
#   - a smoke (tests/e2e/test_skeleton.py, tests/e2e/test_client_session.py: dev mode, the real
#     MLflow client, a realistic session) with E2E_ISOLATION=workspace (MLflow >= 3.10 only:
#     older ones have no workspaces) and E2E_ISOLATION=tag.
# Prints a summary table and exits non-zero if anything failed. Logs, JUnit files and route lists
# go to .artifacts/check-versions/<UTC time>/.
#   scripts/check_versions.sh [VERSION...]      e.g. scripts/check_versions.sh 3.12.0 3.18.0
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

VERSIONS=("$@")
[ ${#VERSIONS[@]} -gt 0 ] || VERSIONS=(3.10.1 3.18.0)
for v in "${VERSIONS[@]}"; do
  [[ "$v" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "not an MLflow version (x.y.z): $v"
done
SMOKE=(tests/e2e/test_skeleton.py tests/e2e/test_client_session.py)
OUT="$REPO_ROOT/.artifacts/check-versions/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"

# The venv for MLflow $1 (ensure_venv in its own shell: it exits on failure), path on stdout.
venv_for() {
  MLFLOW_VERSION="$1" bash -c 'set -euo pipefail; source "$1"; ensure_venv; printf "%s" "$VENV"' \
    _ "$REPO_ROOT/scripts/lib.sh"
}

# Whether PyPI lists version $2 of package $1 (`pip index versions`).
on_pypi() {
  local listed
  listed="$("$PINNED_VENV/bin/pip" index versions "$1" 2>/dev/null || true)"
  grep "versions:.* ${2//./\\.}\(,\|$\)" <<<"$listed" >/dev/null
}

# When `mlflow==$1` cannot be installed because PyPI has the mlflow release but not the
# mlflow-skinny/mlflow-tracing release it pins (seen for 3.18.0 on 2026-12-02): the full `mlflow`
# wheel (a superset of the files of both) with --no-deps, on top of the dependencies of the pinned
# MLflow's mlflow-skinny and mlflow-tracing, plus the full wheel's own other requirements. Said
# loudly (NOTES, the summary), cached apart from ensure_venv's venvs.
venv_full_wheel() {
  local v="$1" req="$CACHE_DIR/requirements-mlflow-$1.txt"
  local base="$CACHE_DIR/requirements-mlflow-$1-full-wheel.txt"
  grep -v '^mlflow==' "$req" >"$base"
  printf 'mlflow-skinny==%s\nmlflow-tracing==%s\n' "$MLFLOW_PINNED_VERSION" "$MLFLOW_PINNED_VERSION" >>"$base"
  local venv
  venv="$CACHE_DIR/venv-mlflow-$v-full-wheel-$(sha256sum "$base" | cut -c1-12)"
  if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.complete" ]; then
    log "creating $venv: full mlflow==$v wheel without its mlflow-skinny/mlflow-tracing pins"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip >&2
    "$venv/bin/pip" install -q -r "$base" >&2 || die "pip install -r $base failed"
    "$venv/bin/pip" uninstall -q -y mlflow-skinny mlflow-tracing >&2
    "$venv/bin/pip" install -q --no-deps "mlflow==$v" >&2 || die "pip install --no-deps mlflow==$v failed"
    local reqs=()
    mapfile -t reqs < <("$venv/bin/python" - <<'EOF'
import importlib.metadata as md
from packaging.requirements import Requirement
for r in map(Requirement, md.requires("mlflow") or []):
    if r.name not in ("mlflow-skinny", "mlflow-tracing") and (
            r.marker is None or r.marker.evaluate({"extra": ""})):
        print(r)
EOF
    )
    [ ${#reqs[@]} -eq 0 ] || "$venv/bin/pip" install -q "${reqs[@]}" >&2 \
      || die "pip install of mlflow==$v's requirements failed"
    touch "$venv/.complete"
  fi
  printf '%s' "$venv"
}

# Runs pytest; sets RESULT to "PASS n/n" or "FAIL p/n (...)" from its JUnit file.
run_pytest() {
  local name="$1" dir="$2"
  shift 2
  log "$name: pytest $*"
  local rc=0
  "$VENV/bin/python" -m pytest -ra -p no:cacheprovider --junitxml="$dir/$name.xml" "$@" 2>&1 \
    | tee "$dir/$name.log" || rc=$?
  RESULT="$("$VENV/bin/python" - "$dir/$name.xml" "$rc" <<'EOF'
import sys
import xml.etree.ElementTree as ET
path, rc = sys.argv[1], int(sys.argv[2])
try:
    root = ET.parse(path).getroot()
except (OSError, ET.ParseError):
    print(f"FAIL (pytest exit {rc}, no JUnit file)")
    raise SystemExit
suites = [root] if root.tag == "testsuite" else list(root)
n = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
passed = n["tests"] - n["failures"] - n["errors"] - n["skipped"]
bad = [f"{n[k]} {w}" for k, w in (("failures", "failed"), ("errors", "errors"), ("skipped", "skipped")) if n[k]]
with open(path.removesuffix(".xml") + ".failures.txt", "w") as out:
    for case in root.iter("testcase"):
        for fail in [*case.findall("failure"), *case.findall("error")]:
            what = "error" if fail.tag == "error" else "failed"
            msg = ((fail.get("message") or "").strip().splitlines() or [""])[0]
            if len(msg) > 500:
                msg = msg[:200] + " [...] " + msg[-300:]
            out.write(f"    {what}: {case.get('classname')}::{case.get('name')}: {msg}\n")
verdict = "PASS" if rc == 0 and not n["failures"] and not n["errors"] else "FAIL"
print(f"{verdict} {passed}/{n['tests']}" + (f" ({', '.join(bad)})" if bad else "")
      + (f" [pytest exit {rc}]" if verdict == "FAIL" and not (n["failures"] or n["errors"]) else ""))
EOF
)"
  [[ "$RESULT" == PASS* ]] || FAILED=1
}

# What differs for MLflow $1 (results in $2): the inventory report, and its routes, deny families
# and tag-writing routes against the pinned MLflow's; lists against the pinned MLflow are cut
# after $3 lines when given (the routes the gateway does not know and the stale rows never are).
differences() {
  python3 - "$1" "$MLFLOW_PINNED_VERSION" "$OUT/routes-$MLFLOW_PINNED_VERSION.json" "$2" \
      tests/data/tag_writing_routes.json "${3:-}" <<'EOF'
import json, pathlib, sys
v, pinned, pinned_routes, d, tag_file, limit = sys.argv[1:]
limit = int(limit) if limit else None
d = pathlib.Path(d)
def section(title, items, limit=None):
    print(f"  {title} ({len(items)}):" + ("" if items else " none"))
    for i in items[:limit]:
        print(f"    {i}")
    if limit is not None and len(items) > limit:
        print(f"    ... {len(items) - limit} more in {d / 'routes.json'}")
mine, base = json.loads((d / "routes.json").read_text()), json.loads(pathlib.Path(pinned_routes).read_text())
print(f"MLflow {v}: {len(mine['routes'])} routes (pinned MLflow {pinned}: {len(base['routes'])})")
inv = d / "inventory.json"
if inv.exists():
    r = json.loads(inv.read_text())
    section("routes with neither a policy row nor an explicit deny (the gateway refuses them: "
            "route_not_allowed)", r["unknown_routes"])
    section("policy rows matching no route of this MLflow", r["rows_matching_no_route"])
else:
    print("  inventory report missing: the route-inventory test did not get that far (see its log)")
section("deny families matching no route of this MLflow", mine["stale_deny_families"])
section("routers this MLflow does not have", mine["missing_routers"])
section(f"routes added since MLflow {pinned}", sorted(set(mine["routes"]) - set(base["routes"])),
        limit=limit)
section(f"routes of MLflow {pinned} absent here", sorted(set(base["routes"]) - set(mine["routes"])),
        limit=limit)
tags = {tuple(x) for x in json.loads((d / "tag_writing_routes.json").read_text())}
listed = {tuple(x) for x in json.loads(pathlib.Path(tag_file).read_text())}
section("tag-writing routes not in tests/data/tag_writing_routes.json", [" ".join(x) for x in sorted(tags - listed)])
section("tag_writing_routes.json entries absent here", [" ".join(x) for x in sorted(listed - tags)])
EOF
}

find_spin
CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}" build_component
export GATEWAY_WASM="$WASM"
PINNED_VENV="$(venv_for "$MLFLOW_PINNED_VERSION")"
"$PINNED_VENV/bin/python" tests/e2e/test_route_inventory.py >"$OUT/routes-$MLFLOW_PINNED_VERSION.json"

FAILED=0
declare -A ROW NOTES
for v in "${VERSIONS[@]}"; do
  dir="$OUT/$v"
  mkdir -p "$dir"
  NOTES[$v]=""
  log "MLflow $v: venv"
  if ! VENV="$(venv_for "$v")"; then
    if on_pypi mlflow "$v" && { ! on_pypi mlflow-skinny "$v" || ! on_pypi mlflow-tracing "$v"; }; then
      NOTES[$v]="mlflow==$v is on PyPI but mlflow-skinny==$v or mlflow-tracing==$v (which it pins) is not: ran the full mlflow $v wheel installed with --no-deps, with the dependencies of mlflow-skinny/mlflow-tracing $MLFLOW_PINNED_VERSION"
      log "WARNING: ${NOTES[$v]}"
      VENV="$(venv_full_wheel "$v")"
    else
      ROW[$v]="venv FAILED|-|-"
      NOTES[$v]="could not install mlflow==$v (see the pip error above)"
      FAILED=1
      continue
    fi
  fi
  export VENV
  installed="$("$VENV/bin/python" -c 'import mlflow; print(mlflow.__version__)' 2>/dev/null || echo "?")"
  [ "$installed" = "$v" ] || die "venv $VENV has mlflow $installed, not $v"

  # Routes of this MLflow against the pinned one, and its tag-writing routes against the file.
  "$VENV/bin/python" tests/e2e/test_route_inventory.py >"$dir/routes.json"
  "$VENV/bin/python" tests/e2e/mlflow_tag_routes.py >"$dir/tag_writing_routes.json"

  # Workspaces came with MLflow 3.10: an older one runs in tag mode only.
  modes=workspace
  if [ "$(printf '%s\n' "$v" 3.10.0 | sort -V | head -n1)" != 3.10.0 ]; then modes=tag; fi
  export E2E_MLFLOW_VERSION="$v"
  export E2E_INVENTORY_REPORT="$dir/inventory.json"
  rm -f "$E2E_INVENTORY_REPORT"
  E2E_ISOLATION="$modes" run_pytest inventory "$dir" tests/e2e/test_route_inventory.py
  inv="$RESULT"
  ws="n/a (MLflow < 3.10: no workspaces)"
  if [ "$modes" = workspace ]; then
    E2E_ISOLATION=workspace run_pytest smoke-workspace "$dir" "${SMOKE[@]}"
    ws="$RESULT"
  fi
  E2E_ISOLATION=tag run_pytest smoke-tag "$dir" "${SMOKE[@]}"
  tag="$RESULT"
  unset E2E_MLFLOW_VERSION E2E_INVENTORY_REPORT
  ROW[$v]="$inv|$ws|$tag"

  differences "$v" "$dir" >"$dir/differences.txt"
  cat "$dir/differences.txt" >&2
done

# ---- summary
{
  echo
  echo "Supported MLflow versions: $(date -u +%Y-%m-%d), $("$SPIN_BIN" --version | head -n1), results in $OUT"
  for v in "${VERSIONS[@]}"; do
    echo
    if [ -f "$OUT/$v/differences.txt" ]; then differences "$v" "$OUT/$v" 20; fi
    for name in inventory smoke-workspace smoke-tag; do
      if [ -s "$OUT/$v/$name.failures.txt" ]; then
        echo "  $name failures:"
        cat "$OUT/$v/$name.failures.txt"
      fi
    done
    if [ -n "${NOTES[$v]}" ]; then echo "  NOTE: ${NOTES[$v]}"; fi
  done
  echo
  printf '| %-8s | %-34s | %-34s | %-34s |\n' "MLflow" "route inventory" "smoke, workspace mode" "smoke, tag mode"
  printf '|%s|%s|%s|%s|\n' "----------" "------------------------------------" \
    "------------------------------------" "------------------------------------"
  for v in "${VERSIONS[@]}"; do
    IFS='|' read -r inv ws tag <<<"${ROW[$v]}"
    printf '| %-8s | %-34s | %-34s | %-34s |\n' "$v${NOTES[$v]:+ *}" "$inv" "$ws" "$tag"
  done
  echo "(smoke: ${SMOKE[*]}; * see NOTE above)"
} | tee "$OUT/summary.txt"

if [ "$FAILED" -ne 0 ]; then
  die "some checks failed (logs in $OUT)"
fi
log "all checks passed"
