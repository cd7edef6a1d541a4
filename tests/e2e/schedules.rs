//! Schedules (`schedule=` at deploy): each tick of a cron expression
//! queues an async call (the payload as stdin, `FAAS_SCHEDULE_TICK`);
//! `GET /schedules` lists them; a deleted function's ticks stop; an update
//! keeps, changes or removes its schedule; after a stop only the last
//! missed tick is queued; bad expressions and payloads are refused with
//! nothing stored. Also the async metrics (`faas_async_*`,
//! `faas_dead_letters`, `faas_schedule_ticks_total`) scraped from
//! `/metrics`, and the dashboard's background view in Chromium.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fantoccini::Locator;

use crate::dashboard::{browser, wait_until as page_wait, Driver};
use crate::harness::{http_with_headers, wait_until, TestServer};

/// Echoes its stdin, then the tick it was queued for.
const TICK_C: &str = r#"#include <stdio.h>
#include <stdlib.h>
int main(void) {
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf, stdin);
    fwrite(buf, 1, n, stdout);
    const char *t = getenv("FAAS_SCHEDULE_TICK");
    printf("|tick=%s", t ? t : "-");
    return 0;
}
"#;

/// Always fails.
const FAIL_C: &str = r#"#include <stdio.h>
int main(void) { fputs("no luck\n", stderr); return 4; }
"#;

/// Sleeps two seconds.
const SLOW_C: &str = r#"#include <unistd.h>
int main(void) { sleep(2); return 0; }
"#;

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn now_secs_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// `GET /schedules`' entry of `function`, if it has one.
pub(crate) fn schedule_of(server: &TestServer, function: &str) -> Option<serde_json::Value> {
    let resp = server.get("/schedules");
    assert_eq!(resp.status, 200, "{}", resp.body);
    let json = resp.json();
    assert_eq!(json["ok"], true);
    json["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["function"] == function)
        .cloned()
}

/// The ticks fired for `function` (oldest first) with their call ids.
pub(crate) fn fired(server: &TestServer, function: &str) -> Vec<(u64, String)> {
    let Some(entry) = schedule_of(server, function) else {
        return Vec::new();
    };
    let mut ticks: Vec<(u64, String)> = entry["recent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["tick"].as_u64().unwrap(),
                t["call_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    ticks.sort();
    ticks
}

/// Polls a call until it has ended (succeeded or dead).
fn finished_call(server: &TestServer, id: &str) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    wait_until(
        &format!("call {id} never ended"),
        Duration::from_secs(60),
        || {
            last = server.get(&format!("/invocation/{id}")).json();
            matches!(last["status"].as_str(), Some("succeeded" | "dead"))
        },
    );
    last
}

/// One sample of a metric without labels, from the exposition text.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

fn ticks_total(server: &TestServer) -> f64 {
    metric(&server.get("/metrics").body, "faas_schedule_ticks_total")
}

#[test]
fn a_six_field_schedule_fires_every_second_each_tick_its_own_succeeded_call() {
    let server = TestServer::start("RR", &["--workers", "2"]);
    server.deploy_with(
        "ticker",
        "c",
        TICK_C,
        "schedule=*+*+*+*+*+*&schedule_payload=hello%20tick",
    );
    let deployed = now_secs();
    std::thread::sleep(Duration::from_millis(5300));
    let until = now_secs();
    let entry = schedule_of(&server, "ticker").expect("ticker is scheduled");
    assert_eq!(entry["schedule"], "* * * * * *");
    assert_eq!(entry["payload_bytes"], 10);
    let next = entry["next_tick"].as_u64().unwrap();
    assert!((until..=until + 2).contains(&next), "next tick {next}");
    // Every second after the deploy up to now fired once: 4 to 6 ticks in
    // 5.3 s (the deploy's own second never fires), consecutive seconds.
    let ticks: Vec<(u64, String)> = fired(&server, "ticker")
        .into_iter()
        .filter(|(t, _)| *t <= until)
        .collect();
    assert!((4..=6).contains(&ticks.len()), "{ticks:?}");
    for pair in ticks.windows(2) {
        assert_eq!(
            pair[1].0,
            pair[0].0 + 1,
            "a second skipped or repeated: {ticks:?}"
        );
        assert_ne!(pair[1].1, pair[0].1, "two ticks share a call");
    }
    assert!(
        ticks[0].0 > deployed.saturating_sub(1),
        "{ticks:?} vs {deployed}"
    );
    // Each is its own async call that succeeded with the payload as stdin.
    for (tick, id) in &ticks {
        let call = finished_call(&server, id);
        assert_eq!(call["status"], "succeeded", "{call}");
        assert_eq!(call["function"], "ticker");
        assert_eq!(call["output"], format!("hello tick|tick={tick}"));
        assert_eq!(call["attempts"].as_array().unwrap().len(), 1);
    }
    assert!(ticks_total(&server) >= ticks.len() as f64);
    // The last outcome is the newest tick's.
    let entry = schedule_of(&server, "ticker").unwrap();
    assert!(entry["last"]["tick"].as_u64().unwrap() >= ticks.last().unwrap().0);
    assert!(entry["last"]["status"].is_string());
}

#[test]
fn a_deleted_functions_schedule_stops_and_an_update_keeps_changes_or_removes_it() {
    let server = TestServer::start("RR", &["--workers", "2"]);
    server.deploy_with("doomed", "c", TICK_C, "schedule=*+*+*+*+*+*");
    wait_until("a first tick", Duration::from_secs(10), || {
        !fired(&server, "doomed").is_empty()
    });
    assert_eq!(
        server.request("DELETE", "/function/doomed", b"").status,
        200
    );
    let after_delete = ticks_total(&server);
    std::thread::sleep(Duration::from_millis(3200));
    assert_eq!(
        ticks_total(&server),
        after_delete,
        "ticks went on after the delete"
    );
    assert!(schedule_of(&server, "doomed").is_none());
    // Deployed again without a schedule, the name has none.
    server.deploy("doomed", "c", TICK_C);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(ticks_total(&server), after_delete);
    assert!(schedule_of(&server, "doomed").is_none());

    // An update without schedule= keeps it (and its payload); a new one
    // replaces it; an empty one removes it.
    server.deploy_with(
        "kept",
        "c",
        TICK_C,
        "schedule=0+0+*+*+*&schedule_payload=nightly",
    );
    let put = |query: &str| {
        let resp = server.request(
            "PUT",
            &format!("/function/kept?lang=c{query}"),
            TICK_C.as_bytes(),
        );
        assert_eq!(resp.status, 201, "{}", resp.body);
        // The new version's stored settings.
        let versions = server.get("/function/kept/versions").json();
        versions["versions"][0].clone()
    };
    let updated = put("");
    assert_eq!(updated["schedule"], "0 0 * * *");
    assert_eq!(updated["schedule_payload"], "nightly");
    let entry = schedule_of(&server, "kept").unwrap();
    assert_eq!(entry["schedule"], "0 0 * * *");
    assert_eq!(entry["next_tick"].as_u64().unwrap() % 86_400, 0);
    let changed = put("&schedule=30+6+*+*+1-5");
    assert_eq!(changed["schedule"], "30 6 * * 1-5");
    assert_eq!(
        schedule_of(&server, "kept").unwrap()["schedule"],
        "30 6 * * 1-5"
    );
    // A bad schedule on update changes nothing.
    let bad = server.request(
        "PUT",
        "/function/kept?lang=c&schedule=99+*+*+*+*",
        TICK_C.as_bytes(),
    );
    assert!(bad.assert_error(400).contains("schedule"));
    assert_eq!(
        schedule_of(&server, "kept").unwrap()["schedule"],
        "30 6 * * 1-5"
    );
    let removed = put("&schedule=");
    assert!(removed.get("schedule").is_none(), "{removed}");
    assert!(removed.get("schedule_payload").is_none(), "{removed}");
    assert!(schedule_of(&server, "kept").is_none());
}

#[test]
fn after_a_stop_only_the_last_missed_tick_is_queued() {
    const EVERY: u64 = 5;
    let mut server = TestServer::start("RR", &["--workers", "2"]);
    server.deploy_with(
        "periodic",
        "c",
        TICK_C,
        "schedule=*/5+*+*+*+*+*&schedule_payload=p",
    );
    wait_until("a first tick", Duration::from_secs(15), || {
        !fired(&server, "periodic").is_empty()
    });
    let before = fired(&server, "periodic");
    let last_before = before.last().unwrap().0;
    let status = server.stop();
    assert!(status.success(), "{status}");
    // Restart 0.3 s after a tick, at least two ticks after the last one
    // fired: the start (well under 5 s) then sees that tick as the
    // latest it missed.
    let restart_at = (last_before + 2 * EVERY).div_ceil(EVERY) * EVERY + EVERY;
    let wait = restart_at as f64 + 0.3 - now_secs_f64();
    assert!(wait > 0.0);
    std::thread::sleep(Duration::from_secs_f64(wait));
    let restarted = Instant::now();
    let restarted_ms = (now_secs_f64() * 1000.0) as u64;
    let server = server.restart_stopped();
    assert!(restarted.elapsed() < Duration::from_secs(4), "slow start");
    wait_until("the replayed tick", Duration::from_secs(10), || {
        fired(&server, "periodic").len() > before.len()
    });
    let after = fired(&server, "periodic");
    let new: Vec<&(u64, String)> = after.iter().filter(|(t, _)| *t > last_before).collect();
    let (first, id) = new[0];
    let call = finished_call(&server, id);
    // Queued by the new start: the latest tick at or before the moment it
    // was queued (read from the server's own clock, so a step of the wall
    // clock meanwhile cannot fool the check), and the ticks missed before
    // it (at least one: the server was down two intervals) were skipped.
    let queued_s = call["created_ms"].as_u64().unwrap() / 1000;
    assert!(call["created_ms"].as_u64().unwrap() >= restarted_ms);
    assert_eq!(
        *first,
        queued_s / EVERY * EVERY,
        "not the last missed tick: {after:?}"
    );
    let skipped: Vec<u64> = (last_before / EVERY + 1..first / EVERY)
        .map(|n| n * EVERY)
        .collect();
    assert!(!skipped.is_empty(), "nothing was missed: {after:?}");
    // It ran like any tick.
    assert_eq!(call["status"], "succeeded");
    assert_eq!(call["output"], format!("p|tick={first}"));
    // The ticks fired before the stop were not queued again.
    for (tick, id) in &before {
        assert!(
            after.contains(&(*tick, id.clone())),
            "{tick} lost or requeued"
        );
    }
    assert!(ticks_total(&server) >= 1.0);
}

#[test]
fn bad_schedules_and_payloads_are_refused_and_nothing_is_stored() {
    let server = TestServer::start("RR", &["--workers", "1"]);
    let big = "x".repeat(4097);
    let cases = [
        ("schedule=61+*+*+*+*", "not a valid cron expression"),
        ("schedule=*+*+*+*", "4 fields"),
        ("schedule=every+minute", "2 fields"),
        // Finer than a second, however it is written: a 7th field
        // (milliseconds, years), a fraction, a step of zero.
        ("schedule=*/100+*+*+*+*+*+*", "at most once a second"),
        ("schedule=*/0.5+*+*+*+*+*", "not a valid cron expression"),
        ("schedule=*/0+*+*+*+*+*", "not a valid cron expression"),
        ("schedule=0+0+30+2+*", "never fires"),
        ("schedule=@every+500ms", "not a valid cron expression"),
        (
            &format!("schedule=*+*+*+*+*&schedule_payload={big}"),
            "schedule_payload is 4097 bytes",
        ),
        ("schedule_payload=orphan", "needs a schedule"),
        ("schedule=&schedule_payload=x", "needs a schedule"),
    ];
    for (query, says) in cases {
        let resp = server.post(&format!("/deploy?name=bad&lang=c&{query}"), TICK_C);
        let message = resp.assert_error(400);
        assert!(message.contains(says), "{query}: {message}");
    }
    let functions = server.get("/functions").json();
    assert_eq!(functions["functions"].as_array().unwrap().len(), 0);
    assert!(server.stored_functions().is_empty());
    assert!(server.get("/schedules").json()["schedules"]
        .as_array()
        .unwrap()
        .is_empty());
    // A nickname and a five-field expression are accepted.
    server.deploy_with("hourly", "c", TICK_C, "schedule=%40hourly");
    assert_eq!(
        schedule_of(&server, "hourly").unwrap()["next_tick"]
            .as_u64()
            .unwrap()
            % 3600,
        0
    );
    // /schedules is a GET, and takes the API token.
    assert_eq!(server.post("/schedules", "").status, 405);
}

#[test]
fn schedules_take_the_api_token() {
    let server = TestServer::start("RR", &["--workers", "1", "--api-token", "s3cret"]);
    assert_eq!(server.get("/schedules").status, 401);
    let ok = http_with_headers(
        &server.addr,
        "GET",
        "/schedules",
        b"",
        &[("Authorization", "Bearer s3cret")],
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
}

#[test]
fn async_metrics_follow_queued_running_retried_dead_and_ticks() {
    let server = TestServer::start("RR", &["--workers", "2", "--async-concurrency", "1"]);
    server.deploy("slow", "c", SLOW_C);
    server.deploy_with("fails", "c", FAIL_C, "retries=2&retry_backoff_ms=50");
    let scrape = || server.get("/metrics").body;
    let start = scrape();
    for name in [
        "faas_async_queued",
        "faas_async_running",
        "faas_dead_letters",
        "faas_async_retries_total",
        "faas_schedule_ticks_total",
    ] {
        assert_eq!(metric(&start, name), 0.0, "{name}");
    }
    // One slot: the first slow call runs, the second waits.
    let a = server.post("/async/slow", "").json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let b = server.post("/async/slow", "").json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_until("one running, one queued", Duration::from_secs(10), || {
        let text = scrape();
        metric(&text, "faas_async_running") == 1.0 && metric(&text, "faas_async_queued") == 1.0
    });
    finished_call(&server, &a);
    finished_call(&server, &b);
    wait_until("an empty queue", Duration::from_secs(10), || {
        let text = scrape();
        metric(&text, "faas_async_running") == 0.0 && metric(&text, "faas_async_queued") == 0.0
    });
    // A failing call: two retries, then one dead letter.
    let dead = server.post("/async/fails", "").json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(finished_call(&server, &dead)["status"], "dead");
    let text = scrape();
    assert_eq!(metric(&text, "faas_async_retries_total"), 2.0);
    assert_eq!(metric(&text, "faas_dead_letters"), 1.0);
    // Redriven it leaves the dead letters (and is retried again).
    assert_eq!(
        server
            .post(&format!("/dead-letters/{dead}/redrive"), "")
            .status,
        202
    );
    assert_eq!(finished_call(&server, &dead)["status"], "dead");
    let text = scrape();
    assert_eq!(metric(&text, "faas_async_retries_total"), 4.0);
    assert_eq!(metric(&text, "faas_dead_letters"), 1.0);
    assert_eq!(
        server
            .request("DELETE", &format!("/dead-letters/{dead}"), b"")
            .status,
        200
    );
    assert_eq!(metric(&scrape(), "faas_dead_letters"), 0.0);
    // Ticks count.
    server.deploy_with("ticks", "c", TICK_C, "schedule=*+*+*+*+*+*");
    wait_until("three ticks", Duration::from_secs(10), || {
        metric(&scrape(), "faas_schedule_ticks_total") >= 3.0
    });
    let ticks = metric(&scrape(), "faas_schedule_ticks_total");
    assert!(ticks <= fired(&server, "ticks").len() as f64 + 1.0);
}

#[test]
fn the_dashboard_shows_queue_depth_dead_letters_and_schedules_in_a_real_browser() {
    let server = TestServer::start("RR", &["--workers", "2", "--api-token", "dash"]);
    let auth = [("Authorization", "Bearer dash")];
    let deploy = |query: &str, code: &str| {
        let resp = http_with_headers(
            &server.addr,
            "POST",
            &format!("/deploy?{query}"),
            code.as_bytes(),
            &auth,
        );
        assert_eq!(resp.status, 201, "{}", resp.body);
    };
    deploy("name=nightly&lang=c&schedule=0+3+*+*+*", TICK_C);
    deploy(
        "name=every-second&lang=c&schedule=*+*+*+*+*+*&schedule_payload=x",
        TICK_C,
    );
    deploy("name=broken&lang=c&retries=0", FAIL_C);
    deploy("name=slow&lang=c", SLOW_C);
    let queued = http_with_headers(&server.addr, "POST", "/async/broken", b"", &auth);
    assert_eq!(queued.status, 202);
    let dead_id = queued.json()["id"].as_str().unwrap().to_string();
    wait_until("a dead letter", Duration::from_secs(20), || {
        http_with_headers(
            &server.addr,
            "GET",
            &format!("/invocation/{dead_id}"),
            b"",
            &auth,
        )
        .json()["status"]
            == "dead"
    });

    let driver = Driver::start();
    let url = format!("http://{}/", server.addr);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let c = browser(driver.port).await;
        c.goto(&url).await.unwrap();
        page_wait(&c, "the token prompt", "document.getElementById('status').textContent.includes('token')").await;
        let field = c.find(Locator::Id("token")).await.unwrap();
        field.send_keys("dash").await.unwrap();
        c.execute("document.getElementById('token').dispatchEvent(new Event('change'))", vec![]).await.unwrap();
        page_wait(&c, "live data", "document.getElementById('status').textContent.startsWith('live')").await;

        // Dead letters: the count and the call in the list.
        page_wait(&c, "the dead count", "document.getElementById('async-dead').textContent === '1'").await;
        page_wait(&c, "the dead letter row", &format!(
            "[...document.querySelectorAll('#dead-letters tr')].some(r => r.cells[0].textContent === '{dead_id}' && r.cells[1].textContent === 'broken' && r.cells[2].textContent === '1' && r.cells[3].textContent === 'exit')"
        )).await;
        // Schedules: expression, next tick, the last tick's call and status.
        page_wait(&c, "the every-second row", "[...document.querySelectorAll('#schedules tr')].some(r => r.cells[0].textContent === 'every-second' && r.cells[1].textContent === '* * * * * *' && r.cells[4].textContent.length > 8 && r.cells[5].textContent === 'succeeded')").await;
        page_wait(&c, "the nightly row", "[...document.querySelectorAll('#schedules tr')].some(r => r.cells[0].textContent === 'nightly' && r.cells[1].textContent === '0 3 * * *' && r.cells[2].textContent !== '-' && r.cells[3].textContent === '-')").await;
        // Queue depth: one async slot (two workers), three slow calls.
        for _ in 0..3 {
            let resp = http_with_headers(&server.addr, "POST", "/async/slow", b"", &auth);
            assert_eq!(resp.status, 202, "{}", resp.body);
        }
        page_wait(&c, "the depth", "Number(document.getElementById('async-running').textContent) >= 1 && Number(document.getElementById('async-queued').textContent) >= 1").await;

        // Redriven and forgotten, the dead letter leaves the view.
        let gone = http_with_headers(&server.addr, "DELETE", &format!("/dead-letters/{dead_id}"), b"", &auth);
        assert_eq!(gone.status, 200, "{}", gone.body);
        page_wait(&c, "no dead letters", "document.getElementById('async-dead').textContent === '0' && document.querySelectorAll('#dead-letters tr').length === 0").await;
        // Put one back for the picture.
        let again = http_with_headers(&server.addr, "POST", "/async/broken", b"", &auth);
        assert_eq!(again.status, 202);
        page_wait(&c, "the dead count again", "document.getElementById('async-dead').textContent === '1'").await;

        c.execute("document.getElementById('background').scrollIntoView()", vec![]).await.unwrap();
        let png = c.screenshot().await.unwrap();
        let dir = crate::harness::repo_root().join("target/test-artifacts");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("dashboard-background.png"), &png).unwrap();
        assert!(png.starts_with(b"\x89PNG"));
        c.close().await.unwrap();
    });
}

#[test]
fn a_schedule_travels_with_the_function_through_the_cluster_store() {
    let weed = crate::cluster::Seaweed::start();
    let a = crate::cluster::alone(&weed, "a", &[]);
    let b = crate::cluster::alone(&weed, "b", &[]);
    a.deploy_with(
        "shared-tick",
        "c",
        TICK_C,
        "schedule=*+*+*+*+*+*&schedule_payload=s",
    );
    // The other replica reads the schedule from the shared index and
    // fires it into its own queue (one queue per replica until NATS).
    wait_until("b's schedule", Duration::from_secs(30), || {
        schedule_of(&b, "shared-tick").is_some_and(|s| s["schedule"] == "* * * * * *")
    });
    wait_until("a tick on b", Duration::from_secs(30), || {
        !fired(&b, "shared-tick").is_empty()
    });
    let (tick, id) = fired(&b, "shared-tick").pop().unwrap();
    let call = finished_call(&b, &id);
    assert_eq!(call["output"], format!("s|tick={tick}"));
    // An update on b that removes it reaches a.
    let resp = b.request(
        "PUT",
        "/function/shared-tick?lang=c&schedule=",
        TICK_C.as_bytes(),
    );
    assert_eq!(resp.status, 201, "{}", resp.body);
    wait_until("the removal on a", Duration::from_secs(30), || {
        schedule_of(&a, "shared-tick").is_none()
    });
    let stopped = ticks_total(&a);
    std::thread::sleep(Duration::from_millis(2200));
    assert!(ticks_total(&a) <= stopped + 1.0, "a kept ticking");
}
