//! `watch`: K watcher sessions hold a data watch on one node and one writer sets it; the time
//! from sending the write to each notification, over R rounds (watches re-armed every round).

use std::sync::Arc;
use std::time::{Duration, Instant};

use oxkeeper_proto::codes::{event_type, op};
use serde_json::json;
use tokio::sync::Semaphore;

use super::conn::{body, Event};
use super::sessions::IDLE_CHUNK;
use super::stats::{cpu_between, round3, Hist, Progress};
use super::{create_node, delete_tree, Ctx, Outcome};

enum Msg {
    Armed,
    Notified(Instant),
    Failed(String),
}

pub async fn run(ctx: &Arc<Ctx>) -> anyhow::Result<Outcome> {
    let a = &ctx.args;
    let k = a.watchers.max(1);
    let rounds = a.rounds.max(1);
    let path = format!("/oxbench-{}-watch", ctx.tag);
    {
        let mut setup = ctx.setup_conn().await?;
        create_node(&mut setup, &path, &ctx.data).await?;
        let _ = setup.close().await;
    }
    let mut out = Outcome::new();

    let sem = Arc::new(Semaphore::new(a.concurrency.max(1)));
    let (round_tx, round_rx) = tokio::sync::watch::channel(0usize);
    let (msg_tx, mut msg_rx) = tokio::sync::mpsc::unbounded_channel::<Msg>();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..k {
        let (ctx, sem, msg_tx, mut round_rx) =
            (ctx.clone(), sem.clone(), msg_tx.clone(), round_rx.clone());
        let path = path.clone();
        set.spawn(async move {
            let permit = sem.acquire().await;
            let conn = ctx.connect(IDLE_CHUNK).await;
            drop(permit);
            let mut conn = match conn {
                Ok(c) => c,
                Err(e) => {
                    let _ = msg_tx.send(Msg::Failed(format!("watcher connect: {e}")));
                    return;
                }
            };
            let mut armed = false;
            loop {
                tokio::select! {
                    r = conn.recv() => match r {
                        Ok(Event::Watch { event_type: event_type::NODE_DATA_CHANGED, received, .. })
                            if armed =>
                        {
                            armed = false;
                            let _ = msg_tx.send(Msg::Notified(received));
                        }
                        Ok(Event::Reply(r)) => {
                            if r.err == 0 {
                                armed = true;
                                let _ = msg_tx.send(Msg::Armed);
                            } else {
                                let _ = msg_tx.send(Msg::Failed(format!("getData watch: error {}", r.err)));
                            }
                        }
                        Ok(_) => {}
                        Err(e) => {
                            let _ = msg_tx.send(Msg::Failed(format!("watcher: {e}")));
                            return;
                        }
                    },
                    changed = round_rx.changed() => {
                        if changed.is_err() || *round_rx.borrow_and_update() == usize::MAX {
                            break;
                        }
                        conn.queue(op::GET_DATA, 0, Instant::now(), |w| {
                            body::path_watch(w, path.as_bytes(), true)
                        });
                    }
                }
            }
            let _ = conn.close().await;
        });
    }
    drop(msg_tx);

    let mut writer = ctx.connect(4096).await?;
    let mut write_hist = Hist::default();
    let mut round_hist = Hist::default();
    let mut busy = Duration::ZERO;
    let progress = Progress::start("watch", Some(rounds as u64), {
        let rx = round_tx.subscribe();
        move || *rx.borrow() as u64
    });
    let cpu0 = ctx.cpu();
    let mut lost = 0u64;
    'rounds: for r in 1..=rounds {
        let _ = round_tx.send(r);
        let mut armed = 0;
        let arm_deadline = Instant::now() + Duration::from_secs(30).max(ctx.target.connect_timeout);
        while armed + lost < k as u64 {
            match tokio::time::timeout_at(arm_deadline.into(), msg_rx.recv()).await {
                Ok(Some(Msg::Armed)) => armed += 1,
                Ok(Some(Msg::Failed(e))) => {
                    out.errors.add(e);
                    lost += 1;
                }
                Ok(Some(Msg::Notified(_))) => {}
                Ok(None) | Err(_) => {
                    out.errors
                        .add(format!("round {r}: only {armed} of {k} watches armed"));
                    break 'rounds;
                }
            }
        }
        let t_write = Instant::now();
        writer.queue(op::SET_DATA, 0, t_write, |w| {
            body::set_data(w, path.as_bytes(), &ctx.data)
        });
        writer.flush().await?;
        let mut notified = 0u64;
        let mut last = t_write;
        let deadline = t_write + Duration::from_secs(10);
        let mut write_done = false;
        while notified < armed || !write_done {
            tokio::select! {
                m = tokio::time::timeout_at(deadline.into(), msg_rx.recv()), if notified < armed => {
                    match m {
                        Ok(Some(Msg::Notified(at))) => {
                            notified += 1;
                            out.latency.record(at.saturating_duration_since(t_write));
                            last = last.max(at);
                        }
                        Ok(Some(Msg::Failed(e))) => {
                            out.errors.add(e);
                            lost += 1;
                            armed -= 1;
                        }
                        Ok(Some(Msg::Armed)) => {}
                        Ok(None) | Err(_) => {
                            out.errors.add(format!(
                                "round {r}: {} of {armed} notifications missing",
                                armed - notified
                            ));
                            out.errors.count += armed - notified - 1;
                            break 'rounds;
                        }
                    }
                }
                w = writer.wait_for(0), if !write_done => {
                    let w = w?;
                    if w.err != 0 {
                        out.errors.add(format!("setData: error {}", w.err));
                    }
                    write_hist.record(w.latency());
                    write_done = true;
                }
            }
        }
        busy += last.saturating_duration_since(t_write);
        round_hist.record(last.saturating_duration_since(t_write));
    }
    let cpu1 = ctx.cpu();
    let _ = round_tx.send(usize::MAX);
    progress.finish();
    while set.join_next().await.is_some() {}
    let _ = writer.close().await;

    out.ops = out.latency.count();
    out.elapsed = busy;
    out.server_cpu = cpu_between(cpu0, cpu1);
    out.rss_after_kib = ctx.rss_kib();
    let d = &mut out.detail;
    d.insert("watchers".into(), json!(k));
    d.insert("rounds".into(), json!(rounds));
    d.insert("notifications".into(), json!(out.latency.count()));
    d.insert("lost_watchers".into(), json!(lost));
    d.insert("round_ms".into(), round_hist.summary_ms());
    d.insert("write_latency_us".into(), write_hist.summary());
    d.insert("busy_s".into(), json!(round3(busy.as_secs_f64())));

    let mut setup = ctx.setup_conn().await?;
    delete_tree(&mut setup, &path).await?;
    let _ = setup.close().await;
    Ok(out)
}
