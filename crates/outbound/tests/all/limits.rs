//! The response cap and the deadline.

use std::time::{Duration, Instant};

use faas_outbound::{Config, FetchError, Request};

use crate::support::*;

fn capped(limit: u64) -> faas_outbound::Client {
    client_with(Config {
        max_response_bytes: limit,
        ..Config::default()
    })
}

#[test]
fn a_body_at_the_limit_is_read_and_one_byte_more_is_too_large() {
    let server = Server::http();
    let grants = grants(&[&server.grant()]);
    let client = capped(100_000);
    for route in ["bytes", "stream"] {
        let resp = get(&client, &grants, &server.url(&format!("/{route}/100000"))).unwrap();
        assert_eq!(resp.body.len(), 100_000, "{route}");
        let err = get(&client, &grants, &server.url(&format!("/{route}/100001"))).unwrap_err();
        assert_eq!(err, FetchError::TooLarge { limit: 100_000 }, "{route}");
        assert_eq!(err.outcome(), "error");
    }
}

#[test]
fn a_streamed_body_far_over_the_limit_is_cut_short() {
    let server = Server::http();
    let err = get(
        &capped(1000),
        &grants(&[&server.grant()]),
        &server.url("/stream/50000000"),
    )
    .unwrap_err();
    assert_eq!(err, FetchError::TooLarge { limit: 1000 });
}

#[test]
fn a_server_that_never_answers_times_out_at_the_deadline() {
    let server = Server::hanging();
    let deadline = Instant::now() + Duration::from_millis(500);
    let err = client()
        .fetch(
            &grants(&[&server.grant()]),
            Request::get(server.url("/")),
            deadline,
        )
        .unwrap_err();
    assert_eq!(err, FetchError::Timeout);
    assert_eq!(err.outcome(), "timeout");
    assert!(Instant::now() >= deadline);
    assert_eq!(server.conns(), 1);
}

#[test]
fn a_body_that_stalls_times_out() {
    let server = Server::http();
    let deadline = Instant::now() + Duration::from_millis(500);
    let err = client()
        .fetch(
            &grants(&[&server.grant()]),
            Request::get(server.url("/stall")),
            deadline,
        )
        .unwrap_err();
    assert_eq!(err, FetchError::Timeout);
}

#[test]
fn a_deadline_already_past_times_out_without_connecting() {
    let server = Server::http();
    let err = client()
        .fetch(
            &grants(&[&server.grant()]),
            Request::get(server.url("/echo")),
            Instant::now(),
        )
        .unwrap_err();
    assert_eq!(err, FetchError::Timeout);
    assert_eq!(server.conns(), 0);
}
