//! The gateway's command-line flags, flattened into `faas-server`.

use clap::Args;

use crate::guard::HostPattern;

/// Largest request body accepted by default (a function's source or payload).
pub const DEFAULT_MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// Largest project archive a deploy may send by default (compressed).
pub const DEFAULT_MAX_ARCHIVE_BYTES: usize = 50 * 1024 * 1024;

#[derive(Args, Debug, Clone)]
pub struct GatewayArgs {
    /// Address to listen on. The default only accepts local clients; use
    /// 0.0.0.0 to open the server to the network.
    #[arg(long, env = "FAAS_HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// HTTP port; 0 picks a free one (the real address is logged as
    /// `listening on http://ADDR`).
    #[arg(long, env = "FAAS_PORT", default_value_t = 8080)]
    pub port: u16,
    /// Largest request body (source or payload), in bytes.
    #[arg(long, env = "FAAS_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// Largest project archive (a deploy's `.tar.gz` or `.zip` body, as
    /// sent), in bytes; more answers 413.
    #[arg(long, env = "FAAS_MAX_ARCHIVE_BYTES", default_value_t = DEFAULT_MAX_ARCHIVE_BYTES)]
    pub max_archive_bytes: usize,
    /// On SIGINT/SIGTERM, how long open requests may take to finish, in ms.
    #[arg(long, env = "FAAS_GRACE_MS", default_value_t = 10_000)]
    pub grace_ms: u64,
    /// Longest a client may take to send a request's whole body, in ms
    /// (headers have 30 s); a slower one gets 408 and the connection closes.
    #[arg(long, env = "FAAS_READ_TIMEOUT_MS", default_value_t = 30_000)]
    pub read_timeout_ms: u64,
    /// Most open client connections; beyond it a new connection gets one 503
    /// answer and is closed.
    #[arg(long, env = "FAAS_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,
    /// Most open connections from one client address; beyond it a new
    /// connection from that address gets one 503 answer and is closed.
    /// Behind a reverse proxy every client has the proxy's address: raise
    /// it, or 0 to count nothing.
    #[arg(long, env = "FAAS_MAX_CONNECTIONS_PER_IP", default_value_t = 256)]
    pub max_connections_per_ip: usize,
    /// The `Host` names this server answers to, comma-separated (`name`,
    /// `name:port`, `[v6]`, or `*` for any); any other gets 421. Default:
    /// localhost, 127.0.0.1 and [::1] on any port when bound to a loopback
    /// address; any name (warned at start) otherwise.
    #[arg(long, env = "FAAS_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<HostPattern>,
    /// When set, deploy, update, delete, source, versions, invocations,
    /// the function list and stats need `Authorization: Bearer TOKEN`.
    #[arg(long, env = "FAAS_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// When set, invoke and `/fn/` need `Authorization: Bearer TOKEN`.
    #[arg(long, env = "FAAS_INVOKE_TOKEN", hide_env_values = true)]
    pub invoke_token: Option<String>,
    /// Reads the API token from this file (recommended: a token on the
    /// command line is visible in `ps` to every user of the machine).
    #[arg(long, env = "FAAS_API_TOKEN_FILE", conflicts_with = "api_token")]
    pub api_token_file: Option<std::path::PathBuf>,
    /// Reads the invoke token from this file.
    #[arg(long, env = "FAAS_INVOKE_TOKEN_FILE", conflicts_with = "invoke_token")]
    pub invoke_token_file: Option<std::path::PathBuf>,
}

impl GatewayArgs {
    /// Replaces `--api-token-file` / `--invoke-token-file` by the tokens
    /// they hold (the file's content without its trailing newline).
    pub fn load_token_files(&mut self) -> Result<(), String> {
        if let Some(path) = self.api_token_file.take() {
            self.api_token = Some(read_token(&path)?);
        }
        if let Some(path) = self.invoke_token_file.take() {
            self.invoke_token = Some(read_token(&path)?);
        }
        Ok(())
    }
}

/// A token file's content: one line, not empty.
fn read_token(path: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the token file {}: {e}", path.display()))?;
    let token = text.trim_end_matches(['\n', '\r']);
    if token.trim().is_empty() || token.contains('\n') {
        return Err(format!(
            "the token file {} must hold one non-empty line",
            path.display()
        ));
    }
    Ok(token.to_string())
}
