//! Children that outlive a call, and orphans.
//!
//! bubblewrap forks: the sandbox's PID 1 is a child of the `bwrap` the
//! worker started, and when that one exits it is reparented. Unreaped, each
//! call left a zombie behind, counted against its uid's `RLIMIT_NPROC`
//! (calls then failed with `bwrap: Can't fork`), and under a parent that
//! never reaps (a server running as PID 1 in a container) they piled up for
//! good. So a worker is a child subreaper ([`become_subreaper`]): whatever a
//! call leaves is reparented to it, and [`reap_leftovers`] kills and reaps
//! it before the next call.
//!
//! The Server uses [`children`] to find its own orphans (see its `reaper`).

use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// Makes orphaned descendants of this process its children (instead of
/// PID 1's), so that it can reap them.
pub fn become_subreaper() -> nix::Result<()> {
    nix::sys::prctl::set_child_subreaper(true)
}

/// One process, as `/proc/PID/stat` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: i32,
    /// `R`, `S`, `Z` (a zombie), ...
    pub state: char,
    pub ppid: i32,
    /// The session id (the pid of its session's leader).
    pub session: i32,
}

impl ProcStat {
    /// Parses a `/proc/PID/stat` line. The command name sits between the
    /// first `(` and the last `)` and may hold anything, spaces included.
    pub fn parse(line: &str) -> Option<Self> {
        let open = line.find('(')?;
        let close = line.rfind(')')?;
        let pid = line[..open].trim().parse().ok()?;
        let mut rest = line.get(close + 1..)?.split_whitespace();
        let state = rest.next()?.chars().next()?;
        let ppid = rest.next()?.parse().ok()?;
        let _pgrp = rest.next()?;
        let session = rest.next()?.parse().ok()?;
        Some(Self {
            pid,
            state,
            ppid,
            session,
        })
    }

    /// The process `pid`, if it exists.
    pub fn of(pid: i32) -> Option<Self> {
        Self::parse(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
    }
}

/// Every child of `parent`, running or zombie. Read from `/proc/*/stat`:
/// `/proc/PID/task/TID/children` needs a kernel option that not every
/// kernel has.
pub fn children(parent: i32) -> Vec<ProcStat> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(ProcStat::of)
        .filter(|stat| stat.ppid == parent)
        .collect()
}

/// After a call: kills whatever children this process still has (only a
/// call's leftovers can be there: a worker has no other children between
/// calls) and reaps them all, waiting at most `within` for them to die.
/// Returns how many were reaped.
///
/// The children are looked up again every [`RESCAN`] while some are alive,
/// and each one found is killed: a process can become a child of this
/// subreaper after a scan, when its parent dies of the kill that scan sent
/// (an orphan reparented here, such as the sandbox's PID 1 once the
/// `bwrap` above it is killed, or an unconfined call's `setsid`
/// grandchild, which no process-group kill reaches). Killed only once, at
/// the first scan, such an orphan was never signalled and lived on after
/// the call (for good, if it was the sandbox's PID 1 still setting up,
/// before bubblewrap's `--die-with-parent` is in place).
pub fn reap_leftovers(within: Duration) -> usize {
    let deadline = Instant::now() + within;
    let mut reaped = 0;
    let mut next_scan = Instant::now();
    let mut pause = Duration::from_micros(100);
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {
                let now = Instant::now();
                if now >= next_scan {
                    // Usually the sandbox's PID 1, already dying with the
                    // call's process group; anything else is killed too.
                    // A zombie is skipped: it is dead, and the next
                    // waitpid takes it.
                    for child in children(std::process::id() as i32) {
                        if child.state != 'Z' {
                            let _ = kill(Pid::from_raw(child.pid), Signal::SIGKILL);
                        }
                    }
                    next_scan = now + RESCAN;
                }
                if now >= deadline {
                    log::warn!("children of a call still alive after {within:?}; reaped later");
                    return reaped;
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(5));
            }
            Ok(_) => reaped += 1,
            Err(Errno::EINTR) => {}
            // ECHILD: nothing left.
            Err(Errno::ECHILD) => return reaped,
            Err(err) => {
                log::warn!("cannot reap a call's children: {err}");
                return reaped;
            }
        }
    }
}

/// How often [`reap_leftovers`] looks for children to kill while some are
/// still alive (a scan reads every `/proc/PID/stat`: not at every poll).
const RESCAN: Duration = Duration::from_millis(20);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse_whatever_the_command_name() {
        let line = "4242 (a (weird) name) Z 17 4242 99 0 -1 4194380 0 0";
        assert_eq!(
            ProcStat::parse(line),
            Some(ProcStat {
                pid: 4242,
                state: 'Z',
                ppid: 17,
                session: 99
            })
        );
        assert_eq!(ProcStat::parse("garbage"), None);
        let me = ProcStat::of(std::process::id() as i32).unwrap();
        assert_eq!(me.pid, std::process::id() as i32);
    }

    /// Runs test `name` again in a process of its own and asserts that it
    /// passed; true when the caller is that process (and so must run the
    /// test's body). A subreaper test binary would collect the orphans of
    /// every other test.
    fn in_own_process(name: &str) -> bool {
        if std::env::var_os("FAAS_REAP_TEST_CHILD").is_some() {
            return true;
        }
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", name, "--nocapture"])
            .env("FAAS_REAP_TEST_CHILD", "1")
            .status()
            .unwrap();
        assert!(status.success(), "{name} failed in its own process");
        false
    }

    // The sleeps last numbers of their own: the end-to-end tests look for
    // `sleep 300`, `sleep 301` and `sleep 302` left on the host.
    #[test]
    fn an_orphaned_grandchild_is_killed_and_reaped() {
        if !in_own_process("reap::tests::an_orphaned_grandchild_is_killed_and_reaped") {
            return;
        }
        become_subreaper().unwrap();
        // sh starts a sleep in the background and exits: the sleep is
        // reparented to us.
        let status = std::process::Command::new("/bin/sh")
            .args(["-c", "sleep 306 & exit 0"])
            .status()
            .unwrap();
        assert!(status.success());
        let me = std::process::id() as i32;
        assert_eq!(children(me).len(), 1, "the orphaned sleep is ours");
        assert_eq!(reap_leftovers(Duration::from_secs(5)), 1);
        assert!(children(me).is_empty());
    }

    #[test]
    fn an_orphan_that_becomes_ours_while_reaping_is_killed_too() {
        if !in_own_process("reap::tests::an_orphan_that_becomes_ours_while_reaping_is_killed_too") {
            return;
        }
        become_subreaper().unwrap();
        // Our child (sleep 309) has a child of its own in another session
        // (sleep 308), as bubblewrap has the sandbox's PID 1, or an
        // unconfined call's shell a `setsid` process: no process-group
        // kill reaches it, and it becomes ours only once its parent has
        // died of the kill `reap_leftovers` sends, after its first scan.
        let mut child = std::process::Command::new("/bin/sh")
            .args(["-c", "setsid sleep 308 & exec sleep 309"])
            .spawn()
            .unwrap();
        let parent = child.id() as i32;
        let started = Instant::now();
        while children(parent).is_empty() {
            assert!(started.elapsed() < Duration::from_secs(10), "no grandchild");
            std::thread::sleep(Duration::from_millis(5));
        }
        let me = std::process::id() as i32;
        let reaped = reap_leftovers(Duration::from_secs(5));
        let left = children(me);
        for stat in &left {
            let _ = kill(Pid::from_raw(stat.pid), Signal::SIGKILL);
        }
        let _ = child.try_wait();
        assert!(left.is_empty(), "still alive after the reaping: {left:?}");
        assert_eq!(reaped, 2);
    }
}
