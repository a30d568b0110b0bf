//! [`HoldingProxy`]: a TCP proxy in front of the test node that, once armed, holds a process's
//! requests from its `n`th `POST /_aliases` on, as if that process stalled (a pause, a VM
//! migration) just as it sent it, until the test releases them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use elasticsearch::Elasticsearch;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// See the module.
pub struct HoldingProxy {
    client: Elasticsearch,
    /// `POST /_aliases` requests to let through before holding (`usize::MAX`: not armed).
    armed: Arc<AtomicUsize>,
    /// `true` once a request is held.
    held: watch::Receiver<bool>,
    release: watch::Sender<bool>,
}

impl HoldingProxy {
    /// A proxy to the node at `ELASTICSEARCH_URL`.
    pub async fn start() -> Self {
        let url = std::env::var("ELASTICSEARCH_URL").expect("ELASTICSEARCH_URL");
        let upstream = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let armed = Arc::new(AtomicUsize::new(usize::MAX));
        let (holding, held) = watch::channel(false);
        let (release, released) = watch::channel(false);
        let holding = Arc::new(holding);
        tokio::spawn({
            let armed = armed.clone();
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    let Ok(node) = TcpStream::connect(&upstream).await else {
                        continue;
                    };
                    tokio::spawn(relay(
                        client,
                        node,
                        armed.clone(),
                        holding.clone(),
                        released.clone(),
                    ));
                }
            }
        });
        let client = cqrs_elastic::connect(&format!("http://{address}")).expect("client");
        Self {
            client,
            armed,
            held,
            release,
        }
    }

    /// A client whose requests go through the proxy.
    pub fn client(&self) -> Elasticsearch {
        self.client.clone()
    }

    /// From now on, the `n`th `POST /_aliases` (from 1) and every request after it are held.
    pub fn arm(&self, n: usize) {
        self.armed.store(n.saturating_sub(1), Ordering::SeqCst);
    }

    /// Waits until a request is held.
    pub async fn wait_held(&self) {
        let mut held = self.held.clone();
        tokio::time::timeout(super::held::HANDSHAKE, held.wait_for(|h| *h))
            .await
            .expect("a request held in time")
            .expect("the proxy runs");
    }

    /// Lets every held request go on, and all later ones.
    pub fn release(&self) {
        self.release.send_replace(true);
    }
}

async fn relay(
    client: TcpStream,
    node: TcpStream,
    armed: Arc<AtomicUsize>,
    holding: Arc<watch::Sender<bool>>,
    mut released: watch::Receiver<bool>,
) {
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_node, mut to_node) = node.into_split();
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut from_node, &mut to_client).await;
    });
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let Ok(read) = from_client.read(&mut buffer).await else {
            return;
        };
        if read == 0 {
            return;
        }
        if buffer[..read].starts_with(b"POST /_aliases") {
            // Counts down to the one to hold (a countdown at usize::MAX is not armed).
            let before = armed.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                (left != usize::MAX && left > 0).then(|| left - 1)
            });
            if before.is_err() && armed.load(Ordering::SeqCst) == 0 {
                holding.send_replace(true);
            }
        }
        if *holding.borrow() && released.wait_for(|r| *r).await.is_err() {
            return;
        }
        if to_node.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}
