//! The function store: `functions/<id>/` holding `code.<ext>`,
//! `metadata.json` and (for compiled languages) `code.wasm`, plus the
//! in-memory index of what is deployed.
//!
//! A deploy builds its directory under a hidden staging name
//! (`.staging-<id>`) and renames it into place only when everything is
//! written, so a crash or a compile error never leaves a half-written
//! function behind; staging leftovers are removed at start.
//!
//! The store is bounded ([`Quota`]): at most so many functions (names) and
//! so many bytes on disk, every version counted. The index keeps each
//! version's size and a running total (summed once at start, then updated
//! as versions come and go), so a deploy checks the quota without scanning
//! the store. A deploy is refused before its build when the store is
//! already full, and at its commit, under the index's lock, when its own
//! files would take the store past the limit: racing deploys cannot both
//! squeeze in. The Go build cache (`.cache`) is a cache, not counted.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

pub use faas_proto::FunctionMeta;
use faas_proto::{ArchiveFormat, Lang};

const PART: &str = "SERVER";
const STAGING_PREFIX: &str = ".staging-";
/// A version being removed: renamed first (atomic), then deleted, so a
/// crash in between leaves nothing that is served; leftovers go at start.
const TRASH_PREFIX: &str = ".trash-";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("a function named '{0}' is already deployed")]
    NameTaken(String),
    #[error("function '{0}' not found")]
    NotFound(String),
    #[error("'{0}' is the latest version; deploy a newer one first, or delete the whole function by name")]
    IsLatest(String),
    /// The store is at a limit (`--max-functions`, `--max-store-mb`).
    #[error("{0}")]
    Full(String),
    #[error("function store I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Default)]
struct Index {
    by_id: HashMap<String, Arc<FunctionMeta>>,
    /// name → id of its latest version.
    by_name: HashMap<String, String>,
    /// Names with a deploy in progress.
    reserved: HashSet<String>,
    /// Ids handed out but not yet committed.
    pending_ids: HashSet<String>,
    /// The version number the next commit gets (later commits win).
    next_version: u64,
    /// Bytes on disk of each version (id → bytes) and their sum.
    bytes: HashMap<String, u64>,
    total_bytes: u64,
}

/// How much the store may hold.
#[derive(Debug, Clone, Copy)]
pub struct Quota {
    /// Most functions (names; a function's versions count once).
    pub max_functions: usize,
    /// Most bytes on disk, every version of every function counted.
    pub max_bytes: u64,
}

impl Default for Quota {
    fn default() -> Self {
        Self {
            max_functions: usize::MAX,
            max_bytes: u64::MAX,
        }
    }
}

/// The deployed functions, on disk and in memory.
pub struct FunctionStore {
    dir: PathBuf,
    index: Mutex<Index>,
    quota: Quota,
}

/// A version taken out of the store, with the bytes it held on disk.
#[derive(Debug, Clone)]
pub struct Removed {
    pub meta: Arc<FunctionMeta>,
    pub bytes: u64,
}

/// A name held for one deploy; dropping it without committing frees it.
pub struct Reservation<'a> {
    store: &'a FunctionStore,
    pub name: String,
    pub id: String,
    pub staging: PathBuf,
    committed: bool,
    /// A deploy holds its name (no other deploy may take it); an update
    /// does not (racing updates both become versions).
    holds_name: bool,
    /// Ids other replicas claimed first ([`switch_id`](Self::switch_id)).
    taken_elsewhere: Vec<String>,
}

impl FunctionStore {
    /// Opens (creating if needed) the store at `dir` and indexes what it holds.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let dir = dir.canonicalize().map_err(io_err(dir))?;
        // Private to the server: functions run as other users.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io_err(&dir))?;
        let mut index = Index::default();
        for entry in std::fs::read_dir(&dir).map_err(io_err(&dir))? {
            let entry = entry.map_err(io_err(&dir))?;
            let path = entry.path();
            let file_name = entry.file_name().to_string_lossy().into_owned();
            if file_name.starts_with(STAGING_PREFIX) || file_name.starts_with(TRASH_PREFIX) {
                log::info!(target: PART, "removing unfinished deploy or delete {}", path.display());
                let _ = std::fs::remove_dir_all(&path);
                continue;
            }
            if !path.is_dir() {
                continue;
            }
            match read_meta(&path) {
                Ok(meta) if meta.id == file_name => index.insert(Arc::new(meta), dir_bytes(&path)),
                Ok(meta) => log::warn!(
                    target: PART,
                    "skipping {}: metadata names id '{}'",
                    path.display(),
                    meta.id
                ),
                Err(err) => log::warn!(target: PART, "skipping {}: {err}", path.display()),
            }
        }
        log::info!(
            target: PART,
            "function store {}: {} functions loaded ({:.1} MiB)",
            dir.display(),
            index.by_id.len(),
            index.total_bytes as f64 / MIB as f64
        );
        Ok(Self {
            dir,
            index: Mutex::new(index),
            quota: Quota::default(),
        })
    }

    /// Bounds what the store may hold from now on (what it already holds
    /// stays, even past the quota; only new deploys are refused).
    pub fn with_quota(mut self, quota: Quota) -> Self {
        self.quota = quota;
        self
    }

    /// Bytes on disk of every version, as counted.
    pub fn total_bytes(&self) -> u64 {
        self.index.lock().unwrap().total_bytes
    }

    /// Why a deploy adding `new_name` (if it is a new function) and
    /// `bytes` more bytes would break the quota, if it would.
    fn over_quota(&self, index: &Index, new_name: Option<&str>, bytes: u64) -> Option<String> {
        let quota = &self.quota;
        if let Some(name) = new_name {
            let functions = index.by_name.len() + index.reserved.len();
            let already = index.by_name.contains_key(name) || index.reserved.contains(name);
            if !already && functions >= quota.max_functions {
                return Some(format!(
                    "the function store is full: it holds {functions} functions and --max-functions allows {}; delete one first",
                    quota.max_functions
                ));
            }
        }
        let total = index.total_bytes.saturating_add(bytes);
        // A deploy is refused before its build when the store is full
        // (bytes 0): `>=`; at its commit when it would pass the limit: `>`.
        let over = if bytes == 0 {
            total >= quota.max_bytes
        } else {
            total > quota.max_bytes
        };
        over.then(|| {
            format!(
                "the function store is full: {} MiB used{}, and --max-store-mb allows {} MiB (every version counts); delete functions or versions first",
                mib(index.total_bytes),
                if bytes > 0 { format!(", this version needs {} MiB more", mib(bytes)) } else { String::new() },
                quota.max_bytes / MIB
            )
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Holds `name` for a deploy and picks a fresh id (`<name>_<unix secs>`,
    /// with a `_N` suffix when that is taken).
    pub fn reserve(&self, name: &str) -> Result<Reservation<'_>, StoreError> {
        self.reserve_id(name, false)
    }

    /// Picks a fresh id for a new version of the deployed function `name`.
    pub fn reserve_update(&self, name: &str) -> Result<Reservation<'_>, StoreError> {
        self.reserve_id(name, true)
    }

    /// A reservation for a version of `name` whose existence the shared
    /// index decides, not this cache (which may not have seen a deploy or
    /// delete made on another replica a moment ago): a deploy still holds
    /// the name here against a second deploy on this replica.
    pub fn reserve_shared(&self, name: &str, update: bool) -> Result<Reservation<'_>, StoreError> {
        self.reserve_checked(name, update, false)
    }

    fn reserve_id(&self, name: &str, update: bool) -> Result<Reservation<'_>, StoreError> {
        self.reserve_checked(name, update, true)
    }

    fn reserve_checked(
        &self,
        name: &str,
        update: bool,
        check_deployed: bool,
    ) -> Result<Reservation<'_>, StoreError> {
        let mut index = self.index.lock().unwrap();
        let deployed = check_deployed && index.by_name.contains_key(name);
        if update && check_deployed && !deployed {
            return Err(StoreError::NotFound(name.to_string()));
        }
        if !update && (deployed || index.reserved.contains(name)) {
            return Err(StoreError::NameTaken(name.to_string()));
        }
        if let Some(full) = self.over_quota(&index, Some(name), 0) {
            return Err(StoreError::Full(full));
        }
        let id = self.fresh_id(&index, name, &[]);
        if !update {
            index.reserved.insert(name.to_string());
        }
        index.pending_ids.insert(id.clone());
        drop(index);
        let staging = self.dir.join(format!("{STAGING_PREFIX}{id}"));
        Ok(Reservation {
            store: self,
            name: name.to_string(),
            staging,
            id,
            committed: false,
            holds_name: !update,
            taken_elsewhere: Vec::new(),
        })
    }

    /// An id no version here has or is about to get: `<name>_<unix secs>`,
    /// with a `_N` suffix when that is taken, `avoid` included (ids another
    /// replica claimed first).
    fn fresh_id(&self, index: &Index, name: &str, avoid: &[String]) -> String {
        let base = format!("{name}_{}", now_secs());
        let mut id = base.clone();
        let mut n = 2;
        while index.by_id.contains_key(&id)
            || index.pending_ids.contains(&id)
            || avoid.contains(&id)
            || self.dir.join(&id).exists()
        {
            id = format!("{base}_{n}");
            n += 1;
        }
        id
    }

    /// Whether version `id` is here, or being deployed by this replica.
    pub fn knows(&self, id: &str) -> bool {
        let index = self.index.lock().unwrap();
        index.by_id.contains_key(id) || index.pending_ids.contains(id)
    }

    /// Every version id here.
    pub fn ids(&self) -> Vec<String> {
        self.index.lock().unwrap().by_id.keys().cloned().collect()
    }

    /// A fresh directory to download version `id` into before
    /// [`adopt`](Self::adopt) (a leftover is removed at start, like a
    /// deploy's staging).
    pub fn download_dir(&self, id: &str) -> Result<PathBuf, StoreError> {
        let dir = self.dir.join(format!("{STAGING_PREFIX}sync-{id}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).map_err(io_err(&dir))?;
        Ok(dir)
    }

    /// Puts a version another replica deployed (downloaded into `dir`)
    /// into place, with the commit number the shared index gave it. No
    /// quota check: the shared index already holds it.
    pub fn adopt(&self, dir: &Path, meta: FunctionMeta) -> Result<Arc<FunctionMeta>, StoreError> {
        write_meta(dir, &meta)?;
        let bytes = dir_bytes(dir);
        let mut index = self.index.lock().unwrap();
        if index.by_id.contains_key(&meta.id) || index.pending_ids.contains(&meta.id) {
            drop(index);
            let _ = std::fs::remove_dir_all(dir);
            return Err(StoreError::NameTaken(meta.id));
        }
        let final_dir = self.dir.join(&meta.id);
        std::fs::rename(dir, &final_dir).map_err(io_err(&final_dir))?;
        let meta = Arc::new(meta);
        index.insert(meta.clone(), bytes);
        Ok(meta)
    }

    /// Removes the versions `ids` that are here (the shared index dropped
    /// them). Returns them.
    pub fn remove_ids(&self, ids: &[String]) -> Vec<Removed> {
        let metas: Vec<_> = {
            let index = self.index.lock().unwrap();
            ids.iter()
                .filter_map(|id| index.by_id.get(id).cloned())
                .collect()
        };
        metas
            .into_iter()
            .map(|m| self.forget_and_trash(m))
            .collect()
    }

    /// Why a version of `bytes` more would break the quota, if it would.
    pub fn check_room(&self, bytes: u64) -> Result<(), StoreError> {
        let index = self.index.lock().unwrap();
        match self.over_quota(&index, None, bytes.max(1)) {
            Some(full) => Err(StoreError::Full(full)),
            None => Ok(()),
        }
    }

    /// Whether a function named `name` is deployed (any version).
    pub fn is_deployed(&self, name: &str) -> bool {
        self.index.lock().unwrap().by_name.contains_key(name)
    }

    /// Each function's latest version with its number of versions, in one
    /// pass (the dashboard asks every second).
    pub fn latest_with_counts(&self) -> Vec<(Arc<FunctionMeta>, usize)> {
        let index = self.index.lock().unwrap();
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for meta in index.by_id.values() {
            *counts.entry(meta.name.as_str()).or_default() += 1;
        }
        index
            .by_name
            .iter()
            .filter_map(|(name, id)| {
                let meta = index.by_id.get(id)?.clone();
                Some((meta, counts.get(name.as_str()).copied().unwrap_or(1)))
            })
            .collect()
    }

    /// Every version of `name`, newest first.
    pub fn versions(&self, name: &str) -> Vec<Arc<FunctionMeta>> {
        let index = self.index.lock().unwrap();
        let mut all: Vec<_> = index
            .by_id
            .values()
            .filter(|m| m.name == name)
            .cloned()
            .collect();
        all.sort_by(|a, b| newest_first(a, b));
        all
    }

    /// Removes the versions of `name` beyond the `keep` newest. Returns them.
    pub fn trim(&self, name: &str, keep: usize) -> Vec<Removed> {
        let excess = self.versions(name).into_iter().skip(keep.max(1));
        excess.map(|meta| self.forget_and_trash(meta)).collect()
    }

    /// Removes a function and all its versions. Returns them.
    pub fn remove_function(&self, name: &str) -> Result<Vec<Removed>, StoreError> {
        let all = self.versions(name);
        if all.is_empty() {
            return Err(StoreError::NotFound(name.to_string()));
        }
        Ok(all
            .into_iter()
            .map(|meta| self.forget_and_trash(meta))
            .collect())
    }

    /// Removes one version; the latest only when it is the only one.
    pub fn remove_version(&self, id: &str) -> Result<Removed, StoreError> {
        let meta = {
            let index = self.index.lock().unwrap();
            let meta = index
                .by_id
                .get(id)
                .cloned()
                .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
            let latest = index.by_name.get(&meta.name).is_some_and(|l| l == id);
            let others = index
                .by_id
                .values()
                .any(|m| m.name == meta.name && m.id != id);
            if latest && others {
                return Err(StoreError::IsLatest(id.to_string()));
            }
            meta
        };
        Ok(self.forget_and_trash(meta))
    }

    /// Drops a version from the index, then from disk (renamed away first,
    /// so no half-deleted directory is ever loaded).
    fn forget_and_trash(&self, meta: Arc<FunctionMeta>) -> Removed {
        let bytes = {
            let mut index = self.index.lock().unwrap();
            index.by_id.remove(&meta.id);
            let bytes = index.bytes.remove(&meta.id).unwrap_or(0);
            index.total_bytes = index.total_bytes.saturating_sub(bytes);
            if index.by_name.get(&meta.name).is_some_and(|l| *l == meta.id) {
                index.by_name.remove(&meta.name);
                let next = index
                    .by_id
                    .values()
                    .filter(|m| m.name == meta.name)
                    .max_by(|a, b| newest_first(b, a))
                    .map(|m| m.id.clone());
                if let Some(next) = next {
                    index.by_name.insert(meta.name.clone(), next);
                }
            }
            bytes
        };
        let dir = self.dir.join(&meta.id);
        let trash = self.dir.join(format!("{TRASH_PREFIX}{}", meta.id));
        if let Err(err) = std::fs::rename(&dir, &trash) {
            log::error!(target: PART, "removing {}: {err}", dir.display());
        } else if let Err(err) = std::fs::remove_dir_all(&trash) {
            log::error!(target: PART, "removing {}: {err}", trash.display());
        }
        Removed { meta, bytes }
    }

    /// A function by id, or by name (its latest version).
    pub fn resolve(&self, id_or_name: &str) -> Option<Arc<FunctionMeta>> {
        let index = self.index.lock().unwrap();
        index.by_id.get(id_or_name).cloned().or_else(|| {
            index
                .by_name
                .get(id_or_name)
                .and_then(|id| index.by_id.get(id))
                .cloned()
        })
    }

    /// Every function, oldest first.
    pub fn list(&self) -> Vec<Arc<FunctionMeta>> {
        let mut all: Vec<_> = self.index.lock().unwrap().by_id.values().cloned().collect();
        all.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
        all
    }

    pub fn len(&self) -> usize {
        self.index.lock().unwrap().by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The stored source of a function: its file, module or archive, as
    /// deployed.
    pub fn source(&self, meta: &FunctionMeta) -> Result<Vec<u8>, StoreError> {
        let path = self
            .dir
            .join(&meta.id)
            .join(source_name(meta.lang, meta.settings.archive));
        std::fs::read(&path).map_err(io_err(&path))
    }

    /// The directory of a stored version.
    pub fn version_dir(&self, meta: &FunctionMeta) -> PathBuf {
        self.dir.join(&meta.id)
    }
}

impl Reservation<'_> {
    /// Switches to another fresh id (before anything is staged): another
    /// replica claimed this one first.
    pub fn switch_id(&mut self) {
        let mut index = self.store.index.lock().unwrap();
        index.pending_ids.remove(&self.id);
        self.taken_elsewhere.push(self.id.clone());
        let id = self
            .store
            .fresh_id(&index, &self.name, &self.taken_elsewhere);
        index.pending_ids.insert(id.clone());
        drop(index);
        self.staging = self.store.dir.join(format!("{STAGING_PREFIX}{id}"));
        self.id = id;
    }

    /// The bytes staged so far.
    pub fn staged_bytes(&self) -> u64 {
        dir_bytes(&self.staging)
    }

    /// Creates the staging directory.
    pub fn create_staging(&self) -> Result<(), StoreError> {
        std::fs::create_dir(&self.staging).map_err(io_err(&self.staging))
    }

    /// Writes `metadata.json`, moves the staging directory into place and
    /// indexes the function.
    pub fn commit(self, mut meta: FunctionMeta) -> Result<Arc<FunctionMeta>, StoreError> {
        // The commit order decides which version `fn=NAME` serves.
        {
            let mut index = self.store.index.lock().unwrap();
            meta.version = index.next_version;
            index.next_version += 1;
        }
        self.finish(meta, true)
    }

    /// Commits with the commit number the shared index gave the version
    /// (which already accepted it: no quota check here).
    pub fn commit_as(
        self,
        mut meta: FunctionMeta,
        version: u64,
    ) -> Result<Arc<FunctionMeta>, StoreError> {
        meta.version = version;
        self.finish(meta, false)
    }

    fn finish(
        mut self,
        meta: FunctionMeta,
        check_quota: bool,
    ) -> Result<Arc<FunctionMeta>, StoreError> {
        write_meta(&self.staging, &meta)?;
        let bytes = dir_bytes(&self.staging);
        // The size check and the accounting happen under one lock, with the
        // rename: two deploys racing for the last megabytes cannot both
        // pass it. The rename is one syscall; holding the lock is cheap.
        let mut index = self.store.index.lock().unwrap();
        if let Some(full) = check_quota
            .then(|| self.store.over_quota(&index, None, bytes.max(1)))
            .flatten()
        {
            return Err(StoreError::Full(full));
        }
        let final_dir = self.store.dir.join(&self.id);
        std::fs::rename(&self.staging, &final_dir).map_err(io_err(&final_dir))?;
        let meta = Arc::new(meta);
        if self.holds_name {
            index.reserved.remove(&self.name);
        }
        index.pending_ids.remove(&self.id);
        index.insert(meta.clone(), bytes);
        self.committed = true;
        Ok(meta)
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        let _ = std::fs::remove_dir_all(&self.staging);
        let mut index = self.store.index.lock().unwrap();
        if self.holds_name {
            index.reserved.remove(&self.name);
        }
        index.pending_ids.remove(&self.id);
    }
}

impl Index {
    fn insert(&mut self, meta: Arc<FunctionMeta>, bytes: u64) {
        let previous = self.bytes.insert(meta.id.clone(), bytes).unwrap_or(0);
        self.total_bytes = self.total_bytes - previous + bytes;
        let newer = match self
            .by_name
            .get(&meta.name)
            .and_then(|id| self.by_id.get(id))
        {
            Some(current) => newest_first(&meta, current).is_le(),
            None => true,
        };
        self.next_version = self.next_version.max(meta.version + 1);
        if newer {
            self.by_name.insert(meta.name.clone(), meta.id.clone());
        }
        self.by_id.insert(meta.id.clone(), meta);
    }
}

/// Orders versions newest first: by commit number, then creation time and id
/// (for metadata written before versions were numbered).
fn newest_first(a: &FunctionMeta, b: &FunctionMeta) -> std::cmp::Ordering {
    (b.version, b.created, &b.id).cmp(&(a.version, a.created, &a.id))
}

fn write_meta(dir: &Path, meta: &FunctionMeta) -> Result<(), StoreError> {
    let path = dir.join("metadata.json");
    let json = serde_json::to_vec_pretty(meta).expect("metadata serialises");
    std::fs::write(&path, json).map_err(io_err(&path))
}

fn read_meta(dir: &Path) -> Result<FunctionMeta, String> {
    let path = dir.join("metadata.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

const MIB: u64 = 1024 * 1024;

/// Bytes in MiB, one decimal, for messages.
fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / MIB as f64)
}

/// The bytes of the files under `dir` (symbolic links not followed; a
/// function directory is flat, a nested one is counted all the same).
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&entry.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// The file a version's deployed body is kept in: the project's archive,
/// or the one source file (a prebuilt module's is `code.wasm`).
pub fn source_name(lang: Lang, archive: Option<ArchiveFormat>) -> String {
    match archive {
        Some(format) => format.file_name().to_string(),
        None => lang.source_file(),
    }
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(r: &Reservation<'_>, lang: Lang) -> FunctionMeta {
        FunctionMeta {
            id: r.id.clone(),
            name: r.name.clone(),
            lang,
            created: now_secs(),
            sha256: "00".into(),
            wasm: false,
            settings: Default::default(),
            version: 0,
        }
    }

    #[test]
    fn reserve_commit_and_reload() {
        let tmp = tempfile::tempdir().unwrap();
        let store = FunctionStore::open(tmp.path()).unwrap();
        let r = store.reserve("hello").unwrap();
        assert!(matches!(
            store.reserve("hello"),
            Err(StoreError::NameTaken(_))
        ));
        r.create_staging().unwrap();
        std::fs::write(r.staging.join("code.py"), "print(1)").unwrap();
        let m = meta(&r, Lang::Python);
        let id = r.id.clone();
        r.commit(m).unwrap();
        assert!(matches!(
            store.reserve("hello"),
            Err(StoreError::NameTaken(_))
        ));
        assert_eq!(store.resolve("hello").unwrap().id, id);
        assert_eq!(store.resolve(&id).unwrap().name, "hello");

        // A directory already holding the id a deploy would get (left by
        // another process, not indexed) is never reused.
        let now = now_secs();
        for t in [now, now + 1] {
            std::fs::create_dir(tmp.path().join(format!("other_{t}"))).unwrap();
        }
        let r2 = store.reserve("other").unwrap();
        assert!(
            r2.id == format!("other_{now}_2") || r2.id == format!("other_{}_2", now + 1),
            "{}",
            r2.id
        );
        drop(r2);
        for t in [now, now + 1] {
            std::fs::remove_dir(tmp.path().join(format!("other_{t}"))).unwrap();
        }

        // Reopening finds the committed function and drops staging leftovers.
        std::fs::create_dir(tmp.path().join(".staging-junk")).unwrap();
        let reopened = FunctionStore::open(tmp.path()).unwrap();
        assert_eq!(reopened.len(), 1);
        let m = reopened.resolve("hello").unwrap();
        assert_eq!(reopened.source(&m).unwrap(), b"print(1)");
        assert!(!tmp.path().join(".staging-junk").exists());
    }

    #[test]
    fn an_abandoned_reservation_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let store = FunctionStore::open(tmp.path()).unwrap();
        let r = store.reserve("x").unwrap();
        r.create_staging().unwrap();
        let staging = r.staging.clone();
        drop(r);
        assert!(!staging.exists());
        assert!(store.reserve("x").is_ok());
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    /// Commits a function `name` whose source is `bytes` long.
    fn put(
        store: &FunctionStore,
        name: &str,
        update: bool,
        bytes: usize,
    ) -> Result<(), StoreError> {
        let r = if update {
            store.reserve_update(name)?
        } else {
            store.reserve(name)?
        };
        r.create_staging().unwrap();
        std::fs::write(r.staging.join("code.py"), "#".repeat(bytes)).unwrap();
        let m = meta(&r, Lang::Python);
        r.commit(m).map(|_| ())
    }

    #[test]
    fn the_function_count_is_bounded_and_a_delete_frees_room() {
        let tmp = tempfile::tempdir().unwrap();
        let quota = Quota {
            max_functions: 2,
            ..Quota::default()
        };
        let store = FunctionStore::open(tmp.path()).unwrap().with_quota(quota);
        put(&store, "a", false, 1).unwrap();
        // A deploy in progress holds its place too.
        let pending = store.reserve("b").unwrap();
        let err = store.reserve("c").err().unwrap();
        assert!(matches!(err, StoreError::Full(_)), "{err}");
        assert!(
            err.to_string().contains("--max-functions allows 2"),
            "{err}"
        );
        drop(pending);
        put(&store, "b", false, 1).unwrap();
        assert!(matches!(
            put(&store, "c", false, 1),
            Err(StoreError::Full(_))
        ));
        // A new version is not a new function.
        put(&store, "a", true, 1).unwrap();
        store.remove_function("b").unwrap();
        put(&store, "c", false, 1).unwrap();
    }

    #[test]
    fn the_store_size_is_bounded_counted_exactly_and_recounted_at_start() {
        let tmp = tempfile::tempdir().unwrap();
        let quota = Quota {
            max_bytes: 4096,
            ..Quota::default()
        };
        let store = FunctionStore::open(tmp.path()).unwrap().with_quota(quota);
        put(&store, "a", false, 1000).unwrap();
        let used = store.total_bytes();
        assert_eq!(used, dir_bytes(tmp.path()));
        assert!(used > 1000);
        // Too big: refused at commit, nothing left behind, nothing counted.
        let err = put(&store, "big", false, 5000).unwrap_err();
        assert!(err.to_string().contains("--max-store-mb"), "{err}");
        assert!(store.resolve("big").is_none());
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
        assert_eq!(store.total_bytes(), used);
        // Versions count: an update past the limit is refused and the old
        // version stays.
        put(&store, "a", true, 2000).unwrap();
        assert!(matches!(
            put(&store, "a", true, 2000),
            Err(StoreError::Full(_))
        ));
        assert_eq!(store.versions("a").len(), 2);
        assert_eq!(store.total_bytes(), dir_bytes(tmp.path()));
        // A restart counts the same bytes.
        let reopened = FunctionStore::open(tmp.path()).unwrap();
        assert_eq!(reopened.total_bytes(), store.total_bytes());
        // Removing gives the bytes back.
        let removed = store.remove_function("a").unwrap();
        assert_eq!(
            removed.iter().map(|r| r.bytes).sum::<u64>(),
            reopened.total_bytes()
        );
        assert_eq!(store.total_bytes(), 0);
        put(&store, "big", false, 3000).unwrap();
        // Full: the next deploy is refused before its build.
        let quota = Quota {
            max_bytes: store.total_bytes(),
            ..Quota::default()
        };
        let store = FunctionStore::open(tmp.path()).unwrap().with_quota(quota);
        assert!(matches!(store.reserve("x"), Err(StoreError::Full(_))));
    }
}
