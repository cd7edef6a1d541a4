//! The cluster backend (`--queue nats://HOST:PORT`): the calls of every
//! replica in one NATS JetStream server, so that any replica may run any
//! queued call and read any call's status.
//!
//! Two JetStream objects hold everything:
//! - the KV bucket `faas-calls`: one key per call (its id → the call's
//!   JSON, the same record the embedded backend keeps), and one key per
//!   dedupe key (`dedupe.<hex>` → the id of the call it queued). Every
//!   change of a record is written with the revision it was read at, so
//!   two replicas racing on one call cannot both win.
//! - the stream `FAAS_CALLS` (work-queue retention, subjects
//!   `faas.calls.<id>`): one message per call waiting to run, read by
//!   the durable pull consumer `dispatch` that every replica shares.
//!   `claim` fetches; an attempt that ends acks (succeeded, dead) or naks
//!   with the retry's delay (failed, released); a replica that dies
//!   mid-call never acks, and JetStream hands the message to another
//!   replica once its ack wait ([`ACK_WAIT`]) passes. A running call's
//!   message is kept in progress by a heartbeat every [`HEARTBEAT`].
//!
//! Delivery is at least once: a call whose replica died (or lost NATS
//! longer than the ack wait) runs again elsewhere; the record keeps the
//! cut attempt as `interrupted`, not counted against its retries.
//!
//! Why its own tokio runtime: the [`Queue`] trait is synchronous and is
//! called from the Server's runtime inside `block_in_place`. The NATS
//! client's connection task lives on a one-thread runtime owned here, and
//! a caller only waits on a channel for the answer, so no task of the
//! caller's runtime (a gateway thread blocked in `block_in_place`, say) is
//! ever needed to finish a queue operation: no deadlock whatever the
//! caller's runtime is doing, and every operation is bounded by
//! [`OP_TIMEOUT`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, consumer, kv, message::Acker, stream, AckKind};
use bytes::Bytes;
use faas_proto::Blob;
use futures_util::StreamExt;

use crate::call::{Attempt, Call, CallbackOutcome, NewCall, Status, INTERRUPTED};
use crate::embedded::{new_id, now_ms, waiting_status, wrong};
use crate::{Queue, QueueError, Result};

/// The KV bucket of call records and dedupe keys.
const BUCKET: &str = "faas-calls";
/// The work queue of calls waiting to run.
const STREAM: &str = "FAAS_CALLS";
/// Its subjects: `faas.calls.<id>`.
const SUBJECT_PREFIX: &str = "faas.calls.";
/// The consumer every replica fetches from.
const CONSUMER: &str = "dispatch";
/// Dedupe keys in the bucket: `dedupe.<hex of the key>`.
const DEDUPE_PREFIX: &str = "dedupe.";

/// How long a delivered call may go without an ack or a heartbeat before
/// JetStream gives it to another replica: how long a call whose replica
/// died waits. Short enough that a dead replica's calls move on quickly,
/// three heartbeats long so that a busy replica (or a NATS blip of a few
/// seconds) does not lose a call it is still running.
pub const ACK_WAIT: Duration = Duration::from_secs(15);
/// How often the calls this replica runs are reported in progress.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// How long JetStream remembers a message id (`Nats-Msg-Id`): a publish
/// retried after a lost answer, or the same schedule tick sent by every
/// replica (they tick within seconds of each other), is stored once.
/// Longer costs the server memory for every id; dedupe beyond it is the
/// KV bucket's dedupe keys, kept as long as their call.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// The longest any queue operation waits for NATS; past it the caller
/// hears [`QueueError::Unavailable`] (503).
pub const OP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long connecting at start may take before the server gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A waiting call unchanged for this long is checked for its message by
/// the minute's purge (younger ones may be in the middle of enqueue).
const REPAIR_AFTER_MS: u64 = 60_000;
/// How often an idle dispatcher asks JetStream for calls queued by other
/// replicas (it is woken at once for its own).
pub const POLL: Duration = Duration::from_millis(250);

/// The queue in a NATS JetStream server.
pub struct NatsQueue {
    /// `Some` until dropped: shut down without waiting (a drop may happen
    /// inside another runtime, where a blocking shutdown would panic).
    runtime: Option<tokio::runtime::Runtime>,
    shared: Arc<Shared>,
}

struct Shared {
    /// The server's address without credentials: what logs and errors
    /// name.
    address: String,
    js: jetstream::Context,
    calls: kv::Store,
    stream: stream::Stream,
    consumer: consumer::PullConsumer,
    /// The calls this replica claimed and has not finished: their ack
    /// handle, and how many attempts their record had when claimed (a
    /// record with more was taken over by another replica meanwhile).
    held: Mutex<HashMap<String, Held>>,
}

struct Held {
    acker: Arc<Acker>,
    attempts: usize,
}

/// A NATS URL split into its address (safe to print) and credentials.
#[derive(Debug, PartialEq)]
pub struct NatsUrl {
    pub address: String,
    user: Option<String>,
    password: Option<String>,
}

impl NatsUrl {
    /// Parses `nats://[USER:PASS@|TOKEN@]HOST:PORT` (or `tls://`).
    pub fn parse(url: &str) -> Result<Self> {
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad_url(url))?;
        if !matches!(scheme, "nats" | "tls") {
            return Err(bad_url(url));
        }
        let (userinfo, host) = match rest.rsplit_once('@') {
            Some((info, host)) => (Some(info), host),
            None => (None, rest),
        };
        if host.is_empty() || host.contains('/') || host.contains(',') {
            return Err(bad_url(url));
        }
        let (user, password) = match userinfo {
            None => (None, None),
            Some(info) => match info.split_once(':') {
                Some((u, p)) => (Some(u.to_string()), Some(p.to_string())),
                None => (Some(info.to_string()), None),
            },
        };
        Ok(Self {
            address: format!("{scheme}://{host}"),
            user,
            password,
        })
    }
}

fn bad_url(_url: &str) -> QueueError {
    // Not echoed: what did not parse may be a password or a token.
    QueueError::Store(
        "the queue address is not a NATS address: nats://[USER:PASS@|TOKEN@]HOST:PORT".into(),
    )
}

/// The error every failed NATS operation turns into.
fn unavailable(address: &str, what: &str, err: impl std::fmt::Display) -> QueueError {
    QueueError::Unavailable(format!("NATS {address}: {what}: {err}"))
}

fn encode(call: &Call) -> Bytes {
    Bytes::from(serde_json::to_vec(call).expect("a call serialises"))
}

fn decode(bytes: &[u8]) -> Result<Call> {
    serde_json::from_slice(bytes).map_err(|e| QueueError::Store(format!("a stored call: {e}")))
}

/// The bucket key of a dedupe key (bucket keys allow only a few
/// characters, so the key is hex-encoded).
fn dedupe_key(key: &str) -> String {
    let mut out = String::with_capacity(DEDUPE_PREFIX.len() + key.len() * 2);
    out.push_str(DEDUPE_PREFIX);
    for b in key.bytes() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// The `Nats-Msg-Id` of a call's first message: its dedupe key as given
/// when it is printable (a schedule tick's `schedule:NAME:TICK`), else its
/// bucket key; a call without one is its id (a retried publish of the
/// same call is stored once).
fn message_id(call: &Call) -> String {
    match &call.spec.dedupe {
        Some(key) if !key.is_empty() && key.bytes().all(|b| b.is_ascii_graphic()) => key.clone(),
        Some(key) => dedupe_key(key),
        None => call.id.clone(),
    }
}

impl NatsQueue {
    /// Connects to the NATS server at `url`, and creates the bucket, the
    /// stream and the consumer if this is the first replica to use it.
    /// Fails (naming the address, never its credentials) when the server
    /// does not answer within a few seconds or has no JetStream.
    pub fn connect(url: &str) -> Result<Self> {
        let parsed = NatsUrl::parse(url)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("faas-nats")
            .enable_all()
            .build()
            .map_err(|e| QueueError::Store(format!("starting the NATS client's runtime: {e}")))?;
        // Not `block_on`: the caller may be inside another runtime, where
        // that panics; a channel works from anywhere.
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            let _ = tx.send(Shared::connect(parsed).await);
        });
        let connected = rx
            .recv()
            .unwrap_or_else(|_| Err(QueueError::Store("the NATS client stopped".into())));
        let shared = match connected {
            Ok(shared) => Arc::new(shared),
            Err(err) => {
                // Dropping a runtime blocks, which another runtime forbids.
                runtime.shutdown_background();
                return Err(err);
            }
        };
        runtime.spawn(heartbeats(Arc::downgrade(&shared)));
        Ok(Self {
            runtime: Some(runtime),
            shared,
        })
    }

    /// The server's address, without credentials.
    pub fn address(&self) -> &str {
        &self.shared.address
    }

    /// Runs `op` on this queue's runtime and waits for it, at most
    /// [`OP_TIMEOUT`].
    fn run<T, F>(&self, what: &'static str, op: impl FnOnce(Arc<Shared>) -> F) -> Result<T>
    where
        T: Send + 'static,
        F: Future<Output = Result<T>> + Send + 'static,
    {
        let runtime = self.runtime.as_ref().expect("the runtime lives until drop");
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let fut = op(self.shared.clone());
        runtime.spawn(async move {
            let outcome = tokio::time::timeout(OP_TIMEOUT, fut).await;
            let _ = tx.send(outcome);
        });
        match rx.recv() {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(QueueError::Unavailable(format!(
                "NATS {}: {what}: no answer within {} s",
                self.shared.address,
                OP_TIMEOUT.as_secs()
            ))),
            Err(_) => Err(QueueError::Store("the NATS client stopped".into())),
        }
    }
}

impl Drop for NatsQueue {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Reports every held call in progress, so JetStream does not give it to
/// another replica while it runs. Ends when the queue is dropped.
async fn heartbeats(shared: std::sync::Weak<Shared>) {
    loop {
        tokio::time::sleep(HEARTBEAT).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let ackers: Vec<Arc<Acker>> = {
            let held = shared.held.lock().expect("held calls");
            held.values().map(|h| h.acker.clone()).collect()
        };
        for acker in ackers {
            // A lost heartbeat costs nothing unless ACK_WAIT passes with
            // none: the call may then also run elsewhere (at least once).
            let _ = acker.ack_with(AckKind::Progress).await;
        }
    }
}

impl Shared {
    async fn connect(url: NatsUrl) -> Result<Self> {
        let address = url.address.clone();
        let mut options = match (url.user, url.password) {
            (Some(user), Some(pass)) => {
                async_nats::ConnectOptions::with_user_and_password(user, pass)
            }
            (Some(token), None) => async_nats::ConnectOptions::with_token(token),
            _ => async_nats::ConnectOptions::new(),
        };
        let logged = address.clone();
        options = options
            .connection_timeout(CONNECT_TIMEOUT)
            .request_timeout(Some(OP_TIMEOUT))
            .name("faas-server")
            .event_callback(move |event| {
                let logged = logged.clone();
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            log::info!(target: "QUEUE", "connected to NATS {logged}")
                        }
                        async_nats::Event::Disconnected => {
                            log::warn!(target: "QUEUE", "lost NATS {logged}; reconnecting")
                        }
                        other => log::debug!(target: "QUEUE", "NATS {logged}: {other}"),
                    }
                }
            });
        let client = tokio::time::timeout(CONNECT_TIMEOUT * 2, options.connect(address.as_str()))
            .await
            .map_err(|_| unavailable(&address, "connecting", "no answer"))?
            .map_err(|e| unavailable(&address, "connecting", e))?;
        let mut js = jetstream::new(client);
        js.set_timeout(OP_TIMEOUT);
        let calls = match js.get_key_value(BUCKET).await {
            Ok(store) => store,
            Err(_) => js
                .create_or_update_key_value(kv::Config {
                    bucket: BUCKET.into(),
                    description: "faas async calls: records and dedupe keys".into(),
                    history: 1,
                    storage: stream::StorageType::File,
                    ..Default::default()
                })
                .await
                .map_err(|e| unavailable(&address, "creating the KV bucket of calls", e))?,
        };
        let stream = js
            .get_or_create_stream(stream::Config {
                name: STREAM.into(),
                description: Some("faas async calls waiting to run".into()),
                subjects: vec![format!("{SUBJECT_PREFIX}*")],
                retention: stream::RetentionPolicy::WorkQueue,
                storage: stream::StorageType::File,
                duplicate_window: DUPLICATE_WINDOW,
                ..Default::default()
            })
            .await
            .map_err(|e| unavailable(&address, "creating the stream of calls", e))?;
        let consumer: consumer::PullConsumer = stream
            .get_or_create_consumer(
                CONSUMER,
                consumer::pull::Config {
                    durable_name: Some(CONSUMER.into()),
                    description: Some("every faas replica takes calls here".into()),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: ACK_WAIT,
                    // A call is delivered again after each retry delay and
                    // each release: its own policy decides when it is dead.
                    max_deliver: -1,
                    // Calls waiting for a retry stay pending: no bound, so
                    // many of them never stall new ones.
                    max_ack_pending: -1,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| unavailable(&address, "creating the consumer of calls", e))?;
        Ok(Self {
            address,
            js,
            calls,
            stream,
            consumer,
            held: Mutex::new(HashMap::new()),
        })
    }

    fn fail(&self, what: &str, err: impl std::fmt::Display) -> QueueError {
        unavailable(&self.address, what, err)
    }

    /// The record of `id` and its revision, if it exists.
    async fn entry(&self, id: &str) -> Result<Option<(Call, u64)>> {
        let entry = self
            .calls
            .entry(id)
            .await
            .map_err(|e| self.fail("reading a call", e))?;
        match entry {
            Some(e) if e.operation == kv::Operation::Put => {
                Ok(Some((decode(&e.value)?, e.revision)))
            }
            _ => Ok(None),
        }
    }

    /// Writes `call` over `revision`; `Ok(false)` when another replica
    /// changed it first.
    async fn update(&self, call: &Call, revision: u64) -> Result<bool> {
        match self.calls.update(&call.id, encode(call), revision).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(false),
            Err(e) => Err(self.fail("writing a call", e)),
        }
    }

    /// Queues a message for `call` (to run at once).
    async fn publish(&self, call: &Call, id: String) -> Result<()> {
        let publish = jetstream::message::PublishMessage::build()
            .payload(Bytes::from(call.id.clone()))
            .message_id(id);
        let ack = self
            .js
            .send_publish(format!("{SUBJECT_PREFIX}{}", call.id), publish)
            .await
            .map_err(|e| self.fail("queueing a call", e))?;
        ack.await.map_err(|e| self.fail("queueing a call", e))?;
        Ok(())
    }

    async fn enqueue(&self, call: Call) -> Result<Call> {
        let dedupe = call.spec.dedupe.as_deref().map(dedupe_key);
        if let Some(key) = &dedupe {
            if let Some(existing) = self.deduped(key).await? {
                return Ok(existing);
            }
        }
        let record = encode(&call);
        if record.len() > self.js.client().server_info().max_payload {
            return Err(QueueError::TooLarge(format!(
                "the call is {} bytes with its payload; the NATS server {} takes at most {}",
                record.len(),
                self.address,
                self.js.client().server_info().max_payload
            )));
        }
        self.calls
            .create(&call.id, record)
            .await
            .map_err(|e| self.fail("storing a call", e))?;
        if let Some(key) = &dedupe {
            // The record is written before the dedupe key, so whoever
            // finds the key finds its call; of replicas racing with the
            // same key, the one whose create succeeds queues its call.
            match self.calls.create(key, Bytes::from(call.id.clone())).await {
                Ok(_) => {}
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                    let _ = self.calls.delete(&call.id).await;
                    return match self.deduped(key).await? {
                        Some(existing) => Ok(existing),
                        None => Err(QueueError::Unavailable(
                            "a call with this dedupe key was just removed; send again".into(),
                        )),
                    };
                }
                Err(e) => {
                    let _ = self.calls.delete(&call.id).await;
                    return Err(self.fail("storing a dedupe key", e));
                }
            }
        }
        if let Err(err) = self.publish(&call, message_id(&call)).await {
            // Not queued: take the record back so nothing half-made stays
            // (best effort: NATS may be the thing that failed).
            let _ = self.calls.delete(&call.id).await;
            if let Some(key) = &dedupe {
                let _ = self.calls.delete(key).await;
            }
            return Err(err);
        }
        Ok(call)
    }

    /// The call a dedupe key (its bucket key) queued, if it is still kept.
    async fn deduped(&self, key: &str) -> Result<Option<Call>> {
        let Some(entry) = self
            .calls
            .entry(key)
            .await
            .map_err(|e| self.fail("reading a dedupe key", e))?
        else {
            return Ok(None);
        };
        if entry.operation != kv::Operation::Put {
            return Ok(None);
        }
        let id = String::from_utf8_lossy(&entry.value).into_owned();
        Ok(self.entry(&id).await?.map(|(call, _)| call))
    }

    async fn claim(&self, now: u64, max: usize) -> Result<Vec<Call>> {
        let mut batch = self
            .consumer
            .fetch()
            .max_messages(max)
            .messages()
            .await
            .map_err(|e| self.fail("fetching calls", e))?;
        let mut calls = Vec::new();
        while let Some(message) = batch.next().await {
            let message = message.map_err(|e| self.fail("fetching calls", e))?;
            let (message, acker) = message.split();
            let id = String::from_utf8_lossy(&message.payload).into_owned();
            if let Some(call) = self.take(&id, acker, now).await? {
                calls.push(call);
            }
        }
        Ok(calls)
    }

    /// Marks the delivered call `id` running, unless its record says it
    /// is not to run now.
    async fn take(&self, id: &str, acker: Acker, now: u64) -> Result<Option<Call>> {
        let Some((mut call, revision)) = self.entry(id).await? else {
            // Removed (forgotten, purged) or never stored: nothing to run.
            let _ = acker.ack_with(AckKind::Term).await;
            return Ok(None);
        };
        match call.status {
            Status::Succeeded | Status::Dead => {
                // A delivery whose ack was lost after the call ended.
                let _ = acker.ack().await;
                return Ok(None);
            }
            Status::Queued | Status::Failed if call.due_ms > now => {
                // Its nak (with the delay) was lost: wait the rest.
                let delay = Duration::from_millis(call.due_ms - now);
                let _ = acker.ack_with(AckKind::Nak(Some(delay))).await;
                return Ok(None);
            }
            Status::Queued | Status::Failed => {}
            Status::Running => {
                // Delivered again while running: the replica running it
                // died or lost NATS for longer than ACK_WAIT.
                call.attempts.push(Attempt {
                    number: call.next_attempt(),
                    start_ms: call.updated_ms,
                    outcome: INTERRUPTED.into(),
                    stderr: "the replica running this attempt stopped answering".into(),
                    ..Default::default()
                });
            }
        }
        call.status = Status::Running;
        call.updated_ms = now;
        if !self.update(&call, revision).await? {
            // Another replica changed it meanwhile; leave this delivery
            // unacked: it comes back after ACK_WAIT and is looked at again.
            return Ok(None);
        }
        self.held.lock().expect("held calls").insert(
            call.id.clone(),
            Held {
                acker: Arc::new(acker),
                attempts: call.attempts.len(),
            },
        );
        Ok(Some(call))
    }

    /// Applies `change` to the running call `id`, stores it and settles its
    /// message: acked when the call ended, else naked until it is due.
    async fn finish(&self, id: &str, change: impl FnOnce(&mut Call)) -> Result<Call> {
        let held = self.held.lock().expect("held calls").remove(id);
        let (mut call, revision) = self
            .entry(id)
            .await?
            .ok_or_else(|| QueueError::NotFound(id.into()))?;
        let ours = held
            .as_ref()
            .is_some_and(|h| h.attempts == call.attempts.len());
        if call.status != Status::Running || !ours {
            // Taken over by another replica after a lapse of heartbeats:
            // its outcome is the one kept.
            return Err(wrong(&call, Status::Running));
        }
        change(&mut call);
        call.updated_ms = now_ms();
        if !self.update(&call, revision).await? {
            let (now, _) = self
                .entry(id)
                .await?
                .ok_or_else(|| QueueError::NotFound(id.into()))?;
            return Err(wrong(&now, Status::Running));
        }
        let acker = held.expect("checked above").acker;
        let settled = match call.status {
            Status::Queued | Status::Failed => {
                let delay = Duration::from_millis(call.due_ms.saturating_sub(now_ms()));
                acker.ack_with(AckKind::Nak(Some(delay))).await
            }
            _ => acker.ack().await,
        };
        if let Err(err) = settled {
            // The record is right; the message comes back after ACK_WAIT
            // and the claim settles it then.
            log::warn!(target: "QUEUE", "NATS {}: settling call {id}: {err}", self.address);
        }
        Ok(call)
    }

    /// Publishes the message of the waiting `call` again if the stream
    /// has none: a record written while NATS was going down (its publish
    /// lost, its removal too) would otherwise wait forever. Replicas
    /// repairing at once publish under one message id: stored once.
    async fn repair(&self, call: &Call) -> Result<()> {
        let subject = format!("{SUBJECT_PREFIX}{}", call.id);
        match self.stream.get_last_raw_message_by_subject(&subject).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => {
                log::warn!(target: "QUEUE", "async call {} had no message in NATS: queued again", call.id);
                self.publish(call, format!("{}:repair:{}", call.id, call.updated_ms))
                    .await
            }
            Err(e) => Err(self.fail("checking a waiting call", e)),
        }
    }

    /// Every call record (the dead-letter list and purge read them all).
    async fn all(&self) -> Result<Vec<(Call, u64)>> {
        let mut keys = self
            .calls
            .keys()
            .await
            .map_err(|e| self.fail("listing calls", e))?;
        let mut ids = Vec::new();
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| self.fail("listing calls", e))?;
            if !key.starts_with(DEDUPE_PREFIX) {
                ids.push(key);
            }
        }
        let mut calls = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(found) = self.entry(&id).await? {
                calls.push(found);
            }
        }
        Ok(calls)
    }

    /// Removes the record of `call` (at `revision`) and its dedupe key.
    async fn remove(&self, call: &Call, revision: u64) -> Result<bool> {
        match self
            .calls
            .delete_expect_revision(&call.id, Some(revision))
            .await
        {
            Ok(()) => {}
            Err(e) if e.kind() == kv::DeleteErrorKind::WrongLastRevision => return Ok(false),
            Err(e) => return Err(self.fail("removing a call", e)),
        }
        if let Some(key) = &call.spec.dedupe {
            let key = dedupe_key(key);
            let points_here = matches!(
                self.calls.get(key.as_str()).await,
                Ok(Some(id)) if id.as_ref() == call.id.as_bytes()
            );
            if points_here {
                let _ = self.calls.delete(&key).await;
            }
        }
        Ok(true)
    }
}

/// How often a callback's record is read and written again when another
/// replica changed it in between.
const CALLBACK_RECORD_TRIES: usize = 5;

impl Queue for NatsQueue {
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
            callback: None,
        };
        self.run("queueing a call", |s| async move { s.enqueue(call).await })
    }

    fn claim(&self, now: u64, max: usize) -> Result<Vec<Call>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        self.run(
            "fetching calls",
            move |s| async move { s.claim(now, max).await },
        )
    }

    /// Other replicas queue calls this one hears nothing of: look again
    /// after [`POLL`].
    fn next_due(&self) -> Option<u64> {
        Some(now_ms() + POLL.as_millis() as u64)
    }

    fn complete(&self, id: &str, attempt: Attempt, output: Blob) -> Result<Call> {
        let id = id.to_string();
        self.run("storing a call's outcome", |s| async move {
            s.finish(&id, |call| {
                call.attempts.push(attempt);
                call.status = Status::Succeeded;
                call.output = Some(output);
                call.finished_ms = Some(now_ms());
                call.callback = call.ended_callback();
            })
            .await
        })
    }

    fn fail(&self, id: &str, attempt: Attempt, retry_at: Option<u64>) -> Result<Call> {
        let id = id.to_string();
        self.run("storing a call's outcome", move |s| async move {
            s.finish(&id, |call| {
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
            .await
        })
    }

    fn release(&self, id: &str, due_ms: u64) -> Result<()> {
        let id = id.to_string();
        self.run("putting a call back", move |s| async move {
            s.finish(&id, |call| {
                call.status = waiting_status(call);
                call.due_ms = due_ms;
            })
            .await
            .map(drop)
        })
    }

    fn get(&self, id: &str) -> Result<Option<Call>> {
        let id = id.to_string();
        self.run("reading a call", |s| async move {
            Ok(s.entry(&id).await?.map(|(call, _)| call))
        })
    }

    fn dead_letters(&self, function: Option<&str>) -> Result<Vec<Call>> {
        let function = function.map(str::to_string);
        self.run("listing dead letters", |s| async move {
            let mut dead: Vec<Call> = s
                .all()
                .await?
                .into_iter()
                .map(|(call, _)| call)
                .filter(|c| c.status == Status::Dead)
                .filter(|c| function.as_deref().is_none_or(|f| c.spec.function == f))
                .collect();
            dead.sort_by_key(|c| (c.created_ms, c.id.clone()));
            Ok(dead)
        })
    }

    fn redrive(&self, id: &str, now: u64) -> Result<Call> {
        let id = id.to_string();
        self.run("redriving a call", move |s| async move {
            let (mut call, revision) = s
                .entry(&id)
                .await?
                .ok_or_else(|| QueueError::NotFound(id.clone()))?;
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
            if !s.update(&call, revision).await? {
                // Another replica redrove (or forgot) it first.
                let (now, _) = s.entry(&id).await?.ok_or(QueueError::NotFound(id))?;
                return Err(wrong(&now, Status::Dead));
            }
            // Each round's message is its own, so the duplicate window
            // does not swallow a redrive of a call queued moments ago.
            let round = format!("{}:redrive:{}", call.id, call.round_start);
            if let Err(err) = s.publish(&call, round).await {
                // Back to dead, so the redrive can be asked again.
                let mut back = call.clone();
                back.status = Status::Dead;
                back.finished_ms = Some(now);
                if let Ok(Some((_, rev))) = s.entry(&call.id).await {
                    let _ = s.update(&back, rev).await;
                }
                return Err(err);
            }
            Ok(call)
        })
    }

    fn forget(&self, id: &str) -> Result<()> {
        let id = id.to_string();
        self.run("removing a dead letter", |s| async move {
            let (call, revision) = s
                .entry(&id)
                .await?
                .ok_or_else(|| QueueError::NotFound(id.clone()))?;
            if call.status != Status::Dead {
                return Err(wrong(&call, Status::Dead));
            }
            if s.remove(&call, revision).await? {
                Ok(())
            } else {
                Err(QueueError::NotFound(id))
            }
        })
    }

    /// Also requeues waiting calls whose message is missing (see
    /// [`Shared::repair`]).
    fn purge(&self, before_ms: u64) -> Result<usize> {
        self.run("purging finished calls", move |s| async move {
            let mut purged = 0;
            let now = now_ms();
            for (call, revision) in s.all().await? {
                let finished = matches!(call.status, Status::Succeeded | Status::Dead);
                if finished
                    && call.finished_ms.is_some_and(|f| f < before_ms)
                    && s.remove(&call, revision).await?
                {
                    purged += 1;
                }
                if matches!(call.status, Status::Queued | Status::Failed)
                    && call.updated_ms + REPAIR_AFTER_MS < now
                {
                    s.repair(&call).await?;
                }
            }
            Ok(purged)
        })
    }

    /// Stored at the revision read, read again when another replica wrote
    /// the record in between (its purge, say): the outcome is this
    /// replica's delivery, so it wins over nothing but itself.
    fn record_callback(&self, id: &str, outcome: CallbackOutcome) -> Result<Call> {
        let id = id.to_string();
        self.run("recording a callback", move |s| async move {
            for _ in 0..CALLBACK_RECORD_TRIES {
                let (mut call, revision) = s
                    .entry(&id)
                    .await?
                    .ok_or_else(|| QueueError::NotFound(id.clone()))?;
                call.callback = Some(outcome.clone());
                if s.update(&call, revision).await? {
                    return Ok(call);
                }
            }
            Err(QueueError::Store(format!(
                "call '{id}' kept changing while its callback was recorded"
            )))
        })
    }

    /// Every replica that starts delivers what is pending, so a callback
    /// another replica is delivering at that moment may go out twice
    /// (callbacks are at least once, like the calls).
    fn pending_callbacks(&self) -> Result<Vec<Call>> {
        self.run("listing pending callbacks", |s| async move {
            Ok(s.all()
                .await?
                .into_iter()
                .map(|(call, _)| call)
                .filter(Call::callback_pending)
                .collect())
        })
    }

    /// Waiting calls of the whole cluster (the consumer's pending count),
    /// and those this replica runs.
    fn depth(&self) -> (usize, usize) {
        let running = self.shared.held.lock().expect("held calls").len();
        let waiting = self
            .run("reading the queue's depth", |s| async move {
                let info = s
                    .consumer
                    .get_info()
                    .await
                    .map_err(|e| s.fail("reading the queue's depth", e))?;
                Ok(info.num_pending as usize + info.num_ack_pending)
            })
            .unwrap_or(0);
        (waiting.saturating_sub(running), running)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_split_from_the_address() {
        let url = NatsUrl::parse("nats://alice:s3cret@nats.example:4222").unwrap();
        assert_eq!(url.address, "nats://nats.example:4222");
        assert_eq!(url.user.as_deref(), Some("alice"));
        assert_eq!(url.password.as_deref(), Some("s3cret"));
        let token = NatsUrl::parse("nats://t0ken@10.0.0.1:4222").unwrap();
        assert_eq!(
            (
                token.address.as_str(),
                token.user.as_deref(),
                token.password
            ),
            ("nats://10.0.0.1:4222", Some("t0ken"), None)
        );
        assert_eq!(NatsUrl::parse("tls://h:1").unwrap().address, "tls://h:1");
    }

    #[test]
    fn a_bad_url_is_refused_without_its_password() {
        for bad in [
            "http://u:hunter2@h:1",
            "hunter2",
            "nats://u:hunter2@",
            "nats://h/x",
        ] {
            let err = NatsUrl::parse(bad).unwrap_err().to_string();
            assert!(!err.contains("hunter2"), "{err}");
            assert!(err.contains("not a NATS address"), "{err}");
        }
    }

    #[test]
    fn dedupe_keys_become_valid_bucket_keys_and_message_ids() {
        assert_eq!(dedupe_key("a:b"), "dedupe.613a62");
        let mut call = Call {
            id: "00ff".into(),
            spec: NewCall::default(),
            status: Status::Queued,
            created_ms: 0,
            updated_ms: 0,
            due_ms: 0,
            finished_ms: None,
            attempts: Vec::new(),
            round_start: 0,
            output: None,
            callback: None,
        };
        assert_eq!(message_id(&call), "00ff");
        call.spec.dedupe = Some("schedule:report:1700000000".into());
        assert_eq!(message_id(&call), "schedule:report:1700000000");
        call.spec.dedupe = Some("two words\n".into());
        assert_eq!(message_id(&call), dedupe_key("two words\n"));
    }
}
