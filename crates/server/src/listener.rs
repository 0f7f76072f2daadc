//! ZooKeeper's per-IP connection limit (`maxClientCnxns`).

use std::collections::HashMap;
use std::net::IpAddr;

/// Live connections per client address, kept by the one thread that accepts and closes
/// them.
#[derive(Default)]
pub struct PerIpCount(HashMap<IpAddr, u32>);

impl PerIpCount {
    /// Counts one more connection from `ip`, unless it has `max` already: `Err(())`.
    /// With no limit (`max` 0) nothing is counted, so that a server with connections
    /// from many addresses keeps no table of them, and the answer is `Ok(None)`;
    /// otherwise `Ok(Some(ip))`, to be given back with [`PerIpCount::release`].
    pub fn admit(&mut self, ip: IpAddr, max: u32) -> Result<Option<IpAddr>, ()> {
        if max == 0 {
            return Ok(None);
        }
        let n = self.0.entry(ip).or_insert(0);
        if *n >= max {
            return Err(());
        }
        *n += 1;
        Ok(Some(ip))
    }

    pub fn release(&mut self, ip: IpAddr) {
        if let Some(n) = self.0.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.0.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_released_connection_makes_room() {
        let mut counts = PerIpCount::default();
        let ip: IpAddr = "10.0.0.1".parse().expect("ip");
        let other: IpAddr = "10.0.0.2".parse().expect("ip");
        assert_eq!(counts.admit(ip, 2), Ok(Some(ip)));
        assert_eq!(counts.admit(ip, 2), Ok(Some(ip)));
        assert_eq!(counts.admit(ip, 2), Err(()));
        assert_eq!(counts.admit(other, 2), Ok(Some(other)));
        counts.release(ip);
        assert_eq!(counts.admit(ip, 2), Ok(Some(ip)));
    }

    #[test]
    fn without_a_limit_nothing_is_counted() {
        let mut counts = PerIpCount::default();
        let ip: IpAddr = "10.0.0.1".parse().expect("ip");
        for _ in 0..100 {
            assert_eq!(counts.admit(ip, 0), Ok(None));
        }
        assert!(counts.0.is_empty());
    }
}
