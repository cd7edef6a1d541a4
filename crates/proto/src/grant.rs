//! Outbound grants: the hosts a deployer lets a function call
//! (`allow=HOST[:PORT]`, repeatable). Parsed and normalised here, so the
//! Server refuses a bad entry at deploy with the same rule the worker's
//! HTTP client later enforces.
//!
//! | entry | permits |
//! |---|---|
//! | `api.example.com` | that host, ports 443 and 80 |
//! | `api.example.com:8443` | that host, that port only |
//! | `*.example.com` | any subdomain of example.com (not example.com itself), 443 and 80 |
//! | `127.0.0.1:8080`, `[::1]:8080` | exactly that address and port |
//!
//! A grant names a host, never an address range: a granted name that
//! resolves to a private address is still refused by the client unless
//! that address itself is granted ([`Grants::permits_address`]).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Ports a grant without one permits.
pub const DEFAULT_PORTS: [u16; 2] = [443, 80];

/// Most grants one function may hold.
pub const MAX_GRANTS: usize = 64;

/// What a grant names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantHost {
    /// One host name, lowercase.
    Name(String),
    /// Every subdomain of this name (lowercase, without the `*.`).
    Subdomains(String),
    /// One address.
    Ip(IpAddr),
}

/// One `allow=` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub host: GrantHost,
    /// `None`: [`DEFAULT_PORTS`].
    pub port: Option<u16>,
}

impl Grant {
    /// Whether a request to `host` (lowercase; an address in its canonical
    /// text form, IPv6 without brackets) on `port` is granted.
    pub fn permits(&self, host: &str, port: u16) -> bool {
        let port_ok = match self.port {
            Some(p) => p == port,
            None => DEFAULT_PORTS.contains(&port),
        };
        port_ok
            && match &self.host {
                GrantHost::Name(name) => name == host,
                GrantHost::Subdomains(parent) => host
                    .strip_suffix(parent.as_str())
                    .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
                GrantHost::Ip(ip) => host.parse::<IpAddr>().is_ok_and(|h| h == *ip),
            }
    }
}

impl FromStr for Grant {
    type Err = String;

    fn from_str(entry: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("allow entry '{entry}': {why}");
        if entry.is_empty() {
            return Err(bad("empty"));
        }
        if entry.contains("://") {
            return Err(bad("give a host, not a URL (no scheme)"));
        }
        if entry.contains(['/', '?', '#', '@', ' ']) {
            return Err(bad(
                "give a host and optional port only (no path, query or user)",
            ));
        }
        let (host, port) = split_port(entry).map_err(|e| bad(&e))?;
        let port = match port {
            None => None,
            Some(text) => match text.parse::<u16>() {
                Ok(0) | Err(_) => return Err(bad("the port must be a number from 1 to 65535")),
                Ok(p) => Some(p),
            },
        };
        if let Some(inner) = host.strip_prefix('[') {
            let Some(inner) = inner.strip_suffix(']') else {
                return Err(bad("unclosed '['"));
            };
            return match inner.parse::<std::net::Ipv6Addr>() {
                Ok(ip) => Ok(Self {
                    host: GrantHost::Ip(IpAddr::V6(ip)),
                    port,
                }),
                Err(_) => Err(bad("not an IPv6 address between '[' and ']'")),
            };
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(Self {
                host: GrantHost::Ip(ip),
                port,
            });
        }
        let host = host.to_ascii_lowercase();
        if host == "*" {
            return Err(bad("'*' alone would grant every host"));
        }
        if let Some(parent) = host.strip_prefix("*.") {
            check_name(parent).map_err(|e| bad(&e))?;
            if !parent.contains('.') {
                return Err(bad("a wildcard needs at least two labels after '*.' (not a whole top-level domain)"));
            }
            return Ok(Self {
                host: GrantHost::Subdomains(parent.to_string()),
                port,
            });
        }
        if host.contains('*') {
            return Err(bad(
                "'*' is only allowed as a whole first label ('*.example.com')",
            ));
        }
        check_name(&host).map_err(|e| bad(&e))?;
        Ok(Self {
            host: GrantHost::Name(host),
            port,
        })
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            GrantHost::Name(name) => write!(f, "{name}")?,
            GrantHost::Subdomains(parent) => write!(f, "*.{parent}")?,
            GrantHost::Ip(IpAddr::V4(ip)) => write!(f, "{ip}")?,
            GrantHost::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]")?,
        }
        match self.port {
            Some(port) => write!(f, ":{port}"),
            None => Ok(()),
        }
    }
}

/// `host[:port]`, `[v6][:port]`, or a bare IPv6 address (no port).
fn split_port(entry: &str) -> Result<(&str, Option<&str>), String> {
    if entry.starts_with('[') {
        return match entry.find(']') {
            Some(end) if end + 1 == entry.len() => Ok((entry, None)),
            Some(end) => match entry[end + 1..].strip_prefix(':') {
                Some(port) => Ok((&entry[..=end], Some(port))),
                None => Err("unexpected text after ']'".into()),
            },
            None => Err("unclosed '['".into()),
        };
    }
    if entry.matches(':').count() > 1 {
        // A bare IPv6 address: its port would be ambiguous.
        return Ok((entry, None));
    }
    Ok(match entry.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (entry, None),
    })
}

/// A DNS name as a URL would carry it: ASCII labels of letters, digits and
/// `-` (internationalised names in their `xn--` form), 1 to 63 bytes each,
/// 253 in all.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 253 {
        return Err("a host name has 1 to 253 characters".into());
    }
    for label in name.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(format!(
                "'{label}' is not a valid host name label (letters, digits and '-'; IDN names in their xn-- form)"
            ));
        }
    }
    Ok(())
}

/// A function's grants, normalised (sorted, without duplicates). On the
/// wire and in metadata: the list of their texts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct Grants(Vec<Grant>);

impl Grants {
    /// Parses `allow=` entries; the first bad one is the error.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        if entries.len() > MAX_GRANTS {
            return Err(format!(
                "too many allow entries ({}; at most {MAX_GRANTS})",
                entries.len()
            ));
        }
        let mut grants = entries
            .iter()
            .map(|e| e.as_ref().trim().parse::<Grant>())
            .collect::<Result<Vec<_>, _>>()?;
        grants.sort_by_key(|g| g.to_string());
        grants.dedup();
        Ok(Self(grants))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Grant> {
        self.0.iter()
    }

    /// Whether a request to `host` on `port` is granted (see
    /// [`Grant::permits`]).
    pub fn permits(&self, host: &str, port: u16) -> bool {
        self.0.iter().any(|g| g.permits(host, port))
    }

    /// Whether `ip:port` is granted as an address literal: what lets a
    /// call reach a private address (a name resolving to one is not
    /// enough).
    pub fn permits_address(&self, ip: IpAddr, port: u16) -> bool {
        self.0.iter().any(|g| {
            matches!(g.host, GrantHost::Ip(granted) if granted == ip)
                && g.permits(&ip.to_string(), port)
        })
    }

    /// The entries' texts, normalised.
    pub fn texts(&self) -> Vec<String> {
        self.0.iter().map(Grant::to_string).collect()
    }
}

impl TryFrom<Vec<String>> for Grants {
    type Error = String;

    fn try_from(entries: Vec<String>) -> Result<Self, String> {
        Self::parse(&entries)
    }
}

impl From<Grants> for Vec<String> {
    fn from(grants: Grants) -> Self {
        grants.texts()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(s: &str) -> Grant {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn a_name_without_port_permits_443_and_80_of_that_name_only() {
        let g = grant("API.Example.com");
        assert_eq!(g.to_string(), "api.example.com");
        assert!(g.permits("api.example.com", 443));
        assert!(g.permits("api.example.com", 80));
        assert!(!g.permits("api.example.com", 8080));
        assert!(!g.permits("x.api.example.com", 443));
        assert!(!g.permits("example.com", 443));
    }

    #[test]
    fn a_port_permits_that_port_only() {
        let g = grant("api.example.com:8443");
        assert!(g.permits("api.example.com", 8443));
        assert!(!g.permits("api.example.com", 443));
    }

    #[test]
    fn a_wildcard_permits_subdomains_not_the_parent_nor_lookalikes() {
        let g = grant("*.example.com");
        assert!(g.permits("a.example.com", 443));
        assert!(g.permits("a.b.example.com", 80));
        assert!(!g.permits("example.com", 443));
        assert!(!g.permits("badexample.com", 443));
        assert!(!g.permits(".example.com", 443));
    }

    #[test]
    fn an_address_permits_exactly_that_address() {
        let g = grant("127.0.0.1:8080");
        assert!(g.permits("127.0.0.1", 8080));
        assert!(!g.permits("127.0.0.1", 8081));
        assert!(!g.permits("localhost", 8080));
        let v6 = grant("[::1]:9000");
        assert_eq!(v6.to_string(), "[::1]:9000");
        assert!(v6.permits("::1", 9000));
        let grants = Grants::parse(&["127.0.0.1:8080", "localhost:8080"]).unwrap();
        assert!(grants.permits_address("127.0.0.1".parse().unwrap(), 8080));
        assert!(!grants.permits_address("127.0.0.1".parse().unwrap(), 8081));
        let by_name = Grants::parse(&["localhost:8080"]).unwrap();
        assert!(!by_name.permits_address("127.0.0.1".parse().unwrap(), 8080));
    }

    #[test]
    fn bad_entries_are_refused_naming_the_problem() {
        for (entry, why) in [
            ("", "empty"),
            ("*", "every host"),
            ("https://api.example.com", "scheme"),
            ("api.example.com/v1", "path"),
            ("api.example.com:0", "port"),
            ("api.example.com:65536", "port"),
            ("api.example.com:http", "port"),
            ("api.example.com:", "port"),
            ("a*.example.com", "first label"),
            ("*.com", "two labels"),
            ("exa mple.com", "path"),
            ("-bad.example.com", "label"),
            ("user@example.com", "user"),
            ("[::1", "unclosed"),
            ("[::1]x", "after"),
        ] {
            let err = entry.parse::<Grant>().unwrap_err();
            assert!(err.contains(why), "{entry}: {err}");
        }
    }

    #[test]
    fn grants_are_normalised_and_round_trip_as_their_texts() {
        let grants = Grants::parse(&["b.example.com", "A.example.com", "a.example.com"]).unwrap();
        assert_eq!(grants.texts(), ["a.example.com", "b.example.com"]);
        let json = serde_json::to_string(&grants).unwrap();
        assert_eq!(json, r#"["a.example.com","b.example.com"]"#);
        let back: Grants = serde_json::from_str(&json).unwrap();
        assert_eq!(back, grants);
        assert!(serde_json::from_str::<Grants>(r#"["*"]"#).is_err());
        let many: Vec<String> = (0..=MAX_GRANTS)
            .map(|i| format!("h{i}.example.com"))
            .collect();
        assert!(Grants::parse(&many).unwrap_err().contains("too many"));
    }
}
