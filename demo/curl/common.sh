#!/usr/bin/env bash
# Shared helpers for the demo scripts (sourced). Dev mode: identity from X-Tenant headers.
GATEWAY_URL="${GATEWAY_URL:-http://localhost:3000}"

# call METHOD PATH TENANT [JSON_BODY] -> sets STATUS and BODY
call() {
  local method="$1" path="$2" tenant="$3" body="${4:-}" out
  out="$(mktemp)"
  if [ -n "$body" ]; then
    STATUS="$(curl -sS -o "$out" -w '%{http_code}' -X "$method" "$GATEWAY_URL$path" \
      -H "X-Tenant: $tenant" -H "X-Subject: demo-$tenant" -H 'Content-Type: application/json' -d "$body")"
  else
    STATUS="$(curl -sS -o "$out" -w '%{http_code}' -X "$method" "$GATEWAY_URL$path" \
      -H "X-Tenant: $tenant" -H "X-Subject: demo-$tenant")"
  fi
  BODY="$(cat "$out")"
  rm -f "$out"
  printf '  %s %s as %s -> HTTP %s\n  %s\n' "$method" "$path" "$tenant" "$STATUS" "$BODY" >&2
}

# json_get FIELD_PATH  (reads $BODY; dotted path, e.g. run.info.run_id)
json_get() {
  BODY="$BODY" python3 -c '
import json, os, sys
v = json.loads(os.environ["BODY"])
for k in sys.argv[1].split("."):
    v = v[k]
print(v)' "$1"
}

expect_status() {
  if [ "$STATUS" != "$1" ]; then
    echo "FAIL: expected HTTP $1, got $STATUS" >&2
    exit 1
  fi
}
