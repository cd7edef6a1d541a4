//! Where a call can write, and what it leaves: every byte a function writes
//! is inside its `/tmp` cap or its memory cap (one writer per place), no
//! process a call starts outlives it as a zombie, a PHP function finds no
//! token in any environment or command line it can see, QuickJS's host
//! modules cannot be imported, and a function's stderr reaches the log.

use std::time::Duration;

use crate::harness::{http_bytes, kill_worker, wait_for_log, wait_until, TestServer};

/// Bytes each writer tries to put in each place (the default `/tmp` cap is
/// 16 MiB, the default memory cap 128 MiB).
const ATTEMPT_MIB: usize = 256;

/// Tries every way of changing `/faas` and the root, then pours
/// ATTEMPT_MIB MiB into a new file under `/faas`; prints the error code of
/// each attempt (`ALLOWED` when it worked).
const JS_WRITER: &str = r#"
const fs = require('fs');
const r = {};
function attempt(name, fn) { try { fn(); r[name] = 'ALLOWED'; } catch (e) { r[name] = e.code || String(e); } }
attempt('overwrite', () => fs.writeFileSync('/faas/code.js', 'x'));
attempt('append', () => fs.appendFileSync('/faas/code.js', 'x'));
attempt('create', () => fs.writeFileSync('/faas/new.js', 'x'));
attempt('unlink', () => fs.unlinkSync('/faas/code.js'));
attempt('rename', () => fs.renameSync('/faas/code.js', '/faas/moved.js'));
attempt('rename_out', () => fs.renameSync('/faas/code.js', '/tmp/moved.js'));
attempt('rename_in', () => { fs.writeFileSync('/tmp/a.js', 'x'); fs.renameSync('/tmp/a.js', '/faas/a.js'); });
attempt('mkdir', () => fs.mkdirSync('/faas/d'));
attempt('root', () => fs.writeFileSync('/escape.js', 'x'));
attempt('truncate_open', () => fs.closeSync(fs.openSync('/faas/code.js', 'w')));
attempt('fill', () => {
  const chunk = Buffer.alloc(1 << 20, 120);
  const fd = fs.openSync('/faas/fill', 'w');
  for (let i = 0; i < ATTEMPT; i++) fs.writeSync(fd, chunk);
});
r.script_intact = fs.readFileSync('/faas/code.js', 'utf8').includes('script_intact');
r.faas = fs.readdirSync('/faas');
console.log(JSON.stringify(r));
"#;

const PY_WRITER: &str = r#"
import errno, json, os
r = {}
def attempt(name, fn):
    try:
        fn()
        r[name] = 'ALLOWED'
    except OSError as e:
        r[name] = errno.errorcode.get(e.errno, str(e.errno))
def fill():
    chunk = b'x' * (1 << 20)
    with open('/faas/fill', 'wb') as f:
        for _ in range(ATTEMPT):
            f.write(chunk)
def rename_in():
    open('/tmp/a.py', 'w').write('x')
    os.rename('/tmp/a.py', '/faas/a.py')
attempt('overwrite', lambda: open('/faas/code.py', 'w').write('x'))
attempt('append', lambda: open('/faas/code.py', 'a').write('x'))
attempt('create', lambda: open('/faas/new.py', 'x').write('x'))
attempt('unlink', lambda: os.unlink('/faas/code.py'))
attempt('rename', lambda: os.rename('/faas/code.py', '/faas/moved.py'))
attempt('rename_out', lambda: os.rename('/faas/code.py', '/tmp/moved.py'))
attempt('rename_in', rename_in)
attempt('mkdir', lambda: os.mkdir('/faas/d'))
attempt('rmdir', lambda: os.rmdir('/faas'))
attempt('truncate', lambda: os.truncate('/faas/code.py', 0))
attempt('utime', lambda: os.utime('/faas/code.py', (0, 0)))
attempt('symlink', lambda: os.symlink('/tmp', '/faas/link'))
attempt('root', lambda: open('/escape.py', 'w').write('x'))
attempt('fill', fill)
r['script_intact'] = 'script_intact' in open('/faas/code.py').read()
r['faas'] = sorted(os.listdir('/faas'))
print(json.dumps(r))
"#;

/// Pours ATTEMPT_MIB MiB into a new file in each place a PHP call might
/// write, and tries the shared-memory and FFI back doors; prints how many
/// bytes each place took, or why it refused.
const PHP_WRITER: &str = r#"<?php
$chunk = str_repeat('x', 1 << 20);
$r = [];
$home = getenv('HOME');
foreach (['/dev/shm/fill', '/dev/fill', '/dev/pts/fill', '/faas/fill', '/faas/code.php', '/fill', '/proc/fill', '/usr/fill', "$home/fill"] as $path) {
    $f = @fopen($path, 'w');
    if ($f === false) { $r[$path] = 'denied: ' . (error_get_last()['message'] ?? '?'); continue; }
    $n = 0;
    for ($i = 0; $i < ATTEMPT; $i++) {
        $w = @fwrite($f, $chunk);
        if ($w === false || $w === 0) break;
        $n += $w;
    }
    @fclose($f);
    clearstatcache();
    $r[$path] = @filesize($path);
}
try { $r['shmop'] = shmop_open(0x1234, 'c', 0600, 1 << 30) ? 'ALLOWED' : 'denied'; } catch (Throwable $e) { $r['shmop'] = 'denied: ' . $e->getMessage(); }
try { $r['sysvshm'] = shm_attach(0x1235, 1 << 30) ? 'ALLOWED' : 'denied'; } catch (Throwable $e) { $r['sysvshm'] = 'denied: ' . $e->getMessage(); }
try { $r['msg_queue'] = msg_get_queue(0x1236) ? 'ALLOWED' : 'denied'; } catch (Throwable $e) { $r['msg_queue'] = 'denied: ' . $e->getMessage(); }
try { FFI::cdef('int memfd_create(const char *, unsigned int);'); $r['ffi'] = 'ALLOWED'; } catch (Throwable $e) { $r['ffi'] = 'denied: ' . $e->getMessage(); }
$r['script_intact'] = str_contains(file_get_contents('/faas/code.php'), 'script_intact');
echo json_encode($r), "\n";
"#;

/// Resident memory of process `pid`, in bytes.
fn rss_bytes(pid: u64) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

fn worker_pids(server: &TestServer) -> Vec<u64> {
    server.get("/stats").json()["worker_pids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect()
}

fn report(server: &TestServer, name: &str) -> serde_json::Value {
    let resp = server.post(&format!("/invoke?fn={name}"), "");
    assert_eq!(resp.status, 200, "{name}: {}", resp.body);
    let out = resp.json()["output"].as_str().unwrap().to_string();
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{name}: {e}: {out}"))
}

#[test]
fn faas_is_read_only_in_the_interpreters_and_answers_erofs() {
    let server = TestServer::start("RR", &["--workers", "1"]);
    let attempt = ATTEMPT_MIB.to_string();
    server.deploy("w_js", "js", &JS_WRITER.replace("ATTEMPT", &attempt));
    server.deploy("w_py", "python", &PY_WRITER.replace("ATTEMPT", &attempt));
    let worker = worker_pids(&server)[0];
    // Warm both interpreters first, so their own memory is counted before.
    report(&server, "w_js");
    report(&server, "w_py");
    let before = rss_bytes(worker);
    for (name, script, changes) in [
        (
            "w_js",
            "code.js",
            &[
                "overwrite",
                "append",
                "create",
                "unlink",
                "rename",
                "rename_in",
                "rename_out",
                "mkdir",
                "truncate_open",
                "fill",
            ][..],
        ),
        (
            "w_py",
            "code.py",
            &[
                "overwrite",
                "append",
                "create",
                "unlink",
                "rename",
                "rename_in",
                "rename_out",
                "mkdir",
                "truncate",
                "utime",
                "symlink",
                "fill",
            ][..],
        ),
    ] {
        let r = report(&server, name);
        for change in changes {
            assert_eq!(r[change], "EROFS", "{name}: {change}: {r}");
        }
        // Creating in the root fails too: it is read-only.
        assert_eq!(r["root"], "EROFS", "{name}: {r}");
        // rmdir /faas (a mount point): refused, whatever the error.
        assert_ne!(r["rmdir"], "ALLOWED", "{name}: {r}");
        assert_eq!(r["script_intact"], true, "{name}: {r}");
        let listed: Vec<&str> = r["faas"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(listed.contains(&script), "{name}: {r}");
        assert!(
            // The interpreter's own files: Python's boot
            // script (and its compiled code) and its `faas` module
            // (outbound HTTP).
            listed
                .iter()
                .all(|f| *f == script || ["boot.py", "boot.pyc", "lib"].contains(f)),
            "{name}: {r}"
        );
    }
    // 2 × 256 MiB were refused, not held: the worker did not grow by
    // anything near that.
    let after = rss_bytes(worker);
    assert!(
        after < before + 160 * 1024 * 1024,
        "worker RSS grew from {before} to {after}"
    );
    // And the next call of each runs its untouched script.
    report(&server, "w_js");
    report(&server, "w_py");
}

#[test]
fn a_php_call_writes_only_to_its_capped_tmp() {
    let server = TestServer::start("RR", &["--workers", "1"]);
    let attempt = ATTEMPT_MIB.to_string();
    server.deploy("w_php", "php", &PHP_WRITER.replace("ATTEMPT", &attempt));
    let r = report(&server, "w_php");
    for place in [
        "/dev/shm/fill",
        "/dev/fill",
        "/faas/fill",
        "/faas/code.php",
        "/fill",
        "/usr/fill",
    ] {
        let outcome = r[place].as_str().unwrap_or_default();
        assert!(
            outcome.contains("Read-only file system"),
            "{place}: {outcome}: {r}"
        );
    }
    for place in ["/dev/pts/fill", "/proc/fill"] {
        let outcome = r[place].as_str().unwrap_or_default();
        assert!(outcome.starts_with("denied"), "{place}: {r}");
    }
    for back_door in ["shmop", "sysvshm", "msg_queue", "ffi"] {
        let outcome = r[back_door].as_str().unwrap_or_default();
        assert!(outcome.starts_with("denied"), "{back_door}: {r}");
    }
    // HOME is the call's /tmp: it takes the default 16 MiB cap and no more.
    let home = r["/tmp/fill"].as_u64().expect("HOME is writable");
    assert!(home > 0 && home <= 16 * 1024 * 1024, "{r}");
    assert_eq!(r["script_intact"], true, "{r}");
    // No /dev/shm of the host's size is left in use by the call either:
    // a second call finds the same.
    assert_eq!(report(&server, "w_php")["/tmp/fill"], home);
}

const TOKEN_API: &str = "api-token-the-function-must-not-see-1";
const TOKEN_INVOKE: &str = "invoke-token-the-function-must-not-see-2";
const TOKEN_FLAG: &str = "invoke-token-from-the-command-line-3";

/// Reads every environ and cmdline under /proc it can, and prints them.
const PHP_PROC_READER: &str = r#"<?php
$seen = '';
foreach (['/proc/1/environ', '/proc/self/environ', '/proc/1/cmdline'] as $f) {
    $seen .= "$f: " . @file_get_contents($f) . "\n";
}
foreach (glob('/proc/[0-9]*') as $dir) {
    foreach (['environ', 'cmdline'] as $what) {
        $seen .= "$dir/$what: " . @file_get_contents("$dir/$what") . "\n";
    }
}
echo str_replace("\0", ' ', $seen);
"#;

#[test]
fn a_php_function_finds_no_token_in_any_environment_or_command_line() {
    let server = TestServer::start_with_env(
        "RR",
        &["--workers", "1", "--invoke-token", TOKEN_FLAG],
        &[
            ("FAAS_API_TOKEN", TOKEN_API),
            ("FAAS_INVOKE_TOKEN", TOKEN_INVOKE),
        ],
    );
    let auth = format!("Bearer {TOKEN_API}");
    let (status, _, body) = http_bytes(
        &server.addr,
        "POST",
        "/deploy?name=proc_reader&lang=php",
        &[("Authorization", &auth)],
        PHP_PROC_READER.as_bytes(),
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let mut seen = String::new();
    for token in [TOKEN_FLAG, TOKEN_INVOKE, TOKEN_API] {
        let auth = format!("Bearer {token}");
        let (status, _, body) = http_bytes(
            &server.addr,
            "POST",
            "/invoke?fn=proc_reader",
            &[("Authorization", &auth)],
            b"",
        );
        if status == 200 {
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
            seen = json["output"].as_str().unwrap().to_string();
            break;
        }
    }
    // It read something: the sandbox's own processes' environments.
    assert!(seen.contains("/proc/1/environ: PATH="), "{seen}");
    assert!(seen.contains("FAAS_FUNCTION="), "{seen}");
    for token in [TOKEN_API, TOKEN_INVOKE, TOKEN_FLAG] {
        assert!(!seen.contains(token), "a token leaked: {seen}");
    }
    // The workers themselves hold no token either.
    for pid in worker_pids_authorized(&server, &format!("Bearer {TOKEN_API}")) {
        for what in ["environ", "cmdline"] {
            let bytes = std::fs::read(format!("/proc/{pid}/{what}")).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            for token in [TOKEN_API, TOKEN_INVOKE, TOKEN_FLAG] {
                assert!(!text.contains(token), "worker {pid} {what}: {text}");
            }
            assert!(!text.contains("FAAS_"), "worker {pid} {what}: {text}");
        }
    }
}

fn worker_pids_authorized(server: &TestServer, auth: &str) -> Vec<u64> {
    let (status, _, body) = http_bytes(
        &server.addr,
        "GET",
        "/stats",
        &[("Authorization", auth)],
        b"",
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let stats: serde_json::Value = serde_json::from_slice(&body).unwrap();
    stats["worker_pids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect()
}

/// `/proc/PID/stat` lines of the processes for which `keep(state, ppid)`.
fn processes_where(keep: impl Fn(&str, u64) -> bool) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let mut fields = stat[close + 1..].split_whitespace();
        let state = fields.next().unwrap_or_default();
        let ppid: u64 = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        if keep(state, ppid) {
            found.push(stat.trim().to_string());
        }
    }
    found
}

/// Zombies (state Z) whose parent is one of `parents`.
fn zombies_of(parents: &[u64]) -> Vec<String> {
    processes_where(|state, ppid| state == "Z" && parents.contains(&ppid))
}

#[test]
fn a_thousand_php_calls_at_concurrency_8_all_answer_and_leave_no_zombie() {
    let server = TestServer::start("RR", &[]);
    server.deploy(
        "php_hello",
        "php",
        "<?php echo 'hi ', fgets(STDIN), \"\\n\";",
    );
    let addr = server.addr.clone();
    let failures: Vec<String> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let addr = addr.clone();
                scope.spawn(move || {
                    let mut failed = Vec::new();
                    for i in 0..125 {
                        let resp = crate::harness::http(
                            &addr,
                            "POST",
                            "/invoke?fn=php_hello",
                            format!("{t}-{i}").as_bytes(),
                        );
                        let ok =
                            resp.status == 200 && resp.json()["output"] == format!("hi {t}-{i}\n");
                        if !ok {
                            failed.push(format!("{}: {}", resp.status, resp.body));
                        }
                    }
                    failed
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} of 1000 failed, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
    // Neither the workers nor the Server keep a zombie of any call.
    let mut parents = worker_pids(&server);
    parents.push(server.pid() as u64);
    wait_until(
        &format!("zombies left: {:?}", zombies_of(&parents)),
        Duration::from_secs(10),
        || zombies_of(&parents).is_empty(),
    );
}

#[test]
fn the_server_reaps_what_a_killed_worker_leaves() {
    let server = TestServer::start("RR", &["--workers", "1"]);
    server.deploy("php_sleep", "php", "<?php echo 'going'; sleep(30);");
    let addr = server.addr.clone();
    let call = std::thread::spawn(move || {
        crate::harness::http(&addr, "POST", "/invoke?fn=php_sleep", b"").status
    });
    // The call is in its sandbox: a bwrap below the worker.
    let worker = worker_pids(&server)[0];
    wait_until("the call's bwrap starts", Duration::from_secs(20), || {
        !processes_where(|_, ppid| ppid == worker).is_empty()
    });
    kill_worker(&server, 0);
    assert_ne!(call.join().unwrap(), 200);
    // Whatever the worker left was reparented to the Server (a subreaper),
    // which reaps it.
    wait_for_log(&server, "orphaned process", Duration::from_secs(20));
    let server_pid = server.pid() as u64;
    wait_until(
        &format!("zombies left: {:?}", zombies_of(&[server_pid])),
        Duration::from_secs(20),
        || zombies_of(&[server_pid]).is_empty(),
    );
    // The replacement serves PHP.
    wait_until("a new worker", Duration::from_secs(20), || {
        worker_pids(&server)[0] != worker && worker_pids(&server)[0] != 0
    });
    server.deploy("php_ok", "php", "<?php echo 'ok';");
    wait_until("the new worker answers", Duration::from_secs(20), || {
        server.post("/invoke?fn=php_ok", "").status == 200
    });
}

/// Every way a QuickJS script could reach the host API behind the prelude.
/// `import` itself works (ES modules: files and Node's builtins), so what
/// is checked is that no name reaches QuickJS's own modules.
const JS_IMPORTS: &str = r#"
const names = ['qjs:std', 'qjs:os', 'qjs:bjson', 'std', 'os', 'bjson', '/faas/prelude.js', 'file:///faas/prelude.js', 'node:qjs:std', '<input>'];
const r = {};
for (const k of ['std', 'os', 'bjson', 'scriptArgs', 'print', '__faas_compile_module']) r['global_' + k] = typeof globalThis[k];
r.indirect = typeof (0, eval)('this').std;
r.function_ctor = Function('return typeof std')();
// Replacing what the prelude's resolver uses does not open a way either.
const path = require('path');
for (const k of ['resolve', 'normalize', 'join', 'dirname']) path[k] = () => 'qjs:std';
Promise.allSettled(names.map((n) => import(n)).concat([eval("import('qjs:std')"), import('./x')]))
  .then((results) => {
    results.forEach((res, i) => {
      const key = names[i] || (i === names.length ? 'eval' : 'tampered');
      r[key] = res.status === 'fulfilled' ? 'IMPORTED ' + Object.keys(res.value.default || res.value).sort().join(',') : String(res.reason);
    });
    console.log(JSON.stringify(r));
  });
"#;

#[test]
fn quickjs_host_modules_cannot_be_imported() {
    let server = TestServer::start("RR", &["--workers", "1"]);
    server.deploy("js_imports", "js", JS_IMPORTS);
    let r = report(&server, "js_imports");
    for (key, value) in r.as_object().unwrap() {
        let value = value.as_str().unwrap();
        if key.starts_with("global_") || key == "indirect" || key == "function_ctor" {
            assert_eq!(value, "undefined", "{key}: {r}");
        } else if key.starts_with("qjs:") || key == "eval" {
            assert!(
                value.contains("QuickJS's own modules are not available to functions"),
                "{key}: {value}: {r}"
            );
        } else if key == "os" {
            // Node's os module, from the prelude: not QuickJS's.
            assert!(value.starts_with("IMPORTED "), "{key}: {value}: {r}");
            assert!(value.contains("platform"), "{key}: {value}: {r}");
            for host in ["exec", "open", "readdir", "setReadHandler"] {
                assert!(
                    !value.split([' ', ',']).any(|k| k == host),
                    "{key}: {value}: {r}"
                );
            }
        } else {
            assert!(!value.starts_with("IMPORTED"), "{key}: {value}: {r}");
            assert!(
                value.contains("Cannot find module") || value.contains("cannot import"),
                "{key}: {value}: {r}"
            );
        }
    }
    // A static import fails the call, naming why, before any of the
    // function's code runs.
    server.deploy(
        "js_static",
        "js",
        "import * as std from 'qjs:std';\nconsole.log('ran');\nstd.out.puts('x');\n",
    );
    let resp = server.post("/invoke?fn=js_static", "");
    assert_eq!(resp.status, 500, "{}", resp.body);
    assert_eq!(resp.json()["output"], "", "{}", resp.body);
    assert!(
        resp.json()["stderr"]
            .as_str()
            .unwrap()
            .contains("modules are not available"),
        "{}",
        resp.body
    );
    // An import that is awaited at top level fails the call cleanly...
    server.deploy(
        "js_awaited",
        "js",
        "import('qjs:os').then((os) => console.log(typeof os.exec), (e) => { console.error(String(e)); process.exit(3); });",
    );
    let resp = server.post("/invoke?fn=js_awaited", "");
    assert_eq!(resp.status, 500, "{}", resp.body);
    assert_eq!(resp.json()["exit_code"], 3, "{}", resp.body);
    assert!(
        resp.json()["stderr"]
            .as_str()
            .unwrap()
            .contains("modules are not available"),
        "{}",
        resp.body
    );
    // ...and the worker serves on; the prelude still works.
    server.deploy(
        "js_fine",
        "js",
        "const fs = require('fs'); fs.writeFileSync('/tmp/x', 'ok'); process.stdout.write(fs.readFileSync('/tmp/x', 'utf8'));",
    );
    let resp = server.post("/invoke?fn=js_fine", "");
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.json()["output"], "ok");
}

#[test]
fn a_functions_stderr_is_logged_at_info_with_its_request_id_and_capped() {
    let server = TestServer::start("RR", &["--workers", "1"]);
    let cases = [
        ("err_js", "js", "process.stderr.write('stderr-of-js\\nsecond line\\n');"),
        (
            "err_py",
            "python",
            "import sys\nsys.stderr.write('stderr-of-python\\n')\n",
        ),
        (
            "err_php",
            "php",
            "<?php fwrite(STDERR, \"stderr-of-php\\n\");",
        ),
        (
            "err_c",
            "c",
            "#include <stdio.h>\nint main(void) { fprintf(stderr, \"stderr-of-c\\n\"); return 0; }\n",
        ),
    ];
    for (name, lang, code) in cases {
        server.deploy(name, lang, code);
        let resp = server.post(&format!("/invoke?fn={name}"), "");
        assert_eq!(resp.status, 200, "{name}: {}", resp.body);
    }
    for marker in [
        "stderr: stderr-of-js\\nsecond line\\n",
        "stderr: stderr-of-python\\n",
        "stderr: stderr-of-php\\n",
        "stderr: stderr-of-c\\n",
    ] {
        wait_for_log(&server, marker, Duration::from_secs(10));
        let log = server.log_text();
        let line = log.lines().find(|l| l.contains(marker)).unwrap();
        assert!(line.contains("[WORKER-0] INFO"), "{line}");
        assert!(line.contains(" req="), "{line}");
    }
    // A flood is cut: the first 2 KiB, marked, on one line.
    server.deploy(
        "err_flood",
        "js",
        "process.stderr.write('flood-'.repeat(20000));",
    );
    assert_eq!(server.post("/invoke?fn=err_flood", "").status, 200);
    wait_for_log(
        &server,
        "[truncated, 120000 bytes]",
        Duration::from_secs(10),
    );
    let log = server.log_text();
    let line = log.lines().find(|l| l.contains("flood-flood")).unwrap();
    assert!(line.len() < 2048 + 200, "{} bytes", line.len());
    assert!(line.contains(" fn=err_flood_"), "{line}");
}
