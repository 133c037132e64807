//! The one way a test serves an axum app of its own (an echo origin, a JWKS endpoint, a
//! scripted origin): on a thread with its own runtime, so that blocking test code can
//! drive the edge while the app answers, and stopped with a oneshot so that a test can
//! take a peer down mid-test and nothing outlives it.

use std::net::SocketAddr;
use std::thread::JoinHandle;

use tokio::sync::oneshot;
use xtask::stack::Upstream;

/// An axum app listening on a free loopback port until stopped or dropped.
pub struct FixtureServer {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FixtureServer {
    /// Serves `app` on a multi-threaded runtime of `workers` threads.
    pub fn start(workers: usize, app: axum::Router) -> FixtureServer {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        FixtureServer {
            addr,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// A named backend pointing at this server.
    pub fn upstream(&self) -> Upstream {
        Upstream::Address(self.addr)
    }

    /// Stops serving and waits for the server's thread (the peer goes down).
    pub fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for FixtureServer {
    fn drop(&mut self) {
        self.stop();
    }
}
