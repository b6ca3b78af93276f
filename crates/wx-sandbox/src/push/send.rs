//! One HTTP exchange with a server URL: over a fresh loopback connection (hyper's client), or
//! in process. Each attempt has its own connection, closed when the attempt ends or times out.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::AttemptError;
use super::config::{BoxError, MAX_ANSWER, PushTarget, Target};

/// A status and a body read in full.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: Bytes,
}

impl PushTarget {
    /// Sends `method` to the target with `query` appended to its URL, waiting `timeout` at
    /// most for the whole answer.
    pub(crate) async fn exchange(
        &self,
        method: Method,
        query: &str,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Answer, AttemptError> {
        let attempt = async {
            match &self.0 {
                Target::Url(uri) => over_http(uri, method, query, body).await,
                Target::Handler(handler, path) => {
                    let request = request(method, &path_and_query(path, query), body)
                        .map_err(|e| AttemptError::Unreachable(e.to_string()))?;
                    let response = handler(request)
                        .await
                        .map_err(|e| AttemptError::Unreachable(e.to_string()))?;
                    Ok(Answer {
                        status: response.status(),
                        body: response.into_body(),
                    })
                }
            }
        };
        tokio::time::timeout(timeout, attempt)
            .await
            .unwrap_or(Err(AttemptError::Timeout))
    }
}

/// `path?query`, keeping a query the configured URL already has.
fn path_and_query(uri: &Uri, query: &str) -> String {
    match uri.query() {
        Some(q) if !q.is_empty() => format!("{}?{q}&{query}", uri.path()),
        _ => format!("{}?{query}", uri.path()),
    }
}

fn request(method: Method, target: &str, body: Bytes) -> Result<Request<Bytes>, http::Error> {
    let mut builder = Request::builder().method(method).uri(target);
    if !body.is_empty() {
        builder = builder.header(header::CONTENT_TYPE, "text/xml");
    }
    builder.body(body)
}

async fn over_http(
    uri: &Uri,
    method: Method,
    query: &str,
    body: Bytes,
) -> Result<Answer, AttemptError> {
    let unreachable = |e: &dyn std::fmt::Display| AttemptError::Unreachable(e.to_string());
    let host = uri.host().unwrap_or_default();
    let port = uri.port_u16().unwrap_or(80);
    let stream = TcpStream::connect((host, port))
        .await
        .map_err(|e| unreachable(&e))?;
    let (mut sender, connection) = http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
        .await
        .map_err(|e| unreachable(&e))?;
    let mut request =
        request(method, &path_and_query(uri, query), body).map_err(|e| unreachable(&e))?;
    let authority = uri.authority().map_or(host, |a| a.as_str());
    if let Ok(v) = HeaderValue::from_str(authority) {
        request.headers_mut().insert(header::HOST, v);
    }
    let exchange = async move {
        let response: Response<_> = sender
            .send_request(request.map(Full::new))
            .await
            .map_err(|e| unreachable(&e))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e: BoxError| unreachable(&e))?
            .to_bytes();
        Ok(Answer { status, body })
    };
    tokio::pin!(exchange);
    tokio::pin!(connection);
    // The connection is driven here, not spawned: when the attempt ends (or its timeout drops
    // it) the socket closes, as WeChat's does.
    tokio::select! {
        biased;
        answer = &mut exchange => answer,
        _ = &mut connection => exchange.await,
    }
}
