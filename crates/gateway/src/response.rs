//! Building HTTP responses: JSON bodies, errors in the platform's shape
//! (`{"ok":false,"error":"..."}`), and the Server's replies.

use faas_proto::{ErrorKind, FailureKind, JobResult, Reply, ServiceError};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Response, StatusCode};
use serde_json::json;

use crate::status;

pub type HttpResponse = Response<Full<Bytes>>;

/// A JSON response.
pub fn json(status: StatusCode, body: &serde_json::Value) -> HttpResponse {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// A plain-text response.
pub fn text(status: StatusCode, body: String) -> HttpResponse {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Bytes served as `content_type` (a prebuilt module, a project's
/// archive).
pub fn bytes(status: StatusCode, content_type: &str, body: Vec<u8>) -> HttpResponse {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    let value = HeaderValue::from_str(content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    resp.headers_mut().insert(CONTENT_TYPE, value);
    resp
}

/// The JSON error for `error`, with the status its kind maps to. An
/// overload or a store outage says when to retry (`Retry-After`); other
/// 503s do not: a missing toolchain or worker is not fixed by waiting.
pub fn error(error: &ServiceError) -> HttpResponse {
    let mut body = json!({"ok": false, "error": error.message});
    if let Some(details) = &error.details {
        body["details"] = json!(details);
    }
    let mut resp = json(status::for_error(error.kind), &body);
    let retry_after = match error.kind {
        ErrorKind::Overloaded => Some("1"),
        ErrorKind::StoreUnavailable => Some("5"),
        _ => None,
    };
    if let Some(seconds) = retry_after {
        resp.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static(seconds));
    }
    resp
}

/// 405 with the methods the route takes.
pub fn method_not_allowed(allow: &'static str) -> HttpResponse {
    let mut resp = error(&ServiceError::new(
        ErrorKind::MethodNotAllowed,
        format!("method not allowed here; use {allow}"),
    ));
    resp.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    resp
}

/// 401 with `WWW-Authenticate: Bearer`.
pub fn unauthorized() -> HttpResponse {
    let mut resp = json(
        StatusCode::UNAUTHORIZED,
        &json!({"ok": false, "error": "missing or wrong token: send Authorization: Bearer TOKEN"}),
    );
    resp.headers_mut()
        .insert("www-authenticate", HeaderValue::from_static("Bearer"));
    resp
}

/// 421 for a `Host` this server does not answer to (`host` as sent).
pub fn misdirected(host: &str) -> HttpResponse {
    let host: String = host.chars().take(100).collect();
    json(
        StatusCode::MISDIRECTED_REQUEST,
        &json!({"ok": false, "error": format!(
            "this server does not answer to Host '{host}'; if that is one of its names, start it with --allowed-hosts naming it"
        )}),
    )
}

/// 403 for a request refused as cross-site, saying why.
pub fn forbidden(why: String) -> HttpResponse {
    json(StatusCode::FORBIDDEN, &json!({"ok": false, "error": why}))
}

/// The policy for a `/fn/` page: scripts, forms and popups run, but in an
/// opaque origin, so a function's page cannot read the dashboard's storage,
/// reach its windows, or send same-origin requests with its credentials.
pub const FN_SANDBOX: &str = "sandbox allow-scripts allow-forms allow-popups";

/// Headers every answer carries: `nosniff` (a browser renders a body only
/// as the type it was declared with), and on `/fn/` answers (`fn_route`),
/// successes and errors alike, the sandbox policy [`FN_SANDBOX`].
pub fn harden(resp: &mut HttpResponse, fn_route: bool) {
    let headers = resp.headers_mut();
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    if fn_route {
        headers.insert(
            "content-security-policy",
            HeaderValue::from_static(FN_SANDBOX),
        );
    }
}

/// Turns the Server's reply into the HTTP answer.
pub fn from_reply(reply: Reply, request_id: &str) -> HttpResponse {
    match reply {
        Reply::Deployed { function } => {
            // Where the function runs: in WebAssembly, as a host process in
            // bubblewrap, or served as is.
            let runtime = match (function.lang, function.wasm) {
                (faas_proto::Lang::Html, _) => "static",
                (_, true) => "wasm",
                (_, false) => "native",
            };
            let mut body = json!({"ok": true, "id": function.id, "name": function.name,
                        "lang": function.lang, "wasm": function.wasm, "runtime": runtime});
            // A project: how it was packed and the entry file it runs.
            if let Some(archive) = function.settings.archive {
                body["archive"] = json!(archive);
                body["entry"] = json!(function.settings.entry);
            }
            json(StatusCode::CREATED, &body)
        }
        Reply::Invoked {
            worker_id, result, ..
        } => invocation(worker_id, result, request_id),
        Reply::Versions { versions } => {
            json(StatusCode::OK, &json!({"ok": true, "versions": versions}))
        }
        Reply::Metrics { text } => {
            let mut resp = Response::new(Full::new(Bytes::from(text)));
            resp.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            resp
        }
        Reply::Dashboard { data } => json(StatusCode::OK, &data),
        Reply::Readiness { ready: true, .. } => {
            json(StatusCode::OK, &json!({"ok": true, "ready": true}))
        }
        Reply::Readiness {
            ready: false,
            reasons,
        } => json(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"ok": false, "ready": false, "error": format!("not ready: {}", reasons.join("; "))}),
        ),
        Reply::Noticed => json(StatusCode::OK, &json!({"ok": true})),
        Reply::SecretStored { created, secret } => json(
            if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            },
            &json!({"ok": true, "created": created, "secret": secret}),
        ),
        Reply::Secrets { secrets } => {
            json(StatusCode::OK, &json!({"ok": true, "secrets": secrets}))
        }
        Reply::SecretDeleted { name } => {
            json(StatusCode::OK, &json!({"ok": true, "deleted": name}))
        }
        Reply::Deleted { removed } => {
            json(StatusCode::OK, &json!({"ok": true, "removed": removed}))
        }
        Reply::Invocations { invocations } => json(
            StatusCode::OK,
            &json!({"ok": true, "invocations": invocations}),
        ),
        Reply::Source {
            code, content_type, ..
        } => match content_type {
            Some(ct) => bytes(StatusCode::OK, &ct, code.into_bytes()),
            None => text(
                StatusCode::OK,
                String::from_utf8_lossy(code.as_bytes()).into_owned(),
            ),
        },
        Reply::Files { files } => json(StatusCode::OK, &json!({"ok": true, "files": files})),
        Reply::Functions { functions } => {
            json(StatusCode::OK, &json!({"ok": true, "functions": functions}))
        }
        Reply::Stats { stats } => {
            let mut body = serde_json::to_value(stats).unwrap_or_default();
            body["ok"] = json!(true);
            json(StatusCode::OK, &body)
        }
        reply @ (Reply::Queued { .. }
        | Reply::Call { .. }
        | Reply::DeadLetters { .. }
        | Reply::Forgotten { .. }
        | Reply::Schedules { .. }) => background(reply),
        Reply::Failed { error: e } => error(&e),
    }
}

/// The answers of background work: 202 with `X-Call-Id` for a queued
/// call, the call's JSON, the dead letters.
fn background(reply: Reply) -> HttpResponse {
    match reply {
        Reply::Queued { id } => {
            let body = json!({"ok": true, "id": id, "status_url": format!("/invocation/{id}")});
            let mut resp = json(StatusCode::ACCEPTED, &body);
            if let Ok(value) = HeaderValue::from_str(&id) {
                resp.headers_mut().insert("x-call-id", value);
            }
            resp
        }
        Reply::Call { call } => json(StatusCode::OK, &call),
        Reply::DeadLetters { calls } => {
            json(StatusCode::OK, &json!({"ok": true, "dead_letters": calls}))
        }
        Reply::Forgotten { id } => json(StatusCode::OK, &json!({"ok": true, "deleted": id})),
        Reply::Schedules { schedules } => {
            json(StatusCode::OK, &json!({"ok": true, "schedules": schedules}))
        }
        other => error(&ServiceError::internal(format!(
            "unexpected reply {other:?}"
        ))),
    }
}

/// The seed's invoke answer, extended: output, stderr, exit code, the
/// worker that ran it and how long it took; `error` when it failed. Output
/// that is not UTF-8 comes as `output_base64` (`stderr_base64`) instead,
/// never converted lossily.
fn invocation(worker_id: usize, result: JobResult, request_id: &str) -> HttpResponse {
    let status = status::for_invocation(&result);
    let mut body = json!({
        "ok": result.ok,
        "request_id": request_id,
        "exit_code": result.exit_code,
        "worker_id": worker_id,
        // Microsecond precision is all a client can use.
        "duration_ms": (result.duration_ms * 1000.0).round() / 1000.0,
    });
    for (field, blob) in [("output", &result.output), ("stderr", &result.stderr)] {
        match blob.as_str() {
            Some(text) => body[field] = json!(text),
            None => body[format!("{field}_base64")] = json!(blob.to_base64()),
        }
    }
    if result.truncated {
        body["truncated"] = json!(true);
    }
    if !result.ok {
        body["error"] = json!(result.error.unwrap_or_else(|| "function failed".into()));
        if let Some(kind) = result.kind {
            body["kind"] = json!(kind);
        }
    }
    json(status, &body)
}

/// The raw route's answer: exactly the function's stdout, 200 when it
/// exited 0 and 500 when it did not (the body is still its stdout); a call
/// that did not run to an exit (timeout, crash, unknown) is a JSON error.
/// stderr never goes to the client.
pub fn raw(reply: Reply) -> HttpResponse {
    let (worker_id, result, content_type) = match reply {
        Reply::Invoked {
            worker_id,
            result,
            content_type,
        } => (worker_id, result, content_type),
        Reply::Failed { error: e } => return error(&e),
        _ => return error(&ServiceError::internal("unexpected answer from the server")),
    };
    let ran = result.ok || matches!(result.kind, Some(FailureKind::Exit | FailureKind::Trap));
    if !ran {
        let message = result
            .error
            .clone()
            .unwrap_or_else(|| "function failed".into());
        let mut resp = json(
            status::for_invocation(&result),
            &json!({"ok": false, "error": message, "kind": result.kind}),
        );
        resp.headers_mut()
            .insert("x-worker-id", HeaderValue::from(worker_id));
        return resp;
    }
    let content_type = content_type.unwrap_or_else(|| {
        match result.output.as_str() {
            Some(_) => "text/plain; charset=utf-8",
            None => "application/octet-stream",
        }
        .to_string()
    });
    let status = if result.ok {
        StatusCode::OK
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    let mut resp = Response::new(Full::new(Bytes::from(result.output.into_bytes())));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&content_type) {
        headers.insert(CONTENT_TYPE, value);
    }
    headers.insert("x-worker-id", HeaderValue::from(worker_id));
    if let Some(code) = result.exit_code {
        headers.insert("x-exit-code", HeaderValue::from(code));
    }
    if let Ok(value) = HeaderValue::from_str(&format!("{:.3}", result.duration_ms)) {
        headers.insert("x-duration-ms", value);
    }
    resp
}

/// The dashboard page: one HTML file with its script and styles, embedded
/// in the binary (no CDN; works offline).
pub fn dashboard() -> HttpResponse {
    let mut resp = Response::new(Full::new(Bytes::from_static(include_bytes!(
        "ui/index.html"
    ))));
    let headers = resp.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // Nothing but this page's own script and styles may run, and no other
    // page may frame it (clickjacking the deploy form).
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'"),
    );
    resp
}
