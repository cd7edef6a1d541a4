//! Worker processes: spawning (fork+exec of the `worker` binary), feeding
//! jobs to their stdin, matching result lines from their stdout, and
//! replacing a worker that dies.
//!
//! A dead worker never leaves a caller waiting: when its stdout closes, every
//! job it held is answered with a `worker_crashed` failure at once, the LB is
//! told (`job_done` for each, then `worker_down`) so it routes around the
//! slot, and a replacement is started (with back-off if it keeps dying), after
//! which the LB hears `worker_up`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use faas_proto::{decode, encode, FailureKind, FrameDecoder, Job, JobResult, LbRequest, RequestId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{mpsc, oneshot};

const PART: &str = "SERVER";

/// How worker processes are started.
#[derive(Debug, Clone)]
pub struct WorkerSpec {
    pub program: PathBuf,
    pub functions_dir: PathBuf,
    /// Extra arguments after `--functions-dir DIR --id N`.
    pub extra_args: Vec<String>,
}

/// Where worker events go (the LB, through the Server).
pub type LbNotifier = mpsc::UnboundedSender<LbRequest>;

/// One worker slot: the current process behind it and the jobs it holds.
struct Slot {
    id: usize,
    /// Lines for the current process's stdin; `None` while it is down.
    input: Mutex<Option<mpsc::UnboundedSender<Vec<u8>>>>,
    pending: Mutex<HashMap<RequestId, oneshot::Sender<JobResult>>>,
    pid: AtomicU32,
    restarts: AtomicU64,
}

/// The pool of worker processes.
pub struct WorkerPool {
    slots: Vec<Arc<Slot>>,
    spec: WorkerSpec,
    lb: LbNotifier,
    /// Set at shutdown: exiting workers are not replaced.
    stopping: AtomicBool,
}

/// Why a job could not be handed to a worker.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("worker {0} does not exist")]
    NoSuchWorker(usize),
    #[error("worker {0} is down")]
    WorkerDown(usize),
}

impl WorkerPool {
    /// Starts `count` workers. Must run inside the Server's tokio runtime.
    pub fn start(count: usize, spec: WorkerSpec, lb: LbNotifier) -> std::io::Result<Arc<Self>> {
        let slots = (0..count)
            .map(|id| {
                Arc::new(Slot {
                    id,
                    input: Mutex::new(None),
                    pending: Mutex::new(HashMap::new()),
                    pid: AtomicU32::new(0),
                    restarts: AtomicU64::new(0),
                })
            })
            .collect();
        let pool = Arc::new(Self {
            slots,
            spec,
            lb,
            stopping: AtomicBool::new(false),
        });
        for slot in &pool.slots {
            let child = pool.spawn(slot)?;
            tokio::spawn(pool.clone().supervise(slot.clone(), child));
        }
        Ok(pool)
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Current process ids (0 while a slot is being restarted).
    pub fn pids(&self) -> Vec<u32> {
        self.slots
            .iter()
            .map(|s| s.pid.load(Ordering::Relaxed))
            .collect()
    }

    /// How many times each slot's process was replaced.
    pub fn restarts(&self) -> Vec<u64> {
        self.slots
            .iter()
            .map(|s| s.restarts.load(Ordering::Relaxed))
            .collect()
    }

    /// Sends `job` to worker `worker_id`; the receiver gets its result (or a
    /// crash failure if the worker dies first).
    pub fn dispatch(
        &self,
        worker_id: usize,
        job: &Job,
    ) -> Result<oneshot::Receiver<JobResult>, DispatchError> {
        let slot = self
            .slots
            .get(worker_id)
            .ok_or(DispatchError::NoSuchWorker(worker_id))?;
        let (tx, rx) = oneshot::channel();
        let input = slot.input.lock().unwrap();
        let Some(input) = input.as_ref() else {
            return Err(DispatchError::WorkerDown(worker_id));
        };
        slot.pending.lock().unwrap().insert(job.req, tx);
        if input.send(encode(job)).is_err() {
            slot.pending.lock().unwrap().remove(&job.req);
            return Err(DispatchError::WorkerDown(worker_id));
        }
        Ok(rx)
    }

    /// Kills worker `worker_id`'s process (used when a job overruns its
    /// deadline and the guest cannot be interrupted); it is then replaced.
    pub fn kill(&self, worker_id: usize) {
        if let Some(slot) = self.slots.get(worker_id) {
            let pid = slot.pid.load(Ordering::Relaxed);
            if pid != 0 {
                log::warn!(target: PART, "killing worker {worker_id} (pid {pid})");
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }

    /// Stops every worker: closes their stdin (they exit after their
    /// current job), waits up to `timeout`, then kills what is left.
    pub async fn stop(&self, timeout: Duration) {
        self.stopping.store(true, Ordering::SeqCst);
        for slot in &self.slots {
            slot.input.lock().unwrap().take();
        }
        let deadline = Instant::now() + timeout;
        while self.pids().iter().any(|&pid| pid != 0) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for (worker_id, pid) in self.pids().into_iter().enumerate() {
            if pid != 0 {
                self.kill(worker_id);
            }
        }
    }

    fn spawn(&self, slot: &Slot) -> std::io::Result<Child> {
        let mut cmd = Command::new(&self.spec.program);
        cmd.arg("--functions-dir")
            .arg(&self.spec.functions_dir)
            .arg("--id")
            .arg(slot.id.to_string())
            .args(&self.spec.extra_args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // Workers log to the Server's own stderr: one terminal for all.
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot start worker {}: {e}", self.spec.program.display()),
            )
        })?;
        let stdin = child.stdin.take().expect("piped stdin");
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(write_lines(stdin, rx));
        *slot.input.lock().unwrap() = Some(tx);
        let pid = child.id().unwrap_or(0);
        slot.pid.store(pid, Ordering::Relaxed);
        log::info!(target: PART, "worker {} started (pid {pid})", slot.id);
        Ok(child)
    }

    /// Reads one process's results until it dies, then replaces it; loops for
    /// the life of the pool.
    async fn supervise(self: Arc<Self>, slot: Arc<Slot>, mut child: Child) {
        let mut backoff = Duration::from_millis(50);
        loop {
            let started = Instant::now();
            let stdout = child.stdout.take().expect("piped stdout");
            read_results(&slot, stdout).await;

            // stdout closed: the process is gone or going.
            slot.input.lock().unwrap().take();
            let status = match tokio::time::timeout(Duration::from_secs(2), child.wait()).await {
                Ok(Ok(status)) => status.to_string(),
                _ => {
                    let _ = child.kill().await;
                    "killed after closing its stdout".to_string()
                }
            };
            slot.pid.store(0, Ordering::Relaxed);
            let orphans: Vec<_> = slot.pending.lock().unwrap().drain().collect();
            if self.stopping.load(Ordering::SeqCst) {
                log::info!(target: PART, "worker {} stopped ({status})", slot.id);
                return;
            }
            log::error!(
                target: PART,
                "worker {} exited ({status}) holding {} jobs; replacing it",
                slot.id,
                orphans.len()
            );
            for (req, waiter) in orphans {
                let _ = waiter.send(JobResult::failure(
                    req,
                    FailureKind::WorkerCrashed,
                    format!(
                        "worker {} crashed ({status}) while running the function",
                        slot.id
                    ),
                ));
            }
            let _ = self.lb.send(LbRequest::WorkerDown { worker_id: slot.id });

            // A worker that dies right after starting is probably broken:
            // back off instead of spinning.
            if started.elapsed() > Duration::from_secs(10) {
                backoff = Duration::from_millis(50);
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
            loop {
                match self.spawn(&slot) {
                    Ok(new_child) => {
                        child = new_child;
                        break;
                    }
                    Err(err) => {
                        log::error!(target: PART, "{err}; retrying in {backoff:?}");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
            slot.restarts.fetch_add(1, Ordering::Relaxed);
            let _ = self.lb.send(LbRequest::WorkerUp { worker_id: slot.id });
        }
    }
}

async fn write_lines(mut stdin: ChildStdin, mut lines: mpsc::UnboundedReceiver<Vec<u8>>) {
    while let Some(line) = lines.recv().await {
        if stdin.write_all(&line).await.is_err() {
            break;
        }
    }
}

/// Hands each result line to the job waiting for it, until EOF.
async fn read_results(slot: &Slot, mut stdout: ChildStdout) {
    let mut decoder = FrameDecoder::default();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match stdout.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        decoder.feed(&chunk[..n]);
        loop {
            match decoder.next_line() {
                Ok(Some(line)) => match decode::<JobResult>(&line) {
                    Ok(result) => {
                        let waiter = slot.pending.lock().unwrap().remove(&result.req);
                        match waiter {
                            Some(waiter) => {
                                let _ = waiter.send(result);
                            }
                            None => log::warn!(
                                target: PART,
                                "worker {} answered unknown job {}",
                                slot.id,
                                result.req
                            ),
                        }
                    }
                    Err(err) => {
                        log::warn!(target: PART, "worker {} sent a bad line: {err}", slot.id)
                    }
                },
                Ok(None) => break,
                Err(err) => {
                    log::error!(target: PART, "worker {}: {err}", slot.id);
                    return;
                }
            }
        }
    }
}
