//! Wire formats shared by every faas process, and their newline-delimited JSON
//! framing.
//!
//! Three conversations use these types, each one JSON object per line and each
//! message carrying a request id (`req`) so one connection can carry many
//! requests at once:
//!
//! - gateway → Server on the Server's UNIX socket: [`ServerRequest`] /
//!   [`ServerReply`];
//! - Server → load balancer on `/tmp/faas_lb.sock`: [`LbRequest`] / [`LbReply`]
//!   (the seed's `{"type":"invoke",...}` answered by
//!   `{"type":"forward_to_worker","worker_id":N,"job":{...}}`);
//! - Server → worker on the worker's stdin/stdout: [`WorkerRequest`] (run a
//!   [`Job`], or forget deleted functions) / [`JobResult`].
//!
//! Modules:
//! - [`blob`]: bytes on the wire ([`Blob`]: a string when UTF-8, base64
//!   otherwise), for payloads and outputs;
//! - [`grant`]: outbound grants (`allow=HOST[:PORT]`), parsed and matched
//!   the same way by the Server (at deploy) and the worker's HTTP client;
//! - [`lang`]: the supported languages ([`Lang`]), shared by every part;
//! - [`error`]: [`ServiceError`] and its [`ErrorKind`], the one vocabulary of
//!   failures (the gateway alone turns it into HTTP statuses);
//! - [`messages`]: the message types;
//! - [`frame`]: a sans-I/O line decoder with a size cap and typed errors, plus
//!   [`frame::encode`];
//! - [`lines`] (feature `tokio`): the async line reader and line writer every
//!   connection shares;
//! - [`client`] (feature `tokio`): a multiplexing NDJSON client used by the
//!   gateway and the Server for their persistent connections.
//!
//! The framing works on byte slices so that a blocking reader, an async
//! reader and a test can all drive it.

pub mod blob;
pub mod error;
pub mod frame;
pub mod grant;
pub mod lang;
pub mod messages;
pub mod redact;

#[cfg(feature = "tokio")]
pub mod client;
#[cfg(feature = "tokio")]
pub mod lines;

pub use blob::Blob;
pub use error::{ErrorKind, ServiceError};
pub use frame::{decode, encode, FrameDecoder, FrameError, DEFAULT_MAX_FRAME};
pub use grant::{Grant, Grants};
pub use lang::Lang;
pub use messages::*;
pub use redact::redact_secrets;
