//! The refresh task: the store lease, the fetch and the store write, and the guard that frees
//! the slot if the task dies.

use std::time::Duration;

use wx_core::{
    Error, Refused, Result, StoredToken, TokenStore, TransportError, TransportErrorKind,
};

use super::{FetchFuture, Slot, TokenManager, lock, owner_id};
use crate::retry::jitter;

/// WeChat's `expires_in` is capped at this many seconds, so a garbled answer cannot pin a value
/// in the store for years. WeChat documents at most 7,200.
const MAX_LIFETIME_SECS: u64 = 86_400;

/// First and largest delay between store polls while another process holds the lease. The cap
/// is small next to a token fetch (~100 ms or more) so a waiter sees the leader's token soon
/// after it is stored; a fleet of waiters polling at 10 Hz is negligible load for the store.
const POLL_FIRST: Duration = Duration::from_millis(20);
const POLL_MAX: Duration = Duration::from_millis(100);

impl<S: TokenStore + 'static> TokenManager<S> {
    pub(super) async fn run_flight<F>(
        &self,
        slot: &Slot,
        fetch: F,
        force: bool,
    ) -> Result<StoredToken>
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

/// Clears the slot's flight if the refresh task ends without finishing (a panic in a fetch, a
/// runtime shutting down), so the next caller starts a new refresh instead of joining a dead one.
pub(super) struct FlightGuard<'a> {
    pub(super) slot: &'a Slot,
    pub(super) armed: bool,
}

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            lock(&self.slot.state).flight = None;
        }
    }
}
