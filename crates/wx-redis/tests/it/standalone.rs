//! One Redis server: the conformance suite and the stored format.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::AsyncCommands;
use wx_core::test_util::{ConformanceOptions, token_store_conformance};
use wx_core::{StoreOp, TokenKind, TokenStore};
use wx_redis::test_util::RedisServer;
use wx_redis::{RedisFailureKind, RedisTokenStore};

use crate::support::{failure, fresh_key, raw_connection, token};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_store_passes_the_conformance_suite() {
    let server = RedisServer::from_env_or_start();
    let store = RedisTokenStore::connect(&server.url())
        .await
        .expect("connect");
    token_store_conformance(Arc::new(store), ConformanceOptions::default()).await;
}

#[tokio::test]
async fn store_on_a_provided_connection_manager_passes_the_conformance_suite() {
    let server = RedisServer::from_env_or_start();
    let client = redis::Client::open(server.url()).expect("url");
    let manager = redis::aio::ConnectionManager::new(client)
        .await
        .expect("connection manager");
    let store = RedisTokenStore::from_connection_manager(manager);
    token_store_conformance(Arc::new(store), ConformanceOptions::default()).await;
}

#[tokio::test]
async fn value_and_absolute_expiry_live_in_one_key_with_a_ttl() {
    let server = RedisServer::from_env_or_start();
    let store = RedisTokenStore::connect(&server.url())
        .await
        .expect("connect");
    let key = fresh_key(TokenKind::AccessToken);
    let expires_at = SystemTime::now() + Duration::from_secs(7200);
    store
        .set(
            &key,
            wx_core::StoredToken::new("TOKEN:with:colons", expires_at),
        )
        .await
        .expect("set");

    let redis_key = store.redis_key(&key);
    assert_eq!(
        redis_key,
        key.to_string(),
        "standalone keys are TokenKey's Display"
    );
    assert_eq!(redis_key, format!("wx:{}:access_token", key.appid()));
    let mut raw = raw_connection(&server.url()).await;
    let stored: String = raw.get(&redis_key).await.expect("GET");
    let expires_ms = expires_at.duration_since(UNIX_EPOCH).unwrap().as_millis();
    assert_eq!(stored, format!("{expires_ms}:TOKEN:with:colons"));
    let pttl: i64 = raw.pttl(&redis_key).await.expect("PTTL");
    assert!(
        (7_190_000..=7_200_000).contains(&pttl),
        "the key's TTL should end at expires_at, got {pttl} ms"
    );

    let got = store.get(&key).await.expect("get").expect("value");
    assert_eq!(got.secret(), "TOKEN:with:colons");
    assert_eq!(
        got.expires_at
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
        expires_ms
    );

    // Setting an already expired token removes the old value instead of keeping it.
    store
        .set(
            &key,
            wx_core::StoredToken::new("OLD", SystemTime::now() - Duration::from_secs(1)),
        )
        .await
        .expect("set expired");
    let exists: bool = raw.exists(&redis_key).await.expect("EXISTS");
    assert!(!exists, "an expired set must delete the key");
}

#[tokio::test]
async fn get_checks_the_absolute_expiry_even_if_redis_still_holds_the_key() {
    let server = RedisServer::from_env_or_start();
    let store = RedisTokenStore::connect(&server.url())
        .await
        .expect("connect");
    let key = fresh_key(TokenKind::JsapiTicket);
    let mut raw = raw_connection(&server.url()).await;
    // As written by a process whose clock ran ahead: Redis keeps it for another hour, but
    // its absolute expiry has passed.
    let past_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        - 1;
    let _: () = raw
        .set_ex(store.redis_key(&key), format!("{past_ms}:STALE"), 3600)
        .await
        .expect("SET");
    assert!(store.get(&key).await.expect("get").is_none());
    assert!(
        !store.compare_and_delete(&key, "STALE").await.expect("cad"),
        "an expired value is absent for compare_and_delete too"
    );

    // A value that is not in the store's format is an error, not a token.
    let _: () = raw
        .set(store.redis_key(&key), "not-a-wx-value")
        .await
        .expect("SET");
    let err = store.get(&key).await.expect_err("foreign value");
    assert_eq!(err.op(), StoreOp::Get);
    assert_eq!(failure(&err).kind(), RedisFailureKind::Protocol);
    // ...which `set` replaces and `delete` removes.
    store.set(&key, token("FRESH", 60)).await.expect("set");
    assert_eq!(
        store.get(&key).await.expect("get").expect("value").secret(),
        "FRESH"
    );
    store.delete(&key).await.expect("delete");
}

#[tokio::test]
async fn leases_use_their_own_key_with_a_ttl() {
    let server = RedisServer::from_env_or_start();
    let store = RedisTokenStore::connect(&server.url())
        .await
        .expect("connect");
    let key = fresh_key(TokenKind::AccessToken);
    store.set(&key, token("T", 3600)).await.expect("set");
    assert!(
        store
            .try_acquire_lease(&key, "owner-1", Duration::from_secs(10))
            .await
            .expect("lease")
    );
    let lease_key = store.lease_redis_key(&key);
    assert_eq!(lease_key, format!("{}:lease", key));
    let mut raw = raw_connection(&server.url()).await;
    let owner: String = raw.get(&lease_key).await.expect("GET lease");
    assert_eq!(owner, "owner-1");
    let pttl: i64 = raw.pttl(&lease_key).await.expect("PTTL");
    assert!((9_000..=10_000).contains(&pttl), "lease TTL {pttl} ms");
    // The lease does not touch the value.
    assert_eq!(
        store.get(&key).await.expect("get").expect("value").secret(),
        "T"
    );
    store.release_lease(&key, "owner-1").await.expect("release");
    let exists: bool = raw.exists(&lease_key).await.expect("EXISTS");
    assert!(!exists);
    store.delete(&key).await.expect("delete");
}
