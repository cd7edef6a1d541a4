//! Outbound HTTP: functions call the hosts they were granted (`allow=`)
//! through the platform's client, in all six languages, and nothing else:
//! the refusals of the policy, the bounds of the channel, the deadline, and
//! what operators see (invocation records, `/metrics`, the log).
//!
//! The remote side is a small HTTP/1.1 server started by each test on
//! 127.0.0.1 (plain, or TLS with the client crate's fixture certificate,
//! signed by a CA the system does not trust).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::harness::*;

// ------------------------------------------------------------- the remote side

/// A test HTTP server on 127.0.0.1. Routes:
/// - `GET /hello`: 200 `hello from the test server`, `X-Test: yes`;
/// - `POST /echo`: 200 `echo:` then the request's body;
/// - `GET /big?n=N`: 200 with N bytes;
/// - `GET /redirect?to=URL`: 302 to URL;
/// - `GET /hang`: never answers (holds the connection 60 s).
///
/// Every request is counted.
struct Remote {
    port: u16,
    hits: Arc<AtomicUsize>,
}

impl Remote {
    fn http() -> Self {
        Self::start(None)
    }

    /// TLS with `crates/outbound/tests/fixtures/server.pem` (for 127.0.0.1
    /// and localhost), signed by `ca.pem`.
    fn https() -> Self {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs = CertificateDer::pem_file_iter(fixture("server.pem"))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(fixture("server.key")).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        Self::start(Some(Arc::new(config)))
    }

    fn start(tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (tls, hits) = (tls.clone(), counted.clone());
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
                    match tls {
                        None => serve(stream, &hits),
                        Some(config) => {
                            let Ok(conn) = rustls::ServerConnection::new(config) else {
                                return;
                            };
                            serve(rustls::StreamOwned::new(conn, stream), &hits);
                        }
                    }
                });
            }
        });
        Self { port, hits }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn grant(&self) -> String {
        format!("allow=127.0.0.1:{}", self.port)
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn fixture(name: &str) -> PathBuf {
    repo_root()
        .join("crates/outbound/tests/fixtures")
        .join(name)
}

/// Answers one request on `stream` (then closes it).
fn serve(stream: impl Read + Write, hits: &AtomicUsize) {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (
        parts.next().unwrap_or_default().to_string(),
        parts.next().unwrap_or_default().to_string(),
    );
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 {
            return;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    hits.fetch_add(1, Ordering::SeqCst);
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let (status, extra, reply): (u16, String, Vec<u8>) = match (method.as_str(), path) {
        ("GET", "/hello") => (
            200,
            "X-Test: yes\r\n".into(),
            b"hello from the test server".to_vec(),
        ),
        ("POST", "/echo") => {
            let mut reply = b"echo:".to_vec();
            reply.extend_from_slice(&body);
            (200, String::new(), reply)
        }
        ("GET", "/big") => {
            let n = query
                .strip_prefix("n=")
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            (200, String::new(), vec![b'x'; n])
        }
        ("GET", "/redirect") => {
            let to = query.strip_prefix("to=").unwrap_or("/");
            (302, format!("Location: {to}\r\n"), Vec::new())
        }
        ("GET", "/hang") => {
            std::thread::sleep(Duration::from_secs(60));
            return;
        }
        _ => (404, String::new(), b"no such route".to_vec()),
    };
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
        reply.len()
    );
    let stream = reader.get_mut();
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&reply);
    let _ = stream.flush();
}

// ------------------------------------------------------------- the functions

/// The functions of every language take the same input (a first line
/// `[METHOD ]URL`, then the request body) and print the same output: the
/// status and the content type on a line, then the body; or `FAILED
/// <kind>: <why>` when the request got no response. C, Rust and Go are
/// the examples users copy (`examples/fetch.*`).
fn fetcher(lang: &str) -> String {
    match lang {
        "c" => example("fetch.c"),
        "rust" => example("fetch.rs"),
        "go" => example("fetch.go"),
        "js" => r#"
const input = require('fs').readFileSync(0);
const nl = input.indexOf(10);
const first = input.subarray(0, nl < 0 ? input.length : nl).toString();
const body = nl < 0 ? undefined : input.subarray(nl + 1);
const [method, url] = first.includes(' ') ? first.split(' ') : ['GET', first];
fetch(url, { method, body })
  .then(async (r) => process.stdout.write(`${r.status} ${r.headers.get('content-type')}\n${await r.text()}`))
  .catch((e) => console.log(`FAILED ${e.code}: ${e.message}`));
"#
        .into(),
        "python" => r#"
import sys, faas
data = sys.stdin.buffer.read()
first, _, body = data.partition(b'\n')
method, _, url = first.decode().rpartition(' ')
try:
    r = faas.fetch(url, method=method or 'GET', body=body)
    sys.stdout.write(f"{r.status} {r.headers.get('Content-Type')}\n{r.text()}")
except PermissionError as e:
    print(f'FAILED PermissionError: {e}')
except TimeoutError as e:
    print(f'FAILED TimeoutError: {e}')
except OSError as e:
    print(f'FAILED {type(e).__name__}: {e}')
"#
        .into(),
        "php" => r#"<?php
$input = stream_get_contents(STDIN);
[$first, $body] = explode("\n", $input, 2) + [1 => ''];
[$method, $url] = str_contains($first, ' ') ? explode(' ', $first, 2) : ['GET', $first];
$r = faas_fetch($url, ['method' => $method, 'body' => $body]);
if ($r === false) {
    echo "FAILED false: ", error_get_last()['message'] ?? '', "\n";
} else {
    echo $r['status'], ' ', $r['headers']['content-type'] ?? '', "\n", $r['body'];
}
"#
        .into(),
        other => panic!("no fetcher for {other}"),
    }
}

const LANGS: [&str; 6] = ["c", "rust", "go", "js", "python", "php"];

/// Invokes `name` with `payload`; its output (the call must succeed).
fn call(server: &TestServer, name: &str, payload: &[u8]) -> String {
    let resp = server.request("POST", &format!("/invoke?fn={name}"), payload);
    assert_eq!(resp.status, 200, "{name}: {}", resp.body);
    resp.json()["output"].as_str().unwrap().to_string()
}

/// The gateway's port.
fn gateway_port(server: &TestServer) -> u16 {
    server.addr.rsplit(':').next().unwrap().parse().unwrap()
}

/// The sum of the samples of `name` with these labels in `/metrics` (0 if
/// none).
fn counter(server: &TestServer, name: &str, labels: &[(&str, &str)]) -> f64 {
    server
        .get("/metrics")
        .body
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, "}"));
            let wanted = metric == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
            wanted.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

// ------------------------------------------------------------- the tests

#[test]
fn a_get_and_a_post_reach_a_granted_server_in_six_languages_and_a_refusal_lets_the_call_go_on() {
    let remote = Remote::http();
    let elsewhere = TcpListener::bind("127.0.0.1:0").unwrap();
    let other_port = elsewhere.local_addr().unwrap().port();
    let server = TestServer::start("RR", &["--workers", "2"]);
    for lang in LANGS {
        let name = format!("fetch_{lang}");
        let resp = server.post(
            &format!("/deploy?name={name}&lang={lang}&{}", remote.grant()),
            &fetcher(lang),
        );
        assert_eq!(resp.status, 201, "{lang}: {}", resp.body);

        let got = call(&server, &name, remote.url("/hello").as_bytes());
        assert_eq!(got, "200 text/plain\nhello from the test server", "{lang}");
        // A body with bytes no text format would keep.
        let mut post = format!("POST {}\n", remote.url("/echo")).into_bytes();
        post.extend_from_slice(b"a\nb\n\nc\x01\x7f");
        let got = call(&server, &name, &post);
        assert_eq!(got, "200 text/plain\necho:a\nb\n\nc\u{1}\u{7f}", "{lang}");

        // A port that is not granted: refused, in the language's own way,
        // naming the host; the function goes on and prints it.
        let refused = format!("http://127.0.0.1:{other_port}/hello");
        let got = call(&server, &name, refused.as_bytes());
        let expected = match lang {
            "js" => "FAILED ERR_FAAS_DENIED: fetch to 127.0.0.1",
            "python" => "FAILED PermissionError: request to 127.0.0.1",
            "php" => "FAILED false: faas_fetch(): request to 127.0.0.1",
            _ => "FAILED denied: ",
        };
        assert!(got.starts_with(expected), "{lang}: {got}");
        assert!(
            got.contains(&format!("127.0.0.1:{other_port}")),
            "{lang}: {got}"
        );

        // What operators see: the invocation records count requests and
        // denials, /metrics counts them by outcome.
        let ring = server.get(&format!("/function/{name}/invocations")).json();
        let records = ring["invocations"].as_array().unwrap();
        let (denials, requests): (Vec<u64>, Vec<u64>) = records
            .iter()
            .map(|r| {
                (
                    r["outbound_denied"].as_u64().unwrap_or(0),
                    r["outbound_requests"].as_u64().unwrap_or(0),
                )
            })
            .unzip();
        assert_eq!(requests.iter().sum::<u64>(), 3, "{lang}: {ring}");
        assert_eq!(denials.iter().sum::<u64>(), 1, "{lang}: {ring}");
        let labels = |outcome| [("function", name.as_str()), ("outcome", outcome)];
        assert_eq!(
            counter(&server, "faas_outbound_requests_total", &labels("ok")),
            2.0
        );
        assert_eq!(
            counter(&server, "faas_outbound_requests_total", &labels("denied")),
            1.0
        );
        assert_eq!(
            counter(
                &server,
                "faas_outbound_request_duration_seconds_count",
                &[("function", name.as_str())]
            ),
            2.0,
            "{lang}"
        );
    }
    assert_eq!(remote.hits(), 12);
    // One log line per denial, with the request's id, naming the origin.
    let denials = server
        .log_text()
        .lines()
        .filter(|l| {
            l.contains(&format!(
                "outbound request to http://127.0.0.1:{other_port} denied"
            ))
        })
        .count();
    assert_eq!(denials, 6, "{}", server.log_text());
}

#[test]
fn a_function_without_grants_has_no_channel_at_all() {
    let server = TestServer::start("RR", &["--workers", "1"]);
    // What each language sees of /run and /run/faas.
    let probes = [
        ("c", "#include <stdio.h>\n#include <sys/stat.h>\nint main(void){ struct stat st; printf(\"%d %d\\n\", stat(\"/run/faas\", &st), stat(\"/run\", &st)); return 0; }\n", "-1 -1\n"),
        ("js", "const fs = require('fs'); console.log(fs.existsSync('/run/faas'), fs.existsSync('/run'));\n", "false false\n"),
        ("python", "import os\nprint(os.path.exists('/run/faas'), os.path.exists('/run'))\n", "False False\n"),
        ("php", "<?php var_dump(file_exists('/run/faas'), file_exists('/run/faas/fetch.sock'));\n", "bool(false)\nbool(false)\n"),
    ];
    for (lang, code, expected) in probes {
        let name = format!("nogrant_{lang}");
        server.deploy(&name, lang, code);
        assert_eq!(call(&server, &name, b""), expected, "{lang}");
    }
    // The APIs exist and say why nothing can be reached.
    let remote = Remote::http();
    let url = remote.url("/hello");
    for (lang, expected) in [
        ("c", "FAILED no-channel: "),
        ("rust", "FAILED no-channel: "),
        ("js", "FAILED ERR_FAAS_DENIED: fetch to 127.0.0.1"),
        ("python", "FAILED PermissionError: request to 127.0.0.1"),
        ("php", "FAILED false: faas_fetch(): request to 127.0.0.1"),
    ] {
        let name = format!("nogrant_api_{lang}");
        server.deploy(&name, lang, &fetcher(lang));
        let got = call(&server, &name, url.as_bytes());
        assert!(got.starts_with(expected), "{lang}: {got}");
    }
    assert_eq!(remote.hits(), 0);
    // A function that names a grant the listing shows: the same code with
    // one now reaches the server (the channel follows the grants).
    let resp = server.request(
        "PUT",
        &format!("/function/nogrant_api_c?lang=c&{}", remote.grant()),
        fetcher("c").as_bytes(),
    );
    assert_eq!(resp.status, 201, "{}", resp.body);
    let got = call(&server, "nogrant_api_c", url.as_bytes());
    assert!(got.starts_with("200 "), "{got}");
}

#[test]
fn the_policy_refuses_private_names_the_gateway_bad_redirects_and_large_answers() {
    let remote = Remote::http();
    let elsewhere = TcpListener::bind("127.0.0.1:0").unwrap();
    let other_port = elsewhere.local_addr().unwrap().port();
    let server = TestServer::start("RR", &["--workers", "1", "--max-outbound-bytes", "1048576"]);
    let gateway = gateway_port(&server);
    // localhost is a name resolving to a loopback address: granting the
    // name does not grant the address (only the literal would).
    server.post(
        &format!("/deploy?name=byname&lang=c&allow=localhost:{}", remote.port),
        &fetcher("c"),
    );
    let got = call(
        &server,
        "byname",
        format!("http://localhost:{}/hello", remote.port).as_bytes(),
    );
    assert!(got.starts_with("FAILED denied: "), "{got}");
    // Granted: the remote by address, and the gateway itself.
    let grants = format!("{}&allow=127.0.0.1:{gateway}", remote.grant());
    server.post(
        &format!("/deploy?name=policy&lang=c&{grants}"),
        &fetcher("c"),
    );
    let cases = [
        // The platform's own port, granted or not.
        (
            format!("http://127.0.0.1:{gateway}/health"),
            "FAILED denied",
        ),
        // A redirect to a host that is not granted.
        (
            remote.url(&format!("/redirect?to=http://127.0.0.1:{other_port}/hello")),
            "FAILED denied",
        ),
        // Over --max-outbound-bytes: a clear error.
        (
            remote.url("/big?n=2000000"),
            "FAILED error: the response is larger than 1048576 bytes",
        ),
        // Not HTTP.
        (format!("ftp://127.0.0.1:{}/x", remote.port), "FAILED "),
    ];
    for (url, expected) in &cases {
        let got = call(&server, "policy", url.as_bytes());
        assert!(got.starts_with(expected), "{url}: {got}");
    }
    // A redirect to a granted place is followed; a large answer within the
    // cap arrives whole.
    let got = call(
        &server,
        "policy",
        remote
            .url(&format!("/redirect?to={}", remote.url("/hello")))
            .as_bytes(),
    );
    assert_eq!(got, "200 text/plain\nhello from the test server");
    let got = call(&server, "policy", remote.url("/big?n=1000000").as_bytes());
    assert_eq!(got.len(), "200 text/plain\n".len() + 1_000_000);
    // The gateway never saw a request from a function.
    assert!(!server.log_text().contains("GET /health"));
}

#[test]
fn a_server_that_never_answers_ends_at_the_deadline_with_504_and_the_worker_serves_on() {
    let remote = Remote::http();
    let server = TestServer::start("RR", &["--workers", "1"]);
    for lang in ["c", "php"] {
        let name = format!("hang_{lang}");
        let resp = server.post(
            &format!(
                "/deploy?name={name}&lang={lang}&timeout_ms=1500&{}",
                remote.grant()
            ),
            &fetcher(lang),
        );
        assert_eq!(resp.status, 201, "{}", resp.body);
        let started = Instant::now();
        let resp = server.post(&format!("/invoke?fn={name}"), &remote.url("/hang"));
        resp.assert_error(504);
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(1400) && took < Duration::from_secs(8),
            "{lang}: {took:?}"
        );
        // The one worker serves the next call.
        let got = call(&server, &name, remote.url("/hello").as_bytes());
        assert_eq!(got, "200 text/plain\nhello from the test server", "{lang}");
        let ring = server.get(&format!("/function/{name}/invocations")).json();
        let timed_out = ring["invocations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["outbound_requests"] == 1)
            .count();
        assert!(timed_out >= 1, "{lang}: {ring}");
    }
}

#[test]
fn https_with_an_unknown_ca_is_refused_and_accepted_with_outbound_ca_file() {
    let remote = Remote::https();
    let url = format!("https://127.0.0.1:{}/hello", remote.port);
    let plain = TestServer::start("RR", &["--workers", "1"]);
    plain.post(
        &format!("/deploy?name=tls&lang=c&{}", remote.grant()),
        &fetcher("c"),
    );
    let got = call(&plain, "tls", url.as_bytes());
    assert!(got.starts_with("FAILED error: "), "{got}");
    drop(plain);

    let ca = fixture("ca.pem");
    let trusting = TestServer::start(
        "RR",
        &["--workers", "1", "--outbound-ca-file", ca.to_str().unwrap()],
    );
    let resp = trusting.post(
        &format!("/deploy?name=tls&lang=js&{}", remote.grant()),
        &fetcher("js"),
    );
    assert_eq!(resp.status, 201, "{}", resp.body);
    let got = call(&trusting, "tls", url.as_bytes());
    assert_eq!(got, "200 text/plain\nhello from the test server");
    let got = call(
        &trusting,
        "tls",
        format!("POST https://127.0.0.1:{}/echo\nsecure", remote.port).as_bytes(),
    );
    assert_eq!(got, "200 text/plain\necho:secure");
}

#[test]
fn a_bad_outbound_ca_file_stops_the_server_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("ca.pem");
    std::fs::write(&bad, "not a certificate").unwrap();
    let args: Vec<String> = [
        "RR",
        "--workers",
        "1",
        "--outbound-ca-file",
        bad.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();
    let (mut child, log, addr) = spawn_server(dir.path(), &args);
    assert!(addr.is_none(), "started with a bad CA file");
    let status = child.wait().unwrap();
    assert!(!status.success());
    let log = log.lock().unwrap().join("\n");
    assert!(log.contains("--outbound-ca-file"), "{log}");
}

/// The helper block of `examples/fetch.c` with a main of our own.
fn c_with_main(main: &str) -> String {
    let example = example("fetch.c");
    let begin = example.find("/* faas-fetch: begin").unwrap();
    let end = example.find("/* faas-fetch: end").unwrap();
    format!(
        "#include <errno.h>\n#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n#include <sys/stat.h>\n{}\n{main}",
        &example[begin..end]
    )
}

#[test]
fn sixty_five_requests_in_one_call_the_last_is_denied() {
    let remote = Remote::http();
    let server = TestServer::start("RR", &["--workers", "1"]);
    let code = c_with_main(&format!(
        r#"int main(void) {{
    int ok = 0, denied = 0;
    for (int i = 0; i < 65; i++) {{
        struct faas_response r;
        int rc = faas_fetch("GET", "{}", NULL, NULL, 0, &r);
        if (rc == 0 && r.status == 200) ok++;
        if (rc == FAAS_DENIED) {{ denied++; printf("%s\n", r.error); }}
        faas_response_free(&r);
    }}
    printf("ok=%d denied=%d\n", ok, denied);
    return 0;
}}
"#,
        remote.url("/hello")
    ));
    server.post(
        &format!("/deploy?name=flood&lang=c&{}", remote.grant()),
        &code,
    );
    let got = call(&server, "flood", b"");
    assert!(got.ends_with("ok=64 denied=1\n"), "{got}");
    assert!(got.contains("too many outbound requests"), "{got}");
    assert_eq!(remote.hits(), 64);
    let ring = server.get("/function/flood/invocations").json();
    assert_eq!(ring["invocations"][0]["outbound_requests"], 65);
    assert_eq!(ring["invocations"][0]["outbound_denied"], 1);
    let labels = [("function", "flood"), ("outcome", "denied")];
    assert_eq!(
        counter(&server, "faas_outbound_requests_total", &labels),
        1.0
    );
    // The next call has its own 64.
    let got = call(&server, "flood", b"");
    assert!(got.ends_with("ok=64 denied=1\n"), "{got}");
}

#[test]
fn a_hostile_function_cannot_abuse_the_channel() {
    let remote = Remote::http();
    let server = TestServer::start("RR", &["--workers", "1", "--max-outbound-bytes", "65536"]);
    let code = c_with_main(&format!(
        r#"
#define P "/run/faas/fetch"
static void show(const char *what, int rc) {{ printf("%s=%s\n", what, rc < 0 ? strerror(errno) : "ok"); }}
static char buf[1 << 20];
static int answer(int fd) {{ ssize_t n = read(fd, buf, sizeof buf - 1); buf[n > 0 ? n : 0] = 0; return (int)n; }}
int main(void) {{
    /* Read before writing: an answer saying so (it counts). */
    int fd = open(P, O_RDWR);
    answer(fd); printf("empty=%.40s\n", buf);
    /* Write after reading: EPIPE. */
    show("write_after_read", (int)write(fd, "x", 1));
    /* Seeking a stream: ESPIPE. */
    show("seek", (int)lseek(fd, 0, SEEK_SET));
    close(fd);
    /* Malformed requests. */
    fd = open(P, O_RDWR); write(fd, "GET\n\n", 5); answer(fd); close(fd);
    printf("malformed=%.30s\n", buf);
    fd = open(P, O_RDWR); write(fd, "GET {url}\nBad Header\n\n", strlen("GET {url}\nBad Header\n\n")); answer(fd); close(fd);
    printf("bad_header=%.30s\n", buf);
    /* Host header forged: refused by the client, never sent. */
    fd = open(P, O_RDWR); write(fd, "GET {url}\nHost: example.com\n\n", strlen("GET {url}\nHost: example.com\n\n")); answer(fd); close(fd);
    printf("forged_host=%.6s\n", buf);
    /* Opened other than read-write. */
    show("rdonly", open(P, O_RDONLY));
    show("wronly", open(P, O_WRONLY));
    /* Nothing under /run/faas can be created, removed or renamed. */
    show("create", open("/run/faas/x", O_RDWR | O_CREAT, 0644));
    show("unlink", unlink(P));
    show("rename", rename(P, "/run/faas/y"));
    show("mkdir", mkdir("/run/faas/d", 0755));
    /* Four exchanges open at once, not five. */
    int fds[5];
    for (int i = 0; i < 5; i++) fds[i] = open(P, O_RDWR);
    show("fifth_open", fds[4]);
    for (int i = 0; i < 4; i++) close(fds[i]);
    /* Two at once work independently. */
    int a = open(P, O_RDWR), b = open(P, O_RDWR);
    const char *get = "GET {url}\n\n";
    write(a, get, strlen(get)); write(b, get, strlen(get));
    answer(b); printf("b=%.6s\n", buf); answer(a); printf("a=%.6s\n", buf);
    close(a); close(b);
    /* A request past the cap: EFBIG, the worker keeps no more. */
    fd = open(P, O_RDWR);
    static char big[200000];
    memset(big, 'x', sizeof big);
    write(fd, "POST {echo}\n\n", strlen("POST {echo}\n\n"));
    show("too_big", (int)write(fd, big, sizeof big));
    close(fd);
    /* Opening and closing without reading sends nothing. */
    for (int i = 0; i < 1000; i++) close(open(P, O_RDWR));
    printf("done\n");
    return 0;
}}
"#,
        url = remote.url("/hello"),
        echo = remote.url("/echo"),
    ));
    server.post(
        &format!("/deploy?name=hostile&lang=c&{}", remote.grant()),
        &code,
    );
    let got = call(&server, "hostile", b"");
    for expected in [
        "empty=error malformed request: empty request",
        "write_after_read=Broken pipe",
        "seek=Invalid seek",
        "malformed=error malformed request",
        "bad_header=error malformed request",
        "forged_host=error ",
        "rdonly=Permission denied",
        "wronly=Permission denied",
        "create=Read-only file system",
        "unlink=Read-only file system",
        "rename=Read-only file system",
        "mkdir=Read-only file system",
        "fifth_open=No file descriptors available",
        "b=ok 200",
        "a=ok 200",
        "too_big=File too large",
        "done",
    ] {
        assert!(got.contains(expected), "missing {expected:?} in:\n{got}");
    }
    assert_eq!(
        remote.hits(),
        2,
        "only the two well-formed requests were sent"
    );
    // The worker is fine: the next call works.
    let got = call(&server, "hostile", b"");
    assert!(got.contains("done"), "{got}");
}
