//! Callbacks of async calls (`X-Callback-Url`): the outcome POSTed to a
//! receiver when the call ends, succeeded, dead or timed out; the
//! receiver's failures retried and the delivery recorded on the
//! invocation; and the attacks: hosts nobody granted, names resolving to
//! loopback, private and metadata addresses, the platform's own port,
//! redirects elsewhere, secrets and tokens kept out of what is sent.
//!
//! The receiver is a small HTTP/1.1 server in the test process on
//! 127.0.0.1, granted with `--callback-allow 127.0.0.1:PORT`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::harness::{http_with_headers, wait_until, TestServer};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) method: String,
    pub(crate) path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A callback receiver: answers its scripted statuses in turn (the last
/// one from then on), or redirects every request to `redirect`.
pub(crate) struct Receiver {
    pub(crate) port: u16,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    pub(crate) fn answering(statuses: &[u16]) -> Self {
        Self::start(statuses.to_vec(), None)
    }

    fn redirecting(status: u16, to: &str) -> Self {
        Self::start(vec![status], Some(to.to_string()))
    }

    fn start(statuses: Vec<u16>, redirect: Option<String>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let seen = got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                let Some(request) = read_request(&stream) else {
                    continue;
                };
                let n = {
                    let mut got = seen.lock().unwrap();
                    got.push(request.clone());
                    got.len()
                };
                let status = statuses[(n - 1).min(statuses.len() - 1)];
                let extra = match &redirect {
                    // A redirect to the same receiver's /final is answered.
                    Some(to) if request.path != "/final" => format!("Location: {to}\r\n"),
                    _ => String::new(),
                };
                let status = if redirect.is_some() && request.path == "/final" {
                    200
                } else {
                    status
                };
                let head = format!(
                    "HTTP/1.1 {status} X\r\n{extra}Content-Length: 2\r\nConnection: close\r\n\r\nok"
                );
                let mut stream = stream;
                let _ = stream.write_all(head.as_bytes());
            }
        });
        Self { port, got }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub(crate) fn grant(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

fn read_request(stream: &std::net::TcpStream) -> Option<Received> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 {
            return None;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let length = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    Some(Received {
        method,
        path,
        headers,
        body,
    })
}

/// Prints its input.
pub(crate) const ECHO_C: &str = r#"#include <stdio.h>
int main(void) {
    char buf[256] = {0};
    size_t n = fread(buf, 1, sizeof buf - 1, stdin);
    printf("got %.*s", (int)n, buf);
    return 0;
}
"#;

/// Always fails, saying which attempt it was.
pub(crate) const FAIL_C: &str = r#"#include <stdio.h>
#include <stdlib.h>
int main(void) {
    const char *a = getenv("FAAS_ATTEMPT");
    fprintf(stderr, "attempt %s failed\n", a ? a : "?");
    return 3;
}
"#;

/// Never ends in time.
const SLEEP_C: &str = r#"#include <unistd.h>
int main(void) { sleep(30); return 0; }
"#;

/// Its first attempt sleeps 30 s; later ones answer at once.
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

/// Reads its secret, prints it to stderr, and fails.
const LEAK_SECRET_C: &str = r#"#include <stdio.h>
int main(void) {
    char v[128] = {0};
    FILE *f = fopen("/run/secrets/hook_key", "r");
    if (f) { fread(v, 1, sizeof v - 1, f); fclose(f); }
    fprintf(stderr, "the key is %s\n", v);
    return 1;
}
"#;

/// Queues a call of `path` with `X-Callback-Url: url` (202 expected).
fn enqueue(server: &TestServer, path: &str, url: &str, extra: &[(&str, &str)]) -> String {
    let mut headers = vec![("X-Callback-Url", url)];
    headers.extend_from_slice(extra);
    let resp = http_with_headers(&server.addr, "POST", path, b"payload", &headers);
    assert_eq!(resp.status, 202, "{}", resp.body);
    resp.json()["id"].as_str().unwrap().to_string()
}

/// Polls the invocation until its callback is no longer waiting or
/// pending; returns the invocation.
fn callback_done(server: &TestServer, id: &str) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    wait_until(
        &format!("the callback of {id} never ended"),
        Duration::from_secs(90),
        || {
            let resp = server.get(&format!("/invocation/{id}"));
            assert_eq!(resp.status, 200, "{}", resp.body);
            last = resp.json();
            matches!(
                last["callback"]["state"].as_str(),
                Some("delivered" | "failed")
            )
        },
    );
    last
}

/// The call's 400 names `named`; nothing was queued (the function never
/// ran, so its invocation log stays empty).
fn refused(server: &TestServer, function: &str, url: &str, named: &str) {
    let resp = http_with_headers(
        &server.addr,
        "POST",
        &format!("/async/{function}"),
        b"x",
        &[("X-Callback-Url", url)],
    );
    let error = resp.assert_error(400);
    assert!(error.contains(named), "{url}: {error}");
    assert!(resp.header("x-call-id").is_none(), "{url}");
}

fn nothing_ran(server: &TestServer, function: &str) {
    std::thread::sleep(Duration::from_millis(300));
    let log = server
        .get(&format!("/function/{function}/invocations"))
        .json();
    assert!(
        log["invocations"].as_array().unwrap().is_empty(),
        "{function} ran: {log}"
    );
}

#[test]
fn a_succeeded_call_posts_its_output_and_headers_and_records_the_delivery() {
    let receiver = Receiver::answering(&[200]);
    let grant = receiver.grant();
    let server = TestServer::start("RR", &["--callback-allow", &grant]);
    server.deploy("echo", "c", ECHO_C);
    let id = enqueue(
        &server,
        "/async/echo",
        &receiver.url("/hook/done?key=receiver-secret"),
        &[],
    );
    let call = callback_done(&server, &id);
    assert_eq!(call["status"], "succeeded", "{call}");
    let callback = &call["callback"];
    assert_eq!(callback["state"], "delivered", "{call}");
    assert_eq!(callback["attempts"], 1, "{call}");
    assert_eq!(callback["status_code"], 200, "{call}");
    assert!(callback["duration_ms"].as_f64().unwrap() >= 0.0);
    assert!(callback["finished_ms"].as_u64() >= callback["started_ms"].as_u64());
    assert!(callback["started_ms"].as_u64() >= call["finished_ms"].as_u64());
    // The receiver's key in the query is not shown to who reads the call.
    assert_eq!(callback["url"], receiver.url("/hook/done"));
    assert!(!call.to_string().contains("receiver-secret"), "{call}");

    let got = receiver.received();
    assert_eq!(got.len(), 1, "{got:?}");
    let hook = &got[0];
    assert_eq!(hook.method, "POST");
    assert_eq!(hook.path, "/hook/done?key=receiver-secret");
    assert_eq!(hook.text(), "got payload");
    assert_eq!(hook.header("x-call-id"), Some(id.as_str()));
    assert_eq!(hook.header("x-function-name"), Some("echo"));
    assert_eq!(hook.header("x-function-status"), Some("200"));
    assert_eq!(hook.header("x-attempts"), Some("1"));
}

#[test]
fn without_a_grant_the_callback_url_is_refused_and_nothing_is_queued() {
    let receiver = Receiver::answering(&[200]);
    let server = TestServer::start("RR", &[]);
    server.deploy("echo", "c", ECHO_C);
    let other = format!("127.0.0.1:{}", receiver.port + 1);
    for (url, named) in [
        (receiver.url("/"), "not allowed"),
        (format!("http://{other}/"), "not allowed"),
        ("ftp://example.com/x".to_string(), "http"),
        ("not-a-url".to_string(), "X-Callback-Url"),
        (
            format!("http://user:pw@127.0.0.1:{}/", receiver.port),
            "credentials",
        ),
        ("http://10.1.2.3/hook".to_string(), "not allowed"),
        (
            "http://169.254.169.254/latest/meta-data/".to_string(),
            "not allowed",
        ),
        ("http://localhost/hook".to_string(), "not allowed"),
        (format!("http://x/{}", "a".repeat(3000)), "2048"),
    ] {
        refused(&server, "echo", &url, named);
    }
    // Twice the header, or bytes that are no URL: 400 too.
    let twice = http_with_headers(
        &server.addr,
        "POST",
        "/async/echo",
        b"",
        &[
            ("X-Callback-Url", &receiver.url("/a")),
            ("X-Callback-Url", &receiver.url("/b")),
        ],
    );
    assert!(twice.assert_error(400).contains("more than once"));
    let spaced = http_with_headers(
        &server.addr,
        "POST",
        "/async/echo",
        b"",
        &[("X-Callback-Url", "http://a b/")],
    );
    spaced.assert_error(400);
    // An unknown function is still 404 (not a 400 about its callback).
    let resp = http_with_headers(
        &server.addr,
        "POST",
        "/async/nope",
        b"",
        &[("X-Callback-Url", &receiver.url("/"))],
    );
    resp.assert_error(404);
    nothing_ran(&server, "echo");
    assert!(receiver.received().is_empty());

    // The function's own grant permits it as well as --callback-allow.
    server.deploy_with(
        "granted",
        "c",
        ECHO_C,
        &format!("allow={}", receiver.grant()),
    );
    let id = enqueue(&server, "/async/granted", &receiver.url("/ok"), &[]);
    assert_eq!(
        callback_done(&server, &id)["callback"]["state"],
        "delivered"
    );
    assert_eq!(receiver.received().len(), 1);
}

#[test]
fn a_dead_call_posts_its_last_error_and_a_timed_out_one_504() {
    let receiver = Receiver::answering(&[204]);
    let grant = receiver.grant();
    let server = TestServer::start("RR", &["--callback-allow", &grant]);
    server.deploy_with("fails", "c", FAIL_C, "retries=2&retry_backoff_ms=100");
    server.deploy_with("sleeps", "c", SLEEP_C, "retries=0&timeout_ms=300");
    let dead = enqueue(&server, "/async/fails", &receiver.url("/dead"), &[]);
    let call = callback_done(&server, &dead);
    assert_eq!(call["status"], "dead", "{call}");
    assert_eq!(call["callback"]["state"], "delivered", "{call}");
    assert_eq!(call["callback"]["status_code"], 204, "{call}");
    let timed_out = enqueue(&server, "/async/sleeps", &receiver.url("/slow"), &[]);
    let call = callback_done(&server, &timed_out);
    assert_eq!(call["status"], "dead", "{call}");

    let got = receiver.received();
    assert_eq!(got.len(), 2, "{got:?}");
    let hook = got.iter().find(|r| r.path == "/dead").unwrap();
    assert_eq!(hook.header("x-call-id"), Some(dead.as_str()));
    assert_eq!(hook.header("x-function-status"), Some("500"));
    // retries + 1 attempts.
    assert_eq!(hook.header("x-attempts"), Some("3"));
    let text = hook.text();
    assert!(text.starts_with("attempt 3: "), "{text}");
    assert!(text.contains("attempt 3 failed"), "{text}");
    let hook = got.iter().find(|r| r.path == "/slow").unwrap();
    assert_eq!(hook.header("x-function-status"), Some("504"));
    assert_eq!(hook.header("x-attempts"), Some("1"));
    assert!(hook.text().contains("timed out"), "{}", hook.text());
}

#[test]
fn a_receiver_failing_twice_gets_it_on_the_third_try_and_one_never_ok_is_recorded_failed() {
    let flaky = Receiver::answering(&[500, 500, 200]);
    let broken = Receiver::answering(&[500]);
    let (g1, g2) = (flaky.grant(), broken.grant());
    let server = TestServer::start("RR", &["--callback-allow", &g1, "--callback-allow", &g2]);
    server.deploy("echo", "c", ECHO_C);
    let a = enqueue(&server, "/async/echo", &flaky.url("/"), &[]);
    let b = enqueue(&server, "/async/echo", &broken.url("/"), &[]);

    let call = callback_done(&server, &a);
    assert_eq!(call["callback"]["state"], "delivered", "{call}");
    assert_eq!(call["callback"]["attempts"], 3, "{call}");
    assert_eq!(call["callback"]["status_code"], 200, "{call}");
    assert!(call["callback"].get("error").is_none(), "{call}");
    // Backoff: 500 ms, then 1 s between the tries.
    assert!(
        call["callback"]["duration_ms"].as_f64().unwrap() >= 1400.0,
        "{call}"
    );
    let got = flaky.received();
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|r| r.text() == "got payload"));

    let call = callback_done(&server, &b);
    // The call itself succeeded; only its callback failed.
    assert_eq!(call["status"], "succeeded", "{call}");
    assert_eq!(call["output"], "got payload");
    assert_eq!(call["callback"]["state"], "failed", "{call}");
    assert_eq!(call["callback"]["attempts"], 4, "{call}");
    assert_eq!(call["callback"]["status_code"], 500, "{call}");
    assert!(
        call["callback"]["error"]
            .as_str()
            .unwrap()
            .contains("answered 500"),
        "{call}"
    );
    assert_eq!(broken.received().len(), 4);
    assert!(server.log_text().contains("failed after 4 tries"));
}

#[test]
fn a_name_resolving_to_loopback_and_the_platform_s_own_port_are_refused_when_sent() {
    let receiver = Receiver::answering(&[200]);
    let by_name = format!("localhost:{}", receiver.port);
    let server = TestServer::start("RR", &["--callback-allow", &by_name]);
    // The gateway's own port, granted to the function literally.
    let own_port: u16 = server.addr.rsplit(':').next().unwrap().parse().unwrap();
    server.deploy_with("echo", "c", ECHO_C, &format!("allow=127.0.0.1:{own_port}"));
    // Granted by name: queued, but localhost resolves to loopback, which
    // only a literal grant reaches.
    let id = enqueue(
        &server,
        "/async/echo",
        &format!("http://localhost:{}/hook", receiver.port),
        &[],
    );
    let call = callback_done(&server, &id);
    assert_eq!(call["status"], "succeeded", "{call}");
    let callback = &call["callback"];
    assert_eq!(callback["state"], "failed", "{call}");
    // A refusal is not retried: it would be refused again.
    assert_eq!(callback["attempts"], 1, "{call}");
    assert!(
        callback["error"].as_str().unwrap().contains("denied"),
        "{call}"
    );
    // The platform's own API (a deploy!) is never a callback's target.
    let id = enqueue(
        &server,
        "/async/echo",
        &format!("http://127.0.0.1:{own_port}/deploy?name=evil&lang=c"),
        &[],
    );
    let call = callback_done(&server, &id);
    assert_eq!(call["callback"]["state"], "failed", "{call}");
    assert!(
        call["callback"]["error"]
            .as_str()
            .unwrap()
            .contains("denied"),
        "{call}"
    );
    assert!(receiver.received().is_empty());
    let listed = server.get("/functions").json();
    assert!(!listed.to_string().contains("evil"), "{listed}");
}

#[test]
fn a_granted_name_resolving_to_a_private_address_is_refused_when_sent() {
    let receiver = Receiver::answering(&[200]);
    let grant = format!("hooks.example.test:{}", receiver.port);
    let Some(server) = TestServer::start_with_hosts(
        "RR",
        &["--callback-allow", &grant],
        "10.9.8.7 hooks.example.test\n127.0.0.1 localhost\n",
    ) else {
        panic!("this test needs `unshare -m` (run as root, as make test does)");
    };
    server.deploy("echo", "c", ECHO_C);
    let id = enqueue(
        &server,
        "/async/echo",
        &format!("http://hooks.example.test:{}/hook", receiver.port),
        &[],
    );
    let call = callback_done(&server, &id);
    assert_eq!(call["callback"]["state"], "failed", "{call}");
    assert_eq!(call["callback"]["attempts"], 1, "{call}");
    let error = call["callback"]["error"].as_str().unwrap();
    assert!(
        error.contains("denied") && error.contains("10.9.8.7"),
        "{error}"
    );
}

#[test]
fn redirects_are_followed_only_within_the_grants() {
    let elsewhere = Receiver::answering(&[200]);
    let away = Receiver::redirecting(307, &elsewhere.url("/stolen"));
    let home = Receiver::redirecting(307, "/final");
    let (g1, g2) = (away.grant(), home.grant());
    let server = TestServer::start("RR", &["--callback-allow", &g1, "--callback-allow", &g2]);
    server.deploy("echo", "c", ECHO_C);
    let id = enqueue(&server, "/async/echo", &away.url("/hook"), &[]);
    let call = callback_done(&server, &id);
    assert_eq!(call["callback"]["state"], "failed", "{call}");
    assert_eq!(call["callback"]["attempts"], 1, "{call}");
    assert!(
        call["callback"]["error"]
            .as_str()
            .unwrap()
            .contains("denied"),
        "{call}"
    );
    assert!(elsewhere.received().is_empty(), "the redirect was followed");
    assert_eq!(away.received().len(), 1);

    // A redirect to a permitted place is followed (307 keeps the POST).
    let id = enqueue(&server, "/async/echo", &home.url("/hook"), &[]);
    let call = callback_done(&server, &id);
    assert_eq!(call["callback"]["state"], "delivered", "{call}");
    let got = home.received();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        (got[1].method.as_str(), got[1].path.as_str()),
        ("POST", "/final")
    );
    assert_eq!(got[1].text(), "got payload");
}

#[test]
fn no_secret_or_token_reaches_the_receiver() {
    let invoke_token = "invoke-token-0123456789abcdef";
    let api_token = "api-token-0123456789abcdef";
    let secret_value = "hook-key-value-7f3a9c";
    let receiver = Receiver::answering(&[200]);
    let grant = receiver.grant();
    let server = TestServer::start(
        "RR",
        &[
            "--callback-allow",
            &grant,
            "--invoke-token",
            invoke_token,
            "--api-token",
            api_token,
        ],
    );
    let api = format!("Bearer {api_token}");
    let put = http_with_headers(
        &server.addr,
        "PUT",
        "/secret/hook_key",
        secret_value.as_bytes(),
        &[("Authorization", &api)],
    );
    assert!(put.status == 201, "{}", put.body);
    for (name, code, query) in [
        ("leaks", LEAK_SECRET_C, "secret=hook_key&retries=0"),
        ("echo", ECHO_C, "secret=hook_key"),
    ] {
        let resp = http_with_headers(
            &server.addr,
            "POST",
            &format!("/deploy?name={name}&lang=c&{query}"),
            code.as_bytes(),
            &[("Authorization", &api)],
        );
        assert_eq!(resp.status, 201, "{}", resp.body);
    }
    let bearer = format!("Bearer {invoke_token}");
    let auth = [
        ("Authorization", bearer.as_str()),
        ("Cookie", "session=c00k1e"),
    ];
    let a = enqueue(&server, "/async/leaks", &receiver.url("/a"), &auth);
    let b = enqueue(&server, "/async/echo", &receiver.url("/b"), &auth);
    for id in [&a, &b] {
        wait_until("the callback", Duration::from_secs(60), || {
            let resp = http_with_headers(
                &server.addr,
                "GET",
                &format!("/invocation/{id}"),
                b"",
                &[("Authorization", &bearer)],
            );
            resp.json()["callback"]["state"] == "delivered"
        });
    }
    let got = receiver.received();
    assert_eq!(got.len(), 2);
    let dead = got.iter().find(|r| r.path == "/a").unwrap();
    assert!(dead.text().contains("the key is"), "{}", dead.text());
    for hook in &got {
        let everything = format!("{:?} {}", hook.headers, hook.text());
        for leak in [secret_value, invoke_token, api_token, "c00k1e"] {
            assert!(!everything.contains(leak), "{leak} sent: {everything}");
        }
        assert!(hook.header("authorization").is_none());
        assert!(hook.header("cookie").is_none());
    }
}

#[test]
fn a_callback_url_survives_a_restart_of_the_server() {
    let receiver = Receiver::answering(&[200]);
    let grant = receiver.grant();
    let server = TestServer::start("RR", &["--callback-allow", &grant]);
    server.deploy_with("slow", "c", SLOW_FIRST_C, "retries=0");
    let id = enqueue(&server, "/async/slow", &receiver.url("/after"), &[]);
    wait_until("the first attempt to run", Duration::from_secs(30), || {
        server.get(&format!("/invocation/{id}")).json()["status"] == "running"
    });
    let server = server.restart();
    let call = callback_done(&server, &id);
    assert_eq!(call["status"], "succeeded", "{call}");
    assert_eq!(call["callback"]["state"], "delivered", "{call}");
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].text(), "done on attempt 2\n");
    // Both attempts ran; the interrupted one does not count as a retry.
    assert_eq!(got[0].header("x-attempts"), Some("2"));
}
