//! Invocations: the whole conversation behind a call in one place. Ask the
//! LB for a worker, send the job over that worker's pipe, wait for its
//! answer within the deadline, and tell the LB the worker is free again.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use faas_proto::{
    Blob, ErrorKind, FailureKind, FunctionMeta, HttpRequest, InvocationRecord, Job, JobResult,
    Lang, LbErrorKind, LbReply, LbRequest, SecretFile, SecretValue, ServiceError,
};
use tokio::sync::oneshot;

use crate::metrics::Hops;

use super::*;

/// What to run and with what: the payload, and for the raw route the HTTP
/// request the function answers.
#[derive(Debug, Default)]
pub struct InvokeRequest {
    pub payload: Blob,
    pub request_id: Option<String>,
    pub http: Option<HttpRequest>,
    /// When the gateway sent the request (Unix µs).
    pub sent_us: Option<u64>,
    /// The platform's variables of an async call (`FAAS_CALL_ID`,
    /// `FAAS_ATTEMPT`).
    pub platform_env: Vec<(String, String)>,
}

/// An invocation that reached a worker (whatever the function did).
#[derive(Debug)]
pub struct Invocation {
    pub worker_id: usize,
    pub result: JobResult,
    /// The raw route's Content-Type, when the function fixes one.
    pub content_type: Option<String>,
    /// What the invocation log kept of the call: its outcome and the
    /// first KiB of its stderr, secrets redacted (async calls keep it).
    pub record: Option<InvocationRecord>,
}

/// Extra time past a job's deadline before the Server stops waiting for the
/// worker and kills it (the worker enforces the deadline itself first).
const DEADLINE_GRACE: Duration = Duration::from_secs(2);

impl Service {
    /// Runs a function on the worker the LB picks.
    pub async fn invoke(
        self: &Arc<Self>,
        function: &str,
        call: InvokeRequest,
    ) -> Result<Invocation, ServiceError> {
        let started = Instant::now();
        let gateway_to_server = call
            .sent_us
            .map(|sent| Duration::from_micros((now_millis() * 1000).saturating_sub(sent)));
        let Some(meta) = self.resolve_shared(function).await else {
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
        let secrets = self.secret_values(&meta)?;
        let mut job = self.job_for(&meta, call);
        job.secrets = secrets
            .iter()
            .map(|(name, value)| SecretFile {
                name: name.clone(),
                value: SecretValue(value.to_vec().into()),
            })
            .collect();
        job.allow = meta.settings.allow.clone();
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
                    record: None,
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
        if let Some(outbound) = &result.outbound {
            self.metrics.outbound(&meta.name, outbound);
        }
        self.job_done(ticket, result.ok).await;
        let mut invocation = Invocation {
            worker_id: ticket.worker_id,
            result,
            content_type,
            record: None,
        };
        log::debug!(
            target: PART,
            "req {req} [{}] {} ended: ok={}",
            request_id.as_deref().unwrap_or("-"),
            meta.id,
            invocation.result.ok
        );
        let record = record_of(&meta, request_id.as_deref(), &invocation, &secrets);
        self.invocations.record(&meta.name, record.clone());
        invocation.record = Some(record);
        Ok(invocation)
    }

    /// The worker's job for a call of `meta`: its limits, payload and (raw
    /// route) request variables.
    fn job_for(&self, meta: &FunctionMeta, call: InvokeRequest) -> Job {
        // The deployer's variables, then the platform's (FAAS_*: never
        // shadowed, the keys are checked at deploy).
        let mut env: Vec<(String, String)> = meta
            .settings
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(http) = &call.http {
            env.extend(http_env(http, meta.settings.pass_auth));
        }
        env.extend(call.platform_env);
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

/// What the invocation log keeps of a call: the first KiB of its stderr,
/// without the call's secret values (the invocation log is the operators'
/// to read, on its route and the dashboard; only the call's own answer
/// carries what the function printed). Redacted before the cut, which
/// could otherwise keep the start of a value.
fn record_of(
    meta: &FunctionMeta,
    request_id: Option<&str>,
    inv: &Invocation,
    secrets: &crate::secrets::Values,
) -> InvocationRecord {
    let result = &inv.result;
    let redacted = faas_proto::redact_secrets(
        result.stderr.as_bytes(),
        secrets.iter().map(|(n, v)| (n.as_str(), &v[..])),
    );
    let stderr = String::from_utf8_lossy(&redacted[..redacted.len().min(1024)]);
    InvocationRecord {
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
        outbound_requests: result.outbound.as_ref().map_or(0, |o| o.requests()),
        outbound_denied: result.outbound.as_ref().map_or(0, |o| o.denied),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
