//! Seeing it run: Prometheus metrics parsed by a real parser, and the
//! dashboard driven in headless Chromium through WebDriver.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

use crate::harness::{example, TestServer};

/// Samples of one metric family, by their labels.
fn samples(text: &str, name: &str) -> Vec<prometheus_parse::Sample> {
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text");
    scrape
        .samples
        .into_iter()
        .filter(|s| s.metric == name)
        .collect()
}

fn value(sample: &prometheus_parse::Sample) -> f64 {
    match &sample.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => *v,
        prometheus_parse::Value::Histogram(h) => h.iter().map(|b| b.count).fold(0.0, f64::max),
        prometheus_parse::Value::Summary(_) => 0.0,
    }
}

fn counter(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    samples(text, name)
        .iter()
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(value)
        .sum()
}

#[test]
fn metrics_parse_and_move_with_traffic() {
    let server = TestServer::start("RR", &["--workers", "2"]);
    server.deploy("m", "c", &example("hello.c"));
    let resp = server.get("/metrics");
    assert_eq!(resp.status, 200);
    assert!(resp
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let before = resp.body;
    for _ in 0..7 {
        assert_eq!(server.post("/invoke?fn=m", "").status, 200);
    }
    server
        .post("/invoke?fn=does-not-exist", "")
        .assert_error(404);
    server.post("/invoke?fn=also-missing", "").assert_error(404);
    let after = server.get("/metrics").body;
    let ok = |t: &str| {
        counter(
            t,
            "faas_invocations_total",
            &[("function", "m"), ("outcome", "ok")],
        )
    };
    assert_eq!(ok(&after) - ok(&before), 7.0);
    let count = |t: &str| {
        counter(
            t,
            "faas_invocation_duration_seconds_count",
            &[("function", "m")],
        )
    };
    assert_eq!(count(&after) - count(&before), 7.0);
    for hop in [
        "gateway_to_server",
        "lb_decision",
        "worker_pipe",
        "execution",
        "server_total",
    ] {
        assert!(
            counter(&after, "faas_hop_duration_seconds_count", &[("hop", hop)]) >= 7.0,
            "{hop}"
        );
    }
    // Unknown names are counted without a label each.
    assert_eq!(
        counter(&after, "faas_invocations_unknown_function_total", &[]),
        2.0
    );
    assert!(!after.contains("does-not-exist"));
    assert_eq!(
        counter(
            &after,
            "faas_deploys_total",
            &[("lang", "c"), ("result", "ok")]
        ),
        1.0
    );
    assert_eq!(counter(&after, "faas_functions_deployed", &[]), 1.0);
    assert_eq!(counter(&after, "faas_worker_up", &[]), 2.0);
    assert!(counter(&after, "faas_worker_rss_bytes", &[("worker", "0")]) > 0.0);
    assert!(counter(&after, "faas_server_rss_bytes", &[]) > 0.0);
    // A deleted function's series go away.
    server.request("DELETE", "/function/m", b"");
    let gone = server.get("/metrics").body;
    assert_eq!(samples(&gone, "faas_invocations_total").len(), 0, "{gone}");
}

#[test]
fn metrics_scrapes_under_load_parse_and_never_go_backwards() {
    let server = TestServer::start("RR", &["--workers", "2"]);
    server.deploy("busy", "c", &example("hello.c"));
    let ok = |t: &str| {
        counter(
            t,
            "faas_invocations_total",
            &[("function", "busy"), ("outcome", "ok")],
        )
    };
    let callers: Vec<_> = (0..6)
        .map(|_| {
            let addr = server.addr.clone();
            std::thread::spawn(move || {
                (0..150)
                    .filter(|_| {
                        crate::harness::http(&addr, "POST", "/invoke?fn=busy", b"").status == 200
                    })
                    .count()
            })
        })
        .collect();
    // Scrape while the calls run: every scrape answers, parses, and no
    // counter moves backwards.
    let mut last = 0.0;
    let mut scrapes = 0;
    while callers.iter().any(|c| !c.is_finished()) {
        let resp = server.get("/metrics");
        assert_eq!(resp.status, 200);
        let now = ok(&resp.body);
        assert!(
            now >= last,
            "faas_invocations_total went from {last} to {now}"
        );
        last = now;
        scrapes += 1;
    }
    let answered: usize = callers.into_iter().map(|c| c.join().unwrap()).sum();
    assert_eq!(answered, 900);
    assert!(scrapes >= 3, "only {scrapes} scrapes during the load");
    // Afterwards the counter and the histogram are exact.
    let after = server.get("/metrics").body;
    assert_eq!(ok(&after), 900.0);
    assert_eq!(
        counter(
            &after,
            "faas_invocation_duration_seconds_count",
            &[("function", "busy")]
        ),
        900.0
    );
}

/// chromedriver on a free port, stopped when dropped.
pub(crate) struct Driver {
    child: Child,
    pub(crate) port: u16,
}

impl Driver {
    pub(crate) fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is needed: run `make toolchains` (Debian chromium-driver)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, port }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) async fn browser(port: u16) -> Client {
    let mut caps = serde_json::Map::new();
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1100",
    ];
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({"args": args, "binary": "/usr/bin/chromium"}),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a WebDriver session")
}

/// Polls `check` (a JS expression) until it is true.
pub(crate) async fn wait_until(c: &Client, what: &str, check: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ok = c
            .execute(&format!("return !!({check});"), vec![])
            .await
            .map(|v| v.as_bool() == Some(true))
            .unwrap_or(false);
        if ok {
            return;
        }
        if Instant::now() > deadline {
            let page = c.source().await.unwrap_or_default();
            panic!("timed out waiting for {what} ({check})\n{page}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn text(c: &Client, id: &str) -> String {
    c.find(Locator::Id(id)).await.unwrap().text().await.unwrap()
}

pub(crate) async fn type_into(c: &Client, id: &str, value: &str) {
    let field = c.find(Locator::Id(id)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(value).await.unwrap();
}

#[test]
fn the_dashboard_deploys_invokes_and_shows_it_live_in_a_real_browser() {
    let server = TestServer::start("RR", &["--workers", "2", "--api-token", "dash"]);
    let driver = Driver::start();
    let url = format!("http://{}/", server.addr);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let c = browser(driver.port).await;
        c.goto(&url).await.unwrap();
        // Without the token the page says so; with it, it goes live.
        wait_until(&c, "the token prompt", "document.getElementById('status').textContent.includes('token')").await;
        type_into(&c, "token", "dash").await;
        c.execute("document.getElementById('token').dispatchEvent(new Event('change'))", vec![]).await.unwrap();
        wait_until(&c, "live data", "document.getElementById('status').textContent.startsWith('live')").await;

        // Deploy through the form.
        type_into(&c, "deploy-name", "greeter").await;
        c.execute("document.getElementById('deploy-lang').value = 'c'", vec![]).await.unwrap();
        let code = example("hello.c");
        c.execute("document.getElementById('deploy-code').value = arguments[0]", vec![code.into()]).await.unwrap();
        c.find(Locator::Id("deploy-button")).await.unwrap().click().await.unwrap();
        wait_until(&c, "the deploy", "document.getElementById('deploy-result').textContent.startsWith('deployed greeter')").await;
        wait_until(&c, "the function row", "[...document.querySelectorAll('#functions tr')].some(r => r.cells[0].textContent === 'greeter')").await;

        // Invoke through the form, several times, and see the output.
        type_into(&c, "invoke-name", "greeter").await;
        type_into(&c, "invoke-payload", "from the browser").await;
        for _ in 0..5 {
            c.find(Locator::Id("invoke-button")).await.unwrap().click().await.unwrap();
            wait_until(&c, "the output", "document.getElementById('invoke-output').textContent === 'Hello from FAAS!\\nfrom the browser'").await;
        }
        // The call count and the throughput chart move.
        wait_until(&c, "the call count", "[...document.querySelectorAll('#functions tr')].some(r => r.cells[0].textContent === 'greeter' && Number(r.cells[3].textContent) >= 5)").await;
        wait_until(&c, "the throughput chart", "[...document.querySelectorAll('#throughput polyline')][0].getAttribute('points').split(' ').some(p => Number(p.split(',')[1]) < 137)").await;
        wait_until(&c, "the recent invocations", "document.querySelectorAll('#invocations tr').length >= 5").await;
        assert_eq!(text(&c, "selected").await, "greeter");

        // Markup in an output stays text: nothing is injected.
        let hostile = r#"#include <stdio.h>
int main(void){ printf("<img src=x onerror=\"document.title='pwned'\"><script>document.title='pwned'</script>"); return 0; }
"#;
        type_into(&c, "deploy-name", "hostile").await;
        c.execute("document.getElementById('deploy-code').value = arguments[0]", vec![hostile.into()]).await.unwrap();
        c.find(Locator::Id("deploy-button")).await.unwrap().click().await.unwrap();
        wait_until(&c, "the hostile deploy", "document.getElementById('deploy-result').textContent.startsWith('deployed hostile')").await;
        type_into(&c, "invoke-name", "hostile").await;
        c.find(Locator::Id("invoke-button")).await.unwrap().click().await.unwrap();
        wait_until(&c, "the hostile output", "document.getElementById('invoke-output').textContent.startsWith('<img')").await;
        let injected = c
            .execute("return document.querySelectorAll('img').length + (document.title === 'pwned' ? 100 : 0)", vec![])
            .await
            .unwrap();
        assert_eq!(injected, serde_json::json!(0));

        // A function's configuration shows when it is selected: its
        // variables, the names of its secrets (never a value), its hosts.
        let value = "dash-secret-value-never-shown";
        let auth = [("Authorization", "Bearer dash")];
        let put = crate::harness::http_with_headers(&server.addr, "PUT", "/secret/db_pass", value.as_bytes(), &auth);
        assert_eq!(put.status, 201, "{}", put.body);
        let deployed = crate::harness::http_with_headers(
            &server.addr,
            "POST",
            "/deploy?name=configured&lang=c&env=MODE%3Dlive&secret=db_pass&allow=api.example.com&allow=127.0.0.1%3A9",
            example("hello.c").as_bytes(),
            &auth,
        );
        assert_eq!(deployed.status, 201, "{}", deployed.body);
        wait_until(&c, "the configured row", "[...document.querySelectorAll('#functions tr')].some(r => r.cells[0].textContent === 'configured')").await;
        c.execute("[...document.querySelectorAll('#functions tr')].find(r => r.cells[0].textContent === 'configured').click()", vec![]).await.unwrap();
        wait_until(&c, "the configuration", "document.getElementById('config-allow').textContent.includes('api.example.com')").await;
        assert_eq!(text(&c, "config-env").await, "MODE=live");
        assert_eq!(text(&c, "config-secrets").await, "/run/secrets/db_pass");
        assert_eq!(text(&c, "config-allow").await, "127.0.0.1:9 api.example.com");
        let page = c.source().await.unwrap();
        assert!(!page.contains(value), "a secret value reached the page");

        let png = c.screenshot().await.unwrap();
        let dir = crate::harness::repo_root().join("target/test-artifacts");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("dashboard.png"), &png).unwrap();
        assert!(png.starts_with(b"\x89PNG"));
        c.close().await.unwrap();
    });
}
