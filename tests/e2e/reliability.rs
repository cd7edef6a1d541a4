//! Reliability: no call waits behind a busy worker, a crash costs only the
//! call that was running, the LB trusts nobody, and the gateway bounds slow
//! clients.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{example, http, TestServer};

const SLEEPER: &str =
    "import sys, time\ntime.sleep(float(sys.stdin.read() or '1'))\nprint('slept')\n";

use crate::harness::{in_flight, wait_for as stats_until};

#[test]
fn no_call_waits_behind_a_busy_worker_in_any_strategy() {
    let strategies = [
        ("RR", &[][..]),
        ("FIFO", &[][..]),
        ("WEIGHTED", &["--weights", "4,2,1,1"][..]),
    ];
    for (strategy, extra) in strategies {
        let server = TestServer::start(strategy, extra);
        server.deploy("slow", "python", SLEEPER);
        server.deploy("quick", "c", &example("hello.c"));
        let addr = server.addr.clone();
        let slow = thread::spawn(move || http(&addr, "POST", "/invoke?fn=slow", b"3"));
        stats_until(&server, "the slow call", |s| in_flight(s) == 1);
        let busy = server.get("/stats").json()["workers"]
            .as_array()
            .unwrap()
            .iter()
            .position(|w| w["in_flight"] == 1)
            .unwrap() as u64;
        for i in 0..12 {
            let resp = server.post("/invoke?fn=quick", &i.to_string());
            assert_eq!(resp.status, 200, "{strategy}: {}", resp.body);
            assert_eq!(resp.json()["output"], format!("Hello from FAAS!\n{i}"));
            assert_ne!(
                resp.json()["worker_id"],
                busy,
                "{strategy}: call {i} waited"
            );
        }
        assert!(!slow.is_finished(), "{strategy}: the quick calls took 3 s");
        assert_eq!(slow.join().unwrap().status, 200);
    }
}

/// One request on the LB socket; returns the reply line.
fn lb_ask(
    lb: &mut UnixStream,
    reader: &mut BufReader<UnixStream>,
    line: &str,
) -> serde_json::Value {
    lb.write_all(line.as_bytes()).unwrap();
    lb.write_all(b"\n").unwrap();
    let mut reply = String::new();
    reader.read_line(&mut reply).unwrap();
    serde_json::from_str(&reply).unwrap()
}

#[test]
fn the_lb_trusts_nobody_who_connects() {
    let server = TestServer::start("RR", &[]);
    server.deploy("ok", "c", &example("hello.c"));
    let mut lb = UnixStream::connect(server.lb_socket()).unwrap();
    let mut reader = BufReader::new(lb.try_clone().unwrap());
    let before = server.get("/stats").json()["workers"].clone();

    // A job_done for a job this connection never got changes nothing.
    let e = lb_ask(
        &mut lb,
        &mut reader,
        r#"{"type":"job_done","req":77,"worker_id":0,"ok":true}"#,
    );
    assert_eq!(e["type"], "error", "{e}");
    // Refusals of the request itself say so, under its id.
    assert_eq!((&e["kind"], &e["req"]), (&"invalid".into(), &77.into()));
    // Worker state belongs to the Server alone, and only real workers.
    // One-way messages and broken lines have no id to answer under.
    for (line, req) in [
        (r#"{"type":"worker_down","worker_id":1}"#, None),
        (r#"{"type":"worker_up","worker_id":4000000000}"#, None),
        (r#"{"type":"hello","req":1,"role":"server"}"#, Some(1)),
        (r#"{"type":"bogus","req":5}"#, Some(5)),
        ("not json", None),
    ] {
        let e = lb_ask(&mut lb, &mut reader, line);
        assert_eq!(e["type"], "error", "{line}: {e}");
        assert_eq!(e["kind"], "invalid", "{line}: {e}");
        assert_eq!(e.get("req").and_then(|r| r.as_u64()), req, "{line}: {e}");
    }
    assert_eq!(server.get("/stats").json()["workers"], before);

    // Jobs handed to this connection are released when it goes away (four
    // functions: one alone may hold only --max-function-share workers).
    let mut workers = Vec::new();
    for req in 1..=4 {
        let r = lb_ask(
            &mut lb,
            &mut reader,
            &format!(r#"{{"type":"invoke","req":{req},"fn":"x{req}"}}"#),
        );
        assert_eq!(r["type"], "forward_to_worker", "{r}");
        workers.push(r["worker_id"].as_u64().unwrap());
    }
    // A done for someone else's worker is refused too.
    let wrong = (workers[0] + 1) % 4;
    let e = lb_ask(
        &mut lb,
        &mut reader,
        &format!(r#"{{"type":"job_done","req":1,"worker_id":{wrong},"ok":true}}"#),
    );
    assert_eq!(e["type"], "error", "{e}");
    // Every worker is taken by this connection; a real call now waits...
    let addr = server.addr.clone();
    let waiting = thread::spawn(move || http(&addr, "POST", "/invoke?fn=ok", b"after"));
    stats_until(&server, "the call to queue", |s| s["queue_len"] == 1);
    // ...and runs as soon as the connection closes.
    drop(lb);
    drop(reader);
    let resp = waiting.join().unwrap();
    assert_eq!(resp.status, 200, "{}", resp.body);
    stats_until(&server, "counters to settle", |s| {
        in_flight(s) == 0 && s["queue_len"] == 0
    });
    let stats = server.get("/stats").json();
    let completed: u64 = stats["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["completed"].as_u64().unwrap())
        .sum();
    assert_eq!(
        completed, 1,
        "released jobs are not counted as done: {stats}"
    );
}

#[test]
fn the_gateway_bounds_slow_bodies_and_connection_floods() {
    let server = TestServer::start(
        "RR",
        &[
            "--workers",
            "1",
            "--read-timeout-ms",
            "500",
            "--max-connections",
            "3",
        ],
    );
    server.deploy("ok", "c", &example("hello.c"));
    // A body trickled a byte at a time: 408 at the deadline, then closed.
    let mut slow = TcpStream::connect(&server.addr).unwrap();
    slow.write_all(
        b"POST /invoke?fn=ok HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\nab",
    )
    .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = Vec::new();
    let _ = slow.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"ok\":false"), "{answer}");

    // Connections over the bound get a 503 and are closed.
    let held: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(&server.addr).unwrap())
        .collect();
    // The gateway counts them as it accepts them: ask until it has.
    let deadline = Instant::now() + Duration::from_secs(5);
    let resp = loop {
        let resp = http(&server.addr, "GET", "/health", b"");
        if resp.status != 200 || Instant::now() > deadline {
            break resp;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let e = resp.assert_error(503);
    assert!(e.contains("connections"), "{e}");
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let resp = http(&server.addr, "GET", "/health", b"");
        if resp.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "{}", resp.body);
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_soak_with_two_worker_kills_loses_at_most_the_running_calls() {
    let server = TestServer::start("RR", &[]);
    server.deploy("soak", "c", &example("hello.c"));
    let calls = 3000;
    let done = Arc::new(AtomicUsize::new(0));
    let callers: Vec<_> = (0..16)
        .map(|t| {
            let addr = server.addr.clone();
            let done = done.clone();
            thread::spawn(move || {
                let mut statuses = Vec::new();
                for i in (t..calls).step_by(16) {
                    let resp = http(&addr, "POST", "/invoke?fn=soak", i.to_string().as_bytes());
                    if resp.status == 200 {
                        assert_eq!(resp.json()["output"], format!("Hello from FAAS!\n{i}"));
                    }
                    statuses.push(resp.status);
                    done.fetch_add(1, Ordering::Relaxed);
                }
                statuses
            })
        })
        .collect();
    for (kill, at) in [(1usize, calls / 3), (3, 2 * calls / 3)] {
        while done.load(Ordering::Relaxed) < at {
            thread::sleep(Duration::from_millis(2));
        }
        crate::harness::kill_worker(&server, kill);
    }
    let statuses: Vec<u16> = callers
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    assert_eq!(statuses.len(), calls, "every call answered");
    let failed: Vec<&u16> = statuses.iter().filter(|&&s| s != 200).collect();
    assert!(
        failed.len() <= 2,
        "{} calls failed: {failed:?}",
        failed.len()
    );
    assert!(failed.iter().all(|&&s| s == 502), "{failed:?}");
    stats_until(&server, "both replacements", |s| {
        s["worker_restarts"][1] == 1
            && s["worker_restarts"][3] == 1
            && s["workers"]
                .as_array()
                .unwrap()
                .iter()
                .all(|w| w["up"] == true)
    });
    assert_eq!(server.get("/health").status, 200);
    assert_eq!(server.post("/invoke?fn=soak", "x").status, 200);
}
