//! The rules a request and each of its redirect hops must pass: URL and
//! grant, the addresses a name resolves to (this host's own among the
//! private ones), the request's method and headers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};

use crate::error::{FetchError, Result};
use crate::Grants;

/// A URL as messages show it: scheme, host, port and path, without
/// credentials, query or fragment (a query may carry a key).
pub(crate) fn redact(url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(port) => format!("{}://{host}:{port}{}", url.scheme(), url.path()),
        None => format!("{}://{host}{}", url.scheme(), url.path()),
    }
}

/// Where one hop goes, once the URL passed: its host as grants name it
/// (lowercase; an address without brackets), its port, and whether the
/// host is an address literal.
pub(crate) struct Target {
    pub host: String,
    pub port: u16,
    pub literal: Option<IpAddr>,
}

/// Scheme, credentials and grant of one hop's URL.
pub(crate) fn check_url(grants: &Grants, url: &Url) -> Result<Target> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(FetchError::Invalid(format!(
            "{}: only http and https URLs are allowed",
            redact(url)
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(FetchError::Invalid(format!(
            "{}: credentials in a URL are not allowed (send an Authorization header)",
            redact(url)
        )));
    }
    let port = url
        .port_or_known_default()
        .ok_or_else(|| FetchError::Invalid(format!("{}: no port", redact(url))))?;
    let Some(host) = url.host_str().filter(|h| !h.is_empty()) else {
        return Err(FetchError::Invalid(format!(
            "{}: the URL has no host",
            redact(url)
        )));
    };
    // The URL parser already normalised the host: a lowercase name
    // (IDN in its xn-- form), an IPv4 address in dotted form, or an IPv6
    // address in brackets.
    let literal = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        None => host.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
    };
    let host = match literal {
        Some(ip) => ip.to_string(),
        None => host.to_ascii_lowercase(),
    };
    if !grants.permits(&host, port) {
        return Err(FetchError::Denied(format!(
            "host {}:{port} is not granted (the function's allow= entries do not name it)",
            bracketed(&host, literal)
        )));
    }
    Ok(Target {
        host,
        port,
        literal,
    })
}

fn bracketed(host: &str, literal: Option<IpAddr>) -> String {
    match literal {
        Some(IpAddr::V6(_)) => format!("[{host}]"),
        _ => host.to_string(),
    }
}

/// What an address is, as far as reaching it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// Reachable when its host is granted.
    Public,
    /// Reachable only if this very address and port is granted.
    Special(&'static str),
    /// Never reachable: no HTTP server lives there.
    Never(&'static str),
}

pub(crate) fn classify(ip: IpAddr) -> Class {
    match ip {
        IpAddr::V4(ip) => classify_v4(ip),
        IpAddr::V6(ip) => classify_v6(ip),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], bits: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn classify_v4(ip: Ipv4Addr) -> Class {
    use Class::*;
    // The order matters only for the reason named.
    if in_v4(ip, [0, 0, 0, 0], 8) {
        // 0.0.0.0 reaches this host on Linux.
        Never("unspecified (0.0.0.0/8)")
    } else if ip.is_broadcast() {
        Never("broadcast")
    } else if ip.is_multicast() {
        Never("multicast")
    } else if in_v4(ip, [240, 0, 0, 0], 4) {
        Never("reserved (240.0.0.0/4)")
    } else if ip.is_loopback() {
        Special("loopback")
    } else if in_v4(ip, [10, 0, 0, 0], 8)
        || in_v4(ip, [172, 16, 0, 0], 12)
        || in_v4(ip, [192, 168, 0, 0], 16)
    {
        Special("private")
    } else if in_v4(ip, [100, 64, 0, 0], 10) {
        Special("shared (CGNAT, 100.64.0.0/10)")
    } else if in_v4(ip, [169, 254, 0, 0], 16) {
        Special("link-local (cloud metadata lives there)")
    } else if in_v4(ip, [192, 0, 0, 0], 24) || in_v4(ip, [198, 18, 0, 0], 15) {
        Special("reserved")
    } else {
        Public
    }
}

/// The IPv4 address an IPv6 form carries (IPv4-mapped, NAT64 `64:ff9b::/96`,
/// 6to4 `2002::/16`): the kernel, or a NAT64 / 6to4 gateway on the way,
/// delivers it to that address, so it is judged by it.
fn carried_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let seg = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if let Some(v4) = ip.to_ipv4_mapped() {
        Some(v4)
    } else if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        Some(embedded(seg[6], seg[7]))
    } else if seg[0] == 0x2002 {
        Some(embedded(seg[1], seg[2]))
    } else {
        None
    }
}

fn classify_v6(ip: Ipv6Addr) -> Class {
    use Class::*;
    let seg = ip.segments();
    if let Some(v4) = carried_v4(ip) {
        return classify_v4(v4);
    }
    if ip.is_unspecified() {
        Never("unspecified (::)")
    } else if ip.is_multicast() {
        Never("multicast")
    } else if ip.is_loopback() {
        Special("loopback")
    } else if seg[..6] == [0; 6] {
        Special("reserved (IPv4-compatible ::/96)")
    } else if seg[..3] == [0x64, 0xff9b, 1] {
        Special("private (local-use NAT64)")
    } else if seg[..2] == [0x2001, 0] {
        Special("reserved (Teredo)")
    } else if seg[..4] == [0x100, 0, 0, 0] {
        Special("reserved (discard-only)")
    } else if seg[0] & 0xfe00 == 0xfc00 {
        Special("unique-local")
    } else if seg[0] & 0xffc0 == 0xfe80 {
        Special("link-local")
    } else if seg[0] & 0xffc0 == 0xfec0 {
        Special("site-local")
    } else {
        Public
    }
}

/// How long a listing of this host's addresses is used before it is read
/// again: long enough that requests do not each cost a netlink dump, short
/// enough that an address just added is soon refused.
pub(crate) const LOCAL_ADDRESSES_TTL: Duration = Duration::from_secs(1);

/// This host's interface addresses (every address of every interface, up
/// or down: `eth0`'s, a bridge's, a VPN's), read at most once per
/// [`LOCAL_ADDRESSES_TTL`] and shared by every call.
pub(crate) struct LocalAddresses {
    listed: Mutex<Option<(Instant, Arc<[IpAddr]>)>>,
}

impl LocalAddresses {
    pub(crate) fn new() -> Self {
        Self {
            listed: Mutex::new(None),
        }
    }

    /// The current listing. If the addresses cannot be read, the last
    /// listing stays in use (loopback and unspecified addresses are
    /// recognised without one).
    pub(crate) fn get(&self) -> Arc<[IpAddr]> {
        // Held while listing: one refresh at a time, the others wait for
        // it (microseconds) rather than each listing again.
        let mut listed = self.listed.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, addrs)) = listed.as_ref() {
            if at.elapsed() < LOCAL_ADDRESSES_TTL {
                return Arc::clone(addrs);
            }
        }
        let addrs: Arc<[IpAddr]> = match local_addresses() {
            Ok(addrs) => addrs.into(),
            Err(e) => {
                log::warn!(
                    "outbound: cannot list this host's addresses ({e}); using the last listing"
                );
                listed
                    .as_ref()
                    .map_or_else(|| Arc::from(Vec::new()), |(_, addrs)| Arc::clone(addrs))
            }
        };
        *listed = Some((Instant::now(), Arc::clone(&addrs)));
        addrs
    }
}

/// This host's interface addresses, read now.
pub(crate) fn local_addresses() -> nix::Result<Vec<IpAddr>> {
    Ok(nix::ifaddrs::getifaddrs()?
        .filter_map(|a| a.address)
        .filter_map(|a| {
            if let Some(v4) = a.as_sockaddr_in() {
                Some(IpAddr::V4(v4.ip()))
            } else {
                a.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
            }
        })
        .collect())
}

/// Whether `ip` is this host itself: loopback, unspecified, or one of its
/// interfaces' addresses (also in an IPv4-mapped, NAT64 or 6to4 form).
fn is_this_host(ip: IpAddr, local: &[IpAddr]) -> bool {
    let canonical = match ip {
        IpAddr::V6(v6) => carried_v4(v6).map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    };
    canonical.is_loopback()
        || canonical.is_unspecified()
        || local
            .iter()
            .any(|l| *l == ip || *l == canonical || l.to_canonical() == canonical)
}

/// Whether `ip:port` may be connected to; `Err` names the reason.
///
/// This host's own addresses (`local`) are private whatever their range: a
/// public address of `eth0` reaches this host's services (a database, a
/// metrics port) as loopback would, so a name resolving to one is refused,
/// and only that address and port granted literally reaches it, as for any
/// private address. The protected ports are refused on them even then.
pub(crate) fn check_address(
    grants: &Grants,
    ip: IpAddr,
    port: u16,
    protected_ports: &[u16],
    local: &[IpAddr],
) -> std::result::Result<(), String> {
    let this_host = is_this_host(ip, local);
    if protected_ports.contains(&port) && this_host {
        return Err(format!(
            "port {port} of this host is the platform's own and never reachable"
        ));
    }
    let class = match classify(ip) {
        Class::Public if this_host => Class::Special("local (this host's own)"),
        class => class,
    };
    match class {
        Class::Public => Ok(()),
        Class::Never(why) => Err(format!("{why} addresses are never reachable")),
        Class::Special(_) if grants.permits_address(ip, port) => Ok(()),
        Class::Special(why) => Err(format!(
            "a {why} address, reachable only when that address and port are granted"
        )),
    }
}

/// Checks every address of a hop; the first refused one denies the hop.
pub(crate) fn check_addresses(
    grants: &Grants,
    target: &Target,
    addrs: &[SocketAddr],
    protected_ports: &[u16],
    local: &[IpAddr],
) -> Result<()> {
    for addr in addrs {
        if let Err(why) = check_address(grants, addr.ip(), target.port, protected_ports, local) {
            let shown = bracketed(&target.host, target.literal);
            return Err(FetchError::Denied(match target.literal {
                Some(_) => format!("{shown}:{}: {why}", target.port),
                None => format!(
                    "host {shown}:{} resolves to {}: {why}",
                    target.port,
                    addr.ip()
                ),
            }));
        }
    }
    Ok(())
}

/// The request's method: any valid token but `CONNECT` (a tunnel would
/// escape the URL's host).
pub(crate) fn check_method(method: &str) -> Result<Method> {
    // The standard methods in any case, as the Fetch standard normalises
    // them; any other token is sent as given.
    let upper = method.to_ascii_uppercase();
    let method = match upper.as_str() {
        "DELETE" | "GET" | "HEAD" | "OPTIONS" | "POST" | "PUT" | "PATCH" => upper.as_str(),
        _ => method,
    };
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|_| FetchError::Invalid("the method is not a valid HTTP method".into()))?;
    if method == Method::CONNECT {
        return Err(FetchError::Invalid("CONNECT is not allowed".into()));
    }
    Ok(method)
}

/// Headers the connection owns: a function setting them could desynchronise
/// the framing or the connection.
const CONNECTION_HEADERS: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "upgrade",
    "trailer",
];

/// The function's headers, validated. `Host` (equal to the URL's) and
/// `Content-Length` (equal to the body's) are accepted and left for the
/// HTTP layer to set with the same value; any other value for them is
/// refused, and so are connection headers and invalid names or values.
/// Messages name a header only once its name is known to be valid, and
/// never its value.
pub(crate) fn check_headers(
    headers: &[(String, String)],
    url: &Url,
    body_len: usize,
) -> Result<HeaderMap> {
    let mut map = HeaderMap::new();
    for (i, (name, value)) in headers.iter().enumerate() {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            FetchError::Invalid(format!(
                "request header #{} has a name that is not a valid HTTP token",
                i + 1
            ))
        })?;
        let value = HeaderValue::from_bytes(value.as_bytes()).map_err(|_| {
            FetchError::Invalid(format!(
                "the value of request header '{name}' is not valid HTTP (no CR, LF or NUL)"
            ))
        })?;
        if name == header::HOST {
            if !host_matches(value.as_bytes(), url) {
                return Err(FetchError::Invalid(format!(
                    "a Host header may only repeat the URL's host ({})",
                    url.host_str().unwrap_or("")
                )));
            }
            continue;
        }
        if name == header::CONTENT_LENGTH {
            if value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                != Some(body_len)
            {
                return Err(FetchError::Invalid(
                    "Content-Length must be the body's length (it is set from the body)".into(),
                ));
            }
            continue;
        }
        if CONNECTION_HEADERS.contains(&name.as_str()) {
            return Err(FetchError::Invalid(format!(
                "request header '{name}' belongs to the connection and cannot be set"
            )));
        }
        map.append(name, value);
    }
    Ok(map)
}

/// Whether a `Host` value names the URL's host, with or without its port.
fn host_matches(value: &[u8], url: &Url) -> bool {
    let Ok(value) = std::str::from_utf8(value) else {
        return false;
    };
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
        return false;
    };
    let value = value.trim();
    value.eq_ignore_ascii_case(host) || value.eq_ignore_ascii_case(&format!("{host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(ip: &str) -> Class {
        classify(ip.parse().unwrap())
    }

    #[test]
    fn special_addresses_are_classified() {
        for ip in [
            "127.0.0.1",
            "127.1.2.3",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "169.254.169.254",
            "::1",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "::7f00:1",
        ] {
            assert!(
                matches!(class(ip), Class::Special(_)),
                "{ip}: {:?}",
                class(ip)
            );
        }
        for ip in [
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "240.0.0.1",
            "::",
            "ff02::1",
            "::ffff:0.0.0.0",
        ] {
            assert!(
                matches!(class(ip), Class::Never(_)),
                "{ip}: {:?}",
                class(ip)
            );
        }
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert_eq!(class(ip), Class::Public, "{ip}");
        }
    }

    #[test]
    fn a_special_address_needs_its_own_grant() {
        let grants = Grants::parse(&["metadata.example.com", "10.0.0.5:443"]).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let err = check_address(&grants, ip("169.254.169.254"), 443, &[], &[]).unwrap_err();
        assert!(err.contains("link-local"), "{err}");
        assert!(check_address(&grants, ip("10.0.0.5"), 443, &[], &[]).is_ok());
        assert!(check_address(&grants, ip("10.0.0.5"), 80, &[], &[]).is_err());
        assert!(check_address(&grants, ip("1.1.1.1"), 443, &[], &[]).is_ok());
        // A mapped form of a granted address is another literal.
        assert!(check_address(&grants, ip("::ffff:10.0.0.5"), 443, &[], &[]).is_err());
        let any = Grants::parse(&["0.0.0.0:80"]).unwrap();
        assert!(check_address(&any, ip("0.0.0.0"), 80, &[], &[]).is_err());
    }

    #[test]
    fn one_refused_address_among_a_name_s_answers_denies_the_name() {
        let grants = Grants::parse(&["rebind.example.com"]).unwrap();
        let target = Target {
            host: "rebind.example.com".into(),
            port: 443,
            literal: None,
        };
        let public: SocketAddr = "93.184.216.34:443".parse().unwrap();
        let metadata: SocketAddr = "169.254.169.254:443".parse().unwrap();
        assert!(check_addresses(&grants, &target, &[public], &[], &[]).is_ok());
        let err = check_addresses(&grants, &target, &[public, metadata], &[], &[]).unwrap_err();
        let FetchError::Denied(why) = err else {
            panic!("{err:?}")
        };
        assert!(
            why.contains("rebind.example.com:443 resolves to 169.254.169.254"),
            "{why}"
        );
    }

    #[test]
    fn the_protected_port_of_this_host_is_refused_even_if_granted() {
        let grants = Grants::parse(&["127.0.0.1:8080", "203.0.113.7:8080", "[::1]:8080"]).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let local = [ip("203.0.113.7")];
        for addr in [
            "127.0.0.1",
            "127.0.0.2",
            "::1",
            "::ffff:127.0.0.1",
            "203.0.113.7",
            "::ffff:203.0.113.7",
        ] {
            let err = check_address(&grants, ip(addr), 8080, &[8080], &local).unwrap_err();
            assert!(err.contains("platform's own"), "{addr}: {err}");
        }
        assert!(check_address(&grants, ip("127.0.0.1"), 8080, &[9000], &local).is_ok());
        assert!(check_address(&grants, ip("203.0.113.7"), 8080, &[9000], &local).is_ok());
    }

    #[test]
    fn this_host_s_public_address_is_private_on_every_port() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // 203.0.113.7 stands for eth0's (public) address.
        let local = [ip("203.0.113.7"), ip("2001:db8::7")];
        let name_only = Grants::parse(&["db.example.com:5432", "db.example.com"]).unwrap();
        for (addr, port) in [
            ("203.0.113.7", 5432),
            ("203.0.113.7", 443),
            ("::ffff:203.0.113.7", 5432),
            ("64:ff9b::cb00:7107", 5432),
            ("2002:cb00:7107::1", 443),
            ("2001:db8::7", 443),
        ] {
            let err = check_address(&name_only, ip(addr), port, &[], &local).unwrap_err();
            assert!(err.contains("this host's own"), "{addr}: {err}");
        }
        // Another host of the same network is not this host.
        assert!(check_address(&name_only, ip("203.0.113.8"), 443, &[], &local).is_ok());
        // Granted literally, like any private address: that port only.
        let literal = Grants::parse(&["203.0.113.7:5432"]).unwrap();
        assert!(check_address(&literal, ip("203.0.113.7"), 5432, &[], &local).is_ok());
        assert!(check_address(&literal, ip("203.0.113.7"), 5433, &[], &local).is_err());
        // ... and never the platform's own port.
        let err = check_address(&literal, ip("203.0.113.7"), 5432, &[5432], &local).unwrap_err();
        assert!(err.contains("platform's own"), "{err}");
    }

    #[test]
    fn a_name_resolving_to_this_host_is_denied_naming_the_address() {
        let grants = Grants::parse(&["app.example.com"]).unwrap();
        let target = Target {
            host: "app.example.com".into(),
            port: 443,
            literal: None,
        };
        let own: SocketAddr = "203.0.113.7:443".parse().unwrap();
        let err = check_addresses(&grants, &target, &[own], &[], &[own.ip()]).unwrap_err();
        let FetchError::Denied(why) = err else {
            panic!("{err:?}")
        };
        assert!(
            why.contains("app.example.com:443 resolves to 203.0.113.7")
                && why.contains("this host's own"),
            "{why}"
        );
        assert!(check_addresses(&grants, &target, &[own], &[], &[]).is_ok());
    }

    #[test]
    fn this_host_s_addresses_are_listed_and_cached() {
        let local = local_addresses().unwrap();
        assert!(local.iter().any(|ip| ip.is_loopback()), "{local:?}");
        let cache = LocalAddresses::new();
        let first = cache.get();
        assert!(first.iter().any(|ip| ip.is_loopback()), "{first:?}");
        // Within the TTL the same listing is handed out, not read again.
        assert!(Arc::ptr_eq(&first, &cache.get()));
        std::thread::sleep(LOCAL_ADDRESSES_TTL + Duration::from_millis(50));
        assert!(!Arc::ptr_eq(&first, &cache.get()));
    }

    #[test]
    fn host_header_must_repeat_the_url_s_host() {
        let url = Url::parse("https://API.example.com/x").unwrap();
        let h = |v: &str| vec![("HoSt".to_string(), v.to_string())];
        assert!(check_headers(&h("api.example.com"), &url, 0)
            .unwrap()
            .is_empty());
        assert!(check_headers(&h("API.EXAMPLE.COM:443"), &url, 0).is_ok());
        for bad in [
            "evil.example.com",
            "api.example.com:444",
            "api.example.com.evil",
            "",
        ] {
            let err = check_headers(&h(bad), &url, 0).unwrap_err();
            assert!(matches!(err, FetchError::Invalid(_)), "{bad}");
            assert!(!err.to_string().contains("evil"), "{err}");
        }
        let v6 = Url::parse("http://[::1]:8080/").unwrap();
        assert!(check_headers(&h("[::1]:8080"), &v6, 0).is_ok());
    }

    #[test]
    fn bad_or_connection_headers_are_refused_without_echoing_values() {
        let url = Url::parse("http://example.com/").unwrap();
        let one = |n: &str, v: &str| vec![(n.to_string(), v.to_string())];
        for (n, v) in [
            ("X-A", "secret\r\nInjected: 1"),
            ("X-A", "secret\0"),
            ("Bad Name", "secret"),
            (":authority", "secret"),
            ("", "secret"),
            ("Transfer-Encoding", "chunked"),
            ("connection", "close"),
            ("Upgrade", "h2c"),
            ("Content-Length", "5"),
        ] {
            let err = check_headers(&one(n, v), &url, 3).unwrap_err();
            assert!(matches!(err, FetchError::Invalid(_)), "{n}");
            assert!(!err.to_string().contains("secret"), "{err}");
        }
        assert!(check_headers(&one("Content-Length", "3"), &url, 3)
            .unwrap()
            .is_empty());
        let map = check_headers(
            &[("x-a".into(), "1".into()), ("X-A".into(), "2".into())],
            &url,
            0,
        )
        .unwrap();
        assert_eq!(map.get_all("x-a").iter().count(), 2);
    }

    #[test]
    fn methods() {
        assert_eq!(check_method("PATCH").unwrap(), Method::PATCH);
        assert_eq!(check_method("post").unwrap(), Method::POST);
        assert_eq!(check_method("PROPFIND").unwrap().as_str(), "PROPFIND");
        assert!(check_method("CONNECT").is_err());
        assert!(check_method("GE T").is_err());
        assert!(check_method("").is_err());
    }

    #[test]
    fn urls_are_shown_without_credentials_or_query() {
        let url = Url::parse("https://u:p@example.com:8443/a/b?key=secret#f").unwrap();
        assert_eq!(redact(&url), "https://example.com:8443/a/b");
    }
}
