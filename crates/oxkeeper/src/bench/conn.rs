//! A lean, pipelined ZooKeeper client connection for the load generator.
//!
//! One [`Conn`] is owned by one task: requests are encoded straight into a reused write
//! buffer, replies are cut out of a reused read buffer as zero-copy [`Bytes`], and replies are
//! matched to requests in order (ZooKeeper answers a connection's requests in the order they
//! were sent). A connection that has sent nothing for a third of the negotiated timeout sends a
//! ping on its own, so an idle session stays alive for as long as its owner polls [`Conn::recv`].

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use oxkeeper_proto::codes::{op, xid};
use oxkeeper_proto::frame::take_frame;
use oxkeeper_proto::response::write_frame;
use oxkeeper_proto::{ConnectRequest, ConnectResponse, Jute, Reader, ReplyHeader, RequestHeader};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use super::stats::Hist;

/// Largest reply frame accepted (ZooKeeper's default `jute.maxbuffer` plus headroom).
const MAX_FRAME: usize = 4 << 20;
/// The tag of pings the connection sends by itself; their replies are not handed out.
const AUTO_PING: u32 = u32::MAX;

/// Where to connect, and which loopback source address the next connection uses.
pub struct Target {
    pub addr: SocketAddr,
    /// Bind client sockets to 127.0.0.X (X cycling over 1..=254) so that far more connections
    /// than one source address's ephemeral port range fit.
    spread: bool,
    next_source: AtomicUsize,
    pub connect_timeout: Duration,
}

impl Target {
    pub async fn resolve(name: &str, connect_timeout: Duration) -> anyhow::Result<Target> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host(name)
            .await
            .map_err(|e| anyhow::anyhow!("cannot resolve server address {name}: {e}"))?
            .collect();
        let addr = addrs
            .iter()
            .find(|a| a.is_ipv4())
            .or(addrs.first())
            .copied()
            .ok_or_else(|| anyhow::anyhow!("server address {name} resolves to nothing"))?;
        let spread = matches!(addr.ip(), IpAddr::V4(ip) if ip.is_loopback());
        Ok(Target {
            addr,
            spread,
            next_source: AtomicUsize::new(0),
            connect_timeout,
        })
    }

    async fn tcp_connect(&self) -> io::Result<TcpStream> {
        let socket = if self.addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if self.spread {
            let x = (self.next_source.fetch_add(1, Ordering::Relaxed) % 254 + 1) as u8;
            // The port is then picked at connect time, knowing the destination, so it never
            // lands on a 4-tuple the server still holds in TIME_WAIT from an earlier
            // connection: on loopback that SYN would be answered with a reset.
            nix::sys::socket::setsockopt(
                &socket,
                nix::sys::socket::sockopt::IpBindAddressNoPort,
                &true,
            )
            .map_err(io::Error::from)?;
            socket.bind(SocketAddr::new(Ipv4Addr::new(127, 0, 0, x).into(), 0))?;
        }
        let stream = socket.connect(self.addr).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}

#[derive(Clone, Copy)]
struct Pending {
    xid: i32,
    op: i32,
    tag: u32,
    sent: Instant,
}

/// One reply, with what the request it answers carried.
pub struct Reply {
    pub err: i32,
    pub op: i32,
    pub tag: u32,
    pub sent: Instant,
    /// When the read that brought this reply returned.
    pub received: Instant,
    pub body: Bytes,
}

impl Reply {
    pub fn latency(&self) -> Duration {
        self.received.saturating_duration_since(self.sent)
    }
}

/// What [`Conn::recv`] hands out.
pub enum Event {
    Reply(Reply),
    /// A watch notification: its event type and path (raw bytes, no copy).
    Watch {
        event_type: i32,
        path: Bytes,
        received: Instant,
    },
}

pub struct Conn {
    stream: TcpStream,
    rbuf: BytesMut,
    wbuf: BytesMut,
    /// How much free room to make in the read buffer before each read.
    read_chunk: usize,
    pending: VecDeque<Pending>,
    next_xid: i32,
    pub session_id: i64,
    pub timeout_ms: i32,
    /// The session's password, to resume it on another connection.
    pub passwd: Bytes,
    ping_every: Duration,
    last_send: Instant,
    last_read: Instant,
    ping_sink: Option<Arc<Mutex<Hist>>>,
}

fn protocol_error(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

impl Conn {
    /// Connects and establishes a new session asking for `timeout_ms`. `read_chunk` is the
    /// read buffer's working size: small for idle sessions, large for busy load drivers.
    pub async fn connect(target: &Target, timeout_ms: i32, read_chunk: usize) -> io::Result<Conn> {
        Self::open(target, timeout_ms, read_chunk, None).await
    }

    /// Connects to an existing session (`session_id`, `passwd`), as a client does after
    /// losing its connection. An expired session is an error.
    pub async fn resume(
        target: &Target,
        timeout_ms: i32,
        session_id: i64,
        passwd: Bytes,
    ) -> io::Result<Conn> {
        Self::open(target, timeout_ms, 256, Some((session_id, passwd))).await
    }

    async fn open(
        target: &Target,
        timeout_ms: i32,
        read_chunk: usize,
        session: Option<(i64, Bytes)>,
    ) -> io::Result<Conn> {
        match tokio::time::timeout(
            target.connect_timeout,
            Self::connect_inner(target, timeout_ms, read_chunk, session),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no session within {:?}", target.connect_timeout),
            )),
        }
    }

    async fn connect_inner(
        target: &Target,
        timeout_ms: i32,
        read_chunk: usize,
        session: Option<(i64, Bytes)>,
    ) -> io::Result<Conn> {
        let stream = target.tcp_connect().await?;
        let now = Instant::now();
        let mut conn = Conn {
            stream,
            rbuf: BytesMut::new(),
            wbuf: BytesMut::with_capacity(64),
            read_chunk: read_chunk.max(64),
            pending: VecDeque::new(),
            next_xid: 0,
            session_id: 0,
            timeout_ms: 0,
            passwd: Bytes::new(),
            ping_every: Duration::from_secs(3600),
            last_send: now,
            last_read: now,
            ping_sink: None,
        };
        let (session_id, passwd) = session.unwrap_or((0, Bytes::from_static(&[0; 16])));
        write_frame(&mut conn.wbuf, |w| {
            ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: 0,
                timeout_ms,
                session_id,
                passwd,
                read_only: Some(false),
            }
            .write(w)
        });
        conn.stream.write_all(&conn.wbuf).await?;
        conn.wbuf.clear();
        let frame = loop {
            if let Some(f) = take_frame(&mut conn.rbuf, MAX_FRAME)
                .map_err(|e| protocol_error(format!("bad handshake answer: {e}")))?
            {
                break f;
            }
            conn.rbuf.reserve(64);
            if conn.stream.read_buf(&mut conn.rbuf).await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "server closed the connection during the handshake",
                ));
            }
        };
        let resp = ConnectResponse::decode(frame)
            .map_err(|e| protocol_error(format!("bad ConnectResponse: {e}")))?;
        if resp.timeout_ms <= 0 || resp.session_id == 0 {
            return Err(protocol_error(if session_id == 0 {
                "server refused the session"
            } else {
                "session expired"
            }));
        }
        conn.session_id = resp.session_id;
        conn.passwd = resp.passwd;
        conn.timeout_ms = resp.timeout_ms;
        conn.ping_every = Duration::from_millis((resp.timeout_ms as u64 / 3).max(1));
        let now = Instant::now();
        conn.last_send = now;
        conn.last_read = now;
        Ok(conn)
    }

    /// Moves this connection's ping schedule earlier by `phase` (0..1) of its interval.
    /// Sessions opened in a burst would otherwise ping in step, every one of them within
    /// the same fraction of a second, and the figure would measure the burst rather than
    /// the server.
    pub fn stagger_pings(&mut self, phase: f64) {
        let back = self.ping_every.mul_f64(phase.clamp(0.0, 1.0));
        self.last_send = self.last_send.checked_sub(back).unwrap_or(self.last_send);
    }

    /// Records the latency of the pings this connection sends by itself.
    pub fn record_pings(&mut self, sink: Arc<Mutex<Hist>>) {
        self.ping_sink = Some(sink);
    }

    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Appends a request (header, then what `body` writes) to the write buffer; it goes out
    /// during the next [`Conn::recv`]. `tag` comes back with the reply.
    pub fn queue(
        &mut self,
        opcode: i32,
        tag: u32,
        sent: Instant,
        body: impl FnOnce(&mut BytesMut),
    ) -> i32 {
        let x = if opcode == op::PING {
            xid::PING
        } else {
            self.next_xid = self.next_xid.wrapping_add(1) & i32::MAX;
            self.next_xid
        };
        write_frame(&mut self.wbuf, |w| {
            RequestHeader { xid: x, op: opcode }.write(w);
            body(w);
        });
        self.pending.push_back(Pending {
            xid: x,
            op: opcode,
            tag,
            sent,
        });
        self.last_send = sent;
        x
    }

    /// Sends what is queued without waiting for replies.
    pub async fn flush(&mut self) -> io::Result<()> {
        if !self.wbuf.is_empty() {
            self.stream.write_all(&self.wbuf).await?;
            self.wbuf.clear();
        }
        Ok(())
    }

    /// The next reply or notification. Writes queued requests meanwhile and pings when the
    /// connection has been quiet for a third of the session timeout. Cancel-safe: all state
    /// lives in `self`.
    pub async fn recv(&mut self) -> io::Result<Event> {
        loop {
            if let Some(ev) = self.take_event()? {
                return Ok(ev);
            }
            if self.rbuf.capacity() - self.rbuf.len() < self.read_chunk / 2 {
                self.rbuf.reserve(self.read_chunk);
            }
            let ping_at = self.last_send + self.ping_every;
            let (mut rd, mut wr) = self.stream.split();
            let idle = tokio::select! {
                biased;
                r = rd.read_buf(&mut self.rbuf) => {
                    if r? == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::ConnectionAborted,
                            "server closed the connection",
                        ));
                    }
                    self.last_read = Instant::now();
                    false
                }
                r = wr.write_buf(&mut self.wbuf), if !self.wbuf.is_empty() => {
                    r?;
                    false
                }
                _ = tokio::time::sleep_until(ping_at.into()), if self.wbuf.is_empty() => true,
            };
            if idle {
                self.queue(op::PING, AUTO_PING, Instant::now(), |_| {});
            }
        }
    }

    /// Waits for the reply to the request tagged `tag` (skipping other replies and
    /// notifications) and returns it.
    pub async fn wait_for(&mut self, tag: u32) -> io::Result<Reply> {
        loop {
            if let Event::Reply(r) = self.recv().await? {
                if r.tag == tag {
                    return Ok(r);
                }
            }
        }
    }

    /// Closes the session (closeSession, then waits for its reply) and the connection.
    pub async fn close(mut self) -> io::Result<Duration> {
        let sent = Instant::now();
        self.queue(op::CLOSE_SESSION, u32::MAX - 1, sent, |_| {});
        let r = self.wait_for(u32::MAX - 1).await?;
        if r.err != 0 {
            return Err(protocol_error(format!(
                "closeSession failed: error {}",
                r.err
            )));
        }
        Ok(r.latency())
    }

    fn take_event(&mut self) -> io::Result<Option<Event>> {
        loop {
            let Some(frame) = take_frame(&mut self.rbuf, MAX_FRAME)
                .map_err(|e| protocol_error(format!("bad reply frame: {e}")))?
            else {
                return Ok(None);
            };
            let mut r = Reader::new(frame);
            let h = ReplyHeader::read(&mut r)
                .map_err(|e| protocol_error(format!("bad reply header: {e}")))?;
            if h.xid == xid::NOTIFICATION {
                let event_type = r.read_i32().unwrap_or(0);
                let _state = r.read_i32().unwrap_or(0);
                let path = r.read_buffer().ok().flatten().unwrap_or_default();
                return Ok(Some(Event::Watch {
                    event_type,
                    path,
                    received: self.last_read,
                }));
            }
            let p = self
                .pending
                .pop_front()
                .ok_or_else(|| protocol_error(format!("reply xid {} with no request", h.xid)))?;
            if p.xid != h.xid {
                return Err(protocol_error(format!(
                    "reply xid {} does not answer request xid {}",
                    h.xid, p.xid
                )));
            }
            if p.tag == AUTO_PING {
                if let Some(sink) = &self.ping_sink {
                    if let Ok(mut h) = sink.lock() {
                        h.record(self.last_read.saturating_duration_since(p.sent));
                    }
                }
                continue;
            }
            return Ok(Some(Event::Reply(Reply {
                err: h.err,
                op: p.op,
                tag: p.tag,
                sent: p.sent,
                received: self.last_read,
                body: r.take_rest(),
            })));
        }
    }
}

/// Encoders for the request bodies the benchmark sends, written straight into the frame.
pub mod body {
    use bytes::{BufMut, BytesMut};
    use oxkeeper_proto::jute::write_buffer;

    /// exists, getData, getChildren: path + watch flag.
    pub fn path_watch(w: &mut BytesMut, path: &[u8], watch: bool) {
        write_buffer(w, path);
        w.put_u8(u8::from(watch));
    }

    /// setData with version -1.
    pub fn set_data(w: &mut BytesMut, path: &[u8], data: &[u8]) {
        write_buffer(w, path);
        write_buffer(w, data);
        w.put_i32(-1);
    }

    /// create with `OPEN_ACL_UNSAFE` (world:anyone, all permissions).
    pub fn create(w: &mut BytesMut, path: &[u8], data: &[u8], flags: i32) {
        write_buffer(w, path);
        write_buffer(w, data);
        w.put_i32(1);
        w.put_i32(oxkeeper_proto::records::perms::ALL);
        write_buffer(w, b"world");
        write_buffer(w, b"anyone");
        w.put_i32(flags);
    }

    /// delete with version -1.
    pub fn delete(w: &mut BytesMut, path: &[u8]) {
        write_buffer(w, path);
        w.put_i32(-1);
    }
}

/// Sends a four-letter word on a fresh connection and returns the whole answer.
pub async fn four_letter(target: &Target, word: &str) -> io::Result<String> {
    let fut = async {
        let mut s = target.tcp_connect().await?;
        s.write_all(word.as_bytes()).await?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "no answer")))
}
