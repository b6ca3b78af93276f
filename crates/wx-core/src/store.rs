//! The token-store contract, the keys it uses, and the in-memory store.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use crate::clock::{Clock, SharedClock, SystemClock};
use crate::error::StoreError;
use crate::id::AppId;

/// What a stored value is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenKind {
    /// The base access token of `cgi-bin/token`.
    AccessToken,
    /// The stable access token of `cgi-bin/stable_token`.
    StableAccessToken,
    /// The JS-SDK `jsapi_ticket`.
    JsapiTicket,
    /// Anything else an extension keeps in the store (e.g. `oauth_code:<code>`).
    Custom(Cow<'static, str>),
}

impl TokenKind {
    /// The kind's name as used in keys.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            TokenKind::AccessToken => "access_token",
            TokenKind::StableAccessToken => "stable_access_token",
            TokenKind::JsapiTicket => "jsapi_ticket",
            TokenKind::Custom(name) => name,
        }
    }
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a value lives: `{prefix}:{appid}:{kind}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TokenKey {
    prefix: Arc<str>,
    appid: AppId,
    kind: TokenKind,
}

impl TokenKey {
    /// The default prefix, `wx`.
    pub const DEFAULT_PREFIX: &'static str = "wx";

    /// A key under `prefix` for `appid` and `kind`.
    #[must_use]
    pub fn new(prefix: impl Into<Arc<str>>, appid: AppId, kind: TokenKind) -> Self {
        TokenKey {
            prefix: prefix.into(),
            appid,
            kind,
        }
    }

    /// The prefix.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The AppID.
    #[must_use]
    pub fn appid(&self) -> &AppId {
        &self.appid
    }

    /// The kind.
    #[must_use]
    pub fn kind(&self) -> &TokenKind {
        &self.kind
    }

    /// The same prefix and AppID with another kind.
    #[must_use]
    pub fn with_kind(&self, kind: TokenKind) -> Self {
        TokenKey {
            prefix: self.prefix.clone(),
            appid: self.appid.clone(),
            kind,
        }
    }
}

impl fmt::Display for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.prefix, self.appid, self.kind)
    }
}

/// A stored value with its absolute expiry. `Debug` hides the value.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredToken {
    value: String,
    /// When the value stops being valid (WeChat's `expires_in` added to the fetch time).
    pub expires_at: SystemTime,
}

impl StoredToken {
    /// A value valid until `expires_at`.
    #[must_use]
    pub fn new(value: impl Into<String>, expires_at: SystemTime) -> Self {
        StoredToken {
            value: value.into(),
            expires_at,
        }
    }

    /// The value (usually a secret).
    #[must_use]
    pub fn secret(&self) -> &str {
        &self.value
    }

    /// Consumes the token, returning the value without a copy.
    #[must_use]
    pub fn into_secret(self) -> String {
        self.value
    }

    /// Whether it has expired at `now`.
    #[must_use]
    pub fn is_expired_at(&self, now: SystemTime) -> bool {
        now >= self.expires_at
    }

    /// Time left at `now` (zero when expired).
    #[must_use]
    pub fn remaining_at(&self, now: SystemTime) -> Duration {
        self.expires_at
            .duration_since(now)
            .unwrap_or(Duration::ZERO)
    }
}

impl fmt::Debug for StoredToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredToken")
            .field("value", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Where tokens are kept. A custom store writes `get`, `set` and `delete`; the default
/// `compare_and_delete` and lease methods are correct within one process (the client
/// serialises its own refreshes); a store shared by several processes (Redis) overrides them
/// so that one process in the fleet refreshes.
///
/// `get` must not return a value past its `expires_at`.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// The value under `key`, if present and not expired.
    ///
    /// # Errors
    /// [`StoreError`] when the backend fails.
    async fn get(&self, key: &TokenKey) -> Result<Option<StoredToken>, StoreError>;

    /// Stores `token` under `key` until its `expires_at`, replacing any previous value.
    ///
    /// # Errors
    /// [`StoreError`] when the backend fails.
    async fn set(&self, key: &TokenKey, token: StoredToken) -> Result<(), StoreError>;

    /// Removes the value under `key` (no error when absent).
    ///
    /// # Errors
    /// [`StoreError`] when the backend fails.
    async fn delete(&self, key: &TokenKey) -> Result<(), StoreError>;

    /// Removes the value under `key` only if it still is `expected`; returns whether it did.
    /// Used to drop a token WeChat rejected without dropping one someone else just refreshed.
    ///
    /// The default (get, compare, delete) runs under a process-wide lock per key, so
    /// concurrent compare-and-deletes in one process delete a value at most once; it is not
    /// atomic against a concurrent `set`, which the client never issues while it holds the
    /// key's refresh lock. Shared stores override it with one atomic operation.
    ///
    /// # Errors
    /// [`StoreError`] when the backend fails.
    async fn compare_and_delete(&self, key: &TokenKey, expected: &str) -> Result<bool, StoreError> {
        let _guard = default_cad_lock(key).lock().await;
        match self.get(key).await? {
            Some(current)
                if crate::secret::ct_eq(current.secret().as_bytes(), expected.as_bytes()) =>
            {
                self.delete(key).await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Tries to become the one refresher of `key` for at most `ttl`. Returns `false` when
    /// another owner holds an unexpired lease. The default grants every request: within one
    /// process the client's own single flight suffices.
    ///
    /// # Errors
    /// [`StoreError`] when the backend fails.
    async fn try_acquire_lease(
        &self,
        key: &TokenKey,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let _ = (key, owner, ttl);
        Ok(true)
    }

    /// Releases the lease on `key` if `owner` holds it (no error otherwise).
    ///
    /// # Errors
    /// [`StoreError`] when the backend fails.
    async fn release_lease(&self, key: &TokenKey, owner: &str) -> Result<(), StoreError> {
        let _ = (key, owner);
        Ok(())
    }
}

/// One of a fixed set of process-wide locks, chosen by the key's hash.
fn default_cad_lock(key: &TokenKey) -> &'static tokio::sync::Mutex<()> {
    use std::hash::{Hash, Hasher};
    static LOCKS: [tokio::sync::Mutex<()>; 32] = [const { tokio::sync::Mutex::const_new(()) }; 32];
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    let i = usize::try_from(h.finish() % 32).unwrap_or(0);
    &LOCKS[i]
}

macro_rules! forward_store {
    ($($ptr:ty),*) => {$(
        #[async_trait]
        impl<S: TokenStore + ?Sized> TokenStore for $ptr {
            async fn get(&self, key: &TokenKey) -> Result<Option<StoredToken>, StoreError> {
                (**self).get(key).await
            }
            async fn set(&self, key: &TokenKey, token: StoredToken) -> Result<(), StoreError> {
                (**self).set(key, token).await
            }
            async fn delete(&self, key: &TokenKey) -> Result<(), StoreError> {
                (**self).delete(key).await
            }
            async fn compare_and_delete(&self, key: &TokenKey, expected: &str) -> Result<bool, StoreError> {
                (**self).compare_and_delete(key, expected).await
            }
            async fn try_acquire_lease(&self, key: &TokenKey, owner: &str, ttl: Duration) -> Result<bool, StoreError> {
                (**self).try_acquire_lease(key, owner, ttl).await
            }
            async fn release_lease(&self, key: &TokenKey, owner: &str) -> Result<(), StoreError> {
                (**self).release_lease(key, owner).await
            }
        }
    )*};
}
forward_store!(Arc<S>, Box<S>, &S);

/// How often, at most, a write to a [`MemoryTokenStore`] sweeps out expired values and leases.
const SWEEP_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Default)]
struct MemoryState {
    values: HashMap<TokenKey, StoredToken>,
    leases: HashMap<TokenKey, (String, SystemTime)>,
    /// The earliest time of the next sweep (`None`: at the next write).
    next_sweep: Option<SystemTime>,
}

impl MemoryState {
    /// Drops every expired value and lease, at most once per [`SWEEP_INTERVAL`]: a value that
    /// is never read again (a one-off code exchange holding a web and a refresh token) must not
    /// stay in memory after it expired. Costs one pass over the map every interval, on a write.
    fn sweep(&mut self, now: SystemTime) {
        if self.next_sweep.is_some_and(|at| now < at) {
            return;
        }
        self.values.retain(|_, t| !t.is_expired_at(now));
        self.leases.retain(|_, (_, until)| *until > now);
        self.next_sweep = now.checked_add(SWEEP_INTERVAL);
    }
}

/// The embedded store: a map behind a mutex, honouring expiry, with atomic compare-and-delete
/// and exclusive leases (useful when several clients in one process share it). Clones share
/// the same map. Expired values and leases are dropped on a write at most every 10 s, so values
/// that are never read again (one-off code exchanges) do not stay in memory.
#[derive(Clone)]
pub struct MemoryTokenStore {
    state: Arc<Mutex<MemoryState>>,
    clock: SharedClock,
}

impl MemoryTokenStore {
    /// An empty store on the system clock.
    #[must_use]
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// An empty store that reads time from `clock` (e.g. a [`crate::ManualClock`]).
    #[must_use]
    pub fn with_clock(clock: SharedClock) -> Self {
        MemoryTokenStore {
            state: Arc::default(),
            clock,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryState> {
        // No code panics while holding the lock; recover the data if a caller's panic did.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Number of unexpired values (for tests and metrics).
    #[must_use]
    pub fn len(&self) -> usize {
        let now = self.clock.now();
        self.lock()
            .values
            .values()
            .filter(|t| !t.is_expired_at(now))
            .count()
    }

    /// The keys of the unexpired values (for tests and metrics), in no particular order.
    #[must_use]
    pub fn keys(&self) -> Vec<TokenKey> {
        let now = self.clock.now();
        self.lock()
            .values
            .iter()
            .filter(|(_, t)| !t.is_expired_at(now))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Whether the store holds no unexpired value.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for MemoryTokenStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryTokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryTokenStore")
            .field("entries", &self.lock().values.len())
            .finish()
    }
}

#[async_trait]
impl TokenStore for MemoryTokenStore {
    async fn get(&self, key: &TokenKey) -> Result<Option<StoredToken>, StoreError> {
        let now = self.clock.now();
        let mut state = self.lock();
        match state.values.get(key) {
            Some(t) if t.is_expired_at(now) => {
                state.values.remove(key);
                Ok(None)
            }
            other => Ok(other.cloned()),
        }
    }

    async fn set(&self, key: &TokenKey, token: StoredToken) -> Result<(), StoreError> {
        let now = self.clock.now();
        let mut state = self.lock();
        state.sweep(now);
        if token.is_expired_at(now) {
            state.values.remove(key);
        } else {
            state.values.insert(key.clone(), token);
        }
        Ok(())
    }

    async fn delete(&self, key: &TokenKey) -> Result<(), StoreError> {
        self.lock().values.remove(key);
        Ok(())
    }

    async fn compare_and_delete(&self, key: &TokenKey, expected: &str) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let mut state = self.lock();
        let matches = state.values.get(key).is_some_and(|t| {
            !t.is_expired_at(now)
                && crate::secret::ct_eq(t.secret().as_bytes(), expected.as_bytes())
        });
        if matches {
            state.values.remove(key);
        }
        Ok(matches)
    }

    async fn try_acquire_lease(
        &self,
        key: &TokenKey,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let mut state = self.lock();
        state.sweep(now);
        match state.leases.get(key) {
            Some((_, until)) if *until > now => Ok(false),
            _ => {
                // A lease longer than the clock can count is held "forever", not a panic.
                let until = now
                    .checked_add(ttl)
                    .unwrap_or(now + Duration::from_secs(1 << 40));
                state.leases.insert(key.clone(), (owner.to_owned(), until));
                Ok(true)
            }
        }
    }

    async fn release_lease(&self, key: &TokenKey, owner: &str) -> Result<(), StoreError> {
        let mut state = self.lock();
        if state.leases.get(key).is_some_and(|(o, _)| o == owner) {
            state.leases.remove(key);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn key(kind: TokenKind) -> TokenKey {
        TokenKey::new("wx", AppId::new("wxapp"), kind)
    }

    #[test]
    fn key_layout() {
        assert_eq!(
            key(TokenKind::AccessToken).to_string(),
            "wx:wxapp:access_token"
        );
        assert_eq!(
            key(TokenKind::JsapiTicket).to_string(),
            "wx:wxapp:jsapi_ticket"
        );
        assert_eq!(
            TokenKey::new(
                "p",
                AppId::new("a"),
                TokenKind::Custom("oauth_code:x".into())
            )
            .to_string(),
            "p:a:oauth_code:x"
        );
    }

    /// Issue 19 (Low): 5,000 idempotent logins left 5,000 entries holding web and refresh tokens
    /// (and their leases) in memory for good. A later write sweeps them.
    #[tokio::test]
    async fn expired_values_and_leases_are_swept_by_a_later_write() {
        let clock = ManualClock::starting_now();
        let store = MemoryTokenStore::with_clock(Arc::new(clock.clone()));
        for i in 0..5_000 {
            let k = key(TokenKind::Custom(format!("oauth_code:{i:064x}").into()));
            assert!(
                store
                    .try_acquire_lease(&k, "owner", Duration::from_secs(20))
                    .await
                    .expect("lease")
            );
            store
                .set(
                    &k,
                    StoredToken::new("WEB+REFRESH", clock.now() + Duration::from_secs(60)),
                )
                .await
                .expect("set");
        }
        assert_eq!(store.len(), 5_000);
        let live = key(TokenKind::AccessToken);
        store
            .set(
                &live,
                StoredToken::new("T", clock.now() + Duration::from_secs(7200)),
            )
            .await
            .expect("set");
        clock.advance(Duration::from_secs(61));
        assert_eq!(store.len(), 1, "expired values are not served");
        store
            .set(
                &live,
                StoredToken::new("T2", clock.now() + Duration::from_secs(7200)),
            )
            .await
            .expect("set");
        {
            let state = store.lock();
            assert_eq!(state.values.len(), 1, "expired values are swept");
            assert!(state.leases.is_empty(), "expired leases are swept");
        }
        // A lease of any length is granted without overflow and holds.
        assert!(
            store
                .try_acquire_lease(&live, "a", Duration::MAX)
                .await
                .expect("lease")
        );
        assert!(
            !store
                .try_acquire_lease(&live, "b", Duration::from_secs(1))
                .await
                .expect("lease")
        );
    }

    #[tokio::test]
    async fn memory_store_honours_expiry_on_the_manual_clock() {
        let clock = ManualClock::starting_now();
        let store = MemoryTokenStore::with_clock(Arc::new(clock.clone()));
        let k = key(TokenKind::AccessToken);
        let t0 = clock.now();
        store
            .set(&k, StoredToken::new("T1", t0 + Duration::from_secs(7200)))
            .await
            .expect("set");
        clock.advance(Duration::from_secs(7199));
        assert_eq!(
            store
                .get(&k)
                .await
                .expect("get")
                .map(|t| t.secret().to_owned())
                .as_deref(),
            Some("T1")
        );
        clock.advance(Duration::from_secs(1));
        assert!(store.get(&k).await.expect("get").is_none());
        assert!(store.is_empty());
        // A value already expired is not stored at all.
        store
            .set(&k, StoredToken::new("T2", clock.now()))
            .await
            .expect("set");
        assert!(store.get(&k).await.expect("get").is_none());
    }

    #[tokio::test]
    async fn memory_lease_expires_on_the_clock() {
        let clock = ManualClock::starting_now();
        let store = MemoryTokenStore::with_clock(Arc::new(clock.clone()));
        let k = key(TokenKind::AccessToken);
        assert!(
            store
                .try_acquire_lease(&k, "a", Duration::from_secs(10))
                .await
                .expect("lease")
        );
        assert!(
            !store
                .try_acquire_lease(&k, "b", Duration::from_secs(10))
                .await
                .expect("lease")
        );
        clock.advance(Duration::from_secs(10));
        assert!(
            store
                .try_acquire_lease(&k, "b", Duration::from_secs(10))
                .await
                .expect("lease")
        );
    }

    #[test]
    fn stored_token_debug_is_redacted() {
        let t = StoredToken::new("SECRETVALUE", SystemTime::UNIX_EPOCH);
        assert!(!format!("{t:?}").contains("SECRETVALUE"));
    }
}
