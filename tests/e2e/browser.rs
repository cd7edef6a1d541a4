//! The browser rules, attacked: a `/fn/` page trying to read the
//! dashboard's token and call the API with it, a page on another origin
//! trying to deploy (both in headless Chromium), and over plain HTTP the
//! Host (421), Origin and Sec-Fetch-Site (403) checks, the `/fn/` sandbox
//! headers, the credentials a function never sees, and the per-client
//! connection limit.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fantoccini::Locator;

use crate::dashboard::{browser, type_into, wait_until, Driver};
use crate::harness::{http, http_bytes, repo_root, wait_for_log, TestServer};

const SANDBOX: &str = "sandbox allow-scripts allow-forms allow-popups";

/// A response as (status, headers, body).
type Answer = (u16, Vec<(String, String)>, String);

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Sends exactly `head` (and `body`) on a fresh connection and reads the
/// answer until the server closes.
fn raw(addr: &str, head: &str, body: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a whole answer");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

/// A request with extra headers; the answer with its body as text.
fn send(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let (status, headers, body) = http_bytes(addr, method, path, headers, body.as_bytes());
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

/// Asserts a JSON error with `status` whose message contains `says`.
fn assert_refused(answer: &Answer, status: u16, says: &str) {
    assert_eq!(answer.0, status, "{answer:?}");
    let json: serde_json::Value = serde_json::from_str(&answer.2).expect("a JSON error");
    assert_eq!(json["ok"], false, "{answer:?}");
    let error = json["error"].as_str().unwrap();
    assert!(error.contains(says), "{error}");
    assert_eq!(header(&answer.1, "content-type"), Some("application/json"));
}

fn assert_sandboxed(answer: &Answer) {
    assert_eq!(
        header(&answer.1, "content-security-policy"),
        Some(SANDBOX),
        "{answer:?}"
    );
    assert_eq!(header(&answer.1, "x-content-type-options"), Some("nosniff"));
}

/// The names `GET /functions` lists.
fn function_names(addr: &str, token: Option<&str>) -> Vec<String> {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    let (status, _, body) = send(addr, "GET", "/functions", &headers, "");
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    json["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect()
}

fn save_screenshot(png: &[u8], name: &str) {
    let dir = repo_root().join("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), png).unwrap();
    assert!(png.starts_with(b"\x89PNG"));
}

/// Everything a page in the dashboard's origin could take, tried from a
/// function's page: storage, cookies, the dashboard window's token box,
/// and the API with the browser's credentials.
const SPY_PAGE: &str = r#"<!doctype html><meta charset="utf-8"><title>spy</title>
<pre id="out">running</pre>
<script>
(async () => {
  const r = {};
  const grab = (k, f) => { try { r[k] = String(f()); } catch (e) { r[k] = 'blocked: ' + e.name; } };
  grab('origin', () => self.origin);
  grab('session', () => JSON.stringify(Object.entries(sessionStorage)));
  grab('local', () => JSON.stringify(Object.entries(localStorage)));
  grab('cookie', () => document.cookie);
  grab('opener_token', () => window.opener.document.getElementById('token').value);
  grab('opener_api', () => String(window.opener.api));
  try {
    const resp = await fetch('/functions', { credentials: 'include' });
    r.list = resp.status + ' ' + (await resp.text());
  } catch (e) { r.list = 'blocked: ' + e.name; }
  try {
    await fetch('/deploy?name=stolen&lang=html', { method: 'POST', mode: 'no-cors', credentials: 'include', body: 'x' });
    r.deploy = 'sent';
  } catch (e) { r.deploy = 'blocked: ' + e.name; }
  document.getElementById('out').textContent = JSON.stringify(r, null, 1);
  document.title = 'done';
})();
</script>
"#;

#[test]
fn a_fn_page_cannot_read_the_dashboards_token_or_use_the_api_in_chromium() {
    let token = "dash-token-4b1d";
    let server = TestServer::start("RR", &["--workers", "2", "--api-token", token]);
    let auth = format!("Bearer {token}");
    let deployed = send(
        &server.addr,
        "POST",
        "/deploy?name=spy&lang=html",
        &[("Authorization", &auth)],
        SPY_PAGE,
    );
    assert_eq!(deployed.0, 201, "{deployed:?}");

    let driver = Driver::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = runtime.block_on(async {
        let c = browser(driver.port).await;
        c.goto(&format!("http://{}/", server.addr)).await.unwrap();
        wait_until(
            &c,
            "the token prompt",
            "document.getElementById('status').textContent.includes('token')",
        )
        .await;
        type_into(&c, "token", token).await;
        c.execute(
            "document.getElementById('token').dispatchEvent(new Event('change'))",
            vec![],
        )
        .await
        .unwrap();
        wait_until(
            &c,
            "live data",
            "document.getElementById('status').textContent.startsWith('live')",
        )
        .await;

        // The token works, yet nothing in the origin's storage holds it.
        let stored = c
            .execute(
                "return [sessionStorage.length, localStorage.length, document.cookie]",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(stored, serde_json::json!([0, 0, ""]));

        // The function's page, opened from the dashboard (so it has the
        // dashboard as its opener, and the same tab's storage).
        let dashboard = c.window().await.unwrap();
        c.execute("window.open('/fn/spy', 'spy')", vec![])
            .await
            .unwrap();
        let mut spy = None;
        for _ in 0..200 {
            spy = c
                .windows()
                .await
                .unwrap()
                .into_iter()
                .find(|w| *w != dashboard);
            if spy.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        c.switch_to_window(spy.expect("the spy window"))
            .await
            .unwrap();
        wait_until(&c, "the spy's report", "document.title === 'done'").await;
        let report = c
            .find(Locator::Id("out"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        save_screenshot(&c.screenshot().await.unwrap(), "browser-fn-sandbox.png");

        // The dashboard still has its token and still works: the spy
        // changed nothing.
        c.switch_to_window(dashboard).await.unwrap();
        let box_value = c
            .execute("return document.getElementById('token').value", vec![])
            .await
            .unwrap();
        assert_eq!(box_value, serde_json::json!(token));
        c.close().await.unwrap();
        report
    });
    let report: serde_json::Value = serde_json::from_str(&report).expect(&report);
    assert!(!report.to_string().contains(token), "{report}");
    // An opaque origin: no storage, no cookies, no reach into the
    // dashboard's window.
    assert_eq!(report["origin"], "null", "{report}");
    for key in ["session", "local", "cookie", "opener_token", "opener_api"] {
        assert!(
            report[key].as_str().unwrap().starts_with("blocked: "),
            "{key}: {report}"
        );
    }
    // Its API calls got nothing: the list needs the token (and an opaque
    // origin cannot read the answer), the deploy was refused.
    assert!(
        !report["list"].as_str().unwrap().starts_with("200"),
        "{report}"
    );
    wait_for_log(
        &server,
        "POST /deploy: cross-site request refused: Origin null",
        Duration::from_secs(10),
    );
    assert_eq!(function_names(&server.addr, Some(token)), ["spy"]);
}

/// Serves `page` to every request on 127.0.0.1 (another origin than the
/// server's: another port) until dropped.
struct OtherOrigin {
    addr: String,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl OtherOrigin {
    fn serve(page: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let _ = stream.set_nonblocking(false);
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                    page.len()
                );
                let _ = reader.get_mut().write_all(answer.as_bytes());
            }
        });
        Self {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for OtherOrigin {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn a_page_on_another_origin_cannot_deploy_in_chromium() {
    // The default setup: loopback, no token. The browser of someone on
    // this machine can reach it, so any page they visit could try.
    let server = TestServer::start("RR", &["--workers", "1"]);
    let target = format!("http://{}", server.addr);
    // A no-cors fetch first, then a form: the two requests a page can send
    // anywhere without asking.
    let page = format!(
        r#"<!doctype html><meta charset="utf-8"><title>evil</title>
<form id="f" method="POST" enctype="text/plain" action="{target}/deploy?name=csrf_form&amp;lang=html">
<input name="&lt;h1&gt;pwned&lt;/h1&gt;&lt;!--" value="--&gt;"></form>
<script>
(async () => {{
  try {{
    await fetch('{target}/deploy?name=csrf_fetch&lang=html', {{ method: 'POST', mode: 'no-cors', body: '<h1>pwned</h1>' }});
    document.title = 'fetched';
  }} catch (e) {{ document.title = 'fetch failed: ' + e; }}
  document.getElementById('f').submit();
}})();
</script>
"#
    );
    let evil = OtherOrigin::serve(page);
    let driver = Driver::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let c = browser(driver.port).await;
        c.goto(&format!("http://{}/", evil.addr)).await.unwrap();
        // The form's answer replaces the page: the server's 403, as JSON.
        let landed = format!(
            "location.host === '{}' && document.body && document.body.innerText.includes('cross-site request refused')",
            server.addr
        );
        wait_until(&c, "the server's refusal of the form", &landed).await;
        save_screenshot(&c.screenshot().await.unwrap(), "browser-csrf-refused.png");
        c.close().await.unwrap();
    });
    // Both requests reached the server and were refused; nothing deployed.
    let refused = format!(
        "POST /deploy: cross-site request refused: Origin http://{}",
        evil.addr
    );
    let count = || server.log_text().matches(&refused).count();
    crate::harness::wait_until("both refusals in the log", Duration::from_secs(10), || {
        count() >= 2
    });
    assert_eq!(count(), 2, "{}", server.log_text());
    assert!(function_names(&server.addr, None).is_empty());
    assert!(server.stored_functions().is_empty());
}

#[test]
fn hosts_that_are_not_the_servers_own_get_421() {
    let server = TestServer::start("RR", &["--workers", "1"]);
    let addr = &server.addr;
    let port = addr.rsplit(':').next().unwrap();
    for host in [
        "evil.example".to_string(),
        format!("evil.example:{port}"),
        format!("127.0.0.1.evil.example:{port}"),
        format!("localhost.evil.example:{port}"),
        "127.0.0.2".to_string(),
        "user@127.0.0.1".to_string(),
    ] {
        for (method, path) in [
            ("GET", "/stats"),
            ("POST", "/deploy?name=x&lang=html"),
            ("GET", "/fn/x"),
        ] {
            let head = format!(
                "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1\r\nConnection: close\r\n\r\n"
            );
            let answer = raw(addr, &head, b"x");
            assert_refused(&answer, 421, "--allowed-hosts");
            assert_eq!(header(&answer.1, "x-content-type-options"), Some("nosniff"));
            if path.starts_with("/fn/") {
                assert_sandboxed(&answer);
            }
        }
    }
    // An absolute-form target names the host too.
    let head =
        "GET http://evil.example/stats HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n";
    assert_refused(&raw(addr, head, b""), 421, "--allowed-hosts");
    // The loopback names pass, on any port, in any case.
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "LOCALHOST".to_string(),
        format!("[::1]:{port}"),
        "localhost.".to_string(),
    ] {
        let head = format!("GET /stats HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let answer = raw(addr, &head, b"");
        assert_eq!(answer.0, 200, "{host}: {answer:?}");
    }
    // HTTP/1.1 without Host is malformed; HTTP/1.0 had none.
    let answer = raw(
        addr,
        "GET /stats HTTP/1.1\r\nConnection: close\r\n\r\n",
        b"",
    );
    assert_eq!(answer.0, 400, "{answer:?}");
    let answer = raw(addr, "GET /stats HTTP/1.0\r\n\r\n", b"");
    assert_eq!(answer.0, 200, "{answer:?}");
    assert!(server.stored_functions().is_empty());
    // Probes and peer notices arrive by IP address (a kubelet, another
    // replica) and reveal or change nothing: exempt, and only they.
    for (method, path, status) in [
        ("GET", "/health", 200),
        ("GET", "/health/ready", 200),
        ("POST", "/cluster/notice", 404),
        ("GET", "/health/../stats", 421),
        ("GET", "/health/ready/x", 421),
        ("GET", "/cluster/notice", 405),
    ] {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 10.1.2.3:8080\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        assert_eq!(raw(addr, &head, b"").0, status, "{method} {path}");
    }
}

#[test]
fn allowed_hosts_replace_the_default_and_a_network_bind_warns() {
    // From the environment, like every flag.
    let named = TestServer::start_with_env(
        "RR",
        &["--workers", "1"],
        &[("FAAS_ALLOWED_HOSTS", "faas.test,other.test:1")],
    );
    let port = named.addr.rsplit(':').next().unwrap().to_string();
    let get = |server: &TestServer, host: &str| {
        let head = format!("GET /stats HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        raw(&server.addr, &head, b"")
    };
    assert_eq!(get(&named, &format!("faas.test:{port}")).0, 200);
    assert_eq!(get(&named, "FAAS.test").0, 200);
    assert_eq!(get(&named, "other.test:1").0, 200);
    assert_refused(
        &get(&named, &format!("other.test:{port}")),
        421,
        "--allowed-hosts",
    );
    assert_refused(
        &get(&named, &format!("127.0.0.1:{port}")),
        421,
        "--allowed-hosts",
    );
    assert!(named
        .log_text()
        .contains("answering Host names faas.test,other.test:1"));

    // Bound to every address without the flag: any Host is answered, and
    // the log says to set it.
    let open = TestServer::start("RR", &["--workers", "1", "--host", "0.0.0.0"]);
    assert!(
        open.log_text().contains("without --allowed-hosts"),
        "{}",
        open.log_text()
    );
    assert_eq!(get(&open, "evil.example").0, 200);
}

#[test]
fn cross_site_requests_to_the_control_plane_get_403_and_functions_stay_open() {
    let server = TestServer::start("RR", &["--workers", "1"]);
    let addr = &server.addr;
    let own = format!("http://{addr}");
    let page = "<h1>page</h1>";
    let deploy = "/deploy?name=page&lang=html";
    for headers in [
        vec![("Origin", "http://evil.example")],
        vec![("Origin", "null")],
        vec![("Origin", "http://127.0.0.1:1")],
        vec![("Sec-Fetch-Site", "cross-site")],
        vec![("Sec-Fetch-Site", "same-site")],
        vec![("Origin", own.as_str()), ("Sec-Fetch-Site", "cross-site")],
    ] {
        let answer = send(addr, "POST", deploy, &headers, page);
        assert_refused(&answer, 403, "cross-site request refused");
    }
    assert!(server.stored_functions().is_empty());
    // The dashboard's own requests, and clients outside a browser, pass.
    let answer = send(
        addr,
        "POST",
        deploy,
        &[("Origin", &own), ("Sec-Fetch-Site", "same-origin")],
        page,
    );
    assert_eq!(answer.0, 201, "{answer:?}");
    server.deploy(
        "fails",
        "js",
        "process.stdout.write('<b>no</b>'); process.exit(3);\n",
    );

    // Every other state-changing route is refused the same way.
    let evil = [("Origin", "http://evil.example")];
    for (method, path) in [
        ("PUT", "/function/page?lang=html"),
        ("DELETE", "/function/page"),
        ("POST", "/invoke?fn=page"),
    ] {
        let answer = send(addr, method, path, &evil, page);
        assert_refused(&answer, 403, "cross-site request refused");
    }
    assert_eq!(function_names(addr, None).len(), 2);
    // Reads change nothing (and another origin cannot read the answer).
    assert_eq!(send(addr, "GET", "/functions", &evil, "").0, 200);

    // A function is a public endpoint: another site's form or webhook may
    // call it, and its answer is sandboxed, successes and errors alike.
    let answer = send(addr, "POST", "/fn/page", &evil, "");
    assert_eq!(answer.0, 200, "{answer:?}");
    assert_eq!(answer.2, page);
    assert_eq!(
        header(&answer.1, "content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_sandboxed(&answer);
    let answer = send(addr, "GET", "/fn/page/deeper?x=1", &[], "");
    assert_eq!(answer.0, 200);
    assert_sandboxed(&answer);
    let answer = send(addr, "GET", "/fn/fails", &[], "");
    assert_eq!(answer.0, 500, "{answer:?}");
    assert_sandboxed(&answer);
    let answer = send(addr, "GET", "/fn/missing", &[], "");
    assert_refused(&answer, 404, "");
    assert_sandboxed(&answer);
    let answer = send(addr, "GET", "/fn/", &[], "");
    assert_sandboxed(&answer);
    // Other answers are not sniffed either, and keep their own policy.
    let answer = send(addr, "GET", "/health", &[], "");
    assert_eq!(header(&answer.1, "x-content-type-options"), Some("nosniff"));
    assert_eq!(header(&answer.1, "content-security-policy"), None);
    let answer = send(addr, "GET", "/", &[], "");
    assert!(header(&answer.1, "content-security-policy")
        .unwrap()
        .contains("frame-ancestors 'none'"));
    assert!(!answer.2.contains("sessionStorage.setItem"));
    assert!(!answer.2.contains("localStorage.setItem"));
}

/// Prints the `FAAS_HTTP_HEADER_*` variables it received, as JSON.
const HEADERS_JS: &str = "const h = {};\nfor (const [k, v] of Object.entries(process.env)) if (k.startsWith('FAAS_HTTP_HEADER_')) h[k.slice(17)] = v;\nconsole.log(JSON.stringify(h));\n";

fn seen(addr: &str, function: &str, headers: &[(&str, &str)]) -> serde_json::Value {
    let (status, _, body) = send(addr, "POST", &format!("/fn/{function}"), headers, "");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect(&body)
}

#[test]
fn functions_never_see_proxy_credentials_or_the_platform_tokens() {
    let api = "api-tok-7c0ffee";
    let server = TestServer::start("RR", &["--workers", "1", "--api-token", api]);
    let auth = format!("Bearer {api}");
    for (name, extra) in [("plain", ""), ("passing", "&pass_auth=1")] {
        let answer = send(
            &server.addr,
            "POST",
            &format!("/deploy?name={name}&lang=js{extra}"),
            &[("Authorization", &auth)],
            HEADERS_JS,
        );
        assert_eq!(answer.0, 201, "{answer:?}");
    }
    let credentials = [
        ("Authorization", "Bearer someone-elses"),
        ("Proxy-Authorization", "Basic cHJveHk6cHc="),
        ("Cookie", "session=abc"),
        ("X-Custom", "kept"),
    ];
    // Without pass_auth, no credential of any kind.
    let plain = seen(&server.addr, "plain", &credentials);
    assert_eq!(plain["X_CUSTOM"], "kept", "{plain}");
    for withheld in ["AUTHORIZATION", "PROXY_AUTHORIZATION", "COOKIE"] {
        assert!(plain.get(withheld).is_none(), "{withheld}: {plain}");
    }
    // With it, the caller's own credentials pass.
    let passing = seen(&server.addr, "passing", &credentials);
    assert_eq!(
        passing["AUTHORIZATION"], "Bearer someone-elses",
        "{passing}"
    );
    assert_eq!(passing["PROXY_AUTHORIZATION"], "Basic cHJveHk6cHc=");
    // Cookies never: the browser sends every local app's cookies to /fn/.
    assert!(passing.get("COOKIE").is_none(), "{passing}");
    // The platform's token never does, wherever the caller put it.
    let leaky = [
        ("Authorization", auth.as_str()),
        ("Proxy-Authorization", auth.as_str()),
        ("X-Forwarded-Token", api),
        ("X-Custom", "kept"),
    ];
    let passing = seen(&server.addr, "passing", &leaky);
    assert!(!passing.to_string().contains(api), "{passing}");
    assert_eq!(passing["X_CUSTOM"], "kept");

    // The invoke token opens /fn/ and stays at the door.
    let invoke = "inv-tok-5ca1ab1e";
    let guarded = TestServer::start("RR", &["--workers", "1", "--invoke-token", invoke]);
    let answer = send(
        &guarded.addr,
        "POST",
        "/deploy?name=passing&lang=js&pass_auth=1",
        &[],
        HEADERS_JS,
    );
    assert_eq!(answer.0, 201, "{answer:?}");
    let bearer = format!("Bearer {invoke}");
    let passing = seen(
        &guarded.addr,
        "passing",
        &[
            ("Authorization", &bearer),
            ("Proxy-Authorization", "Bearer for-the-function"),
        ],
    );
    assert!(!passing.to_string().contains(invoke), "{passing}");
    assert!(passing.get("AUTHORIZATION").is_none(), "{passing}");
    assert_eq!(passing["PROXY_AUTHORIZATION"], "Bearer for-the-function");
}

/// Sends one keep-alive request on `stream` and reads exactly its answer's
/// status (the connection stays open).
fn health_on(stream: &mut TcpStream, addr: &str) -> u16 {
    write!(stream, "GET /health HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status = line.split(' ').nth(1).unwrap().parse().unwrap();
    let mut length = 0;
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap();
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    status
}

/// Opens `n` connections from 127.0.0.1, each answered once and kept open.
fn hold(addr: &str, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|i| {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            assert_eq!(health_on(&mut stream, addr), 200, "connection {i}");
            stream
        })
        .collect()
}

#[test]
fn one_client_address_holds_at_most_its_share_of_connections() {
    let server = TestServer::start("RR", &["--workers", "1", "--max-connections-per-ip", "4"]);
    let addr = &server.addr;
    let held = hold(addr, 4);
    // Every further connection from this address: one 503, then closed.
    for _ in 0..20 {
        let answer = http(addr, "GET", "/health", b"");
        answer.assert_error(503);
        assert!(
            answer.body.contains("--max-connections-per-ip"),
            "{}",
            answer.body
        );
        assert_eq!(answer.header("retry-after"), Some("1"));
    }
    // Another address is not held up by this one.
    let mut other = connect_from("127.0.0.2", addr);
    assert_eq!(health_on(&mut other, addr), 200);
    // Closing frees the address's share, all of it.
    drop(held);
    crate::harness::wait_until(
        "four new connections once the held ones closed",
        Duration::from_secs(20),
        || {
            let streams: Vec<_> = (0..4).map(|_| TcpStream::connect(addr).unwrap()).collect();
            streams
                .into_iter()
                .all(|mut s| health_on(&mut s, addr) == 200)
        },
    );

    // The default share is 256.
    let default = TestServer::start("RR", &["--workers", "1"]);
    let held = hold(&default.addr, 256);
    http(&default.addr, "GET", "/health", b"").assert_error(503);
    drop(held);
}

/// A connection to `addr` from the local address `from` (another client).
fn connect_from(from: &str, addr: &str) -> TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
        let stream = socket.connect(addr.parse().unwrap()).await.unwrap();
        let stream = stream.into_std().unwrap();
        stream.set_nonblocking(false).unwrap();
        stream
    })
}

#[test]
fn refused_connections_do_not_pile_up_in_the_server() {
    let server = TestServer::start("RR", &["--workers", "1", "--max-connections-per-ip", "4"]);
    let addr = &server.addr;
    let open_fds = || {
        std::fs::read_dir(format!("/proc/{}/fd", server.pid()))
            .unwrap()
            .count()
    };
    let baseline = open_fds();
    let _held = hold(addr, 4);
    // A flood of silent connections from the same address: each over the
    // share, none sending a byte.
    let flood: Vec<TcpStream> = (0..900)
        .filter_map(|_| TcpStream::connect(addr).ok())
        .collect();
    assert!(flood.len() > 800, "the flood connected");
    // The server holds its share, at most 64 being refused, and its own.
    let held_now = open_fds();
    assert!(
        held_now < baseline + 4 + 64 + 16,
        "{held_now} descriptors open (baseline {baseline})"
    );
    // Another address is served meanwhile.
    let mut other = connect_from("127.0.0.2", addr);
    assert_eq!(health_on(&mut other, addr), 200);
}
