//! What the Server does for each gateway operation: deploy ([`deploy`]:
//! validate, store, compile), invoke ([`invoke`]: ask the LB for a worker,
//! run the job there, report the end to the LB), source, list, delete and
//! stats; async calls and dead letters in [`background`], their
//! `X-Callback-Url` deliveries in [`callback`], cron schedules in
//! [`schedule`]; the dashboard's data is in [`crate::dashboard`] and the recent
//! calls in [`crate::invocation_log`]. Every operation returns a domain
//! result or a [`ServiceError`]; turning those into wire replies is
//! [`sockets`](crate::sockets)' job and into HTTP statuses the gateway's.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::Duration;

use faas_proto::client::Client;
use faas_proto::{
    ErrorKind, FunctionMeta, InvocationRecord, Lang, LbReply, LbRequest, PlatformStats,
    ServiceError,
};
use tokio::sync::Semaphore;

use crate::invocation_log::InvocationLog;
use crate::metrics::Metrics;
use crate::store::{FunctionStore, Removed, StoreError};
use crate::toolchain::{run_with_timeout, Toolchains};
use crate::workers::WorkerPool;

mod background;
mod callback;
mod deploy;
mod invoke;
mod replica;
mod schedule;
mod secrets;

pub use background::Background;
pub use callback::Callbacks;
pub use invoke::{Invocation, InvokeRequest};

const PART: &str = "SERVER";

/// Limits and defaults that apply to every function.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Deadline of an invocation when the function sets none.
    pub default_timeout_ms: u64,
    /// The largest deadline a function may ask for.
    pub max_timeout_ms: u64,
    /// Linear-memory cap of a function when it sets none.
    pub default_memory_mb: u64,
    /// The largest memory cap a function may ask for.
    pub max_memory_mb: u64,
    /// `/tmp` cap of a function when it sets none.
    pub default_tmp_mb: u64,
    /// The largest `/tmp` cap a function may ask for.
    pub max_tmp_mb: u64,
    pub max_output_bytes: u64,
    /// How long one compile may run.
    pub compile_timeout: Duration,
    /// Versions kept per function (older ones are removed).
    pub keep_versions: usize,
    /// The largest compiled module (`code.wasm`) a deploy may produce.
    pub max_module_bytes: u64,
    /// Most bytes a project archive may unpack to.
    pub max_unpacked_bytes: u64,
    /// The most a function's `max_concurrency` may be: the worker count.
    pub workers: u64,
}

/// A deleted version this large on disk (its module's code and data, and
/// the artifact holding them again) gets every worker that ran it
/// recycled: a worker never gives a loaded module's memory back, and
/// below this a few leftovers are noise next to a worker's baseline.
const HUGE_VERSION_BYTES: u64 = 16 * 1024 * 1024;

/// The Server's state, shared by every request.
pub struct Service {
    pub store: FunctionStore,
    pub toolchains: Toolchains,
    pub workers: Arc<WorkerPool>,
    /// The persistent connection to the load balancer.
    pub lb: Arc<Client<LbRequest, LbReply>>,
    pub limits: Limits,
    /// Bounds concurrent compiles so a burst of deploys cannot starve invokes.
    pub compile_slots: Semaphore,
    pub next_job: AtomicU64,
    /// The worker binary, also used to build artifacts.
    pub worker_program: PathBuf,
    /// Each function's recent invocations.
    pub invocations: InvocationLog,
    /// Prometheus metrics and the dashboard's series.
    pub metrics: Metrics,
    /// The shared store and peers, in S3 mode (`--store s3://`).
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    /// Secret values, sealed at rest.
    pub secrets: crate::secrets::SecretStore,
    /// `--replica-name` (or the hostname), in `/stats` and `/metrics`.
    pub replica: Option<String>,
    /// Set on SIGTERM: `/health/ready` fails while calls still run.
    pub draining: AtomicBool,
    /// Async calls: their durable queue and dispatcher bounds.
    pub background: Background,
}

impl Service {
    /// The stored source of a function, by name or id: its language, the
    /// bytes as deployed and, for a module or an archive, their
    /// Content-Type (text otherwise).
    pub fn source(&self, name: &str) -> Result<(Lang, Vec<u8>, Option<String>), ServiceError> {
        let meta = self.resolve(name)?;
        let code = self.store.source(&meta).map_err(|err| {
            log::error!(target: PART, "{err}");
            ServiceError::internal("could not read the stored source")
        })?;
        let content_type = match (meta.settings.archive, meta.lang) {
            (Some(format), _) => Some(format.content_type().to_string()),
            (None, Lang::Wasm) => Some("application/wasm".to_string()),
            (None, _) => None,
        };
        Ok((meta.lang, code, content_type))
    }

    /// A function's files (by name or id): a project's, as unpacked, or
    /// the one file of a single-file function.
    pub fn files(&self, name: &str) -> Result<Vec<faas_proto::ProjectFile>, ServiceError> {
        let meta = self.resolve(name)?;
        let dir = self.store.version_dir(&meta);
        let listed = match meta.settings.archive {
            Some(_) => crate::archive::list(&dir.join(crate::project::TREE_DIR)),
            None => {
                let file = meta.lang.source_file();
                std::fs::metadata(dir.join(&file)).map(|m| {
                    vec![faas_proto::ProjectFile {
                        path: file,
                        size: m.len(),
                    }]
                })
            }
        };
        listed.map_err(|err| {
            log::error!(target: PART, "listing {}: {err}", dir.display());
            ServiceError::internal("could not list the function's files")
        })
    }

    fn resolve(&self, name: &str) -> Result<Arc<FunctionMeta>, ServiceError> {
        self.store
            .resolve(name)
            .ok_or_else(|| ServiceError::not_found(format!("function '{name}' not found")))
    }

    /// Removes a function (every version) or, given a version id, that
    /// version; workers drop what they cached of it. Returns the ids. In
    /// S3 mode, from the shared index first (every replica follows).
    pub async fn delete(&self, name_or_id: &str) -> Result<Vec<String>, ServiceError> {
        if let Some(cluster) = &self.cluster {
            let removed = cluster
                .delete(&self.store, name_or_id)
                .await
                .map_err(replica::cluster_error)?;
            self.forget_removed(&removed);
            let ids: Vec<String> = removed.iter().map(|r| r.meta.id.clone()).collect();
            log::info!(target: PART, "deleted {} everywhere", ids.join(", "));
            return Ok(ids);
        }
        let removed = if !self.store.is_deployed(name_or_id) {
            vec![self.store.remove_version(name_or_id).map_err(store_error)?]
        } else {
            self.invocations.forget_function(name_or_id);
            self.metrics.forget_function(name_or_id);
            self.store
                .remove_function(name_or_id)
                .map_err(store_error)?
        };
        self.forget(&removed);
        let removed = removed
            .iter()
            .map(|r| r.meta.id.clone())
            .collect::<Vec<_>>();
        log::info!(target: PART, "deleted {}", removed.join(", "));
        Ok(removed)
    }

    /// A function's versions, newest first.
    pub fn versions(&self, name: &str) -> Result<Vec<FunctionMeta>, ServiceError> {
        let versions = self.store.versions(name);
        if versions.is_empty() {
            return Err(ServiceError::not_found(format!(
                "function '{name}' not found"
            )));
        }
        Ok(versions.iter().map(|m| (**m).clone()).collect())
    }

    /// A function's last `limit` invocations, newest first.
    pub fn invocations(
        &self,
        name: &str,
        limit: usize,
    ) -> Result<Vec<InvocationRecord>, ServiceError> {
        if !self.store.is_deployed(name) {
            return Err(ServiceError::not_found(format!(
                "function '{name}' not found"
            )));
        }
        Ok(self.invocations.recent(name, limit))
    }

    /// Tells every worker to drop what it cached of removed versions, and
    /// recycles the workers that ran a huge one: dropping a module from the
    /// cache does not give its memory back to the system.
    fn forget(&self, removed: &[Removed]) {
        if removed.is_empty() {
            return;
        }
        let ids: Vec<String> = removed.iter().map(|r| r.meta.id.clone()).collect();
        self.workers.forget(&ids);
        let huge: Vec<String> = removed
            .iter()
            .filter(|r| r.bytes >= HUGE_VERSION_BYTES)
            .map(|r| r.meta.id.clone())
            .collect();
        if !huge.is_empty() {
            let recycled = self.workers.recycle_runners_of(&huge);
            if !recycled.is_empty() {
                log::info!(
                    target: PART,
                    "recycling workers {recycled:?}: they ran {}, deleted with {} MiB",
                    huge.join(", "),
                    removed.iter().map(|r| r.bytes).sum::<u64>() / (1024 * 1024)
                );
            }
        }
    }

    /// Every deployed function, oldest first.
    pub fn list(&self) -> Vec<FunctionMeta> {
        self.store.list().iter().map(|m| (**m).clone()).collect()
    }

    /// The LB's counters with the workers' processes.
    pub async fn stats(&self) -> Result<PlatformStats, ServiceError> {
        let lb = self.lb.call(|req| LbRequest::Stats { req }).await;
        let Ok(LbReply::Stats {
            strategy,
            queue_len,
            workers,
            ..
        }) = lb
        else {
            return Err(ServiceError::unavailable("load balancer unavailable"));
        };
        Ok(PlatformStats {
            strategy,
            queue_len,
            workers,
            worker_pids: self.workers.pids(),
            worker_restarts: self.workers.restarts(),
            worker_recycles: self.workers.recycles(),
            functions: self.store.len(),
            replica: self.replica.clone(),
        })
    }

    /// Rebuilds artifacts that are missing or were built by another Wasmer
    /// (after an upgrade), with `worker refresh-artifacts`. Runs once at
    /// start, off the request path; until it reaches a function, workers
    /// compile that function's `code.wasm` themselves.
    pub fn refresh_artifacts(&self) {
        let mut cmd = std::process::Command::new(&self.worker_program);
        crate::build_sandbox::clear_env(&mut cmd);
        cmd.arg("--functions-dir")
            .arg(self.store.dir())
            .arg("refresh-artifacts");
        match run_with_timeout(cmd, Duration::from_secs(3600)) {
            Ok(Some((status, out))) if status.success() => {
                let summary = out
                    .lines()
                    .rfind(|l| l.starts_with("rebuilt "))
                    .unwrap_or("");
                let rebuilt = summary.split_whitespace().nth(1).unwrap_or("0");
                if rebuilt != "0" {
                    log::info!(target: PART, "rebuilt {rebuilt} stale artifacts");
                }
            }
            Ok(Some((_, out))) => {
                log::error!(target: PART, "refreshing artifacts failed: {out}")
            }
            Ok(None) => log::error!(target: PART, "refreshing artifacts timed out"),
            Err(err) => log::error!(target: PART, "cannot refresh artifacts: {err}"),
        }
    }
}

/// Function names: letters, digits, `_` and `-`, 1 to 64 of them.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the function name is empty".into());
    }
    if name.len() > 64 {
        return Err(format!(
            "the function name is {} characters long; 64 at most",
            name.len()
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(format!(
            "invalid function name '{name}': use letters, digits, '_' and '-'"
        ));
    }
    Ok(())
}

fn store_error(err: StoreError) -> ServiceError {
    match err {
        StoreError::NameTaken(_) => ServiceError::new(ErrorKind::NameTaken, err.to_string()),
        StoreError::NotFound(_) => ServiceError::not_found(err.to_string()),
        StoreError::IsLatest(_) => ServiceError::new(ErrorKind::NameTaken, err.to_string()),
        StoreError::Full(_) => ServiceError::new(ErrorKind::InsufficientStorage, err.to_string()),
        StoreError::Io { .. } => {
            log::error!(target: PART, "{err}");
            ServiceError::internal("the function store could not be written")
        }
    }
}

/// Now, in milliseconds since the Unix epoch.
fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        assert!(validate_name("hello").is_ok());
        assert!(validate_name("a-b_C9").is_ok());
        assert!(validate_name(&"x".repeat(64)).is_ok());
        assert!(validate_name(&"x".repeat(65)).is_err());
        assert!(validate_name("").is_err());
        assert!(validate_name("../etc").is_err());
        assert!(validate_name("a b").is_err());
        assert!(validate_name("é").is_err());
    }

    proptest::proptest! {
        #[test]
        fn names_are_accepted_exactly_when_they_follow_the_rule(name in "\\PC{0,70}") {
            let valid = (1..=64).contains(&name.len())
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            proptest::prop_assert_eq!(validate_name(&name).is_ok(), valid);
        }
    }
}
