//! The interpreters start every call from a snapshot taken at build time
//! (QuickJS with its prelude already evaluated; CPython with its import
//! system, `site`, `json`, `re`... already loaded). What a snapshot must
//! never carry from one call to the next: globals, files, the random seed,
//! the clock's origin, the environment of the build.

use std::collections::BTreeSet;

use crate::harness::TestServer;

/// Counts in a global, writes a marker to /tmp and reports both, with a
/// random number and the time since the interpreter's start.
const JS_STATE: &str = r#"
const fs = require('fs');
globalThis.calls = (globalThis.calls || 0) + 1;
const seen = fs.existsSync('/tmp/marker');
fs.writeFileSync('/tmp/marker', 'x');
console.log(JSON.stringify({ calls: globalThis.calls, seen, random: Math.random(),
  now: performance.now(), origin_lag: Date.now() - performance.timeOrigin - performance.now(), env: process.env.SNAPSHOT_PROBE || null,
  argv: process.argv.slice(1) }));
"#;

/// Sets a module-level variable another function must never see.
const JS_SETTER: &str = r#"
globalThis.leaked = 'secret from another function';
Object.prototype.polluted = 'polluted';
console.log('set');
"#;

const JS_READER: &str = r#"
console.log(JSON.stringify({ leaked: globalThis.leaked || null, polluted: ({}).polluted || null }));
"#;

fn invoke(server: &TestServer, id: &str) -> (serde_json::Value, u64) {
    let resp = server.post(&format!("/invoke?fn={id}"), "");
    assert_eq!(resp.status, 200, "{}", resp.body);
    let reply = resp.json();
    let out: serde_json::Value = serde_json::from_str(reply["output"].as_str().unwrap().trim())
        .unwrap_or_else(|e| panic!("{e}: {reply}"));
    (out, reply["worker_id"].as_u64().unwrap())
}

#[test]
fn every_js_call_starts_from_a_fresh_copy_of_the_snapshot() {
    let server = TestServer::start("RR", &[]);
    let id = server.deploy("js_state", "js", JS_STATE);
    let mut workers = BTreeSet::new();
    let mut randoms = BTreeSet::new();
    for call in 0..50 {
        let (out, worker) = invoke(&server, &id);
        workers.insert(worker);
        assert_eq!(out["calls"], 1, "call {call}: {out}");
        assert_eq!(out["seen"], false, "call {call}: {out}");
        // The clock counts from this call's start, not the build's.
        let now = out["now"].as_f64().unwrap();
        assert!((0.0..5_000.0).contains(&now), "call {call}: {out}");
        // performance.timeOrigin is this call's start in epoch ms, as in Node.
        let lag = out["origin_lag"].as_f64().unwrap();
        assert!(lag.abs() < 50.0, "call {call}: {out}");
        assert_eq!(out["argv"], serde_json::json!(["/faas/code.js"]), "{out}");
        randoms.insert(out["random"].to_string());
    }
    // Round robin over four workers: every worker served calls.
    assert_eq!(workers.len(), 4, "{workers:?}");
    // Math.random is seeded per call: no two calls drew the same number.
    assert_eq!(randoms.len(), 50, "{randoms:?}");

    // A function's variables are this call's environment, not the build's.
    let id = server.deploy_with("js_env", "js", JS_STATE, "env=SNAPSHOT_PROBE%3Dfresh");
    let (out, _) = invoke(&server, &id);
    assert_eq!(out["env"], "fresh", "{out}");
}

#[test]
fn no_global_set_by_one_js_function_reaches_another_on_the_same_worker() {
    assert_setter_never_reaches_reader(
        "js",
        JS_SETTER,
        JS_READER,
        serde_json::json!({"leaked": null, "polluted": null}),
    );
}

/// On one worker, calls of `setter` (which prints `set`) alternate with
/// calls of `reader`, another function, which must print `untouched`.
fn assert_setter_never_reaches_reader(
    lang: &str,
    setter: &str,
    reader: &str,
    untouched: serde_json::Value,
) {
    let server = TestServer::start("RR", &["--workers", "1"]);
    let setter = server.deploy(&format!("{lang}_setter"), lang, setter);
    let reader = server.deploy(&format!("{lang}_reader"), lang, reader);
    for _ in 0..5 {
        let resp = server.post(&format!("/invoke?fn={setter}"), "");
        assert_eq!(resp.json()["output"], "set\n", "{}", resp.body);
        let (out, _) = invoke(&server, &reader);
        assert_eq!(out, untouched, "{out}");
    }
}

/// The Python counterpart of [`JS_STATE`]: counts in a module-level
/// global, in `builtins` and in the `sys` module (which outlive `__main__`
/// inside one interpreter), writes a marker to /tmp, and reports both with
/// numbers from `random` (seeded in the snapshot) and `os.urandom`.
const PY_STATE: &str = r#"
import builtins, json, os, random, sys
calls = globals().get('calls', 0) + 1
builtins.faas_calls = getattr(builtins, 'faas_calls', 0) + 1
sys.faas_calls = getattr(sys, 'faas_calls', 0) + 1
seen = os.path.exists('/tmp/marker')
with open('/tmp/marker', 'w') as f:
    f.write('x')
print(json.dumps({'calls': [calls, builtins.faas_calls, sys.faas_calls], 'seen': seen,
    'random': random.random(), 'urandom': os.urandom(16).hex(),
    'env': os.environ.get('SNAPSHOT_PROBE'), 'argv': sys.argv}))
"#;

/// Leaves marks another Python function must never see: a builtin, an
/// attribute of a loaded module (those of the snapshot, and those
/// fetch-python.sh preloads into it), a replaced function of the standard
/// library and a module in `sys.modules`.
const PY_SETTER: &str = r#"
import builtins, datetime, json, sys, types, urllib.parse
builtins.leaked = 'secret from another function'
json.leaked = 'secret'
json.x = 1
sys.modules['re'].y = 2
datetime.leaked = 'secret'
urllib.parse.quote = lambda *a, **k: 'patched'
json.dumps = lambda *a, **k: 'patched'
sys.modules['faas_leak'] = types.ModuleType('faas_leak')
print('set')
"#;

const PY_READER: &str = r#"
import builtins, datetime, json, re, sys, urllib.parse
print(json.dumps({'leaked': getattr(builtins, 'leaked', None),
    'module_attr': getattr(json, 'leaked', None),
    'preloaded': [getattr(json, 'x', None), getattr(re, 'y', None),
                  getattr(datetime, 'leaked', None), urllib.parse.quote('a b')],
    'module': 'faas_leak' in sys.modules, 'dumps': json.dumps([1])}))
"#;

/// Modules of fetch-python.sh's preload list (some were in the publisher's
/// snapshot already): a call finds them in `sys.modules` before importing.
const PRELOADED: [&str; 8] = [
    "base64",
    "collections",
    "datetime",
    "hashlib",
    "json",
    "math",
    "re",
    "urllib.parse",
];

/// The modules the snapshot holds imported (fetch-python.sh's preload
/// list), each checked for a mark the function's previous call left, then
/// marked, as is `sys.modules`.
const PY_MARKS: &str = r#"
import sys
names = ['base64', 'collections', 'datetime', 'hashlib', 'json', 'math', 're', 'urllib.parse']
preloaded = [n for n in names if n in sys.modules]
import base64, collections, datetime, hashlib, json, math, re, urllib.parse
mods = [sys.modules[n] for n in names]
seen = [n for n, m in zip(names, mods) if hasattr(m, 'faas_mark')] + \
    [n for n in ('faas_mark_module',) if n in sys.modules]
for m in mods:
    m.faas_mark = 1
sys.modules['faas_mark_module'] = sys
print(json.dumps({'seen': seen, 'preloaded': preloaded}))
"#;

#[test]
fn every_python_call_starts_from_a_fresh_copy_of_the_snapshot() {
    let server = TestServer::start("RR", &[]);
    let id = server.deploy("py_state", "python", PY_STATE);
    let mut workers = BTreeSet::new();
    let mut randoms = BTreeSet::new();
    let mut urandoms = BTreeSet::new();
    for call in 0..50 {
        let (out, worker) = invoke(&server, &id);
        workers.insert(worker);
        assert_eq!(
            out["calls"],
            serde_json::json!([1, 1, 1]),
            "call {call}: {out}"
        );
        assert_eq!(out["seen"], false, "call {call}: {out}");
        assert_eq!(out["argv"], serde_json::json!(["/faas/code.py"]), "{out}");
        randoms.insert(out["random"].to_string());
        urandoms.insert(out["urandom"].to_string());
    }
    // Round robin over four workers: every worker served calls.
    assert_eq!(workers.len(), 4, "{workers:?}");
    // `random` is reseeded per call (from WASI random_get), and urandom
    // never repeats: no two calls drew the same numbers.
    assert_eq!(randoms.len(), 50, "{randoms:?}");
    assert_eq!(urandoms.len(), 50, "{urandoms:?}");

    // A function's variables are this call's environment, not the build's.
    let id = server.deploy_with("py_env", "python", PY_STATE, "env=SNAPSHOT_PROBE%3Dfresh");
    let (out, _) = invoke(&server, &id);
    assert_eq!(out["env"], "fresh", "{out}");
}

#[test]
fn nothing_one_python_function_changes_reaches_another_on_the_same_worker() {
    assert_setter_never_reaches_reader(
        "python",
        PY_SETTER,
        PY_READER,
        serde_json::json!({"leaked": null, "module_attr": null,
            "preloaded": [null, null, null, "a%20b"], "module": false, "dumps": "[1]"}),
    );
}

/// Python with numpy can read and write its own linear memory at any
/// address (an `__array_interface__` over a raw pointer), as a C function
/// can: what it writes there must be gone at the next call of the same
/// function on the same worker, which rewinds the instance it ran in.
///
/// The marker is two 32-bit halves written side by side; the scanner only
/// ever holds each half alone, so it never finds itself.
const PY_RAW_MEMORY: &str = r#"
import os, sys
import numpy as np
class _Raw: pass
def raw(address, n, read_only=True):
    m = _Raw()
    m.__array_interface__ = {'data': (address, read_only), 'shape': (n,), 'typestr': '|u1', 'version': 3}
    return np.asarray(m)
LO, HI = 0x5A697887 ^ 0x0F0F0F0F, 0x1E2D3C4B ^ 0x0F0F0F0F
INITIAL = 40 << 20   # the snapshot's memory at instantiation
def markers(pairs):
    a = np.empty(2 * pairs, np.uint32)
    a[0::2], a[1::2] = LO, HI
    return a
def count(words):
    return int(np.count_nonzero((words[:-1] == LO) & (words[1:] == HI)))
def scan():
    start = raw(4096, INITIAL - 4096).copy().view(np.uint32)
    grown = np.empty(32 << 20, np.uint8).view(np.uint32)
    return count(start) + count(grown)
def plant():
    global heap, small
    heap = markers(1 << 20)                                  # 8 MB, past the initial memory
    small = [markers(4).tobytes() for _ in range(20000)]     # inside it
    memory = raw(4096, INITIAL - 4096, read_only=False).view(np.uint32).reshape(-1, 1024)
    zero = np.flatnonzero(~memory.any(axis=1))[-64:]         # pages the image leaves zero
    for page in zero:
        memory[page, :] = markers(512)
mode = sys.stdin.read().strip()
if mode == 'self':
    plant(); print(scan() > 0)
elif mode == 'scan':
    print(scan())
else:
    plant()
    print('planted', flush=True)
    if mode == 'spin':
        while True: pass
    if mode == 'exit':
        os._exit(0)
"#;

#[test]
fn raw_memory_a_python_call_writes_is_gone_at_its_functions_next_call() {
    let server = TestServer::start("RR", &["--workers", "1"]);
    let id = server.deploy_with(
        "py_raw",
        "python",
        PY_RAW_MEMORY,
        "timeout_ms=3000&max_memory_mb=256",
    );
    let call = |mode: &str| server.post(&format!("/invoke?fn={id}"), mode);
    // The scanner finds markers when there are some.
    let resp = call("self");
    assert_eq!(resp.json()["output"], "True\n", "{}", resp.body);
    for mode in ["plant", "exit", "spin", "plant", "exit"] {
        let resp = call(mode);
        assert!(
            resp.body.contains("planted"),
            "{mode}: {} {}",
            resp.status,
            resp.body
        );
        if mode == "spin" {
            assert_eq!(resp.status, 504, "{}", resp.body);
        }
        let resp = call("scan");
        assert_eq!(resp.status, 200, "{}", resp.body);
        assert_eq!(resp.json()["output"], "0\n", "after {mode}: {}", resp.body);
    }
}

#[test]
fn no_python_call_sees_what_the_previous_one_did_to_a_preloaded_module() {
    // One worker: every call after the first rewinds the same instance.
    let server = TestServer::start("RR", &["--workers", "1"]);
    let id = server.deploy("py_marks", "python", PY_MARKS);
    let other = server.deploy("py_marks_too", "python", PY_MARKS);
    for call in 0..6 {
        for id in [&id, &other] {
            let (out, _) = invoke(&server, id);
            assert_eq!(out["seen"], serde_json::json!([]), "call {call}: {out}");
            // They come from the snapshot, not from this call's imports.
            assert_eq!(
                out["preloaded"],
                serde_json::json!(PRELOADED),
                "call {call}: {out}"
            );
        }
    }
}

/// A worker rewinds a Python function's instance for up to 256 calls, then
/// starts a new store: the calls on both sides of that boundary (and the
/// next one) start fresh too.
#[test]
fn python_calls_start_fresh_across_a_rewound_stores_renewal() {
    let server = TestServer::start("RR", &["--workers", "1"]);
    let id = server.deploy("py_renewal", "python", PY_STATE);
    let mut urandoms = BTreeSet::new();
    for call in 0..600 {
        let (out, worker) = invoke(&server, &id);
        assert_eq!(worker, 0);
        assert_eq!(
            out["calls"],
            serde_json::json!([1, 1, 1]),
            "call {call}: {out}"
        );
        assert_eq!(out["seen"], false, "call {call}: {out}");
        urandoms.insert(out["urandom"].to_string());
    }
    assert_eq!(urandoms.len(), 600);
    // One worker served them all: no crash, no recycle.
    let stats = server.get("/stats").json();
    assert_eq!(stats["worker_restarts"][0], 0, "{stats}");
}
