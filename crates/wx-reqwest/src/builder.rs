//! [`ReqwestTransportBuilder`]: the settings of a [`ReqwestTransport`].

use std::fmt;
use std::time::Duration;

use wx_core::TransportError;

use crate::error::map_error;
use crate::transport::ReqwestTransport;

/// Default time allowed to open a connection (TCP and TLS handshake): 5 s.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Default time allowed for a whole request, from connecting to the last body byte: 15 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// Default cap on a response body: 8 MiB. WeChat's JSON answers are a few KiB.
pub const DEFAULT_MAX_BODY_SIZE: usize = 8 * 1024 * 1024;

/// Default time an idle connection stays in the pool: 90 s (reqwest's own default).
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Default `User-Agent`: `wx-rs/<version of this crate>`.
pub const DEFAULT_USER_AGENT: &str = concat!("wx-rs/", env!("CARGO_PKG_VERSION"));

/// Settings of a [`ReqwestTransport`]; start from [`ReqwestTransport::builder`].
///
/// ```
/// use std::time::Duration;
/// use wx_reqwest::ReqwestTransport;
///
/// let transport = ReqwestTransport::builder()
///     .connect_timeout(Duration::from_secs(2))
///     .timeout(Duration::from_secs(10))
///     .user_agent("my-service/1.0")
///     .max_body_size(1024 * 1024)
///     .build()?;
/// # Ok::<(), wx_core::TransportError>(())
/// ```
#[must_use]
pub struct ReqwestTransportBuilder {
    connect_timeout: Duration,
    timeout: Duration,
    proxies: Vec<reqwest::Proxy>,
    user_agent: String,
    pool_idle_timeout: Option<Duration>,
    pool_max_idle_per_host: usize,
    max_body_size: usize,
}

impl Default for ReqwestTransportBuilder {
    fn default() -> Self {
        ReqwestTransportBuilder {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            proxies: Vec::new(),
            user_agent: DEFAULT_USER_AGENT.to_owned(),
            pool_idle_timeout: Some(DEFAULT_POOL_IDLE_TIMEOUT),
            pool_max_idle_per_host: usize::MAX,
            max_body_size: DEFAULT_MAX_BODY_SIZE,
        }
    }
}

impl ReqwestTransportBuilder {
    /// The default settings (the `DEFAULT_*` constants of this crate).
    pub fn new() -> Self {
        Self::default()
    }

    /// Time allowed to open a connection, TLS handshake included (default 5 s). Running out is a
    /// `Connect` error: the request was not sent.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for a whole request, from connecting to the last byte of the body
    /// (default 15 s). Running out is a `Timeout` error.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Adds a proxy; call again to add more (the first that matches a URL is used). Without
    /// one, reqwest reads the `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY` and `NO_PROXY`
    /// environment variables.
    pub fn proxy(mut self, proxy: reqwest::Proxy) -> Self {
        self.proxies.push(proxy);
        self
    }

    /// The `User-Agent` header (default `wx-rs/<version>`). A value that is not a valid header
    /// value makes [`build`](Self::build) fail.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// How long an idle connection stays in the pool (default 90 s); `None` keeps it until the
    /// server closes it.
    pub fn pool_idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.pool_idle_timeout = timeout;
        self
    }

    /// The most idle connections kept per host (default: no limit). `0` disables keep-alive.
    pub fn pool_max_idle_per_host(mut self, max: usize) -> Self {
        self.pool_max_idle_per_host = max;
        self
    }

    /// The largest response body accepted, in bytes (default 8 MiB), for requests that set no
    /// [`response_limit`](wx_core::HttpRequest::response_limit) of their own (JSON answers; a
    /// file download carries WeChat's documented file size, but a JSON or text answer to it
    /// keeps this cap when tighter). A larger body is a `BodyTooLarge` error and the rest of it
    /// is not read.
    pub fn max_body_size(mut self, bytes: usize) -> Self {
        self.max_body_size = bytes;
        self
    }

    /// Builds the transport. Redirects are never followed.
    ///
    /// # Errors
    /// A [`TransportError`] of kind `Other` when reqwest cannot build its client: an invalid
    /// user agent, or a TLS backend that fails to initialise.
    pub fn build(self) -> Result<ReqwestTransport, TransportError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .user_agent(self.user_agent)
            .pool_idle_timeout(self.pool_idle_timeout)
            .pool_max_idle_per_host(self.pool_max_idle_per_host)
            .redirect(reqwest::redirect::Policy::none());
        for proxy in self.proxies {
            builder = builder.proxy(proxy);
        }
        let client = builder.build().map_err(map_error)?;
        Ok(ReqwestTransport::from(client)
            .with_max_body_size(self.max_body_size)
            .with_known_timeout(self.timeout))
    }
}

impl fmt::Debug for ReqwestTransportBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A proxy URL may carry a password, and reqwest's `Proxy` prints it: show a count only.
        f.debug_struct("ReqwestTransportBuilder")
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("proxies", &self.proxies.len())
            .field("user_agent", &self.user_agent)
            .field("pool_idle_timeout", &self.pool_idle_timeout)
            .field("pool_max_idle_per_host", &self.pool_max_idle_per_host)
            .field("max_body_size", &self.max_body_size)
            .finish()
    }
}
