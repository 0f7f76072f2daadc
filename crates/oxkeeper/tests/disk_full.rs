//! A disk that fills up under the server: no write is acknowledged that is not durable,
//! the server says what happened and stops, and once there is room again it recovers
//! every acknowledged write.
//!
//! Needs a small tmpfs, so it mounts one (root only). Without the privilege it is skipped,
//! unless CI=true, where that is a failure.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use zookeeper_client::{Acls, Client, CreateMode};

struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn mount_tmpfs(dir: &Path, size: &str) -> Option<Mount> {
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    ok.then(|| Mount(dir.to_owned()))
}

fn start(cfg: &Path) -> (std::process::Child, String) {
    common::launch(cfg, &[], Stdio::piped()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_the_server_without_losing_acknowledged_writes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let Some(mount) = mount_tmpfs(&data, "1m") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "cannot mount a tmpfs to fill up"
        );
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=200\ndataDir={}\nclientPort=0\nclientPortAddress=127.0.0.1\npreAllocSize=16\nsnapCount=1000000\nadmin.enableServer=false\n",
            data.display()
        ),
    )
    .unwrap();
    let (mut child, addr) = start(&cfg);
    let zk = Client::connector()
        .with_session_timeout(Duration::from_secs(4))
        .connect(&addr)
        .await
        .unwrap();
    let opts = CreateMode::Persistent.with_acls(Acls::anyone_all());
    let payload = vec![b'x'; 16 * 1024];
    let mut acked = Vec::new();
    let mut refused = false;
    for i in 0..200 {
        let path = format!("/fill-{i}");
        match tokio::time::timeout(Duration::from_secs(5), zk.create(&path, &payload, &opts)).await
        {
            Ok(Ok(_)) => acked.push(path),
            _ => {
                refused = true;
                break;
            }
        }
    }
    assert!(refused, "1 MiB cannot hold 200 × 16 KiB");
    assert!(!acked.is_empty());
    drop(zk);

    let end = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < end,
            "the server kept running on a failed log"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(!status.success());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        stderr.contains("No space left on device") || stderr.contains("ENOSPC"),
        "{stderr}"
    );

    // Room again: everything acknowledged is there.
    let grown = Command::new("mount")
        .args(["-o", "remount,size=64m"])
        .arg(&data)
        .status()
        .unwrap();
    assert!(grown.success());
    let (mut child, addr) = start(&cfg);
    let zk = Client::connector().connect(&addr).await.unwrap();
    for path in &acked {
        let (bytes, _) = zk
            .get_data(path)
            .await
            .unwrap_or_else(|e| panic!("{path} lost: {e}"));
        assert_eq!(bytes.len(), payload.len(), "{path} intact");
    }
    drop(zk);
    let _ = child.kill();
    let _ = child.wait();
    drop(mount);
}
