//! Background work: asynchronous calls, their attempts and retries, and
//! dead letters. The Server enqueues a call, claims the due ones, runs
//! each through the LB as it runs any call, and reports how the attempt
//! ended; this crate keeps the calls and decides nothing about running
//! them.
//!
//! [`Queue`] is the small interface every backend implements: enqueue,
//! claim, complete or fail (with the time of the next attempt, or none:
//! dead), release, dead letters, redrive, forget, purge, and the record of
//! a call's callback (`X-Callback-Url`), which the Server delivers. Two backends:
//! [`embedded::EmbeddedQueue`], a single file under the functions
//! directory (one machine), and [`nats::NatsQueue`], NATS JetStream shared
//! by every replica (`--queue nats://`): there `claim` is a pull
//! consumer's fetch, `fail` with a retry time a negative acknowledgement
//! with that delay, and the records live in a JetStream KV bucket.
//!
//! Why redb for the embedded store: it is pure Rust (no C compiled, unlike
//! SQLite through rusqlite), one file, ACID with crash-safe commits, and
//! adds a single crate to the build (its version 2 keeps the workspace's
//! minimum Rust). The queue needs a key-value table, not SQL.
//!
//! Modules: [`call`] (the records and their JSON), [`retry`] (backoff and
//! the retry decision), [`embedded`] (the redb backend), [`nats`] (the
//! JetStream backend).

pub mod call;
pub mod embedded;
pub mod nats;
pub mod retry;

pub use call::{Attempt, Call, CallbackOutcome, CallbackState, NewCall, Status};
pub use embedded::EmbeddedQueue;
pub use nats::NatsQueue;
pub use retry::RetryPolicy;

/// What a queue operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("no call '{0}'")]
    NotFound(String),
    /// The call is not in the state the operation needs (redriving a call
    /// that is not dead, say).
    #[error("call '{id}' is {status}, not {wanted}")]
    WrongStatus {
        id: String,
        status: Status,
        wanted: Status,
    },
    /// The durable store failed (I/O, corruption): the message says which.
    #[error("queue store: {0}")]
    Store(String),
    /// The queue's server (NATS) cannot be reached or did not answer in
    /// time: nothing was changed, or the change is safe to ask again.
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    /// The call is larger than the queue's server takes.
    #[error("{0}")]
    TooLarge(String),
}

pub type Result<T> = std::result::Result<T, QueueError>;

/// A durable queue of asynchronous calls. Every method is synchronous and
/// may block on disk or the network: call it off the async reactor
/// (`block_in_place`).
pub trait Queue: Send + Sync {
    /// Stores a new call, due now; returns it with its id. A call whose
    /// `dedupe` key was already enqueued (and is still kept: keys live as
    /// long as their call's record, through `--keep-results-s`) is not
    /// stored again: the existing call is returned.
    fn enqueue(&self, call: NewCall, now_ms: u64) -> Result<Call>;
    /// Takes up to `max` calls due at `now_ms` (queued, or failed and due
    /// for a retry), marks them running and returns them.
    fn claim(&self, now_ms: u64, max: usize) -> Result<Vec<Call>>;
    /// When the next queued call is due, if any is queued.
    fn next_due(&self) -> Option<u64>;
    /// The running call `id` succeeded with `output`.
    fn complete(&self, id: &str, attempt: Attempt, output: faas_proto::Blob) -> Result<Call>;
    /// The running call `id` failed: it runs again at `retry_at`, or with
    /// `None` it is dead.
    fn fail(&self, id: &str, attempt: Attempt, retry_at: Option<u64>) -> Result<Call>;
    /// Puts a claimed call back, unattempted, due at `due_ms` (the
    /// platform could not start it: overloaded, no worker up).
    fn release(&self, id: &str, due_ms: u64) -> Result<()>;
    fn get(&self, id: &str) -> Result<Option<Call>>;
    /// Dead calls, oldest first, of one function or all.
    fn dead_letters(&self, function: Option<&str>) -> Result<Vec<Call>>;
    /// Queues the dead call `id` again with a fresh retry budget.
    fn redrive(&self, id: &str, now_ms: u64) -> Result<Call>;
    /// Removes the dead call `id`.
    fn forget(&self, id: &str) -> Result<()>;
    /// Removes finished calls (succeeded or dead) that ended before
    /// `before_ms`; returns how many.
    fn purge(&self, before_ms: u64) -> Result<usize>;
    /// Stores how the callback of the ended call `id` went.
    fn record_callback(&self, id: &str, outcome: CallbackOutcome) -> Result<Call>;
    /// Ended calls whose callback is not delivered yet (the server was
    /// stopped before it was): a starting server delivers them.
    fn pending_callbacks(&self) -> Result<Vec<Call>>;
    /// How many calls are queued (waiting or due for a retry) and running.
    fn depth(&self) -> (usize, usize);
    /// How many dead calls are kept (`faas_dead_letters`). A backend that
    /// can count them without reading each overrides this.
    fn dead_count(&self) -> Result<usize> {
        self.dead_letters(None).map(|dead| dead.len())
    }
}
