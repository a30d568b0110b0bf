//! [`FreezingRelay`]: a TCP relay whose connections can go silent for good while new ones
//! pass, the one network fault Toxiproxy cannot make.
//!
//! Toxiproxy's toxics act on every connection of a proxy, those made later included, and its
//! `timeout` toxic closes the connections it held when it is removed (its clean-up closes
//! them). A failover that left the old address dead, or a NAT mapping dropped on the way, is
//! different: the connections made before it hear nothing and are never closed, while a new
//! connection reaches the live server. A client that only listens never learns of it unless
//! it asks something.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// A relay on `127.0.0.1` toward one upstream address. Dropping it ends every connection.
pub struct FreezingRelay {
    port: u16,
    live: Arc<Mutex<Vec<Arc<AtomicBool>>>>,
    tasks: Arc<Mutex<JoinSet<()>>>,
}

impl FreezingRelay {
    /// Starts relaying a free local port to `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let upstream: SocketAddr = tokio::net::lookup_host(upstream)
            .await?
            .next()
            .ok_or_else(|| std::io::Error::other("the upstream address resolves to nothing"))?;
        let relay = Self {
            port,
            live: Arc::default(),
            tasks: Arc::default(),
        };
        let (live, tasks) = (Arc::clone(&relay.live), Arc::clone(&relay.tasks));
        relay.spawn(accept(listener, upstream, live, tasks));
        Ok(relay)
    }

    /// The local port to connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every connection open now goes silent for good: what either side sends is dropped and
    /// neither side is closed. Connections made after this pass as before.
    pub fn freeze_current(&self) {
        let live = std::mem::take(&mut *self.live.lock().expect("the relay's connections"));
        for frozen in live {
            frozen.store(true, Ordering::SeqCst);
        }
    }

    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        self.tasks.lock().expect("the relay's tasks").spawn(task);
    }
}

impl Drop for FreezingRelay {
    fn drop(&mut self) {
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.abort_all();
        }
    }
}

async fn accept(
    listener: TcpListener,
    upstream: SocketAddr,
    live: Arc<Mutex<Vec<Arc<AtomicBool>>>>,
    tasks: Arc<Mutex<JoinSet<()>>>,
) {
    while let Ok((client, _)) = listener.accept().await {
        let Ok(server) = TcpStream::connect(upstream).await else {
            continue;
        };
        let frozen = Arc::new(AtomicBool::new(false));
        live.lock()
            .expect("the relay's connections")
            .push(Arc::clone(&frozen));
        let (client_read, client_write) = client.into_split();
        let (server_read, server_write) = server.into_split();
        let mut tasks = tasks.lock().expect("the relay's tasks");
        tasks.spawn(pipe(client_read, server_write, Arc::clone(&frozen)));
        tasks.spawn(pipe(server_read, client_write, frozen));
    }
}

/// Copies `from` to `to` until `from` ends; once frozen, drops what it reads, and keeps `to`
/// open rather than pass an end on.
async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, frozen: Arc<AtomicBool>) {
    let mut buffer = vec![0; 16 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        if frozen.load(Ordering::SeqCst) {
            continue;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            break;
        }
    }
    if frozen.load(Ordering::SeqCst) {
        // Silent for good: the other side is never told.
        let _held = to;
        std::future::pending::<()>().await;
    }
}
