#!/usr/bin/env bash
# Build QuickJS-ng's `qjs` CLI as a WASI preview1 module (wasm32-wasi), pre-initialised:
# the runtime, the context and our prelude (prelude.js, embedded) are set up once here, by
# `wasmtime wizer` calling the module's faas-initialize export (qjs_snapshot.c), and the
# resulting memory is the module's data. Every call then starts from that state.
# Usage: build-qjs.sh OUT_DIR              -> OUT_DIR/qjs.wasm
# Env:   CC=...          compiler (default: /opt/wasi-sdk/bin/clang if present, else clang-19)
#        CACHE_DIR=...   where the downloaded crate is kept (default OUT_DIR/.cache)
#        FORCE=1         rebuild even if the stamp says qjs.wasm is up to date
#        JOBS=N          parallel compile jobs (default 2)
#        STACK_CHECK=1   (default) re-enable quickjs' C-stack check on WASI so deep JS recursion
#                        throws a catchable RangeError instead of trapping; 0 = pristine sources
#        SHADOW_STACK=N  linear-memory C stack in bytes (default 8 MiB). Must be larger than the
#                        JS limit (qjs --stack-size=KB, default 1 MiB) when STACK_CHECK=1.
# Debian 12 needs: clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32 curl python3, and
# wasmtime (>= 49, for `wasmtime wizer`; install-toolchains.sh installs it first).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)

OUT_DIR=${1:?usage: build-qjs.sh OUT_DIR}
CRATE=rquickjs-sys
VER=0.10.0   # its quickjs/ directory is quickjs-ng 0.10.1 (MIT)
SHA256=57b1b6528590d4d65dc86b5159eae2d0219709546644c66408b2441696d1d725
URL="https://static.crates.io/crates/${CRATE}/${CRATE}-${VER}.crate"
JOBS=${JOBS:-2}
STACK_CHECK=${STACK_CHECK:-1}
SHADOW_STACK=${SHADOW_STACK:-8388608}

if [[ -z "${CC:-}" ]]; then
  if [[ -x /opt/wasi-sdk/bin/clang ]]; then CC=/opt/wasi-sdk/bin/clang
  elif command -v clang-19 >/dev/null; then CC=clang-19
  else echo "error: no clang (need /opt/wasi-sdk/bin/clang or clang-19)" >&2; exit 1; fi
fi

SRCS=(quickjs.c libregexp.c libunicode.c cutils.c dtoa.c quickjs-libc.c qjs.c gen/repl.c gen/standalone.c)
HDRS=(quickjs.h quickjs-libc.h quickjs-atom.h quickjs-opcode.h quickjs-c-atomics.h cutils.h dtoa.h
      libregexp.h libregexp-opcode.h libunicode.h libunicode-table.h list.h builtin-array-fromasync.h LICENSE)
CFLAGS=(--target=wasm32-wasi -O2 -g0 -funsigned-char
        -D_GNU_SOURCE -D_WASI_EMULATED_PROCESS_CLOCKS -D_WASI_EMULATED_SIGNAL)
LDFLAGS=(--target=wasm32-wasi "-Wl,-z,stack-size=$SHADOW_STACK" -Wl,--stack-first -Wl,--strip-debug
         -lwasi-emulated-process-clocks -lwasi-emulated-signal -lm)

mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
CACHE_DIR=${CACHE_DIR:-$OUT_DIR/.cache}
mkdir -p "$CACHE_DIR"

# Up to date? stamp = crate sha + options + compiler version + flags + this script.
STAMP_VAL=$( { echo "$SHA256 $STACK_CHECK"; "$CC" --version | head -1; echo "${CFLAGS[*]} | ${LDFLAGS[*]}"; cat "$0";
               cat "$HERE/prelude.js" "$HERE/qjs_snapshot.c"; wasmtime --version; } \
             | sha256sum | cut -d' ' -f1)
if [[ "${FORCE:-0}" != 1 && -f "$OUT_DIR/qjs.wasm" && -f "$OUT_DIR/.qjs.stamp" \
      && "$(cat "$OUT_DIR/.qjs.stamp")" == "$STAMP_VAL" ]]; then
  echo "qjs.wasm up to date: $OUT_DIR/qjs.wasm ($(stat -c %s "$OUT_DIR/qjs.wasm") bytes)"
  exit 0
fi

# 1. Download (cached) and verify.
CRATE_FILE="$CACHE_DIR/${CRATE}-${VER}.crate"
if [[ ! -f "$CRATE_FILE" || "$(sha256sum "$CRATE_FILE" | cut -d' ' -f1)" != "$SHA256" ]]; then
  echo "downloading $URL"
  curl -sSfL --retry 3 -o "$CRATE_FILE.part" "$URL"
  got=$(sha256sum "$CRATE_FILE.part" | cut -d' ' -f1)
  echo "sha256 $got"
  if [[ "$got" != "$SHA256" ]]; then
    echo "error: sha256 mismatch for $URL (expected $SHA256)" >&2
    rm -f "$CRATE_FILE.part"; exit 1
  fi
  mv "$CRATE_FILE.part" "$CRATE_FILE"
fi

# 2. Extract only the needed sources into a fresh build dir.
BUILD=$(mktemp -d "$OUT_DIR/.qjs-build.XXXXXX")
trap 'rm -rf "$BUILD"' EXIT
members=()
for f in "${SRCS[@]}" "${HDRS[@]}"; do members+=("${CRATE}-${VER}/quickjs/$f"); done
tar -xzf "$CRATE_FILE" -C "$BUILD" --strip-components=2 "${members[@]}"

# 2b. quickjs-ng forces stack_size/stack_limit to 0 under __wasi__, so unbounded JS recursion
#     runs until the engine's native wasm stack is exhausted (trap, exit 134 in wasmtime).
if [[ $STACK_CHECK == 1 ]]; then
  python3 - "$BUILD/quickjs.c" <<'PY'
import sys
p = sys.argv[1]; s = open(p).read()
subs = [("    rt->stack_size = JS_DEFAULT_STACK_SIZE;\n#ifdef __wasi__\n    rt->stack_size = 0;\n#endif\n",
         "    rt->stack_size = JS_DEFAULT_STACK_SIZE;\n"),
        ("#if defined(__wasi__)\n    rt->stack_limit = 0; /* no limit */\n#else\n", ""),
        ("        rt->stack_limit = rt->stack_top - rt->stack_size;\n    }\n#endif\n",
         "        rt->stack_limit = rt->stack_top - rt->stack_size;\n    }\n")]
for a, b in subs:
    if s.count(a) != 1:
        sys.exit("stack-check patch does not apply: %r" % a[:50])
    s = s.replace(a, b)
open(p, "w").write(s)
PY
fi

# 2c. No module may be imported once `--std` has made std, os and bjson globals (the prelude
#     takes them into its closure and deletes the globals before any function code runs).
#     Without this, `import('qjs:std')` from a function reached std.open, os.exec's stubs,
#     std.getenviron, ... A normalize hook that always throws rejects every import, static or
#     dynamic, even of the already-registered qjs:* modules (they are looked up after it).
python3 - "$BUILD/qjs.c" <<'PY'
import sys
p = sys.argv[1]; s = open(p).read()
hook = ("static char *faas_refuse_import(JSContext *ctx, const char *base, const char *name, void *opaque)\n"
        "{\n"
        "    JS_ThrowTypeError(ctx, \"cannot import '%s': modules are not available to functions\", name);\n"
        "    return NULL;\n"
        "}\n\n")
subs = [("/* also used to initialize the worker context */\n",
         hook + "/* also used to initialize the worker context */\n"),
        ("            eval_buf(ctx, str, strlen(str), \"<input>\", JS_EVAL_TYPE_MODULE);\n        }\n",
         "            eval_buf(ctx, str, strlen(str), \"<input>\", JS_EVAL_TYPE_MODULE);\n        }\n"
         "        JS_SetModuleLoaderFunc(rt, faas_refuse_import, NULL, NULL);\n")]
for a, b in subs:
    if s.count(a) != 1:
        sys.exit("no-import patch does not apply: %r" % a[:50])
    s = s.replace(a, b)
open(p, "w").write(s)
PY

# 2d. The snapshot (qjs_snapshot.c): main() runs faas_main() once faas-initialize has run;
#     quickjs.c gains faas_fresh_context(), which renews what a snapshot would share between
#     calls (Math.random's state, the performance.now() origin); the prelude is embedded.
python3 - "$BUILD/qjs.c" "$BUILD/quickjs.c" "$HERE/qjs_snapshot.c" "$HERE/prelude.js" "$BUILD/faas_prelude.h" <<'PY'
import sys
qjs, quickjs, snapshot, prelude, header = sys.argv[1:]
s = open(qjs).read()
a = "int main(int argc, char **argv)\n{\n"
if s.count(a) != 1:
    sys.exit("snapshot patch does not apply to qjs.c")
s = s.replace(a, "static bool faas_ready;\nstatic int faas_main(int argc, char **argv);\n\n" + a
              + "    if (faas_ready)\n        return faas_main(argc, argv);\n")
open(qjs, "w").write(s + "\n" + open(snapshot).read())
s = open(quickjs).read()
for a in ("static void js_random_init(JSContext *ctx)\n", "static double js__now_ms(void)\n",
          "    ctx->time_origin = js__now_ms();\n"):
    if s.count(a) != 1:
        sys.exit("snapshot patch does not apply to quickjs.c: %r" % a)
open(quickjs, "w").write(s + '''
/* faas: renew per call what a build-time snapshot would share (qjs_snapshot.c). */
#include <unistd.h>
void faas_fresh_context(JSContext *ctx)
{
    uint64_t seed = 0;
    if (getentropy(&seed, sizeof(seed)) != 0 || seed == 0)
        seed = (uint64_t)js__gettimeofday_us() | 1;
    ctx->random_state = seed;
    ctx->time_origin = js__now_ms();
}
''')
data = open(prelude, "rb").read()
with open(header, "w") as h:
    h.write("/* generated from prelude.js by build-qjs.sh */\nstatic const unsigned char faas_prelude[] = {\n")
    for i in range(0, len(data), 24):
        h.write(",".join(str(b) for b in data[i:i + 24]) + ",\n")
    h.write("0};\nstatic const unsigned int faas_prelude_len = %d;\n" % len(data))
PY

# 2e. os.setTimeout(f, 0) waits 1 ms in quickjs-libc (it raises 0 to 1), and the prelude ends
#     every call through such a timer (its exit check runs once the microtasks are done): a
#     millisecond per call for nothing. 0 now means "at the next turn of the loop"; the prelude's
#     setTimeout still raises 0 to 1 ms, as Node does, and setImmediate uses 0.
python3 - "$BUILD/quickjs-libc.c" <<'PY'
import sys
p = sys.argv[1]; s = open(p).read()
a = "    if (delay < 1)\n        delay = 1;\n"
if s.count(a) != 1:
    sys.exit("zero-delay patch does not apply")
open(p, "w").write(s.replace(a, "    if (delay < 0)\n        delay = 0;\n"))
PY

# 2f. Compiling an ES module also loads every module it imports (quickjs-ng resolves at
#     compile time). The prelude's deploy-time check and its ES-module detection must only
#     parse: faas_parse_only (set by qjs_snapshot.c's compileModule) skips that resolution.
python3 - "$BUILD/quickjs.c" <<'PY'
import sys
p = sys.argv[1]; s = open(p).read()
subs = [("static JSValue __JS_EvalInternal(JSContext *ctx, JSValueConst this_obj,\n",
         "bool faas_parse_only; /* faas: compile modules without loading their imports */\n"
         "static JSValue __JS_EvalInternal(JSContext *ctx, JSValueConst this_obj,\n"),
        ("        m->func_obj = fun_obj;\n        if (js_resolve_module(ctx, m) < 0)\n",
         "        m->func_obj = fun_obj;\n        if (!faas_parse_only && js_resolve_module(ctx, m) < 0)\n")]
for a, b in subs:
    if s.count(a) != 1:
        sys.exit("parse-only patch does not apply: %r" % a[:50])
    s = s.replace(a, b)
open(p, "w").write(s)
PY

# 3. Compile (JOBS in parallel) and link.
start=$(date +%s%N)
cd "$BUILD"
printf '%s\n' "${SRCS[@]}" | xargs -P "$JOBS" -I{} sh -c \
  'exec "$0" "$@" -c "{}" -o "$(echo "{}" | tr / _).o"' "$CC" "${CFLAGS[@]}"
objs=(); for f in "${SRCS[@]}"; do objs+=("$(echo "$f" | tr / _).o"); done
"$CC" "${objs[@]}" "${LDFLAGS[@]}" -o qjs.wasm
end=$(date +%s%N)

# 4. The module must import functions from wasi_snapshot_preview1 only.
python3 - qjs.wasm <<'PY'
import sys
d = open(sys.argv[1], "rb").read()
assert d[:8] == b"\0asm\x01\0\0\0", "not a wasm module"
def leb(p):
    r = s = 0
    while True:
        b = d[p]; p += 1; r |= (b & 0x7f) << s; s += 7
        if b < 0x80: return r, p
p, imports = 8, []
while p < len(d):
    sid = d[p]; size, p = leb(p + 1); end = p + size
    if sid == 2:
        n, p = leb(p)
        for _ in range(n):
            l, p = leb(p); m = d[p:p + l].decode(); p += l
            l, p = leb(p); name = d[p:p + l].decode(); p += l
            if d[p] != 0: sys.exit("non-function import %s.%s" % (m, name))
            _, p = leb(p + 1); imports.append((m, name))
    p = end
bad = sorted({m for m, _ in imports} - {"wasi_snapshot_preview1"})
if bad: sys.exit("unexpected import modules: %s" % bad)
print("imports (%d): %s" % (len(imports), " ".join(n for _, n in imports)))
PY

# 5. Pre-initialise (faas-initialize may call WASI: clocks and random while creating the context).
wasmtime wizer -S cli=y --init-func faas-initialize -o qjs-snapshot.wasm qjs.wasm
mv -f qjs-snapshot.wasm "$OUT_DIR/qjs.wasm"
echo "$STAMP_VAL" > "$OUT_DIR/.qjs.stamp"
echo "built $OUT_DIR/qjs.wasm ($(stat -c %s "$OUT_DIR/qjs.wasm") bytes) in $(( (end - start) / 1000000 )) ms" \
     "with $CC (STACK_CHECK=$STACK_CHECK SHADOW_STACK=$SHADOW_STACK)"
