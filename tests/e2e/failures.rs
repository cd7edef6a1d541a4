//! Typed failures end to end: a call that cannot run says why, with the
//! status its kind maps to. A runtime or sandbox missing on this host is 503
//! naming what to install or enable (never `Retry-After`: waiting does not
//! install it); a module that must be redeployed is 500 saying so; the LB's
//! refusals keep their kind (queue full: 503 with `Retry-After`, in
//! `limits.rs`; no worker up: 503).

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::harness::{example, http_bytes, wait_for, wait_for_log, worker_bin, TestServer};

/// Asserts a failed call's JSON answer on both routes: `status`, `kind`,
/// no `Retry-After`, and an error naming every one of `names`.
fn assert_failure(server: &TestServer, name: &str, status: u16, kind: &str, names: &[&str]) {
    for path in [format!("/invoke?fn={name}"), format!("/fn/{name}")] {
        let (got, headers, body) = http_bytes(&server.addr, "POST", &path, &[], b"x");
        let body = String::from_utf8_lossy(&body);
        assert_eq!(got, status, "{path}: {body}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["ok"], false, "{path}: {body}");
        assert_eq!(json["kind"], kind, "{path}: {body}");
        let error = json["error"].as_str().unwrap();
        for needle in names {
            assert!(error.contains(needle), "{path}: {error}");
        }
        assert!(
            !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("retry-after")),
            "{path}: {headers:?}"
        );
    }
}

#[test]
fn a_php_function_on_a_host_without_its_runtime_or_sandbox_answers_503_naming_the_fix() {
    let server = TestServer::start("RR", &["--workers", "1"]);
    server.deploy("page", "php", &example("hello.php"));
    assert_eq!(server.post("/invoke?fn=page", "").status, 200);

    // The same store on a host without php: the runtime is named.
    let mut server = server;
    server
        .env
        .push(("FAAS_PHP".into(), "/nonexistent/php".into()));
    let mut server = server.restart();
    assert_failure(
        &server,
        "page",
        503,
        "runtime_missing",
        &["php", "FAAS_PHP", "make toolchains"],
    );
    let ring = server.get("/function/page/invocations").json();
    assert_eq!(ring["invocations"][0]["status"], "runtime_missing");

    // With php, but without bubblewrap: what to install or enable.
    server.env.retain(|(k, _)| k != "FAAS_PHP");
    server
        .env
        .push(("FAAS_BWRAP".into(), "/nonexistent/bwrap".into()));
    let server = server.restart();
    assert_failure(
        &server,
        "page",
        503,
        "sandbox_unavailable",
        &[
            "/nonexistent/bwrap",
            "install bubblewrap",
            "--allow-unconfined-native",
        ],
    );
    // The worker is still there for everything else.
    server.deploy("c_ok", "c", &example("hello.c"));
    assert_eq!(server.post("/invoke?fn=c_ok", "").status, 200);
}

#[test]
fn a_script_whose_interpreter_went_missing_answers_503_naming_make_toolchains() {
    let server = TestServer::start("RR", &["--workers", "1"]);
    server.deploy("js_page", "js", &example("hello.js"));
    assert_eq!(server.post("/invoke?fn=js_page", "").status, 200);
    let empty = tempfile::tempdir().unwrap();
    let mut server = server;
    server.args.push("--runtimes-dir".into());
    server.args.push(empty.path().display().to_string());
    let server = server.restart();
    assert_failure(
        &server,
        "js_page",
        503,
        "runtime_missing",
        &["js interpreter", "make toolchains"],
    );
}

#[test]
fn a_module_that_cannot_be_loaded_answers_500_saying_redeploy() {
    let server = TestServer::start("RR", &["--workers", "1"]);
    let id = server.deploy("broken", "c", &example("hello.c"));
    // Damaged on disk before any worker loaded it.
    let dir = server.functions_dir().join(&id);
    std::fs::write(dir.join("code.wasm"), b"\0asm but not a module").unwrap();
    std::fs::write(dir.join("code.wasmu"), b"not an artifact").unwrap();
    assert_failure(
        &server,
        "broken",
        500,
        "artifact_invalid",
        &[&id, "redeploy the function"],
    );
    // Redeploying is the fix.
    let resp = server.request(
        "PUT",
        "/function/broken?lang=c",
        example("hello.c").as_bytes(),
    );
    assert_eq!(resp.status, 201, "{}", resp.body);
    let resp = server.post("/invoke?fn=broken", "back");
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.json()["output"], "Hello from FAAS!\nback");
}

/// A worker program that starts once, says it is ready, dies, and cannot be
/// started again (it takes its own execute bits): the slot stays down. The
/// Server's other uses of the worker binary (no `--id`) get the real one.
fn worker_that_dies_for_good(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("dying-worker");
    let script = format!(
        "#!/bin/sh\ncase \" $* \" in\n  *\" --id \"*) ;;\n  *) exec '{}' \"$@\" ;;\nesac\necho 'worker ready (one that dies at once)' >&2\nchmod a-x \"$0\"\nexit 1\n",
        worker_bin().display()
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn no_worker_up_answers_503_without_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let worker = worker_that_dies_for_good(dir.path());
    let worker = worker.display().to_string();
    let server = TestServer::start("RR", &["--workers", "1", "--worker-bin", &worker]);
    wait_for(&server, "the only worker to be down", |s| {
        s["workers"][0]["up"] == false
    });
    wait_for_log(&server, "cannot start worker", Duration::from_secs(20));
    // html needs no toolchain, and still runs on a worker.
    server.deploy("page", "html", &example("hello.html"));
    for path in ["/invoke?fn=page", "/fn/page"] {
        let (status, headers, body) = http_bytes(&server.addr, "POST", path, &[], b"");
        let body = String::from_utf8_lossy(&body);
        assert_eq!(status, 503, "{path}: {body}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(
            json["error"].as_str().unwrap().contains("no worker is up"),
            "{path}: {body}"
        );
        assert!(
            !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("retry-after")),
            "{path}: {headers:?}"
        );
    }
    assert_eq!(server.get("/health").status, 200);
}
