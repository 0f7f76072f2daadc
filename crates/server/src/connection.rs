//! One task per client socket: frames in, batches of replies and events out.
//!
//! The first four bytes decide what the connection is: a four-letter word (answered with
//! plain text, then closed) or the length of the handshake frame. A length outside
//! `0..=jute.maxbuffer` closes the connection without a reply, as ZooKeeper does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use oxkeeper_core::pipeline::Delivery;
use oxkeeper_core::watch::ConnId;
use oxkeeper_proto::frame::{four_letter_word, take_frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};

use crate::core_task::Event;
use crate::listener::IpSlot;
use crate::outlet::Outlet;
use crate::ServerInfo;

pub async fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    conn: ConnId,
    info: Arc<ServerInfo>,
    events: mpsc::Sender<Event>,
    mut shutdown: watch::Receiver<bool>,
    _slot: IpSlot,
) {
    // Small: most frames are tiny, and an idle session should cost little memory; large
    // frames grow it as they arrive.
    let mut buf = BytesMut::with_capacity(256);
    // Four-letter words only count on a fresh connection, before any framing.
    while buf.len() < 4 {
        let read = tokio::select! {
            r = stream.read_buf(&mut buf) => r,
            _ = shutdown.changed() => return,
        };
        match read {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
    if let Some(word) = four_letter_word([buf[0], buf[1], buf[2], buf[3]]) {
        // Boxed: the rare path should not size every connection's future.
        Box::pin(four_letter(stream, peer, word, &info, &events)).await;
        return;
    }

    let outlet = Arc::new(Outlet::default());
    if events
        .send(Event::Open {
            conn,
            peer,
            out: outlet.clone(),
        })
        .await
        .is_err()
    {
        return;
    }
    let max_frame = info.config.jute_max_buffer;
    let mut closing = false;
    'conn: loop {
        loop {
            match take_frame(&mut buf, max_frame) {
                Ok(Some(frame)) => {
                    let received = std::time::Instant::now();
                    if events
                        .send(Event::Frame {
                            conn,
                            frame,
                            received,
                        })
                        .await
                        .is_err()
                    {
                        break 'conn;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::info!(%peer, error = %e, "Len error; closing connection");
                    break 'conn;
                }
            }
        }
        tokio::select! {
            r = stream.read_buf(&mut buf) => match r {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "read failed");
                    break;
                }
            },
            batches = outlet.take() => match batches {
                Some(batches) => match write_batches(&mut stream, batches).await {
                    Ok(false) => {}
                    Ok(true) => {
                        closing = true;
                        break;
                    }
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "write failed");
                        break;
                    }
                },
                None => break,
            },
            _ = shutdown.changed() => break,
        }
    }
    let _ = events.send(Event::Closed { conn }).await;
    if closing {
        Box::pin(graceful_close(stream)).await;
    }
}

/// Writes the queued batches in order. Returns whether the core asked for the connection
/// to be closed after them.
async fn write_batches(
    stream: &mut TcpStream,
    batches: std::collections::VecDeque<Delivery>,
) -> std::io::Result<bool> {
    for d in batches {
        if !d.bytes.is_empty() {
            stream.write_all(&d.bytes).await?;
        }
        if d.close {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Sends FIN after the last reply and lets the client read it: closing a socket that still
/// has unread input would send RST, and clients could lose the final reply.
async fn graceful_close(mut stream: TcpStream) {
    let _ = stream.shutdown().await;
    // On the heap: an array here would be part of every connection's future, idle or not.
    let mut sink = vec![0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
}

async fn four_letter(
    mut stream: TcpStream,
    peer: SocketAddr,
    word: &'static str,
    info: &ServerInfo,
    events: &mpsc::Sender<Event>,
) {
    let text = if word == "telnetclose" {
        String::new()
    } else if !info.config.four_letter_whitelist.allows(word) {
        format!("{word} is not executed because it is not in the whitelist.\n")
    } else {
        let (tx, rx) = oneshot::channel();
        if events
            .send(Event::FourLetter {
                word,
                peer,
                reply: tx,
            })
            .await
            .is_err()
        {
            return;
        }
        rx.await.unwrap_or_default()
    };
    let _ = stream.write_all(text.as_bytes()).await;
    graceful_close(stream).await;
}

#[cfg(test)]
mod tests {
    /// Every idle session holds one of these futures: a buffer or a rare path inlined into
    /// it costs memory per connection (a stray 4 KiB array once made it 4.9 KB).
    #[tokio::test]
    async fn an_idle_connection_future_stays_small() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = l.local_addr().unwrap();
        let c = tokio::net::TcpStream::connect(a).await.unwrap();
        let (s, peer) = l.accept().await.unwrap();
        let _ = c;
        let info = std::sync::Arc::new(crate::ServerInfo {
            config: crate::Config::default(),
            client_addr: a,
            started: std::time::Instant::now(),
            started_wall_ms: 0,
            fsync: Default::default(),
        });
        let (tx, _rx) = tokio::sync::mpsc::channel(1);
        let (_w, r) = tokio::sync::watch::channel(false);
        let slot = crate::listener::test_slot(peer.ip());
        let f = super::serve(s, peer, oxkeeper_core::watch::ConnId(1), info, tx, r, slot);
        let size = std::mem::size_of_val(&f);
        assert!(size <= 1024, "the connection future grew to {size} bytes");
    }
}
