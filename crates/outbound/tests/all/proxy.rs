//! `HTTP_PROXY` and friends in the worker's environment are ignored: the
//! check runs in a child process (this binary again) so the variables do
//! not leak into the other tests.

use std::process::Command;

use crate::support::*;

const TARGET: &str = "FAAS_OUTBOUND_TEST_TARGET";

#[test]
fn proxy_variables_in_the_environment_are_ignored() {
    let proxy = Server::http();
    let target = Server::http();
    let proxy_url = proxy.url("");
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "proxy::child_fetches_with_proxy_variables",
            "--exact",
            "--ignored",
            "--test-threads=1",
        ])
        .env(TARGET, target.grant())
        .env("HTTP_PROXY", &proxy_url)
        .env("http_proxy", &proxy_url)
        .env("HTTPS_PROXY", &proxy_url)
        .env("https_proxy", &proxy_url)
        .env("ALL_PROXY", &proxy_url)
        .env("all_proxy", &proxy_url)
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!((proxy.hits(), proxy.conns()), (0, 0));
    assert_eq!(target.hits(), 1);
}

#[test]
#[ignore = "run by proxy_variables_in_the_environment_are_ignored"]
fn child_fetches_with_proxy_variables() {
    let Ok(target) = std::env::var(TARGET) else {
        return;
    };
    assert!(std::env::var("HTTP_PROXY").is_ok());
    let resp = get(
        &client(),
        &grants(&[&target]),
        &format!("http://{target}/echo"),
    )
    .unwrap();
    // Origin-form: sent to the server itself, not through a proxy.
    assert_eq!(echoed(&resp)["path"], "/echo");
}
