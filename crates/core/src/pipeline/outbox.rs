//! Per-connection output gathered while the core processes a batch of events.
//!
//! Everything for one connection is appended to one buffer in the order produced, so a
//! watch event queued while applying a transaction always precedes any reply produced
//! after it, and the shell writes each connection's batch with one syscall.

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};

use crate::watch::ConnId;

#[derive(Default)]
pub struct Outbox {
    bufs: HashMap<ConnId, BytesMut>,
    /// Connections to close once their buffered output is written (order of request).
    closing: Vec<ConnId>,
}

/// What the shell must do for one connection.
#[derive(Debug)]
pub struct Delivery {
    pub conn: ConnId,
    pub bytes: Bytes,
    pub close: bool,
}

impl Outbox {
    pub fn buf(&mut self, conn: ConnId) -> &mut BytesMut {
        self.bufs.entry(conn).or_default()
    }

    pub fn close(&mut self, conn: ConnId) {
        if !self.closing.contains(&conn) {
            self.closing.push(conn);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.bufs.is_empty() && self.closing.is_empty()
    }

    pub fn drain(&mut self) -> Vec<Delivery> {
        let mut out: Vec<Delivery> = self
            .bufs
            .drain()
            .map(|(conn, b)| Delivery {
                conn,
                bytes: b.freeze(),
                close: false,
            })
            .collect();
        for conn in self.closing.drain(..) {
            match out.iter_mut().find(|d| d.conn == conn) {
                Some(d) => d.close = true,
                None => out.push(Delivery {
                    conn,
                    bytes: Bytes::new(),
                    close: true,
                }),
            }
        }
        out
    }
}
