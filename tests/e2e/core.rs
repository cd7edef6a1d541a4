//! The seed's flow end to end: deploy C, invoke, get the source; the process
//! topology; bad requests; restart; the standalone worker.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};

use crate::harness::{example, worker_bin, TestServer};

#[test]
fn deploy_invoke_and_source_of_the_seed_hello() {
    let server = TestServer::start("RR", &[]);
    let code = example("hello.c");
    let resp = server.post("/deploy?name=hello&lang=c", &code);
    assert_eq!(resp.status, 201, "{}", resp.body);
    let body = resp.json();
    assert_eq!(body["ok"], true);
    assert_eq!(body["name"], "hello");
    assert_eq!(body["lang"], "c");
    assert_eq!(body["wasm"], true);
    let id = body["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("hello_"), "{id}");

    // The store holds the source, metadata and module under functions/<id>/.
    let fdir = server.functions_dir().join(&id);
    assert_eq!(std::fs::read_to_string(fdir.join("code.c")).unwrap(), code);
    assert!(std::fs::metadata(fdir.join("code.wasm")).unwrap().len() > 0);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fdir.join("metadata.json")).unwrap())
            .unwrap();
    assert_eq!(meta["name"], "hello");
    assert_eq!(meta["id"], id.as_str());
    assert_eq!(meta["lang"], "c");
    assert_eq!(meta["sha256"].as_str().unwrap().len(), 64);

    // Invoke by id, no payload: the seed's answer.
    let resp = server.post(&format!("/invoke?fn={id}"), "");
    assert_eq!(resp.status, 200, "{}", resp.body);
    let out = resp.json();
    assert_eq!(out["ok"], true);
    assert_eq!(out["output"], "Hello from FAAS!\n");
    assert_eq!(out["exit_code"], 0);
    assert!(out["worker_id"].as_u64().unwrap() < 4);
    assert!(out["duration_ms"].as_f64().unwrap() >= 0.0);

    // Invoke by name with a payload the function echoes.
    let resp = server.post("/invoke?fn=hello", "ping \u{e9}\nline 2\n");
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(
        resp.json()["output"],
        "Hello from FAAS!\nping \u{e9}\nline 2\n"
    );

    // The source comes back as stored.
    let resp = server.get("/function/hello");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, code);
    assert!(resp
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    let resp = server.get(&format!("/function/{id}"));
    assert_eq!(resp.body, code);

    // And it is listed.
    let list = server.get("/functions").json();
    assert_eq!(list["functions"][0]["id"], id.as_str());
}

#[test]
fn four_workers_run_and_the_lb_socket_answers_invoke() {
    let server = TestServer::start("RR", &[]);
    let stats = server.get("/stats").json();
    let pids: Vec<u64> = stats["worker_pids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect();
    assert_eq!(pids.len(), 4);
    for pid in &pids {
        assert!(*pid > 0);
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        let cmdline = String::from_utf8_lossy(&cmdline);
        assert!(cmdline.contains("worker"), "{cmdline}");
        // Each worker is a child of the server process.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let ppid: u32 = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(ppid, server.pid());
    }
    assert_eq!(stats["strategy"], "RR");

    // The seed's LB exchange, spoken directly on the LB's UNIX socket.
    let mut lb = UnixStream::connect(server.lb_socket()).unwrap();
    lb.write_all(b"{\"type\":\"invoke\",\"req\":42,\"fn\":\"hello_1\",\"payload\":\"\"}\n")
        .unwrap();
    let mut line = String::new();
    BufReader::new(lb.try_clone().unwrap())
        .read_line(&mut line)
        .unwrap();
    let reply: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(reply["type"], "forward_to_worker", "{line}");
    assert_eq!(reply["req"], 42);
    assert!(reply["worker_id"].as_u64().unwrap() < 4);
    assert_eq!(reply["job"]["fn"], "hello_1");
    assert_eq!(reply["job"]["payload"], "");
    // Report the job as done so the counters stay true.
    let done = format!(
        "{{\"type\":\"job_done\",\"req\":42,\"worker_id\":{},\"ok\":true}}\n",
        reply["worker_id"]
    );
    lb.write_all(done.as_bytes()).unwrap();

    // A malformed line gets a typed error, and the connection stays usable.
    lb.write_all(b"this is not json\n{\"type\":\"stats\",\"req\":7}\n")
        .unwrap();
    let mut reader = BufReader::new(lb);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let err: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(err["type"], "error");
    line.clear();
    reader.read_line(&mut line).unwrap();
    let stats: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(stats["type"], "stats");
    assert_eq!(stats["req"], 7);
    assert_eq!(stats["workers"].as_array().unwrap().len(), 4);
}

#[test]
fn bad_requests_get_json_errors_and_store_nothing() {
    let server = TestServer::start("RR", &[]);
    let hello = example("hello.c");

    let e = server.post("/deploy?lang=c", &hello).assert_error(400);
    assert!(e.contains("name"), "{e}");
    server
        .post("/deploy?name=bad%20name&lang=c", &hello)
        .assert_error(400);
    server
        .post("/deploy?name=../etc&lang=c", &hello)
        .assert_error(400);
    let long = "x".repeat(65);
    server
        .post(&format!("/deploy?name={long}&lang=c"), &hello)
        .assert_error(400);
    let e = server
        .post("/deploy?name=ok&lang=cobol", &hello)
        .assert_error(400);
    assert!(e.contains("cobol"), "{e}");
    server.post("/deploy?name=ok&lang=c", "").assert_error(400);
    server
        .request("POST", "/deploy?name=bin&lang=c", &[0xff, 0xfe, 0x00])
        .assert_error(400);

    // A compile error: 422 with the compiler's message, nothing stored.
    let resp = server.post(
        "/deploy?name=broken&lang=c",
        "int main(void) { return undefined_thing; }\n",
    );
    let e = resp.assert_error(422);
    assert!(e.contains("compil"), "{e}");
    let details = resp.json()["details"].as_str().unwrap().to_string();
    assert!(details.contains("undefined_thing"), "{details}");
    assert!(!details.contains(server.functions_dir().to_str().unwrap()));
    let leftovers = server.stored_functions();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    server.get("/function/broken").assert_error(404);
    // The failed name is free again.
    server.deploy("broken", "c", &hello);

    // Duplicate name.
    server.deploy("dup", "c", &hello);
    let e = server
        .post("/deploy?name=dup&lang=c", &hello)
        .assert_error(409);
    assert!(e.contains("dup"), "{e}");

    // Unknown function, missing fn, unknown route, wrong method.
    server.post("/invoke?fn=nope", "").assert_error(404);
    server.post("/invoke", "").assert_error(400);
    server.get("/function/nope").assert_error(404);
    server.get("/nowhere").assert_error(404);
    let resp = server.get("/invoke?fn=dup");
    resp.assert_error(405);
    assert_eq!(resp.header("allow"), Some("POST"));
    server
        .post("/invoke?fn=dup", "still fine")
        .json()
        .get("output")
        .expect("server still serves after bad requests");
}

#[test]
fn a_failing_function_answers_500_with_its_output() {
    let server = TestServer::start("RR", &[]);
    server.deploy(
        "exits3",
        "c",
        "#include <stdio.h>\nint main(void){ printf(\"partial\\n\"); fprintf(stderr, \"bad thing\\n\"); return 3; }\n",
    );
    let resp = server.post("/invoke?fn=exits3", "");
    let e = resp.assert_error(500);
    assert!(e.contains('3'), "{e}");
    let body = resp.json();
    assert_eq!(body["output"], "partial\n");
    assert_eq!(body["stderr"], "bad thing\n");
    assert_eq!(body["exit_code"], 3);

    server.deploy(
        "traps",
        "c",
        "int main(void){ __builtin_trap(); return 0; }\n",
    );
    let resp = server.post("/invoke?fn=traps", "");
    let e = resp.assert_error(500);
    assert!(e.contains("trap"), "{e}");
    // The worker that ran the trap still serves.
    for _ in 0..4 {
        assert_eq!(server.post("/invoke?fn=exits3", "").status, 500);
    }
}

#[test]
fn functions_survive_a_restart() {
    let server = TestServer::start("RR", &[]);
    let id = server.deploy("keep", "c", &example("hello.c"));
    let server = server.restart();
    let resp = server.post(&format!("/invoke?fn={id}"), "again");
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.json()["output"], "Hello from FAAS!\nagain");
    assert_eq!(server.get("/function/keep").body, example("hello.c"));
    // Still taken after the restart.
    server
        .post("/deploy?name=keep&lang=c", &example("hello.c"))
        .assert_error(409);
}

#[test]
fn sequential_calls_go_round_robin() {
    let server = TestServer::start("RR", &[]);
    server.deploy("rr", "c", &example("hello.c"));
    let ids: Vec<u64> = (0..8)
        .map(|_| {
            server.post("/invoke?fn=rr", "").json()["worker_id"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(ids, [0, 1, 2, 3, 0, 1, 2, 3]);
}

#[test]
fn start_up_errors_are_one_line() {
    let server = TestServer::start("RR", &["--workers", "1"]);
    let port = server.addr.rsplit(':').next().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(crate::harness::server_bin())
        .args(["RR", "--port", &port, "--workers", "1"])
        .arg("--lb-socket")
        .arg(dir.path().join("lb.sock"))
        .arg("--server-socket")
        .arg(dir.path().join("s.sock"))
        .arg("--functions-dir")
        .arg(dir.path().join("f"))
        .arg("--worker-bin")
        .arg(worker_bin())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already in use"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    // Reusing a live server's LB socket is refused too.
    let out = Command::new(crate::harness::server_bin())
        .args(["RR", "--port", "0", "--workers", "1"])
        .arg("--lb-socket")
        .arg(server.lb_socket())
        .arg("--server-socket")
        .arg(dir.path().join("s.sock"))
        .arg("--functions-dir")
        .arg(dir.path().join("f"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use"));

    // An unknown strategy exits 2 and says why.
    let out = Command::new(crate::harness::server_bin())
        .arg("LIFO")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("LIFO"));
}

#[test]
fn stale_socket_files_are_replaced_and_removed_at_exit() {
    let dir = tempfile::tempdir().unwrap();
    // Leftovers of a crashed run: plain files at the socket paths.
    std::fs::write(dir.path().join("lb.sock"), b"").unwrap();
    let listener = std::os::unix::net::UnixListener::bind(dir.path().join("server.sock")).unwrap();
    drop(listener); // a socket file nobody listens on
    let args = vec!["RR".to_string(), "--workers".into(), "1".into()];
    let (mut child, log, addr) = crate::harness::spawn_server(dir.path(), &args);
    let addr = addr.unwrap_or_else(|| panic!("{}", log.lock().unwrap().join("\n")));
    let resp = crate::harness::http(&addr, "GET", "/health", b"");
    assert_eq!(resp.status, 200);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(!dir.path().join("lb.sock").exists());
    assert!(!dir.path().join("server.sock").exists());
}

#[test]
fn the_worker_runs_standalone() {
    // Compile the example through a server, then drive the worker by hand.
    let server = TestServer::start("RR", &["--workers", "1"]);
    let id = server.deploy("solo", "c", &example("hello.c"));
    let wasm = server.functions_dir().join(&id).join("code.wasm");

    // `worker run FILE.wasm`: terminal stdin/stdout, exit code passed on.
    let mut child = Command::new(worker_bin())
        .arg("run")
        .arg(&wasm)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"from a pipe\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Hello from FAAS!\nfrom a pipe\n"
    );

    let exit_id = server.deploy(
        "exit7",
        "c",
        "#include <stdlib.h>\n#include <stdio.h>\nint main(int c, char**v){ printf(\"%d %s %s\\n\", c, v[1], getenv(\"GREETING\")); exit(7); }\n",
    );
    let out = Command::new(worker_bin())
        .args(["run", "--env", "GREETING=salut"])
        .arg(server.functions_dir().join(&exit_id).join("code.wasm"))
        .arg("arg1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2 arg1 salut\n");

    // `--dir HOST:GUEST` maps a host directory; without it the module sees
    // no host files.
    let dir_id = server.deploy(
        "reads",
        "c",
        "#include <stdio.h>\nint main(void){ char b[64]; FILE *f = fopen(\"/data/in.txt\", \"r\"); if (!f) { puts(\"no file\"); return 2; } size_t n = fread(b, 1, 63, f); b[n] = 0; printf(\"read %s\", b); FILE *w = fopen(\"/data/out.txt\", \"w\"); fputs(\"written\", w); fclose(w); return 0; }\n",
    );
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("in.txt"), "from the host\n").unwrap();
    let reads_wasm = server.functions_dir().join(&dir_id).join("code.wasm");
    let out = Command::new(worker_bin())
        .arg("run")
        .arg(format!("--dir={}:/data", data.path().display()))
        .arg(&reads_wasm)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "read from the host\n");
    assert_eq!(
        std::fs::read_to_string(data.path().join("out.txt")).unwrap(),
        "written"
    );
    let out = Command::new(worker_bin())
        .arg("run")
        .arg(&reads_wasm)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "no file\n");

    // The JSON-lines mode, exactly as under the server: a `run` answers,
    // a `forget` does not, a line without `type` is a run, and a broken
    // line answers only when it says which request it is.
    let mut child = Command::new(worker_bin())
        .arg("--functions-dir")
        .arg(server.functions_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for line in [
        format!(r#"{{"type":"run","req":1,"fn":"{id}","payload":"by hand"}}"#),
        r#"{"req":2,"fn":"missing_fn"}"#.to_string(),
        format!(r#"{{"type":"forget","ids":["{id}"]}}"#),
        format!(r#"{{"type":"run","req":3,"fn":"{id}","payload":"again"}}"#),
        "garbage".to_string(),
        r#"{"type":"bogus","req":4}"#.to_string(),
    ] {
        writeln!(stdin, "{line}").unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let reqs: Vec<u64> = lines.iter().map(|l| l["req"].as_u64().unwrap()).collect();
    assert_eq!(reqs, [1, 2, 3, 4], "{lines:?}");
    assert_eq!(lines[0]["ok"], true);
    assert_eq!(lines[0]["output"], "Hello from FAAS!\nby hand");
    assert_eq!(lines[1]["kind"], "not_found");
    // Forgotten, then loaded again from the store.
    assert_eq!(lines[2]["output"], "Hello from FAAS!\nagain");
    assert_eq!(lines[3]["kind"], "bad_job");
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(log.matches("bad request line").count(), 2, "{log}");
}

#[test]
fn artifacts_are_built_at_deploy_reused_on_restart_and_rebuilt_when_stale() {
    let server = TestServer::start("RR", &["--workers", "1"]);
    let id = server.deploy("art", "c", &example("hello.c"));
    let other = server.deploy("art2", "c", &example("hello.c"));
    let artifact = server.functions_dir().join(&id).join("code.wasmu");
    let stale = server.functions_dir().join(&other).join("code.wasmu");
    let bytes = std::fs::read(&artifact).unwrap();
    assert!(bytes.starts_with(b"faas-artifact/2 wasmer=7.4.2 compiler=cranelift"));
    assert_eq!(server.post("/invoke?fn=art", "").status, 200);
    assert!(
        !server.log_text().contains("compiling code.wasm"),
        "a worker compiled although an artifact was there:\n{}",
        server.log_text()
    );
    let built_at = std::fs::metadata(&artifact).unwrap().modified().unwrap();

    // An artifact from "another Wasmer" must be rebuilt, not loaded.
    let mut old = std::fs::read(&stale).unwrap();
    let newline = old.iter().position(|&b| b == b'\n').unwrap();
    old.splice(
        ..newline,
        b"faas-artifact/2 wasmer=0.0.1 compiler=cranelift"
            .iter()
            .copied(),
    );
    std::fs::write(&stale, &old).unwrap();

    let server = server.restart();
    crate::harness::wait_for_log(
        &server,
        "rebuilt 1 stale artifacts",
        std::time::Duration::from_secs(30),
    );
    assert!(std::fs::read(&stale)
        .unwrap()
        .starts_with(b"faas-artifact/2 wasmer=7.4.2"));
    assert_eq!(
        std::fs::metadata(&artifact).unwrap().modified().unwrap(),
        built_at,
        "a current artifact was recompiled on restart"
    );
    assert_eq!(
        server.post("/invoke?fn=art2", "x").json()["output"],
        "Hello from FAAS!\nx"
    );
}

#[test]
fn every_call_gets_a_fresh_instance() {
    // One worker, so every call lands where the previous one ran (and where
    // the idle worker prepared the next instance).
    let server = TestServer::start("RR", &["--workers", "1"]);
    server.deploy(
        "counter",
        "c",
        "#include <stdio.h>\nstatic int calls;\nint main(void){ char b[64]; size_t n = fread(b, 1, sizeof b - 1, stdin); b[n] = 0; printf(\"%d %s\", ++calls, b); return 0; }\n",
    );
    for i in 0..6 {
        let payload = format!("p{i}");
        let resp = server.post("/invoke?fn=counter", &payload);
        assert_eq!(resp.status, 200, "{}", resp.body);
        assert_eq!(resp.json()["output"], format!("1 {payload}"));
        std::thread::sleep(std::time::Duration::from_millis(if i % 2 == 0 {
            50
        } else {
            0
        }));
    }
}

#[test]
fn worker_check_refuses_a_language_it_does_not_parse() {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "int main(void) { return 0; }\n").unwrap();
    let out = Command::new(worker_bin())
        .args(["check", "--lang", "c"])
        .arg(file.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("JavaScript and Python only"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
