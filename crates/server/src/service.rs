//! What the Server does for each gateway operation: deploy (validate, store,
//! compile), invoke (ask the LB for a worker, run the job there, report the
//! end to the LB), source, list and stats. Every operation returns a domain
//! result or a [`ServiceError`]; turning those into wire replies is
//! [`sockets`](crate::sockets)' job and into HTTP statuses the gateway's.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use faas_proto::client::Client;
use faas_proto::{
    Blob, DeploySpec, ErrorKind, FailureKind, FunctionMeta, HttpRequest, InvocationRecord, Job,
    JobResult, Lang, LbErrorKind, LbReply, LbRequest, PlatformStats, ServiceError,
};
use sha2::{Digest, Sha256};
use tokio::sync::{oneshot, Semaphore};

use crate::metrics::{Hops, Metrics};
use crate::store::{now_secs, FunctionStore, Removed, StoreError};
use crate::toolchain::{run_with_timeout, BuildError, Toolchains};
use crate::workers::WorkerPool;

const PART: &str = "SERVER";

/// Limits and defaults that apply to every function.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Deadline of an invocation when the function sets none.
    pub default_timeout_ms: u64,
    /// The largest deadline a function may ask for.
    pub max_timeout_ms: u64,
    /// Linear-memory cap of a function when it sets none.
    pub default_memory_mb: u64,
    /// The largest memory cap a function may ask for.
    pub max_memory_mb: u64,
    /// `/tmp` cap of a function when it sets none.
    pub default_tmp_mb: u64,
    /// The largest `/tmp` cap a function may ask for.
    pub max_tmp_mb: u64,
    pub max_output_bytes: u64,
    /// How long one compile may run.
    pub compile_timeout: Duration,
    /// Versions kept per function (older ones are removed).
    pub keep_versions: usize,
    /// The largest compiled module (`code.wasm`) a deploy may produce.
    pub max_module_bytes: u64,
    /// The most a function's `max_concurrency` may be: the worker count.
    pub workers: u64,
}

/// A deleted version this large on disk (its module's code and data, and
/// the artifact holding them again) gets every worker that ran it
/// recycled: a worker never gives a loaded module's memory back, and
/// below this a few leftovers are noise next to a worker's baseline.
const HUGE_VERSION_BYTES: u64 = 16 * 1024 * 1024;

/// Most invocations remembered per function.
const RING: usize = 1000;

/// What to run and with what: the payload, and for the raw route the HTTP
/// request the function answers.
#[derive(Debug, Default)]
pub struct InvokeRequest {
    pub payload: Blob,
    pub request_id: Option<String>,
    pub http: Option<HttpRequest>,
    /// When the gateway sent the request (Unix µs).
    pub sent_us: Option<u64>,
}

/// An invocation that reached a worker (whatever the function did).
#[derive(Debug)]
pub struct Invocation {
    pub worker_id: usize,
    pub result: JobResult,
    /// The raw route's Content-Type, when the function fixes one.
    pub content_type: Option<String>,
}

/// The Server's state, shared by every request.
pub struct Service {
    pub store: FunctionStore,
    pub toolchains: Toolchains,
    pub workers: Arc<WorkerPool>,
    /// The persistent connection to the load balancer.
    pub lb: Arc<Client<LbRequest, LbReply>>,
    pub limits: Limits,
    /// Bounds concurrent compiles so a burst of deploys cannot starve invokes.
    pub compile_slots: Semaphore,
    pub next_job: AtomicU64,
    /// The worker binary, also used to build artifacts.
    pub worker_program: PathBuf,
    /// Each function's recent invocations (at most 1000 each).
    pub invocations: Mutex<HashMap<String, VecDeque<InvocationRecord>>>,
    /// Prometheus metrics and the dashboard's series.
    pub metrics: Metrics,
}

/// Extra time past a job's deadline before the Server stops waiting for the
/// worker and kills it (the worker enforces the deadline itself first).
const DEADLINE_GRACE: Duration = Duration::from_secs(2);

impl Service {
    /// Validates, stores and compiles a function; it is served only once
    /// everything is in place.
    /// `update`: a new version of a deployed function instead of a new
    /// function; older versions beyond `--keep-versions` are removed.
    pub async fn deploy(
        self: &Arc<Self>,
        req: DeploySpec,
        update: bool,
    ) -> Result<FunctionMeta, ServiceError> {
        self.check_deploy(&req)?;
        let reservation = if update {
            self.store.reserve_update(&req.name)
        } else {
            self.store.reserve(&req.name)
        }
        .map_err(store_error)?;
        reservation.create_staging().map_err(store_error)?;
        let source = reservation.staging.join(req.lang.source_file());
        std::fs::write(&source, &req.code).map_err(|e| {
            log::error!(target: PART, "writing {}: {e}", source.display());
            ServiceError::internal("could not write the source to the function store")
        })?;
        let started = Instant::now();
        log::info!(target: PART, "deploy {} ({}): building", req.name, req.lang);
        let lang = req.lang.name();
        self.build(req.lang, &reservation.staging, &source)
            .await
            .inspect(|_| self.metrics.deploy(lang, "ok", Some(started.elapsed())))
            .inspect_err(|e| {
                let result = if e.kind == ErrorKind::CompileFailed {
                    "rejected"
                } else {
                    "failed"
                };
                self.metrics.deploy(lang, result, Some(started.elapsed()));
            })
            .inspect_err(
                |_| log::info!(target: PART, "deploy {} ({}) failed to build", req.name, req.lang),
            )?;
        let meta = FunctionMeta {
            id: reservation.id.clone(),
            name: req.name,
            lang: req.lang,
            created: now_secs(),
            sha256: hex(&Sha256::digest(req.code.as_bytes())),
            wasm: self.toolchains.runs_in_wasm(req.lang),
            settings: req.settings,
            version: 0,
        };
        let meta = reservation.commit(meta).map_err(store_error)?;
        if update {
            let removed = self.store.trim(&meta.name, self.limits.keep_versions);
            self.forget(&removed);
        }
        log::info!(
            target: PART,
            "deployed {} ({}) as {} in {:.0} ms",
            meta.name,
            meta.lang,
            meta.id,
            started.elapsed().as_secs_f64() * 1000.0
        );
        Ok((*meta).clone())
    }

    /// Everything a deploy can be refused for before anything is written.
    fn check_deploy(&self, req: &DeploySpec) -> Result<(), ServiceError> {
        validate_name(&req.name).map_err(ServiceError::bad_request)?;
        if req.code.trim().is_empty() {
            return Err(ServiceError::bad_request(
                "the source code (request body) is empty",
            ));
        }
        if req.lang != Lang::Html && self.toolchains.tool(req.lang).is_none() {
            return Err(ServiceError::unavailable(
                self.toolchains.missing_hint(req.lang),
            ));
        }
        check_limit(
            "timeout_ms",
            req.settings.timeout_ms,
            self.limits.max_timeout_ms,
        )?;
        check_limit(
            "max_memory_mb",
            req.settings.max_memory_mb,
            self.limits.max_memory_mb,
        )?;
        check_limit(
            "max_tmp_mb",
            req.settings.max_tmp_mb,
            self.limits.max_tmp_mb,
        )?;
        check_limit(
            "max_concurrency",
            req.settings.max_concurrency.map(u64::from),
            self.limits.workers,
        )?;
        match &req.settings.content_type {
            Some(ct) if !valid_content_type(ct) => Err(ServiceError::bad_request(
                "content_type must be a media type of at most 128 printable characters",
            )),
            _ => Ok(()),
        }
    }

    /// Runs the language's build step on `source` in `dir`, off the request
    /// threads and at most `--compile-jobs` at once.
    async fn build(
        self: &Arc<Self>,
        lang: Lang,
        dir: &Path,
        source: &Path,
    ) -> Result<(), ServiceError> {
        let _permit = self
            .compile_slots
            .acquire()
            .await
            .expect("semaphore never closed");
        let this = self.clone();
        let (dir, source) = (dir.to_path_buf(), source.to_path_buf());
        tokio::task::spawn_blocking(move || {
            let timeout = this.limits.compile_timeout;
            this.toolchains
                .build(lang, &dir, &source, timeout)
                .map_err(build_error)?;
            if lang.is_compiled() {
                // Before the artifact: cranelift on a huge module is the
                // costly step, and a worker would keep it all in memory.
                check_module_size(&dir.join("code.wasm"), this.limits.max_module_bytes)?;
                // Compile once, here: workers load this artifact instead of
                // running cranelift on their first call. In a child process
                // (`worker compile`), because a Wasmer engine never frees the
                // code it compiled: the Server's memory stays flat.
                this.toolchains
                    .build_artifact(&dir, timeout)
                    .map_err(build_error)?;
            }
            Ok(())
        })
        .await
        .unwrap_or_else(|e| {
            Err(build_error(BuildError::Failed(format!(
                "build task failed: {e}"
            ))))
        })
    }

    /// Runs a function on the worker the LB picks.
    pub async fn invoke(
        &self,
        function: &str,
        call: InvokeRequest,
    ) -> Result<Invocation, ServiceError> {
        let started = Instant::now();
        let gateway_to_server = call
            .sent_us
            .map(|sent| Duration::from_micros((now_millis() * 1000).saturating_sub(sent)));
        let Some(meta) = self.store.resolve(function) else {
            self.metrics.unknown_function();
            return Err(ServiceError::not_found(format!(
                "function '{function}' not found"
            )));
        };
        let content_type = match meta.lang {
            Lang::Html => Some("text/html; charset=utf-8".to_string()),
            _ => meta.settings.content_type.clone(),
        };
        let request_id = call.request_id.clone();
        let job = self.job_for(&meta, call);
        let timeout_ms = job.timeout_ms.unwrap_or(self.limits.default_timeout_ms);
        let dispatched = self.dispatch(&job, &meta).await.inspect_err(|e| {
            if e.kind == ErrorKind::Overloaded {
                self.metrics.rejected(&meta.name);
            }
        })?;
        let lb_decision = started.elapsed();
        let (ticket, rx) = match dispatched {
            Dispatched::Running(ticket, rx) => (ticket, rx),
            Dispatched::Failed(worker_id, result) => {
                return Ok(Invocation {
                    worker_id,
                    result,
                    content_type,
                })
            }
        };
        let req = job.req;
        // The job's line is queued for the worker; free the payload now.
        drop(job);
        log::debug!(target: PART, "req {req} [{}] {} -> worker {}", request_id.as_deref().unwrap_or("-"), meta.id, ticket.worker_id);
        let sent = Instant::now();
        let result = self
            .wait_for_result(req, ticket.worker_id, rx, timeout_ms)
            .await;
        let execution = Duration::from_secs_f64(result.duration_ms.max(0.0) / 1000.0);
        let hops = Hops {
            gateway_to_server,
            lb_decision,
            worker_pipe: sent.elapsed().saturating_sub(execution),
            execution,
            server_total: started.elapsed(),
        };
        self.metrics
            .invocation(&meta.name, result.ok, result.kind, &hops);
        self.job_done(ticket, result.ok).await;
        let invocation = Invocation {
            worker_id: ticket.worker_id,
            result,
            content_type,
        };
        log::debug!(
            target: PART,
            "req {req} [{}] {} ended: ok={}",
            request_id.as_deref().unwrap_or("-"),
            meta.id,
            invocation.result.ok
        );
        self.remember(&meta, request_id.as_deref(), &invocation);
        Ok(invocation)
    }

    /// The worker's job for a call of `meta`: its limits, payload and (raw
    /// route) request variables.
    fn job_for(&self, meta: &FunctionMeta, call: InvokeRequest) -> Job {
        let env = call
            .http
            .as_ref()
            .map(|http| http_env(http, meta.settings.pass_auth))
            .unwrap_or_default();
        Job {
            payload: Some(call.payload),
            env,
            request_id: call.request_id,
            lang: Some(meta.lang),
            timeout_ms: Some(
                meta.settings
                    .timeout_ms
                    .unwrap_or(self.limits.default_timeout_ms),
            ),
            max_memory_mb: Some(
                meta.settings
                    .max_memory_mb
                    .unwrap_or(self.limits.default_memory_mb),
            ),
            max_output_bytes: Some(self.limits.max_output_bytes),
            max_tmp_mb: Some(
                meta.settings
                    .max_tmp_mb
                    .unwrap_or(self.limits.default_tmp_mb),
            ),
            ..Job::new(
                self.next_job.fetch_add(1, Ordering::Relaxed),
                meta.id.clone(),
            )
        }
    }

    /// Hands `job` to the worker the LB picks. A worker the LB picked may
    /// have died a moment before: then the LB is asked again (it learns of
    /// the death and routes around it).
    async fn dispatch(&self, job: &Job, meta: &FunctionMeta) -> Result<Dispatched, ServiceError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let ticket = self.pick_worker(job, meta).await?;
            match self.workers.dispatch(ticket.worker_id, job) {
                Ok(rx) => return Ok(Dispatched::Running(ticket, rx)),
                Err(err) if attempts < 3 => {
                    log::warn!(target: PART, "req {}: {err}; asking the LB again", job.req);
                    self.job_done(ticket, false).await;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(err) => {
                    self.job_done(ticket, false).await;
                    let result =
                        JobResult::failure(job.req, FailureKind::WorkerCrashed, err.to_string());
                    return Ok(Dispatched::Failed(ticket.worker_id, result));
                }
            }
        }
    }

    /// The job's result, or a timeout (and the worker killed) when the
    /// worker fails to stop the function itself.
    async fn wait_for_result(
        &self,
        req: u64,
        worker_id: usize,
        rx: oneshot::Receiver<JobResult>,
        timeout_ms: u64,
    ) -> JobResult {
        let wait = Duration::from_millis(timeout_ms) + DEADLINE_GRACE;
        match tokio::time::timeout(wait, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => JobResult::failure(
                req,
                FailureKind::WorkerCrashed,
                format!("worker {worker_id} stopped before answering"),
            ),
            Err(_) => {
                // The process is replaced so the slot serves again.
                self.workers.kill(worker_id);
                JobResult::failure(
                    req,
                    FailureKind::Timeout,
                    format!("timed out after {timeout_ms} ms"),
                )
            }
        }
    }

    /// Asks the LB which worker runs `job` (a call of `meta`); the call
    /// counts against the function's fair share.
    async fn pick_worker(&self, job: &Job, meta: &FunctionMeta) -> Result<Ticket, ServiceError> {
        // The payload stays here rather than crossing the LB.
        let decision = self
            .lb
            .call(|req| LbRequest::Invoke {
                req,
                function: job.function.clone(),
                payload: None,
                request_id: job.request_id.clone(),
                name: Some(meta.name.clone()),
                max_concurrency: meta.settings.max_concurrency,
            })
            .await;
        match decision {
            Ok(LbReply::ForwardToWorker { req, worker_id, .. }) => Ok(Ticket {
                lb_req: req,
                worker_id,
            }),
            Ok(LbReply::Error { kind, error, .. }) => Err(lb_refusal(kind, &error)),
            Ok(other) => {
                log::error!(target: PART, "unexpected LB reply {other:?}");
                Err(ServiceError::internal(
                    "load balancer gave an unexpected answer",
                ))
            }
            Err(_) => Err(ServiceError::unavailable("load balancer unavailable")),
        }
    }

    /// Tells the LB a job has ended (FIFO and WEIGHTED count on it).
    /// Straight onto the LB connection (no hop through the events task).
    async fn job_done(&self, ticket: Ticket, ok: bool) {
        let done = LbRequest::JobDone {
            req: ticket.lb_req,
            worker_id: ticket.worker_id,
            ok,
        };
        let _ = self.lb.send(&done).await;
    }

    /// The stored source of a function, by name or id.
    pub fn source(&self, name: &str) -> Result<(Lang, String), ServiceError> {
        let meta = self
            .store
            .resolve(name)
            .ok_or_else(|| ServiceError::not_found(format!("function '{name}' not found")))?;
        let code = self.store.source(&meta).map_err(|err| {
            log::error!(target: PART, "{err}");
            ServiceError::internal("could not read the stored source")
        })?;
        Ok((meta.lang, code))
    }

    /// Removes a function (every version) or, given a version id, that
    /// version; workers drop what they cached of it. Returns the ids.
    pub fn delete(&self, name_or_id: &str) -> Result<Vec<String>, ServiceError> {
        let removed = if !self.store.is_deployed(name_or_id) {
            vec![self.store.remove_version(name_or_id).map_err(store_error)?]
        } else {
            self.invocations.lock().unwrap().remove(name_or_id);
            self.metrics.forget_function(name_or_id);
            self.store
                .remove_function(name_or_id)
                .map_err(store_error)?
        };
        self.forget(&removed);
        let removed = removed
            .iter()
            .map(|r| r.meta.id.clone())
            .collect::<Vec<_>>();
        log::info!(target: PART, "deleted {}", removed.join(", "));
        Ok(removed)
    }

    /// A function's versions, newest first.
    pub fn versions(&self, name: &str) -> Result<Vec<FunctionMeta>, ServiceError> {
        let versions = self.store.versions(name);
        if versions.is_empty() {
            return Err(ServiceError::not_found(format!(
                "function '{name}' not found"
            )));
        }
        Ok(versions.iter().map(|m| (**m).clone()).collect())
    }

    /// A function's last `limit` invocations, newest first.
    pub fn invocations(
        &self,
        name: &str,
        limit: usize,
    ) -> Result<Vec<InvocationRecord>, ServiceError> {
        if !self.store.is_deployed(name) {
            return Err(ServiceError::not_found(format!(
                "function '{name}' not found"
            )));
        }
        let rings = self.invocations.lock().unwrap();
        Ok(rings
            .get(name)
            .map(|ring| ring.iter().rev().take(limit.min(RING)).cloned().collect())
            .unwrap_or_default())
    }

    /// Remembers a call in its function's ring (bounded).
    fn remember(&self, meta: &FunctionMeta, request_id: Option<&str>, inv: &Invocation) {
        let result = &inv.result;
        let stderr =
            String::from_utf8_lossy(&result.stderr.as_bytes()[..result.stderr.len().min(1024)]);
        let record = InvocationRecord {
            request_id: request_id.unwrap_or_default().to_string(),
            id: meta.id.clone(),
            status: match result.kind {
                None if result.ok => "ok".to_string(),
                None => "error".to_string(),
                Some(kind) => serde_json::to_value(kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
            },
            exit_code: result.exit_code,
            duration_ms: result.duration_ms,
            worker_id: inv.worker_id,
            time_ms: now_millis(),
            stderr: stderr.into_owned(),
        };
        let mut rings = self.invocations.lock().unwrap();
        let ring = rings.entry(meta.name.clone()).or_default();
        if ring.len() >= RING {
            ring.pop_front();
        }
        ring.push_back(record);
    }

    /// Tells every worker to drop what it cached of removed versions, and
    /// recycles the workers that ran a huge one: dropping a module from the
    /// cache does not give its memory back to the system.
    fn forget(&self, removed: &[Removed]) {
        if removed.is_empty() {
            return;
        }
        let ids: Vec<String> = removed.iter().map(|r| r.meta.id.clone()).collect();
        self.workers.forget(&ids);
        let huge: Vec<String> = removed
            .iter()
            .filter(|r| r.bytes >= HUGE_VERSION_BYTES)
            .map(|r| r.meta.id.clone())
            .collect();
        if !huge.is_empty() {
            let recycled = self.workers.recycle_runners_of(&huge);
            if !recycled.is_empty() {
                log::info!(
                    target: PART,
                    "recycling workers {recycled:?}: they ran {}, deleted with {} MiB",
                    huge.join(", "),
                    removed.iter().map(|r| r.bytes).sum::<u64>() / (1024 * 1024)
                );
            }
        }
    }

    /// The Prometheus exposition text.
    pub async fn metrics_text(&self) -> String {
        let stats = self.stats().await.ok();
        self.metrics.render(stats.as_ref(), self.store.len())
    }

    /// The dashboard's data: the live series, the functions with their
    /// figures, and the workers.
    pub async fn dashboard(&self) -> serde_json::Value {
        let mut data = self.metrics.dashboard();
        let figures = data["functions"].take();
        let mut functions: Vec<serde_json::Value> = self
            .store
            .latest_with_counts()
            .into_iter()
            .map(|(meta, versions)| {
                let f = &figures[&meta.name];
                serde_json::json!({
                    "name": meta.name, "lang": meta.lang, "id": meta.id, "versions": versions,
                    "calls": f["calls"].as_u64().unwrap_or(0), "errors": f["errors"].as_u64().unwrap_or(0),
                    "p50_ms": f["p50_ms"].as_f64().unwrap_or(0.0), "last_ms": f["last_ms"].as_u64(),
                })
            })
            .collect();
        functions.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        data["functions"] = serde_json::Value::Array(functions);
        data["stats"] = serde_json::to_value(self.stats().await.ok()).unwrap_or_default();
        data
    }

    /// Every deployed function, oldest first.
    pub fn list(&self) -> Vec<FunctionMeta> {
        self.store.list().iter().map(|m| (**m).clone()).collect()
    }

    /// The LB's counters with the workers' processes.
    pub async fn stats(&self) -> Result<PlatformStats, ServiceError> {
        let lb = self.lb.call(|req| LbRequest::Stats { req }).await;
        let Ok(LbReply::Stats {
            strategy,
            queue_len,
            workers,
            ..
        }) = lb
        else {
            return Err(ServiceError::unavailable("load balancer unavailable"));
        };
        Ok(PlatformStats {
            strategy,
            queue_len,
            workers,
            worker_pids: self.workers.pids(),
            worker_restarts: self.workers.restarts(),
            worker_recycles: self.workers.recycles(),
            functions: self.store.len(),
        })
    }

    /// Rebuilds artifacts that are missing or were built by another Wasmer
    /// (after an upgrade), with `worker refresh-artifacts`. Runs once at
    /// start, off the request path; until it reaches a function, workers
    /// compile that function's `code.wasm` themselves.
    pub fn refresh_artifacts(&self) {
        let mut cmd = std::process::Command::new(&self.worker_program);
        crate::build_sandbox::clear_env(&mut cmd);
        cmd.arg("--functions-dir")
            .arg(self.store.dir())
            .arg("refresh-artifacts");
        match run_with_timeout(cmd, Duration::from_secs(3600)) {
            Ok(Some((status, out))) if status.success() => {
                let summary = out
                    .lines()
                    .rfind(|l| l.starts_with("rebuilt "))
                    .unwrap_or("");
                let rebuilt = summary.split_whitespace().nth(1).unwrap_or("0");
                if rebuilt != "0" {
                    log::info!(target: PART, "rebuilt {rebuilt} stale artifacts");
                }
            }
            Ok(Some((_, out))) => {
                log::error!(target: PART, "refreshing artifacts failed: {out}")
            }
            Ok(None) => log::error!(target: PART, "refreshing artifacts timed out"),
            Err(err) => log::error!(target: PART, "cannot refresh artifacts: {err}"),
        }
    }
}

/// A worker the LB handed out, under the LB's request id (the job is
/// reported done with it).
#[derive(Debug, Clone, Copy)]
struct Ticket {
    lb_req: u64,
    worker_id: usize,
}

/// Where a job went.
enum Dispatched {
    Running(Ticket, oneshot::Receiver<JobResult>),
    /// It could not be handed to any worker.
    Failed(usize, JobResult),
}

/// Most `FAAS_HTTP_HEADER_*` variables a call gets, and their total size:
/// a header flood is cut, the call still runs.
const MAX_HEADER_VARS: usize = 64;
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// The variables that describe a raw-route request to the function:
/// method, path and query as received, and the headers (never `Cookie`;
/// without `Authorization` and `Proxy-Authorization` unless the function
/// asked for them; the gateway has already withheld the platform's tokens).
/// `FAAS_REQUEST_ID` is the worker's to set, on every route.
fn http_env(http: &HttpRequest, pass_auth: bool) -> Vec<(String, String)> {
    let mut env = vec![
        ("FAAS_HTTP_METHOD".to_string(), http.method.clone()),
        ("FAAS_HTTP_PATH".to_string(), http.path.clone()),
        ("FAAS_HTTP_QUERY".to_string(), http.query.clone()),
    ];
    let mut budget = MAX_HEADER_BYTES;
    let mut passed = 0;
    for (name, value) in &http.headers {
        let secret = ["authorization", "proxy-authorization"]
            .iter()
            .any(|s| name.eq_ignore_ascii_case(s));
        // Never cookies: a browser sends a host's cookies whatever the
        // port, so a function would receive other local apps' sessions
        // (HttpOnly ones included); a function cannot set one anyway.
        let cookie = name.eq_ignore_ascii_case("cookie");
        let plain = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if (secret && !pass_auth) || cookie || !plain || value.contains('\0') {
            continue;
        }
        let var = format!(
            "FAAS_HTTP_HEADER_{}",
            name.to_ascii_uppercase().replace('-', "_")
        );
        let cost = var.len() + value.len();
        if passed >= MAX_HEADER_VARS || cost > budget {
            break;
        }
        budget -= cost;
        passed += 1;
        env.push((var, value.clone()));
    }
    env
}

/// What an LB refusal means for the client: a full queue is an overload
/// (503 with `Retry-After`), no worker up makes the platform unavailable
/// (503); any other refusal is the Server's own fault (500), and the LB's
/// words go to the log, not to the client.
fn lb_refusal(kind: LbErrorKind, message: &str) -> ServiceError {
    match kind {
        LbErrorKind::QueueFull => {
            ServiceError::new(ErrorKind::Overloaded, format!("overloaded: {message}"))
        }
        LbErrorKind::NoWorker => ServiceError::unavailable(format!(
            "no worker can take the call: {message} (workers are being restarted; see the server log)"
        )),
        LbErrorKind::Invalid => {
            log::error!(target: PART, "the load balancer refused a call: {message}");
            ServiceError::internal("the load balancer refused the call (see the server log)")
        }
    }
}

/// A Content-Type to answer with: printable ASCII, a `/`, at most 128.
fn valid_content_type(ct: &str) -> bool {
    ct.len() <= 128 && ct.contains('/') && ct.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// A per-function limit, when given, is between 1 and `max`.
fn check_limit(name: &str, value: Option<u64>, max: u64) -> Result<(), ServiceError> {
    match value {
        Some(v) if v == 0 || v > max => Err(ServiceError::bad_request(format!(
            "{name} must be between 1 and {max}"
        ))),
        _ => Ok(()),
    }
}

/// Function names: letters, digits, `_` and `-`, 1 to 64 of them.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the function name is empty".into());
    }
    if name.len() > 64 {
        return Err(format!(
            "the function name is {} characters long; 64 at most",
            name.len()
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(format!(
            "invalid function name '{name}': use letters, digits, '_' and '-'"
        ));
    }
    Ok(())
}

fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn store_error(err: StoreError) -> ServiceError {
    match err {
        StoreError::NameTaken(_) => ServiceError::new(ErrorKind::NameTaken, err.to_string()),
        StoreError::NotFound(_) => ServiceError::not_found(err.to_string()),
        StoreError::IsLatest(_) => ServiceError::new(ErrorKind::NameTaken, err.to_string()),
        StoreError::Full(_) => ServiceError::new(ErrorKind::InsufficientStorage, err.to_string()),
        StoreError::Io { .. } => {
            log::error!(target: PART, "{err}");
            ServiceError::internal("the function store could not be written")
        }
    }
}

/// A compiled module larger than `--max-module-mb` is refused (422) before
/// anything else is done with it.
fn check_module_size(module: &Path, max_bytes: u64) -> Result<(), ServiceError> {
    let bytes = std::fs::metadata(module).map(|m| m.len()).map_err(|e| {
        log::error!(target: PART, "{}: {e}", module.display());
        ServiceError::internal("the compiler left no module")
    })?;
    if bytes <= max_bytes {
        return Ok(());
    }
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    Err(ServiceError::new(
        ErrorKind::CompileFailed,
        format!(
            "the compiled module is {:.1} MiB; --max-module-mb allows {:.0} MiB (large static data counts: build it at run time instead)",
            mib(bytes),
            mib(max_bytes)
        ),
    ))
}

fn build_error(err: BuildError) -> ServiceError {
    match err {
        BuildError::Missing(msg) => ServiceError::unavailable(msg),
        BuildError::Rejected(msg) => ServiceError::new(
            ErrorKind::CompileFailed,
            format!("compilation failed: {msg}"),
        )
        .with_details(msg),
        BuildError::Failed(msg) => {
            log::error!(target: PART, "build failed: {msg}");
            ServiceError::internal(msg)
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        assert!(validate_name("hello").is_ok());
        assert!(validate_name("a-b_C9").is_ok());
        assert!(validate_name(&"x".repeat(64)).is_ok());
        assert!(validate_name(&"x".repeat(65)).is_err());
        assert!(validate_name("").is_err());
        assert!(validate_name("../etc").is_err());
        assert!(validate_name("a b").is_err());
        assert!(validate_name("é").is_err());
    }

    #[test]
    fn lb_refusals_keep_their_kind() {
        let full = lb_refusal(LbErrorKind::QueueFull, "queue full (3 jobs waiting)");
        assert_eq!(full.kind, ErrorKind::Overloaded);
        assert!(full.message.contains("queue full"), "{}", full.message);
        let none = lb_refusal(LbErrorKind::NoWorker, "no worker is up");
        assert_eq!(none.kind, ErrorKind::Unavailable);
        assert!(none.message.contains("no worker is up"), "{}", none.message);
        // Anything else is the Server's fault: 500, and the LB's words stay
        // in the log.
        let other = lb_refusal(LbErrorKind::Invalid, "request 7 is already in progress");
        assert_eq!(other.kind, ErrorKind::Internal);
        assert!(!other.message.contains("request 7"), "{}", other.message);
    }

    #[test]
    fn the_raw_routes_variables_leave_the_request_id_to_the_worker() {
        let http = HttpRequest {
            method: "GET".into(),
            path: "/a".into(),
            query: "q=1".into(),
            headers: vec![("x-request-id".into(), "abc".into())],
        };
        let env = http_env(&http, false);
        assert!(env.iter().all(|(k, _)| k != "FAAS_REQUEST_ID"), "{env:?}");
        assert!(env.contains(&("FAAS_HTTP_HEADER_X_REQUEST_ID".into(), "abc".into())));
    }

    #[test]
    fn limits_are_checked() {
        assert!(check_limit("t", None, 10).is_ok());
        assert!(check_limit("t", Some(10), 10).is_ok());
        assert!(check_limit("t", Some(0), 10).is_err());
        assert_eq!(
            check_limit("t", Some(11), 10).unwrap_err().kind,
            ErrorKind::BadRequest
        );
    }

    proptest::proptest! {
        #[test]
        fn names_are_accepted_exactly_when_they_follow_the_rule(name in "\\PC{0,70}") {
            let valid = (1..=64).contains(&name.len())
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            proptest::prop_assert_eq!(validate_name(&name).is_ok(), valid);
        }
    }
}
