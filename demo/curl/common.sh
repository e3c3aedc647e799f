#!/usr/bin/env bash
# Shared helpers for the demo scripts; sourced by them, not run on its own.
# Dev mode (auth_mode=off): the caller's identity comes from the X-Tenant (required) and
# X-Subject (optional) headers. Everything human-readable goes to stderr, so that stdout stays
# free for machine-readable output (create_run.sh prints EXPERIMENT_ID=/RUN_ID= there).
GATEWAY_URL="${GATEWAY_URL:-http://localhost:3000}"
GATEWAY_URL="${GATEWAY_URL%/}"

say() { printf '%s\n' "$*" >&2; }
fail() { say "FAIL: $*"; exit 1; }

# call METHOD PATH TENANT [JSON_BODY]
# Sends the request as TENANT (subject demo-TENANT); sets STATUS, BODY and REQUEST_ID and prints
# them. Exits if the gateway cannot be reached at all.
call() {
  local method="$1" path="$2" tenant="$3" body="${4:-}" tmp rc=0
  local -a args=(-sS --max-time "${DEMO_CURL_TIMEOUT:-30}" -X "$method"
    -H "X-Tenant: $tenant" -H "X-Subject: demo-$tenant")
  if [ -n "$body" ]; then
    args+=(-H 'Content-Type: application/json' --data-binary "$body")
  fi
  tmp="$(mktemp -d)"
  STATUS="$(curl "${args[@]}" -D "$tmp/headers" -o "$tmp/body" -w '%{http_code}' \
    "$GATEWAY_URL$path")" || rc=$?
  BODY="$(cat "$tmp/body" 2>/dev/null || true)"
  REQUEST_ID="$( (grep -i '^x-request-id:' "$tmp/headers" 2>/dev/null || true) \
    | tail -n 1 | cut -d: -f2- | tr -d ' \r')"
  rm -rf "$tmp"
  say "  $method $GATEWAY_URL$path  (X-Tenant: $tenant, X-Subject: demo-$tenant)"
  [ -z "$body" ] || say "  request body: $body"
  if [ "$rc" -ne 0 ]; then
    fail "curl could not complete the request to $GATEWAY_URL (curl exit code $rc); is the gateway running (scripts/up.sh)?"
  fi
  say "  -> HTTP $STATUS  X-Request-ID: ${REQUEST_ID:-<missing>}"
  say "  -> body: $(compact_json)"
}

# compact_json: the last response body on one line (as-is if it is not JSON).
compact_json() {
  BODY="$BODY" python3 -c '
import json, os
b = os.environ["BODY"]
try:
    print(json.dumps(json.loads(b), separators=(",", ":")))
except ValueError:
    print(b)'
}

# expect_status CODE: fail unless the last call answered CODE.
expect_status() {
  [ "$STATUS" = "$1" ] || fail "expected HTTP $1, got HTTP $STATUS"
}

# json_get DOTTED.PATH: prints that field of the last response body (e.g. run.info.run_id);
# fails with a clear message if the body is not JSON or has no such field.
json_get() {
  BODY="$BODY" python3 -c '
import json, os, sys
path = sys.argv[1]
try:
    v = json.loads(os.environ["BODY"])
    for k in path.split("."):
        v = v[k]
except (ValueError, KeyError, TypeError, IndexError) as e:
    sys.exit("FAIL: response body has no field %s (%s: %s)" % (path, type(e).__name__, e))
print(v)' "$1"
}
