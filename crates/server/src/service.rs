//! What the Server does with each gateway request: deploy (validate, store,
//! compile), invoke (ask the LB for a worker, run the job there, report the
//! end to the LB), source, list and stats. Every answer is a
//! [`ServerReply`] carrying the HTTP status the gateway will use.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use faas_proto::client::Client;
use faas_proto::{FailureKind, Job, JobResult, LbReply, LbRequest, ServerReply, ServerRequest};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::lang::Lang;
use crate::store::{now_secs, FunctionMeta, FunctionStore, StoreError};
use crate::toolchain::{build_artifact, missing_hint, run_with_timeout, BuildError, Toolchains};
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
    pub max_output_bytes: u64,
    /// How long one compile may run.
    pub compile_timeout: Duration,
}

/// The Server's state, shared by every request.
pub struct Service {
    pub store: FunctionStore,
    pub toolchains: Toolchains,
    pub workers: Arc<WorkerPool>,
    /// The persistent connection to the load balancer.
    pub lb: Client<LbRequest, LbReply>,
    pub limits: Limits,
    /// Bounds concurrent compiles so a burst of deploys cannot starve invokes.
    pub compile_slots: Semaphore,
    pub cache_dir: std::path::PathBuf,
    pub next_job: AtomicU64,
    /// The worker binary, also used to build artifacts.
    pub worker_program: std::path::PathBuf,
}

/// Extra time past a job's deadline before the Server stops waiting for the
/// worker and kills it (the worker enforces the deadline itself first).
const DEADLINE_GRACE: Duration = Duration::from_secs(2);

impl Service {
    pub async fn handle(self: &Arc<Self>, request: ServerRequest) -> ServerReply {
        match request {
            ServerRequest::Deploy {
                req,
                name,
                lang,
                code,
                timeout_ms,
                max_memory_mb,
            } => self
                .deploy(&name, &lang, code, timeout_ms, max_memory_mb)
                .await
                .unwrap_or_else(|e| e)
                .with_req(req),
            ServerRequest::Invoke {
                req,
                function,
                payload,
            } => self.invoke(&function, payload).await.with_req(req),
            ServerRequest::GetSource { req, name } => self.source(&name).with_req(req),
            ServerRequest::List { req } => {
                let all = self.store.list();
                let functions: Vec<&FunctionMeta> = all.iter().map(|m| &**m).collect();
                ServerReply::json(req, 200, json!({"ok": true, "functions": functions}))
            }
            ServerRequest::Stats { req } => self.stats().await.with_req(req),
        }
    }

    async fn deploy(
        self: &Arc<Self>,
        name: &str,
        lang: &str,
        code: String,
        timeout_ms: Option<u64>,
        max_memory_mb: Option<u64>,
    ) -> Result<ServerReply, ServerReply> {
        validate_name(name).map_err(|e| ServerReply::error(0, 400, e))?;
        let lang: Lang = lang
            .parse()
            .map_err(|e: String| ServerReply::error(0, 400, e))?;
        if code.trim().is_empty() {
            return Err(ServerReply::error(
                0,
                400,
                "the source code (request body) is empty",
            ));
        }
        if lang != Lang::Html && self.toolchains.tool(lang).is_none() {
            return Err(ServerReply::error(0, 503, missing_hint(lang)));
        }
        if let Some(t) = timeout_ms {
            if t == 0 || t > self.limits.max_timeout_ms {
                return Err(ServerReply::error(
                    0,
                    400,
                    format!(
                        "timeout_ms must be between 1 and {}",
                        self.limits.max_timeout_ms
                    ),
                ));
            }
        }
        if let Some(m) = max_memory_mb {
            if m == 0 || m > self.limits.max_memory_mb {
                return Err(ServerReply::error(
                    0,
                    400,
                    format!(
                        "max_memory_mb must be between 1 and {}",
                        self.limits.max_memory_mb
                    ),
                ));
            }
        }

        let reservation = self.store.reserve(name).map_err(store_error)?;
        reservation.create_staging().map_err(store_error)?;
        let source = reservation
            .staging
            .join(format!("code.{}", lang.extension()));
        std::fs::write(&source, &code).map_err(|e| {
            log::error!(target: PART, "writing {}: {e}", source.display());
            ServerReply::error(0, 500, "could not write the source to the function store")
        })?;

        let started = std::time::Instant::now();
        let permit = self
            .compile_slots
            .acquire()
            .await
            .expect("semaphore never closed");
        let this = self.clone();
        let staging = reservation.staging.clone();
        let build = tokio::task::spawn_blocking(move || {
            this.toolchains.build(
                lang,
                &staging,
                &source,
                &this.cache_dir,
                this.limits.compile_timeout,
            )?;
            if lang.is_wasm() {
                // Compile once, here: workers load this artifact instead of
                // running cranelift on their first call. In a child process
                // (`worker compile`), because a Wasmer engine never frees the
                // code it compiled: the Server's memory stays flat.
                build_artifact(&this.worker_program, &staging, this.limits.compile_timeout)?;
            }
            Ok(())
        })
        .await
        .unwrap_or_else(|e| Err(BuildError::Failed(format!("build task failed: {e}"))));
        drop(permit);
        match build {
            Ok(()) => {}
            Err(BuildError::Missing(msg)) => return Err(ServerReply::error(0, 503, msg)),
            Err(BuildError::Rejected(msg)) => {
                log::info!(target: PART, "deploy {name} ({lang}) rejected by the compiler");
                return Err(ServerReply::json(
                    0,
                    422,
                    json!({"ok": false, "error": format!("compilation failed: {msg}"), "details": msg}),
                ));
            }
            Err(BuildError::Failed(msg)) => {
                log::error!(target: PART, "deploy {name} ({lang}): {msg}");
                return Err(ServerReply::error(0, 500, msg));
            }
        }

        let meta = FunctionMeta {
            id: reservation.id.clone(),
            name: name.to_string(),
            lang,
            created: now_secs(),
            sha256: hex(&Sha256::digest(code.as_bytes())),
            wasm: lang.is_wasm(),
            timeout_ms,
            max_memory_mb,
        };
        let meta = reservation.commit(meta).map_err(store_error)?;
        log::info!(
            target: PART,
            "deployed {} ({lang}) as {} in {:.0} ms",
            meta.name,
            meta.id,
            started.elapsed().as_secs_f64() * 1000.0
        );
        Ok(ServerReply::json(
            0,
            201,
            json!({"ok": true, "id": meta.id, "name": meta.name, "lang": meta.lang, "wasm": meta.wasm}),
        ))
    }

    async fn invoke(&self, function: &str, payload: String) -> ServerReply {
        let Some(meta) = self.store.resolve(function) else {
            return ServerReply::error(0, 404, format!("function '{function}' not found"));
        };
        let timeout_ms = meta.timeout_ms.unwrap_or(self.limits.default_timeout_ms);
        let job_id = self.next_job.fetch_add(1, Ordering::Relaxed);

        let job = Job {
            req: job_id,
            function: meta.id.clone(),
            payload: Some(payload),
            lang: Some(meta.lang.name().to_string()),
            timeout_ms: Some(timeout_ms),
            max_memory_mb: Some(meta.max_memory_mb.unwrap_or(self.limits.default_memory_mb)),
            max_output_bytes: Some(self.limits.max_output_bytes),
        };
        // A worker the LB picked may have died a moment before: ask again
        // (the LB learns of the death and routes around it).
        let mut attempts = 0;
        let (worker_id, rx) = loop {
            attempts += 1;
            let worker_id = match self.pick_worker(&meta.id).await {
                Ok(worker_id) => worker_id,
                Err(reply) => return reply,
            };
            match self.workers.dispatch(worker_id, &job) {
                Ok(rx) => break (worker_id, rx),
                Err(err) if attempts < 3 => {
                    log::warn!(target: PART, "req {job_id}: {err}; asking the LB again");
                    self.job_done(job_id, worker_id, false).await;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(err) => {
                    self.job_done(job_id, worker_id, false).await;
                    return invoke_reply(
                        JobResult::failure(job_id, FailureKind::WorkerCrashed, err.to_string()),
                        worker_id,
                    );
                }
            }
        };
        // The job's line is queued for the worker; free the payload now.
        drop(job);
        let wait = Duration::from_millis(timeout_ms) + DEADLINE_GRACE;
        let result = match tokio::time::timeout(wait, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => JobResult::failure(
                job_id,
                FailureKind::WorkerCrashed,
                format!("worker {worker_id} stopped before answering"),
            ),
            Err(_) => {
                // The worker did not stop the function itself: the process
                // is replaced so the slot serves again.
                self.workers.kill(worker_id);
                JobResult::failure(
                    job_id,
                    FailureKind::Timeout,
                    format!("timed out after {timeout_ms} ms"),
                )
            }
        };
        self.job_done(job_id, worker_id, result.ok).await;
        invoke_reply(result, worker_id)
    }

    /// Asks the LB which worker runs `function`'s next job.
    async fn pick_worker(&self, function: &str) -> Result<usize, ServerReply> {
        // The payload stays here rather than crossing the LB.
        let decision = self
            .lb
            .call(|req| LbRequest::Invoke {
                req,
                function: function.to_string(),
                payload: None,
            })
            .await;
        match decision {
            Ok(LbReply::ForwardToWorker { worker_id, .. }) => Ok(worker_id),
            Ok(LbReply::Error { error, .. }) => {
                Err(ServerReply::error(0, 503, format!("overloaded: {error}")))
            }
            Ok(other) => {
                log::error!(target: PART, "unexpected LB reply {other:?}");
                Err(ServerReply::error(
                    0,
                    500,
                    "load balancer gave an unexpected answer",
                ))
            }
            Err(_) => Err(ServerReply::error(0, 503, "load balancer unavailable")),
        }
    }

    /// Tells the LB a job has ended (FIFO and WEIGHTED count on it).
    /// Straight onto the LB connection (no hop through the events task).
    async fn job_done(&self, req: u64, worker_id: usize, ok: bool) {
        let _ = self
            .lb
            .send(&LbRequest::JobDone { req, worker_id, ok })
            .await;
    }

    /// Rebuilds artifacts that are missing or were built by another Wasmer
    /// (after an upgrade), with `worker refresh-artifacts`. Runs once at
    /// start, off the request path; until it reaches a function, workers
    /// compile that function's `code.wasm` themselves.
    pub fn refresh_artifacts(&self) {
        let mut cmd = std::process::Command::new(&self.worker_program);
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

    fn source(&self, name: &str) -> ServerReply {
        let Some(meta) = self.store.resolve(name) else {
            return ServerReply::error(0, 404, format!("function '{name}' not found"));
        };
        match self.store.source(&meta) {
            Ok(code) => ServerReply {
                req: 0,
                status: 200,
                body: serde_json::Value::String(code),
                text: true,
            },
            Err(err) => {
                log::error!(target: PART, "{err}");
                ServerReply::error(0, 500, "could not read the stored source")
            }
        }
    }

    async fn stats(&self) -> ServerReply {
        let lb = self.lb.call(|req| LbRequest::Stats { req }).await;
        let Ok(LbReply::Stats {
            strategy,
            queue_len,
            workers,
            ..
        }) = lb
        else {
            return ServerReply::error(0, 503, "load balancer unavailable");
        };
        ServerReply::json(
            0,
            200,
            json!({
                "ok": true,
                "strategy": strategy,
                "queue_len": queue_len,
                "workers": workers,
                "worker_pids": self.workers.pids(),
                "worker_restarts": self.workers.restarts(),
                "worker_recycles": self.workers.recycles(),
                "functions": self.store.len(),
            }),
        )
    }
}

/// Maps a job's result to the client's answer.
fn invoke_reply(result: JobResult, worker_id: usize) -> ServerReply {
    let mut body = json!({
        "ok": result.ok,
        "output": result.output,
        "stderr": result.stderr,
        "exit_code": result.exit_code,
        "worker_id": worker_id,
        // Microsecond precision is all a client can use.
        "duration_ms": (result.duration_ms * 1000.0).round() / 1000.0,
    });
    if result.truncated {
        body["truncated"] = json!(true);
    }
    if result.ok {
        return ServerReply::json(0, 200, body);
    }
    let status = match result.kind {
        Some(FailureKind::Timeout) => 504,
        Some(FailureKind::NotFound) => 404,
        Some(FailureKind::WorkerCrashed) => 502,
        _ => 500,
    };
    body["error"] = json!(result.error.unwrap_or_else(|| "function failed".into()));
    ServerReply::json(0, status, body)
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
            "invalid function name '{name}': use letters, digits, '_' and '-' only"
        ));
    }
    Ok(())
}

fn store_error(err: StoreError) -> ServerReply {
    match err {
        StoreError::NameTaken(_) => ServerReply::error(0, 409, err.to_string()),
        StoreError::Io { .. } => {
            log::error!(target: PART, "{err}");
            ServerReply::error(0, 500, "the function store could not be written")
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

trait WithReq {
    fn with_req(self, req: u64) -> Self;
}

impl WithReq for ServerReply {
    fn with_req(mut self, req: u64) -> Self {
        self.req = req;
        self
    }
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
    fn failures_map_to_statuses() {
        let cases = [
            (FailureKind::Timeout, 504),
            (FailureKind::WorkerCrashed, 502),
            (FailureKind::NotFound, 404),
            (FailureKind::Trap, 500),
            (FailureKind::Exit, 500),
        ];
        for (kind, status) in cases {
            let reply = invoke_reply(JobResult::failure(1, kind, "x"), 2);
            assert_eq!(reply.status, status, "{kind:?}");
            assert_eq!(reply.body["ok"], false);
            assert_eq!(reply.body["worker_id"], 2);
        }
        let ok = invoke_reply(JobResult::success(1, "hi".into(), String::new(), 0, 1.0), 3);
        assert_eq!(ok.status, 200);
        assert_eq!(ok.body["output"], "hi");
    }
}
