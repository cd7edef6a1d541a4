//! Background work: async calls (`POST /async/NAME`) are stored in the
//! queue ([`faas_queue`]) before the client hears 202, and a dispatcher
//! task runs the due ones through the same path as a sync call (the LB
//! picks the worker, so a function's `max_concurrency` counts both). At
//! most `--async-concurrency` async calls run at once, so sync traffic
//! always finds workers. A failed attempt (non-zero exit, timeout, worker
//! crash) is retried with the function's backoff until its `retries` are
//! spent or the call is older than its `max_age_s`; then it is dead. A
//! call that ends (succeeded or dead) with an `X-Callback-Url` has its
//! outcome delivered there ([`super::callback`]).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use faas_proto::{ErrorKind, FunctionSettings, HttpRequest, Operation, Reply, ServiceError};
use faas_queue::{Attempt, Call, NewCall, Queue, QueueError, RetryPolicy};
use tokio::sync::{Notify, Semaphore};

use super::*;

/// The queue file, under the functions directory: hidden (a leading dot),
/// so that nothing that lists functions there takes it for one (function
/// ids never start with a dot).
pub const QUEUE_FILE: &str = ".async-calls.redb";
/// Longest the dispatcher sleeps without looking at the queue.
const IDLE_WAIT: Duration = Duration::from_secs(60);
/// How soon a call the platform could not start (overloaded, no worker
/// up) is tried again; not counted as an attempt.
const REQUEUE_DELAY_MS: u64 = 1000;

/// The queue and the dispatcher's bounds.
pub struct Background {
    pub queue: Arc<dyn Queue>,
    /// Woken when a call is queued or an attempt ends.
    wake: Notify,
    /// One permit per async call in flight.
    slots: Arc<Semaphore>,
    /// How long finished calls are kept (`--keep-results-s`).
    keep_results: Duration,
    /// The schedules' fired ticks.
    pub schedules: super::schedule::Schedules,
    /// What delivers `X-Callback-Url` callbacks (none: a queue opened
    /// without them, which refuses callback URLs).
    pub callbacks: Option<super::Callbacks>,
}

impl Background {
    /// Opens the queue: in NATS JetStream at `nats_url` (shared by the
    /// replicas), else the embedded one in `functions_dir`.
    pub fn open(
        functions_dir: &Path,
        nats_url: Option<&str>,
        in_flight: usize,
        keep_results: Duration,
    ) -> Result<Self, QueueError> {
        let queue: Arc<dyn Queue> = match nats_url {
            Some(url) => {
                let queue = faas_queue::NatsQueue::connect(url)?;
                log::info!(target: PART, "async calls in NATS JetStream at {}", queue.address());
                Arc::new(queue)
            }
            None => Arc::new(faas_queue::EmbeddedQueue::open(
                &functions_dir.join(QUEUE_FILE),
            )?),
        };
        let (queued, _) = queue.depth();
        if queued > 0 {
            log::info!(target: PART, "{queued} async calls waiting in the queue");
        }
        Ok(Self {
            queue,
            wake: Notify::new(),
            slots: Arc::new(Semaphore::new(in_flight.max(1))),
            keep_results,
            schedules: super::schedule::Schedules::open(functions_dir),
            callbacks: None,
        })
    }

    /// Tells the dispatcher a call was queued.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// How many calls are queued, running and dead, for the metrics and
    /// the dashboard.
    pub fn figures(&self) -> crate::metrics::AsyncFigures {
        let (queued, running) = self.queue.depth();
        let dead = blocking(|| self.queue.dead_count()).unwrap_or_else(|err| {
            log::error!(target: PART, "counting dead letters: {err}");
            0
        });
        crate::metrics::AsyncFigures {
            queued,
            running,
            dead,
        }
    }
}

/// Runs a queue operation (which may wait on the disk) without holding up
/// the other tasks of this runtime thread.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// The retry settings a call of a function with `settings` keeps.
pub(super) fn policy_of(settings: &FunctionSettings) -> RetryPolicy {
    let default = RetryPolicy::default();
    RetryPolicy {
        retries: settings.retries.unwrap_or(default.retries),
        backoff_ms: settings.retry_backoff_ms.unwrap_or(default.backoff_ms),
        max_age_ms: settings
            .max_age_s
            .map_or(default.max_age_ms, |s| s.saturating_mul(1000)),
    }
}

fn queue_error(err: QueueError) -> ServiceError {
    match err {
        QueueError::NotFound(id) => ServiceError::not_found(format!("no dead letter '{id}'")),
        QueueError::WrongStatus { id, status, .. } => {
            ServiceError::not_found(format!("no dead letter '{id}' (the call is {status})"))
        }
        QueueError::Store(_) => {
            log::error!(target: PART, "{err}");
            ServiceError::internal("the queue of async calls could not be read or written")
        }
        QueueError::Unavailable(_) => {
            log::error!(target: PART, "{err}");
            ServiceError::unavailable(
                "the queue of async calls is unreachable; nothing was queued or changed, send again later",
            )
        }
        QueueError::TooLarge(message) => ServiceError::new(ErrorKind::TooLarge, message),
    }
}

/// Call ids are hex digits; anything else is no call.
fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Service {
    /// The operations of background work.
    pub async fn background_operation(
        self: &Arc<Self>,
        op: Operation,
    ) -> Result<Reply, ServiceError> {
        let queue = &self.background.queue;
        match op {
            Operation::AsyncInvoke {
                function,
                payload,
                request_id,
                http,
                callback_url,
            } => self
                .enqueue(&function, payload, request_id, http, callback_url)
                .await
                .map(|id| Reply::Queued { id }),
            Operation::GetCall { id } => {
                let unknown = || ServiceError::not_found(format!("no async call '{id}'"));
                if !valid_id(&id) {
                    return Err(unknown());
                }
                match blocking(|| queue.get(&id)).map_err(queue_error)? {
                    Some(call) => Ok(Reply::Call {
                        call: call.to_json(),
                    }),
                    None => Err(unknown()),
                }
            }
            Operation::DeadLetters { function } => {
                let dead = blocking(|| queue.dead_letters(function.as_deref()));
                Ok(Reply::DeadLetters {
                    calls: dead
                        .map_err(queue_error)?
                        .iter()
                        .map(Call::to_json)
                        .collect(),
                })
            }
            Operation::Redrive { id } => {
                let call = blocking(|| queue.redrive(&id, now_millis())).map_err(queue_error)?;
                log::info!(target: PART, "async call {id} of {} queued again", call.spec.function);
                self.background.wake.notify_one();
                Ok(Reply::Queued { id })
            }
            Operation::ForgetDeadLetter { id } => {
                blocking(|| queue.forget(&id)).map_err(queue_error)?;
                Ok(Reply::Forgotten { id })
            }
            Operation::Schedules => Ok(Reply::Schedules {
                schedules: self.schedules(),
            }),
            other => {
                log::error!(target: PART, "not a background operation: {other:?}");
                Err(ServiceError::internal("unexpected operation"))
            }
        }
    }

    /// Queues a call of `function` (404 when it is not deployed, 400 for a
    /// callback URL its grants and `--callback-allow` do not permit:
    /// nothing is queued); returns its id once it is stored durably.
    async fn enqueue(
        self: &Arc<Self>,
        function: &str,
        payload: faas_proto::Blob,
        request_id: Option<String>,
        http: Option<HttpRequest>,
        callback_url: Option<String>,
    ) -> Result<String, ServiceError> {
        let Some(meta) = self.resolve_shared(function).await else {
            self.metrics.unknown_function();
            return Err(ServiceError::not_found(format!(
                "function '{function}' not found"
            )));
        };
        let callback_allow = match &callback_url {
            Some(url) => self.check_callback(url, &meta.settings.allow)?,
            None => Vec::new(),
        };
        let spec = NewCall {
            function: meta.name.clone(),
            payload,
            request_id,
            http,
            policy: policy_of(&meta.settings),
            dedupe: None,
            callback_url,
            callback_allow,
        };
        let call =
            blocking(|| self.background.queue.enqueue(spec, now_millis())).map_err(queue_error)?;
        log::debug!(target: PART, "async call {} of {} queued", call.id, meta.name);
        self.background.wake.notify_one();
        Ok(call.id)
    }

    /// The dispatcher: starts due calls while slots are free, sleeps until
    /// the next is due or something changes, and purges old results.
    pub async fn run_background(self: Arc<Self>) {
        tokio::spawn(self.clone().run_schedules());
        let mut next_purge = Instant::now();
        loop {
            if Instant::now() >= next_purge {
                self.purge_results();
                next_purge = Instant::now() + Duration::from_secs(60);
            }
            self.start_due();
            let wait = match self.background.queue.next_due() {
                Some(_) if self.background.slots.available_permits() == 0 => IDLE_WAIT,
                Some(at) => Duration::from_millis(at.saturating_sub(now_millis())).min(IDLE_WAIT),
                None => IDLE_WAIT,
            };
            tokio::select! {
                () = self.background.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    fn purge_results(&self) {
        let keep = self.background.keep_results.as_millis() as u64;
        let before = now_millis().saturating_sub(keep);
        match blocking(|| self.background.queue.purge(before)) {
            Ok(0) => {}
            Ok(n) => log::info!(target: PART, "purged {n} finished async calls"),
            Err(err) => log::error!(target: PART, "purging async calls: {err}"),
        }
    }

    /// Claims as many due calls as there are free slots and starts them.
    fn start_due(self: &Arc<Self>) {
        let free = self.background.slots.available_permits();
        // A stopping server starts nothing: what is queued waits for the
        // next start.
        if free == 0 || self.draining.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let claimed = blocking(|| self.background.queue.claim(now_millis(), free));
        let calls = match claimed {
            Ok(calls) => calls,
            Err(err) => {
                log::error!(target: PART, "claiming async calls: {err}");
                return;
            }
        };
        for call in calls {
            let Ok(permit) = self.background.slots.clone().try_acquire_owned() else {
                // Only this loop takes slots, so one is free for each call.
                log::error!(target: PART, "no slot for async call {}", call.id);
                break;
            };
            let this = self.clone();
            tokio::spawn(async move {
                this.attempt(call).await;
                drop(permit);
                this.background.wake.notify_one();
            });
        }
    }

    /// Runs one attempt of `call` and stores how it ended.
    async fn attempt(self: &Arc<Self>, call: Call) {
        let number = call.next_attempt();
        let start_ms = now_millis();
        let mut platform_env = vec![
            ("FAAS_CALL_ID".into(), call.id.clone()),
            ("FAAS_ATTEMPT".into(), number.to_string()),
        ];
        if let Some(tick) = super::schedule::tick_of(&call) {
            platform_env.push(("FAAS_SCHEDULE_TICK".into(), tick.to_string()));
        }
        let request = InvokeRequest {
            payload: call.spec.payload.clone(),
            request_id: call.spec.request_id.clone(),
            http: call.spec.http.clone(),
            sent_us: None,
            platform_env,
        };
        let outcome = self.invoke(&call.spec.function, request).await;
        let succeeded = matches!(&outcome, Ok(inv) if inv.result.ok);
        if !succeeded && self.draining.load(std::sync::atomic::Ordering::Relaxed) {
            // Probably cut short by the stop itself (its worker stopped):
            // left running, the next start runs it again as interrupted,
            // without spending one of its retries.
            log::info!(target: PART, "async call {} left for the next start", call.id);
            return;
        }
        let queue = &self.background.queue;
        let stored = match outcome {
            Ok(inv) if inv.result.ok => {
                let attempt = attempt_of(number, start_ms, &inv);
                blocking(|| queue.complete(&call.id, attempt, inv.result.output))
                    .map(|done| self.spawn_callback(done))
            }
            Ok(inv) => self.failed(call, attempt_of(number, start_ms, &inv), true),
            Err(err) if matches!(err.kind, ErrorKind::Overloaded | ErrorKind::Unavailable) => {
                log::debug!(target: PART, "async call {} not started: {}", call.id, err.message);
                blocking(|| queue.release(&call.id, now_millis() + REQUEUE_DELAY_MS))
            }
            Err(err) => {
                let retry = err.kind != ErrorKind::NotFound;
                let attempt = Attempt {
                    number,
                    start_ms,
                    outcome: if retry { "error" } else { "not_found" }.into(),
                    error: Some(err.message),
                    ..Default::default()
                };
                self.failed(call, attempt, retry)
            }
        };
        if let Err(err) = stored {
            log::error!(target: PART, "storing an attempt's outcome: {err}");
        }
    }

    /// Stores a failed attempt: the call is retried when its policy allows
    /// (and `retry`), else it is dead.
    fn failed(
        self: &Arc<Self>,
        call: Call,
        attempt: Attempt,
        retry: bool,
    ) -> Result<(), QueueError> {
        let now = now_millis();
        let mut after = call.clone();
        after.attempts.push(attempt.clone());
        let retry_at = retry
            .then(|| call.spec.policy.retry_at(&after, now))
            .flatten();
        let stored = blocking(|| self.background.queue.fail(&call.id, attempt, retry_at))?;
        if retry_at.is_some() {
            self.metrics.async_retry();
        } else {
            log::warn!(
                target: PART,
                "async call {} of {} is dead after {} attempts",
                stored.id,
                stored.spec.function,
                stored.attempts.len()
            );
            self.spawn_callback(stored);
        }
        Ok(())
    }
}

/// The attempt record of an invocation that reached the platform.
fn attempt_of(number: u32, start_ms: u64, inv: &Invocation) -> Attempt {
    let result = &inv.result;
    let (outcome, stderr) = match &inv.record {
        Some(record) => (record.status.clone(), record.stderr.clone()),
        None => ("worker_crashed".to_string(), String::new()),
    };
    Attempt {
        number,
        start_ms,
        duration_ms: result.duration_ms,
        exit_code: result.exit_code,
        outcome,
        worker: Some(inv.worker_id),
        stderr,
        error: result.error.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_ids_are_hex() {
        assert!(valid_id("0192ab34cd5600ff"));
        assert!(!valid_id(""));
        assert!(!valid_id("../x"));
        assert!(!valid_id(&"a".repeat(65)));
    }

    #[test]
    fn unset_settings_take_the_defaults() {
        let policy = policy_of(&FunctionSettings {
            retries: Some(0),
            max_age_s: Some(5),
            ..Default::default()
        });
        assert_eq!(policy.retries, 0);
        assert_eq!(policy.backoff_ms, 1000);
        assert_eq!(policy.max_age_ms, 5000);
    }
}
