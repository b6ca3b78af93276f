//! [`ReqwestTransport`]: [`HttpTransport`] on a [`reqwest::Client`].

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use wx_core::{
    HttpRequest, HttpResponse, HttpTransport, SendFuture, TransportError, TransportErrorKind,
};

use crate::builder::{DEFAULT_MAX_BODY_SIZE, ReqwestTransportBuilder};
use crate::error::{body_too_large, map_error};
use crate::url_cache;

/// An [`HttpTransport`] on reqwest (tokio). Clones share one connection pool, so build it once
/// and clone it where needed.
///
/// Requests and responses pass through unchanged: any status (a 302 is returned with its
/// `Location`, never followed), all headers, and the body bytes, up to the request's
/// [`response_limit`](HttpRequest::response_limit) when it sets one (file downloads), else
/// [`max_body_size`](Self::max_body_size); a JSON or text answer to a download keeps
/// `max_body_size` when that is tighter ([`wx_core::response_cap`]).
#[derive(Clone)]
pub struct ReqwestTransport {
    client: reqwest::Client,
    max_body_size: usize,
    /// The client's whole-request timeout, when this crate built the client and knows it.
    timeout: Option<Duration>,
}

impl ReqwestTransport {
    /// A transport with the default settings (see [`ReqwestTransportBuilder`]).
    ///
    /// # Errors
    /// A [`TransportError`] of kind `Other` when the TLS backend fails to initialise.
    pub fn new() -> Result<Self, TransportError> {
        Self::builder().build()
    }

    /// Starts a builder with the default settings.
    pub fn builder() -> ReqwestTransportBuilder {
        ReqwestTransportBuilder::new()
    }

    /// Replaces the cap on response bodies of requests that set no
    /// [`response_limit`](HttpRequest::response_limit), in bytes.
    #[must_use]
    pub fn with_max_body_size(mut self, bytes: usize) -> Self {
        self.max_body_size = bytes;
        self
    }

    /// The cap on response bodies of requests that set no
    /// [`response_limit`](HttpRequest::response_limit), in bytes.
    #[must_use]
    pub fn max_body_size(&self) -> usize {
        self.max_body_size
    }

    /// Records the whole-request timeout the client was built with (see
    /// [`HttpTransport::send_timeout`]).
    pub(crate) fn with_known_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The underlying client.
    #[must_use]
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// [`start`](Self::start) now when a Tokio runtime is current, else when first polled:
    /// reqwest arms its timeout as a request is sent, which needs the runtime, and a caller may
    /// make the future outside one and poll it inside.
    fn begin<'a>(&'a self, request: HttpRequest) -> SendFuture<'a> {
        if tokio::runtime::Handle::try_current().is_ok() {
            Box::pin(self.start(request))
        } else {
            Box::pin(async move { self.start(request).await })
        }
    }

    /// Starts `request`: builds reqwest's request (the URL is parsed here and its text
    /// dropped) and returns what is left to await. Plain code, so that the future of a call
    /// holds only reqwest's pending handle and the body limit, not the request's parts.
    fn start(
        &self,
        request: HttpRequest,
    ) -> impl Future<Output = Result<HttpResponse, TransportError>> + Send + 'static {
        let HttpRequest {
            method,
            url,
            headers,
            body,
            response_limit,
            ..
        } = request;
        // A `reqwest::Request` made directly and executed: a `RequestBuilder` would clone the
        // client and move the request through every setter.
        let parsed = match url_cache::parse(&url) {
            Some(parsed) => Ok(parsed),
            None => reqwest::Url::parse(&url),
        };
        drop(url);
        // An unparsable URL is reported when the pending request is awaited; url's error
        // names what is wrong, never the URL.
        let pending = parsed.map(|parsed| {
            let mut request = reqwest::Request::new(method, parsed);
            *request.headers_mut() = headers;
            *request.body_mut() = body.map(reqwest::Body::from);
            self.client.execute(request)
        });
        let max_body_size = self.max_body_size;
        async move {
            let mut response = match pending {
                Ok(pending) => pending.await.map_err(map_error)?,
                Err(e) => return Err(TransportError::new(TransportErrorKind::Other, e)),
            };
            let status = response.status();
            let headers = std::mem::take(response.headers_mut());
            // The request's own limit (a download's documented file size) replaces the default
            // for a file; a JSON or text answer keeps the default when it is tighter.
            let limit = wx_core::response_cap(response_limit, &headers, max_body_size);
            let body = read_capped(&mut response, limit).await?;
            Ok(HttpResponse {
                status,
                headers,
                body,
            })
        }
    }
}

/// Reads the body and stops as soon as it passes `limit`: the response (and its connection)
/// is then dropped unread. A body that arrives in one piece is returned as it came, without a
/// copy; only a second piece starts a buffer. (reqwest's own `bytes()` would keep three copies
/// of the response in the future of every call in flight.)
async fn read_capped(
    response: &mut reqwest::Response,
    limit: usize,
) -> Result<Bytes, TransportError> {
    let declared = response.content_length();
    if let Some(len) = declared.filter(|&len| len > limit as u64) {
        return Err(body_too_large(limit, Some(len)));
    }
    let mut first = Bytes::new();
    let mut more: Option<BytesMut> = None;
    while let Some(chunk) = response.chunk().await.map_err(map_error)? {
        if first.is_empty() && more.is_none() && chunk.len() <= limit {
            first = chunk;
        } else {
            more_body(&mut first, &mut more, &chunk, limit, declared)?;
        }
    }
    Ok(more.map_or(first, BytesMut::freeze))
}

/// A second piece of a body (or a first one past `limit`): copied into a buffer of the
/// declared size. Out of line and cold, so that the code of a one-piece answer stays compact.
#[cold]
#[inline(never)]
fn more_body(
    first: &mut Bytes,
    more: &mut Option<BytesMut>,
    chunk: &[u8],
    limit: usize,
    declared: Option<u64>,
) -> Result<(), TransportError> {
    let read = more.as_ref().map_or(first.len(), BytesMut::len);
    if chunk.len() > limit - read {
        return Err(body_too_large(limit, None));
    }
    match more.as_mut() {
        Some(buf) => buf.extend_from_slice(chunk),
        None => {
            // `declared <= limit` here, so the capacity is bounded by the cap.
            let capacity = declared
                .map_or(0, |len| len as usize)
                .max(read + chunk.len());
            let mut buf = BytesMut::with_capacity(capacity);
            buf.extend_from_slice(first);
            buf.extend_from_slice(chunk);
            // The first piece now lives in the buffer.
            *first = Bytes::new();
            *more = Some(buf);
        }
    }
    Ok(())
}

impl HttpTransport for ReqwestTransport {
    /// Sends `request`; see [`HttpTransport::send`].
    ///
    /// # Errors
    /// A [`TransportError`] whose source chain holds no URL: `Connect` when no connection could
    /// be made (refused, DNS, TLS, connect timeout), `Timeout` when the request ran past its
    /// timeout, `Io` when the connection broke mid-way, `BodyTooLarge` when the body passed
    /// the cap, `Other` otherwise (e.g. an unparsable URL).
    fn send<'life0, 'async_trait>(&'life0 self, request: HttpRequest) -> SendFuture<'async_trait>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        // The log line below costs a clock read and a copy of the path: only when it is on.
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return self.begin(request);
        }
        let started = Instant::now();
        let method = request.method.clone();
        // The path only: the query carries `secret=` and `access_token=`.
        let path = request.path().to_owned();
        let call = self.begin(request);
        Box::pin(async move {
            let result = call.await;
            let elapsed_ms = started.elapsed().as_millis();
            match &result {
                Ok(response) => tracing::debug!(
                    %method,
                    path,
                    status = response.status.as_u16(),
                    body_len = response.body.len(),
                    elapsed_ms,
                    "wx http response"
                ),
                Err(error) => tracing::debug!(
                    %method,
                    path,
                    kind = ?error.kind(),
                    elapsed_ms,
                    "wx http request failed"
                ),
            }
            result
        })
    }

    /// The whole-request timeout of a transport built with [`ReqwestTransport::builder`]
    /// (reqwest ends a request, connecting and reading the body included, when it passes);
    /// `None` for a client handed over with `From`, whose timeout reqwest does not tell.
    fn send_timeout(&self) -> Option<Duration> {
        self.timeout
    }
}

/// Reuses a client you already have: its timeouts, proxies, TLS and pool are kept, and the
/// body cap is [`DEFAULT_MAX_BODY_SIZE`] (change it with
/// [`with_max_body_size`](ReqwestTransport::with_max_body_size)).
///
/// reqwest follows redirects by default and a redirect policy cannot be set per request: build
/// the client with `.redirect(reqwest::redirect::Policy::none())` so that a 302 reaches the
/// caller, as [`HttpTransport`] requires.
///
/// **Do not hand over a client built with `connection_verbose(true)`**: reqwest then logs every
/// byte read and written at TRACE, and the requests of WeChat's token and OAuth endpoints carry
/// the AppSecret, the access token and user tokens in their query strings. This crate keeps
/// them out of its own logs and errors; it cannot for a client configured to log its traffic.
impl From<reqwest::Client> for ReqwestTransport {
    fn from(client: reqwest::Client) -> Self {
        ReqwestTransport {
            client,
            max_body_size: DEFAULT_MAX_BODY_SIZE,
            // reqwest does not say what timeout a client was built with.
            timeout: None,
        }
    }
}

impl fmt::Debug for ReqwestTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // reqwest's `Client` Debug prints its proxies, whose URLs may carry a password.
        f.debug_struct("ReqwestTransport")
            .field("max_body_size", &self.max_body_size)
            .finish_non_exhaustive()
    }
}
