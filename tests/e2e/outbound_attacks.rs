//! Attacks on the outbound HTTP boundary (`allow=`), from a hostile
//! function and its deployer: address and URL-parser tricks, the
//! gateway's port by every address of this host, redirects, header
//! smuggling, what the remote side and the log get to see.
//!
//! And what an attacker leaves behind: a killed worker's PHP sockets.
//!
//! The functions speak the channel's wire format directly (`RAW`): every
//! request is exactly what an attacker would write, not what a language's
//! API would let through.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::harness::*;

// ------------------------------------------------------------- the remote side

/// A test HTTP/1.1 server on 127.0.0.1 that records every request it gets
/// (its head, then its body). Routes:
/// - `/redir?code=C&to=URL`: answers C (302 if absent) with `Location: URL`;
/// - `/loop`: 302 to itself, forever;
/// - anything else: 200 `ok`.
struct Recorder {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    fn start() -> Self {
        Self::start_on("127.0.0.1")
    }

    /// A recorder listening on `ip` only (a service of this host bound to
    /// its own address).
    fn start_on(ip: &str) -> Self {
        let listener = TcpListener::bind((ip, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let log = log.clone();
                std::thread::spawn(move || answer(stream, port, &log));
            }
        });
        Self { port, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

fn answer(stream: std::net::TcpStream, port: u16, log: &Mutex<Vec<String>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        head.push_str(&line);
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((k, v)) = trimmed.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    log.lock()
        .unwrap()
        .push(format!("{head}{}", String::from_utf8_lossy(&body)));
    let target = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .map(str::to_string)
    };
    let (status, location): (u16, Option<String>) = match path {
        "/redir" => (
            param("code").and_then(|c| c.parse().ok()).unwrap_or(302),
            param("to"),
        ),
        "/loop" => (302, Some(format!("http://127.0.0.1:{port}/loop"))),
        _ => (200, None),
    };
    let location = location
        .map(|l| format!("Location: {l}\r\n"))
        .unwrap_or_default();
    let reply = format!(
        "HTTP/1.1 {status} X\r\n{location}Content-Length: 2\r\nConnection: close\r\n\r\nok"
    );
    let stream = reader.get_mut();
    let _ = stream.write_all(reply.as_bytes());
    let _ = stream.flush();
}

// ------------------------------------------------------------- the function

/// A C function writing raw requests to `/run/faas/fetch`: its input is
/// requests in the wire format separated by lines `----`; for each it
/// prints `=> ` and the first line of the answer.
const RAW: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
static char in[1 << 20], out[1 << 16];
int main(void) {
    size_t n = 0; ssize_t r;
    while ((r = read(0, in + n, sizeof in - n)) > 0) n += (size_t)r;
    char *p = in, *end = in + n;
    while (p < end) {
        char *sep = memmem(p, (size_t)(end - p), "\n----\n", 6);
        size_t len = sep ? (size_t)(sep - p) : (size_t)(end - p);
        int fd = open("/run/faas/fetch", O_RDWR);
        if (fd < 0) { printf("=> open: %s\n", strerror(errno)); return 0; }
        write(fd, p, len);
        size_t m = 0;
        while ((r = read(fd, out + m, sizeof out - 1 - m)) > 0) m += (size_t)r;
        out[m] = 0;
        close(fd);
        char *nl = strchr(out, '\n');
        if (nl) *nl = 0;
        printf("=> %s\n", out);
        p = sep ? sep + 6 : end;
    }
    return 0;
}
"#;

/// Deploys `RAW` as `name` with these `allow=` entries.
fn deploy_raw(server: &TestServer, name: &str, grants: &[String]) {
    let query = grants
        .iter()
        // Brackets percent-encoded: they are not allowed raw in a query.
        .map(|g| format!("allow={}", g.replace('[', "%5B").replace(']', "%5D")))
        .collect::<Vec<_>>()
        .join("&");
    server.deploy_with(name, "c", RAW, &query);
}

/// Sends these raw requests in one call; the first line of each answer.
fn exchange(server: &TestServer, name: &str, requests: &[String]) -> Vec<String> {
    let payload = requests.join("\n----\n");
    let resp = server.request("POST", &format!("/invoke?fn={name}"), payload.as_bytes());
    assert_eq!(resp.status, 200, "{name}: {}", resp.body);
    let output = resp.json()["output"].as_str().unwrap().to_string();
    let answers: Vec<String> = output
        .lines()
        .filter_map(|l| l.strip_prefix("=> "))
        .map(str::to_string)
        .collect();
    assert_eq!(answers.len(), requests.len(), "{output}");
    answers
}

fn get(url: &str) -> String {
    format!("GET {url}\n\n")
}

fn gateway_port(server: &TestServer) -> u16 {
    server.addr.rsplit(':').next().unwrap().parse().unwrap()
}

/// This host's address on its default route, if it has one (no packet is
/// sent: a UDP "connection" only picks the source address).
fn own_address() -> Option<String> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.200:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then(|| ip.to_string())
}

// ------------------------------------------------------------- the tests

/// BROKE: the log line of a denial showed the URL's path. The worker cut
/// the raw text at the first `/`, `?` or `#`, but the URL parser reads
/// `\` as `/` in http(s) URLs: `http://h\token=...` is host `h` and path
/// `/token=...`, and the whole path went into the operators' log (and
/// leading control characters, which the parser strips, too). Fixed by
/// taking the origin from the parsed URL (`faas_outbound::origin_of`).
#[test]
fn a_denied_url_never_puts_its_path_or_control_characters_in_the_log() {
    let remote = Recorder::start();
    let server = TestServer::start("RR", &["--workers", "1"]);
    deploy_raw(&server, "leaky", &[format!("127.0.0.1:{}", remote.port)]);
    let answers = exchange(
        &server,
        "leaky",
        &[
            get("http://not-granted.example\\token=S3CR3T-PATH/x"),
            get("\u{8}\u{8}\u{8}\u{1b}http://not-granted.example/"),
        ],
    );
    for answer in &answers {
        assert!(answer.starts_with("denied "), "{answer}");
    }
    wait_until("two denials in the log", Duration::from_secs(5), || {
        server.log_text().matches("outbound request to ").count() >= 2
    });
    let log = server.log_text();
    assert!(!log.contains("S3CR3T-PATH"), "{log}");
    assert!(!log.contains('\u{1b}') && !log.contains('\u{8}'), "{log:?}");
    assert_eq!(
        log.matches("outbound request to http://not-granted.example denied")
            .count(),
        2,
        "{log}"
    );
    assert!(remote.seen().is_empty());
}

/// HELD: names, spellings and parser tricks that lead to loopback (or
/// elsewhere) are refused when only a name is granted; the remote on
/// loopback never sees a request.
#[test]
fn loopback_tricks_are_refused_without_the_literal_address_granted() {
    let remote = Recorder::start();
    let port = remote.port;
    let server = TestServer::start("RR", &["--workers", "1"]);
    deploy_raw(
        &server,
        "tricks",
        &[
            format!("localhost:{port}"),
            "example.com".into(),
            "*.example.com".into(),
        ],
    );
    let urls = [
        // Names resolving to loopback: granting the name is not enough.
        format!("http://localhost:{port}/"),
        format!("http://LOCALHOST:{port}/"),
        format!("http://localhost.:{port}/"),
        format!("http://\u{24db}ocalhost:{port}/"), // IDN: ⓛocalhost
        format!("http://a.localhost:{port}/"),
        // Address spellings the parser turns into 127.0.0.1 or this host.
        format!("http://2130706433:{port}/"),
        format!("http://0177.0.0.1:{port}/"),
        format!("http://0x7f.1:{port}/"),
        format!("http://127.1:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://[::ffff:7f00:1]:{port}/"),
        format!("http://[::1]:{port}/"),
        format!("http://0.0.0.0:{port}/"),
        format!("http://0:{port}/"),
        format!("http://[::]:{port}/"),
        // Parser confusion: the granted name as user info, fragment or
        // after a backslash.
        format!("http://example.com@127.0.0.1:{port}/"),
        format!("http://example.com:x@127.0.0.1:{port}/"),
        format!("http://127.0.0.1:{port}#@example.com/"),
        format!("http://127.0.0.1:{port}\\@example.com/"),
        format!("http://127.0.0.1:{port}?@example.com/"),
        format!("http://127.0.0.1%2f@example.com:{port}/"),
        // A wildcard's lookalikes.
        "http://127.0.0.1.example.com/".into(),
        "http://127.0.0.1.example.com./".into(),
        "http://example.com.127.0.0.1.nip.io/".into(),
        // Other schemes.
        "file:///etc/passwd".into(),
        format!("gopher://127.0.0.1:{port}/"),
        format!("ws://127.0.0.1:{port}/"),
        // Cloud metadata.
        "http://169.254.169.254/latest/meta-data/".into(),
        "http://[fd00:ec2::254]/latest/meta-data/".into(),
    ];
    let requests: Vec<String> = urls.iter().map(|u| get(u)).collect();
    let answers = exchange(&server, "tricks", &requests);
    for (url, answer) in urls.iter().zip(&answers) {
        assert!(
            answer.starts_with("denied ") || answer.starts_with("error "),
            "{url}: {answer}"
        );
    }
    assert!(remote.seen().is_empty(), "{:?}", remote.seen());
}

/// HELD: the gateway's port, granted by every address this host has
/// (loopback in its forms, unspecified, the default route's address), is
/// never reached; the same grants reach another port.
#[test]
fn the_gateway_is_refused_by_every_address_of_this_host_even_granted() {
    let server = TestServer::start("RR", &["--workers", "1"]);
    let gw = gateway_port(&server);
    let mut hosts = vec![
        "127.0.0.1".to_string(),
        "127.0.0.2".into(),
        "127.255.255.254".into(),
        "[::1]".into(),
        "[::ffff:127.0.0.1]".into(),
        "[::ffff:127.0.0.2]".into(),
        "0.0.0.0".into(),
        "[::]".into(),
        "[::ffff:0.0.0.0]".into(),
    ];
    hosts.extend(own_address());
    let grants: Vec<String> = hosts.iter().map(|h| format!("{h}:{gw}")).collect();
    deploy_raw(&server, "gw", &grants);
    let requests: Vec<String> = hosts
        .iter()
        .map(|h| get(&format!("http://{h}:{gw}/health")))
        .collect();
    let answers = exchange(&server, "gw", &requests);
    for (host, answer) in hosts.iter().zip(&answers) {
        assert!(answer.starts_with("denied "), "{host}: {answer}");
    }
    // Redirected there from a granted remote: refused as well.
    let remote = Recorder::start();
    deploy_raw(
        &server,
        "gw_redirect",
        &[
            format!("127.0.0.1:{}", remote.port),
            format!("127.0.0.1:{gw}"),
        ],
    );
    let answers = exchange(
        &server,
        "gw_redirect",
        &[
            get(&remote.url(&format!("/redir?to=http://127.0.0.1:{gw}/health"))),
            get(&remote.url(&format!(
                "/redir?code=307&to=http://[::ffff:127.0.0.1]:{gw}/health"
            ))),
            get(&remote.url(&format!("/redir?to=//127.0.0.1:{gw}/health"))),
        ],
    );
    for answer in &answers {
        assert!(answer.starts_with("denied "), "{answer}");
    }
    assert_eq!(remote.seen().len(), 3);
}

/// HELD: redirects go only to granted http(s) places, at most 5 of them,
/// each hop checked; credentials do not follow a redirect to another
/// origin.
#[test]
fn redirects_are_checked_bounded_and_drop_credentials_across_origins() {
    let a = Recorder::start();
    let b = Recorder::start();
    let server = TestServer::start("RR", &["--workers", "1"]);
    deploy_raw(
        &server,
        "redirects",
        &[
            format!("127.0.0.1:{}", a.port),
            format!("127.0.0.1:{}", b.port),
        ],
    );
    let answers = exchange(
        &server,
        "redirects",
        &[
            get(&a.url("/redir?to=file:///etc/passwd")),
            get(&a.url("/redir?to=http://169.254.169.254/latest/meta-data/")),
            get(&a.url("/redir?to=http://localhost:1/")),
            get(&a.url("/redir?to=http://user:pw@127.0.0.1:1/")),
            get(&a.url("/loop")),
            // Relative, and to the other granted origin with credentials.
            format!(
                "POST {}\nAuthorization: Bearer TOKEN-A\nCookie: c=TOKEN-C\nX-Custom: kept\n\nbody307",
                a.url(&format!("/redir?code=307&to=http://127.0.0.1:{}/landed", b.port))
            ),
            get(&a.url("/redir?to=/relative")),
        ],
    );
    assert!(answers[0].starts_with("error "), "{}", answers[0]);
    assert!(answers[1].starts_with("denied "), "{}", answers[1]);
    assert!(answers[2].starts_with("denied "), "{}", answers[2]);
    assert!(answers[3].starts_with("error "), "{}", answers[3]);
    assert!(
        answers[4].starts_with("error ") && answers[4].contains("too many redirects"),
        "{}",
        answers[4]
    );
    assert_eq!(
        answers[5],
        format!("ok 200 http://127.0.0.1:{}/landed", b.port)
    );
    assert_eq!(answers[6], format!("ok 200 {}", a.url("/relative")));
    // The loop: the first request and 5 redirects, no more.
    let loops = a
        .seen()
        .iter()
        .filter(|r| r.starts_with("GET /loop"))
        .count();
    assert_eq!(loops, 6);
    // The 307 kept its method and body, and dropped the credentials.
    let landed = b.seen();
    assert_eq!(landed.len(), 1, "{landed:?}");
    let landed = landed[0].to_ascii_lowercase();
    assert!(landed.starts_with("post /landed "), "{landed}");
    assert!(landed.ends_with("body307"), "{landed}");
    assert!(landed.contains("x-custom: kept"), "{landed}");
    assert!(
        !landed.contains("token-a") && !landed.contains("token-c"),
        "{landed}"
    );
}

/// HELD: a request cannot carry another Host, framing or hop-by-hop
/// headers, CR/LF or NUL; the remote gets only what the function set (no
/// request id, nothing of the platform but the User-Agent).
#[test]
fn headers_cannot_be_smuggled_and_the_remote_learns_nothing_of_the_platform() {
    let remote = Recorder::start();
    let server = TestServer::start("RR", &["--workers", "1"]);
    deploy_raw(&server, "smuggle", &[format!("127.0.0.1:{}", remote.port)]);
    let url = remote.url("/x");
    let refused = [
        format!("GET {url}\nHost: example.com\n\n"),
        format!("GET {url}\nHost: 127.0.0.1:1\n\n"),
        format!("GET {url}\nHost: 127.0.0.1:{}\nHost: evil\n\n", remote.port),
        format!("GET {url}\nTransfer-Encoding: chunked\n\n0\r\n\r\n"),
        format!("POST {url}\nContent-Length: 1\n\nGET /smuggled HTTP/1.1\r\n\r\n"),
        format!("GET {url}\nConnection: keep-alive, Upgrade\n\n"),
        format!("GET {url}\nUpgrade: h2c\n\n"),
        format!("GET {url}\nX-A: v\rInjected: 1\n\n"),
        format!("GET {url}\nX-A: v\0\n\n"),
        format!("GET {url}\nX A: v\n\n"),
        format!("GET {url}\n:authority: example.com\n\n"),
        format!("CONNECT {url}\n\n"),
        format!("connect {url}\n\n"),
        "GET /x HTTP/1.1\nHost: 127.0.0.1\n\n".to_string(),
        format!("GET {url} HTTP/1.1\n\n"),
    ];
    let answers = exchange(&server, "smuggle", &refused);
    for (req, answer) in refused.iter().zip(&answers) {
        assert!(
            answer.starts_with("error ") || answer.starts_with("denied "),
            "{req:?}: {answer}"
        );
    }
    assert!(remote.seen().is_empty(), "{:?}", remote.seen());
    // A plain request: what arrives.
    let resp = server.request(
        "POST",
        "/invoke?fn=smuggle",
        format!("GET {url}\nX-Mine: 1\n\n").as_bytes(),
    );
    assert_eq!(resp.status, 200, "{}", resp.body);
    let request_id = resp.header("x-request-id").unwrap().to_string();
    let seen = remote.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let head = seen[0].to_ascii_lowercase();
    assert!(head.starts_with("get /x http/1.1\r\n"), "{head}");
    assert!(!head.contains(&request_id.to_ascii_lowercase()), "{head}");
    let names: Vec<&str> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':').map(|(n, _)| n))
        .collect();
    for name in &names {
        assert!(
            ["host", "x-mine", "user-agent", "accept"].contains(name),
            "unexpected header {name} in {head}"
        );
    }
    assert!(head.contains(&format!("host: 127.0.0.1:{}\r\n", remote.port)));
}

/// BROKE: only the gateway's port was refused on this host's own
/// addresses. A granted name resolving to one of them (here eth0's, which
/// is not in a private range) reached every other service of this host
/// listening there. Now this host's addresses are private like loopback:
/// refused on every port unless that address and port are granted
/// literally, and the gateway's port even then.
#[test]
fn a_granted_name_resolving_to_this_host_s_own_address_is_refused() {
    // make test runs as root on a networked machine: both hold there, and
    // a machine where they do not fails loudly rather than skipping.
    let own = own_address().expect("this host has no address on a default route");
    // A service of this host, listening on its own address only.
    let local = Recorder::start_on(&own);
    let port = local.port;
    let hosts = format!("127.0.0.1 localhost\n{own} own.test\n");
    let server = TestServer::start_with_hosts("RR", &["--workers", "1"], &hosts)
        .expect("cannot give the server its own /etc/hosts (needs root and unshare)");
    deploy_raw(
        &server,
        "own_name",
        &[format!("own.test:{port}"), "own.test".into()],
    );
    let answers = exchange(
        &server,
        "own_name",
        &[
            get(&format!("http://own.test:{port}/")),
            get("http://own.test/"),
            get("https://own.test/"),
        ],
    );
    for answer in &answers {
        assert!(
            answer.starts_with("denied host own.test:")
                && answer.contains(&format!("resolves to {own}"))
                && answer.contains("this host's own"),
            "{answer}"
        );
    }
    assert!(local.seen().is_empty(), "{:?}", local.seen());
    // As for any private address: the literal address and port granted
    // reach it (by address, or by a name resolving to it).
    deploy_raw(
        &server,
        "own_literal",
        &[format!("{own}:{port}"), format!("own.test:{port}")],
    );
    let answers = exchange(
        &server,
        "own_literal",
        &[
            get(&format!("http://{own}:{port}/")),
            get(&format!("http://own.test:{port}/")),
            get(&format!("http://{own}:{}/", port.wrapping_add(1).max(1))),
        ],
    );
    assert!(answers[0].starts_with("ok 200 "), "{}", answers[0]);
    assert!(answers[1].starts_with("ok 200 "), "{}", answers[1]);
    assert!(answers[2].starts_with("denied "), "{}", answers[2]);
    assert_eq!(local.seen().len(), 2);
    // The gateway's port on that address: never, even granted.
    let gw = gateway_port(&server);
    deploy_raw(&server, "own_gateway", &[format!("{own}:{gw}")]);
    let answers = exchange(
        &server,
        "own_gateway",
        &[get(&format!("http://{own}:{gw}/health"))],
    );
    assert!(answers[0].contains("platform's own"), "{}", answers[0]);
}

/// The directories of this user's servers' workers under the temporary
/// directory: `faas-server-*/worker-PID`.
fn worker_socket_dir(pid: u64) -> Option<std::path::PathBuf> {
    std::fs::read_dir(std::env::temp_dir())
        .ok()?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("faas-server-"))
        .map(|e| e.path().join(format!("worker-{pid}")))
        .find(|p| p.is_dir())
}

/// BROKE: a worker kept its PHP fetch sockets (and prelude) in a directory
/// of its own under /tmp, removed when it exited; SIGKILLed (a deadline
/// overrun, the OOM killer), it left the directory, with the socket of the
/// call it was serving, for good. Now the directory is `worker-PID` in the
/// Server's own directory, removed when the Server reaps the worker, and
/// the Server's directory goes when it stops.
#[test]
fn a_killed_worker_s_php_socket_directory_is_removed_when_it_is_reaped() {
    let remote = Recorder::start();
    // A remote that accepts and never answers: the call stays in its fetch.
    let hang = TcpListener::bind("127.0.0.1:0").unwrap();
    let hang_port = hang.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let held: Vec<_> = hang.incoming().flatten().collect();
        drop(held);
    });
    let mut server = TestServer::start("RR", &["--workers", "1"]);
    let code = r#"<?php
$r = faas_fetch(trim(stream_get_contents(STDIN)));
echo $r === false ? "FAILED\n" : $r['status'] . "\n";
"#;
    server.deploy_with(
        "php_fetch",
        "php",
        code,
        &format!(
            "timeout_ms=20000&allow=127.0.0.1:{}&allow=127.0.0.1:{hang_port}",
            remote.port
        ),
    );
    let resp = server.post("/invoke?fn=php_fetch", &remote.url("/x"));
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.json()["output"], "200\n", "{}", resp.body);
    let pid = server.get("/stats").json()["worker_pids"][0]
        .as_u64()
        .unwrap();
    let dir = worker_socket_dir(pid).expect("the worker's socket directory");
    let server_dir = dir.parent().unwrap().to_path_buf();
    assert!(dir.join("prelude.php").is_file());
    // A call waiting in its fetch: its socket is there when the worker dies.
    let call = {
        let addr = server.addr.clone();
        let url = format!("http://127.0.0.1:{hang_port}/");
        std::thread::spawn(move || http(&addr, "POST", "/invoke?fn=php_fetch", url.as_bytes()))
    };
    wait_until("the call's socket", Duration::from_secs(10), || {
        std::fs::read_dir(&dir)
            .map(|d| d.flatten().any(|e| e.path().join("fetch.sock").exists()))
            .unwrap_or(false)
    });
    assert_eq!(kill_worker(&server, 0), pid);
    wait_for(&server, "a new worker", |stats| {
        stats["worker_pids"][0]
            .as_u64()
            .is_some_and(|p| p != 0 && p != pid)
    });
    assert_eq!(call.join().unwrap().status, 502);
    assert!(!dir.exists(), "{} left behind", dir.display());
    // The new worker keeps its own there, and serves PHP fetches.
    let resp = server.post("/invoke?fn=php_fetch", &remote.url("/x"));
    assert_eq!(resp.json()["output"], "200\n", "{}", resp.body);
    let new_pid = server.get("/stats").json()["worker_pids"][0]
        .as_u64()
        .unwrap();
    let new_dir = worker_socket_dir(new_pid).unwrap();
    assert_eq!(new_dir.parent().unwrap(), server_dir);
    // Stopped, the server leaves nothing.
    assert!(server.stop().success());
    assert!(!server_dir.exists(), "{} left behind", server_dir.display());
}
