//! ZooKeeper 3.5+ node types and config operations through zookeeper-client: containers
//! and TTL nodes reaped on schedule, getConfig, and reconfig on a standalone server.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::TestServer;
use zookeeper_client::{Acls, CreateMode, EnsembleUpdate, Error};

const REAP_EVERY: &str = "znode.container.checkIntervalMs=200";

#[tokio::test]
async fn an_emptied_container_is_reaped_and_a_never_used_one_kept() {
    let server = TestServer::start_with(&[REAP_EVERY]);
    let zk = common::client(&server).await;
    let container = CreateMode::Container.with_acls(Acls::anyone_all());
    let persistent = CreateMode::Persistent.with_acls(Acls::anyone_all());
    let (stat, _) = zk.create("/box", b"", &container).await.unwrap();
    assert_eq!(stat.ephemeral_owner, 0, "the container marker is hidden");
    zk.create("/unused-box", b"", &container).await.unwrap();
    zk.create("/box/item", b"", &persistent).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        zk.check_stat("/box").await.unwrap().is_some(),
        "a container with a child stays"
    );

    let (_, watcher) = zk.check_and_watch_stat("/box").await.unwrap();
    zk.delete("/box/item", None).await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(3), watcher.changed())
        .await
        .expect("reaped");
    assert_eq!(event.event_type, zookeeper_client::EventType::NodeDeleted);
    assert!(zk.check_stat("/box").await.unwrap().is_none());
    assert!(
        zk.check_stat("/unused-box").await.unwrap().is_some(),
        "never had a child: kept"
    );
}

#[tokio::test]
async fn ttl_nodes_need_extended_types_and_expire() {
    let plain = TestServer::start();
    let zk = common::client(&plain).await;
    let ttl = CreateMode::Persistent
        .with_acls(Acls::anyone_all())
        .with_ttl(Duration::from_millis(300));
    assert_eq!(
        zk.create("/t", b"", &ttl).await.unwrap_err(),
        Error::Unimplemented
    );

    let server = TestServer::start_with(&[REAP_EVERY, "extendedTypesEnabled=true"]);
    let zk = common::client(&server).await;
    let (stat, _) = zk.create("/t", b"", &ttl).await.unwrap();
    assert_eq!(stat.ephemeral_owner, 0, "the TTL marker is hidden");
    let (_, watcher) = zk.check_and_watch_stat("/t").await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(3), watcher.changed())
        .await
        .expect("expired");
    assert_eq!(event.event_type, zookeeper_client::EventType::NodeDeleted);
}

#[tokio::test]
async fn get_config_and_reconfig_on_a_standalone_server() {
    let server = TestServer::start();
    let zk = common::client(&server).await;
    let (data, stat) = zk.get_config().await.unwrap();
    assert!(data.is_empty(), "a standalone server has no dynamic config");
    assert_eq!(stat.aversion, -1);
    let (_, _, _watcher) = zk.get_and_watch_config().await.unwrap();
    let update = EnsembleUpdate::New {
        ensemble: ["server.1=127.0.0.1:2888:3888;2181"].into_iter(),
    };
    assert_eq!(
        zk.update_ensemble(update, None).await.unwrap_err(),
        Error::ReconfigDisabled
    );
}
