//! Running a child process against a deadline: the one place that waits
//! for a process group, kills it when its time is up, and captures its
//! output with a cap. Native function calls ([`crate::native`]) and the
//! Server's compilers (`faas_server::toolchain`) both run through it.

use std::io::Read;
use std::process::{Child, ExitStatus};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// How a child ended.
#[derive(Debug)]
pub struct Ended {
    pub status: ExitStatus,
    /// The deadline passed first, and the group was killed.
    pub timed_out: bool,
}

/// Waits for `child` until `deadline`, then kills its whole process group
/// (the child must lead one: `process_group(0)`), so whatever it started
/// goes too. The group is killed when the child exits in time as well:
/// nothing it left behind outlives the wait.
pub fn wait_until(child: &mut Child, deadline: Instant) -> std::io::Result<Ended> {
    let group = Pid::from_raw(child.id() as i32);
    // Short calls end in well under a millisecond: poll often at first,
    // then settle at 5 ms so a long build costs no CPU.
    let mut poll = Duration::from_micros(200);
    let (status, timed_out) = loop {
        if let Some(status) = child.try_wait()? {
            break (Some(status), false);
        }
        if Instant::now() >= deadline {
            break (None, true);
        }
        std::thread::sleep(poll);
        poll = (poll * 2).min(Duration::from_millis(5));
    };
    let _ = killpg(group, Signal::SIGKILL);
    let status = match status {
        Some(status) => status,
        None => child.wait()?,
    };
    Ok(Ended { status, timed_out })
}

/// Output being read on its own thread (see [`capture`]).
pub struct Captured(mpsc::Receiver<(Vec<u8>, bool)>);

/// Reads a pipe on a thread, keeping at most `cap` bytes; the rest is read
/// and dropped so the writer never blocks on a full pipe.
pub fn capture(mut pipe: impl Read + Send + 'static, cap: usize) -> Captured {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut truncated = false;
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = cap.saturating_sub(kept.len());
                    truncated |= n > room;
                    kept.extend_from_slice(&chunk[..n.min(room)]);
                }
            }
        }
        let _ = tx.send((kept, truncated));
    });
    Captured(rx)
}

impl Captured {
    /// The bytes read and whether some were dropped. Gives up after
    /// `grace` if a process that escaped the group still holds the pipe
    /// open (then nothing is returned, marked truncated).
    pub fn collect(self, grace: Duration) -> (Vec<u8>, bool) {
        self.0.recv_timeout(grace).unwrap_or((Vec::new(), true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};

    fn shell(script: &str) -> Child {
        Command::new("/bin/sh")
            .args(["-c", script])
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap()
    }

    #[test]
    fn a_child_that_ends_in_time_keeps_its_status_and_output() {
        let mut child = shell("echo hello; exit 3");
        let out = capture(child.stdout.take().unwrap(), 1024);
        let ended = wait_until(&mut child, Instant::now() + Duration::from_secs(30)).unwrap();
        assert!(!ended.timed_out);
        assert_eq!(ended.status.code(), Some(3));
        assert_eq!(
            out.collect(Duration::from_secs(5)),
            (b"hello\n".to_vec(), false)
        );
    }

    #[test]
    fn a_child_past_its_deadline_is_killed_with_its_group() {
        // The grandchild holds stdout: it must die with the group for the
        // pipe to close.
        let mut child = shell("sleep 60 & sleep 60");
        let out = capture(child.stdout.take().unwrap(), 1024);
        let started = Instant::now();
        let ended = wait_until(&mut child, started + Duration::from_millis(100)).unwrap();
        assert!(ended.timed_out);
        assert!(started.elapsed() >= Duration::from_millis(100));
        assert_eq!(out.collect(Duration::from_secs(30)), (Vec::new(), false));
    }

    #[test]
    fn output_past_the_cap_is_dropped_and_marked() {
        let mut child = shell("head -c 100000 /dev/zero");
        let out = capture(child.stdout.take().unwrap(), 10);
        wait_until(&mut child, Instant::now() + Duration::from_secs(30)).unwrap();
        assert_eq!(out.collect(Duration::from_secs(5)), (vec![0; 10], true));
    }
}
