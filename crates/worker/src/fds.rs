//! Process hygiene at start: descriptors a process inherits from whoever
//! started it (a shell's pipes, an operator's `7<secret`) must not reach
//! the compilers, workers and sandboxes it starts. Every descriptor above
//! stderr is marked close-on-exec, so only what a child is given explicitly
//! (its pipes, a script at fd 3) crosses an `exec`.

use nix::fcntl::{fcntl, FcntlArg, FdFlag};

/// Marks every open descriptor above 2 close-on-exec. Call it first thing
/// in `main`, before any thread or child exists.
pub fn seal_inherited() {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    // Collected first: reading the directory holds a descriptor of its own.
    let fds: Vec<i32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    for fd in fds {
        if let Ok(flags) = fcntl(fd, FcntlArg::F_GETFD) {
            let flags = FdFlag::from_bits_truncate(flags) | FdFlag::FD_CLOEXEC;
            let _ = fcntl(fd, FcntlArg::F_SETFD(flags));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn inherited_descriptors_do_not_cross_exec() {
        let (read, _write) = nix::unistd::pipe().unwrap();
        let fd = read.as_raw_fd();
        // pipe() without O_CLOEXEC: inherited by children, as a shell's is.
        let flags = |fd| FdFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFD).unwrap());
        let _ = fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty()));
        assert!(!flags(fd).contains(FdFlag::FD_CLOEXEC));
        seal_inherited();
        assert!(flags(fd).contains(FdFlag::FD_CLOEXEC));
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!(
                "test -e /proc/self/fd/{fd} && echo open || echo closed"
            ))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "closed");
    }
}
