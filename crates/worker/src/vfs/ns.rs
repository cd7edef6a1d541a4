//! Backends mounted at guest paths, and the resolution of a guest's path.
//!
//! Resolution follows wasmtime (cap-std): a path is relative to a directory
//! descriptor; each component is looked up without following anything, and
//! a symlink met on the way (or at the end, when asked) is replaced by its
//! target, at most [`MAX_LINKS`] times (`ELOOP`). Nothing may lead above
//! the pre-opened directory the descriptor descends from: `..` there, an
//! absolute symlink, or an absolute path fail (`EPERM`, `ENOTCAPABLE`), so
//! a guest only ever reaches what it was given.

use std::collections::VecDeque;
use std::sync::Arc;

use super::{Backend, Errno, Kind, Rel, Result, Stat};

/// Symlinks one resolution may follow (Linux's and cap-std's limit).
pub const MAX_LINKS: usize = 40;

/// Components one resolution may look up, symlink targets included
/// (`ELOOP` past it). Each lookup walks from the backend's root, and a host
/// call cannot be interrupted at the deadline: without this bound, a
/// symlink that climbs a deep tree and back down, followed 40 times, kept
/// one `path_open` busy for seconds (found by a red-team). A path of
/// `PATH_MAX` bytes has at most 2,048 components.
pub const MAX_STEPS: usize = 4096;

/// Components a guest path may have (`ENAMETOOLONG` past it, as a path
/// longer than `PATH_MAX` is on Linux). Each lookup costs up to a string
/// comparison per component of its path (a [`crate::tmpfs::MemFs`]
/// starts from the prefix its last lookup shares), so this and
/// [`MAX_STEPS`] bound one resolution's work: a tree built deeper by
/// renames (each O(1)) made one `path_open` cost seconds (found by a
/// red-team). Whatever lies deeper stays unreachable.
pub const MAX_DEPTH: usize = 4096;

struct Mount {
    at: Vec<String>,
    fs: Arc<dyn Backend>,
}

/// Backends mounted at guest paths; one is mounted at `/`.
pub struct Namespace {
    /// Deepest first, so the first match is the longest.
    mounts: Vec<Mount>,
}

/// Where a path led.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The guest path reached (symlinks replaced by their targets).
    pub path: Vec<String>,
    /// Its metadata; `None` when only the last component does not exist.
    pub stat: Option<Stat>,
    /// The path ended with `/`: it must name a directory.
    pub trailing_slash: bool,
    /// The last component was `.` or `..`.
    pub dot_last: bool,
}

impl Namespace {
    /// A namespace whose `/` is `root`.
    pub fn new(root: Arc<dyn Backend>) -> Self {
        Self {
            mounts: vec![Mount {
                at: Vec::new(),
                fs: root,
            }],
        }
    }

    /// Mounts `fs` at the guest path `at` (replacing what was there).
    pub fn mount(&mut self, at: &[String], fs: Arc<dyn Backend>) {
        self.mounts.retain(|m| m.at != at);
        let depth = at.len();
        let index = self
            .mounts
            .iter()
            .position(|m| m.at.len() < depth)
            .unwrap_or(self.mounts.len());
        self.mounts.insert(
            index,
            Mount {
                at: at.to_vec(),
                fs,
            },
        );
    }

    /// The backend holding `path`, and the path inside it.
    pub fn locate<'p>(&self, path: &'p [String]) -> (&Arc<dyn Backend>, &'p Rel) {
        let mount = self
            .mounts
            .iter()
            .find(|m| path.starts_with(&m.at))
            .expect("a backend is mounted at /");
        (&mount.fs, &path[mount.at.len()..])
    }

    /// Whether a backend is mounted at `path` (it cannot be removed or
    /// renamed).
    pub fn is_mount_point(&self, path: &[String]) -> bool {
        self.mounts.iter().any(|m| m.at == path)
    }

    /// Whether `a` and `b` are in the same backend (else a rename or link
    /// between them is `EXDEV`).
    pub fn same_backend(&self, a: &[String], b: &[String]) -> bool {
        Arc::ptr_eq(self.locate(a).0, self.locate(b).0)
    }

    pub fn stat(&self, path: &[String]) -> Result<Stat> {
        let (fs, rel) = self.locate(path);
        fs.stat(rel)
    }

    pub fn readlink(&self, path: &[String]) -> Result<String> {
        let (fs, rel) = self.locate(path);
        fs.readlink(rel)
    }

    /// Resolves the WASI path `rel` from the directory `base`, never above
    /// its first `floor` components; the last component's symlink is
    /// followed when `follow` (or when the path ends with `/`).
    pub fn resolve(
        &self,
        base: &[String],
        floor: usize,
        rel: &str,
        follow: bool,
    ) -> Result<Resolved> {
        if rel.is_empty() {
            return Err(Errno::Noent);
        }
        if rel.starts_with('/') {
            return Err(Errno::Notcapable);
        }
        let trailing_slash = rel.ends_with('/');
        let mut todo: VecDeque<String> = parts(rel).collect();
        let mut path = base.to_vec();
        let mut last_stat = None;
        let mut dot_last = false;
        let mut links = 0;
        let mut steps = 0;
        while let Some(part) = todo.pop_front() {
            steps += 1;
            if steps > MAX_STEPS {
                return Err(Errno::Loop);
            }
            let last = todo.is_empty();
            dot_last = part == "." || part == "..";
            last_stat = None;
            match part.as_str() {
                "." => continue,
                ".." if path.len() <= floor => return Err(Errno::Perm),
                ".." => {
                    path.pop();
                    continue;
                }
                _ if path.len() >= MAX_DEPTH => return Err(Errno::Nametoolong),
                _ => path.push(part),
            }
            let stat = match self.stat(&path) {
                Err(Errno::Noent) if last => {
                    return Ok(Resolved {
                        path,
                        stat: None,
                        trailing_slash,
                        dot_last,
                    })
                }
                other => other?,
            };
            if stat.kind == Kind::Symlink && (!last || follow || trailing_slash) {
                links += 1;
                if links > MAX_LINKS {
                    return Err(Errno::Loop);
                }
                let target = self.readlink(&path)?;
                if target.starts_with('/') {
                    return Err(Errno::Perm);
                }
                if target.is_empty() {
                    return Err(Errno::Noent);
                }
                path.pop();
                for part in parts(&target).rev() {
                    todo.push_front(part);
                }
                continue;
            }
            if !last && stat.kind != Kind::Dir {
                return Err(Errno::Notdir);
            }
            last_stat = Some(stat);
        }
        let stat = match last_stat {
            Some(stat) => stat,
            None => self.stat(&path)?,
        };
        Ok(Resolved {
            path,
            stat: Some(stat),
            trailing_slash,
            dot_last,
        })
    }
}

/// The components of a relative path (empty ones dropped).
fn parts(path: &str) -> impl DoubleEndedIterator<Item = String> + '_ {
    path.split('/')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tmpfs::MemFs;
    use crate::vfs::{Backend, OpenHow};

    fn p(path: &str) -> Vec<String> {
        parts(path).collect()
    }

    /// `/` read-only with `/data` mounted: data/sub/f, data/up -> ..,
    /// data/link -> sub, data/abs -> /etc, data/a <-> data/b (a loop),
    /// data/dangling -> nowhere.
    fn ns() -> Namespace {
        let data = MemFs::new(None);
        data.mkdir(&p("sub")).unwrap();
        let how = OpenHow {
            read: true,
            write: true,
            create: true,
            truncate: false,
        };
        data.open(&p("sub/f"), how).unwrap();
        for (target, name) in [
            ("..", "up"),
            ("sub", "link"),
            ("/etc", "abs"),
            ("b", "a"),
            ("a", "b"),
        ] {
            data.symlink(target, &p(name)).unwrap();
        }
        data.symlink("nowhere", &p("dangling")).unwrap();
        let mut ns = Namespace::new(Arc::new(MemFs::read_only(&[p("data")], &[])));
        ns.mount(&p("data"), Arc::new(data));
        ns
    }

    fn resolve(rel: &str, follow: bool) -> Result<Resolved> {
        ns().resolve(&p("data"), 1, rel, follow)
    }

    #[test]
    fn paths_resolve_through_symlinks_and_never_above_the_pre_open() {
        assert_eq!(resolve("link/f", false).unwrap().path, p("data/sub/f"));
        assert_eq!(
            resolve("sub/../sub/./f", false).unwrap().path,
            p("data/sub/f")
        );
        assert_eq!(resolve("..", false), Err(Errno::Perm));
        assert_eq!(resolve("sub/../../data", false), Err(Errno::Perm));
        // A symlink to `..` at the pre-open's top leads out too.
        assert_eq!(resolve("up/x", false), Err(Errno::Perm));
        assert_eq!(resolve("abs", true), Err(Errno::Perm));
        assert_eq!(resolve("/etc", false), Err(Errno::Notcapable));
        assert_eq!(resolve("a", true), Err(Errno::Loop));
        assert_eq!(resolve("", false), Err(Errno::Noent));
        assert_eq!(resolve("sub/f/x", false), Err(Errno::Notdir));
        assert_eq!(resolve("nope/x", false), Err(Errno::Noent));
    }

    #[test]
    fn one_resolution_looks_up_a_bounded_number_of_components() {
        let within = format!("{}sub/f", "./".repeat(MAX_STEPS - 10));
        assert_eq!(resolve(&within, false).unwrap().path, p("data/sub/f"));
        let beyond = format!("{}sub/f", "./".repeat(MAX_STEPS));
        assert_eq!(resolve(&beyond, false), Err(Errno::Loop));
        // A symlink whose target climbs and comes back down counts every
        // component of every expansion.
        let ns = ns();
        let climb = format!("{}.", "sub/../".repeat(MAX_STEPS / 4));
        let path = p("data/climb");
        let (backend, rel) = ns.locate(&path);
        backend.symlink(&climb, rel).unwrap();
        let deep = format!("{}sub/f", "climb/".repeat(4));
        assert_eq!(ns.resolve(&p("data"), 1, &deep, true), Err(Errno::Loop));
        let once = ns.resolve(&p("data"), 1, "climb/sub/f", true);
        assert_eq!(once.unwrap().path, p("data/sub/f"));
    }

    #[test]
    fn a_guest_path_has_at_most_max_depth_components() {
        let ns = ns();
        let mut dir = p("data");
        while dir.len() < MAX_DEPTH {
            dir.push("d".into());
            let (backend, rel) = ns.locate(&dir);
            backend.mkdir(rel).unwrap();
        }
        let deepest = ns.resolve(&p("data"), 1, &"d/".repeat(MAX_DEPTH - 1), false);
        assert_eq!(deepest.unwrap().path.len(), MAX_DEPTH);
        let below = format!("{}x", "d/".repeat(MAX_DEPTH - 1));
        assert_eq!(
            ns.resolve(&p("data"), 1, &below, false),
            Err(Errno::Nametoolong)
        );
    }

    #[test]
    fn the_last_component_is_followed_only_when_asked() {
        let link = resolve("link", false).unwrap();
        assert_eq!(link.stat.unwrap().kind, Kind::Symlink);
        assert_eq!(resolve("link", true).unwrap().path, p("data/sub"));
        // A trailing slash follows it anyway.
        let slash = resolve("link/", false).unwrap();
        assert_eq!((slash.path, slash.trailing_slash), (p("data/sub"), true));
        // A dangling one leads to the missing target, which O_CREAT makes.
        let dangling = resolve("dangling", true).unwrap();
        assert_eq!((dangling.path, dangling.stat), (p("data/nowhere"), None));
        assert!(resolve("sub/.", false).unwrap().dot_last);
    }

    #[test]
    fn the_deepest_mount_holds_a_path() {
        let ns = ns();
        assert!(ns.is_mount_point(&p("data")));
        assert_eq!(ns.locate(&p("data/sub/f")).1, p("sub/f"));
        assert_eq!(ns.locate(&p("other")).1, p("other"));
        assert!(!ns.same_backend(&p("data/f"), &p("other")));
        assert_eq!(ns.stat(&p("data")).unwrap().kind, Kind::Dir);
    }
}
