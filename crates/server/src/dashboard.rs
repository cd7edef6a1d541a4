//! The dashboard's data and the Prometheus text: the [`Metrics`] series
//! joined with the store's functions, the LB's live figures, and the
//! queue of async calls with the schedules.

use crate::service::Service;

/// Dead letters the dashboard lists (newest first; the count is whole).
const DEAD_LETTERS_SHOWN: usize = 20;

impl Service {
    /// The Prometheus exposition text.
    pub async fn metrics_text(&self) -> String {
        let stats = self.stats().await.ok();
        let background = self.background.figures();
        self.metrics
            .render(stats.as_ref(), self.store.len(), background)
    }

    /// The dashboard's queue view: depth, and the newest dead letters
    /// (the list is read only when there are some).
    fn queue_view(&self) -> serde_json::Value {
        let figures = self.background.figures();
        let queue = &self.background.queue;
        let mut dead = if figures.dead > 0 {
            tokio::task::block_in_place(|| queue.dead_letters(None)).unwrap_or_default()
        } else {
            Vec::new()
        };
        dead.reverse();
        dead.truncate(DEAD_LETTERS_SHOWN);
        let dead: Vec<serde_json::Value> = dead
            .iter()
            .map(|call| {
                let last = call.attempts.last();
                serde_json::json!({
                    "id": call.id, "function": call.spec.function,
                    "attempts": call.attempts.len(), "finished_ms": call.finished_ms,
                    "outcome": last.map(|a| a.outcome.as_str()),
                    "error": last.and_then(|a| a.error.as_deref()),
                })
            })
            .collect();
        serde_json::json!({
            "queued": figures.queued, "running": figures.running,
            "dead": figures.dead, "dead_letters": dead,
        })
    }

    /// The dashboard's data: the live series, the functions with their
    /// figures, and the workers.
    pub async fn dashboard(&self) -> serde_json::Value {
        let mut data = self.metrics.dashboard();
        let figures = data["functions"].take();
        let mut functions: Vec<serde_json::Value> = self
            .store
            .latest_with_counts()
            .into_iter()
            .map(|(meta, versions)| {
                let f = &figures[&meta.name];
                serde_json::json!({
                    "name": meta.name, "lang": meta.lang, "id": meta.id, "versions": versions,
                    "calls": f["calls"].as_u64().unwrap_or(0), "errors": f["errors"].as_u64().unwrap_or(0),
                    "p50_ms": f["p50_ms"].as_f64().unwrap_or(0.0), "last_ms": f["last_ms"].as_u64(),
                    // Its configuration: variables, the names of the
                    // secrets it reads (never their values), granted hosts.
                    "env": meta.settings.env, "secrets": meta.settings.secrets,
                    "allow": meta.settings.allow,
                })
            })
            .collect();
        functions.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        data["functions"] = serde_json::Value::Array(functions);
        data["stats"] = serde_json::to_value(self.stats().await.ok()).unwrap_or_default();
        data["queue"] = self.queue_view();
        data["schedules"] = serde_json::Value::Array(self.schedules());
        data
    }
}
