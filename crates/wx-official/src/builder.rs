//! The options of a client and their checks.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use wx_core::{
    AppId, AppSecret, HttpTransport, InvalidInput, Result, SharedClock, SystemClock, TokenKey,
    TokenStore, check_arg,
};

use crate::client::{
    Config, DEFAULT_API_BASE, DEFAULT_OPEN_BASE, Inner, MAX_APPID_LEN, MAX_SECRET_LEN,
    OfficialAccount, TokenMode,
};
use crate::retry::RetryPolicy;
use crate::token::{TokenManager, TokenPolicy};

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

/// The longest [`Builder::local_token_max_age`]: a process-local copy of a token must stop
/// being served well before WeChat stops accepting a replaced token (5 minutes after the new
/// one is issued), with room for a refresh that took its whole lease (the fetch that replaced
/// it may have been issued up to a lease TTL, 20 s by default, before it reached the store).
pub const MAX_LOCAL_TOKEN_AGE: Duration = Duration::from_secs(60);

/// Default of [`Builder::local_token_max_age`].
pub const DEFAULT_LOCAL_TOKEN_AGE: Duration = Duration::from_secs(10);

/// Default bound on one token-store operation (see [`Builder::store_timeout`]).
const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_secs(5);

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
    /// [`Error::Store`](wx_core::Error::Store); without this bound one hung operation inside a refresh would hold up
    /// every later caller waiting on that refresh.
    ///
    /// [`Error::Store`](wx_core::Error::Store): wx_core::Error::Store
    pub fn store_timeout(mut self, timeout: Duration) -> Self {
        self.store_timeout = Some(timeout);
        self
    }

    /// How long a refresh waits for another process that holds the lease before giving up with
    /// [`Refused::LeaseWaitTimedOut`](wx_core::Refused::LeaseWaitTimedOut) (default 30 s; keep it above the lease TTL so a waiter
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
    /// [`Refused::ConsumerStoreEmpty`](wx_core::Refused::ConsumerStoreEmpty).
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
    /// [`Error::InvalidInput`](wx_core::Error::InvalidInput) naming the option: an empty, oversized or malformed AppID (ASCII
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

#[cfg(test)]
mod tests {
    use wx_core::Error;

    use super::*;

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
}
