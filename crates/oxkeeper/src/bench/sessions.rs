//! `sessions` (open N, hold them idle while pinging, close them) and `churn` (open/close loop).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::Semaphore;

use super::stats::{cpu_between, per_op_us, round2, round3, Hist, Phase, Progress};
use super::{Ctx, Errors, Outcome};

/// Read buffer size of an idle session: its pings' replies are 20 bytes.
pub const IDLE_CHUNK: usize = 128;

fn lock(h: &Mutex<Hist>) -> std::sync::MutexGuard<'_, Hist> {
    h.lock().unwrap_or_else(|e| e.into_inner())
}

enum Step {
    Opened(i32),
    Failed(String),
}

pub async fn sessions(ctx: &Arc<Ctx>) -> anyhow::Result<Outcome> {
    let a = &ctx.args;
    let n = a.sessions;
    let sem = Arc::new(Semaphore::new(a.concurrency.max(1)));
    let connect_hist = Arc::new(Mutex::new(Hist::default()));
    let ping_hist = Arc::new(Mutex::new(Hist::default()));
    let close_hist = Arc::new(Mutex::new(Hist::default()));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (step_tx, mut step_rx) = tokio::sync::mpsc::unbounded_channel::<Step>();
    let opened = Arc::new(AtomicU64::new(0));

    let rss0 = ctx.rss_kib();
    let cpu0 = ctx.cpu();
    let o2 = opened.clone();
    let progress = Progress::start("sessions", Some(n as u64), move || {
        o2.load(Ordering::Relaxed)
    });
    let t0 = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let (ctx, sem, connect_hist) = (ctx.clone(), sem.clone(), connect_hist.clone());
        let (ping_hist, close_hist) = (ping_hist.clone(), close_hist.clone());
        let (step_tx, mut stop_rx, opened) = (step_tx.clone(), stop_rx.clone(), opened.clone());
        set.spawn(async move {
            let permit = sem.acquire().await;
            let start = Instant::now();
            let conn = ctx.connect(IDLE_CHUNK).await;
            let took = start.elapsed();
            drop(permit);
            let mut conn = match conn {
                Ok(c) => c,
                Err(e) => {
                    let _ = step_tx.send(Step::Failed(format!("connect: {e}")));
                    return Ok(());
                }
            };
            lock(&connect_hist).record(took);
            opened.fetch_add(1, Ordering::Relaxed);
            let _ = step_tx.send(Step::Opened(conn.timeout_ms));
            drop(step_tx);
            // Spread evenly over the interval whatever the order of opening (golden ratio).
            conn.stagger_pings((i as f64 * 0.618_033_988_749_895).fract());
            conn.record_pings(ping_hist);
            loop {
                tokio::select! {
                    r = conn.recv() => {
                        if let Err(e) = r {
                            return Err(format!("session lost while idle: {e}"));
                        }
                    }
                    _ = stop_rx.changed() => break,
                }
            }
            let permit = sem.acquire().await;
            let closed = conn.close().await;
            drop(permit);
            match closed {
                Ok(lat) => {
                    lock(&close_hist).record(lat);
                    Ok(())
                }
                Err(e) => Err(format!("closeSession: {e}")),
            }
        });
    }
    drop(step_tx);
    let mut out = Outcome::new();
    let mut ok = 0u64;
    while let Some(step) = step_rx.recv().await {
        match step {
            Step::Opened(t) => {
                ok += 1;
                out.negotiated_timeout_ms.get_or_insert(t);
            }
            Step::Failed(e) => out.errors.add(e),
        }
    }
    let open_time = t0.elapsed();
    let cpu1 = ctx.cpu();
    let rss1 = ctx.rss_kib();
    progress.finish();

    let hold = Duration::from_secs_f64(ctx.args.duration);
    tokio::time::sleep(hold).await;
    let cpu2 = ctx.cpu();
    let rss2 = ctx.rss_kib();

    let t_close = Instant::now();
    let _ = stop_tx.send(true);
    let mut closed_errors = Errors::default();
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => closed_errors.add(e),
            Err(e) => closed_errors.add(format!("session task failed: {e}")),
        }
    }
    let close_time = t_close.elapsed();
    let cpu3 = ctx.cpu();

    let closes = lock(&close_hist).count();
    out.errors.merge(closed_errors);
    out.ops = ok;
    out.elapsed = open_time;
    out.latency = std::mem::take(&mut *lock(&connect_hist));
    out.server_cpu = cpu_between(cpu0, cpu1);
    out.rss_before_kib = rss0;
    out.rss_after_kib = rss2;
    if let (Some(before), Some(after)) = (rss0, rss2) {
        if ok > 0 {
            out.rss_per_session_bytes = Some((after as f64 - before as f64) * 1024.0 / ok as f64);
        }
    }
    let pings = lock(&ping_hist);
    let d = &mut out.detail;
    d.insert("sessions".into(), json!(n));
    d.insert("concurrency".into(), json!(a.concurrency));
    d.insert("opened".into(), json!(ok));
    d.insert("open_s".into(), json!(round3(open_time.as_secs_f64())));
    d.insert("hold_s".into(), json!(hold.as_secs_f64()));
    d.insert("pings".into(), json!(pings.count()));
    d.insert("ping_latency_us".into(), pings.summary());
    d.insert("closed".into(), json!(closes));
    d.insert("close_s".into(), json!(round3(close_time.as_secs_f64())));
    d.insert(
        "close_rate".into(),
        json!(round2(closes as f64 / close_time.as_secs_f64().max(1e-9))),
    );
    d.insert("close_latency_us".into(), lock(&close_hist).summary());
    d.insert(
        "server_cpu_us_per_close".into(),
        per_op_us(cpu_between(cpu2, cpu3), closes),
    );
    d.insert(
        "server_cpu_percent_hold".into(),
        match cpu_between(cpu1, cpu2) {
            Some(c) if !hold.is_zero() => {
                json!(round2(c.as_secs_f64() * 100.0 / hold.as_secs_f64()))
            }
            _ => serde_json::Value::Null,
        },
    );
    d.insert("rss_after_open_kib".into(), json!(rss1));
    d.insert("rss_after_hold_kib".into(), json!(rss2));
    Ok(out)
}

#[derive(Default)]
struct ChurnOut {
    connect: Hist,
    close: Hist,
    cycle: Hist,
    errors: Errors,
    last_done: Option<Instant>,
    timeout_ms: Option<i32>,
}

pub async fn churn(ctx: &Arc<Ctx>) -> anyhow::Result<Outcome> {
    let a = &ctx.args;
    let phase = Phase::new(a.ops, a.warmup > 0.0);
    let clients = a.clients.max(1);
    let p2 = phase.clone();
    let progress = Progress::start("churn", a.ops, move || p2.done.load(Ordering::Relaxed));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (ctx, phase) = (ctx.clone(), phase.clone());
        set.spawn(async move {
            let mut out = ChurnOut::default();
            while let Some(measured) = phase.next() {
                let start = Instant::now();
                let conn = match ctx.connect(IDLE_CHUNK).await {
                    Ok(c) => c,
                    Err(e) => {
                        out.errors.add(format!("connect: {e}"));
                        continue;
                    }
                };
                let connected = start.elapsed();
                out.timeout_ms.get_or_insert(conn.timeout_ms);
                match conn.close().await {
                    Ok(close) => {
                        if measured {
                            out.connect.record(connected);
                            out.close.record(close);
                            out.cycle.record(start.elapsed());
                            out.last_done = Some(Instant::now());
                            phase.done.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(e) => out.errors.add(format!("closeSession: {e}")),
                }
            }
            out
        });
    }
    phase.warm_up(a.warmup).await;
    let cpu0 = ctx.cpu();
    let rss0 = ctx.rss_kib();
    phase.measure_for(a.duration).await;
    let mut out = Outcome::new();
    let (mut close, mut cycle) = (Hist::default(), Hist::default());
    let mut last = None;
    while let Some(r) = set.join_next().await {
        match r {
            Ok(c) => {
                out.latency.add(&c.connect);
                close.add(&c.close);
                cycle.add(&c.cycle);
                out.errors.merge(c.errors);
                last = last.max(c.last_done);
                out.negotiated_timeout_ms = out.negotiated_timeout_ms.or(c.timeout_ms);
            }
            Err(e) => out.errors.add(format!("client task failed: {e}")),
        }
    }
    out.server_cpu = cpu_between(cpu0, ctx.cpu());
    progress.finish();
    out.rss_before_kib = rss0;
    out.rss_after_kib = ctx.rss_kib();
    out.ops = out.latency.count();
    if let (Some(start), Some(end)) = (phase.measure_start(), last) {
        out.elapsed = end.saturating_duration_since(start);
    }
    out.detail
        .insert("close_latency_us".into(), close.summary());
    out.detail
        .insert("cycle_latency_us".into(), cycle.summary());
    Ok(out)
}
