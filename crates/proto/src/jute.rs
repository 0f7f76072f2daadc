//! Jute's "binary archive": the primitive encodings every ZooKeeper record is built from.
//!
//! Decoding works on a `Bytes` so that data buffers are zero-copy slices of the frame.
//! A decoder never allocates more than the input it was given could justify: every length
//! is checked against the bytes that remain before anything is reserved.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("record truncated: needed {needed} more bytes, {remaining} left")]
    Truncated { needed: usize, remaining: usize },
    #[error("negative length {0}")]
    NegativeLength(i32),
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    #[error("invalid value {value} for {field}")]
    InvalidValue { field: &'static str, value: i64 },
}

/// A cursor over one frame's payload.
pub struct Reader {
    buf: Bytes,
}

impl Reader {
    pub fn new(buf: Bytes) -> Self {
        Reader { buf }
    }

    pub fn remaining(&self) -> usize {
        self.buf.remaining()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn need(&self, n: usize) -> Result<(), DecodeError> {
        if self.buf.remaining() < n {
            return Err(DecodeError::Truncated {
                needed: n,
                remaining: self.buf.remaining(),
            });
        }
        Ok(())
    }

    pub fn read_i32(&mut self) -> Result<i32, DecodeError> {
        self.need(4)?;
        Ok(self.buf.get_i32())
    }

    pub fn read_i64(&mut self) -> Result<i64, DecodeError> {
        self.need(8)?;
        Ok(self.buf.get_i64())
    }

    pub fn read_u8(&mut self) -> Result<u8, DecodeError> {
        self.need(1)?;
        Ok(self.buf.get_u8())
    }

    /// Java reads any non-zero byte as true; so do we.
    pub fn read_bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.read_u8()? != 0)
    }

    /// A length-prefixed byte buffer; `None` is jute's null (length -1).
    pub fn read_buffer(&mut self) -> Result<Option<Bytes>, DecodeError> {
        let len = self.read_i32()?;
        if len == -1 {
            return Ok(None);
        }
        if len < 0 {
            return Err(DecodeError::NegativeLength(len));
        }
        let len = len as usize;
        self.need(len)?;
        Ok(Some(self.buf.split_to(len)))
    }

    /// A ustring; null (which kazoo sends for empty strings) reads as "".
    pub fn read_string(&mut self) -> Result<String, DecodeError> {
        match self.read_buffer()? {
            None => Ok(String::new()),
            Some(b) => String::from_utf8(b.to_vec()).map_err(|_| DecodeError::InvalidUtf8),
        }
    }

    /// A vector's element count; null (-1) reads as empty.
    pub fn read_count(&mut self) -> Result<usize, DecodeError> {
        let n = self.read_i32()?;
        if n == -1 {
            return Ok(0);
        }
        if n < 0 {
            return Err(DecodeError::NegativeLength(n));
        }
        Ok(n as usize)
    }

    /// What is left of the frame, consumed.
    pub fn take_rest(&mut self) -> Bytes {
        let n = self.buf.remaining();
        self.buf.split_to(n)
    }
}

/// A value with a jute encoding.
pub trait Jute: Sized {
    fn write(&self, w: &mut BytesMut);
    fn read(r: &mut Reader) -> Result<Self, DecodeError>;

    /// Decodes a whole payload, ignoring trailing bytes as the Java server does.
    fn decode(buf: Bytes) -> Result<Self, DecodeError> {
        Self::read(&mut Reader::new(buf))
    }

    fn to_bytes(&self) -> Bytes {
        let mut w = BytesMut::new();
        self.write(&mut w);
        w.freeze()
    }
}

impl Jute for i32 {
    fn write(&self, w: &mut BytesMut) {
        w.put_i32(*self);
    }
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        r.read_i32()
    }
}

impl Jute for i64 {
    fn write(&self, w: &mut BytesMut) {
        w.put_i64(*self);
    }
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        r.read_i64()
    }
}

impl Jute for bool {
    fn write(&self, w: &mut BytesMut) {
        // Some clients compare with 1, so true is exactly 1.
        w.put_u8(u8::from(*self));
    }
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        r.read_bool()
    }
}

/// A trailing boolean that old peers omit (the handshake's `readOnly`): `None` when the
/// record ends before it, and then nothing is written back either.
impl Jute for Option<bool> {
    fn write(&self, w: &mut BytesMut) {
        if let Some(b) = self {
            b.write(w);
        }
    }
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        if r.is_empty() {
            Ok(None)
        } else {
            r.read_bool().map(Some)
        }
    }
}

impl Jute for String {
    fn write(&self, w: &mut BytesMut) {
        write_buffer(w, self.as_bytes());
    }
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        r.read_string()
    }
}

/// A buffer whose null-ness matters (znode data: null and empty are reported differently).
impl Jute for Option<Bytes> {
    fn write(&self, w: &mut BytesMut) {
        match self {
            None => w.put_i32(-1),
            Some(b) => write_buffer(w, b),
        }
    }
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        r.read_buffer()
    }
}

/// A buffer where null and empty mean the same.
impl Jute for Bytes {
    fn write(&self, w: &mut BytesMut) {
        write_buffer(w, self);
    }
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(r.read_buffer()?.unwrap_or_default())
    }
}

impl<T: Jute> Jute for Vec<T> {
    fn write(&self, w: &mut BytesMut) {
        w.put_i32(self.len() as i32);
        for item in self {
            item.write(w);
        }
    }
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let n = r.read_count()?;
        // Every element takes at least one byte, so the input bounds the allocation.
        let mut v = Vec::with_capacity(n.min(r.remaining()));
        for _ in 0..n {
            v.push(T::read(r)?);
        }
        Ok(v)
    }
}

pub fn write_buffer(w: &mut BytesMut, b: &[u8]) {
    w.put_i32(b.len() as i32);
    w.put_slice(b);
}

/// Declares a jute record: a struct whose fields are encoded in declaration order.
#[macro_export]
macro_rules! jute_record {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name { $($(#[$fm])* pub $field: $ty),* }
        impl $crate::jute::Jute for $name {
            fn write(&self, _w: &mut ::bytes::BytesMut) {
                $( $crate::jute::Jute::write(&self.$field, _w); )*
            }
            fn read(_r: &mut $crate::jute::Reader) -> Result<Self, $crate::jute::DecodeError> {
                Ok(Self { $($field: <$ty as $crate::jute::Jute>::read(_r)?),* })
            }
        }
    };
}
