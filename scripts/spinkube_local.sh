#!/usr/bin/env bash
# The gateway on SpinKube's own runtime without Kubernetes (issue 33): containerd +
# containerd-shim-spin v0.24.0 (Spin 3.6.3 inside), the app as the OCI artifact `spin registry
# push` makes, pulled from a local registry, the runtime config and SPIN_VARIABLE_* environment
# the spin-operator gives a SpinApp's pods. Not part of scripts/test.sh. Notes and measurements:
# docs/spinkube-local.md.
#
#   scripts/spinkube_local.sh [all]     deps, build, check, then slice (the default); the
#                                       component is $GATEWAY_WASM, else the release build
#                                       (built if missing)
#   scripts/spinkube_local.sh slice [PYTEST ARGS...]
#                                       the e2e slice (`pytest -m spin_slice`) with every gateway
#                                       under the shim (E2E_RUNTIME=shim), on Redis (E2E_KV,
#                                       default redis), in E2E_ISOLATION (default workspace)
#   scripts/spinkube_local.sh deps      Debian packages (runc, docker-registry, Go 1.19, cmake, ...)
#   scripts/spinkube_local.sh build     containerd v1.6.37 and containerd-shim-spin v0.24.0 from
#                                       source, cached (first run: about 35 min on 2 idle cores)
#   scripts/spinkube_local.sh check     can this machine run containers? (runc + a busybox image)
#   scripts/spinkube_local.sh image [WASM]
#                                       `spin registry push` (Spin 3.6.3) of spin.toml + WASM to a
#                                       local registry, `ctr image pull` into containerd; prints
#                                       the image reference
#   scripts/spinkube_local.sh gateway-run NAME PORT ENV_FILE RUNTIME_CONFIG [MOUNT_DIR...]
#                                       one gateway container on 127.0.0.1:PORT (host network),
#                                       in the foreground like `spin up`: variables from ENV_FILE
#                                       (SPIN_VARIABLE_*=..., one a line), RUNTIME_CONFIG mounted
#                                       at /runtime-config.toml, the gateway's output on stdout,
#                                       SIGTERM stops it; each MOUNT_DIR bound at the same path
#                                       (for a SQLite store path in the runtime config); the image
#                                       is $SPINKUBE_IMAGE, else the last `image`
#   scripts/spinkube_local.sh gateway-stop NAME   removes a container left behind
#   scripts/spinkube_local.sh smoke     MLflow + password-protected Redis + one gateway under
#                                       the shim; creates an experiment with dev-mode headers
#   scripts/spinkube_local.sh versions  containerd's and the shim's versions
#   scripts/spinkube_local.sh down      stops every gateway container, containerd and the registry
#
# `all` and `slice` stop containerd and the registry at the end when they started them; the
# other commands leave them running until `down`.
#
# Exit status 77 means SKIP: the machine lacks something (the message says what was tried).
# Caches live outside the repo: $CACHE_DIR/spinkube (~/.cache/mlflow-enterprise-gateway/spinkube).
# Sources come from GitHub mirrors in $SPINKUBE_MIRRORS (default /work/.mirror, laid out as
# <owner>+<name>/repo, bare) when present, else from a bare clone of github.com into the cache.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SELF="$REPO_ROOT/scripts/spinkube_local.sh"

SK="$CACHE_DIR/spinkube"
MIRRORS="${SPINKUBE_MIRRORS:-/work/.mirror}"
SHIM_VERSION="v0.24.0"          # deploy/spinkube, docs/kubernetes.md: Spin 3.6.3 inside
# containerd: Debian 12's 1.6.20 cannot unpack an image whose layers are not file-system layers
# ("mismatched image rootfs and manifest layers"), which every `spin registry push` artifact is.
# containerd 1.6.25+ / 1.7.7+ can (containerd PR 9142, backported as 9150). v1.6.37 is the last
# 1.6 release whose go.mod accepts Debian 12's Go 1.19; its dependencies are vendored.
CONTAINERD_VERSION="v1.6.37"
NS="spinkube-local"             # containerd namespace of everything this script creates
BIN="$SK/bin"
CTRD="$SK/containerd"
REG="$SK/registry"
SKIP_STATUS=77

STARTED_HERE=""                 # set when this invocation started containerd or the registry

skip() { printf 'SKIP: %s\n' "$*" >&2; exit "$SKIP_STATUS"; }
ctr_() { "$BIN/ctr" -a "$CTRD/containerd.sock" -n "$NS" "$@"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# wait_for DESCRIPTION TIMEOUT_SECONDS COMMAND...: polls COMMAND until it succeeds or the
# deadline passes (no fixed sleeps as synchronisation).
wait_for() {
  local what="$1" timeout="$2"; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || { log "timed out after ${timeout}s waiting for $what"; return 1; }
    sleep 0.2
  done
}

# ---------------------------------------------------------------------------------------------
# deps

DEB_PACKAGES=(runc busybox-static docker-registry golang-1.19-go cmake protobuf-compiler
              libseccomp-dev pkg-config libssl-dev perl make gcc g++ git curl)
cmd_deps() {
  local missing=()
  local p
  for p in "${DEB_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    skip "missing Debian packages ${missing[*]} and no root apt-get to install them"
  fi
  log "installing Debian packages: ${missing[*]}"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
     "${missing[@]}") >&2 || skip "apt-get install ${missing[*]} failed"
}

# ---------------------------------------------------------------------------------------------
# sources

# repo_dir OWNER/NAME: a bare git repository of github.com/OWNER/NAME (mirror or cached clone).
repo_dir() {
  local slug="$1" m="$MIRRORS/${1/\//+}/repo" c="$SK/git/${1/\//+}.git"
  if [ -d "$m" ]; then echo "$m"; return; fi
  if [ ! -d "$c" ]; then
    log "no mirror $m: cloning https://github.com/$slug"
    mkdir -p "$SK/git"
    git clone -q --bare "https://github.com/$slug" "$c.tmp" >&2 && mv "$c.tmp" "$c" \
      || { rm -rf "$c.tmp"; return 1; }
  fi
  echo "$c"
}

# extract OWNER/NAME REV DEST [PATH...]: the tree of REV (or PATHs of it) into DEST, once.
extract() {
  local slug="$1" rev="$2" dest="$3"; shift 3
  [ -f "$dest/.extracted" ] && return 0
  local repo
  repo="$(repo_dir "$slug")" || skip "source of $slug not available (no mirror in $MIRRORS, git clone failed)"
  rm -rf "$dest"; mkdir -p "$dest"
  git -C "$repo" archive "$rev" "$@" | tar -x -C "$dest" \
    || skip "$slug at $rev is not complete in $repo (git archive failed)"
  touch "$dest/.extracted"
}

# ---------------------------------------------------------------------------------------------
# build

build_containerd() {
  if [ -x "$BIN/containerd" ] && "$BIN/containerd" --version 2>/dev/null | grep -q " $CONTAINERD_VERSION "; then
    return 0
  fi
  local go=/usr/lib/go-1.19/bin/go
  [ -x "$go" ] || go="$(command -v go || true)"
  [ -n "$go" ] || skip "no Go toolchain to build containerd $CONTAINERD_VERSION (apt-get install golang-1.19-go)"
  local src="$SK/src/containerd-$CONTAINERD_VERSION"
  extract containerd/containerd "$CONTAINERD_VERSION" "$src"
  log "building containerd $CONTAINERD_VERSION, ctr, containerd-shim-runc-v2 (Go, vendored modules)"
  mkdir -p "$BIN"
  local start=$SECONDS
  (cd "$src" && GOFLAGS=-mod=vendor GOTOOLCHAIN=local GOPROXY=off GOPATH="$SK/gopath" GOCACHE="$SK/gocache" \
     nice -n 19 "$go" build -p 1 -tags "no_btrfs no_devmapper no_zfs no_aufs" \
       -ldflags "-X github.com/containerd/containerd/version.Version=$CONTAINERD_VERSION -X github.com/containerd/containerd/version.Revision=source" \
       -o "$BIN/" ./cmd/containerd ./cmd/ctr ./cmd/containerd-shim-runc-v2) >"$SK/containerd-build.log" 2>&1 \
    || die "containerd build failed: $(tail -n 30 "$SK/containerd-build.log")"
  log "containerd built in $((SECONDS - start)) s"
}

# The git dependencies of the shim's Cargo.lock, each extracted at its locked commit from a
# mirror, become [patch] path entries in a cargo --config file: crates.io stays the source of
# every other crate (same versions as the lock; checked after the build). Two exceptions:
# * azure-sdk-for-rust: only the three crates used (the mirror lacks blobs of generated code
#   elsewhere in that commit);
# * spin-trigger-sqs v0.12.2 (commit fc7e1fc1) is not in the mirror: rebuilt from v0.12.1
#   (3314a88f) with the change every trigger plugin made for that release (spin-trigger-mqtt
#   v0.7.1 -> v0.7.2 changed only Cargo.toml): Spin tag v3.6.2 -> v3.6.3, wasmtime 41.0.4 ->
#   42.0.2, version 0.12.2. The gateway uses only the HTTP trigger.
GIT_DEP_REPOS=(spinframework/spin spinframework/spin-trigger-mqtt spinframework/spin-trigger-command
               Azure/azure-sdk-for-rust fermyon/conformance-tests fermyon/dkregistry-rs
               fermyon/oci-distribution vdice/rust-jwt)
write_patch_config() {
  local lock="$1" out="$2" sqs="$3" repos=() slug dir
  for slug in "${GIT_DEP_REPOS[@]}"; do
    dir="$(repo_dir "$slug")" || skip "source of $slug not available (no mirror in $MIRRORS, git clone failed)"
    repos+=("$slug=$dir")
  done
  python3 - "$lock" "$out" "$sqs" "$SK/src/git" "${repos[@]}" <<'PY' || { [ $? = 77 ] && exit 77; die "patch config failed"; }
import pathlib, re, shutil, subprocess, sys, tomllib
lock_path, out, sqs_dir, root_dir, *repo_args = sys.argv[1:]
repos = dict(a.split("=", 1) for a in repo_args)
by_url = {f"https://github.com/{slug.lower()}": slug for slug in repos}
# Only these paths of a repository are extracted (the mirror of azure-sdk-for-rust lacks
# blobs of generated code elsewhere in the locked commit).
PATHS = {"Azure/azure-sdk-for-rust": ["Cargo.toml", "sdk/core", "sdk/identity",
                                      "sdk/security_keyvault", "eng/test/mock_transport"]}
lock = tomllib.load(open(lock_path, "rb"))
patches = {}
for pkg in lock["package"]:
    src = pkg.get("source", "")
    if not src.startswith("git+"):
        continue
    url, commit = src[4:].split("#")
    base = url.split("?")[0]
    if pkg["name"] == "trigger-sqs":
        root = pathlib.Path(sqs_dir)
    else:
        slug = by_url[re.sub(r"\.git$", "", base.lower())]
        root = pathlib.Path(root_dir) / f"{slug.replace('/', '+')}-{commit[:12]}"
        if not (root / ".extracted").exists():
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(parents=True)
            arch = subprocess.run(["git", "-C", repos[slug], "archive", commit, *PATHS.get(slug, [])],
                                  capture_output=True)
            if arch.returncode != 0:
                print(f"SKIP: {slug} at {commit} is not complete in {repos[slug]}: "
                      f"{arch.stderr.decode().strip()}", file=sys.stderr)
                sys.exit(77)
            subprocess.run(["tar", "-x", "-C", str(root)], input=arch.stdout, check=True)
            (root / ".extracted").touch()
    for toml in sorted(root.rglob("Cargo.toml")):
        try:
            if tomllib.load(open(toml, "rb")).get("package", {}).get("name") == pkg["name"]:
                patches.setdefault(base, {})[pkg["name"]] = str(toml.parent)
                break
        except tomllib.TOMLDecodeError:
            pass
    else:
        sys.exit(f"crate {pkg['name']} not found in {root}")
with open(out, "w") as f:
    for base, crates in sorted(patches.items()):
        f.write(f'[patch."{base}"]\n')
        f.writelines(f'{n} = {{ path = "{p}" }}\n' for n, p in sorted(crates.items()))
        f.write("\n")
print(f"{sum(map(len, patches.values()))} git crates patched to local copies", file=sys.stderr)
PY
}

# The same (name, version) pairs as the upstream lock: the build used the versions the shim's
# release pins, only their sources (git -> local path) differ.
same_versions() {
  python3 - "$1" "$2" <<'PY'
import sys, tomllib
a, b = ({(p["name"], p["version"]) for p in tomllib.load(open(f, "rb"))["package"]} for f in sys.argv[1:3])
if a != b:
    sys.exit(f"Cargo.lock drifted: only upstream {sorted(a - b)}, only ours {sorted(b - a)}")
PY
}

build_shim() {
  local out="$BIN/containerd-shim-spin-v2"
  if [ -x "$out" ] && [ "$(cat "$SK/shim.stamp" 2>/dev/null)" = "$SHIM_VERSION" ]; then return 0; fi
  command -v cargo >/dev/null 2>&1 || skip "cargo not found: Rust is needed to build containerd-shim-spin"
  local src="$SK/src/containerd-shim-spin-$SHIM_VERSION" sqs="$SK/src/trigger-sqs-v0.12.2"
  extract spinframework/containerd-shim-spin "$SHIM_VERSION" "$src"
  if [ ! -f "$sqs/.rebuilt" ]; then
    extract spinframework/spin-trigger-sqs 3314a88f9a8210423f61f9f389758731f444ae5c "$sqs"
    sed -i -e 's/^version = "0.12.1"/version = "0.12.2"/' -e 's/tag = "v3.6.2"/tag = "v3.6.3"/g' \
           -e 's/^wasmtime = { version = "41.0.4" }/wasmtime = { version = "42.0.2" }/' "$sqs/Cargo.toml"
    grep -q 'tag = "v3.6.3"' "$sqs/Cargo.toml" && grep -q '"42.0.2"' "$sqs/Cargo.toml" \
      || die "could not rewrite $sqs/Cargo.toml"
    touch "$sqs/.rebuilt"
  fi
  # The release's own lock (cargo rewrites Cargo.lock: the git crates become path crates).
  git -C "$(repo_dir spinframework/containerd-shim-spin)" show "$SHIM_VERSION:Cargo.lock" >"$src/Cargo.lock.upstream"
  write_patch_config "$src/Cargo.lock.upstream" "$SK/patch.toml" "$sqs"
  # rust-toolchain.toml pins 1.91.0; with no network for rustup, the installed default is used.
  local tc
  if rustup toolchain list 2>/dev/null | grep -q '^1\.91\.0'; then tc=1.91.0
  else tc="$(rustup default 2>/dev/null | cut -d' ' -f1)"; fi
  log "building containerd-shim-spin $SHIM_VERSION with Rust toolchain ${tc:-default} (nice 19, 2 jobs; about 35 min on 2 idle cores the first time)"
  local start=$SECONDS
  (cd "$src" && RUSTUP_TOOLCHAIN="$tc" CARGO_TARGET_DIR="$SK/target" CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}" \
     nice -n 19 cargo build --release -p containerd-shim-spin-v2 --config "$SK/patch.toml") >"$SK/shim-build.log" 2>&1 \
    || die "containerd-shim-spin build failed: $(tail -n 30 "$SK/shim-build.log")"
  log "containerd-shim-spin built in $((SECONDS - start)) s"
  same_versions "$src/Cargo.lock.upstream" "$src/Cargo.lock" || die "dependency versions differ from the release's Cargo.lock"
  mkdir -p "$BIN"
  cp "$SK/target/release/containerd-shim-spin-v2" "$out.tmp" && mv "$out.tmp" "$out"
  echo "$SHIM_VERSION" >"$SK/shim.stamp"
}

cmd_build() {
  cmd_deps
  build_containerd
  build_shim
  log "built: $("$BIN/containerd" --version | cut -d' ' -f3), containerd-shim-spin $("$BIN/containerd-shim-spin-v2" -v 2>&1 | sed -n 's/.*Version: //p')"
}

# ---------------------------------------------------------------------------------------------
# containerd and the registry

start_containerd() {
  [ -x "$BIN/containerd" ] || die "containerd not built: run $0 build"
  if pid_alive "$CTRD/containerd.pid" && [ -S "$CTRD/containerd.sock" ]; then return 0; fi
  mkdir -p "$CTRD/root" "$CTRD/state"
  # Own root, state and sockets; the CRI plugin off (no Kubernetes). containerd finds the
  # runtime io.containerd.spin.v2 as containerd-shim-spin-v2 on its PATH ($BIN first).
  cat >"$CTRD/config.toml" <<EOF
version = 2
root = "$CTRD/root"
state = "$CTRD/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$CTRD/containerd.sock"
[ttrpc]
  address = "$CTRD/containerd.sock.ttrpc"
EOF
  rm -f "$CTRD/containerd.sock"
  log "starting containerd $CONTAINERD_VERSION (log: $CTRD/containerd.log)"
  PATH="$BIN:$PATH" nohup "$BIN/containerd" --config "$CTRD/config.toml" >"$CTRD/containerd.log" 2>&1 &
  echo $! >"$CTRD/containerd.pid"
  STARTED_HERE=1
  wait_for "containerd's socket" 30 ctr_ version \
    || skip "containerd did not start: $(tail -n 5 "$CTRD/containerd.log")"
}

start_registry() {
  command -v docker-registry >/dev/null 2>&1 || skip "docker-registry (Debian package) not installed"
  if pid_alive "$REG/registry.pid" && curl -sf "http://127.0.0.1:$(cat "$REG/port")/v2/" >/dev/null; then
    return 0
  fi
  mkdir -p "$REG/data"
  local port; port="$(free_port)"
  cat >"$REG/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $REG/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
EOF
  nohup docker-registry serve "$REG/config.yml" >"$REG/registry.log" 2>&1 &
  echo $! >"$REG/registry.pid"
  STARTED_HERE=1
  echo "$port" >"$REG/port"
  wait_for "the registry on 127.0.0.1:$port" 30 curl -sf "http://127.0.0.1:$port/v2/" \
    || die "docker-registry did not start: $(tail -n 5 "$REG/registry.log")"
  log "local OCI registry on 127.0.0.1:$port (docker-registry)"
}

# ---------------------------------------------------------------------------------------------
# check: can this machine run a container at all?

cmd_check() {
  cmd_deps
  build_containerd
  start_containerd
  local dir="$SK/busybox" ref="docker.io/library/busybox-local:1.35"
  if ! ctr_ image ls -q | grep -qx "$ref"; then
    rm -rf "$dir"; mkdir -p "$dir/rootfs/bin"
    cp /bin/busybox "$dir/rootfs/bin/busybox"
    local c
    for c in sh echo cat id; do ln -s busybox "$dir/rootfs/bin/$c"; done
    tar --numeric-owner --owner=0 --group=0 -C "$dir/rootfs" -cf "$dir/layer.tar" bin
    # A one-layer OCI image layout, written by hand (no registry, no Docker).
    python3 - "$dir" "$ref" <<'PY'
import hashlib, io, json, sys, tarfile
d, ref = sys.argv[1:3]
layer = open(f"{d}/layer.tar", "rb").read()
blobs = {}
def desc(mt, data, **kw):
    dg = "sha256:" + hashlib.sha256(data).hexdigest(); blobs[dg] = data
    return {"mediaType": mt, "digest": dg, "size": len(data), **kw}
config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Env": ["PATH=/bin"]},
                     "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]}}).encode()
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": desc("application/vnd.oci.image.config.v1+json", config),
                       "layers": [desc("application/vnd.oci.image.layer.v1.tar", layer)]}).encode()
index = {"schemaVersion": 2, "manifests": [desc("application/vnd.oci.image.manifest.v1+json", manifest,
         annotations={"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": ref})]}
with tarfile.open(f"{d}/oci.tar", "w") as t:
    def put(name, data):
        i = tarfile.TarInfo(name); i.size = len(data); t.addfile(i, io.BytesIO(data))
    put("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    for dg, data in blobs.items():
        put("blobs/sha256/" + dg.split(":")[1], data)
    put("index.json", json.dumps(index).encode())
PY
    ctr_ image import "$dir/oci.tar" >&2 || skip "ctr image import of a hand-made OCI layout failed"
  fi
  ctr_ task kill -s SIGKILL spinkube-check >/dev/null 2>&1 || true
  ctr_ container rm spinkube-check >/dev/null 2>&1 || true
  local out
  if ! out="$(ctr_ run --rm --net-host "$ref" spinkube-check /bin/sh -c 'echo container-ok; id -u; cat /proc/self/cgroup | head -n 1' 2>&1)"; then
    skip "runc cannot run a container here: $out"
  fi
  case "$out" in *container-ok*) ;; *) skip "the busybox container ran but printed: $out" ;; esac
  log "containers run here: runc $(runc --version | head -n1 | cut -d' ' -f3), snapshotter overlayfs, host network; $(echo "$out" | tr '\n' ' ')"
}

# ---------------------------------------------------------------------------------------------
# image: the gateway as `spin registry push` packages it, pulled by containerd

IMAGE_NAME="mlflow-enterprise-gateway"
image_ref() { echo "127.0.0.1:$(cat "$REG/port")/$IMAGE_NAME:$1"; }

cmd_image() {
  local wasm="${1:-$WASM}"
  [ -f "$wasm" ] || die "no component at $wasm: build it (cargo build --target wasm32-wasip2 --release) or pass a .wasm"
  find_spin3
  [ -n "$SPIN3_BIN" ] || skip "Spin 3.6.3 is needed for \`spin registry push\`: $SPIN3_SKIPPED"
  start_containerd
  start_registry
  # spin.toml names the component's source relative to itself: stage both in the cache.
  local app="$SK/app"
  rm -rf "$app"; mkdir -p "$app/target/wasm32-wasip2/release"
  cp "$REPO_ROOT/spin.toml" "$app/spin.toml"
  cp "$wasm" "$app/target/wasm32-wasip2/release/mlflow_enterprise_gateway.wasm"
  local tag; tag="$(cat "$app/spin.toml" "$wasm" | sha256sum | cut -c1-12)"
  local ref; ref="$(image_ref "$tag")"
  log "spin registry push (Spin 3.6.3) -> $ref"
  (cd "$app" && HOME="$SK/spin-home" "$SPIN3_BIN" registry push --insecure "$ref" -f spin.toml) >&2 \
    || die "spin registry push failed"
  # containerd warns about each layer of a type it does not know ("reference for unknown
  # type"): expected, the shim reads those layers.
  ctr_ image pull --plain-http "$ref" >"$SK/pull.log" 2>&1 \
    || die "ctr image pull $ref failed (containerd $CONTAINERD_VERSION): $(tail -n 5 "$SK/pull.log")"
  echo "$ref" >"$SK/image.ref"
  echo "$ref"
}

# ---------------------------------------------------------------------------------------------
# one gateway container under the shim

# Runs in the foreground like `spin up`: the gateway's stdout and stderr (Spin's lines, the
# audit lines) are this command's; SIGTERM or SIGINT to it reaches the gateway (ctr forwards
# signals to the task), and the container is removed when it exits.
# The image is $SPINKUBE_IMAGE if set (the e2e harness passes its session's), else the last
# one `image` pulled.
cmd_gateway_run() {
  [ $# -ge 4 ] || die "usage: $0 gateway-run NAME PORT ENV_FILE RUNTIME_CONFIG [MOUNT_DIR...]"
  local name="$1" port="$2" env_file="$3" rc="$4"
  shift 4
  [ -x "$BIN/containerd-shim-spin-v2" ] || die "the shim is not built: run $0 build"
  [ -n "${SPINKUBE_IMAGE:-}" ] || [ -f "$SK/image.ref" ] || die "no image: run $0 image"
  start_containerd
  local ref="${SPINKUBE_IMAGE:-$(cat "$SK/image.ref")}"
  local mounts=(--mount "type=bind,src=$(realpath "$rc"),dst=/runtime-config.toml,options=rbind:ro")
  local dir
  for dir in "$@"; do
    mounts+=(--mount "type=bind,src=$(realpath "$dir"),dst=$(realpath "$dir"),options=rbind:rw")
  done
  cmd_gateway_stop "$name"   # a leftover of the same name
  # As spin-operator's pod spec: SPIN_VARIABLE_* and SPIN_HTTP_LISTEN_ADDR in the environment,
  # the runtime config at /runtime-config.toml, the command "/" (the image has no entrypoint;
  # runwasi refuses a process with no argument). Host network, so the address is 127.0.0.1.
  exec "$BIN/ctr" -a "$CTRD/containerd.sock" -n "$NS" run --rm --net-host \
    --runtime io.containerd.spin.v2 \
    --env "SPIN_HTTP_LISTEN_ADDR=127.0.0.1:$port" --env-file "$env_file" \
    "${mounts[@]}" "$ref" "$name" /
}

# Removes a gateway container left behind (its ctr run killed with SIGKILL, say).
cmd_gateway_stop() {
  local name="$1"
  ctr_ container info "$name" >/dev/null 2>&1 || return 0
  ctr_ task kill -s SIGKILL "$name" >/dev/null 2>&1 || true
  wait_for "$name's task to be removed" 30 bash -c \
    "'$BIN/ctr' -a '$CTRD/containerd.sock' -n '$NS' task rm '$name' 2>&1 | grep -q 'not found' \
     || ! '$BIN/ctr' -a '$CTRD/containerd.sock' -n '$NS' task ls -q | grep -qx '$name'" || true
  ctr_ container rm "$name" >/dev/null 2>&1 || true
}

# ---------------------------------------------------------------------------------------------
# smoke: a request through the shim-run gateway to a real MLflow, the store on Redis

SMOKE_PIDS=()
smoke_cleanup() {
  local p
  for p in "${SMOKE_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${SMOKE_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  cmd_gateway_stop spinkube-smoke || true
}

cmd_smoke() {
  ensure_venv
  ensure_redis
  [ -f "$SK/image.ref" ] || cmd_image
  local dir="$SK/smoke"
  rm -rf "$dir"; mkdir -p "$dir/artifacts"
  trap smoke_cleanup EXIT
  local mport rport gport pass
  mport="$(free_port)"; rport="$(free_port)"; gport="$(free_port)"
  pass="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
  redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" \
    --requirepass "$pass" >"$dir/redis.log" 2>&1 &
  SMOKE_PIDS+=($!)
  "$VENV/bin/mlflow" server --host 127.0.0.1 --port "$mport" --backend-store-uri "sqlite:///$dir/mlflow.db" \
    --artifacts-destination "$dir/artifacts" --workers 1 --enable-workspaces >"$dir/mlflow.log" 2>&1 &
  SMOKE_PIDS+=($!)
  wait_for "redis-server" 30 redis-cli -p "$rport" --no-auth-warning -a "$pass" ping
  wait_for "MLflow /health" 180 curl -sf "http://127.0.0.1:$mport/health"
  # spin-operator's rendering of deploy/spinkube/spinapp.yaml runtimeConfig.keyValueStores
  # (its runtimeconfig package and controller test): the env variables provider, then the store.
  cat >"$dir/runtime-config.toml" <<EOF
[[config_provider]]
type = 'env'
prefix = 'SPIN_VARIABLE_'

[key_value_store]
[key_value_store.default]
type = 'redis'
url = 'redis://:$pass@127.0.0.1:$rport'
EOF
  cat >"$dir/gateway.env" <<EOF
SPIN_VARIABLE_AUTH_MODE=off
SPIN_VARIABLE_UPSTREAM_ORIGIN=http://127.0.0.1:$mport
SPIN_VARIABLE_TENANT_ISOLATION=workspace
SPIN_VARIABLE_SETTINGS=workspace_provisioning = auto
EOF
  local start=$SECONDS
  "$SELF" gateway-run spinkube-smoke "$gport" "$dir/gateway.env" "$dir/runtime-config.toml" >"$dir/gateway.log" 2>&1 &
  local gpid=$!
  SMOKE_PIDS=("$gpid" "${SMOKE_PIDS[@]}")
  wait_for "the gateway's /healthz under the shim" 120 curl -sf "http://127.0.0.1:$gport/healthz" \
    || die "the gateway did not answer /healthz; its log: $(tail -n 20 "$dir/gateway.log"); containerd: $(tail -n 10 "$CTRD/containerd.log")"
  log "gateway under containerd-shim-spin answers /healthz after $((SECONDS - start)) s"
  local name="spinkube-smoke-$RANDOM$RANDOM" body id
  body="$(curl -sf -X POST "http://127.0.0.1:$gport/api/2.0/mlflow/experiments/create" \
          -H 'X-Tenant: team-a' -H 'X-Subject: alice' -H 'Content-Type: application/json' \
          -d "{\"name\": \"$name\"}")" || die "experiments/create through the gateway failed"
  id="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["experiment_id"])' "$body")"
  # MLflow itself, asked directly in the tenant's workspace, has the experiment.
  curl -sf "http://127.0.0.1:$mport/api/2.0/mlflow/experiments/get?experiment_id=$id" \
       -H 'X-MLflow-Workspace: team-a' | grep -q "\"$name\"" \
    || die "MLflow has no experiment $id named $name in workspace team-a"
  # Another tenant is refused by the gateway; the store the runtime config names was used.
  local other
  other="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$gport/api/2.0/mlflow/experiments/get?experiment_id=$id" \
           -H 'X-Tenant: team-b' -H 'X-Subject: bob')"
  [ "$other" != 200 ] || die "team-b could read team-a's experiment"
  local keys; keys="$(redis-cli -p "$rport" --no-auth-warning -a "$pass" dbsize)"
  [ "$keys" -gt 0 ] || die "nothing reached the Redis store named in /runtime-config.toml"
  grep -q "Redis at 127.0.0.1:$rport" "$dir/gateway.log" \
    || die "Spin did not report the Redis store of /runtime-config.toml: $(head -n 5 "$dir/gateway.log")"
  grep -q "\"tenant\":\"team-a\".*\"path\":\"/api/2.0/mlflow/experiments/create\"" "$dir/gateway.log" \
    || die "no audit line for the create in the gateway's output"
  # SIGTERM to `gateway-run` stops the gateway and removes its container.
  kill -TERM "$gpid"
  wait_for "the gateway to stop on SIGTERM" 30 bash -c "! kill -0 $gpid"
  ! ctr_ container info spinkube-smoke >/dev/null 2>&1 || die "the container outlived gateway-run"
  log "OK: experiment $id ($name) created through the shim-run gateway in workspace team-a; team-b got $other; $keys keys in Redis"
}

# ---------------------------------------------------------------------------------------------
# slice: the e2e slice with every gateway under the shim

cmd_versions() {
  [ -x "$BIN/containerd" ] && [ -x "$BIN/containerd-shim-spin-v2" ] || die "not built: run $0 build"
  local spin
  spin="$(sed -n '/^name = "spin-trigger-http"$/{n;s/^version = "\(.*\)"$/\1/p;}' \
          "$SK/src/containerd-shim-spin-$SHIM_VERSION/Cargo.lock.upstream" 2>/dev/null)"
  echo "containerd $("$BIN/containerd" --version | cut -d' ' -f3), containerd-shim-spin" \
       "v$("$BIN/containerd-shim-spin-v2" -v 2>&1 | sed -n 's/.*Version: //p') (Spin ${spin:-?} inside)"
}

# slice [PYTEST ARGS...]: `pytest -m spin_slice` (tests/e2e/harness/selection.py SPIN_SLICE) with
# every gateway a test starts run by containerd-shim-spin from the image of $WASM
# (E2E_RUNTIME=shim: tests/e2e/harness/shim.py). The key-value store of the gateways that do not
# bring their own: E2E_KV, default redis (the store deploy/spinkube/spinapp.yaml configures; a
# database per gateway); isolation E2E_ISOLATION, default workspace. PYTEST ARGS replace the
# default selection `tests/e2e` (e.g. tests/e2e/test_oidc.py -k rotation).
cmd_slice() {
  [ -f "$WASM" ] || die "no component at $WASM"
  cmd_deps
  build_containerd
  build_shim
  ensure_venv
  ensure_redis
  ensure_idp_tools
  # Here, not in cmd_image's subshell, so that the EXIT trap knows whether it started them.
  start_containerd
  start_registry
  local ref; ref="$(cmd_image "$WASM")"
  local args=("$@")
  [ ${#args[@]} -gt 0 ] || args=(tests/e2e)
  local kv="${E2E_KV:-redis}" iso="${E2E_ISOLATION:-workspace}" start=$SECONDS rc=0
  log "the slice under $(cmd_versions), image $ref, E2E_KV=$kv, E2E_ISOLATION=$iso"
  (cd "$REPO_ROOT" && E2E_RUNTIME=shim E2E_SHIM_IMAGE="$ref" GATEWAY_WASM="$WASM" E2E_KV="$kv" \
     E2E_ISOLATION="$iso" "$VENV/bin/python" -m pytest -ra -p no:cacheprovider -m spin_slice "${args[@]}") \
    || rc=$?
  log "the slice under containerd-shim-spin (E2E_KV=$kv, E2E_ISOLATION=$iso): exit $rc after $((SECONDS - start)) s"
  return "$rc"
}

# On exit: what this invocation started (containerd, the registry) is stopped again.
down_if_started() { if [ -n "$STARTED_HERE" ]; then cmd_down; fi; }

# ---------------------------------------------------------------------------------------------

cmd_down() {
  if pid_alive "$CTRD/containerd.pid"; then
    local c
    for c in $(ctr_ task ls -q 2>/dev/null); do cmd_gateway_stop "$c"; done
    for c in $(ctr_ container ls -q 2>/dev/null); do ctr_ container rm "$c" >/dev/null 2>&1 || true; done
    kill "$(cat "$CTRD/containerd.pid")"
    wait_for "containerd to exit" 30 bash -c "! kill -0 $(cat "$CTRD/containerd.pid")" || true
  fi
  if pid_alive "$REG/registry.pid"; then kill "$(cat "$REG/registry.pid")"; fi
  rm -f "$CTRD/containerd.pid" "$REG/registry.pid"
}

cmd="${1:-all}"; [ $# -gt 0 ] && shift
case "$cmd" in
  deps) cmd_deps ;;
  build) cmd_build ;;
  check) cmd_check ;;
  image) cmd_image "$@" ;;
  gateway-run) cmd_gateway_run "$@" ;;
  gateway-stop) cmd_gateway_stop "$@" ;;
  smoke) cmd_smoke ;;
  versions) cmd_versions ;;
  slice)
    # absolute: pytest runs from the repository's root
    if [ -n "${GATEWAY_WASM:-}" ]; then WASM="$(realpath "$GATEWAY_WASM")"; else [ -f "$WASM" ] || build_component; fi
    trap down_if_started EXIT
    cmd_slice "$@"
    ;;
  down) cmd_down ;;
  all)
    trap down_if_started EXIT
    cmd_build
    cmd_check
    if [ -n "${GATEWAY_WASM:-}" ]; then WASM="$(realpath "$GATEWAY_WASM")"; else [ -f "$WASM" ] || build_component; fi
    cmd_slice
    ;;
  *) die "unknown command $cmd (deps, build, check, image, gateway-run, gateway-stop, smoke, versions, slice, down, all)" ;;
esac
