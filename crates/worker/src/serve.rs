//! The worker's stdin/stdout loop, until stdin closes: a `run` line
//! ([`WorkerRequest::Run`]) in, its [`JobResult`] line out, in order; a
//! `forget` line in, nothing out.
//!
//! Before blocking for the next job, the loop checks whether one is already
//! waiting (buffered, or readable on stdin); if not, it uses the idle time to
//! prepare the next instance ([`JobRunner::prepare_idle`]). No extra thread
//! sits between stdin and the runner.
//!
//! A function's stderr is logged here, at INFO, with its request id
//! ([`log_stderr`]): the one place where it reaches the log, so that
//! anything that must never be logged can be filtered there: the call's
//! secret values are ([`faas_proto::redact_secrets`]).

use std::io::Write;
use std::os::fd::AsFd;

use faas_proto::frame::LineReader;
use faas_proto::{
    encode, req_of_line, FailureKind, Job, JobResult, WorkerRequest, DEFAULT_MAX_FRAME,
};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::jobs::JobRunner;

/// Serves requests from `input` to `output` until `input` ends.
pub fn serve<R: std::io::Read + AsFd>(
    runner: &mut JobRunner,
    input: R,
    mut output: impl Write,
) -> std::io::Result<()> {
    let mut lines = LineReader::new(input, DEFAULT_MAX_FRAME);
    loop {
        if !lines.has_line() && !readable_now(lines.get_ref()) {
            runner.prepare_idle();
        }
        let Some(line) = lines.next_line()? else {
            break;
        };
        let reply = match line {
            Ok(line) => answer(runner, &line),
            Err(err) => {
                log::warn!("bad request line: {err}");
                None
            }
        };
        if let Some(result) = reply {
            output.write_all(&encode(&result))?;
            output.flush()?;
        }
        runner.tidy();
    }
    Ok(())
}

/// Handles one line: a job's result, or nothing for a one-way request (and
/// for a line too broken to say which request it was: nobody waits for it).
fn answer(runner: &mut JobRunner, line: &[u8]) -> Option<JobResult> {
    match WorkerRequest::decode(line) {
        Ok(WorkerRequest::Run(job)) => Some(run(runner, job)),
        Ok(WorkerRequest::Forget { ids }) => {
            log::debug!("forgetting {}", ids.join(", "));
            runner.forget(&ids);
            None
        }
        Err(err) => {
            log::warn!("bad request line: {err}");
            let req = req_of_line(line)?;
            Some(JobResult::failure(
                req,
                FailureKind::BadJob,
                format!("bad job: {err}"),
            ))
        }
    }
}

/// Runs one job and logs how it went (and its stderr).
fn run(runner: &mut JobRunner, job: Job) -> JobResult {
    let (req, function) = (job.req, job.function.clone());
    let request_id = job.request_id.clone().unwrap_or_else(|| "-".into());
    // The call's secret values, to keep them out of the logged stderr (a
    // copy, as the runner takes the job: at most 64 values of 64 KiB, and
    // nothing for a function without secrets).
    let secrets = job.secrets.clone();
    let result = runner.run(job);
    let stderr = faas_proto::redact_secrets(
        result.stderr.as_bytes(),
        secrets
            .iter()
            .map(|s| (s.name.as_str(), s.value.0.as_bytes())),
    );
    log_stderr(&request_id, &function, &stderr);
    log::debug!(
        "req {req} [{request_id}] {function}: ok={} in {:.2} ms",
        result.ok,
        result.duration_ms
    );
    result
}

/// Whether `fd` has bytes (or end of file) to read right now.
fn readable_now(fd: &impl AsFd) -> bool {
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
}

/// Most bytes of a call's stderr that reach the log.
pub const STDERR_LOG_BYTES: usize = 2048;

/// Logs what a function wrote on stderr, at INFO, as one line:
/// `req=ID fn=FUNCTION stderr: TEXT`, the first [`STDERR_LOG_BYTES`] bytes
/// with line breaks and control characters escaped (a function cannot
/// forge log lines), and `[truncated, N bytes]` when there was more.
pub fn log_stderr(request_id: &str, function: &str, stderr: &[u8]) {
    if stderr.is_empty() {
        return;
    }
    log::info!(
        "req={request_id} fn={function} stderr: {}",
        stderr_for_log(stderr)
    );
}

/// The logged form of a call's stderr (see [`log_stderr`]).
fn stderr_for_log(stderr: &[u8]) -> String {
    let kept = &stderr[..stderr.len().min(STDERR_LOG_BYTES)];
    let mut text: String = String::from_utf8_lossy(kept)
        .chars()
        .flat_map(char::escape_debug)
        .collect();
    if kept.len() < stderr.len() {
        text.push_str(&format!(" [truncated, {} bytes]", stderr.len()));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_is_logged_on_one_line_and_capped() {
        assert_eq!(
            stderr_for_log(b"oops\nline 2\x1b[31m"),
            "oops\\nline 2\\u{1b}[31m"
        );
        let long = vec![b'x'; STDERR_LOG_BYTES + 10];
        let logged = stderr_for_log(&long);
        assert!(logged.starts_with(&"x".repeat(STDERR_LOG_BYTES)));
        assert!(logged.ends_with(&format!(" [truncated, {} bytes]", STDERR_LOG_BYTES + 10)));
    }
}
