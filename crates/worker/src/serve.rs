//! The worker's stdin/stdout loop: one [`Job`] line in, one [`JobResult`]
//! line out, in order, until stdin closes.

use std::io::Write;

use faas_proto::frame::LineReader;
use faas_proto::{decode, encode, FailureKind, Job, JobResult, DEFAULT_MAX_FRAME};

use crate::jobs::JobRunner;

/// Serves jobs from `input` to `output` until `input` ends.
pub fn serve(
    runner: &mut JobRunner,
    input: impl std::io::Read,
    mut output: impl Write,
) -> std::io::Result<()> {
    let mut lines = LineReader::new(input, DEFAULT_MAX_FRAME);
    while let Some(line) = lines.next_line()? {
        let result = match line.and_then(|line| decode::<Job>(&line)) {
            Ok(job) => {
                let (req, function) = (job.req, job.function.clone());
                let result = runner.run(job);
                log::debug!(
                    "req {req} {function}: ok={} in {:.2} ms",
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
    }
    Ok(())
}
