//! Deploys: validate the request, store the source, compile it in the
//! build sandbox, and publish the version only once everything is in place.
//!
//! A project archive is kept as deployed (`code.tar.gz` / `code.zip`, for
//! `GET /function/NAME`) and unpacked into the version's `tree/`
//! ([`crate::archive`]); then its entry is resolved, the package hook runs
//! and the tree is built ([`crate::project`]). A prebuilt module
//! (`lang=wasm`) is stored as `code.wasm` and only compiled to its
//! artifact, which validates it.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use faas_proto::{DeploySpec, ErrorKind, FunctionMeta, Lang, ServiceError};
use sha2::{Digest, Sha256};

use crate::archive::ArchiveError;
use crate::project::{Plan, TREE_DIR};
use crate::store::now_secs;
use crate::toolchain::BuildError;

use super::*;

impl Service {
    /// Validates, stores and compiles a function; it is served only once
    /// everything is in place.
    /// `update`: a new version of a deployed function instead of a new
    /// function; older versions beyond `--keep-versions` are removed.
    pub async fn deploy(
        self: &Arc<Self>,
        req: DeploySpec,
        update: bool,
    ) -> Result<FunctionMeta, ServiceError> {
        let mut req = req;
        self.check_deploy(&req)?;
        // On an update, no `schedule=` keeps the current version's.
        let previous = update
            .then(|| self.store.resolve(&req.name))
            .flatten()
            .filter(|meta| meta.name == req.name);
        super::schedule::settle(&mut req.settings, previous.as_ref().map(|m| &m.settings))?;
        // Held until the version is stored: a delete of one of its secrets
        // meanwhile is refused (409) instead of leaving it unreadable.
        let (secrets, _claim) = self.check_secret_names(&req.settings.secrets).await?;
        req.settings.secrets = secrets;
        let mut reservation = match (&self.cluster, update) {
            // The shared index decides whether the name exists (at commit).
            (Some(_), _) => self.store.reserve_shared(&req.name, update),
            (None, true) => self.store.reserve_update(&req.name),
            (None, false) => self.store.reserve(&req.name),
        }
        .map_err(store_error)?;
        if let Some(cluster) = &self.cluster {
            cluster
                .claim(&mut reservation)
                .await
                .map_err(replica::cluster_error)?;
        }
        reservation.create_staging().map_err(store_error)?;
        let stored = reservation
            .staging
            .join(crate::store::source_name(req.lang, req.settings.archive));
        std::fs::write(&stored, req.code.as_bytes()).map_err(|e| {
            log::error!(target: PART, "writing {}: {e}", stored.display());
            ServiceError::internal("could not write the source to the function store")
        })?;
        let started = Instant::now();
        let plan = match req.settings.archive {
            Some(format) => {
                let plan = self.unpack(&req, format, &reservation.staging).await?;
                req.settings.entry = Some(plan.entry.clone());
                Some(plan)
            }
            None => None,
        };
        let source = match plan {
            Some(_) => reservation.staging.join(TREE_DIR),
            None => stored,
        };
        log::info!(target: PART, "deploy {} ({}): building", req.name, req.lang);
        let lang = req.lang.name();
        self.build(req.lang, &reservation.staging, &source, plan)
            .await
            .inspect(|_| self.metrics.deploy(lang, "ok", Some(started.elapsed())))
            .inspect_err(|e| {
                let result = if e.kind == ErrorKind::CompileFailed {
                    "rejected"
                } else {
                    "failed"
                };
                self.metrics.deploy(lang, result, Some(started.elapsed()));
            })
            .inspect_err(
                |_| log::info!(target: PART, "deploy {} ({}) failed to build", req.name, req.lang),
            )?;
        let meta = FunctionMeta {
            id: reservation.id.clone(),
            name: req.name,
            lang: req.lang,
            created: now_secs(),
            sha256: hex(&Sha256::digest(req.code.as_bytes())),
            wasm: self.toolchains.runs_in_wasm(req.lang),
            settings: req.settings,
            version: 0,
        };
        let keep = self.limits.keep_versions;
        let (meta, removed) = match &self.cluster {
            Some(cluster) => cluster
                .publish(&self.store, reservation, meta, update, keep)
                .await
                .map_err(replica::cluster_error)?,
            None => {
                let meta = reservation.commit(meta).map_err(store_error)?;
                let removed = if update {
                    self.store.trim(&meta.name, keep)
                } else {
                    Vec::new()
                };
                (meta, removed)
            }
        };
        self.forget(&removed);
        log::info!(
            target: PART,
            "deployed {} ({}) as {} in {:.0} ms",
            meta.name,
            meta.lang,
            meta.id,
            started.elapsed().as_secs_f64() * 1000.0
        );
        Ok((*meta).clone())
    }

    /// Everything a deploy can be refused for before anything is written.
    fn check_deploy(&self, req: &DeploySpec) -> Result<(), ServiceError> {
        validate_name(&req.name).map_err(ServiceError::bad_request)?;
        if req.code.as_bytes().trim_ascii().is_empty() {
            return Err(ServiceError::bad_request(
                "the source code (request body) is empty",
            ));
        }
        match (req.settings.archive, req.lang) {
            (Some(_), Lang::Wasm) => {
                return Err(ServiceError::bad_request(
                    "lang=wasm takes one module as the body, not an archive",
                ))
            }
            (None, Lang::Wasm) if !req.code.as_bytes().starts_with(b"\0asm") => {
                return Err(ServiceError::new(
                    ErrorKind::CompileFailed,
                    "not a WebAssembly module: the body does not start with \\0asm (send the .wasm file's bytes)",
                ))
            }
            (None, _) if req.settings.entry.is_some() => {
                return Err(ServiceError::bad_request(
                    "entry= names a file of a project archive; this deploy is one file",
                ))
            }
            (None, lang) if lang.is_text() && req.code.as_str().is_none() => {
                return Err(ServiceError::bad_request("source code must be UTF-8 text"))
            }
            _ => {}
        }
        if !matches!(req.lang, Lang::Html | Lang::Wasm) && self.toolchains.tool(req.lang).is_none()
        {
            return Err(ServiceError::unavailable(
                self.toolchains.missing_hint(req.lang),
            ));
        }
        check_limit(
            "timeout_ms",
            req.settings.timeout_ms,
            self.limits.max_timeout_ms,
        )?;
        check_limit(
            "max_memory_mb",
            req.settings.max_memory_mb,
            self.limits.max_memory_mb,
        )?;
        check_limit(
            "max_tmp_mb",
            req.settings.max_tmp_mb,
            self.limits.max_tmp_mb,
        )?;
        check_limit(
            "max_concurrency",
            req.settings.max_concurrency.map(u64::from),
            self.limits.workers,
        )?;
        check_variables(&req.settings.env)?;
        check_retry_settings(&req.settings)?;
        match &req.settings.content_type {
            Some(ct) if !valid_content_type(ct) => Err(ServiceError::bad_request(
                "content_type must be a media type of at most 128 printable characters",
            )),
            _ => Ok(()),
        }
    }

    /// Unpacks a project archive into `staging/tree` (off the request
    /// threads), resolves its entry file, runs the package hook and checks
    /// what the build needs. Whatever it refuses, the reservation's
    /// staging directory is dropped with everything in it.
    async fn unpack(
        self: &Arc<Self>,
        req: &DeploySpec,
        format: faas_proto::ArchiveFormat,
        staging: &Path,
    ) -> Result<Plan, ServiceError> {
        let limits = crate::archive::Limits {
            max_unpacked_bytes: self.limits.max_unpacked_bytes,
            max_files: crate::archive::MAX_FILES,
        };
        let (code, tree) = (req.code.clone(), staging.join(TREE_DIR));
        let (lang, entry) = (req.lang, req.settings.entry.clone());
        let (this, timeout) = (self.clone(), self.limits.compile_timeout);
        // An install is as heavy as a compile: it takes a compile slot.
        let _permit = self
            .compile_slots
            .acquire()
            .await
            .expect("semaphore never closed");
        tokio::task::spawn_blocking(move || {
            crate::archive::unpack(format, code.as_bytes(), &tree, limits).map_err(
                |e| match e {
                    ArchiveError::TooLarge(m) => ServiceError::new(ErrorKind::TooLarge, m),
                    ArchiveError::Refused(m) => ServiceError::bad_request(m),
                    ArchiveError::Io(m) => {
                        log::error!(target: PART, "unpacking an archive: {m}");
                        ServiceError::internal("could not unpack the archive into the store")
                    }
                },
            )?;
            let entry = crate::project::resolve_entry(lang, &tree, entry.as_deref())?;
            // Packages go into the tree before the build reads it; the
            // install tools run in the build sandbox (networked mode).
            this.toolchains
                .install_packages(lang, &tree, timeout)
                .map_err(|e| build_error(e.into()))?;
            crate::project::install_packages(lang, &tree)?;
            crate::project::plan(lang, &tree, &entry)
        })
        .await
        .unwrap_or_else(|e| Err(ServiceError::internal(format!("unpack task failed: {e}"))))
    }

    /// Runs the language's build step on `source` (a file, or a project's
    /// tree with its `plan`) in `dir`, off the request threads and at most
    /// `--compile-jobs` at once.
    async fn build(
        self: &Arc<Self>,
        lang: Lang,
        dir: &Path,
        source: &Path,
        plan: Option<Plan>,
    ) -> Result<(), ServiceError> {
        let _permit = self
            .compile_slots
            .acquire()
            .await
            .expect("semaphore never closed");
        let this = self.clone();
        let (dir, source) = (dir.to_path_buf(), source.to_path_buf());
        tokio::task::spawn_blocking(move || {
            let timeout = this.limits.compile_timeout;
            this.toolchains
                .build(lang, &dir, &source, plan.as_ref(), timeout)
                .map_err(build_error)?;
            if lang.is_compiled() {
                // Before the artifact: cranelift on a huge module is the
                // costly step, and a worker would keep it all in memory.
                check_module_size(&dir.join("code.wasm"), this.limits.max_module_bytes)?;
                // Compile once, here: workers load this artifact instead of
                // running cranelift on their first call. In a child process
                // (`worker compile`), because a Wasmer engine never frees the
                // code it compiled: the Server's memory stays flat.
                this.toolchains
                    .build_artifact(&dir, timeout)
                    .map_err(|e| match (lang, e) {
                        // Nothing was compiled: the module itself is wrong.
                        (Lang::Wasm, BuildError::Rejected(msg)) => ServiceError::new(
                            ErrorKind::CompileFailed,
                            format!("invalid module: {msg}"),
                        )
                        .with_details(msg),
                        (_, e) => build_error(e),
                    })?;
            }
            Ok(())
        })
        .await
        .unwrap_or_else(|e| {
            Err(build_error(BuildError::Failed(format!(
                "build task failed: {e}"
            ))))
        })
    }
}

/// Most variables a function may set, and their total size (keys and
/// values).
const MAX_VARIABLES: usize = 64;
const MAX_VARIABLE_BYTES: usize = 16 * 1024;

/// A function's variables: keys like C identifiers, none starting with
/// `FAAS_` (the platform's own), no NUL in a value (an environment entry
/// ends at one), within the count and size bounds.
fn check_variables(env: &std::collections::BTreeMap<String, String>) -> Result<(), ServiceError> {
    if env.len() > MAX_VARIABLES {
        return Err(ServiceError::bad_request(format!(
            "{} variables (env=); at most {MAX_VARIABLES}",
            env.len()
        )));
    }
    let bytes: usize = env.iter().map(|(k, v)| k.len() + v.len()).sum();
    if bytes > MAX_VARIABLE_BYTES {
        return Err(ServiceError::bad_request(format!(
            "the variables (env=) take {bytes} bytes; at most {MAX_VARIABLE_BYTES} in all"
        )));
    }
    for (key, value) in env {
        let shown: String = key.chars().take(64).collect();
        let mut chars = key.chars();
        let valid = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(ServiceError::bad_request(format!(
                "env: '{shown}' is not a variable name (letters, digits and '_', not starting with a digit)"
            )));
        }
        if key.starts_with("FAAS_") {
            return Err(ServiceError::bad_request(format!(
                "env: '{shown}' is reserved (FAAS_ variables are the platform's)"
            )));
        }
        if value.contains('\0') {
            return Err(ServiceError::bad_request(format!(
                "env: the value of '{shown}' contains a NUL byte"
            )));
        }
    }
    Ok(())
}

/// A Content-Type to answer with: printable ASCII, a `/`, at most 128.
fn valid_content_type(ct: &str) -> bool {
    ct.len() <= 128 && ct.contains('/') && ct.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// A per-function limit, when given, is between 1 and `max`.
/// The async calls' settings: `retries` 0 to 10 (0 is valid: no retry),
/// `retry_backoff_ms` and `max_age_s` within their bounds.
fn check_retry_settings(settings: &faas_proto::FunctionSettings) -> Result<(), ServiceError> {
    use faas_queue::retry::{MAX_AGE_S, MAX_BACKOFF_MS, MAX_RETRIES};
    if settings.retries.is_some_and(|n| n > MAX_RETRIES) {
        return Err(ServiceError::bad_request(format!(
            "retries must be between 0 and {MAX_RETRIES}"
        )));
    }
    check_limit(
        "retry_backoff_ms",
        settings.retry_backoff_ms,
        MAX_BACKOFF_MS,
    )?;
    check_limit("max_age_s", settings.max_age_s, MAX_AGE_S)
}

fn check_limit(name: &str, value: Option<u64>, max: u64) -> Result<(), ServiceError> {
    match value {
        Some(v) if v == 0 || v > max => Err(ServiceError::bad_request(format!(
            "{name} must be between 1 and {max}"
        ))),
        _ => Ok(()),
    }
}

/// A compiled module larger than `--max-module-mb` is refused (422) before
/// anything else is done with it.
fn check_module_size(module: &Path, max_bytes: u64) -> Result<(), ServiceError> {
    let bytes = std::fs::metadata(module).map(|m| m.len()).map_err(|e| {
        log::error!(target: PART, "{}: {e}", module.display());
        ServiceError::internal("the compiler left no module")
    })?;
    if bytes <= max_bytes {
        return Ok(());
    }
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    Err(ServiceError::new(
        ErrorKind::CompileFailed,
        format!(
            "the compiled module is {:.1} MiB; --max-module-mb allows {:.0} MiB (large static data counts: build it at run time instead)",
            mib(bytes),
            mib(max_bytes)
        ),
    ))
}

fn build_error(err: BuildError) -> ServiceError {
    match err {
        BuildError::Missing(msg) => ServiceError::unavailable(msg),
        BuildError::Rejected(msg) => ServiceError::new(
            ErrorKind::CompileFailed,
            format!("compilation failed: {msg}"),
        )
        .with_details(msg),
        BuildError::Failed(msg) => {
            log::error!(target: PART, "build failed: {msg}");
            ServiceError::internal(msg)
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_checked() {
        let env = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        assert!(check_variables(&env(&[("API_URL", "https://x"), ("_n1", "")])).is_ok());
        for bad in ["1X", "A-B", "", "FAAS_REQUEST_ID", "É"] {
            assert!(check_variables(&env(&[(bad, "v")])).is_err(), "{bad}");
        }
        assert!(check_variables(&env(&[("K", "a\0b")])).is_err());
        let many: Vec<(String, String)> =
            (0..65).map(|i| (format!("K{i}"), String::new())).collect();
        assert!(check_variables(&many.into_iter().collect()).is_err());
        let big = "x".repeat(MAX_VARIABLE_BYTES);
        assert!(check_variables(&env(&[("K", big.as_str())])).is_err());
    }

    #[test]
    fn limits_are_checked() {
        assert!(check_limit("t", None, 10).is_ok());
        assert!(check_limit("t", Some(10), 10).is_ok());
        assert!(check_limit("t", Some(0), 10).is_err());
        assert_eq!(
            check_limit("t", Some(11), 10).unwrap_err().kind,
            ErrorKind::BadRequest
        );
    }
}
