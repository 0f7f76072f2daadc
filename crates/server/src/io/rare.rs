//! The rare end of a connection, run as a tokio task off the I/O thread: answering a
//! four-letter word, which waits for the core.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use crate::core_task::Event;
use crate::ServerInfo;

/// Sends FIN after the last reply and lets the client read it: closing a socket that still
/// has unread input would send RST, and clients could lose the final reply.
async fn graceful_close(mut stream: TcpStream) {
    let _ = stream.shutdown().await;
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

pub async fn four_letter(
    stream: std::net::TcpStream,
    word: &'static str,
    info: Arc<ServerInfo>,
    events: mpsc::Sender<Event>,
) {
    let Ok(mut stream) = TcpStream::from_std(stream) else {
        return;
    };
    let text = if word == "telnetclose" {
        String::new()
    } else if !info.config.four_letter_whitelist.allows(word) {
        format!("{word} is not executed because it is not in the whitelist.\n")
    } else {
        let Ok(peer) = stream.peer_addr() else {
            return;
        };
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
