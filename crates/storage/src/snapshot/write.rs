//! Writing snapshots in ZooKeeper's format (persistence spec §7.2, §7.4).
//!
//! Serialization is pure ([`serialize_snapshot`]: tree and sessions in, bytes out, or
//! [`SnapshotBuilder`] for the same walk in slices) so the server decides where it runs
//! and can measure the pause; [`write_snapshot`] then
//! makes the bytes durable under their final name atomically (temp file, fsync, rename,
//! fsync of the directory), so a crash never leaves a half snapshot under a real name.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use oxkeeper_core::tree::DataTree;
use oxkeeper_proto::Acl;

use super::incremental::SnapshotBuilder;
use crate::error::{Error, Result};
use crate::layout;

/// `ZKSN`.
pub const SNAP_MAGIC: i32 = 0x5A4B_534E;
pub const SNAP_VERSION: i32 = 2;
/// The dbid ZooKeeper writes in snapshots.
pub const SNAP_DBID: i64 = -1;
/// `ReferenceCountedACLCache.OPEN_UNSAFE_ACL_ID`: world:anyone with all permissions,
/// never stored in the ACL map.
pub const OPEN_ACL_ID: i64 = -1;

/// Bytes plus the running Adler-32 the seals need.
pub(super) struct Out {
    buf: Vec<u8>,
    adler: adler2::Adler32,
    /// How much of `buf` the checksum covers.
    hashed: usize,
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Out").field("len", &self.buf.len()).finish()
    }
}

impl Out {
    pub(super) fn with_capacity(n: usize) -> Self {
        Out {
            buf: Vec::with_capacity(n),
            adler: adler2::Adler32::new(),
            hashed: 0,
        }
    }
    pub(super) fn i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub(super) fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub(super) fn bytes(&mut self, b: Option<&[u8]>) {
        match b {
            None => self.i32(-1),
            Some(b) => {
                self.i32(b.len() as i32);
                self.buf.extend_from_slice(b);
            }
        }
    }
    pub(super) fn string(&mut self, s: &str) {
        self.bytes(Some(s.as_bytes()));
    }
    pub(super) fn acl(&mut self, a: &Acl) {
        self.i32(a.perms);
        self.string(&a.id.scheme);
        self.string(&a.id.id);
    }
    /// The Adler-32 of everything written so far.
    pub(super) fn checksum(&mut self) -> u32 {
        self.adler.write_slice(&self.buf[self.hashed..]);
        self.hashed = self.buf.len();
        self.adler.checksum()
    }
    /// Bytes written but not yet covered by the checksum.
    pub(super) fn unhashed(&self) -> usize {
        self.buf.len() - self.hashed
    }
    /// `self` followed by `tail`, whose own Adler-32 is `tail_sum`, built in `tail`'s
    /// buffer (one move of its bytes, no second copy) without hashing `tail` again.
    pub(super) fn prepend_to(mut self, mut tail: Vec<u8>, tail_sum: u32) -> Out {
        let head_sum = self.checksum();
        let (h, n) = (self.buf.len(), tail.len());
        // Also room for the seals and trailers that follow.
        tail.reserve(h + 128);
        tail.resize(n + h, 0);
        tail.copy_within(0..n, h);
        tail[..h].copy_from_slice(&self.buf);
        Out {
            hashed: tail.len(),
            adler: adler2::Adler32::from_checksum(adler32_combine(head_sum, tail_sum, n)),
            buf: tail,
        }
    }
    pub(super) fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
    /// `SnapStream.sealStream`: the checksum of everything so far, then "/".
    pub(super) fn seal(&mut self) {
        let sum = i64::from(self.checksum());
        self.i64(sum);
        self.string("/");
    }
}

/// The Adler-32 of `a ++ b` from those of `a` and `b` and the length of `b` (zlib's
/// `adler32_combine`): each byte of `b` adds `a`'s running sum once more to the second
/// half.
pub(super) fn adler32_combine(a: u32, b: u32, b_len: usize) -> u32 {
    const BASE: u64 = 65_521;
    let n = (b_len as u64) % BASE;
    let (a1, b1) = (u64::from(a & 0xffff), u64::from(a >> 16));
    let (a2, b2) = (u64::from(b & 0xffff), u64::from(b >> 16));
    // b's sums started from (1, 0) instead of (a1, b1).
    let lo = (a1 + a2 + BASE - 1) % BASE;
    let hi = (b1 + b2 + n * a1 + BASE * BASE - n) % BASE;
    (lo as u32) | ((hi as u32) << 16)
}

/// The snapshot of `tree` with the session table `sessions` (id, timeout ms), as
/// ZooKeeper 3.9 writes it: header, sessions, ACL map, nodes in pre-order ending with
/// "/", seal, digest of the tree at its last processed zxid, seal, that zxid, seal.
/// (ZooKeeper 3.6–3.8 stop reading after the second seal and ignore the rest.)
///
/// ACL lists are numbered from 1 in order of first use in the walk; OPEN_ACL_UNSAFE is
/// written as -1 and kept out of the map, like the nodes ZooKeeper creates itself.
/// The snapshot is named by the caller (`write_snapshot`), normally with
/// `tree.last_processed_zxid()`; a tree that has moved past the name gives a fuzzy
/// snapshot, which replay repairs as in ZooKeeper.
///
/// This is [`SnapshotBuilder`] run in one step; the server uses the builder to spread
/// the walk over many short slices.
pub fn serialize_snapshot(tree: &DataTree, sessions: &[(i64, i32)]) -> Vec<u8> {
    let mut b = SnapshotBuilder::start(tree, sessions);
    let done = b.step(tree, usize::MAX);
    debug_assert!(done);
    b.finish()
}

/// Writes `bytes` as `<data_dir>/version-2/snapshot.<hex zxid>`: to a temporary name
/// ZooKeeper does not take for a snapshot, fsynced, renamed over the final name, and the
/// directory fsynced. Returns the final path.
pub fn write_snapshot(data_dir: &Path, zxid: i64, bytes: &[u8]) -> Result<PathBuf> {
    let vdir = layout::version_dir(data_dir);
    fs::create_dir_all(&vdir).map_err(|e| Error::io("create directory", &vdir, e))?;
    let name = layout::snapshot_name(zxid);
    let target = vdir.join(&name);
    let tmp = vdir.join(format!(".{name}.tmp"));
    let written = (|| -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io("write snapshot", &tmp, e));
    }
    if let Err(e) = fs::rename(&tmp, &target) {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io("rename snapshot", &target, e));
    }
    crate::disk::sync_dir(&vdir).map_err(|e| Error::io("fsync", &vdir, e))?;
    tracing::info!(file = %target.display(), bytes = bytes.len(), "snapshot written");
    Ok(target)
}
