#!/usr/bin/env bash
# Shared helpers for the demo scripts; sourced by them, not run on its own.
# The caller's identity, whichever mode the gateway runs in (DEMO_AUTH=oidc|dev, else asked):
#   * OIDC (scripts/up.sh's default): a bearer token of the tenant's machine client at the
#     local IdP (svc-team-a, svc-team-b), from the settings scripts/up.sh wrote to
#     $DATA_DIR/quickstart.env and $DATA_DIR/quickstart-team-b.env;
#   * dev mode (scripts/up.sh --dev, auth_mode=off): the X-Tenant and X-Subject headers.
# Everything human-readable goes to stderr, so that stdout stays free for machine-readable
# output (create_run.sh prints EXPERIMENT_ID=/RUN_ID= there).
GATEWAY_URL="${GATEWAY_URL:-http://localhost:3000}"
GATEWAY_URL="${GATEWAY_URL%/}"
DEMO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA_DIR="${DATA_DIR:-$DEMO_DIR/../.spin/up-data}"

say() { printf '%s\n' "$*" >&2; }
fail() { say "FAIL: $*"; exit 1; }

# ensure_demo_auth: sets DEMO_AUTH to oidc or dev, once. Without credentials an OIDC gateway
# answers 401, a dev-mode one 400 (X-Tenant missing).
ensure_demo_auth() {
  [ -z "${DEMO_AUTH:-}" ] || return 0
  local code
  code="$(curl -s -o /dev/null -w '%{http_code}' --max-time "${DEMO_CURL_TIMEOUT:-30}" \
    "$GATEWAY_URL/api/2.0/mlflow/experiments/search?max_results=1")" || code=000
  case "$code" in
    401) DEMO_AUTH=oidc ;;
    400) DEMO_AUTH=dev ;;
    *) fail "cannot tell the gateway's auth mode: $GATEWAY_URL answered HTTP $code without credentials (set DEMO_AUTH=oidc or dev)" ;;
  esac
  export DEMO_AUTH
}

# ensure_token TENANT: DEMO_TOKENS[TENANT] holds an access token of TENANT's machine client
# (client credentials at the IdP named in its quickstart env file).
declare -A DEMO_TOKENS=()
ensure_token() {
  local tenant="$1" file
  [ -z "${DEMO_TOKENS[$tenant]:-}" ] || return 0
  case "$tenant" in
    team-a) file="$DATA_DIR/quickstart.env" ;;
    *) file="$DATA_DIR/quickstart-$tenant.env" ;;
  esac
  [ -r "$file" ] || fail "the gateway runs in OIDC mode but $file is missing: start it with scripts/up.sh (which writes it), or set DATA_DIR to the one scripts/up.sh used"
  DEMO_TOKENS[$tenant]="$(
    set -a; . "$file"; set +a
    python3 - <<'PY'
import base64, json, os, sys, urllib.parse, urllib.request
issuer = os.environ["MLFLOW_GATEWAY_OIDC_ISSUER"].rstrip("/")
client = os.environ["MLFLOW_GATEWAY_OIDC_CLIENT_ID"]
try:
    with urllib.request.urlopen(issuer + "/.well-known/openid-configuration", timeout=30) as r:
        endpoint = json.load(r)["token_endpoint"]
    basic = base64.b64encode(("%s:%s" % (client, os.environ["MLFLOW_GATEWAY_OIDC_CLIENT_SECRET"])).encode())
    req = urllib.request.Request(endpoint, headers={"Authorization": "Basic " + basic.decode()},
                                 data=urllib.parse.urlencode({"grant_type": "client_credentials"}).encode())
    with urllib.request.urlopen(req, timeout=30) as r:
        print(json.load(r)["access_token"])
except Exception as e:  # names the IdP and the client, never the secret
    sys.exit("FAIL: no token from the IdP %s for %s: %s" % (issuer, client, e))
PY
  )" || fail "could not get a token for $tenant"
}

# call METHOD PATH TENANT [JSON_BODY]
# Sends the request as TENANT (its machine client svc-TENANT, or in dev mode the subject
# demo-TENANT); sets STATUS, BODY and REQUEST_ID and prints them. Exits if the gateway cannot be
# reached at all.
call() {
  local method="$1" path="$2" tenant="$3" body="${4:-}" tmp rc=0 who
  local -a args=(-sS --max-time "${DEMO_CURL_TIMEOUT:-30}" -X "$method")
  ensure_demo_auth
  if [ "$DEMO_AUTH" = oidc ]; then
    who="bearer token of svc-$tenant"
    ensure_token "$tenant"
    args+=(-H "Authorization: Bearer ${DEMO_TOKENS[$tenant]}")
  else
    who="X-Tenant: $tenant, X-Subject: demo-$tenant"
    args+=(-H "X-Tenant: $tenant" -H "X-Subject: demo-$tenant")
  fi
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
  say "  $method $GATEWAY_URL$path  ($who)"
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
