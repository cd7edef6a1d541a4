//! In-memory file systems: each call's private, capped `/tmp`, and the
//! read-only trees of a call (an interpreter's `/faas`, the root that holds
//! the mount points).
//!
//! A [`MemFs`] is a table of nodes (files, directories, symlinks) with
//! POSIX link counts: a file lives while a name or an open descriptor
//! refers to it. Everything it holds counts against its cap (`None`: no
//! cap): file contents by the memory they occupy, and a fixed cost per node
//! and per name, so neither big files nor millions of empty ones can grow
//! a worker past the cap. A write or truncate that would pass it fails with
//! `ENOSPC` and changes nothing; the cap is also the largest file size
//! ([`Backend::max_file_size`]), so seeking or truncating past it is
//! `EFBIG` before anything grows. A read-only one answers `EROFS` to every
//! change.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use crate::vfs::{
    now_ns, Backend, DirEntry, Errno, File, Kind, OpenHow, Rel, Result, SetTime, Stat,
};

/// What a node costs besides its contents.
const NODE_COST: u64 = 64;
/// What a name in a directory costs besides its bytes.
const ENTRY_COST: u64 = 32;
const ROOT: u64 = 1;

/// Device numbers told apart per file system.
static NEXT_DEV: AtomicU64 = AtomicU64::new(1);

enum Body {
    File(Data),
    Dir(BTreeMap<String, u64>),
    Symlink(String),
}

/// A file's bytes: its own, or shared read-only (an interpreter's script,
/// the same bytes for every call; Python's standard library, a mapped
/// file).
enum Data {
    Owned(Vec<u8>),
    Shared(Bytes),
}

impl Data {
    fn bytes(&self) -> &[u8] {
        match self {
            Data::Owned(v) => v,
            Data::Shared(s) => s,
        }
    }

    /// Memory counted against the cap.
    fn charged(&self) -> u64 {
        match self {
            Data::Owned(v) => v.capacity() as u64,
            Data::Shared(_) => 0,
        }
    }
}

struct Node {
    body: Body,
    nlink: u64,
    /// A directory's subdirectories (its link count is 2 + this), kept
    /// up to date so a stat is O(1): counting them at each stat made one
    /// path lookup through a directory of 160,000 entries cost as much,
    /// and a path naming it 2,000 times kept one call busy for a minute
    /// (found by a red-team).
    subdirs: u64,
    /// Open descriptors of this file.
    open: u64,
    atim: u64,
    mtim: u64,
    ctim: u64,
}

struct Tree {
    nodes: HashMap<u64, Node>,
    next_ino: u64,
    used: u64,
    cap: u64,
    /// The last path looked up, and the node of each of its prefixes.
    last: RefCell<LastLookup>,
}

/// The last successful lookup: `inos[i]` is the node of `path[..i]`
/// (`inos[0]` the root). A path resolution looks up each prefix of its
/// path in turn; starting from the longest prefix shared with the last one
/// makes each of those lookups one step instead of a walk from the root,
/// which made one resolution in a deep tree cost seconds (found by a
/// red-team). Names only ever map to the same node until one is removed
/// or renamed, which clears this.
#[derive(Default)]
struct LastLookup {
    path: Vec<String>,
    inos: Vec<u64>,
}

struct Shared {
    tree: Mutex<Tree>,
    dev: u64,
    /// Set once the tree is built, for the read-only kinds.
    read_only: AtomicBool,
}

/// An in-memory file system.
#[derive(Clone)]
pub struct MemFs(Arc<Shared>);

impl MemFs {
    /// An empty, writable file system holding at most `cap` bytes.
    pub fn new(cap: Option<u64>) -> Self {
        let now = now_ns();
        let mut nodes = HashMap::new();
        nodes.insert(ROOT, node(Body::Dir(BTreeMap::new()), now));
        let tree = Tree {
            nodes,
            next_ino: ROOT + 1,
            used: NODE_COST,
            cap: cap.unwrap_or(u64::MAX),
            last: RefCell::default(),
        };
        Self(Arc::new(Shared {
            tree: Mutex::new(tree),
            dev: NEXT_DEV.fetch_add(1, Ordering::Relaxed),
            read_only: AtomicBool::new(false),
        }))
    }

    /// A read-only file system holding `dirs` (each a path of components)
    /// and `files` (path, contents, shared as they are).
    pub fn read_only(dirs: &[Vec<String>], files: &[(Vec<String>, Bytes)]) -> Self {
        let fs = Self::new(None);
        let parents = files
            .iter()
            .map(|(path, _)| &path[..path.len().saturating_sub(1)]);
        for dir in dirs.iter().map(Vec::as_slice).chain(parents) {
            for depth in 1..=dir.len() {
                let _ = fs.mkdir(&dir[..depth]);
            }
        }
        {
            let mut tree = fs.tree();
            for (path, content) in files {
                let body = Body::File(Data::Shared(content.clone()));
                if let Ok((dir, name)) = tree.parent_of(path) {
                    let _ = tree.insert(dir, name, node(body, now_ns()));
                }
            }
        }
        fs.0.read_only.store(true, Ordering::Relaxed);
        fs
    }

    /// Bytes held now (contents, nodes and names).
    pub fn used(&self) -> u64 {
        self.tree().used
    }

    fn tree(&self) -> MutexGuard<'_, Tree> {
        self.0.tree.lock().unwrap()
    }

    fn writable(&self) -> Result<()> {
        if self.0.read_only.load(Ordering::Relaxed) {
            Err(Errno::Rofs)
        } else {
            Ok(())
        }
    }
}

fn node(body: Body, now: u64) -> Node {
    Node {
        body,
        nlink: 1,
        subdirs: 0,
        open: 0,
        atim: now,
        mtim: now,
        ctim: now,
    }
}

impl Tree {
    fn get(&self, ino: u64) -> Result<&Node> {
        self.nodes.get(&ino).ok_or(Errno::Noent)
    }

    fn get_mut(&mut self, ino: u64) -> Result<&mut Node> {
        self.nodes.get_mut(&ino).ok_or(Errno::Noent)
    }

    fn entries(&self, ino: u64) -> Result<&BTreeMap<String, u64>> {
        match &self.get(ino)?.body {
            Body::Dir(entries) => Ok(entries),
            _ => Err(Errno::Notdir),
        }
    }

    fn entries_mut(&mut self, ino: u64) -> Result<&mut BTreeMap<String, u64>> {
        match &mut self.get_mut(ino)?.body {
            Body::Dir(entries) => Ok(entries),
            _ => Err(Errno::Notdir),
        }
    }

    /// The node at `path`, walked from the longest prefix it shares with
    /// the last lookup ([`LastLookup`]).
    fn lookup(&self, path: &Rel) -> Result<u64> {
        let mut last = self.last.borrow_mut();
        let shared = path
            .iter()
            .zip(&last.path)
            .take_while(|(a, b)| a == b)
            .count();
        last.path.truncate(shared);
        last.inos.truncate(shared + 1);
        let mut ino = last.inos.last().copied().unwrap_or(ROOT);
        if last.inos.is_empty() {
            last.inos.push(ROOT);
        }
        for name in &path[shared..] {
            ino = *self.entries(ino)?.get(name).ok_or(Errno::Noent)?;
            last.path.push(name.clone());
            last.inos.push(ino);
        }
        Ok(ino)
    }

    /// Forgets the last lookup: a name was removed or moved.
    fn forget_lookups(&mut self) {
        let last = self.last.get_mut();
        last.path.clear();
        last.inos.clear();
    }

    fn is_dir(&self, ino: u64) -> bool {
        matches!(self.nodes.get(&ino).map(|n| &n.body), Some(Body::Dir(_)))
    }

    /// Counts `ino` in or out of directory `dir`'s subdirectories.
    fn count_subdir(&mut self, dir: u64, ino: u64, delta: i64) {
        if self.is_dir(ino) {
            if let Ok(node) = self.get_mut(dir) {
                node.subdirs = node.subdirs.saturating_add_signed(delta);
            }
        }
    }

    /// The directory holding `path`'s last component, and that name.
    fn parent_of<'p>(&self, path: &'p Rel) -> Result<(u64, &'p str)> {
        let (name, dir) = path.split_last().ok_or(Errno::Busy)?;
        Ok((self.lookup(dir)?, name))
    }

    fn charge(&mut self, bytes: u64) -> Result<()> {
        if self.used.saturating_add(bytes) > self.cap {
            return Err(Errno::Nospc);
        }
        self.used += bytes;
        Ok(())
    }

    fn refund(&mut self, bytes: u64) {
        self.used = self.used.saturating_sub(bytes);
    }

    /// Adds `node` as `name` in directory `dir`; returns its number.
    fn insert(&mut self, dir: u64, name: &str, node: Node) -> Result<u64> {
        if self.entries(dir)?.contains_key(name) {
            return Err(Errno::Exist);
        }
        let extra = match &node.body {
            Body::Symlink(target) => target.len() as u64,
            _ => 0,
        };
        self.charge(NODE_COST + ENTRY_COST + name.len() as u64 + extra)?;
        let ino = self.next_ino;
        self.next_ino += 1;
        self.nodes.insert(ino, node);
        self.entries_mut(dir)?.insert(name.to_string(), ino);
        self.count_subdir(dir, ino, 1);
        self.touch_dir(dir);
        Ok(ino)
    }

    /// Removes the name `name` from `dir`; the node goes when nothing
    /// refers to it any more.
    fn remove_entry(&mut self, dir: u64, name: &str) -> Result<()> {
        let ino = self.entries_mut(dir)?.remove(name).ok_or(Errno::Noent)?;
        self.forget_lookups();
        self.count_subdir(dir, ino, -1);
        self.refund(ENTRY_COST + name.len() as u64);
        self.touch_dir(dir);
        let node = self.get_mut(ino)?;
        node.nlink = node.nlink.saturating_sub(1);
        node.ctim = now_ns();
        self.release(ino);
        Ok(())
    }

    /// Drops node `ino` if no name and no descriptor refers to it.
    fn release(&mut self, ino: u64) {
        let Some(node) = self.nodes.get(&ino) else {
            return;
        };
        if node.nlink > 0 || node.open > 0 {
            return;
        }
        let content = match &node.body {
            Body::File(data) => data.charged(),
            Body::Symlink(target) => target.len() as u64,
            Body::Dir(_) => 0,
        };
        self.nodes.remove(&ino);
        self.refund(NODE_COST + content);
    }

    fn touch_dir(&mut self, dir: u64) {
        if let Ok(node) = self.get_mut(dir) {
            let now = now_ns();
            node.mtim = now;
            node.ctim = now;
        }
    }

    fn stat(&self, ino: u64, dev: u64) -> Result<Stat> {
        let node = self.get(ino)?;
        let (kind, size, nlink) = match &node.body {
            Body::File(data) => (Kind::File, data.bytes().len() as u64, node.nlink),
            Body::Symlink(target) => (Kind::Symlink, target.len() as u64, node.nlink),
            Body::Dir(_) => (Kind::Dir, 4096, 2 + node.subdirs),
        };
        Ok(Stat {
            kind,
            dev,
            ino,
            nlink,
            size,
            atim: node.atim,
            mtim: node.mtim,
            ctim: node.ctim,
        })
    }

    /// Resizes file `ino` to `len`, zero-filling; its memory never passes
    /// the cap.
    fn resize(&mut self, ino: u64, len: u64) -> Result<()> {
        let remaining = self.cap.saturating_sub(self.used);
        let node = self.get_mut(ino)?;
        let Body::File(data) = &mut node.body else {
            return Err(Errno::Isdir);
        };
        let Data::Owned(bytes) = data else {
            return Err(Errno::Rofs);
        };
        let len = usize::try_from(len).map_err(|_| Errno::Fbig)?;
        let before = bytes.capacity() as u64;
        if len > bytes.capacity() {
            if (len - bytes.capacity()) as u64 > remaining {
                return Err(Errno::Nospc);
            }
            // Room to grow geometrically, but never past the cap.
            let room = bytes.capacity() as u64 + remaining;
            let want = (len.max(bytes.capacity() * 2) as u64).min(room) as usize;
            bytes.reserve_exact(want - bytes.len());
        }
        bytes.resize(len, 0);
        if bytes.capacity() > 2 * len + 4096 {
            bytes.shrink_to_fit();
        }
        let after = bytes.capacity() as u64;
        let now = now_ns();
        node.mtim = now;
        node.ctim = now;
        if after >= before {
            self.used += after - before;
        } else {
            self.refund(before - after);
        }
        Ok(())
    }
}

impl Backend for MemFs {
    fn stat(&self, path: &Rel) -> Result<Stat> {
        let tree = self.tree();
        tree.stat(tree.lookup(path)?, self.0.dev)
    }

    fn read_dir(&self, path: &Rel) -> Result<Vec<DirEntry>> {
        let tree = self.tree();
        let entries = tree.entries(tree.lookup(path)?)?;
        Ok(entries
            .iter()
            .map(|(name, &ino)| DirEntry {
                name: name.clone(),
                kind: tree.stat(ino, 0).map_or(Kind::Other, |s| s.kind),
                ino,
            })
            .collect())
    }

    fn readlink(&self, path: &Rel) -> Result<String> {
        let tree = self.tree();
        match &tree.get(tree.lookup(path)?)?.body {
            Body::Symlink(target) => Ok(target.clone()),
            _ => Err(Errno::Inval),
        }
    }

    fn open(&self, path: &Rel, how: OpenHow) -> Result<Arc<dyn File>> {
        if how.write || how.create || how.truncate {
            self.writable()?;
        }
        let mut tree = self.tree();
        let ino = if how.create {
            let (dir, name) = tree.parent_of(path)?;
            tree.insert(
                dir,
                name,
                node(Body::File(Data::Owned(Vec::new())), now_ns()),
            )?
        } else {
            tree.lookup(path)?
        };
        if !matches!(tree.get(ino)?.body, Body::File(_)) {
            return Err(Errno::Isdir);
        }
        if how.truncate {
            tree.resize(ino, 0)?;
        }
        tree.get_mut(ino)?.open += 1;
        Ok(Arc::new(MemFile {
            fs: self.clone(),
            ino,
        }))
    }

    fn mkdir(&self, path: &Rel) -> Result<()> {
        self.writable()?;
        let mut tree = self.tree();
        let (dir, name) = tree.parent_of(path)?;
        let dir_node = node(Body::Dir(BTreeMap::new()), now_ns());
        tree.insert(dir, name, dir_node).map(drop)
    }

    fn rmdir(&self, path: &Rel) -> Result<()> {
        self.writable()?;
        let mut tree = self.tree();
        let (dir, name) = tree.parent_of(path)?;
        let ino = tree.lookup(path)?;
        if !tree.entries(ino)?.is_empty() {
            return Err(Errno::Notempty);
        }
        tree.remove_entry(dir, name)
    }

    fn unlink(&self, path: &Rel) -> Result<()> {
        self.writable()?;
        let mut tree = self.tree();
        let (dir, name) = tree.parent_of(path)?;
        tree.remove_entry(dir, name)
    }

    fn rename(&self, from: &Rel, to: &Rel) -> Result<()> {
        self.writable()?;
        let mut tree = self.tree();
        let (from_dir, from_name) = tree.parent_of(from)?;
        let (to_dir, to_name) = tree.parent_of(to)?;
        let ino = *tree.entries(from_dir)?.get(from_name).ok_or(Errno::Noent)?;
        let replaced = tree.entries(to_dir)?.get(to_name).copied();
        if replaced == Some(ino) {
            return Ok(());
        }
        // The name's cost moves with it; only a longer name costs more.
        let longer = to_name.len().saturating_sub(from_name.len()) as u64;
        if replaced.is_none() && tree.used + longer > tree.cap {
            return Err(Errno::Nospc);
        }
        if replaced.is_some() {
            // A file loses a link; an empty directory goes.
            tree.remove_entry(to_dir, to_name)?;
        }
        tree.entries_mut(from_dir)?.remove(from_name);
        tree.forget_lookups();
        tree.count_subdir(from_dir, ino, -1);
        tree.refund(ENTRY_COST + from_name.len() as u64);
        tree.entries_mut(to_dir)?.insert(to_name.to_string(), ino);
        tree.count_subdir(to_dir, ino, 1);
        tree.used += ENTRY_COST + to_name.len() as u64;
        tree.touch_dir(from_dir);
        tree.touch_dir(to_dir);
        tree.get_mut(ino)?.ctim = now_ns();
        Ok(())
    }

    fn link(&self, from: &Rel, to: &Rel) -> Result<()> {
        self.writable()?;
        let mut tree = self.tree();
        let ino = tree.lookup(from)?;
        // A directory with two names would make a cycle.
        if tree.is_dir(ino) {
            return Err(Errno::Perm);
        }
        let (dir, name) = tree.parent_of(to)?;
        if tree.entries(dir)?.contains_key(name) {
            return Err(Errno::Exist);
        }
        tree.charge(ENTRY_COST + name.len() as u64)?;
        tree.entries_mut(dir)?.insert(name.to_string(), ino);
        tree.touch_dir(dir);
        let node = tree.get_mut(ino)?;
        node.nlink += 1;
        node.ctim = now_ns();
        Ok(())
    }

    fn symlink(&self, target: &str, path: &Rel) -> Result<()> {
        self.writable()?;
        let mut tree = self.tree();
        let (dir, name) = tree.parent_of(path)?;
        let link = node(Body::Symlink(target.to_string()), now_ns());
        tree.insert(dir, name, link).map(drop)
    }

    fn set_times(&self, path: &Rel, atim: SetTime, mtim: SetTime) -> Result<()> {
        self.writable()?;
        let mut tree = self.tree();
        let ino = tree.lookup(path)?;
        set_node_times(tree.get_mut(ino)?, atim, mtim);
        Ok(())
    }

    fn max_file_size(&self) -> u64 {
        self.tree().cap
    }

    fn read_only(&self) -> bool {
        self.0.read_only.load(Ordering::Relaxed)
    }
}

fn set_node_times(node: &mut Node, atim: SetTime, mtim: SetTime) {
    let now = now_ns();
    for (field, value) in [(&mut node.atim, atim), (&mut node.mtim, mtim)] {
        match value {
            SetTime::Keep => {}
            SetTime::Now => *field = now,
            SetTime::At(ns) => *field = ns,
        }
    }
    node.ctim = now;
}

/// An open file of a [`MemFs`]; keeps the node alive after its last name
/// is removed.
struct MemFile {
    fs: MemFs,
    ino: u64,
}

impl Drop for MemFile {
    fn drop(&mut self) {
        let mut tree = self.fs.tree();
        if let Ok(node) = tree.get_mut(self.ino) {
            node.open = node.open.saturating_sub(1);
        }
        tree.release(self.ino);
    }
}

impl File for MemFile {
    fn stat(&self) -> Result<Stat> {
        self.fs.tree().stat(self.ino, self.fs.0.dev)
    }

    fn read_at(&self, buf: &mut [u8], at: u64) -> Result<usize> {
        let tree = self.fs.tree();
        let Body::File(data) = &tree.get(self.ino)?.body else {
            return Err(Errno::Isdir);
        };
        let bytes = data.bytes();
        let start = usize::try_from(at).unwrap_or(usize::MAX).min(bytes.len());
        let n = buf.len().min(bytes.len() - start);
        buf[..n].copy_from_slice(&bytes[start..start + n]);
        Ok(n)
    }

    fn write_at(&self, data: &[u8], at: u64) -> Result<usize> {
        self.fs.writable()?;
        if data.is_empty() {
            // Writes nothing, and so never extends the file.
            return Ok(0);
        }
        let mut tree = self.fs.tree();
        let end = at.checked_add(data.len() as u64).ok_or(Errno::Fbig)?;
        let len = match &tree.get(self.ino)?.body {
            Body::File(d) => d.bytes().len() as u64,
            _ => return Err(Errno::Isdir),
        };
        if end > len {
            tree.resize(self.ino, end)?;
        }
        let node = tree.get_mut(self.ino)?;
        if let Body::File(Data::Owned(bytes)) = &mut node.body {
            bytes[at as usize..end as usize].copy_from_slice(data);
        }
        let now = now_ns();
        node.mtim = now;
        node.ctim = now;
        Ok(data.len())
    }

    fn set_len(&self, len: u64) -> Result<()> {
        self.fs.writable()?;
        self.fs.tree().resize(self.ino, len)
    }

    fn set_times(&self, atim: SetTime, mtim: SetTime) -> Result<()> {
        self.fs.writable()?;
        let mut tree = self.fs.tree();
        set_node_times(tree.get_mut(self.ino)?, atim, mtim);
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(path: &str) -> Vec<String> {
        path.split('/')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    }

    fn create(fs: &MemFs, path: &str) -> Arc<dyn File> {
        let how = OpenHow {
            read: true,
            write: true,
            create: true,
            truncate: false,
        };
        fs.open(&p(path), how).unwrap()
    }

    #[test]
    fn the_cap_counts_contents_nodes_and_names_and_a_refused_write_changes_nothing() {
        let fs = MemFs::new(Some(64 * 1024));
        let f = create(&fs, "big");
        let block = vec![7u8; 16 * 1024];
        let mut written = 0;
        while f.write_at(&block, written).is_ok() {
            written += block.len() as u64;
        }
        assert_eq!(f.write_at(&block, written), Err(Errno::Nospc));
        assert_eq!(f.stat().unwrap().size, written);
        assert!(fs.used() <= 64 * 1024, "{}", fs.used());
        assert!(written >= 32 * 1024, "{written}");
        // Emptying the file gives the room back.
        f.set_len(0).unwrap();
        f.write_at(&block, 0).unwrap();
        // Empty files and directories cost too: they cannot be made
        // without end.
        drop(f);
        fs.unlink(&p("big")).unwrap();
        let made = (0..100_000)
            .take_while(|i| fs.mkdir(&p(&format!("d{i}"))).is_ok())
            .count();
        assert!(made < 1000, "{made}");
        assert_eq!(fs.mkdir(&p("one_more")), Err(Errno::Nospc));
    }

    #[test]
    fn hard_links_share_a_file_and_it_lives_while_a_name_or_a_descriptor_does() {
        let fs = MemFs::new(Some(1 << 20));
        let empty = fs.used();
        let f = create(&fs, "a");
        f.write_at(b"shared", 0).unwrap();
        // Writing nothing past the end does not extend the file.
        assert_eq!(f.write_at(b"", 1000), Ok(0));
        assert_eq!(f.stat().unwrap().size, 6);
        fs.link(&p("a"), &p("b")).unwrap();
        assert_eq!(fs.stat(&p("b")).unwrap().nlink, 2);
        assert_eq!(fs.stat(&p("a")).unwrap().ino, fs.stat(&p("b")).unwrap().ino);
        fs.unlink(&p("a")).unwrap();
        assert_eq!(fs.stat(&p("b")).unwrap().nlink, 1);
        fs.unlink(&p("b")).unwrap();
        assert_eq!(fs.stat(&p("b")), Err(Errno::Noent));
        // Still readable through the open descriptor, and freed with it.
        let mut buf = [0u8; 6];
        assert_eq!(f.read_at(&mut buf, 0), Ok(6));
        assert_eq!(&buf, b"shared");
        drop(f);
        assert_eq!(fs.used(), empty);
    }

    #[test]
    fn rename_replaces_a_file_or_an_empty_directory() {
        let fs = MemFs::new(None);
        create(&fs, "x").write_at(b"x", 0).unwrap();
        create(&fs, "y").write_at(b"yy", 0).unwrap();
        fs.rename(&p("x"), &p("y")).unwrap();
        assert_eq!(fs.stat(&p("y")).unwrap().size, 1);
        assert_eq!(fs.stat(&p("x")), Err(Errno::Noent));
        fs.mkdir(&p("d1")).unwrap();
        fs.mkdir(&p("d2")).unwrap();
        fs.rename(&p("d1"), &p("d2")).unwrap();
        assert_eq!(fs.stat(&p("d2")).unwrap().kind, Kind::Dir);
        // A name onto itself (or another link of the same file): nothing.
        fs.link(&p("y"), &p("z")).unwrap();
        fs.rename(&p("y"), &p("z")).unwrap();
        assert_eq!(fs.stat(&p("y")).unwrap().nlink, 2);
        let names: Vec<_> = fs
            .read_dir(&[])
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, ["d2", "y", "z"]);
    }

    #[test]
    fn link_counts_and_lookups_follow_every_change() {
        let fs = MemFs::new(None);
        for d in ["a", "a/b", "a/b/c", "x"] {
            fs.mkdir(&p(d)).unwrap();
        }
        create(&fs, "a/f");
        let nlink = |path: &str| fs.stat(&p(path)).unwrap().nlink;
        assert_eq!((nlink(""), nlink("a"), nlink("a/b")), (4, 3, 3));
        // A lookup remembered before a rename is not reused after it.
        assert_eq!(fs.stat(&p("a/b/c")).unwrap().kind, Kind::Dir);
        fs.rename(&p("a/b"), &p("x/b")).unwrap();
        assert_eq!(fs.stat(&p("a/b/c")), Err(Errno::Noent));
        assert_eq!(fs.stat(&p("x/b/c")).unwrap().kind, Kind::Dir);
        assert_eq!((nlink("a"), nlink("x")), (2, 3));
        fs.mkdir(&p("a/b")).unwrap();
        assert_eq!(fs.stat(&p("a/b/c")), Err(Errno::Noent));
        fs.rmdir(&p("x/b/c")).unwrap();
        assert_eq!((nlink("x/b"), nlink("a")), (2, 3));
        assert_eq!(fs.stat(&p("x/b/c")), Err(Errno::Noent));
        // Files do not count, and a directory never gets a second name.
        assert_eq!(fs.link(&p("x"), &p("y")), Err(Errno::Perm));
        fs.link(&p("a/f"), &p("x/g")).unwrap();
        assert_eq!(nlink("x"), 3);
    }

    #[test]
    fn a_read_only_tree_reads_and_refuses_every_change_with_erofs() {
        let script = Bytes::from_static(b"print(1)");
        let fs = MemFs::read_only(&[p("tmp")], &[(p("lib/code.py"), script)]);
        let f = fs.open(&p("lib/code.py"), OpenHow::default()).unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(f.read_at(&mut buf, 0), Ok(8));
        assert_eq!(f.write_at(b"x", 0), Err(Errno::Rofs));
        assert_eq!(f.set_len(0), Err(Errno::Rofs));
        assert_eq!(fs.stat(&p("tmp")).unwrap().kind, Kind::Dir);
        let write = OpenHow {
            write: true,
            ..OpenHow::default()
        };
        assert_eq!(fs.open(&p("lib/code.py"), write).err(), Some(Errno::Rofs));
        assert_eq!(fs.mkdir(&p("d")), Err(Errno::Rofs));
        assert_eq!(fs.unlink(&p("lib/code.py")), Err(Errno::Rofs));
        assert_eq!(fs.rename(&p("lib"), &p("lib2")), Err(Errno::Rofs));
        assert_eq!(fs.symlink("x", &p("l")), Err(Errno::Rofs));
        assert_eq!(
            fs.set_times(&p("lib"), SetTime::Now, SetTime::Now),
            Err(Errno::Rofs)
        );
        assert!(fs.read_only());
    }
}
