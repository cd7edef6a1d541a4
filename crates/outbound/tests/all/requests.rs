//! What a permitted request sends and gets back.

use faas_outbound::{Request, USER_AGENT};

use crate::support::*;

#[test]
fn get_sends_the_function_s_headers_and_the_default_user_agent() {
    let server = Server::http();
    let grants = grants(&[&server.grant()]);
    let req = Request {
        method: "GET".into(),
        url: server.url("/echo?q=1"),
        headers: vec![
            ("X-Custom".into(), "one".into()),
            ("x-custom".into(), "two".into()),
            ("Accept".into(), "text/plain".into()),
        ],
        body: Vec::new(),
    };
    let resp = client().fetch(&grants, req, later()).unwrap();
    assert_eq!(resp.url, server.url("/echo?q=1"));
    assert_eq!(resp.header("X-ECHO"), Some("yes"));
    let echo = echoed(&resp);
    assert_eq!(echo["method"], "GET");
    assert_eq!(echo["path"], "/echo?q=1");
    assert_eq!(echo["version"], "HTTP/1.1");
    assert_eq!(echoed_header(&echo, "x-custom"), ["one", "two"]);
    assert_eq!(echoed_header(&echo, "accept"), ["text/plain"]);
    assert_eq!(echoed_header(&echo, "user-agent"), [USER_AGENT]);
    assert_eq!(echoed_header(&echo, "host"), [server.grant()]);
    assert!(echoed_header(&echo, "cookie").is_empty());
    assert!(echoed_header(&echo, "content-length").is_empty());
}

#[test]
fn a_post_without_body_says_so() {
    let server = Server::http();
    let req = Request {
        method: "post".into(),
        ..Request::get(server.url("/echo"))
    };
    let resp = client()
        .fetch(&grants(&[&server.grant()]), req, later())
        .unwrap();
    let echo = echoed(&resp);
    assert_eq!(echo["method"], "POST");
    assert_eq!(echoed_header(&echo, "content-length"), ["0"]);
}

#[test]
fn post_sends_its_body_and_the_function_may_set_user_agent_and_host() {
    let server = Server::http();
    let grants = grants(&[&server.grant()]);
    let req = Request {
        method: "POST".into(),
        url: server.url("/echo"),
        headers: vec![
            ("Content-Type".into(), "application/json".into()),
            ("User-Agent".into(), "my-function/1".into()),
            // The URL's own host, with its port: accepted, sent once.
            ("host".into(), server.grant()),
            ("Content-Length".into(), "11".into()),
        ],
        body: br#"{"a":"b c"}"#.to_vec(),
    };
    let resp = client().fetch(&grants, req, later()).unwrap();
    let echo = echoed(&resp);
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["body"], r#"{"a":"b c"}"#);
    assert_eq!(echoed_header(&echo, "content-type"), ["application/json"]);
    assert_eq!(echoed_header(&echo, "content-length"), ["11"]);
    assert_eq!(echoed_header(&echo, "user-agent"), ["my-function/1"]);
    assert_eq!(echoed_header(&echo, "host"), [server.grant()]);
}

#[test]
fn any_status_is_an_answer_and_a_redirect_without_location_is_not_followed() {
    let server = Server::http();
    let grants = grants(&[&server.grant()]);
    let client = client();
    let resp = get(&client, &grants, &server.url("/nowhere")).unwrap();
    assert_eq!(resp.status, 404);
    assert_eq!(resp.body, b"no such route");
    let resp = get(&client, &grants, &server.url(&redirect_path(418, ""))).unwrap();
    assert_eq!(resp.status, 418);
    let resp = client
        .fetch(
            &grants,
            Request {
                method: "HEAD".into(),
                ..Request::get(server.url("/bytes/10"))
            },
            later(),
        )
        .unwrap();
    assert_eq!((resp.status, resp.body.len()), (200, 0));
}

#[test]
fn each_call_opens_its_own_connection() {
    let server = Server::http();
    let grants = grants(&[&server.grant()]);
    let client = client();
    for _ in 0..3 {
        let echo = echoed(&get(&client, &grants, &server.url("/echo")).unwrap());
        assert_eq!(echo["method"], "GET");
    }
    assert_eq!((server.hits(), server.conns()), (3, 3));
}
