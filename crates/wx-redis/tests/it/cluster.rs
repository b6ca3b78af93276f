//! A local three-master Redis Cluster.

use std::sync::Arc;
use std::time::Duration;

use wx_core::test_util::{ConformanceOptions, token_store_conformance};
use wx_core::{TokenKind, TokenStore};
use wx_redis::RedisTokenStore;
use wx_redis::test_util::RedisCluster;

use crate::support::{fresh_key, raw_connection, token};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_store_passes_the_conformance_suite_with_hash_tagged_keys() {
    let cluster = RedisCluster::start();
    let urls = cluster.urls();
    assert_eq!(urls.len(), 3);
    // One seed node is enough: the others come from the slot map.
    let store = RedisTokenStore::connect_cluster([&urls[0]])
        .await
        .expect("connect to the cluster");
    token_store_conformance(Arc::new(store.clone()), ConformanceOptions::default()).await;

    // Keys carry the AppID as a hash tag: a value and its lease share one slot.
    let key = fresh_key(TokenKind::AccessToken);
    let value_key = store.redis_key(&key);
    let lease_key = store.lease_redis_key(&key);
    assert_eq!(value_key, format!("wx:{{{}}}:access_token", key.appid()));
    assert_eq!(lease_key, format!("{value_key}:lease"));
    let mut raw = raw_connection(&urls[0]).await;
    let slot = |k: String| {
        let mut c = redis::cmd("CLUSTER");
        c.arg("KEYSLOT").arg(k);
        c
    };
    let value_slot: i64 = slot(value_key).query_async(&mut raw).await.unwrap();
    let lease_slot: i64 = slot(lease_key).query_async(&mut raw).await.unwrap();
    let ticket_slot: i64 = slot(store.redis_key(&key.with_kind(TokenKind::JsapiTicket)))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(value_slot, lease_slot);
    assert_eq!(value_slot, ticket_slot);

    // Values of many AppIDs spread over the three masters and all read back.
    let keys: Vec<_> = (0..30).map(|_| fresh_key(TokenKind::AccessToken)).collect();
    for (i, k) in keys.iter().enumerate() {
        store
            .set(k, token(&format!("T{i}"), 3600))
            .await
            .expect("set");
        assert!(
            store
                .try_acquire_lease(k, "me", Duration::from_secs(30))
                .await
                .expect("lease")
        );
    }
    // Each master holds some of them: the store follows the slot map to every node.
    let mut per_node = Vec::new();
    for url in &urls {
        let mut node = raw_connection(url).await;
        let found: Vec<String> = redis::cmd("KEYS")
            .arg("wx:{wxtest*}:access_token")
            .query_async(&mut node)
            .await
            .unwrap();
        per_node.push(found.len());
    }
    assert_eq!(per_node.iter().sum::<usize>(), keys.len(), "{per_node:?}");
    assert!(
        per_node.iter().all(|n| *n > 0),
        "keys per master: {per_node:?}"
    );
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(
            store.get(k).await.expect("get").expect("value").secret(),
            format!("T{i}")
        );
        assert!(
            store
                .compare_and_delete(k, &format!("T{i}"))
                .await
                .expect("cad")
        );
        assert!(store.get(k).await.expect("get").is_none());
        store.release_lease(k, "me").await.expect("release");
        assert!(
            store
                .try_acquire_lease(k, "other", Duration::from_secs(30))
                .await
                .expect("lease"),
            "a released lease on the cluster was not granted"
        );
    }
}
