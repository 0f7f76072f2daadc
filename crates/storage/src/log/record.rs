//! One txn log record, byte for byte (persistence spec §4.2–4.6).
//!
//! Owns the file header, the record framing (Adler-32 of the payload, length, payload,
//! `0x42`) and the payload itself: TxnHeader, the body by type, and the optional
//! TxnDigest that 3.6+ servers append. Decoding follows `SerializeUtils.deserializeTxn`,
//! including the two historical body shapes (CreateTxnV0, body-less closeSession).

use bytes::{BufMut, Bytes, BytesMut};
use oxkeeper_proto::codes::op;
use oxkeeper_proto::txn::CloseSessionTxn;
use oxkeeper_proto::{Jute, Reader, Txn, TxnHeader};

/// `ZKLG`.
pub const TXNLOG_MAGIC: i32 = 0x5A4B_4C47;
pub const TXNLOG_VERSION: i32 = 2;
/// magic, version, dbid.
pub const FILE_HEADER_LEN: u64 = 16;
/// The end-of-record marker (`'B'`), outside the checksum.
pub const RECORD_END: u8 = 0x42;
/// checksum (8) + length (4) before the payload.
pub const FRAME_PREFIX_LEN: usize = 12;
/// clientId, cxid, zxid, time, type.
pub const TXN_HEADER_LEN: usize = 32;
/// Largest payload a reader accepts: `jute.maxbuffer` plus the default extra size
/// (both 0xFFFFF), as `BinaryInputArchive.checkLength` allows.
pub const MAX_PAYLOAD: usize = 0xFFFFF + 0xFFFFF;

/// ZooKeeper's `TxnDigest`: the tree digest after this transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnDigest {
    pub version: i32,
    pub tree_digest: i64,
}

/// The 16 bytes every log file starts with. dbid is always 0.
pub fn file_header() -> [u8; 16] {
    let mut h = [0u8; 16];
    h[0..4].copy_from_slice(&TXNLOG_MAGIC.to_be_bytes());
    h[4..8].copy_from_slice(&TXNLOG_VERSION.to_be_bytes());
    h
}

/// Adler-32 of the payload, as the 8-byte value ZooKeeper stores.
pub fn checksum(payload: &[u8]) -> i64 {
    i64::from(adler2::adler32_slice(payload))
}

/// Whether a header's type may carry this body: they must agree, except that reconfig
/// logs a SetDataTxn under its own type.
pub fn type_matches(header: &TxnHeader, txn: &Txn) -> bool {
    header.txn_type == txn.txn_type()
        || (header.txn_type == op::RECONFIG && matches!(txn, Txn::SetData(_)))
}

/// TxnHeader ++ body ++ optional digest.
///
/// Inside a multi, a create2 sub-op is logged as create (same CreateTxn body): ZooKeeper
/// turns create2 ops of a multi into creates before logging, and its replay aborts a
/// multi at a sub-txn of type create2 ("Invalid type of op"), so that is the only form
/// it can read. Applying either form changes the tree identically.
pub fn encode_payload(header: &TxnHeader, txn: &Txn, digest: Option<TxnDigest>) -> BytesMut {
    let mut w = BytesMut::with_capacity(64);
    header.write(&mut w);
    match txn {
        Txn::Multi(ops) => {
            w.put_i32(ops.len() as i32);
            for t in ops {
                let sub_type = match t {
                    Txn::Create2(_) => op::CREATE,
                    other => other.txn_type(),
                };
                w.put_i32(sub_type);
                let mut inner = BytesMut::new();
                t.write_body(&mut inner);
                w.put_i32(inner.len() as i32);
                w.put_slice(&inner);
            }
        }
        other => other.write_body(&mut w),
    }
    if let Some(d) = digest {
        w.put_i32(d.version);
        w.put_i64(d.tree_digest);
    }
    w
}

/// Appends the framed record (checksum, length, payload, marker) to `out`.
pub fn frame(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(&checksum(payload).to_be_bytes());
    out.extend_from_slice(&(payload.len() as i32).to_be_bytes());
    out.extend_from_slice(payload);
    out.push(RECORD_END);
}

/// A decoded payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub header: TxnHeader,
    pub txn: Txn,
    pub digest: Option<TxnDigest>,
}

/// Decodes a payload whose checksum was verified. Bytes after the digest are ignored,
/// as ZooKeeper ignores them.
pub fn decode_payload(payload: Bytes) -> Result<Decoded, String> {
    if payload.len() < TXN_HEADER_LEN {
        return Err(format!(
            "payload of {} bytes is shorter than a TxnHeader",
            payload.len()
        ));
    }
    let mut r = Reader::new(payload);
    let header = TxnHeader::read(&mut r).map_err(|e| format!("TxnHeader: {e}"))?;
    let txn = if header.txn_type == op::CLOSE_SESSION {
        read_close_session(&mut r)
    } else if is_known_type(header.txn_type) {
        Txn::read_body(header.txn_type, &mut r)
            .map_err(|e| format!("body of txn type {}: {e}", header.txn_type))?
    } else {
        return Err(format!("unsupported txn type {}", header.txn_type));
    };
    let digest = if r.remaining() >= 12 {
        let version = r.read_i32().map_err(|e| e.to_string())?;
        let tree_digest = r.read_i64().map_err(|e| e.to_string())?;
        Some(TxnDigest {
            version,
            tree_digest,
        })
    } else {
        None
    };
    Ok(Decoded {
        header,
        txn,
        digest,
    })
}

/// The top-level types `SerializeUtils.deserializeTxn` accepts (check only appears
/// inside a multi; we accept it alone too, harmlessly).
fn is_known_type(t: i32) -> bool {
    matches!(
        t,
        op::CREATE_SESSION
            | op::CLOSE_SESSION
            | op::CREATE
            | op::CREATE2
            | op::CREATE_TTL
            | op::CREATE_CONTAINER
            | op::DELETE
            | op::DELETE_CONTAINER
            | op::RECONFIG
            | op::SET_DATA
            | op::SET_ACL
            | op::ERROR
            | op::MULTI
            | op::CHECK
    )
}

/// closeSession has two shapes: a CloseSessionTxn (3.6+) or no body at all, and either
/// may be followed by a 12-byte digest. ZooKeeper decides by its own configuration; we
/// decide by the bytes: the list must parse and name only absolute paths, otherwise the
/// body is absent and whatever follows the header is the digest.
fn read_close_session(r: &mut Reader) -> Txn {
    if r.is_empty() {
        return Txn::CloseSession(CloseSessionTxn::default());
    }
    let rest = r.take_rest();
    let mut probe = Reader::new(rest.clone());
    match CloseSessionTxn::read(&mut probe) {
        Ok(t) if t.paths_to_delete.iter().all(|p| p.starts_with('/')) => {
            *r = probe;
            Txn::CloseSession(t)
        }
        _ => {
            *r = Reader::new(rest);
            Txn::CloseSession(CloseSessionTxn::default())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxkeeper_proto::txn::CreateSessionTxn;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or_else(|e| panic!("{e}")))
            .collect()
    }

    /// Persistence spec §4.8, the createSession record with and without digest.
    #[test]
    fn worked_example_bytes() {
        assert_eq!(
            file_header().to_vec(),
            hex("5a4b4c47 00000002 0000000000000000")
        );
        let header = TxnHeader {
            client_id: 0x0100_0a3b_2c4d_0000,
            cxid: 0,
            zxid: 0x1_0000_0001,
            time: 1_700_000_000_000,
            txn_type: op::CREATE_SESSION,
        };
        let txn = Txn::CreateSession(CreateSessionTxn { timeout_ms: 30_000 });
        let digest = TxnDigest {
            version: 2,
            tree_digest: 0,
        };
        let mut rec = Vec::new();
        frame(&mut rec, &encode_payload(&header, &txn, Some(digest)));
        let want = hex(
            "00000000b1e50804 00000030 01000a3b2c4d0000 00000000 0000000100000001
             0000018bcfe56800 fffffff6 00007530 00000002 0000000000000000 42",
        );
        assert_eq!(rec, want);
        assert_eq!(rec.len(), 61);

        let mut rec = Vec::new();
        frame(&mut rec, &encode_payload(&header, &txn, None));
        assert_eq!(&rec[..12], &hex("0000000051bb0802 00000024")[..]);

        let d =
            decode_payload(Bytes::copy_from_slice(&want[12..60])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.header, header);
        assert_eq!(d.txn, txn);
        assert_eq!(d.digest, Some(digest));
    }

    #[test]
    fn close_session_shapes() {
        let header = TxnHeader {
            client_id: 7,
            cxid: 0,
            zxid: 9,
            time: 1,
            txn_type: op::CLOSE_SESSION,
        };
        let mut p = BytesMut::new();
        header.write(&mut p);
        let bare = p.clone().freeze();
        let d = decode_payload(bare).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.txn, Txn::CloseSession(CloseSessionTxn::default()));
        assert_eq!(d.digest, None);
        // Body-less with a digest (closeSessionTxn disabled, digest enabled).
        p.put_i32(2);
        p.put_i64(0x0000_0003_1234_5678);
        let d = decode_payload(p.freeze()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.txn, Txn::CloseSession(CloseSessionTxn::default()));
        assert_eq!(
            d.digest,
            Some(TxnDigest {
                version: 2,
                tree_digest: 0x0000_0003_1234_5678
            })
        );
        // With a path list and a digest.
        let txn = Txn::CloseSession(CloseSessionTxn {
            paths_to_delete: vec!["/e1".into(), "/a/e2".into()],
        });
        let dg = Some(TxnDigest {
            version: 2,
            tree_digest: -5,
        });
        let d = decode_payload(encode_payload(&header, &txn, dg).freeze())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((d.txn, d.digest), (txn, dg));
    }

    #[test]
    fn unknown_type_is_an_error() {
        let header = TxnHeader {
            txn_type: 99,
            ..Default::default()
        };
        let mut p = BytesMut::new();
        header.write(&mut p);
        assert!(decode_payload(p.freeze()).is_err());
        assert!(decode_payload(Bytes::from_static(&[0; 10])).is_err());
    }
}
