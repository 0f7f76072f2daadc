//! `expiry`: N sessions each own an ephemeral node; all are cut at once without closeSession.
//!
//! Right before the cut every session pings once (so they all expire together) and remembers
//! when it sent that ping: its last contact with the server. With `--detach` the sessions
//! live without connections (each socket is dropped once its ephemeral exists), which lets
//! a run hold more sessions than there are file descriptors; the cut is then one resume
//! per session (a handshake with its id and password, then the socket is dropped), and
//! the last contact is when that handshake was sent. A watcher session holds an exists
//! watch on every ephemeral and notes when each NodeDeleted arrives. Each session's delay is
//! measured from its last contact (ZooKeeper may expire it from `timeout` up to `timeout + tick`
//! later) and from the cut. Meanwhile `--clients` other sessions send getData every
//! `--other-interval-ms`: their latency shows what mass expiry does to everyone else.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use oxkeeper_proto::codes::{event_type, op};
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use super::conn::{body, Conn, Event};
use super::sessions::IDLE_CHUNK;
use super::stats::{cpu_between, round2, round3, Hist};
use super::{create_node, delete_tree, pipelined, tick_ms, Ctx, Errors, Outcome};

enum Ready {
    /// Index, negotiated timeout, and (detached) the id and password to resume it with.
    Ok(usize, i32, Option<(i64, Bytes)>),
    Failed(String),
}

/// Deletions that came together: one expiry bucket of the server's.
struct Bucket {
    size: usize,
    /// First to last deletion.
    spread: Duration,
}

/// Groups the deletion times into the server's buckets: ZooKeeper expires a whole bucket
/// on one tick, and buckets are a tick apart, so a pause of half a tick between two
/// deletions starts a new one. A bucket is due when its first deletion comes (give or
/// take the work of deleting one session), so its spread is how long after its deadline
/// the bucket finished.
fn buckets(deleted_at: &[Option<Instant>], tick: Duration) -> Vec<Bucket> {
    let mut times: Vec<Instant> = deleted_at.iter().flatten().copied().collect();
    times.sort_unstable();
    let mut out: Vec<Bucket> = Vec::new();
    let mut first = None;
    let mut prev = None;
    for t in times {
        match (first, prev) {
            (Some(f), Some(p)) if t.saturating_duration_since(p) < tick / 2 => {
                if let Some(b) = out.last_mut() {
                    b.size += 1;
                    b.spread = t.saturating_duration_since(f);
                }
            }
            _ => {
                first = Some(t);
                out.push(Bucket {
                    size: 1,
                    spread: Duration::ZERO,
                });
            }
        }
        prev = Some(t);
    }
    out
}

/// The session index in an ephemeral's path `.../e{index}`.
fn index_of(path: &[u8]) -> Option<usize> {
    let pos = path.iter().rposition(|&b| b == b'e')?;
    std::str::from_utf8(&path[pos + 1..]).ok()?.parse().ok()
}

pub async fn run(ctx: &Arc<Ctx>) -> anyhow::Result<Outcome> {
    let a = &ctx.args;
    let n = a.sessions;
    let parent = format!("/oxbench-{}-expiry", ctx.tag);
    {
        let mut setup = ctx.setup_conn().await?;
        create_node(&mut setup, &parent, b"").await?;
        let _ = setup.close().await;
    }
    let tick = tick_ms(ctx).await;
    let mut out = Outcome::new();

    // The sessions, each with its ephemeral.
    let sem = Arc::new(Semaphore::new(a.concurrency.max(1)));
    let (cut_tx, cut_rx) = tokio::sync::watch::channel(false);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel::<Ready>();
    let mut set = tokio::task::JoinSet::new();
    let t_setup = Instant::now();
    for i in 0..n {
        let (ctx, sem, ready_tx, mut cut_rx) =
            (ctx.clone(), sem.clone(), ready_tx.clone(), cut_rx.clone());
        let path = format!("{parent}/e{i}");
        let detach = a.detach;
        set.spawn(async move {
            let permit = sem.acquire().await;
            let mut conn = match ctx.connect(IDLE_CHUNK).await {
                Ok(c) => c,
                Err(e) => {
                    let _ = ready_tx.send(Ready::Failed(format!("connect: {e}")));
                    return Err(None);
                }
            };
            conn.queue(op::CREATE, 1, Instant::now(), |w| {
                body::create(w, path.as_bytes(), b"", 1)
            });
            match conn.wait_for(1).await {
                Ok(r) if r.err == 0 => {}
                Ok(r) => {
                    let _ =
                        ready_tx.send(Ready::Failed(format!("create ephemeral: error {}", r.err)));
                    return Err(None);
                }
                Err(e) => {
                    let _ = ready_tx.send(Ready::Failed(format!("create ephemeral: {e}")));
                    return Err(None);
                }
            }
            drop(permit);
            if detach {
                // Only the socket goes: the session lives on in the server.
                let session = (conn.session_id, conn.passwd.clone());
                let _ = ready_tx.send(Ready::Ok(i, conn.timeout_ms, Some(session)));
                return Err(None);
            }
            let _ = ready_tx.send(Ready::Ok(i, conn.timeout_ms, None));
            drop(ready_tx);
            loop {
                tokio::select! {
                    r = conn.recv() => {
                        if let Err(e) = r {
                            return Err(Some(format!("session lost before the cut: {e}")));
                        }
                    }
                    _ = cut_rx.changed() => break,
                }
            }
            // One last contact, then drop the socket without closeSession.
            let sent = Instant::now();
            conn.queue(op::PING, 2, sent, |_| {});
            if let Err(e) = conn.wait_for(2).await {
                return Err(Some(format!("last ping: {e}")));
            }
            drop(conn);
            Ok((i, sent))
        });
    }
    drop(ready_tx);
    let mut ready = Vec::with_capacity(n);
    let mut detached: Vec<Option<(i64, Bytes)>> = vec![None; n];
    let mut timeout_ms = None;
    while let Some(r) = ready_rx.recv().await {
        match r {
            Ready::Ok(i, t, session) => {
                ready.push(i);
                detached[i] = session;
                timeout_ms.get_or_insert(t);
            }
            Ready::Failed(e) => out.errors.add(e),
        }
    }
    let setup_time = t_setup.elapsed();
    out.negotiated_timeout_ms = timeout_ms;

    // The watcher: an exists watch on every ephemeral.
    let mut watcher = ctx.connect(64 << 10).await?;
    let failed = pipelined(&mut watcher, ready.len(), 1000, |c, k| {
        let path = format!("{parent}/e{}", ready[k as usize]);
        c.queue(op::EXISTS, k, Instant::now(), |w| {
            body::path_watch(w, path.as_bytes(), true)
        });
    })
    .await?;
    for (_, err) in &failed {
        out.errors.add(format!("exists watch: error {err}"));
    }

    // Other clients, whose latency during the expiry is measured.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut others = tokio::task::JoinSet::new();
    for _ in 0..a.clients {
        let (ctx, mut stop_rx, parent) = (ctx.clone(), stop_rx.clone(), parent.clone());
        others.spawn(async move {
            // (sent, latency): only the requests sent once the cut is over describe the
            // expiry itself; during the cut the client is busy cutting.
            let mut samples: Vec<(Instant, Duration)> = Vec::new();
            let mut errors = Errors::default();
            let mut conn = match ctx.connect(4096).await {
                Ok(c) => c,
                Err(e) => {
                    errors.add(format!("other client connect: {e}"));
                    return (samples, errors);
                }
            };
            let every = Duration::from_millis(ctx.args.other_interval_ms.max(1));
            let mut next = tokio::time::Instant::now();
            loop {
                conn.queue(op::GET_DATA, 3, Instant::now(), |w| {
                    body::path_watch(w, parent.as_bytes(), false)
                });
                match conn.wait_for(3).await {
                    Ok(r) if r.err == 0 => samples.push((r.sent, r.latency())),
                    Ok(r) => errors.add(format!("other client getData: error {}", r.err)),
                    Err(e) => {
                        errors.add(format!("other client: {e}"));
                        break;
                    }
                }
                next += every;
                tokio::select! {
                    _ = tokio::time::sleep_until(next) => {}
                    _ = stop_rx.changed() => break,
                }
            }
            let _ = conn.close().await;
            (samples, errors)
        });
    }
    drop(stop_rx);

    // The cut.
    let cpu0 = ctx.cpu();
    let t_cut = Instant::now();
    let _ = cut_tx.send(true);
    for &i in &ready {
        let Some((session_id, passwd)) = detached[i].take() else {
            continue;
        };
        let (ctx, sem) = (ctx.clone(), sem.clone());
        set.spawn(async move {
            let _permit = sem.acquire().await;
            let sent = Instant::now();
            match Conn::resume(&ctx.target, ctx.timeout_ms(), session_id, passwd).await {
                Ok(conn) => {
                    drop(conn);
                    Ok((i, sent))
                }
                Err(e) => Err(Some(format!("resuming the session at the cut: {e}"))),
            }
        });
    }
    let timeout = Duration::from_millis(timeout_ms.unwrap_or(0).max(0) as u64);
    let tick_d = Duration::from_millis(u64::from(tick.unwrap_or(2000)));
    let deadline = t_cut + timeout * 2 + tick_d * 2 + Duration::from_secs(10);
    let mut deleted_at: Vec<Option<Instant>> = vec![None; n];
    let mut remaining = ready.len() - failed.len();
    while remaining > 0 {
        let ev = match tokio::time::timeout_at(deadline.into(), watcher.recv()).await {
            Err(_) => break,
            Ok(Err(e)) => {
                out.errors.add(format!("watcher: {e}"));
                break;
            }
            Ok(Ok(ev)) => ev,
        };
        if let Event::Watch {
            event_type: event_type::NODE_DELETED,
            path,
            received,
        } = ev
        {
            if let Some(slot) = index_of(&path).and_then(|i| deleted_at.get_mut(i)) {
                if slot.is_none() {
                    *slot = Some(received);
                    remaining -= 1;
                }
            }
        }
    }
    let cpu1 = ctx.cpu();
    let _ = stop_tx.send(true);
    let _ = watcher.close().await;

    let mut last_contact: Vec<Option<Instant>> = vec![None; n];
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok((i, sent))) => last_contact[i] = Some(sent),
            Ok(Err(Some(e))) => out.errors.add(e),
            Ok(Err(None)) => {}
            Err(e) => out.errors.add(format!("session task failed: {e}")),
        }
    }
    let mut other_samples = Vec::new();
    while let Some(r) = others.join_next().await {
        match r {
            Ok((samples, e)) => {
                other_samples.extend(samples);
                out.errors.merge(e);
            }
            Err(e) => out.errors.add(format!("other client task failed: {e}")),
        }
    }

    let mut from_cut = Hist::default();
    let mut overshoot = Hist::default();
    let (mut early, mut missing) = (0u64, 0u64);
    let (mut first, mut last): (Option<Instant>, Option<Instant>) = (None, None);
    let mut cut_done = t_cut;
    for &i in &ready {
        let Some(contact) = last_contact[i] else {
            continue;
        };
        cut_done = cut_done.max(contact);
        let Some(gone) = deleted_at[i] else {
            missing += 1;
            continue;
        };
        let delay = gone.saturating_duration_since(contact);
        out.latency.record(delay);
        from_cut.record(gone.saturating_duration_since(t_cut));
        if delay < timeout {
            early += 1;
        }
        overshoot.record(delay.saturating_sub(timeout));
        first = Some(first.map_or(gone, |f| f.min(gone)));
        last = Some(last.map_or(gone, |l| l.max(gone)));
    }
    if missing > 0 {
        out.errors.add(format!(
            "{missing} ephemerals not deleted within {:?} of the cut",
            deadline - t_cut
        ));
        out.errors.count += missing - 1;
    }
    out.ops = out.latency.count();
    out.elapsed = last.map_or(Duration::ZERO, |l| l.saturating_duration_since(t_cut));
    out.server_cpu = cpu_between(cpu0, cpu1);
    out.rss_after_kib = ctx.rss_kib();
    let max_over_ms = overshoot.quantile(1.0) as f64 / 1000.0;
    let d = &mut out.detail;
    d.insert("sessions".into(), json!(n));
    d.insert("detached".into(), json!(a.detach));
    d.insert("expired".into(), json!(out.latency.count()));
    d.insert("missing".into(), json!(missing));
    d.insert("early".into(), json!(early));
    d.insert("timeout_ms".into(), json!(timeout_ms));
    d.insert("tick_ms".into(), json!(tick));
    d.insert("setup_s".into(), json!(round2(setup_time.as_secs_f64())));
    d.insert(
        "cut_s".into(),
        json!(round3(
            cut_done.saturating_duration_since(t_cut).as_secs_f64()
        )),
    );
    d.insert("delay_from_contact_ms".into(), out.latency.summary_ms());
    d.insert("delay_from_cut_ms".into(), from_cut.summary_ms());
    d.insert("overshoot_ms".into(), overshoot.summary_ms());
    d.insert(
        "spread_ms".into(),
        match (first, last) {
            (Some(f), Some(l)) => json!(round2(
                l.saturating_duration_since(f).as_secs_f64() * 1000.0
            )),
            _ => Value::Null,
        },
    );
    let tick_span = tick.map(|t| Duration::from_millis(u64::from(t)));
    let buckets = tick_span
        .map(|t| buckets(&deleted_at, t))
        .unwrap_or_default();
    let bucket_spread_max = buckets.iter().map(|b| b.spread).max();
    d.insert("buckets".into(), json!(buckets.len()));
    d.insert(
        "bucket_sizes".into(),
        json!(buckets.iter().map(|b| b.size).collect::<Vec<_>>()),
    );
    d.insert(
        "bucket_spread_max_ms".into(),
        json!(bucket_spread_max.map(|s| round2(s.as_secs_f64() * 1000.0))),
    );
    d.insert("overshoot_max_ms".into(), json!(round2(max_over_ms)));
    d.insert(
        "within_one_tick".into(),
        match (tick_span, bucket_spread_max) {
            (Some(t), Some(spread)) if out.ops > 0 => {
                json!(early == 0 && missing == 0 && spread <= t)
            }
            _ => Value::Null,
        },
    );
    let (mut others_all, mut others_after) = (Hist::default(), Hist::default());
    for &(sent, latency) in &other_samples {
        others_all.record(latency);
        if sent >= cut_done {
            others_after.record(latency);
        }
    }
    d.insert("others_ops".into(), json!(others_after.count()));
    d.insert("others_latency_us".into(), others_after.summary());
    d.insert("others_latency_all_us".into(), others_all.summary());

    let mut setup = ctx.setup_conn().await?;
    delete_tree(&mut setup, &parent).await?;
    let _ = setup.close().await;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletions_half_a_tick_apart_are_separate_buckets() {
        let t0 = Instant::now();
        let at = |ms: u64| Some(t0 + Duration::from_millis(ms));
        let tick = Duration::from_millis(2000);
        let got = buckets(
            &[at(5), None, at(0), at(30), at(2000), at(3100), at(3500)],
            tick,
        );
        let sizes: Vec<usize> = got.iter().map(|b| b.size).collect();
        let spreads: Vec<u128> = got.iter().map(|b| b.spread.as_millis()).collect();
        assert_eq!(sizes, [3, 1, 2]);
        assert_eq!(spreads, [30, 0, 400]);
        assert!(buckets(&[None], tick).is_empty());
    }
}
