//! Length-prefixed framing and the four-letter words that may replace the first length.

use bytes::{Buf, Bytes, BytesMut};

/// Apache ZooKeeper's default `jute.maxbuffer`.
pub const DEFAULT_MAX_FRAME: usize = 0xFFFFF;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// ZooKeeper's "Len error": the connection is closed without a reply.
    #[error("frame length {len} outside 0..={max}")]
    BadLength { len: i64, max: usize },
}

/// Takes one complete frame's payload off the front of `buf`. `Ok(None)` means more bytes
/// are needed, which is the normal state between reads.
pub fn take_frame(buf: &mut BytesMut, max_len: usize) -> Result<Option<Bytes>, FrameError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if len < 0 || len as usize > max_len {
        return Err(FrameError::BadLength {
            len: len.into(),
            max: max_len,
        });
    }
    let len = len as usize;
    if buf.len() < 4 + len {
        buf.reserve(4 + len - buf.len());
        return Ok(None);
    }
    buf.advance(4);
    Ok(Some(buf.split_to(len).freeze()))
}

/// Every four-letter word Apache ZooKeeper recognises on a fresh connection, plus oxkeeper's
/// own `sess` (one line per session: timeout, last contact, expiry bucket, ephemerals).
pub const FOUR_LETTER_WORDS: &[&str] = &[
    "ruok", "isro", "gtmk", "stmk", "srvr", "stat", "cons", "crst", "srst", "conf", "envi", "dirs",
    "dump", "wchs", "wchc", "wchp", "mntr", "hash", "sess",
];

/// The four-letter word the first four bytes of a connection spell, if any. The telnet
/// close sequence is recognised too so that it is not taken for a bad length.
pub fn four_letter_word(first: [u8; 4]) -> Option<&'static str> {
    if first == [0xff, 0xf4, 0xff, 0xfd] {
        return Some("telnetclose");
    }
    FOUR_LETTER_WORDS
        .iter()
        .copied()
        .find(|w| w.as_bytes() == first)
}
