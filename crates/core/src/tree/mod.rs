//! The data tree: every znode, ZooKeeper's `DataTree`.
//!
//! Owns the nodes, the interned ACLs, the indexes derived from owners (ephemerals by
//! session, containers, TTL nodes), `lastProcessedZxid` and the approximate data size.
//! Changes arrive only as transactions ([`DataTree::apply`], with ZooKeeper's tolerant
//! replay rules) or, when loading a snapshot, as whole nodes ([`DataTree::load_node`]).
//!
//! Must not touch watches, sessions, clocks or I/O: `apply` reports which watch events a
//! change fires and the caller delivers them. Validation and ACL checks belong to the
//! request preprocessor; the tree applies what the log says.
//!
//! Determinism: node lookup uses a `HashMap`, but nothing iterates it where order could
//! be observed (children and indexes are ordered sets), so its random seed never shows.

mod acl;
mod apply;
mod node;
mod path;
mod quota;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod replay_tests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use oxkeeper_proto::codes::event_type;
use oxkeeper_proto::{Acl, ErrorCode, Stat};

pub use apply::{ApplyResult, OpResult, WatchTrigger};
pub use node::{ttl_owner, Node, OwnerKind, StatPersisted, CONTAINER_EPHEMERAL_OWNER, MAX_TTL_MS};
pub use path::{last_component, parent_of, validate_path};
pub use quota::{limit_path, stat_path, MalformedStats, StatsTrack, LIMIT_NODE, STAT_NODE};

use acl::AclCache;
use path::{java_len, join};

/// The reserved nodes of a fresh server (protocol spec section 12).
pub const ROOT: &str = "/";
pub const ZOOKEEPER: &str = "/zookeeper";
pub const QUOTA: &str = "/zookeeper/quota";
pub const CONFIG: &str = "/zookeeper/config";

/// True for the four nodes that can never be deleted.
pub fn is_reserved(path: &str) -> bool {
    matches!(path, ROOT | ZOOKEEPER | QUOTA | CONFIG)
}

#[derive(Debug, Clone)]
pub struct DataTree {
    nodes: HashMap<Box<str>, Node>,
    acls: AclCache,
    /// Session → paths of its ephemeral nodes. Sessions without any are dropped.
    ephemerals: BTreeMap<i64, BTreeSet<Box<str>>>,
    containers: BTreeSet<Box<str>>,
    ttls: BTreeSet<Box<str>>,
    last_processed_zxid: i64,
    /// ZooKeeper's cached `approximateDataSize`: path lengths (UTF-16 units) plus data
    /// lengths, maintained incrementally.
    data_size: i64,
    /// Paths with a quota (a `zookeeper_limits` node), see [`quota`].
    quotas: quota::QuotaTrie,
    /// Nodes were loaded from a snapshot: the quota trie and stats are rebuilt before
    /// anything else happens (ZooKeeper's `setupQuota` after deserializing).
    quota_setup_pending: bool,
}

impl Default for DataTree {
    fn default() -> Self {
        Self::new()
    }
}

impl DataTree {
    /// A fresh tree: `/`, `/zookeeper`, `/zookeeper/quota` and `/zookeeper/config`, all
    /// with empty data and zeroed stats. Their internal child counters stay 0, which is why
    /// `/` reports cversion -1 and `/zookeeper` -2. `/zookeeper/config` is READ-only with
    /// aversion -1, as ZooKeeper's startup `setACL(..., -1)` leaves it.
    pub fn new() -> Self {
        let mut t = DataTree {
            nodes: HashMap::new(),
            acls: AclCache::default(),
            ephemerals: BTreeMap::new(),
            containers: BTreeSet::new(),
            ttls: BTreeSet::new(),
            last_processed_zxid: 0,
            // ZooKeeper's map also holds the root under the alias "", which adds the root's
            // data (empty here) once more; nothing after startup counts it again.
            data_size: 0,
            quotas: quota::QuotaTrie::default(),
            quota_setup_pending: false,
        };
        let open = t.acls.intern(&Acl::open());
        t.insert_raw(
            ROOT,
            Node::new(Some(Bytes::new()), open, StatPersisted::default()),
        );
        for p in [ZOOKEEPER, QUOTA, CONFIG] {
            let acl = if p == CONFIG {
                Acl::read_only()
            } else {
                Acl::open()
            };
            let acl = t.acls.intern(&acl);
            let mut stat = StatPersisted::default();
            if p == CONFIG {
                stat.aversion = -1;
            }
            t.insert_raw(p, Node::new(Some(Bytes::new()), acl, stat));
            if let Some(parent) = parent_of(p).and_then(|pp| t.nodes.get_mut(pp)) {
                parent.children.insert(last_component(p).into());
            }
        }
        t
    }

    /// The node at `path`. As in ZooKeeper, whose tree also keys the root as `""`, the
    /// empty path finds the root.
    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(if path.is_empty() { "/" } else { path })
    }

    pub fn exists(&self, path: &str) -> bool {
        self.nodes.contains_key(path)
    }

    /// Child names of `path`, sorted; empty if the node does not exist.
    pub fn children(&self, path: &str) -> Vec<String> {
        self.nodes
            .get(path)
            .map_or_else(Vec::new, |n| n.children().map(str::to_owned).collect())
    }

    pub fn child_count(&self, path: &str) -> Option<usize> {
        self.nodes.get(path).map(Node::child_count)
    }

    /// Descendants at all depths, the node itself excluded (getAllChildrenNumber); 0 if
    /// the node does not exist.
    pub fn count_descendants(&self, path: &str) -> usize {
        if path == ROOT {
            return self.nodes.len() - 1;
        }
        let mut count = 0;
        let mut stack = vec![path.to_owned()];
        while let Some(p) = stack.pop() {
            if let Some(n) = self.nodes.get(p.as_str()) {
                count += n.child_count();
                stack.extend(n.children().map(|c| join(&p, c)));
            }
        }
        count
    }

    /// Real number of nodes, root included once. ZooKeeper's `getNodeCount` (4lw/mntr
    /// "Node count", `zk_znode_count`) is one more: its map holds the root twice.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// `zk_approximate_data_size`: sum of path lengths and data lengths.
    pub fn approximate_data_size(&self) -> i64 {
        self.data_size
    }

    /// Highest zxid fully applied (advanced after whole transactions, never lowered).
    pub fn last_processed_zxid(&self) -> i64 {
        self.last_processed_zxid
    }

    /// For recovery: a snapshot's zxid comes from its file name, not from the nodes.
    /// Also ends a snapshot load: quotas are set up from the loaded nodes.
    pub fn set_last_processed_zxid(&mut self, zxid: i64) {
        if self.quota_setup_pending {
            self.setup_quota();
        }
        self.last_processed_zxid = zxid;
    }

    /// Paths of the ephemeral nodes owned by `session`, sorted.
    pub fn ephemerals(&self, session: i64) -> Vec<String> {
        self.ephemerals
            .get(&session)
            .map_or_else(Vec::new, |s| s.iter().map(|p| p.to_string()).collect())
    }

    /// Sessions owning at least one ephemeral node, ascending.
    pub fn ephemeral_sessions(&self) -> impl Iterator<Item = i64> + '_ {
        self.ephemerals.keys().copied()
    }

    /// Total ephemeral nodes (`zk_ephemerals_count`).
    pub fn ephemeral_count(&self) -> usize {
        self.ephemerals.values().map(BTreeSet::len).sum()
    }

    /// Container nodes, for the reaper.
    pub fn containers(&self) -> impl Iterator<Item = &str> + '_ {
        self.containers.iter().map(|p| &**p)
    }

    /// TTL nodes, for the reaper.
    pub fn ttl_nodes(&self) -> impl Iterator<Item = &str> + '_ {
        self.ttls.iter().map(|p| &**p)
    }

    /// Distinct ACL lists in use.
    pub fn acl_cache_size(&self) -> usize {
        self.acls.len()
    }

    /// Every distinct ACL list in use with its reference count (for snapshot writers,
    /// which number them), in no particular order.
    pub fn acl_lists(&self) -> impl Iterator<Item = (&Arc<[Acl]>, usize)> + '_ {
        self.acls.lists()
    }

    /// Everything observable about the tree as lines of text, the summary first and then
    /// one line per node in pre-order: two trees are the same exactly when these are, and
    /// the first differing line says where. For checks that a replay, a snapshot or a
    /// recovery rebuilt the tree it should have.
    pub fn observable_state(&self) -> Vec<String> {
        let mut out = vec![format!(
            "lpz={} n={} size={} acls={} eph={:?} cont={:?} ttl={:?}",
            self.last_processed_zxid(),
            self.node_count(),
            self.approximate_data_size(),
            self.acl_cache_size(),
            self.ephemeral_sessions()
                .map(|s| (s, self.ephemerals(s)))
                .collect::<Vec<_>>(),
            self.containers().collect::<Vec<_>>(),
            self.ttl_nodes().collect::<Vec<_>>(),
        )];
        self.visit_preorder(|p, n| {
            out.push(format!(
                "{p} {:?} {:?} {:?} {:?}",
                n.data(),
                n.acl(),
                n.persisted(),
                n.children().collect::<Vec<_>>()
            ))
        });
        out
    }

    /// Calls `f` for every node in pre-order (parents before children, siblings sorted),
    /// the order snapshots are written in.
    pub fn visit_preorder(&self, mut f: impl FnMut(&str, &Node)) {
        let mut stack = vec![ROOT.to_owned()];
        while let Some(p) = stack.pop() {
            let Some(n) = self.nodes.get(p.as_str()) else {
                continue;
            };
            f(&p, n);
            // Reversed so that the smallest name is popped first.
            stack.extend(n.children.iter().rev().map(|c| join(&p, c)));
        }
    }

    /// Installs a node read from a snapshot: replaces the node at `path` if there is one
    /// (the reserved nodes exist already; its children are kept) or adds it under its
    /// parent, which must exist. Rebuilds the owner indexes; stats are taken as stored.
    /// Quota stats are recomputed once loading ends ([`Self::set_last_processed_zxid`] or
    /// the next [`Self::apply`]).
    pub fn load_node(
        &mut self,
        path: &str,
        data: Option<Bytes>,
        acl: &[Acl],
        stat: StatPersisted,
    ) -> Result<(), ErrorCode> {
        self.quota_setup_pending = true;
        let acl = self.acls.intern(acl);
        if let Some(old) = self.remove_raw(path) {
            let node = Node {
                data,
                acl,
                stat,
                children: old.children,
            };
            self.insert_raw(path, node);
            return Ok(());
        }
        let parent = parent_of(path).ok_or(ErrorCode::NoNode)?;
        match self.nodes.get_mut(parent) {
            Some(p) => {
                p.children.insert(last_component(path).into());
            }
            None => {
                self.acls.release(&acl);
                return Err(ErrorCode::NoNode);
            }
        }
        self.insert_raw(path, Node::new(data, acl, stat));
        Ok(())
    }

    /// Inserts `node` at `path` and indexes it; the parent link is the caller's job.
    fn insert_raw(&mut self, path: &str, node: Node) {
        self.data_size += java_len(path) + node.data_len() as i64;
        let key: Box<str> = path.into();
        match node.owner_kind() {
            OwnerKind::Persistent => {}
            OwnerKind::Ephemeral(s) => {
                self.ephemerals.entry(s).or_default().insert(key.clone());
            }
            OwnerKind::Container => {
                self.containers.insert(key.clone());
            }
            OwnerKind::Ttl(_) => {
                self.ttls.insert(key.clone());
            }
        }
        self.nodes.insert(key, node);
    }

    /// Removes the node at `path` from the map and every index, releasing its ACL; the
    /// parent link is the caller's job.
    fn remove_raw(&mut self, path: &str) -> Option<Node> {
        let node = self.nodes.remove(path)?;
        self.data_size -= java_len(path) + node.data_len() as i64;
        match node.owner_kind() {
            OwnerKind::Persistent => {}
            OwnerKind::Ephemeral(s) => {
                if let Some(set) = self.ephemerals.get_mut(&s) {
                    set.remove(path);
                    if set.is_empty() {
                        self.ephemerals.remove(&s);
                    }
                }
            }
            OwnerKind::Container => {
                self.containers.remove(path);
            }
            OwnerKind::Ttl(_) => {
                self.ttls.remove(path);
            }
        }
        self.acls.release(&node.acl);
        Some(node)
    }

    /// `DataTree.createNode`. On an existing node the ACL is still replaced by the
    /// transaction's (ZooKeeper references it before the existence check so a fuzzy
    /// snapshot's ACL cache stays consistent) and NODEEXISTS is returned; the caller
    /// then raises the parent's cversion/pzxid.
    #[allow(clippy::too_many_arguments)]
    fn create_node(
        &mut self,
        path: &str,
        data: Option<Bytes>,
        acl: &[Acl],
        owner: i64,
        parent_cversion: i32,
        zxid: i64,
        time: i64,
        triggers: &mut Vec<WatchTrigger>,
    ) -> Result<Stat, ErrorCode> {
        if path == ROOT {
            return Err(ErrorCode::NodeExists);
        }
        let parent_path = parent_of(path).ok_or(ErrorCode::NoNode)?;
        if !self.nodes.contains_key(parent_path) {
            return Err(ErrorCode::NoNode);
        }
        let acl = self.acls.intern(acl);
        if let Some(existing) = self.nodes.get_mut(path) {
            let old = std::mem::replace(&mut existing.acl, acl);
            self.acls.release(&old);
            return Err(ErrorCode::NodeExists);
        }
        let Some(parent) = self.nodes.get_mut(parent_path) else {
            return Err(ErrorCode::NoNode);
        };
        let new_cversion = if parent_cversion == -1 {
            parent.stat.cversion.wrapping_add(1)
        } else {
            parent_cversion
        };
        // Never lower: replay may meet a parent that already saw later creates.
        if new_cversion > parent.stat.cversion {
            parent.stat.cversion = new_cversion;
            parent.stat.pzxid = zxid;
        }
        parent.children.insert(last_component(path).into());
        let parent_acl = Arc::clone(&parent.acl);
        let data_len = data.as_ref().map_or(0, Bytes::len);
        let node = Node::new(
            data,
            Arc::clone(&acl),
            StatPersisted::created(zxid, time, owner),
        );
        let stat = node.stat();
        self.insert_raw(path, node);
        self.quota_on_create(path, parent_path, last_component(path), data_len);
        triggers.push(WatchTrigger::new(path, event_type::NODE_CREATED, acl));
        triggers.push(WatchTrigger::new(
            parent_path,
            event_type::NODE_CHILDREN_CHANGED,
            parent_acl,
        ));
        Ok(stat)
    }

    /// `DataTree.deleteNode`. The parent's child link goes and its pzxid is raised (never
    /// lowered) even when the node itself is missing, as fuzzy-snapshot replay requires.
    ///
    /// A node that still has children (impossible for a logged delete unless replayed
    /// over a fuzzy snapshot) is removed with its whole subtree, each descendant firing
    /// NodeDeleted and leaving its quota's stats; ZooKeeper would orphan them in its path
    /// map instead (and its stats would lose only the node itself).
    fn delete_node(
        &mut self,
        path: &str,
        zxid: i64,
        triggers: &mut Vec<WatchTrigger>,
    ) -> Result<(), ErrorCode> {
        let parent_path = parent_of(path).ok_or(ErrorCode::NoNode)?;
        let parent = self.nodes.get_mut(parent_path).ok_or(ErrorCode::NoNode)?;
        parent.children.remove(last_component(path));
        if zxid > parent.stat.pzxid {
            parent.stat.pzxid = zxid;
        }
        let parent_acl = Arc::clone(&parent.acl);
        if !self.nodes.contains_key(path) {
            return Err(ErrorCode::NoNode);
        }
        self.delete_descendants(path, triggers);
        let Some(node) = self.remove_raw(path) else {
            return Err(ErrorCode::NoNode);
        };
        self.quota_on_delete(path, parent_path, last_component(path), node.data_len());
        triggers.push(WatchTrigger::new(path, event_type::NODE_DELETED, node.acl));
        triggers.push(WatchTrigger::new(
            parent_path,
            event_type::NODE_CHILDREN_CHANGED,
            parent_acl,
        ));
        Ok(())
    }

    fn delete_descendants(&mut self, path: &str, triggers: &mut Vec<WatchTrigger>) {
        let mut order = Vec::new();
        let mut stack = vec![path.to_owned()];
        while let Some(p) = stack.pop() {
            if let Some(n) = self.nodes.get(p.as_str()) {
                stack.extend(n.children().map(|c| join(&p, c)));
            }
            order.push(p);
        }
        // Deepest first; `order[0]` is `path` itself, left to the caller.
        for p in order.iter().skip(1).rev() {
            if let Some(n) = self.remove_raw(p) {
                let parent = parent_of(p).unwrap_or(ROOT);
                self.quota_on_delete(p, parent, last_component(p), n.data_len());
                triggers.push(WatchTrigger::new(p, event_type::NODE_DELETED, n.acl));
            }
        }
        if let Some(n) = self.nodes.get_mut(path) {
            n.children.clear();
        }
    }

    /// `DataTree.setData`: the transaction carries the new version.
    fn set_data(
        &mut self,
        path: &str,
        data: Option<Bytes>,
        version: i32,
        zxid: i64,
        time: i64,
        triggers: &mut Vec<WatchTrigger>,
    ) -> Result<Stat, ErrorCode> {
        let node = self.nodes.get_mut(path).ok_or(ErrorCode::NoNode)?;
        let old_len = node.data_len() as i64;
        node.data = data;
        node.stat.mtime = time;
        node.stat.mzxid = zxid;
        node.stat.version = version;
        let stat = node.stat();
        let acl = Arc::clone(&node.acl);
        self.data_size += stat.data_length as i64 - old_len;
        self.quota_on_set_data(path, stat.data_length as i64 - old_len);
        triggers.push(WatchTrigger::new(path, event_type::NODE_DATA_CHANGED, acl));
        Ok(stat)
    }

    /// `DataTree.setACL`: the transaction carries the new aversion. Fires no watch.
    fn set_acl(&mut self, path: &str, acl: &[Acl], version: i32) -> Result<Stat, ErrorCode> {
        if !self.nodes.contains_key(path) {
            return Err(ErrorCode::NoNode);
        }
        let acl = self.acls.intern(acl);
        let node = self.nodes.get_mut(path).ok_or(ErrorCode::NoNode)?;
        let old = std::mem::replace(&mut node.acl, acl);
        node.stat.aversion = version;
        let stat = node.stat();
        self.acls.release(&old);
        Ok(stat)
    }

    /// `DataTree.setCversionPzxid`: raise (never lower) a parent's counter, -1 meaning
    /// "current + 1".
    fn set_cversion_pzxid(
        &mut self,
        path: &str,
        cversion: i32,
        zxid: i64,
    ) -> Result<(), ErrorCode> {
        let node = self.nodes.get_mut(path).ok_or(ErrorCode::NoNode)?;
        let cversion = if cversion == -1 {
            node.stat.cversion.wrapping_add(1)
        } else {
            cversion
        };
        if cversion > node.stat.cversion {
            node.stat.cversion = cversion;
            node.stat.pzxid = zxid;
        }
        Ok(())
    }

    /// `DataTree.killSession`: the listed paths first (whoever owns them; a missing one
    /// is skipped), then whatever the session still owns here — logs written without a
    /// path list rely on that second step.
    fn kill_session(
        &mut self,
        session: i64,
        paths: &[String],
        zxid: i64,
        triggers: &mut Vec<WatchTrigger>,
    ) {
        for p in paths {
            let _ = self.delete_node(p, zxid, triggers);
        }
        let rest: Vec<Box<str>> = self
            .ephemerals
            .get(&session)
            .map_or_else(Vec::new, |s| s.iter().cloned().collect());
        for p in rest {
            let _ = self.delete_node(&p, zxid, triggers);
        }
        self.ephemerals.remove(&session);
    }
}
