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
    /// A call whose dedupe key was already enqueued (and is still kept)
    /// is not queued again: enqueue returns the existing one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedupe: Option<String>,
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
        view
    }
}
