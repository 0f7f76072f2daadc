//! Snapshots taken in slices while the tree keeps changing: ZooKeeper's fuzzy snapshot
//! (persistence spec §7.5) for a server with a single core task.
//!
//! [`SnapshotBuilder::start`] notes the zxid that names the snapshot (`Zs`) and copies
//! the session table; each [`SnapshotBuilder::step`] serializes up to a given number of
//! nodes of the tree *as it is then*, continuing ZooKeeper's pre-order walk where the
//! previous step stopped; [`SnapshotBuilder::finish`] assembles the file. Between steps
//! the caller may apply any transactions. The result holds every transaction ≤ `Zs`
//! and, per node, some state from `(Zs, Ze]`; replaying the log from `Zs + 1` repairs
//! it, as for ZooKeeper's own snapshots.
//!
//! Resuming: the builder holds no reference into the tree between steps, only a stack
//! of (path of a node being walked, last child name emitted under it). A step resumes
//! at the first child sorting after that name, skips nodes that vanished and drops
//! frames whose node vanished (together with its subtree). Children are sorted, so each
//! path is emitted at most once; a node created behind the walk's position is missed
//! and recreated by the replay.
//!
//! ACL ids are given in order of first use by emitted nodes, so a list that appeared
//! during the walk is in the map; the map precedes the nodes in the file, so the node
//! section is buffered and the map written by `finish`. The Adler-32 of the buffered
//! nodes is kept up to date by each step, so `finish` does not hash them again.
//!
//! Digest trailer: ZooKeeper stores `Ze` with the digest of the tree at `Ze`, which it
//! maintains incrementally; recovery compares when the replay reaches `Ze`. Our tree
//! keeps no running digest, and the nodes of a walk the tree changed under do not add
//! up to the digest of any state. So: when the tree did not change while the walk ran
//! (from the step that wrote the root to the last one), the nodes are the tree at `Ze`
//! and their digest is stored with `Ze`, ZooKeeper's pair (with `Ze = Zs`, byte for
//! byte what [`super::serialize_snapshot`] always wrote). When it changed, we store
//! what ZooKeeper stores when it has no digest, zxid 0 with digest 0, which ZooKeeper
//! ("The digest value is empty in snapshot") and our recovery
//! ([`crate::DigestCheck::NotChecked`]) skip rather than report a false mismatch. The
//! lastZxid section holds `Ze` too, as in ZooKeeper (the file name, `Zs`, is what
//! recovery replays from).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use oxkeeper_core::tree::{DataTree, Node};
use oxkeeper_proto::Acl;

use super::write::{Out, OPEN_ACL_ID, SNAP_DBID, SNAP_MAGIC, SNAP_VERSION};
use crate::digest::{node_digest, TreeDigest, DIGEST_VERSION};

/// Bytes of one node record besides its path and data: two lengths, the ACL id and the
/// persisted stat.
const NODE_FIXED_BYTES: usize = 4 + 4 + 8 + 8 * 4 + 4 * 3 + 8 + 8;

/// The node bytes are checksummed in chunks of about this size, while still in cache.
const HASH_CHUNK: usize = 256 * 1024;

/// A snapshot being taken in slices; see the module docs.
#[derive(Debug)]
pub struct SnapshotBuilder {
    /// `Zs`: the tree's last processed zxid at start, the snapshot's name.
    zxid: i64,
    /// `Ze`: the tree's last processed zxid at the latest step.
    end_zxid: i64,
    /// What the tree looked like when the walk began (the step that wrote the root).
    walk_shape: Shape,
    /// The tree differed from `walk_shape` at a later step: the walk is fuzzy.
    moved: bool,
    /// Sorted copy of the session table at start.
    sessions: Vec<(i64, i32)>,
    /// Nodes on the current path of the walk that have children (leaves get no frame);
    /// empty once started means done.
    stack: Vec<Frame>,
    started: bool,
    done: bool,
    sink: Sink,
}

/// Cheap facts that change whenever the tree does in the ways a server changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shape {
    zxid: i64,
    nodes: usize,
    data_size: i64,
}

impl Shape {
    fn of(tree: &DataTree) -> Self {
        Shape {
            zxid: tree.last_processed_zxid(),
            nodes: tree.node_count(),
            data_size: tree.approximate_data_size(),
        }
    }
}

#[derive(Debug)]
struct Frame {
    /// An emitted node whose children are being walked.
    path: String,
    /// The last child emitted under it, `None` for none yet. Kept up to date for the
    /// top frame only: below it, the frame above names the child being walked (and is
    /// recorded here when popped).
    last: Option<String>,
}

/// Where emitted nodes go.
#[derive(Debug)]
struct Sink {
    /// The node section so far; its checksum covers everything at the end of a step.
    nodes: Out,
    acls: AclIds,
    digest: TreeDigest,
    /// Off once the tree moved: the digest would not be written.
    digest_on: bool,
    count: usize,
}

impl Sink {
    fn emit(&mut self, path: &str, node: &Node) {
        let acl_id = self.acls.id_of(node.acl_arc());
        let data = node.data().as_deref();
        let stat = node.persisted();
        if self.digest_on {
            self.digest.add(node_digest(path, data, stat));
        }
        let out = &mut self.nodes;
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
        self.count += 1;
        // Checksum while the bytes are still in cache.
        if out.unhashed() >= HASH_CHUNK {
            out.checksum();
        }
    }
}

/// ZooKeeper's numeric ACL ids for the lists emitted nodes use: from 1 in order of
/// first use, OPEN_ACL_UNSAFE as -1 and not numbered. Lists are recognized by pointer
/// (the tree interns them) and, for a pointer not seen before, by content, so a list
/// released and interned again during the walk keeps its id.
#[derive(Debug)]
struct AclIds {
    open: Vec<Acl>,
    /// Pointer of a list met → its id. The pointers stay unique because `kept` holds
    /// every list met.
    by_ptr: HashMap<usize, i64>,
    kept: Vec<Arc<[Acl]>>,
    /// Content hash → ids with that hash.
    by_content: HashMap<u64, Vec<i64>>,
    /// The numbered lists: id `i + 1` is `lists[i]`.
    lists: Vec<Arc<[Acl]>>,
    /// The previous answer, which is nearly always the next one.
    last: Option<(usize, i64)>,
}

impl AclIds {
    fn new() -> Self {
        AclIds {
            open: Acl::open(),
            by_ptr: HashMap::new(),
            kept: Vec::new(),
            by_content: HashMap::new(),
            lists: Vec::new(),
            last: None,
        }
    }

    fn id_of(&mut self, acl: &Arc<[Acl]>) -> i64 {
        let ptr = Arc::as_ptr(acl) as *const Acl as usize;
        if let Some((p, id)) = self.last {
            if p == ptr {
                return id;
            }
        }
        let id = match self.by_ptr.get(&ptr) {
            Some(&id) => id,
            None => {
                let id = self.id_by_content(acl);
                self.by_ptr.insert(ptr, id);
                self.kept.push(Arc::clone(acl));
                id
            }
        };
        self.last = Some((ptr, id));
        id
    }

    fn id_by_content(&mut self, acl: &Arc<[Acl]>) -> i64 {
        if **acl == *self.open {
            return OPEN_ACL_ID;
        }
        let ids = self.by_content.entry(content_hash(acl)).or_default();
        if let Some(&id) = ids
            .iter()
            .find(|&&id| *self.lists[id as usize - 1] == **acl)
        {
            return id;
        }
        self.lists.push(Arc::clone(acl));
        let id = self.lists.len() as i64;
        ids.push(id);
        id
    }
}

fn content_hash(acl: &[Acl]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    acl.len().hash(&mut h);
    for a in acl {
        a.perms.hash(&mut h);
        a.id.scheme.hash(&mut h);
        a.id.id.hash(&mut h);
    }
    h.finish()
}

/// `parent/name` into `buf`, reusing its allocation.
fn join_into(buf: &mut String, parent: &str, name: &str) {
    buf.clear();
    if parent != "/" {
        buf.push_str(parent);
    }
    buf.push('/');
    buf.push_str(name);
}

impl SnapshotBuilder {
    /// Starts a snapshot of `tree`, named by its last processed zxid, with a copy of
    /// `sessions` (id, timeout ms) as they are now. Nothing is serialized yet.
    pub fn start(tree: &DataTree, sessions: &[(i64, i32)]) -> SnapshotBuilder {
        let mut sessions = sessions.to_vec();
        sessions.sort_unstable();
        // Room for the whole node section as the tree is now, so that growing the
        // buffer never copies it in the middle of a step. Untouched capacity costs no
        // memory until written.
        let estimate = usize::try_from(tree.approximate_data_size()).unwrap_or(0)
            + tree.node_count() * NODE_FIXED_BYTES;
        let shape = Shape::of(tree);
        SnapshotBuilder {
            zxid: shape.zxid,
            end_zxid: shape.zxid,
            walk_shape: shape,
            moved: false,
            sessions,
            stack: Vec::new(),
            started: false,
            done: false,
            sink: Sink {
                nodes: Out::with_capacity(estimate + estimate / 8),
                acls: AclIds::new(),
                digest: TreeDigest::default(),
                digest_on: true,
                count: 0,
            },
        }
    }

    /// The zxid the snapshot is named by (`write_snapshot(dir, b.zxid(), &bytes)`):
    /// the tree's last processed zxid at [`SnapshotBuilder::start`].
    pub fn zxid(&self) -> i64 {
        self.zxid
    }

    /// True once the walk has ended.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Nodes serialized so far.
    pub fn nodes_written(&self) -> usize {
        self.sink.count
    }

    /// Serializes up to `max_nodes` more nodes of `tree` as it is now, continuing the
    /// pre-order walk (parents before children, siblings sorted) after the last node
    /// emitted. `tree` must be the tree given to `start`, changed only since. Returns
    /// true when the walk is complete (then further calls do nothing).
    pub fn step(&mut self, tree: &DataTree, max_nodes: usize) -> bool {
        if self.done {
            return true;
        }
        let shape = Shape::of(tree);
        let mut budget = max_nodes;
        if !self.started {
            if budget == 0 {
                return false;
            }
            self.walk_shape = shape;
            let root = tree.get("/").expect("the tree always holds the root");
            self.sink.emit("/", root);
            self.stack.push(Frame {
                path: "/".to_owned(),
                last: None,
            });
            self.started = true;
            budget -= 1;
        } else if shape != self.walk_shape && !self.moved {
            self.moved = true;
            self.sink.digest_on = false;
        }
        self.end_zxid = shape.zxid;
        // The children still to walk of each frame, set up (by name) when the frame
        // first becomes the top in this step.
        let mut pending: Vec<Option<_>> = Vec::with_capacity(self.stack.len() + 8);
        pending.resize_with(self.stack.len(), || None);
        let mut path = String::new();
        while budget > 0 {
            let Some(top) = self.stack.last_mut() else {
                break;
            };
            let slot = pending.last_mut().expect("one entry per frame");
            if slot.is_none() {
                // A frame from an earlier step. If its node is gone, so is whatever
                // was under it (the replay recreates what comes back).
                let Some(node) = tree.get(&top.path) else {
                    self.pop();
                    pending.pop();
                    continue;
                };
                *slot = Some(node.children_after(top.last.as_deref().unwrap_or("")));
            }
            let Some(name) = slot.as_mut().and_then(Iterator::next) else {
                self.pop();
                pending.pop();
                continue;
            };
            join_into(&mut path, &top.path, name);
            let node = tree.get(&path);
            let has_children = matches!(node, Some(n) if n.child_count() > 0);
            if !has_children {
                // A leaf (or a child name without a node, which a consistent tree
                // never has): no frame, only the resume position.
                let last = top.last.get_or_insert_with(String::new);
                last.clear();
                last.push_str(name);
            }
            let Some(node) = node else {
                continue;
            };
            self.sink.emit(&path, node);
            budget -= 1;
            if has_children {
                self.stack.push(Frame {
                    path: path.clone(),
                    last: None,
                });
                pending.push(Some(node.children_after("")));
            }
        }
        self.sink.nodes.checksum();
        self.done = self.stack.is_empty();
        self.done
    }

    /// Pops the top frame, recording its name as the last child emitted under its
    /// parent (reusing the path's buffer).
    fn pop(&mut self) {
        let Some(frame) = self.stack.pop() else {
            return;
        };
        if let Some(parent) = self.stack.last_mut() {
            let mut name = frame.path;
            let cut = name.rfind('/').map_or(0, |i| i + 1);
            name.drain(..cut);
            parent.last = Some(name);
        }
    }

    /// The snapshot file: header, the sessions copied at start, the ACL lists the
    /// emitted nodes use, the nodes, the seals and trailers (see the module docs for
    /// the digest). Needs no tree, so it can run anywhere.
    ///
    /// # Panics
    ///
    /// If the walk is not complete: without the rest of the nodes the file would not
    /// be a snapshot (nodes older than its name would be missing).
    pub fn finish(self) -> Vec<u8> {
        assert!(self.done, "SnapshotBuilder::finish before the walk ended");
        let Sink {
            mut nodes,
            acls,
            digest,
            ..
        } = self.sink;

        let mut head = Out::with_capacity(64 + self.sessions.len() * 12);
        head.i32(SNAP_MAGIC);
        head.i32(SNAP_VERSION);
        head.i64(SNAP_DBID);
        head.i32(self.sessions.len() as i32);
        for &(id, timeout) in &self.sessions {
            head.i64(id);
            head.i32(timeout);
        }
        head.i32(acls.lists.len() as i32);
        for (i, list) in acls.lists.iter().enumerate() {
            head.i64(i as i64 + 1);
            head.i32(list.len() as i32);
            for a in list.iter() {
                head.acl(a);
            }
        }

        // Put the head in front of the nodes in place: one move, no second buffer.
        let nodes_sum = nodes.checksum();
        let mut out = head.prepend_to(nodes.into_bytes(), nodes_sum);
        out.string("/");
        out.seal();

        if self.moved {
            // ZooKeeper's empty ZxidDigest.
            out.i64(0);
            out.i32(DIGEST_VERSION);
            out.i64(0);
        } else {
            out.i64(self.end_zxid);
            out.i32(DIGEST_VERSION);
            out.i64(digest.0);
        }
        out.seal();

        out.i64(self.end_zxid);
        out.seal();
        out.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_can_move_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<SnapshotBuilder>();
    }

    #[test]
    fn adler_of_parts_combines_to_adler_of_whole() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        for cut in [
            0, 1, 5551, 65_520, 65_521, 65_522, 131_043, 199_999, 200_000,
        ] {
            let (a, b) = data.split_at(cut);
            let combined = super::super::write::adler32_combine(
                adler2::adler32_slice(a),
                adler2::adler32_slice(b),
                b.len(),
            );
            assert_eq!(combined, adler2::adler32_slice(&data), "cut at {cut}");
        }
    }
}
