//! The worker's stdin/stdout loop: one [`Job`] line in, one [`JobResult`]
//! line out, in order, until stdin closes.
//!
//! A reader thread parses lines as they arrive, so the loop can tell when no
//! job is waiting and use that idle time to prepare the next instance
//! ([`JobRunner::prepare_idle`]).

use std::io::Write;
use std::sync::mpsc::{self, TryRecvError};

use faas_proto::frame::LineReader;
use faas_proto::{decode, encode, FailureKind, FrameError, Job, JobResult, DEFAULT_MAX_FRAME};

use crate::jobs::JobRunner;

/// Serves jobs from `input` to `output` until `input` ends.
pub fn serve(
    runner: &mut JobRunner,
    input: impl std::io::Read + Send + 'static,
    mut output: impl Write,
) -> std::io::Result<()> {
    // Bounded: the Server already bounds what it sends; this only keeps the
    // reader from running far ahead of the runner.
    let (tx, rx) = mpsc::sync_channel::<Result<Job, FrameError>>(64);
    let reader = std::thread::Builder::new().name("stdin".into()).spawn(
        move || -> std::io::Result<()> {
            let mut lines = LineReader::new(input, DEFAULT_MAX_FRAME);
            while let Some(line) = lines.next_line()? {
                if tx.send(line.and_then(|line| decode::<Job>(&line))).is_err() {
                    break;
                }
            }
            Ok(())
        },
    )?;

    loop {
        let next = match rx.try_recv() {
            Ok(next) => next,
            Err(TryRecvError::Empty) => {
                runner.prepare_idle();
                match rx.recv() {
                    Ok(next) => next,
                    Err(_) => break,
                }
            }
            Err(TryRecvError::Disconnected) => break,
        };
        let result = match next {
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
        runner.tidy();
    }
    reader.join().unwrap_or(Ok(()))
}
