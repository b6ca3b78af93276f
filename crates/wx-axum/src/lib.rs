#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRef, FromRequest, FromRequestParts, RawQuery, Request};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use wx_official::push::{
    DEFAULT_BUDGET, Dedup, Incoming, LateHook, MAX_BODY_LEN, PushConfig, PushError, PushQuery,
    Reply, ReplyBody, run_with_budget,
};
use wx_official::wx_core::{StoreError, TokenStore};

type SeenFuture<'a> = Pin<Box<dyn Future<Output = Result<bool, StoreError>> + Send + 'a>>;

/// The dedup step, with the store type erased.
trait FirstSeen: Send + Sync {
    fn first_seen<'a>(&'a self, incoming: &'a Incoming) -> SeenFuture<'a>;
}

impl<S: TokenStore + Send + Sync + 'static> FirstSeen for Dedup<S> {
    fn first_seen<'a>(&'a self, incoming: &'a Incoming) -> SeenFuture<'a> {
        Box::pin(Dedup::first_seen(self, incoming))
    }
}

/// The server URL's settings, shared by the extractors and [`endpoint`]: the [`PushConfig`]
/// (Token, AppID, EncodingAESKey), the optional fleet-wide [`Dedup`], the handler budget and
/// the hook for late replies. Cheap to clone.
#[derive(Clone)]
pub struct WxServer {
    config: Arc<PushConfig>,
    dedup: Option<Arc<dyn FirstSeen>>,
    budget: Duration,
    on_late: Option<LateHook>,
}

impl fmt::Debug for WxServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WxServer")
            .field("config", &self.config)
            .field("dedup", &self.dedup.is_some())
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

impl WxServer {
    /// A server URL for `config`, without dedup, with the default budget
    /// ([`DEFAULT_BUDGET`], 4 s).
    #[must_use]
    pub fn new(config: PushConfig) -> Self {
        WxServer {
            config: Arc::new(config),
            dedup: None,
            budget: DEFAULT_BUDGET,
            on_late: None,
        }
    }

    /// Handles each message once across a fleet: a push seen before (WeChat's retry, which may
    /// reach another instance) is answered `success` without reaching the handler. When the
    /// store fails, the push is handled (twice is better than never).
    #[must_use]
    pub fn dedup<S: TokenStore + Send + Sync + 'static>(mut self, dedup: Dedup<S>) -> Self {
        self.dedup = Some(Arc::new(dedup));
        self
    }

    /// How long [`endpoint`]'s handler may take before the push is answered `success` (the
    /// handler still runs to completion; its late reply goes to [`on_late`](Self::on_late)).
    /// Keep it under WeChat's 5 seconds.
    #[must_use]
    pub fn budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    /// Called with each reply that came after the budget (send it another way, e.g. as a
    /// customer-service message).
    #[must_use]
    pub fn on_late(mut self, hook: LateHook) -> Self {
        self.on_late = Some(hook);
        self
    }

    /// The push configuration.
    #[must_use]
    pub fn config(&self) -> &PushConfig {
        &self.config
    }
}

/// Why a request to the server URL was refused before reaching the handler. Each variant
/// answers with its status; none echoes the request.
#[derive(Debug)]
#[non_exhaustive]
pub enum PushRejection {
    /// The push failed verification or parsing (status from [`PushError::status`]: 401 for a
    /// bad signature or a stale timestamp, 403 for another AppID, 413 for a large body, 400
    /// otherwise).
    Invalid(PushError),
    /// The body could not be read (axum's own rejection and status).
    Body(BytesRejection),
    /// Not a POST (405).
    Method,
    /// A push already handled (WeChat's retry): answered `success` with 200, so WeChat stops
    /// retrying and the handler does not run twice.
    Duplicate,
}

impl fmt::Display for PushRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushRejection::Invalid(e) => write!(f, "refused push: {e}"),
            PushRejection::Body(e) => write!(f, "unreadable push body: {e}"),
            PushRejection::Method => f.write_str("the server URL takes POST pushes and GET checks"),
            PushRejection::Duplicate => f.write_str("push already handled"),
        }
    }
}

impl std::error::Error for PushRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PushRejection::Invalid(e) => Some(e),
            PushRejection::Body(e) => Some(e),
            PushRejection::Method | PushRejection::Duplicate => None,
        }
    }
}

impl IntoResponse for PushRejection {
    fn into_response(self) -> Response {
        match self {
            PushRejection::Invalid(e) => (e.status(), e.to_string()).into_response(),
            PushRejection::Body(e) => e.into_response(),
            PushRejection::Method => {
                (StatusCode::METHOD_NOT_ALLOWED, self.to_string()).into_response()
            }
            PushRejection::Duplicate => WxReply(ReplyBody::success()).into_response(),
        }
    }
}

/// A verified push: signature checked (constant time), decrypted in compatible and safe mode,
/// parsed, and (with [`WxServer::dedup`]) seen for the first time. It reads the body, so it is
/// the last argument of a handler; the state must give a [`WxServer`] (`FromRef`).
///
/// Derefs to the [`Incoming`] message; answer it with [`reply`](Self::reply) or
/// [`success`](Self::success), which seal the answer the way the push came.
pub struct WxPush {
    incoming: Incoming,
    config: Arc<PushConfig>,
}

impl fmt::Debug for WxPush {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WxPush")
            .field("incoming", &self.incoming)
            .finish_non_exhaustive()
    }
}

impl WxPush {
    /// The push.
    #[must_use]
    pub fn incoming(&self) -> &Incoming {
        &self.incoming
    }

    /// The push, owned.
    #[must_use]
    pub fn into_incoming(self) -> Incoming {
        self.incoming
    }

    /// The answer carrying `reply`: To/From swapped, encrypted when the push was;
    /// [`Reply::Success`] gives `success`.
    pub fn reply(&self, reply: &Reply) -> WxReply {
        WxReply(self.config.reply(&self.incoming, reply))
    }

    /// The answer `success`: no reply.
    pub fn success(&self) -> WxReply {
        WxReply(ReplyBody::success())
    }
}

impl Deref for WxPush {
    type Target = Incoming;

    fn deref(&self) -> &Incoming {
        &self.incoming
    }
}

impl<S> FromRequest<S> for WxPush
where
    S: Send + Sync,
    WxServer: FromRef<S>,
{
    type Rejection = PushRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, PushRejection> {
        let server = WxServer::from_ref(state);
        if req.method() != Method::POST {
            return Err(PushRejection::Method);
        }
        let query = PushQuery::from_query(req.uri().query().unwrap_or_default());
        let body = Bytes::from_request(req, state)
            .await
            .map_err(PushRejection::Body)?;
        let incoming = server
            .config
            .open(&query, &body)
            .map_err(PushRejection::Invalid)?;
        if let Some(dedup) = &server.dedup
            && let Ok(false) = dedup.first_seen(&incoming).await
        {
            return Err(PushRejection::Duplicate);
        }
        Ok(WxPush {
            incoming,
            config: server.config,
        })
    }
}

/// The HTTP answer to a push: a reply sealed for the push it answers, or `success`. Only
/// [`WxPush`] makes one, so a reply cannot go out unencrypted to an encrypted push.
#[derive(Debug)]
#[must_use]
pub struct WxReply(ReplyBody);

impl WxReply {
    /// The body as sent.
    #[must_use]
    pub fn body(&self) -> &str {
        &self.0.body
    }
}

impl IntoResponse for WxReply {
    fn into_response(self) -> Response {
        let ReplyBody {
            body, content_type, ..
        } = self.0;
        (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response()
    }
}

/// WeChat's URL check (GET with `signature`, `timestamp`, `nonce`, `echostr`), verified; as a
/// response it is the `echostr`, as WeChat expects.
#[derive(Debug)]
pub struct Handshake(String);

impl<S> FromRequestParts<S> for Handshake
where
    S: Send + Sync,
    WxServer: FromRef<S>,
{
    type Rejection = PushRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, PushRejection> {
        Handshake::check(&WxServer::from_ref(state), parts.uri.query())
    }
}

impl Handshake {
    fn check(server: &WxServer, query: Option<&str>) -> Result<Self, PushRejection> {
        let query = PushQuery::from_query(query.unwrap_or_default());
        server
            .config
            .handshake(&query)
            .map(Handshake)
            .map_err(PushRejection::Invalid)
    }
}

impl IntoResponse for Handshake {
    fn into_response(self) -> Response {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain")],
            self.0,
        )
            .into_response()
    }
}

/// The whole server URL on one path: GET answers WeChat's URL check, POST verifies the push
/// (dedup included), runs `handler` within the budget (answering `success` in time when it
/// is slower) and seals its reply. Mount it with `Router::route(path, endpoint(..))`; a
/// `MethodRouter<()>` is a tower `Service`, so hyper can serve it too.
pub fn endpoint<S, H, Fut>(server: WxServer, handler: H) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
    H: Fn(Incoming) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    let check = server.clone();
    get(move |RawQuery(query): RawQuery| async move { Handshake::check(&check, query.as_deref()) })
        .post(move |request: Request| async move {
            let push = WxPush::from_request(request, &server).await?;
            let work = handler(push.incoming().clone());
            let outcome =
                run_with_budget(server.budget, push.incoming(), work, server.on_late.clone()).await;
            Ok::<_, PushRejection>(push.reply(&outcome.into_reply()))
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_LEN))
}
