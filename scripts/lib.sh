#!/usr/bin/env bash
# Shared setup for scripts/up.sh, scripts/test.sh and bench: finds or installs every tool the
# project needs. Sourced, not executed.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SPIN_VERSION="4.0.2"
# The MLflow the test command pins (tests/e2e/requirements.txt says the same). MLFLOW_VERSION=x.y.z
# overrides it for scripts/check_versions.sh: ensure_venv then installs that MLflow instead.
MLFLOW_PINNED_VERSION="3.17.2"
MLFLOW_VERSION="${MLFLOW_VERSION:-$MLFLOW_PINNED_VERSION}"
# Python venvs and other downloads live outside the repo (they are ~850 MB).
CACHE_DIR="${MLFLOW_GATEWAY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mlflow-enterprise-gateway}"
WASM="$REPO_ROOT/target/wasm32-wasip2/release/mlflow_enterprise_gateway.wasm"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Spin: $SPIN_BIN, else `spin` on PATH, else the pinned release installed with Spin's official
# installer into the git-ignored .tools/ folder.
find_spin() {
  if [ -n "${SPIN_BIN:-}" ]; then
    [ -x "$SPIN_BIN" ] || die "SPIN_BIN=$SPIN_BIN is not an executable"
    SPIN_BIN="$(cd "$(dirname "$SPIN_BIN")" && pwd)/$(basename "$SPIN_BIN")"
  elif command -v spin >/dev/null 2>&1; then
    SPIN_BIN="$(command -v spin)"
  elif [ -x "$REPO_ROOT/.tools/spin/spin" ]; then
    SPIN_BIN="$REPO_ROOT/.tools/spin/spin"
  else
    log "Spin not found: installing Spin v$SPIN_VERSION into .tools/spin with Spin's official installer"
    mkdir -p "$REPO_ROOT/.tools/spin"
    if ! (cd "$REPO_ROOT/.tools/spin" && curl -fsSL https://spinframework.dev/downloads/install.sh | bash -s -- -v "v$SPIN_VERSION") >&2; then
      die "could not download Spin v$SPIN_VERSION (no internet access?). Install Spin 3.x/4.x and put it on PATH, or set SPIN_BIN=/path/to/spin"
    fi
    SPIN_BIN="$REPO_ROOT/.tools/spin/spin"
    [ -x "$SPIN_BIN" ] || die "Spin installer did not produce $SPIN_BIN"
  fi
  export SPIN_BIN
  log "using $("$SPIN_BIN" --version 2>/dev/null | head -n1) ($SPIN_BIN)"
}

# Spin 3.6.3, the runtime SpinKube's containerd-shim-spin v0.24 embeds (issue 23): $SPIN3_BIN,
# else `spin-3.6.3` beside the Spin found by find_spin, else on PATH, else Spin's official
# installer into the git-ignored .tools/spin3/. Never fatal when it cannot be found or
# installed: SPIN3_BIN stays empty and SPIN3_SKIPPED says why (scripts/test.sh reports it).
SPIN3_VERSION="3.6.3"
find_spin3() {
  SPIN3_BIN="${SPIN3_BIN:-}"
  SPIN3_SKIPPED=""
  if [ -n "$SPIN3_BIN" ]; then
    [ -x "$SPIN3_BIN" ] || die "SPIN3_BIN=$SPIN3_BIN is not an executable"
  elif [ -n "${SPIN_BIN:-}" ] && [ -x "$(dirname "$SPIN_BIN")/spin-$SPIN3_VERSION" ]; then
    SPIN3_BIN="$(dirname "$SPIN_BIN")/spin-$SPIN3_VERSION"
  elif command -v "spin-$SPIN3_VERSION" >/dev/null 2>&1; then
    SPIN3_BIN="$(command -v "spin-$SPIN3_VERSION")"
  elif [ -x "$REPO_ROOT/.tools/spin3/spin" ]; then
    SPIN3_BIN="$REPO_ROOT/.tools/spin3/spin"
  else
    log "Spin $SPIN3_VERSION not found: installing it into .tools/spin3 with Spin's official installer"
    mkdir -p "$REPO_ROOT/.tools/spin3"
    if (cd "$REPO_ROOT/.tools/spin3" && curl -fsSL https://spinframework.dev/downloads/install.sh \
          | bash -s -- -v "v$SPIN3_VERSION") >&2 && [ -x "$REPO_ROOT/.tools/spin3/spin" ]; then
      SPIN3_BIN="$REPO_ROOT/.tools/spin3/spin"
    else
      SPIN3_SKIPPED="Spin $SPIN3_VERSION not found (SPIN3_BIN, spin-$SPIN3_VERSION beside $SPIN_BIN or on PATH, .tools/spin3) and Spin's installer failed (no internet access?)"
      SPIN3_BIN=""
      log "WARNING: $SPIN3_SKIPPED"
      return 0
    fi
  fi
  SPIN3_BIN="$(cd "$(dirname "$SPIN3_BIN")" && pwd)/$(basename "$SPIN3_BIN")"
  local version
  version="$("$SPIN3_BIN" --version 2>/dev/null | head -n1)"
  case "$version" in
    "spin $SPIN3_VERSION "*|"spin $SPIN3_VERSION") ;;
    *) die "$SPIN3_BIN is not Spin $SPIN3_VERSION (it says: ${version:-nothing})" ;;
  esac
  export SPIN3_BIN
  log "Spin 3 stage: using $version ($SPIN3_BIN)"
}

ensure_wasm_target() {
  command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust with rustup (https://rustup.rs)"
  if command -v rustup >/dev/null 2>&1; then
    rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2 || {
      log "adding Rust target wasm32-wasip2"
      rustup target add wasm32-wasip2 >&2
    }
  fi
}

build_component() {
  ensure_wasm_target
  log "building the component (release, wasm32-wasip2)"
  (cd "$REPO_ROOT" && cargo build --locked --target wasm32-wasip2 --release >&2)
  [ -f "$WASM" ] || die "build did not produce $WASM"
}

# A venv with the pinned MLflow and the test tools, keyed by the requirements' hash
# (bench/ passes its own requirements file, which includes the test one). With MLFLOW_VERSION
# other than the pinned one: tests/e2e/requirements.txt with that MLflow instead, written to the
# cache folder (and no other requirements file), with the pins of MLflow's own dependencies
# (cryptography, requests) dropped so that MLflow's constraints choose them (MLflow 3.10.1 needs
# cryptography<47).
ensure_venv() {
  local req="${1:-$REPO_ROOT/tests/e2e/requirements.txt}"
  req="$(cd "$(dirname "$req")" && pwd)/$(basename "$req")"
  if [ "$MLFLOW_VERSION" != "$MLFLOW_PINNED_VERSION" ]; then
    [ "$req" = "$REPO_ROOT/tests/e2e/requirements.txt" ] \
      || die "MLFLOW_VERSION=$MLFLOW_VERSION works with tests/e2e/requirements.txt only, not $req"
    grep -qx "mlflow==$MLFLOW_PINNED_VERSION" "$req" || die "$req does not pin mlflow==$MLFLOW_PINNED_VERSION"
    mkdir -p "$CACHE_DIR"
    local derived="$CACHE_DIR/requirements-mlflow-$MLFLOW_VERSION.txt"
    sed -e "s/^mlflow==$MLFLOW_PINNED_VERSION\$/mlflow==$MLFLOW_VERSION/" \
        -e 's/^\(cryptography\|requests\)==.*/\1/' "$req" >"$derived"
    req="$derived"
  fi
  local key
  if [ "$req" = "$REPO_ROOT/tests/e2e/requirements.txt" ] || [ "$MLFLOW_VERSION" != "$MLFLOW_PINNED_VERSION" ]; then
    key="$(sha256sum "$req" | cut -c1-12)"
  else
    key="$(cat "$req" "$REPO_ROOT/tests/e2e/requirements.txt" | sha256sum | cut -c1-12)"
  fi
  VENV="$CACHE_DIR/venv-mlflow-$MLFLOW_VERSION-$key"
  if [ ! -x "$VENV/bin/python" ] || [ ! -f "$VENV/.complete" ]; then
    command -v python3 >/dev/null 2>&1 || die "python3 not found"
    log "creating Python venv with mlflow==$MLFLOW_VERSION at $VENV (a few minutes, ~850 MB, cached)"
    rm -rf "$VENV"
    mkdir -p "$CACHE_DIR"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip >&2
    (cd "$(dirname "$req")" && "$VENV/bin/pip" install -q -r "$req") >&2 \
      || die "pip install -r $req failed"
    touch "$VENV/.complete"
  fi
  export VENV
}

# redis-server for the shared-KV and KV-failure tests (Debian package).
ensure_redis() {
  command -v redis-server >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    log "installing redis-server (Debian package)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) >&2 \
      || die "could not install redis-server"
  else
    die "redis-server is required for the key-value failure tests: install it (apt-get install redis-server)"
  fi
}

# Headless Chromium (Debian package) and playwright-core (npm, cached outside the repo) for the
# real-browser UI test.
PLAYWRIGHT_CORE_VERSION="1.65.1"
ensure_ui_tools() {
  if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
      log "installing chromium (Debian package) for the UI test"
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >&2 \
        || die "could not install chromium"
    else
      die "the UI test needs /usr/bin/chromium: install it (apt-get install chromium)"
    fi
  fi
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 \
    || die "the UI test needs Node.js and npm"
  local dir="$CACHE_DIR/ui-node-$PLAYWRIGHT_CORE_VERSION"
  if [ ! -f "$dir/node_modules/playwright-core/package.json" ]; then
    log "installing playwright-core@$PLAYWRIGHT_CORE_VERSION (npm) into $dir"
    mkdir -p "$dir"
    (cd "$dir" && npm install --silent --no-audit --no-fund "playwright-core@$PLAYWRIGHT_CORE_VERSION") >&2 \
      || die "could not install playwright-core"
  fi
  export UI_NODE_PATH="$dir/node_modules"
}

# The OpenID-certified `oidc-provider` (npm, cached outside the repo) as the test IdP for
# machines and long runs (tests/idp/oidc_provider.mjs). 9.x runs on Node >= 20.19.
OIDC_PROVIDER_VERSION="9.13.3"
ensure_idp_tools() {
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 \
    || die "the IdP tests need Node.js (>= 20.19) and npm"
  local dir="$CACHE_DIR/idp-node-$OIDC_PROVIDER_VERSION"
  if [ ! -f "$dir/node_modules/oidc-provider/package.json" ]; then
    log "installing oidc-provider@$OIDC_PROVIDER_VERSION (npm) into $dir"
    mkdir -p "$dir"
    (cd "$dir" && npm install --silent --no-audit --no-fund "oidc-provider@$OIDC_PROVIDER_VERSION") >&2 \
      || die "could not install oidc-provider"
  fi
  export IDP_NODE_PATH="$dir/node_modules"
}

# The project's MLflow auth plugin (clients/python) into the venv, as a user installs it; its
# dependencies (authlib) come from PyPI the first time.
ensure_client_plugin() {
  "$VENV/bin/pip" install -q --disable-pip-version-check "$REPO_ROOT/clients/python" >&2 \
    || die "pip install ./clients/python failed"
}

# Every SPIN_VARIABLE_* in the environment must name a variable spin.toml declares: Spin ignores
# the others silently, so a setting from before `settings` (issue 32: each tuning setting was a
# variable of its own) would be lost without a word. Names that are settings now get the line to
# write instead.
check_spin_variables() {
  local declared settings name var
  declared="$(sed -n '/^\[variables\]/,/^\[/{s/^\([a-z_][a-z0-9_]*\) *=.*/\1/p}' "$REPO_ROOT/spin.toml")"
  settings="$(sed -n '/BEGIN SETTINGS/,/END SETTINGS/{s/^| `\([a-z_0-9]*\)` |.*/\1/p}' "$REPO_ROOT/docs/configuration.md")"
  while IFS= read -r var; do
    [ -n "$var" ] || continue
    name="$(printf '%s' "${var#SPIN_VARIABLE_}" | tr '[:upper:]' '[:lower:]')"
    grep -qx "$name" <<<"$declared" && continue
    if grep -qx "$name" <<<"$settings"; then
      die "$var: \`$name\` is a line of the variable \`settings\` now, not a variable of its own (Spin would ignore $var): set SPIN_VARIABLE_SETTINGS='$name = <value>' (docs/configuration.md)"
    fi
    die "$var names no variable of the gateway (Spin would ignore it); the variables are: $(tr '\n' ' ' <<<"$declared")"
  done < <(env | sed -n 's/^\(SPIN_VARIABLE_[A-Za-z0-9_]*\)=.*/\1/p')
}
