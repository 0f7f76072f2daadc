//! How long the core pauses to snapshot a large tree: serializing it in place, cloning
//! it so that serialization can run elsewhere, or one slice of a `SnapshotBuilder` walk
//! (the pause the server sees when it interleaves the walk with requests).

use bytes::Bytes;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use oxkeeper_core::tree::DataTree;
use oxkeeper_proto::txn::CreateTxn;
use oxkeeper_proto::{Acl, Txn, TxnHeader};
use oxkeeper_storage::SnapshotBuilder;

/// Nodes per `SnapshotBuilder::step` in the slice benchmark.
const SLICE: usize = 10_000;

/// A tree of `n` nodes, 1000 children per parent, 100 bytes of data each.
fn tree(n: usize) -> DataTree {
    let mut t = DataTree::new();
    let mut zxid = 0;
    let mut apply = |t: &mut DataTree, path: String| {
        zxid += 1;
        let header = TxnHeader {
            client_id: 1,
            cxid: 0,
            zxid,
            time: 0,
            txn_type: 1,
        };
        let txn = Txn::Create(CreateTxn {
            path,
            data: Some(Bytes::from_static(&[7u8; 100])),
            acl: Acl::open(),
            ephemeral: false,
            parent_cversion: -1,
        });
        t.apply(&header, &txn);
    };
    for p in 0..n.div_ceil(1000) {
        apply(&mut t, format!("/p{p}"));
        for c in 0..1000.min(n - p * 1000) {
            apply(&mut t, format!("/p{p}/c{c}"));
        }
    }
    t
}

fn snapshot_pause(c: &mut Criterion) {
    let mut g = c.benchmark_group("snapshot_pause");
    g.sample_size(10);
    for n in [100_000usize, 1_000_000] {
        let t = tree(n);
        g.bench_with_input(BenchmarkId::new("serialize", n), &t, |b, t| {
            b.iter(|| oxkeeper_storage::serialize_snapshot(t, &[]))
        });
        g.bench_with_input(BenchmarkId::new("clone", n), &t, |b, t| {
            b.iter(|| t.clone())
        });
        // One step of SLICE nodes, wherever the walk stands: consecutive iterations
        // continue one walk (writing into its growing buffer, as the server's would);
        // a finished walk is replaced by a new one outside the timing.
        g.bench_with_input(BenchmarkId::new("step_10000", n), &t, |b, t| {
            let mut walk = SnapshotBuilder::start(t, &[]);
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    if walk.is_done() {
                        walk = SnapshotBuilder::start(t, &[]);
                    }
                    let at = Instant::now();
                    criterion::black_box(walk.step(t, SLICE));
                    spent += at.elapsed();
                }
                spent
            })
        });
    }
    g.finish();
}

criterion_group!(benches, snapshot_pause);
criterion_main!(benches);
