//! Peer notices: after changing the shared index, a replica tells its
//! peers to read it now instead of at their next poll.
//!
//! A notice is `POST /cluster/notice` with a JSON body
//! `{"replica", "generation", "sent_ms"}` and the header
//! `X-Faas-Signature: sha256=<hex HMAC-SHA256 of the body with the cluster
//! key>`. A notice only makes the receiver read the index sooner, so a
//! replayed one does little harm; still, one older than [`MAX_AGE_MS`] and
//! one already received are refused, and any unsigned or wrongly signed
//! one gets 401.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

const PART: &str = "CLUSTER";
/// A notice older (or newer: clocks differ) than this is refused.
pub const MAX_AGE_MS: u64 = 60_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub replica: String,
    pub generation: u64,
    pub sent_ms: u64,
}

/// The cluster key, read from `--cluster-key-file`.
#[derive(Clone)]
pub struct ClusterKey(Vec<u8>);

impl ClusterKey {
    /// Reads the key; surrounding whitespace is not part of it. At least
    /// 16 bytes, so a placeholder cannot pass for a key.
    pub fn from_file(path: &std::path::Path) -> anyhow::Result<Self> {
        let text = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("cannot read the cluster key {}: {e}", path.display()))?;
        let key = text.trim_ascii().to_vec();
        if key.len() < 16 {
            anyhow::bail!(
                "the cluster key in {} is {} bytes; use at least 16 (e.g. `head -c 32 /dev/urandom | base64 > {}`)",
                path.display(),
                key.len(),
                path.display()
            );
        }
        Ok(Self(key))
    }

    #[cfg(test)]
    pub fn from_bytes(key: &[u8]) -> Self {
        Self(key.to_vec())
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length")
    }

    /// A 32-byte key for another purpose, derived from this one (HMAC
    /// with `label`): replicas that share the cluster key share it too.
    pub fn derive(&self, label: &[u8]) -> [u8; 32] {
        let mut mac = self.mac();
        mac.update(label);
        mac.finalize().into_bytes().into()
    }

    /// The signature header's value for `body`.
    pub fn sign(&self, body: &[u8]) -> String {
        let mut mac = self.mac();
        mac.update(body);
        format!(
            "sha256={}",
            super::objects::hex(&mac.finalize().into_bytes())
        )
    }

    /// Whether `signature` is this key's for `body` (in constant time).
    pub fn verify(&self, body: &[u8], signature: &str) -> bool {
        let Some(hex) = signature.trim().strip_prefix("sha256=") else {
            return false;
        };
        let Some(bytes) = unhex(hex) else {
            return false;
        };
        let mut mac = self.mac();
        mac.update(body);
        mac.verify_slice(&bytes).is_ok()
    }

    /// Checks a received notice: signed with this key, well formed, and
    /// recent. The error is what the sender is told (401).
    pub fn open(&self, body: &str, signature: Option<&str>) -> Result<Notice, String> {
        let Some(signature) = signature else {
            return Err("a cluster notice needs an X-Faas-Signature header".into());
        };
        if !self.verify(body.as_bytes(), signature) {
            return Err("the cluster notice's signature is wrong".into());
        }
        let notice: Notice = serde_json::from_str(body)
            .map_err(|_| "the cluster notice is not valid".to_string())?;
        if now_ms().abs_diff(notice.sent_ms) > MAX_AGE_MS {
            return Err(
                "the cluster notice is too old (or the clocks differ by over a minute)".into(),
            );
        }
        Ok(notice)
    }
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 == 1 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Where the peers are: a fixed list of base URLs, or a DNS name whose A
/// records (a Kubernetes headless Service) are the peers, on one port.
#[derive(Debug, Clone, Default)]
pub struct Peers {
    pub urls: Vec<String>,
    pub dns: Option<(String, u16)>,
}

impl Peers {
    /// Parses `--peers URL,...` and `--peers-dns NAME:PORT`.
    pub fn parse(urls: Option<&str>, dns: Option<&str>) -> anyhow::Result<Self> {
        let urls = urls
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(|u| {
                if u.starts_with("http://") || u.starts_with("https://") {
                    Ok(u.trim_end_matches('/').to_string())
                } else {
                    Err(anyhow::anyhow!(
                        "--peers: '{u}' is not an http:// or https:// URL"
                    ))
                }
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let dns = dns
            .map(|d| {
                let (name, port) = d
                    .rsplit_once(':')
                    .ok_or_else(|| anyhow::anyhow!("--peers-dns: '{d}' is not NAME:PORT"))?;
                let port = port
                    .parse::<u16>()
                    .map_err(|_| anyhow::anyhow!("--peers-dns: '{port}' is not a port"))?;
                Ok::<_, anyhow::Error>((name.to_string(), port))
            })
            .transpose()?;
        Ok(Self { urls, dns })
    }

    pub fn is_empty(&self) -> bool {
        self.urls.is_empty() && self.dns.is_none()
    }

    /// The peers' base URLs now (DNS is resolved on every call: pods come
    /// and go).
    pub async fn resolve(&self) -> Vec<String> {
        let mut all = self.urls.clone();
        if let Some((name, port)) = &self.dns {
            match tokio::net::lookup_host((name.as_str(), *port)).await {
                Ok(addrs) => all.extend(addrs.map(|a| format!("http://{a}"))),
                Err(err) => log::warn!(target: PART, "resolving peers {name}: {err}"),
            }
        }
        all.sort();
        all.dedup();
        all
    }
}

/// Sends `notice` to every peer, each within a second; failures are
/// logged (the peers' polling covers a lost notice).
pub async fn send_all(client: &reqwest::Client, peers: &Peers, key: &ClusterKey, notice: &Notice) {
    let body = serde_json::to_string(notice).expect("serialises");
    let signature = key.sign(body.as_bytes());
    let sends = peers.resolve().await.into_iter().map(|peer| {
        let request = client
            .post(format!("{peer}/cluster/notice"))
            .header("x-faas-signature", &signature)
            .header("content-type", "application/json")
            .timeout(Duration::from_secs(1))
            .body(body.clone());
        async move {
            match request.send().await {
                Ok(resp) if resp.status().is_success() => {}
                Ok(resp) => {
                    log::warn!(target: PART, "peer {peer} refused a notice: {}", resp.status())
                }
                Err(err) => log::debug!(target: PART, "peer {peer} unreachable: {err}"),
            }
        }
    });
    futures_util::future::join_all(sends).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_open_only_with_the_right_key_and_time() {
        let key = ClusterKey::from_bytes(b"0123456789abcdef0123");
        let other = ClusterKey::from_bytes(b"another key, also long");
        let notice = Notice {
            replica: "r1".into(),
            generation: 7,
            sent_ms: now_ms(),
        };
        let body = serde_json::to_string(&notice).unwrap();
        let signature = key.sign(body.as_bytes());
        assert_eq!(key.open(&body, Some(&signature)).unwrap(), notice);
        assert!(key.open(&body, None).is_err());
        assert!(other.open(&body, Some(&signature)).is_err());
        assert!(key.open(&body, Some("sha256=zz")).is_err());
        assert!(key.open(&body, Some(&other.sign(body.as_bytes()))).is_err());
        // A signed body changed afterwards is refused.
        let forged = body.replace("\"r1\"", "\"r2\"");
        assert!(key.open(&forged, Some(&signature)).is_err());
        // An old notice, even signed, is refused.
        let old = Notice {
            sent_ms: now_ms() - 2 * MAX_AGE_MS,
            ..notice
        };
        let old_body = serde_json::to_string(&old).unwrap();
        assert!(key
            .open(&old_body, Some(&key.sign(old_body.as_bytes())))
            .is_err());
    }

    #[test]
    fn peers_parse() {
        let peers = Peers::parse(Some("http://a:1, http://b:2/"), Some("faas-peers:8080")).unwrap();
        assert_eq!(peers.urls, ["http://a:1", "http://b:2"]);
        assert_eq!(peers.dns, Some(("faas-peers".into(), 8080)));
        assert!(Peers::parse(Some("a:1"), None).is_err());
        assert!(Peers::parse(None, Some("nameonly")).is_err());
        assert!(Peers::parse(None, None).unwrap().is_empty());
    }
}
