//! The single-machine backend: every call is one JSON record in a redb
//! table (`calls`: id → record), committed durably before the caller
//! hears of it. An in-memory index of due and running calls is rebuilt
//! from the table at open, which also hands every call that was running
//! when the previous server stopped back to the queue: delivery is at
//! least once.
//!
//! A second table (`dedupe`: key → call id) makes an enqueue with a
//! `dedupe` key idempotent; a key is written in the same transaction as
//! its call and removed with it (forget, purge), so it is kept exactly as
//! long as the call's result.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::sync::Mutex;

use faas_proto::Blob;
use redb::{Database, ReadableTable, TableDefinition};

use crate::call::{Attempt, Call, CallbackOutcome, NewCall, Status, INTERRUPTED};
use crate::{Queue, QueueError, Result};

/// id → the call's JSON.
const CALLS: TableDefinition<&str, &[u8]> = TableDefinition::new("calls");
/// dedupe key → the id of the call enqueued with it.
const DEDUPE: TableDefinition<&str, &str> = TableDefinition::new("dedupe");

/// The queue in one redb file.
pub struct EmbeddedQueue {
    db: Database,
    /// Also serialises writers: a call's record and its place in the
    /// index change together.
    index: Mutex<Index>,
}

#[derive(Default)]
struct Index {
    /// (due time, id) of every queued or failed call.
    due: BTreeSet<(u64, String)>,
    running: HashSet<String>,
    /// Ids of the dead calls (counted for the metrics without a scan).
    dead: HashSet<String>,
}

fn store_err(err: impl std::fmt::Display) -> QueueError {
    QueueError::Store(err.to_string())
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl EmbeddedQueue {
    /// Opens (creating it if needed) the queue file at `path` and requeues
    /// the calls that were running when it was last open.
    pub fn open(path: &Path) -> Result<Self> {
        let db = Database::create(path).map_err(store_err)?;
        let queue = Self {
            db,
            index: Mutex::new(Index::default()),
        };
        queue.recover(now_ms())?;
        Ok(queue)
    }

    /// Builds the index; a running call becomes due now, its attempt
    /// recorded as interrupted (not counted against its retries).
    fn recover(&self, now: u64) -> Result<()> {
        let mut index = self.index.lock().expect("queue index");
        let tx = self.db.begin_write().map_err(store_err)?;
        {
            let mut table = tx.open_table(CALLS).map_err(store_err)?;
            let mut interrupted = Vec::new();
            for entry in table.iter().map_err(store_err)? {
                let (_, value) = entry.map_err(store_err)?;
                let mut call: Call = decode(value.value())?;
                match call.status {
                    Status::Queued | Status::Failed => {
                        index.due.insert((call.due_ms, call.id.clone()));
                    }
                    Status::Running => {
                        call.attempts.push(Attempt {
                            number: call.next_attempt(),
                            start_ms: call.updated_ms,
                            outcome: INTERRUPTED.into(),
                            stderr: "the server stopped during this attempt".into(),
                            ..Default::default()
                        });
                        call.status = waiting_status(&call);
                        call.due_ms = now;
                        call.updated_ms = now;
                        index.due.insert((now, call.id.clone()));
                        interrupted.push(call);
                    }
                    Status::Dead => {
                        index.dead.insert(call.id.clone());
                    }
                    Status::Succeeded => {}
                }
            }
            for call in &interrupted {
                table
                    .insert(call.id.as_str(), encode(call).as_slice())
                    .map_err(store_err)?;
            }
        }
        tx.commit().map_err(store_err)
    }

    fn read(&self, id: &str) -> Result<Option<Call>> {
        let tx = self.db.begin_read().map_err(store_err)?;
        let table = tx.open_table(CALLS).map_err(store_err)?;
        let value = table.get(id).map_err(store_err)?;
        value.map(|v| decode(v.value())).transpose()
    }

    /// Every call (the dead-letter list and purge scan the table).
    fn all(&self) -> Result<Vec<Call>> {
        let tx = self.db.begin_read().map_err(store_err)?;
        let table = tx.open_table(CALLS).map_err(store_err)?;
        let mut calls = Vec::new();
        for entry in table.iter().map_err(store_err)? {
            let (_, value) = entry.map_err(store_err)?;
            calls.push(decode(value.value())?);
        }
        Ok(calls)
    }

    /// Writes `calls` in one durable transaction.
    fn write(&self, calls: &[&Call]) -> Result<()> {
        let tx = self.db.begin_write().map_err(store_err)?;
        {
            let mut table = tx.open_table(CALLS).map_err(store_err)?;
            for call in calls {
                table
                    .insert(call.id.as_str(), encode(call).as_slice())
                    .map_err(store_err)?;
            }
        }
        tx.commit().map_err(store_err)
    }

    /// Applies `change` to the running call `id` and stores it.
    fn finish(&self, id: &str, change: impl FnOnce(&mut Call)) -> Result<Call> {
        let mut index = self.index.lock().expect("queue index");
        let mut call = self
            .read(id)?
            .ok_or_else(|| QueueError::NotFound(id.into()))?;
        if call.status != Status::Running {
            return Err(wrong(&call, Status::Running));
        }
        change(&mut call);
        call.updated_ms = now_ms();
        self.write(&[&call])?;
        index.running.remove(id);
        match call.status {
            Status::Queued | Status::Failed => {
                index.due.insert((call.due_ms, call.id.clone()));
            }
            Status::Dead => {
                index.dead.insert(call.id.clone());
            }
            Status::Running | Status::Succeeded => {}
        }
        Ok(call)
    }
}

/// Queued when this round has no counted attempt yet, else failed.
pub(crate) fn waiting_status(call: &Call) -> Status {
    if call.counted_attempts() == 0 {
        Status::Queued
    } else {
        Status::Failed
    }
}

pub(crate) fn wrong(call: &Call, wanted: Status) -> QueueError {
    QueueError::WrongStatus {
        id: call.id.clone(),
        status: call.status,
        wanted,
    }
}

fn encode(call: &Call) -> Vec<u8> {
    serde_json::to_vec(call).expect("a call serialises")
}

fn decode(bytes: &[u8]) -> Result<Call> {
    serde_json::from_slice(bytes).map_err(|e| QueueError::Store(format!("a stored call: {e}")))
}

/// A new call id, in hex: the time, a sequence number (calls queued in
/// the same millisecond keep their order: the due index sorts by id after
/// time) and 16 random bits (ids from two runs of the server differ).
pub(crate) fn new_id(now: u64) -> String {
    static SEQ: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{now:012x}{seq:04x}{:04x}", fastrand::u16(..))
}

impl Queue for EmbeddedQueue {
    fn enqueue(&self, spec: NewCall, now: u64) -> Result<Call> {
        let mut index = self.index.lock().expect("queue index");
        let tx = self.db.begin_write().map_err(store_err)?;
        let call = {
            let mut calls = tx.open_table(CALLS).map_err(store_err)?;
            let mut keys = tx.open_table(DEDUPE).map_err(store_err)?;
            if let Some(key) = &spec.dedupe {
                let known = keys.get(key.as_str()).map_err(store_err)?;
                let known = known.map(|id| id.value().to_string());
                if let Some(id) = known {
                    let existing = calls.get(id.as_str()).map_err(store_err)?;
                    if let Some(existing) = existing {
                        return decode(existing.value());
                    }
                }
            }
            let call = Call {
                id: new_id(now),
                spec,
                status: Status::Queued,
                created_ms: now,
                updated_ms: now,
                due_ms: now,
                finished_ms: None,
                attempts: Vec::new(),
                round_start: 0,
                output: None,
                callback: None,
            };
            calls
                .insert(call.id.as_str(), encode(&call).as_slice())
                .map_err(store_err)?;
            if let Some(key) = &call.spec.dedupe {
                keys.insert(key.as_str(), call.id.as_str())
                    .map_err(store_err)?;
            }
            call
        };
        tx.commit().map_err(store_err)?;
        index.due.insert((now, call.id.clone()));
        Ok(call)
    }

    fn claim(&self, now: u64, max: usize) -> Result<Vec<Call>> {
        let mut index = self.index.lock().expect("queue index");
        let due: Vec<(u64, String)> = index
            .due
            .iter()
            .take_while(|(at, _)| *at <= now)
            .take(max)
            .cloned()
            .collect();
        let mut calls = Vec::with_capacity(due.len());
        for (_, id) in &due {
            if let Some(mut call) = self.read(id)? {
                call.status = Status::Running;
                call.updated_ms = now;
                calls.push(call);
            }
        }
        self.write(&calls.iter().collect::<Vec<_>>())?;
        for key in due {
            index.due.remove(&key);
        }
        index.running.extend(calls.iter().map(|c| c.id.clone()));
        Ok(calls)
    }

    fn next_due(&self) -> Option<u64> {
        let index = self.index.lock().expect("queue index");
        index.due.first().map(|(at, _)| *at)
    }

    fn complete(&self, id: &str, attempt: Attempt, output: Blob) -> Result<Call> {
        self.finish(id, |call| {
            call.attempts.push(attempt);
            call.status = Status::Succeeded;
            call.output = Some(output);
            call.finished_ms = Some(now_ms());
            call.callback = call.ended_callback();
        })
    }

    fn fail(&self, id: &str, attempt: Attempt, retry_at: Option<u64>) -> Result<Call> {
        self.finish(id, |call| {
            call.attempts.push(attempt);
            match retry_at {
                Some(at) => {
                    call.status = Status::Failed;
                    call.due_ms = at;
                }
                None => {
                    call.status = Status::Dead;
                    call.finished_ms = Some(now_ms());
                    call.callback = call.ended_callback();
                }
            }
        })
    }

    fn release(&self, id: &str, due_ms: u64) -> Result<()> {
        self.finish(id, |call| {
            call.status = waiting_status(call);
            call.due_ms = due_ms;
        })
        .map(drop)
    }

    fn get(&self, id: &str) -> Result<Option<Call>> {
        self.read(id)
    }

    fn dead_letters(&self, function: Option<&str>) -> Result<Vec<Call>> {
        let mut dead: Vec<Call> = self
            .all()?
            .into_iter()
            .filter(|c| c.status == Status::Dead)
            .filter(|c| function.is_none_or(|f| c.spec.function == f))
            .collect();
        dead.sort_by_key(|c| (c.created_ms, c.id.clone()));
        Ok(dead)
    }

    fn redrive(&self, id: &str, now: u64) -> Result<Call> {
        let mut index = self.index.lock().expect("queue index");
        let mut call = self
            .read(id)?
            .ok_or_else(|| QueueError::NotFound(id.into()))?;
        if call.status != Status::Dead {
            return Err(wrong(&call, Status::Dead));
        }
        call.status = Status::Queued;
        call.round_start = call.attempts.len();
        call.due_ms = now;
        call.updated_ms = now;
        call.finished_ms = None;
        // Its next end is delivered afresh.
        call.callback = None;
        self.write(&[&call])?;
        index.dead.remove(id);
        index.due.insert((now, call.id.clone()));
        Ok(call)
    }

    fn forget(&self, id: &str) -> Result<()> {
        let mut index = self.index.lock().expect("queue index");
        let call = self
            .read(id)?
            .ok_or_else(|| QueueError::NotFound(id.into()))?;
        if call.status != Status::Dead {
            return Err(wrong(&call, Status::Dead));
        }
        self.remove(&[call])?;
        index.dead.remove(id);
        Ok(())
    }

    fn purge(&self, before_ms: u64) -> Result<usize> {
        let mut index = self.index.lock().expect("queue index");
        let old: Vec<Call> = self
            .all()?
            .into_iter()
            .filter(|c| matches!(c.status, Status::Succeeded | Status::Dead))
            .filter(|c| c.finished_ms.is_some_and(|f| f < before_ms))
            .collect();
        if !old.is_empty() {
            self.remove(&old)?;
        }
        for call in &old {
            index.dead.remove(&call.id);
        }
        Ok(old.len())
    }

    fn record_callback(&self, id: &str, outcome: CallbackOutcome) -> Result<Call> {
        let _index = self.index.lock().expect("queue index");
        let mut call = self
            .read(id)?
            .ok_or_else(|| QueueError::NotFound(id.into()))?;
        call.callback = Some(outcome);
        self.write(&[&call])?;
        Ok(call)
    }

    fn pending_callbacks(&self) -> Result<Vec<Call>> {
        let _index = self.index.lock().expect("queue index");
        Ok(self
            .all()?
            .into_iter()
            .filter(Call::callback_pending)
            .collect())
    }

    fn depth(&self) -> (usize, usize) {
        let index = self.index.lock().expect("queue index");
        (index.due.len(), index.running.len())
    }

    fn dead_count(&self) -> Result<usize> {
        Ok(self.index.lock().expect("queue index").dead.len())
    }
}

impl EmbeddedQueue {
    /// Removes `calls` and their dedupe keys in one transaction.
    fn remove(&self, calls: &[Call]) -> Result<()> {
        let tx = self.db.begin_write().map_err(store_err)?;
        {
            let mut table = tx.open_table(CALLS).map_err(store_err)?;
            let mut keys = tx.open_table(DEDUPE).map_err(store_err)?;
            for call in calls {
                table.remove(call.id.as_str()).map_err(store_err)?;
                if let Some(key) = &call.spec.dedupe {
                    keys.remove(key.as_str()).map_err(store_err)?;
                }
            }
        }
        tx.commit().map_err(store_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_call(function: &str) -> NewCall {
        NewCall {
            function: function.into(),
            payload: "in".into(),
            ..Default::default()
        }
    }

    fn attempt(outcome: &str) -> Attempt {
        Attempt {
            number: 1,
            outcome: outcome.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_call_goes_from_queued_to_succeeded() {
        let dir = tempfile::tempdir().unwrap();
        let q = EmbeddedQueue::open(&dir.path().join("q.redb")).unwrap();
        let call = q.enqueue(new_call("f"), 100).unwrap();
        assert_eq!(q.next_due(), Some(100));
        assert!(q.claim(99, 10).unwrap().is_empty());
        let claimed = q.claim(100, 10).unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(q.depth(), (0, 1));
        let done = q.complete(&call.id, attempt("ok"), "out".into()).unwrap();
        assert_eq!(done.status, Status::Succeeded);
        assert_eq!(q.get(&call.id).unwrap().unwrap().to_json()["output"], "out");
        assert_eq!(q.depth(), (0, 0));
    }

    #[test]
    fn dead_calls_are_listed_redriven_and_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let q = EmbeddedQueue::open(&dir.path().join("q.redb")).unwrap();
        let a = q.enqueue(new_call("f"), 1).unwrap();
        let b = q.enqueue(new_call("g"), 1).unwrap();
        q.claim(1, 10).unwrap();
        q.fail(&a.id, attempt("error"), None).unwrap();
        q.fail(&b.id, attempt("error"), Some(5)).unwrap();
        assert_eq!(q.dead_letters(None).unwrap().len(), 1);
        assert_eq!(q.dead_count().unwrap(), 1);
        assert!(q.dead_letters(Some("g")).unwrap().is_empty());
        assert!(matches!(
            q.redrive(&b.id, 2),
            Err(QueueError::WrongStatus { .. })
        ));
        let again = q.redrive(&a.id, 2).unwrap();
        assert_eq!(
            (again.status, again.counted_attempts()),
            (Status::Queued, 0)
        );
        assert!(q.dead_letters(None).unwrap().is_empty());
        assert_eq!(q.dead_count().unwrap(), 0);
        assert!(matches!(q.forget("nope"), Err(QueueError::NotFound(_))));
    }

    #[test]
    fn running_calls_are_queued_again_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.redb");
        let id = {
            let q = EmbeddedQueue::open(&path).unwrap();
            q.enqueue(new_call("f"), 1).unwrap();
            q.enqueue(new_call("f"), 1).unwrap();
            q.claim(1, 1).unwrap().remove(0).id
        };
        let q = EmbeddedQueue::open(&path).unwrap();
        assert_eq!(q.depth(), (2, 0));
        let call = q.get(&id).unwrap().unwrap();
        assert_eq!(call.attempts[0].outcome, INTERRUPTED);
        assert_eq!((call.status, call.next_attempt()), (Status::Queued, 2));
    }

    #[test]
    fn a_dedupe_key_enqueues_once_while_its_call_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.redb");
        let keyed = |key: &str| NewCall {
            dedupe: Some(key.into()),
            ..new_call("f")
        };
        let first = {
            let q = EmbeddedQueue::open(&path).unwrap();
            let first = q.enqueue(keyed("schedule:f:60"), 1).unwrap();
            let again = q.enqueue(keyed("schedule:f:60"), 2).unwrap();
            assert_eq!(again.id, first.id);
            assert_eq!(again.created_ms, 1);
            // Another key, or none, is another call.
            assert_ne!(q.enqueue(keyed("schedule:f:61"), 2).unwrap().id, first.id);
            assert_ne!(q.enqueue(new_call("f"), 2).unwrap().id, first.id);
            assert_eq!(q.depth(), (3, 0));
            first
        };
        // The key is durable: a reopened queue still knows it, whatever
        // the call's state.
        let q = EmbeddedQueue::open(&path).unwrap();
        assert_eq!(q.enqueue(keyed("schedule:f:60"), 3).unwrap().id, first.id);
        let claimed = q.claim(10, 10).unwrap();
        assert_eq!(claimed.len(), 3);
        q.complete(&first.id, attempt("ok"), "out".into()).unwrap();
        let done = q.enqueue(keyed("schedule:f:60"), 20).unwrap();
        assert_eq!(
            (done.id.as_str(), done.status),
            (first.id.as_str(), Status::Succeeded)
        );
        assert_eq!(q.depth(), (0, 2));
        // Purged with its call: the key may then be used again.
        assert_eq!(q.purge(now_ms() + 1).unwrap(), 1);
        let fresh = q.enqueue(keyed("schedule:f:60"), 30).unwrap();
        assert_ne!(fresh.id, first.id);
        assert_eq!(fresh.status, Status::Queued);
    }

    #[test]
    fn forgetting_a_dead_call_frees_its_dedupe_key() {
        let dir = tempfile::tempdir().unwrap();
        let q = EmbeddedQueue::open(&dir.path().join("q.redb")).unwrap();
        let keyed = NewCall {
            dedupe: Some("k".into()),
            ..new_call("f")
        };
        let dead = q.enqueue(keyed.clone(), 1).unwrap();
        q.claim(1, 1).unwrap();
        q.fail(&dead.id, attempt("exit"), None).unwrap();
        assert_eq!(q.enqueue(keyed.clone(), 2).unwrap().status, Status::Dead);
        q.forget(&dead.id).unwrap();
        assert_ne!(q.enqueue(keyed, 3).unwrap().id, dead.id);
    }

    #[test]
    fn finished_calls_are_purged() {
        let dir = tempfile::tempdir().unwrap();
        let q = EmbeddedQueue::open(&dir.path().join("q.redb")).unwrap();
        q.enqueue(new_call("f"), 1).unwrap();
        q.enqueue(new_call("f"), 1).unwrap();
        let a = q.claim(1, 1).unwrap().remove(0);
        q.complete(&a.id, attempt("ok"), Blob::default()).unwrap();
        assert_eq!(q.purge(now_ms() + 1).unwrap(), 1);
        assert!(q.get(&a.id).unwrap().is_none());
        assert_eq!(q.depth(), (1, 0));
    }

    #[test]
    fn an_ended_call_s_callback_stays_pending_across_a_reopen_until_recorded() {
        use crate::call::CallbackState;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.redb");
        let with_callback = NewCall {
            callback_url: Some("http://hooks.example.com/done?key=k".into()),
            callback_allow: vec!["hooks.example.com".into()],
            ..new_call("f")
        };
        let (ok, dead) = {
            let q = EmbeddedQueue::open(&path).unwrap();
            let ok = q.enqueue(with_callback.clone(), 1).unwrap().id;
            let dead = q.enqueue(with_callback, 1).unwrap().id;
            q.enqueue(new_call("f"), 1).unwrap();
            // Not ended: nothing to deliver, and the view says it waits.
            assert!(q.pending_callbacks().unwrap().is_empty());
            let view = q.get(&ok).unwrap().unwrap().to_json();
            assert_eq!(view["callback"]["state"], "waiting");
            // The query (a receiver's key) is never shown.
            assert_eq!(view["callback"]["url"], "http://hooks.example.com/done");
            q.claim(1, 3).unwrap();
            q.complete(&ok, attempt("ok"), "out".into()).unwrap();
            q.fail(&dead, attempt("exit"), None).unwrap();
            (ok, dead)
        };
        let q = EmbeddedQueue::open(&path).unwrap();
        let mut pending: Vec<String> = q
            .pending_callbacks()
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        pending.sort();
        assert_eq!(pending, [ok.clone(), dead.clone()]);
        let delivered = CallbackOutcome {
            state: CallbackState::Delivered,
            attempts: 1,
            status_code: Some(200),
            ..Default::default()
        };
        let call = q.record_callback(&ok, delivered).unwrap();
        assert_eq!(call.to_json()["callback"]["status_code"], 200);
        assert_eq!(q.pending_callbacks().unwrap().len(), 1);
        // A redrive forgets the old delivery: its next end is sent afresh.
        let again = q.redrive(&dead, 2).unwrap();
        assert!(again.callback.is_none());
        assert!(q.pending_callbacks().unwrap().is_empty());
    }

    #[test]
    fn a_call_stored_before_callbacks_existed_still_reads() {
        let old = r#"{"id":"00ab","function":"f","payload":"","policy":{"retries":2,"backoff_ms":1000,"max_age_ms":5},
            "status":"succeeded","created_ms":1,"updated_ms":2,"due_ms":1,"attempts":[],"round_start":0}"#;
        let call: Call = serde_json::from_str(old).unwrap();
        assert!(call.spec.callback_url.is_none() && call.callback.is_none());
        assert!(!call.callback_pending());
        assert!(call.to_json().get("callback").is_none());
    }
}
