//! Building HTTP responses: JSON bodies, errors in the platform's shape
//! (`{"ok":false,"error":"..."}`), and the Server's replies.

use faas_proto::{ErrorKind, JobResult, Reply, ServiceError};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Response, StatusCode};
use serde_json::json;

use crate::status;

pub type HttpResponse = Response<Full<Bytes>>;

/// A JSON response; 503s tell the client when to retry.
pub fn json(status: StatusCode, body: &serde_json::Value) -> HttpResponse {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        resp.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    }
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

/// The JSON error for `error`, with the status its kind maps to.
pub fn error(error: &ServiceError) -> HttpResponse {
    let mut body = json!({"ok": false, "error": error.message});
    if let Some(details) = &error.details {
        body["details"] = json!(details);
    }
    json(status::for_error(error.kind), &body)
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

/// Turns the Server's reply into the HTTP answer.
pub fn from_reply(reply: Reply) -> HttpResponse {
    match reply {
        Reply::Deployed { function } => json(
            StatusCode::CREATED,
            &json!({"ok": true, "id": function.id, "name": function.name,
                    "lang": function.lang, "wasm": function.wasm}),
        ),
        Reply::Invoked { worker_id, result } => invocation(worker_id, result),
        Reply::Source { code, .. } => text(StatusCode::OK, code),
        Reply::Functions { functions } => {
            json(StatusCode::OK, &json!({"ok": true, "functions": functions}))
        }
        Reply::Stats { stats } => {
            let mut body = serde_json::to_value(stats).unwrap_or_default();
            body["ok"] = json!(true);
            json(StatusCode::OK, &body)
        }
        Reply::Failed { error: e } => error(&e),
    }
}

/// The seed's invoke answer, extended: output, stderr, exit code, the
/// worker that ran it and how long it took; `error` when it failed.
fn invocation(worker_id: usize, result: JobResult) -> HttpResponse {
    let status = status::for_invocation(&result);
    let mut body = json!({
        "ok": result.ok,
        "output": result.output,
        "stderr": result.stderr,
        "exit_code": result.exit_code,
        "worker_id": worker_id,
        // Microsecond precision is all a client can use.
        "duration_ms": (result.duration_ms * 1000.0).round() / 1000.0,
    });
    if result.truncated {
        body["truncated"] = json!(true);
    }
    if !result.ok {
        body["error"] = json!(result.error.unwrap_or_else(|| "function failed".into()));
    }
    json(status, &body)
}
