//! Apache ZooKeeper's client wire protocol, as data.
//!
//! Owns the jute encoding, every request/response/transaction record, opcodes, error codes
//! and frame splitting (including spotting a four-letter word where a length should be).
//! Must not do I/O, depend on an async runtime, or know about sessions or the tree: it turns
//! bytes into records and records into bytes, nothing more.

pub mod codes;
pub mod frame;
pub mod jute;
pub mod records;
pub mod request;
pub mod response;
pub mod txn;

pub use codes::{CreateMode, ErrorCode};
pub use jute::{DecodeError, Jute, Reader};
pub use records::*;
pub use request::{decode_request, MultiOp, ReadOp, Request, RequestError};
pub use response::{MultiResult, Response};
pub use txn::{Txn, TxnHeader};
