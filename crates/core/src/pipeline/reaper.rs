//! Deleting containers that lost their last child and TTL nodes that outlived their TTL,
//! on ZooKeeper's rules (`ContainerManager`): a server-internal deleteContainer transaction
//! per node, so the deletion is logged, replicated and fires watches like any delete.

use oxkeeper_proto::txn::DeleteTxn;
use oxkeeper_proto::Txn;

use super::{Core, Now};
use crate::session::SessionId;

impl Core {
    /// The nodes the reaper should delete now. `max_never_used_ms` (ZooKeeper's
    /// `znode.container.maxNeverUsedIntervalMs`, 0 = off) also reaps containers that never
    /// had a child once they are that old.
    pub fn reap_candidates(&self, now: Now, max_never_used_ms: u64) -> Vec<String> {
        let mut due = Vec::new();
        for path in self.tree.containers() {
            let Some(node) = self.tree.get(path) else {
                continue;
            };
            if node.child_count() > 0 {
                continue;
            }
            let idle_ms = now.wall_ms.saturating_sub(node.mtime());
            let used = node.cversion() > 0;
            if used || (max_never_used_ms > 0 && idle_ms > max_never_used_ms as i64) {
                due.push(path.to_owned());
            }
        }
        for path in self.tree.ttl_nodes() {
            let Some(node) = self.tree.get(path) else {
                continue;
            };
            let Some(ttl) = node.ttl() else { continue };
            if node.child_count() == 0 && now.wall_ms.saturating_sub(node.mtime()) > ttl {
                due.push(path.to_owned());
            }
        }
        due.sort();
        due
    }

    /// Deletes a container or expired TTL node if it still qualifies (it may have gained a
    /// child since it was found). Returns whether it was deleted.
    pub fn reap(&mut self, path: &str, now: Now) -> bool {
        let Some(node) = self.tree.get(path) else {
            return false;
        };
        if node.child_count() > 0 || !(node.is_container() || node.is_ttl()) {
            return false;
        }
        // Session 0, cxid 0: the server itself, as in ZooKeeper.
        self.commit(
            SessionId(0),
            0,
            Txn::DeleteContainer(DeleteTxn {
                path: path.to_owned(),
            }),
            now,
        );
        true
    }
}
