//! A TCP proxy on loopback that can hold back what its clients send to the
//! server: a request stalled in flight, as when the network or the sending
//! process pauses, with the server itself running on. Every connection and
//! the listener stop when the proxy is dropped.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// See the module documentation.
#[derive(Debug)]
pub struct StallProxy {
    port: u16,
    stalled: Arc<watch::Sender<bool>>,
    accept: JoinHandle<()>,
}

impl StallProxy {
    /// Listens on a free loopback port and forwards each connection to
    /// `127.0.0.1:target`.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn start(target: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let port = listener.local_addr().expect("its address").port();
        let stalled = Arc::new(watch::Sender::new(false));
        let gate = Arc::clone(&stalled);
        let accept = tokio::spawn(async move {
            // Dropped with the accept task: aborts every connection.
            let mut connections = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)).await else {
                    continue;
                };
                connections.spawn(forward(client, server, gate.subscribe()));
            }
        });
        Self {
            port,
            stalled,
            accept,
        }
    }

    /// The proxy's port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// While on, bytes from clients are read and held; when turned off
    /// they go on to the server, in order. Replies are never held.
    pub fn stall(&self, on: bool) {
        self.stalled.send_replace(on);
    }
}

impl Drop for StallProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Copies both ways until either side closes; client bytes wait while
/// `stalled` reads true.
async fn forward(client: TcpStream, server: TcpStream, mut stalled: watch::Receiver<bool>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let up = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if stalled.wait_for(|on| !*on).await.is_err() {
                return;
            }
            if server_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let down = async move {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
    };
    tokio::select! {
        () = up => {}
        () = down => {}
    }
}
