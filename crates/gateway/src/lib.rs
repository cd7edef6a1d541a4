//! The HTTP API gateway: a thread of `faas-server` that speaks HTTP/1.1
//! (hyper + tokio) and only routes. Each request becomes one
//! [`ServerRequest`] on a persistent, multiplexed connection to the Server's
//! UNIX socket; the Server's [`Reply`] says what happened and
//! [`status`] turns it into the HTTP status.
//!
//! Routes (the seed's three first):
//! - `POST /deploy?name=N&lang=L[&timeout_ms=T&max_memory_mb=M&max_tmp_mb=K]`, body = source;
//!   with `Content-Type: application/gzip` or `application/zip`, a project
//!   archive (`&entry=PATH`); `lang=wasm`: a prebuilt WASI module
//! - `POST /invoke?fn=ID_OR_NAME`, body = the function's stdin (any bytes)
//! - `ANY /fn/NAME[/REST]`: the function as an HTTP endpoint: raw body in,
//!   its stdout out, the request as `FAAS_HTTP_*` variables
//! - `POST /async/NAME[/REST]` (alias `/async-function/`) → 202 and a call
//!   id; `GET /invocation/ID` → its status and result;
//!   `GET /dead-letters[?function=NAME]`, `POST /dead-letters/ID/redrive`,
//!   `DELETE /dead-letters/ID`
//! - `GET /function/NAME` → the stored source as text, a prebuilt module
//!   (`application/wasm`) or a project's archive as deployed
//! - `PUT /function/NAME?lang=L` → a new version; `DELETE /function/NAME|ID`
//! - `GET /function/NAME/versions`, `GET /function/NAME/invocations?limit=N`,
//!   `GET /function/NAME/files` (a project's paths and sizes)
//! - `GET /functions` → every deployed function's metadata
//! - `GET /stats` → load-balancer counters
//! - `GET /health` → `{"ok":true}` (answered here, for probes)
//! - `GET /health/ready` → 200 once the replica may take traffic, 503 while
//!   it loads or drains (asked of the Server)
//! - `POST /cluster/notice` → a peer's signed notice that the shared index
//!   changed (checked by the Server; 401 when unsigned or wrongly signed)
//! - `GET /metrics` → Prometheus text; `GET /` (`/ui`) → the dashboard,
//!   which polls `GET /ui/data`
//!
//! Every error is JSON `{"ok":false,"error":"..."}` with a fitting status.
//!
//! Every answer carries `X-Request-Id` ([`request_id`]) and
//! `X-Content-Type-Options: nosniff`.
//!
//! Browser rules ([`guard`]): a `Host` that is not one of
//! `--allowed-hosts` answers 421 (DNS rebinding), a cross-site request to a
//! route that changes state answers 403 (CSRF), and every `/fn/` answer
//! carries `Content-Security-Policy: sandbox ...`, so a function's page runs
//! in an opaque origin, apart from the dashboard. A function never sees the
//! platform's own tokens. One client address holds at most
//! `--max-connections-per-ip` connections ([`per_ip`]).
//!
//! Modules: [`args`] (flags), [`auth`] (tokens), [`guard`] (Host and
//! Origin), [`per_ip`] (connections per client), [`routes`] (matching,
//! query, body), [`response`] (building answers), [`status`] (outcome →
//! HTTP status), [`request_id`].

pub mod args;
pub mod auth;
pub mod guard;
pub mod per_ip;
pub mod request_id;
pub mod response;
pub mod routes;
pub mod status;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use faas_proto::client::Client;
use faas_proto::{
    ArchiveFormat, Blob, DeploySpec, FunctionSettings, Grants, HttpRequest, Lang, Operation, Reply,
    SecretValue, ServerReply, ServerRequest, ServiceError,
};
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;

pub use args::{GatewayArgs, DEFAULT_MAX_ARCHIVE_BYTES, DEFAULT_MAX_BODY_BYTES};
use guard::{AllowedHosts, HostPattern, HostRefusal};
use response::HttpResponse;
use routes::{Query, Route};

const PART: &str = "GATEWAY";

/// How the gateway reaches the Server and what it accepts.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub server_socket: PathBuf,
    pub max_body_bytes: usize,
    /// Largest project archive a deploy may send (compressed).
    pub max_archive_bytes: usize,
    /// Deadline for reading a request's whole body.
    pub read_timeout: Duration,
    /// Most open client connections.
    pub max_connections: usize,
    /// Most open connections of one client address; 0 counts nothing.
    pub max_connections_per_ip: usize,
    /// `--allowed-hosts`; empty means the default for the bound address
    /// ([`AllowedHosts::for_listener`]).
    pub allowed_hosts: Vec<HostPattern>,
    /// Bearer token of the management routes, if any.
    pub api_token: Option<String>,
    /// Bearer token of invoke and `/fn/`, if any.
    pub invoke_token: Option<String>,
    /// Threads of the gateway's tokio runtime.
    pub threads: usize,
}

type ServerClient = Client<ServerRequest, ServerReply>;

struct State {
    config: GatewayConfig,
    /// The `Host` names answered.
    allowed_hosts: AllowedHosts,
    /// The connection to the Server, re-opened if it breaks.
    server: tokio::sync::Mutex<Option<Arc<ServerClient>>>,
}

impl State {
    async fn server(&self) -> std::io::Result<Arc<ServerClient>> {
        let mut slot = self.server.lock().await;
        if let Some(client) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(client.clone());
        }
        let client = Arc::new(ServerClient::connect(&self.config.server_socket).await?);
        *slot = Some(client.clone());
        Ok(client)
    }
}

/// Serves HTTP on `listener` (a bound std listener) until `shutdown`
/// completes, then lets open requests finish for up to `grace`. Blocks; run
/// it on its own thread.
pub fn run(
    listener: std::net::TcpListener,
    config: GatewayConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.threads.max(1))
        .thread_name("gateway")
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(listener)?;
        serve(listener, config, shutdown, grace).await
    })
}

/// The async body of [`run`].
pub async fn serve(
    listener: TcpListener,
    config: GatewayConfig,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> std::io::Result<()> {
    let (allowed_hosts, warning) =
        AllowedHosts::for_listener(&config.allowed_hosts, listener.local_addr()?);
    match warning {
        Some(warning) => log::warn!(target: PART, "{warning}"),
        None => log::info!(target: PART, "answering Host names {}", allowed_hosts.describe()),
    }
    let state = Arc::new(State {
        config,
        allowed_hosts,
        server: tokio::sync::Mutex::new(None),
    });
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let open = Arc::new(tokio::sync::Semaphore::new(
        state.config.max_connections.max(1),
    ));
    let per_ip = per_ip::PerIp::new(state.config.max_connections_per_ip);
    let refusing = Arc::new(tokio::sync::Semaphore::new(MAX_REFUSALS));
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    // Out of file descriptors and the like: wait, don't spin.
                    log::warn!(target: PART, "accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        // The client's own share first: a client at its limit must not
        // take a global slot from others.
        let Some(ip_permit) = per_ip.try_acquire(peer.ip()) else {
            log::debug!(target: PART, "{peer}: over --max-connections-per-ip");
            refuse(
                &refusing,
                stream,
                "too many open connections from your address (--max-connections-per-ip); retry later",
            );
            continue;
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            refuse(&refusing, stream, "too many open connections; retry later");
            continue;
        };
        let state = state.clone();
        let service = service_fn(move |req| handle(state.clone(), peer, req));
        let conn = http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(Duration::from_secs(30))
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(err) = conn.await {
                log::debug!(target: PART, "connection from {peer}: {err}");
            }
            drop(permit);
            drop(ip_permit);
        });
    }
    drop(listener);
    log::info!(target: PART, "stopped accepting; waiting for open requests");
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        log::warn!(target: PART, "grace period over with requests still open");
    }
    Ok(())
}

/// Connections being refused at once: each holds a descriptor for up to a
/// second, so a flood from one client cannot hold the server's descriptors
/// through its refusals; past this, a connection is closed unanswered.
const MAX_REFUSALS: usize = 64;

/// Refuses a connection over a limit: one 503 when fewer than
/// [`MAX_REFUSALS`] are being refused, else an immediate close.
fn refuse(
    refusing: &Arc<tokio::sync::Semaphore>,
    stream: tokio::net::TcpStream,
    message: &'static str,
) {
    if let Ok(slot) = refusing.clone().try_acquire_owned() {
        tokio::spawn(async move {
            refuse_connection(stream, message).await;
            drop(slot);
        });
    }
}

/// Answers one 503 saying `message` on a connection over
/// `--max-connections` or `--max-connections-per-ip`, then closes it.
async fn refuse_connection(stream: tokio::net::TcpStream, message: &'static str) {
    let service = service_fn(move |_req: Request<Incoming>| async move {
        let error = ServiceError::new(faas_proto::ErrorKind::Overloaded, message);
        let mut resp = response::error(&error);
        response::harden(&mut resp, false);
        Ok::<_, std::convert::Infallible>(resp)
    });
    let conn = http1::Builder::new()
        .keep_alive(false)
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(1))
        .serve_connection(TokioIo::new(stream), service);
    let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
}

async fn handle(
    state: Arc<State>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<HttpResponse, std::convert::Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let request_id = request_id::of(&req);
    // Probes and peer notices come by IP address (a kubelet, another pod),
    // never from a browser's page, and reveal or change nothing without
    // the cluster key: the Host rule (against DNS rebinding) skips them.
    let host_check = match path.as_str() {
        "/health" | "/health/ready" | "/cluster/notice" => Ok(()),
        _ => guard::check_host(&req, &state.allowed_hosts),
    };
    let mut response = match host_check {
        Err(HostRefusal::Missing) => response::error(&ServiceError::bad_request(
            "an HTTP/1.1 request needs a Host header",
        )),
        Err(HostRefusal::NotAllowed(host)) => {
            log::info!(target: PART, "{peer} {method} {path}: Host {host:?} refused");
            response::misdirected(&host)
        }
        Ok(()) => match routes::resolve(&method, &path) {
            Ok(route) => match refuse_cross_site(&route, &req) {
                Some(refusal) => {
                    log::info!(target: PART, "{peer} {method} {path}: {refusal}");
                    response::forbidden(refusal)
                }
                None => answer(&state, route, req, &request_id).await,
            },
            Err(no_route) => no_route.into_response(),
        },
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    // Every answer under /fn/ is a function's (or about one): errors too
    // get the sandbox, so no answer there ever runs in the server's origin.
    response::harden(&mut response, path.starts_with("/fn/") || path == "/fn");
    log::debug!(target: PART, "{peer} {method} {path} -> {} [{request_id}]", response.status());
    Ok(response)
}

/// Why a request for `route` must be refused as cross-site (403), if it must.
///
/// The control plane (deploy, update, delete, `/invoke`, and every future
/// route that is not GET, HEAD or OPTIONS) takes requests only from the
/// server's own pages or from outside a browser: a page elsewhere could
/// otherwise make a visitor's browser deploy, with the visitor's network
/// position (a server bound to loopback is reachable from the operator's
/// browser) and credentials.
///
/// `/fn/` is exempt: a function is a public HTTP endpoint that forms and
/// webhooks on other sites may legitimately POST to. That is safe because a
/// `/fn/` call can only run the function, as any client could, and carries
/// no ambient authority: the platform sets no cookies, and its tokens are
/// `Authorization` headers that a browser never attaches by itself (a
/// cross-site form or `no-cors` fetch cannot set one). The pages `/fn/`
/// serves run sandboxed in an opaque origin (`Origin: null`), so they are
/// refused here like any other site.
fn refuse_cross_site<B>(route: &Route, req: &Request<B>) -> Option<String> {
    if matches!(route, Route::Raw { .. }) || !guard::changes_state(req.method()) {
        return None;
    }
    guard::cross_site(req)
}

/// Answers a request for `route`: locally (health), or by asking the Server.
async fn answer(
    state: &State,
    route: Route,
    req: Request<Incoming>,
    request_id: &str,
) -> HttpResponse {
    let token = match route {
        // The page itself is public; it asks for the token for its data.
        // Probes carry no token; a notice is signed with the cluster key,
        // which the Server checks.
        Route::Health | Route::Ready | Route::ClusterNotice | Route::Dashboard => None,
        // Whoever may call a function may queue a call and read its
        // outcome; dead letters are the operators' (management token).
        Route::Invoke | Route::Raw { .. } | Route::Async { .. } | Route::Call(_) => {
            state.config.invoke_token.as_deref()
        }
        _ => state.config.api_token.as_deref(),
    };
    if let Some(token) = token {
        if !auth::bearer_matches(&req, token) {
            return response::unauthorized();
        }
    }
    let op = match route {
        Route::Health => return response::json(StatusCode::OK, &json!({"ok": true})),
        Route::Dashboard => return response::dashboard(),
        Route::Metrics => Ok(Operation::Metrics),
        Route::Ready => Ok(Operation::Ready),
        Route::ClusterNotice => notice_operation(state, req).await,
        Route::DashboardData => Ok(Operation::Dashboard),
        Route::Update(name) => update_operation(state, req, name).await,
        Route::Delete(name) => Ok(Operation::Delete { name }),
        Route::Versions(name) => Ok(Operation::Versions { name }),
        Route::Invocations(name) => invocations_operation(&req, name),
        Route::Files(name) => Ok(Operation::ListFiles { name }),
        Route::Deploy => deploy_operation(state, req).await,
        Route::Invoke => invoke_operation(state, req, request_id).await,
        Route::Raw { name, rest } => {
            return match raw_operation(state, req, name, rest, request_id).await {
                Ok(op) => response::raw(ask_server(state, op).await),
                Err(err) => response::error(&err),
            }
        }
        Route::Async { name, rest } => async_operation(state, req, name, rest, request_id).await,
        Route::Call(id) => Ok(Operation::GetCall { id }),
        Route::DeadLetters => Ok(Operation::DeadLetters {
            function: Query::of(&req).get("function").map(str::to_string),
        }),
        Route::Redrive(id) => Ok(Operation::Redrive { id }),
        Route::ForgetDeadLetter(id) => Ok(Operation::ForgetDeadLetter { id }),
        Route::Schedules => Ok(Operation::Schedules),
        Route::Functions => Ok(Operation::List),
        Route::Stats => Ok(Operation::Stats),
        Route::Source(name) if name.is_empty() => {
            Err(ServiceError::bad_request("GET /function/NAME needs a name"))
        }
        Route::Source(name) => Ok(Operation::GetSource { name }),
        Route::Secrets => Ok(Operation::ListSecrets),
        Route::PutSecret(name) => put_secret_operation(state, req, name).await,
        Route::DeleteSecret(name) => Ok(Operation::DeleteSecret { name }),
    };
    match op {
        Ok(op) => response::from_reply(ask_server(state, op).await, request_id),
        Err(err) => response::error(&err),
    }
}

/// The repeated `env=KEY=VALUE` parameters (the Server checks the keys
/// and sizes); a key given twice is refused rather than one value lost.
fn variables(query: &Query) -> Result<std::collections::BTreeMap<String, String>, ServiceError> {
    let mut env = std::collections::BTreeMap::new();
    for pair in query.all("env") {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(ServiceError::bad_request(format!(
                "env must be KEY=VALUE, got '{}'",
                pair.chars().take(64).collect::<String>()
            )));
        };
        if env.insert(key.to_string(), value.to_string()).is_some() {
            return Err(ServiceError::bad_request(format!(
                "env: '{}' is given twice",
                key.chars().take(64).collect::<String>()
            )));
        }
    }
    Ok(env)
}

/// Largest secret value (`PUT /secret/NAME`); more answers 413.
pub const MAX_SECRET_BYTES: usize = 64 * 1024;

/// `PUT /secret/NAME`: the body, any bytes, is the value.
async fn put_secret_operation(
    state: &State,
    req: Request<Incoming>,
    name: String,
) -> Result<Operation, ServiceError> {
    let limits = routes::BodyLimits {
        max_bytes: MAX_SECRET_BYTES,
        ..body_limits(state)
    };
    let value = routes::body(req, limits, "secret value").await?;
    Ok(Operation::PutSecret {
        name,
        value: SecretValue(value.to_vec().into()),
    })
}

/// A peer's notice: at most 4 KiB of body, with its signature header.
async fn notice_operation(
    state: &State,
    req: Request<Incoming>,
) -> Result<Operation, ServiceError> {
    let signature = req
        .headers()
        .get("x-faas-signature")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let limits = routes::BodyLimits {
        max_bytes: 4096,
        ..body_limits(state)
    };
    let body = routes::text_body(req, limits, "cluster notice").await?;
    Ok(Operation::ClusterNotice { body, signature })
}

async fn deploy_operation(
    state: &State,
    req: Request<Incoming>,
) -> Result<Operation, ServiceError> {
    let query = Query::of(&req);
    let Some(name) = query.get("name").map(str::to_string) else {
        return Err(ServiceError::bad_request(
            "POST /deploy needs ?name=NAME&lang=LANG and the source as body",
        ));
    };
    Ok(Operation::Deploy(
        deploy_spec(state, req, name, "POST /deploy").await?,
    ))
}

async fn update_operation(
    state: &State,
    req: Request<Incoming>,
    name: String,
) -> Result<Operation, ServiceError> {
    Ok(Operation::Update(
        deploy_spec(state, req, name, "PUT /function/NAME").await?,
    ))
}

/// A deploy's or an update's source and settings (`?lang=` and the limits).
async fn deploy_spec(
    state: &State,
    req: Request<Incoming>,
    name: String,
    route: &str,
) -> Result<DeploySpec, ServiceError> {
    let query = Query::of(&req);
    let Some(lang) = query.lang()? else {
        return Err(ServiceError::bad_request(format!(
            "{route} needs ?lang=LANG and the source as body"
        )));
    };
    check_runtime(lang, query.get("runtime"))?;
    // An archive by its Content-Type; any other type keeps the one-file
    // deploy (curl's default form type included).
    let archive = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(ArchiveFormat::from_content_type);
    let entry = query.get("entry").map(str::to_string);
    if entry.is_some() && archive.is_none() {
        return Err(ServiceError::bad_request(
            "entry= names a file of a project archive: send the archive with Content-Type: application/gzip (.tar.gz) or application/zip",
        ));
    }
    if archive.is_some() && lang == Lang::Wasm {
        return Err(ServiceError::bad_request(
            "lang=wasm takes one module as the body (Content-Type: application/wasm), not an archive",
        ));
    }
    let spec = DeploySpec {
        name,
        lang,
        code: Blob::default(),
        settings: FunctionSettings {
            timeout_ms: query.number("timeout_ms")?,
            max_memory_mb: query.number("max_memory_mb")?,
            max_tmp_mb: query.number("max_tmp_mb")?,
            content_type: query.get("content_type").map(str::to_string),
            pass_auth: matches!(query.get("pass_auth"), Some("1" | "true")),
            max_concurrency: query
                .number("max_concurrency")?
                .map(|n| n.min(u64::from(u32::MAX)) as u32),
            env: variables(&query)?,
            secrets: query.all("secret").map(str::to_string).collect(),
            allow: Grants::parse(&query.all("allow").collect::<Vec<_>>())
                .map_err(ServiceError::bad_request)?,
            retries: query
                .number("retries")?
                .map(|n| n.min(u64::from(u32::MAX)) as u32),
            retry_backoff_ms: query.number("retry_backoff_ms")?,
            max_age_s: query.number("max_age_s")?,
            archive,
            entry,
            schedule: query.get("schedule").map(str::to_string),
            schedule_payload: query.get("schedule_payload").map(str::to_string),
        },
    };
    let code: Blob = match archive {
        Some(_) => {
            let limits = routes::BodyLimits {
                max_bytes: state.config.max_archive_bytes,
                ..body_limits(state)
            };
            routes::body(req, limits, "project archive (--max-archive-bytes)")
                .await?
                .to_vec()
                .into()
        }
        None if lang == Lang::Wasm => routes::body(req, body_limits(state), "module")
            .await?
            .to_vec()
            .into(),
        None => routes::text_body(req, body_limits(state), "source code")
            .await?
            .into(),
    };
    log::info!(target: PART, "deploy name={} lang={lang} ({} bytes{})", spec.name, code.len(),
        archive.map_or(String::new(), |a| format!(", {}", a.content_type())));
    Ok(DeploySpec { code, ..spec })
}

/// `?runtime=NAME`: the interpreter a function asks for. Python has one,
/// CPython 3.15 with numpy, pandas and scipy compiled in: it answers to
/// `python` and to `python-scientific` (the name a numpy-capable Python
/// runtime goes by), so either choice gets the same interpreter, and a
/// deploy never silently gets something other than what it named. Every
/// other language has one runtime, named like the language.
fn check_runtime(lang: Lang, runtime: Option<&str>) -> Result<(), ServiceError> {
    let Some(runtime) = runtime else {
        return Ok(());
    };
    let known: &[&str] = match lang {
        Lang::Python => &["python", "python-scientific"],
        other => &[other.name()],
    };
    if known.contains(&runtime) {
        return Ok(());
    }
    Err(ServiceError::bad_request(format!(
        "runtime={runtime:?} is not a {} runtime (known: {})",
        lang.name(),
        known.join(", ")
    )))
}

/// `?limit=N`: 20 by default, at most 1000.
fn invocations_operation(req: &Request<Incoming>, name: String) -> Result<Operation, ServiceError> {
    let limit = Query::of(req).number("limit")?.unwrap_or(20);
    if !(1..=1000).contains(&limit) {
        return Err(ServiceError::bad_request(
            "limit must be between 1 and 1000",
        ));
    }
    Ok(Operation::Invocations {
        name,
        limit: limit as usize,
    })
}

async fn invoke_operation(
    state: &State,
    req: Request<Incoming>,
    request_id: &str,
) -> Result<Operation, ServiceError> {
    let Some(function) = Query::of(&req).get("fn").map(str::to_string) else {
        return Err(ServiceError::bad_request(
            "POST /invoke needs ?fn=ID (or a function name); the body is its stdin",
        ));
    };
    // Any bytes are a payload.
    let payload = routes::body(req, body_limits(state), "payload").await?;
    Ok(Operation::Invoke {
        function,
        payload: payload.to_vec().into(),
        request_id: Some(request_id.to_string()),
        http: None,
        sent_us: Some(now_us()),
    })
}

/// Unix time in microseconds (the Server times the gateway → Server hop).
fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Most headers passed on to a raw-route function (the Server also bounds
/// their total size).
const MAX_HEADERS: usize = 64;

/// `ANY /fn/NAME[/REST]`: the body is the function's stdin and the request
/// itself reaches it as `FAAS_HTTP_*` variables.
async fn raw_operation(
    state: &State,
    req: Request<Incoming>,
    name: String,
    rest: String,
    request_id: &str,
) -> Result<Operation, ServiceError> {
    let (http, payload) = named_request(state, req, &name, rest, ("ANY /fn/NAME", "body")).await?;
    Ok(Operation::Invoke {
        function: name,
        payload: payload.to_vec().into(),
        request_id: Some(request_id.to_string()),
        http: Some(http),
        sent_us: Some(now_us()),
    })
}

/// What `/fn/NAME[/REST]` and `/async/NAME[/REST]` hand a function: the
/// request it sees as `FAAS_HTTP_*` variables and its body as stdin
/// (`route` names the route in the error for a missing name, `what` the
/// body in errors about it).
async fn named_request(
    state: &State,
    req: Request<Incoming>,
    name: &str,
    rest: String,
    (route, what): (&str, &str),
) -> Result<(HttpRequest, hyper::body::Bytes), ServiceError> {
    if name.is_empty() {
        return Err(ServiceError::not_found(format!(
            "{route} needs a function name"
        )));
    }
    let http = http_request(state, &req, rest);
    let payload = routes::body(req, body_limits(state), what).await?;
    Ok((http, payload))
}

/// `POST /async/NAME[/REST]`: queued with the same request variables as
/// `/fn/NAME[/REST]`.
async fn async_operation(
    state: &State,
    req: Request<Incoming>,
    name: String,
    rest: String,
    request_id: &str,
) -> Result<Operation, ServiceError> {
    let callback_url = callback_url(req.headers())?;
    let (http, payload) =
        named_request(state, req, &name, rest, ("POST /async/NAME", "payload")).await?;
    Ok(Operation::AsyncInvoke {
        function: name,
        payload: payload.to_vec().into(),
        request_id: Some(request_id.to_string()),
        http: Some(http),
        callback_url,
    })
}

/// Longest `X-Callback-Url` taken (browsers' practical URL limit).
const MAX_CALLBACK_URL: usize = 2048;

/// The `X-Callback-Url` header, once: visible ASCII (a URL, not arbitrary
/// bytes to echo into logs), at most [`MAX_CALLBACK_URL`] bytes. Whether it
/// is a URL the function may call back is the Server's check.
fn callback_url(headers: &hyper::HeaderMap) -> Result<Option<String>, ServiceError> {
    let mut values = headers.get_all("x-callback-url").iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ServiceError::bad_request(
            "X-Callback-Url is given more than once (give one URL)",
        ));
    }
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_CALLBACK_URL {
        return Err(ServiceError::bad_request(format!(
            "X-Callback-Url must be a URL of 1 to {MAX_CALLBACK_URL} characters"
        )));
    }
    if !bytes.iter().all(|b| b.is_ascii_graphic()) {
        return Err(ServiceError::bad_request(
            "X-Callback-Url must be a URL in printable ASCII, without spaces (percent-encode the rest)",
        ));
    }
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

/// The request a function sees as `FAAS_HTTP_*` variables (`rest`: the
/// path after its name).
fn http_request<B>(state: &State, req: &Request<B>, rest: String) -> HttpRequest {
    // The platform's own tokens stay here, whatever the function's
    // pass_auth says: a header carrying one (the invoke token in
    // `Authorization`, say) is withheld; another token passes as before.
    let tokens: Vec<&str> = [&state.config.api_token, &state.config.invoke_token]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    let headers = req
        .headers()
        .iter()
        .filter(|(_, v)| !auth::carries_token(v.as_bytes(), &tokens))
        .take(MAX_HEADERS)
        .map(|(k, v)| {
            let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
            (k.as_str().to_string(), value)
        })
        .collect();
    HttpRequest {
        method: req.method().to_string(),
        path: rest,
        query: req.uri().query().unwrap_or_default().to_string(),
        headers,
    }
}

fn body_limits(state: &State) -> routes::BodyLimits {
    routes::BodyLimits {
        max_bytes: state.config.max_body_bytes,
        timeout: state.config.read_timeout,
    }
}

/// Sends one operation to the Server and waits for its reply.
async fn ask_server(state: &State, op: Operation) -> Reply {
    let unavailable = || Reply::Failed {
        error: ServiceError::unavailable("server unavailable"),
    };
    let client = match state.server().await {
        Ok(client) => client,
        Err(err) => {
            log::error!(target: PART, "cannot reach the server socket: {err}");
            return unavailable();
        }
    };
    match client.call(|req| ServerRequest { req, op }).await {
        Ok(reply) => reply.reply,
        Err(_) => {
            log::error!(target: PART, "the server closed the connection");
            unavailable()
        }
    }
}
