//! Fair share and a bounded store: one function's calls cannot hold every
//! worker, and the store refuses what it cannot hold (422 for a huge module,
//! 507 past the function count or the store size) without losing anything;
//! a worker that ran a huge deleted module is recycled.

use std::thread;
use std::time::Duration;

use crate::harness::{example, http, in_flight, wait_for, wait_for_log, TestServer};

/// A C function that sleeps as many seconds as its payload says (in a host
/// call: the worker is held, the CPU is not).
const SLEEPER_C: &str = r#"#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(void) {
    char buf[16] = {0};
    fread(buf, 1, sizeof buf - 1, stdin);
    sleep(atoi(buf));
    puts("slept");
    return 0;
}
"#;

/// A C function whose module carries `mib` MiB of initialised data.
fn data_module(mib: usize) -> String {
    format!(
        r#"#include <stdio.h>
static unsigned char big[{mib} << 20] = {{1, 2, 3}};
int main(int argc, char **argv) {{
    big[argc] = (unsigned char)argc;
    printf("%d\n", big[argc * 4096] + big[1]);
    return 0;
}}
"#
    )
}

fn workers_queue(s: &serde_json::Value) -> (u64, u64) {
    (in_flight(s), s["queue_len"].as_u64().unwrap_or(0))
}

#[test]
fn sleeping_calls_of_one_function_leave_a_worker_for_the_others() {
    let server = TestServer::start("RR", &[]);
    server.deploy("sleepy", "c", SLEEPER_C);
    server.deploy("hello", "c", &example("hello.c"));
    let sleepers: Vec<_> = (0..4)
        .map(|_| {
            let addr = server.addr.clone();
            thread::spawn(move || http(&addr, "POST", "/invoke?fn=sleepy", b"4"))
        })
        .collect();
    // The default cap (workers - 1): three sleep, the fourth waits.
    wait_for(&server, "three sleepers running, one queued", |s| {
        workers_queue(s) == (3, 1)
    });
    let stats = server.get("/stats").json();
    let idle = stats["workers"]
        .as_array()
        .unwrap()
        .iter()
        .position(|w| w["in_flight"] == 0)
        .unwrap();
    for i in 0..5 {
        let resp = server.post("/invoke?fn=hello", &i.to_string());
        assert_eq!(resp.status, 200, "{}", resp.body);
        assert_eq!(resp.json()["output"], format!("Hello from FAAS!\n{i}"));
        assert_eq!(resp.json()["worker_id"], idle as u64);
    }
    // Every hello answered while every sleeper still slept.
    assert!(
        sleepers.iter().all(|s| !s.is_finished()),
        "a sleeper finished before the hellos"
    );
    for sleeper in sleepers {
        let resp = sleeper.join().unwrap();
        assert_eq!(resp.status, 200, "{}", resp.body);
        assert_eq!(resp.json()["output"], "slept\n");
    }
    let stats = server.get("/stats").json();
    let failed: u64 = stats["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["failed"].as_u64().unwrap())
        .sum();
    assert_eq!(failed, 0);
}

#[test]
fn max_concurrency_caps_one_function_lower() {
    let server = TestServer::start("RR", &["--workers", "3"]);
    let resp = server.post("/deploy?name=x&lang=c&max_concurrency=4", SLEEPER_C);
    assert!(resp
        .assert_error(400)
        .contains("max_concurrency must be between 1 and 3"));
    let resp = server.post("/deploy?name=one&lang=c&max_concurrency=1", SLEEPER_C);
    assert_eq!(resp.status, 201, "{}", resp.body);
    server.deploy("hello", "c", &example("hello.c"));
    let sleepers: Vec<_> = (0..2)
        .map(|_| {
            let addr = server.addr.clone();
            thread::spawn(move || http(&addr, "POST", "/invoke?fn=one", b"2"))
        })
        .collect();
    wait_for(&server, "one running, one queued", |s| {
        workers_queue(s) == (1, 1)
    });
    assert_eq!(server.post("/invoke?fn=hello", "").status, 200);
    assert!(sleepers.iter().all(|s| !s.is_finished()));
    for sleeper in sleepers {
        assert_eq!(sleeper.join().unwrap().status, 200);
    }
}

#[test]
fn a_module_over_max_module_mb_is_refused_and_nothing_is_stored() {
    let server = TestServer::start("RR", &["--workers", "1", "--max-module-mb", "1"]);
    let resp = server.post("/deploy?name=big&lang=c", &data_module(2));
    let e = resp.assert_error(422);
    assert!(e.contains("--max-module-mb allows 1 MiB"), "{e}");
    assert!(e.contains("the compiled module is 2."), "{e}");
    assert!(
        server.stored_functions().is_empty(),
        "{:?}",
        server.stored_functions()
    );
    server.get("/function/big").assert_error(404);
    // Under the limit it deploys.
    server.deploy("small", "c", &example("hello.c"));
}

#[test]
fn past_max_functions_a_deploy_answers_507_and_a_delete_frees_room() {
    let server = TestServer::start("RR", &["--workers", "1", "--max-functions", "2"]);
    server.deploy("a", "html", "<p>a</p>");
    server.deploy("b", "html", "<p>b</p>");
    let resp = server.post("/deploy?name=c&lang=html", "<p>c</p>");
    let e = resp.assert_error(507);
    assert!(e.contains("--max-functions allows 2"), "{e}");
    assert_eq!(server.stored_functions().len(), 2);
    // A new version is not a new function.
    let resp = server.request("PUT", "/function/b?lang=html", b"<p>b2</p>");
    assert_eq!(resp.status, 201, "{}", resp.body);
    assert_eq!(server.request("DELETE", "/function/a", b"").status, 200);
    server.deploy("c", "html", "<p>c</p>");
    // The count survives a restart: the store is recounted.
    let server = server.restart();
    server
        .post("/deploy?name=d&lang=html", "<p>d</p>")
        .assert_error(507);
}

#[test]
fn past_max_store_mb_a_deploy_or_update_answers_507_and_the_old_version_serves_on() {
    let server = TestServer::start("RR", &["--workers", "1", "--max-store-mb", "1"]);
    let page = |c: char| format!("<p>{}</p>", c.to_string().repeat(600 * 1024));
    server.deploy("a", "html", &page('a'));
    // A second 600 KiB version would pass 1 MiB: refused, nothing changes.
    let resp = server.request("PUT", "/function/a?lang=html", page('b').as_bytes());
    let e = resp.assert_error(507);
    assert!(e.contains("--max-store-mb allows 1 MiB"), "{e}");
    assert!(e.contains("every version counts"), "{e}");
    let served = server.get("/fn/a");
    assert_eq!(served.status, 200);
    assert!(served.body.starts_with("<p>aaa"), "the old version is gone");
    assert_eq!(
        server.get("/function/a/versions").json()["versions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // So is a new function of that size; a small one still fits.
    server
        .post("/deploy?name=b&lang=html", &page('b'))
        .assert_error(507);
    assert_eq!(server.stored_functions().len(), 1);
    server.deploy("small", "html", "<p>small</p>");
    // Deleting gives the room back.
    assert_eq!(server.request("DELETE", "/function/a", b"").status, 200);
    let resp = server.request("PUT", "/function/small?lang=html", page('c').as_bytes());
    assert_eq!(resp.status, 201, "{}", resp.body);
}

/// A process's resident memory in KiB.
fn rss_kib(pid: u64) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[test]
fn a_worker_that_ran_a_huge_module_is_recycled_when_it_is_deleted() {
    let server = TestServer::start("RR", &["--workers", "2"]);
    let huge = server.deploy("huge", "c", &data_module(48));
    server.deploy("hello", "c", &example("hello.c"));
    let baseline: Vec<u64> = server.get("/stats").json()["worker_pids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| rss_kib(p.as_u64().unwrap()).unwrap_or(0))
        .collect();
    let resp = server.post(&format!("/invoke?fn={huge}"), "");
    assert_eq!(resp.status, 200, "{}", resp.body);
    let ran = resp.json()["worker_id"].as_u64().unwrap() as usize;
    let other = 1 - ran;
    let pids = server.get("/stats").json()["worker_pids"].clone();
    let (old_pid, other_pid) = (pids[ran].as_u64().unwrap(), pids[other].as_u64().unwrap());
    let loaded = rss_kib(old_pid).unwrap();
    // Calls keep coming while the delete recycles the worker: none fails.
    // The delete waits until the burst is under way, so they overlap.
    let completed = |s: &serde_json::Value| -> u64 {
        s["workers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["completed"].as_u64().unwrap())
            .sum()
    };
    let before = completed(&server.get("/stats").json());
    let addr = server.addr.clone();
    let burst = thread::spawn(move || {
        (0..200)
            .map(|i| http(&addr, "POST", "/invoke?fn=hello", i.to_string().as_bytes()).status)
            .collect::<Vec<_>>()
    });
    wait_for(&server, "the burst to start", |s| {
        completed(s) >= before + 5
    });
    assert_eq!(server.request("DELETE", "/function/huge", b"").status, 200);
    wait_for(&server, "the recycle", |s| s["worker_recycles"][ran] == 1);
    let statuses = burst.join().unwrap();
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    wait_for_log(&server, "retired after recycling", Duration::from_secs(10));
    let stats = server.get("/stats").json();
    let new_pid = stats["worker_pids"][ran].as_u64().unwrap();
    assert_ne!(new_pid, old_pid);
    assert!(rss_kib(old_pid).is_none(), "the old process is gone");
    // The worker that never ran it keeps going.
    assert_eq!(stats["worker_pids"][other].as_u64().unwrap(), other_pid);
    assert_eq!(stats["worker_recycles"][other], 0);
    assert_eq!(stats["worker_restarts"][ran], 0, "a recycle is not a crash");
    assert_eq!(server.post("/invoke?fn=hello", "").status, 200);
    let after = rss_kib(new_pid).unwrap();
    eprintln!(
        "worker RSS: {} KiB at start, {loaded} KiB after running a 48 MiB-data module, {after} KiB for its replacement",
        baseline[ran]
    );
    assert!(after < loaded, "{after} KiB >= {loaded} KiB");
}
