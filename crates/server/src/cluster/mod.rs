//! Replicas sharing one S3-compatible function store (`--store s3://`).
//!
//! Every replica keeps the seed's topology unchanged (LB, gateway, workers)
//! and its local function directory, which becomes a cache of the shared
//! store. What is shared ([`objects`]): immutable versions (record, source,
//! module by sha256) and one mutable index, changed only by
//! compare-and-swap. How replicas agree:
//! - a deploy claims its version id (create-if-absent), uploads the
//!   version, then adds it to the index; it answers 201 only after the
//!   index accepted it, so racing deploys of one new name give one 201
//!   and 409s, and racing updates all become versions;
//! - every replica reads the index every `--poll-ms` (a 304 when nothing
//!   changed) and on every signed peer notice ([`notice`]), downloads the
//!   versions it lacks (checking their sha256), compiles their artifacts
//!   itself, and drops the versions the index no longer holds;
//! - a call for a name or id this replica does not know reads the index
//!   before answering 404.
//!
//! A replica applies an index only if it is not older than the last one
//! it applied or wrote ([`Applied::generation`]), under one lock shared
//! with its own deploys and deletes: a slow poll never undoes a deploy.

pub mod notice;
pub mod objects;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use faas_proto::FunctionMeta;
use object_store::aws::AmazonS3Builder;
use object_store::{ClientOptions, RetryConfig};
use tokio::sync::Notify;

use crate::secrets::SecretStore;
use crate::store::{FunctionStore, Removed, Reservation, StoreError};
use notice::{ClusterKey, Notice, Peers};
use objects::{Objects, ObjectsError, SharedIndex, Tag};

const PART: &str = "CLUSTER";
/// Compare-and-swap attempts before a deploy gives up (503).
const MAX_CAS_ATTEMPTS: u32 = 50;
/// How long a version that failed its checks is left alone.
const RETRY_REFUSED: Duration = Duration::from_secs(300);
/// Claim attempts before a deploy gives up (ids taken by other replicas).
const MAX_CLAIM_ATTEMPTS: u32 = 32;

/// Why a cluster operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// What the local store would say (name taken, not found, full...).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The shared store is unreachable or kept refusing: retry later.
    #[error("{0}")]
    Unavailable(String),
    /// An object in the shared store is damaged or tampered with.
    #[error("{0}")]
    Corrupt(String),
}

impl From<ObjectsError> for ClusterError {
    fn from(err: ObjectsError) -> Self {
        match err {
            ObjectsError::Unavailable(m) => Self::Unavailable(m),
            ObjectsError::Corrupt(m) => Self::Corrupt(m),
        }
    }
}

/// S3 credentials, read from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`
/// and `AWS_SESSION_TOKEN` at start and removed from the environment.
#[derive(Clone)]
pub struct Credentials {
    pub key_id: String,
    pub secret: String,
    pub token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, secret hidden)", self.key_id)
    }
}

impl Credentials {
    /// Takes the credentials out of the environment (call before any
    /// thread starts: changing the environment is not thread-safe).
    pub fn take_from_env() -> Option<Self> {
        let take = |name: &str| {
            let value = std::env::var(name).ok().filter(|v| !v.is_empty());
            std::env::remove_var(name);
            value
        };
        let (key_id, secret, token) = (
            take("AWS_ACCESS_KEY_ID"),
            take("AWS_SECRET_ACCESS_KEY"),
            take("AWS_SESSION_TOKEN"),
        );
        Some(Self {
            key_id: key_id?,
            secret: secret?,
            token,
        })
    }
}

/// How a replica reaches the shared store and its peers.
pub struct ClusterConfig {
    /// `s3://BUCKET[/PREFIX]`.
    pub url: String,
    pub endpoint: Option<String>,
    pub credentials: Option<Credentials>,
    pub replica: String,
    pub key: Option<ClusterKey>,
    pub peers: Peers,
    pub poll: Duration,
    /// The largest source or module a replica reads (`--max-module-mb`).
    pub max_blob_bytes: u64,
}

/// The last index this replica applied (or wrote).
#[derive(Default)]
struct Applied {
    /// Its ETag, for `If-None-Match` on the next poll.
    tag: Option<Tag>,
    generation: u64,
}

/// What one sync changed here.
#[derive(Default)]
pub struct Synced {
    /// Served from now on. A compiled one has no artifact yet: its first
    /// call compiles `code.wasm` in the worker until the artifact is built
    /// (off the sync, so one slow compile delays no other version).
    pub added: Vec<Arc<FunctionMeta>>,
    pub removed: Vec<Removed>,
}

/// This replica's view of the cluster.
pub struct Cluster {
    pub objects: Objects,
    pub replica: String,
    key: Option<ClusterKey>,
    peers: Peers,
    pub poll: Duration,
    http: reqwest::Client,
    /// Wakes the poll loop early (a peer's notice, our own change).
    pub wake: Notify,
    /// Held while an index is applied and while this replica changes it.
    applied: tokio::sync::Mutex<Applied>,
    /// One sync at a time; `last_sync` lets callers that queued behind a
    /// sync skip their own.
    syncing: tokio::sync::Mutex<()>,
    last_sync: Mutex<Option<Instant>>,
    loaded: AtomicBool,
    reachable: AtomicBool,
    /// Versions whose objects failed their checks: not retried every poll.
    refused: Mutex<std::collections::HashMap<String, Instant>>,
    /// The last sync's error, logged once rather than every poll (a
    /// damaged index would otherwise fill the log twice a second).
    last_error: Mutex<Option<String>>,
    /// The notices accepted within [`notice::MAX_AGE_MS`] (sent time and
    /// body): a replayed one is refused, so a captured notice cannot make
    /// this replica read the store over and over. Only signed notices
    /// get in, a few per change: the list stays short.
    seen_notices: Mutex<Vec<(u64, String)>>,
}

impl Cluster {
    /// Connects to the store named by `config.url` (credentials and region
    /// from `AWS_*`), and checks that it honours conditional writes.
    pub async fn connect(config: ClusterConfig) -> anyhow::Result<Self> {
        let (bucket, prefix) = parse_s3_url(&config.url)?;
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_retry(quick_retries())
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(2))
                    .with_timeout(Duration::from_secs(30)),
            );
        if std::env::var_os("AWS_REGION").is_none() {
            builder = builder.with_region("us-east-1");
        }
        if config.credentials.is_none() && config.endpoint.is_some() {
            // Only AWS itself has other ways (instance roles); any other
            // S3 server needs keys, and without them the client would
            // try AWS's metadata address and fail obscurely.
            anyhow::bail!(
                "--store {} with --s3-endpoint needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment",
                config.url
            );
        }
        if let Some(creds) = &config.credentials {
            builder = builder
                .with_access_key_id(&creds.key_id)
                .with_secret_access_key(&creds.secret);
            if let Some(token) = &creds.token {
                builder = builder.with_token(token);
            }
        }
        let describe = match &config.endpoint {
            Some(endpoint) => {
                builder = builder
                    .with_endpoint(endpoint)
                    .with_allow_http(endpoint.starts_with("http://"))
                    .with_virtual_hosted_style_request(false);
                format!("{} at {endpoint}", config.url)
            }
            None => config.url.clone(),
        };
        let store = builder
            .build()
            .map_err(|e| anyhow::anyhow!("the function store {describe}: {e}"))?;
        // The index and the records are sealed with the cluster key: a
        // replica without it could not tell a deploy from a forgery.
        let Some(key) = config.key.clone() else {
            anyhow::bail!(
                "--store {} needs --cluster-key-file (the same file on every replica): the shared index and every version record are signed with it, so that someone who can write to the bucket cannot make replicas run code",
                config.url
            );
        };
        let objects = Objects::new(Arc::new(store), prefix, describe, key)
            .with_max_blob_bytes(config.max_blob_bytes);
        Self::with_objects(objects, config).await
    }

    /// A cluster over any object store (tests use the in-memory one).
    pub async fn with_objects(objects: Objects, config: ClusterConfig) -> anyhow::Result<Self> {
        objects
            .check_conditional_writes(&config.replica)
            .await
            .map_err(anyhow::Error::msg)?;
        if !config.peers.is_empty() && config.key.is_none() {
            anyhow::bail!("--peers and --peers-dns need --cluster-key-file: notices are signed");
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(1))
            .build()
            .map_err(|e| anyhow::anyhow!("cannot build the HTTP client for peers: {e}"))?;
        log::info!(target: PART, "replica {}: function store {}", config.replica, objects.describe);
        Ok(Self {
            objects,
            replica: config.replica,
            key: config.key,
            peers: config.peers,
            poll: config.poll,
            http,
            wake: Notify::new(),
            applied: Default::default(),
            syncing: Default::default(),
            last_sync: Mutex::new(None),
            loaded: AtomicBool::new(false),
            reachable: AtomicBool::new(true),
            refused: Default::default(),
            last_error: Default::default(),
            seen_notices: Default::default(),
        })
    }

    /// Whether the first sync is done (`/health/ready`).
    pub fn loaded(&self) -> bool {
        self.loaded.load(Ordering::Relaxed)
    }

    /// Checks a peer's notice and, when it is genuine, syncs soon.
    pub fn accept_notice(&self, body: &str, signature: Option<&str>) -> Result<(), String> {
        let Some(key) = &self.key else {
            return Err("this replica has no --cluster-key-file: it accepts no notices".into());
        };
        let notice = key.open(body, signature)?;
        let mut seen = self.seen_notices.lock().unwrap();
        let now = notice::now_ms();
        // Older ones fail the age check anyway.
        seen.retain(|(sent, _)| now.abs_diff(*sent) <= notice::MAX_AGE_MS);
        if seen.iter().any(|(_, b)| b == body) {
            return Err("this cluster notice was received before (a replay)".into());
        }
        seen.push((notice.sent_ms, body.to_string()));
        drop(seen);
        log::debug!(target: PART, "notice from {} (generation {})", notice.replica, notice.generation);
        self.wake.notify_one();
        Ok(())
    }

    /// Claims the reservation's id in the shared store, switching to
    /// another id while other replicas hold them.
    pub async fn claim(&self, reservation: &mut Reservation<'_>) -> Result<(), ClusterError> {
        for _ in 0..MAX_CLAIM_ATTEMPTS {
            if self.objects.claim(&reservation.id, &self.replica).await? {
                return Ok(());
            }
            reservation.switch_id();
        }
        Err(ClusterError::Unavailable(
            "could not claim a version id: too many deploys of this name at once; retry".into(),
        ))
    }

    /// Publishes a built version: uploads it, adds it to the index (a
    /// deploy only if the name is new, an update only if it exists;
    /// versions beyond `keep` are dropped), then commits it here. Returns
    /// it and the versions trimmed here.
    pub async fn publish(
        &self,
        store: &FunctionStore,
        reservation: Reservation<'_>,
        meta: FunctionMeta,
        update: bool,
        keep: usize,
    ) -> Result<(Arc<FunctionMeta>, Vec<Removed>), ClusterError> {
        let bytes = reservation.staged_bytes();
        store.check_room(bytes)?;
        self.objects
            .upload_version(&reservation.staging, &meta)
            .await?;
        let mut applied = self.applied.lock().await;
        let (name, id) = (meta.name.clone(), meta.id.clone());
        let (version, trimmed) = self
            .change_index(&mut applied, |index| {
                match (update, index.functions.contains_key(&name)) {
                    (true, false) => return Err(StoreError::NotFound(name.clone())),
                    (false, true) => return Err(StoreError::NameTaken(name.clone())),
                    _ => {}
                }
                let version = index.add(&name, &id, bytes);
                let trimmed = if update {
                    index.trim(&name, keep)
                } else {
                    Vec::new()
                };
                Ok((version, trimmed))
            })
            .await?;
        let committed = reservation.commit_as(meta, version)?;
        let removed = store.remove_ids(&trimmed);
        drop(applied);
        Ok((committed, removed))
    }

    /// Removes a function (by name) or one version (by id; the latest
    /// only when it is the only one) from the index, then here. Returns
    /// what was removed here.
    pub async fn delete(
        &self,
        store: &FunctionStore,
        name_or_id: &str,
    ) -> Result<Vec<Removed>, ClusterError> {
        let mut applied = self.applied.lock().await;
        let ids = self
            .change_index(&mut applied, |index| {
                if index.functions.contains_key(name_or_id) {
                    return Ok(index.remove(name_or_id, None));
                }
                let Some(name) = index.name_of(name_or_id).map(str::to_string) else {
                    return Err(StoreError::NotFound(name_or_id.to_string()));
                };
                let entry = &index.functions[&name];
                if entry.latest == name_or_id && entry.versions.len() > 1 {
                    return Err(StoreError::IsLatest(name_or_id.to_string()));
                }
                Ok(index.remove(&name, Some(name_or_id)))
            })
            .await?;
        let removed = store.remove_ids(&ids);
        drop(applied);
        Ok(removed)
    }

    /// Stores a sealed secret for every replica: the object, then the
    /// index entry naming it. True when the name is new.
    pub async fn put_secret(
        &self,
        name: &str,
        sealed: &[u8],
        size: u64,
        now: u64,
    ) -> Result<bool, ClusterError> {
        let sha = self.objects.upload_secret(sealed).await?;
        let mut applied = self.applied.lock().await;
        self.change_index(&mut applied, |index| {
            let previous = index.secrets.get(name);
            let entry = objects::SecretEntry {
                sha256: sha.clone(),
                size,
                created: previous.map_or(now, |p| p.created),
                updated: now,
            };
            let created = previous.is_none();
            index.secrets.insert(name.to_string(), entry);
            Ok(created)
        })
        .await
    }

    /// Removes a secret from the index (every replica drops it at its
    /// next sync); false when the index has none of that name.
    pub async fn delete_secret(&self, name: &str) -> Result<bool, ClusterError> {
        let mut applied = self.applied.lock().await;
        self.change_index(&mut applied, |index| {
            Ok(index.secrets.remove(name).is_some())
        })
        .await
    }

    /// Refuses a secrets key other than the one the replicas share (the
    /// first replica's check, kept in the store).
    pub async fn check_secrets_key(&self, secrets: &SecretStore) -> anyhow::Result<()> {
        let stored = self
            .objects
            .secrets_keycheck(secrets.keycheck())
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "checking the secrets key against {}: {e}",
                    self.objects.describe
                )
            })?;
        if !secrets.opens_keycheck(&stored) {
            anyhow::bail!(
                "the secrets key does not open the secrets of {} (another replica stored them with a different key); give every replica the same --secrets-key-file, or none (then the key is derived from the cluster key)",
                self.objects.describe
            );
        }
        Ok(())
    }

    /// Reads the index, applies `change` and writes it back if nobody
    /// changed it meanwhile, else starts over. Then tells the peers.
    async fn change_index<T>(
        &self,
        applied: &mut Applied,
        mut change: impl FnMut(&mut SharedIndex) -> Result<T, StoreError>,
    ) -> Result<T, ClusterError> {
        for attempt in 0..MAX_CAS_ATTEMPTS {
            let (mut index, tag) = self
                .objects
                .read_index(None)
                .await
                .inspect_err(|_| self.set_reachable(false))?
                .expect("an unconditional read is never 304");
            let out = change(&mut index)?;
            index.generation += 1;
            if self.objects.write_index(&index, &tag).await? {
                self.set_reachable(true);
                // What else this index holds is applied by the next sync
                // (the tag is left as it was, so that sync reads it).
                applied.generation = applied.generation.max(index.generation);
                self.wake.notify_one();
                self.tell_peers(index.generation);
                return Ok(out);
            }
            // Another replica won the race: back off a little, at random,
            // so racers do not collide again in lock step.
            let jitter = u64::from(attempt.min(10)) * 5 + (notice::now_ms() % 7);
            tokio::time::sleep(Duration::from_millis(jitter)).await;
        }
        Err(ClusterError::Unavailable(
            "the shared index kept changing under this update; retry".into(),
        ))
    }

    /// Sends a signed notice to every peer, in the background.
    fn tell_peers(&self, generation: u64) {
        let (Some(key), false) = (self.key.clone(), self.peers.is_empty()) else {
            return;
        };
        let notice = Notice {
            replica: self.replica.clone(),
            generation,
            sent_ms: notice::now_ms(),
        };
        let (client, peers) = (self.http.clone(), self.peers.clone());
        tokio::spawn(async move { notice::send_all(&client, &peers, &key, &notice).await });
    }

    /// Makes this replica's store match the shared index: downloads the
    /// versions it lacks and drops those the index no longer holds. A
    /// caller that waited while another sync ran, started after `asked`,
    /// returns at once: that sync read an index at least as new. The
    /// versions added have no compiled artifact yet (see
    /// [`Synced::added`]).
    pub async fn sync(
        &self,
        store: &FunctionStore,
        secrets: &SecretStore,
        asked: Instant,
    ) -> Result<Synced, ClusterError> {
        let _one_at_a_time = self.syncing.lock().await;
        if self.last_sync.lock().unwrap().is_some_and(|at| at > asked) {
            return Ok(Synced::default());
        }
        let started = Instant::now();
        let result = self.sync_once(store, secrets).await;
        self.set_reachable(!matches!(result, Err(ClusterError::Unavailable(_))));
        match &result {
            Err(ClusterError::Corrupt(why)) => {
                let mut last = self.last_error.lock().unwrap();
                if last.as_deref() != Some(why.as_str()) {
                    log::error!(target: PART, "sync refused the shared index, kept the versions here: {why}");
                    *last = Some(why.clone());
                }
            }
            Ok(_) => {
                if self.last_error.lock().unwrap().take().is_some() {
                    log::info!(target: PART, "the shared index is readable again");
                }
            }
            Err(_) => {}
        }
        if result.is_ok() {
            *self.last_sync.lock().unwrap() = Some(started);
            self.loaded.store(true, Ordering::Relaxed);
        }
        result
    }

    async fn sync_once(
        &self,
        store: &FunctionStore,
        secrets: &SecretStore,
    ) -> Result<Synced, ClusterError> {
        let known = self.applied.lock().await.tag.clone();
        let Some((index, tag)) = self.objects.read_index(known.as_ref()).await? else {
            return Ok(Synced::default());
        };
        let mut fetched = Vec::new();
        for (name, id, _) in index.ids() {
            if store.knows(id) || self.recently_refused(id) {
                continue;
            }
            // `id` is a plain file name: read_index checked every id.
            let dir = store.download_dir(id)?;
            match self.objects.download_version(name, id, &dir).await {
                Ok(meta) => fetched.push((dir, meta)),
                Err(err) => {
                    let _ = std::fs::remove_dir_all(&dir);
                    if let ObjectsError::Corrupt(why) = &err {
                        log::error!(target: PART, "version {id} refused, never run: {why}");
                        self.refused
                            .lock()
                            .unwrap()
                            .insert(id.to_string(), Instant::now());
                        continue;
                    }
                    return Err(err.into());
                }
            }
        }
        // Secrets whose sealed object changed (values stay sealed: this
        // replica opens them with the secrets key when installing).
        let mut sealed_secrets = Vec::new();
        for (name, entry) in &index.secrets {
            if secrets.digest(name).as_deref() == Some(entry.sha256.as_str())
                || self.recently_refused(&format!("secret/{}", entry.sha256))
            {
                continue;
            }
            match self.objects.download_secret(&entry.sha256).await {
                Ok(bytes) => sealed_secrets.push((name.clone(), bytes, entry.sha256.clone())),
                Err(ObjectsError::Corrupt(why)) => {
                    log::error!(target: PART, "secret '{name}' refused, the value here is kept: {why}");
                    self.refused
                        .lock()
                        .unwrap()
                        .insert(format!("secret/{}", entry.sha256), Instant::now());
                }
                Err(err) => return Err(err.into()),
            }
        }
        let mut applied = self.applied.lock().await;
        if index.generation < applied.generation {
            // Older than what this replica wrote meanwhile: the next poll
            // reads the newer one.
            for (dir, _) in fetched {
                let _ = std::fs::remove_dir_all(dir);
            }
            return Ok(Synced::default());
        }
        let versions: std::collections::HashMap<&str, u64> =
            index.ids().map(|(_, id, v)| (id, v.version)).collect();
        let mut synced = Synced::default();
        for (dir, mut meta) in fetched {
            meta.version = versions[meta.id.as_str()];
            match store.adopt(&dir, meta) {
                Ok(meta) => synced.added.push(meta),
                Err(err) => log::warn!(target: PART, "{err}"),
            }
        }
        let gone: Vec<String> = store
            .ids()
            .into_iter()
            .filter(|id| !versions.contains_key(id.as_str()))
            .collect();
        synced.removed = store.remove_ids(&gone);
        for (name, bytes, sha) in sealed_secrets {
            if let Err(why) = secrets.install(&name, &bytes) {
                log::error!(target: PART, "{why} (sealed with another secrets key?)");
                self.refused
                    .lock()
                    .unwrap()
                    .insert(format!("secret/{sha}"), Instant::now());
            }
        }
        for name in secrets.names() {
            if !index.secrets.contains_key(&name) {
                let _ = secrets.remove(&name);
            }
        }
        applied.generation = index.generation;
        applied.tag = Some(tag);
        Ok(synced)
    }

    /// Whether version `id` failed its checks in the last
    /// [`RETRY_REFUSED`]: tried again after that (a store that was being
    /// repaired), not on every poll.
    fn recently_refused(&self, id: &str) -> bool {
        let mut refused = self.refused.lock().unwrap();
        refused.retain(|_, at| at.elapsed() < RETRY_REFUSED);
        refused.contains_key(id)
    }

    /// Records whether the store answered, logging the changes.
    fn set_reachable(&self, now: bool) {
        let before = self.reachable.swap(now, Ordering::Relaxed);
        if before && !now {
            log::error!(target: PART, "the function store {} is unreachable: cached functions keep serving; deploys, updates and deletes answer 503 until it is back", self.objects.describe);
        } else if !before && now {
            log::info!(target: PART, "the function store {} is reachable again", self.objects.describe);
        }
    }

    /// Removes objects no version uses any more (older than an hour).
    pub async fn prune(&self) {
        let index = match self.objects.read_index(None).await {
            Ok(Some((index, _))) => index,
            _ => return,
        };
        match self.objects.prune(&index, Duration::from_secs(3600)).await {
            Ok(0) => {}
            Ok(n) => log::info!(target: PART, "pruned {n} objects no version uses"),
            Err(err) => log::warn!(target: PART, "pruning: {err}"),
        }
    }
}

/// Few, quick retries: a deploy against a store that is down should
/// answer 503 in seconds, not after object_store's default 3 minutes.
// RetryConfig's backoff is set field by field.
#[allow(clippy::field_reassign_with_default)]
fn quick_retries() -> RetryConfig {
    RetryConfig {
        max_retries: 2,
        retry_timeout: Duration::from_secs(5),
        backoff: object_store::BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            ..Default::default()
        },
    }
}

/// `s3://BUCKET[/PREFIX]` → (bucket, prefix).
pub fn parse_s3_url(url: &str) -> anyhow::Result<(&str, &str)> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| anyhow::anyhow!("--store '{url}': expected s3://BUCKET[/PREFIX]"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let valid_bucket = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if !valid_bucket {
        anyhow::bail!("--store '{url}': '{bucket}' is not a bucket name (3 to 63 lowercase letters, digits, '-' and '.')");
    }
    Ok((bucket, prefix.trim_matches('/')))
}

#[cfg(test)]
mod tests;
