//! The records a queue keeps: a call, its attempts, and the JSON that
//! `GET /invocation/ID` shows.

use faas_proto::{Blob, HttpRequest};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::retry::RetryPolicy;

/// Where a call is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for its first attempt (or its first after a redrive).
    Queued,
    /// An attempt is under way.
    Running,
    Succeeded,
    /// The last attempt failed; another is due at `due_ms`.
    Failed,
    /// Every attempt failed (or the call grew too old): a dead letter.
    Dead,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Dead => "dead",
        };
        f.write_str(text)
    }
}

/// What a client asked to run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NewCall {
    /// The function's name: each attempt runs its latest version.
    pub function: String,
    pub payload: Blob,
    /// The enqueueing request's id (`FAAS_REQUEST_ID` of every attempt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The HTTP request (`FAAS_HTTP_*`), as for `/fn/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpRequest>,
    pub policy: RetryPolicy,
    /// A key that makes enqueueing idempotent: a second call with a key
    /// already enqueued gets the first call back instead of a new one (a
    /// schedule's tick is `schedule:NAME:TICK_UNIX_SECONDS`, so two
    /// replicas firing the same tick, or a restart replaying it, queue it
    /// once). The key lives as long as its call's record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedupe: Option<String>,
    /// Where the outcome is POSTed when the call ends (`X-Callback-Url`),
    /// checked against the grants when it was queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    /// The `allow=` entries (the function's or `--callback-allow`'s) that
    /// permitted `callback_url` when the call was queued: the delivery
    /// runs under these, like the retry settings copied into the call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub callback_allow: Vec<String>,
}

/// Where a call's callback delivery is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallbackState {
    /// The call ended; the callback is not delivered yet (a server that
    /// restarts delivers it then).
    #[default]
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Every try failed, or the policy refused the URL.
    Failed,
}

/// How a call's callback went (`callback` in `GET /invocation/ID`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallbackOutcome {
    pub state: CallbackState,
    /// Tries made so far.
    #[serde(default)]
    pub attempts: u32,
    /// The last try's HTTP status, when the receiver answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// Why the last try failed (refused, unreachable, timed out, non-2xx).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the first try started (Unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<u64>,
    /// When the delivery ended, delivered or failed (Unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_ms: Option<u64>,
    /// Time spent on the tries, backoff included.
    #[serde(default)]
    pub duration_ms: f64,
}

/// One run of a call on a worker.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// 1 for the first attempt (the function's `FAAS_ATTEMPT`).
    pub number: u32,
    /// Unix milliseconds.
    pub start_ms: u64,
    pub duration_ms: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// ok, exit (non-zero exit code), timeout, worker_crashed, ..., or
    /// interrupted (the server stopped during it; not counted as a retry).
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<usize>,
    /// The first KiB of its stderr.
    #[serde(default)]
    pub stderr: String,
    /// The platform's word on a failure ("timed out after 500 ms").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The outcome of an attempt the server did not see end.
pub const INTERRUPTED: &str = "interrupted";

/// A stored call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    pub id: String,
    #[serde(flatten)]
    pub spec: NewCall,
    pub status: Status,
    pub created_ms: u64,
    pub updated_ms: u64,
    /// When it may run (queued or failed).
    pub due_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_ms: Option<u64>,
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    /// Attempts before this index belong to rounds before the last
    /// redrive: the retry budget counts from here.
    #[serde(default)]
    pub round_start: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Blob>,
    /// The delivery of `callback_url` once the call ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback: Option<CallbackOutcome>,
}

impl Call {
    /// Attempts that count against the retry budget: this round's, without
    /// those a server stop interrupted.
    pub fn counted_attempts(&self) -> u32 {
        self.attempts[self.round_start.min(self.attempts.len())..]
            .iter()
            .filter(|a| a.outcome != INTERRUPTED)
            .count() as u32
    }

    /// The number the next attempt gets (`FAAS_ATTEMPT`).
    pub fn next_attempt(&self) -> u32 {
        self.attempts.len() as u32 + 1
    }

    /// The view `GET /invocation/ID` answers (no payload, no request
    /// headers: they may carry what the caller meant for the function).
    pub fn to_json(&self) -> serde_json::Value {
        let mut view = json!({
            "ok": true,
            "id": self.id,
            "function": self.spec.function,
            "status": self.status,
            "created_ms": self.created_ms,
            "updated_ms": self.updated_ms,
            "attempts": self.attempts,
            "retries": self.spec.policy.retries,
        });
        if matches!(self.status, Status::Queued | Status::Failed) {
            view["due_ms"] = json!(self.due_ms);
        }
        if let Some(finished) = self.finished_ms {
            view["finished_ms"] = json!(finished);
        }
        if let Some(output) = &self.output {
            match std::str::from_utf8(&output.0) {
                Ok(text) => view["output"] = json!(text),
                Err(_) => {
                    use base64::Engine;
                    view["output_base64"] =
                        json!(base64::engine::general_purpose::STANDARD.encode(&output.0));
                }
            }
        }
        if let Some(url) = &self.spec.callback_url {
            let mut callback = match &self.callback {
                Some(outcome) => json!(outcome),
                // The call has not ended: nothing sent yet.
                None => json!({"state": "waiting", "attempts": 0}),
            };
            callback["url"] = json!(shown_url(url));
            view["callback"] = callback;
        }
        view
    }

    /// The callback record of a call that just ended: pending when it has
    /// a callback URL. Backends store it with the end itself, so that a
    /// server stopped before the delivery finds it at its next start.
    pub fn ended_callback(&self) -> Option<CallbackOutcome> {
        self.spec
            .callback_url
            .as_ref()
            .map(|_| CallbackOutcome::default())
    }

    /// Whether the call ended and its callback is still to deliver.
    pub fn callback_pending(&self) -> bool {
        matches!(self.status, Status::Succeeded | Status::Dead)
            && self.spec.callback_url.is_some()
            && self
                .callback
                .as_ref()
                .is_some_and(|c| c.state == CallbackState::Pending)
    }
}

/// A callback URL as the invocation shows it: without its query and
/// fragment (a receiver's token often rides there, and the invocation is
/// readable with the invoke token alone). Its user info never got in: such
/// URLs are refused when queued.
pub fn shown_url(url: &str) -> String {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    url[..end].to_string()
}
