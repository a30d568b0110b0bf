//! [`Relay`]: a TCP relay between the service and a shared server, that a test cuts and
//! restores to play a server going down and coming back, without touching the server.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};

/// Forwards every connection to `target` while open. Cut: live connections are dropped and
/// new ones are accepted and closed at once (as a crashed server's port would answer).
/// Silenced: live connections are dropped and new ones are accepted and held, unanswered (a
/// server that hangs).
pub(crate) struct Relay {
    address: SocketAddr,
    open: Arc<AtomicBool>,
    silent: Arc<AtomicBool>,
    held: Arc<Mutex<Vec<TcpStream>>>,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
    accept: JoinHandle<()>,
}

impl Relay {
    /// A relay on a free port of 127.0.0.1 to `target`, open.
    pub(crate) async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a relay");
        let address = listener.local_addr().expect("the relay's address");
        let open = Arc::new(AtomicBool::new(true));
        let silent = Arc::new(AtomicBool::new(false));
        let held: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let connections: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let accept = tokio::spawn({
            let (open, connections) = (Arc::clone(&open), Arc::clone(&connections));
            let (silent, held) = (Arc::clone(&silent), Arc::clone(&held));
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if silent.load(Ordering::SeqCst) {
                        held.lock().unwrap().push(inbound);
                        continue;
                    }
                    if !open.load(Ordering::SeqCst) {
                        drop(inbound);
                        continue;
                    }
                    let task = tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(target).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    connections.lock().unwrap().push(task.abort_handle());
                }
            }
        });
        Self {
            address,
            open,
            silent,
            held,
            connections,
            accept,
        }
    }

    /// Where to connect instead of the target.
    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }

    /// Drops every live connection and refuses new ones.
    pub(crate) fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }

    /// Drops every live connection and holds new ones without an answer.
    pub(crate) fn silence(&self) {
        self.silent.store(true, Ordering::SeqCst);
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }

    /// Forwards new connections again (and closes the held ones).
    pub(crate) fn restore(&self) {
        self.silent.store(false, Ordering::SeqCst);
        self.held.lock().unwrap().clear();
        self.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}
