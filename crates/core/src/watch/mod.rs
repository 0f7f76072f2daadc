//! The server's watch tables, ZooKeeper's pair of `WatchManager`s (protocol spec 7.2–7.6).
//!
//! Owns who watches what: a data table and a child table, each `path → connection → modes`
//! where one registration can hold STANDARD (one-shot), PERSISTENT and
//! PERSISTENT_RECURSIVE at once. Recursive registrations live in the data table only.
//!
//! Must not send anything, check ACLs or look at sessions: [`WatchManager::trigger`] says
//! which connections an event goes to and the caller encodes and queues it. Connections
//! are opaque [`ConnId`]s; watches die with the connection, not the session.
//!
//! ACL filtering (ZooKeeper 3.8.4+): `trigger` returns *candidates* and has already
//! consumed their one-shot registrations. The caller must still drop the event for a
//! receiver that lacks READ on the node's ACL (see `tree::WatchTrigger::acl`) unless it is
//! `super`; the one-shot stays consumed, as in ZooKeeper. Events synthesized by
//! [`WatchManager::set_watches`] are not filtered.

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use oxkeeper_proto::codes::{add_watch_mode, event_type, watcher_type};
use oxkeeper_proto::SetWatches2;

use crate::tree::{parent_of, DataTree};

/// An opaque connection id, assigned by the network shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Mode bits of one (connection, path) registration.
type Modes = u8;
const STANDARD: Modes = 1;
const PERSISTENT: Modes = 2;
const RECURSIVE: Modes = 4;

/// `wchs`: figures for the data table, as ZooKeeper prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WatchSummary {
    /// Connections with at least one data-table watch.
    pub connections: usize,
    /// Distinct watched paths.
    pub paths: usize,
    /// (connection, path) pairs.
    pub watches: usize,
}

/// One table: path → connection → modes, with the reverse index for connection close.
#[derive(Debug, Default, Clone)]
struct Table {
    by_path: HashMap<Arc<str>, BTreeMap<ConnId, Modes>>,
    by_conn: HashMap<ConnId, BTreeSet<Arc<str>>>,
    /// (connection, path) pairs.
    pairs: usize,
    /// Registrations holding RECURSIVE: while 0, triggers skip the ancestor walk.
    recursive: usize,
}

impl Table {
    fn add(&mut self, conn: ConnId, path: &str, mode: Modes) {
        let key: Arc<str> = match self.by_path.get_key_value(path) {
            Some((k, _)) => Arc::clone(k),
            None => path.into(),
        };
        let modes = self
            .by_path
            .entry(Arc::clone(&key))
            .or_default()
            .entry(conn)
            .or_insert(0);
        if *modes == 0 {
            self.pairs += 1;
            self.by_conn.entry(conn).or_default().insert(key);
        }
        if mode & RECURSIVE != 0 && *modes & RECURSIVE == 0 {
            self.recursive += 1;
        }
        *modes |= mode;
    }

    fn modes(&self, conn: ConnId, path: &str) -> Modes {
        self.by_path
            .get(path)
            .and_then(|m| m.get(&conn))
            .copied()
            .unwrap_or(0)
    }

    /// Clears `mode` (all modes for `None`) of one registration; true if any was set.
    fn remove(&mut self, conn: ConnId, path: &str, mode: Option<Modes>) -> bool {
        let Some(conns) = self.by_path.get_mut(path) else {
            return false;
        };
        let Some(modes) = conns.get_mut(&conn) else {
            return false;
        };
        let old = *modes;
        let new = mode.map_or(0, |m| old & !m);
        if old & RECURSIVE != 0 && new & RECURSIVE == 0 {
            self.recursive -= 1;
        }
        *modes = new;
        if new == 0 {
            conns.remove(&conn);
            if conns.is_empty() {
                self.by_path.remove(path);
            }
            self.unlink_conn(conn, path);
        }
        old != new
    }

    fn unlink_conn(&mut self, conn: ConnId, path: &str) {
        self.pairs -= 1;
        if let Some(paths) = self.by_conn.get_mut(&conn) {
            paths.remove(path);
            if paths.is_empty() {
                self.by_conn.remove(&conn);
            }
        }
    }

    fn remove_conn(&mut self, conn: ConnId) {
        let Some(paths) = self.by_conn.remove(&conn) else {
            return;
        };
        for p in paths {
            let Some(conns) = self.by_path.get_mut(&p) else {
                continue;
            };
            if let Some(modes) = conns.remove(&conn) {
                self.pairs -= 1;
                if modes & RECURSIVE != 0 {
                    self.recursive -= 1;
                }
            }
            if conns.is_empty() {
                self.by_path.remove(&p);
            }
        }
    }

    /// ZooKeeper's `triggerWatch`: every registration on `path` fires (STANDARD
    /// consumed), plus RECURSIVE ones on its ancestors (kept). Appends to `out`.
    fn trigger(&mut self, path: &str, out: &mut Vec<ConnId>) {
        let mut emptied = Vec::new();
        if let Some(conns) = self.by_path.get_mut(path) {
            for (&conn, modes) in conns.iter_mut() {
                out.push(conn);
                *modes &= !STANDARD;
                if *modes == 0 {
                    emptied.push(conn);
                }
            }
            conns.retain(|_, m| *m != 0);
            if conns.is_empty() {
                self.by_path.remove(path);
            }
        }
        for conn in emptied {
            self.unlink_conn(conn, path);
        }
        if self.recursive == 0 {
            return;
        }
        let mut p = path;
        while let Some(parent) = parent_of(p) {
            if let Some(conns) = self.by_path.get(parent) {
                out.extend(
                    conns
                        .iter()
                        .filter(|(_, &m)| m & RECURSIVE != 0)
                        .map(|(&c, _)| c),
                );
            }
            p = parent;
        }
    }
}

/// Both watch tables of a server.
#[derive(Debug, Default, Clone)]
pub struct WatchManager {
    data: Table,
    child: Table,
}

impl WatchManager {
    pub fn new() -> Self {
        Self::default()
    }

    /// exists/getData with `watch`: a STANDARD data watch.
    pub fn add_data_watch(&mut self, conn: ConnId, path: &str) {
        self.data.add(conn, path, STANDARD);
    }

    /// getChildren(2) with `watch`: a STANDARD child watch.
    pub fn add_child_watch(&mut self, conn: ConnId, path: &str) {
        self.child.add(conn, path, STANDARD);
    }

    /// addWatch: PERSISTENT goes in both tables, PERSISTENT_RECURSIVE in the data table.
    /// Other modes are ignored; the caller answers them with MARSHALLINGERROR.
    pub fn add_watch(&mut self, conn: ConnId, path: &str, mode: i32) {
        match mode {
            add_watch_mode::PERSISTENT => {
                self.data.add(conn, path, PERSISTENT);
                self.child.add(conn, path, PERSISTENT);
            }
            add_watch_mode::PERSISTENT_RECURSIVE => self.data.add(conn, path, RECURSIVE),
            _ => {}
        }
    }

    /// The connections an event on `path` goes to, each once, ascending; STANDARD
    /// registrations that fired are consumed. NodeCreated/NodeDataChanged use the data
    /// table (with recursive ancestors), NodeChildrenChanged the child table,
    /// NodeDeleted both (the child table's one-shots are consumed even for connections
    /// the data table already notified). See the module docs about ACL filtering.
    pub fn trigger(&mut self, path: &str, event: i32) -> Vec<ConnId> {
        let mut out = Vec::new();
        match event {
            event_type::NODE_CREATED | event_type::NODE_DATA_CHANGED => {
                self.data.trigger(path, &mut out)
            }
            event_type::NODE_CHILDREN_CHANGED => self.child.trigger(path, &mut out),
            event_type::NODE_DELETED => {
                self.data.trigger(path, &mut out);
                self.child.trigger(path, &mut out);
            }
            _ => {}
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Connection closed: forget all its watches.
    pub fn remove_connection(&mut self, conn: ConnId) {
        self.data.remove_conn(conn);
        self.child.remove_conn(conn);
    }

    /// checkWatches (spec 7.5). An unknown type matches nothing; the caller answers it
    /// with MARSHALLINGERROR before asking.
    pub fn check_watches(&self, conn: ConnId, path: &str, kind: i32) -> bool {
        match kind {
            watcher_type::CHILDREN => self.child.modes(conn, path) & STANDARD != 0,
            watcher_type::DATA => self.data.modes(conn, path) & STANDARD != 0,
            watcher_type::PERSISTENT => self.data.modes(conn, path) & PERSISTENT != 0,
            watcher_type::PERSISTENT_RECURSIVE => self.data.modes(conn, path) & RECURSIVE != 0,
            watcher_type::ANY => {
                self.child.modes(conn, path) != 0 || self.data.modes(conn, path) != 0
            }
            _ => false,
        }
    }

    /// removeWatches (spec 7.5): true if something was removed.
    pub fn remove_watches(&mut self, conn: ConnId, path: &str, kind: i32) -> bool {
        match kind {
            watcher_type::CHILDREN => self.child.remove(conn, path, Some(STANDARD)),
            watcher_type::DATA => self.data.remove(conn, path, Some(STANDARD)),
            watcher_type::PERSISTENT => {
                let c = self.child.remove(conn, path, Some(PERSISTENT));
                let d = self.data.remove(conn, path, Some(PERSISTENT));
                c || d
            }
            watcher_type::PERSISTENT_RECURSIVE => self.data.remove(conn, path, Some(RECURSIVE)),
            watcher_type::ANY => {
                let c = self.child.remove(conn, path, None);
                let d = self.data.remove(conn, path, None);
                c || d
            }
            _ => false,
        }
    }

    /// setWatches/setWatches2 after a reconnect (spec 7.6): returns the events to send
    /// right away as `(event_type, path)` (notification zxid -1), in ZooKeeper's order,
    /// and registers the watches whose condition has not fired yet.
    pub fn set_watches(
        &mut self,
        conn: ConnId,
        req: &SetWatches2,
        tree: &DataTree,
    ) -> Vec<(i32, String)> {
        let mut events = Vec::new();
        let rel = req.relative_zxid;
        for p in &req.data_watches {
            match tree.get(p) {
                None => events.push((event_type::NODE_DELETED, p.clone())),
                Some(n) if n.mzxid() > rel => {
                    events.push((event_type::NODE_DATA_CHANGED, p.clone()))
                }
                Some(_) => self.data.add(conn, p, STANDARD),
            }
        }
        for p in &req.exist_watches {
            if tree.exists(p) {
                events.push((event_type::NODE_CREATED, p.clone()));
            } else {
                self.data.add(conn, p, STANDARD);
            }
        }
        for p in &req.child_watches {
            match tree.get(p) {
                None => events.push((event_type::NODE_DELETED, p.clone())),
                Some(n) if n.pzxid() > rel => {
                    events.push((event_type::NODE_CHILDREN_CHANGED, p.clone()))
                }
                Some(_) => self.child.add(conn, p, STANDARD),
            }
        }
        for p in &req.persistent_watches {
            self.add_watch(conn, p, add_watch_mode::PERSISTENT);
        }
        for p in &req.persistent_recursive_watches {
            self.add_watch(conn, p, add_watch_mode::PERSISTENT_RECURSIVE);
        }
        events
    }

    /// `zk_watch_count`: (connection, path) registrations in both tables.
    pub fn watch_count(&self) -> usize {
        self.data.pairs + self.child.pairs
    }

    /// `wchs`. Like ZooKeeper, only the data table is described, so a connection that
    /// only holds child watches does not appear.
    pub fn summary(&self) -> WatchSummary {
        WatchSummary {
            connections: self.data.by_conn.len(),
            paths: self.data.by_path.len(),
            watches: self.data.pairs,
        }
    }

    /// `wchc`: data-table watches by connection (ZooKeeper dumps the data table only).
    pub fn by_connection(&self) -> BTreeMap<ConnId, Vec<String>> {
        self.data
            .by_conn
            .iter()
            .map(|(&c, paths)| (c, paths.iter().map(|p| p.to_string()).collect()))
            .collect()
    }

    /// `wchp`: data-table watches by path (ZooKeeper dumps the data table only).
    pub fn by_path(&self) -> BTreeMap<String, Vec<ConnId>> {
        self.data
            .by_path
            .iter()
            .map(|(p, conns)| (p.to_string(), conns.keys().copied().collect()))
            .collect()
    }
}
