//! The queue from the core task to one connection: batches of bytes to write, in order.
//!
//! A plain mutex-guarded deque and a `Notify` instead of a channel: an idle connection
//! then costs a few dozen bytes here rather than a preallocated channel block, which
//! matters with a hundred thousand idle sessions.

use std::collections::VecDeque;
use std::sync::Mutex;

use oxkeeper_core::pipeline::Delivery;
use tokio::sync::Notify;

/// Batches a client may leave unread before it is disconnected as too slow.
const MAX_QUEUED: usize = 4096;

#[derive(Default)]
pub struct Outlet {
    state: Mutex<State>,
    notify: Notify,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Delivery>,
    /// The core gave up on this connection (it stopped reading): no more output.
    closed: bool,
}

/// The connection is not reading its replies.
pub struct Full;

impl Outlet {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Core side: queues a batch, or refuses when the client let too much pile up.
    pub fn push(&self, d: Delivery) -> Result<(), Full> {
        let mut s = self.state();
        if s.closed || s.queue.len() >= MAX_QUEUED {
            return Err(Full);
        }
        s.queue.push_back(d);
        drop(s);
        self.notify.notify_one();
        Ok(())
    }

    /// Core side: no more output will come; the connection ends.
    pub fn close(&self) {
        self.state().closed = true;
        self.notify.notify_one();
    }

    /// Connection side: everything queued so far, waiting for something if empty.
    /// `None` once the core closed the outlet and nothing is left.
    pub async fn take(&self) -> Option<VecDeque<Delivery>> {
        loop {
            {
                let mut s = self.state();
                if !s.queue.is_empty() {
                    return Some(std::mem::take(&mut s.queue));
                }
                if s.closed {
                    return None;
                }
            }
            self.notify.notified().await;
        }
    }
}
