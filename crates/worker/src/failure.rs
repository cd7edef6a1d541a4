//! Why a job could not run, and the [`FailureKind`] each reason is reported
//! as. The kind is what the gateway turns into a status: a missing runtime
//! or sandbox is the operator's to install or enable (503, the message
//! naming what), an unusable module must be redeployed, and only the
//! worker's own faults are internal errors.

use faas_proto::{FailureKind, JobResult, RequestId};

use crate::interpreters::InterpreterError;
use crate::native::NativeError;
use crate::wasm::SandboxError;

/// Why a job's function could not be loaded or started.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("function '{id}' not found ({why})")]
    NotFound { id: String, why: String },
    /// The job is unusable as sent (an invalid id, an unknown language).
    #[error("{0}")]
    BadJob(String),
    /// The function's metadata cannot be read as the Server wrote it.
    #[error("function '{id}' has unreadable metadata: {why}")]
    Metadata { id: String, why: String },
    /// JavaScript or Python in WebAssembly: the interpreter module is
    /// missing or broken (its message says to run `make toolchains`).
    #[error(transparent)]
    Interpreter(#[from] InterpreterError),
    /// PHP, or JS/Python on a host runtime.
    #[error(transparent)]
    Native(#[from] NativeError),
    /// The function's module could not be compiled or instantiated.
    #[error("function '{id}': {source}{}", redeploy_hint(.source))]
    Module { id: String, source: SandboxError },
}

impl JobError {
    pub fn not_found(id: &str, why: impl std::fmt::Display) -> Self {
        Self::NotFound {
            id: id.to_string(),
            why: why.to_string(),
        }
    }

    pub fn module(id: &str, source: SandboxError) -> Self {
        Self::Module {
            id: id.to_string(),
            source,
        }
    }

    /// How the failure is reported to the Server (and so to the client).
    pub fn kind(&self) -> FailureKind {
        match self {
            Self::NotFound { .. } => FailureKind::NotFound,
            Self::BadJob(_) => FailureKind::BadJob,
            Self::Metadata { .. } => FailureKind::Internal,
            Self::Interpreter(_) => FailureKind::RuntimeMissing,
            Self::Native(err) => err.kind(),
            Self::Module { source, .. } if module_is_invalid(source) => {
                FailureKind::ArtifactInvalid
            }
            Self::Module { .. } => FailureKind::Internal,
        }
    }

    /// The job's answer: failed with this kind and message.
    pub fn into_result(self, req: RequestId) -> JobResult {
        JobResult::failure(req, self.kind(), self.to_string())
    }
}

/// Whether the stored module itself is unusable (not the worker's fault: it
/// will fail the same way on any worker until it is redeployed).
fn module_is_invalid(err: &SandboxError) -> bool {
    matches!(err, SandboxError::Compile(_) | SandboxError::NoStart)
}

fn redeploy_hint(err: &SandboxError) -> &'static str {
    if module_is_invalid(err) {
        "; redeploy the function"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::Runtime;
    use faas_proto::Lang;

    #[test]
    fn each_reason_has_its_kind_and_names_the_fix() {
        let php = Runtime::of(Lang::Php).unwrap();
        let cases = [
            (
                JobError::Native(NativeError::MissingRuntime(php)),
                FailureKind::RuntimeMissing,
                "FAAS_PHP",
            ),
            (
                JobError::Native(NativeError::NoSandbox("no userns".into())),
                FailureKind::SandboxUnavailable,
                "--allow-unconfined-native",
            ),
            (
                JobError::module("f_1", SandboxError::Compile("bad magic".into())),
                FailureKind::ArtifactInvalid,
                "redeploy the function",
            ),
            (
                JobError::module("f_1", SandboxError::NoStart),
                FailureKind::ArtifactInvalid,
                "redeploy the function",
            ),
            (
                JobError::module("f_1", SandboxError::Instantiate("mmap".into())),
                FailureKind::Internal,
                "f_1",
            ),
            (
                JobError::Interpreter(InterpreterError::Missing {
                    lang: Lang::Js,
                    path: "/rt/qjs.wasm".into(),
                }),
                FailureKind::RuntimeMissing,
                "make toolchains",
            ),
            (
                JobError::not_found("f_1", "no code.wasm"),
                FailureKind::NotFound,
                "f_1",
            ),
        ];
        for (err, kind, names) in cases {
            let message = err.to_string();
            assert!(message.contains(names), "{message}");
            let result = err.into_result(4);
            assert_eq!((result.req, result.ok), (4, false));
            assert_eq!(result.kind, Some(kind), "{message}");
            assert_eq!(result.error.as_deref(), Some(message.as_str()));
        }
        let missing = NativeError::MissingRuntime(php).to_string();
        assert!(missing.contains("php-cli"), "{missing}");
    }
}
