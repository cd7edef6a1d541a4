//! Open connections counted per client address (`--max-connections-per-ip`),
//! so that one client cannot take every one of `--max-connections`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// The count of open connections of each client address.
#[derive(Debug)]
pub struct PerIp {
    /// Most connections per address; 0 counts nothing.
    limit: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// The address a client's connections are counted under.
fn client_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(prefix.into())
        }
        v4 => v4,
    }
}

/// One counted connection; it stops counting when dropped.
#[derive(Debug)]
pub struct IpPermit {
    table: Arc<PerIp>,
    ip: Option<IpAddr>,
}

impl PerIp {
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A permit for one more connection from `ip`, unless it has `limit`
    /// open already. An IPv4 client seen through an IPv6 socket counts as
    /// its IPv4 address; an IPv6 client counts as its /64 (one host holds a
    /// whole /64 and can pick any address in it).
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Option<IpPermit> {
        if self.limit == 0 {
            return Some(IpPermit {
                table: self.clone(),
                ip: None,
            });
        }
        let ip = client_of(ip);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(ip).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(IpPermit {
            table: self.clone(),
            ip: Some(ip),
        })
    }

    /// Open connections of `ip` (for tests and logs).
    pub fn open(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(&client_of(ip)).copied().unwrap_or(0)
    }
}

impl Drop for IpPermit {
    fn drop(&mut self) {
        let Some(ip) = self.ip else { return };
        let mut open = self
            .table
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&ip) {
            *count -= 1;
            // An address with nothing open takes no memory.
            if *count == 0 {
                open.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_gets_its_own_limit_and_closing_frees_it() {
        let table = PerIp::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = table.try_acquire(a).unwrap();
        let _second = table.try_acquire(a).unwrap();
        assert!(table.try_acquire(a).is_none());
        // The same client through an IPv6 socket is the same client.
        assert!(table
            .try_acquire("::ffff:10.0.0.1".parse().unwrap())
            .is_none());
        let _other = table.try_acquire(b).unwrap();
        drop(first);
        assert_eq!(table.open(a), 1);
        let _again = table.try_acquire(a).unwrap();
        assert!(table.try_acquire(a).is_none());
    }

    #[test]
    fn an_ipv6_client_counts_as_its_slash_64() {
        let table = PerIp::new(1);
        let _first = table
            .try_acquire("2001:db8:1:2::1".parse().unwrap())
            .unwrap();
        assert!(table
            .try_acquire("2001:db8:1:2:ffff::9".parse().unwrap())
            .is_none());
        assert!(table
            .try_acquire("2001:db8:1:3::1".parse().unwrap())
            .is_some());
    }

    #[test]
    fn nothing_is_kept_for_closed_addresses_and_zero_counts_nothing() {
        let table = PerIp::new(1);
        let permits: Vec<_> = (0..100u8)
            .map(|i| table.try_acquire(IpAddr::from([10, 0, 0, i])).unwrap())
            .collect();
        drop(permits);
        assert!(table.open.lock().unwrap().is_empty());
        let unlimited = PerIp::new(0);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let many: Vec<_> = (0..1000)
            .map(|_| unlimited.try_acquire(ip).unwrap())
            .collect();
        assert_eq!(many.len(), 1000);
        assert_eq!(unlimited.open(ip), 0);
    }
}
