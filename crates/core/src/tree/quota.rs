//! Quotas, as Apache ZooKeeper keeps them (3.7–3.9: `DataTree`, `PathTrie`, `StatsTrack`,
//! `ZooKeeperServer.checkQuota`).
//!
//! A quota on `/p` is the node `/zookeeper/quota/p/zookeeper_limits`, whose text holds the
//! limits; the tree maintains `/zookeeper/quota/p/zookeeper_stats` with the usage of the
//! subtree at `/p` (`count` = nodes, `/p` itself included; `bytes` = data bytes). Admin
//! tools (zkCli `setquota`) only write those nodes; everything else happens in `apply`:
//!
//! * creating a `zookeeper_limits` node marks its path as quota'd (the path trie),
//!   deleting it unmarks it;
//! * creating a `zookeeper_stats` node recomputes the usage of its path and overwrites the
//!   node's data with it;
//! * every create, delete and setData adds its difference to the stats of the longest
//!   quota'd prefix of its path (nested quotas: only the innermost one counts);
//! * loading a snapshot rebuilds the trie from the `zookeeper_limits` leaves and
//!   recomputes their stats.
//!
//! The stats node is rewritten in place: no version, mzxid or watch event, and (as in
//! ZooKeeper) no change to the approximate data size. All of it is a function of the
//! transactions, so replay gives the same stats.
//!
//! The string handling follows ZooKeeper's to the letter, quirks included: the create hook
//! matches parents by the prefix `/zookeeper/quota` (so `/zookeeper/quotaX/zookeeper_limits`
//! marks `/X`), the delete hook by `/zookeeper` with a fixed 16-unit cut, and trie paths
//! drop whitespace-only components. Where ZooKeeper would throw (and stop the server or
//! refuse to load) the hook does nothing instead: a limits node directly under
//! `/zookeeper/quota`, unparseable stats text.
//!
//! With `zookeeper.enforceQuota=true`, [`DataTree::check_quota`] is ZooKeeper's
//! `checkQuota`: prep refuses a create or setData that would take the usage past a *hard*
//! limit with QUOTAEXCEEDED; a soft limit (or a hard one without enforcement) only logs.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;
use oxkeeper_proto::ErrorCode;

use super::{DataTree, QUOTA};

/// Name of the node holding a quota's limits.
pub const LIMIT_NODE: &str = "zookeeper_limits";
/// Name of the node holding a quota's usage.
pub const STAT_NODE: &str = "zookeeper_stats";

/// `Quotas.limitPath`: `/zookeeper/quota<path>/zookeeper_limits`.
pub fn limit_path(path: &str) -> String {
    format!("{QUOTA}{path}/{LIMIT_NODE}")
}

/// `Quotas.statPath`: `/zookeeper/quota<path>/zookeeper_stats`.
pub fn stat_path(path: &str) -> String {
    format!("{QUOTA}{path}/{STAT_NODE}")
}

const PROC: &str = "/zookeeper";
/// `Quotas.quotaZookeeper.length()`: where `trimQuotaPath` cuts.
const QUOTA_LEN: usize = 16;

/// Java's `s.substring(units)` on UTF-16 units; `None` where Java would throw (too short)
/// or would split a surrogate pair.
fn java_substring_from(s: &str, units: usize) -> Option<&str> {
    let mut n = 0;
    for (i, c) in s.char_indices() {
        match n.cmp(&units) {
            Ordering::Equal => return Some(&s[i..]),
            Ordering::Greater => return None,
            Ordering::Less => n += c.len_utf16(),
        }
    }
    (n == units).then_some("")
}

/// Java's `String.split(regex)` for a regex matching one separator character (`runs`:
/// a run of them, as `[,;]+`): no match gives the whole string, a leading separator
/// gives a leading empty string, trailing empty strings are dropped.
fn java_split(s: &str, is_sep: fn(char) -> bool, runs: bool) -> Vec<&str> {
    if !s.contains(is_sep) {
        return vec![s];
    }
    let mut parts: Vec<&str> = s.split(is_sep).collect();
    if runs {
        let mut first = true;
        parts.retain(|p| std::mem::take(&mut first) || !p.is_empty());
    }
    while parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    parts
}

/// Text that `StatsTrack` cannot parse (ZooKeeper throws). `None` data is included: Java
/// fails on a null buffer too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MalformedStats;

/// ZooKeeper's `StatsTrack`: `key=value` pairs separated by `,` or `;`, a missing key
/// reading as -1. Used both for limits (`count`, `bytes` = soft limits,
/// `countHardLimit`, `byteHardLimit`) and for usage (`count`, `bytes`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsTrack {
    stats: BTreeMap<String, i64>,
}

pub const COUNT: &str = "count";
pub const BYTES: &str = "bytes";
pub const COUNT_HARD_LIMIT: &str = "countHardLimit";
pub const BYTE_HARD_LIMIT: &str = "byteHardLimit";

impl StatsTrack {
    /// A tracker holding just `count` and `bytes`.
    pub fn usage(count: i64, bytes: i64) -> StatsTrack {
        let mut s = StatsTrack::default();
        s.set(COUNT, count);
        s.set(BYTES, bytes);
        s
    }

    /// Parses a node's data the way `new StatsTrack(byte[])` does: empty text is an empty
    /// tracker; `k=` or `k==v` reads as -1; a later duplicate key wins; a pair without
    /// `=`, an empty pair (leading separator) or a value `Long.parseLong` refuses is
    /// malformed.
    pub fn parse(data: Option<&[u8]>) -> Result<StatsTrack, MalformedStats> {
        let text = String::from_utf8_lossy(data.ok_or(MalformedStats)?);
        let mut track = StatsTrack::default();
        if text.is_empty() {
            return Ok(track);
        }
        for pair in java_split(&text, |c| c == ',' || c == ';', true) {
            let kv = java_split(pair, |c| c == '=', false);
            let (Some(key), Some(value)) = (kv.first(), kv.get(1)) else {
                return Err(MalformedStats);
            };
            // Long.parseLong: optional sign, decimal digits, no blanks (Java also takes
            // non-ASCII decimal digits, which this does not).
            let value = if value.is_empty() {
                -1
            } else {
                value.parse::<i64>().map_err(|_| MalformedStats)?
            };
            track.stats.insert((*key).to_owned(), value);
        }
        Ok(track)
    }

    /// The value of `key`, -1 when absent.
    pub fn get(&self, key: &str) -> i64 {
        self.stats.get(key).copied().unwrap_or(-1)
    }

    pub fn set(&mut self, key: &str, value: i64) {
        self.stats.insert(key.to_owned(), value);
    }

    pub fn count(&self) -> i64 {
        self.get(COUNT)
    }

    pub fn bytes(&self) -> i64 {
        self.get(BYTES)
    }

    pub fn count_hard_limit(&self) -> i64 {
        self.get(COUNT_HARD_LIMIT)
    }

    pub fn byte_hard_limit(&self) -> i64 {
        self.get(BYTE_HARD_LIMIT)
    }
}

/// `StatsTrack.toString`: `count=<n>,bytes=<n>` first (-1 when unset), then, only if there
/// are other keys, `=` and `;key=value` for each in Java string order, e.g.
/// `count=-1,bytes=-1=;byteHardLimit=100;countHardLimit=4` (the stray `=` keeps pre-3.7
/// parsers working).
impl fmt::Display for StatsTrack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{COUNT}={},{BYTES}={}", self.count(), self.bytes())?;
        let mut rest: Vec<(&String, &i64)> = self
            .stats
            .iter()
            .filter(|(k, _)| k.as_str() != COUNT && k.as_str() != BYTES)
            .collect();
        if rest.is_empty() {
            return Ok(());
        }
        // Java compares UTF-16 units.
        rest.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
        f.write_str("=")?;
        for (k, v) in rest {
            write!(f, ";{k}={v}")?;
        }
        Ok(())
    }
}

/// ZooKeeper's `PathTrie` of quota'd paths.
#[derive(Debug, Clone, Default)]
pub(super) struct QuotaTrie {
    root: TrieNode,
}

#[derive(Debug, Clone, Default)]
struct TrieNode {
    /// A quota is set on the path ending here.
    property: bool,
    children: BTreeMap<Box<str>, TrieNode>,
}

/// `PathTrie.split`: components between slashes, whitespace-only ones (Java `trim()`:
/// every char ≤ U+0020) dropped.
fn components(path: &str) -> Vec<&str> {
    path.split('/')
        .filter(|t| !t.chars().all(|c| c <= ' '))
        .collect()
}

impl QuotaTrie {
    /// `addPath`. Java refuses the empty string; so does this (silently).
    fn add(&mut self, path: &str) {
        if path.is_empty() {
            return;
        }
        let mut node = &mut self.root;
        for c in components(path) {
            node = node.children.entry(c.into()).or_default();
        }
        node.property = true;
    }

    /// `deletePath`: clears the mark and drops the trie node if it has no children. An
    /// unknown path is ignored, and so is one without components (Java throws).
    fn delete(&mut self, path: &str) {
        fn go(node: &mut TrieNode, comps: &[&str]) {
            match comps {
                [] => {}
                [last] => {
                    if let Some(child) = node.children.get_mut(*last) {
                        child.property = false;
                        if child.children.is_empty() {
                            node.children.remove(*last);
                        }
                    }
                }
                [first, rest @ ..] => {
                    if let Some(child) = node.children.get_mut(*first) {
                        go(child, rest);
                    }
                }
            }
        }
        go(&mut self.root, &components(path));
    }

    /// `findMaxPrefix` as `getMaxPrefixWithQuota` uses it: the longest marked prefix of
    /// `path` (the root never counts), rebuilt from the components.
    fn max_prefix(&self, path: &str) -> Option<String> {
        let comps = components(path);
        let mut node = &self.root;
        let mut deepest = None;
        for (i, c) in comps.iter().enumerate() {
            match node.children.get(*c) {
                Some(child) => node = child,
                None => break,
            }
            if node.property {
                deepest = Some(i);
            }
        }
        deepest.map(|i| format!("/{}", comps[..=i].join("/")))
    }

    fn clear(&mut self) {
        self.root = TrieNode::default();
    }
}

/// Parses quota text for [`DataTree::check_quota`]; ZooKeeper's prep fails the request with
/// MARSHALLINGERROR when `StatsTrack` throws.
fn parse_for_check(path: &str, data: &Option<Bytes>) -> Result<StatsTrack, ErrorCode> {
    StatsTrack::parse(data.as_deref()).map_err(|MalformedStats| {
        tracing::error!("unparseable quota text in {path}: request refused (MARSHALLINGERROR)");
        ErrorCode::MarshallingError
    })
}

impl DataTree {
    /// `getMaxPrefixWithQuota`: the quota'd path whose stats a change at `path` updates.
    pub fn quota_prefix(&self, path: &str) -> Option<String> {
        self.quotas.max_prefix(path)
    }

    /// `ZooKeeperServer.checkQuota` for a change at `path` adding `count_diff` nodes and
    /// `bytes_diff` data bytes (create: 1 and the data's length; setData: 0 and new
    /// minus old length), against this (committed) tree, as ZooKeeper checks it: the
    /// earlier ops of the same multi are not seen.
    ///
    /// A limit is checked when it is set (> -1) and the change moves its figure; the hard
    /// limit wins over the soft one. Going past a hard limit is QUOTAEXCEEDED, past a soft
    /// one a warning. Unparseable limits or stats text is MARSHALLINGERROR (ZooKeeper's
    /// answer to the exception); a missing limits or stats node lets the change through.
    pub fn check_quota(
        &self,
        path: &str,
        count_diff: i64,
        bytes_diff: i64,
    ) -> Result<(), ErrorCode> {
        let Some(prefix) = self.quota_prefix(path) else {
            return Ok(());
        };
        let Some(limit_node) = self.get(&limit_path(&prefix)) else {
            tracing::error!("Missing limit node for quota {}", limit_path(&prefix));
            return Ok(());
        };
        let limits = parse_for_check(&limit_path(&prefix), limit_node.data())?;
        let check_count =
            count_diff != 0 && (limits.count() > -1 || limits.count_hard_limit() > -1);
        let check_bytes = bytes_diff != 0 && (limits.bytes() > -1 || limits.byte_hard_limit() > -1);
        if !check_count && !check_bytes {
            return Ok(());
        }
        let Some(stat_node) = self.get(&stat_path(&prefix)) else {
            tracing::error!("Missing node for stat {}", stat_path(&prefix));
            return Ok(());
        };
        let usage = parse_for_check(&stat_path(&prefix), stat_node.data())?;
        let checks = [
            (
                check_count,
                "count",
                "Count",
                usage.count(),
                count_diff,
                limits.count_hard_limit(),
                limits.count(),
            ),
            (
                check_bytes,
                "bytes",
                "Byte",
                usage.bytes(),
                bytes_diff,
                limits.byte_hard_limit(),
                limits.bytes(),
            ),
        ];
        for (check, what, limit_name, current, diff, hard, soft) in checks {
            if !check {
                continue;
            }
            let new = current.wrapping_add(diff);
            let is_hard = hard > -1;
            let limit = if is_hard { hard } else { soft };
            if new > limit {
                tracing::warn!(
                    "Quota exceeded: {prefix} [current {what}={new}, {}{limit_name}Limit={limit}]",
                    if is_hard { "hard" } else { "soft" }
                );
                if is_hard {
                    return Err(ErrorCode::QuotaExceeded);
                }
            }
        }
        Ok(())
    }

    /// The create hook (`createNode`, after the node is in): limits node → mark its path;
    /// stats node → recompute its path; then count the new node (`data_len` is the
    /// transaction's data, whatever a recompute just wrote) in its quota's stats.
    pub(super) fn quota_on_create(
        &mut self,
        path: &str,
        parent: &str,
        name: &str,
        data_len: usize,
    ) {
        if let Some(real) = parent.strip_prefix(QUOTA) {
            if name == LIMIT_NODE {
                self.quotas.add(real);
            }
            if name == STAT_NODE {
                self.update_quota_for_path(real);
            }
        }
        if let Some(prefix) = self.quota_prefix(path) {
            self.update_quota_stat(&prefix, data_len as i64, 1);
        }
    }

    /// The delete hook (`deleteNode`, after the node is gone): a limits node under
    /// `/zookeeper…` unmarks the path `trimQuotaPath` makes of its parent; then the
    /// node leaves its quota's stats.
    pub(super) fn quota_on_delete(
        &mut self,
        path: &str,
        parent: &str,
        name: &str,
        data_len: usize,
    ) {
        if name == LIMIT_NODE && parent.starts_with(PROC) {
            if let Some(real) = java_substring_from(parent, QUOTA_LEN) {
                self.quotas.delete(real);
            }
        }
        if let Some(prefix) = self.quota_prefix(path) {
            self.update_quota_stat(&prefix, -(data_len as i64), -1);
        }
    }

    /// The setData hook: the data's length difference goes to the quota's stats.
    pub(super) fn quota_on_set_data(&mut self, path: &str, bytes_diff: i64) {
        if let Some(prefix) = self.quota_prefix(path) {
            self.update_quota_stat(&prefix, bytes_diff, 0);
        }
    }

    /// `updateQuotaStat`: adds the differences to the stats text of `prefix`, keeping any
    /// other keys. Missing node: logged. Unparseable text: logged and left alone (ZooKeeper
    /// throws out of the transaction, which stops the server).
    fn update_quota_stat(&mut self, prefix: &str, bytes_diff: i64, count_diff: i64) {
        let sp = stat_path(prefix);
        let Some(node) = self.nodes.get_mut(sp.as_str()) else {
            tracing::error!("Missing node for stat {sp}");
            return;
        };
        match StatsTrack::parse(node.data.as_deref()) {
            Ok(mut s) => {
                s.set(COUNT, s.count().wrapping_add(count_diff));
                s.set(BYTES, s.bytes().wrapping_add(bytes_diff));
                node.data = Some(Bytes::from(s.to_string()));
            }
            Err(MalformedStats) => {
                tracing::warn!("unparseable quota stats in {sp}, not updated");
            }
        }
    }

    /// `updateQuotaForPath`: counts the subtree at `path` (`""` being the root, as in
    /// ZooKeeper's node map) and overwrites its stats node with `count=…,bytes=…`.
    fn update_quota_for_path(&mut self, path: &str) {
        let (mut count, mut bytes) = (0i64, 0i64);
        let mut stack = vec![path.to_owned()];
        while let Some(p) = stack.pop() {
            let Some(n) = self.get(&p) else {
                continue;
            };
            count += 1;
            bytes += n.data_len() as i64;
            // Java's `path + "/" + child`: under "/" that is "//child", which finds nothing.
            stack.extend(n.children().map(|c| format!("{p}/{c}")));
        }
        let sp = stat_path(path);
        match self.nodes.get_mut(sp.as_str()) {
            Some(node) => {
                node.data = Some(Bytes::from(StatsTrack::usage(count, bytes).to_string()))
            }
            None => tracing::warn!("Missing quota stat node {sp}"),
        }
    }

    /// `setupQuota`, run once after nodes were loaded from a snapshot: forgets the trie,
    /// then for every leaf under `/zookeeper/quota` whose path ends in
    /// `/zookeeper_limits` recomputes the stats of the quota'd path and marks it.
    pub(super) fn setup_quota(&mut self) {
        self.quota_setup_pending = false;
        self.quotas.clear();
        let suffix = format!("/{LIMIT_NODE}");
        let mut real_paths = Vec::new();
        let mut stack = vec![QUOTA.to_owned()];
        while let Some(p) = stack.pop() {
            let Some(n) = self.get(&p) else {
                continue;
            };
            if n.child_count() == 0 {
                if p.ends_with(&suffix) {
                    if let Some(end) = p.find(&suffix) {
                        real_paths.push(p[QUOTA_LEN..end].to_owned());
                    }
                }
                continue;
            }
            stack.extend(n.children().map(|c| format!("{p}/{c}")));
        }
        for real in real_paths {
            self.update_quota_for_path(&real);
            self.quotas.add(&real);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::tree::tests::{create, delete, dump, run, set_data, S1};
    use oxkeeper_proto::txn::{CreateTxn, ErrorTxn};
    use oxkeeper_proto::{Acl, Txn, TxnHeader};

    fn text(t: &DataTree, path: &str) -> String {
        let n = t.get(path).unwrap_or_else(|| panic!("{path} missing"));
        String::from_utf8(n.data().as_deref().unwrap().to_vec()).unwrap()
    }

    /// A small log: `/a` (5 bytes) with a child, then zkCli's `setquota -N 4 /a`.
    fn log_with_quota() -> Vec<Txn> {
        vec![
            create("/a", b"12345", false, 1),
            create("/a/b", b"xy", false, 1),
            create("/zookeeper/quota/a", b"", false, 1),
            create(
                "/zookeeper/quota/a/zookeeper_limits",
                b"count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=4",
                false,
                1,
            ),
            create(
                "/zookeeper/quota/a/zookeeper_stats",
                b"count=0,bytes=0",
                false,
                2,
            ),
        ]
    }

    fn apply_all(t: &mut DataTree, log: &[Txn], first_zxid: i64) {
        for (i, txn) in log.iter().enumerate() {
            run(t, first_zxid + i as i64, S1, txn.clone());
        }
    }

    #[test]
    fn stats_text_round_trips_like_java() {
        let s = StatsTrack::parse(Some(b"count=5,bytes=20")).unwrap();
        assert_eq!((s.count(), s.bytes(), s.count_hard_limit()), (5, 20, -1));
        assert_eq!(s.to_string(), "count=5,bytes=20");
        let l = "count=-1,bytes=-1=;byteHardLimit=100;countHardLimit=4";
        let s = StatsTrack::parse(Some(l.as_bytes())).unwrap();
        assert_eq!((s.count_hard_limit(), s.byte_hard_limit()), (4, 100));
        assert_eq!(s.to_string(), l);
        // What ZooKeeper 3.8 answered for these: later duplicates win, extras sorted.
        let s = StatsTrack::parse(Some(b"count=1,bytes=2=;zeta=5;alpha=-3;count=7")).unwrap();
        assert_eq!(s.to_string(), "count=7,bytes=2=;alpha=-3;zeta=5");
        assert_eq!(
            StatsTrack::parse(Some(b"")).unwrap().to_string(),
            "count=-1,bytes=-1"
        );
        let s = StatsTrack::parse(Some(b"countHardLimit=3")).unwrap();
        assert_eq!(s.to_string(), "count=-1,bytes=-1=;countHardLimit=3");
        assert_eq!(StatsTrack::parse(Some(b"count==5;;,")).unwrap().count(), -1);
        assert_eq!(StatsTrack::parse(Some(b"count=+5")).unwrap().count(), 5);
        assert_eq!(StatsTrack::parse(Some(b"=5")).unwrap().get(""), 5);
        assert_eq!(
            StatsTrack::parse(Some(b",;")).unwrap(),
            StatsTrack::default()
        );
        for bad in [
            &b"garbage"[..],
            b"count=",
            b",count=1",
            b"=",
            b"count=x",
            b"count= 1",
            b"count=99999999999999999999",
        ] {
            assert_eq!(StatsTrack::parse(Some(bad)), Err(MalformedStats), "{bad:?}");
        }
        assert_eq!(StatsTrack::parse(None), Err(MalformedStats));
        assert_eq!(StatsTrack::usage(3, 9).to_string(), "count=3,bytes=9");
    }

    #[test]
    fn java_string_helpers() {
        assert_eq!(
            java_split("a,,b;", |c| c == ',' || c == ';', true),
            ["a", "b"]
        );
        assert_eq!(java_split(",,a", |c| c == ',', true), ["", "a"]);
        assert_eq!(java_split("a=b=", |c| c == '=', false), ["a", "b"]);
        assert_eq!(java_split("", |c| c == '=', false), [""]);
        assert!(java_split("=", |c| c == '=', false).is_empty());
        assert_eq!(java_substring_from("/zookeeper/quota/a", 16), Some("/a"));
        assert_eq!(java_substring_from("/zookeeper/quota", 16), Some(""));
        assert_eq!(java_substring_from("/zookeeper/x", 16), None);
        assert_eq!(java_substring_from("/zookeeper/quoté/b", 16), Some("/b"));
        assert_eq!(components("/a/ /b/\t"), ["a", "b"]);
    }

    #[test]
    fn trie_finds_the_longest_marked_prefix() {
        let mut q = QuotaTrie::default();
        q.add("/a");
        q.add("/a/b/c");
        assert_eq!(q.max_prefix("/a"), Some("/a".into()));
        assert_eq!(q.max_prefix("/a/x"), Some("/a".into()));
        assert_eq!(q.max_prefix("/a/b"), Some("/a".into()));
        assert_eq!(q.max_prefix("/a/b/c/d"), Some("/a/b/c".into()));
        assert_eq!(q.max_prefix("/ab"), None);
        assert_eq!(q.max_prefix("/"), None);
        assert_eq!(q.max_prefix("/a/ /b/c"), Some("/a/b/c".into()));
        q.delete("/a");
        assert_eq!(q.max_prefix("/a/x"), None);
        assert_eq!(q.max_prefix("/a/b/c"), Some("/a/b/c".into()));
        q.delete("/a/b/c");
        assert!(q
            .root
            .children
            .get("a")
            .unwrap()
            .children
            .get("b")
            .unwrap()
            .children
            .is_empty());
        q.delete("/nope/x");
        q.add("");
        assert_eq!(q.max_prefix("/z"), None);
    }

    #[test]
    fn stats_follow_creates_updates_and_deletes() {
        let mut t = DataTree::new();
        apply_all(&mut t, &log_with_quota(), 1);
        let sp = "/zookeeper/quota/a/zookeeper_stats";
        // Recomputed when the stats node appeared: /a and /a/b, 5 + 2 bytes.
        assert_eq!(text(&t, sp), "count=2,bytes=7");
        let created = t.get(sp).unwrap().persisted().to_owned();
        run(&mut t, 10, S1, create("/a/c", b"abc", false, 2));
        assert_eq!(text(&t, sp), "count=3,bytes=10");
        run(&mut t, 11, S1, set_data("/a/c", b"abcdefgh", 1));
        assert_eq!(text(&t, sp), "count=3,bytes=15");
        run(&mut t, 12, S1, create("/a/c/d", b"", false, 1));
        assert_eq!(text(&t, sp), "count=4,bytes=15");
        run(&mut t, 13, S1, delete("/a/c/d"));
        run(&mut t, 14, S1, delete("/a/c"));
        assert_eq!(text(&t, sp), "count=2,bytes=7");
        // Outside the quota: nothing changes.
        run(&mut t, 15, S1, create("/ab", b"zzz", false, 3));
        assert_eq!(text(&t, sp), "count=2,bytes=7");
        // The stats node is rewritten in place: same stat, no watch event, and (as in
        // ZooKeeper) the approximate data size keeps the length it was created with.
        let n = t.get(sp).unwrap();
        assert_eq!(n.persisted(), &created);
        assert_eq!(n.stat().data_length, 15);
        let r = run(&mut t, 16, S1, create("/a/e", b"", false, 3));
        assert!(r.triggers.iter().all(|tr| tr.path != sp));
        // Deleting /a itself counts too.
        run(&mut t, 17, S1, delete("/a/e"));
        run(&mut t, 18, S1, delete("/a/b"));
        run(&mut t, 19, S1, delete("/a"));
        assert_eq!(text(&t, sp), "count=0,bytes=0");
    }

    #[test]
    fn limits_node_marks_and_unmarks() {
        let mut t = DataTree::new();
        apply_all(&mut t, &log_with_quota(), 1);
        assert_eq!(t.quota_prefix("/a/b/c"), Some("/a".into()));
        run(
            &mut t,
            10,
            S1,
            delete("/zookeeper/quota/a/zookeeper_limits"),
        );
        assert_eq!(t.quota_prefix("/a/b"), None);
        let sp = "/zookeeper/quota/a/zookeeper_stats";
        run(&mut t, 11, S1, create("/a/c", b"abc", false, 2));
        assert_eq!(text(&t, sp), "count=2,bytes=7");
        // Limits without stats: marked, updates find no stats node and are dropped.
        run(&mut t, 12, S1, delete(sp));
        run(
            &mut t,
            13,
            S1,
            create("/zookeeper/quota/a/zookeeper_limits", b"", false, 3),
        );
        run(&mut t, 14, S1, create("/a/d", b"", false, 3));
        // A stats node created with any text gets the recomputed usage.
        run(&mut t, 15, S1, create(sp, b"junk", false, 4));
        assert_eq!(text(&t, sp), "count=4,bytes=10");
    }

    #[test]
    fn nested_quotas_update_only_the_innermost() {
        let mut t = DataTree::new();
        let log = vec![
            create("/q", b"1", false, 1),
            create("/q/x", b"22", false, 1),
            create("/q/x/y", b"333", false, 1),
            create("/zookeeper/quota/q", b"", false, 1),
            create("/zookeeper/quota/q/x", b"", false, 1),
            create(
                "/zookeeper/quota/q/x/zookeeper_limits",
                b"count=100",
                false,
                1,
            ),
            create("/zookeeper/quota/q/x/zookeeper_stats", b"", false, 2),
            create(
                "/zookeeper/quota/q/zookeeper_limits",
                b"count=100",
                false,
                2,
            ),
            create("/zookeeper/quota/q/zookeeper_stats", b"", false, 3),
            create("/q/x/z", b"4444", false, 2),
            create("/q/w", b"55555", false, 2),
            create("/q/x/ ", b"", false, 3),
            create("/q/x/ /k", b"12", false, 1),
        ];
        apply_all(&mut t, &log, 1);
        // Observed on ZooKeeper 3.8 with the same steps.
        assert_eq!(
            text(&t, "/zookeeper/quota/q/zookeeper_stats"),
            "count=4,bytes=11"
        );
        assert_eq!(
            text(&t, "/zookeeper/quota/q/x/zookeeper_stats"),
            "count=5,bytes=11"
        );
        run(
            &mut t,
            20,
            S1,
            delete("/zookeeper/quota/q/x/zookeeper_limits"),
        );
        run(&mut t, 21, S1, create("/q/x/zz", b"1", false, 4));
        assert_eq!(
            text(&t, "/zookeeper/quota/q/zookeeper_stats"),
            "count=5,bytes=12"
        );
        assert_eq!(
            text(&t, "/zookeeper/quota/q/x/zookeeper_stats"),
            "count=5,bytes=11"
        );
    }

    #[test]
    fn zookeeper_quirks() {
        let mut t = DataTree::new();
        apply_all(
            &mut t,
            &[
                create("/q", b"1", false, 1),
                create("/q/x", b"22", false, 1),
            ],
            1,
        );
        // A stats node directly under /zookeeper/quota gets the whole tree's usage (ZooKeeper's
        // "" is the root): /, /zookeeper, quota, config, /q, /q/x and itself.
        run(
            &mut t,
            3,
            S1,
            create("/zookeeper/quota/zookeeper_stats", b"z", false, 1),
        );
        assert_eq!(
            text(&t, "/zookeeper/quota/zookeeper_stats"),
            "count=7,bytes=4"
        );
        // A limits node there would make ZooKeeper throw; here it just marks nothing.
        run(
            &mut t,
            4,
            S1,
            create("/zookeeper/quota/zookeeper_limits", b"", false, 2),
        );
        assert_eq!(t.quota_prefix("/q"), None);
        run(&mut t, 5, S1, delete("/zookeeper/quota/zookeeper_limits"));
        // "/zookeeper/quotaq" starts with "/zookeeper/quota": its limits mark /q.
        run(&mut t, 6, S1, create("/zookeeper/quotaq", b"", false, 3));
        run(
            &mut t,
            7,
            S1,
            create("/zookeeper/quotaq/zookeeper_limits", b"", false, 1),
        );
        assert_eq!(t.quota_prefix("/q/x"), Some("/q".into()));
        // ... and /q's stats live at /zookeeper/quota/q/zookeeper_stats, which is missing.
        run(&mut t, 8, S1, create("/q/y", b"", false, 2));
        run(&mut t, 9, S1, delete("/zookeeper/quotaq/zookeeper_limits"));
        assert_eq!(t.quota_prefix("/q/x"), None);
        // The delete hook cuts 16 units from anything under "/zookeeper": "/zookeeper/abcdeq"
        // gives "q".
        run(&mut t, 10, S1, create("/zookeeper/quota/q", b"", false, 1));
        run(
            &mut t,
            11,
            S1,
            create("/zookeeper/quota/q/zookeeper_limits", b"", false, 1),
        );
        run(&mut t, 12, S1, create("/zookeeper/abcdeq", b"", false, 4));
        run(
            &mut t,
            13,
            S1,
            create("/zookeeper/abcdeq/zookeeper_limits", b"", false, 1),
        );
        assert_eq!(t.quota_prefix("/q/x"), Some("/q".into()));
        run(&mut t, 14, S1, delete("/zookeeper/abcdeq/zookeeper_limits"));
        assert_eq!(t.quota_prefix("/q/x"), None);
        // Too short to cut: ignored (ZooKeeper throws).
        run(&mut t, 15, S1, create("/zookeeper/z", b"", false, 5));
        run(
            &mut t,
            16,
            S1,
            create("/zookeeper/z/zookeeper_limits", b"", false, 1),
        );
        run(&mut t, 17, S1, delete("/zookeeper/z/zookeeper_limits"));
    }

    #[test]
    fn unparseable_stats_are_left_alone() {
        let mut t = DataTree::new();
        apply_all(&mut t, &log_with_quota(), 1);
        let sp = "/zookeeper/quota/a/zookeeper_stats";
        run(
            &mut t,
            10,
            S1,
            set_data(sp, b"count=1,bytes=2=;zeta=5;alpha=-3;count=7", 1),
        );
        run(&mut t, 11, S1, create("/a/k1", b"abcd", false, 2));
        assert_eq!(text(&t, sp), "count=8,bytes=6=;alpha=-3;zeta=5");
        assert_eq!(t.get(sp).unwrap().version(), 1);
        run(&mut t, 12, S1, set_data(sp, b"count==,bytes=x", 2));
        let r = run(&mut t, 13, S1, create("/a/k2", b"abcd", false, 3));
        assert_eq!(r.err, 0);
        assert_eq!(text(&t, sp), "count==,bytes=x");
    }

    #[test]
    fn replaying_the_log_gives_the_same_stats() {
        let mut log = log_with_quota();
        log.extend([
            create("/a/c", b"abc", false, 2),
            set_data("/a/c", b"abcdefgh", 1),
            create("/a/c/d", b"1", false, 1),
            delete("/a/c/d"),
            delete("/a/c"),
            create("/a/c", b"zz", false, 5),
            create("/a/c/e", b"", false, 2),
            set_data("/a/b", b"", 1),
            Txn::Multi(vec![
                create("/a/m", b"mm", false, 6),
                set_data("/a/m", b"m", 1),
            ]),
            Txn::Multi(vec![
                create("/a/n", b"n", false, 7),
                Txn::Error(ErrorTxn { err: -110 }),
            ]),
        ]);
        let mut t = DataTree::new();
        apply_all(&mut t, &log, 1);
        let sp = "/zookeeper/quota/a/zookeeper_stats";
        let expected = "count=5,bytes=8";
        assert_eq!(text(&t, sp), expected);
        // From every point of the log (fuzzy-snapshot recovery), and twice over.
        for k in 0..log.len() {
            let mut r = t.clone();
            apply_all(&mut r, &log[k..], 1 + k as i64);
            assert_eq!(text(&r, sp), expected, "replay from {k}");
            assert_eq!(dump(&r), dump(&t), "replay from {k}");
            apply_all(&mut r, &log[k..], 1 + k as i64);
            assert_eq!(text(&r, sp), expected, "second replay from {k}");
        }
        // A replayed delete of a node that has children again (/a/c with /a/c/e) takes the
        // subtree, and the stats lose every node of it.
        let mut r = t.clone();
        apply_all(&mut r, &log[5..10], 6);
        assert_eq!(text(&r, sp), "count=3,bytes=6");
    }

    #[test]
    fn snapshot_load_rebuilds_trie_and_recomputes_stats() {
        let mut t = DataTree::new();
        apply_all(&mut t, &log_with_quota(), 1);
        run(&mut t, 10, S1, create("/a/c", b"abc", false, 2));
        let sp = "/zookeeper/quota/a/zookeeper_stats";
        // Tamper with the stats, as a fuzzy snapshot could have caught them.
        run(&mut t, 11, S1, set_data(sp, b"count=99,bytes=99", 1));
        let mut copy = DataTree::new();
        t.visit_preorder(|p, n| {
            copy.load_node(p, n.data().clone(), n.acl(), *n.persisted())
                .unwrap();
        });
        copy.set_last_processed_zxid(11);
        assert_eq!(text(&copy, sp), "count=3,bytes=10");
        assert_eq!(copy.quota_prefix("/a/c"), Some("/a".into()));
        run(&mut copy, 12, S1, create("/a/d", b"", false, 3));
        assert_eq!(text(&copy, sp), "count=4,bytes=10");
        // Without set_last_processed_zxid, the first apply does the set-up.
        let mut copy = DataTree::new();
        t.visit_preorder(|p, n| {
            copy.load_node(p, n.data().clone(), n.acl(), *n.persisted())
                .unwrap();
        });
        run(&mut copy, 12, S1, create("/a/d", b"", false, 3));
        assert_eq!(text(&copy, sp), "count=4,bytes=10");
    }

    fn tree_with_limits(limits: &[u8]) -> DataTree {
        let mut t = DataTree::new();
        let mut log = log_with_quota();
        log[3] = create("/zookeeper/quota/a/zookeeper_limits", limits, false, 1);
        apply_all(&mut t, &log, 1);
        t
    }

    #[test]
    fn enforcement_refuses_only_hard_limits() {
        // Usage: count=2, bytes=7.
        let t = tree_with_limits(b"count=-1,bytes=-1=;byteHardLimit=10;countHardLimit=3");
        assert_eq!(t.check_quota("/a/c", 1, 3), Ok(()));
        assert_eq!(t.check_quota("/a/c", 1, 4), Err(ErrorCode::QuotaExceeded));
        assert_eq!(t.check_quota("/a/b", 0, 3), Ok(()));
        assert_eq!(t.check_quota("/a/b", 0, 4), Err(ErrorCode::QuotaExceeded));
        assert_eq!(t.check_quota("/a/b", 0, -7), Ok(()));
        assert_eq!(t.check_quota("/b", 1, 100), Ok(()));
        let t = tree_with_limits(b"count=-1,bytes=-1=;countHardLimit=2");
        assert_eq!(t.check_quota("/a/c", 1, 0), Err(ErrorCode::QuotaExceeded));
        // setData does not count nodes; no byte limit is set.
        assert_eq!(t.check_quota("/a/b", 0, 1000), Ok(()));
        // Soft limits only warn.
        let t = tree_with_limits(b"count=1,bytes=1");
        assert_eq!(t.check_quota("/a/c", 1, 100), Ok(()));
        // The hard limit wins over the soft one.
        let t = tree_with_limits(b"count=100,bytes=-1=;countHardLimit=2");
        assert_eq!(t.check_quota("/a/c", 1, 0), Err(ErrorCode::QuotaExceeded));
        let t = tree_with_limits(b"count=1,bytes=-1=;countHardLimit=100");
        assert_eq!(t.check_quota("/a/c", 1, 0), Ok(()));
        // A zero hard byte limit refuses any growth but lets an empty create through.
        let t = tree_with_limits(b"byteHardLimit=0");
        assert_eq!(t.check_quota("/a/c", 1, 0), Ok(()));
        assert_eq!(t.check_quota("/a/c", 1, 1), Err(ErrorCode::QuotaExceeded));
        // Unparseable limits: ZooKeeper answers MARSHALLINGERROR.
        let t = tree_with_limits(b"garbage");
        assert_eq!(
            t.check_quota("/a/c", 1, 0),
            Err(ErrorCode::MarshallingError)
        );
        assert_eq!(t.check_quota("/b", 1, 0), Ok(()));
        // Empty limits: nothing to check.
        let t = tree_with_limits(b"");
        assert_eq!(t.check_quota("/a/c", 1, 0), Ok(()));
    }

    #[test]
    fn enforcement_without_a_stats_node_lets_changes_through() {
        let mut t = DataTree::new();
        let mut log = log_with_quota();
        log.truncate(4);
        log[3] = create(
            "/zookeeper/quota/a/zookeeper_limits",
            b"countHardLimit=1",
            false,
            1,
        );
        apply_all(&mut t, &log, 1);
        assert_eq!(t.check_quota("/a/c", 1, 0), Ok(()));
        let mut t = DataTree::new();
        apply_all(&mut t, &log_with_quota(), 1);
        run(
            &mut t,
            10,
            S1,
            delete("/zookeeper/quota/a/zookeeper_limits"),
        );
        run(
            &mut t,
            11,
            S1,
            create(
                "/zookeeper/quota/a/zookeeper_limits",
                b"countHardLimit=1",
                false,
                3,
            ),
        );
        run(
            &mut t,
            12,
            S1,
            set_data("/zookeeper/quota/a/zookeeper_stats", b"junk", 1),
        );
        assert_eq!(
            t.check_quota("/a/c", 1, 0),
            Err(ErrorCode::MarshallingError)
        );
    }

    #[test]
    fn create2_ephemeral_and_null_data_count() {
        let mut t = DataTree::new();
        apply_all(&mut t, &log_with_quota(), 1);
        let txn = Txn::Create2(CreateTxn {
            path: "/a/n".into(),
            data: None,
            acl: Acl::open(),
            ephemeral: true,
            parent_cversion: 2,
        });
        t.apply(
            &TxnHeader {
                client_id: S1,
                cxid: 1,
                zxid: 10,
                time: 1,
                txn_type: txn.txn_type(),
            },
            &txn,
        );
        assert_eq!(
            text(&t, "/zookeeper/quota/a/zookeeper_stats"),
            "count=3,bytes=7"
        );
        // The session's end deletes it like any other node.
        let close = Txn::CloseSession(oxkeeper_proto::txn::CloseSessionTxn {
            paths_to_delete: vec!["/a/n".into()],
        });
        run(&mut t, 11, S1, close);
        assert_eq!(
            text(&t, "/zookeeper/quota/a/zookeeper_stats"),
            "count=2,bytes=7"
        );
    }
}
