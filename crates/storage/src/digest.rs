//! ZooKeeper's tree digest (3.6+, `DigestCalculator` version 2; persistence spec §4.6).
//!
//! Owns the per-node CRC-32 and the tree sum. Snapshots carry the digest of the tree at
//! a zxid; computing it the same way lets ZooKeeper verify our snapshots when it loads
//! them, and lets us verify ZooKeeper's.

use oxkeeper_core::tree::{DataTree, StatPersisted};

/// The digest version we compute (ZooKeeper 3.6 to 3.10).
pub const DIGEST_VERSION: i32 = 2;

/// The digest of one node, 0 for the nodes under `/zookeeper/` (ZooKeeper leaves its
/// own subtree out, `/zookeeper` itself excepted). The root is hashed as "", under
/// whichever name it is stored.
pub fn node_digest(path: &str, data: Option<&[u8]>, stat: &StatPersisted) -> u32 {
    if path.starts_with("/zookeeper/") {
        return 0;
    }
    let path = if path == "/" { "" } else { path };
    let mut b = [0u8; 60];
    b[0..8].copy_from_slice(&stat.czxid.to_be_bytes());
    b[8..16].copy_from_slice(&stat.mzxid.to_be_bytes());
    b[16..24].copy_from_slice(&stat.pzxid.to_be_bytes());
    b[24..32].copy_from_slice(&stat.ctime.to_be_bytes());
    b[32..40].copy_from_slice(&stat.mtime.to_be_bytes());
    b[40..44].copy_from_slice(&stat.version.to_be_bytes());
    b[44..48].copy_from_slice(&stat.cversion.to_be_bytes());
    b[48..52].copy_from_slice(&stat.aversion.to_be_bytes());
    b[52..60].copy_from_slice(&stat.ephemeral_owner.to_be_bytes());
    let mut h = crc32fast::Hasher::new();
    h.update(path.as_bytes());
    if let Some(d) = data {
        h.update(d);
    }
    h.update(&b);
    h.finalize()
}

/// Running sum of node digests (`AdHash`): wrapping 64-bit addition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TreeDigest(pub i64);

impl TreeDigest {
    pub fn add(&mut self, node: u32) {
        self.0 = self.0.wrapping_add(i64::from(node));
    }
}

/// The digest of a whole tree.
pub fn tree_digest(tree: &DataTree) -> i64 {
    let mut sum = TreeDigest::default();
    tree.visit_preorder(|path, node| {
        sum.add(node_digest(path, node.data().as_deref(), node.persisted()))
    });
    sum.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Persistence spec §4.6 test vectors (computed with the JDK's CRC32).
    #[test]
    fn spec_vectors() {
        let z = 0x1_0000_0002;
        let t = 1_700_000_000_000;
        let stat = StatPersisted {
            czxid: z,
            mzxid: z,
            pzxid: z,
            ctime: t,
            mtime: t,
            ..Default::default()
        };
        assert_eq!(node_digest("/a", Some(b"hello"), &stat), 0xdaf4_f09d);
        let zero = StatPersisted::default();
        assert_eq!(node_digest("/", Some(b""), &zero), 0x0412_8908);
        assert_eq!(node_digest("/zookeeper", None, &zero), 0x4db4_4d58);
        assert_eq!(node_digest("/zookeeper/quota", None, &zero), 0);
    }
}
