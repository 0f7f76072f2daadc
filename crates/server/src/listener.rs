//! ZooKeeper's per-IP connection limit (`maxClientCnxns`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Live connections per client IP. The guard gives the slot back when a connection ends.
#[derive(Clone, Default)]
pub struct PerIpCount(Arc<Mutex<HashMap<IpAddr, u32>>>);

pub struct IpSlot {
    counts: PerIpCount,
    ip: IpAddr,
}

impl PerIpCount {
    pub fn try_acquire(&self, ip: IpAddr, max: u32) -> Option<IpSlot> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(ip).or_insert(0);
        if max > 0 && *n >= max {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            counts: self.clone(),
            ip,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut map = self.counts.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
pub fn test_slot(ip: IpAddr) -> IpSlot {
    PerIpCount::default().try_acquire(ip, 0).expect("slot")
}
