//! Bearer tokens (`--api-token`, `--invoke-token`), compared in constant
//! time so the answer's timing says nothing about how much of a guess was
//! right, and found in headers that must not reach a function.

use hyper::header::AUTHORIZATION;
use hyper::Request;

/// Whether `req` carries `Authorization: Bearer <token>`.
pub fn bearer_matches<B>(req: &Request<B>, token: &str) -> bool {
    let Some(given) = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    constant_time_eq(given.trim().as_bytes(), token.as_bytes())
}

/// Whether a header value contains one of the platform's tokens (a
/// function must never see one, in any header or form).
pub fn carries_token(value: &[u8], tokens: &[&str]) -> bool {
    tokens.iter().any(|token| {
        !token.is_empty()
            && value
                .windows(token.len())
                .any(|window| window == token.as_bytes())
    })
}

/// Equal contents, in a time that depends only on the lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_token_passes() {
        let with = |v: &str| {
            Request::builder()
                .header("authorization", v)
                .body(())
                .unwrap()
        };
        assert!(bearer_matches(&with("Bearer s3cret"), "s3cret"));
        assert!(!bearer_matches(&with("Bearer s3cre"), "s3cret"));
        assert!(!bearer_matches(&with("Bearer s3cret!"), "s3cret"));
        assert!(!bearer_matches(&with("Basic s3cret"), "s3cret"));
        assert!(!bearer_matches(&Request::new(()), "s3cret"));
    }

    #[test]
    fn platform_tokens_are_found_in_any_form() {
        let tokens = ["api-s3cret", "inv-s3cret"];
        assert!(carries_token(b"Bearer api-s3cret", &tokens));
        assert!(carries_token(b"token inv-s3cret, x", &tokens));
        assert!(!carries_token(b"Bearer another", &tokens));
        assert!(!carries_token(b"Bearer api-s3cre", &tokens));
        assert!(!carries_token(b"anything", &[]));
        assert!(!carries_token(b"anything", &[""]));
    }
}
