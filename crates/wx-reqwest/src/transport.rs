//! [`ReqwestTransport`]: [`HttpTransport`] on a [`reqwest::Client`].

use std::fmt;
use std::time::Instant;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use wx_core::{HttpRequest, HttpResponse, HttpTransport, TransportError};

use crate::builder::{DEFAULT_MAX_BODY_SIZE, ReqwestTransportBuilder};
use crate::error::{body_too_large, map_error};

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

    /// The underlying client.
    #[must_use]
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    async fn execute(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let HttpRequest {
            method,
            url,
            headers,
            body,
            response_limit,
            ..
        } = request;
        let mut builder = self.client.request(method, url.as_str());
        // The URL is parsed into the request: its text is not kept for the whole call.
        drop(url);
        if !headers.is_empty() {
            builder = builder.headers(headers);
        }
        if let Some(body) = body {
            builder = builder.body(body);
        }
        let mut response = builder.send().await.map_err(map_error)?;
        let status = response.status();
        let headers = std::mem::take(response.headers_mut());
        // The request's own limit (a download's documented file size) replaces the default for
        // a file; a JSON or text answer keeps the default when it is tighter.
        let limit = wx_core::response_cap(response_limit, &headers, self.max_body_size);
        let body = read_capped(response, limit).await?;
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

/// Reads the body and stops as soon as it passes `limit`: the response (and its connection)
/// is then dropped unread.
async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Bytes, TransportError> {
    let declared = response.content_length();
    match declared {
        Some(len) if len > limit as u64 => Err(body_too_large(limit, Some(len))),
        // hyper reads exactly the declared length (more is a protocol error), so the body is
        // within the cap: collected whole, without a copy when it arrives in one piece.
        Some(_) => response.bytes().await.map_err(map_error),
        None => {
            let mut body = BytesMut::new();
            while let Some(chunk) = response.chunk().await.map_err(map_error)? {
                if chunk.len() > limit - body.len() {
                    return Err(body_too_large(limit, None));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body.freeze())
        }
    }
}

#[async_trait]
impl HttpTransport for ReqwestTransport {
    /// Sends `request`; see [`HttpTransport::send`].
    ///
    /// # Errors
    /// A [`TransportError`] whose source chain holds no URL: `Connect` when no connection could
    /// be made (refused, DNS, TLS, connect timeout), `Timeout` when the request ran past its
    /// timeout, `Io` when the connection broke mid-way, `BodyTooLarge` when the body passed
    /// the cap, `Other` otherwise (e.g. an unparsable URL).
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        // The log line below costs a clock read and a copy of the path: only when it is on.
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return self.execute(request).await;
        }
        let started = Instant::now();
        let method = request.method.clone();
        // The path only: the query carries `secret=` and `access_token=`.
        let path = request.path().to_owned();
        let result = self.execute(request).await;
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
