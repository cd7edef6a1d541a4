//! Load balancing and worker lifecycle: strategies, deadlines, memory and
//! output caps, crashes, backpressure and shutdown.

use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{example, http, TestServer};

/// A Python function that sleeps as many seconds as its payload says.
const SLEEPER: &str =
    "import sys, time\ntime.sleep(float(sys.stdin.read() or '1'))\nprint('slept')\n";

/// The Python sleeper's stats helpers live in the harness, shared with
/// the reliability tests.
use crate::harness::{in_flight, wait_for};

#[test]
fn weighted_spreads_calls_in_the_ratio_of_the_weights() {
    let server = TestServer::start("WEIGHTED", &["--weights", "4,2,1,1"]);
    server.deploy("w", "c", &example("hello.c"));
    let mut counts = [0u32; 4];
    for _ in 0..80 {
        let resp = server.post("/invoke?fn=w", "");
        assert_eq!(resp.status, 200, "{}", resp.body);
        counts[resp.json()["worker_id"].as_u64().unwrap() as usize] += 1;
    }
    assert_eq!(counts, [40, 20, 10, 10]);
    let stats = server.get("/stats").json();
    assert_eq!(stats["strategy"], "WEIGHTED");
    assert_eq!(stats["workers"][0]["weight"], 4);
    assert_eq!(stats["workers"][0]["completed"], 40);
}

#[test]
fn fifo_queues_in_arrival_order_when_every_worker_is_busy() {
    let server = TestServer::start("FIFO", &["--workers", "1"]);
    server.deploy("slow", "python", SLEEPER);
    let addr = server.addr.clone();
    let first = thread::spawn(move || http(&addr, "POST", "/invoke?fn=slow", b"2"));
    wait_for(&server, "the first call to run", |s| in_flight(s) == 1);
    // Each call is queued before the next is sent: arrival order is known.
    let mut queued = Vec::new();
    for i in 0..3u64 {
        let addr = server.addr.clone();
        queued.push(thread::spawn(move || {
            let resp = http(&addr, "POST", "/invoke?fn=slow", b"0");
            (i, resp, Instant::now())
        }));
        wait_for(&server, "the call to be queued", |s| {
            s["queue_len"] == i + 1
        });
    }
    let mut done: Vec<_> = queued.into_iter().map(|c| c.join().unwrap()).collect();
    assert_eq!(first.join().unwrap().status, 200);
    for (_, resp, _) in &done {
        assert_eq!(resp.status, 200, "{}", resp.body);
    }
    done.sort_by_key(|(_, _, t)| *t);
    assert_eq!(done.iter().map(|(i, ..)| *i).collect::<Vec<_>>(), [0, 1, 2]);
}

#[test]
fn infinite_loops_time_out_and_the_worker_serves_the_next_call() {
    let server = TestServer::start("RR", &["--workers", "1", "--timeout-ms", "1000"]);
    server.deploy(
        "cloop",
        "c",
        "int main(void){ volatile unsigned x = 0; for (;;) x++; }\n",
    );
    server.deploy("pyloop", "python", "while True:\n    pass\n");
    server.deploy("ok", "c", &example("hello.c"));
    let pid = server.get("/stats").json()["worker_pids"][0].clone();
    for name in ["cloop", "pyloop"] {
        let start = Instant::now();
        let resp = server.post(&format!("/invoke?fn={name}"), "");
        let e = resp.assert_error(504);
        assert!(e.contains("timed out after 1000 ms"), "{e}");
        assert!(start.elapsed() >= Duration::from_millis(1000), "{name}");
        let next = server.post("/invoke?fn=ok", "after");
        assert_eq!(next.status, 200, "{}", next.body);
        assert_eq!(next.json()["output"], "Hello from FAAS!\nafter");
    }
    // The worker interrupted the guests itself: the same process serves on.
    let stats = server.get("/stats").json();
    assert_eq!(stats["worker_pids"][0], pid);
    assert_eq!(stats["worker_restarts"][0], 0);
    // A per-function deadline shorter than the default.
    let resp = server.post(
        "/deploy?name=short&lang=c&timeout_ms=300",
        "int main(void){ volatile int x = 0; for (;;) x++; }\n",
    );
    assert_eq!(resp.status, 201, "{}", resp.body);
    let e = server.post("/invoke?fn=short", "").assert_error(504);
    assert!(e.contains("timed out after 300 ms"), "{e}");
    // Above the global maximum is refused.
    server
        .post(
            "/deploy?name=long&lang=c&timeout_ms=99999999",
            &example("hello.c"),
        )
        .assert_error(400);
}

const MEMORY_BOMB: &str = r#"#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static char *keep[100000];
int main(void) {
    size_t mib = 0;
    for (;;) {
        char *p = malloc(1 << 20);
        if (!p) { printf("malloc failed after %zu MiB\n", mib); return 1; }
        memset(p, (int)mib, 1 << 20);
        keep[mib++] = p;
    }
}
"#;

#[test]
fn a_memory_bomb_fails_inside_the_function() {
    let server = TestServer::start("RR", &["--workers", "1", "--max-memory-mb", "64"]);
    server.deploy("bomb", "c", MEMORY_BOMB);
    let resp = server.post("/invoke?fn=bomb", "");
    resp.assert_error(500);
    let out = resp.json()["output"].as_str().unwrap().to_string();
    let mib: u64 = out
        .trim()
        .strip_prefix("malloc failed after ")
        .and_then(|s| s.strip_suffix(" MiB"))
        .unwrap_or_else(|| panic!("{out}"))
        .parse()
        .unwrap();
    assert!((48..64).contains(&mib), "{out}");
    // Per function, at deploy.
    let resp = server.post("/deploy?name=small&lang=c&max_memory_mb=16", MEMORY_BOMB);
    assert_eq!(resp.status, 201);
    let out = server.post("/invoke?fn=small", "").json()["output"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(out.starts_with("malloc failed after 1"), "{out}");
    // The worker is fine: no restart, still serving.
    server.deploy("ok", "c", &example("hello.c"));
    assert_eq!(server.post("/invoke?fn=ok", "").status, 200);
    assert_eq!(server.get("/stats").json()["worker_restarts"][0], 0);

    // Python: the same cap through rlimits.
    server.deploy(
        "pybomb",
        "python",
        "x = []\nwhile True:\n    x.append(bytearray(1 << 20))\n",
    );
    let resp = server.post("/invoke?fn=pybomb", "");
    resp.assert_error(500);
    assert!(resp.json()["stderr"]
        .as_str()
        .unwrap()
        .contains("MemoryError"));
}

#[test]
fn output_and_input_caps() {
    let server = TestServer::start(
        "RR",
        &[
            "--workers",
            "1",
            "--max-output-bytes",
            "1000",
            "--max-body-bytes",
            "2000",
        ],
    );
    server.deploy(
        "chatty",
        "c",
        "#include <stdio.h>\nint main(void){ for (int i = 0; i < 100000; i++) printf(\"0123456789\"); return 0; }\n",
    );
    let resp = server.post("/invoke?fn=chatty", "");
    assert_eq!(resp.status, 200, "{}", resp.body);
    let body = resp.json();
    assert_eq!(body["truncated"], true);
    assert_eq!(body["output"].as_str().unwrap().len(), 1000);

    server.deploy(
        "pychatty",
        "python",
        "import sys\nfor _ in range(100000):\n    sys.stdout.write('0123456789')\n",
    );
    let body = server.post("/invoke?fn=pychatty", "").json();
    assert_eq!(body["truncated"], true);
    assert_eq!(body["output"].as_str().unwrap().len(), 1000);

    let e = server
        .post("/invoke?fn=chatty", &"x".repeat(3000))
        .assert_error(413);
    assert!(e.contains("2000"), "{e}");
    server
        .post("/deploy?name=big&lang=c", &"x".repeat(3000))
        .assert_error(413);
}

#[test]
fn a_killed_worker_fails_only_its_running_call_and_is_replaced() {
    // Every worker busy with one function: no fair-share cap here.
    let server = TestServer::start("RR", &["--max-function-share", "0"]);
    server.deploy("slow", "python", SLEEPER);
    server.deploy("ok", "c", &example("hello.c"));
    let callers: Vec<_> = (0..16)
        .map(|_| {
            let addr = server.addr.clone();
            thread::spawn(move || http(&addr, "POST", "/invoke?fn=slow", b"0.3"))
        })
        .collect();
    wait_for(&server, "calls in flight", |s| in_flight(s) >= 4);
    let victim = crate::harness::kill_worker(&server, 2);
    let mut crashed = 0;
    for caller in callers {
        let resp = caller.join().unwrap();
        match resp.status {
            200 => assert_eq!(resp.json()["output"], "slept\n"),
            502 => {
                crashed += 1;
                assert!(resp.assert_error(502).contains("crashed"));
            }
            other => panic!("unexpected {other}: {}", resp.body),
        }
    }
    // Only the call the killed worker was running fails: the calls waiting
    // for a worker were never handed to it.
    assert_eq!(crashed, 1, "calls that had not started were lost");
    wait_for(&server, "a replacement worker", |s| {
        s["worker_restarts"][2] == 1 && s["worker_pids"][2].as_u64().unwrap_or(0) != 0
    });
    let stats = server.get("/stats").json();
    assert_ne!(stats["worker_pids"][2].as_u64().unwrap(), victim);
    assert_eq!(stats["workers"][2]["up"], true);
    for _ in 0..8 {
        assert_eq!(server.post("/invoke?fn=ok", "").status, 200);
    }
}

#[test]
fn a_full_queue_answers_503_with_retry_after() {
    let server = TestServer::start("FIFO", &["--workers", "1", "--max-queue", "1"]);
    server.deploy("slow", "python", SLEEPER);
    let addr = server.addr.clone();
    let running = thread::spawn(move || http(&addr, "POST", "/invoke?fn=slow", b"0.8"));
    wait_for(&server, "a running call", |s| in_flight(s) == 1);
    let addr = server.addr.clone();
    let waiting = thread::spawn(move || http(&addr, "POST", "/invoke?fn=slow", b"0"));
    wait_for(&server, "a queued call", |s| s["queue_len"] == 1);
    let resp = server.post("/invoke?fn=slow", "0");
    let e = resp.assert_error(503);
    assert!(e.contains("queue full"), "{e}");
    assert_eq!(resp.header("retry-after"), Some("1"));
    assert_eq!(running.join().unwrap().status, 200);
    assert_eq!(waiting.join().unwrap().status, 200);
}

#[test]
fn sigterm_lets_open_calls_finish_then_exits_cleanly() {
    let mut server = TestServer::start("RR", &[]);
    server.deploy("slow", "python", SLEEPER);
    let callers: Vec<_> = (0..3)
        .map(|_| {
            let addr = server.addr.clone();
            thread::spawn(move || http(&addr, "POST", "/invoke?fn=slow", b"0.7"))
        })
        .collect();
    wait_for(&server, "calls in flight", |s| in_flight(s) == 3);
    let status = server.stop();
    for caller in callers {
        let resp = caller.join().unwrap();
        assert_eq!(resp.status, 200, "{}", resp.body);
        assert_eq!(resp.json()["output"], "slept\n");
    }
    assert!(status.success(), "{status}");
    assert!(!server.lb_socket().exists());
    assert!(!server.dir.path().join("server.sock").exists());
    // No worker outlives the server.
    let log = server.log_text();
    assert_eq!(log.matches("stopped (exit status: 0)").count(), 4, "{log}");
}

#[test]
fn a_worker_that_loaded_many_modules_is_recycled_without_failing_calls() {
    let server = TestServer::start("RR", &["--workers", "1", "--recycle-after", "3"]);
    let hello = example("hello.c");
    let ids: Vec<String> = (0..7)
        .map(|i| {
            server.deploy(
                &format!("m{i}"),
                "c",
                &hello.replace("FAAS!", &format!("FAAS {i}!")),
            )
        })
        .collect();
    let first_pid = server.get("/stats").json()["worker_pids"][0]
        .as_u64()
        .unwrap();
    // Concurrent calls over distinct modules: the third load triggers a
    // recycle while other calls are queued on the old process.
    let callers: Vec<_> = ids
        .iter()
        .enumerate()
        .flat_map(|(i, id)| (0..3).map(move |_| (i, id.clone())))
        .map(|(i, id)| {
            let addr = server.addr.clone();
            thread::spawn(move || (i, http(&addr, "POST", &format!("/invoke?fn={id}"), b"")))
        })
        .collect();
    for caller in callers {
        let (i, resp) = caller.join().unwrap();
        assert_eq!(resp.status, 200, "{}", resp.body);
        assert_eq!(resp.json()["output"], format!("Hello from FAAS {i}!\n"));
    }
    wait_for(&server, "a recycle", |s| {
        s["worker_recycles"][0].as_u64().unwrap() >= 1
    });
    let stats = server.get("/stats").json();
    assert_ne!(stats["worker_pids"][0].as_u64().unwrap(), first_pid);
    assert_eq!(stats["worker_restarts"][0], 0, "a recycle is not a crash");
    assert_eq!(stats["workers"][0]["failed"], 0);
    // The old process drains its queue, then exits.
    crate::harness::wait_for_log(&server, "retired after recycling", Duration::from_secs(10));
    assert!(
        !server.log_text().contains("crashed"),
        "{}",
        server.log_text()
    );
}
