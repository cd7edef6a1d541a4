//! The function store: `functions/<id>/` holding `code.<ext>`,
//! `metadata.json` and (for compiled languages) `code.wasm`, plus the
//! in-memory index of what is deployed.
//!
//! A deploy builds its directory under a hidden staging name
//! (`.staging-<id>`) and renames it into place only when everything is
//! written, so a crash or a compile error never leaves a half-written
//! function behind; staging leftovers are removed at start.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

pub use faas_proto::FunctionMeta;

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
}

/// The deployed functions, on disk and in memory.
pub struct FunctionStore {
    dir: PathBuf,
    index: Mutex<Index>,
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
                Ok(meta) if meta.id == file_name => index.insert(Arc::new(meta)),
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
            "function store {}: {} functions loaded",
            dir.display(),
            index.by_id.len()
        );
        Ok(Self {
            dir,
            index: Mutex::new(index),
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

    fn reserve_id(&self, name: &str, update: bool) -> Result<Reservation<'_>, StoreError> {
        let mut index = self.index.lock().unwrap();
        let deployed = index.by_name.contains_key(name);
        if update && !deployed {
            return Err(StoreError::NotFound(name.to_string()));
        }
        if !update && (deployed || index.reserved.contains(name)) {
            return Err(StoreError::NameTaken(name.to_string()));
        }
        let base = format!("{name}_{}", now_secs());
        let mut id = base.clone();
        let mut n = 2;
        while index.by_id.contains_key(&id)
            || index.pending_ids.contains(&id)
            || self.dir.join(&id).exists()
        {
            id = format!("{base}_{n}");
            n += 1;
        }
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
        })
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
    pub fn trim(&self, name: &str, keep: usize) -> Vec<Arc<FunctionMeta>> {
        let excess: Vec<_> = self.versions(name).into_iter().skip(keep.max(1)).collect();
        for meta in &excess {
            self.forget_and_trash(meta);
        }
        excess
    }

    /// Removes a function and all its versions. Returns them.
    pub fn remove_function(&self, name: &str) -> Result<Vec<Arc<FunctionMeta>>, StoreError> {
        let all = self.versions(name);
        if all.is_empty() {
            return Err(StoreError::NotFound(name.to_string()));
        }
        for meta in &all {
            self.forget_and_trash(meta);
        }
        Ok(all)
    }

    /// Removes one version; the latest only when it is the only one.
    pub fn remove_version(&self, id: &str) -> Result<Arc<FunctionMeta>, StoreError> {
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
        self.forget_and_trash(&meta);
        Ok(meta)
    }

    /// Drops a version from the index, then from disk (renamed away first,
    /// so no half-deleted directory is ever loaded).
    fn forget_and_trash(&self, meta: &FunctionMeta) {
        {
            let mut index = self.index.lock().unwrap();
            index.by_id.remove(&meta.id);
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
        }
        let dir = self.dir.join(&meta.id);
        let trash = self.dir.join(format!("{TRASH_PREFIX}{}", meta.id));
        if let Err(err) = std::fs::rename(&dir, &trash) {
            log::error!(target: PART, "removing {}: {err}", dir.display());
            return;
        }
        if let Err(err) = std::fs::remove_dir_all(&trash) {
            log::error!(target: PART, "removing {}: {err}", trash.display());
        }
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

    /// The stored source of a function.
    pub fn source(&self, meta: &FunctionMeta) -> Result<String, StoreError> {
        let path = self.dir.join(&meta.id).join(meta.lang.source_file());
        std::fs::read_to_string(&path).map_err(io_err(&path))
    }
}

impl Reservation<'_> {
    /// Creates the staging directory.
    pub fn create_staging(&self) -> Result<(), StoreError> {
        std::fs::create_dir(&self.staging).map_err(io_err(&self.staging))
    }

    /// Writes `metadata.json`, moves the staging directory into place and
    /// indexes the function.
    pub fn commit(mut self, mut meta: FunctionMeta) -> Result<Arc<FunctionMeta>, StoreError> {
        // The commit order decides which version `fn=NAME` serves.
        {
            let mut index = self.store.index.lock().unwrap();
            meta.version = index.next_version;
            index.next_version += 1;
        }
        let meta_path = self.staging.join("metadata.json");
        let json = serde_json::to_vec_pretty(&meta).expect("metadata serialises");
        std::fs::write(&meta_path, json).map_err(io_err(&meta_path))?;
        let final_dir = self.store.dir.join(&self.id);
        std::fs::rename(&self.staging, &final_dir).map_err(io_err(&final_dir))?;
        let meta = Arc::new(meta);
        let mut index = self.store.index.lock().unwrap();
        if self.holds_name {
            index.reserved.remove(&self.name);
        }
        index.pending_ids.remove(&self.id);
        index.insert(meta.clone());
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
    fn insert(&mut self, meta: Arc<FunctionMeta>) {
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

fn read_meta(dir: &Path) -> Result<FunctionMeta, String> {
    let path = dir.join("metadata.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
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

    use faas_proto::Lang;

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
        assert_eq!(reopened.source(&m).unwrap(), "print(1)");
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
}
