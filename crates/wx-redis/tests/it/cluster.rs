//! A local three-master Redis Cluster.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wx_core::test_util::{ConformanceOptions, token_store_conformance};
use wx_core::{StoreOp, TokenKind, TokenStore};
use wx_redis::RedisTokenStore;
use wx_redis::test_util::RedisCluster;

use crate::support::{failure, fresh_key, raw_connection, token};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_cluster_master_gives_bounded_typed_errors_and_the_store_recovers() {
    let mut cluster = RedisCluster::start();
    let urls = cluster.urls();
    let timeout = Duration::from_millis(500);
    let store = RedisTokenStore::builder()
        .operation_timeout(timeout)
        .connect_cluster(&urls)
        .await
        .expect("connect to the cluster");

    // Keys on the first master and keys on the others (a plain connection to the first master
    // answers MOVED for keys it does not own).
    let mut first = raw_connection(&urls[0]).await;
    let (mut on_first, mut elsewhere) = (Vec::new(), Vec::new());
    while on_first.len() < 2 || elsewhere.len() < 2 {
        let k = fresh_key(TokenKind::AccessToken);
        store.set(&k, token("T", 3600)).await.expect("set");
        let owned: Result<bool, _> = redis::cmd("EXISTS")
            .arg(store.redis_key(&k))
            .query_async(&mut first)
            .await;
        match owned {
            Ok(true) => on_first.push(k),
            Err(e) if e.redirect_node().is_some() => elsewhere.push(k),
            other => panic!("unexpected EXISTS reply {other:?}"),
        }
    }

    cluster.nodes_mut()[0].stop();
    for k in &elsewhere {
        assert_eq!(
            store
                .get(k)
                .await
                .expect("other masters still serve")
                .expect("value")
                .secret(),
            "T"
        );
    }
    for k in &on_first {
        let started = Instant::now();
        let err = store.get(k).await.expect_err("its master is down");
        let took = started.elapsed();
        assert_eq!(err.op(), StoreOp::Get);
        assert!(
            took < timeout + Duration::from_millis(500),
            "a get on a dead master took {took:?}"
        );
        println!(
            "cluster master down: get failed in {took:?} ({:?})",
            failure(&err).kind()
        );
    }

    cluster.nodes_mut()[0].restart();
    let restarted = Instant::now();
    for k in &on_first {
        loop {
            match store.get(k).await {
                // The restarted master kept its slots but not its data.
                Ok(v) => {
                    assert!(v.is_none());
                    break;
                }
                Err(e) => {
                    assert!(
                        restarted.elapsed() < Duration::from_secs(10),
                        "the cluster store did not recover: {e:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        store
            .set(k, token("T2", 3600))
            .await
            .expect("set after recovery");
        assert_eq!(
            store.get(k).await.expect("get").expect("value").secret(),
            "T2"
        );
    }
    println!(
        "cluster store recovered {:?} after the restart",
        restarted.elapsed()
    );
}
