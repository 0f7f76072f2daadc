//! Accepting connections, with ZooKeeper's per-IP limit (`maxClientCnxns`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::core_task::Event;
use crate::{connection, ServerInfo};

/// Live connections per client IP. The guard gives the slot back when a connection ends.
#[derive(Clone, Default)]
pub struct PerIpCount(Arc<Mutex<HashMap<IpAddr, u32>>>);

pub struct IpSlot {
    counts: PerIpCount,
    ip: IpAddr,
}

impl PerIpCount {
    fn try_acquire(&self, ip: IpAddr, max: u32) -> Option<IpSlot> {
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

pub async fn accept_loop(
    listener: TcpListener,
    info: Arc<ServerInfo>,
    events: mpsc::Sender<Event>,
    mut shutdown: watch::Receiver<bool>,
) {
    let counts = PerIpCount::default();
    let mut next_conn: u64 = 1;
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Running out of descriptors must not kill the server; back off briefly.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(slot) = counts.try_acquire(peer.ip(), info.config.max_client_cnxns) else {
            tracing::warn!(%peer, max = info.config.max_client_cnxns, "too many connections from this address; closing");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let conn = oxkeeper_core::watch::ConnId(next_conn);
        next_conn += 1;
        tokio::spawn(connection::serve(
            stream,
            peer,
            conn,
            info.clone(),
            events.clone(),
            shutdown.clone(),
            slot,
        ));
    }
}

#[cfg(test)]
pub fn test_slot(ip: IpAddr) -> IpSlot {
    PerIpCount::default().try_acquire(ip, 0).expect("slot")
}
