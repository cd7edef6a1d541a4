//! THROWAWAY stand-in for `faas_outbound` (crate `crates/outbound`, written
//! on another branch), with its API, so the channel can be built and tried
//! before it lands: plain `http://` over one connection, grants checked by
//! name, nothing else of the policy. Deleted when `outbound-client` is
//! merged.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Instant;

pub struct Config {
    pub max_response_bytes: u64,
    pub extra_ca_file: Option<PathBuf>,
    pub protected_ports: Vec<u16>,
}

#[derive(Clone)]
pub struct Client {
    max: u64,
    protected: Vec<u16>,
}

pub struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

pub struct Response {
    pub status: u16,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Debug)]
pub enum FetchError {
    Denied(String),
    Timeout,
    TooLarge { limit: u64 },
    Invalid(String),
    Failed(String),
}

impl FetchError {
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Denied(_) => "denied",
            Self::Timeout => "timeout",
            _ => "error",
        }
    }
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Denied(m) | Self::Invalid(m) | Self::Failed(m) => write!(f, "{m}"),
            Self::Timeout => write!(f, "timed out"),
            Self::TooLarge { limit } => write!(f, "response over {limit} bytes"),
        }
    }
}

impl Client {
    pub fn new(config: Config) -> Result<Client, String> {
        Ok(Client {
            max: config.max_response_bytes,
            protected: config.protected_ports,
        })
    }

    pub fn fetch(
        &self,
        grants: &faas_proto::Grants,
        req: Request,
        deadline: Instant,
    ) -> Result<Response, FetchError> {
        let rest = req
            .url
            .strip_prefix("http://")
            .ok_or_else(|| FetchError::Invalid("stub: http only".into()))?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (host, port) = authority.split_once(':').unwrap_or((authority, "80"));
        let port: u16 = port.parse().map_err(|_| FetchError::Invalid("port".into()))?;
        if !grants.permits(host, port) || self.protected.contains(&port) {
            return Err(FetchError::Denied(format!("{host}:{port} is not granted")));
        }
        let mut s = TcpStream::connect((host, port)).map_err(|e| FetchError::Failed(e.to_string()))?;
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(FetchError::Timeout);
        }
        s.set_read_timeout(Some(left)).ok();
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: {}\r\n",
            req.method,
            if path.is_empty() { "/" } else { path },
            req.body.len()
        );
        for (k, v) in &req.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).map_err(|e| FetchError::Failed(e.to_string()))?;
        s.write_all(&req.body).map_err(|e| FetchError::Failed(e.to_string()))?;
        let mut raw = Vec::new();
        match (&mut s).take(self.max + 65536).read_to_end(&mut raw) {
            Ok(_) => {}
            Err(e) if Instant::now() >= deadline => return Err(FetchError::Timeout.tap(e)),
            Err(e) => return Err(FetchError::Failed(e.to_string())),
        }
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| FetchError::Failed("no head".into()))?;
        let text = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut lines = text.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| FetchError::Failed("status".into()))?;
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let body = raw[split + 4..].to_vec();
        if body.len() as u64 > self.max {
            return Err(FetchError::TooLarge { limit: self.max });
        }
        Ok(Response {
            status,
            url: req.url,
            headers,
            body,
        })
    }
}

trait Tap {
    fn tap(self, e: std::io::Error) -> Self;
}
impl Tap for FetchError {
    fn tap(self, _: std::io::Error) -> Self {
        self
    }
}
