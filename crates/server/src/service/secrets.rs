//! The secret operations (`PUT|DELETE /secret/NAME`, `GET /secrets`) and
//! what a call gets of them: the values of the secrets its function names,
//! as [`SecretFile`]s for the worker's `/run/secrets/`.

use faas_proto::{ErrorKind, FunctionMeta, SecretInfo, SecretValue, ServiceError};

use crate::secrets::{check_name, Claim, Removal, SecretMeta, Values, MAX_SECRETS_PER_FUNCTION};
use crate::store::now_secs;

use super::*;

impl Service {
    /// Stores a secret; true when it is new. Logs the name, never the value.
    pub async fn put_secret(
        &self,
        name: &str,
        value: SecretValue,
    ) -> Result<(bool, SecretInfo), ServiceError> {
        check_name(name).map_err(ServiceError::bad_request)?;
        let (created, meta) = match &self.cluster {
            // Shared: the sealed value goes to the store and the index
            // first (the answer means every replica will serve it), then
            // here.
            Some(cluster) => {
                let now = now_secs();
                let sealed = self
                    .secrets
                    .seal_value(name, value.0.as_bytes(), now)
                    .map_err(ServiceError::bad_request)?;
                let created = cluster
                    .put_secret(name, &sealed, value.0.len() as u64, now)
                    .await
                    .map_err(replica::cluster_error)?;
                let meta = self.secrets.install(name, &sealed).map_err(|e| {
                    log::error!(target: PART, "{e}");
                    ServiceError::internal("the secret was stored but not installed here")
                })?;
                (created, meta)
            }
            None => self
                .secrets
                .put(name, value.0.as_bytes(), now_secs())
                .map_err(ServiceError::bad_request)?,
        };
        log::info!(target: PART, "secret '{name}' {} ({} bytes)", if created { "created" } else { "replaced" }, meta.size);
        Ok((created, self.info(meta)))
    }

    /// Every secret, by name, with the functions that read it.
    pub fn list_secrets(&self) -> Vec<SecretInfo> {
        self.secrets
            .list()
            .into_iter()
            .map(|meta| self.info(meta))
            .collect()
    }

    /// Removes a secret no stored version reads (409 naming them else),
    /// nor a deploy in progress names (409).
    pub async fn delete_secret(&self, name: &str) -> Result<(), ServiceError> {
        check_name(name).map_err(ServiceError::bad_request)?;
        if let Some(cluster) = &self.cluster {
            let users = self.secret_users(name);
            if !users.is_empty() {
                return Err(ServiceError::new(
                    ErrorKind::NameTaken,
                    format!(
                        "secret '{name}' is used by {}; update or delete them first",
                        users.join(", ")
                    ),
                ));
            }
            let existed = cluster
                .delete_secret(name)
                .await
                .map_err(replica::cluster_error)?;
            let _ = self.secrets.remove(name);
            return match existed {
                true => {
                    log::info!(target: PART, "secret '{name}' deleted everywhere");
                    Ok(())
                }
                false => Err(ServiceError::not_found(format!(
                    "secret '{name}' not found"
                ))),
            };
        }
        match self.secrets.remove_unused(name, || self.secret_users(name)) {
            Removal::Removed => {
                log::info!(target: PART, "secret '{name}' deleted");
                Ok(())
            }
            Removal::Used(users) => Err(ServiceError::new(
                ErrorKind::NameTaken,
                format!(
                    "secret '{name}' is used by {}; update or delete them first",
                    users.join(", ")
                ),
            )),
            Removal::Claimed => Err(ServiceError::new(
                ErrorKind::NameTaken,
                format!("secret '{name}' is named by a deploy in progress; try again once it ends"),
            )),
            Removal::Missing => Err(ServiceError::not_found(format!(
                "secret '{name}' not found"
            ))),
            Removal::Failed(e) => {
                log::error!(target: PART, "deleting secret '{name}': {e}");
                Err(ServiceError::internal("the secret could not be deleted"))
            }
        }
    }

    /// A deploy's `secret=` names: valid, existing, at most
    /// [`MAX_SECRETS_PER_FUNCTION`]. Returns them sorted, once each, and
    /// the deploy's claim on them: hold it until the version is stored, so
    /// no delete removes one in between.
    pub(super) async fn check_secret_names(
        self: &Arc<Self>,
        names: &[String],
    ) -> Result<(Vec<String>, Claim<'_>), ServiceError> {
        if names.len() > MAX_SECRETS_PER_FUNCTION {
            return Err(ServiceError::bad_request(format!(
                "{} secrets (secret=); at most {MAX_SECRETS_PER_FUNCTION}",
                names.len()
            )));
        }
        for name in names {
            check_name(name).map_err(|e| ServiceError::bad_request(format!("secret: {e}")))?;
            if !self.secrets.contains(name) && self.cluster.is_some() {
                // Stored on another replica a moment ago, maybe.
                self.sync_with_cluster(std::time::Instant::now()).await;
            }
        }
        let mut names = names.to_vec();
        names.sort();
        names.dedup();
        let claim = self.secrets.claim(&names).map_err(|name| {
            ServiceError::bad_request(format!(
                "secret '{name}' does not exist (store it first with PUT /secret/{name})"
            ))
        })?;
        Ok((names, claim))
    }

    /// The values a call of `meta` reads under `/run/secrets/`. A secret
    /// that is gone or does not open fails the call (500 naming it).
    pub(super) fn secret_values(&self, meta: &FunctionMeta) -> Result<Values, ServiceError> {
        if meta.settings.secrets.is_empty() {
            return Ok(Vec::new());
        }
        self.secrets.values(&meta.settings.secrets).map_err(|e| {
            log::error!(target: PART, "{}: {e}", meta.id);
            ServiceError::internal(format!("{}: {e}", meta.name))
        })
    }

    /// Functions with a stored version that reads `name`.
    fn secret_users(&self, name: &str) -> Vec<String> {
        let mut users: Vec<String> = self
            .store
            .list()
            .iter()
            .filter(|m| m.settings.secrets.iter().any(|s| s == name))
            .map(|m| m.name.clone())
            .collect();
        users.sort();
        users.dedup();
        users
    }

    fn info(&self, meta: SecretMeta) -> SecretInfo {
        SecretInfo {
            used_by: self.secret_users(&meta.name),
            name: meta.name,
            size: meta.size,
            created: meta.created,
            updated: meta.updated,
        }
    }
}
