//! `fetch` blocks its caller but runs on the client's own runtime, so it
//! works from a thread inside another tokio runtime (as the worker's host
//! calls are), and the client may be created and dropped there.

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_works_on_a_tokio_worker_thread() {
    let server = Server::http();
    let client = client();
    let grants = grants(&[&server.grant()]);
    let url = server.url("/echo");
    // Directly in the test's task, and in a spawned task.
    assert_eq!(get(&client, &grants, &url).unwrap().status, 200);
    let task = {
        let (client, grants, url) = (client.clone(), grants.clone(), url.clone());
        tokio::spawn(async move { get(&client, &grants, &url).map(|r| r.status) })
    };
    assert_eq!(task.await.unwrap().unwrap(), 200);
    drop(client);
    drop(server);
}

#[tokio::test(flavor = "current_thread")]
async fn fetch_works_inside_a_current_thread_runtime() {
    let server = Server::http();
    let client = client();
    let resp = get(&client, &grants(&[&server.grant()]), &server.url("/echo")).unwrap();
    assert_eq!(resp.status, 200);
}

#[test]
fn concurrent_calls_from_many_threads() {
    let server = Server::http();
    let client = client();
    let grants = grants(&[&server.grant()]);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                let resp = get(&client, &grants, &server.url("/bytes/1000")).unwrap();
                assert_eq!(resp.body.len(), 1000);
            });
        }
    });
    assert_eq!(server.hits(), 8);
}
