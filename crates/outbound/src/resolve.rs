//! Name resolution with the system's resolver, bounded so that lookups
//! that hang cannot starve the other functions of the worker.
//!
//! `getaddrinfo` cannot be cancelled: a lookup runs on a blocking thread of
//! the client's runtime until the resolver gives up, however long after
//! its call's deadline that is (the call itself stops at its deadline). A
//! function granted a domain whose DNS servers never answer could fill
//! every such thread with lookups, and every other function's requests
//! would then wait behind them. So lookups still running are counted per
//! caller (the worker names the function), and a new one is refused at
//! once, with an error saying why, when
//!
//! - its caller already has [`MAX_PENDING_PER_CALLER`] running, or
//! - [`MAX_PENDING`] are running in all (the runtime has that many
//!   blocking threads, so an admitted lookup never waits for a thread).
//!
//! A function that hangs its lookups thus holds at most
//! `MAX_PENDING_PER_CALLER` threads and fails fast past them, while
//! another function's lookups run at once; exhausting the whole pool takes
//! `MAX_PENDING / MAX_PENDING_PER_CALLER` functions hanging theirs at the
//! same time. A counted lookup stops counting when `getaddrinfo` returns.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};

use crate::error::{FetchError, Result};
use crate::policy::Target;

/// Lookups one caller may have running at once (a call has at most four
/// exchanges open at once in the worker, so a call alone never meets it
/// unless earlier lookups still hang).
pub const MAX_PENDING_PER_CALLER: usize = 4;

/// Lookups running at once in one client; its runtime's blocking threads.
pub const MAX_PENDING: usize = 64;

/// The lookups running, by caller.
pub(crate) struct Lookups {
    per_caller: usize,
    total: usize,
    pending: Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    total: usize,
    by_caller: HashMap<String, usize>,
}

/// A lookup being counted; it stops counting when dropped.
pub(crate) struct Ticket {
    lookups: Arc<Lookups>,
    caller: String,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut pending = self.lookups.lock();
        pending.total = pending.total.saturating_sub(1);
        if let Some(n) = pending.by_caller.get_mut(&self.caller) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                pending.by_caller.remove(&self.caller);
            }
        }
    }
}

impl Lookups {
    pub(crate) fn new(per_caller: usize, total: usize) -> Arc<Self> {
        Arc::new(Self {
            per_caller,
            total,
            pending: Mutex::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a lookup of `caller`'s for `host`, or says why it may not
    /// start.
    pub(crate) fn begin(self: &Arc<Self>, caller: &str, host: &str) -> Result<Ticket> {
        let mut pending = self.lock();
        let mine = pending.by_caller.get(caller).copied().unwrap_or(0);
        if mine >= self.per_caller {
            return Err(FetchError::Failed(format!(
                "cannot resolve {host} now: {mine} earlier name lookups of this function are still waiting for the DNS server past their deadline (at most {} at once); try again later",
                self.per_caller
            )));
        }
        if pending.total >= self.total {
            return Err(FetchError::Failed(format!(
                "cannot resolve {host} now: {} name lookups are waiting for the DNS server in this worker (at most {} at once); try again later",
                pending.total, self.total
            )));
        }
        pending.total += 1;
        *pending.by_caller.entry(caller.to_string()).or_default() += 1;
        Ok(Ticket {
            lookups: Arc::clone(self),
            caller: caller.to_string(),
        })
    }

    /// Lookups running: `caller`'s and in all.
    #[cfg(test)]
    fn pending(&self, caller: &str) -> (usize, usize) {
        let pending = self.lock();
        (
            pending.by_caller.get(caller).copied().unwrap_or(0),
            pending.total,
        )
    }
}

/// The hop's addresses: the literal, or the name resolved by the system's
/// resolver (the only resolution; the connection is pinned to what it
/// returns), counted as `caller`'s.
pub(crate) async fn resolve(
    lookups: &Arc<Lookups>,
    caller: &str,
    target: &Target,
) -> Result<Vec<SocketAddr>> {
    if let Some(ip) = target.literal {
        return Ok(vec![SocketAddr::new(ip, target.port)]);
    }
    resolve_with(lookups, caller, &target.host, target.port, |host, port| {
        (host, port).to_socket_addrs().map(Iterator::collect)
    })
    .await
}

/// [`resolve`] with `lookup` in place of the system's resolver.
async fn resolve_with<F>(
    lookups: &Arc<Lookups>,
    caller: &str,
    host: &str,
    port: u16,
    lookup: F,
) -> Result<Vec<SocketAddr>>
where
    F: FnOnce(&str, u16) -> std::io::Result<Vec<SocketAddr>> + Send + 'static,
{
    let ticket = lookups.begin(caller, host)?;
    let name = host.to_string();
    // If the caller gives up (its deadline), the thread still runs the
    // lookup to its end, and the ticket counts it until then.
    let answer = tokio::task::spawn_blocking(move || {
        let answer = lookup(&name, port);
        drop(ticket);
        answer
    })
    .await
    .map_err(|e| FetchError::Failed(format!("cannot resolve {host}: {e}")))?;
    let addrs = answer.map_err(|e| FetchError::Failed(format!("cannot resolve {host}: {e}")))?;
    if addrs.is_empty() {
        return Err(FetchError::Failed(format!("{host} has no address")));
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Condvar;
    use std::time::{Duration, Instant};

    /// A resolver that hangs until opened, as one whose DNS servers never
    /// answer (getaddrinfo cannot be interrupted either).
    #[derive(Clone, Default)]
    struct Gate(Arc<(Mutex<bool>, Condvar)>);

    impl Gate {
        fn hanging_lookup(&self) -> impl FnOnce(&str, u16) -> std::io::Result<Vec<SocketAddr>> {
            let gate = self.clone();
            move |_, port| {
                let (open, turned) = &*gate.0;
                let mut open = open.lock().unwrap();
                while !*open {
                    open = turned.wait(open).unwrap();
                }
                Ok(vec![SocketAddr::from(([203, 0, 113, 9], port))])
            }
        }

        fn open(&self) {
            *self.0 .0.lock().unwrap() = true;
            self.0 .1.notify_all();
        }
    }

    fn instant(_: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        Ok(vec![SocketAddr::from(([203, 0, 113, 1], port))])
    }

    /// A lookup cut at a short deadline, as `Client::fetch` cuts a call.
    async fn until_deadline(
        lookups: &Arc<Lookups>,
        caller: &str,
        lookup: impl FnOnce(&str, u16) -> std::io::Result<Vec<SocketAddr>> + Send + 'static,
    ) -> Option<Result<Vec<SocketAddr>>> {
        let resolving = resolve_with(lookups, caller, "hang.example.com", 443, lookup);
        tokio::time::timeout(Duration::from_millis(50), resolving)
            .await
            .ok()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn hung_lookups_are_bounded_per_function_and_do_not_starve_others() {
        let lookups = Lookups::new(2, 3);
        let gate = Gate::default();
        // The hostile function's lookups outlive their deadlines...
        for _ in 0..2 {
            assert!(until_deadline(&lookups, "evil", gate.hanging_lookup())
                .await
                .is_none());
        }
        assert_eq!(lookups.pending("evil"), (2, 2));
        // ... so its next one fails at once, naming why,
        let started = Instant::now();
        let err = until_deadline(&lookups, "evil", instant)
            .await
            .expect("refused at once, not at the deadline")
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_millis(40));
        let FetchError::Failed(why) = &err else {
            panic!("{err:?}")
        };
        assert!(
            why.contains("hang.example.com") && why.contains("still waiting for the DNS server"),
            "{why}"
        );
        assert_eq!(err.outcome(), "error");
        // ... while another function resolves as usual.
        let addrs = until_deadline(&lookups, "good", instant)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(addrs, [SocketAddr::from(([203, 0, 113, 1], 443))]);
        assert_eq!(lookups.pending("good"), (0, 2));
        // The worker-wide bound: with 3 hanging in all, nobody starts one.
        assert!(until_deadline(&lookups, "other", gate.hanging_lookup())
            .await
            .is_none());
        let err = until_deadline(&lookups, "good", instant)
            .await
            .unwrap()
            .unwrap_err();
        assert!(err.to_string().contains("in this worker"), "{err}");
        // When the resolver answers, the threads and counts come back.
        gate.open();
        let deadline = Instant::now() + Duration::from_secs(5);
        while lookups.pending("evil") != (0, 0) {
            assert!(Instant::now() < deadline, "lookups never ended");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(until_deadline(&lookups, "evil", instant)
            .await
            .unwrap()
            .is_ok());
    }

    #[tokio::test]
    async fn a_literal_is_not_looked_up_and_a_failed_lookup_names_the_host() {
        let lookups = Lookups::new(0, 0);
        let target = Target {
            host: "203.0.113.5".into(),
            port: 80,
            literal: Some([203, 0, 113, 5].into()),
        };
        // No lookup may start (both bounds are 0), yet a literal resolves.
        let addrs = resolve(&lookups, "f", &target).await.unwrap();
        assert_eq!(addrs, [SocketAddr::from(([203, 0, 113, 5], 80))]);
        let lookups = Lookups::new(1, 1);
        let err = resolve_with(&lookups, "f", "nx.example.com", 80, |_, _| {
            Err(std::io::Error::other("no such name"))
        })
        .await
        .unwrap_err();
        assert!(
            err.to_string().contains("cannot resolve nx.example.com"),
            "{err}"
        );
        let err = resolve_with(&lookups, "f", "empty.example.com", 80, |_, _| Ok(vec![]))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("has no address"), "{err}");
        assert_eq!(lookups.pending("f"), (0, 0));
    }
}
