//! UNIX sockets: binding over stale files, and the Server's request loop.

use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::bail;
use std::ops::ControlFlow;

use faas_proto::lines::{read_lines, write_lines};
use faas_proto::{
    decode, encode, req_of_line, Operation, Reply, ServerReply, ServerRequest, ServiceError,
    DEFAULT_MAX_FRAME,
};
use tokio::sync::mpsc;

use crate::service::{InvokeRequest, Service};

const PART: &str = "SERVER";

/// Binds a UNIX socket at `path`. A file left by a crashed run is replaced;
/// a socket that a live process still answers on is an error.
pub fn bind_unix(path: &Path) -> anyhow::Result<UnixListener> {
    if path.exists() {
        if answered_for_a_while(path) {
            bail!(
                "{} is in use by a running server; stop it or pass another path (--lb-socket / --server-socket)",
                path.display()
            );
        }
        log::info!(target: PART, "replacing stale socket {}", path.display());
        std::fs::remove_file(path)
            .map_err(|e| anyhow::anyhow!("cannot remove stale socket {}: {e}", path.display()))?;
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    UnixListener::bind(path).map_err(|e| anyhow::anyhow!("cannot bind {}: {e}", path.display()))
}

/// Whether `path` still takes connections after a short wait. A server
/// killed with SIGKILL is gone once reaped, but a child it was spawning
/// (between fork and exec, where the close-on-exec listener is still open)
/// can hold the socket for a few milliseconds more on a loaded machine;
/// only a listener that stays for the whole wait is a running server.
fn answered_for_a_while(path: &Path) -> bool {
    const TRIES: u32 = 20;
    for _ in 0..TRIES {
        if UnixStream::connect(path).is_err() {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    true
}

/// Removes the listed files when dropped (socket files at exit).
pub struct RemoveOnDrop(pub Vec<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Accepts gateway connections; each request runs as its own task so one
/// slow deploy never holds up the invokes behind it on the same connection.
pub async fn serve_requests(listener: tokio::net::UnixListener, service: Arc<Service>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                log::error!(target: PART, "server socket accept failed: {err}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        tokio::spawn(serve_connection(stream, service.clone()));
    }
}

async fn serve_connection(stream: tokio::net::UnixStream, service: Arc<Service>) {
    let (read_half, write_half) = stream.into_split();
    let (tx, rx) = mpsc::unbounded_channel::<Vec<u8>>();
    tokio::spawn(write_lines(write_half, rx));
    read_lines(read_half, DEFAULT_MAX_FRAME, |line| {
        let request = line.map_err(|err| (None, err)).and_then(|line| {
            decode::<ServerRequest>(&line).map_err(|err| (req_of_line(&line), err))
        });
        match request {
            Ok(ServerRequest { req, op }) => {
                let service = service.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let reply = perform(&service, op).await;
                    let _ = tx.send(encode(&ServerReply { req, reply }));
                });
            }
            // A bad line gets an error, under its own request id when it
            // has one (else the seed's "no id", as for a request sent
            // without one); the connection stays usable.
            Err((req, err)) => {
                let reply = Reply::Failed {
                    error: ServiceError::bad_request(err.to_string()),
                };
                let req = req.unwrap_or_default();
                let _ = tx.send(encode(&ServerReply { req, reply }));
            }
        }
        ControlFlow::Continue(())
    })
    .await;
}

/// Runs one operation and describes its outcome for the wire.
async fn perform(service: &Arc<Service>, op: Operation) -> Reply {
    let outcome = match op {
        Operation::Deploy(spec) => service
            .deploy(spec, false)
            .await
            .map(|function| Reply::Deployed { function }),
        Operation::Update(spec) => service
            .deploy(spec, true)
            .await
            .map(|function| Reply::Deployed { function }),
        Operation::Delete { name } => service
            .delete(&name)
            .await
            .map(|removed| Reply::Deleted { removed }),
        Operation::Versions { name } => service
            .versions(&name)
            .map(|versions| Reply::Versions { versions }),
        Operation::Metrics => Ok(Reply::Metrics {
            text: service.metrics_text().await,
        }),
        Operation::Dashboard => Ok(Reply::Dashboard {
            data: service.dashboard().await,
        }),
        Operation::Invocations { name, limit } => service
            .invocations(&name, limit)
            .map(|invocations| Reply::Invocations { invocations }),
        Operation::Invoke {
            function,
            payload,
            request_id,
            http,
            sent_us,
        } => {
            let call = InvokeRequest {
                payload,
                request_id,
                http,
                sent_us,
                ..Default::default()
            };
            service
                .invoke(&function, call)
                .await
                .map(|inv| Reply::Invoked {
                    worker_id: inv.worker_id,
                    result: inv.result,
                    content_type: inv.content_type,
                })
        }
        Operation::GetSource { name } => {
            service
                .source(&name)
                .map(|(lang, code, content_type)| Reply::Source {
                    lang,
                    code: code.into(),
                    content_type,
                })
        }
        Operation::ListFiles { name } => service.files(&name).map(|files| Reply::Files { files }),
        Operation::List => Ok(Reply::Functions {
            functions: service.list(),
        }),
        Operation::Stats => service.stats().await.map(|stats| Reply::Stats { stats }),
        Operation::Ready => {
            let (ready, reasons) = service.readiness();
            Ok(Reply::Readiness { ready, reasons })
        }
        Operation::ClusterNotice { body, signature } => service
            .cluster_notice(&body, signature.as_deref())
            .map(|()| Reply::Noticed),
        Operation::PutSecret { name, value } => service
            .put_secret(&name, value)
            .await
            .map(|(created, secret)| Reply::SecretStored { created, secret }),
        Operation::ListSecrets => Ok(Reply::Secrets {
            secrets: service.list_secrets(),
        }),
        Operation::DeleteSecret { name } => service
            .delete_secret(&name)
            .await
            .map(|()| Reply::SecretDeleted { name }),
        op => service.background_operation(op).await,
    };
    outcome.unwrap_or_else(|error| Reply::Failed { error })
}
