//! What the gateway refuses before a request reaches a route, because a
//! browser could be made to send it:
//! - a `Host` that is not one of the server's own names ([`AllowedHosts`]):
//!   a page on another site that gets its DNS name to resolve to this
//!   server (DNS rebinding) is then same-origin with it in the browser's
//!   eyes, and only the name it asks for tells it apart (421);
//! - a cross-site request to a route that changes state ([`cross_site`]):
//!   any page can make a browser POST a form or a `no-cors` fetch to any
//!   address it can reach, and the server would act on it (403).
//!
//! These are pure functions of the request's headers, tested here; the
//! gateway applies them in `handle`.

use std::net::SocketAddr;

use hyper::header::{HeaderMap, HOST, ORIGIN};
use hyper::{Method, Request, Version};

/// One entry of `--allowed-hosts`: `*` (any), or a name or address with an
/// optional port (`faas.example.com`, `10.0.0.5:8080`, `[::1]`). Without a
/// port it matches every port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    Any,
    Name { name: String, port: Option<u16> },
}

impl std::str::FromStr for HostPattern {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s == "*" {
            return Ok(Self::Any);
        }
        let (name, port) = split_host(s).ok_or_else(|| {
            format!("'{s}' is not a host name or address, with an optional :port (or *)")
        })?;
        Ok(Self::Name { name, port })
    }
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Any => f.write_str("*"),
            Self::Name { name, port: None } => f.write_str(name),
            Self::Name {
                name,
                port: Some(port),
            } => write!(f, "{name}:{port}"),
        }
    }
}

/// The `Host` names the server answers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedHosts {
    /// Every name: the server is bound to a non-loopback address and the
    /// operator named none (warned at start).
    Any,
    Only(Vec<HostPattern>),
}

impl AllowedHosts {
    /// `localhost`, `127.0.0.1` and `[::1]`, on any port.
    pub fn loopback() -> Self {
        Self::Only(
            ["localhost", "127.0.0.1", "[::1]"]
                .into_iter()
                .map(|name| HostPattern::Name {
                    name: name.to_string(),
                    port: None,
                })
                .collect(),
        )
    }

    /// The names a server bound to `local` accepts given `--allowed-hosts`
    /// (`flag`, possibly empty). Without the flag: the loopback names when
    /// bound to a loopback address (nothing else can reach it, so a browser
    /// asking for another name was tricked into it); any name otherwise,
    /// since the names clients use for a network address cannot be guessed,
    /// and refusing them all would break every existing setup. The second
    /// value is that case's warning, for the start-up log.
    pub fn for_listener(flag: &[HostPattern], local: SocketAddr) -> (Self, Option<String>) {
        if flag.contains(&HostPattern::Any) {
            return (Self::Any, None);
        }
        if !flag.is_empty() {
            return (Self::Only(flag.to_vec()), None);
        }
        if local.ip().is_loopback() {
            return (Self::loopback(), None);
        }
        let warning = format!(
            "listening on {local} without --allowed-hosts: requests for any Host name are accepted, \
             so a web page using DNS rebinding can reach this server through a visitor's browser; \
             set --allowed-hosts to the names clients use (e.g. --allowed-hosts faas.example.com)"
        );
        (Self::Any, Some(warning))
    }

    /// Whether a `Host` value (`name[:port]`) is one of these.
    pub fn allows(&self, host: &str) -> bool {
        let Self::Only(patterns) = self else {
            return true;
        };
        let Some((name, port)) = split_host(host) else {
            return false;
        };
        patterns.iter().any(|p| match p {
            HostPattern::Any => true,
            HostPattern::Name {
                name: allowed,
                port: allowed_port,
            } => *allowed == name && allowed_port.is_none_or(|p| Some(p) == port),
        })
    }

    /// The list as the flag would spell it, for messages.
    pub fn describe(&self) -> String {
        match self {
            Self::Any => "*".to_string(),
            Self::Only(patterns) => patterns
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
        }
    }
}

/// Splits `name[:port]` or `[v6][:port]` into the lower-case name (a
/// trailing dot dropped, brackets kept) and the port. `None` for anything
/// else: an empty name, user info, a path, a bad port, stray characters.
pub fn split_host(authority: &str) -> Option<(String, Option<u16>)> {
    let (name, port) = if let Some(rest) = authority.strip_prefix('[') {
        let end = rest.find(']')?;
        let (inside, after) = (&rest[..end], &rest[end + 1..]);
        if inside.is_empty()
            || !inside
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return None;
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (&authority[..end + 2], port)
    } else {
        let (name, port) = match authority.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (authority, None),
        };
        let name = name.strip_suffix('.').unwrap_or(name);
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        {
            return None;
        }
        (name, port)
    };
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().ok()?)
        }
        Some(_) => return None,
    };
    Some((name.to_ascii_lowercase(), port))
}

/// Why a request's host is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum HostRefusal {
    /// An HTTP/1.1 request without `Host` (400).
    Missing,
    /// A name the server does not answer to (421).
    NotAllowed(String),
}

/// Checks the `Host` header, and the authority of an absolute-form target
/// (which HTTP says wins over `Host`): every name given must be allowed.
pub fn check_host<B>(req: &Request<B>, allowed: &AllowedHosts) -> Result<(), HostRefusal> {
    let mut names = Vec::new();
    for value in req.headers().get_all(HOST) {
        names.push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    if let Some(authority) = req.uri().authority() {
        names.push(authority.as_str().to_string());
    }
    if names.is_empty() {
        // HTTP/1.0 had no Host; a browser always sends one.
        return if req.version() == Version::HTTP_10 {
            Ok(())
        } else {
            Err(HostRefusal::Missing)
        };
    }
    match names.into_iter().find(|n| !allowed.allows(n)) {
        Some(name) => Err(HostRefusal::NotAllowed(name)),
        None => Ok(()),
    }
}

/// The host a request was addressed to (`Host`, or an absolute-form
/// target's authority): what its `Origin` must match to be same-origin.
fn served_as<B>(req: &Request<B>) -> Option<String> {
    match req.uri().authority() {
        Some(authority) => Some(authority.as_str().to_string()),
        None => req
            .headers()
            .get(HOST)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    }
}

/// Whether `origin` (`scheme://host[:port]`, as browsers send it) is the
/// origin of a page served under `host`: same name, same port (a missing
/// port being the scheme's default). `https` is accepted beside `http` for
/// a server behind a TLS proxy; a page under another scheme, a path, or
/// `null` (a sandboxed page, a `data:` URL) never is.
pub fn same_origin(origin: &str, host: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => 80,
        "https" => 443,
        _ => return false,
    };
    match (split_host(authority), split_host(host)) {
        (Some((o_name, o_port)), Some((h_name, h_port))) => {
            o_name == h_name && o_port.unwrap_or(default_port) == h_port.unwrap_or(default_port)
        }
        _ => false,
    }
}

/// Whether a request with this method may change state, and so must come
/// from the server's own pages or from outside any browser.
pub fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Why a state-changing request must be refused as cross-site, if it must.
///
/// Browsers say where a request comes from: `Origin` on every request but
/// GET and HEAD (forms and `no-cors` fetches included), and
/// `Sec-Fetch-Site` on every request. The request passes when `Origin` is
/// absent or this server's own origin, and `Sec-Fetch-Site` is absent,
/// `same-origin` or `none` (typed by the user). `same-site` is refused too:
/// another port of the same host is another program. Clients outside a
/// browser (curl, the `faas` CLI) send neither header and pass.
pub fn cross_site<B>(req: &Request<B>) -> Option<String> {
    let served = served_as(req);
    let headers: &HeaderMap = req.headers();
    for origin in headers.get_all(ORIGIN) {
        let origin = String::from_utf8_lossy(origin.as_bytes());
        if !served.as_deref().is_some_and(|h| same_origin(&origin, h)) {
            return Some(format!(
                "cross-site request refused: Origin {origin} is not this server's; \
                 use the dashboard served here, or a client outside the browser"
            ));
        }
    }
    for site in headers.get_all("sec-fetch-site") {
        let site = String::from_utf8_lossy(site.as_bytes());
        if !matches!(site.as_ref(), "same-origin" | "none") {
            return Some(format!(
                "cross-site request refused (Sec-Fetch-Site: {site}); \
                 use the dashboard served here, or a client outside the browser"
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::builder().method("POST").uri("/deploy");
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn hosts_split_into_name_and_port() {
        assert_eq!(
            split_host("LocalHost:8080"),
            Some(("localhost".into(), Some(8080)))
        );
        assert_eq!(split_host("localhost."), Some(("localhost".into(), None)));
        assert_eq!(split_host("[::1]:80"), Some(("[::1]".into(), Some(80))));
        assert_eq!(split_host("[::1]"), Some(("[::1]".into(), None)));
        for bad in [
            "", ":80", "a:", "a:99999", "a:8x", "user@a", "a/b", "[::1", "[]", "[::1]x", "a b",
            "a:80:80", "[zz]", "a:+80",
        ] {
            assert_eq!(split_host(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn loopback_default_takes_only_loopback_names() {
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let (allowed, warning) = AllowedHosts::for_listener(&[], local);
        assert!(warning.is_none());
        for ok in [
            "localhost",
            "localhost:1",
            "127.0.0.1:8080",
            "[::1]:9",
            "LOCALHOST.",
        ] {
            assert!(allowed.allows(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "127.0.0.1.evil.example",
            "localhost.evil.example:8080",
            "127.0.0.2",
            "",
            "localhost@evil.example",
        ] {
            assert!(!allowed.allows(bad), "{bad}");
        }
    }

    #[test]
    fn network_default_accepts_any_host_and_warns() {
        let local: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let (allowed, warning) = AllowedHosts::for_listener(&[], local);
        assert_eq!(allowed, AllowedHosts::Any);
        assert!(warning.unwrap().contains("--allowed-hosts"));
        assert!(allowed.allows("anything"));
    }

    #[test]
    fn the_flag_replaces_the_default() {
        let flag: Vec<HostPattern> = ["faas.example.com", "10.0.0.5:8080"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let (allowed, warning) = AllowedHosts::for_listener(&flag, local);
        assert!(warning.is_none());
        assert!(allowed.allows("faas.example.com:443"));
        assert!(allowed.allows("10.0.0.5:8080"));
        assert!(!allowed.allows("10.0.0.5:8081"));
        assert!(!allowed.allows("localhost"));
        assert_eq!(allowed.describe(), "faas.example.com,10.0.0.5:8080");
        let any = AllowedHosts::for_listener(&["*".parse().unwrap()], local).0;
        assert_eq!(any, AllowedHosts::Any);
        assert!("a/b".parse::<HostPattern>().is_err());
    }

    #[test]
    fn a_missing_host_is_refused_on_http_1_1_only() {
        let allowed = AllowedHosts::loopback();
        assert_eq!(check_host(&req(&[]), &allowed), Err(HostRefusal::Missing));
        let old = Request::builder()
            .version(Version::HTTP_10)
            .body(())
            .unwrap();
        assert_eq!(check_host(&old, &allowed), Ok(()));
        let evil = req(&[("host", "evil.example")]);
        assert_eq!(
            check_host(&evil, &allowed),
            Err(HostRefusal::NotAllowed("evil.example".into()))
        );
        // An absolute-form target must be allowed too.
        let absolute = Request::builder()
            .uri("http://evil.example/deploy")
            .header("host", "localhost")
            .body(())
            .unwrap();
        assert!(check_host(&absolute, &allowed).is_err());
        assert_eq!(
            check_host(&req(&[("host", "localhost:1")]), &allowed),
            Ok(())
        );
    }

    #[test]
    fn origins_match_their_host_and_port() {
        assert!(same_origin("http://127.0.0.1:8080", "127.0.0.1:8080"));
        assert!(same_origin("http://LOCALHOST:8080", "localhost:8080"));
        assert!(same_origin("http://faas.example", "faas.example:80"));
        assert!(same_origin("https://faas.example", "faas.example"));
        assert!(!same_origin("https://faas.example", "faas.example:80"));
        assert!(!same_origin("http://127.0.0.1:8081", "127.0.0.1:8080"));
        assert!(!same_origin("http://evil.example", "127.0.0.1:8080"));
        assert!(!same_origin("null", "127.0.0.1:8080"));
        assert!(!same_origin("file://", "127.0.0.1:8080"));
        assert!(!same_origin("ftp://127.0.0.1:8080", "127.0.0.1:8080"));
        assert!(!same_origin("http://127.0.0.1:8080/x", "127.0.0.1:8080"));
    }

    #[test]
    fn cross_site_requests_are_refused_and_others_pass() {
        let host = ("host", "127.0.0.1:8080");
        assert_eq!(cross_site(&req(&[host])), None);
        assert_eq!(
            cross_site(&req(&[host, ("origin", "http://127.0.0.1:8080")])),
            None
        );
        assert_eq!(
            cross_site(&req(&[host, ("sec-fetch-site", "same-origin")])),
            None
        );
        assert_eq!(cross_site(&req(&[host, ("sec-fetch-site", "none")])), None);
        for refused in [
            vec![host, ("origin", "http://evil.example")],
            vec![host, ("origin", "null")],
            vec![host, ("origin", "http://127.0.0.1:9999")],
            vec![host, ("sec-fetch-site", "cross-site")],
            vec![host, ("sec-fetch-site", "same-site")],
            vec![
                host,
                ("origin", "http://127.0.0.1:8080"),
                ("sec-fetch-site", "cross-site"),
            ],
            vec![
                host,
                ("origin", "http://127.0.0.1:8080"),
                ("origin", "http://evil.example"),
            ],
            // No Host to be the origin of.
            vec![("origin", "http://127.0.0.1:8080")],
        ] {
            assert!(cross_site(&req(&refused)).is_some(), "{refused:?}");
        }
        assert!(changes_state(&Method::POST));
        assert!(changes_state(&Method::DELETE));
        assert!(!changes_state(&Method::GET));
        assert!(!changes_state(&Method::OPTIONS));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_host_or_origin_is_judged_without_panicking(host in "\\PC{0,40}", origin in "\\PC{0,60}") {
            let _ = split_host(&host);
            let _ = same_origin(&origin, &host);
            let _ = AllowedHosts::loopback().allows(&host);
            let _ = host.parse::<HostPattern>();
        }

        #[test]
        fn loopback_names_pass_on_every_port_and_nothing_else_does(
            port in any::<u16>(),
            name in "[a-z0-9.-]{1,30}",
        ) {
            let allowed = AllowedHosts::loopback();
            for ok in ["localhost", "127.0.0.1", "[::1]"] {
                let host = format!("{ok}:{port}");
                prop_assert!(allowed.allows(&host));
            }
            // One trailing dot names the same host (a fully qualified name).
            let bare = name.strip_suffix('.').unwrap_or(&name);
            let expected = matches!(bare, "localhost" | "127.0.0.1");
            let host = format!("{name}:{port}");
            prop_assert_eq!(allowed.allows(&host), expected);
        }

        #[test]
        fn an_origin_is_same_origin_only_with_its_own_host_and_port(
            name in "[a-z][a-z0-9-]{0,20}(\\.[a-z0-9-]{1,10}){0,3}",
            port in 1u16..,
            other in 1u16..,
        ) {
            let host = format!("{name}:{port}");
            let own = format!("http://{host}");
            let shouted = format!("http://{}", host.to_uppercase());
            let other_port = format!("http://{name}:{other}");
            let longer = format!("http://x{name}:{port}");
            let below = format!("http://{name}.evil.example:{port}");
            prop_assert!(same_origin(&own, &host));
            prop_assert!(same_origin(&shouted, &host));
            prop_assert_eq!(same_origin(&other_port, &host), other == port);
            prop_assert!(!same_origin(&longer, &host));
            prop_assert!(!same_origin(&below, &host));
        }
    }
}
