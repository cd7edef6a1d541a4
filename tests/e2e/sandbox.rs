//! Every function runs in a sandbox: JavaScript and Python in WebAssembly
//! (QuickJS, CPython), PHP in bubblewrap. Hostile functions try to reach the
//! host, the network, the store and the control plane; every attempt fails
//! and the platform serves the next call.

use std::time::{Duration, Instant};

use crate::harness::{example, TestServer};

/// Tries each escape and prints a JSON report: `denied...` or `ALLOWED`.
const HOSTILE_PY: &str = r#"
import json, os, sys, time
store, port = sys.stdin.read().split()
r = {}
def attempt(name, fn):
    try:
        fn()
        r[name] = 'ALLOWED'
    except BaseException as e:
        r[name] = 'denied: ' + type(e).__name__
def connect():
    import socket
    s = socket.socket()
    s.connect(('127.0.0.1', int(port)))
def spawn():
    import subprocess
    subprocess.run(['ls'])
attempt('etc', lambda: open('/etc/passwd').read())
attempt('store', lambda: os.listdir(store))
attempt('proc', lambda: open('/proc/self/environ').read())
attempt('gateway', connect)
attempt('spawn', spawn)
attempt('fork', lambda: os.fork())
attempt('write_root', lambda: open('/escape.txt', 'w').write('x'))
attempt('write_script', lambda: open('/faas/code.py', 'w').write('x'))
r['env'] = sorted(os.environ)
print(json.dumps(r))
"#;

const HOSTILE_JS: &str = r#"
const fs = require('fs');
const [store, port] = fs.readFileSync(0, 'utf8').split(' ');
const r = {};
function attempt(name, fn) { try { fn(); r[name] = 'ALLOWED'; } catch (e) { r[name] = 'denied: ' + e.name; } }
attempt('etc', () => fs.readFileSync('/etc/passwd'));
attempt('store', () => fs.readdirSync(store));
attempt('proc', () => fs.readFileSync('/proc/self/environ'));
attempt('write_root', () => fs.writeFileSync('/escape.txt', 'x'));
attempt('write_script', () => fs.writeFileSync('/faas/code.js', 'x'));
attempt('host_modules', () => { if (typeof std === 'object' || typeof os === 'object') return; throw new Error('none'); });
attempt('child_process', () => require('child_process'));
attempt('net', () => require('net'));
r.env = Object.keys(process.env).sort();
console.log(JSON.stringify(r));
"#;

const HOSTILE_PHP: &str = r#"<?php
[$store, $port] = explode(' ', trim(stream_get_contents(STDIN)));
$r = [];
$r['etc'] = @file_get_contents('/etc/passwd') === false ? 'denied' : 'ALLOWED';
$r['store'] = @scandir($store) === false ? 'denied' : 'ALLOWED';
$r['host_proc'] = @file_get_contents('/proc/1/cmdline') === 'bwrap' ? 'denied' : (count(glob('/proc/[0-9]*')) <= 3 ? 'denied' : 'ALLOWED');
$s = @fsockopen('127.0.0.1', (int)$port, $en, $es, 1);
$r['gateway'] = $s === false ? 'denied' : 'ALLOWED';
$r['write_root'] = @file_put_contents('/escape.txt', 'x') === false ? 'denied' : 'ALLOWED';
$r['write_script'] = @file_put_contents('/faas/code.php', 'x') === false ? 'denied' : 'ALLOWED';
$r['uid'] = posix_getuid();
// Processes left behind, one of them in a session of its own.
exec('sleep 300 > /dev/null 2>&1 &');
exec('setsid sleep 301 > /dev/null 2>&1 &');
$e = getenv(); ksort($e);
$r['env'] = array_keys($e);
echo json_encode($r), "\n";
"#;

fn assert_all_denied(lang: &str, report: &serde_json::Value) {
    for (attempt, outcome) in report.as_object().unwrap() {
        if let Some(text) = outcome.as_str() {
            assert!(
                text.starts_with("denied"),
                "{lang}: {attempt} was {text}: {report}"
            );
        }
    }
}

#[test]
fn hostile_functions_in_every_language_reach_nothing() {
    let secret = "sandbox-secret-the-function-must-not-see";
    let server = TestServer::start_with_env("RR", &[], &[("FAAS_TEST_SECRET", secret)]);
    let port = server.addr.rsplit(':').next().unwrap().to_string();
    let store = server.functions_dir().display().to_string();
    let payload = format!("{store} {port}");
    let cases = [
        (
            "python",
            HOSTILE_PY,
            &["FAAS_FUNCTION", "FAAS_REQUEST_ID"][..],
        ),
        ("js", HOSTILE_JS, &["FAAS_FUNCTION", "FAAS_REQUEST_ID"][..]),
        (
            "php",
            HOSTILE_PHP,
            &[
                "FAAS_FUNCTION",
                "FAAS_REQUEST_ID",
                "HOME",
                "LANG",
                "PATH",
                "PWD",
                "TMPDIR",
            ][..],
        ),
    ];
    for (lang, code, _) in cases {
        server.deploy(&format!("hostile_{lang}"), lang, code);
    }
    let listed = server.get("/functions").body;
    for (lang, _, env) in cases {
        let resp = server.post(&format!("/invoke?fn=hostile_{lang}"), &payload);
        assert_eq!(resp.status, 200, "{lang}: {}", resp.body);
        let out = resp.json()["output"].as_str().unwrap().to_string();
        assert!(!out.contains(secret), "{lang} saw the server's environment");
        let report: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_all_denied(lang, &report);
        assert_eq!(report["env"], serde_json::json!(env), "{lang}");
        if lang == "php" {
            let worker = resp.json()["worker_id"].as_u64().unwrap();
            let expected = if nix::unistd::Uid::effective().is_root() {
                server.uid_base() + worker
            } else {
                u64::from(nix::unistd::Uid::effective().as_raw())
            };
            assert_eq!(report["uid"], expected, "each worker slot has its own uid");
        }
    }
    // Nothing was deployed from inside, nothing written to the host.
    assert_eq!(server.get("/functions").body, listed);
    assert!(!std::path::Path::new("/escape.txt").exists());
    // What PHP left running died with its call, even the setsid one.
    // Generous: the reaping is what is tested, not its speed (the whole
    // suite running beside it slowed it past 3 s once). A failure shows
    // the survivors' pid, parent, user, state and age, to say which path
    // let them live.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while leftover_sleeps(&["300", "301"]) > 0 {
        if std::time::Instant::now() > deadline {
            let ps = std::process::Command::new("ps")
                .args(["-eo", "pid,ppid,user,stat,etime,args"])
                .output()
                .unwrap();
            let survivors: Vec<String> = String::from_utf8_lossy(&ps.stdout)
                .lines()
                .filter(|l| l.contains("sleep 30") || l.contains("bwrap") || l.contains("php"))
                .map(str::to_string)
                .collect();
            panic!(
                "a function's process outlived its call:\n{}\n{}",
                survivors.join("\n"),
                ancestry_of_sleeps(&["300", "301"])
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // And the platform still serves.
    server.deploy("after", "c", &example("hello.c"));
    assert_eq!(server.post("/invoke?fn=after", "").status, 200);
}

/// For each live `sleep N` (N in `seconds`): its line of ancestors, each
/// with its session, PID namespace, pending signals (a SIGKILL sent but not
/// yet acted on shows in `ShdPnd`/`SigPnd` as bit 9, 0x100) and what it
/// waits in: whether it was never signalled, or was and is stuck dying.
fn ancestry_of_sleeps(seconds: &[&str]) -> String {
    let field = |status: &str, name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or("?")
            .trim()
            .to_string()
    };
    let mut out = String::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for pid in entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok()) {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let args = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let slept = args.trim().strip_prefix("sleep ").unwrap_or("");
        if !seconds.contains(&slept) {
            continue;
        }
        let mut at = pid;
        for _ in 0..8 {
            let status = std::fs::read_to_string(format!("/proc/{at}/status")).unwrap_or_default();
            let stat = std::fs::read_to_string(format!("/proc/{at}/stat")).unwrap_or_default();
            let session = stat
                .rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().nth(3))
                .unwrap_or("?")
                .to_string();
            let ns = std::fs::read_link(format!("/proc/{at}/ns/pid"))
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            let wchan = std::fs::read_to_string(format!("/proc/{at}/wchan")).unwrap_or_default();
            let cmd = std::fs::read(format!("/proc/{at}/cmdline")).unwrap_or_default();
            out.push_str(&format!(
                "{}{at} {} state {} ppid {} sid {session} uid {} {ns} NSpid {} SigPnd {} ShdPnd {} wchan {wchan}\n",
                if at == pid { "" } else { "  <- " },
                String::from_utf8_lossy(&cmd).replace('\0', " ").chars().take(60).collect::<String>(),
                field(&status, "State:"),
                field(&status, "PPid:"),
                field(&status, "Uid:")
                    .split_whitespace()
                    .next()
                    .unwrap_or("?"),
                field(&status, "NSpid:"),
                field(&status, "SigPnd:"),
                field(&status, "ShdPnd:"),
            ));
            match field(&status, "PPid:").parse::<u32>() {
                Ok(parent) if parent > 1 => at = parent,
                _ => break,
            }
        }
    }
    out
}

/// Live `sleep N` processes on the host, for each N of `seconds` (each test
/// sleeps its own durations, so that tests running side by side never
/// count each other's).
fn leftover_sleeps(seconds: &[&str]) -> usize {
    let ps = std::process::Command::new("ps")
        .args(["-eo", "stat=,args="])
        .output()
        .unwrap();
    String::from_utf8_lossy(&ps.stdout)
        .lines()
        .filter(|l| {
            let (stat, args) = l.trim_start().split_once(' ').unwrap_or((l, ""));
            let slept = args.trim().strip_prefix("sleep ").unwrap_or("");
            seconds.contains(&slept) && !stat.starts_with('Z')
        })
        .count()
}

#[test]
fn runaway_scripts_get_clean_errors_and_the_next_call_works() {
    let server = TestServer::start(
        "RR",
        &[
            "--workers",
            "1",
            "--timeout-ms",
            "1500",
            "--max-memory-mb",
            "64",
            "--max-output-bytes",
            "1000",
        ],
    );
    let runaways = [
        (
            "js",
            "while (true) {}\n",
            "let a = []; while (true) a.push(new Array(1e6).fill(1));\n",
            "while (true) process.stdout.write('0123456789');\n",
        ),
        (
            "python",
            "while True:\n    pass\n",
            "x = []\nwhile True:\n    x.append(bytearray(1 << 20))\n",
            "import sys\nfor _ in range(100000):\n    sys.stdout.write('0123456789')\n",
        ),
        (
            "php",
            "<?php while (true) {}\n",
            "<?php $a = []; while (true) $a[] = str_repeat('x', 1 << 20);\n",
            "<?php for ($i = 0; $i < 100000; $i++) echo '0123456789';\n",
        ),
    ];
    for (lang, spin, hog, chatty) in runaways {
        server.deploy(&format!("spin_{lang}"), lang, spin);
        server.deploy(&format!("hog_{lang}"), lang, hog);
        server.deploy(&format!("chatty_{lang}"), lang, chatty);
        let hello = format!(
            "hello.{}",
            match lang {
                "python" => "py",
                other => other,
            }
        );
        server.deploy(&format!("ok_{lang}"), lang, &example(&hello));

        let e = server
            .post(&format!("/invoke?fn=spin_{lang}"), "")
            .assert_error(504);
        assert!(e.contains("timed out"), "{lang}: {e}");

        let resp = server.post(&format!("/invoke?fn=hog_{lang}"), "");
        resp.assert_error(500);
        let stderr = resp.json()["stderr"].as_str().unwrap().to_lowercase();
        assert!(stderr.contains("memory"), "{lang}: {stderr}");

        let resp = server.post(&format!("/invoke?fn=chatty_{lang}"), "");
        let body = resp.json();
        assert_eq!(body["truncated"], true, "{lang}: {body}");
        assert_eq!(body["output"].as_str().unwrap().len(), 1000, "{lang}");

        let resp = server.post(&format!("/invoke?fn=ok_{lang}"), "still here");
        assert_eq!(resp.status, 200, "{lang}: {}", resp.body);
        assert_eq!(
            resp.json()["output"],
            "Hello from FAAS!\nstill here",
            "{lang}"
        );
    }
    assert_eq!(server.get("/stats").json()["worker_restarts"][0], 0);
}

#[test]
fn python_polls_return_at_once_and_sleeps_end_at_the_deadline() {
    let server = TestServer::start("RR", &["--workers", "1", "--timeout-ms", "1000"]);
    // `import selectors` probes poll with a zero timeout: it used to hang.
    server.deploy(
        "poller",
        "python",
        "import selectors, select, time\nt = time.time()\nselect.select([], [], [], 0)\ntime.sleep(0.05)\nprint(round(time.time() - t, 2))\n",
    );
    // A poll that hung would turn this call into a 504 at the 1 s deadline.
    let resp = server.post("/invoke?fn=poller", "");
    assert_eq!(resp.status, 200, "{}", resp.body);
    let slept: f64 = resp.json()["output"]
        .as_str()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(slept >= 0.05, "the sleep was cut short: {slept}");
    let pid = server.get("/stats").json()["worker_pids"][0].clone();

    // A sleep in a host call ends at the deadline, and the worker stays.
    server.deploy("sleeper", "python", "import time\ntime.sleep(30)\n");
    let started = Instant::now();
    let e = server.post("/invoke?fn=sleeper", "").assert_error(504);
    assert!(e.contains("timed out after 1000 ms"), "{e}");
    assert!(started.elapsed() >= Duration::from_millis(1000));
    assert_eq!(server.post("/invoke?fn=poller", "").status, 200);
    let stats = server.get("/stats").json();
    assert_eq!(
        stats["worker_pids"][0], pid,
        "the worker stopped the guest itself"
    );
    assert_eq!(stats["worker_restarts"][0], 0);
}

#[test]
fn the_function_store_is_private_to_the_server() {
    use std::os::unix::fs::PermissionsExt;
    let server = TestServer::start("RR", &["--workers", "1"]);
    let id = server.deploy("private", "python", &example("hello.py"));
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&server.functions_dir()), 0o700);
    let dir = server.functions_dir().join(&id);
    assert_eq!(mode(&dir), 0o700);
    for file in ["code.py", "metadata.json"] {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }
}

#[test]
fn a_missing_interpreter_answers_503_naming_make_toolchains() {
    let empty = tempfile::tempdir().unwrap();
    let dir = empty.path().display().to_string();
    let server = TestServer::start("RR", &["--workers", "1", "--runtimes-dir", &dir]);
    for (lang, file) in [("js", "hello.js"), ("python", "hello.py")] {
        let e = server
            .post(
                &format!("/deploy?name=x_{lang}&lang={lang}"),
                &example(file),
            )
            .assert_error(503);
        assert!(e.contains("make toolchains"), "{e}");
    }
    server.deploy("c_still_works", "c", &example("hello.c"));
    drop(server);

    // Corrupt modules: 503 naming `make toolchains` too, never a crash.
    std::fs::write(empty.path().join("qjs.wasm"), b"not wasm").unwrap();
    std::fs::write(empty.path().join("python.wasm"), b"\0asm junk").unwrap();
    let server = TestServer::start("RR", &["--workers", "1", "--runtimes-dir", &dir]);
    for (lang, file) in [("js", "hello.js"), ("python", "hello.py")] {
        let e = server
            .post(
                &format!("/deploy?name=y_{lang}&lang={lang}"),
                &example(file),
            )
            .assert_error(503);
        assert!(e.contains("make toolchains"), "{e}");
    }
    assert_eq!(server.get("/health").status, 200);
}

#[test]
fn native_runtimes_on_request_run_inside_bubblewrap_too() {
    let server = TestServer::start("RR", &["--workers", "1", "--native-js", "--native-python"]);
    let port = server.addr.rsplit(':').next().unwrap().to_string();
    for (lang, file) in [("js", "hello.js"), ("python", "hello.py")] {
        server.deploy(&format!("n_{lang}"), lang, &example(file));
        let resp = server.post(&format!("/invoke?fn=n_{lang}"), "native");
        assert_eq!(resp.status, 200, "{lang}: {}", resp.body);
        assert_eq!(resp.json()["output"], "Hello from FAAS!\nnative", "{lang}");
    }
    // node and python3 run, but inside the same sandbox as PHP.
    let probe = format!(
        "import json, os, socket\nr = {{}}\ntry:\n    open('/etc/passwd').read(); r['etc'] = 'ALLOWED'\nexcept OSError:\n    r['etc'] = 'denied'\ntry:\n    socket.create_connection(('127.0.0.1', {port}), 1); r['gateway'] = 'ALLOWED'\nexcept OSError:\n    r['gateway'] = 'denied'\nr['cwd'] = os.getcwd()\nprint(json.dumps(r))\n"
    );
    server.deploy("n_probe", "python", &probe);
    let resp = server.post("/invoke?fn=n_probe", "");
    assert_eq!(resp.status, 200, "{}", resp.body);
    let out = resp.json();
    let report: serde_json::Value = serde_json::from_str(out["output"].as_str().unwrap()).unwrap();
    assert_eq!(report["etc"], "denied", "{report}");
    assert_eq!(report["gateway"], "denied", "{report}");
    assert_eq!(report["cwd"], "/tmp", "{report}");
    // Deploy checks use the host runtimes then.
    let e = server
        .post("/deploy?name=n_bad&lang=js", "function (\n")
        .assert_error(422);
    assert!(e.contains("SyntaxError"), "{e}");
}

#[test]
fn a_php_call_that_fills_tmp_gets_enospc_and_one_that_forks_without_end_is_stopped() {
    let server = TestServer::start("RR", &["--workers", "1"]);
    // Writing without end: the 16 MiB /tmp fills, the write fails (ENOSPC)
    // and the function goes on; the next call's /tmp is fresh again.
    let filler = "<?php\necho file_exists('/tmp/fill') ? \"tmp not fresh\\n\" : \"tmp fresh\\n\";\n$chunk = str_repeat('x', 1 << 20);\n$f = fopen('/tmp/fill', 'w');\n$mib = 0;\nfor ($i = 0; $i < 64; $i++) { if (@fwrite($f, $chunk) !== strlen($chunk)) break; $mib++; }\necho \"full after $mib MiB\\n\";\n";
    server.deploy("filler", "php", filler);
    for _ in 0..2 {
        let resp = server.post("/invoke?fn=filler", "");
        assert_eq!(resp.status, 200, "{}", resp.body);
        let out = resp.json()["output"].as_str().unwrap().to_string();
        let mib: u32 = out
            .strip_prefix("tmp fresh\nfull after ")
            .and_then(|s| s.strip_suffix(" MiB\n"))
            .unwrap_or_else(|| panic!("{out}"))
            .parse()
            .unwrap();
        assert!((14..=16).contains(&mib), "{out}");
    }
    // The function's own cap, set at deploy, applies to PHP's /tmp too.
    let resp = server.post("/deploy?name=smallfill&lang=php&max_tmp_mb=4", filler);
    assert_eq!(resp.status, 201, "{}", resp.body);
    let resp = server.post("/invoke?fn=smallfill", "");
    let out = resp.json()["output"].as_str().unwrap().to_string();
    assert!(
        out == "tmp fresh\nfull after 3 MiB\n" || out == "tmp fresh\nfull after 4 MiB\n",
        "{out}"
    );
    // Forking without end: the process limit of the slot's uid stops it,
    // and every process it started dies with the call.
    let forker = "<?php\n$started = 0;\nfor ($i = 0; $i < 60; $i++) { $out = []; $rc = 1; @exec('sleep 302 > /dev/null 2>&1 & echo ok', $out, $rc); if ($rc === 0 && ($out[0] ?? '') === 'ok') $started++; }\necho \"started $started\\n\";\n";
    server.deploy("forker", "php", forker);
    let resp = server.post("/invoke?fn=forker", "");
    assert_eq!(resp.status, 200, "{}", resp.body);
    let started: u32 = resp.json()["output"]
        .as_str()
        .unwrap()
        .trim()
        .strip_prefix("started ")
        .unwrap()
        .parse()
        .unwrap();
    assert!(started < 60, "no process limit: {started}");
    crate::harness::wait_until(
        "a forked process outlived its call",
        // Generous: the reaping is what is tested, not its speed (the whole
        // suite running beside it slowed it past 3 s once).
        Duration::from_secs(30),
        || leftover_sleeps(&["302"]) == 0,
    );
    server.deploy("ok", "php", &example("hello.php"));
    assert_eq!(server.post("/invoke?fn=ok", "x").status, 200);
}
