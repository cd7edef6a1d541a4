//! The HTTP API gateway: a thread of `faas-server` that speaks HTTP/1.1
//! (hyper + tokio) and only routes. Each request becomes one
//! [`ServerRequest`] on a persistent, multiplexed connection to the Server's
//! UNIX socket; the Server's [`ServerReply`] carries the status and body.
//!
//! Routes (the seed's three first):
//! - `POST /deploy?name=N&lang=L[&timeout_ms=T&max_memory_mb=M]`, body = source
//! - `POST /invoke?fn=ID_OR_NAME`, body = the function's stdin
//! - `GET /function/NAME` → the stored source, as text
//! - `GET /functions` → every deployed function's metadata
//! - `GET /stats` → load-balancer counters
//! - `GET /health` → `{"ok":true}` (answered here, for probes)
//!
//! Every error is JSON `{"ok":false,"error":"..."}` with a fitting status.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use faas_proto::client::Client;
use faas_proto::{ServerReply, ServerRequest};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;

const PART: &str = "GATEWAY";

/// Largest request body accepted by default (a function's source or payload).
pub const DEFAULT_MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// How the gateway reaches the Server and what it accepts.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub server_socket: PathBuf,
    pub max_body_bytes: usize,
    /// Threads of the gateway's tokio runtime.
    pub threads: usize,
}

type ServerClient = Client<ServerRequest, ServerReply>;

struct State {
    config: GatewayConfig,
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
    let state = Arc::new(State {
        config,
        server: tokio::sync::Mutex::new(None),
    });
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
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

type HttpResponse = Response<Full<Bytes>>;

/// A request the gateway answers itself with a JSON error.
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    fn into_response(self) -> HttpResponse {
        error(self.status, self.message)
    }
}

async fn handle(
    state: Arc<State>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<HttpResponse, std::convert::Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let response = route(&state, req).await;
    log::debug!(target: PART, "{peer} {method} {path} -> {}", response.status());
    Ok(response)
}

async fn route(state: &State, req: Request<Incoming>) -> HttpResponse {
    let query: Vec<(String, String)> = req
        .uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let path = req.uri().path().to_string();
    let method = req.method().clone();

    let request = match (method.clone(), path.as_str()) {
        (Method::POST, "/deploy") => {
            let (Some(name), Some(lang)) = (param("name"), param("lang")) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "POST /deploy needs ?name=NAME&lang=LANG and the source as body",
                );
            };
            let limits = number_param(param("timeout_ms"), "timeout_ms").and_then(|t| {
                number_param(param("max_memory_mb"), "max_memory_mb").map(|m| (t, m))
            });
            let (timeout_ms, max_memory_mb) = match limits {
                Ok(limits) => limits,
                Err(err) => return err.into_response(),
            };
            let code = match read_text_body(state, req, "source code").await {
                Ok(code) => code,
                Err(err) => return err.into_response(),
            };
            log::info!(target: PART, "deploy name={name} lang={lang} ({} bytes)", code.len());
            ServerRequest::Deploy {
                req: 0,
                name,
                lang,
                code,
                timeout_ms,
                max_memory_mb,
            }
        }
        (Method::POST, "/invoke") => {
            let Some(function) = param("fn") else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "POST /invoke needs ?fn=ID (or a function name); the body is its stdin",
                );
            };
            let payload = match read_text_body(state, req, "payload").await {
                Ok(payload) => payload,
                Err(err) => return err.into_response(),
            };
            ServerRequest::Invoke {
                req: 0,
                function,
                payload,
            }
        }
        (Method::GET, "/health") => return json_response(StatusCode::OK, &json!({"ok": true})),
        (Method::GET, "/functions") => ServerRequest::List { req: 0 },
        (Method::GET, "/stats") => ServerRequest::Stats { req: 0 },
        (Method::GET, p) if p.starts_with("/function/") => {
            let name = percent_decode(&p["/function/".len()..]);
            if name.is_empty() {
                return error(StatusCode::BAD_REQUEST, "GET /function/NAME needs a name");
            }
            ServerRequest::GetSource { req: 0, name }
        }
        (_, "/deploy" | "/invoke") => {
            return method_not_allowed("POST");
        }
        (_, "/health" | "/functions" | "/stats") => return method_not_allowed("GET"),
        (_, p) if p.starts_with("/function/") => return method_not_allowed("GET"),
        (m, p) => {
            return error(StatusCode::NOT_FOUND, format!("no route for {m} {p}"));
        }
    };
    forward(state, request).await
}

/// Sends one request to the Server and turns its reply into HTTP.
async fn forward(state: &State, mut request: ServerRequest) -> HttpResponse {
    let reply = match state.server().await {
        Ok(client) => {
            client
                .call(|id| {
                    request.set_req_id(id);
                    request
                })
                .await
        }
        Err(err) => {
            log::error!(target: PART, "cannot reach the server socket: {err}");
            return error(StatusCode::SERVICE_UNAVAILABLE, "server unavailable");
        }
    };
    let reply = match reply {
        Ok(reply) => reply,
        Err(_) => {
            log::error!(target: PART, "the server closed the connection");
            return error(StatusCode::SERVICE_UNAVAILABLE, "server unavailable");
        }
    };
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if reply.text {
        let text = reply.body.as_str().unwrap_or_default().to_string();
        let mut resp = Response::new(Full::new(Bytes::from(text)));
        *resp.status_mut() = status;
        resp.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        return resp;
    }
    json_response(status, &reply.body)
}

async fn read_text_body(
    state: &State,
    req: Request<Incoming>,
    what: &str,
) -> Result<String, ApiError> {
    let limit = state.config.max_body_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{what} larger than the {limit}-byte limit"),
        )
    };
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let bytes = match Limited::new(req.into_body(), limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => return Err(too_large()),
        Err(err) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("could not read the request body: {err}"),
            ))
        }
    };
    String::from_utf8(bytes.to_vec()).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("{what} must be UTF-8 text"),
        )
    })
}

fn number_param(value: Option<String>, name: &str) -> Result<Option<u64>, ApiError> {
    value
        .map(|v| {
            v.parse::<u64>().map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("{name} must be a whole number, got '{v}'"),
                )
            })
        })
        .transpose()
}

fn percent_decode(s: &str) -> String {
    // form_urlencoded also turns '+' into ' ', which a path must not do.
    let escaped = s.replace('+', "%2B");
    form_urlencoded::parse(format!("x={escaped}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> HttpResponse {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        resp.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp
}

fn error(status: StatusCode, message: impl Into<String>) -> HttpResponse {
    json_response(status, &json!({"ok": false, "error": message.into()}))
}

fn method_not_allowed(allow: &'static str) -> HttpResponse {
    let mut resp = error(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method not allowed here; use {allow}"),
    );
    resp.headers_mut()
        .insert(hyper::header::ALLOW, HeaderValue::from_static(allow));
    resp
}
