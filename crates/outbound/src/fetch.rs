//! One call on the client's runtime: check the hop, resolve (bounded:
//! [`crate::resolve`]) and check its addresses, send with the connection pinned to them, follow a redirect
//! (back to the checks) or read the capped body. The caller bounds the
//! whole of it by the deadline.

use std::net::SocketAddr;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{self, HeaderMap};
use reqwest::{Method, StatusCode, Url};

use crate::error::{FetchError, Result};
use crate::policy::{self, redact, Target};
use crate::resolve;
use crate::{Grants, Request, Response, Shared, MAX_REDIRECTS, USER_AGENT};

/// Runs `req` for `caller` (whose name lookups are counted together; see
/// [`crate::resolve`]).
pub(crate) async fn run(
    shared: &Shared,
    caller: &str,
    grants: &Grants,
    req: Request,
) -> Result<Response> {
    let limit = shared.config.max_response_bytes;
    let mut method = policy::check_method(&req.method)?;
    let mut url = Url::parse(&req.url)
        .map_err(|e| FetchError::Invalid(format!("the URL cannot be parsed: {e}")))?;
    if req.body.len() as u64 > limit {
        return Err(FetchError::Invalid(format!(
            "the request body has {} bytes, more than the {limit} allowed",
            req.body.len()
        )));
    }
    // Checked against the first URL only: redirects never add a Host.
    policy::check_url(grants, &url)?;
    let mut headers = policy::check_headers(&req.headers, &url, req.body.len())?;
    let mut body = req.body;
    let mut redirects = 0;
    loop {
        let target = policy::check_url(grants, &url)?;
        let addrs = resolve::resolve(&shared.lookups, caller, &target).await?;
        policy::check_addresses(
            grants,
            &target,
            &addrs,
            &shared.config.protected_ports,
            &shared.local.get(),
        )?;
        let resp = send(shared, &target, addrs, &method, &url, &headers, &body).await?;
        let status = resp.status();
        let Some(next) = redirect_target(&resp, &url)? else {
            return read(resp, url, limit).await;
        };
        // Not read: dropping the answer closes its connection.
        drop(resp);
        if redirects == MAX_REDIRECTS {
            return Err(FetchError::Failed(format!(
                "too many redirects (more than {MAX_REDIRECTS}), the last from {}",
                redact(&url)
            )));
        }
        redirects += 1;
        let to_get = (status == StatusCode::SEE_OTHER && method != Method::HEAD)
            || (matches!(status, StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND)
                && method == Method::POST);
        if to_get {
            method = Method::GET;
            body = Vec::new();
            for name in [
                header::CONTENT_TYPE,
                header::CONTENT_ENCODING,
                header::CONTENT_LANGUAGE,
                header::CONTENT_LOCATION,
            ] {
                headers.remove(name);
            }
        }
        if next.origin() != url.origin() {
            for name in [
                header::AUTHORIZATION,
                header::COOKIE,
                header::PROXY_AUTHORIZATION,
            ] {
                headers.remove(name);
            }
        }
        log::debug!("outbound: {status} redirect to {}", redact(&next));
        url = next;
    }
}

/// reqwest's resolver for one hop: the addresses we checked, for the one
/// name we checked, and an error for anything else (never the system's
/// resolver).
struct Pinned {
    host: String,
    addrs: Vec<SocketAddr>,
}

impl Resolve for Pinned {
    fn resolve(&self, name: Name) -> Resolving {
        let answer = if name.as_str().eq_ignore_ascii_case(&self.host) {
            Ok(Box::new(self.addrs.clone().into_iter()) as Addrs)
        } else {
            Err(format!("{} was not checked by the outbound policy", name.as_str()).into())
        };
        Box::pin(std::future::ready(answer))
    }
}

async fn send(
    shared: &Shared,
    target: &Target,
    addrs: Vec<SocketAddr>,
    method: &Method,
    url: &Url,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<reqwest::Response> {
    // A client per hop: nothing (connection, resolution) outlives it.
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(shared.tls.clone())
        .dns_resolver(Arc::new(Pinned {
            host: target.host.clone(),
            addrs,
        }))
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .retry(reqwest::retry::never())
        .pool_max_idle_per_host(0)
        .referer(false)
        // The function gets the body as the server sent it, whatever
        // features another crate turns on in reqwest.
        .no_gzip()
        .no_brotli()
        .no_deflate()
        .no_zstd()
        .user_agent(USER_AGENT)
        .build()
        .map_err(|e| FetchError::Failed(format!("cannot set up the request: {}", chain(&e))))?;
    let mut request = client
        .request(method.clone(), url.clone())
        .headers(headers.clone());
    if !body.is_empty() {
        request = request.body(body.to_vec());
    } else if [Method::POST, Method::PUT, Method::PATCH].contains(method) {
        // hyper sends no length for an empty body; servers may answer 411
        // to a POST without one.
        request = request.header(header::CONTENT_LENGTH, "0");
    }
    request.send().await.map_err(|e| failed(url, e))
}

/// Where a redirect answer points, if it is one we follow.
fn redirect_target(resp: &reqwest::Response, url: &Url) -> Result<Option<Url>> {
    if !matches!(resp.status().as_u16(), 301 | 302 | 303 | 307 | 308) {
        return Ok(None);
    }
    let Some(location) = resp.headers().get(header::LOCATION) else {
        // Nothing to follow: the function gets the answer as it is.
        return Ok(None);
    };
    let bad = || FetchError::Failed(format!("{} redirected to an invalid Location", redact(url)));
    let location = location.to_str().map_err(|_| bad())?;
    url.join(location).map(Some).map_err(|_| bad())
}

async fn read(mut resp: reqwest::Response, url: Url, limit: u64) -> Result<Response> {
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(FetchError::TooLarge { limit });
    }
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| failed(&url, e))? {
        if body.len() as u64 + chunk.len() as u64 > limit {
            return Err(FetchError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Response {
        status,
        url: url.to_string(),
        headers,
        body,
    })
}

/// A transport error, naming the URL (redacted) and, for a certificate or
/// handshake failure, TLS.
fn failed(url: &Url, err: reqwest::Error) -> FetchError {
    let err = err.without_url();
    let tls = is_tls(&err);
    let why = chain(&err);
    FetchError::Failed(if tls {
        format!("{}: TLS: {why}", redact(url))
    } else {
        format!("{}: {why}", redact(url))
    })
}

/// An error and its causes, one after the other (skipping a cause its
/// parent already quotes).
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

fn is_tls(err: &(dyn std::error::Error + 'static)) -> bool {
    if err.is::<rustls::Error>() {
        return true;
    }
    // An io::Error's `source` skips the error it wraps (rustls' errors
    // arrive wrapped twice), so look inside it.
    if let Some(inner) = err
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
    {
        return is_tls(inner);
    }
    err.source().is_some_and(is_tls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_pinned_resolver_answers_only_the_checked_name() {
        let addrs = vec![SocketAddr::from(([203, 0, 113, 7], 443))];
        let pinned = Pinned {
            host: "api.example.com".into(),
            addrs: addrs.clone(),
        };
        let got: Vec<SocketAddr> = pinned
            .resolve("API.example.com".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert_eq!(got, addrs);
        let err = pinned
            .resolve("other.example.com".parse().unwrap())
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("not checked"), "{err}");
    }
}
