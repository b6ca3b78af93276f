//! A refresh that is granted the lease right after another process released it must not fetch
//! again: it has to look at the store once more, since the lease it just got may be the one
//! the other process held while it stored a fresh token.
//!
//! Two fleet members (two clients, each with its own Redis connection: to Redis they are two
//! processes) and a token endpoint answering after 200 ms. A starts a refresh at 0 ms: it reads
//! the empty key, takes the lease, fetches, stores `FLEET-TOKEN-1` at about 200 ms and releases
//! the lease. B starts at 50 ms: it reads the key (still empty), then its `SET NX` for the lease
//! reaches Redis 400 ms later (a network hiccup, a paused VM, a long GC in a sidecar: any delay
//! between the two commands), after A released the lease. B is granted the lease and, unless it
//! reads the key again, fetches a second token, which replaces A's in the store and, with
//! `cgi-bin/token`, invalidates A's token five minutes later.
//!
//! wx-official prevents it with the second check of double-checked locking: once granted the
//! lease it reads the key again and, when it holds a fresh token, releases the lease and returns
//! that token (wx-official's `run_flight`, since commit 7e51d20).

use std::time::{Duration, Instant};

use async_trait::async_trait;
use wx_core::{AppSecret, StoreError, StoredToken, TokenKey, TokenStore};
use wx_official::OfficialAccount;
use wx_redis::RedisTokenStore;
use wx_redis::test_util::RedisServer;
use wx_reqwest::ReqwestTransport;

use crate::support::*;

/// How late B's lease request reaches Redis: well after A stored its token (about 200 ms).
const LEASE_DELAY: Duration = Duration::from_millis(400);

/// A Redis store whose lease requests reach Redis `delay` late.
struct SlowLease {
    inner: RedisTokenStore,
    delay: Duration,
}

#[async_trait]
impl TokenStore for SlowLease {
    async fn get(&self, key: &TokenKey) -> Result<Option<StoredToken>, StoreError> {
        self.inner.get(key).await
    }
    async fn set(&self, key: &TokenKey, token: StoredToken) -> Result<(), StoreError> {
        self.inner.set(key, token).await
    }
    async fn delete(&self, key: &TokenKey) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }
    async fn compare_and_delete(&self, key: &TokenKey, expected: &str) -> Result<bool, StoreError> {
        self.inner.compare_and_delete(key, expected).await
    }
    async fn try_acquire_lease(
        &self,
        key: &TokenKey,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        tokio::time::sleep(self.delay).await;
        self.inner.try_acquire_lease(key, owner, ttl).await
    }
    async fn release_lease(&self, key: &TokenKey, owner: &str) -> Result<(), StoreError> {
        self.inner.release_lease(key, owner).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_granted_after_a_refresh_finished_does_not_fetch_again() {
    let _serial = SERIAL.lock().await;
    let redis = RedisServer::from_env_or_start();
    let appid = unique_appid("lr");
    let endpoint = TokenEndpoint::start(&appid, |_| Duration::from_millis(200)).await;
    let a = client(
        &redis.url(),
        &endpoint.url(),
        &appid,
        Duration::from_secs(20),
    )
    .await;
    let b = OfficialAccount::builder(appid.as_str(), AppSecret::new(SECRET))
        .api_base(&endpoint.url())
        .build(
            ReqwestTransport::new().expect("reqwest"),
            SlowLease {
                inner: RedisTokenStore::connect(&redis.url())
                    .await
                    .expect("connect"),
                delay: LEASE_DELAY,
            },
        )
        .expect("valid options");

    let a_call = tokio::spawn(async move { a.access_token().await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let b_started = Instant::now();
    let b_token = b.access_token().await.expect("B's token");
    let b_took = b_started.elapsed();
    let a_token = a_call.await.expect("A's task").expect("A's token");

    assert_eq!(a_token.secret(), issued_token(1));
    assert_eq!(
        endpoint.requests().await.len(),
        1,
        "B found A's fresh token after getting the lease, and did not fetch a second one"
    );
    assert_eq!(b_token.secret(), issued_token(1));
    // B went through its delayed lease request (it read the key while A was still fetching):
    // the interleaving this test is about did happen.
    assert!(
        b_took >= LEASE_DELAY,
        "B answered in {b_took:?}: it never asked for the lease"
    );
}
