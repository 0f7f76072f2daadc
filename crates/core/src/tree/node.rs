//! One znode: its data, interned ACL, persisted stat and child names, plus the
//! `ephemeralOwner` encodings (session, container marker, TTL).
//!
//! The stat kept here is ZooKeeper's `StatPersisted`: `cversion` is the internal
//! child-create counter and `ephemeral_owner` is raw. Only [`Node::stat`] translates to
//! what clients see.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use oxkeeper_proto::{Acl, Stat};

/// `ephemeralOwner` marking a container node (`EphemeralType.CONTAINER_EPHEMERAL_OWNER`).
pub const CONTAINER_EPHEMERAL_OWNER: i64 = i64::MIN;

/// Largest TTL (ms) the 40-bit field can hold.
pub const MAX_TTL_MS: i64 = 0xFF_FFFF_FFFF;

/// Top byte 0xFF marks an "extended" owner; the next 16 bits name the extended type.
const EXTENDED_MASK: u64 = 0xFF00_0000_0000_0000;
const EXTENDED_TYPE_MASK: u64 = 0x00FF_FF00_0000_0000;
/// Extended type 0x0000 is TTL.
const EXTENDED_TYPE_TTL: u64 = 0;

/// What a raw `ephemeralOwner` stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerKind {
    /// 0: a plain persistent node.
    Persistent,
    /// A session id: the node dies with that session.
    Ephemeral(i64),
    Container,
    /// A TTL node, with its ttl in ms.
    Ttl(i64),
}

impl OwnerKind {
    /// Decodes a raw owner. TTL encodings are always recognised (ZooKeeper only does so
    /// when extended types are enabled): a server that never enables them never writes
    /// them, and session ids cannot start with 0xFF once server ids are ≤ 254.
    /// An extended owner of an unknown type is treated as a session, like a
    /// ZooKeeper with extended types disabled would.
    pub fn of(owner: i64) -> OwnerKind {
        let raw = owner as u64;
        if owner == 0 {
            OwnerKind::Persistent
        } else if owner == CONTAINER_EPHEMERAL_OWNER {
            OwnerKind::Container
        } else if raw & EXTENDED_MASK == EXTENDED_MASK
            && (raw & EXTENDED_TYPE_MASK) >> 40 == EXTENDED_TYPE_TTL
        {
            OwnerKind::Ttl((raw & !(EXTENDED_MASK | EXTENDED_TYPE_MASK)) as i64)
        } else {
            OwnerKind::Ephemeral(owner)
        }
    }
}

/// The raw owner of a TTL node, or `None` when `ttl_ms` is outside `1..=MAX_TTL_MS`.
pub fn ttl_owner(ttl_ms: i64) -> Option<i64> {
    if ttl_ms <= 0 || ttl_ms > MAX_TTL_MS {
        return None;
    }
    Some((EXTENDED_MASK | ((EXTENDED_TYPE_TTL << 40) & EXTENDED_TYPE_MASK) | ttl_ms as u64) as i64)
}

/// ZooKeeper's `StatPersisted`, field for field as snapshots store it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatPersisted {
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    /// Internal child-create counter, never lowered by deletes.
    pub cversion: i32,
    pub aversion: i32,
    /// Raw, including the container marker and TTL encoding.
    pub ephemeral_owner: i64,
    pub pzxid: i64,
}

impl StatPersisted {
    /// The stat of a node created by transaction `zxid` at `time`.
    pub fn created(zxid: i64, time: i64, ephemeral_owner: i64) -> Self {
        StatPersisted {
            czxid: zxid,
            mzxid: zxid,
            ctime: time,
            mtime: time,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner,
            pzxid: zxid,
        }
    }
}

/// A znode. Child names are kept sorted, which makes `getChildren` and snapshot walks
/// deterministic (ZooKeeper's order is hash order, i.e. unspecified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub(crate) data: Option<Bytes>,
    pub(crate) acl: Arc<[Acl]>,
    pub(crate) stat: StatPersisted,
    pub(crate) children: BTreeSet<Box<str>>,
}

impl Node {
    pub(crate) fn new(data: Option<Bytes>, acl: Arc<[Acl]>, stat: StatPersisted) -> Self {
        Node {
            data,
            acl,
            stat,
            children: BTreeSet::new(),
        }
    }

    /// `None` for data stored as null (a -1 buffer), which must be returned as null.
    pub fn data(&self) -> &Option<Bytes> {
        &self.data
    }

    pub fn data_len(&self) -> usize {
        self.data.as_ref().map_or(0, Bytes::len)
    }

    pub fn acl(&self) -> &[Acl] {
        &self.acl
    }

    /// The interned ACL, for callers that must keep it past the node's lifetime
    /// (e.g. to ACL-filter a NodeDeleted event).
    pub fn acl_arc(&self) -> &Arc<[Acl]> {
        &self.acl
    }

    pub fn persisted(&self) -> &StatPersisted {
        &self.stat
    }

    pub fn czxid(&self) -> i64 {
        self.stat.czxid
    }

    pub fn mzxid(&self) -> i64 {
        self.stat.mzxid
    }

    pub fn pzxid(&self) -> i64 {
        self.stat.pzxid
    }

    pub fn ctime(&self) -> i64 {
        self.stat.ctime
    }

    pub fn mtime(&self) -> i64 {
        self.stat.mtime
    }

    pub fn version(&self) -> i32 {
        self.stat.version
    }

    /// The internal child-create counter: the next sequential suffix, not the
    /// client-visible cversion.
    pub fn cversion(&self) -> i32 {
        self.stat.cversion
    }

    pub fn aversion(&self) -> i32 {
        self.stat.aversion
    }

    /// The raw owner, container marker and TTL encoding included.
    pub fn ephemeral_owner(&self) -> i64 {
        self.stat.ephemeral_owner
    }

    pub fn owner_kind(&self) -> OwnerKind {
        OwnerKind::of(self.stat.ephemeral_owner)
    }

    /// True only for session-owned nodes (not containers or TTL nodes).
    pub fn is_ephemeral(&self) -> bool {
        matches!(self.owner_kind(), OwnerKind::Ephemeral(_))
    }

    /// The owning session of an ephemeral node.
    pub fn ephemeral_session(&self) -> Option<i64> {
        match self.owner_kind() {
            OwnerKind::Ephemeral(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_container(&self) -> bool {
        self.owner_kind() == OwnerKind::Container
    }

    pub fn is_ttl(&self) -> bool {
        matches!(self.owner_kind(), OwnerKind::Ttl(_))
    }

    /// The TTL in ms of a TTL node.
    pub fn ttl(&self) -> Option<i64> {
        match self.owner_kind() {
            OwnerKind::Ttl(t) => Some(t),
            _ => None,
        }
    }

    pub fn child_count(&self) -> usize {
        self.children.len()
    }

    /// Child names (last path components), sorted.
    pub fn children(&self) -> impl Iterator<Item = &str> + '_ {
        self.children.iter().map(|c| &**c)
    }

    pub fn has_child(&self, name: &str) -> bool {
        self.children.contains(name)
    }

    /// Child names sorting after `name` (which need not be a child), sorted, for walks
    /// that resume by name after the tree changed. `""` gives them all.
    pub fn children_after(&self, name: &str) -> impl Iterator<Item = &str> + '_ {
        use std::ops::Bound::{Excluded, Unbounded};
        self.children
            .range::<str, _>((Excluded(name), Unbounded))
            .map(|c| &**c)
    }

    /// The client view (`DataNode.copyStat`): cversion becomes
    /// `2 × creates − numChildren` and owner markers are hidden.
    pub fn stat(&self) -> Stat {
        let num_children = self.children.len() as i32;
        let s = &self.stat;
        Stat {
            czxid: s.czxid,
            mzxid: s.mzxid,
            ctime: s.ctime,
            mtime: s.mtime,
            version: s.version,
            // Java int arithmetic: wraps rather than panics.
            cversion: s.cversion.wrapping_mul(2).wrapping_sub(num_children),
            aversion: s.aversion,
            ephemeral_owner: self.ephemeral_session().unwrap_or(0),
            data_length: self.data_len() as i32,
            num_children,
            pzxid: s.pzxid,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn owner_encodings() {
        assert_eq!(OwnerKind::of(0), OwnerKind::Persistent);
        assert_eq!(OwnerKind::of(0x1234), OwnerKind::Ephemeral(0x1234));
        assert_eq!(
            OwnerKind::of(CONTAINER_EPHEMERAL_OWNER),
            OwnerKind::Container
        );
        assert_eq!(ttl_owner(1), Some(0xFF00_0000_0000_0001_u64 as i64));
        assert_eq!(
            OwnerKind::of(0xFF00_0000_0000_0001_u64 as i64),
            OwnerKind::Ttl(1)
        );
        assert_eq!(
            ttl_owner(MAX_TTL_MS).map(OwnerKind::of),
            Some(OwnerKind::Ttl(MAX_TTL_MS))
        );
        assert_eq!(ttl_owner(0), None);
        assert_eq!(ttl_owner(-5), None);
        assert_eq!(ttl_owner(MAX_TTL_MS + 1), None);
        // An extended owner of an unknown type is not a TTL node.
        let odd = 0xFF01_0000_0000_0001_u64 as i64;
        assert_eq!(OwnerKind::of(odd), OwnerKind::Ephemeral(odd));
    }

    #[test]
    fn client_stat_hides_markers_and_translates_cversion() {
        let acl: Arc<[Acl]> = Acl::open().into();
        let mut n = Node::new(
            None,
            acl,
            StatPersisted::created(5, 7, CONTAINER_EPHEMERAL_OWNER),
        );
        n.stat.cversion = 2;
        n.children.insert("x".into());
        let s = n.stat();
        assert_eq!(s.ephemeral_owner, 0);
        assert_eq!(s.cversion, 3);
        assert_eq!(s.num_children, 1);
        assert_eq!(s.data_length, 0);
        assert_eq!(
            (s.czxid, s.mzxid, s.pzxid, s.ctime, s.mtime),
            (5, 5, 5, 7, 7)
        );
        n.stat.ephemeral_owner = ttl_owner(10).unwrap();
        assert_eq!(n.stat().ephemeral_owner, 0);
        n.stat.ephemeral_owner = 99;
        assert_eq!(n.stat().ephemeral_owner, 99);
    }
}
