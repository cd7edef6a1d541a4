//! Refusals: scheme, grant, private and protected addresses, headers.

use std::net::IpAddr;

use faas_outbound::{Config, FetchError, Request};

use crate::support::*;

fn denied(result: Result<faas_outbound::Response, FetchError>) -> String {
    match result {
        Err(FetchError::Denied(why)) => why,
        other => panic!("expected Denied, got {other:?}"),
    }
}

fn invalid(result: Result<faas_outbound::Response, FetchError>) -> String {
    match result {
        Err(FetchError::Invalid(why)) => why,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn an_address_granted_with_its_port_is_reachable() {
    let server = Server::http();
    let resp = get(&client(), &grants(&[&server.grant()]), &server.url("/echo")).unwrap();
    assert_eq!(resp.status, 200);
}

#[test]
fn a_host_not_granted_is_denied_before_any_connection() {
    let server = Server::http();
    let err = get(&client(), &grants(&["example.com"]), &server.url("/echo")).unwrap_err();
    assert_eq!(err.outcome(), "denied");
    let why = denied(Err(err.clone()));
    assert!(
        why.contains(&format!("host {} is not granted", server.grant())),
        "{why}"
    );
    assert!(err.to_string().contains("127.0.0.1"), "{err}");
    let none = get(&client(), &grants(&[]), "https://example.com/").unwrap_err();
    assert!(matches!(none, FetchError::Denied(_)), "{none:?}");
    assert_eq!(server.conns(), 0);
}

#[test]
fn another_port_of_a_granted_host_is_denied() {
    let server = Server::http();
    let other = Server::http();
    let why = denied(get(
        &client(),
        &grants(&[&server.grant()]),
        &other.url("/echo"),
    ));
    assert!(
        why.contains(&format!("127.0.0.1:{} is not granted", other.port())),
        "{why}"
    );
    // A name without port grants 80 and 443 only.
    let why = denied(get(
        &client(),
        &grants(&["localhost"]),
        &format!("http://localhost:{}/", server.port()),
    ));
    assert!(why.contains("not granted"), "{why}");
    assert_eq!(other.conns(), 0);
}

#[test]
fn a_granted_name_resolving_to_loopback_is_denied() {
    let server = Server::http();
    let grant = format!("localhost:{}", server.port());
    let why = denied(get(
        &client(),
        &grants(&[&grant]),
        &format!("http://localhost:{}/echo", server.port()),
    ));
    assert!(
        why.contains("resolves to") && why.contains("loopback"),
        "{why}"
    );
    assert_eq!(server.conns(), 0);
}

#[test]
fn a_name_s_addresses_granted_literally_make_it_reachable() {
    let server = Server::http();
    let port = server.port();
    // Whatever localhost resolves to here (127.0.0.1, and ::1 or not),
    // each address needs its own grant.
    let resolved: Vec<IpAddr> = std::net::ToSocketAddrs::to_socket_addrs(&("localhost", port))
        .unwrap()
        .map(|a| a.ip())
        .collect();
    if resolved
        .iter()
        .any(|ip| *ip != IpAddr::from([127, 0, 0, 1]))
    {
        eprintln!("localhost resolves to {resolved:?}: only 127.0.0.1 is served, skipped");
        return;
    }
    let name = format!("localhost:{port}");
    let resp = get(
        &client(),
        &grants(&[&name, &server.grant()]),
        &format!("http://localhost:{port}/echo"),
    )
    .unwrap();
    assert_eq!(echoed_header(&echoed(&resp), "host"), [name]);
}

#[test]
fn the_platform_s_own_port_is_denied_even_when_granted() {
    let server = Server::http();
    let client = client_with(Config {
        protected_ports: vec![server.port()],
        ..Config::default()
    });
    let why = denied(get(
        &client,
        &grants(&[&server.grant()]),
        &server.url("/echo"),
    ));
    assert!(why.contains("platform's own"), "{why}");
    // Also on this host's other loopback addresses.
    let other = format!("127.0.0.2:{}", server.port());
    let why = denied(get(
        &client,
        &grants(&[&other]),
        &format!("http://{other}/"),
    ));
    assert!(why.contains("platform's own"), "{why}");
    assert_eq!(server.conns(), 0);
}

#[test]
fn the_platform_s_own_port_is_denied_on_this_host_s_interface_addresses() {
    let Some(ip) = nix::ifaddrs::getifaddrs()
        .unwrap()
        .filter_map(|a| a.address?.as_sockaddr_in().map(|s| s.ip()))
        .find(|ip| !ip.is_loopback())
    else {
        eprintln!("no non-loopback IPv4 address on this host: skipped");
        return;
    };
    let grant = format!("{ip}:8080");
    let client = client_with(Config {
        protected_ports: vec![8080],
        ..Config::default()
    });
    let why = denied(get(
        &client,
        &grants(&[&grant]),
        &format!("http://{grant}/"),
    ));
    assert!(why.contains("platform's own"), "{ip}: {why}");
}

#[test]
fn only_http_and_https_urls_are_accepted() {
    let client = client();
    let all = grants(&["example.com", "127.0.0.1:21"]);
    for url in [
        "ftp://127.0.0.1:21/file",
        "ftp://example.com/",
        "file:///etc/passwd",
        "gopher://example.com/",
        "ws://example.com/",
    ] {
        let why = invalid(get(&client, &all, url));
        assert!(why.contains("only http and https"), "{url}: {why}");
    }
    for url in [
        "",
        "not a url",
        "http://",
        "//example.com/",
        "http://exa mple.com/",
    ] {
        let err = get(&client, &all, url).unwrap_err();
        assert!(matches!(err, FetchError::Invalid(_)), "{url:?}: {err:?}");
    }
    let why = invalid(get(&client, &all, "http://user:secret@example.com/"));
    assert!(
        why.contains("credentials") && !why.contains("secret"),
        "{why}"
    );
}

#[test]
fn an_ipv4_mapped_ipv6_literal_needs_its_own_grant() {
    let server = Server::http();
    let port = server.port();
    let url = format!("http://[::ffff:127.0.0.1]:{port}/echo");
    let client = client();
    // The IPv4 form's grant is not the mapped form's.
    let why = denied(get(&client, &grants(&[&server.grant()]), &url));
    assert!(why.contains("not granted"), "{why}");
    // Granting the mapped literal permits it, as a loopback literal grant.
    let mapped = format!("[::ffff:127.0.0.1]:{port}");
    match get(&client, &grants(&[&mapped]), &url) {
        Ok(resp) => assert_eq!(resp.status, 200),
        // Without IPv6 support the connection itself fails, after the policy let it through.
        Err(FetchError::Failed(why)) => eprintln!("no IPv6 here: {why}"),
        Err(other) => panic!("{other:?}"),
    }
    // ... but never the protected port, whatever form.
    let protected = client_with(Config {
        protected_ports: vec![port],
        ..Config::default()
    });
    let why = denied(get(&protected, &grants(&[&mapped]), &url));
    assert!(why.contains("platform's own"), "{why}");
}

#[test]
fn private_and_metadata_literals_are_denied_unless_granted_literally() {
    let client = client();
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://[fd00::1]/",
        "http://[::ffff:169.254.169.254]/",
        "http://0.0.0.0/",
    ] {
        let why = denied(get(&client, &grants(&["example.com"]), url));
        assert!(why.contains("not granted"), "{url}: {why}");
    }
    // 0.0.0.0 reaches this host: never, even granted.
    let why = denied(get(&client, &grants(&["0.0.0.0:80"]), "http://0.0.0.0/"));
    assert!(why.contains("never reachable"), "{why}");
}

#[test]
fn a_host_header_other_than_the_url_s_is_refused() {
    let server = Server::http();
    let grants = grants(&[&server.grant()]);
    let client = client();
    for host in [
        "evil.example.com",
        "localhost",
        "127.0.0.1:1",
        "169.254.169.254",
    ] {
        for name in ["Host", "host", "HOST"] {
            let req = Request {
                headers: vec![(name.into(), host.into())],
                ..Request::get(server.url("/echo"))
            };
            let why = invalid(client.fetch(&grants, req, later()));
            assert!(why.contains("Host"), "{why}");
        }
    }
    assert_eq!(server.conns(), 0);
}

#[test]
fn headers_that_are_not_valid_http_or_belong_to_the_connection_are_refused() {
    let server = Server::http();
    let grants = grants(&[&server.grant()]);
    let client = client();
    for (name, value) in [
        ("X-Token", "abc\r\nX-Injected: 1"),
        ("X-Token", "abc\ndef"),
        ("X Token", "abc"),
        (":authority", "evil.example.com"),
        ("Transfer-Encoding", "chunked"),
        ("Connection", "upgrade"),
        ("Content-Length", "100"),
    ] {
        let req = Request {
            headers: vec![(name.into(), value.into())],
            ..Request::get(server.url("/echo"))
        };
        let err = client.fetch(&grants, req, later()).unwrap_err();
        assert!(matches!(err, FetchError::Invalid(_)), "{name}: {err:?}");
        assert!(!err.to_string().contains("abc"), "{err}");
    }
    let connect = Request {
        method: "CONNECT".into(),
        ..Request::get(server.url("/"))
    };
    assert!(matches!(
        client.fetch(&grants, connect, later()),
        Err(FetchError::Invalid(_))
    ));
    assert_eq!(server.conns(), 0);
}

#[test]
fn a_request_body_over_the_limit_is_refused() {
    let server = Server::http();
    let client = client_with(Config {
        max_response_bytes: 1000,
        ..Config::default()
    });
    let req = Request {
        method: "POST".into(),
        body: vec![b'x'; 1001],
        ..Request::get(server.url("/echo"))
    };
    let why = invalid(client.fetch(&grants(&[&server.grant()]), req, later()));
    assert!(why.contains("1001") && why.contains("1000"), "{why}");
    assert_eq!(server.conns(), 0);
}
