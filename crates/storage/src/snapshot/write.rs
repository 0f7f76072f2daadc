//! Writing snapshots in ZooKeeper's format (persistence spec §7.2, §7.4).
//!
//! Serialization is pure ([`serialize_snapshot`]: tree and sessions in, bytes out) so
//! the server decides where it runs and can measure the pause; [`write_snapshot`] then
//! makes the bytes durable under their final name atomically (temp file, fsync, rename,
//! fsync of the directory), so a crash never leaves a half snapshot under a real name.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use oxkeeper_core::tree::DataTree;
use oxkeeper_proto::Acl;

use crate::digest::{node_digest, TreeDigest, DIGEST_VERSION};
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
struct Out {
    buf: Vec<u8>,
    adler: adler2::Adler32,
    hashed: usize,
}

impl Out {
    fn i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    fn bytes(&mut self, b: Option<&[u8]>) {
        match b {
            None => self.i32(-1),
            Some(b) => {
                self.i32(b.len() as i32);
                self.buf.extend_from_slice(b);
            }
        }
    }
    fn string(&mut self, s: &str) {
        self.bytes(Some(s.as_bytes()));
    }
    fn acl(&mut self, a: &Acl) {
        self.i32(a.perms);
        self.string(&a.id.scheme);
        self.string(&a.id.id);
    }
    /// `SnapStream.sealStream`: the checksum of everything so far, then "/".
    fn seal(&mut self) {
        self.adler.write_slice(&self.buf[self.hashed..]);
        self.hashed = self.buf.len();
        let sum = i64::from(self.adler.checksum());
        self.i64(sum);
        self.string("/");
    }
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
pub fn serialize_snapshot(tree: &DataTree, sessions: &[(i64, i32)]) -> Vec<u8> {
    let open = Acl::open();
    let mut ids: HashMap<*const Acl, i64> = HashMap::new();
    let mut lists: Vec<(i64, Arc<[Acl]>)> = Vec::new();
    tree.visit_preorder(|_, node| {
        let acl = node.acl_arc();
        if **acl == *open {
            return;
        }
        let key = Arc::as_ptr(acl) as *const Acl;
        if let std::collections::hash_map::Entry::Vacant(v) = ids.entry(key) {
            let id = lists.len() as i64 + 1;
            v.insert(id);
            lists.push((id, Arc::clone(acl)));
        }
    });

    let mut out = Out {
        buf: Vec::with_capacity(64 * 1024),
        adler: adler2::Adler32::new(),
        hashed: 0,
    };
    out.i32(SNAP_MAGIC);
    out.i32(SNAP_VERSION);
    out.i64(SNAP_DBID);

    let mut sess = sessions.to_vec();
    sess.sort_unstable();
    out.i32(sess.len() as i32);
    for (id, timeout) in sess {
        out.i64(id);
        out.i32(timeout);
    }

    out.i32(lists.len() as i32);
    for (id, list) in &lists {
        out.i64(*id);
        out.i32(list.len() as i32);
        for a in list.iter() {
            out.acl(a);
        }
    }

    let mut digest = TreeDigest::default();
    tree.visit_preorder(|path, node| {
        let acl = node.acl_arc();
        let acl_id = if **acl == *open {
            OPEN_ACL_ID
        } else {
            ids.get(&(Arc::as_ptr(acl) as *const Acl))
                .copied()
                .unwrap_or(OPEN_ACL_ID)
        };
        let data = node.data().as_deref();
        let stat = node.persisted();
        digest.add(node_digest(path, data, stat));
        // The root is stored under the empty path.
        out.string(if path == "/" { "" } else { path });
        out.bytes(data);
        out.i64(acl_id);
        out.i64(stat.czxid);
        out.i64(stat.mzxid);
        out.i64(stat.ctime);
        out.i64(stat.mtime);
        out.i32(stat.version);
        out.i32(stat.cversion);
        out.i32(stat.aversion);
        out.i64(stat.ephemeral_owner);
        out.i64(stat.pzxid);
    });
    out.string("/");
    out.seal();

    let zxid = tree.last_processed_zxid();
    out.i64(zxid);
    out.i32(DIGEST_VERSION);
    out.i64(digest.0);
    out.seal();

    out.i64(zxid);
    out.seal();
    out.buf
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
