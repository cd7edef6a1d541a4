//! Real servers on 127.0.0.1 free ports, each on its own runtime, and the
//! helpers the tests share.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use faas_outbound::{Client, Config, FetchError, Grants, Request, Response};
use futures_util::stream;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn client() -> Client {
    Client::new(Config::default()).unwrap()
}

pub fn client_with(config: Config) -> Client {
    Client::new(config).unwrap()
}

pub fn grants(entries: &[&str]) -> Grants {
    Grants::parse(entries).unwrap()
}

/// A deadline no test should reach.
pub fn later() -> Instant {
    Instant::now() + Duration::from_secs(20)
}

pub fn get(client: &Client, grants: &Grants, url: &str) -> Result<Response, FetchError> {
    client.fetch(grants, Request::get(url), later())
}

/// The echo route's answer, parsed.
pub fn echoed(resp: &Response) -> serde_json::Value {
    assert_eq!(resp.status, 200, "{resp:?}");
    serde_json::from_slice(&resp.body).unwrap()
}

/// The values of header `name` the echo route received.
pub fn echoed_header(echo: &serde_json::Value, name: &str) -> Vec<String> {
    echo["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h[0].as_str().unwrap().eq_ignore_ascii_case(name))
        .map(|h| h[1].as_str().unwrap().to_string())
        .collect()
}

pub struct Server {
    pub addr: SocketAddr,
    /// Requests received.
    pub hits: Arc<AtomicUsize>,
    /// Connections accepted.
    pub conns: Arc<AtomicUsize>,
    /// TLS handshakes that resumed an earlier session.
    pub resumed: Arc<AtomicUsize>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Server {
    fn drop(&mut self) {
        // Tests drop servers inside runtimes too.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Server {
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn https_url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    /// The grant of exactly this server's address and port.
    pub fn grant(&self) -> String {
        self.addr.to_string()
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    pub fn conns(&self) -> usize {
        self.conns.load(Ordering::SeqCst)
    }

    pub fn resumed(&self) -> usize {
        self.resumed.load(Ordering::SeqCst)
    }

    fn start(kind: Kind) -> Server {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        // Bound here, not by `block_on`: tests start servers inside runtimes.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&hits);
        let conns = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::clone(&conns);
        let resumed = Arc::new(AtomicUsize::new(0));
        let resumptions = Arc::clone(&resumed);
        runtime.spawn(async move {
            let listener = TcpListener::from_std(listener).unwrap();
            let tls = match kind {
                Kind::Https => Some(tls_acceptor()),
                _ => None,
            };
            let mut held = Vec::new();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                accepted.fetch_add(1, Ordering::SeqCst);
                if matches!(kind, Kind::Hanging) {
                    held.push(tcp);
                    continue;
                }
                let counted = Arc::clone(&counted);
                let resumptions = Arc::clone(&resumptions);
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        counted.fetch_add(1, Ordering::SeqCst);
                        handle(req)
                    });
                    match tls {
                        None => {
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(tcp), service)
                                .await;
                        }
                        Some(acceptor) => {
                            let Ok(stream) = acceptor.accept(tcp).await else {
                                return;
                            };
                            if stream.get_ref().1.handshake_kind()
                                == Some(rustls::HandshakeKind::Resumed)
                            {
                                resumptions.fetch_add(1, Ordering::SeqCst);
                            }
                            let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                            let io = TokioIo::new(stream);
                            if h2 {
                                let _ =
                                    hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                                        .serve_connection(io, service)
                                        .await;
                            } else {
                                let _ = hyper::server::conn::http1::Builder::new()
                                    .serve_connection(io, service)
                                    .await;
                            }
                        }
                    }
                });
            }
        });
        Server {
            addr,
            hits,
            conns,
            resumed,
            runtime: Some(runtime),
        }
    }

    /// Plain HTTP/1.1 with the routes of [`handle`].
    pub fn http() -> Server {
        Self::start(Kind::Http)
    }

    /// HTTPS (HTTP/2 or HTTP/1.1 by ALPN) with the fixtures' certificate,
    /// signed by the fixtures' CA. It offers resumption (rustls' defaults:
    /// a session cache, TLS 1.3 tickets) and counts the handshakes that
    /// resumed.
    pub fn https() -> Server {
        Self::start(Kind::Https)
    }

    /// Accepts connections and never answers.
    pub fn hanging() -> Server {
        Self::start(Kind::Hanging)
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Http,
    Https,
    Hanging,
}

fn tls_acceptor() -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(fixture("server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(fixture("server.key")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

type Body = BoxBody<Bytes, Infallible>;

fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into()).boxed()
}

fn answer(status: u16, headers: &[(&str, &str)], body: Body) -> hyper::Response<Body> {
    let mut builder = hyper::Response::builder().status(status);
    for (n, v) in headers {
        builder = builder.header(*n, *v);
    }
    builder.body(body).unwrap()
}

/// Routes:
/// - `/echo...`: 200, JSON of the request (method, path with query,
///   version, authority, headers, body), header `x-echo: yes`;
/// - `/redirect/N`: 302 to `/redirect/N-1`; `/redirect/0` answers "done";
/// - `/to?status=S&location=L`: status S (302 by default) with `Location: L`;
/// - `/bytes/N`: N bytes with a Content-Length;
/// - `/stream/N`: N bytes in 16 KiB chunks, without Content-Length;
/// - `/stall`: headers and one chunk, then nothing.
async fn handle(req: hyper::Request<Incoming>) -> Result<hyper::Response<Body>, Infallible> {
    let path = req.uri().path().to_string();
    let query: Vec<(String, String)> = req
        .uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let param = |name: &str| {
        query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let tail = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|n| n.parse::<usize>().ok())
    };
    if path.starts_with("/echo") {
        let method = req.method().to_string();
        let version = format!("{:?}", req.version());
        let target = req.uri().path_and_query().map(|p| p.to_string());
        let authority = req.uri().authority().map(|a| a.to_string());
        let headers: Vec<(String, String)> = req
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
            .collect();
        let body = req.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::json!({
            "method": method,
            "path": target,
            "version": version,
            "authority": authority,
            "headers": headers,
            "body": String::from_utf8_lossy(&body),
        });
        return Ok(answer(
            200,
            &[("x-echo", "yes"), ("content-type", "application/json")],
            full(json.to_string()),
        ));
    }
    if let Some(n) = tail("/redirect/") {
        return Ok(match n {
            0 => answer(200, &[], full("done")),
            n => answer(
                302,
                &[("location", &format!("/redirect/{}", n - 1))],
                full(""),
            ),
        });
    }
    if path == "/to" {
        let status = param("status").map_or(302, |s| s.parse().unwrap());
        let location = param("location").unwrap_or_default();
        return Ok(answer(status, &[("location", &location)], full("")));
    }
    if let Some(n) = tail("/bytes/") {
        return Ok(answer(200, &[], full(vec![b'x'; n])));
    }
    if let Some(n) = tail("/stream/") {
        let chunks: Vec<Result<Frame<Bytes>, Infallible>> = (0..n)
            .step_by(16 * 1024)
            .map(|start| {
                Ok(Frame::data(Bytes::from(vec![
                    b'x';
                    (n - start).min(16 * 1024)
                ])))
            })
            .collect();
        return Ok(answer(
            200,
            &[],
            StreamBody::new(stream::iter(chunks)).boxed(),
        ));
    }
    if path == "/stall" {
        let first = stream::iter([Ok::<_, Infallible>(Frame::data(Bytes::from("x")))]);
        let body = StreamBody::new(futures_util::StreamExt::chain(first, stream::pending()));
        return Ok(answer(200, &[], body.boxed()));
    }
    Ok(answer(404, &[], full("no such route")))
}

/// `/to`'s URL for a redirect with `status` to `location`.
pub fn redirect_path(status: u16, location: &str) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("status", &status.to_string())
        .append_pair("location", location)
        .finish();
    format!("/to?{query}")
}
