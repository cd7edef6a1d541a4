//! Our own WASI preview1 file-system calls, answering as wasmtime does.
//!
//! wasmer-wasix's file system differs from wasmtime's in ways a program
//! sees (its descriptor 3 is a virtual root nothing can be created in; a
//! pre-open cannot be closed; `unlink` removes directories; `O_TRUNC`
//! does not truncate; `rename` of a file over a directory succeeds in
//! memory; errnos follow its rights model: `EACCES` where POSIX says
//! `EBADF`...), and its inode cache goes stale when anything bypasses it.
//! So every call that takes a descriptor or a path is ours, over the
//! backends of [`crate::vfs`]; wasix keeps only stdio (0, 1, 2), which we
//! reach through its own functions with its own numbers.
//!
//! The guest's descriptors are ours too ([`CallFs`]): 0–2 are wasix's
//! stdio, 3, 4, ... the pre-opened directories in order; `path_open` takes
//! the highest number closed since, else the one after the highest open,
//! as wasmtime allocates them.
//! The functions are built once per session ([`crate::session`]); they
//! find the running call's [`CallFs`] through the accessor given to
//! [`install`].

/// Defines `$name` (taking a descriptor first) as wasix's own function for
/// the descriptors wasix keeps (stdio) and `$ours` for every other.
macro_rules! delegating {
    ($i:expr, $name:literal, $ours:path, ()) => {
        delegating!(@define $i, $name, $ours, i32, ())
    };
    ($i:expr, $name:literal, $ours:path, ($($arg:ident: $ty:ty),+)) => {
        delegating!(@define $i, $name, $ours, (i32, $($ty),+), ($($arg: $ty),+))
    };
    (@define $i:expr, $name:literal, $ours:path, $params:ty, ($($arg:ident: $ty:ty),*)) => {
        if $i.wants($name) {
            let orig = $i.original::<$params>($name);
            let fs = $i.fs.clone();
            let layout = $i.layout;
            $i.define(
                $name,
                move |mut ctx: FunctionEnvMut<'_, WasiEnv>, fd: i32, $($arg: $ty),*| {
                    if let (Some(inner), Some(orig)) = (super::wasix_fd(&fs, fd), &orig) {
                        return orig.call(&mut ctx, inner, $($arg),*);
                    }
                    super::run(&ctx, &fs, layout, |cx| {
                        $ours(cx, fd as u32, $($arg),*)
                    })
                },
            );
        }
    };
}

/// Defines `$name` as `$ours` alone.
macro_rules! own {
    ($i:expr, $name:literal, $ours:path, ($($arg:ident: $ty:ty),*)) => {
        if $i.wants($name) {
            let fs = $i.fs.clone();
            let layout = $i.layout;
            $i.define(
                $name,
                move |ctx: FunctionEnvMut<'_, WasiEnv>, $($arg: $ty),*| {
                    super::run(&ctx, &fs, layout, |cx| {
                        $ours(cx, $($arg),*)
                    })
                },
            );
        }
    };
}

mod fd;
mod guest;
mod path;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex};

use wasmer::{
    Function, FunctionEnvMut, HostFunction, Imports, Module, RuntimeError, Store, TypedFunction,
    WasmTypeList, WithEnv,
};
use wasmer_wasix::{WasiEnv, WasiFunctionEnv};

use crate::hostcall::Layout;
use crate::vfs::{Errno, File, Namespace, Result};
use guest::Guest;

/// Descriptors one call may hold open at once (`EMFILE` beyond).
pub const MAX_FDS: usize = 1024;

/// Returns the running call's file system and descriptors.
pub type CallFsOf = Arc<dyn Fn() -> Arc<Mutex<CallFs>> + Send + Sync>;

/// One call's file system and descriptor table.
pub struct CallFs {
    ns: Option<Namespace>,
    fds: BTreeMap<u32, Entry>,
    /// Numbers closed and not reused yet.
    free: BTreeSet<u32>,
    /// Set when a call of ours reached the call's deadline: the guest is
    /// stopped on its return ([`CallFs::stop_when`]).
    deadline_passed: Option<Arc<std::sync::atomic::AtomicBool>>,
}

/// What a guest descriptor is.
enum Entry {
    /// wasix's own descriptor (stdio), by wasix's number.
    Wasix(i32),
    Dir(DirFd),
    File(FileFd),
}

struct DirFd {
    /// Guest path.
    path: Vec<String>,
    /// Resolution never goes above this many components of `path`: the
    /// pre-opened directory this one descends from.
    floor: usize,
    preopen: bool,
}

struct FileFd {
    file: Arc<dyn File>,
    read: bool,
    write: bool,
    append: bool,
    nonblock: bool,
    pos: u64,
    /// The backend's largest file size (a `/tmp` cap).
    max_size: u64,
}

impl CallFs {
    /// A call without files: stdio only.
    pub fn stdio_only() -> Self {
        Self {
            ns: None,
            fds: (0..3).map(|fd| (fd as u32, Entry::Wasix(fd))).collect(),
            free: BTreeSet::new(),
            deadline_passed: None,
        }
    }

    /// Stops the guest (a trap, reported as a timeout) when one of our
    /// calls returns with `flag` set: the deadline passed while it
    /// blocked (a fetch, [`crate::outbound`]).
    pub fn stop_when(&mut self, flag: Arc<std::sync::atomic::AtomicBool>) {
        self.deadline_passed = Some(flag);
    }

    /// `ns`, with `preopens` (guest paths) as descriptors 3, 4, ...
    pub fn new(ns: Namespace, preopens: &[Vec<String>]) -> Self {
        let mut fs = Self::stdio_only();
        for (i, path) in preopens.iter().enumerate() {
            let dir = DirFd {
                path: path.clone(),
                floor: path.len(),
                preopen: true,
            };
            fs.fds.insert(3 + i as u32, Entry::Dir(dir));
        }
        fs.ns = Some(ns);
        fs
    }

    /// Whether `fd` is an open descriptor.
    pub fn exists(&self, fd: i32) -> bool {
        self.fds.contains_key(&(fd as u32))
    }

    fn ns(&self) -> Result<&Namespace> {
        self.ns.as_ref().ok_or(Errno::Notdir)
    }

    /// Gives `entry` a number: the highest closed one, else the one after
    /// the highest open one (wasmtime's order, which programs may print).
    fn insert(&mut self, entry: Entry) -> Result<u32> {
        if self.fds.len() >= MAX_FDS {
            return Err(Errno::Mfile);
        }
        let fd = match self.free.pop_last() {
            Some(fd) => fd,
            None => self.fds.last_key_value().map_or(0, |(fd, _)| fd + 1),
        };
        self.fds.insert(fd, entry);
        Ok(fd)
    }

    /// Closes `fd` (its number may be reused); what it was.
    fn remove(&mut self, fd: u32) -> Option<Entry> {
        let entry = self.fds.remove(&fd)?;
        self.free.insert(fd);
        Some(entry)
    }

    fn dir(&self, fd: u32) -> Result<&DirFd> {
        match self.fds.get(&fd) {
            Some(Entry::Dir(dir)) => Ok(dir),
            Some(_) => Err(Errno::Notdir),
            None => Err(Errno::Badf),
        }
    }

    fn file(&mut self, fd: u32) -> Result<&mut FileFd> {
        match self.fds.get_mut(&fd) {
            Some(Entry::File(file)) => Ok(file),
            _ => Err(Errno::Badf),
        }
    }
}

/// What one of our calls works with: the call's files and the guest's
/// memory.
struct Cx<'a> {
    fs: &'a mut CallFs,
    mem: Guest<'a>,
    layout: Layout,
}

/// Registers our functions in one namespace.
struct Installer<'a> {
    store: &'a mut Store,
    env: &'a WasiFunctionEnv,
    imports: &'a mut Imports,
    layout: Layout,
    /// The calls the module imports from this namespace: only those are
    /// built (building a host function is most of a session's cost).
    wanted: HashSet<String>,
    fs: CallFsOf,
}

impl Installer<'_> {
    /// wasix's own function `name`, for the descriptors it keeps.
    fn original<Args: WasmTypeList>(&self, name: &str) -> Option<TypedFunction<Args, i32>> {
        crate::hostcall::original(self.store, self.imports, self.layout.namespace(), name)
    }

    fn wants(&self, name: &str) -> bool {
        self.wanted.contains(name)
    }

    fn define<Args, Rets, F>(&mut self, name: &str, f: F)
    where
        Args: WasmTypeList,
        Rets: WasmTypeList,
        F: HostFunction<WasiEnv, Args, Rets, WithEnv> + 'static + Send + Sync,
    {
        let function = Function::new_typed_with_env(self.store, &self.env.env, f);
        self.imports.define(self.layout.namespace(), name, function);
    }
}

/// Replaces every descriptor and path call `module` imports (from either
/// preview1 namespace) with ours; `fs` returns the running call's files.
pub fn install(
    store: &mut Store,
    env: &WasiFunctionEnv,
    imports: &mut Imports,
    module: &Module,
    fs: &CallFsOf,
) {
    for layout in [Layout::Preview1, Layout::Unstable] {
        let wanted: HashSet<String> = module
            .imports()
            .functions()
            .filter(|i| i.module() == layout.namespace())
            .map(|i| i.name().to_string())
            .collect();
        if wanted.is_empty() {
            continue;
        }
        let mut installer = Installer {
            store,
            env,
            imports,
            layout,
            wanted,
            fs: fs.clone(),
        };
        fd::install(&mut installer);
        path::install(&mut installer);
    }
}

/// Runs `f` on the running call's files and the guest's memory; its
/// result as the errno the guest gets.
fn run(
    ctx: &FunctionEnvMut<'_, WasiEnv>,
    fs: &CallFsOf,
    layout: Layout,
    f: impl FnOnce(&mut Cx<'_>) -> Result<()>,
) -> std::result::Result<i32, RuntimeError> {
    let Some(view) = ctx.data().try_memory_view(ctx) else {
        return Ok(Errno::Fault as i32);
    };
    let state = fs();
    let mut state = state.lock().unwrap();
    let mut cx = Cx {
        fs: &mut state,
        mem: Guest(view),
        layout,
    };
    let errno = match f(&mut cx) {
        Ok(()) => Errno::Success as i32,
        Err(errno) => errno as i32,
    };
    // A call that blocked here until its deadline (a fetch waiting for its
    // answer) ends now, as a timeout, rather than going on for the
    // watchdog's next tick.
    if state
        .deadline_passed
        .as_ref()
        .is_some_and(|passed| passed.load(std::sync::atomic::Ordering::Acquire))
    {
        return Err(RuntimeError::new("the call ran past its deadline"));
    }
    Ok(errno)
}

/// wasix's number for `fd` when wasix keeps it, else `None` (ours, or
/// not open: our function answers).
fn wasix_fd(fs: &CallFsOf, fd: i32) -> Option<i32> {
    match fs().lock().unwrap().fds.get(&(fd as u32)) {
        Some(Entry::Wasix(inner)) => Some(*inner),
        _ => None,
    }
}

/// WASI rights (wasi-libc derives `O_RDONLY`/`O_WRONLY` from them).
mod rights {
    pub const FD_DATASYNC: u64 = 1 << 0;
    pub const FD_READ: u64 = 1 << 1;
    pub const FD_WRITE: u64 = 1 << 6;
    pub const FD_ALLOCATE: u64 = 1 << 8;
    pub const FD_READDIR: u64 = 1 << 14;
    pub const FD_FILESTAT_SET_SIZE: u64 = 1 << 22;
    /// Every right preview1 defines.
    pub const ALL: u64 = (1 << 30) - 1;
    /// Those that mean reading, and writing.
    pub const READING: u64 = FD_READ | FD_READDIR;
    pub const WRITING: u64 = FD_DATASYNC | FD_WRITE | FD_ALLOCATE | FD_FILESTAT_SET_SIZE;
    /// A directory's, as wasmtime reports them: all but seeking, writing
    /// and resizing.
    pub const DIR: u64 = ALL & !(1 << 2 | FD_WRITE | 1 << 19 | FD_FILESTAT_SET_SIZE);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tmpfs::MemFs;

    fn dir() -> Entry {
        Entry::Dir(DirFd {
            path: Vec::new(),
            floor: 0,
            preopen: false,
        })
    }

    #[test]
    fn descriptors_are_numbered_as_wasmtime_numbers_them() {
        let ns = Namespace::new(Arc::new(MemFs::new(None)));
        let mut fs = CallFs::new(ns, &[Vec::new(), vec!["tmp".into()]]);
        assert!((0..5).all(|fd| fs.exists(fd)));
        assert!(!fs.exists(5));
        let (a, b, c) = (fs.insert(dir()), fs.insert(dir()), fs.insert(dir()));
        assert_eq!((a, b, c), (Ok(5), Ok(6), Ok(7)));
        // The highest closed number first, then past the highest open one.
        fs.remove(6);
        fs.remove(5);
        assert_eq!(fs.insert(dir()), Ok(6));
        assert_eq!(fs.insert(dir()), Ok(5));
        assert_eq!(fs.insert(dir()), Ok(8));
        // A closed pre-open's number is reused too.
        assert!(fs.remove(3).is_some());
        assert!(fs.remove(3).is_none());
        assert_eq!(fs.insert(dir()), Ok(3));
    }

    #[test]
    fn a_call_holds_at_most_max_fds_descriptors() {
        let mut fs = CallFs::stdio_only();
        while fs.fds.len() < MAX_FDS {
            fs.insert(dir()).unwrap();
        }
        assert_eq!(fs.insert(dir()), Err(Errno::Mfile));
    }
}
