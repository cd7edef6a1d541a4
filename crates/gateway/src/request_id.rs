//! Request ids: the client's `X-Request-Id` when it is a sane one (at most
//! 128 of `[A-Za-z0-9._-]`), else a fresh one, unique in this process and
//! unlikely to repeat across restarts (start time + counter).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use hyper::Request;

/// The id of `req`.
pub fn of<B>(req: &Request<B>) -> String {
    req.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_valid(v))
        .map(str::to_string)
        .unwrap_or_else(generate)
}

/// Whether a client's id can be used as it is.
pub fn is_valid(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn generate() -> String {
    static START: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let start = START.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64)
    });
    format!("{start:x}-{:x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_are_kept_when_sane() {
        let req = Request::builder()
            .header("x-request-id", "abc-1.2_3")
            .body(())
            .unwrap();
        assert_eq!(of(&req), "abc-1.2_3");
        for bad in ["", "has space", "semi;colon", &"x".repeat(129)] {
            let req = Request::builder()
                .header("x-request-id", bad)
                .body(())
                .unwrap();
            let id = of(&req);
            assert_ne!(id, bad);
            assert!(is_valid(&id), "{id}");
        }
        let a = of(&Request::new(()));
        let b = of(&Request::new(()));
        assert_ne!(a, b);
    }
}
