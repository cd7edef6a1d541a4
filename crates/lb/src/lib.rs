//! The load balancer: a thread of the `faas-server` process that serves
//! newline-delimited JSON on a UNIX socket (default `/tmp/faas_lb.sock`).
//!
//! The Server asks `{"type":"invoke","req":N,"fn":"hello_1"}` and gets
//! `{"type":"forward_to_worker","req":N,"worker_id":2,"job":{...}}` back, as in
//! the seed. It reports `job_done`, `worker_down` and `worker_up` so the LB
//! knows each worker's load; `{"type":"stats"}` returns the counters.
//!
//! The LB trusts nobody who connects: a job belongs to the connection that
//! asked for it (only it may report the job done, and closing it releases
//! the job), and only the Server may report workers up or down. The Server
//! proves who it is with `{"type":"hello","role":"server"}`, granted only
//! when the peer's pid (`SO_PEERCRED`) is the LB's own process. Anything
//! else answers an `error` line and changes nothing.
//!
//! An `error` line says why in `kind`: `queue_full` (every worker busy and
//! `--max-queue` calls waiting), `no_worker` (none is up), or `invalid` (the
//! request itself was refused). It carries the refused line's `req` when
//! that line had one, and none otherwise (a one-way message, a line too
//! broken to read it from).
//!
//! Modules:
//! - [`scheduler`]: the strategies (RR, FIFO, WEIGHTED) and the per-function
//!   fair share, pure logic;
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
use faas_proto::{
    decode, encode, req_of_line, Blob, Job, LbErrorKind, LbReply, LbRequest, RequestId,
    DEFAULT_MAX_FRAME,
};

pub use args::LbArgs;
pub use scheduler::{Decision, Refused, Rejection, Scheduler, Share, Strategy};

const PART: &str = "LB";

/// How the LB is set up.
#[derive(Debug, Clone)]
pub struct LbConfig {
    pub strategy: Strategy,
    /// One weight per worker; its length is the worker count.
    pub weights: Vec<u32>,
    /// Most jobs that wait for a worker before the LB refuses new ones.
    pub max_queue: usize,
    /// Most workers one function holds at once (0: no cap).
    pub max_function_share: usize,
}

type Conn = Arc<Mutex<UnixStream>>;

/// The role a connection has taken (see [`LbRequest::Hello`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Anyone: may ask for workers and report its own jobs done.
    Client,
    /// The Server, in this very process: may also report workers up/down.
    Server,
}

struct Shared {
    /// Jobs wait as they are; their owner says where to send the answer.
    scheduler: Mutex<Scheduler<Job>>,
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
        "load balancer ready: strategy {}, {} workers, weights {:?}, at most {} per function",
        config.strategy,
        config.weights.len(),
        config.weights,
        match config.max_function_share {
            0 => "no cap".to_string(),
            n => n.to_string(),
        }
    );
    let shared = Arc::new(Shared {
        scheduler: Mutex::new(
            Scheduler::new(config.strategy, &config.weights, config.max_queue)
                .with_max_share(config.max_function_share),
        ),
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
    let peer_is_us = peer_pid(&stream) == Some(std::process::id());
    let mut role = Role::Client;

    let mut reader = LineReader::new(stream, DEFAULT_MAX_FRAME);
    while let Ok(Some(line)) = reader.next_line() {
        let request = line
            .map_err(|err| (None, err))
            .and_then(|line| decode::<LbRequest>(&line).map_err(|err| (req_of_line(&line), err)));
        match request {
            Ok(request) => {
                log::trace!(target: PART, "connection {conn_id} ({role:?}): {request:?}");
                handle(shared, conn_id, peer_is_us, &mut role, &writer, request)
            }
            // Answered under the line's own request id when it has one, so
            // whoever sent it is not left waiting.
            Err((req, err)) => {
                log::warn!(target: PART, "connection {conn_id}: {err}");
                send(&writer, &invalid(req, err.to_string()));
            }
        }
    }

    shared.conns.lock().unwrap().remove(&conn_id);
    // Nobody is left to answer this connection's jobs: drop its queued
    // ones and release the workers its running ones held.
    let started = shared.scheduler.lock().unwrap().connection_closed(conn_id);
    dispatch(shared, started);
    log::debug!(target: PART, "connection {conn_id} closed");
}

/// The pid of the process at the other end of a UNIX socket.
fn peer_pid(stream: &UnixStream) -> Option<u32> {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    getsockopt(stream, PeerCredentials)
        .ok()
        .map(|cred| cred.pid() as u32)
}

fn handle(
    shared: &Shared,
    conn_id: u64,
    peer_is_us: bool,
    role: &mut Role,
    writer: &Conn,
    request: LbRequest,
) {
    match request {
        LbRequest::Hello { req, role: wanted } => {
            send(writer, &hello(req, wanted, peer_is_us, role));
        }
        LbRequest::Invoke {
            req,
            function,
            payload,
            request_id,
            name,
            max_concurrency,
        } => invoke(
            shared,
            conn_id,
            writer,
            req,
            // A job counts against its function's name (every version
            // shares one account); a client that names none counts `fn`.
            Share::new(
                name.as_deref().unwrap_or(&function),
                max_concurrency.map(|n| n as usize),
            ),
            Job {
                payload: payload.map(Blob::from),
                request_id,
                ..Job::new(req, function)
            },
        ),
        LbRequest::JobDone { req, worker_id, ok } => {
            let done = shared
                .scheduler
                .lock()
                .unwrap()
                .job_done((conn_id, req), worker_id, ok);
            match done {
                Ok(started) => dispatch(shared, started),
                Err(refused) => send(writer, &invalid(Some(req), refused.to_string())),
            }
        }
        LbRequest::WorkerDown { .. } | LbRequest::WorkerUp { .. } if *role != Role::Server => {
            send(
                writer,
                &invalid(None, "worker state changes need the server role"),
            );
        }
        LbRequest::WorkerDown { worker_id } => worker_down(shared, writer, worker_id),
        LbRequest::WorkerUp { worker_id } => worker_up(shared, writer, worker_id),
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

/// Grants (or refuses) the role a connection asks for.
fn hello(req: RequestId, wanted: String, peer_is_us: bool, role: &mut Role) -> LbReply {
    match wanted.as_str() {
        "server" if peer_is_us => {
            *role = Role::Server;
            LbReply::Welcome { req, role: wanted }
        }
        "server" => invalid(
            Some(req),
            "only the faas-server process may take the server role",
        ),
        "client" => LbReply::Welcome { req, role: wanted },
        other => invalid(Some(req), format!("unknown role '{other}'")),
    }
}

fn worker_down(shared: &Shared, writer: &Conn, worker_id: usize) {
    log::warn!(target: PART, "worker {worker_id} is down; routing around it");
    if let Err(refused) = shared.scheduler.lock().unwrap().worker_down(worker_id) {
        send(writer, &invalid(None, refused.to_string()));
    }
}

fn worker_up(shared: &Shared, writer: &Conn, worker_id: usize) {
    log::info!(target: PART, "worker {worker_id} is up");
    let up = shared.scheduler.lock().unwrap().worker_up(worker_id);
    match up {
        Ok(started) => dispatch(shared, started),
        Err(refused) => send(writer, &invalid(None, refused.to_string())),
    }
}

/// Starts `job` on an idle worker, queues it, or refuses it.
fn invoke(shared: &Shared, conn_id: u64, writer: &Conn, req: RequestId, share: Share, job: Job) {
    let (decision, item) = shared
        .scheduler
        .lock()
        .unwrap()
        .submit((conn_id, req), share, job);
    match (decision, item) {
        (Decision::Forward(worker_id), Some(job)) => {
            log::debug!(
                target: PART,
                "req {req} [{}] ({}) -> worker {worker_id}",
                job.request_id.as_deref().unwrap_or("-"),
                job.function
            );
            send(writer, &forward(worker_id, job));
        }
        (Decision::Rejected(rejection), _) => {
            let message = rejection.to_string();
            note_refusal(shared, &message);
            send(
                writer,
                &LbReply::Error {
                    req: Some(req),
                    kind: rejection.kind(),
                    error: message,
                },
            );
        }
        _ => log::debug!(target: PART, "req {req} queued"),
    }
}

/// A refusal of the request itself (kind [`LbErrorKind::Invalid`]), under
/// its request id when it had one.
fn invalid(req: Option<RequestId>, error: impl Into<String>) -> LbReply {
    LbReply::Error {
        req,
        kind: LbErrorKind::Invalid,
        error: error.into(),
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
fn dispatch(shared: &Shared, started: Vec<(usize, scheduler::Owner, Job)>) {
    for (worker_id, (conn_id, _), job) in started {
        let conn = shared.conns.lock().unwrap().get(&conn_id).cloned();
        if let Some(conn) = conn {
            log::debug!(target: PART, "queued req {} -> worker {worker_id}", job.req);
            send(&conn, &forward(worker_id, job));
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
