//! Crash safety: the server is killed with SIGKILL under write load, again and again;
//! after each restart every acknowledged write is there, no multi is half-applied, and a
//! session that comes back keeps its ephemeral node.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::TestServer;
use zookeeper_client::{Acls, Client, CreateMode, CreateOptions};

const PERSISTENT: CreateOptions<'static> = CreateMode::Persistent.with_acls(Acls::anyone_all());
const EPHEMERAL: CreateOptions<'static> = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
const CYCLES: usize = 20;

async fn connect(addr: &str) -> Client {
    for _ in 0..100 {
        if let Ok(c) = Client::connector()
            .with_session_timeout(Duration::from_secs(4))
            .connect(addr)
            .await
        {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("cannot connect to {addr}");
}

/// Writes until the server dies: a create, and a multi creating a pair, per round.
/// What was acknowledged is recorded as it happens.
async fn write_until_failure(
    addr: String,
    cycle: usize,
    acked: Arc<Mutex<BTreeSet<String>>>,
    pairs: Arc<Mutex<Vec<String>>>,
) {
    let Ok(zk) = Client::connector()
        .with_session_timeout(Duration::from_secs(4))
        .connect(&addr)
        .await
    else {
        return;
    };
    for i in 0.. {
        let single = format!("/crash/c{cycle}-{i}");
        if zk
            .create(&single, single.as_bytes(), &PERSISTENT)
            .await
            .is_err()
        {
            return;
        }
        acked.lock().unwrap().insert(single);
        let pair = format!("/crash/p{cycle}-{i}");
        pairs.lock().unwrap().push(pair.clone());
        let mut w = zk.new_multi_writer();
        w.add_create(&format!("{pair}-a"), b"", &PERSISTENT)
            .unwrap();
        w.add_create(&format!("{pair}-b"), b"", &PERSISTENT)
            .unwrap();
        if w.commit().await.is_err() {
            return;
        }
        acked.lock().unwrap().insert(format!("{pair}-a"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    // A small snapCount makes snapshots and log rolls happen during the run too.
    let mut server = TestServer::start_with(&["snapCount=300"]);
    let addr = server.addr.clone();
    let setup = connect(&addr).await;
    setup.create("/crash", b"", &PERSISTENT).await.unwrap();
    drop(setup);

    let holder = Client::connector()
        .with_session_timeout(Duration::from_secs(4))
        .with_detached()
        .connect(&addr)
        .await
        .unwrap();
    let holder_id = holder.session_id();
    holder
        .create("/crash-eph", b"mine", &EPHEMERAL)
        .await
        .unwrap();
    let holder_session = holder.into_session();

    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let pairs = Arc::new(Mutex::new(Vec::new()));
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for cycle in 0..CYCLES {
        let writers: Vec<_> = (0..3)
            .map(|w| {
                tokio::spawn(write_until_failure(
                    addr.clone(),
                    cycle * 10 + w,
                    acked.clone(),
                    pairs.clone(),
                ))
            })
            .collect();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        tokio::time::sleep(Duration::from_millis(100 + seed % 300)).await;
        server.kill_and_restart();
        // Writers whose client reconnected to the restarted server would go on forever.
        for w in writers {
            w.abort();
            let _ = w.await;
        }

        // The session first: its restored deadline runs from the restart.
        let back = Client::connector()
            .with_session_timeout(Duration::from_secs(4))
            .with_session(holder_session.clone())
            .with_detached()
            .connect(&addr)
            .await
            .unwrap_or_else(|e| panic!("cycle {cycle}: the session did not survive: {e}"));
        assert_eq!(back.session_id(), holder_id);
        let (data, stat) = back
            .get_data("/crash-eph")
            .await
            .expect("its ephemeral survives");
        assert_eq!(
            (data.as_slice(), stat.ephemeral_owner),
            (&b"mine"[..], holder_id.0)
        );
        drop(back);

        let zk = connect(&addr).await;
        let present: BTreeSet<String> = zk
            .list_children("/crash")
            .await
            .unwrap()
            .into_iter()
            .map(|name| format!("/crash/{name}"))
            .collect();
        let acked_now = acked.lock().unwrap().clone();
        assert!(
            !acked_now.is_empty() || cycle > 0,
            "the writers got nothing done"
        );
        let lost: Vec<&String> = acked_now.difference(&present).collect();
        assert!(
            lost.is_empty(),
            "cycle {cycle}: acknowledged writes lost: {lost:?}"
        );
        for pair in pairs.lock().unwrap().iter() {
            let a = present.contains(&format!("{pair}-a"));
            let b = present.contains(&format!("{pair}-b"));
            assert_eq!(a, b, "cycle {cycle}: multi {pair} half applied");
        }
    }
    let total = acked.lock().unwrap().len();
    assert!(
        total > CYCLES,
        "only {total} acknowledged writes over {CYCLES} cycles"
    );
}
