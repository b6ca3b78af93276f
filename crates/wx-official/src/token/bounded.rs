//! The store as the token manager uses it: every operation bounded in time.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::time::Duration;

use wx_core::{StoreError, StoreOp, StoredToken, TokenKey, TokenStore};

/// A store whose every operation fails with a [`StoreError`] after `timeout` instead of hanging.
pub(crate) struct BoundedStore<S> {
    pub(super) inner: S,
    pub(super) timeout: Duration,
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
