//! The `faas` client's background-work commands against a real server:
//! `invoke --async [--callback]`, `call [--wait]`, `dlq ls|redrive|rm`,
//! and `deploy --retries --max-concurrency --schedule`.

use std::process::{Command, Output};
use std::time::Duration;

use crate::callbacks::{Receiver, ECHO_C, FAIL_C};
use crate::harness::{wait_until, TestServer};

fn faas(server: &TestServer, args: &[&str]) -> Output {
    let bin = crate::harness::worker_bin().with_file_name("faas");
    Command::new(&bin)
        .args(args)
        .env("FAAS_URL", format!("http://{}", server.addr))
        .env_remove("FAAS_TOKEN")
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (run `make`)", bin.display()))
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `faas ARGS`, which must succeed; its stdout.
fn ok(server: &TestServer, args: &[&str]) -> String {
    let out = faas(server, args);
    assert!(
        out.status.success(),
        "faas {args:?}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// Writes `code` to DIR/NAME and returns the path.
fn source(dir: &tempfile::TempDir, name: &str, code: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, code).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn invoke_async_and_call_wait_follow_a_call_and_its_callback() {
    let receiver = Receiver::answering(&[200]);
    let grant = receiver.grant();
    let server = TestServer::start("RR", &["--callback-allow", &grant]);
    let dir = tempfile::tempdir().unwrap();
    ok(&server, &["deploy", &source(&dir, "echo.c", ECHO_C)]);

    // The id alone on stdout, where to follow it on stderr.
    let out = faas(
        &server,
        &["invoke", "echo", "--async", "-d", "from the cli"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&out).trim().to_string();
    assert!(
        !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id:?}"
    );
    assert!(
        stderr(&out).contains(&format!("/invocation/{id}")),
        "{}",
        stderr(&out)
    );
    let shown = ok(&server, &["call", &id, "--wait"]);
    assert!(shown.contains("succeeded"), "{shown}");
    assert!(shown.contains("echo"), "{shown}");
    assert!(shown.trim_end().ends_with("got from the cli"), "{shown}");
    assert!(
        shown.contains("OUTCOME") && shown.contains(" ok "),
        "{shown}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(&server, &["call", &id, "--json"])).unwrap();
    assert_eq!(json["status"], "succeeded");
    assert_eq!(json["output"], "got from the cli");

    // With a callback, delivered and shown.
    let url = receiver.url("/cli");
    let id = ok(
        &server,
        &["invoke", "echo", "--async", "--callback", &url, "-d", "cb"],
    )
    .trim()
    .to_string();
    wait_until("the callback", Duration::from_secs(60), || {
        receiver.received().len() == 1
    });
    let got = receiver.received();
    assert_eq!(got[0].header("x-call-id"), Some(id.as_str()));
    assert_eq!(got[0].text(), "got cb");
    wait_until("the callback's record", Duration::from_secs(30), || {
        ok(&server, &["call", &id]).contains("delivered")
    });
    let shown = ok(&server, &["call", &id]);
    assert!(shown.contains(&url), "{shown}");
    assert!(shown.contains("last answer 200"), "{shown}");

    // A callback nobody granted: the server's 400, one line, nothing queued.
    let out = faas(
        &server,
        &[
            "invoke",
            "echo",
            "--async",
            "--callback",
            "http://10.1.2.3/x",
        ],
    );
    assert!(!out.status.success());
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    assert!(stderr(&out).contains("not allowed"), "{}", stderr(&out));
    assert!(stderr(&out).contains("HTTP 400"), "{}", stderr(&out));
    // --callback without --async is a usage error.
    let out = faas(&server, &["invoke", "echo", "--callback", &url]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--async"), "{}", stderr(&out));
    // An unknown call.
    let out = faas(&server, &["call", "00000000deadbeef"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("00000000deadbeef"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn dlq_lists_redrives_and_removes_dead_calls_and_deploy_passes_its_settings() {
    let server = TestServer::start("RR", &[]);
    let dir = tempfile::tempdir().unwrap();
    ok(
        &server,
        &[
            "deploy",
            &source(&dir, "fails.c", FAIL_C),
            "--retries",
            "1",
            "--max-concurrency",
            "1",
        ],
    );
    ok(&server, &["deploy", &source(&dir, "echo.c", ECHO_C)]);
    let listed = server.get("/functions").json();
    let fails = listed["functions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "fails")
        .unwrap()
        .clone();
    assert_eq!(fails["retries"], 1, "{fails}");
    assert_eq!(fails["max_concurrency"], 1, "{fails}");

    let id = ok(&server, &["invoke", "fails", "--async"])
        .trim()
        .to_string();
    // Dead: exit 1, and retries=1 made it two attempts.
    let out = faas(&server, &["call", &id, "--wait", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let call: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(call["status"], "dead");
    assert_eq!(call["attempts"].as_array().unwrap().len(), 2, "{call}");

    let table = ok(&server, &["dlq", "ls"]);
    assert!(table.starts_with("ID"), "{table}");
    let row = table.lines().find(|l| l.starts_with(&id)).expect(&table);
    assert!(row.contains("fails") && row.contains("exit"), "{row}");
    assert!(row.contains("exited with code 3"), "{row}");
    assert!(ok(&server, &["dlq", "ls", "--function", "fails"]).contains(&id));
    assert!(!ok(&server, &["dlq", "ls", "--function", "echo"]).contains(&id));
    let json: serde_json::Value =
        serde_json::from_str(&ok(&server, &["dlq", "ls", "--json"])).unwrap();
    assert_eq!(json["dead_letters"][0]["id"], id.as_str());

    assert_eq!(
        ok(&server, &["dlq", "redrive", &id]).trim(),
        format!("queued {id} again")
    );
    wait_until("the redriven call to run", Duration::from_secs(60), || {
        server.get(&format!("/invocation/{id}")).json()["attempts"]
            .as_array()
            .unwrap()
            .len()
            == 4
    });
    let out = faas(&server, &["call", &id, "--wait"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("dead"), "{}", stdout(&out));
    assert_eq!(
        ok(&server, &["dlq", "rm", &id]).trim(),
        format!("removed dead letter {id}")
    );
    assert!(!ok(&server, &["dlq", "ls"]).contains(&id));
    // Gone: the server's 404, one line.
    for args in [["dlq", "rm", &id], ["dlq", "redrive", &id]] {
        let out = faas(&server, &args);
        assert!(!out.status.success());
        assert!(stderr(&out).contains(&id), "{}", stderr(&out));
    }

    // Bad settings: the server names them.
    let out = faas(
        &server,
        &["deploy", &source(&dir, "bad.c", ECHO_C), "--retries", "11"],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("retries"), "{}", stderr(&out));
    let out = faas(
        &server,
        &[
            "deploy",
            &source(&dir, "bad2.c", ECHO_C),
            "--max-concurrency",
            "lots",
        ],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("max_concurrency"), "{}", stderr(&out));
    // --schedule reaches the server as schedule=: it schedules the
    // function, or (a server without schedules) refuses naming it.
    let out = faas(
        &server,
        &[
            "deploy",
            &source(&dir, "cron.c", ECHO_C),
            "--schedule",
            "*/5 * * * *",
        ],
    );
    assert!(
        out.status.success() || stderr(&out).contains("schedule"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    // What goes on the wire, seen by a stand-in server: every setting
    // as its deploy parameter, URL-encoded.
    let wire = Receiver::answering(&[201]);
    let out = Command::new(crate::harness::worker_bin().with_file_name("faas"))
        .args([
            "deploy",
            &source(&dir, "cron.c", ECHO_C),
            "--schedule",
            "*/5 * * * *",
            "--retries",
            "4",
            "--max-concurrency",
            "2",
        ])
        .env("FAAS_URL", format!("http://127.0.0.1:{}", wire.port))
        .env_remove("FAAS_TOKEN")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let got = wire.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].method, "POST");
    assert_eq!(
        got[0].path,
        "/deploy?name=cron&lang=c&schedule=%2A%2F5%20%2A%20%2A%20%2A%20%2A&retries=4&max_concurrency=2"
    );
}
