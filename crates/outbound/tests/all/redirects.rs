//! Redirects: followed to granted hosts only, each hop checked, at most 5.

use faas_outbound::{FetchError, Request};

use crate::support::*;

#[test]
fn five_redirects_are_followed_and_the_final_url_reported() {
    let server = Server::http();
    let resp = get(
        &client(),
        &grants(&[&server.grant()]),
        &server.url("/redirect/5"),
    )
    .unwrap();
    assert_eq!((resp.status, resp.body.as_slice()), (200, &b"done"[..]));
    assert_eq!(resp.url, server.url("/redirect/0"));
    assert_eq!(server.hits(), 6);
}

#[test]
fn a_sixth_redirect_fails() {
    let server = Server::http();
    let err = get(
        &client(),
        &grants(&[&server.grant()]),
        &server.url("/redirect/6"),
    )
    .unwrap_err();
    match &err {
        FetchError::Failed(why) => assert!(why.contains("too many redirects"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(err.outcome(), "error");
    assert_eq!(server.hits(), 6);
}

#[test]
fn a_redirect_to_a_host_not_granted_is_denied_naming_it() {
    let server = Server::http();
    let path = redirect_path(302, "http://not-granted.example:8080/x?key=secret");
    let err = get(&client(), &grants(&[&server.grant()]), &server.url(&path)).unwrap_err();
    match &err {
        FetchError::Denied(why) => assert!(why.contains("not-granted.example:8080"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(!err.to_string().contains("secret"), "{err}");
}

#[test]
fn a_redirect_to_a_granted_name_resolving_to_loopback_is_denied() {
    let first = Server::http();
    let second = Server::http();
    let target = format!("http://localhost:{}/echo", second.port());
    let grants = grants(&[&first.grant(), &format!("localhost:{}", second.port())]);
    let err = get(&client(), &grants, &first.url(&redirect_path(307, &target))).unwrap_err();
    match &err {
        FetchError::Denied(why) => assert!(why.contains("loopback"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(second.conns(), 0);
}

#[test]
fn a_redirect_to_another_scheme_is_refused() {
    let server = Server::http();
    let path = redirect_path(301, "ftp://127.0.0.1:21/");
    let err = get(
        &client(),
        &grants(&[&server.grant(), "127.0.0.1:21"]),
        &server.url(&path),
    )
    .unwrap_err();
    assert!(
        matches!(&err, FetchError::Invalid(why) if why.contains("only http")),
        "{err:?}"
    );
}

fn post(url: String) -> Request {
    Request {
        method: "POST".into(),
        url,
        headers: vec![
            ("Content-Type".into(), "text/plain".into()),
            ("Authorization".into(), "Bearer token".into()),
        ],
        body: b"payload".to_vec(),
    }
}

#[test]
fn see_other_and_a_post_s_302_become_a_get_without_body() {
    let server = Server::http();
    let grants = grants(&[&server.grant()]);
    let client = client();
    for status in [303, 302, 301] {
        let resp = client
            .fetch(
                &grants,
                post(server.url(&redirect_path(status, "/echo"))),
                later(),
            )
            .unwrap();
        let echo = echoed(&resp);
        assert_eq!(
            (echo["method"].as_str(), echo["body"].as_str()),
            (Some("GET"), Some("")),
            "{status}"
        );
        assert!(echoed_header(&echo, "content-type").is_empty(), "{status}");
        // Same origin: the credentials stay.
        assert_eq!(echoed_header(&echo, "authorization"), ["Bearer token"]);
    }
}

#[test]
fn temporary_and_permanent_redirects_keep_method_and_body() {
    let server = Server::http();
    let grants = grants(&[&server.grant()]);
    for status in [307, 308] {
        let resp = client()
            .fetch(
                &grants,
                post(server.url(&redirect_path(status, "/echo"))),
                later(),
            )
            .unwrap();
        let echo = echoed(&resp);
        assert_eq!(
            (echo["method"].as_str(), echo["body"].as_str()),
            (Some("POST"), Some("payload"))
        );
        assert_eq!(echoed_header(&echo, "content-type"), ["text/plain"]);
    }
}

#[test]
fn a_redirect_to_another_origin_drops_credentials() {
    let first = Server::http();
    let second = Server::http();
    let grants = grants(&[&first.grant(), &second.grant()]);
    let path = redirect_path(307, &second.url("/echo"));
    let resp = client()
        .fetch(&grants, post(first.url(&path)), later())
        .unwrap();
    assert_eq!(resp.url, second.url("/echo"));
    let echo = echoed(&resp);
    assert_eq!(echo["body"], "payload");
    assert!(echoed_header(&echo, "authorization").is_empty());
    assert_eq!(echoed_header(&echo, "host"), [second.grant()]);
}
