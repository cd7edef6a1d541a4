//! The Server as child subreaper: processes orphaned below it (what a
//! crashed or killed worker's calls left) become its children instead of
//! PID 1's, and a thread reaps them. When the Server is PID 1 (a container
//! without an init) every orphan of the container comes here anyway, and
//! nothing else would reap it.
//!
//! The Server also waits for its own children (workers through tokio,
//! compilers through std or tokio), so a blanket `waitpid(-1)` here would
//! steal their exit statuses and their waits would fail with `ECHILD`. An
//! orphan is told apart by its session instead, which needs no list of
//! pids: every worker leads a session of its own (`setsid` at spawn), so
//! the processes it starts carry its session id (its bubblewrap runs
//! without `--new-session` for this), while a child the Server
//! started itself is either in the Server's session (inherited) or leads
//! its own (it called `setsid`). So a zombie child that is in another
//! session without leading it was not started by the Server: it is an
//! orphan, and only those are reaped (`waitpid` on that one pid).
//!
//! Any other zombie child (an orphan leading a session of its own, such as
//! the sandbox's PID 1 of a build's bubblewrap, which its parent does not
//! wait for, or one in the Server's own session) is reaped once it has been
//! a zombie for two scans in a row: the Server waits for its own children
//! within milliseconds of their exit, so one that stays a zombie for a
//! second is nobody's.
//!
//! Zombies are found by scanning `/proc` once a second: SIGCHLD belongs to
//! tokio's child handling, and a second of delay costs nothing.

use std::collections::HashSet;
use std::time::Duration;

use faas_worker::reap::{children, ProcStat};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;

const PART: &str = "SERVER";

/// How often the Server looks for orphans to reap.
const EVERY: Duration = Duration::from_secs(1);

/// Makes the Server a child subreaper and starts the thread that reaps its
/// orphans. A failure is logged: orphans then go to PID 1, as before.
pub fn start() {
    if let Err(err) = faas_worker::reap::become_subreaper() {
        log::warn!(target: PART, "cannot become a child subreaper: {err}");
    }
    let spawned = std::thread::Builder::new().name("reaper".into()).spawn(|| {
        let mut seen = HashSet::new();
        loop {
            reap_orphans(&mut seen);
            std::thread::sleep(EVERY);
        }
    });
    if let Err(err) = spawned {
        log::warn!(target: PART, "cannot start the orphan reaper: {err}");
    }
}

/// Reaps every zombie child that is an orphan (see the module's doc);
/// `seen` holds the zombies of the previous scan. Returns how many.
pub fn reap_orphans(seen: &mut HashSet<i32>) -> usize {
    let me = std::process::id() as i32;
    let Some(own_session) = ProcStat::of(me).map(|s| s.session) else {
        return 0;
    };
    let mut reaped = 0;
    let zombies: Vec<ProcStat> = children(me)
        .into_iter()
        .filter(|c| c.state == 'Z')
        .collect();
    let lingering = std::mem::take(seen);
    for child in zombies {
        if is_orphan_zombie(&child, own_session) || lingering.contains(&child.pid) {
            // WNOHANG: a zombie is ready; never block this thread.
            if waitpid(Pid::from_raw(child.pid), Some(WaitPidFlag::WNOHANG)).is_ok() {
                reaped += 1;
            }
        } else {
            seen.insert(child.pid);
        }
    }
    if reaped > 0 {
        // Rare (a worker died with a call running): worth a line.
        log::info!(target: PART, "reaped {reaped} orphaned process(es)");
    }
    reaped
}

/// Whether `child` (a child of the Server) is a zombie the Server did not
/// start itself.
fn is_orphan_zombie(child: &ProcStat, own_session: i32) -> bool {
    child.state == 'Z' && child.session != own_session && child.session != child.pid
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(pid: i32, state: char, session: i32) -> ProcStat {
        ProcStat {
            pid,
            state,
            ppid: 1,
            session,
        }
    }

    #[test]
    fn only_zombies_from_other_sessions_that_they_do_not_lead_are_orphans() {
        let own = 100;
        // A call's bwrap, left by a dead worker (session 200).
        assert!(is_orphan_zombie(&stat(201, 'Z', 200), own));
        // Still running: nothing to reap.
        assert!(!is_orphan_zombie(&stat(201, 'S', 200), own));
        // A worker (leads its session) or a compiler (the Server's
        // session): the Server waits for those itself.
        assert!(!is_orphan_zombie(&stat(200, 'Z', 200), own));
        assert!(!is_orphan_zombie(&stat(300, 'Z', own), own));
    }
}
