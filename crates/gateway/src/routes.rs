//! Which route a request is for, and reading its parameters and body.

use faas_proto::{ErrorKind, Lang, ServiceError};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request};

use crate::response::{self, HttpResponse};

/// The routes the gateway serves.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    Deploy,
    Invoke,
    Health,
    /// `GET /health/ready`: readiness, asked of the Server.
    Ready,
    /// `POST /cluster/notice`: a signed notice from a peer replica.
    ClusterNotice,
    Functions,
    Stats,
    /// `GET /function/NAME` (already percent-decoded).
    Source(String),
    /// `PUT /function/NAME?lang=L`: a new version.
    Update(String),
    /// `DELETE /function/NAME` or `DELETE /function/ID`.
    Delete(String),
    /// `GET /function/NAME/versions`.
    Versions(String),
    /// `GET /function/NAME/invocations?limit=N`.
    Invocations(String),
    /// `GET /function/NAME/files`: a project's paths and sizes.
    Files(String),
    /// `GET /metrics`: Prometheus exposition.
    Metrics,
    /// `GET /` and `GET /ui`: the dashboard page.
    Dashboard,
    /// `GET /ui/data`: the dashboard's live data.
    DashboardData,
    /// `GET /secrets`: names, sizes and users; never a value.
    Secrets,
    /// `PUT /secret/NAME` (body = value).
    PutSecret(String),
    /// `DELETE /secret/NAME`.
    DeleteSecret(String),
    /// `POST /async/NAME[/REST]` (or `/async-function/...`): queue a call;
    /// `rest` as for [`Route::Raw`].
    Async {
        name: String,
        rest: String,
    },
    /// `GET /invocation/ID`: an async call's status and result.
    Call(String),
    /// `GET /dead-letters[?function=NAME]`.
    DeadLetters,
    /// `POST /dead-letters/ID/redrive`.
    Redrive(String),
    /// `DELETE /dead-letters/ID`.
    ForgetDeadLetter(String),
    /// `GET /schedules`: every function's schedule and its last ticks.
    Schedules,
    /// `ANY /fn/NAME[/REST]`: the function as an HTTP endpoint. `rest` is
    /// the remainder of the path as received (starting with `/`).
    Raw {
        name: String,
        rest: String,
    },
}

/// A request that matches no route.
#[derive(Debug, PartialEq, Eq)]
pub enum NoRoute {
    /// 404.
    NotFound(String),
    /// 405, with the method the route takes.
    MethodNotAllowed(&'static str),
}

impl NoRoute {
    pub fn into_response(self) -> HttpResponse {
        match self {
            Self::NotFound(message) => response::error(&ServiceError::not_found(message)),
            Self::MethodNotAllowed(allow) => response::method_not_allowed(allow),
        }
    }
}

/// Matches a method and path.
pub fn resolve(method: &Method, path: &str) -> Result<Route, NoRoute> {
    if let Some(tail) = path.strip_prefix("/fn/") {
        let (name, rest) = name_and_rest(tail);
        return Ok(Route::Raw { name, rest });
    }
    if let Some(route) = background_route(method, path) {
        return route;
    }
    let route = match path {
        "/deploy" => (Route::Deploy, Method::POST, "POST"),
        "/invoke" => (Route::Invoke, Method::POST, "POST"),
        "/health" => (Route::Health, Method::GET, "GET"),
        "/health/ready" => (Route::Ready, Method::GET, "GET"),
        "/cluster/notice" => (Route::ClusterNotice, Method::POST, "POST"),
        "/functions" => (Route::Functions, Method::GET, "GET"),
        "/stats" => (Route::Stats, Method::GET, "GET"),
        "/metrics" => (Route::Metrics, Method::GET, "GET"),
        "/" | "/ui" | "/ui/" => (Route::Dashboard, Method::GET, "GET"),
        "/ui/data" => (Route::DashboardData, Method::GET, "GET"),
        "/secrets" => (Route::Secrets, Method::GET, "GET"),
        p if p.starts_with("/secret/") => {
            let name = percent_decode(&p["/secret/".len()..]);
            return match *method {
                Method::PUT => Ok(Route::PutSecret(name)),
                Method::DELETE => Ok(Route::DeleteSecret(name)),
                _ => Err(NoRoute::MethodNotAllowed("PUT, DELETE")),
            };
        }
        p if p.starts_with("/function/") => {
            return function_route(method, &p["/function/".len()..])
        }
        p => return Err(NoRoute::NotFound(format!("no route for {method} {p}"))),
    };
    let (route, wanted, allow) = route;
    if *method != wanted {
        return Err(NoRoute::MethodNotAllowed(allow));
    }
    Ok(route)
}

/// The function name (decoded) and the rest of the path as received.
fn name_and_rest(tail: &str) -> (String, String) {
    let (name, rest) = match tail.find('/') {
        Some(at) => (&tail[..at], &tail[at..]),
        None => (tail, "/"),
    };
    (percent_decode(name), rest.to_string())
}

/// The routes of background work (async calls and dead letters), `None`
/// for any other path.
fn background_route(method: &Method, path: &str) -> Option<Result<Route, NoRoute>> {
    let only = |wanted: Method, allow: &'static str, route: Route| {
        if *method == wanted {
            Ok(route)
        } else {
            Err(NoRoute::MethodNotAllowed(allow))
        }
    };
    let tail = path
        .strip_prefix("/async/")
        .or_else(|| path.strip_prefix("/async-function/"));
    if let Some(tail) = tail {
        let (name, rest) = name_and_rest(tail);
        return Some(only(Method::POST, "POST", Route::Async { name, rest }));
    }
    if let Some(id) = path.strip_prefix("/invocation/") {
        return Some(only(Method::GET, "GET", Route::Call(percent_decode(id))));
    }
    if path == "/dead-letters" {
        return Some(only(Method::GET, "GET", Route::DeadLetters));
    }
    if path == "/schedules" {
        return Some(only(Method::GET, "GET", Route::Schedules));
    }
    let tail = path.strip_prefix("/dead-letters/")?;
    Some(match tail.strip_suffix("/redrive") {
        Some(id) => only(Method::POST, "POST", Route::Redrive(percent_decode(id))),
        None => only(
            Method::DELETE,
            "DELETE",
            Route::ForgetDeadLetter(percent_decode(tail)),
        ),
    })
}

/// `/function/NAME[/versions|/invocations|/files]` by method.
fn function_route(method: &Method, tail: &str) -> Result<Route, NoRoute> {
    let (name, what) = match tail.split_once('/') {
        Some((name, what)) => (percent_decode(name), Some(what)),
        None => (percent_decode(tail), None),
    };
    match (what, method) {
        (None, &Method::GET) => Ok(Route::Source(name)),
        (None, &Method::PUT) => Ok(Route::Update(name)),
        (None, &Method::DELETE) => Ok(Route::Delete(name)),
        (None, _) => Err(NoRoute::MethodNotAllowed("GET, PUT, DELETE")),
        (Some("versions"), &Method::GET) => Ok(Route::Versions(name)),
        (Some("invocations"), &Method::GET) => Ok(Route::Invocations(name)),
        (Some("files"), &Method::GET) => Ok(Route::Files(name)),
        (Some("versions" | "invocations" | "files"), _) => Err(NoRoute::MethodNotAllowed("GET")),
        (Some(other), _) => Err(NoRoute::NotFound(format!(
            "no route for {method} /function/{name}/{other}"
        ))),
    }
}

/// The decoded query string of a request.
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn of<B>(req: &Request<B>) -> Self {
        Self(
            req.uri()
                .query()
                .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
                .unwrap_or_default(),
        )
    }

    /// Every value of a repeated parameter, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// An optional whole-number parameter.
    pub fn number(&self, name: &str) -> Result<Option<u64>, ServiceError> {
        self.get(name)
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    ServiceError::bad_request(format!("{name} must be a whole number, got '{v}'"))
                })
            })
            .transpose()
    }

    /// The `lang` parameter as a language.
    pub fn lang(&self) -> Result<Option<Lang>, ServiceError> {
        self.get("lang")
            .map(|l| l.parse::<Lang>().map_err(ServiceError::bad_request))
            .transpose()
    }
}

/// How much of a body the gateway reads, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub max_bytes: usize,
    pub timeout: std::time::Duration,
}

/// Reads a whole body of at most `limits.max_bytes` bytes, within
/// `limits.timeout`, as UTF-8 text (`what` names it in errors).
pub async fn text_body(
    req: Request<Incoming>,
    limits: BodyLimits,
    what: &str,
) -> Result<String, ServiceError> {
    let bytes = body(req, limits, what).await?;
    String::from_utf8(bytes.to_vec())
        .map_err(|_| ServiceError::bad_request(format!("{what} must be UTF-8 text")))
}

/// Reads a whole body, any bytes, of at most `limits.max_bytes` bytes
/// within `limits.timeout`.
pub async fn body(
    req: Request<Incoming>,
    limits: BodyLimits,
    what: &str,
) -> Result<hyper::body::Bytes, ServiceError> {
    let limit = limits.max_bytes;
    let too_large = || {
        ServiceError::new(
            ErrorKind::TooLarge,
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
    let collect = Limited::new(req.into_body(), limit).collect();
    let Ok(collected) = tokio::time::timeout(limits.timeout, collect).await else {
        return Err(ServiceError::new(
            ErrorKind::RequestTimeout,
            format!(
                "the {what} did not arrive within {} ms",
                limits.timeout.as_millis()
            ),
        ));
    };
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(err) => Err(ServiceError::bad_request(format!(
            "could not read the request body: {err}"
        ))),
    }
}

/// Percent-decodes one path segment ('+' stays a plus, unlike in a query).
pub fn percent_decode(s: &str) -> String {
    let escaped = s.replace('+', "%2B");
    form_urlencoded::parse(format!("x={escaped}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_resolve_by_path_then_method() {
        assert_eq!(resolve(&Method::POST, "/deploy").unwrap(), Route::Deploy);
        assert_eq!(
            resolve(&Method::PUT, "/fn/a%2Db/x/../y%00?").unwrap(),
            Route::Raw {
                name: "a-b".into(),
                rest: "/x/../y%00?".into()
            }
        );
        assert_eq!(
            resolve(&Method::GET, "/fn/page").unwrap(),
            Route::Raw {
                name: "page".into(),
                rest: "/".into()
            }
        );
        assert_eq!(
            resolve(&Method::GET, "/function/a%20b+c").unwrap(),
            Route::Source("a b+c".into())
        );
        let wrong = resolve(&Method::GET, "/invoke")
            .unwrap_err()
            .into_response();
        assert_eq!(wrong.status(), 405);
        assert_eq!(wrong.headers()["allow"], "POST");
        assert_eq!(
            resolve(&Method::POST, "/async-function/f/a").unwrap(),
            Route::Async {
                name: "f".into(),
                rest: "/a".into()
            }
        );
        assert_eq!(
            resolve(&Method::POST, "/dead-letters/x1/redrive").unwrap(),
            Route::Redrive("x1".into())
        );
        assert_eq!(
            resolve(&Method::DELETE, "/dead-letters/x1").unwrap(),
            Route::ForgetDeadLetter("x1".into())
        );
        assert!(resolve(&Method::GET, "/async/f").is_err());
        let missing = resolve(&Method::GET, "/nowhere").unwrap_err();
        assert_eq!(missing.into_response().status(), 404);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_query_and_path_parse_without_panicking(query in ".{0,200}", path in "/.{0,100}") {
            let uri = format!("/invoke?{}", query.replace(['#', ' '], "%20"));
            if let Ok(req) = Request::builder().uri(uri.as_str()).body(()) {
                let q = Query::of(&req);
                let _ = q.get("fn");
                let _ = q.number("timeout_ms");
                let _ = q.lang();
            }
            let _ = percent_decode(&path);
            for method in [Method::GET, Method::POST, Method::DELETE] {
                let _ = resolve(&method, &path);
            }
        }

        #[test]
        fn numbers_parse_exactly(n in any::<u64>(), junk in "[a-z]{1,5}") {
            let req = Request::builder().uri(format!("/deploy?timeout_ms={n}")).body(()).unwrap();
            prop_assert_eq!(Query::of(&req).number("timeout_ms").unwrap(), Some(n));
            let req = Request::builder().uri(format!("/deploy?timeout_ms={junk}")).body(()).unwrap();
            prop_assert!(Query::of(&req).number("timeout_ms").is_err());
        }
    }
}
