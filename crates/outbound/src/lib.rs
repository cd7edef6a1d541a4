//! The platform's outbound HTTP client: the only way a function reaches the
//! network, and only the hosts its deployer granted (`allow=`, parsed by
//! [`faas_proto::grant`]). Every language calls [`Client::fetch`] from the
//! worker; nothing in here trusts the function.
//!
//! The policy, checked on the first URL and again on every redirect hop:
//!
//! - only `http` and `https` URLs, without credentials in them;
//! - the URL's host and port (default 80 / 443) must be granted
//!   ([`Grants::permits`]);
//! - we resolve the name ourselves, and refuse it if **any** of its
//!   addresses is loopback, private, CGNAT, link-local (cloud metadata at
//!   169.254.169.254 included), unique-local, or an IPv4-mapped, NAT64 or
//!   6to4 form of one, or one of **this host's own** addresses (every
//!   interface's, `eth0`'s public one included: it reaches this host's
//!   services as loopback would), unless that literal address and port is
//!   granted too ([`Grants::permits_address`]); an address literal in the
//!   URL is checked the same way. This host's addresses are listed with
//!   `getifaddrs` at most once a second. Unspecified, multicast, broadcast and reserved
//!   addresses are refused even if granted. The connection then goes only
//!   to the addresses we checked (no second resolution, so DNS rebinding
//!   cannot swap them);
//! - the platform's own listener ([`Config::protected_ports`]) is never
//!   reachable on loopback, unspecified or this host's interface
//!   addresses, whatever the grants say;
//! - the request's `Host` may only repeat the URL's host (HTTP/2's
//!   `:authority` always comes from the URL); framing and hop-by-hop
//!   headers (`Content-Length` other than the body's, `Transfer-Encoding`,
//!   `Connection`, ...) and invalid names or values are refused, never
//!   dropped silently;
//! - redirects (301, 302, 303, 307, 308) are followed at most
//!   [`MAX_REDIRECTS`] times, each hop checked as above; 303, and 301/302
//!   after a POST, become a GET without body, as browsers do; a hop to
//!   another origin drops `Authorization`, `Cookie` and
//!   `Proxy-Authorization` (as the Fetch standard does), so a granted host
//!   cannot forward a function's credentials to another;
//! - TLS is verified against the system's roots plus
//!   [`Config::extra_ca_file`]; no session is resumed (the calls of
//!   different functions share the client: a session cache would link
//!   them, and let one learn which hosts another reached);
//! - request and response bodies are capped at
//!   [`Config::max_response_bytes`] (the response while it streams);
//! - everything (resolution, connection, TLS, headers, body, redirects)
//!   ends at the caller's deadline;
//! - no cookies, no proxy (`HTTP_PROXY` and friends are ignored), no
//!   connection kept after a call, no retry, no decompression;
//!   `User-Agent` is [`USER_AGENT`] and `Accept` is `*/*` unless the
//!   function sets them.
//!
//! [`Client::fetch`] blocks; the requests run on the client's own tokio
//! runtime (one thread, and blocking threads for name resolution, bounded
//! per function so that lookups that hang cannot starve the others:
//! [`resolve`]), so it may be called from any thread, including one inside
//! another tokio runtime or a Wasmer host call. The roots are read once, by
//! [`Client::new`]; each call then needs `/etc/hosts`, `/etc/resolv.conf`
//! and the like (the system's resolver) and outbound sockets.
//!
//! Modules:
//! - [`error`]: [`FetchError`], what a call reports;
//! - `policy`: the URL, address and header rules above;
//! - [`resolve`]: name lookups, bounded per function;
//! - `tls`: the root store, loaded once; resumption off;
//! - `fetch`: one call, hop by hop, on the client's runtime.

pub mod error;
mod fetch;
mod policy;
pub mod resolve;
mod tls;

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use error::{FetchError, Result};
pub use faas_proto::Grants;
use reqwest::Url;

/// `--max-outbound-bytes`' default: 10 MiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 10 * 1024 * 1024;

/// Redirects one call follows; the next one is an error.
pub const MAX_REDIRECTS: usize = 5;

/// Sent unless the function sets its own `User-Agent`.
pub const USER_AGENT: &str = concat!("faas-outbound/", env!("CARGO_PKG_VERSION"));

/// How the worker configures the client (from its flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `--max-outbound-bytes`: the most a response body may hold (and a
    /// request body).
    pub max_response_bytes: u64,
    /// `--outbound-ca-file`: PEM certificates trusted in addition to the
    /// system's roots (a private CA).
    pub extra_ca_file: Option<PathBuf>,
    /// The platform's own listener port(s): never reachable on this host's
    /// addresses, even if granted.
    pub protected_ports: Vec<u16>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            extra_ca_file: None,
            protected_ports: Vec::new(),
        }
    }
}

/// One request, as a function gives it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// A GET of `url` without headers.
    pub fn get(url: impl Into<String>) -> Self {
        Self {
            method: "GET".into(),
            url: url.into(),
            ..Self::default()
        }
    }
}

/// `scheme://host[:port]` of `url` as the client parses it, for log lines
/// and messages: never its user info, path or query (which may carry a
/// token). Splitting the raw text instead would disagree with the parser
/// (`http://h\token` is host `h`, path `/token`: the WHATWG parser
/// reads `\` as `/`), and would copy control characters a URL may start
/// with (the parser strips them) into the log. The host is cut at 300
/// characters.
pub fn origin_of(url: &str) -> String {
    match Url::parse(url) {
        Ok(url) => {
            let host: String = url.host_str().unwrap_or("").chars().take(300).collect();
            match url.port() {
                Some(port) => format!("{}://{host}:{port}", url.scheme()),
                None => format!("{}://{host}", url.scheme()),
            }
        }
        Err(_) => "(an invalid URL)".into(),
    }
}

/// Checks `url` against the rules a request's first URL must pass before
/// any name is resolved (only `http`/`https`, no credentials, a host, and
/// a host and port `grants` permit), and returns the entries of `grants`
/// that permit it. The Server checks a callback URL with it when the call
/// is queued; the addresses are still checked by [`Client::fetch`] when
/// the request is sent.
pub fn check_url(grants: &Grants, url: &str) -> Result<Vec<String>> {
    let parsed = Url::parse(url)
        .map_err(|e| FetchError::Invalid(format!("the URL cannot be parsed: {e}")))?;
    let target = policy::check_url(grants, &parsed)?;
    Ok(grants
        .iter()
        .filter(|g| g.permits(&target.host, target.port))
        .map(ToString::to_string)
        .collect())
}

/// The final answer (after redirects).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// The final URL, after redirects.
    pub url: String,
    /// In the order received; a value that is not UTF-8 is converted
    /// lossily.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the calls share: the configuration, the TLS set-up built once,
/// this host's addresses and the name lookups running.
struct Shared {
    config: Config,
    tls: rustls::ClientConfig,
    local: policy::LocalAddresses,
    lookups: Arc<resolve::Lookups>,
}

struct Inner {
    shared: Arc<Shared>,
    /// Always `Some` until dropped.
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last clone may go away inside another runtime, where dropping
        // a runtime (which waits for it) panics; nothing of ours is still
        // running then, since every call waits for its answer.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The outbound HTTP client. Cheap to clone (the clones share one runtime
/// thread and the TLS roots); `Send + Sync`.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.inner.shared.config)
            .finish_non_exhaustive()
    }
}

/// How long past the deadline a caller still waits for the runtime's
/// answer before giving up on it (the call itself stops at the deadline;
/// this only guards against a runtime that stopped answering).
const ANSWER_GRACE: Duration = Duration::from_secs(5);

impl Client {
    /// Loads the system's roots and `extra_ca_file` (once), and starts the
    /// client's runtime thread. A CA file that cannot be read, or holds no
    /// valid certificate, is an error naming it.
    pub fn new(config: Config) -> std::result::Result<Client, String> {
        let tls = tls::client_config(config.extra_ca_file.as_deref())?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            // getaddrinfo runs there; a hung resolution holds one until it
            // returns (its call has timed out long before). `Lookups`
            // admits no more than there are threads, so a lookup never
            // queues behind hung ones.
            .max_blocking_threads(resolve::MAX_PENDING)
            .thread_name("faas-outbound")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the outbound client's runtime: {e}"))?;
        Ok(Client {
            inner: Arc::new(Inner {
                shared: Arc::new(Shared {
                    config,
                    tls,
                    local: policy::LocalAddresses::new(),
                    lookups: resolve::Lookups::new(
                        resolve::MAX_PENDING_PER_CALLER,
                        resolve::MAX_PENDING,
                    ),
                }),
                runtime: Some(runtime),
            }),
        })
    }

    pub fn config(&self) -> &Config {
        &self.inner.shared.config
    }

    /// [`fetch_for`](Self::fetch_for) as one unnamed caller (tests, tools:
    /// its name lookups share one caller's bound).
    pub fn fetch(&self, grants: &Grants, req: Request, deadline: Instant) -> Result<Response> {
        self.fetch_for("", grants, req, deadline)
    }

    /// Sends `req` for function `caller` if `grants` permit it, following
    /// permitted redirects, and reads the whole answer, all before
    /// `deadline`. `caller` only counts its name lookups apart from other
    /// functions' ([`resolve`]).
    ///
    /// Blocking. Callable from any thread, including one inside a tokio
    /// runtime or a Wasmer host call: the request runs on the client's
    /// own runtime and this thread only waits for its answer.
    pub fn fetch_for(
        &self,
        caller: &str,
        grants: &Grants,
        req: Request,
        deadline: Instant,
    ) -> Result<Response> {
        if Instant::now() >= deadline {
            return Err(FetchError::Timeout);
        }
        let Some(runtime) = self.inner.runtime.as_ref() else {
            return Err(FetchError::Failed(
                "the outbound client is shut down".into(),
            ));
        };
        let shared = Arc::clone(&self.inner.shared);
        let grants = grants.clone();
        let caller = caller.to_string();
        let (tx, rx) = mpsc::sync_channel(1);
        runtime.spawn(async move {
            let until = tokio::time::Instant::from_std(deadline);
            let answer = tokio::time::timeout_at(until, fetch::run(&shared, &caller, &grants, req))
                .await
                .unwrap_or(Err(FetchError::Timeout));
            // The caller may have given up (ANSWER_GRACE): nothing to do.
            let _ = tx.send(answer);
        });
        let wait = deadline.saturating_duration_since(Instant::now()) + ANSWER_GRACE;
        match rx.recv_timeout(wait) {
            Ok(answer) => answer,
            Err(mpsc::RecvTimeoutError::Timeout) => Err(FetchError::Timeout),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(FetchError::Failed(
                "the outbound client's runtime dropped the request".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_checked_and_the_grants_permitting_it_named() {
        let grants =
            Grants::parse(&["hooks.example.com", "127.0.0.1:9000", "*.example.com"]).unwrap();
        assert_eq!(
            // In the grants' own (sorted) order.
            check_url(&grants, "https://hooks.example.com/x?k=1").unwrap(),
            ["*.example.com", "hooks.example.com"]
        );
        assert_eq!(
            check_url(&grants, "http://127.0.0.1:9000/").unwrap(),
            ["127.0.0.1:9000"]
        );
        for (url, outcome) in [
            ("http://127.0.0.1:9001/", "denied"),
            ("http://localhost:9000/", "denied"),
            ("ftp://hooks.example.com/", "error"),
            ("http://user:pw@hooks.example.com/", "error"),
            ("not a url", "error"),
        ] {
            assert_eq!(
                check_url(&grants, url).unwrap_err().outcome(),
                outcome,
                "{url}"
            );
        }
    }

    #[test]
    fn the_client_is_send_sync_and_clone() {
        fn check<T: Send + Sync + Clone>() {}
        check::<Client>();
    }

    #[test]
    fn the_shared_tls_configuration_never_resumes_a_session() {
        let client = Client::new(Config::default()).unwrap();
        let resumption = format!("{:?}", client.inner.shared.tls.resumption);
        assert!(
            resumption.contains("NoClientSessionStorage") && resumption.contains("Disabled"),
            "{resumption}"
        );
    }
}
