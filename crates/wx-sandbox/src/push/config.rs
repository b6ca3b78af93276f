//! An app's server configuration (服务器配置): where pushes go, the Token, the encryption mode
//! and EncodingAESKey, the account's original id.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body::Body;
use http_body_util::{BodyExt, Full, Limited};
use wx_core::crypto::{EncodingAesKey, ServerToken};

use crate::SandboxError;

/// WeChat's wait for a server URL's answer before it gives up and retries.
pub const PUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest answer the sandbox reads from a server URL.
pub(crate) const MAX_ANSWER: usize = 1 << 20;

pub(crate) type BoxError = Box<dyn StdError + Send + Sync>;
type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Handler = dyn Fn(Request<Bytes>) -> BoxFuture<Result<Response<Bytes>, BoxError>> + Send + Sync;

/// How pushes are sent (消息加解密方式).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PushMode {
    /// 明文模式: plain XML, `signature` only.
    Plain,
    /// 兼容模式: the plain fields and an `Encrypt` element in one body, `msg_signature` and
    /// `encrypt_type=aes` in the query; the reply may be plain or encrypted.
    Compatible,
    /// 安全模式: only `ToUserName` and `Encrypt`; the reply must be encrypted.
    Safe,
}

/// Where the sandbox delivers pushes: a URL on loopback, or an in-process handler (no socket).
#[derive(Clone)]
pub struct PushTarget(pub(crate) Target);

#[derive(Clone)]
pub(crate) enum Target {
    Url(Uri),
    /// The handler, and the path (and query) of the server URL it is mounted on.
    Handler(Arc<Handler>, Uri),
}

impl fmt::Debug for PushTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            // The path only: a server URL's query string may carry a secret of the app.
            Target::Url(uri) => write!(f, "PushTarget({})", uri.path()),
            Target::Handler(_, path) => write!(f, "PushTarget(in-process {})", path.path()),
        }
    }
}

impl PushTarget {
    /// An `http://` URL (the app's server URL), reached with a real HTTP client: point it at a
    /// server on loopback. Checked when the server is registered.
    #[must_use]
    pub fn url(url: &str) -> Self {
        PushTarget(Target::Url(url.parse().unwrap_or_default()))
    }

    /// An async function answering each request in process (requests go to the path `/`).
    #[must_use]
    pub fn from_fn<F, Fut>(f: F) -> Self
    where
        F: Fn(Request<Bytes>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<Bytes>> + Send + 'static,
    {
        let f = Arc::new(f);
        let handler: Arc<Handler> = Arc::new(move |req| {
            let fut = f(req);
            Box::pin(async move { Ok(fut.await) })
        });
        PushTarget(Target::Handler(handler, Uri::from_static("/")))
    }

    /// A tower `Service` answering each request in process, such as an axum `Router`: the
    /// app's own stack, without a socket. Requests go to `path` (the path of the server URL,
    /// such as `/wx`, optionally with a query), as they would over HTTP.
    #[must_use]
    pub fn service<S, B>(path: &str, service: S) -> Self
    where
        S: tower_service::Service<Request<Full<Bytes>>, Response = Response<B>>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send,
        S::Error: Into<BoxError>,
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let handler: Arc<Handler> = Arc::new(move |req: Request<Bytes>| {
            let mut service = service.clone();
            Box::pin(async move {
                std::future::poll_fn(|cx| service.poll_ready(cx))
                    .await
                    .map_err(Into::into)?;
                let response = service.call(req.map(Full::new)).await.map_err(Into::into)?;
                let (parts, body) = response.into_parts();
                let body = Limited::new(body, MAX_ANSWER).collect().await?.to_bytes();
                Ok(Response::from_parts(parts, body))
            })
        });
        PushTarget(Target::Handler(handler, path.parse().unwrap_or_default()))
    }
}

/// An app's server configuration (服务器配置): where WeChat pushes, the Token that signs every
/// push, the mode, the EncodingAESKey of the encrypted modes, and the account's original id
/// (`gh_...`, the `ToUserName` of every push). `Debug` shows no secret.
#[derive(Clone)]
pub struct ServerConfig {
    pub(crate) target: PushTarget,
    pub(crate) token: ServerToken,
    pub(crate) mode: PushMode,
    encoding_aes_key: Option<String>,
    pub(crate) key: Option<EncodingAesKey>,
    pub(crate) original_id: String,
    pub(crate) timeout: Duration,
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("target", &self.target)
            .field("mode", &self.mode)
            .field("original_id", &self.original_id)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl ServerConfig {
    /// Plaintext mode (明文模式).
    #[must_use]
    pub fn plain(target: PushTarget, token: &str, original_id: &str) -> Self {
        ServerConfig {
            target,
            token: ServerToken::new(token),
            mode: PushMode::Plain,
            encoding_aes_key: None,
            key: None,
            original_id: original_id.to_owned(),
            timeout: PUSH_TIMEOUT,
        }
    }

    /// Compatible mode (兼容模式) with the 43-character EncodingAESKey (checked when the
    /// server is registered).
    #[must_use]
    pub fn compatible(
        target: PushTarget,
        token: &str,
        original_id: &str,
        encoding_aes_key: &str,
    ) -> Self {
        ServerConfig {
            mode: PushMode::Compatible,
            encoding_aes_key: Some(encoding_aes_key.to_owned()),
            ..ServerConfig::plain(target, token, original_id)
        }
    }

    /// Safe mode (安全模式) with the 43-character EncodingAESKey (checked when the server is
    /// registered).
    #[must_use]
    pub fn safe(
        target: PushTarget,
        token: &str,
        original_id: &str,
        encoding_aes_key: &str,
    ) -> Self {
        ServerConfig {
            mode: PushMode::Safe,
            ..ServerConfig::compatible(target, token, original_id, encoding_aes_key)
        }
    }

    /// How long each attempt waits for the answer ([`PUSH_TIMEOUT`], WeChat's 5 seconds, by
    /// default). Shorter makes tests of retries fast.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The mode.
    #[must_use]
    pub fn mode(&self) -> PushMode {
        self.mode
    }

    /// Checks the key and the URL; decodes the key.
    pub(crate) fn checked(mut self) -> Result<Self, SandboxError> {
        if let Some(k) = &self.encoding_aes_key {
            self.key = Some(EncodingAesKey::new(k).map_err(|_| SandboxError::InvalidServer)?);
        }
        let valid = match &self.target.0 {
            Target::Url(uri) => uri.scheme_str() == Some("http") && uri.host().is_some(),
            Target::Handler(_, path) => path.path().starts_with('/'),
        };
        if !valid {
            return Err(SandboxError::InvalidServer);
        }
        if self.original_id.is_empty() {
            return Err(SandboxError::InvalidServer);
        }
        Ok(self)
    }
}
