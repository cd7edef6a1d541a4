//! Callbacks of async calls: a call queued with `X-Callback-Url: URL`
//! has its outcome POSTed there once it ends (succeeded, or dead).
//!
//! - **Allowed hosts.** The URL is checked when the call is queued: only
//!   `http`/`https`, no credentials, and a host and port that the
//!   function's own `allow=` grants or the server's `--callback-allow`
//!   permit; else 400 and nothing is queued. The entries that permitted it
//!   are copied into the call (as the retry settings are), and the
//!   delivery runs under them alone.
//! - **The same client and policy as functions' calls** ([`faas_outbound`]):
//!   names resolved by the platform, private and loopback addresses
//!   refused unless granted literally, this server's own port never
//!   reached, redirects followed only to permitted hosts. A refusal is
//!   final (not retried): the same URL would be refused again.
//! - **What is sent**: the output (success), or a line saying how the
//!   last attempt ended and its stderr, which the platform already
//!   redacted of secret values (dead call); `X-Call-Id`,
//!   `X-Function-Name`, `X-Function-Status` (200, 500, or 504 when the
//!   last attempt timed out), `X-Attempts`. Nothing of the queuing
//!   request (its headers may carry tokens) and no platform credential.
//! - **Retries**: [`TRIES`] tries in all, [`TRY_TIMEOUT`] each, with a
//!   backoff doubling from [`FIRST_BACKOFF`]; a 2xx answer is delivered.
//! - **Durable**: the queue marks the callback pending in the same commit
//!   that ends the call, and records every try; a server stopped before
//!   the delivery ended delivers it at its next start (at least once,
//!   like the calls themselves).

use std::sync::Arc;
use std::time::{Duration, Instant};

use faas_proto::{Grants, ServiceError};
use faas_queue::{Call, CallbackOutcome, CallbackState, Status};

use super::*;

/// Tries per callback: the first and three retries.
pub const TRIES: u32 = 4;
/// Longest one try may take (resolution, connection, answer).
pub const TRY_TIMEOUT: Duration = Duration::from_secs(10);
/// The wait before the second try, doubled before each next one.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// Tries sent at once, over every callback: each holds a blocking thread
/// while it waits (up to [`TRY_TIMEOUT`]), so thousands of calls ending
/// together against a receiver that hangs must not take the runtime's
/// blocking pool; the others wait their turn.
pub const MAX_IN_FLIGHT: usize = 64;

/// The callbacks' HTTP client and the server's own grants.
pub struct Callbacks {
    pub client: faas_outbound::Client,
    /// `--callback-allow`.
    pub allow: Grants,
    /// [`MAX_IN_FLIGHT`] permits.
    pub slots: Arc<tokio::sync::Semaphore>,
}

impl Callbacks {
    pub fn new(client: faas_outbound::Client, allow: Grants) -> Self {
        Self {
            client,
            allow,
            slots: Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT)),
        }
    }
}

/// `X-Function-Status` of a call that ended this way.
fn function_status(call: &Call) -> u16 {
    match call.status {
        Status::Succeeded => 200,
        _ if call.attempts.last().is_some_and(|a| a.outcome == "timeout") => 504,
        _ => 500,
    }
}

/// The request a callback sends for the ended `call`.
fn request_of(call: &Call, url: &str) -> faas_outbound::Request {
    let round = &call.attempts[call.round_start.min(call.attempts.len())..];
    let (content_type, body) = match (&call.output, call.status) {
        (Some(output), Status::Succeeded) => ("application/octet-stream", output.0.clone()),
        _ => {
            let text = match call.attempts.last() {
                Some(last) => {
                    let how = last.error.clone().unwrap_or_else(|| match last.exit_code {
                        Some(code) => format!("{} (exit code {code})", last.outcome),
                        None => last.outcome.clone(),
                    });
                    format!("attempt {}: {how}\n{}", last.number, last.stderr)
                }
                None => "the call ended without an attempt\n".to_string(),
            };
            ("text/plain; charset=utf-8", text.into_bytes())
        }
    };
    faas_outbound::Request {
        method: "POST".into(),
        url: url.to_string(),
        headers: vec![
            ("Content-Type".into(), content_type.into()),
            ("X-Call-Id".into(), call.id.clone()),
            ("X-Function-Name".into(), call.spec.function.clone()),
            (
                "X-Function-Status".into(),
                function_status(call).to_string(),
            ),
            ("X-Attempts".into(), round.len().to_string()),
        ],
        body,
    }
}

impl Service {
    /// Checks a callback URL when its call is queued against the
    /// function's grants (`function_allow`) and `--callback-allow`;
    /// returns the entries that permit it (stored with the call).
    pub(super) fn check_callback(
        &self,
        url: &str,
        function_allow: &Grants,
    ) -> Result<Vec<String>, ServiceError> {
        let server_allow = self
            .background
            .callbacks
            .as_ref()
            .map(|c| c.allow.texts())
            .unwrap_or_default();
        let mut entries = function_allow.texts();
        entries.extend(server_allow);
        let grants = Grants::parse(&entries).map_err(|e| {
            // Both lists were checked when they were given.
            log::error!(target: PART, "callback grants: {e}");
            ServiceError::internal("the callback grants could not be read")
        })?;
        faas_outbound::check_url(&grants, url).map_err(|err| match err {
            faas_outbound::FetchError::Denied(_) => ServiceError::bad_request(format!(
                "X-Callback-Url {} is not allowed: neither the function's allow= entries nor the server's --callback-allow permit that host and port",
                faas_outbound::origin_of(url)
            )),
            other => ServiceError::bad_request(format!("X-Callback-Url: {other}")),
        })
    }

    /// Delivers the callbacks a stopped server left pending.
    pub fn deliver_pending_callbacks(self: &Arc<Self>) {
        let pending = tokio::task::block_in_place(|| self.background.queue.pending_callbacks());
        match pending {
            Ok(calls) => {
                if !calls.is_empty() {
                    log::info!(target: PART, "{} callbacks left to deliver", calls.len());
                }
                for call in calls {
                    self.spawn_callback(call);
                }
            }
            Err(err) => log::error!(target: PART, "reading pending callbacks: {err}"),
        }
    }

    /// Starts delivering the callback of `call`, if it ended and has one.
    pub(super) fn spawn_callback(self: &Arc<Self>, call: Call) {
        if call.callback_pending() {
            tokio::spawn(self.clone().deliver(call));
        }
    }

    /// Tries the callback of the ended `call` until it is delivered, its
    /// tries are spent, or the policy refuses it; records every try.
    async fn deliver(self: Arc<Self>, call: Call) {
        let (Some(callbacks), Some(url)) = (&self.background.callbacks, &call.spec.callback_url)
        else {
            return;
        };
        let started_ms = now_millis();
        let started = Instant::now();
        let mut outcome = CallbackOutcome {
            state: CallbackState::Pending,
            started_ms: Some(started_ms),
            ..Default::default()
        };
        let grants = match Grants::parse(&call.spec.callback_allow) {
            Ok(grants) => grants,
            Err(err) => {
                outcome.state = CallbackState::Failed;
                outcome.error = Some(format!("the stored grants cannot be read: {err}"));
                self.record_callback(&call, outcome, started);
                return;
            }
        };
        let request = request_of(&call, url);
        let caller = format!("callback of {}", call.spec.function);
        let mut backoff = FIRST_BACKOFF;
        loop {
            outcome.attempts += 1;
            let (client, grants, request, caller) = (
                callbacks.client.clone(),
                grants.clone(),
                request.clone(),
                caller.clone(),
            );
            let Ok(permit) = callbacks.slots.clone().acquire_owned().await else {
                return;
            };
            let answer = tokio::task::spawn_blocking(move || {
                let answer =
                    client.fetch_for(&caller, &grants, request, Instant::now() + TRY_TIMEOUT);
                drop(permit);
                answer
            })
            .await;
            let retry = match answer {
                Ok(Ok(resp)) if (200..300).contains(&resp.status) => {
                    outcome.state = CallbackState::Delivered;
                    outcome.status_code = Some(resp.status);
                    outcome.error = None;
                    false
                }
                Ok(Ok(resp)) => {
                    outcome.status_code = Some(resp.status);
                    outcome.error = Some(format!("the receiver answered {}", resp.status));
                    true
                }
                Ok(Err(err)) => {
                    outcome.status_code = None;
                    // A refused or invalid request would be refused again.
                    let final_ = matches!(
                        err,
                        faas_outbound::FetchError::Denied(_)
                            | faas_outbound::FetchError::Invalid(_)
                    );
                    outcome.error = Some(err.to_string());
                    !final_
                }
                Err(err) => {
                    outcome.error = Some(format!("the delivery task failed: {err}"));
                    true
                }
            };
            let last = !retry || outcome.attempts >= TRIES;
            if last && outcome.state != CallbackState::Delivered {
                outcome.state = CallbackState::Failed;
            }
            if last {
                outcome.finished_ms = Some(now_millis());
            }
            self.record_callback(&call, outcome.clone(), started);
            if last {
                break;
            }
            tokio::time::sleep(backoff).await;
            backoff *= 2;
            // A stopping server leaves the rest to its next start (the
            // record is still pending).
            if self.draining.load(std::sync::atomic::Ordering::Relaxed) {
                return;
            }
        }
        match outcome.state {
            CallbackState::Delivered => log::debug!(
                target: PART,
                "callback of async call {} delivered to {}",
                call.id,
                faas_outbound::origin_of(url)
            ),
            _ => log::warn!(
                target: PART,
                "callback of async call {} to {} failed after {} tries: {}",
                call.id,
                faas_outbound::origin_of(url),
                outcome.attempts,
                outcome.error.as_deref().unwrap_or("?")
            ),
        }
    }

    fn record_callback(&self, call: &Call, mut outcome: CallbackOutcome, started: Instant) {
        outcome.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        let stored = tokio::task::block_in_place(|| {
            self.background.queue.record_callback(&call.id, outcome)
        });
        if let Err(err) = stored {
            // Purged or forgotten meanwhile: nothing left to record on.
            log::debug!(target: PART, "recording the callback of {}: {err}", call.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faas_queue::{Attempt, NewCall};

    fn ended(status: Status, attempts: &[(&str, Option<&str>)]) -> Call {
        Call {
            id: "00ab".into(),
            spec: NewCall {
                function: "f".into(),
                callback_url: Some("http://h.example/x".into()),
                ..Default::default()
            },
            status,
            created_ms: 1,
            updated_ms: 1,
            due_ms: 1,
            finished_ms: Some(2),
            attempts: attempts
                .iter()
                .enumerate()
                .map(|(i, (outcome, error))| Attempt {
                    number: i as u32 + 1,
                    outcome: outcome.to_string(),
                    error: error.map(String::from),
                    stderr: "boom\n".into(),
                    ..Default::default()
                })
                .collect(),
            round_start: 0,
            output: (status == Status::Succeeded).then(|| "out".into()),
            callback: None,
        }
    }

    fn header<'a>(req: &'a faas_outbound::Request, name: &str) -> &'a str {
        req.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap()
    }

    #[test]
    fn the_request_carries_the_outcome() {
        let ok = request_of(&ended(Status::Succeeded, &[("ok", None)]), "http://h/x");
        assert_eq!(ok.body, b"out");
        assert_eq!(header(&ok, "X-Function-Status"), "200");
        assert_eq!(header(&ok, "X-Attempts"), "1");
        let dead = ended(
            Status::Dead,
            &[("exit", None), ("timeout", Some("timed out after 5 ms"))],
        );
        let req = request_of(&dead, "http://h/x");
        assert_eq!(header(&req, "X-Function-Status"), "504");
        assert_eq!(header(&req, "X-Attempts"), "2");
        assert_eq!(req.body, b"attempt 2: timed out after 5 ms\nboom\n");
        let exit = request_of(&ended(Status::Dead, &[("exit", None)]), "http://h/x");
        assert_eq!(header(&exit, "X-Function-Status"), "500");
        assert!(!req.headers.iter().any(|(n, _)| n == "Authorization"));
    }
}
