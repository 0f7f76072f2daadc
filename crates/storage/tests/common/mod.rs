//! Shared test helpers: txn builders, a tree dump for equality checks, and a small
//! "prep processor" that turns random choices into the transactions a server would log.

#![allow(dead_code, clippy::unwrap_used)]
// `u32::is_multiple_of` is newer than the workspace's rust-version (1.80).
#![allow(unknown_lints, clippy::manual_is_multiple_of)]

use std::collections::BTreeMap;

use bytes::Bytes;
use oxkeeper_core::tree::{ttl_owner, DataTree};
use oxkeeper_proto::codes::op;
use oxkeeper_proto::txn::*;
use oxkeeper_proto::{perms, Acl, ErrorCode, Txn, TxnHeader};

pub fn hdr(zxid: i64, client: i64, txn: &Txn) -> TxnHeader {
    TxnHeader {
        client_id: client,
        cxid: (zxid & 0xffff) as i32,
        zxid,
        time: 1_700_000_000_000 + zxid,
        txn_type: txn.txn_type(),
    }
}

pub fn create(path: &str, data: &[u8], ephemeral: bool, parent_cversion: i32) -> Txn {
    Txn::Create(CreateTxn {
        path: path.into(),
        data: Some(Bytes::copy_from_slice(data)),
        acl: Acl::open(),
        ephemeral,
        parent_cversion,
    })
}

pub fn digest_acl() -> Vec<Acl> {
    vec![
        Acl::new(perms::ALL, "digest", "user:hash="),
        Acl::new(perms::READ, "world", "anyone"),
    ]
}

/// One of every transaction type (and both closeSession shapes).
pub fn every_txn_type() -> Vec<(i64, Txn)> {
    let s = 0x0100_0000_0000_0001;
    vec![
        (
            s,
            Txn::CreateSession(CreateSessionTxn { timeout_ms: 30_000 }),
        ),
        (s, create("/a", b"hello", false, 1)),
        (
            s,
            Txn::Create2(CreateTxn {
                path: "/a/b".into(),
                data: None,
                acl: digest_acl(),
                ephemeral: true,
                parent_cversion: 1,
            }),
        ),
        (
            s,
            Txn::CreateContainer(CreateContainerTxn {
                path: "/c".into(),
                data: Some(Bytes::new()),
                acl: Acl::read_only(),
                parent_cversion: 3,
            }),
        ),
        (
            s,
            Txn::CreateTtl(CreateTtlTxn {
                path: "/t".into(),
                data: Some(Bytes::from_static(b"\x00\xff")),
                acl: Acl::open(),
                parent_cversion: 4,
                ttl: 5000,
            }),
        ),
        (
            s,
            Txn::SetData(SetDataTxn {
                path: "/a".into(),
                data: Some(Bytes::from_static(b"x")),
                version: 1,
            }),
        ),
        (
            s,
            Txn::SetAcl(SetAclTxn {
                path: "/a".into(),
                acl: digest_acl(),
                version: 1,
            }),
        ),
        (
            s,
            Txn::Error(ErrorTxn {
                err: ErrorCode::NoNode.code(),
            }),
        ),
        (
            s,
            Txn::Multi(vec![
                create("/m", b"", false, 5),
                Txn::Check(CheckVersionTxn {
                    path: "/m".into(),
                    version: 0,
                }),
                Txn::SetData(SetDataTxn {
                    path: "/m".into(),
                    data: None,
                    version: 1,
                }),
                Txn::Delete(DeleteTxn { path: "/m".into() }),
            ]),
        ),
        (
            s,
            Txn::Multi(vec![
                create("/never", b"", false, 6),
                Txn::Error(ErrorTxn {
                    err: ErrorCode::NoNode.code(),
                }),
                Txn::Error(ErrorTxn {
                    err: ErrorCode::RuntimeInconsistency.code(),
                }),
            ]),
        ),
        (s, Txn::DeleteContainer(DeleteTxn { path: "/c".into() })),
        (s, Txn::Delete(DeleteTxn { path: "/t".into() })),
        (
            s,
            Txn::CloseSession(CloseSessionTxn {
                paths_to_delete: vec!["/a/b".into()],
            }),
        ),
        (s + 1, Txn::CloseSession(CloseSessionTxn::default())),
    ]
}

/// Everything observable about a tree, for equality checks.
pub fn dump(t: &DataTree) -> Vec<String> {
    t.observable_state()
}

/// Asserts two trees are equal node by node, with a readable first difference.
pub fn assert_same_tree(a: &DataTree, b: &DataTree) {
    let (da, db) = (dump(a), dump(b));
    for (x, y) in da.iter().zip(db.iter()) {
        assert_eq!(x, y);
    }
    assert_eq!(da.len(), db.len());
}

/// A server-like source of transactions: each random choice becomes a transaction that
/// is valid against the live tree (as the request preprocessor would make it), or an
/// error transaction.
pub struct Prep {
    pub tree: DataTree,
    pub sessions: BTreeMap<i64, i32>,
    pub next_zxid: i64,
    next_session: i64,
}

impl Default for Prep {
    fn default() -> Self {
        Prep {
            tree: DataTree::new(),
            sessions: BTreeMap::new(),
            next_zxid: 1,
            next_session: 0x0100_0000_0000_0000,
        }
    }
}

pub const NAMES: [&str; 8] = ["a", "b", "c", "d", "e", "f", "g", "h"];

impl Prep {
    /// All node paths except the reserved ones.
    fn paths(&self) -> Vec<String> {
        let mut v = Vec::new();
        self.tree.visit_preorder(|p, _| {
            if !p.starts_with("/zookeeper") && p != "/" {
                v.push(p.to_owned())
            }
        });
        v
    }

    fn pick<T>(v: &[T], r: u32) -> Option<&T> {
        if v.is_empty() {
            None
        } else {
            Some(&v[r as usize % v.len()])
        }
    }

    /// Creates a child of an existing node (or root) on a scratch tree.
    fn make_create(
        t: &DataTree,
        parents: &[String],
        r: u32,
        owner: Option<i64>,
        kind: u8,
    ) -> Option<Txn> {
        let parent = Self::pick(parents, r)
            .cloned()
            .unwrap_or_else(|| "/".into());
        let pnode = t.get(&parent)?;
        if pnode.is_ephemeral() {
            return None;
        }
        let seq = r % 3 == 0;
        let name = NAMES[(r / 7) as usize % NAMES.len()];
        let cv = pnode.cversion() + 1;
        let base = if parent == "/" {
            format!("/{name}")
        } else {
            format!("{parent}/{name}")
        };
        let path = if seq {
            format!("{base}{:010}", pnode.cversion())
        } else {
            base
        };
        if t.exists(&path) {
            return None;
        }
        let data = Some(Bytes::from(format!("d{r}").into_bytes()));
        let acl = if r % 5 == 0 {
            digest_acl()
        } else {
            Acl::open()
        };
        Some(match kind % 4 {
            1 => Txn::CreateContainer(CreateContainerTxn {
                path,
                data,
                acl,
                parent_cversion: cv,
            }),
            2 => Txn::CreateTtl(CreateTtlTxn {
                path,
                data,
                acl,
                parent_cversion: cv,
                ttl: 1000 + i64::from(r % 100),
            }),
            3 => Txn::Create2(CreateTxn {
                path,
                data,
                acl,
                ephemeral: owner.is_some(),
                parent_cversion: cv,
            }),
            _ => Txn::Create(CreateTxn {
                path,
                data,
                acl,
                ephemeral: owner.is_some(),
                parent_cversion: cv,
            }),
        })
    }

    /// One op valid on `t` (for multis, on a scratch copy), or None.
    fn make_op(t: &DataTree, choice: u8, r: u32, session: Option<i64>) -> Option<Txn> {
        let mut paths = Vec::new();
        t.visit_preorder(|p, _| {
            if !p.starts_with("/zookeeper") {
                paths.push(p.to_owned())
            }
        });
        let nonroot: Vec<String> = paths.iter().filter(|p| *p != "/").cloned().collect();
        match choice % 8 {
            0..=3 => {
                let eph = if choice % 8 == 3 { session } else { None };
                let kind = if eph.is_some() { 0 } else { (r % 7) as u8 };
                Self::make_create(t, &paths, r, eph, kind)
            }
            4 => {
                let leaves: Vec<String> = nonroot
                    .iter()
                    .filter(|p| t.child_count(p) == Some(0))
                    .cloned()
                    .collect();
                let p = Self::pick(&leaves, r)?.clone();
                Some(Txn::Delete(DeleteTxn { path: p }))
            }
            5 | 6 => {
                let p = Self::pick(&nonroot, r)?.clone();
                let v = t.get(&p)?.version() + 1;
                let data = if r % 4 == 0 {
                    None
                } else {
                    Some(Bytes::from(vec![b'x'; (r % 40) as usize]))
                };
                Some(Txn::SetData(SetDataTxn {
                    path: p,
                    data,
                    version: v,
                }))
            }
            _ => {
                let p = Self::pick(&nonroot, r)?.clone();
                Some(Txn::Check(CheckVersionTxn {
                    version: t.get(&p)?.version(),
                    path: p,
                }))
            }
        }
    }

    /// Turns a random choice into the next transaction and applies it to the live tree.
    pub fn step(&mut self, choice: u8, r: u32) -> (TxnHeader, Txn) {
        let sessions: Vec<i64> = self.sessions.keys().copied().collect();
        let session = Self::pick(&sessions, r).copied();
        let client = session.unwrap_or(0x0100_0000_0000_0fff);
        let txn = match choice % 16 {
            0 => {
                self.next_session += 1;
                Some((
                    self.next_session,
                    Txn::CreateSession(CreateSessionTxn {
                        timeout_ms: 4000 + (r % 1000) as i32,
                    }),
                ))
            }
            1 => session.map(|s| {
                (
                    s,
                    Txn::CloseSession(CloseSessionTxn {
                        paths_to_delete: self.tree.ephemerals(s),
                    }),
                )
            }),
            2 => {
                let p = Self::pick(&self.paths(), r).cloned();
                p.and_then(|p| {
                    let av = self.tree.get(&p)?.aversion() + 1;
                    let acl = if r % 2 == 0 {
                        digest_acl()
                    } else {
                        Acl::open()
                    };
                    Some((
                        client,
                        Txn::SetAcl(SetAclTxn {
                            path: p,
                            acl,
                            version: av,
                        }),
                    ))
                })
            }
            3 => Some((
                client,
                Txn::Error(ErrorTxn {
                    err: ErrorCode::NoNode.code(),
                }),
            )),
            4 | 5 => {
                // A multi of up to 4 ops, each valid after the previous ones.
                let mut scratch = self.tree.clone();
                let mut ops = Vec::new();
                for i in 0..(1 + r % 4) {
                    let rr = r.wrapping_mul(2_654_435_761).wrapping_add(i * 40_503);
                    if let Some(op) = Self::make_op(&scratch, (rr % 8) as u8, rr >> 3, session) {
                        let h = hdr(self.next_zxid, client, &op);
                        scratch.apply(&h, &op);
                        ops.push(op);
                    }
                }
                if choice % 16 == 5 && !ops.is_empty() {
                    // A failed multi: the failing op and the ones after it become errors.
                    let at = (r as usize) % ops.len();
                    ops[at] = Txn::Error(ErrorTxn {
                        err: ErrorCode::BadVersion.code(),
                    });
                    for op in ops.iter_mut().skip(at + 1) {
                        *op = Txn::Error(ErrorTxn {
                            err: ErrorCode::RuntimeInconsistency.code(),
                        });
                    }
                }
                (!ops.is_empty()).then(|| (client, Txn::Multi(ops)))
            }
            6 => {
                let p = self.tree.containers().next().map(str::to_owned);
                p.filter(|p| self.tree.child_count(p) == Some(0))
                    .map(|p| (0, Txn::DeleteContainer(DeleteTxn { path: p })))
            }
            // ZooKeeper rejects a stand-alone check; it only appears inside a multi.
            c => Self::make_op(&self.tree, c, r, session)
                .filter(|t| !matches!(t, Txn::Check(_)))
                .map(|t| (client, t)),
        };
        let (client, txn) = txn.unwrap_or((
            client,
            Txn::Error(ErrorTxn {
                err: ErrorCode::NoNode.code(),
            }),
        ));
        let header = hdr(self.next_zxid, client, &txn);
        self.next_zxid += 1;
        match &txn {
            Txn::CreateSession(t) => {
                self.sessions.insert(client, t.timeout_ms);
            }
            Txn::CloseSession(_) => {
                self.sessions.remove(&client);
            }
            _ => {}
        }
        self.tree.apply(&header, &txn);
        (header, txn)
    }

    pub fn session_table(&self) -> Vec<(i64, i32)> {
        self.sessions.iter().map(|(k, v)| (*k, *v)).collect()
    }
}

pub fn ttl_of(ms: i64) -> i64 {
    ttl_owner(ms).unwrap()
}

pub fn is_create(t: i32) -> bool {
    matches!(t, op::CREATE | op::CREATE2)
}
