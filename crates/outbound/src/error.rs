//! Why a call got no answer. Messages name the host or URL (never its query,
//! which may carry a key) and the reason; they never include the request's
//! headers or body, so they may be logged and shown to the function.

/// `Result` with [`FetchError`].
pub type Result<T> = std::result::Result<T, FetchError>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The policy refused the request (or a redirect hop): not granted,
    /// a private or protected address.
    #[error("outbound request denied: {0}")]
    Denied(String),
    /// The deadline passed before the whole answer was read.
    #[error("outbound request timed out (the call's deadline passed)")]
    Timeout,
    /// The response body was larger than the limit.
    #[error("outbound response larger than {limit} bytes")]
    TooLarge { limit: u64 },
    /// The request itself is not acceptable (URL, scheme, method, header,
    /// body size).
    #[error("invalid outbound request: {0}")]
    Invalid(String),
    /// The request was permitted but failed: resolution, connection, TLS,
    /// protocol, too many redirects.
    #[error("outbound request failed: {0}")]
    Failed(String),
}

impl FetchError {
    /// The outcome label of metrics and logs: `denied`, `timeout` or
    /// `error`.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Denied(_) => "denied",
            Self::Timeout => "timeout",
            Self::TooLarge { .. } | Self::Invalid(_) | Self::Failed(_) => "error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_and_messages() {
        assert_eq!(FetchError::Denied("x".into()).outcome(), "denied");
        assert_eq!(FetchError::Timeout.outcome(), "timeout");
        assert_eq!(FetchError::TooLarge { limit: 1 }.outcome(), "error");
        assert_eq!(FetchError::Invalid("x".into()).outcome(), "error");
        assert_eq!(FetchError::Failed("x".into()).outcome(), "error");
        assert_eq!(
            FetchError::TooLarge { limit: 10 }.to_string(),
            "outbound response larger than 10 bytes"
        );
    }
}
