//! When a failed call runs again: exponential backoff with jitter, within
//! the function's retry count and the call's maximum age.

use serde::{Deserialize, Serialize};

use crate::call::Call;

/// A function's retry settings, copied into each call when it is queued
/// (a later deploy does not change the calls already waiting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Attempts after the first.
    pub retries: u32,
    /// Delay before the first retry; doubled for each one after.
    pub backoff_ms: u64,
    /// A call older than this is not retried.
    pub max_age_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            retries: DEFAULT_RETRIES,
            backoff_ms: DEFAULT_BACKOFF_MS,
            max_age_ms: DEFAULT_MAX_AGE_S * 1000,
        }
    }
}

pub const DEFAULT_RETRIES: u32 = 2;
pub const MAX_RETRIES: u32 = 10;
pub const DEFAULT_BACKOFF_MS: u64 = 1000;
/// The longest first delay a function may set (one hour).
pub const MAX_BACKOFF_MS: u64 = 3_600_000;
pub const DEFAULT_MAX_AGE_S: u64 = 21_600;
/// The longest a call may keep being retried (seven days).
pub const MAX_AGE_S: u64 = 7 * 86_400;
/// No single wait between attempts is longer (one day).
const MAX_DELAY_MS: u64 = 86_400_000;

impl RetryPolicy {
    /// When `call`, whose last attempt (already recorded) just failed,
    /// runs again; `None`: it is dead (no retry left, or too old).
    pub fn retry_at(&self, call: &Call, now_ms: u64) -> Option<u64> {
        let failed = call.counted_attempts();
        if failed > self.retries || now_ms.saturating_sub(call.created_ms) > self.max_age_ms {
            return None;
        }
        Some(now_ms + self.delay_ms(failed, fastrand::f64()))
    }

    /// The wait after the `failed`-th failed attempt (1-based): the
    /// backoff doubled `failed - 1` times, plus up to a quarter of it at
    /// random (`jitter` in 0..1), so that calls failing together do not
    /// retry together. Never less than the doubled backoff.
    pub fn delay_ms(&self, failed: u32, jitter: f64) -> u64 {
        let doublings = failed.saturating_sub(1).min(40);
        let base = self
            .backoff_ms
            .saturating_mul(1u64 << doublings)
            .min(MAX_DELAY_MS);
        base + (base as f64 * 0.25 * jitter.clamp(0.0, 1.0)) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::{Attempt, NewCall, Status, INTERRUPTED};

    fn call_with(outcomes: &[&str], policy: RetryPolicy) -> Call {
        Call {
            id: "c".into(),
            spec: NewCall {
                policy,
                ..Default::default()
            },
            status: Status::Running,
            created_ms: 1_000,
            updated_ms: 1_000,
            due_ms: 1_000,
            finished_ms: None,
            attempts: outcomes
                .iter()
                .map(|o| Attempt {
                    outcome: o.to_string(),
                    ..Default::default()
                })
                .collect(),
            round_start: 0,
            output: None,
            callback: None,
        }
    }

    #[test]
    fn backoff_doubles_with_bounded_jitter() {
        let p = RetryPolicy {
            backoff_ms: 100,
            ..Default::default()
        };
        assert_eq!(p.delay_ms(1, 0.0), 100);
        assert_eq!(p.delay_ms(2, 0.0), 200);
        assert_eq!(p.delay_ms(3, 0.0), 400);
        assert_eq!(p.delay_ms(3, 1.0), 500);
        assert_eq!(p.delay_ms(200, 0.0), MAX_DELAY_MS);
    }

    #[test]
    fn a_call_is_dead_after_retries_plus_one_attempts_or_when_too_old() {
        let p = RetryPolicy {
            retries: 2,
            backoff_ms: 10,
            max_age_ms: 60_000,
        };
        assert!(p.retry_at(&call_with(&["error"], p), 2_000).is_some());
        assert!(p
            .retry_at(&call_with(&["error", "timeout"], p), 2_000)
            .is_some());
        assert!(p
            .retry_at(&call_with(&["error", "timeout", "error"], p), 2_000)
            .is_none());
        // An interrupted attempt is not counted.
        assert!(p
            .retry_at(&call_with(&["error", INTERRUPTED, "error"], p), 2_000)
            .is_some());
        assert!(p.retry_at(&call_with(&["error"], p), 62_000).is_none());
        let at = p.retry_at(&call_with(&["error"], p), 2_000).unwrap();
        assert!((2_010..=2_013).contains(&at), "{at}");
    }
}
