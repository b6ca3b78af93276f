//! The loopback HTTP server: hyper, one task per connection, so a fault can close a connection
//! without answering or cut a body mid-stream.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, JoinSet};
use wx_core::{HttpRequest, HttpResponse};

use crate::{Outcome, Sandbox};

/// Largest request body the server reads: JSON bodies are tiny, uploads are files of at most
/// 10 MiB (WeChat's largest media size) plus their multipart framing.
const MAX_REQUEST_BODY: usize = 16 << 20;

type ResponseBody = BoxBody<Bytes, io::Error>;

/// A running sandbox HTTP server. It stops when dropped or on [`shutdown`](Self::shutdown);
/// open connections are closed then.
pub struct SandboxServer {
    addr: SocketAddr,
    stop: Option<watch::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl fmt::Debug for SandboxServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl SandboxServer {
    pub(crate) async fn start(sandbox: Sandbox, addr: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(());
        let task = tokio::spawn(accept_loop(listener, sandbox, stopped));
        tracing::debug!(%addr, "sandbox server listening");
        Ok(SandboxServer {
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The address the server listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: use it as both the api base and the open base of the client.
    #[must_use]
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, closes open connections, and waits until the server task has ended.
    pub async fn shutdown(mut self) {
        drop(self.stop.take());
        if let Some(task) = self.task.take() {
            // The task only ends by itself; a join error means it panicked, nothing to do.
            let _ = task.await;
        }
    }
}

impl Drop for SandboxServer {
    fn drop(&mut self) {
        // Dropping the sender wakes the accept loop, which closes every connection.
        drop(self.stop.take());
    }
}

async fn accept_loop(listener: TcpListener, sandbox: Sandbox, mut stopped: watch::Receiver<()>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve_connection(stream, sandbox.clone()));
                }
                Err(e) => {
                    // E.g. too many open files: wait a little rather than spin.
                    tracing::debug!(error = %e, "sandbox accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

async fn serve_connection(stream: TcpStream, sandbox: Sandbox) {
    // A `Drop` fault wakes this to drop the connection (and its socket) without an answer.
    let kill = Arc::new(Notify::new());
    let service_kill = Arc::clone(&kill);
    let service = service_fn(move |req: Request<Incoming>| {
        let sandbox = sandbox.clone();
        let kill = Arc::clone(&service_kill);
        async move { Ok::<_, Infallible>(handle(sandbox, req, kill).await) }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        result = connection => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "sandbox connection ended with an error");
            }
        }
        () = kill.notified() => {}
    }
}

async fn handle(
    sandbox: Sandbox,
    req: Request<Incoming>,
    kill: Arc<Notify>,
) -> Response<ResponseBody> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_REQUEST_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"),
    };
    let path_and_query = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let mut request = HttpRequest::new(parts.method, format!("http://sandbox{path_and_query}"));
    request.headers = parts.headers;
    request.body = (!body.is_empty()).then_some(body);
    match sandbox.process(&request).await {
        Outcome::Respond(r) => {
            let body = Full::new(r.body.clone())
                .map_err(|never| match never {})
                .boxed();
            to_hyper(r, body)
        }
        Outcome::Drop => {
            kill.notify_one();
            std::future::pending().await
        }
        Outcome::DropMidBody(r) => {
            let len = r.body.len();
            let half = r.body.slice(..len / 2);
            let mut response = to_hyper(r, CutBody::new(half).boxed());
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            response
        }
    }
}

fn to_hyper(r: HttpResponse, body: ResponseBody) -> Response<ResponseBody> {
    let mut response = Response::new(body);
    *response.status_mut() = r.status;
    *response.headers_mut() = r.headers;
    response
}

fn plain(status: StatusCode, message: &'static str) -> Response<ResponseBody> {
    let mut r = HttpResponse::new(status, message);
    r.headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    let body = Full::new(r.body.clone())
        .map_err(|never| match never {})
        .boxed();
    to_hyper(r, body)
}

/// A body that yields its first half, pauses so the bytes reach the socket, then fails, which
/// makes hyper close the connection short of the announced `Content-Length`.
struct CutBody {
    half: Option<Bytes>,
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl CutBody {
    fn new(half: Bytes) -> Self {
        CutBody {
            half: Some(half),
            pause: None,
        }
    }
}

impl Body for CutBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if let Some(half) = self.half.take() {
            return Poll::Ready(Some(Ok(Frame::data(half))));
        }
        let pause = self
            .pause
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(Duration::from_millis(20))));
        match pause.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "sandbox fault: body cut",
            )))),
        }
    }

    fn is_end_stream(&self) -> bool {
        false
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
