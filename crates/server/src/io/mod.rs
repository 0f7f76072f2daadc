//! The I/O thread: one thread that owns the listening socket and every client socket,
//! driven by readiness (epoll through mio) instead of a task per connection.
//!
//! Frames go to the core task through its event channel; the core's output comes back
//! through the [`Mailbox`], one wake-up per core turn however many connections it
//! touches. An idle connection is then a socket and a [`client::Client`] of about a
//! hundred bytes, with no task, future or buffer of its own. The rare paths, four-letter
//! words and the graceful end of a closed session, leave the thread as tokio tasks so that
//! nothing here ever waits.
//!
//! Must not interpret what it moves: framing is the only protocol it knows.

mod client;
mod rare;

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use oxkeeper_core::pipeline::Delivery;
use oxkeeper_core::watch::ConnId;
use tokio::sync::{mpsc, oneshot};

use crate::core_task::Event;
use crate::listener::PerIpCount;
use crate::ServerInfo;
use client::{Client, Flushed, Input};

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
/// A connection's id is its slot in the table of clients (low 32 bits) and the count of
/// connections accepted before it (high 32 bits, from 1): a slot is reused, an id is not,
/// so output for a connection that is gone cannot reach the next one in its slot. The id
/// is also the socket's token, never one of the reserved ones.
fn conn_id(seq: u32, slot: usize) -> u64 {
    u64::from(seq) << 32 | slot as u64
}

fn slot_of(id: u64) -> usize {
    (id & u64::from(u32::MAX)) as usize
}

fn seq_of(id: u64) -> u32 {
    (id >> 32) as u32
}

/// A connection's requests stop being read while this many are unanswered or this many
/// reply bytes wait for it, as ZooKeeper stops reading from connections with too much
/// outstanding: the client then waits in its own socket and nothing is lost, and one
/// connection cannot make the server queue replies without bound.
const MAX_IN_FLIGHT: u32 = 128;
const READ_PAUSE_BYTES: usize = 1 << 20;

/// Replies (and bytes) a client may leave unwritten before it is disconnected as too slow.
/// With reading paused, only output it did not ask for gets this far: notifications of
/// others' writes.
const MAX_QUEUED: usize = 4096;
const MAX_QUEUED_BYTES: usize = 256 << 20;

/// How long accepting pauses after it failed (out of descriptors, say).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The longest the thread sleeps without checking whether the core is still there.
const MAX_POLL: Duration = Duration::from_millis(250);

/// How long a closed connection may take to read our last reply and hang up.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// The core task's way to the connections.
pub struct Mailbox {
    state: Mutex<Mail>,
    waker: Waker,
}

#[derive(Default)]
struct Mail {
    out: Vec<Delivery>,
    stop: bool,
}

impl Mailbox {
    fn mail(&self) -> std::sync::MutexGuard<'_, Mail> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands a turn's output to the I/O thread.
    pub fn deliver(&self, mut output: Vec<Delivery>) {
        if output.is_empty() {
            return;
        }
        let mut mail = self.mail();
        let was_empty = mail.out.is_empty();
        if was_empty {
            std::mem::swap(&mut mail.out, &mut output);
        } else {
            mail.out.append(&mut output);
        }
        drop(mail);
        // A non-empty mailbox already has a wake-up on its way.
        if was_empty {
            self.wake();
        }
    }

    /// Closes every connection and ends the thread.
    pub fn stop(&self) {
        self.mail().stop = true;
        self.wake();
    }

    fn wake(&self) {
        if let Err(e) = self.waker.wake() {
            tracing::error!(error = %e, "cannot wake the I/O thread");
        }
    }
}

/// Starts the I/O thread on `listener`. The receiver fires once the thread has closed
/// every connection and stopped.
pub fn spawn(
    listener: std::net::TcpListener,
    info: Arc<ServerInfo>,
    events: mpsc::Sender<Event>,
) -> io::Result<(Arc<Mailbox>, oneshot::Receiver<()>)> {
    let poll = Poll::new()?;
    let waker = Waker::new(poll.registry(), WAKER)?;
    let mut listener = TcpListener::from_std(listener);
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mailbox = Arc::new(Mailbox {
        state: Mutex::new(Mail::default()),
        waker,
    });
    let (done_tx, done_rx) = oneshot::channel();
    let mut io = IoThread {
        poll,
        listener,
        clients: Clients::default(),
        next_seq: 1,
        accept_paused_until: None,
        mailbox: mailbox.clone(),
        events,
        runtime: tokio::runtime::Handle::current(),
        info,
        scratch: vec![0; 64 * 1024],
        inputs: Vec::new(),
        dirty: Vec::new(),
        draining: VecDeque::new(),
    };
    std::thread::Builder::new()
        .name("oxkeeper-io".into())
        .spawn(move || {
            if let Err(e) = io.run() {
                tracing::error!(error = %e, "the I/O thread failed");
            }
            // Dropping the clients closes their sockets.
            drop(io);
            let _ = done_tx.send(());
        })?;
    Ok((mailbox, done_rx))
}

struct IoThread {
    poll: Poll,
    listener: TcpListener,
    clients: Clients,
    next_seq: u32,
    accept_paused_until: Option<Instant>,
    mailbox: Arc<Mailbox>,
    events: mpsc::Sender<Event>,
    runtime: tokio::runtime::Handle,
    info: Arc<ServerInfo>,
    /// Every read lands here first: one buffer for all connections.
    scratch: Vec<u8>,
    inputs: Vec<Input>,
    /// Connections with replies queued this turn, flushed once each at its end.
    dirty: Vec<u64>,
    /// Connections the core closed, waiting for the client to hang up, oldest first (all
    /// wait equally long, so this is also deadline order).
    draining: VecDeque<(Instant, u64)>,
}

/// The clients by slot (every lookup checks the whole id), and how many each address
/// has open.
#[derive(Default)]
struct Clients {
    slab: slab::Slab<Client>,
    counts: PerIpCount,
}

impl Clients {
    fn get(&self, id: u64) -> Option<&Client> {
        self.slab.get(slot_of(id)).filter(|c| c.seq == seq_of(id))
    }

    fn get_mut(&mut self, id: u64) -> Option<&mut Client> {
        self.slab
            .get_mut(slot_of(id))
            .filter(|c| c.seq == seq_of(id))
    }

    fn remove(&mut self, id: u64) -> Option<Client> {
        self.get(id)?;
        let client = self.slab.try_remove(slot_of(id))?;
        if let Some(ip) = client.counted_ip {
            self.counts.release(ip);
        }
        Some(client)
    }
}

/// The core has stopped: nothing more to do.
struct CoreGone;

impl IoThread {
    fn run(&mut self) -> io::Result<()> {
        let mut ready = Events::with_capacity(1024);
        loop {
            // Wake for whichever comes first: accepting again, or a drain running out.
            let now = Instant::now();
            let timeout = [
                self.accept_paused_until,
                self.draining.front().map(|&(at, _)| at),
            ]
            .into_iter()
            .flatten()
            .map(|at| at.saturating_duration_since(now))
            .fold(MAX_POLL, Duration::min);
            if let Err(e) = self.poll.poll(&mut ready, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            if self.events.is_closed() {
                return Ok(());
            }
            self.end_drains(Instant::now());
            if self
                .accept_paused_until
                .is_some_and(|until| Instant::now() >= until)
            {
                self.accept_paused_until = None;
                if self.accept().is_err() {
                    return Ok(());
                }
            }
            for ev in ready.iter() {
                let step = match ev.token() {
                    LISTENER => self.accept(),
                    WAKER => Ok(()),
                    Token(id) => {
                        let id = id as u64;
                        let mut step = Ok(());
                        if ev.is_writable() {
                            self.dirty.push(id);
                        }
                        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                            step = self.read(id, ev.is_read_closed() || ev.is_error());
                        }
                        step
                    }
                };
                if step.is_err() {
                    return Ok(());
                }
            }
            let (out, stop) = {
                let mut mail = self.mailbox.mail();
                (std::mem::take(&mut mail.out), mail.stop)
            };
            if stop {
                return Ok(());
            }
            for d in out {
                if self.deliver(d).is_err() {
                    return Ok(());
                }
            }
            if self.flush_dirty().is_err() {
                return Ok(());
            }
        }
    }

    /// Sends an event to the core, waiting for room when it is behind: a flood of
    /// requests then waits in the sockets, not in memory.
    fn send(&self, ev: Event) -> Result<(), CoreGone> {
        match self.events.try_send(ev) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(ev)) => {
                self.events.blocking_send(ev).map_err(|_| CoreGone)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(CoreGone),
        }
    }

    fn accept(&mut self) -> Result<(), CoreGone> {
        if self.accept_paused_until.is_some() {
            return Ok(());
        }
        loop {
            let (mut stream, peer) = match self.listener.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Running out of descriptors must not kill the server; back off briefly.
                    tracing::warn!(error = %e, "accept failed");
                    self.accept_paused_until = Some(Instant::now() + ACCEPT_BACKOFF);
                    return Ok(());
                }
            };
            let max = self.info.config.max_client_cnxns;
            let Ok(counted_ip) = self.clients.counts.admit(peer.ip(), max) else {
                tracing::warn!(%peer, max, "too many connections from this address; closing");
                continue;
            };
            let _ = stream.set_nodelay(true);
            let entry = self.clients.slab.vacant_entry();
            let id = conn_id(self.next_seq, entry.key());
            self.next_seq = self.next_seq.checked_add(1).unwrap_or(1);
            if let Err(e) = self.poll.registry().register(
                &mut stream,
                Token(id as usize),
                Interest::READABLE | Interest::WRITABLE,
            ) {
                tracing::warn!(%peer, error = %e, "cannot watch a new connection; closing it");
                if let Some(ip) = counted_ip {
                    self.clients.counts.release(ip);
                }
                continue;
            }
            entry.insert(Client::new(stream, counted_ip, seq_of(id)));
        }
    }

    /// Reads everything the socket has and passes on what it means.
    ///
    /// A read that does not fill the buffer has taken all the socket had, and whatever
    /// arrives later raises a new edge, so the read that would only say "nothing more"
    /// is skipped: one system call per burst instead of two. Unless the peer already
    /// hung up (`hung_up`): then no new edge comes, and reading goes on to the end.
    fn read(&mut self, id: u64, hung_up: bool) -> Result<(), CoreGone> {
        let max_frame = self.info.config.jute_max_buffer;
        loop {
            let Some(client) = self.clients.get_mut(id) else {
                return Ok(());
            };
            if client.draining {
                // Whatever it still sends is ignored; its end of stream ends the socket.
                match client.read(&mut self.scratch) {
                    Ok(None) => return Ok(()),
                    Ok(Some(n)) if n > 0 => continue,
                    _ => {
                        self.clients.remove(id);
                        return Ok(());
                    }
                }
            }
            if client.over_limits(MAX_IN_FLIGHT, READ_PAUSE_BYTES) {
                client.paused = true;
                return Ok(());
            }
            let n = match client.read(&mut self.scratch) {
                Ok(None) => return Ok(()),
                Ok(Some(0)) => return self.drop_client(id),
                Ok(Some(n)) => n,
                Err(e) => {
                    tracing::debug!(conn = id, error = %e, "read failed");
                    return self.drop_client(id);
                }
            };
            let mut inputs = std::mem::take(&mut self.inputs);
            let taken = client.take_input(&self.scratch[..n], max_frame, &mut inputs);
            for _ in inputs.iter().filter(|i| matches!(i, Input::Frame(_))) {
                client.sent_request();
            }
            let received = Instant::now();
            let conn = ConnId(id);
            let mut gone = false;
            for input in inputs.drain(..) {
                match input {
                    Input::FourLetter(word) => {
                        self.four_letter(id, word);
                        break;
                    }
                    Input::Opened => {
                        let peer = self.clients.get(id).map(|c| c.stream.peer_addr());
                        let Some(Ok(peer)) = peer else {
                            gone = true;
                            break;
                        };
                        self.send(Event::Open { conn, peer })?;
                    }
                    Input::Frame(frame) => self.send(Event::Frame {
                        conn,
                        frame,
                        received,
                    })?,
                }
            }
            self.inputs = inputs;
            if gone {
                return self.drop_client(id);
            }
            if let Err(e) = taken {
                tracing::info!(conn = id, error = %e, "Len error; closing connection");
                return self.drop_client(id);
            }
            if n < self.scratch.len() && !hung_up {
                return Ok(());
            }
        }
    }

    /// Queues one of the core's deliveries on its connection.
    fn deliver(&mut self, d: Delivery) -> Result<(), CoreGone> {
        let id = d.conn.0;
        let Some(client) = self.clients.get_mut(id) else {
            return Ok(());
        };
        if client.close_requested {
            return Ok(());
        }
        client.queue(d.bytes, d.replies);
        client.close_requested = d.close;
        let (count, bytes) = client.queued();
        if count >= MAX_QUEUED || bytes >= MAX_QUEUED_BYTES {
            tracing::warn!(
                conn = id,
                replies = count,
                bytes,
                "client is not reading its replies; dropping the connection"
            );
            return self.drop_client(id);
        }
        self.dirty.push(id);
        Ok(())
    }

    fn flush_dirty(&mut self) -> Result<(), CoreGone> {
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        dirty.dedup();
        for &id in &dirty {
            let Some(client) = self.clients.get_mut(id) else {
                continue;
            };
            if client.draining {
                continue;
            }
            match client.flush() {
                Ok(Flushed::All) if client.close_requested => self.finish_closing(id)?,
                Ok(_) if client.paused && !client.over_limits(MAX_IN_FLIGHT, READ_PAUSE_BYTES) => {
                    // Edge-triggered: the requests that waited raise no new event.
                    client.paused = false;
                    self.read(id, false)?;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(conn = id, error = %e, "write failed");
                    self.drop_client(id)?;
                }
            }
        }
        dirty.clear();
        dirty.append(&mut self.dirty);
        self.dirty = dirty;
        Ok(())
    }

    /// The connection is gone: the core forgets it, the socket closes (which also takes
    /// it out of the epoll set: nothing else holds its descriptor).
    fn drop_client(&mut self, id: u64) -> Result<(), CoreGone> {
        let Some(client) = self.clients.remove(id) else {
            return Ok(());
        };
        if client.opened {
            self.send(Event::Closed { conn: ConnId(id) })?;
        }
        Ok(())
    }

    /// The core closed the connection and its last reply is written: send FIN and let the
    /// client read it. Closing a socket that still has unread input would send RST instead,
    /// and the client could lose the final reply, so the socket stays until the client
    /// hangs up or `DRAIN_TIMEOUT` passes.
    fn finish_closing(&mut self, id: u64) -> Result<(), CoreGone> {
        let Some(client) = self.clients.get_mut(id) else {
            return Ok(());
        };
        client.draining = true;
        if client.stream.shutdown(std::net::Shutdown::Write).is_err() {
            self.clients.remove(id);
        } else {
            self.draining
                .push_back((Instant::now() + DRAIN_TIMEOUT, id));
        }
        self.send(Event::Closed { conn: ConnId(id) })
    }

    /// Drops the closed connections whose clients did not hang up in time.
    fn end_drains(&mut self, now: Instant) {
        while let Some(&(at, id)) = self.draining.front() {
            if at > now {
                break;
            }
            self.draining.pop_front();
            if self.clients.get(id).is_some_and(|c| c.draining) {
                self.clients.remove(id);
            }
        }
    }

    /// A four-letter word is answered from a task: it waits for the core, and the thread
    /// must not.
    fn four_letter(&mut self, id: u64, word: &'static str) {
        let Some(mut client) = self.clients.remove(id) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut client.stream);
        let stream = std::net::TcpStream::from(client.stream);
        let (info, events) = (self.info.clone(), self.events.clone());
        self.runtime
            .spawn(rare::four_letter(stream, word, info, events));
    }
}
