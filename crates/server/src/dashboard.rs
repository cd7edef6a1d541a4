//! The dashboard's data and the Prometheus text: the [`Metrics`] series
//! joined with the store's functions and the LB's live figures.

use crate::service::Service;

impl Service {
    /// The Prometheus exposition text.
    pub async fn metrics_text(&self) -> String {
        let stats = self.stats().await.ok();
        self.metrics.render(stats.as_ref(), self.store.len())
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
        data
    }
}
