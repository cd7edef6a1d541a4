//! The wire format of one exchange on the fetch channel (the file
//! `/run/faas/fetch` or the PHP socket): text heads every language can
//! write and parse with plain string functions, raw bytes after them.
//!
//! Request (guest → worker), ended by the guest's first read (file) or its
//! half-close (socket):
//!
//! ```text
//! METHOD SP URL LF
//! Name: value LF        (zero or more)
//! LF
//! body                  (any bytes, up to --max-outbound-bytes)
//! ```
//!
//! Response (worker → guest), ended by end of file:
//!
//! ```text
//! ok SP STATUS SP FINAL-URL LF       or   denied|error|timeout SP MESSAGE LF
//! Name: value LF        (zero or more; none after a refusal)
//! LF
//! body                  (any bytes; none after a refusal)
//! ```
//!
//! `CR LF` is accepted wherever `LF` is. A message never holds a line
//! break.

/// Most bytes of a request's head (request line and headers): a URL and
/// headers fit in far less; the body has its own cap.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Most headers in one request.
pub const MAX_HEADERS: usize = 100;

/// A request as the guest wrote it.
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Parses what a guest wrote; the error says what is wrong with it.
pub fn parse_request(bytes: &[u8], max_body: u64) -> Result<Request, String> {
    if bytes.is_empty() {
        return Err("empty request: write `METHOD URL`, headers, an empty line and the body before reading the answer".into());
    }
    let (head, body) = split_head(bytes)
        .ok_or_else(|| format!("the request's head (request line and headers) must end with an empty line within {MAX_HEAD_BYTES} bytes"))?;
    let head = std::str::from_utf8(head).map_err(|_| "the request's head is not UTF-8")?;
    let mut lines = head.lines();
    let first = lines.next().unwrap_or_default();
    let (method, url) = first
        .split_once(' ')
        .ok_or_else(|| format!("the first line must be `METHOD URL`, not {:?}", clip(first)))?;
    if method.is_empty() || method.len() > 32 || !method.bytes().all(is_token) {
        return Err(format!("bad method {:?}", clip(method)));
    }
    let url = url.trim();
    if url.is_empty() || url.contains(char::is_whitespace) {
        return Err(format!("bad URL {:?}", clip(url)));
    }
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("a header line must be `Name: value`, not {:?}", clip(line)))?;
        if name.is_empty() || !name.bytes().all(is_token) {
            return Err(format!("bad header name {:?}", clip(name)));
        }
        if value.contains(['\r', '\0']) {
            return Err(format!("bad value for header {name}"));
        }
        if headers.len() == MAX_HEADERS {
            return Err(format!("more than {MAX_HEADERS} headers"));
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }
    if body.len() as u64 > max_body {
        return Err(format!("the request body is over {max_body} bytes"));
    }
    Ok(Request {
        method: method.to_ascii_uppercase(),
        url: url.to_string(),
        headers,
        body: body.to_vec(),
    })
}

/// The head and the body, split at the first empty line (within
/// [`MAX_HEAD_BYTES`]).
fn split_head(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut start = 0;
    while start < bytes.len() && start <= MAX_HEAD_BYTES {
        let end = bytes[start..].iter().position(|&b| b == b'\n')? + start;
        let line = &bytes[start..end];
        if line.is_empty() || line == b"\r" {
            return Some((&bytes[..start], &bytes[end + 1..]));
        }
        start = end + 1;
    }
    None
}

/// An RFC 9110 token character (methods, header names).
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A guest's text, shortened for an error message.
fn clip(text: &str) -> String {
    text.chars().take(80).collect()
}

/// The answer to a request the remote server answered.
pub fn encode_ok(status: u16, url: &str, headers: &[(String, String)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("ok {status} {}\n", one_line(url)).into_bytes();
    out.reserve(body.len() + 64 * headers.len() + 1);
    for (name, value) in headers {
        out.extend_from_slice(one_line(name).as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(one_line(value).as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(body);
    out
}

/// The answer to a request that got no response: `outcome` is `denied`,
/// `error` or `timeout`.
pub fn encode_failure(outcome: &str, message: &str) -> Vec<u8> {
    format!("{outcome} {}\n\n", one_line(message)).into_bytes()
}

/// `text` with line breaks replaced: a value never ends the head early.
fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains(['\n', '\r']) {
        text.replace(['\n', '\r'], " ").into()
    } else {
        text.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_parses_with_lf_or_crlf_and_keeps_a_binary_body() {
        let body = [0u8, 10, 10, 13, 255];
        for eol in ["\n", "\r\n"] {
            let mut raw = format!("post http://h/x{eol}Content-Type: a/b{eol}X-Y:  z {eol}{eol}")
                .into_bytes();
            raw.extend_from_slice(&body);
            let req = parse_request(&raw, 100).unwrap();
            assert_eq!(req.method, "POST");
            assert_eq!(req.url, "http://h/x");
            assert_eq!(
                req.headers,
                vec![
                    ("Content-Type".into(), "a/b".into()),
                    ("X-Y".into(), "z".into())
                ]
            );
            assert_eq!(req.body, body);
        }
    }

    #[test]
    fn malformed_requests_are_refused_with_a_reason() {
        let bad: &[&[u8]] = &[
            b"",
            b"GET http://h/",              // no empty line
            b"GET\n\n",                    // no URL
            b"G T http://h/\n\n",          // URL with a space
            b"GET http://h/ x\n\n",        // URL with a space
            b"G(T http://h/\n\n",          // method not a token
            b"GET http://h/\nNoColon\n\n", // header without ':'
            b"GET http://h/\nA B: c\n\n",  // header name not a token
            b"GET http://h/\n\xff: c\n\n", // not UTF-8
        ];
        for raw in bad {
            assert!(
                parse_request(raw, 100).is_err(),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
        let over = b"GET http://h/\n\n0123456789";
        assert!(parse_request(over, 9).unwrap_err().contains("over 9 bytes"));
        let mut long = b"GET http://h/\n".to_vec();
        long.extend(std::iter::repeat_n(b"A: b\n", MAX_HEAD_BYTES / 5 + 1).flatten());
        long.extend_from_slice(b"\n");
        assert!(parse_request(&long, 9).is_err());
        let mut many = b"GET http://h/\n".to_vec();
        many.extend(std::iter::repeat_n(b"A: b\n", MAX_HEADERS + 1).flatten());
        many.extend_from_slice(b"\n");
        assert!(parse_request(&many, 9).unwrap_err().contains("headers"));
    }

    #[test]
    fn answers_keep_their_head_on_its_lines() {
        let ok = encode_ok(
            200,
            "http://h/\nx",
            &[("A".into(), "b\r\nInjected: 1".into())],
            b"\n\nbody",
        );
        assert_eq!(ok, b"ok 200 http://h/ x\nA: b  Injected: 1\n\n\n\nbody");
        assert_eq!(
            encode_failure("denied", "host h\nis not granted"),
            b"denied host h is not granted\n\n"
        );
    }
}
