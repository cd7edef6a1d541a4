//! `worker run --dir HOST[::GUEST][:ro]`: host directories for debugging,
//! mounted as `wasmtime run --dir` does (`HOST:GUEST` is accepted too).
//! Each directory is a [`HostDir`] backend mounted at GUEST, which may be
//! `/`; the guest gets one pre-opened descriptor per mapping, the first as
//! fd 3, in the order given ([`crate::wasifs`]). `:ro` wraps it in
//! [`ReadOnly`]. Deployed functions never get a host directory.
//!
//! A [`HostDir`] never follows a symlink itself (our resolution does, and
//! refuses any that leads out of the directory), and opens files with
//! `O_NOFOLLOW`, so what the guest reaches stays inside HOST.

use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirEntryExt, FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::sys::stat::UtimensatFlags;
use nix::sys::time::TimeSpec;

use crate::rofs::ReadOnly;
use crate::tmpfs::MemFs;
use crate::vfs::{
    self, errno_of, Backend, DirEntry, Errno, File, Kind, Namespace, OpenHow, Rel, SetTime, Stat,
};

/// One `--dir` mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirMapping {
    pub host: PathBuf,
    /// Absolute and normalised (`/`, `/data`): two mappings at the same
    /// place compare equal.
    pub guest: String,
    pub read_only: bool,
}

impl DirMapping {
    /// `HOST`, `HOST:GUEST`, `HOST::GUEST` (wasmtime's form), each
    /// optionally followed by `:ro`. A relative GUEST is taken from `/`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let (host, rest) = match spec.split_once("::") {
            Some((host, rest)) => (host, Some(rest)),
            None => match spec.split_once(':') {
                Some((host, rest)) => (host, Some(rest)),
                None => (spec, None),
            },
        };
        let (guest, mode) = match rest {
            None => (host, None),
            Some(rest) => match rest.split_once(':') {
                Some((guest, mode)) => (guest, Some(mode)),
                None => (rest, None),
            },
        };
        let read_only = match mode {
            None => false,
            Some("ro") => true,
            Some(other) => {
                return Err(format!(
                    "--dir {spec}: unknown mode '{other}' (the only mode is ro)"
                ))
            }
        };
        if host.is_empty() || guest.is_empty() {
            return Err(format!(
                "--dir {spec}: expected HOST, HOST:GUEST or HOST::GUEST, optionally with :ro"
            ));
        }
        let guest = normalize_guest(guest)
            .ok_or_else(|| format!("--dir {spec}: the guest path may not contain '..'"))?;
        Ok(Self {
            host: host.into(),
            guest,
            read_only,
        })
    }

    /// Parses every `--dir` and checks them together: each host directory
    /// exists, and no two share a guest path. The message names the
    /// mapping at fault.
    pub fn parse_all(specs: &[String]) -> Result<Vec<Self>, String> {
        let mut mappings: Vec<Self> = Vec::with_capacity(specs.len());
        for spec in specs {
            let m = Self::parse(spec)?;
            match std::fs::metadata(&m.host) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => {
                    return Err(format!(
                        "--dir {spec}: {} is not a directory",
                        m.host.display()
                    ))
                }
                Err(e) => {
                    return Err(format!(
                        "--dir {spec}: cannot use {}: {e}",
                        m.host.display()
                    ))
                }
            }
            if let Some(at) = mappings.iter().position(|o| o.guest == m.guest) {
                return Err(format!(
                    "--dir {spec}: {} is already mapped by --dir {}",
                    m.guest, specs[at]
                ));
            }
            mappings.push(m);
        }
        Ok(mappings)
    }
}

/// `guest` as an absolute path without `.`, empty components or a trailing
/// slash (`data/` → `/data`, `.` → `/`); `None` if it has `..`.
fn normalize_guest(guest: &str) -> Option<String> {
    let mut out = String::new();
    for part in guest.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            name => {
                out.push('/');
                out.push_str(name);
            }
        }
    }
    Some(if out.is_empty() { "/".into() } else { out })
}

/// The namespace of a `worker run` with `mappings`, and the guest path of
/// each mapping (its pre-opened directory), in order. A mapping at `/` is
/// the root; otherwise the root is a read-only tree holding the mount
/// points (the guest has no descriptor for it).
pub fn namespace(mappings: &[DirMapping]) -> std::io::Result<(Namespace, Vec<Vec<String>>)> {
    let mut backends = Vec::with_capacity(mappings.len());
    for m in mappings {
        let host: Arc<dyn Backend> = Arc::new(HostDir::new(&m.host)?);
        backends.push(if m.read_only {
            Arc::new(ReadOnly(host)) as Arc<dyn Backend>
        } else {
            host
        });
    }
    let paths: Vec<Vec<String>> = mappings.iter().map(|m| components(&m.guest)).collect();
    let root = match paths.iter().position(|p| p.is_empty()) {
        Some(at) => backends[at].clone(),
        None => Arc::new(MemFs::read_only(&paths, &[])),
    };
    let mut ns = Namespace::new(root);
    for (path, backend) in paths.iter().zip(backends) {
        if !path.is_empty() {
            ns.mount(path, backend);
        }
    }
    Ok((ns, paths))
}

/// The components of a normalised guest path (`/` has none).
pub fn components(guest: &str) -> Vec<String> {
    guest
        .split('/')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

/// A host directory as a backend.
pub struct HostDir {
    root: PathBuf,
}

impl HostDir {
    pub fn new(root: &Path) -> std::io::Result<Self> {
        Ok(Self {
            root: root.canonicalize()?,
        })
    }

    /// The host path of `rel` (resolved components: never `..`).
    fn path(&self, rel: &Rel) -> PathBuf {
        let mut out = self.root.clone();
        out.extend(rel);
        out
    }
}

fn io<T>(result: std::io::Result<T>) -> vfs::Result<T> {
    result.map_err(|e| errno_of(&e))
}

fn stat_of(meta: &std::fs::Metadata) -> Stat {
    let ft = meta.file_type();
    let kind = if ft.is_symlink() {
        Kind::Symlink
    } else if ft.is_dir() {
        Kind::Dir
    } else if ft.is_file() {
        Kind::File
    } else {
        Kind::Other
    };
    let ns = |s: i64, n: i64| (s.max(0) as u64) * 1_000_000_000 + n.max(0) as u64;
    Stat {
        kind,
        dev: meta.dev(),
        ino: meta.ino(),
        nlink: meta.nlink(),
        size: meta.size(),
        atim: ns(meta.atime(), meta.atime_nsec()),
        mtim: ns(meta.mtime(), meta.mtime_nsec()),
        ctim: ns(meta.ctime(), meta.ctime_nsec()),
    }
}

fn timespec(t: SetTime) -> TimeSpec {
    match t {
        SetTime::Keep => TimeSpec::UTIME_OMIT,
        SetTime::Now => TimeSpec::UTIME_NOW,
        SetTime::At(ns) => TimeSpec::new((ns / 1_000_000_000) as i64, (ns % 1_000_000_000) as i64),
    }
}

impl Backend for HostDir {
    fn stat(&self, path: &Rel) -> vfs::Result<Stat> {
        io(std::fs::symlink_metadata(self.path(path))).map(|m| stat_of(&m))
    }

    fn read_dir(&self, path: &Rel) -> vfs::Result<Vec<DirEntry>> {
        let mut out = Vec::new();
        for entry in io(std::fs::read_dir(self.path(path)))? {
            let entry = io(entry)?;
            let kind = match entry.file_type() {
                Ok(t) if t.is_symlink() => Kind::Symlink,
                Ok(t) if t.is_dir() => Kind::Dir,
                Ok(t) if t.is_file() => Kind::File,
                _ => Kind::Other,
            };
            out.push(DirEntry {
                name: entry.file_name().to_string_lossy().into_owned(),
                kind,
                ino: entry.ino(),
            });
        }
        Ok(out)
    }

    fn readlink(&self, path: &Rel) -> vfs::Result<String> {
        let target = io(std::fs::read_link(self.path(path)))?;
        target
            .into_os_string()
            .into_string()
            .map_err(|_| Errno::Ilseq)
    }

    fn open(&self, path: &Rel, how: OpenHow) -> vfs::Result<Arc<dyn File>> {
        let file = io(std::fs::OpenOptions::new()
            .read(how.read || !how.write)
            .write(how.write)
            .create_new(how.create)
            .truncate(how.truncate)
            .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
            .open(self.path(path)))?;
        Ok(Arc::new(HostFile(file)))
    }

    fn mkdir(&self, path: &Rel) -> vfs::Result<()> {
        io(std::fs::create_dir(self.path(path)))
    }

    fn rmdir(&self, path: &Rel) -> vfs::Result<()> {
        io(std::fs::remove_dir(self.path(path)))
    }

    fn unlink(&self, path: &Rel) -> vfs::Result<()> {
        io(std::fs::remove_file(self.path(path)))
    }

    fn rename(&self, from: &Rel, to: &Rel) -> vfs::Result<()> {
        io(std::fs::rename(self.path(from), self.path(to)))
    }

    fn link(&self, from: &Rel, to: &Rel) -> vfs::Result<()> {
        io(std::fs::hard_link(self.path(from), self.path(to)))
    }

    fn symlink(&self, target: &str, path: &Rel) -> vfs::Result<()> {
        io(std::os::unix::fs::symlink(target, self.path(path)))
    }

    fn set_times(&self, path: &Rel, atim: SetTime, mtim: SetTime) -> vfs::Result<()> {
        nix::sys::stat::utimensat(
            None,
            &self.path(path),
            &timespec(atim),
            &timespec(mtim),
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|e| errno_of(&e.into()))
    }
}

/// An open host file.
struct HostFile(std::fs::File);

impl File for HostFile {
    fn stat(&self) -> vfs::Result<Stat> {
        io(self.0.metadata()).map(|m| stat_of(&m))
    }

    fn read_at(&self, buf: &mut [u8], at: u64) -> vfs::Result<usize> {
        io(self.0.read_at(buf, at))
    }

    fn write_at(&self, data: &[u8], at: u64) -> vfs::Result<usize> {
        io(self.0.write_all_at(data, at)).map(|()| data.len())
    }

    fn set_len(&self, len: u64) -> vfs::Result<()> {
        io(self.0.set_len(len))
    }

    fn set_times(&self, atim: SetTime, mtim: SetTime) -> vfs::Result<()> {
        nix::sys::stat::futimens(self.0.as_raw_fd(), &timespec(atim), &timespec(mtim))
            .map_err(|e| errno_of(&e.into()))
    }

    fn sync(&self) -> vfs::Result<()> {
        io(self.0.sync_all())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(spec: &str) -> (String, String, bool) {
        let m = DirMapping::parse(spec).unwrap();
        (m.host.display().to_string(), m.guest, m.read_only)
    }

    #[test]
    fn every_form_of_a_mapping_parses() {
        let want = |h: &str, g: &str, ro| (h.to_string(), g.to_string(), ro);
        assert_eq!(parse("/a"), want("/a", "/a", false));
        assert_eq!(parse("/a:/b"), want("/a", "/b", false));
        assert_eq!(parse("/a:/b:ro"), want("/a", "/b", true));
        assert_eq!(parse("/a::/b"), want("/a", "/b", false));
        assert_eq!(parse("/a::/b:ro"), want("/a", "/b", true));
        // The guest's root, however written.
        assert_eq!(parse("/a:/"), want("/a", "/", false));
        assert_eq!(parse("/a::/"), want("/a", "/", false));
        assert_eq!(parse("/a::/:ro"), want("/a", "/", true));
        assert_eq!(parse("."), want(".", "/", false));
        // Normalised, so the same place compares equal.
        assert_eq!(parse("/a::data/"), want("/a", "/data", false));
        assert_eq!(parse("/a:/x//./y/"), want("/a", "/x/y", false));
    }

    #[test]
    fn bad_mappings_are_refused_with_one_line_naming_the_problem() {
        let err = DirMapping::parse("/a:/b:rw").unwrap_err();
        assert_eq!(
            err,
            "--dir /a:/b:rw: unknown mode 'rw' (the only mode is ro)"
        );
        assert!(DirMapping::parse("/a::/b:rw")
            .unwrap_err()
            .contains("unknown mode 'rw'"));
        assert!(DirMapping::parse(":/b").is_err());
        assert!(DirMapping::parse("/a:").is_err());
        assert!(DirMapping::parse("/a::/../b").unwrap_err().contains(".."));

        let dir = std::env::temp_dir();
        let here = dir.display().to_string();
        let specs = |s: &[&str]| {
            s.iter()
                .map(|s| s.replace("HERE", &here))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            DirMapping::parse_all(&specs(&["HERE::/", "HERE:/data:ro"]))
                .unwrap()
                .len(),
            2
        );
        let err = DirMapping::parse_all(&specs(&["/no/such/dir:/x"])).unwrap_err();
        assert!(
            err.starts_with("--dir /no/such/dir:/x: cannot use /no/such/dir: "),
            "{err}"
        );
        let err = DirMapping::parse_all(&specs(&["HERE:/x", "HERE::/x/"])).unwrap_err();
        assert_eq!(
            err,
            format!("--dir {here}::/x/: /x is already mapped by --dir {here}:/x")
        );
        for err in [err, DirMapping::parse("/a:/b:rw").unwrap_err()] {
            assert!(!err.contains('\n'));
        }
    }
}
