//! Handling each push once across a fleet: WeChat retries a push it got no answer to within
//! 5 s (three times, same message) and a retry may reach another instance.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wx_core::{AppId, HttpTransport, StoreError, StoreOp, TokenKey, TokenKind, TokenStore};

use super::Incoming;
use crate::OfficialAccount;

/// How long a push is remembered: WeChat's three retries come within about 20 s (5 s timeout
/// each), so a minute covers them with room for clock and queue delays.
pub const DEFAULT_DEDUP_TTL: Duration = Duration::from_secs(60);

/// Remembers which pushes were seen, through a [`TokenStore`] lease with a TTL: with
/// `wx-redis` one `SET NX PX` per push, fleet-wide; with `MemoryTokenStore`, per process.
///
/// A store that keeps the trait's default lease methods (which grant every request) does not
/// deduplicate: implement `try_acquire_lease` for a shared custom store.
#[derive(Clone, Debug)]
pub struct Dedup<S> {
    store: S,
    prefix: Arc<str>,
    appid: AppId,
    ttl: Duration,
    timeout: Duration,
    owner: Arc<str>,
}

/// How long [`Dedup::first_seen`] waits for the store by default: the push's 5 s must still
/// leave time for the handler.
pub const DEFAULT_DEDUP_TIMEOUT: Duration = Duration::from_secs(1);

impl<S: TokenStore> Dedup<S> {
    /// Deduplicates pushes of `appid` in `store`, under the default key prefix `wx`.
    #[must_use]
    pub fn new(store: S, appid: impl Into<AppId>) -> Self {
        Dedup {
            store,
            prefix: Arc::from(TokenKey::DEFAULT_PREFIX),
            appid: appid.into(),
            ttl: DEFAULT_DEDUP_TTL,
            timeout: DEFAULT_DEDUP_TIMEOUT,
            owner: Arc::from(format!("push-{:016x}", rand::random::<u64>())),
        }
    }

    /// Keys live under `prefix` (as the client's `Builder::key_prefix`).
    #[must_use]
    pub fn key_prefix(mut self, prefix: &str) -> Self {
        self.prefix = Arc::from(prefix);
        self
    }

    /// How long a push is remembered (default [`DEFAULT_DEDUP_TTL`]).
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How long [`first_seen`](Self::first_seen) waits for the store (default
    /// [`DEFAULT_DEDUP_TIMEOUT`]).
    #[must_use]
    pub fn store_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Whether this is the first time the fleet sees `incoming` (see
    /// [`Incoming::dedup_key`]): `true` exactly once per push while it is remembered; a retry
    /// gets `false` and should be answered with `success`.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails or does not answer within the store timeout.
    /// Whether to handle the push then (risking a second
    /// run) or to refuse it (WeChat retries) is the caller's choice.
    pub async fn first_seen(&self, incoming: &Incoming) -> Result<bool, StoreError> {
        let digest = Sha256::digest(incoming.dedup_key().as_bytes());
        let kind = TokenKind::Custom(Cow::Owned(format!(
            "push_seen:{}",
            crate::jssdk::hex_lower(&digest)
        )));
        let key = TokenKey::new(self.prefix.clone(), self.appid.clone(), kind);
        let acquire = self.store.try_acquire_lease(&key, &self.owner, self.ttl);
        tokio::time::timeout(self.timeout, acquire)
            .await
            .unwrap_or_else(|_| {
                Err(StoreError::new(
                    StoreOp::AcquireLease,
                    "push dedup: store timed out",
                ))
            })
    }
}

impl<S: TokenStore + Clone + 'static> Dedup<S> {
    /// Deduplicates through `client`'s store, with its AppID and key prefix.
    #[must_use]
    pub fn for_client<T: HttpTransport + 'static>(client: &OfficialAccount<T, S>) -> Self {
        let base = client.token_key(&TokenKind::AccessToken);
        Dedup::new(client.store().clone(), base.appid().clone()).key_prefix(base.prefix())
    }
}
