//! Shared helpers: secret-leak checks and a raw HTTP/1.1 server.

use std::error::Error as StdError;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The query string WeChat's endpoints carry; none of it may reach an error.
pub(crate) const SECRET_QUERY: &str =
    "?grant_type=client_credential&appid=wx1&secret=SUPERSECRET&access_token=TOKENVALUE";
const SECRETS: [&str; 2] = ["SUPERSECRET", "TOKENVALUE"];

/// Formats every error of the chain with `{}` and `{:?}` and asserts no secret appears.
/// Returns the number of errors in the chain and everything that was printed.
pub(crate) fn assert_no_secrets(error: &(dyn StdError + 'static)) -> (usize, String) {
    let mut printed = String::new();
    let mut depth = 0;
    let mut current = Some(error);
    while let Some(e) = current {
        depth += 1;
        printed.push_str(&format!("[{depth}] {e}\n[{depth}] {e:?}\n"));
        current = e.source();
    }
    for secret in SECRETS {
        assert!(
            !printed.contains(secret),
            "`{secret}` leaked into the error chain:\n{printed}"
        );
    }
    (depth, printed)
}

/// Whether the secrets appear anywhere in the chain (used to show the check can fail).
pub(crate) fn chain_mentions_secret(error: &(dyn StdError + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        let printed = format!("{e} {e:?}");
        if SECRETS.iter().any(|s| printed.contains(s)) {
            return true;
        }
        current = e.source();
    }
    false
}

/// A TCP server on loopback that runs `on_connection` for every accepted connection and counts
/// them. Aborted on drop.
pub(crate) struct RawServer {
    pub(crate) addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl RawServer {
    pub(crate) async fn start<F, Fut>(on_connection: F) -> Self
    where
        F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(on_connection(stream));
            }
        });
        RawServer {
            addr,
            accepted,
            task,
        }
    }

    /// Connections accepted so far.
    pub(crate) fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    pub(crate) fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.addr)
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request head (up to the blank line). `false` when the peer closed first.
/// The requests of these tests have no body.
pub(crate) async fn read_request_head(stream: &mut TcpStream) -> bool {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return false,
        }
    }
    true
}

/// A closed port on loopback: bound, then released.
pub(crate) fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("local addr").port()
}
