//! The one place where outcomes become HTTP statuses.

use faas_proto::{ErrorKind, FailureKind, JobResult};
use hyper::StatusCode;

/// The status of a request that failed with `kind`.
pub fn for_error(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorKind::NameTaken => StatusCode::CONFLICT,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        ErrorKind::CompileFailed => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
        ErrorKind::Overloaded | ErrorKind::Unavailable | ErrorKind::StoreUnavailable => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The status of an invocation that reached a worker. A runtime or sandbox
/// the worker lacks is 503 (the operator installs or enables it; the
/// message says what); 500 is the function failing, a module that must be
/// redeployed, or a fault of the worker.
pub fn for_invocation(result: &JobResult) -> StatusCode {
    if result.ok {
        return StatusCode::OK;
    }
    match result.kind {
        Some(FailureKind::Timeout) => StatusCode::GATEWAY_TIMEOUT,
        Some(FailureKind::NotFound) => StatusCode::NOT_FOUND,
        Some(FailureKind::WorkerCrashed) => StatusCode::BAD_GATEWAY,
        Some(FailureKind::BadJob) => StatusCode::BAD_REQUEST,
        Some(FailureKind::RuntimeMissing | FailureKind::SandboxUnavailable) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        Some(
            FailureKind::Exit
            | FailureKind::Trap
            | FailureKind::ArtifactInvalid
            | FailureKind::Internal,
        )
        | None => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_map_to_statuses() {
        let cases = [
            (FailureKind::Timeout, 504),
            (FailureKind::WorkerCrashed, 502),
            (FailureKind::NotFound, 404),
            (FailureKind::Trap, 500),
            (FailureKind::Exit, 500),
            (FailureKind::Internal, 500),
            (FailureKind::ArtifactInvalid, 500),
            (FailureKind::RuntimeMissing, 503),
            (FailureKind::SandboxUnavailable, 503),
            (FailureKind::BadJob, 400),
        ];
        for (kind, status) in cases {
            let result = JobResult::failure(1, kind, "x");
            assert_eq!(for_invocation(&result).as_u16(), status, "{kind:?}");
        }
        let ok = JobResult::success(1, "hi".into(), Default::default(), 0, 1.0);
        assert_eq!(for_invocation(&ok), StatusCode::OK);
        assert_eq!(for_error(ErrorKind::NameTaken).as_u16(), 409);
        assert_eq!(for_error(ErrorKind::CompileFailed).as_u16(), 422);
        assert_eq!(for_error(ErrorKind::Overloaded).as_u16(), 503);
        assert_eq!(for_error(ErrorKind::Unavailable).as_u16(), 503);
        assert_eq!(for_error(ErrorKind::Internal).as_u16(), 500);
        assert_eq!(for_error(ErrorKind::InsufficientStorage).as_u16(), 507);
    }
}
