//! The load balancer: a thread of the `faas-server` process that serves
//! newline-delimited JSON on a UNIX socket (default `/tmp/faas_lb.sock`).
//!
//! The Server asks `{"type":"invoke","req":N,"fn":"hello_1"}` and gets
//! `{"type":"forward_to_worker","req":N,"worker_id":2,"job":{...}}` back, as in
//! the seed. It reports `job_done`, `worker_down` and `worker_up` so the LB
//! knows each worker's load; `{"type":"stats"}` returns the counters.
//!
//! Modules:
//! - [`scheduler`]: the strategies (RR, FIFO, WEIGHTED), pure logic;
//! - [`args`]: the LB's flags ([`LbArgs`]), flattened into `faas-server`.
//!
//! Plain threads, not tokio: the LB does microseconds of work per message, and
//! a blocking accept loop with a reader thread per connection (the Server
//! keeps one persistent connection) is the simplest thing that is fast here.

pub mod args;
pub mod scheduler;

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use faas_proto::frame::LineReader;
use faas_proto::{decode, encode, Job, LbReply, LbRequest, RequestId, DEFAULT_MAX_FRAME};

pub use args::LbArgs;
pub use scheduler::{Decision, Scheduler, Strategy};

const PART: &str = "LB";

/// How the LB is set up.
#[derive(Debug, Clone)]
pub struct LbConfig {
    pub strategy: Strategy,
    /// One weight per worker; its length is the worker count.
    pub weights: Vec<u32>,
    /// Most jobs the FIFO queue holds before the LB refuses new ones.
    pub max_queue: usize,
}

/// A job waiting in the FIFO queue, with where to send its answer.
#[derive(Debug)]
struct Waiting {
    conn: u64,
    job: Job,
}

type Conn = Arc<Mutex<UnixStream>>;

struct Shared {
    scheduler: Mutex<Scheduler<Waiting>>,
    conns: Mutex<HashMap<u64, Conn>>,
    /// Refusals not yet logged, and when the last log line was written: an
    /// overload logs one line a second, not one per refused job.
    refused: Mutex<(u64, Option<Instant>)>,
}

/// Serves the LB protocol on `listener` until accepting fails (the listener
/// is closed or the process exits).
pub fn run(listener: UnixListener, config: LbConfig) {
    log::info!(
        target: PART,
        "load balancer ready: strategy {}, {} workers, weights {:?}",
        config.strategy,
        config.weights.len(),
        config.weights
    );
    let shared = Arc::new(Shared {
        scheduler: Mutex::new(Scheduler::new(
            config.strategy,
            &config.weights,
            config.max_queue,
        )),
        conns: Mutex::new(HashMap::new()),
        refused: Mutex::new((0, None)),
    });
    let next_conn = AtomicU64::new(1);
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            Err(err) => {
                log::error!(target: PART, "accept failed, stopping: {err}");
                return;
            }
        };
        let conn_id = next_conn.fetch_add(1, Ordering::Relaxed);
        let shared = shared.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("lb-conn-{conn_id}"))
            .spawn(move || serve_connection(&shared, conn_id, stream));
        if let Err(err) = spawned {
            log::error!(target: PART, "cannot start a connection thread: {err}");
        }
    }
}

fn serve_connection(shared: &Shared, conn_id: u64, stream: UnixStream) {
    let writer: Conn = match stream.try_clone() {
        Ok(w) => Arc::new(Mutex::new(w)),
        Err(err) => {
            log::error!(target: PART, "connection {conn_id}: {err}");
            return;
        }
    };
    shared.conns.lock().unwrap().insert(conn_id, writer.clone());
    log::debug!(target: PART, "connection {conn_id} opened");

    let mut reader = LineReader::new(stream, DEFAULT_MAX_FRAME);
    loop {
        let line = match reader.next_line() {
            Ok(Some(Ok(line))) => line,
            Ok(Some(Err(err))) => {
                log::warn!(target: PART, "connection {conn_id}: {err}");
                send(
                    &writer,
                    &LbReply::Error {
                        req: 0,
                        error: err.to_string(),
                    },
                );
                continue;
            }
            Ok(None) | Err(_) => break,
        };
        match decode::<LbRequest>(&line) {
            Ok(request) => handle(shared, conn_id, &writer, request),
            Err(err) => {
                log::warn!(target: PART, "connection {conn_id}: {err}");
                send(
                    &writer,
                    &LbReply::Error {
                        req: 0,
                        error: err.to_string(),
                    },
                );
            }
        }
    }

    shared.conns.lock().unwrap().remove(&conn_id);
    // Nobody is left to answer this connection's queued jobs.
    shared
        .scheduler
        .lock()
        .unwrap()
        .retain_queued(|w| w.conn != conn_id);
    log::debug!(target: PART, "connection {conn_id} closed");
}

fn handle(shared: &Shared, conn_id: u64, writer: &Conn, request: LbRequest) {
    match request {
        LbRequest::Invoke {
            req,
            function,
            payload,
        } => {
            let job = Job {
                payload,
                ..Job::new(req, function)
            };
            let (decision, item) = shared
                .scheduler
                .lock()
                .unwrap()
                .submit(Waiting { conn: conn_id, job });
            match (decision, item) {
                (Decision::Forward(worker_id), Some(w)) => {
                    log::debug!(target: PART, "req {req} ({}) -> worker {worker_id}", w.job.function);
                    send(writer, &forward(worker_id, w.job));
                }
                (Decision::Rejected(error), _) => {
                    note_refusal(shared, &error);
                    send(writer, &LbReply::Error { req, error });
                }
                _ => log::debug!(target: PART, "req {req} queued"),
            }
        }
        LbRequest::JobDone { worker_id, ok, .. } => {
            let started = shared.scheduler.lock().unwrap().job_done(worker_id, ok);
            dispatch(shared, started);
        }
        LbRequest::WorkerDown { worker_id } => {
            log::warn!(target: PART, "worker {worker_id} is down; routing around it");
            shared.scheduler.lock().unwrap().worker_down(worker_id);
        }
        LbRequest::WorkerUp { worker_id } => {
            log::info!(target: PART, "worker {worker_id} is up");
            let started = shared.scheduler.lock().unwrap().worker_up(worker_id);
            dispatch(shared, started);
        }
        LbRequest::Stats { req } => {
            let scheduler = shared.scheduler.lock().unwrap();
            let reply = LbReply::Stats {
                req,
                strategy: scheduler.strategy().name().to_string(),
                queue_len: scheduler.queue_len(),
                workers: scheduler.stats(),
            };
            drop(scheduler);
            send(writer, &reply);
        }
    }
}

/// Counts a refused job; logs at most one line a second about refusals.
fn note_refusal(shared: &Shared, error: &str) {
    let mut refused = shared.refused.lock().unwrap();
    refused.0 += 1;
    let now = Instant::now();
    if refused
        .1
        .is_none_or(|last| now.duration_since(last) >= Duration::from_secs(1))
    {
        log::warn!(target: PART, "refused {} job(s): {error}", refused.0);
        *refused = (0, Some(now));
    }
}

/// Answers queued jobs that just got a worker.
fn dispatch(shared: &Shared, started: Vec<(usize, Waiting)>) {
    for (worker_id, waiting) in started {
        let conn = shared.conns.lock().unwrap().get(&waiting.conn).cloned();
        if let Some(conn) = conn {
            log::debug!(target: PART, "queued req {} -> worker {worker_id}", waiting.job.req);
            send(&conn, &forward(worker_id, waiting.job));
        }
    }
}

fn forward(worker_id: usize, job: Job) -> LbReply {
    let req: RequestId = job.req;
    LbReply::ForwardToWorker {
        req,
        worker_id,
        job,
    }
}

fn send(conn: &Conn, reply: &LbReply) {
    let line = encode(reply);
    if let Err(err) = conn.lock().unwrap().write_all(&line) {
        log::debug!(target: PART, "could not answer: {err}");
    }
}
