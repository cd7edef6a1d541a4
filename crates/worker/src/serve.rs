//! The worker's stdin/stdout loop: one [`Job`] line in, one [`JobResult`]
//! line out, in order, until stdin closes.
//!
//! Before blocking for the next job, the loop checks whether one is already
//! waiting (buffered, or readable on stdin); if not, it uses the idle time to
//! prepare the next instance ([`JobRunner::prepare_idle`]). No extra thread
//! sits between stdin and the runner.

use std::io::Write;
use std::os::fd::AsFd;

use faas_proto::frame::LineReader;
use faas_proto::{decode, encode, FailureKind, Job, JobResult, DEFAULT_MAX_FRAME};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::jobs::JobRunner;

/// Serves jobs from `input` to `output` until `input` ends.
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
        let result = match line.and_then(|line| decode::<Job>(&line)) {
            Ok(job) if !job.forget.is_empty() => {
                log::debug!("forgetting {}", job.forget.join(", "));
                runner.forget(&job.forget);
                JobResult::success(0, Default::default(), Default::default(), 0, 0.0)
            }
            Ok(job) => {
                let (req, function) = (job.req, job.function.clone());
                let request_id = job.request_id.clone().unwrap_or_else(|| "-".into());
                let result = runner.run(job);
                log::debug!(
                    "req {req} [{request_id}] {function}: ok={} in {:.2} ms",
                    result.ok,
                    result.duration_ms
                );
                result
            }
            Err(err) => {
                log::warn!("bad job line: {err}");
                JobResult::failure(0, FailureKind::BadJob, format!("bad job: {err}"))
            }
        };
        output.write_all(&encode(&result))?;
        output.flush()?;
        runner.tidy();
    }
    Ok(())
}

/// Whether `fd` has bytes (or end of file) to read right now.
fn readable_now(fd: &impl AsFd) -> bool {
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
}
