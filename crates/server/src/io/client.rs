//! One client socket as the I/O thread sees it: bytes in, frames out; queued replies,
//! written as far as the socket takes them.
//!
//! Kept small on purpose: with a hundred thousand idle sessions this struct, not a task
//! and its future, is what each connection costs in user space. An idle connection holds
//! no buffers at all: they exist only while a frame is incomplete or replies wait for the
//! socket.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::net::IpAddr;

use bytes::{Buf, Bytes, BytesMut};
use oxkeeper_proto::frame::{four_letter_word, take_frame, FrameError};

/// What the bytes received so far ask for.
pub enum Input {
    /// The connection opened with a four-letter word: answer it and close.
    FourLetter(&'static str),
    /// The first four bytes were a frame length: the connection speaks the protocol.
    Opened,
    Frame(Bytes),
}

pub struct Client {
    /// The high half of the connection's id (the low half is its slot); see `conn_id`.
    pub seq: u32,
    pub stream: mio::net::TcpStream,
    /// The address it counts against `maxClientCnxns`, when there is a limit.
    pub counted_ip: Option<IpAddr>,
    /// Only while there is a part frame or unwritten output: an idle connection has none.
    buffers: Option<Box<Buffers>>,
    /// Requests passed to the core and not answered yet.
    in_flight: u32,
    /// Until the first four bytes arrive nobody knows whether this is a session or a
    /// four-letter word.
    pub opened: bool,
    /// The core asked for the connection to end after the replies queued before.
    pub close_requested: bool,
    /// Reading stopped because the client is not reading its replies.
    pub paused: bool,
    /// Closed by the core, last reply written, FIN sent: waiting for the client to hang up.
    pub draining: bool,
}

#[derive(Default)]
struct Buffers {
    /// Input that does not make a whole frame yet.
    partial: BytesMut,
    /// Replies not yet taken by the socket, the first one possibly in part.
    pending: VecDeque<Bytes>,
    pending_bytes: usize,
}

/// How a flush went.
pub enum Flushed {
    /// Everything queued is written.
    All,
    /// The socket is full; the rest waits for it to become writable.
    Blocked,
}

impl Client {
    pub fn new(stream: mio::net::TcpStream, counted_ip: Option<IpAddr>, seq: u32) -> Client {
        Client {
            seq,
            stream,
            counted_ip,
            buffers: None,
            in_flight: 0,
            opened: false,
            close_requested: false,
            paused: false,
            draining: false,
        }
    }

    fn buffers(&mut self) -> &mut Buffers {
        self.buffers.get_or_insert_with(Box::default)
    }

    /// Gives the buffers back once they hold nothing.
    fn release_if_empty(&mut self) {
        if self
            .buffers
            .as_ref()
            .is_some_and(|b| b.partial.is_empty() && b.pending.is_empty())
        {
            self.buffers = None;
        }
    }

    fn partial_is_empty(&self) -> bool {
        self.buffers.as_ref().is_none_or(|b| b.partial.is_empty())
    }

    /// Splits `data` (just read) into what it means, in order, into `out`. An error is a
    /// frame length outside `0..=max_frame`: ZooKeeper closes such connections.
    pub fn take_input(
        &mut self,
        data: &[u8],
        max_frame: usize,
        out: &mut Vec<Input>,
    ) -> Result<(), FrameError> {
        let result = self.take_input_inner(data, max_frame, out);
        self.release_if_empty();
        result
    }

    fn take_input_inner(
        &mut self,
        data: &[u8],
        max_frame: usize,
        out: &mut Vec<Input>,
    ) -> Result<(), FrameError> {
        if !self.opened {
            let partial = &mut self.buffers().partial;
            partial.extend_from_slice(data);
            if partial.len() < 4 {
                return Ok(());
            }
            let first = [partial[0], partial[1], partial[2], partial[3]];
            if let Some(word) = four_letter_word(first) {
                partial.clear();
                out.push(Input::FourLetter(word));
                return Ok(());
            }
            self.opened = true;
            out.push(Input::Opened);
            return self.frames_from_partial(max_frame, out);
        }
        if self.partial_is_empty() {
            return self.take_frames(data, max_frame, out);
        }
        self.buffers().partial.extend_from_slice(data);
        self.frames_from_partial(max_frame, out)
    }

    /// Whole frames from the bytes kept so far; frames share their allocation, so a large
    /// frame is never copied again as its pieces arrive.
    fn frames_from_partial(
        &mut self,
        max_frame: usize,
        out: &mut Vec<Input>,
    ) -> Result<(), FrameError> {
        let partial = &mut self.buffers().partial;
        while let Some(frame) = take_frame(partial, max_frame)? {
            out.push(Input::Frame(frame));
        }
        if partial.is_empty() {
            *partial = BytesMut::new();
        }
        Ok(())
    }

    /// Whole frames from `data`; a trailing part frame is kept for the next read.
    fn take_frames(
        &mut self,
        mut data: &[u8],
        max_frame: usize,
        out: &mut Vec<Input>,
    ) -> Result<(), FrameError> {
        while data.len() >= 4 {
            let len = i32::from_be_bytes([data[0], data[1], data[2], data[3]]);
            if len < 0 || len as usize > max_frame {
                return Err(FrameError::BadLength {
                    len: len.into(),
                    max: max_frame,
                });
            }
            let end = 4 + len as usize;
            if data.len() < end {
                // Room for the whole frame at once: a large frame then grows the buffer
                // once, not with every read.
                self.buffers().partial.reserve(end);
                break;
            }
            out.push(Input::Frame(Bytes::copy_from_slice(&data[4..end])));
            data = &data[end..];
        }
        if !data.is_empty() {
            self.buffers().partial.extend_from_slice(data);
        }
        Ok(())
    }

    pub fn sent_request(&mut self) {
        self.in_flight += 1;
    }

    /// Whether reading should wait: too many requests unanswered, or too many replies
    /// unwritten.
    pub fn over_limits(&self, max_in_flight: u32, max_pending_bytes: usize) -> bool {
        self.in_flight >= max_in_flight || self.queued().1 > max_pending_bytes
    }

    pub fn queue(&mut self, bytes: Bytes, replies: u32) {
        self.in_flight = self.in_flight.saturating_sub(replies);
        if !bytes.is_empty() {
            let b = self.buffers();
            b.pending_bytes += bytes.len();
            b.pending.push_back(bytes);
        }
    }

    /// Replies waiting for the socket: how many, and how many bytes.
    pub fn queued(&self) -> (usize, usize) {
        self.buffers
            .as_ref()
            .map_or((0, 0), |b| (b.pending.len(), b.pending_bytes))
    }

    /// Writes queued replies until they are all out or the socket is full.
    pub fn flush(&mut self) -> io::Result<Flushed> {
        const SLICES: usize = 64;
        let Some(b) = self.buffers.as_mut() else {
            return Ok(Flushed::All);
        };
        while !b.pending.is_empty() {
            let mut slices = [IoSlice::new(&[]); SLICES];
            let n = b
                .pending
                .iter()
                .zip(slices.iter_mut())
                .map(|(p, s)| *s = IoSlice::new(p))
                .count();
            match self.stream.write_vectored(&slices[..n]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(mut written) => {
                    b.pending_bytes -= written;
                    while written > 0 {
                        let Some(front) = b.pending.front_mut() else {
                            break;
                        };
                        if written >= front.len() {
                            written -= front.len();
                            b.pending.pop_front();
                        } else {
                            front.advance(written);
                            written = 0;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Flushed::Blocked),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        // A burst of replies may have grown the queue; an idle connection keeps none of it.
        b.pending = VecDeque::new();
        self.release_if_empty();
        Ok(Flushed::All)
    }

    /// Reads into `scratch`: `Ok(None)` when the socket has nothing more for now,
    /// `Ok(Some(0))` at end of stream.
    pub fn read(&mut self, scratch: &mut [u8]) -> io::Result<Option<usize>> {
        loop {
            match self.stream.read(scratch) {
                Ok(n) => return Ok(Some(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> (Client, std::net::TcpStream) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        s.set_nonblocking(true).unwrap();
        (Client::new(mio::net::TcpStream::from_std(s), None, 1), peer)
    }

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut v = (body.len() as i32).to_be_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    fn frames(out: &[Input]) -> Vec<Vec<u8>> {
        out.iter()
            .filter_map(|i| match i {
                Input::Frame(b) => Some(b.to_vec()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn frames_split_anywhere_come_out_whole_and_in_order() {
        let mut wire = frame(b"hello");
        wire.extend(frame(b""));
        wire.extend(frame(&[7u8; 300]));
        for cut in 0..wire.len() {
            let (mut c, _peer) = client();
            let mut out = Vec::new();
            c.take_input(&wire[..cut], 1000, &mut out).unwrap();
            c.take_input(&wire[cut..], 1000, &mut out).unwrap();
            assert!(matches!(out[0], Input::Opened), "cut at {cut}");
            assert_eq!(
                frames(&out),
                vec![b"hello".to_vec(), vec![], vec![7u8; 300]],
                "cut at {cut}"
            );
            assert!(c.buffers.is_none(), "nothing kept after whole frames");
        }
    }

    #[test]
    fn a_four_letter_word_is_recognised_only_first() {
        let (mut c, _peer) = client();
        let mut out = Vec::new();
        c.take_input(b"ru", 1000, &mut out).unwrap();
        c.take_input(b"ok", 1000, &mut out).unwrap();
        assert!(matches!(out[..], [Input::FourLetter("ruok")]));
    }

    #[test]
    fn a_length_beyond_the_limit_is_an_error() {
        let (mut c, _peer) = client();
        let mut out = Vec::new();
        let err = c.take_input(&frame(&[0u8; 11]), 10, &mut out);
        assert!(err.is_err());
        let (mut c, _peer) = client();
        let err = c.take_input(&(-1i32).to_be_bytes(), 10, &mut out);
        assert!(err.is_err());
    }

    #[test]
    fn queued_replies_are_written_in_order() {
        let (mut c, mut peer) = client();
        c.queue(Bytes::from_static(b"abc"), 1);
        c.queue(Bytes::new(), 0);
        c.queue(Bytes::from_static(b"def"), 1);
        assert!(matches!(c.flush().unwrap(), Flushed::All));
        let mut got = [0u8; 6];
        peer.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"abcdef");
    }

    /// Every idle connection holds one of these.
    #[test]
    fn an_idle_client_stays_small() {
        let size = std::mem::size_of::<Client>();
        assert!(size <= 64, "the per-connection state grew to {size} bytes");
    }
}
