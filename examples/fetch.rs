// Outbound HTTP from a Rust function: copy the `faas_fetch` module into
// yours (std only).
//
// The function may call only the hosts it was deployed with:
//   curl -X POST 'http://127.0.0.1:8080/deploy?name=fetchrs&lang=rust&allow=api.example.com' \
//     --data-binary @examples/fetch.rs
//   curl -X POST 'http://127.0.0.1:8080/invoke?fn=fetchrs' --data-binary 'https://api.example.com/status'
//
// This example's input: a first line `URL` (GET) or `METHOD URL`, then the
// request body. It prints the status line, then the response body; a
// refused or failed request prints `FAILED <kind>: <why>` and the call goes
// on.

use std::io::{Read, Write};

// faas-fetch: begin ------------------------------------------------------
/// Outbound HTTP through the platform's client. No sockets: the request is
/// written to, and the answer read from, the file `/run/faas/fetch`, which
/// exists only when the function was deployed with `allow=HOST`.
///
/// ```ignore
/// let r = faas_fetch::fetch("POST", "https://api.example.com/items",
///     &[("Content-Type", "application/json")], br#"{"name":"x"}"#)?;
/// println!("{} {:?} {}", r.status, r.header("content-type"), String::from_utf8_lossy(&r.body));
/// ```
#[allow(dead_code)]
mod faas_fetch {
    use std::io::{Read, Write};

    /// Why a request got no response.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Kind {
        /// Refused by the policy: host or port not granted, a private
        /// address, the platform's own port, too many requests.
        Denied,
        /// The call's deadline came first.
        Timeout,
        /// Connection, TLS, a response over the size cap, a bad request.
        Error,
        /// The function has no grants (no `/run/faas/fetch`).
        NoChannel,
    }

    #[derive(Debug)]
    pub struct Error {
        pub kind: Kind,
        pub message: String,
    }

    impl std::fmt::Display for Error {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{:?}: {}", self.kind, self.message)
        }
    }

    impl std::error::Error for Error {}

    pub struct Response {
        pub status: u16,
        /// The final URL (after redirects).
        pub url: String,
        /// (name, value), names in lowercase as received.
        pub headers: Vec<(String, String)>,
        pub body: Vec<u8>,
    }

    impl Response {
        /// The first value of header `name` (any case).
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    fn fail(kind: Kind, message: impl Into<String>) -> Error {
        Error { kind, message: message.into() }
    }

    pub fn fetch(
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response, Error> {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/run/faas/fetch")
            .map_err(|_| fail(Kind::NoChannel, "no outbound channel: deploy with allow=HOST"))?;
        let line = |s: &str| s.replace(['\r', '\n'], " ");
        let mut request = format!("{} {}\n", line(method), line(url));
        for (name, value) in headers {
            request.push_str(&format!("{}: {}\n", line(name), line(value)));
        }
        request.push('\n');
        let mut request = request.into_bytes();
        request.extend_from_slice(body);
        let mut answer = Vec::new();
        file.write_all(&request)
            .and_then(|_| file.read_to_end(&mut answer))
            .map_err(|e| fail(Kind::Error, e.to_string()))?;
        let end = answer
            .windows(2)
            .position(|w| w == b"\n\n")
            .ok_or_else(|| fail(Kind::Error, "no answer"))?;
        let head = String::from_utf8_lossy(&answer[..end]).into_owned();
        let mut lines = head.split('\n');
        let first = lines.next().unwrap_or_default();
        let (outcome, rest) = first.split_once(' ').unwrap_or((first, ""));
        let kind = match outcome {
            "ok" => None,
            "denied" => Some(Kind::Denied),
            "timeout" => Some(Kind::Timeout),
            _ => Some(Kind::Error),
        };
        if let Some(kind) = kind {
            return Err(fail(kind, rest));
        }
        let (status, final_url) = rest.split_once(' ').unwrap_or((rest, url));
        Ok(Response {
            status: status.parse().unwrap_or(0),
            url: final_url.to_string(),
            headers: lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect(),
            body: answer[end + 2..].to_vec(),
        })
    }
}
// faas-fetch: end --------------------------------------------------------

fn main() {
    // The payload: `[METHOD ]URL`, a line break, then the body.
    let mut input = Vec::new();
    std::io::stdin().read_to_end(&mut input).unwrap();
    let split = input.iter().position(|&b| b == b'\n').unwrap_or(input.len());
    let first = String::from_utf8_lossy(&input[..split]).into_owned();
    let body = input.get(split + 1..).unwrap_or_default();
    let (method, url) = first.split_once(' ').unwrap_or(("GET", &first));
    let mut out = std::io::stdout().lock();
    match faas_fetch::fetch(method, url, &[], body) {
        Ok(r) => {
            let _ = writeln!(out, "{} {}", r.status, r.header("content-type").unwrap_or(""));
            let _ = out.write_all(&r.body);
        }
        Err(e) => {
            let kind = match e.kind {
                faas_fetch::Kind::Denied => "denied",
                faas_fetch::Kind::Timeout => "timeout",
                faas_fetch::Kind::Error => "error",
                faas_fetch::Kind::NoChannel => "no-channel",
            };
            let _ = writeln!(out, "FAILED {kind}: {}", e.message);
        }
    }
}
