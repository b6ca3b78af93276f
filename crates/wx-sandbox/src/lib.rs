#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod admin;
mod builder;
mod config;
mod fault;
mod push;
mod server;
mod world;

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use wx_core::{
    AccessToken, Clock, HttpRequest, HttpResponse, HttpTransport, ManualClock, Scope,
    TransportError, TransportErrorKind,
};

pub use builder::{Consent, SandboxBuilder, UserProfile};
pub use config::{AppConfig, ModeSpec, ServerSpec};
pub use fault::{Fault, FaultMix, Faults};
pub use push::{
    AttemptError, PUSH_ATTEMPTS, PUSH_TIMEOUT, PushFailure, PushMode, PushOutcome, PushReport,
    PushTarget, ReplyError, ServerConfig, UNAVAILABLE_NOTICE, UserAction,
};
pub use server::SandboxServer;
pub use world::{InboxMessage, PUBLISH_DELAY, PUBLISHER_OPENID, PushFields, TokenStatus, Via};

use world::{Family, World};

/// The paths the sandbox answers. One base URL serves both api.weixin.qq.com and
/// open.weixin.qq.com paths.
pub mod paths {
    /// `GET /cgi-bin/token`: base access token.
    pub const TOKEN: &str = "/cgi-bin/token";
    /// `POST /cgi-bin/stable_token`: stable access token (JSON body).
    pub const STABLE_TOKEN: &str = "/cgi-bin/stable_token";
    /// `GET /cgi-bin/ticket/getticket`: JS-SDK ticket (base token).
    pub const TICKET: &str = "/cgi-bin/ticket/getticket";
    /// `GET /cgi-bin/get_api_domain_ip`: WeChat's server IPs (base token): a cheap API to call
    /// with a base token.
    pub const API_DOMAIN_IP: &str = "/cgi-bin/get_api_domain_ip";
    /// `GET /connect/oauth2/authorize`: the authorize page (open.weixin.qq.com).
    pub const AUTHORIZE: &str = "/connect/oauth2/authorize";
    /// `GET /sns/oauth2/access_token`: code exchange.
    pub const CODE_EXCHANGE: &str = "/sns/oauth2/access_token";
    /// `GET /sns/oauth2/refresh_token`: web-token refresh.
    pub const REFRESH: &str = "/sns/oauth2/refresh_token";
    /// `GET /sns/userinfo`: the user's profile (web token, `snsapi_userinfo`).
    pub const USERINFO: &str = "/sns/userinfo";
    /// `GET /sns/auth`: web-token check.
    pub const SNS_AUTH: &str = "/sns/auth";
    /// `POST /cgi-bin/media/upload?type=`: temporary media (multipart `media`).
    pub const MEDIA_UPLOAD: &str = "/cgi-bin/media/upload";
    /// `GET /cgi-bin/media/get`: a temporary media file (a video's URL as JSON).
    pub const MEDIA_GET: &str = "/cgi-bin/media/get";
    /// `POST /cgi-bin/media/uploadimg`: an image for article bodies.
    pub const MEDIA_UPLOAD_IMG: &str = "/cgi-bin/media/uploadimg";
    /// `POST /cgi-bin/material/add_material?type=`: a permanent material.
    pub const MATERIAL_ADD: &str = "/cgi-bin/material/add_material";
    /// `POST /cgi-bin/material/get_material`.
    pub const MATERIAL_GET: &str = "/cgi-bin/material/get_material";
    /// `POST /cgi-bin/material/del_material`.
    pub const MATERIAL_DELETE: &str = "/cgi-bin/material/del_material";
    /// `GET /cgi-bin/material/get_materialcount`.
    pub const MATERIAL_COUNT: &str = "/cgi-bin/material/get_materialcount";
    /// `POST /cgi-bin/material/batchget_material`.
    pub const MATERIAL_BATCHGET: &str = "/cgi-bin/material/batchget_material";
    /// `POST /cgi-bin/draft/add`.
    pub const DRAFT_ADD: &str = "/cgi-bin/draft/add";
    /// `POST /cgi-bin/draft/get`.
    pub const DRAFT_GET: &str = "/cgi-bin/draft/get";
    /// `POST /cgi-bin/draft/update`.
    pub const DRAFT_UPDATE: &str = "/cgi-bin/draft/update";
    /// `POST /cgi-bin/draft/delete`.
    pub const DRAFT_DELETE: &str = "/cgi-bin/draft/delete";
    /// `GET /cgi-bin/draft/count`.
    pub const DRAFT_COUNT: &str = "/cgi-bin/draft/count";
    /// `POST /cgi-bin/draft/batchget`.
    pub const DRAFT_BATCHGET: &str = "/cgi-bin/draft/batchget";
    /// `POST /cgi-bin/freepublish/submit`.
    pub const PUBLISH_SUBMIT: &str = "/cgi-bin/freepublish/submit";
    /// `POST /cgi-bin/freepublish/get`.
    pub const PUBLISH_GET: &str = "/cgi-bin/freepublish/get";
    /// `POST /cgi-bin/freepublish/delete`.
    pub const PUBLISH_DELETE: &str = "/cgi-bin/freepublish/delete";
    /// `POST /cgi-bin/freepublish/getarticle`.
    pub const PUBLISH_GETARTICLE: &str = "/cgi-bin/freepublish/getarticle";
    /// `POST /cgi-bin/freepublish/batchget`.
    pub const PUBLISH_BATCHGET: &str = "/cgi-bin/freepublish/batchget";
    /// `POST /connect/oauth2/authorize_reply`: the sandbox's consent page posts the user's
    /// answer here (a sandbox path: WeChat's page answers inside its app).
    pub const AUTHORIZE_REPLY: &str = "/connect/oauth2/authorize_reply";
    /// The prefix of the sandbox's admin API (`/__sandbox/...`, JSON), a path WeChat never
    /// uses; see the crate README.
    pub const ADMIN_PREFIX: &str = "/__sandbox/";
    /// `GET /cgi-bin/user/info`: a follower's record.
    pub const USER_INFO: &str = "/cgi-bin/user/info";
    /// `POST /cgi-bin/user/info/batchget`: up to 100 records.
    pub const USER_INFO_BATCHGET: &str = "/cgi-bin/user/info/batchget";
    /// `GET /cgi-bin/user/get`: the followers' openids, 10,000 a page.
    pub const USER_GET: &str = "/cgi-bin/user/get";
    /// `POST /cgi-bin/user/info/updateremark`: a follower's remark.
    pub const USER_UPDATE_REMARK: &str = "/cgi-bin/user/info/updateremark";
    /// `POST /cgi-bin/tags/create`.
    pub const TAGS_CREATE: &str = "/cgi-bin/tags/create";
    /// `GET /cgi-bin/tags/get`.
    pub const TAGS_GET: &str = "/cgi-bin/tags/get";
    /// `POST /cgi-bin/tags/update`.
    pub const TAGS_UPDATE: &str = "/cgi-bin/tags/update";
    /// `POST /cgi-bin/tags/delete`.
    pub const TAGS_DELETE: &str = "/cgi-bin/tags/delete";
    /// `POST /cgi-bin/user/tag/get`: a tag's members, 10,000 a page.
    pub const USER_TAG_GET: &str = "/cgi-bin/user/tag/get";
    /// `POST /cgi-bin/tags/members/batchtagging` (50 openids a call).
    pub const TAGS_BATCHTAGGING: &str = "/cgi-bin/tags/members/batchtagging";
    /// `POST /cgi-bin/tags/members/batchuntagging` (50 openids a call).
    pub const TAGS_BATCHUNTAGGING: &str = "/cgi-bin/tags/members/batchuntagging";
    /// `POST /cgi-bin/tags/getidlist`: a follower's tag ids.
    pub const TAGS_GETIDLIST: &str = "/cgi-bin/tags/getidlist";
    /// `POST /cgi-bin/tags/members/getblacklist`: the blacklist, 10,000 a page.
    pub const GET_BLACKLIST: &str = "/cgi-bin/tags/members/getblacklist";
    /// `POST /cgi-bin/tags/members/batchblacklist` (20 openids a call).
    pub const BATCH_BLACKLIST: &str = "/cgi-bin/tags/members/batchblacklist";
    /// `POST /cgi-bin/tags/members/batchunblacklist` (20 openids a call).
    pub const BATCH_UNBLACKLIST: &str = "/cgi-bin/tags/members/batchunblacklist";
    /// `POST /cgi-bin/qrcode/create`: a parametric QR code's ticket.
    pub const QRCODE_CREATE: &str = "/cgi-bin/qrcode/create";
    /// `POST /cgi-bin/menu/create`.
    pub const MENU_CREATE: &str = "/cgi-bin/menu/create";
    /// `GET /cgi-bin/menu/get`.
    pub const MENU_GET: &str = "/cgi-bin/menu/get";
    /// `GET /cgi-bin/menu/delete`.
    pub const MENU_DELETE: &str = "/cgi-bin/menu/delete";
    /// `POST /cgi-bin/menu/addconditional`.
    pub const MENU_ADDCONDITIONAL: &str = "/cgi-bin/menu/addconditional";
    /// `POST /cgi-bin/menu/delconditional`.
    pub const MENU_DELCONDITIONAL: &str = "/cgi-bin/menu/delconditional";
    /// `POST /cgi-bin/menu/trymatch`.
    pub const MENU_TRYMATCH: &str = "/cgi-bin/menu/trymatch";
    /// `GET /cgi-bin/get_current_selfmenu_info`: the live menu.
    pub const SELFMENU_INFO: &str = "/cgi-bin/get_current_selfmenu_info";
    pub use crate::world::message_paths::*;
}

/// Errors of the sandbox's own set-up and inspection helpers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// The appid is not registered.
    #[error("unknown appid")]
    UnknownApp,
    /// The openid is not registered with the app.
    #[error("unknown openid for this app")]
    UnknownUser,
    /// The appid was registered twice.
    #[error("appid registered twice")]
    DuplicateApp,
    /// The openid was registered twice with one app.
    #[error("openid registered twice for one app")]
    DuplicateUser,
    /// A server configuration with a bad EncodingAESKey, URL or original id (or none where
    /// one is needed).
    #[error("invalid server configuration")]
    InvalidServer,
    /// The server URL did not pass WeChat's check (no echo of `echostr`).
    #[error("server URL check failed")]
    HandshakeFailed,
    /// The user does not follow the app (so cannot message it or unfollow).
    #[error("user does not follow the app")]
    NotFollowing,
    /// The user already follows the app.
    #[error("user already follows the app")]
    AlreadyFollowing,
    /// A user without an openid.
    #[error("a user needs an openid")]
    MissingOpenid,
    /// No QR code of this app has this ticket.
    #[error("unknown QR ticket for this app")]
    UnknownTicket,
    /// The temporary QR code has expired.
    #[error("QR code expired")]
    TicketExpired,
    /// The user's menu has no such button (or there is no menu).
    #[error("no such menu button")]
    NoSuchButton,
    /// No template with this id is registered with the app.
    #[error("unknown template for this app")]
    UnknownTemplate,
}

/// The simulated WeChat. Cheap to clone: clones share everything (apps, tokens, clock, faults,
/// counters).
///
/// Use it in process as an [`HttpTransport`] (it implements the trait), or start a loopback
/// HTTP server with [`serve`](Self::serve).
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

struct Inner {
    world: Mutex<World>,
    clock: ManualClock,
    faults: Faults,
    counts: Mutex<BTreeMap<String, u64>>,
    pushes: push::InFlight,
    /// The set-up the sandbox was built from, for [`Sandbox::reset`].
    recipe: SandboxBuilder,
    /// Resets so far (each reset draws tokens from another seed).
    resets: std::sync::atomic::AtomicU64,
}

impl fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sandbox")
            .field("clock", &self.inner.clock)
            .field("requests", &self.total_count())
            .finish_non_exhaustive()
    }
}

/// What happens to one request after faults are applied.
pub(crate) enum Outcome {
    /// Answer with this response.
    Respond(HttpResponse),
    /// Close the connection without answering.
    Drop,
    /// Send the headers and half of this response's body, then close.
    DropMidBody(HttpResponse),
}

impl Sandbox {
    /// Starts setting up a sandbox.
    ///
    /// ```
    /// use wx_sandbox::{Sandbox, UserProfile};
    /// let sandbox = Sandbox::builder()
    ///     .app("wx0000000000000001", "sandbox-secret")
    ///     .user("wx0000000000000001", UserProfile::new("o-alice").nickname("Alice"))
    ///     .build()
    ///     .expect("valid set-up");
    /// # let _ = sandbox;
    /// ```
    pub fn builder() -> SandboxBuilder {
        SandboxBuilder::default()
    }

    pub(crate) fn from_parts(world: World, clock: ManualClock, recipe: SandboxBuilder) -> Self {
        Sandbox {
            inner: Arc::new(Inner {
                world: Mutex::new(world),
                clock,
                faults: Faults::default(),
                counts: Mutex::new(BTreeMap::new()),
                pushes: push::InFlight::default(),
                recipe,
                resets: std::sync::atomic::AtomicU64::new(0),
            }),
        }
    }

    pub(crate) fn world(&self) -> MutexGuard<'_, World> {
        self.inner
            .world
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn counts_lock(&self) -> MutexGuard<'_, BTreeMap<String, u64>> {
        self.inner
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The sandbox clock: [`ManualClock::advance`] moves time for every rule (token and code
    /// lifetimes, grace periods, daily quotas). Share it with the client under test.
    #[must_use]
    pub fn clock(&self) -> &ManualClock {
        &self.inner.clock
    }

    /// The fault injector.
    #[must_use]
    pub fn faults(&self) -> &Faults {
        &self.inner.faults
    }

    /// Requests received on `path` (e.g. `"/cgi-bin/token"`), faulted ones included.
    #[must_use]
    pub fn count(&self, path: &str) -> u64 {
        self.counts_lock().get(path).copied().unwrap_or(0)
    }

    /// Requests received on every path.
    #[must_use]
    pub fn total_count(&self) -> u64 {
        self.counts_lock().values().sum()
    }

    /// Requests received, by path.
    #[must_use]
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.counts_lock().clone()
    }

    /// Sets every request counter to zero.
    pub fn reset_counts(&self) {
        self.counts_lock().clear();
    }

    /// Issues an OAuth code for `openid` of `appid` with `scope`, as the authorize page does
    /// when the user consents: a test gets a code without a browser.
    ///
    /// # Errors
    /// [`SandboxError::UnknownApp`] or [`SandboxError::UnknownUser`].
    pub fn issue_code(
        &self,
        appid: &str,
        openid: &str,
        scope: Scope,
    ) -> Result<String, SandboxError> {
        let now = self.inner.clock.now();
        let mut world = self.world();
        match world.has_user(appid, openid) {
            None => Err(SandboxError::UnknownApp),
            Some(false) => Err(SandboxError::UnknownUser),
            Some(true) => Ok(world.issue_code(appid, openid, scope, now)),
        }
    }

    /// The newest token `cgi-bin/token` issued for `appid`, if still valid.
    #[must_use]
    pub fn current_token(&self, appid: &str) -> Option<AccessToken> {
        let now = self.inner.clock.now();
        self.world().current_token(appid, now).map(AccessToken::new)
    }

    /// The current `cgi-bin/stable_token` token of `appid`, if still valid.
    #[must_use]
    pub fn current_stable_token(&self, appid: &str) -> Option<AccessToken> {
        let now = self.inner.clock.now();
        self.world()
            .current_stable_token(appid, now)
            .map(AccessToken::new)
    }

    /// Whether the APIs would accept `token` (a base or stable access token) now.
    #[must_use]
    pub fn token_status(&self, token: &str) -> TokenStatus {
        let now = self.inner.clock.now();
        self.world().token_status(token, now)
    }

    /// Changes who answers the authorize page of `appid` (and forgets who allowed on the
    /// consent page, so [`Consent::Ask`] asks again).
    ///
    /// # Errors
    /// [`SandboxError::UnknownApp`], or [`SandboxError::UnknownUser`] for a
    /// [`Consent::User`] not registered with the app.
    pub fn set_consent(&self, appid: &str, consent: Consent) -> Result<(), SandboxError> {
        let mut world = self.world();
        let app = world.app_mut(appid).ok_or(SandboxError::UnknownApp)?;
        if let Consent::User(openid) = &consent
            && !app.users.iter().any(|u| &u.openid == openid)
        {
            return Err(SandboxError::UnknownUser);
        }
        app.consent = consent;
        app.forget_consents();
        Ok(())
    }

    /// Makes `openid` follow `appid` (or stop following) without any push: set-up for tests.
    /// Users registered with the builder follow from the sandbox's start.
    ///
    /// # Errors
    /// [`SandboxError::UnknownApp`], [`SandboxError::UnknownUser`].
    pub fn set_following(
        &self,
        appid: &str,
        openid: &str,
        following: bool,
    ) -> Result<(), SandboxError> {
        let now = self.inner.clock.now();
        let mut world = self.world();
        let app = world.app_mut(appid).ok_or(SandboxError::UnknownApp)?;
        if !app.users.iter().any(|u| u.openid == openid) {
            return Err(SandboxError::UnknownUser);
        }
        if following {
            app.follow(openid, now, world::FollowScene::other());
        } else {
            app.unfollow(openid);
        }
        Ok(())
    }

    /// Whether `openid` follows `appid` now (`None` for an unknown app or user).
    #[must_use]
    pub fn is_following(&self, appid: &str, openid: &str) -> Option<bool> {
        let mut world = self.world();
        let app = world.app_mut(appid)?;
        app.users
            .iter()
            .any(|u| u.openid == openid)
            .then(|| app.is_following(openid))
    }

    /// Starts the HTTP server on `127.0.0.1` with a free port.
    ///
    /// # Errors
    /// The bind error.
    pub async fn serve(&self) -> io::Result<SandboxServer> {
        self.serve_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts the HTTP server on `addr`.
    ///
    /// # Errors
    /// The bind error.
    pub async fn serve_on(&self, addr: SocketAddr) -> io::Result<SandboxServer> {
        SandboxServer::start(self.clone(), addr).await
    }

    /// Counts the request, applies the next fault, and lets the simulated WeChat answer.
    pub(crate) async fn process(&self, request: &HttpRequest) -> Outcome {
        // The admin API is not WeChat: no counting, no faults.
        if let Some(response) = admin::handle(self, request).await {
            return Outcome::Respond(response);
        }
        let path = request.path().to_owned();
        *self.counts_lock().entry(path.clone()).or_default() += 1;
        let fault = self.inner.faults.next(&path);
        // Paths only: query strings and bodies carry secrets and tokens.
        tracing::debug!(method = %request.method, path = %path, fault = fault.name(), "sandbox request");
        let family = Family::of(&path);
        match fault {
            Fault::Pass => Outcome::Respond(self.answer(request)),
            Fault::Busy => {
                let now = self.inner.clock.now();
                let body = self.world().busy_body(now);
                Outcome::Respond(world::json_response(family, body))
            }
            Fault::Status(code) => {
                let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY);
                let body = format!(
                    "<html><head><title>{status}</title></head><body><center><h1>{status}</h1>\
                     </center><hr><center>stgw</center></body></html>"
                );
                Outcome::Respond(with_type(status, body, world::HTML_CONTENT_TYPE))
            }
            Fault::Delay(d) => {
                tokio::time::sleep(d).await;
                Outcome::Respond(self.answer(request))
            }
            Fault::Drop => Outcome::Drop,
            Fault::DropMidBody => Outcome::DropMidBody(self.answer(request)),
            Fault::Html => Outcome::Respond(with_type(
                StatusCode::OK,
                "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>微信</title></head>\
                 <body><p>请在微信客户端打开链接</p></body></html>",
                world::HTML_CONTENT_TYPE,
            )),
            Fault::Empty => Outcome::Respond(with_type(
                StatusCode::OK,
                Bytes::new(),
                family.content_type(),
            )),
            Fault::Truncated => {
                let mut r = self.answer(request);
                let keep = r.body.len() / 2;
                r.body = r.body.slice(..keep);
                Outcome::Respond(r)
            }
            Fault::Oversized(size) => {
                let mut r = self.answer(request);
                let mut body = r.body.to_vec();
                body.resize(size.max(body.len()), b' ');
                r.body = Bytes::from(body);
                Outcome::Respond(r)
            }
            Fault::NonUtf8 => Outcome::Respond(with_type(
                StatusCode::OK,
                &b"{\"errcode\":0,\"errmsg\":\"\xff\xfe\xc3\x28 ok\"}"[..],
                family.content_type(),
            )),
        }
    }

    fn answer(&self, request: &HttpRequest) -> HttpResponse {
        let now = self.inner.clock.now();
        let response = self.world().handle(request, now);
        self.dispatch_queued();
        response
    }
}

fn with_type(
    status: StatusCode,
    body: impl Into<Bytes>,
    content_type: &'static str,
) -> HttpResponse {
    let mut r = HttpResponse::new(status, body);
    r.headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// In process: answers exactly as the HTTP server would, without a socket. Connection-level
/// faults become transport errors: `Drop` and `DropMidBody` are [`TransportErrorKind::Io`];
/// `Delay` just waits.
#[async_trait]
impl HttpTransport for Sandbox {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        match self.process(&request).await {
            Outcome::Respond(r) => Ok(r),
            Outcome::Drop => Err(TransportError::new(
                TransportErrorKind::Io,
                io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "sandbox fault: connection closed without a response",
                ),
            )),
            Outcome::DropMidBody(_) => Err(TransportError::new(
                TransportErrorKind::Io,
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "sandbox fault: connection closed in the middle of the body",
                ),
            )),
        }
    }
}
