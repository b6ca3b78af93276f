//! The token manager: one cached, shared, single-flight value per [`TokenKind`].
//!
//! It is written once for every managed value (the base access token, the stable access token,
//! the JS-SDK ticket) and knows nothing of HTTP: a caller hands it a fetch function. It also
//! serves *one-off* values ([`TokenManager::get_one_off`], the idempotent code exchange): the
//! same single flight and lease, without margin, cooldown or consumer-only rule, and without
//! memory of the kind once its fetch is over.
//!
//! # Algorithm
//! 1. Read the store. A value is *fresh* when `now + margin < expires_at`; a fresh value is
//!    returned at once. (Consumer-only mode returns any unexpired value and never fetches.
//!    Refresh-ahead mode returns a value that is inside the margin but not expired, and starts
//!    one background refresh.)
//! 2. Otherwise join the refresh in flight for this kind, or start one (single flight: any number
//!    of concurrent callers in one process cause one refresh, and all get its result, error
//!    included). A kind in cooldown is refused without a request.
//! 3. The refresh runs as its own task, so a caller that gives up (deadline, dropped future)
//!    never leaves a lease held or a fetched token unstored. It re-reads the store (another
//!    process may have refreshed), then asks the store for the refresh lease with a random owner
//!    id. With the lease it reads the store once more (a process that stored a value and
//!    released the lease between our read and our request must not cause a second fetch) and,
//!    unless that value is fresh, fetches, stores the value with the absolute expiry
//!    `now_before_fetch + expires_in`, and releases the lease. Without it (another process is
//!    refreshing) it returns the stored value if that is still valid (inside the margin but not
//!    expired); otherwise it polls the store with bounded, jittered backoff, asking for the
//!    lease again each time, so that when the leader dies its lease expires and one waiter
//!    takes over; after `lease_wait` it gives up with [`Refused::LeaseWaitTimedOut`].
//! 4. A fetch that fails with a WeChat error that retrying cannot fix (bad AppID or AppSecret,
//!    IP not whitelisted, quota used up...) starts a cooldown: until it ends, refreshes of that
//!    kind are refused with [`Refused::TokenFetchCooldown`] naming the cause, and no request is
//!    sent. A fresh value written to the store by another process is still served.
//!
//! # When the store fails
//! A failing `get` or `try_acquire_lease` is returned as [`Error::Store`] and **no fetch is
//! made**. Fetching without the shared store would let every process fetch its own base token,
//! and each `cgi-bin/token` call invalidates the previous token: the fleet would knock its own
//! tokens out and burn the 2,000-a-day quota. Failing closed keeps an outage of the store an
//! outage of the store. A failing `set` after a successful fetch is logged (warn) and the
//! fetched value is still handed to the callers waiting for it: the quota is spent already and
//! the value is valid. A failing `release_lease` is logged; the lease expires on its own.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tracing::Instrument as _;
use wx_core::{
    ApiError, AppId, Error, InvalidInput, Refused, Result, RetryHint, SharedClock, StoreError,
    StoreOp, StoredToken, TokenKey, TokenKind, TokenStore, TransportError, TransportErrorKind,
};

use crate::retry::jitter;

/// WeChat's `expires_in` is capped at this many seconds, so a garbled answer cannot pin a value
/// in the store for years. WeChat documents at most 7,200.
const MAX_LIFETIME_SECS: u64 = 86_400;

/// First and largest delay between store polls while another process holds the lease. The cap
/// is small next to a token fetch (~100 ms or more) so a waiter sees the leader's token soon
/// after it is stored; a fleet of waiters polling at 10 Hz is negligible load for the store.
const POLL_FIRST: Duration = Duration::from_millis(20);
const POLL_MAX: Duration = Duration::from_millis(100);

/// What a fetch function returns: the value and its lifetime in seconds from now.
pub(crate) struct Fetched {
    pub(crate) value: String,
    pub(crate) expires_in: u64,
}

/// A boxed fetch: it runs in the refresh task, so it owns everything it needs.
pub(crate) type FetchFuture = Pin<Box<dyn Future<Output = Result<Fetched>> + Send + 'static>>;

/// How managed values are cached and refreshed.
#[derive(Clone, Debug)]
pub(crate) struct TokenPolicy {
    /// A value is refreshed when it expires within this margin.
    pub(crate) margin: Duration,
    /// How long fetches are refused after a fetch failed for good.
    pub(crate) cooldown: Duration,
    /// How long a refresh lease lasts; also the bound on one fetch.
    pub(crate) lease_ttl: Duration,
    /// How long a refresh waits for another process holding the lease.
    pub(crate) lease_wait: Duration,
    /// Serve a value inside the margin (not expired) while one background refresh runs.
    pub(crate) refresh_ahead: bool,
    /// Never fetch: only read the shared store.
    pub(crate) consumer_only: bool,
    /// The longest one store operation may take before it fails as a [`StoreError`].
    pub(crate) store_timeout: Duration,
}

type Outcome = std::result::Result<StoredToken, Arc<Error>>;
type FlightRx = watch::Receiver<Option<Outcome>>;

/// Per-kind state: the refresh in flight and the cooldown.
struct Slot {
    key: TokenKey,
    kind_name: &'static str,
    /// A one-off value (see [`TokenManager::get_one_off`]) rather than a managed credential.
    one_off: bool,
    state: Mutex<SlotState>,
}

#[derive(Default)]
struct SlotState {
    flight: Option<FlightRx>,
    cooldown: Option<(ApiError, SystemTime)>,
}

struct Shared<S> {
    store: BoundedStore<S>,
    clock: SharedClock,
    policy: TokenPolicy,
    prefix: Arc<str>,
    appid: AppId,
    slots: Mutex<HashMap<TokenKind, Arc<Slot>>>,
}

/// Cached, single-flight, store-shared values keyed by [`TokenKind`]. Clones share everything.
pub(crate) struct TokenManager<S> {
    shared: Arc<Shared<S>>,
}

impl<S> Clone for TokenManager<S> {
    fn clone(&self) -> Self {
        TokenManager {
            shared: self.shared.clone(),
        }
    }
}

enum Start<F> {
    /// This call started a refresh.
    Started(FlightRx),
    /// A refresh was already in flight; the fetch function was not used.
    Busy(FlightRx, F),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // No code panics while holding these locks; recover the data if that ever changes.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A random id naming one lease holder.
pub(crate) fn owner_id() -> String {
    format!(
        "{:016x}{:016x}",
        rand::random::<u64>(),
        rand::random::<u64>()
    )
}

fn kind_name(kind: &TokenKind) -> &'static str {
    match kind {
        TokenKind::AccessToken => "access token",
        TokenKind::StableAccessToken => "stable access token",
        TokenKind::JsapiTicket => "jsapi ticket",
        TokenKind::Custom(name) if name.starts_with(OAUTH_CODE_KIND_PREFIX) => {
            "oauth code exchange"
        }
        _ => "token",
    }
}

/// Kinds of the stored results of code exchanges start with this (see `oauth.rs`).
pub(crate) const OAUTH_CODE_KIND_PREFIX: &str = "oauth_code:";

/// The WeChat error that starts a cooldown: any that retrying cannot fix. On a token endpoint
/// these are bad credentials, an IP not whitelisted, a used-up quota, a malformed request, and
/// 40001, which there means a wrong AppSecret.
fn cooldown_cause(e: &Error) -> Option<&ApiError> {
    e.api().filter(|a| a.retry_hint() != RetryHint::Backoff)
}

impl<S: TokenStore + 'static> TokenManager<S> {
    pub(crate) fn new(
        store: S,
        clock: SharedClock,
        policy: TokenPolicy,
        prefix: Arc<str>,
        appid: AppId,
    ) -> Self {
        TokenManager {
            shared: Arc::new(Shared {
                store: BoundedStore {
                    inner: store,
                    timeout: policy.store_timeout,
                },
                clock,
                policy,
                prefix,
                appid,
                slots: Mutex::default(),
            }),
        }
    }

    /// The user's store, as given.
    pub(crate) fn store(&self) -> &S {
        &self.shared.store.inner
    }

    /// The store with every operation bounded by the policy's `store_timeout`: what the client
    /// itself uses, so that a store that never answers cannot wedge a refresh that other
    /// callers are waiting on.
    pub(crate) fn bounded_store(&self) -> &BoundedStore<S> {
        &self.shared.store
    }

    /// The store key of `kind`.
    pub(crate) fn key(&self, kind: &TokenKind) -> TokenKey {
        TokenKey::new(
            self.shared.prefix.clone(),
            self.shared.appid.clone(),
            kind.clone(),
        )
    }

    fn slot(&self, kind: &TokenKind, one_off: bool) -> Arc<Slot> {
        let mut slots = lock(&self.shared.slots);
        if let Some(slot) = slots.get(kind) {
            return slot.clone();
        }
        let slot = Arc::new(Slot {
            key: self.key(kind),
            kind_name: kind_name(kind),
            one_off,
            state: Mutex::default(),
        });
        slots.insert(kind.clone(), slot.clone());
        slot
    }

    /// Forgets a one-off slot once its flight is over, so that the map holds only the values
    /// being fetched right now. A caller that still holds the `Arc` may start one more flight on
    /// it; that flight re-reads the store first, so it finds the stored result.
    fn forget(&self, slot: &Arc<Slot>) {
        let mut slots = lock(&self.shared.slots);
        if slots
            .get(slot.key.kind())
            .is_some_and(|current| Arc::ptr_eq(current, slot))
        {
            slots.remove(slot.key.kind());
        }
    }

    fn now(&self) -> SystemTime {
        self.shared.clock.now()
    }

    /// Whether `token` is served as it is: outside the margin for a managed credential,
    /// unexpired for a one-off value.
    fn is_fresh(&self, slot: &Slot, token: &StoredToken, now: SystemTime) -> bool {
        let margin = if slot.one_off {
            Duration::ZERO
        } else {
            self.shared.policy.margin
        };
        fresh_with_margin(token, now, margin)
    }

    /// Step 1 of [`get`](Self::get) alone, for the hot path of a managed credential: reads
    /// `key` and returns `Ok(token)` when it is fresh (outside the margin), otherwise
    /// `Err(what was read)` to hand to [`get_after_read`](Self::get_after_read), so a miss
    /// costs no second store read.
    pub(crate) async fn read_fresh(
        &self,
        key: &TokenKey,
    ) -> Result<std::result::Result<StoredToken, Option<StoredToken>>> {
        let token = self.shared.store.get(key).await?;
        let now = self.now();
        Ok(match token {
            Some(t) if fresh_with_margin(&t, now, self.shared.policy.margin) => Ok(t),
            other => Err(other),
        })
    }

    /// The value of `kind`: cached when fresh, otherwise refreshed once for all concurrent
    /// callers with `fetch`.
    pub(crate) async fn get<F>(&self, kind: &TokenKind, fetch: F) -> Result<StoredToken>
    where
        F: FnOnce() -> FetchFuture + Send + 'static,
    {
        let stored = self.shared.store.get(&self.key(kind)).await?;
        self.get_after_read(kind, stored, fetch).await
    }

    /// [`get`](Self::get) after its store read: `stored` is what the store held for `kind`.
    pub(crate) async fn get_after_read<F>(
        &self,
        kind: &TokenKind,
        stored: Option<StoredToken>,
        fetch: F,
    ) -> Result<StoredToken>
    where
        F: FnOnce() -> FetchFuture + Send + 'static,
    {
        let slot = self.slot(kind, false);
        let policy = &self.shared.policy;
        if let Some(token) = stored {
            let now = self.now();
            if policy.consumer_only || self.is_fresh(&slot, &token, now) {
                return Ok(token);
            }
            if policy.refresh_ahead && !token.is_expired_at(now) {
                if let Ok(Start::Started(_)) = self.try_start(&slot, fetch, false) {
                    tracing::debug!(kind = %kind, "token inside its margin; refreshing ahead");
                }
                return Ok(token);
            }
        }
        if policy.consumer_only {
            return Err(Refused::ConsumerStoreEmpty {
                kind: slot.kind_name,
            }
            .into());
        }
        match self.try_start(&slot, fetch, false)? {
            Start::Started(rx) | Start::Busy(rx, _) => wait(rx).await,
        }
    }

    /// A one-off value of `kind`, such as the result of exchanging one OAuth code: the stored
    /// value while it is unexpired (no margin), otherwise `fetch` runs once for all concurrent
    /// callers in this process and, through the store's lease, once in the fleet (a process
    /// that finds the lease taken waits for the value to appear). Unlike a managed credential,
    /// consumer-only mode and refresh-ahead do not apply, a failure starts no cooldown (each
    /// new caller may try again), and nothing of the kind is kept in memory once its fetch
    /// ends: the store is what remembers.
    pub(crate) async fn get_one_off<F>(&self, kind: &TokenKind, fetch: F) -> Result<StoredToken>
    where
        F: FnOnce() -> FetchFuture + Send + 'static,
    {
        let key = self.key(kind);
        if let Some(value) = self.shared.store.get(&key).await?
            && !value.is_expired_at(self.now())
        {
            return Ok(value);
        }
        let slot = self.slot(kind, true);
        match self.try_start(&slot, fetch, false)? {
            Start::Started(rx) | Start::Busy(rx, _) => wait(rx).await,
        }
    }

    /// Fetches a new value of `kind` whatever the cached one, after any refresh in flight (used
    /// for the stable token's force refresh).
    pub(crate) async fn refresh<F>(&self, kind: &TokenKind, fetch: F) -> Result<StoredToken>
    where
        F: FnOnce() -> FetchFuture + Send + 'static,
    {
        self.refuse_if_consumer()?;
        let slot = self.slot(kind, false);
        let mut fetch = fetch;
        loop {
            match self.try_start(&slot, fetch, true)? {
                Start::Started(rx) => return wait(rx).await,
                Start::Busy(rx, f) => {
                    // Whatever that refresh gave, ours must still run.
                    let _ = wait(rx).await;
                    fetch = f;
                }
            }
        }
    }

    /// Removes the stored value of `kind` if it still is `rejected` (WeChat refused it).
    /// Returns whether it did; `false` means someone already replaced it.
    pub(crate) async fn invalidate(&self, kind: &TokenKind, rejected: &str) -> Result<bool> {
        Ok(self
            .shared
            .store
            .compare_and_delete(&self.key(kind), rejected)
            .await?)
    }

    /// Refuses when `kind` is in a fetch cooldown.
    pub(crate) fn check_cooldown(&self, kind: &TokenKind) -> Result<()> {
        let slot = self.slot(kind, false);
        let mut state = lock(&slot.state);
        self.cooldown_refusal(&mut state).map_or(Ok(()), Err)
    }

    pub(crate) fn refuse_if_consumer(&self) -> Result<()> {
        if self.shared.policy.consumer_only {
            return Err(InvalidInput::new(
                "consumer_only",
                "this client only reads the shared store and never fetches tokens",
            )
            .into());
        }
        Ok(())
    }

    fn cooldown_refusal(&self, state: &mut SlotState) -> Option<Error> {
        let (cause, until) = state.cooldown.as_ref()?;
        let now = self.now();
        match until.duration_since(now) {
            Ok(remaining) if !remaining.is_zero() => Some(
                Refused::TokenFetchCooldown {
                    cause: cause.clone(),
                    remaining,
                }
                .into(),
            ),
            _ => {
                state.cooldown = None;
                None
            }
        }
    }

    /// Joins the refresh in flight, or starts one unless the kind is in cooldown.
    fn try_start<F>(&self, slot: &Arc<Slot>, fetch: F, force: bool) -> Result<Start<F>>
    where
        F: FnOnce() -> FetchFuture + Send + 'static,
    {
        let mut state = lock(&slot.state);
        if let Some(rx) = &state.flight {
            return Ok(Start::Busy(rx.clone(), fetch));
        }
        if !slot.one_off
            && let Some(refusal) = self.cooldown_refusal(&mut state)
        {
            return Err(refusal);
        }
        let (tx, rx) = watch::channel(None);
        state.flight = Some(rx.clone());
        drop(state);

        let span = tracing::info_span!("wx.token_refresh", kind = %slot.key.kind(), force);
        let (manager, slot) = (self.clone(), slot.clone());
        tokio::spawn(
            async move {
                let mut guard = FlightGuard {
                    slot: &slot,
                    armed: true,
                };
                let outcome = manager.run_flight(&slot, fetch, force).await;
                guard.armed = false;
                let outcome = outcome.map_err(Arc::new);
                {
                    let mut state = lock(&slot.state);
                    state.flight = None;
                    match &outcome {
                        Ok(_) => state.cooldown = None,
                        Err(e) => {
                            if let Some(cause) = cooldown_cause(e).filter(|_| !slot.one_off) {
                                let cooldown = manager.shared.policy.cooldown;
                                tracing::warn!(error = %e, ?cooldown, "token fetch failed; refusing fetches during the cooldown");
                                state.cooldown = Some((cause.clone(), manager.now() + cooldown));
                            } else if slot.one_off {
                                // The callers get the error; a used code is no news to log.
                                tracing::debug!(error = %e, "one-off fetch failed");
                            } else {
                                tracing::warn!(error = %e, "token refresh failed");
                            }
                        }
                    }
                }
                if slot.one_off {
                    manager.forget(&slot);
                }
                tx.send_replace(Some(outcome));
            }
            .instrument(span),
        );
        Ok(Start::Started(rx))
    }

    async fn run_flight<F>(&self, slot: &Slot, fetch: F, force: bool) -> Result<StoredToken>
    where
        F: FnOnce() -> FetchFuture + Send + 'static,
    {
        let store = &self.shared.store;
        let policy = &self.shared.policy;
        let owner = owner_id();
        let started = tokio::time::Instant::now();
        let mut delay = POLL_FIRST;
        loop {
            let current = if force {
                None
            } else {
                store.get(&slot.key).await?
            };
            if let Some(token) = &current
                && self.is_fresh(slot, token, self.now())
            {
                return Ok(token.clone());
            }
            if store
                .try_acquire_lease(&slot.key, &owner, policy.lease_ttl)
                .await?
            {
                // Another member may have stored a token and released the lease between our
                // read and our acquire: read again under the lease before spending a fetch.
                let stored = if force {
                    Ok(None)
                } else {
                    store.get(&slot.key).await
                };
                let result = match stored {
                    Ok(Some(token)) if self.is_fresh(slot, &token, self.now()) => Ok(token),
                    Ok(_) => self.fetch_and_store(slot, fetch).await,
                    Err(e) => Err(e.into()),
                };
                if let Err(e) = store.release_lease(&slot.key, &owner).await {
                    tracing::warn!(error = %e, "could not release the refresh lease; it will expire");
                }
                return result;
            }
            // Another process is replacing the token: one still valid (inside the margin) is
            // good to use meanwhile, rather than making callers wait on that process.
            if let Some(token) = current
                && !token.is_expired_at(self.now())
            {
                return Ok(token);
            }
            let waited = started.elapsed();
            if waited >= policy.lease_wait {
                return Err(Refused::LeaseWaitTimedOut {
                    kind: slot.kind_name,
                }
                .into());
            }
            tracing::debug!("another process holds the refresh lease; waiting for its token");
            tokio::time::sleep(jitter(delay).min(policy.lease_wait - waited)).await;
            delay = (delay * 2).min(POLL_MAX);
        }
    }

    async fn fetch_and_store<F>(&self, slot: &Slot, fetch: F) -> Result<StoredToken>
    where
        F: FnOnce() -> FetchFuture + Send + 'static,
    {
        let policy = &self.shared.policy;
        let fetched_at = self.now();
        // The fetch runs as a task of its own so that a panic in it comes back as an error and
        // the lease is still released below.
        let task = tokio::spawn(fetch());
        let abort = task.abort_handle();
        let fetched = match tokio::time::timeout(policy.lease_ttl, task).await {
            Ok(Ok(result)) => result?,
            Ok(Err(_)) => {
                return Err(Error::Transport {
                    endpoint: "token refresh",
                    source: TransportError::new(
                        TransportErrorKind::Other,
                        "the token fetch panicked",
                    ),
                });
            }
            Err(_) => {
                abort.abort();
                return Err(Error::Deadline {
                    operation: "token refresh",
                    deadline: policy.lease_ttl,
                });
            }
        };
        let lifetime = Duration::from_secs(fetched.expires_in.min(MAX_LIFETIME_SECS));
        let token = StoredToken::new(fetched.value, fetched_at + lifetime);
        if !slot.one_off && lifetime <= policy.margin {
            tracing::warn!(?lifetime, margin = ?policy.margin, "WeChat returned a lifetime shorter than the expiry margin");
        }
        match self.shared.store.set(&slot.key, token.clone()).await {
            Ok(()) => tracing::info!(
                kind = slot.kind_name,
                expires_in = fetched.expires_in,
                "stored a new token"
            ),
            Err(e) => tracing::warn!(
                error = %e,
                "fetched a new token but could not store it; handing it to the waiting callers"
            ),
        }
        Ok(token)
    }
}

/// Whether `token` is still good at `now` with `margin` to spare.
fn fresh_with_margin(token: &StoredToken, now: SystemTime, margin: Duration) -> bool {
    now.checked_add(margin)
        .is_some_and(|t| t < token.expires_at)
}

/// A store whose every operation fails with a [`StoreError`] after `timeout` instead of hanging.
pub(crate) struct BoundedStore<S> {
    inner: S,
    timeout: Duration,
}

/// The source of a [`StoreError`] for an operation that did not answer in time.
#[derive(Debug)]
struct StoreTimedOut(Duration);

impl fmt::Display for StoreTimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no answer within {:?}", self.0)
    }
}

impl StdError for StoreTimedOut {}

impl<S> BoundedStore<S> {
    async fn bound<R>(
        &self,
        op: StoreOp,
        fut: impl Future<Output = std::result::Result<R, StoreError>>,
    ) -> std::result::Result<R, StoreError> {
        // Most answers are ready at the first poll (an in-memory store, a value in a local
        // cache): only an operation that has to wait pays for a timer.
        let mut fut = std::pin::pin!(fut);
        let first = std::future::poll_fn(|cx| std::task::Poll::Ready(fut.as_mut().poll(cx))).await;
        if let std::task::Poll::Ready(result) = first {
            return result;
        }
        tokio::time::timeout(self.timeout, fut)
            .await
            .unwrap_or_else(|_| Err(StoreError::new(op, StoreTimedOut(self.timeout))))
    }
}

#[async_trait::async_trait]
impl<S: TokenStore> TokenStore for BoundedStore<S> {
    async fn get(&self, key: &TokenKey) -> std::result::Result<Option<StoredToken>, StoreError> {
        self.bound(StoreOp::Get, self.inner.get(key)).await
    }

    async fn set(&self, key: &TokenKey, token: StoredToken) -> std::result::Result<(), StoreError> {
        self.bound(StoreOp::Set, self.inner.set(key, token)).await
    }

    async fn delete(&self, key: &TokenKey) -> std::result::Result<(), StoreError> {
        self.bound(StoreOp::Delete, self.inner.delete(key)).await
    }

    async fn compare_and_delete(
        &self,
        key: &TokenKey,
        expected: &str,
    ) -> std::result::Result<bool, StoreError> {
        self.bound(
            StoreOp::CompareAndDelete,
            self.inner.compare_and_delete(key, expected),
        )
        .await
    }

    async fn try_acquire_lease(
        &self,
        key: &TokenKey,
        owner: &str,
        ttl: Duration,
    ) -> std::result::Result<bool, StoreError> {
        self.bound(
            StoreOp::AcquireLease,
            self.inner.try_acquire_lease(key, owner, ttl),
        )
        .await
    }

    async fn release_lease(
        &self,
        key: &TokenKey,
        owner: &str,
    ) -> std::result::Result<(), StoreError> {
        self.bound(StoreOp::ReleaseLease, self.inner.release_lease(key, owner))
            .await
    }
}

/// Clears the slot's flight if the refresh task ends without finishing (a panic in a fetch, a
/// runtime shutting down), so the next caller starts a new refresh instead of joining a dead one.
struct FlightGuard<'a> {
    slot: &'a Slot,
    armed: bool,
}

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            lock(&self.slot.state).flight = None;
        }
    }
}

async fn wait(mut rx: FlightRx) -> Result<StoredToken> {
    let outcome = match rx.wait_for(Option::is_some).await {
        Ok(value) => value.clone(),
        Err(_) => None,
    };
    match outcome {
        Some(Ok(token)) => Ok(token),
        Some(Err(e)) => Err(reissue(&e)),
        None => Err(Error::Transport {
            endpoint: "token refresh",
            source: TransportError::new(
                TransportErrorKind::Other,
                "the token refresh task stopped without an answer",
            ),
        }),
    }
}

/// A copy of a refresh's error for each caller that waited for it: the same variant and fields,
/// with the original's source chain shared behind an `Arc`.
fn reissue(e: &Arc<Error>) -> Error {
    let shared = |whole| SharedCause {
        error: e.clone(),
        whole,
    };
    match &**e {
        Error::Api(a) => Error::Api(a.clone()),
        Error::Transport { endpoint, source } => Error::Transport {
            endpoint,
            source: if source.source().is_some() {
                TransportError::new(source.kind(), shared(false))
            } else {
                TransportError::from_kind(source.kind())
            },
        },
        Error::HttpStatus { endpoint, status } => Error::HttpStatus {
            endpoint,
            status: *status,
        },
        Error::Decode(d) => Error::Decode(d.clone()),
        Error::Store(s) => Error::Store(if s.source().is_some() {
            StoreError::new(s.op(), shared(false))
        } else {
            StoreError::from_op(s.op())
        }),
        Error::InvalidInput(i) => Error::InvalidInput(i.clone()),
        Error::Deadline {
            operation,
            deadline,
        } => Error::Deadline {
            operation,
            deadline: *deadline,
        },
        Error::Refused(Refused::LeaseWaitTimedOut { kind }) => {
            Refused::LeaseWaitTimedOut { kind }.into()
        }
        Error::Refused(Refused::TokenFetchCooldown { cause, remaining }) => {
            Refused::TokenFetchCooldown {
                cause: cause.clone(),
                remaining: *remaining,
            }
            .into()
        }
        // A refresh produces none of the others; should a future one appear, keep its text.
        _ => Error::Transport {
            endpoint: "token refresh",
            source: TransportError::new(TransportErrorKind::Other, shared(true)),
        },
    }
}

/// The shared original error: either its inner source (`whole == false`) or all of it.
#[derive(Debug)]
struct SharedCause {
    error: Arc<Error>,
    whole: bool,
}

impl SharedCause {
    fn inner(&self) -> Option<&(dyn StdError + 'static)> {
        if self.whole {
            return Some(&*self.error);
        }
        match &*self.error {
            Error::Transport { source, .. } => source.source(),
            Error::Store(s) => s.source(),
            _ => None,
        }
    }
}

impl fmt::Display for SharedCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.inner() {
            Some(e) => fmt::Display::fmt(e, f),
            None => f.write_str("unknown cause"),
        }
    }
}

impl StdError for SharedCause {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner().and_then(StdError::source)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use wx_core::{Clock, ErrCode, ManualClock, MemoryTokenStore, StoreOp};

    use super::*;

    fn policy() -> TokenPolicy {
        TokenPolicy {
            margin: Duration::from_secs(300),
            cooldown: Duration::from_secs(60),
            lease_ttl: Duration::from_secs(10),
            lease_wait: Duration::from_secs(5),
            refresh_ahead: false,
            consumer_only: false,
            store_timeout: Duration::from_secs(5),
        }
    }

    fn manager(clock: &ManualClock, policy: TokenPolicy) -> TokenManager<MemoryTokenStore> {
        let clock: SharedClock = Arc::new(clock.clone());
        TokenManager::new(
            MemoryTokenStore::with_clock(clock.clone()),
            clock,
            policy,
            Arc::from("wx"),
            AppId::new("wxapp"),
        )
    }

    /// A fetch counting its calls and answering `value` valid for `secs`.
    fn counting(
        calls: &Arc<AtomicUsize>,
        value: &'static str,
        secs: u64,
    ) -> impl FnOnce() -> FetchFuture + Send + 'static {
        let calls = calls.clone();
        move || {
            Box::pin(async move {
                calls.fetch_add(1, Ordering::SeqCst);
                tokio::task::yield_now().await;
                Ok(Fetched {
                    value: value.to_owned(),
                    expires_in: secs,
                })
            })
        }
    }

    #[tokio::test]
    async fn a_failed_refresh_is_shared_by_every_waiter() {
        let clock = ManualClock::starting_now();
        let m = manager(&clock, policy());
        let calls = Arc::new(AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..50 {
            let (m, calls) = (m.clone(), calls.clone());
            tasks.spawn(async move {
                m.get(&TokenKind::AccessToken, move || {
                    Box::pin(async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Err(Error::transport_at(
                            "cgi-bin/token",
                            TransportError::new(TransportErrorKind::Timeout, "read timed out"),
                        ))
                    })
                })
                .await
            });
        }
        for r in tasks.join_all().await {
            let e = r.expect_err("the fetch failed");
            let t = e.transport().expect("a transport error");
            assert!(t.is_timeout());
            assert_eq!(
                StdError::source(t).map(ToString::to_string).as_deref(),
                Some("read timed out")
            );
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1, "one fetch for 50 waiters");
    }

    #[tokio::test]
    async fn a_panicking_fetch_does_not_wedge_the_slot() {
        let clock = ManualClock::starting_now();
        let m = manager(&clock, policy());
        let e = m
            .get(&TokenKind::AccessToken, || {
                Box::pin(async { panic!("fetch bug (expected in this test)") })
            })
            .await
            .expect_err("the fetch panicked");
        assert!(e.to_string().contains("token refresh"), "{e}");
        let calls = Arc::new(AtomicUsize::new(0));
        let t = m
            .get(&TokenKind::AccessToken, counting(&calls, "T2", 7200))
            .await
            .expect("a new refresh runs");
        assert_eq!(t.secret(), "T2");
    }

    #[tokio::test]
    async fn refresh_ahead_serves_the_old_value_and_refreshes_once() {
        let clock = ManualClock::starting_now();
        let m = manager(
            &clock,
            TokenPolicy {
                refresh_ahead: true,
                ..policy()
            },
        );
        let calls = Arc::new(AtomicUsize::new(0));
        let t = m
            .get(&TokenKind::AccessToken, counting(&calls, "T1", 7200))
            .await
            .expect("first fetch");
        assert_eq!(t.secret(), "T1");
        clock.advance(Duration::from_secs(7000)); // inside the 300 s margin, not expired
        let (gate_tx, gate_rx) = tokio::sync::oneshot::channel::<()>();
        let gate = Arc::new(Mutex::new(Some(gate_rx)));
        for _ in 0..20 {
            let (calls, gate) = (calls.clone(), gate.clone());
            let t = m
                .get(&TokenKind::AccessToken, move || {
                    Box::pin(async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        let rx = lock(&gate).take();
                        if let Some(rx) = rx {
                            let _ = rx.await;
                        }
                        Ok(Fetched {
                            value: "T2".into(),
                            expires_in: 7200,
                        })
                    })
                })
                .await
                .expect("served from the store");
            assert_eq!(t.secret(), "T1", "callers never wait for the refresh");
        }
        gate_tx.send(()).expect("refresh waiting");
        for _ in 0..100 {
            if m.store()
                .get(&m.key(&TokenKind::AccessToken))
                .await
                .expect("get")
                .is_some_and(|t| t.secret() == "T2")
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let t = m
            .get(&TokenKind::AccessToken, counting(&calls, "T3", 7200))
            .await
            .expect("get");
        assert_eq!(t.secret(), "T2");
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "one initial fetch, one refresh ahead"
        );
    }

    #[tokio::test]
    async fn consumer_only_never_fetches() {
        let clock = ManualClock::starting_now();
        let m = manager(
            &clock,
            TokenPolicy {
                consumer_only: true,
                ..policy()
            },
        );
        let calls = Arc::new(AtomicUsize::new(0));
        let e = m
            .get(&TokenKind::AccessToken, counting(&calls, "T", 7200))
            .await
            .expect_err("empty store");
        assert!(matches!(
            e,
            Error::Refused(Refused::ConsumerStoreEmpty {
                kind: "access token"
            })
        ));
        let key = m.key(&TokenKind::AccessToken);
        m.store()
            .set(
                &key,
                StoredToken::new("SHARED", clock.now() + Duration::from_secs(100)),
            )
            .await
            .expect("set");
        // Inside the margin, but a consumer uses whatever valid value the fleet shares.
        let t = m
            .get(&TokenKind::AccessToken, counting(&calls, "T", 7200))
            .await
            .expect("shared value");
        assert_eq!(t.secret(), "SHARED");
        assert!(
            m.refresh(&TokenKind::AccessToken, counting(&calls, "T", 7200))
                .await
                .is_err()
        );
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn cooldown_is_per_kind_and_ends() {
        let clock = ManualClock::starting_now();
        let m = manager(&clock, policy());
        let fail = || -> FetchFuture {
            Box::pin(async {
                Err(ApiError::new(
                    "cgi-bin/token",
                    ErrCode(40164),
                    "invalid ip 1.2.3.4, not in whitelist rid: r1",
                )
                .into())
            })
        };
        let e = m
            .get(&TokenKind::AccessToken, fail)
            .await
            .expect_err("40164");
        assert_eq!(e.api().map(|a| a.code), Some(ErrCode(40164)));
        let calls = Arc::new(AtomicUsize::new(0));
        let e = m
            .get(&TokenKind::AccessToken, counting(&calls, "T", 7200))
            .await
            .expect_err("in cooldown");
        match e {
            Error::Refused(Refused::TokenFetchCooldown { cause, remaining }) => {
                assert_eq!(cause.code, ErrCode(40164));
                assert_eq!(remaining, Duration::from_secs(60));
            }
            other => panic!("unexpected {other:?}"),
        }
        // Another kind is not affected.
        m.get(&TokenKind::JsapiTicket, counting(&calls, "TICKET", 7200))
            .await
            .expect("other kind");
        clock.advance(Duration::from_secs(60));
        m.get(&TokenKind::AccessToken, counting(&calls, "T", 7200))
            .await
            .expect("cooldown over");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    /// A store whose reads fail.
    struct DownStore;

    #[async_trait::async_trait]
    impl TokenStore for DownStore {
        async fn get(&self, _: &TokenKey) -> std::result::Result<Option<StoredToken>, StoreError> {
            Err(StoreError::new(StoreOp::Get, "connection refused"))
        }
        async fn set(&self, _: &TokenKey, _: StoredToken) -> std::result::Result<(), StoreError> {
            Err(StoreError::from_op(StoreOp::Set))
        }
        async fn delete(&self, _: &TokenKey) -> std::result::Result<(), StoreError> {
            Err(StoreError::from_op(StoreOp::Delete))
        }
    }

    #[tokio::test]
    async fn a_store_outage_fails_closed_without_fetching() {
        let clock: SharedClock = Arc::new(ManualClock::starting_now());
        let m = TokenManager::new(DownStore, clock, policy(), Arc::from("wx"), AppId::new("a"));
        let calls = Arc::new(AtomicUsize::new(0));
        let e = m
            .get(&TokenKind::AccessToken, counting(&calls, "T", 7200))
            .await
            .expect_err("store down");
        assert!(
            matches!(e, Error::Store(ref s) if s.op() == StoreOp::Get),
            "{e:?}"
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            0,
            "no fetch while the store is down"
        );
    }

    /// A store whose `try_acquire_lease` never answers until `hang` is cleared.
    struct HangingLease {
        inner: MemoryTokenStore,
        hang: std::sync::atomic::AtomicBool,
    }

    #[async_trait::async_trait]
    impl TokenStore for HangingLease {
        async fn get(
            &self,
            key: &TokenKey,
        ) -> std::result::Result<Option<StoredToken>, StoreError> {
            self.inner.get(key).await
        }
        async fn set(&self, key: &TokenKey, t: StoredToken) -> std::result::Result<(), StoreError> {
            self.inner.set(key, t).await
        }
        async fn delete(&self, key: &TokenKey) -> std::result::Result<(), StoreError> {
            self.inner.delete(key).await
        }
        async fn try_acquire_lease(
            &self,
            key: &TokenKey,
            owner: &str,
            ttl: Duration,
        ) -> std::result::Result<bool, StoreError> {
            if self.hang.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            self.inner.try_acquire_lease(key, owner, ttl).await
        }
    }

    /// One store operation that never returns fails as a store error naming it after the store
    /// timeout, and does not wedge the refresh that later callers join.
    #[tokio::test]
    async fn a_hung_store_operation_is_bounded_and_does_not_wedge_the_kind() {
        let clock = ManualClock::starting_now();
        let shared: SharedClock = Arc::new(clock.clone());
        let store = Arc::new(HangingLease {
            inner: MemoryTokenStore::with_clock(shared.clone()),
            hang: std::sync::atomic::AtomicBool::new(true),
        });
        let m = TokenManager::new(
            store.clone(),
            shared,
            TokenPolicy {
                store_timeout: Duration::from_millis(100),
                ..policy()
            },
            Arc::from("wx"),
            AppId::new("wxapp"),
        );
        let calls = Arc::new(AtomicUsize::new(0));
        let e = tokio::time::timeout(
            Duration::from_secs(2),
            m.get(&TokenKind::AccessToken, counting(&calls, "T1", 7200)),
        )
        .await
        .expect("bounded by the store timeout")
        .expect_err("the lease never answers");
        assert!(
            matches!(&e, Error::Store(s) if s.op() == StoreOp::AcquireLease),
            "{e:?}"
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            0,
            "no fetch without the lease"
        );
        store.hang.store(false, Ordering::SeqCst);
        let t = m
            .get(&TokenKind::AccessToken, counting(&calls, "T1", 7200))
            .await
            .expect("the store answers again");
        assert_eq!(t.secret(), "T1");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
