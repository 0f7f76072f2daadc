//! `read`, `write` and `mixed`: C closed-loop clients with D requests in flight each.

use std::io::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use oxkeeper_proto::codes::op;
use oxkeeper_proto::Reader;
use serde_json::json;

use super::conn::{body, Conn, Event};
use super::stats::{cpu_between, Hist, Phase, Progress, Rng};
use super::{create_node, delete_tree, pipelined, Ctx, Errors, Outcome, ReadOp, Scenario, WriteOp};

/// Tag bit of requests issued while measuring.
const MEASURED: u32 = 1 << 31;

#[derive(Clone, Copy)]
enum Mode {
    Read(ReadOp),
    Set,
    /// Create/delete cycles with these create flags.
    Create(i32),
    Mixed(f64, ReadOp),
}

struct Plan {
    mode: Mode,
    parent: String,
    paths: Vec<Bytes>,
    data: Bytes,
}

#[derive(Default)]
struct DriverOut {
    all: Hist,
    reads: Hist,
    writes: Hist,
    errors: Errors,
    last_done: Option<Instant>,
    timeout_ms: Option<i32>,
}

/// A create/delete cycle's state: the node it created (or will create next).
struct Slot {
    path: Vec<u8>,
    created: bool,
    n: u64,
}

pub async fn run(ctx: &Arc<Ctx>) -> anyhow::Result<Outcome> {
    let a = &ctx.args;
    let mode = match a.scenario {
        Scenario::Read => Mode::Read(a.read_op),
        Scenario::Mixed => Mode::Mixed(a.read_share, a.read_op),
        _ => match a.write_op {
            WriteOp::Set => Mode::Set,
            WriteOp::Persistent => Mode::Create(0),
            WriteOp::Ephemeral => Mode::Create(1),
            WriteOp::Sequential => Mode::Create(2),
        },
    };
    let parent = format!("/oxbench-{}", ctx.tag);
    let nodes = if matches!(mode, Mode::Create(_)) {
        0
    } else {
        a.nodes
    };
    let paths: Vec<Bytes> = (0..nodes)
        .map(|i| Bytes::from(format!("{parent}/n{i}")))
        .collect();
    {
        let mut setup = ctx.setup_conn().await?;
        create_node(&mut setup, &parent, b"").await?;
        let data = ctx.data.clone();
        let failed = pipelined(&mut setup, paths.len(), 256, |c, i| {
            c.queue(op::CREATE, i, Instant::now(), |w| {
                body::create(w, &paths[i as usize], &data, 0)
            });
        })
        .await?;
        if let Some((_, err)) = failed.first() {
            anyhow::bail!(
                "cannot prepare {} nodes under {parent}: error {err}",
                failed.len()
            );
        }
        let _ = setup.close().await;
    }
    let plan = Arc::new(Plan {
        mode,
        parent: parent.clone(),
        paths,
        data: ctx.data.clone(),
    });

    let phase = Phase::new(a.ops, a.warmup > 0.0);
    let clients = a.clients.max(1);
    // Everyone connected, then everyone starts together.
    let connected = Arc::new(tokio::sync::Barrier::new(clients + 1));
    let go = Arc::new(tokio::sync::Barrier::new(clients + 1));
    let mut set = tokio::task::JoinSet::new();
    for c in 0..clients {
        let (ctx, plan, phase) = (ctx.clone(), plan.clone(), phase.clone());
        let (connected, go) = (connected.clone(), go.clone());
        set.spawn(async move {
            let conn = ctx.connect(64 << 10).await;
            connected.wait().await;
            go.wait().await;
            match conn {
                Ok(conn) => drive(conn, &ctx, &plan, &phase, c).await,
                Err(e) => {
                    let mut out = DriverOut::default();
                    out.errors.add(format!("connect: {e}"));
                    out
                }
            }
        });
    }
    connected.wait().await;
    let p2 = phase.clone();
    let progress = Progress::start(a.scenario.name(), a.ops, move || {
        p2.done.load(Ordering::Relaxed)
    });
    if a.warmup <= 0.0 {
        // Everyone is connected and waiting: the clock starts now, not before the connects.
        phase.start_measuring();
    }
    go.wait().await;
    phase.warm_up(a.warmup).await;
    let cpu0 = ctx.cpu();
    let rss0 = ctx.rss_kib();
    phase.measure_for(a.duration).await;
    let mut out = Outcome::new();
    let (mut reads, mut writes) = (Hist::default(), Hist::default());
    let mut last = None;
    while let Some(r) = set.join_next().await {
        let d = match r {
            Ok(d) => d,
            Err(e) => {
                out.errors.add(format!("client task failed: {e}"));
                continue;
            }
        };
        out.latency.add(&d.all);
        reads.add(&d.reads);
        writes.add(&d.writes);
        out.errors.merge(d.errors);
        last = last.max(d.last_done);
        out.negotiated_timeout_ms = out.negotiated_timeout_ms.or(d.timeout_ms);
    }
    let cpu1 = ctx.cpu();
    progress.finish();
    out.rss_before_kib = rss0;
    out.rss_after_kib = ctx.rss_kib();
    out.server_cpu = cpu_between(cpu0, cpu1);
    out.ops = out.latency.count();
    if let (Some(start), Some(end)) = (phase.measure_start(), last) {
        out.elapsed = end.saturating_duration_since(start);
    }
    let d = &mut out.detail;
    d.insert("nodes".into(), json!(plan.paths.len()));
    match mode {
        Mode::Read(r) => {
            d.insert("read_op".into(), json!(super::value_name(r)));
        }
        Mode::Set | Mode::Create(_) => {
            d.insert("write_op".into(), json!(super::value_name(a.write_op)));
        }
        Mode::Mixed(share, r) => {
            d.insert("read_op".into(), json!(super::value_name(r)));
            d.insert("read_share".into(), json!(share));
            d.insert("reads".into(), json!(reads.count()));
            d.insert("writes".into(), json!(writes.count()));
            d.insert("read_latency_us".into(), reads.summary());
            d.insert("write_latency_us".into(), writes.summary());
        }
    }
    let mut setup = ctx.setup_conn().await?;
    delete_tree(&mut setup, &parent).await?;
    let _ = setup.close().await;
    Ok(out)
}

async fn drive(mut conn: Conn, ctx: &Ctx, plan: &Plan, phase: &Phase, client: usize) -> DriverOut {
    let mut out = DriverOut {
        timeout_ms: Some(conn.timeout_ms),
        ..DriverOut::default()
    };
    let depth = ctx.args.inflight.max(1);
    let mut rng = Rng::new(client as u64 + 1);
    let mut slots: Vec<Slot> = (0..depth)
        .map(|_| Slot {
            path: Vec::with_capacity(plan.parent.len() + 32),
            created: false,
            n: 0,
        })
        .collect();
    let mut free: Vec<u32> = (0..depth as u32).rev().collect();
    let mut stopping = false;
    loop {
        while !stopping {
            let Some(&s) = free.last() else { break };
            let Some(measured) = phase.next() else {
                stopping = true;
                break;
            };
            free.pop();
            let tag = s | if measured { MEASURED } else { 0 };
            issue(
                &mut conn,
                plan,
                &mut slots[s as usize],
                &mut rng,
                tag,
                client,
            );
        }
        if conn.in_flight() == 0 {
            break;
        }
        let r = match conn.recv().await {
            Ok(Event::Reply(r)) => r,
            Ok(Event::Watch { .. }) => continue,
            Err(e) => {
                out.errors.add(format!("client {client}: {e}"));
                return out;
            }
        };
        let s = r.tag & !MEASURED;
        free.push(s);
        if r.err != 0 {
            out.errors
                .add(format!("{} failed: error {}", op::short_name(r.op), r.err));
        }
        if let Mode::Create(flags) = plan.mode {
            let slot = &mut slots[s as usize];
            if r.op == op::CREATE {
                slot.created = r.err == 0;
                if slot.created && flags & 2 != 0 {
                    // Sequential: delete what the server named it.
                    if let Ok(Some(p)) = Reader::new(r.body.clone()).read_buffer() {
                        slot.path.clear();
                        slot.path.extend_from_slice(&p);
                    }
                }
            } else {
                slot.created = false;
            }
        }
        if r.tag & MEASURED != 0 && r.err == 0 {
            let lat = r.latency();
            out.all.record(lat);
            match r.op {
                op::GET_DATA | op::EXISTS => out.reads.record(lat),
                _ => out.writes.record(lat),
            }
            out.last_done = Some(r.received);
            phase.done.fetch_add(1, Ordering::Relaxed);
        }
    }
    let _ = conn.close().await;
    out
}

fn read_request(conn: &mut Conn, read: ReadOp, path: &[u8], rng: &mut Rng, tag: u32) {
    let opcode = match read {
        ReadOp::Get => op::GET_DATA,
        ReadOp::Exists => op::EXISTS,
        ReadOp::Both => {
            if rng.next_u64() & 1 == 0 {
                op::GET_DATA
            } else {
                op::EXISTS
            }
        }
    };
    conn.queue(opcode, tag, Instant::now(), |w| {
        body::path_watch(w, path, false)
    });
}

fn issue(conn: &mut Conn, plan: &Plan, slot: &mut Slot, rng: &mut Rng, tag: u32, client: usize) {
    let pick = |rng: &mut Rng| &plan.paths[rng.below(plan.paths.len())];
    match plan.mode {
        Mode::Read(read) => {
            let p = pick(rng);
            read_request(conn, read, p, rng, tag);
        }
        Mode::Mixed(share, read) => {
            if rng.unit() < share {
                let p = pick(rng);
                read_request(conn, read, p, rng, tag);
            } else {
                let p = pick(rng);
                conn.queue(op::SET_DATA, tag, Instant::now(), |w| {
                    body::set_data(w, p, &plan.data)
                });
            }
        }
        Mode::Set => {
            let p = pick(rng);
            conn.queue(op::SET_DATA, tag, Instant::now(), |w| {
                body::set_data(w, p, &plan.data)
            });
        }
        Mode::Create(flags) => {
            if slot.created {
                conn.queue(op::DELETE, tag, Instant::now(), |w| {
                    body::delete(w, &slot.path)
                });
            } else {
                let s = tag & !MEASURED;
                slot.path.clear();
                if flags & 2 != 0 {
                    let _ = write!(slot.path, "{}/q{client}-{s}-", plan.parent);
                } else {
                    let _ = write!(slot.path, "{}/c{client}-{s}-{}", plan.parent, slot.n);
                    slot.n += 1;
                }
                conn.queue(op::CREATE, tag, Instant::now(), |w| {
                    body::create(w, &slot.path, &plan.data, flags)
                });
            }
        }
    }
}
