//! The Service's side of running as one replica of several
//! ([`crate::cluster`]): keeping the local store in step with the shared
//! index, finding a function another replica just deployed, readiness and
//! draining, and peer notices.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use faas_proto::{ErrorKind, FunctionMeta, ServiceError};

use crate::cluster::ClusterError;

use super::*;

impl Service {
    /// A function by name or id; on a miss in S3 mode the shared index is
    /// read first (a version deployed on another replica a moment ago is
    /// served at once, not after the next poll).
    pub async fn resolve_shared(self: &Arc<Self>, name_or_id: &str) -> Option<Arc<FunctionMeta>> {
        if let Some(meta) = self.store.resolve(name_or_id) {
            return Some(meta);
        }
        self.cluster.as_ref()?;
        self.sync_with_cluster(Instant::now()).await;
        self.store.resolve(name_or_id)
    }

    /// One sync with the shared index (see [`crate::cluster::Cluster::sync`]);
    /// workers forget the versions it removed. Errors are logged: cached
    /// functions keep serving.
    pub async fn sync_with_cluster(self: &Arc<Self>, asked: Instant) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        match cluster.sync(&self.store, &self.secrets, asked).await {
            Ok(synced) => {
                for meta in &synced.added {
                    log::info!(target: PART, "{} ({}) arrived from the shared store", meta.id, meta.name);
                }
                self.forget_removed(&synced.removed);
                self.build_artifacts(synced.added);
            }
            // Outages and refused indexes are logged once by the cluster.
            Err(ClusterError::Unavailable(_) | ClusterError::Corrupt(_)) => {}
            Err(err) => log::error!(target: PART, "sync: {err}"),
        }
    }

    /// Compiles the artifacts of versions that arrived (each replica its
    /// own: nodes' CPUs differ, and a shared artifact would be native code
    /// anyone with bucket access could plant), one after another, in the
    /// background.
    fn build_artifacts(self: &Arc<Self>, added: Vec<Arc<FunctionMeta>>) {
        let compiled: Vec<_> = added
            .into_iter()
            .map(|meta| self.store.dir().join(&meta.id))
            .filter(|dir| dir.join("code.wasm").is_file())
            .collect();
        if compiled.is_empty() {
            return;
        }
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            for dir in compiled {
                if let Err(err) = this
                    .toolchains
                    .build_artifact(&dir, this.limits.compile_timeout)
                {
                    // The worker compiles code.wasm itself on each load.
                    log::warn!(target: PART, "artifact for {}: {err:?}", dir.display());
                }
            }
        });
    }

    /// After versions left the store: workers drop them, and the
    /// function's log and metrics go when no version is left.
    pub(super) fn forget_removed(&self, removed: &[Removed]) {
        for r in removed {
            log::info!(target: PART, "{} ({}) removed", r.meta.id, r.meta.name);
            if !self.store.is_deployed(&r.meta.name) {
                self.invocations.forget_function(&r.meta.name);
                self.metrics.forget_function(&r.meta.name);
            }
        }
        self.forget(removed);
    }

    /// Syncs every poll interval, or sooner when woken (a notice, a change
    /// made here); prunes unused objects hourly. Runs until the process
    /// ends.
    pub async fn follow_cluster(self: Arc<Self>) {
        let Some(cluster) = self.cluster.clone() else {
            return;
        };
        let mut next_prune = Instant::now() + Duration::from_secs(60);
        loop {
            self.sync_with_cluster(Instant::now()).await;
            if Instant::now() >= next_prune {
                next_prune = Instant::now() + Duration::from_secs(3600);
                let pruner = cluster.clone();
                tokio::spawn(async move { pruner.prune().await });
            }
            tokio::select! {
                _ = tokio::time::sleep(cluster.poll) => {}
                _ = cluster.wake.notified() => {}
            }
        }
    }

    /// Whether this replica should get traffic, and if not why.
    pub fn readiness(&self) -> (bool, Vec<String>) {
        let mut reasons = Vec::new();
        if self.draining.load(Ordering::Relaxed) {
            reasons.push("draining (shutting down)".to_string());
        }
        if let Some(cluster) = &self.cluster {
            if !cluster.loaded() {
                // Not the store's address: any Host may ask.
                reasons.push("the shared function index is not loaded yet".to_string());
            }
        }
        (reasons.is_empty(), reasons)
    }

    /// A peer's notice: 401 unless signed with the cluster key.
    pub fn cluster_notice(&self, body: &str, signature: Option<&str>) -> Result<(), ServiceError> {
        let Some(cluster) = &self.cluster else {
            return Err(ServiceError::not_found(
                "this server is not part of a cluster (no --store s3://)",
            ));
        };
        cluster.accept_notice(body, signature).map_err(|why| {
            log::warn!(target: PART, "refused a cluster notice: {why}");
            ServiceError::new(ErrorKind::Unauthorized, why)
        })
    }
}

/// A cluster failure as the client sees it.
pub(super) fn cluster_error(err: ClusterError) -> ServiceError {
    match err {
        ClusterError::Store(err) => store_error(err),
        ClusterError::Unavailable(why) => {
            log::error!(target: PART, "{why}");
            ServiceError::new(
                ErrorKind::StoreUnavailable,
                "the shared function store is unavailable; cached functions keep serving; retry the change later",
            )
        }
        ClusterError::Corrupt(why) => {
            log::error!(target: PART, "{why}");
            ServiceError::internal("the shared function store holds a damaged object (see the log)")
        }
    }
}
