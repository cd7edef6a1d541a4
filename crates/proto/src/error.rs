//! Why a request failed, as every part reports it. The gateway maps each
//! [`ErrorKind`] to an HTTP status in one place; nothing else decides
//! statuses.

use serde::{Deserialize, Serialize};

/// The class of a failure, independent of any transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request itself is wrong (missing or invalid parameter, body).
    BadRequest,
    /// No such function, version or route.
    NotFound,
    /// The route exists but not for this method.
    MethodNotAllowed,
    /// The function name is already deployed.
    NameTaken,
    /// The request body is larger than the limit.
    TooLarge,
    /// The client took too long to send its request.
    RequestTimeout,
    /// The source did not compile or parse; `details` holds the message.
    CompileFailed,
    /// The function store is at a limit (function count or bytes).
    InsufficientStorage,
    /// Too many calls are waiting; retry later.
    Overloaded,
    /// A part the request needs is missing or down (toolchain, LB, Server).
    Unavailable,
    /// The shared function store (S3) cannot be reached or refused the
    /// write; retry later (`Retry-After`). Cached functions keep serving.
    StoreUnavailable,
    /// A cluster notice without a valid signature.
    Unauthorized,
    /// The platform failed (I/O, an unexpected answer).
    Internal,
}

/// A failure with a message for the client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ServiceError {
    pub kind: ErrorKind,
    pub message: String,
    /// Longer text (a compiler's output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

impl ServiceError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            details: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = Some(details.into());
        self
    }
}
