//! Background work: `POST /async/NAME` answers 202 at once and the call
//! runs later through the LB; failed attempts (non-zero exit, timeout,
//! worker crash) are retried with backoff until the call is dead; dead
//! letters are listed, redriven and forgotten; queued and running calls
//! survive a SIGKILL of the server; every bad input answers 400 or 404.

use std::time::Duration;

use crate::harness::{http_with_headers, wait_until, TestServer};

/// Prints what it was given and the platform's variables of the call.
const ECHO_C: &str = r#"#include <stdio.h>
#include <stdlib.h>
int main(void) {
    char buf[256] = {0};
    size_t n = fread(buf, 1, sizeof buf - 1, stdin);
    buf[n] = 0;
    const char *vars[] = {"FAAS_CALL_ID", "FAAS_ATTEMPT", "FAAS_HTTP_METHOD", "FAAS_HTTP_PATH",
                          "FAAS_HTTP_QUERY", "FAAS_HTTP_HEADER_X_TRACE", "FAAS_REQUEST_ID"};
    printf("in=%s\n", buf);
    for (int i = 0; i < 7; i++) {
        const char *v = getenv(vars[i]);
        printf("%s=%s\n", vars[i], v ? v : "-");
    }
    return 0;
}
"#;

/// Always fails, saying which attempt it was.
const FAIL_C: &str = r#"#include <stdio.h>
#include <stdlib.h>
int main(void) {
    const char *a = getenv("FAAS_ATTEMPT");
    fprintf(stderr, "attempt %s failed\n", a ? a : "?");
    return 3;
}
"#;

/// Its first attempt sleeps 30 s (past any deadline set below); later
/// attempts answer at once.
const SLOW_FIRST_C: &str = r#"#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(void) {
    const char *a = getenv("FAAS_ATTEMPT");
    if (a && strcmp(a, "1") == 0) sleep(30);
    printf("done on attempt %s\n", a ? a : "?");
    return 0;
}
"#;

/// Sleeps one second, then answers.
const SECOND_C: &str = r#"#include <stdio.h>
#include <unistd.h>
int main(void) {
    sleep(1);
    puts("slept");
    return 0;
}
"#;

/// Queues a call and returns its id, checking the 202 answer's shape.
fn enqueue(server: &TestServer, path: &str, body: &str) -> String {
    let resp = server.post(path, body);
    assert_eq!(resp.status, 202, "{}", resp.body);
    let json = resp.json();
    assert_eq!(json["ok"], true);
    let id = json["id"].as_str().expect("id").to_string();
    assert_eq!(json["status_url"], format!("/invocation/{id}"));
    assert_eq!(resp.header("x-call-id"), Some(id.as_str()));
    id
}

/// Polls `GET /invocation/ID` until its status is `status`.
fn wait_status(server: &TestServer, id: &str, status: &str) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    wait_until(
        &format!("call {id} never became {status}"),
        Duration::from_secs(120),
        || {
            let resp = server.get(&format!("/invocation/{id}"));
            assert_eq!(resp.status, 200, "{}", resp.body);
            last = resp.json();
            assert_ne!(
                (last["status"].as_str(), status),
                (Some("dead"), "succeeded"),
                "{last}"
            );
            last["status"] == status
        },
    );
    last
}

fn attempts(call: &serde_json::Value) -> &Vec<serde_json::Value> {
    call["attempts"].as_array().expect("attempts")
}

#[test]
fn an_async_call_runs_with_the_request_variables_and_keeps_its_output() {
    let server = TestServer::start("RR", &[]);
    server.deploy("echo", "c", ECHO_C);
    let resp = http_with_headers(
        &server.addr,
        "POST",
        "/async/echo/sub/path?q=1",
        b"hello",
        &[("X-Trace", "t-42"), ("X-Request-Id", "req-async-1")],
    );
    assert_eq!(resp.status, 202, "{}", resp.body);
    let id = resp.json()["id"].as_str().unwrap().to_string();
    let call = wait_status(&server, &id, "succeeded");
    let output = call["output"].as_str().expect("output");
    for line in [
        "in=hello".to_string(),
        format!("FAAS_CALL_ID={id}"),
        "FAAS_ATTEMPT=1".into(),
        "FAAS_HTTP_METHOD=POST".into(),
        "FAAS_HTTP_PATH=/sub/path".into(),
        "FAAS_HTTP_QUERY=q=1".into(),
        "FAAS_HTTP_HEADER_X_TRACE=t-42".into(),
        "FAAS_REQUEST_ID=req-async-1".into(),
    ] {
        assert!(
            output.lines().any(|l| l == line),
            "{line} missing: {output}"
        );
    }
    assert_eq!(call["function"], "echo");
    let tries = attempts(&call);
    assert_eq!(tries.len(), 1, "{call}");
    assert_eq!(tries[0]["outcome"], "ok");
    assert_eq!(tries[0]["exit_code"], 0);
    assert!(tries[0]["worker"].is_u64(), "{call}");
    assert!(call["finished_ms"].as_u64() >= call["created_ms"].as_u64());
    // The alias, as OpenFaaS users type it.
    let id = enqueue(&server, "/async-function/echo", "again");
    let call = wait_status(&server, &id, "succeeded");
    assert!(call["output"].as_str().unwrap().contains("in=again"));
}

#[test]
fn a_failing_call_is_dead_after_retries_plus_one_attempts_then_redriven_and_forgotten() {
    let server = TestServer::start("RR", &[]);
    server.deploy_with("fails", "c", FAIL_C, "retries=2&retry_backoff_ms=200");
    server.deploy("echo", "c", ECHO_C);
    let id = enqueue(&server, "/async/fails", "");
    let call = wait_status(&server, &id, "dead");
    let tries = attempts(&call);
    assert_eq!(tries.len(), 3, "{call}");
    for (i, attempt) in tries.iter().enumerate() {
        assert_eq!(attempt["number"], i + 1);
        assert_eq!(attempt["exit_code"], 3, "{call}");
        assert_eq!(attempt["outcome"], "exit", "{call}");
        let stderr = attempt["stderr"].as_str().unwrap();
        assert!(
            stderr.contains(&format!("attempt {} failed", i + 1)),
            "{stderr}"
        );
    }
    // Exponential backoff: at least 200 ms, then 400 ms between starts.
    let start = |i: usize| tries[i]["start_ms"].as_u64().unwrap();
    assert!(start(1) - start(0) >= 200, "{call}");
    assert!(start(2) - start(1) >= 400, "{call}");

    let listed = server.get("/dead-letters").json();
    let dead = listed["dead_letters"].as_array().unwrap();
    assert_eq!(dead.len(), 1, "{listed}");
    assert_eq!(dead[0]["id"], id.as_str());
    let of_fails = server.get("/dead-letters?function=fails").json();
    assert_eq!(of_fails["dead_letters"].as_array().unwrap().len(), 1);
    let of_echo = server.get("/dead-letters?function=echo").json();
    assert!(of_echo["dead_letters"].as_array().unwrap().is_empty());

    // A redrive queues it with a fresh budget: three more attempts.
    let resp = server.post(&format!("/dead-letters/{id}/redrive"), "");
    assert_eq!(resp.status, 202, "{}", resp.body);
    assert_eq!(resp.json()["id"], id.as_str());
    wait_until("the redriven call to run", Duration::from_secs(60), || {
        attempts(&server.get(&format!("/invocation/{id}")).json()).len() > 3
    });
    let call = wait_status(&server, &id, "dead");
    let tries = attempts(&call);
    assert_eq!(tries.len(), 6, "{call}");
    assert!(tries[5]["stderr"].as_str().unwrap().contains("attempt 6"));
    // Redriving a call that is not dead finds no dead letter.
    let ok = enqueue(&server, "/async/echo", "");
    wait_status(&server, &ok, "succeeded");
    server
        .post(&format!("/dead-letters/{ok}/redrive"), "")
        .assert_error(404);

    let resp = server.request("DELETE", &format!("/dead-letters/{id}"), b"");
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert!(server.get("/dead-letters").json()["dead_letters"]
        .as_array()
        .unwrap()
        .is_empty());
    server.get(&format!("/invocation/{id}")).assert_error(404);
    server
        .request("DELETE", &format!("/dead-letters/{id}"), b"")
        .assert_error(404);
}

#[test]
fn no_retries_means_one_attempt() {
    let server = TestServer::start("RR", &[]);
    server.deploy_with("fails", "c", FAIL_C, "retries=0");
    let id = enqueue(&server, "/async/fails", "");
    let call = wait_status(&server, &id, "dead");
    assert_eq!(attempts(&call).len(), 1, "{call}");
}

#[test]
fn a_timed_out_attempt_is_retried() {
    let server = TestServer::start("RR", &[]);
    server.deploy_with(
        "slow",
        "c",
        SLOW_FIRST_C,
        "timeout_ms=300&retry_backoff_ms=100",
    );
    let id = enqueue(&server, "/async/slow", "");
    let call = wait_status(&server, &id, "succeeded");
    let tries = attempts(&call);
    assert_eq!(tries.len(), 2, "{call}");
    assert_eq!(tries[0]["outcome"], "timeout", "{call}");
    assert_eq!(tries[1]["outcome"], "ok", "{call}");
    assert_eq!(call["output"], "done on attempt 2\n");
}

#[test]
fn a_worker_crash_during_an_attempt_is_a_failed_attempt() {
    let server = TestServer::start("RR", &[]);
    server.deploy_with("slow", "c", SLOW_FIRST_C, "retry_backoff_ms=100");
    let id = enqueue(&server, "/async/slow", "");
    let mut busy = None;
    wait_until(
        "the first attempt to start",
        Duration::from_secs(30),
        || {
            let stats = server.get("/stats").json();
            busy = stats["workers"]
                .as_array()
                .unwrap()
                .iter()
                .position(|w| w["in_flight"].as_u64() == Some(1));
            busy.is_some()
        },
    );
    crate::harness::kill_worker(&server, busy.unwrap());
    let call = wait_status(&server, &id, "succeeded");
    let tries = attempts(&call);
    assert_eq!(tries.len(), 2, "{call}");
    assert_eq!(tries[0]["outcome"], "worker_crashed", "{call}");
    assert_eq!(call["output"], "done on attempt 2\n");
}

#[test]
fn queued_and_running_calls_survive_a_sigkill_of_the_server() {
    let server = TestServer::start("RR", &["--workers", "8", "--async-concurrency", "8"]);
    server.deploy("second", "c", SECOND_C);
    let ids: Vec<String> = (0..100)
        .map(|_| enqueue(&server, "/async/second", ""))
        .collect();
    wait_until("an attempt to be running", Duration::from_secs(30), || {
        ids.iter()
            .any(|id| server.get(&format!("/invocation/{id}")).json()["status"] == "running")
    });
    let queued = ids
        .iter()
        .filter(|id| server.get(&format!("/invocation/{id}")).json()["status"] == "queued")
        .count();
    assert!(queued > 0, "every call ended before the kill");
    let server = server.crash_and_restart();
    let mut interrupted = 0;
    for id in &ids {
        let call = wait_status(&server, id, "succeeded");
        assert_eq!(call["output"], "slept\n");
        let tries = attempts(&call);
        assert_eq!(tries.last().unwrap()["outcome"], "ok");
        interrupted += tries
            .iter()
            .filter(|a| a["outcome"] == "interrupted")
            .count();
    }
    assert!(interrupted > 0, "no call was running at the kill");
}

#[test]
fn bad_async_input_is_refused_naming_the_problem() {
    let server = TestServer::start("RR", &[]);
    for (query, named) in [
        ("retries=11", "retries"),
        ("retries=-1", "retries"),
        ("retries=two", "retries"),
        ("retry_backoff_ms=0", "retry_backoff_ms"),
        ("retry_backoff_ms=x", "retry_backoff_ms"),
        ("retry_backoff_ms=3600001", "retry_backoff_ms"),
        ("max_age_s=0", "max_age_s"),
        ("max_age_s=99999999", "max_age_s"),
    ] {
        let resp = server.post(&format!("/deploy?name=f&lang=c&{query}"), ECHO_C);
        let error = resp.assert_error(400);
        assert!(error.contains(named), "{query}: {error}");
    }
    server.deploy_with(
        "f",
        "c",
        ECHO_C,
        "retries=10&retry_backoff_ms=5&max_age_s=60",
    );
    // An unknown function: 404, and nothing queued.
    let error = server.post("/async/nope", "x").assert_error(404);
    assert!(error.contains("nope"), "{error}");
    server.post("/async/", "x").assert_error(404);
    assert!(server.get("/dead-letters").json()["dead_letters"]
        .as_array()
        .unwrap()
        .is_empty());
    server.get("/invocation/00000000deadbeef").assert_error(404);
    server.get("/invocation/..%2Fx").assert_error(404);
    server
        .post("/dead-letters/00000000deadbeef/redrive", "")
        .assert_error(404);
    server
        .request("DELETE", "/dead-letters/nope", b"")
        .assert_error(404);
    server.get("/async/f").assert_error(405);
}

#[test]
fn async_routes_take_the_invoke_token_and_dead_letters_the_api_token() {
    let (api, invoke) = (
        "api-token-0123456789abcdef",
        "invoke-token-0123456789abcdef",
    );
    let server = TestServer::start("RR", &["--api-token", api, "--invoke-token", invoke]);
    let bearer = |t: &str| format!("Bearer {t}");
    let (api_auth, invoke_auth) = (bearer(api), bearer(invoke));
    let deploy = http_with_headers(
        &server.addr,
        "POST",
        "/deploy?name=echo&lang=c",
        ECHO_C.as_bytes(),
        &[("Authorization", &api_auth)],
    );
    assert_eq!(deploy.status, 201, "{}", deploy.body);
    let call = |path: &str, method: &str, auth: Option<&str>| {
        let headers: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
        http_with_headers(&server.addr, method, path, b"", &headers)
    };
    assert_eq!(call("/async/echo", "POST", None).status, 401);
    let queued = call("/async/echo", "POST", Some(&invoke_auth));
    assert_eq!(queued.status, 202, "{}", queued.body);
    let id = queued.json()["id"].as_str().unwrap().to_string();
    assert_eq!(call(&format!("/invocation/{id}"), "GET", None).status, 401);
    let status = call(&format!("/invocation/{id}"), "GET", Some(&invoke_auth));
    assert_eq!(status.status, 200, "{}", status.body);
    // The token reaches no function.
    wait_until("the call to end", Duration::from_secs(60), || {
        call(&format!("/invocation/{id}"), "GET", Some(&invoke_auth)).json()["status"]
            == "succeeded"
    });
    let done = call(&format!("/invocation/{id}"), "GET", Some(&invoke_auth));
    assert!(!done.body.contains(invoke), "{}", done.body);
    assert_eq!(call("/dead-letters", "GET", Some(&invoke_auth)).status, 401);
    assert_eq!(call("/dead-letters", "GET", Some(&api_auth)).status, 200);
}

/// Prints when it started and ended (Unix ms) around a one-second sleep.
const INTERVAL_C: &str = r#"#include <stdio.h>
#include <time.h>
#include <unistd.h>
static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
int main(void) {
    long long start = now_ms();
    sleep(1);
    printf("%lld %lld\n", start, now_ms());
    return 0;
}
"#;

fn interval(output: &str) -> (u64, u64) {
    let mut parts = output.split_whitespace().map(|p| p.parse::<u64>().unwrap());
    (parts.next().unwrap(), parts.next().unwrap())
}

#[test]
fn max_concurrency_bounds_sync_and_async_calls_together() {
    let server = TestServer::start("RR", &["--async-concurrency", "4"]);
    server.deploy_with("one", "c", INTERVAL_C, "max_concurrency=1");
    server.deploy("echo", "c", ECHO_C);
    let ids: Vec<String> = (0..2).map(|_| enqueue(&server, "/async/one", "")).collect();
    let addr = server.addr.clone();
    let sync =
        std::thread::spawn(move || crate::harness::http(&addr, "POST", "/invoke?fn=one", b""));
    // Other functions are served meanwhile, sync and async.
    let other = server.post("/invoke?fn=echo", "x");
    assert_eq!(other.status, 200, "{}", other.body);
    let other_async = enqueue(&server, "/async/echo", "y");
    let sync = sync.join().unwrap();
    assert_eq!(sync.status, 200, "{}", sync.body);
    let mut intervals = vec![interval(sync.json()["output"].as_str().unwrap())];
    for id in &ids {
        let call = wait_status(&server, id, "succeeded");
        intervals.push(interval(call["output"].as_str().unwrap()));
    }
    wait_status(&server, &other_async, "succeeded");
    intervals.sort();
    for pair in intervals.windows(2) {
        assert!(
            pair[1].0 >= pair[0].1,
            "calls of 'one' overlapped: {intervals:?}"
        );
    }
}

#[test]
fn a_call_cut_short_by_a_server_stop_runs_again_without_spending_a_retry() {
    let server = TestServer::start("RR", &[]);
    server.deploy_with("slow", "c", SLOW_FIRST_C, "retries=0");
    let id = enqueue(&server, "/async/slow", "");
    wait_status(&server, &id, "running");
    let server = server.restart();
    let call = wait_status(&server, &id, "succeeded");
    let tries = attempts(&call);
    assert_eq!(tries.len(), 2, "{call}");
    assert_eq!(tries[0]["outcome"], "interrupted", "{call}");
    assert_eq!(call["output"], "done on attempt 2\n");
}
