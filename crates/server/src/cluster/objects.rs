//! The shared store's objects and how they are read and written.
//!
//! Layout under `s3://BUCKET/PREFIX/v1/` (everything immutable except the
//! index):
//! - `index.json`: the [`SharedIndex`], replaced only by compare-and-swap
//!   (`If-Match` on its ETag, retried on 412);
//! - `fn/<id>/claim`: written create-if-absent when a replica picks a
//!   version id, so no two replicas ever use the same id; it stays after
//!   a delete, so an id is never reused;
//! - `fn/<id>/record.json`: the version's [`VersionRecord`] (its metadata
//!   and the sha256 of its compiled module);
//! - `fn/<id>/<source file>`: the source as deployed;
//! - `blob/sha256/<hex>.wasm`: compiled modules, by content;
//! - `secret/<hex>.sealed`: secret values sealed with the secrets key (never
//!   the cluster key, never in clear), by content; the index names them;
//! - `secret-keycheck.sealed`: a known text sealed with the secrets key, so a
//!   replica started with another key refuses to start.
//!
//! Compiled artifacts (`.wasmu`) are not shared: each replica compiles its
//! own from the `.wasm`, so a bucket writer can never plant native code.
//!
//! The index and every record are sealed with the cluster key
//! ([`Objects::seal`]): `{"payload": "<JSON text>", "signature":
//! "sha256=<HMAC of a kind tag and the payload>"}`. Someone who can write to
//! the bucket but lacks the key can neither forge a version (its record
//! names its id, name, language, settings and the sha256 of its source and
//! module) nor list one under another name: a replica refuses, logs and
//! never runs what does not open with the key. Every read is bounded in
//! size, and the index's names and ids must be ones the API gives.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use faas_proto::FunctionMeta;
use object_store::path::Path as ObjectPath;
use object_store::{
    GetOptions, GetResult, ObjectStore, PutMode, PutOptions, PutPayload, UpdateVersion,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::notice::ClusterKey;

const PART: &str = "CLUSTER";
/// The largest index read (10,000 functions of 5 versions take ~5 MiB).
const MAX_INDEX_BYTES: u64 = 64 << 20;
/// The largest version record read.
const MAX_RECORD_BYTES: u64 = 1 << 20;
/// The least bound on sources and modules (see [`Objects::with_max_blob_bytes`]).
const MIN_BLOB_BYTES: u64 = 16 << 20;
/// A sealed secret: 64 KiB of value in base64 and its JSON.
const MAX_SEALED_SECRET_BYTES: u64 = 128 << 10;

/// The one mutable object: every function's versions and its latest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SharedIndex {
    /// Bumped by every update; a replica never applies an older index
    /// over a newer one.
    pub generation: u64,
    /// The commit number the next version gets (orders versions).
    pub next_version: u64,
    pub functions: BTreeMap<String, FunctionEntry>,
    /// Secrets: name → the sealed object holding the value (the index
    /// names it by content, and is signed, so an object cannot be swapped
    /// for another, older value).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, SecretEntry>,
}

/// One secret in the index (never its value: that is sealed with the
/// secrets key, which no store ever sees).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SecretEntry {
    /// sha256 of the sealed object, hex: `secret/SHA.sealed`.
    pub sha256: String,
    pub size: u64,
    pub created: u64,
    pub updated: u64,
}

/// One function in the index.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionEntry {
    /// The id `fn=NAME` serves.
    pub latest: String,
    /// id → its commit number and size.
    pub versions: BTreeMap<String, VersionEntry>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct VersionEntry {
    pub version: u64,
    pub bytes: u64,
}

impl SharedIndex {
    /// Every version id in the index.
    pub fn ids(&self) -> impl Iterator<Item = (&str, &str, &VersionEntry)> {
        self.functions.iter().flat_map(|(name, f)| {
            f.versions
                .iter()
                .map(move |(id, v)| (name.as_str(), id.as_str(), v))
        })
    }

    /// Adds a committed version and makes it the latest; returns its
    /// commit number.
    pub fn add(&mut self, name: &str, id: &str, bytes: u64) -> u64 {
        let version = self.next_version;
        self.next_version += 1;
        let entry = self.functions.entry(name.to_string()).or_default();
        entry
            .versions
            .insert(id.to_string(), VersionEntry { version, bytes });
        entry.latest = id.to_string();
        version
    }

    /// Removes versions of `name` beyond the `keep` newest; returns them.
    pub fn trim(&mut self, name: &str, keep: usize) -> Vec<String> {
        let Some(entry) = self.functions.get_mut(name) else {
            return Vec::new();
        };
        let mut by_age: Vec<(u64, String)> = entry
            .versions
            .iter()
            .map(|(id, v)| (v.version, id.clone()))
            .collect();
        by_age.sort();
        let excess = by_age.len().saturating_sub(keep.max(1));
        let old: Vec<String> = by_age.into_iter().take(excess).map(|(_, id)| id).collect();
        for id in &old {
            entry.versions.remove(id);
        }
        old
    }

    /// Removes one version, or a whole function; re-points `latest`.
    pub fn remove(&mut self, name: &str, id: Option<&str>) -> Vec<String> {
        let Some(entry) = self.functions.get_mut(name) else {
            return Vec::new();
        };
        let removed: Vec<String> = match id {
            Some(id) => entry
                .versions
                .remove(id)
                .map(|_| id.to_string())
                .into_iter()
                .collect(),
            None => std::mem::take(&mut entry.versions).into_keys().collect(),
        };
        match entry.versions.iter().max_by_key(|(_, v)| v.version) {
            Some((latest, _)) => entry.latest = latest.clone(),
            None => {
                self.functions.remove(name);
            }
        }
        removed
    }

    /// The function a version id belongs to.
    pub fn name_of(&self, id: &str) -> Option<&str> {
        self.ids().find(|(_, i, _)| *i == id).map(|(n, _, _)| n)
    }

    /// Whether every name is one the API accepts, every id one it gives
    /// that name (`NAME_<digits>[_<digits>]`: no `/`, no `..`, so no id
    /// leads a replica outside its cache directory) and every `latest`
    /// one of its function's versions.
    pub fn check(&self) -> Result<(), String> {
        for (name, entry) in &self.functions {
            crate::service::validate_name(name)
                .map_err(|why| format!("the index names function {name:?}: {why}"))?;
            for id in entry.versions.keys() {
                if !is_version_id(name, id) {
                    return Err(format!(
                        "the index lists {id:?} under {name:?}: not an id of that function"
                    ));
                }
            }
            if !entry.versions.contains_key(&entry.latest) {
                return Err(format!(
                    "the index's latest version of {name:?} is not one of its versions"
                ));
            }
        }
        for (name, entry) in &self.secrets {
            crate::secrets::check_name(name)
                .map_err(|why| format!("the index names secret {name:?}: {why}"))?;
            if entry.sha256.len() != 64 || !entry.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!(
                    "the index's secret {name:?} names no sealed object"
                ));
            }
        }
        Ok(())
    }
}

/// Whether `id` is an id the store gives a version of `name`:
/// `NAME_<unix secs>` or `NAME_<unix secs>_<n>`.
pub fn is_version_id(name: &str, id: &str) -> bool {
    let Some(rest) = id.strip_prefix(name).and_then(|r| r.strip_prefix('_')) else {
        return false;
    };
    let digits = |p: &str| !p.is_empty() && p.len() <= 20 && p.bytes().all(|b| b.is_ascii_digit());
    let parts: Vec<&str> = rest.split('_').collect();
    matches!(parts.len(), 1 | 2) && parts.iter().all(|p| digits(p))
}

/// How the index and the records are stored: the JSON text and its HMAC.
#[derive(Serialize, Deserialize)]
struct Sealed {
    payload: String,
    signature: String,
}

/// What is stored, immutable, for each version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionRecord {
    /// The metadata as deployed (`version` is the index's, not this one).
    pub meta: FunctionMeta,
    /// The compiled module's sha256, for compiled languages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module_sha256: Option<String>,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ObjectsError {
    /// The store is unreachable or failed; worth retrying later.
    #[error("{0}")]
    Unavailable(String),
    /// An object is not what was written (sha256 mismatch, bad JSON).
    #[error("{0}")]
    Corrupt(String),
}

/// An S3-compatible store (or any `object_store` backend: tests use the
/// in-memory one) and the prefix faas owns in it.
#[derive(Clone)]
pub struct Objects {
    store: Arc<dyn ObjectStore>,
    root: String,
    /// `s3://bucket/prefix (endpoint)`, for messages.
    pub describe: String,
    /// Seals the index and the records.
    key: ClusterKey,
    /// The largest source or module read.
    max_blob_bytes: u64,
}

/// The tag an object had when it was read, for compare-and-swap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub e_tag: Option<String>,
    pub version: Option<String>,
}

impl Objects {
    pub fn new(
        store: Arc<dyn ObjectStore>,
        prefix: &str,
        describe: String,
        key: ClusterKey,
    ) -> Self {
        let prefix = prefix.trim_matches('/');
        let root = if prefix.is_empty() {
            "v1".to_string()
        } else {
            format!("{prefix}/v1")
        };
        Self {
            store,
            root,
            describe,
            key,
            max_blob_bytes: MIN_BLOB_BYTES,
        }
    }

    /// Bounds the sources and modules read (at least 16 MiB): a replica
    /// never reads more than `--max-module-mb` for one.
    pub fn with_max_blob_bytes(mut self, bytes: u64) -> Self {
        self.max_blob_bytes = bytes.max(MIN_BLOB_BYTES);
        self
    }

    /// `value` as stored: its JSON and the cluster key's signature of it
    /// (with `kind`, so a record never passes for an index, nor a notice
    /// for either).
    fn seal(&self, kind: &str, value: &impl Serialize) -> Vec<u8> {
        let payload = serde_json::to_string(value).expect("serialises");
        let signature = self.key.sign(&sealed_message(kind, &payload));
        serde_json::to_vec(&Sealed { payload, signature }).expect("serialises")
    }

    /// The value sealed in `bytes`, if the cluster key's signature holds.
    fn unseal<T: DeserializeOwned>(
        &self,
        kind: &str,
        bytes: &[u8],
        what: &str,
    ) -> Result<T, ObjectsError> {
        let corrupt = |why: String| ObjectsError::Corrupt(format!("{what}: {why}"));
        let sealed: Sealed = serde_json::from_slice(bytes)
            .map_err(|_| corrupt("not a sealed object (no payload and signature)".into()))?;
        if !self
            .key
            .verify(&sealed_message(kind, &sealed.payload), &sealed.signature)
        {
            return Err(corrupt(
                "its signature is not the cluster key's (written by someone without it); refused"
                    .into(),
            ));
        }
        serde_json::from_str(&sealed.payload).map_err(|e| corrupt(format!("not valid: {e}")))
    }

    /// The body of `result`, refused (as corrupt) past `max` bytes
    /// without reading further: a hostile endpoint's endless body costs
    /// at most `max` of memory.
    async fn read_capped(
        &self,
        result: GetResult,
        max: u64,
        what: &str,
    ) -> Result<Vec<u8>, ObjectsError> {
        use futures_util::StreamExt;
        let too_big = || {
            ObjectsError::Corrupt(format!(
                "{what} in {} is over {max} bytes; refused",
                self.describe
            ))
        };
        if result.meta.size > max {
            return Err(too_big());
        }
        let mut body = Vec::with_capacity(result.meta.size as usize);
        let mut stream = result.into_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.unavailable(what, e))?;
            if (body.len() + chunk.len()) as u64 > max {
                return Err(too_big());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn path(&self, rest: &str) -> ObjectPath {
        ObjectPath::from(format!("{}/{rest}", self.root))
    }

    fn unavailable(&self, what: &str, err: object_store::Error) -> ObjectsError {
        ObjectsError::Unavailable(format!("{what} in {}: {err}", self.describe))
    }

    /// The index and its tag; `Ok(None)` when it is unchanged since
    /// `known` (a 304). A store without an index yet reads as empty.
    pub async fn read_index(
        &self,
        known: Option<&Tag>,
    ) -> Result<Option<(SharedIndex, Tag)>, ObjectsError> {
        let options = GetOptions {
            if_none_match: known.and_then(|t| t.e_tag.clone()),
            ..Default::default()
        };
        let result = match self.store.get_opts(&self.path("index.json"), options).await {
            Ok(result) => result,
            Err(object_store::Error::NotModified { .. }) => return Ok(None),
            Err(object_store::Error::NotFound { .. }) => {
                let empty = Tag {
                    e_tag: None,
                    version: None,
                };
                return Ok(Some((SharedIndex::default(), empty)));
            }
            Err(err) => return Err(self.unavailable("reading the index", err)),
        };
        let tag = Tag {
            e_tag: result.meta.e_tag.clone(),
            version: result.meta.version.clone(),
        };
        let bytes = self
            .read_capped(result, MAX_INDEX_BYTES, "the index")
            .await?;
        let what = format!("the index in {}", self.describe);
        let index: SharedIndex = self.unseal("index", &bytes, &what)?;
        index
            .check()
            .map_err(|why| ObjectsError::Corrupt(format!("{what}: {why}; refused")))?;
        Ok(Some((index, tag)))
    }

    /// Writes `index` if the stored one still has `tag` (created when
    /// `tag` has no ETag, i.e. there was none); `Ok(false)` when another
    /// replica changed it first.
    pub async fn write_index(&self, index: &SharedIndex, tag: &Tag) -> Result<bool, ObjectsError> {
        let mode = match &tag.e_tag {
            None => PutMode::Create,
            Some(e_tag) => PutMode::Update(UpdateVersion {
                e_tag: Some(e_tag.clone()),
                version: tag.version.clone(),
            }),
        };
        let body = self.seal("index", index);
        match self.put(&self.path("index.json"), body, mode).await {
            Ok(()) => Ok(true),
            Err(object_store::Error::Precondition { .. })
            | Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(err) => Err(self.unavailable("writing the index", err)),
        }
    }

    async fn put(
        &self,
        path: &ObjectPath,
        body: Vec<u8>,
        mode: PutMode,
    ) -> Result<(), object_store::Error> {
        let options = PutOptions {
            mode,
            ..Default::default()
        };
        self.store
            .put_opts(path, PutPayload::from(body), options)
            .await
            .map(|_| ())
    }

    /// Claims a version id for this replica; `Ok(false)` when it is taken
    /// (by another replica now, or by a version ever deployed).
    pub async fn claim(&self, id: &str, replica: &str) -> Result<bool, ObjectsError> {
        let body = serde_json::to_vec(
            &serde_json::json!({"replica": replica, "at": crate::store::now_secs()}),
        )
        .expect("serialises");
        match self
            .put(&self.path(&format!("fn/{id}/claim")), body, PutMode::Create)
            .await
        {
            Ok(()) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => Ok(false),
            Err(err) => Err(self.unavailable("claiming a version id", err)),
        }
    }

    /// Uploads a built version from its local directory: the module by
    /// content, the source, then the record (last: a record means the
    /// rest is there).
    pub async fn upload_version(
        &self,
        dir: &Path,
        meta: &FunctionMeta,
    ) -> Result<(), ObjectsError> {
        let module = dir.join("code.wasm");
        let module_sha256 = if module.is_file() {
            let bytes = read(&module)?;
            let sha = hex(&Sha256::digest(&bytes));
            let path = self.path(&format!("blob/sha256/{sha}.wasm"));
            self.put(&path, bytes, PutMode::Overwrite)
                .await
                .map_err(|e| self.unavailable("uploading the module", e))?;
            Some(sha)
        } else {
            None
        };
        // A project's archive as deployed (its tree is unpacked again on
        // download), else the one source file.
        let source_file = crate::store::source_name(meta.lang, meta.settings.archive);
        let source = read(&dir.join(&source_file))?;
        self.put(
            &self.path(&format!("fn/{}/{source_file}", meta.id)),
            source,
            PutMode::Overwrite,
        )
        .await
        .map_err(|e| self.unavailable("uploading the source", e))?;
        let record = VersionRecord {
            meta: meta.clone(),
            module_sha256,
        };
        let body = self.seal("record", &record);
        self.put(
            &self.path(&format!("fn/{}/record.json", meta.id)),
            body,
            PutMode::Overwrite,
        )
        .await
        .map_err(|e| self.unavailable("uploading the version record", e))
    }

    /// Downloads version `id` of function `name` into `dir` (which exists
    /// and is empty): its source, its module (checked against the recorded
    /// sha256) and `metadata.json`. Returns the metadata. The record must
    /// open with the cluster key and name this id and function.
    pub async fn download_version(
        &self,
        name: &str,
        id: &str,
        dir: &Path,
    ) -> Result<FunctionMeta, ObjectsError> {
        if !is_version_id(name, id) {
            return Err(ObjectsError::Corrupt(format!(
                "{id:?} is not an id of function {name:?}; refused"
            )));
        }
        let record = self
            .get(&format!("fn/{id}/record.json"), MAX_RECORD_BYTES)
            .await?;
        let what = format!("the record of {id} in {}", self.describe);
        let record: VersionRecord = self.unseal("record", &record, &what)?;
        if record.meta.id != id || record.meta.name != name {
            return Err(ObjectsError::Corrupt(format!(
                "{what} is that of '{}' ({}); refused",
                record.meta.id, record.meta.name
            )));
        }
        let source_file = crate::store::source_name(record.meta.lang, record.meta.settings.archive);
        let source = self
            .get(&format!("fn/{id}/{source_file}"), self.max_blob_bytes)
            .await?;
        if hex(&Sha256::digest(&source)) != record.meta.sha256 {
            return Err(ObjectsError::Corrupt(format!(
                "the source of {id} does not match its sha256; refused"
            )));
        }
        write(&dir.join(&source_file), &source)?;
        if let Some(format) = record.meta.settings.archive {
            // Checked against its sha256 above, and accepted by the replica
            // that deployed it: unpacked with the same rules, a bound only
            // against a runaway.
            let limits = crate::archive::Limits {
                max_unpacked_bytes: 4 << 30,
                max_files: crate::archive::MAX_FILES,
            };
            let tree = dir.join(crate::project::TREE_DIR);
            crate::archive::unpack(format, &source, &tree, limits).map_err(|e| {
                ObjectsError::Corrupt(format!("the archive of {id} cannot be unpacked: {e}"))
            })?;
        }
        if let Some(sha) = &record.module_sha256 {
            let module = self
                .get(&format!("blob/sha256/{sha}.wasm"), self.max_blob_bytes)
                .await?;
            if hex(&Sha256::digest(&module)) != *sha {
                return Err(ObjectsError::Corrupt(format!(
                    "the module of {id} (blob {sha}) does not match its sha256; refused"
                )));
            }
            write(&dir.join("code.wasm"), &module)?;
        }
        Ok(record.meta)
    }

    /// An object of at most `max` bytes. A missing one is corrupt, not
    /// an outage: the index lists only versions whose objects were all
    /// written, so someone removed it (and retrying every poll would stop
    /// every other version from arriving).
    async fn get(&self, rest: &str, max: u64) -> Result<Vec<u8>, ObjectsError> {
        let path = self.path(rest);
        let what = format!("reading {path}");
        let result = match self.store.get(&path).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(ObjectsError::Corrupt(format!(
                    "{path} is missing from {}",
                    self.describe
                )))
            }
            Err(e) => return Err(self.unavailable(&what, e)),
        };
        self.read_capped(result, max, path.as_ref()).await
    }

    /// Uploads a sealed secret under its content's name; returns that
    /// sha256 (hex).
    pub async fn upload_secret(&self, sealed: &[u8]) -> Result<String, ObjectsError> {
        let sha = hex(&Sha256::digest(sealed));
        self.store
            .put(
                &self.path(&format!("secret/{sha}.sealed")),
                PutPayload::from(sealed.to_vec()),
            )
            .await
            .map_err(|e| self.unavailable("uploading a secret", e))?;
        Ok(sha)
    }

    /// The sealed secret `sha`, checked against its name.
    pub async fn download_secret(&self, sha: &str) -> Result<Vec<u8>, ObjectsError> {
        let bytes = self
            .get(&format!("secret/{sha}.sealed"), MAX_SEALED_SECRET_BYTES)
            .await?;
        if hex(&Sha256::digest(&bytes)) != sha {
            return Err(ObjectsError::Corrupt(format!(
                "secret object {sha} does not match its sha256"
            )));
        }
        Ok(bytes)
    }

    /// The secrets key check every replica must open (written by the
    /// first one): replicas with different keys would store secrets the
    /// others cannot read.
    pub async fn secrets_keycheck(&self, ours: Vec<u8>) -> Result<Vec<u8>, ObjectsError> {
        let path = self.path("secret-keycheck.sealed");
        match self.put(&path, ours.clone(), PutMode::Create).await {
            Ok(()) => return Ok(ours),
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => {}
            Err(e) => return Err(self.unavailable("writing the secrets key check", e)),
        }
        self.get("secret-keycheck.sealed", MAX_SEALED_SECRET_BYTES)
            .await
    }

    /// Replaces an object behind faas's back (tests of tampering).
    #[cfg(test)]
    pub async fn overwrite_for_test(&self, path: &ObjectPath, body: &[u8]) {
        self.store
            .put(path, PutPayload::from(body.to_vec()))
            .await
            .unwrap();
    }

    /// Checks that the store honours conditional writes, which the index
    /// depends on: a second create-if-absent of a scratch key and a write
    /// with a stale ETag must both be refused.
    pub async fn check_conditional_writes(&self, replica: &str) -> Result<(), String> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let scratch = self.path(&format!("check/{replica}-{nanos}"));
        let result = self.probe_conditions(&scratch).await;
        if let Err(err) = self.store.delete(&scratch).await {
            log::warn!(target: PART, "removing the scratch object {scratch}: {err}");
        }
        result
    }

    async fn probe_conditions(&self, scratch: &ObjectPath) -> Result<(), String> {
        let unreachable = |e: object_store::Error| {
            format!("cannot reach the function store {}: {e}", self.describe)
        };
        self.put(scratch, b"1".to_vec(), PutMode::Create)
            .await
            .map_err(unreachable)?;
        match self.put(scratch, b"2".to_vec(), PutMode::Create).await {
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => {}
            Ok(()) => {
                return Err(format!(
                    "the function store {} ignores conditional writes (a second create-if-absent, If-None-Match: *, succeeded); replicas would overwrite each other's deploys. Use a store that honours them (AWS S3, SeaweedFS, MinIO, Cloudflare R2)",
                    self.describe
                ))
            }
            Err(e) => return Err(unreachable(e)),
        }
        let stale = PutMode::Update(UpdateVersion {
            e_tag: Some("\"faas-stale-etag\"".into()),
            version: None,
        });
        match self.put(scratch, b"3".to_vec(), stale).await {
            Err(object_store::Error::Precondition { .. })
            | Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
            Ok(()) => Err(format!(
                "the function store {} ignores If-Match (a write with a stale ETag succeeded); replicas would lose each other's updates. Use a store that honours conditional writes",
                self.describe
            )),
            Err(e) => Err(unreachable(e)),
        }
    }

    /// Deletes what no version in `index` uses and is older than
    /// `min_age`: records, sources and modules of deploys that never
    /// reached the index (a replica killed mid-deploy) or were deleted.
    /// Claims stay, so ids are never reused.
    pub async fn prune(
        &self,
        index: &SharedIndex,
        min_age: Duration,
    ) -> Result<usize, ObjectsError> {
        use futures_util::TryStreamExt;
        let live: std::collections::HashSet<&str> = index.ids().map(|(_, id, _)| id).collect();
        let mut live_modules = std::collections::HashSet::new();
        let cutoff = crate::store::now_secs() as i64 - min_age.as_secs() as i64;
        let mut doomed = Vec::new();
        let listed: Vec<_> = self
            .store
            .list(Some(&self.path("fn")))
            .try_collect()
            .await
            .map_err(|e| self.unavailable("listing versions", e))?;
        for object in &listed {
            let rest = object.location.as_ref();
            let Some(tail) = rest.strip_prefix(&format!("{}/fn/", self.root)) else {
                continue;
            };
            let Some((id, file)) = tail.split_once('/') else {
                continue;
            };
            if live.contains(id) {
                if file == "record.json" {
                    live_modules.insert(id.to_string());
                }
                continue;
            }
            if file != "claim" && object.last_modified.timestamp() <= cutoff {
                doomed.push(object.location.clone());
            }
        }
        // Modules still referenced by a live version's record stay.
        let mut keep_blobs = std::collections::HashSet::new();
        for id in &live_modules {
            if let Ok(bytes) = self
                .get(&format!("fn/{id}/record.json"), MAX_RECORD_BYTES)
                .await
            {
                if let Ok(record) = self.unseal::<VersionRecord>("record", &bytes, id) {
                    keep_blobs.extend(record.module_sha256);
                }
            }
        }
        let blobs: Vec<_> = self
            .store
            .list(Some(&self.path("blob/sha256")))
            .try_collect()
            .await
            .map_err(|e| self.unavailable("listing modules", e))?;
        for object in &blobs {
            let sha = object
                .location
                .filename()
                .and_then(|f| f.strip_suffix(".wasm"))
                .unwrap_or("");
            if !keep_blobs.contains(sha) && object.last_modified.timestamp() <= cutoff {
                doomed.push(object.location.clone());
            }
        }
        let live_secrets: std::collections::HashSet<&str> =
            index.secrets.values().map(|e| e.sha256.as_str()).collect();
        let secrets: Vec<_> = self
            .store
            .list(Some(&self.path("secret")))
            .try_collect()
            .await
            .map_err(|e| self.unavailable("listing secrets", e))?;
        for object in &secrets {
            let sha = object
                .location
                .filename()
                .and_then(|f| f.strip_suffix(".sealed"))
                .unwrap_or("");
            if !live_secrets.contains(sha) && object.last_modified.timestamp() <= cutoff {
                doomed.push(object.location.clone());
            }
        }
        for path in &doomed {
            self.store
                .delete(path)
                .await
                .map_err(|e| self.unavailable("pruning", e))?;
        }
        Ok(doomed.len())
    }
}

fn read(path: &Path) -> Result<Vec<u8>, ObjectsError> {
    std::fs::read(path)
        .map_err(|e| ObjectsError::Unavailable(format!("reading {}: {e}", path.display())))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), ObjectsError> {
    std::fs::write(path, bytes)
        .map_err(|e| ObjectsError::Unavailable(format!("writing {}: {e}", path.display())))
}

/// What the cluster key signs for a sealed object of `kind`.
fn sealed_message(kind: &str, payload: &str) -> Vec<u8> {
    format!("faas-{kind}-v1\n{payload}").into_bytes()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use faas_proto::Lang;
    use object_store::memory::InMemory;

    fn objects() -> Objects {
        let key = ClusterKey::from_bytes(b"the cluster key of these tests");
        Objects::new(Arc::new(InMemory::new()), "team", "memory".into(), key)
    }

    #[tokio::test]
    async fn the_index_is_replaced_only_from_the_tag_it_was_read_with() {
        let objects = objects();
        let (mut first, tag) = objects.read_index(None).await.unwrap().unwrap();
        assert_eq!(first, SharedIndex::default());
        first.add("a", "a_1", 10);
        first.generation += 1;
        assert!(objects.write_index(&first, &tag).await.unwrap());
        // A second writer that read before the first wrote loses.
        assert!(!objects.write_index(&first, &tag).await.unwrap());
        let (read, tag2) = objects.read_index(None).await.unwrap().unwrap();
        assert_eq!(read, first);
        // Unchanged since tag2: a 304.
        assert!(objects.read_index(Some(&tag2)).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn an_id_is_claimed_once() {
        let objects = objects();
        assert!(objects.claim("x_1", "r1").await.unwrap());
        assert!(!objects.claim("x_1", "r2").await.unwrap());
    }

    #[tokio::test]
    async fn a_version_round_trips_and_a_tampered_module_is_refused() {
        let objects = objects();
        let dir = tempfile::tempdir().unwrap();
        let code = "int main(){}";
        std::fs::write(dir.path().join("code.c"), code).unwrap();
        std::fs::write(dir.path().join("code.wasm"), b"\0asm\x01\0\0\0").unwrap();
        let meta = FunctionMeta {
            id: "f_1".into(),
            name: "f".into(),
            lang: Lang::C,
            created: 1,
            sha256: hex(&Sha256::digest(code.as_bytes())),
            wasm: true,
            settings: Default::default(),
            version: 0,
        };
        objects.upload_version(dir.path(), &meta).await.unwrap();
        let out = tempfile::tempdir().unwrap();
        let got = objects
            .download_version("f", "f_1", out.path())
            .await
            .unwrap();
        assert_eq!(got, meta);
        assert_eq!(
            std::fs::read_to_string(out.path().join("code.c")).unwrap(),
            code
        );
        assert_eq!(
            std::fs::read(out.path().join("code.wasm")).unwrap(),
            b"\0asm\x01\0\0\0"
        );

        // Someone with bucket access swaps the module: refused.
        let sha = hex(&Sha256::digest(b"\0asm\x01\0\0\0"));
        objects
            .put(
                &objects.path(&format!("blob/sha256/{sha}.wasm")),
                b"evil".to_vec(),
                PutMode::Overwrite,
            )
            .await
            .unwrap();
        let again = tempfile::tempdir().unwrap();
        let err = objects
            .download_version("f", "f_1", again.path())
            .await
            .unwrap_err();
        assert!(matches!(err, ObjectsError::Corrupt(_)), "{err}");
    }

    /// Uploads a C version `id` whose module is `module`.
    async fn upload(objects: &Objects, id: &str, module: &[u8]) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("code.c"), id).unwrap();
        std::fs::write(dir.path().join("code.wasm"), module).unwrap();
        let meta = FunctionMeta {
            id: id.into(),
            name: "p".into(),
            lang: Lang::C,
            created: 1,
            sha256: hex(&Sha256::digest(id.as_bytes())),
            wasm: true,
            settings: Default::default(),
            version: 0,
        };
        objects.claim(id, "r").await.unwrap();
        objects.upload_version(dir.path(), &meta).await.unwrap();
    }

    #[tokio::test]
    async fn pruning_removes_what_no_version_uses_and_keeps_claims() {
        use futures_util::TryStreamExt;
        let objects = objects();
        upload(&objects, "p_1", b"kept module").await;
        upload(&objects, "p_2", b"orphan module").await;
        let mut index = SharedIndex::default();
        index.add("p", "p_1", 1);
        // Younger than the minimum age: nothing goes.
        assert_eq!(
            objects
                .prune(&index, Duration::from_secs(3600))
                .await
                .unwrap(),
            0
        );
        // p_2's record, source and module go; its claim stays.
        assert_eq!(objects.prune(&index, Duration::ZERO).await.unwrap(), 3);
        let left: Vec<String> = objects
            .store
            .list(None)
            .map_ok(|o| o.location.to_string())
            .try_collect()
            .await
            .unwrap();
        assert!(
            left.contains(&"team/v1/fn/p_2/claim".to_string()),
            "{left:?}"
        );
        assert!(!left
            .iter()
            .any(|l| l.starts_with("team/v1/fn/p_2/") && !l.ends_with("claim")));
        assert_eq!(left.iter().filter(|l| l.contains("/blob/")).count(), 1);
        let out = tempfile::tempdir().unwrap();
        objects
            .download_version("p", "p_1", out.path())
            .await
            .unwrap();
        assert!(!objects.claim("p_2", "r").await.unwrap());
    }

    #[test]
    fn an_index_with_names_or_ids_the_api_would_refuse_is_refused() {
        let mut good = SharedIndex::default();
        good.add("f", "f_1796000000", 1);
        good.add("f", "f_1796000000_2", 1);
        good.check().unwrap();
        for (name, id) in [
            ("f", "../../etc"),
            ("f", "f_1/../../x"),
            ("f", "g_1796000000"),
            ("f", "f_"),
            ("f", "f_1_2_3"),
            ("f", "f_12a"),
            ("../f", "../f_1"),
            ("", "_1"),
        ] {
            let mut bad = SharedIndex::default();
            bad.add(name, id, 1);
            assert!(bad.check().is_err(), "{name:?} {id:?}");
        }
        let mut dangling = good.clone();
        dangling.functions.get_mut("f").unwrap().latest = "f_9".into();
        assert!(dangling.check().is_err());
    }

    #[tokio::test]
    async fn the_in_memory_store_passes_the_conditional_write_check() {
        objects().check_conditional_writes("r1").await.unwrap();
    }

    #[test]
    fn trim_and_remove_keep_latest_right() {
        let mut index = SharedIndex::default();
        for i in 0..4 {
            index.add("f", &format!("f_{i}"), 1);
        }
        assert_eq!(
            index.trim("f", 2),
            vec!["f_0".to_string(), "f_1".to_string()]
        );
        assert_eq!(index.functions["f"].latest, "f_3");
        assert_eq!(index.remove("f", Some("f_3")), vec!["f_3".to_string()]);
        assert_eq!(index.functions["f"].latest, "f_2");
        assert_eq!(index.name_of("f_2"), Some("f"));
        index.remove("f", None);
        assert!(index.functions.is_empty());
    }
}
