//! Each function's recent calls, newest last, for `GET
//! /function/NAME/invocations` and the dashboard: a bounded ring per
//! function, in memory (a restart starts it afresh, as the API says).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use faas_proto::InvocationRecord;

/// Most invocations remembered per function.
pub const RING: usize = 1000;

/// The rings, by function name.
#[derive(Default)]
pub struct InvocationLog {
    rings: Mutex<HashMap<String, VecDeque<InvocationRecord>>>,
}

impl InvocationLog {
    /// Remembers a call of `function`, dropping its oldest beyond [`RING`].
    pub fn record(&self, function: &str, record: InvocationRecord) {
        let mut rings = self.rings.lock().unwrap();
        let ring = rings.entry(function.to_string()).or_default();
        if ring.len() >= RING {
            ring.pop_front();
        }
        ring.push_back(record);
    }

    /// `function`'s last `limit` calls (at most [`RING`]), newest first.
    pub fn recent(&self, function: &str, limit: usize) -> Vec<InvocationRecord> {
        let rings = self.rings.lock().unwrap();
        rings
            .get(function)
            .map(|ring| ring.iter().rev().take(limit.min(RING)).cloned().collect())
            .unwrap_or_default()
    }

    /// Forgets a deleted function's calls, so a new function of the same
    /// name starts with none.
    pub fn forget_function(&self, function: &str) {
        self.rings.lock().unwrap().remove(function);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(n: usize) -> InvocationRecord {
        InvocationRecord {
            request_id: n.to_string(),
            ..Default::default()
        }
    }

    #[test]
    fn a_ring_keeps_the_newest_calls_newest_first() {
        let log = InvocationLog::default();
        for n in 0..RING + 5 {
            log.record("f", call(n));
        }
        let recent = log.recent("f", usize::MAX);
        assert_eq!(recent.len(), RING);
        assert_eq!(recent[0].request_id, (RING + 4).to_string());
        assert_eq!(recent[RING - 1].request_id, "5");
        assert_eq!(log.recent("f", 2).len(), 2);
        assert!(log.recent("other", 10).is_empty());
        log.forget_function("f");
        assert!(log.recent("f", 10).is_empty());
    }
}
