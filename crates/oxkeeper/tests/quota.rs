#![allow(clippy::unwrap_used)]
//! Quotas through the real binary: the limits node written the way zkCli's `setquota` writes
//! it, the `zookeeper_stats` node the server maintains, and QUOTAEXCEEDED with
//! `enforceQuota=true`. The expectations were observed on Apache ZooKeeper 3.8 (zoo.cfg
//! `enforceQuota=true`, which it copies into `zookeeper.enforceQuota`).

mod common;

use common::TestServer;
use zookeeper_client::{Acls, Client, CreateMode, CreateOptions, Error, MultiWriteError};

const PERSISTENT: CreateOptions<'static> = CreateMode::Persistent.with_acls(Acls::anyone_all());

/// What `setquota -N 4 /q` stores (zkCli sets one limit per call; unset ones are -1).
const COUNT_HARD_4: &str = "count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=4";

/// zkCli's `createQuota`: the quota path's parents, the limits node with the limit text, then
/// the stats node with `count=0,bytes=0` (which the server recomputes on creation).
async fn set_quota(zk: &Client, path: &str, limits: &str) {
    let mut q = "/zookeeper/quota".to_owned();
    for part in path.split('/').skip(1) {
        q = format!("{q}/{part}");
        if zk.check_stat(&q).await.unwrap().is_none() {
            zk.create(&q, b"", &PERSISTENT).await.unwrap();
        }
    }
    zk.create(
        &format!("{q}/zookeeper_limits"),
        limits.as_bytes(),
        &PERSISTENT,
    )
    .await
    .unwrap();
    zk.create(
        &format!("{q}/zookeeper_stats"),
        b"count=0,bytes=0",
        &PERSISTENT,
    )
    .await
    .unwrap();
}

async fn text(zk: &Client, path: &str) -> String {
    String::from_utf8(zk.get_data(path).await.unwrap().0).unwrap()
}

#[tokio::test]
async fn stats_are_maintained_and_hard_limits_enforced() {
    let server = TestServer::start_with(&["enforceQuota=true"]);
    let zk = common::client(&server).await;
    zk.create("/q", b"12345", &PERSISTENT).await.unwrap();
    zk.create("/q/b", b"xy", &PERSISTENT).await.unwrap();
    set_quota(&zk, "/q", COUNT_HARD_4).await;
    let stats = "/zookeeper/quota/q/zookeeper_stats";
    let limits = "/zookeeper/quota/q/zookeeper_limits";
    assert_eq!(text(&zk, limits).await, COUNT_HARD_4);
    // Recomputed when the stats node was created: /q and /q/b, 5 + 2 bytes.
    let (data, created) = zk.get_data(stats).await.unwrap();
    assert_eq!(data, b"count=2,bytes=7");

    zk.create("/q/c", b"abc", &PERSISTENT).await.unwrap();
    assert_eq!(text(&zk, stats).await, "count=3,bytes=10");
    zk.set_data("/q/c", b"abcdefgh", None).await.unwrap();
    assert_eq!(text(&zk, stats).await, "count=3,bytes=15");
    zk.create("/q/d", b"", &PERSISTENT).await.unwrap();
    assert_eq!(text(&zk, stats).await, "count=4,bytes=15");
    // Rewritten in place: no new version or mzxid, only the data (and its length) change.
    let (_, now) = zk.get_data(stats).await.unwrap();
    assert_eq!(
        (now.version, now.mzxid, now.czxid),
        (0, created.mzxid, created.czxid)
    );
    assert_eq!(now.data_length, 16);

    // Count hard limit 4 reached.
    assert_eq!(
        zk.create("/q/e", b"", &PERSISTENT).await.unwrap_err(),
        Error::QuotaExceeded
    );
    assert_eq!(
        zk.create("/q/c/deep", b"", &PERSISTENT).await.unwrap_err(),
        Error::QuotaExceeded
    );
    let mut multi = zk.new_multi_writer();
    multi.add_create("/q/m", b"", &PERSISTENT).unwrap();
    assert_eq!(
        multi.commit().await.unwrap_err(),
        MultiWriteError::OperationFailed {
            index: 0,
            source: Error::QuotaExceeded
        }
    );
    // setData adds no node: only bytes are checked, and there is no byte limit.
    zk.set_data("/q/d", &[b'x'; 500], None).await.unwrap();
    assert_eq!(text(&zk, stats).await, "count=4,bytes=515");
    // Outside the quota nothing is limited or counted.
    zk.create("/qq", b"", &PERSISTENT).await.unwrap();
    assert_eq!(text(&zk, stats).await, "count=4,bytes=515");

    // A byte hard limit, added the way a second `setquota -B 520 /q` does.
    zk.set_data(
        limits,
        b"count=-1,bytes=-1=;byteHardLimit=520;countHardLimit=4",
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        zk.set_data("/q/d", &[b'x'; 506], None).await.unwrap_err(),
        Error::QuotaExceeded
    );
    zk.set_data("/q/d", &[b'x'; 505], None).await.unwrap();
    assert_eq!(text(&zk, stats).await, "count=4,bytes=520");

    // Deleting frees room. Each op of a multi is checked against the committed usage (as
    // ZooKeeper does), so two creates may both pass from count=3.
    zk.delete("/q/d", None).await.unwrap();
    assert_eq!(text(&zk, stats).await, "count=3,bytes=15");
    let mut multi = zk.new_multi_writer();
    multi.add_create("/q/m1", b"", &PERSISTENT).unwrap();
    multi.add_create("/q/m2", b"", &PERSISTENT).unwrap();
    multi.commit().await.unwrap();
    assert_eq!(text(&zk, stats).await, "count=5,bytes=15");

    // Soft limits only log.
    zk.set_data(limits, b"count=1,bytes=1", None).await.unwrap();
    zk.create("/q/soft", b"abc", &PERSISTENT).await.unwrap();
    assert_eq!(text(&zk, stats).await, "count=6,bytes=18");

    // Limits ZooKeeper cannot parse: its prep throws, and the client gets MARSHALLINGERROR.
    zk.set_data(limits, b"garbage", None).await.unwrap();
    assert_eq!(
        zk.create("/q/g", b"", &PERSISTENT).await.unwrap_err(),
        Error::MarshallingError
    );

    // Deleting the limits node ends the quota: no more checks, no more counting.
    zk.set_data(limits, COUNT_HARD_4.as_bytes(), None)
        .await
        .unwrap();
    zk.delete(limits, None).await.unwrap();
    zk.create("/q/free1", b"", &PERSISTENT).await.unwrap();
    zk.create("/q/free2", b"", &PERSISTENT).await.unwrap();
    assert_eq!(text(&zk, stats).await, "count=6,bytes=18");
}

#[tokio::test]
async fn without_enforcement_limits_only_log() {
    let server = TestServer::start_with(&[]);
    let zk = common::client(&server).await;
    zk.create("/q", b"", &PERSISTENT).await.unwrap();
    set_quota(
        &zk,
        "/q",
        "count=-1,bytes=-1=;byteHardLimit=0;countHardLimit=1",
    )
    .await;
    zk.create("/q/a", b"abc", &PERSISTENT).await.unwrap();
    zk.create("/q/b", b"de", &PERSISTENT).await.unwrap();
    assert_eq!(
        text(&zk, "/zookeeper/quota/q/zookeeper_stats").await,
        "count=3,bytes=5"
    );
}

#[tokio::test]
async fn stats_and_enforcement_survive_a_restart() {
    // snapCount=2: snapshots are taken, so the restart loads quota nodes from one.
    let mut server = TestServer::start_with(&["enforceQuota=true", "snapCount=2"]);
    {
        let zk = common::client(&server).await;
        zk.create("/r", b"1", &PERSISTENT).await.unwrap();
        zk.create("/r/x", b"", &PERSISTENT).await.unwrap();
        set_quota(
            &zk,
            "/r",
            "count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=3",
        )
        .await;
        zk.create("/r/y", b"22", &PERSISTENT).await.unwrap();
        for i in 0..8 {
            zk.set_data("/r/x", format!("{i}").as_bytes(), None)
                .await
                .unwrap();
        }
        assert_eq!(
            text(&zk, "/zookeeper/quota/r/zookeeper_stats").await,
            "count=3,bytes=4"
        );
    }
    server.kill_and_restart();
    let zk = common::client(&server).await;
    assert_eq!(
        text(&zk, "/zookeeper/quota/r/zookeeper_stats").await,
        "count=3,bytes=4"
    );
    assert_eq!(
        zk.create("/r/z", b"", &PERSISTENT).await.unwrap_err(),
        Error::QuotaExceeded
    );
    zk.delete("/r/y", None).await.unwrap();
    zk.create("/r/z", b"", &PERSISTENT).await.unwrap();
    assert_eq!(
        text(&zk, "/zookeeper/quota/r/zookeeper_stats").await,
        "count=3,bytes=2"
    );
}
