//! A TCP relay between PostgreSQL clients and the server that counts the clients' round
//! trips: each extended-protocol Sync (`S`) and each simple Query (`Q`) a client sends is
//! one wait for the server's answer (sqlx pipelines neither). A figure that does not move
//! with the machine's load. Clients must connect without TLS (`sslmode=disable`): the
//! relay reads the messages.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The request codes of the untyped messages that may come before the startup message.
const SSL_REQUEST: u32 = 80_877_103;
const GSSENC_REQUEST: u32 = 80_877_104;

pub struct Relay {
    pub addr: SocketAddr,
    round_trips: Arc<AtomicU64>,
}

impl Relay {
    /// Listens on a loopback port and relays every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("relay port");
        let addr = listener.local_addr().unwrap();
        let round_trips = Arc::new(AtomicU64::new(0));
        let counter = round_trips.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else { return };
                    let _ = (client.set_nodelay(true), server.set_nodelay(true));
                    let (mut client_read, mut client_write) = client.into_split();
                    let (mut server_read, mut server_write) = server.into_split();
                    let answers = tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                    });
                    let _ = count_requests(&mut client_read, &mut server_write, &counter).await;
                    answers.abort();
                });
            }
        });
        Relay { addr, round_trips }
    }

    /// Round trips counted so far, over every connection.
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }
}

/// Forwards the client's bytes as they come and counts its Sync and Query messages.
async fn count_requests(
    from: &mut (impl AsyncRead + Unpin),
    to: &mut (impl AsyncWrite + Unpin),
    round_trips: &AtomicU64,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut unparsed: Vec<u8> = Vec::new();
    let mut started = false;
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return to.shutdown().await;
        }
        to.write_all(&buf[..n]).await?;
        unparsed.extend_from_slice(&buf[..n]);
        let mut at = 0;
        loop {
            let rest = &unparsed[at..];
            if !started {
                // Untyped: a length (itself included) and a code.
                if rest.len() < 8 {
                    break;
                }
                let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
                if rest.len() < len {
                    break;
                }
                let code = u32::from_be_bytes(rest[4..8].try_into().unwrap());
                started = code != SSL_REQUEST && code != GSSENC_REQUEST;
                at += len.max(8);
                continue;
            }
            // Typed: a tag byte, then a length that counts itself but not the tag.
            if rest.len() < 5 {
                break;
            }
            let len = u32::from_be_bytes(rest[1..5].try_into().unwrap()) as usize;
            if rest.len() < 1 + len {
                break;
            }
            if matches!(rest[0], b'S' | b'Q') {
                round_trips.fetch_add(1, Ordering::Relaxed);
            }
            at += 1 + len.max(4);
        }
        unparsed.drain(..at);
    }
}
