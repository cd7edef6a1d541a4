//! HTTPS: verified against the system's roots plus the extra CA file.

use faas_outbound::{Client, Config, FetchError, Request};

use crate::support::*;

#[test]
fn a_server_of_an_unknown_ca_is_refused_naming_tls() {
    let server = Server::https();
    let err = get(
        &client(),
        &grants(&[&server.grant()]),
        &server.https_url("/echo"),
    )
    .unwrap_err();
    match &err {
        FetchError::Failed(why) => {
            assert!(why.contains("TLS") && why.contains("certificate"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.hits(), 0);
}

#[test]
fn the_extra_ca_file_is_trusted_and_http2_authority_comes_from_the_url() {
    let server = Server::https();
    let client = client_with(Config {
        extra_ca_file: Some(fixture("ca.pem")),
        ..Config::default()
    });
    let grants = grants(&[&server.grant()]);
    let req = Request {
        headers: vec![("Host".into(), server.grant())],
        ..Request::get(server.https_url("/echo"))
    };
    let resp = client.fetch(&grants, req, later()).unwrap();
    let echo = echoed(&resp);
    assert_eq!(echo["version"], "HTTP/2.0");
    assert_eq!(echo["authority"], server.grant());
    let req = Request {
        headers: vec![("Host".into(), "evil.example.com".into())],
        ..Request::get(server.https_url("/echo"))
    };
    assert!(matches!(
        client.fetch(&grants, req, later()),
        Err(FetchError::Invalid(_))
    ));
}

/// BROKE: one TLS configuration, with rustls' default session cache,
/// served every function of a worker, so a function's connection resumed
/// the session another function's request had opened (and could tell,
/// from its speed, which hosts the other had reached). Every connection
/// now makes a full handshake.
#[test]
fn no_tls_session_is_resumed_across_requests_or_functions() {
    let server = Server::https();
    let client = client_with(Config {
        extra_ca_file: Some(fixture("ca.pem")),
        ..Config::default()
    });
    let grants = grants(&[&server.grant()]);
    for caller in ["fn_a", "fn_b", "fn_a"] {
        let resp = client
            .fetch_for(
                caller,
                &grants,
                Request::get(server.https_url("/echo")),
                later(),
            )
            .unwrap();
        assert_eq!(resp.status, 200);
    }
    assert_eq!(server.conns(), 3);
    assert_eq!(server.resumed(), 0, "a TLS session was resumed");
}

#[test]
fn a_bad_ca_file_is_an_error_naming_it() {
    let missing = fixture("missing.pem");
    let err = Client::new(Config {
        extra_ca_file: Some(missing.clone()),
        ..Config::default()
    })
    .unwrap_err();
    assert!(err.contains(&missing.display().to_string()), "{err}");
    let key = fixture("server.key");
    let err = Client::new(Config {
        extra_ca_file: Some(key.clone()),
        ..Config::default()
    })
    .unwrap_err();
    assert!(err.contains("server.key"), "{err}");
}
