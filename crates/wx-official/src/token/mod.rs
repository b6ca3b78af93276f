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
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tracing::Instrument as _;
use wx_core::{
    ApiError, AppId, Error, InvalidInput, Refused, Result, RetryHint, SharedClock, StoredToken,
    TokenKey, TokenKind, TokenStore,
};

mod bounded;
mod lease;
mod local;
mod outcome;
#[cfg(test)]
mod tests;

pub(crate) use bounded::BoundedStore;
use lease::FlightGuard;
use local::{Generation, LocalCache, LocalCopy};
use outcome::wait;

/// How long a cooldown lasts when `now + cooldown` does not fit the clock (about 34,000 years;
/// `Builder::build` refuses such cooldowns, the manager must not panic on them anyway).
const MAX_COOLDOWN_FALLBACK: Duration = Duration::from_secs(1 << 40);

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
    ///
    /// [`StoreError`]: wx_core::StoreError
    pub(crate) store_timeout: Duration,
    /// How long a process-local copy of a managed credential is served without reading the
    /// store (see [`local`]); zero: every read goes to the store.
    pub(crate) local_max_age: Duration,
}

type Outcome = std::result::Result<StoredToken, Arc<Error>>;
type FlightRx = watch::Receiver<Option<Outcome>>;

/// What [`TokenManager::read_fresh`] read when it found no servable value: the store's value,
/// and the local generation from before the read.
pub(crate) struct Miss {
    stored: Option<StoredToken>,
    seen: Generation,
}

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
    local: LocalCache,
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
                local: LocalCache::new(policy.local_max_age),
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
        fresh_with_margin(token.expires_at, now, margin)
    }

    /// Whether a managed credential may be served as it is, without the refresh logic:
    /// outside the margin, or (consumer-only) unexpired.
    fn servable(&self, expires_at: SystemTime, now: SystemTime) -> bool {
        let policy = &self.shared.policy;
        let margin = if policy.consumer_only {
            Duration::ZERO
        } else {
            policy.margin
        };
        fresh_with_margin(expires_at, now, margin)
    }

    /// The local copy of `kind` when it is young enough and servable at `now`; otherwise the
    /// generation to hand back when keeping what the store gives.
    fn local_copy(
        &self,
        kind: &TokenKind,
        now: SystemTime,
    ) -> std::result::Result<LocalCopy, Generation> {
        let servable = |expires_at| self.servable(expires_at, now);
        self.shared.local.get(kind, now, servable)
    }

    /// The local copy of the managed credential stored under `key`, when it is young enough and
    /// servable: the warm path, with no store read and nothing to await.
    pub(crate) fn local_fresh(&self, key: &TokenKey) -> Option<Arc<str>> {
        let copy = self.local_copy(key.kind(), self.now()).ok()?;
        Some(copy.value)
    }

    /// Step 1 of [`get`](Self::get) alone, for the hot path of a managed credential: the local
    /// copy when it is young enough and servable, otherwise the store's value of `key` when it
    /// is; else `Err(what was read)` to hand to [`get_after_read`](Self::get_after_read), so a
    /// miss costs no second store read.
    pub(crate) async fn read_fresh(
        &self,
        key: &TokenKey,
    ) -> Result<std::result::Result<StoredToken, Miss>> {
        let kind = key.kind();
        let now = self.now();
        let seen = match self.local_copy(kind, now) {
            Ok(copy) => return Ok(Ok(copy.into_stored())),
            Err(seen) => seen,
        };
        let stored = self.shared.store.get(key).await?;
        let now = self.now();
        Ok(match stored {
            Some(t) if self.servable(t.expires_at, now) => {
                self.shared.local.keep(kind, seen, &t, now);
                Ok(t)
            }
            stored => Err(Miss { stored, seen }),
        })
    }

    /// The value of `kind`: cached when fresh, otherwise refreshed once for all concurrent
    /// callers with `fetch`.
    pub(crate) async fn get<F>(&self, kind: &TokenKind, fetch: F) -> Result<StoredToken>
    where
        F: FnOnce() -> FetchFuture + Send + 'static,
    {
        let now = self.now();
        if let Ok(copy) = self.local_copy(kind, now) {
            return Ok(copy.into_stored());
        }
        match self.read_fresh(&self.key(kind)).await? {
            Ok(token) => Ok(token),
            Err(miss) => self.get_after_read(kind, miss, fetch).await,
        }
    }

    /// [`get`](Self::get) after [`read_fresh`](Self::read_fresh) found no servable value.
    pub(crate) async fn get_after_read<F>(
        &self,
        kind: &TokenKind,
        miss: Miss,
        fetch: F,
    ) -> Result<StoredToken>
    where
        F: FnOnce() -> FetchFuture + Send + 'static,
    {
        let slot = self.slot(kind, false);
        let policy = &self.shared.policy;
        if let Some(token) = miss.stored {
            let now = self.now();
            if policy.consumer_only || self.is_fresh(&slot, &token, now) {
                if self.servable(token.expires_at, now) {
                    self.shared.local.keep(kind, miss.seen, &token, now);
                }
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

    /// Removes the stored value of `kind` if it still is `rejected` (WeChat refused it), and
    /// the local copy if it holds it. Returns whether the stored value was removed; `false`
    /// means someone already replaced it.
    pub(crate) async fn invalidate(&self, kind: &TokenKind, rejected: &str) -> Result<bool> {
        let local = &self.shared.local;
        local.drop_rejected(kind, rejected);
        let dropped = self
            .shared
            .store
            .compare_and_delete(&self.key(kind), rejected)
            .await;
        // Again after the store let go of it: a reader that read it before the
        // compare-and-delete, and noted its generation after the first drop, must not keep it.
        local.drop_rejected(kind, rejected);
        Ok(dropped?)
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
        let seen = self.shared.local.generation(slot.key.kind());

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
                        Ok(token) => {
                            state.cooldown = None;
                            if !slot.one_off {
                                // What this process fetched (or found stored under the lease)
                                // replaces the local copy at once.
                                let local = &manager.shared.local;
                                local.keep(slot.key.kind(), seen, token, manager.now());
                            }
                        }
                        Err(e) => {
                            if let Some(cause) = cooldown_cause(e).filter(|_| !slot.one_off) {
                                let cooldown = manager.shared.policy.cooldown;
                                tracing::warn!(error = %e, ?cooldown, "token fetch failed; refusing fetches during the cooldown");
                                // Checked: a cooldown past the clock's range lasts "forever"
                                // rather than panicking this task (and losing the error).
                                let now = manager.now();
                                let until = now
                                    .checked_add(cooldown)
                                    .or_else(|| now.checked_add(MAX_COOLDOWN_FALLBACK))
                                    .unwrap_or(now);
                                state.cooldown = Some((cause.clone(), until));
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
}

/// Whether a value expiring at `expires_at` is still good at `now` with `margin` to spare
/// (with no margin: unexpired).
fn fresh_with_margin(expires_at: SystemTime, now: SystemTime, margin: Duration) -> bool {
    now.checked_add(margin).is_some_and(|t| t < expires_at)
}
