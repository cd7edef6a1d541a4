//! Worker processes: spawning (fork+exec of the `worker` binary), feeding
//! jobs to their stdin, matching result lines from their stdout, replacing a
//! worker that dies, and recycling one that has loaded many modules.
//!
//! A dead worker never leaves a caller waiting: when its stdout closes, every
//! job it held is answered with a `worker_crashed` failure at once, the LB is
//! told (`worker_down`) so it routes around the slot, and a replacement is
//! started (with back-off if it keeps dying), after which the LB hears
//! `worker_up`.
//!
//! A worker starts with a cleared environment (every setting is a flag) in
//! a session of its own (see [`crate::reaper`]).
//!
//! Recycling (Wasmer never frees a process's code memory): once a worker
//! reports `modules_loaded` at the threshold, a fresh process is started for
//! its slot and takes every new job; the old one's stdin is closed, so it
//! finishes the jobs already queued to it, answers them and exits. No call
//! fails and the slot never goes down. The same happens to every worker
//! that ran a version holding many megabytes once that version is deleted
//! ([`WorkerPool::recycle_runners_of`]): the worker would otherwise keep its
//! code and data for good (a 1 GB-data module left 647 MB behind).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use faas_proto::client::Client;
use faas_proto::lines::{read_lines, write_lines};
use faas_proto::{
    decode, FailureKind, FrameError, Job, JobResult, LbReply, LbRequest, RequestId, WorkerRequest,
    DEFAULT_MAX_FRAME,
};
use std::ops::ControlFlow;

use tokio::process::{Child, ChildStdout, Command};

use crate::rundir::RunDir;
use tokio::sync::{mpsc, oneshot};

const PART: &str = "SERVER";

/// How worker processes are started.
#[derive(Debug, Clone)]
pub struct WorkerSpec {
    pub program: PathBuf,
    pub functions_dir: PathBuf,
    /// Extra arguments after `--functions-dir DIR --id N`.
    pub extra_args: Vec<std::ffi::OsString>,
    /// Recycle a worker once it has loaded this many modules (0: never).
    pub recycle_after_loads: u64,
    /// Where workers keep their PHP sockets (`--sockets-dir`); a reaped
    /// worker's part is removed.
    pub sockets_dir: Option<Arc<RunDir>>,
}

/// Variables a worker inherits from the Server: where programs are, the
/// locale and the log settings. Nothing else, and never a `FAAS_*` value
/// (workers take every setting as a flag and need no token).
const WORKER_ENV: &[&str] = &[
    "PATH",
    "LANG",
    "LC_ALL",
    "RUST_LOG",
    "RUST_LOG_STYLE",
    "RUST_BACKTRACE",
    "TZ",
];

/// The Server's variables among [`WORKER_ENV`] (also what the Server's
/// helper processes get: `worker check`, `worker compile`).
pub fn worker_environment() -> Vec<(&'static str, std::ffi::OsString)> {
    WORKER_ENV
        .iter()
        .filter_map(|&name| std::env::var_os(name).map(|value| (name, value)))
        .collect()
}

/// The Server's connection to the LB, which hears about workers going down
/// and up. Worker events and job reports share it, so the LB learns that a
/// worker died before it hears that the dead worker's call ended (and never
/// hands that worker another job).
pub type LbNotifier = Arc<Client<LbRequest, LbReply>>;

/// One worker process and the jobs it holds.
struct Process {
    pid: u32,
    /// Lines for its stdin; `None` once closed (retiring or dead).
    input: Mutex<Option<mpsc::UnboundedSender<Vec<u8>>>>,
    pending: Mutex<HashMap<RequestId, oneshot::Sender<JobResult>>>,
    /// The function ids it was given jobs of (so it may have loaded them).
    /// Bounded: distinct ids are at most the modules it loads, and
    /// `--recycle-after` bounds those.
    ran: Mutex<HashSet<String>>,
}

/// One worker slot (a worker id): the process currently serving it.
struct Slot {
    id: usize,
    current: Mutex<Option<Arc<Process>>>,
    restarts: AtomicU64,
    recycles: AtomicU64,
    recycling: AtomicBool,
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
                    current: Mutex::new(None),
                    restarts: AtomicU64::new(0),
                    recycles: AtomicU64::new(0),
                    recycling: AtomicBool::new(false),
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
            pool.start_process(slot)?;
        }
        Ok(pool)
    }

    /// Current process ids (0 while a slot is being restarted).
    pub fn pids(&self) -> Vec<u32> {
        self.slots
            .iter()
            .map(|s| s.current.lock().unwrap().as_ref().map_or(0, |p| p.pid))
            .collect()
    }

    /// How many times each slot's process crashed and was replaced.
    pub fn restarts(&self) -> Vec<u64> {
        self.slots
            .iter()
            .map(|s| s.restarts.load(Ordering::Relaxed))
            .collect()
    }

    /// How many times each slot's process was recycled.
    pub fn recycles(&self) -> Vec<u64> {
        self.slots
            .iter()
            .map(|s| s.recycles.load(Ordering::Relaxed))
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
        let process = slot
            .current
            .lock()
            .unwrap()
            .clone()
            .ok_or(DispatchError::WorkerDown(worker_id))?;
        let (tx, rx) = oneshot::channel();
        let input = process.input.lock().unwrap();
        let Some(input) = input.as_ref() else {
            return Err(DispatchError::WorkerDown(worker_id));
        };
        process.pending.lock().unwrap().insert(job.req, tx);
        {
            let mut ran = process.ran.lock().unwrap();
            // Look before inserting: no allocation on a warm call.
            if !ran.contains(&job.function) {
                ran.insert(job.function.clone());
            }
        }
        if input.send(WorkerRequest::run_line(job)).is_err() {
            process.pending.lock().unwrap().remove(&job.req);
            return Err(DispatchError::WorkerDown(worker_id));
        }
        Ok(rx)
    }

    /// Tells every worker to drop `ids` from its caches (deleted versions):
    /// a one-way `forget` line, which nothing answers.
    pub fn forget(&self, ids: &[String]) {
        let line = WorkerRequest::forget_line(ids);
        for slot in &self.slots {
            let process = slot.current.lock().unwrap().clone();
            if let Some(input) = process
                .as_ref()
                .and_then(|p| p.input.lock().unwrap().clone())
            {
                let _ = input.send(line.clone());
            }
        }
    }

    /// Recycles (gracefully: no call fails) every worker whose current
    /// process was given a job of one of `ids`, so the memory of those
    /// (deleted) modules goes with it. Returns the worker ids recycled.
    pub fn recycle_runners_of(self: &Arc<Self>, ids: &[String]) -> Vec<usize> {
        let mut recycled = Vec::new();
        for slot in &self.slots {
            let process = slot.current.lock().unwrap().clone();
            let ran_one = process.is_some_and(|p| {
                let ran = p.ran.lock().unwrap();
                ids.iter().any(|id| ran.contains(id))
            });
            if ran_one {
                self.recycle(slot);
                recycled.push(slot.id);
            }
        }
        recycled
    }

    /// Kills worker `worker_id`'s process (used when a job overruns its
    /// deadline and the guest cannot be interrupted); it is then replaced.
    pub fn kill(&self, worker_id: usize) {
        let pid = self.pids().get(worker_id).copied().unwrap_or(0);
        if pid != 0 {
            log::warn!(target: PART, "killing worker {worker_id} (pid {pid})");
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }

    /// Stops every worker: closes their stdin (they exit after their
    /// current job), waits up to `timeout`, then kills what is left.
    pub async fn stop(&self, timeout: Duration) {
        self.stopping.store(true, Ordering::SeqCst);
        for slot in &self.slots {
            if let Some(process) = slot.current.lock().unwrap().as_ref() {
                process.input.lock().unwrap().take();
            }
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
        if let Some(dir) = &self.spec.sockets_dir {
            dir.remove();
        }
    }

    /// Spawns a process for `slot`, makes it the slot's current one, and
    /// watches it. Returns the process it replaced, if any.
    fn start_process(self: &Arc<Self>, slot: &Arc<Slot>) -> std::io::Result<Option<Arc<Process>>> {
        let mut cmd = Command::new(&self.spec.program);
        cmd.arg("--functions-dir")
            .arg(&self.spec.functions_dir)
            .arg("--id")
            .arg(slot.id.to_string())
            .args(&self.spec.extra_args)
            .args(self.spec.sockets_dir.iter().flat_map(|dir| {
                [
                    std::ffi::OsStr::new("--sockets-dir"),
                    dir.path().as_os_str(),
                ]
            }))
            // Every setting reaches a worker as a flag; its environment is
            // cleared so that nothing the Server was given (FAAS_API_TOKEN,
            // FAAS_INVOKE_TOKEN, credentials...) is in a process that runs
            // functions, or in its /proc/PID/environ.
            .env_clear()
            .envs(worker_environment())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // Workers log to the Server's own stderr: one terminal for all.
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        // SAFETY: runs in the forked child before exec; setsid is
        // async-signal-safe and allocates nothing.
        unsafe {
            // Its own session: everything the worker starts carries the
            // worker's session id, which is how the Server's reaper tells
            // the orphans of a dead worker from its own children
            // (see `crate::reaper`). It also keeps the terminal's Ctrl-C to
            // the Server, which stops workers in order.
            cmd.pre_exec(|| {
                nix::unistd::setsid()?;
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot start worker {}: {e}", self.spec.program.display()),
            )
        })?;
        let stdin = child.stdin.take().expect("piped stdin");
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(write_lines(stdin, rx));
        let process = Arc::new(Process {
            pid: child.id().unwrap_or(0),
            input: Mutex::new(Some(tx)),
            pending: Mutex::new(HashMap::new()),
            ran: Mutex::new(HashSet::new()),
        });
        log::info!(target: PART, "worker {} started (pid {})", slot.id, process.pid);
        let previous = slot.current.lock().unwrap().replace(process.clone());
        tokio::spawn(self.clone().watch(slot.clone(), process, child));
        Ok(previous)
    }

    /// Delivers one process's results until it exits, then decides what its
    /// exit means: shutdown, retirement after recycling, or a crash.
    async fn watch(self: Arc<Self>, slot: Arc<Slot>, process: Arc<Process>, mut child: Child) {
        let stdout = child.stdout.take().expect("piped stdout");
        self.read_results(&slot, &process, stdout).await;

        // stdout closed: the process is gone or going.
        process.input.lock().unwrap().take();
        let status = match tokio::time::timeout(Duration::from_secs(2), child.wait()).await {
            Ok(Ok(status)) => status.to_string(),
            _ => {
                let _ = child.kill().await;
                "killed after closing its stdout".to_string()
            }
        };
        // Reaped: whatever it left in the socket directory (all of it, when
        // it was killed) can go.
        if let Some(dir) = &self.spec.sockets_dir {
            dir.remove_worker(process.pid);
        }
        let crashed = !self.stopping.load(Ordering::SeqCst)
            && slot
                .current
                .lock()
                .unwrap()
                .as_ref()
                .is_some_and(|c| Arc::ptr_eq(c, &process));
        if crashed {
            let _ = self
                .lb
                .send(&LbRequest::WorkerDown { worker_id: slot.id })
                .await;
        }
        let orphans: Vec<_> = process.pending.lock().unwrap().drain().collect();
        let was_current = {
            let mut current = slot.current.lock().unwrap();
            let same = current.as_ref().is_some_and(|c| Arc::ptr_eq(c, &process));
            if same {
                current.take();
            }
            same
        };
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
        if self.stopping.load(Ordering::SeqCst) {
            log::info!(target: PART, "worker {} stopped ({status})", slot.id);
            return;
        }
        if !was_current {
            log::info!(
                target: PART,
                "worker {} (pid {}) retired after recycling ({status})",
                slot.id,
                process.pid
            );
            return;
        }
        log::error!(target: PART, "worker {} exited ({status}); replacing it", slot.id);
        self.replace_crashed(&slot).await;
    }

    /// Starts a replacement for a crashed worker, backing off while it
    /// keeps failing, then tells the LB the slot is up again.
    async fn replace_crashed(self: &Arc<Self>, slot: &Arc<Slot>) {
        let restarts = slot.restarts.fetch_add(1, Ordering::Relaxed);
        // A slot that keeps crashing is probably broken: back off instead
        // of spinning (50 ms, doubling, at most 5 s).
        let mut backoff = Duration::from_millis(50 << restarts.min(6)).min(Duration::from_secs(5));
        loop {
            tokio::time::sleep(backoff).await;
            if self.stopping.load(Ordering::SeqCst) {
                return;
            }
            match self.start_process(slot) {
                Ok(_) => break,
                Err(err) => {
                    log::error!(target: PART, "{err}; retrying in {backoff:?}");
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        let _ = self
            .lb
            .send(&LbRequest::WorkerUp { worker_id: slot.id })
            .await;
    }

    /// Replaces a healthy worker that has loaded many modules: the new
    /// process takes new jobs at once, the old one drains and exits.
    fn recycle(self: &Arc<Self>, slot: &Arc<Slot>) {
        if self.stopping.load(Ordering::SeqCst) || slot.recycling.swap(true, Ordering::SeqCst) {
            return;
        }
        match self.start_process(slot) {
            Ok(Some(old)) => {
                slot.recycles.fetch_add(1, Ordering::Relaxed);
                log::info!(
                    target: PART,
                    "recycling worker {}: pid {} takes new jobs, pid {} finishes its queue",
                    slot.id,
                    slot.current.lock().unwrap().as_ref().map_or(0, |p| p.pid),
                    old.pid
                );
                old.input.lock().unwrap().take();
            }
            Ok(None) => {}
            Err(err) => log::error!(target: PART, "cannot recycle worker {}: {err}", slot.id),
        }
        slot.recycling.store(false, Ordering::SeqCst);
    }

    /// Hands each result line to the job waiting for it, until EOF.
    async fn read_results(
        self: &Arc<Self>,
        slot: &Arc<Slot>,
        process: &Process,
        stdout: ChildStdout,
    ) {
        read_lines(stdout, DEFAULT_MAX_FRAME, |line| {
            let result = match line.and_then(|line| decode::<JobResult>(&line)) {
                Ok(result) => result,
                Err(err @ FrameError::Invalid(_)) => {
                    log::warn!(target: PART, "worker {} sent a bad line: {err}", slot.id);
                    return ControlFlow::Continue(());
                }
                Err(err) => {
                    log::error!(target: PART, "worker {}: {err}", slot.id);
                    return ControlFlow::Break(());
                }
            };
            let threshold = self.spec.recycle_after_loads;
            let is_current = slot
                .current
                .lock()
                .unwrap()
                .as_ref()
                .is_some_and(|c| c.pid == process.pid);
            if threshold > 0 && is_current && result.modules_loaded.unwrap_or(0) >= threshold {
                self.recycle(slot);
            }
            let waiter = process.pending.lock().unwrap().remove(&result.req);
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
            ControlFlow::Continue(())
        })
        .await;
    }
}
