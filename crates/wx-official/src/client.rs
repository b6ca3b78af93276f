//! The client: its shared state, accessors, and the base access token. The builder is in
//! `builder.rs`, the one execute path in `execute.rs`.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tracing::Instrument as _;
use wx_core::{
    AccessToken, AccessTokenResponse, AppId, AppSecret, DecodeError, DecodeReason, HttpTransport,
    InvalidInput, Refused, Result, SharedClock, StoredToken, TokenKey, TokenKind, TokenStore,
};

use crate::endpoint::Endpoint;
use crate::request::Request;
use crate::retry::RetryPolicy;
use crate::token::{FetchFuture, Fetched, Miss, TokenManager, owner_id};

/// WeChat's API host.
pub const DEFAULT_API_BASE: &str = "https://api.weixin.qq.com";
/// WeChat's host for the OAuth authorize page.
pub const DEFAULT_OPEN_BASE: &str = "https://open.weixin.qq.com";

/// WeChat requires force refreshes of the stable token to be at least this far apart.
pub const STABLE_FORCE_REFRESH_SPACING: Duration = Duration::from_secs(30);
/// WeChat allows this many force refreshes of the stable token a day.
pub const STABLE_FORCE_REFRESH_DAILY_LIMIT: u32 = 20;

pub(crate) const MAX_APPID_LEN: usize = 64;
pub(crate) const MAX_SECRET_LEN: usize = 256;
/// Access tokens are documented as up to 512 characters; leave room for growth.
pub(crate) const MAX_TOKEN_LEN: usize = 2048;

/// Which endpoint supplies the base access token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenMode {
    /// `GET /cgi-bin/token`. Each fetch invalidates the previous token (after a 5-minute
    /// overlap), so a fleet must share one token through the store.
    #[default]
    Normal,
    /// `POST /cgi-bin/stable_token`. A fetch returns the same token until its last 5 minutes and
    /// does not invalidate others; a separate, rate-limited force refresh exists
    /// ([`OfficialAccount::force_refresh_stable_token`]).
    Stable,
}

impl TokenMode {
    /// The store kind of this mode's token.
    #[must_use]
    pub fn token_kind(self) -> TokenKind {
        match self {
            TokenMode::Normal => TokenKind::AccessToken,
            TokenMode::Stable => TokenKind::StableAccessToken,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) api_base: String,
    pub(crate) open_base: String,
    pub(crate) retry: RetryPolicy,
    pub(crate) mode: TokenMode,
    pub(crate) deadline: Duration,
    /// How long the result of a code exchange is kept for a repeat of the same code; `None`:
    /// not kept.
    pub(crate) code_window: Option<Duration>,
}

/// Force refreshes of the stable token made by this client.
#[derive(Default)]
pub(crate) struct ForceLog {
    last: Option<SystemTime>,
    day: u64,
    count: u32,
}

/// The calendar day in China Standard Time (UTC+8), when WeChat's daily quotas reset.
fn china_day(t: SystemTime) -> u64 {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    (secs + 8 * 3600) / 86_400
}

impl ForceLog {
    fn check(&self, now: SystemTime) -> std::result::Result<(), Refused> {
        if let Some(last) = self.last {
            let since = now.duration_since(last).unwrap_or_default();
            if since < STABLE_FORCE_REFRESH_SPACING {
                return Err(Refused::ForceRefreshTooSoon {
                    retry_in: STABLE_FORCE_REFRESH_SPACING - since,
                });
            }
        }
        if self.day == china_day(now) && self.count >= STABLE_FORCE_REFRESH_DAILY_LIMIT {
            return Err(Refused::ForceRefreshDailyLimit {
                limit: STABLE_FORCE_REFRESH_DAILY_LIMIT,
            });
        }
        Ok(())
    }

    fn record(&mut self, now: SystemTime) {
        let today = china_day(now);
        if self.day != today {
            self.day = today;
            self.count = 0;
        }
        self.count += 1;
        self.last = Some(now);
    }
}

pub(crate) struct Inner<T, S> {
    pub(crate) appid: AppId,
    pub(crate) secret: AppSecret,
    pub(crate) transport: T,
    pub(crate) clock: SharedClock,
    pub(crate) config: Config,
    pub(crate) tokens: TokenManager<S>,
    pub(crate) force_log: Mutex<ForceLog>,
    /// The store key of the base token (of `config.mode`).
    pub(crate) base_key: TokenKey,
    /// When this client last dropped a rejected JS-SDK ticket.
    pub(crate) ticket_dropped_at: Mutex<Option<SystemTime>>,
    /// When this (fetching) client last looked for a ticket a consumer marked suspect.
    pub(crate) ticket_suspect_checked_at: Mutex<Option<SystemTime>>,
}

/// A WeChat Official Account client: the OAuth web login, user profiles, and any server API
/// called with a managed base access token.
///
/// Generic over the [`HttpTransport`] (e.g. `wx_reqwest::ReqwestTransport`, or
/// `wx_core::test_util::MockTransport` in tests) and the [`TokenStore`] (e.g.
/// `wx_core::MemoryTokenStore` in one process, `wx_redis` for a fleet). Cloning is cheap (an
/// `Arc` inside); clones share the token cache and its single flight. [`DynOfficialAccount`] is
/// the type-erased form.
///
/// Calls need a Tokio runtime: token refreshes run as their own tasks, so a caller that gives up
/// never leaves a refresh half done.
///
/// Built with [`OfficialAccount::builder`].
pub struct OfficialAccount<T, S> {
    pub(crate) inner: Arc<Inner<T, S>>,
}

/// [`OfficialAccount`] with the transport and store behind trait objects, for code that does not
/// want to carry the type parameters.
pub type DynOfficialAccount = OfficialAccount<Arc<dyn HttpTransport>, Arc<dyn TokenStore>>;

impl<T, S> Clone for OfficialAccount<T, S> {
    fn clone(&self) -> Self {
        OfficialAccount {
            inner: self.inner.clone(),
        }
    }
}

impl<T, S> fmt::Debug for OfficialAccount<T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OfficialAccount")
            .field("appid", &self.inner.appid)
            .field("token_mode", &self.inner.config.mode)
            .field("api_base", &self.inner.config.api_base)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct StableTokenBody<'a> {
    grant_type: &'static str,
    appid: &'a str,
    secret: &'a str,
    force_refresh: bool,
}

/// The base token fetch of a mode: `GET /cgi-bin/token` or `POST /cgi-bin/stable_token`.
/// Sent only by the token manager (one fetch per fleet), so it stays private.
struct BaseTokenRequest<'a> {
    appid: &'a AppId,
    secret: &'a AppSecret,
    mode: TokenMode,
    force_refresh: bool,
}

impl Request for BaseTokenRequest<'_> {
    type Response = AccessTokenResponse;
    fn endpoint(&self) -> Result<Endpoint> {
        match self.mode {
            TokenMode::Normal => Ok(Endpoint::get("/cgi-bin/token")
                .query("grant_type", "client_credential")
                .query("appid", self.appid.as_str())
                .query("secret", self.secret.secret())),
            TokenMode::Stable => Endpoint::post_json(
                "/cgi-bin/stable_token",
                &StableTokenBody {
                    grant_type: "client_credential",
                    appid: self.appid.as_str(),
                    secret: self.secret.secret(),
                    force_refresh: self.force_refresh,
                },
            ),
        }
    }
}

impl<T, S> OfficialAccount<T, S> {
    /// The AppID.
    #[must_use]
    pub fn appid(&self) -> &AppId {
        &self.inner.appid
    }

    /// The transport.
    #[must_use]
    pub fn transport(&self) -> &T {
        &self.inner.transport
    }

    /// The clock.
    #[must_use]
    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    /// Which endpoint supplies the base access token.
    #[must_use]
    pub fn token_mode(&self) -> TokenMode {
        self.inner.config.mode
    }

    /// The API base URL, without trailing `/`.
    #[must_use]
    pub fn api_base(&self) -> &str {
        &self.inner.config.api_base
    }

    /// The authorize page base URL, without trailing `/`.
    #[must_use]
    pub fn open_base(&self) -> &str {
        &self.inner.config.open_base
    }

    pub(crate) fn secret(&self) -> &AppSecret {
        &self.inner.secret
    }

    /// The window of the idempotent code exchange, when on.
    pub(crate) fn code_window(&self) -> Option<Duration> {
        self.inner.config.code_window
    }

    /// When this (fetching) client last looked for a JS-SDK ticket marked suspect.
    pub(crate) fn ticket_suspect_checked_at(
        &self,
    ) -> std::sync::MutexGuard<'_, Option<SystemTime>> {
        self.inner
            .ticket_suspect_checked_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// When this client last acted on a report of a rejected JS-SDK ticket.
    pub(crate) fn ticket_dropped_at(&self) -> std::sync::MutexGuard<'_, Option<SystemTime>> {
        self.inner
            .ticket_dropped_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T, S> OfficialAccount<T, S>
where
    T: HttpTransport + 'static,
    S: TokenStore + 'static,
{
    /// The token store.
    #[must_use]
    pub fn store(&self) -> &S {
        self.inner.tokens.store()
    }

    /// The store as the client uses it: every operation bounded by the store timeout.
    pub(crate) fn bounded_store(&self) -> &crate::token::BoundedStore<S> {
        self.inner.tokens.bounded_store()
    }

    /// The store key of `kind` for this client: `{prefix}:{appid}:{kind}`.
    #[must_use]
    pub fn token_key(&self, kind: &TokenKind) -> TokenKey {
        self.inner.tokens.key(kind)
    }

    /// For extensions in this crate (the JS-SDK ticket): the value of `kind`, managed exactly
    /// like the base token (cached with the margin, single flight, store lease, cooldown,
    /// refresh-ahead and consumer-only modes). `fetch` gets a clone of the client and runs only
    /// when this caller starts the refresh; it usually calls
    /// [`call_with_token`](Self::call_with_token).
    pub(crate) async fn managed_value<F>(&self, kind: TokenKind, fetch: F) -> Result<StoredToken>
    where
        F: FnOnce(Self) -> FetchFuture + Send + 'static,
    {
        let this = self.clone();
        self.inner.tokens.get(&kind, move || fetch(this)).await
    }

    /// The token manager, for extensions in this crate (one-off values such as code exchanges).
    pub(crate) fn tokens(&self) -> &TokenManager<S> {
        &self.inner.tokens
    }

    /// The base access token: the cached one while it is outside the expiry margin, otherwise a
    /// new one from `GET /cgi-bin/token` (or `POST /cgi-bin/stable_token` in stable mode).
    ///
    /// Concurrent callers in one process cause one request and share its result; with a store
    /// that grants leases (Redis), one process of a fleet fetches while the others wait for its
    /// token. See the crate docs for the whole algorithm.
    ///
    /// # Errors
    /// - [`Error::Api`](wx_core::Error::Api) from the token endpoint (`40013` bad AppID, `40125` bad AppSecret, `40164`
    ///   IP not whitelisted, `45009` quota...), after which fetches are refused for the cooldown
    ///   with [`Refused::TokenFetchCooldown`](wx_core::Refused::TokenFetchCooldown) naming it, without a request.
    /// - [`Error::Store`](wx_core::Error::Store) when the store fails: no token is fetched then (see the crate docs).
    /// - [`Refused::LeaseWaitTimedOut`](wx_core::Refused::LeaseWaitTimedOut) when another process held the refresh lease too long;
    ///   [`Refused::ConsumerStoreEmpty`](wx_core::Refused::ConsumerStoreEmpty) in consumer-only mode with an empty store.
    /// - [`Error::Transport`](wx_core::Error::Transport), [`Error::HttpStatus`](wx_core::Error::HttpStatus), [`Error::Decode`](wx_core::Error::Decode) after retries;
    ///   [`Error::Deadline`](wx_core::Error::Deadline) when the call outlives the request deadline.
    pub async fn access_token(&self) -> Result<AccessToken> {
        // The warm path: the local copy, with nothing to await. The rest is boxed so that this
        // future stays a few words (it is built and moved on every call).
        if let Some(token) = self.inner.tokens.local_fresh(&self.inner.base_key) {
            return Ok(AccessToken::from_shared(token));
        }
        Box::pin(self.access_token_from_store()).await
    }

    /// [`access_token`](Self::access_token) past the local copy: a fresh token in the store,
    /// without span, deadline or fetch closure; otherwise the refresh.
    async fn access_token_from_store(&self) -> Result<AccessToken> {
        let stored = match self.inner.tokens.read_fresh(&self.inner.base_key).await? {
            Ok(token) => return Ok(AccessToken::new(token.into_secret())),
            Err(stored) => stored,
        };
        let span = tracing::info_span!("wx.access_token", mode = ?self.inner.config.mode);
        self.with_deadline("access_token", self.base_token_after_read(Some(stored)))
            .instrument(span)
            .await
    }

    /// Forces WeChat to issue a new stable access token (`force_refresh: true`), invalidating the
    /// current one: for a token that leaked. Stable mode only.
    ///
    /// WeChat allows one force refresh per 30 s and 20 a day (days in China Standard Time); this
    /// client refuses beyond that without sending a request. The 30 s spacing is shared by the
    /// fleet through a lease in the store when the store grants exclusive leases; the daily count
    /// is kept per client.
    ///
    /// # Errors
    /// [`Error::InvalidInput`](wx_core::Error::InvalidInput) (argument `token_mode`) outside stable mode or (argument
    /// `consumer_only`) in consumer-only mode; [`Refused::ForceRefreshTooSoon`](wx_core::Refused::ForceRefreshTooSoon),
    /// [`Refused::ForceRefreshDailyLimit`](wx_core::Refused::ForceRefreshDailyLimit), [`Refused::TokenFetchCooldown`](wx_core::Refused::TokenFetchCooldown) without a request;
    /// otherwise as [`access_token`](Self::access_token). The request is a POST and is not
    /// retried after a timeout.
    pub async fn force_refresh_stable_token(&self) -> Result<AccessToken> {
        if self.inner.config.mode != TokenMode::Stable {
            return Err(
                InvalidInput::new("token_mode", "force refresh needs TokenMode::Stable").into(),
            );
        }
        let tokens = &self.inner.tokens;
        tokens.refuse_if_consumer()?;
        let kind = TokenKind::StableAccessToken;
        let fut = async {
            tokens.check_cooldown(&kind)?;
            self.force_log().check(self.inner.clock.now())?;
            let spacing_key = tokens.key(&TokenKind::Custom(
                "stable_access_token:force_refresh".into(),
            ));
            if !tokens
                .bounded_store()
                .try_acquire_lease(&spacing_key, &owner_id(), STABLE_FORCE_REFRESH_SPACING)
                .await?
            {
                return Err(Refused::ForceRefreshTooSoon {
                    retry_in: STABLE_FORCE_REFRESH_SPACING,
                }
                .into());
            }
            {
                let now = self.inner.clock.now();
                let mut log = self.force_log();
                log.check(now)?;
                log.record(now);
            }
            let this = self.clone();
            let token = tokens
                .refresh(&kind, move || -> FetchFuture {
                    Box::pin(async move { this.fetch_base_token(true).await })
                })
                .await?;
            Ok(AccessToken::new(token.secret()))
        };
        let span = tracing::info_span!("wx.force_refresh_stable_token");
        self.with_deadline("force_refresh_stable_token", fut)
            .instrument(span)
            .await
    }

    /// Drops the cached base token if it still is `rejected`, so the next call fetches a new one.
    /// For tokens used outside [`call_with_token`](Self::call_with_token), which does this
    /// itself. Returns whether it was dropped (`false`: someone already replaced it).
    ///
    /// # Errors
    /// [`Error::Store`](wx_core::Error::Store) when the store fails.
    pub async fn invalidate_access_token(&self, rejected: &AccessToken) -> Result<bool> {
        self.inner
            .tokens
            .invalidate(&self.inner.config.mode.token_kind(), rejected.secret())
            .await
    }

    /// The base token for a call: the local copy when warm, with nothing to await; the rest is
    /// boxed, so that every call's future (those without the base token too) stays small.
    pub(crate) async fn base_token(&self) -> Result<AccessToken> {
        if let Some(token) = self.inner.tokens.local_fresh(&self.inner.base_key) {
            return Ok(AccessToken::from_shared(token));
        }
        Box::pin(self.base_token_after_read(None)).await
    }

    /// The base token; `stored` is the store's answer when the caller has read it already.
    async fn base_token_after_read(&self, stored: Option<Miss>) -> Result<AccessToken> {
        let this = self.clone();
        let fetch =
            move || -> FetchFuture { Box::pin(async move { this.fetch_base_token(false).await }) };
        let tokens = &self.inner.tokens;
        let kind = self.inner.config.mode.token_kind();
        let token = match stored {
            Some(stored) => tokens.get_after_read(&kind, stored, fetch).await?,
            None => tokens.get(&kind, fetch).await?,
        };
        Ok(AccessToken::new(token.into_secret()))
    }

    async fn fetch_base_token(&self, force_refresh: bool) -> Result<Fetched> {
        let request = BaseTokenRequest {
            appid: &self.inner.appid,
            secret: &self.inner.secret,
            mode: self.inner.config.mode,
            force_refresh,
        };
        // Not through `send`: its base-token branch would make this future recursive (the
        // token fetch needs no token), and a recursive future is not provably `Send`.
        let ep = request.endpoint()?;
        let deadline = self.deadline(ep.name());
        let r: AccessTokenResponse = self
            .traced(&ep, self.send_with_retries(&ep, None, &deadline))
            .await?;
        if r.access_token.is_empty() || r.access_token.secret().len() > MAX_TOKEN_LEN {
            return Err(DecodeError {
                endpoint: ep.name(),
                path: ".access_token".to_owned(),
                reason: DecodeReason::Data,
            }
            .into());
        }
        Ok(Fetched {
            value: r.access_token.into_secret(),
            expires_in: r.expires_in,
        })
    }

    fn force_log(&self) -> std::sync::MutexGuard<'_, ForceLog> {
        self.inner
            .force_log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use wx_core::test_util::MockTransport;
    use wx_core::{HttpResponse, JsapiTicketResponse, MemoryTokenStore};

    use super::*;

    type Client = OfficialAccount<MockTransport, MemoryTokenStore>;

    fn ticket_fetch(client: Client) -> FetchFuture {
        Box::pin(async move {
            let r: JsapiTicketResponse = client
                .call_with_token(Endpoint::get("/cgi-bin/ticket/getticket").query("type", "jsapi"))
                .await?;
            Ok(Fetched {
                value: r.ticket.into_secret(),
                expires_in: r.expires_in,
            })
        })
    }

    /// The JS-SDK ticket reuses the token manager: single flight, cache, compare-and-delete.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn managed_values_reuse_the_token_machinery() {
        let mock = MockTransport::new();
        mock.push_for(
            "/cgi-bin/token",
            HttpResponse::json(r#"{"access_token":"AT","expires_in":7200}"#),
        );
        for ticket in ["TK1", "TK2"] {
            mock.push_for(
                "/cgi-bin/ticket/getticket",
                HttpResponse::json(format!(
                    r#"{{"errcode":0,"errmsg":"ok","ticket":"{ticket}","expires_in":7200}}"#
                )),
            );
        }
        let client = OfficialAccount::builder("wxapp", AppSecret::new("s"))
            .build(mock.clone(), MemoryTokenStore::new())
            .expect("valid options");
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..200 {
            let c = client.clone();
            tasks.spawn(async move { c.managed_value(TokenKind::JsapiTicket, ticket_fetch).await });
        }
        for r in tasks.join_all().await {
            assert_eq!(r.expect("ticket").secret(), "TK1");
        }
        assert_eq!(mock.count("/cgi-bin/ticket/getticket"), 1);
        assert_eq!(mock.count("/cgi-bin/token"), 1);
        let sent = &mock.requests_to("/cgi-bin/ticket/getticket")[0];
        assert_eq!(sent.query("access_token").as_deref(), Some("AT"));
        assert_eq!(sent.query("type").as_deref(), Some("jsapi"));

        assert!(
            !client
                .tokens()
                .invalidate(&TokenKind::JsapiTicket, "OTHER")
                .await
                .expect("cad")
        );
        assert!(
            client
                .tokens()
                .invalidate(&TokenKind::JsapiTicket, "TK1")
                .await
                .expect("cad")
        );
        let t = client
            .managed_value(TokenKind::JsapiTicket, ticket_fetch)
            .await
            .expect("refetched");
        assert_eq!(t.secret(), "TK2");
        assert_eq!(mock.count("/cgi-bin/ticket/getticket"), 2);
        assert_eq!(
            client.token_key(&TokenKind::JsapiTicket).to_string(),
            "wx:wxapp:jsapi_ticket"
        );
    }

    #[test]
    fn force_log_spacing_and_daily_limit() {
        // 2024-01-01 00:00:00 China time = 2023-12-31 16:00:00 UTC.
        let midnight_cst = UNIX_EPOCH + Duration::from_secs(1_704_038_400);
        let mut log = ForceLog::default();
        let mut now = midnight_cst + Duration::from_secs(60);
        for _ in 0..STABLE_FORCE_REFRESH_DAILY_LIMIT {
            log.check(now).expect("within the limits");
            log.record(now);
            assert!(matches!(
                log.check(now + Duration::from_secs(29)),
                Err(Refused::ForceRefreshTooSoon { retry_in }) if retry_in == Duration::from_secs(1)
            ));
            now += Duration::from_secs(31);
        }
        assert!(matches!(
            log.check(now),
            Err(Refused::ForceRefreshDailyLimit { limit: 20 })
        ));
        // The next China day starts 24 h after midnight_cst.
        log.check(midnight_cst + Duration::from_secs(86_400))
            .expect("a new day");
        assert_eq!(
            china_day(midnight_cst),
            china_day(midnight_cst + Duration::from_secs(86_399))
        );
        assert_ne!(
            china_day(midnight_cst),
            china_day(midnight_cst - Duration::from_secs(1))
        );
    }
}
