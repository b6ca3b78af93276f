//! The client: configuration, the one execute path, and the base access token.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tracing::Instrument as _;
use wx_core::{
    AccessToken, AccessTokenResponse, AppId, AppSecret, DecodeError, DecodeReason, Delivery, Error,
    HttpRequest, HttpTransport, InvalidInput, Refused, Result, RetryHint, SharedClock, StoredToken,
    SystemClock, TokenKey, TokenKind, TokenStore, check_arg, urlenc,
};

use crate::endpoint::{Auth, Endpoint};
use crate::request::{FromResponse, Request};
use crate::retry::RetryPolicy;
use crate::token::{FetchFuture, Fetched, Miss, TokenManager, TokenPolicy, owner_id};

/// WeChat's API host.
pub const DEFAULT_API_BASE: &str = "https://api.weixin.qq.com";
/// WeChat's host for the OAuth authorize page.
pub const DEFAULT_OPEN_BASE: &str = "https://open.weixin.qq.com";

/// WeChat requires force refreshes of the stable token to be at least this far apart.
pub const STABLE_FORCE_REFRESH_SPACING: Duration = Duration::from_secs(30);
/// WeChat allows this many force refreshes of the stable token a day.
pub const STABLE_FORCE_REFRESH_DAILY_LIMIT: u32 = 20;

/// The longest window of [`Builder::idempotent_code_exchange`]: WeChat's codes live 5 minutes,
/// and no callback can legitimately bring a code back after that.
pub const MAX_CODE_EXCHANGE_WINDOW: Duration = Duration::from_secs(300);

/// The longest expiry margin: WeChat's tokens and tickets live 7,200 s, so a margin of that much
/// or more would fetch on every call.
const MAX_MARGIN: Duration = Duration::from_secs(3600);
/// The longest fetch cooldown.
const MAX_COOLDOWN: Duration = Duration::from_secs(86_400);
/// The longest deadline, lease TTL, lease wait and store timeout.
const MAX_WAIT: Duration = Duration::from_secs(3600);

/// Default bound on one token-store operation (see [`Builder::store_timeout`]).
const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest [`Builder::local_token_max_age`]: a process-local copy of a token must stop
/// being served well before WeChat stops accepting a replaced token (5 minutes after the new
/// one is issued), with room for a refresh that took its whole lease (the fetch that replaced
/// it may have been issued up to a lease TTL, 20 s by default, before it reached the store).
pub const MAX_LOCAL_TOKEN_AGE: Duration = Duration::from_secs(60);

/// Default of [`Builder::local_token_max_age`].
pub const DEFAULT_LOCAL_TOKEN_AGE: Duration = Duration::from_secs(10);

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
struct Config {
    api_base: String,
    open_base: String,
    retry: RetryPolicy,
    mode: TokenMode,
    deadline: Duration,
    /// How long the result of a code exchange is kept for a repeat of the same code; `None`:
    /// not kept.
    code_window: Option<Duration>,
}

/// Force refreshes of the stable token made by this client.
#[derive(Default)]
struct ForceLog {
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
    appid: AppId,
    secret: AppSecret,
    transport: T,
    clock: SharedClock,
    config: Config,
    tokens: TokenManager<S>,
    force_log: Mutex<ForceLog>,
    /// The store key of the base token (of `config.mode`).
    base_key: TokenKey,
    /// When this client last dropped a rejected JS-SDK ticket.
    ticket_dropped_at: Mutex<Option<SystemTime>>,
    /// When this (fetching) client last looked for a ticket a consumer marked suspect.
    ticket_suspect_checked_at: Mutex<Option<SystemTime>>,
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
    inner: Arc<Inner<T, S>>,
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

impl OfficialAccount<(), ()> {
    /// Starts building a client for `appid` with its AppSecret.
    ///
    /// ```
    /// use wx_core::{AppSecret, MemoryTokenStore, test_util::MockTransport};
    /// use wx_official::OfficialAccount;
    /// let client = OfficialAccount::builder("wx1234567890abcdef", AppSecret::new("secret"))
    ///     .build(MockTransport::new(), MemoryTokenStore::new())?;
    /// assert_eq!(client.appid().as_str(), "wx1234567890abcdef");
    /// # Ok::<(), wx_core::Error>(())
    /// ```
    pub fn builder(appid: impl Into<AppId>, secret: AppSecret) -> Builder {
        Builder::new(appid, secret)
    }
}

/// Options of an [`OfficialAccount`]; every one has a sensible default.
#[derive(Clone, Debug)]
#[must_use]
pub struct Builder {
    appid: AppId,
    secret: AppSecret,
    api_base: String,
    open_base: String,
    margin: Duration,
    retry: RetryPolicy,
    clock: SharedClock,
    mode: TokenMode,
    prefix: String,
    cooldown: Duration,
    deadline: Duration,
    lease_ttl: Duration,
    lease_wait: Duration,
    store_timeout: Option<Duration>,
    refresh_ahead: bool,
    consumer_only: bool,
    code_window: Option<Duration>,
    local_max_age: Duration,
}

impl Builder {
    /// A builder for `appid` with its AppSecret and the defaults.
    pub fn new(appid: impl Into<AppId>, secret: AppSecret) -> Self {
        Builder {
            appid: appid.into(),
            secret,
            api_base: DEFAULT_API_BASE.to_owned(),
            open_base: DEFAULT_OPEN_BASE.to_owned(),
            margin: Duration::from_secs(300),
            retry: RetryPolicy::default(),
            clock: Arc::new(SystemClock),
            mode: TokenMode::Normal,
            prefix: TokenKey::DEFAULT_PREFIX.to_owned(),
            cooldown: Duration::from_secs(60),
            deadline: Duration::from_secs(30),
            lease_ttl: Duration::from_secs(20),
            lease_wait: Duration::from_secs(30),
            store_timeout: None,
            refresh_ahead: false,
            consumer_only: false,
            code_window: None,
            local_max_age: DEFAULT_LOCAL_TOKEN_AGE,
        }
    }

    /// Base URL of the API host (default `https://api.weixin.qq.com`): a proxy, or the sandbox
    /// in tests. May carry a path prefix; a trailing `/` is ignored; no user name or password.
    pub fn api_base(mut self, url: &str) -> Self {
        url.clone_into(&mut self.api_base);
        self
    }

    /// Base URL of the authorize page host (default `https://open.weixin.qq.com`).
    pub fn open_base(mut self, url: &str) -> Self {
        url.clone_into(&mut self.open_base);
        self
    }

    /// A cached token is refreshed once it expires within this margin (default 300 s; at most
    /// 1 hour, since tokens live 2).
    pub fn expiry_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    /// How transient failures are retried (default: 2 retries from 200 ms).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The clock used for token expiry, cooldowns and force-refresh limits (default: system).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Which endpoint supplies the base access token (default [`TokenMode::Normal`]).
    pub fn token_mode(mut self, mode: TokenMode) -> Self {
        self.mode = mode;
        self
    }

    /// Prefix of store keys, `{prefix}:{appid}:{kind}` (default `wx`).
    pub fn key_prefix(mut self, prefix: &str) -> Self {
        prefix.clone_into(&mut self.prefix);
        self
    }

    /// After a token fetch fails with an error retrying cannot fix (wrong AppSecret, IP not
    /// whitelisted, quota used up), fetches are refused for this long (default 60 s; at most
    /// 24 hours).
    pub fn cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// Deadline of a whole call, retries and token refresh included (default 30 s; more than
    /// zero, at most 1 hour).
    pub fn request_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// How long the refresh lease of a shared store lasts, and so the longest one token fetch
    /// may take (default 20 s; more than zero, at most 1 hour).
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
        self
    }

    /// The longest one token-store operation may take (default: 5 s, or the request deadline
    /// when that is shorter). A store that does not answer in time fails the operation with
    /// [`Error::Store`]; without this bound one hung operation inside a refresh would hold up
    /// every later caller waiting on that refresh.
    ///
    /// [`Error::Store`]: wx_core::Error::Store
    pub fn store_timeout(mut self, timeout: Duration) -> Self {
        self.store_timeout = Some(timeout);
        self
    }

    /// How long a refresh waits for another process that holds the lease before giving up with
    /// [`Refused::LeaseWaitTimedOut`] (default 30 s; keep it above the lease TTL so a waiter
    /// takes over from a leader that died).
    pub fn lease_wait(mut self, wait: Duration) -> Self {
        self.lease_wait = wait;
        self
    }

    /// Refresh ahead (default off): when the cached token is inside the margin but not expired,
    /// callers keep getting it while one background refresh replaces it, so no caller waits on
    /// a refresh until the token actually expires.
    pub fn refresh_ahead(mut self, on: bool) -> Self {
        self.refresh_ahead = on;
        self
    }

    /// Consumer-only mode (default off): never call a token endpoint, only read tokens another
    /// process stores (for fleets where one whitelisted node fetches). An empty store gives
    /// [`Refused::ConsumerStoreEmpty`].
    pub fn consumer_only(mut self, on: bool) -> Self {
        self.consumer_only = on;
        self
    }

    /// How long this process serves its own copy of the base token and the JS-SDK ticket
    /// without reading the store (default [`DEFAULT_LOCAL_TOKEN_AGE`], 10 s; at most
    /// [`MAX_LOCAL_TOKEN_AGE`], 60 s; zero: every call reads the store).
    ///
    /// A warm [`access_token`](OfficialAccount::access_token) then costs a lock and a copy
    /// instead of a store round trip (a Redis `GET`), so a fleet's store load no longer grows
    /// with its call rate. The copy is taken from the store or from this process's own fetch
    /// and served while it is younger than this and outside the expiry margin; a token WeChat
    /// rejects is dropped from it at once (and the call retried once, as always), and a token
    /// this process fetches replaces it at once. A token another process stores is picked up
    /// within this bound. That is safe because WeChat keeps a replaced base token valid for 5
    /// minutes; should a token be revoked some other way, the first call that meets the
    /// rejection recovers it.
    pub fn local_token_max_age(mut self, max_age: Duration) -> Self {
        self.local_max_age = max_age;
        self
    }

    /// Idempotent code exchange (default off): the result of
    /// [`exchange_code_for`](OfficialAccount::exchange_code_for) is kept in the store for
    /// `window` (at most the web token's lifetime and the state's), for that callback only: the
    /// same code with the same verified, browser-bound state within that time (WeChat's double
    /// redirect, the browser's reload) gets the same answer instead of WeChat's `40163`, and
    /// concurrent exchanges of it send one request. The code with any other state is sent to
    /// WeChat. The entry holds the user's web token and refresh token: keep `window` short (a
    /// minute). With the option on, [`exchange_code`](OfficialAccount::exchange_code) (which has
    /// no state) is refused.
    ///
    /// `build` rejects a window under one second or over [`MAX_CODE_EXCHANGE_WINDOW`] (5
    /// minutes, the life of a code).
    pub fn idempotent_code_exchange(mut self, window: Duration) -> Self {
        self.code_window = Some(window);
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the option: an empty, oversized or malformed AppID (ASCII
    /// letters, digits, `_` and `-` only, so store keys cannot collide), AppSecret or key prefix;
    /// a base URL that is not an absolute `http(s)://host[/path]` without user name, password,
    /// query or fragment; a
    /// duration out of range: an expiry margin over 1 hour, a cooldown over 24 hours, a zero
    /// or over-1-hour request deadline, lease TTL or store timeout, a lease wait over 1 hour;
    /// an idempotent-exchange window under one second or over [`MAX_CODE_EXCHANGE_WINDOW`]; a
    /// local token age over [`MAX_LOCAL_TOKEN_AGE`].
    pub fn build<T, S>(self, transport: T, store: S) -> Result<OfficialAccount<T, S>>
    where
        T: HttpTransport + 'static,
        S: TokenStore + 'static,
    {
        check_arg("appid", self.appid.as_str(), MAX_APPID_LEN)?;
        if !self
            .appid
            .as_str()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(
                InvalidInput::new("appid", "must be ASCII letters, digits, `_` or `-`").into(),
            );
        }
        check_arg("secret", self.secret.secret(), MAX_SECRET_LEN)?;
        check_arg("key_prefix", &self.prefix, 128)?;
        let api_base = normalize_base("api_base", &self.api_base)?;
        let open_base = normalize_base("open_base", &self.open_base)?;
        let store_timeout = self
            .store_timeout
            .unwrap_or(DEFAULT_STORE_TIMEOUT.min(self.deadline));
        // Every duration in range, so that no `now + duration` can overflow and no option
        // silently defeats the cache (a margin as long as a token's life fetches on every call).
        for (argument, value, zero_ok, max, reason) in [
            (
                "expiry_margin",
                self.margin,
                true,
                MAX_MARGIN,
                "must be at most 1 hour (tokens live 2 hours)",
            ),
            (
                "cooldown",
                self.cooldown,
                true,
                MAX_COOLDOWN,
                "must be at most 24 hours",
            ),
            (
                "request_deadline",
                self.deadline,
                false,
                MAX_WAIT,
                "must be at most 1 hour",
            ),
            (
                "lease_ttl",
                self.lease_ttl,
                false,
                MAX_WAIT,
                "must be at most 1 hour",
            ),
            (
                "lease_wait",
                self.lease_wait,
                true,
                MAX_WAIT,
                "must be at most 1 hour",
            ),
            (
                "store_timeout",
                store_timeout,
                false,
                MAX_WAIT,
                "must be at most 1 hour",
            ),
            (
                "local_token_max_age",
                self.local_max_age,
                true,
                MAX_LOCAL_TOKEN_AGE,
                "must be at most 60 s, well inside WeChat's 5-minute grace for a replaced token",
            ),
        ] {
            if !zero_ok && value.is_zero() {
                return Err(InvalidInput::new(argument, "must be greater than zero").into());
            }
            if value > max {
                return Err(InvalidInput::new(argument, reason).into());
            }
        }
        if self.code_window.is_some_and(|w| w < Duration::from_secs(1)) {
            return Err(InvalidInput::new(
                "idempotent_code_exchange",
                "the window must be at least one second",
            )
            .into());
        }
        if self
            .code_window
            .is_some_and(|w| w > MAX_CODE_EXCHANGE_WINDOW)
        {
            return Err(InvalidInput::new(
                "idempotent_code_exchange",
                "the window must be at most 5 minutes (the life of a code)",
            )
            .into());
        }
        let tokens = TokenManager::new(
            store,
            self.clock.clone(),
            TokenPolicy {
                margin: self.margin,
                cooldown: self.cooldown,
                lease_ttl: self.lease_ttl,
                lease_wait: self.lease_wait,
                store_timeout,
                refresh_ahead: self.refresh_ahead,
                consumer_only: self.consumer_only,
                local_max_age: self.local_max_age,
            },
            Arc::from(self.prefix.as_str()),
            self.appid.clone(),
        );
        let base_key = tokens.key(&self.mode.token_kind());
        Ok(OfficialAccount {
            inner: Arc::new(Inner {
                appid: self.appid,
                secret: self.secret,
                transport,
                clock: self.clock,
                config: Config {
                    api_base,
                    open_base,
                    retry: self.retry,
                    mode: self.mode,
                    deadline: self.deadline,
                    code_window: self.code_window,
                },
                tokens,
                force_log: Mutex::default(),
                base_key,
                ticket_dropped_at: Mutex::default(),
                ticket_suspect_checked_at: Mutex::default(),
            }),
        })
    }
}

/// Checks a base URL and drops its trailing `/`.
fn normalize_base(argument: &'static str, url: &str) -> Result<String> {
    crate::url_check::check_http_url(argument, url, 2048)?;
    // A password in a base URL would show in `Debug` and in any log of the URL.
    let authority = url
        .split_once("://")
        .map_or("", |(_, rest)| rest)
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    if authority.contains('@') {
        return Err(InvalidInput::new(argument, "must not hold a user name or password").into());
    }
    if url.contains(['?', '#']) {
        return Err(InvalidInput::new(argument, "must not have a query or fragment").into());
    }
    Ok(url.trim_end_matches('/').to_owned())
}

#[derive(Serialize)]
struct StableTokenBody<'a> {
    grant_type: &'static str,
    appid: &'a str,
    secret: &'a str,
    force_refresh: bool,
}

/// Whether `e`, a transient failure, may be retried for `ep`. A request that is not idempotent
/// is repeated only when it certainly had no effect.
fn may_retry(ep: &Endpoint, e: &Error) -> bool {
    if e.retry_hint() != RetryHint::Backoff {
        return false;
    }
    // A request that is not idempotent is repeated only when it certainly had no effect: it
    // never left, or WeChat answered that it did nothing (busy, rate limited).
    ep.is_idempotent() || e.delivery() == Delivery::NotSent || matches!(e, Error::Api(_))
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
    /// - [`Error::Api`] from the token endpoint (`40013` bad AppID, `40125` bad AppSecret, `40164`
    ///   IP not whitelisted, `45009` quota...), after which fetches are refused for the cooldown
    ///   with [`Refused::TokenFetchCooldown`] naming it, without a request.
    /// - [`Error::Store`] when the store fails: no token is fetched then (see the crate docs).
    /// - [`Refused::LeaseWaitTimedOut`] when another process held the refresh lease too long;
    ///   [`Refused::ConsumerStoreEmpty`] in consumer-only mode with an empty store.
    /// - [`Error::Transport`], [`Error::HttpStatus`], [`Error::Decode`] after retries;
    ///   [`Error::Deadline`] when the call outlives the request deadline.
    pub async fn access_token(&self) -> Result<AccessToken> {
        // The hot path: a fresh token in the local copy or the store, without span, deadline or
        // fetch closure.
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
    /// [`Error::InvalidInput`] (argument `token_mode`) outside stable mode or (argument
    /// `consumer_only`) in consumer-only mode; [`Refused::ForceRefreshTooSoon`],
    /// [`Refused::ForceRefreshDailyLimit`], [`Refused::TokenFetchCooldown`] without a request;
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
    /// [`Error::Store`] when the store fails.
    pub async fn invalidate_access_token(&self, rejected: &AccessToken) -> Result<bool> {
        self.inner
            .tokens
            .invalidate(&self.inner.config.mode.token_kind(), rejected.secret())
            .await
    }

    /// Sends a typed [`Request`] through the one execute path and decodes its answer: the
    /// request's arguments are checked first (nothing is sent when they are bad), the
    /// credential its endpoint declares is added, transient failures are retried where that is
    /// safe, and a rejected base token is recovered once.
    ///
    /// ```no_run
    /// # async fn demo(client: wx_official::DynOfficialAccount) -> wx_core::Result<()> {
    /// use wx_official::{Endpoint, Request};
    /// struct ApiDomainIp;
    /// #[derive(serde::Deserialize)]
    /// struct IpList { ip_list: Vec<String> }
    /// impl Request for ApiDomainIp {
    ///     type Response = IpList;
    ///     fn endpoint(&self) -> wx_core::Result<Endpoint> {
    ///         Ok(Endpoint::get("/cgi-bin/get_api_domain_ip").with_base_token())
    ///     }
    /// }
    /// let ips = client.send(&ApiDomainIp).await?;
    /// # let _ = ips.ip_list; Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The request's own [`Error::InvalidInput`], then as [`call`](Self::call).
    pub async fn send<R: Request + ?Sized>(&self, request: &R) -> Result<R::Response> {
        let endpoint = request.endpoint()?;
        self.call(endpoint).await
    }

    /// The untyped escape hatch for what wx does not cover yet: calls `endpoint` through the
    /// one execute path, adding the credential it declares ([`Endpoint::auth`]): send, reject a
    /// non-2xx status, decode the `errcode` envelope whatever the Content-Type, and retry
    /// transient failures with backoff (GETs and idempotent requests; others only when they
    /// certainly had no effect).
    ///
    /// With [`Auth::BaseToken`], when WeChat rejects the token (`40001`, `40014`, `42001`), the
    /// cached token is dropped only if it still is the one that failed (compare-and-delete), a
    /// token is obtained again (someone else's newer one, or a new fetch) and the call is
    /// retried exactly once; a second rejection is returned. With [`Auth::None`] (the OAuth
    /// endpoints carry their own credentials) a token error is returned, not retried.
    ///
    /// ```no_run
    /// # async fn demo(client: wx_official::DynOfficialAccount) -> wx_core::Result<()> {
    /// use wx_official::Endpoint;
    /// #[derive(serde::Deserialize)]
    /// struct Ip { ip_list: Vec<String> }
    /// let ep = Endpoint::get("/cgi-bin/get_api_domain_ip").with_base_token();
    /// let ips: Ip = client.call(ep).await?;
    /// # let _ = ips.ip_list; Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Api`] for a WeChat error, [`Error::Transport`], [`Error::HttpStatus`],
    /// [`Error::Decode`], [`Error::InvalidInput`] for a malformed path, [`Error::Deadline`];
    /// with the base token, the errors of [`access_token`](Self::access_token) too.
    pub async fn call<R: FromResponse>(&self, endpoint: Endpoint) -> Result<R> {
        endpoint.check()?;
        match endpoint.auth_kind() {
            Auth::None => {
                self.traced(&endpoint, self.send_with_retries(&endpoint, None))
                    .await
            }
            Auth::BaseToken => {
                let fut = async {
                    let token = self.base_token().await?;
                    match self.send_with_retries(&endpoint, Some(&token)).await {
                        Err(e) if e.retry_hint() == RetryHint::RefreshToken => {
                            let dropped = self.invalidate_access_token(&token).await?;
                            tracing::info!(error = %e, dropped, "access token rejected; retrying once with a new one");
                            let token = self.base_token().await?;
                            self.send_with_retries(&endpoint, Some(&token)).await
                        }
                        other => other,
                    }
                };
                self.traced(&endpoint, fut).await
            }
        }
    }

    /// [`call`](Self::call) with the base access token, whatever `endpoint` declares: shorthand
    /// for `call(endpoint.with_base_token())`.
    ///
    /// # Errors
    /// As [`call`](Self::call).
    pub async fn call_with_token<R: FromResponse>(&self, endpoint: Endpoint) -> Result<R> {
        self.call(endpoint.with_base_token()).await
    }

    /// Runs `fut` inside a span naming the endpoint (its path, never the query) and the deadline.
    async fn traced<R>(&self, ep: &Endpoint, fut: impl Future<Output = Result<R>>) -> Result<R> {
        let span = tracing::info_span!(
            "wx.call",
            endpoint = ep.name(),
            method = %ep.method(),
            path = ep.path()
        );
        self.with_deadline(ep.name(), fut).instrument(span).await
    }

    pub(crate) async fn with_deadline<R>(
        &self,
        operation: &'static str,
        fut: impl Future<Output = Result<R>>,
    ) -> Result<R> {
        let deadline = self.inner.config.deadline;
        tokio::time::timeout(deadline, fut)
            .await
            .unwrap_or(Err(Error::Deadline {
                operation,
                deadline,
            }))
    }

    /// The one execute path: one request, retried with backoff while the failure is transient
    /// and repeating is safe.
    async fn send_with_retries<R: FromResponse>(
        &self,
        ep: &Endpoint,
        token: Option<&AccessToken>,
    ) -> Result<R> {
        let policy = self.inner.config.retry;
        let mut retry = 0;
        loop {
            match self.send_once(ep, token).await {
                Err(e) if retry < policy.max_retries() && may_retry(ep, &e) => {
                    let delay = policy.delay(retry);
                    retry += 1;
                    tracing::debug!(retry, ?delay, error = %e, "transient failure; retrying");
                    tokio::time::sleep(delay).await;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "call failed");
                    return Err(e);
                }
                ok => return ok,
            }
        }
    }

    async fn send_once<R: FromResponse>(
        &self,
        ep: &Endpoint,
        token: Option<&AccessToken>,
    ) -> Result<R> {
        let base = format!("{}{}", self.inner.config.api_base, ep.path());
        let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(4);
        if let Some(token) = token {
            pairs.push(("access_token", token.secret()));
        }
        pairs.extend(ep.query_pairs());
        let url = urlenc::url_with_query(&base, &pairs);
        let request = match (ep.content_type(), ep.body()) {
            (Some(content_type), Some(body)) => {
                HttpRequest::post(url, content_type.clone(), body.clone())
            }
            _ => HttpRequest::new(ep.method().clone(), url),
        }
        .with_response_limit(ep.response_limit_bytes());
        let response = self
            .inner
            .transport
            .send(request)
            .await
            .map_err(|e| Error::transport_at(ep.name(), e))?;
        if !response.status.is_success() {
            return Err(Error::HttpStatus {
                endpoint: ep.name(),
                status: response.status,
            });
        }
        R::from_response(ep.name(), &response)
    }

    async fn base_token(&self) -> Result<AccessToken> {
        self.base_token_after_read(None).await
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

    fn token_endpoint(&self, force_refresh: bool) -> Result<Endpoint> {
        match self.inner.config.mode {
            TokenMode::Normal => Ok(Endpoint::get("/cgi-bin/token")
                .query("grant_type", "client_credential")
                .query("appid", self.inner.appid.as_str())
                .query("secret", self.inner.secret.secret())),
            TokenMode::Stable => Endpoint::post_json(
                "/cgi-bin/stable_token",
                &StableTokenBody {
                    grant_type: "client_credential",
                    appid: self.inner.appid.as_str(),
                    secret: self.inner.secret.secret(),
                    force_refresh,
                },
            ),
        }
    }

    async fn fetch_base_token(&self, force_refresh: bool) -> Result<Fetched> {
        let ep = self.token_endpoint(force_refresh)?;
        let r: AccessTokenResponse = self.traced(&ep, self.send_with_retries(&ep, None)).await?;
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
    fn base_urls_are_checked_and_normalised() {
        assert_eq!(
            normalize_base("api_base", "http://127.0.0.1:8080/").expect("valid"),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            normalize_base("api_base", "HTTPS://proxy.example/wx").expect("valid"),
            "HTTPS://proxy.example/wx"
        );
        for bad in [
            "",
            "api.weixin.qq.com",
            "ftp://x",
            "https://",
            "https:///path",
            "https://h/?a=1",
            "https://h/#x",
            "https://h /x",
            // Issue 19 (Info): a password would show in Debug.
            "https://user:hunter2@proxy.example/wx",
            "https://user@proxy.example",
        ] {
            let e = normalize_base("api_base", bad).expect_err(bad);
            assert!(
                matches!(e, Error::InvalidInput(ref i) if i.argument == "api_base"),
                "{bad}"
            );
        }
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
