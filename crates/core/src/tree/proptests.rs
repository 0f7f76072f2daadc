//! Random transaction logs, produced the way the request preprocessor would, applied to the
//! tree and to a plain map model; then replayed from a random point over the final tree,
//! which must not change it (fuzzy-snapshot recovery).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use bytes::Bytes;
use oxkeeper_proto::txn::*;
use oxkeeper_proto::{perms, Acl, ErrorCode, Txn, TxnHeader};
use proptest::prelude::*;
use proptest::sample::Index;

use super::path::{java_len, join};
use super::tests::dump;
use super::*;

fn acls() -> [Vec<Acl>; 4] {
    [
        Acl::open(),
        Acl::read_only(),
        vec![Acl::new(perms::ALL, "digest", "bob:x")],
        vec![
            Acl::new(perms::READ, "ip", "10.0.0.1"),
            Acl::new(perms::ALL, "auth", ""),
        ],
    ]
}

#[derive(Debug, Clone, PartialEq)]
struct MNode {
    data: Option<Vec<u8>>,
    version: i32,
    aversion: i32,
    cversion: i32,
    owner: i64,
    acl: usize,
}

type Model = BTreeMap<String, MNode>;

fn fresh_model() -> Model {
    let n = |aversion, acl| MNode {
        data: Some(vec![]),
        version: 0,
        aversion,
        cversion: 0,
        owner: 0,
        acl,
    };
    [
        ("/", n(0, 0)),
        ("/zookeeper", n(0, 0)),
        ("/zookeeper/quota", n(0, 0)),
        ("/zookeeper/config", n(-1, 1)),
    ]
    .into_iter()
    .map(|(p, n)| (p.to_owned(), n))
    .collect()
}

#[derive(Debug, Clone)]
enum Op {
    /// kind: 0 persistent, 1 ephemeral, 2 container, 3 TTL, 4 persistent sequential.
    Create {
        parent: Index,
        name: u8,
        data: Option<Vec<u8>>,
        kind: u8,
        session: i64,
        acl: usize,
        create2: bool,
    },
    Delete(Index),
    SetData(Index, Option<Vec<u8>>),
    SetAcl(Index, usize),
    Close {
        session: i64,
        listed: bool,
    },
    /// A replay-only failure: an op on a path that does not exist.
    Missing(u8),
    Multi(Vec<Op>),
}

fn data() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop::option::of(prop::collection::vec(any::<u8>(), 0..4))
}

fn simple_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<Index>(), 0u8..3, data(), 0u8..5, 1i64..4, 0usize..4, any::<bool>()).prop_map(
            |(parent, name, data, kind, session, acl, create2)| Op::Create { parent, name, data, kind, session, acl, create2 }
        ),
        2 => any::<Index>().prop_map(Op::Delete),
        2 => (any::<Index>(), data()).prop_map(|(i, d)| Op::SetData(i, d)),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => simple_op(),
        1 => (any::<Index>(), 0usize..4).prop_map(|(i, a)| Op::SetAcl(i, a)),
        1 => (1i64..4, any::<bool>()).prop_map(|(session, listed)| Op::Close { session, listed }),
        1 => (0u8..3).prop_map(Op::Missing),
        2 => prop::collection::vec(simple_op(), 1..4).prop_map(Op::Multi),
    ]
}

fn error(code: ErrorCode) -> Txn {
    Txn::Error(ErrorTxn { err: code.code() })
}

/// Prep emulation: the txn for `op` against `m` (updated as the txn will update the tree).
fn to_txn(op: &Op, m: &mut Model) -> (Txn, i64) {
    let pick = |i: &Index, m: &Model| m.keys().nth(i.index(m.len())).cloned().unwrap();
    match op {
        Op::Create {
            parent,
            name,
            data,
            kind,
            session,
            acl,
            create2,
        } => {
            let parent = pick(parent, m);
            let pn = m[&parent].clone();
            if pn.owner > 0 {
                return (error(ErrorCode::NoChildrenForEphemerals), 0);
            }
            if parent == "/zookeeper/config" {
                return (error(ErrorCode::NoAuth), 0);
            }
            let mut path = join(&parent, ["a", "b", "c"][*name as usize]);
            if *kind == 4 {
                path.push_str(&format!("{:010}", pn.cversion));
            }
            if m.contains_key(&path) {
                return (error(ErrorCode::NodeExists), 0);
            }
            let pcv = pn.cversion + 1;
            m.get_mut(&parent).unwrap().cversion = pcv;
            let (d, a) = (data.clone().map(Bytes::from), acls()[*acl].clone());
            let (txn, owner) = match kind {
                2 => (
                    Txn::CreateContainer(CreateContainerTxn {
                        path: path.clone(),
                        data: d,
                        acl: a,
                        parent_cversion: pcv,
                    }),
                    i64::MIN,
                ),
                3 => (
                    Txn::CreateTtl(CreateTtlTxn {
                        path: path.clone(),
                        data: d,
                        acl: a,
                        parent_cversion: pcv,
                        ttl: 1000,
                    }),
                    ttl_owner(1000).unwrap(),
                ),
                _ => {
                    let c = CreateTxn {
                        path: path.clone(),
                        data: d,
                        acl: a,
                        ephemeral: *kind == 1,
                        parent_cversion: pcv,
                    };
                    let owner = if *kind == 1 { *session } else { 0 };
                    (
                        if *create2 {
                            Txn::Create2(c)
                        } else {
                            Txn::Create(c)
                        },
                        owner,
                    )
                }
            };
            let node = MNode {
                data: data.clone(),
                version: 0,
                aversion: 0,
                cversion: 0,
                owner,
                acl: *acl,
            };
            m.insert(path, node);
            (txn, *session)
        }
        Op::Delete(i) => {
            let path = pick(i, m);
            if is_reserved(&path) {
                return (error(ErrorCode::BadArguments), 0);
            }
            if m.keys().any(|k| parent_of(k) == Some(path.as_str())) {
                return (error(ErrorCode::NotEmpty), 0);
            }
            let n = m.remove(&path).unwrap();
            let d = DeleteTxn { path };
            (
                if n.owner == i64::MIN {
                    Txn::DeleteContainer(d)
                } else {
                    Txn::Delete(d)
                },
                0,
            )
        }
        Op::SetData(i, data) => {
            let path = pick(i, m);
            let n = m.get_mut(&path).unwrap();
            n.version += 1;
            n.data = data.clone();
            (
                Txn::SetData(SetDataTxn {
                    path,
                    data: data.clone().map(Bytes::from),
                    version: n.version,
                }),
                0,
            )
        }
        Op::SetAcl(i, acl) => {
            let path = pick(i, m);
            let n = m.get_mut(&path).unwrap();
            n.aversion += 1;
            n.acl = *acl;
            (
                Txn::SetAcl(SetAclTxn {
                    path,
                    acl: acls()[*acl].clone(),
                    version: n.aversion,
                }),
                0,
            )
        }
        Op::Close { session, listed } => {
            let owned: Vec<String> = m
                .iter()
                .filter(|(_, n)| n.owner == *session)
                .map(|(p, _)| p.clone())
                .collect();
            for p in &owned {
                m.remove(p);
            }
            let paths_to_delete = if *listed { owned } else { vec![] };
            (
                Txn::CloseSession(CloseSessionTxn { paths_to_delete }),
                *session,
            )
        }
        Op::Missing(k) => {
            let path = "/missing/x".to_owned();
            let txn = match k {
                0 => Txn::Delete(DeleteTxn { path }),
                1 => Txn::SetData(SetDataTxn {
                    path,
                    data: None,
                    version: 3,
                }),
                _ => Txn::SetAcl(SetAclTxn {
                    path,
                    acl: Acl::open(),
                    version: 3,
                }),
            };
            (txn, 0)
        }
        Op::Multi(ops) => {
            // Every op of a multi runs as the one requesting session.
            let client = 1;
            let mut scratch = m.clone();
            let mut txns = Vec::new();
            for op in ops {
                let mut op = op.clone();
                if let Op::Create { session, .. } = &mut op {
                    *session = client;
                }
                let (t, _) = to_txn(&op, &mut scratch);
                let failed = matches!(t, Txn::Error(_));
                txns.push(t);
                if failed {
                    txns.resize(ops.len(), error(ErrorCode::RuntimeInconsistency));
                    return (Txn::Multi(txns), client);
                }
            }
            *m = scratch;
            (Txn::Multi(txns), client)
        }
    }
}

fn assert_matches_model(t: &DataTree, m: &Model) {
    assert_eq!(t.node_count(), m.len());
    for (p, n) in m {
        let node = t.get(p).unwrap_or_else(|| panic!("{p} missing"));
        assert_eq!(node.data().as_deref(), n.data.as_deref(), "{p}");
        assert_eq!(
            (node.version(), node.aversion(), node.cversion()),
            (n.version, n.aversion, n.cversion),
            "{p}"
        );
        assert_eq!(node.ephemeral_owner(), n.owner, "{p}");
        assert_eq!(node.acl(), &acls()[n.acl][..], "{p}");
        let kids: Vec<String> = m
            .keys()
            .filter(|k| parent_of(k) == Some(p.as_str()))
            .map(|k| last_component(k).to_owned())
            .collect();
        assert_eq!(t.children(p), kids, "{p}");
    }
}

fn assert_invariants(t: &DataTree) {
    let (mut size, mut eph, mut cont, mut ttl, mut lists) =
        (0, BTreeMap::new(), vec![], vec![], vec![]);
    t.visit_preorder(|p, n| {
        size += java_len(p) + n.data_len() as i64;
        match n.owner_kind() {
            OwnerKind::Ephemeral(s) => eph.entry(s).or_insert_with(Vec::new).push(p.to_owned()),
            OwnerKind::Container => cont.push(p.to_owned()),
            OwnerKind::Ttl(_) => ttl.push(p.to_owned()),
            OwnerKind::Persistent => {}
        }
        if !lists.contains(&n.acl().to_vec()) {
            lists.push(n.acl().to_vec());
        }
    });
    assert_eq!(t.approximate_data_size(), size);
    for v in eph.values_mut() {
        v.sort();
    }
    assert_eq!(
        t.ephemeral_sessions()
            .map(|s| (s, t.ephemerals(s)))
            .collect::<BTreeMap<_, _>>(),
        eph
    );
    cont.sort();
    ttl.sort();
    assert_eq!(t.containers().map(str::to_owned).collect::<Vec<_>>(), cont);
    assert_eq!(t.ttl_nodes().map(str::to_owned).collect::<Vec<_>>(), ttl);
    assert_eq!(t.acl_cache_size(), lists.len());
    assert_eq!(t.acl_lists().map(|(_, c)| c).sum::<usize>(), t.node_count());
    assert_eq!(t.count_descendants("/"), t.node_count() - 1);
    let per_child: usize = t
        .children("/")
        .iter()
        .map(|c| t.count_descendants(&join("/", c)) + 1)
        .sum();
    assert_eq!(per_child, t.node_count() - 1);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_logs_match_the_model_and_replay_idempotently(ops in prop::collection::vec(op(), 1..60), from in any::<Index>()) {
        let mut t = DataTree::new();
        let mut m = fresh_model();
        let mut log: Vec<(TxnHeader, Txn, bool)> = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            let (txn, client) = to_txn(op, &mut m);
            let header = TxnHeader { client_id: client, cxid: i as i32, zxid: i as i64 + 1, time: 77 + i as i64, txn_type: txn.txn_type() };
            let r = t.apply(&header, &txn);
            let expected = match &txn {
                Txn::Error(e) => e.err,
                Txn::Multi(ops) => ops.iter().find_map(|o| match o { Txn::Error(e) => Some(e.err), _ => None }).unwrap_or(0),
                Txn::Delete(d) | Txn::DeleteContainer(d) if d.path == "/missing/x" => ErrorCode::NoNode.code(),
                Txn::SetData(d) if d.path == "/missing/x" => ErrorCode::NoNode.code(),
                Txn::SetAcl(d) if d.path == "/missing/x" => ErrorCode::NoNode.code(),
                _ => 0,
            };
            prop_assert_eq!(r.err, expected, "{:?}", txn);
            prop_assert_eq!(t.last_processed_zxid(), header.zxid);
            assert_matches_model(&t, &m);
            // A close without its path list deletes "whatever the session owns now", which
            // is not replayable over a later state (ZOOKEEPER-3145); 3.6+ logs list them.
            let replayable = !matches!(&txn, Txn::CloseSession(c) if c.paths_to_delete.is_empty() && !r.triggers.is_empty());
            log.push((header, txn, replayable));
        }
        assert_invariants(&t);

        let k = from.index(log.len());
        if log[k..].iter().all(|(_, _, ok)| *ok) {
            let mut replayed = t.clone();
            for (h, txn, _) in &log[k..] {
                replayed.apply(h, txn);
            }
            prop_assert_eq!(dump(&replayed), dump(&t));
        }
    }
}
