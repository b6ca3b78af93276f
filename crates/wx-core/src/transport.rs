//! The HTTP transport contract: one request in, one response out.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use crate::error::TransportError;
use crate::multipart::EncodedForm;

/// One HTTP request. `Debug` shows the method and the path only: the query string of this API
/// carries `secret=` and `access_token=`.
///
/// A body is plain bytes whatever it holds: a multipart upload is encoded before it gets here
/// ([`MultipartForm`](crate::MultipartForm)), so a transport sends it like any other body.
#[derive(Clone)]
#[non_exhaustive]
pub struct HttpRequest {
    /// The method.
    pub method: Method,
    /// The full URL, query string included.
    pub url: String,
    /// Request headers.
    pub headers: HeaderMap,
    /// The body, if any.
    pub body: Option<Bytes>,
    /// The largest file this request accepts as its answer, in bytes: a fact of the endpoint (a
    /// file download is allowed WeChat's documented file size). `None`: the transport's own cap,
    /// which suits JSON answers. Transports that cap bodies honour it through [`response_cap`]:
    /// an answer labelled JSON or text on the same path keeps the transport's cap when that is
    /// tighter; a larger body is a `BodyTooLarge` transport error.
    pub response_limit: Option<usize>,
}

impl HttpRequest {
    /// A `method` request to `url` without headers or body.
    #[must_use]
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        HttpRequest {
            method,
            url: url.into(),
            headers: HeaderMap::new(),
            body: None,
            response_limit: None,
        }
    }

    /// A GET of `url` without headers.
    #[must_use]
    pub fn get(url: impl Into<String>) -> Self {
        Self::new(Method::GET, url)
    }

    /// A POST of `body` with the given `Content-Type` to `url`.
    #[must_use]
    pub fn post(url: impl Into<String>, content_type: HeaderValue, body: impl Into<Bytes>) -> Self {
        let mut r = Self::new(Method::POST, url);
        r.headers.insert(http::header::CONTENT_TYPE, content_type);
        r.body = Some(body.into());
        r
    }

    /// A POST of a JSON body to `url`.
    #[must_use]
    pub fn post_json(url: impl Into<String>, body: impl Into<Bytes>) -> Self {
        Self::post(url, HeaderValue::from_static("application/json"), body)
    }

    /// A POST of an encoded multipart form to `url` (its `Content-Type` names the boundary).
    #[must_use]
    pub fn post_form(url: impl Into<String>, form: EncodedForm) -> Self {
        Self::post(url, form.content_type, form.body)
    }

    /// Sets [`response_limit`](Self::response_limit).
    #[must_use]
    pub fn with_response_limit(mut self, limit: Option<usize>) -> Self {
        self.response_limit = limit;
        self
    }

    /// The request's `Content-Type`, if it has one that is text.
    #[must_use]
    pub fn content_type(&self) -> Option<&str> {
        self.headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
    }

    /// The URL without its query string and fragment: safe to log.
    #[must_use]
    pub fn url_without_query(&self) -> &str {
        let end = self.url.find(['?', '#']).unwrap_or(self.url.len());
        &self.url[..end]
    }

    /// The path of the URL (after scheme and authority), without its query string.
    #[must_use]
    pub fn path(&self) -> &str {
        let base = self.url_without_query();
        let after_scheme = base.find("://").map_or(0, |i| i + 3);
        base[after_scheme..]
            .find('/')
            .map_or("/", |i| &base[after_scheme + i..])
    }

    /// The decoded query parameters, in order. Test doubles and the sandbox use this.
    #[must_use]
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        let Some(start) = self.url.find('?') else {
            return Vec::new();
        };
        let rest = &self.url[start + 1..];
        let end = rest.find('#').unwrap_or(rest.len());
        crate::urlenc::parse_query(&rest[..end])
    }

    /// The value of one query parameter.
    #[must_use]
    pub fn query(&self, name: &str) -> Option<String> {
        self.query_pairs()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

/// The cap on one response body: the one rule every capping transport applies.
///
/// `response_limit` is the request's [`HttpRequest::response_limit`], `transport_cap` the
/// transport's own cap (sized for JSON answers) and `headers` the answer's headers. Without a
/// request limit the transport's cap applies. With one, a file (an answer with a
/// `Content-Disposition`, or of a type that is neither JSON nor text) may be as large as the
/// request allows; a JSON or text answer on the same path (WeChat's errors, a video's URL) keeps
/// the smaller of the two, so a download's larger limit never lets a JSON body past the JSON cap.
///
/// ```
/// use wx_core::response_cap;
/// use wx_core::reexports::http::{HeaderMap, HeaderValue, header::CONTENT_TYPE};
/// let mut json = HeaderMap::new();
/// json.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
/// let mut image = HeaderMap::new();
/// image.insert(CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
/// assert_eq!(response_cap(Some(10_000), &image, 100), 10_000);
/// assert_eq!(response_cap(Some(10_000), &json, 100), 100);
/// assert_eq!(response_cap(None, &image, 100), 100);
/// ```
#[must_use]
pub fn response_cap(
    response_limit: Option<usize>,
    headers: &HeaderMap,
    transport_cap: usize,
) -> usize {
    match response_limit {
        None => transport_cap,
        Some(limit) if is_document(headers) => limit.min(transport_cap),
        Some(limit) => limit,
    }
}

/// Whether an answer is labelled as a document (JSON or text) rather than a file.
fn is_document(headers: &HeaderMap) -> bool {
    if headers.contains_key(http::header::CONTENT_DISPOSITION) {
        return false;
    }
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase)
        .is_some_and(|ct| ct.contains("json") || ct.trim_start().starts_with("text/"))
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field(
                "url",
                &format_args!("{}?[redacted]", self.url_without_query()),
            )
            .field("body_len", &self.body.as_ref().map(Bytes::len))
            .field("response_limit", &self.response_limit)
            .finish_non_exhaustive()
    }
}

/// One HTTP response, as it came: any status, headers, and the body bytes.
#[derive(Clone)]
pub struct HttpResponse {
    /// The status.
    pub status: StatusCode,
    /// Response headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl HttpResponse {
    /// A response with `status` and `body` and no headers.
    #[must_use]
    pub fn new(status: StatusCode, body: impl Into<Bytes>) -> Self {
        HttpResponse {
            status,
            headers: HeaderMap::new(),
            body: body.into(),
        }
    }

    /// A 200 response with a JSON body and WeChat's usual (non-standard) content type.
    #[must_use]
    pub fn json(body: impl Into<Bytes>) -> Self {
        let mut r = HttpResponse::new(StatusCode::OK, body);
        r.headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json; encoding=utf-8"),
        );
        r
    }
}

impl fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The body may hold a token: show its length only.
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// The future [`HttpTransport::send`] returns, as `#[async_trait]` writes it: for an
/// implementation that does its synchronous part before making the future (write `send` as a
/// plain `fn` returning this, with `#[async_trait]`'s lifetimes).
pub type SendFuture<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<HttpResponse, TransportError>> + Send + 'a>,
>;

/// Sends one HTTP request. Implementations never follow redirects and never retry: the client
/// does that. The errors they return must not contain the URL (its query holds secrets).
#[async_trait]
pub trait HttpTransport: Send + Sync {
    /// Sends `request` and returns the response, whatever its status.
    ///
    /// # Errors
    /// A classified [`TransportError`] when no complete response was received.
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError>;

    /// The longest a [`send`](Self::send) of this transport can take before it ends by itself
    /// (its own whole-request timeout, connecting and reading the body included), when it
    /// promises one. A client then arms no timer of its own for a request that ends before the
    /// call's deadline anyway: one timer per request instead of two. `None` (the default): the
    /// client bounds every request itself. A transport that returns `Some` must keep the
    /// promise, or a call can outlive its deadline.
    fn send_timeout(&self) -> Option<std::time::Duration> {
        None
    }
}

/// `Arc<T>`, `Box<T>` and `&T` forward to the inner transport's future as it is (no second box).
macro_rules! forward_transport {
    ($($wrapper:ty),+) => {$(
        impl<T: HttpTransport + ?Sized> HttpTransport for $wrapper {
            fn send<'life0, 'async_trait>(
                &'life0 self,
                request: HttpRequest,
            ) -> SendFuture<'async_trait>
            where
                'life0: 'async_trait,
                Self: 'async_trait,
            {
                (**self).send(request)
            }

            fn send_timeout(&self) -> Option<std::time::Duration> {
                (**self).send_timeout()
            }
        }
    )+};
}

forward_transport!(Arc<T>, Box<T>, &T);

/// A transport made from an async closure; see [`transport_fn`].
pub struct FnTransport<F>(F);

impl<F> fmt::Debug for FnTransport<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnTransport")
    }
}

/// Makes a transport from an async closure, e.g. to adapt another HTTP client or to answer
/// requests in a test.
///
/// ```
/// use wx_core::{transport_fn, HttpRequest, HttpResponse};
/// let t = transport_fn(|req: HttpRequest| async move {
///     assert_eq!(req.path(), "/cgi-bin/token");
///     Ok(HttpResponse::json(r#"{"access_token":"T","expires_in":7200}"#))
/// });
/// # let _ = t;
/// ```
pub fn transport_fn<F, Fut>(f: F) -> FnTransport<F>
where
    F: Fn(HttpRequest) -> Fut + Send + Sync,
    Fut: Future<Output = Result<HttpResponse, TransportError>> + Send,
{
    FnTransport(f)
}

#[async_trait]
impl<F, Fut> HttpTransport for FnTransport<F>
where
    F: Fn(HttpRequest) -> Fut + Send + Sync,
    Fut: Future<Output = Result<HttpResponse, TransportError>> + Send,
{
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        (self.0)(request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers 204 and promises to end every send within 5 s.
    struct Prompt;

    #[async_trait]
    impl HttpTransport for Prompt {
        async fn send(&self, _: HttpRequest) -> Result<HttpResponse, TransportError> {
            Ok(HttpResponse {
                status: StatusCode::NO_CONTENT,
                headers: HeaderMap::new(),
                body: Bytes::new(),
            })
        }

        fn send_timeout(&self) -> Option<std::time::Duration> {
            Some(std::time::Duration::from_secs(5))
        }
    }

    /// `Arc`, `Box` and `&` transports send through the inner one and keep its promise.
    #[tokio::test]
    async fn wrappers_forward_send_and_the_timeout() {
        let five = Some(std::time::Duration::from_secs(5));
        let arc: Arc<dyn HttpTransport> = Arc::new(Prompt);
        let boxed: Box<dyn HttpTransport> = Box::new(Prompt);
        let inner = Prompt;
        let by_ref: &dyn HttpTransport = &inner;
        for transport in [&arc as &dyn HttpTransport, &boxed, &by_ref] {
            assert_eq!(transport.send_timeout(), five);
            let response = transport
                .send(HttpRequest::get("http://127.0.0.1/x"))
                .await
                .expect("sent");
            assert_eq!(response.status, StatusCode::NO_CONTENT);
        }
        let plain = transport_fn(|_req: HttpRequest| async {
            Err(TransportError::from_kind(crate::TransportErrorKind::Other))
        });
        assert_eq!(Arc::new(plain).send_timeout(), None);
    }

    #[test]
    fn request_debug_hides_the_query() {
        let r = HttpRequest::get(
            "https://api.weixin.qq.com/cgi-bin/token?grant_type=client_credential&appid=wx1&secret=TOPSECRET",
        );
        let d = format!("{r:?}");
        assert!(!d.contains("TOPSECRET"), "{d}");
        assert!(d.contains("https://api.weixin.qq.com/cgi-bin/token"), "{d}");
        assert_eq!(r.path(), "/cgi-bin/token");
        assert_eq!(r.query("secret").as_deref(), Some("TOPSECRET"));
        assert_eq!(HttpRequest::get("http://h:1").path(), "/");
    }

    #[tokio::test]
    async fn arc_dyn_transport_works() {
        let t: Arc<dyn HttpTransport> =
            Arc::new(transport_fn(|_req| async { Ok(HttpResponse::json("{}")) }));
        let r = t.send(HttpRequest::get("http://x/")).await.expect("send");
        assert_eq!(r.status, StatusCode::OK);
    }
}
