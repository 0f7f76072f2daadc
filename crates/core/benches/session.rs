//! Cost per touch and per expired session as the number of tracked sessions grows by
//! powers of ten; flat numbers across sizes are the point (touch must be O(1)).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use oxkeeper_core::session::{SessionConfig, SessionId, SessionTracker};

const TICK_MS: u32 = 2000;
const TIMEOUT_MS: u32 = 10_000;
const SIZES: [usize; 4] = [1_000, 10_000, 100_000, 1_000_000];

fn populated(n: usize) -> (SessionTracker, Vec<SessionId>) {
    let mut tracker = SessionTracker::new(SessionConfig::new(TICK_MS), 0, 0);
    let ids = (0..n)
        .map(|_| tracker.create_session(TIMEOUT_MS, 0))
        .collect();
    (tracker, ids)
}

fn touch(c: &mut Criterion) {
    let mut group = c.benchmark_group("session/touch");
    for n in SIZES {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            let (mut tracker, ids) = populated(n);
            let mut now = 0u64;
            b.iter(|| {
                // A tick later, so every touch really moves its session to a new bucket.
                now += u64::from(TICK_MS);
                for &id in &ids {
                    let _ = black_box(tracker.touch(id, now));
                }
                // Drops the bucket just emptied, as the server's timer would.
                black_box(tracker.poll_expired(now));
            });
        });
    }
    group.finish();
}

fn expire(c: &mut Criterion) {
    let mut group = c.benchmark_group("session/expire");
    for n in SIZES {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            let deadline = u64::from(TIMEOUT_MS + TICK_MS);
            b.iter_batched(
                || {
                    let (mut tracker, _) = populated(n);
                    // The server calls at least once per tick; a longer silence would be
                    // taken as a stall and postpone the deadline.
                    for now in (0..deadline).step_by(TICK_MS as usize) {
                        tracker.tick(now);
                    }
                    tracker
                },
                |mut tracker| {
                    // The whole cycle: handed out as due, then removed once closed.
                    let expired = tracker.poll_expired(deadline);
                    assert_eq!(expired.len(), n);
                    for id in expired {
                        tracker.remove(id);
                    }
                    tracker
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = touch, expire
}
criterion_main!(benches);
