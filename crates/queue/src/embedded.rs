//! The single-machine backend: every call is one JSON record in a redb
//! table (`calls`: id → record), committed durably before the caller
//! hears of it. An in-memory index of due and running calls is rebuilt
//! from the table at open, which also hands every call that was running
//! when the previous server stopped back to the queue: delivery is at
//! least once.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::sync::Mutex;

use faas_proto::Blob;
use redb::{Database, ReadableTable, TableDefinition};

use crate::call::{Attempt, Call, NewCall, Status, INTERRUPTED};
use crate::{Queue, QueueError, Result};

/// id → the call's JSON.
const CALLS: TableDefinition<&str, &[u8]> = TableDefinition::new("calls");

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
                    Status::Succeeded | Status::Dead => {}
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
        if matches!(call.status, Status::Queued | Status::Failed) {
            index.due.insert((call.due_ms, call.id.clone()));
        }
        Ok(call)
    }
}

/// Queued when this round has no counted attempt yet, else failed.
fn waiting_status(call: &Call) -> Status {
    if call.counted_attempts() == 0 {
        Status::Queued
    } else {
        Status::Failed
    }
}

fn wrong(call: &Call, wanted: Status) -> QueueError {
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
        };
        let mut index = self.index.lock().expect("queue index");
        self.write(&[&call])?;
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
        self.write(&[&call])?;
        index.due.insert((now, call.id.clone()));
        Ok(call)
    }

    fn forget(&self, id: &str) -> Result<()> {
        let _index = self.index.lock().expect("queue index");
        let call = self
            .read(id)?
            .ok_or_else(|| QueueError::NotFound(id.into()))?;
        if call.status != Status::Dead {
            return Err(wrong(&call, Status::Dead));
        }
        self.remove(&[id.to_string()])
    }

    fn purge(&self, before_ms: u64) -> Result<usize> {
        let _index = self.index.lock().expect("queue index");
        let old: Vec<String> = self
            .all()?
            .into_iter()
            .filter(|c| matches!(c.status, Status::Succeeded | Status::Dead))
            .filter(|c| c.finished_ms.is_some_and(|f| f < before_ms))
            .map(|c| c.id)
            .collect();
        if !old.is_empty() {
            self.remove(&old)?;
        }
        Ok(old.len())
    }

    fn depth(&self) -> (usize, usize) {
        let index = self.index.lock().expect("queue index");
        (index.due.len(), index.running.len())
    }
}

impl EmbeddedQueue {
    fn remove(&self, ids: &[String]) -> Result<()> {
        let tx = self.db.begin_write().map_err(store_err)?;
        {
            let mut table = tx.open_table(CALLS).map_err(store_err)?;
            for id in ids {
                table.remove(id.as_str()).map_err(store_err)?;
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
}
