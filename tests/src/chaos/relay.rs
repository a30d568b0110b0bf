//! [`FreezingRelay`]: a TCP relay whose open connections can go silent for good, or be cut,
//! while new ones pass: network faults Toxiproxy cannot make.
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
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;

/// A relay on `127.0.0.1` toward one upstream address. Dropping it ends every connection.
pub struct FreezingRelay {
    port: u16,
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    /// The connections open now, each registered as soon as it is accepted.
    links: Mutex<Vec<Link>>,
    /// New connections wait until then before they reach the upstream.
    hold_until: Mutex<Option<Instant>>,
    tasks: Mutex<JoinSet<()>>,
}

/// One relayed connection: its task (both directions), and whether it went silent.
struct Link {
    frozen: Arc<AtomicBool>,
    task: AbortHandle,
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
        let shared = Arc::new(Shared::default());
        let accepting = accept(listener, upstream, Arc::clone(&shared));
        shared.tasks().spawn(accepting);
        Ok(Self { port, shared })
    }

    /// The local port to connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every connection open now goes silent for good: what either side sends is dropped and
    /// neither side is closed. Connections made after this pass as before.
    pub fn freeze_current(&self) {
        for link in self.shared.take_links() {
            link.frozen.store(true, Ordering::SeqCst);
        }
    }

    /// Every connection open now is closed, both ends, and new connections wait `hold` before
    /// they reach the upstream (a server restarting, or a failover taking its time).
    pub fn cut_current_and_hold_new(&self, hold: Duration) {
        *self.shared.hold_until.lock().expect("the relay's hold") = Some(Instant::now() + hold);
        for link in self.shared.take_links() {
            link.task.abort();
        }
    }
}

impl Shared {
    fn tasks(&self) -> std::sync::MutexGuard<'_, JoinSet<()>> {
        self.tasks.lock().expect("the relay's tasks")
    }

    fn take_links(&self) -> Vec<Link> {
        std::mem::take(&mut *self.links.lock().expect("the relay's connections"))
    }
}

impl Drop for FreezingRelay {
    fn drop(&mut self) {
        if let Ok(mut tasks) = self.shared.tasks.lock() {
            tasks.abort_all();
        }
    }
}

async fn accept(listener: TcpListener, upstream: SocketAddr, shared: Arc<Shared>) {
    while let Ok((client, _)) = listener.accept().await {
        let frozen = Arc::new(AtomicBool::new(false));
        let hold_until = *shared.hold_until.lock().expect("the relay's hold");
        let task = shared
            .tasks()
            .spawn(link(client, upstream, hold_until, Arc::clone(&frozen)));
        (shared.links.lock().expect("the relay's connections")).push(Link { frozen, task });
    }
}

/// Relays `client` to `upstream` (after `hold_until`, if set) in both directions.
async fn link(
    client: TcpStream,
    upstream: SocketAddr,
    hold_until: Option<Instant>,
    frozen: Arc<AtomicBool>,
) {
    if let Some(until) = hold_until {
        tokio::time::sleep_until(until).await;
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::join!(
        pipe(client_read, server_write, Arc::clone(&frozen)),
        pipe(server_read, client_write, frozen)
    );
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
