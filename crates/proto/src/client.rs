//! A multiplexing NDJSON client over one persistent UNIX-socket connection.
//!
//! Many tasks can [`call`](Client::call) at once: each request gets a fresh id,
//! a writer task serialises the lines onto the socket, and a reader task hands
//! every reply to the caller waiting on its id. Replies may come back in any
//! order (the load balancer answers a queued FIFO job later than the ones
//! behind it). Used by the gateway (→ Server) and the Server (→ LB) so that no
//! request pays for a connect.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{de::DeserializeOwned, Serialize};
use std::ops::ControlFlow;

use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};

use crate::frame::{decode, encode, DEFAULT_MAX_FRAME};
use crate::lines::{read_lines, write_lines};
use crate::messages::{Correlated, RequestId};

/// Why a call got no reply.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connection closed")]
    Closed,
}

type Pending<Rep> = Arc<Mutex<HashMap<RequestId, oneshot::Sender<Rep>>>>;

/// Sends `Req` lines and routes `Rep` lines back by request id.
pub struct Client<Req, Rep> {
    writer: mpsc::Sender<Vec<u8>>,
    pending: Pending<Rep>,
    next_id: AtomicU64,
    closed: Arc<AtomicBool>,
    _req: PhantomData<fn(Req)>,
}

impl<Req, Rep> Client<Req, Rep>
where
    Req: Serialize,
    Rep: DeserializeOwned + Correlated + Send + 'static,
{
    /// Connects to a UNIX socket; must be called inside a tokio runtime.
    pub async fn connect(path: &Path) -> std::io::Result<Self> {
        Ok(Self::new(UnixStream::connect(path).await?))
    }

    /// Wraps a connected stream, spawning its reader and writer tasks.
    pub fn new(stream: UnixStream) -> Self {
        let (read_half, write_half) = stream.into_split();
        let pending: Pending<Rep> = Arc::default();
        let closed = Arc::new(AtomicBool::new(false));
        // Bounded: a stalled peer pushes back on callers instead of letting
        // queued lines grow without limit.
        let (writer, lines) = mpsc::channel::<Vec<u8>>(1024);

        let writer_closed = closed.clone();
        tokio::spawn(async move {
            write_lines(write_half, lines).await;
            writer_closed.store(true, Ordering::Release);
        });

        let reader_pending = pending.clone();
        let reader_closed = closed.clone();
        tokio::spawn(async move {
            read_lines(read_half, DEFAULT_MAX_FRAME, |line| {
                let line = match line {
                    Ok(line) => line,
                    Err(err) => {
                        log::error!("peer sent an unusable line: {err}");
                        return ControlFlow::Break(());
                    }
                };
                match decode::<Rep>(&line) {
                    Ok(reply) => {
                        if let Some(id) = reply.req_id() {
                            let waiter = reader_pending.lock().unwrap().remove(&id);
                            if let Some(waiter) = waiter {
                                let _ = waiter.send(reply);
                            }
                        }
                    }
                    Err(err) => log::warn!("dropping a reply: {err}"),
                }
                ControlFlow::Continue(())
            })
            .await;
            reader_closed.store(true, Ordering::Release);
            // Dropping the senders wakes every waiting caller with Closed.
            reader_pending.lock().unwrap().clear();
        });

        Self {
            writer,
            pending,
            next_id: AtomicU64::new(1),
            closed,
            _req: PhantomData,
        }
    }

    /// True once either direction of the connection has failed.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire) || self.writer.is_closed()
    }

    /// Sends the request built by `build` (given a fresh id) and waits for
    /// the reply with that id.
    pub async fn call(&self, build: impl FnOnce(RequestId) -> Req) -> Result<Rep, ClientError> {
        if self.is_closed() {
            return Err(ClientError::Closed);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, tx);
        let line = encode(&build(id));
        if self.writer.send(line).await.is_err() {
            self.pending.lock().unwrap().remove(&id);
            return Err(ClientError::Closed);
        }
        // Re-check after registering: the reader may have cleared the map
        // between our first check and the insert.
        if self.closed.load(Ordering::Acquire) {
            self.pending.lock().unwrap().remove(&id);
        }
        rx.await.map_err(|_| ClientError::Closed)
    }

    /// Sends a one-way message.
    pub async fn send(&self, msg: &Req) -> Result<(), ClientError> {
        self.writer
            .send(encode(msg))
            .await
            .map_err(|_| ClientError::Closed)
    }
}
