//! Per-connection output gathered while the core processes a batch of events.
//!
//! Everything for one connection is appended to one buffer in the order produced, so a
//! watch event queued while applying a transaction always precedes any reply produced
//! after it, and the shell writes each connection's batch with one syscall.

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};

use crate::watch::ConnId;

/// Connections the table of outputs keeps room for between turns.
const SHRINK_ABOVE: usize = 4096;

#[derive(Default)]
pub struct Outbox {
    /// Output per connection, and how many replies (not notifications) it holds.
    bufs: HashMap<ConnId, (BytesMut, u32)>,
    /// Connections to close once their buffered output is written (order of request).
    closing: Vec<ConnId>,
}

/// What the shell must do for one connection.
#[derive(Debug)]
pub struct Delivery {
    pub conn: ConnId,
    pub bytes: Bytes,
    /// Requests these bytes answer: the shell limits the requests a connection has in
    /// flight, as ZooKeeper does, so it must know when they are answered.
    pub replies: u32,
    pub close: bool,
}

impl Outbox {
    /// Where a notification for `conn` goes.
    pub fn buf(&mut self, conn: ConnId) -> &mut BytesMut {
        &mut self.bufs.entry(conn).or_default().0
    }

    /// Where the reply to one of `conn`'s requests goes.
    pub fn reply_buf(&mut self, conn: ConnId) -> &mut BytesMut {
        let (buf, replies) = self.bufs.entry(conn).or_default();
        *replies += 1;
        buf
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
            .map(|(conn, (b, replies))| Delivery {
                conn,
                bytes: b.freeze(),
                replies,
                close: false,
            })
            .collect();
        // A turn that touched thousands of connections (a connect storm) must not leave
        // a table that size behind for good.
        if self.bufs.capacity() > SHRINK_ABOVE {
            self.bufs.shrink_to(SHRINK_ABOVE / 4);
        }
        for conn in self.closing.drain(..) {
            match out.iter_mut().find(|d| d.conn == conn) {
                Some(d) => d.close = true,
                None => out.push(Delivery {
                    conn,
                    bytes: Bytes::new(),
                    replies: 0,
                    close: true,
                }),
            }
        }
        out
    }
}
