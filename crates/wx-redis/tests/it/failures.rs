//! Redis down, hung, or absent: typed errors naming the operation, bounded in time, and
//! recovery by the same store instance.

use std::time::{Duration, Instant};

use wx_core::{StoreError, StoreOp, TokenKey, TokenKind, TokenStore};
use wx_redis::test_util::RedisServer;
use wx_redis::{RedisFailureKind, RedisTokenStore};

use crate::support::{failure, fresh_key, raw_connection, token};

/// Runs the store operation `op` once on `key`.
async fn run(store: &RedisTokenStore, op: StoreOp, key: &TokenKey) -> Result<(), StoreError> {
    match op {
        StoreOp::Get => store.get(key).await.map(drop),
        StoreOp::Set => store.set(key, token("NEW", 3600)).await,
        StoreOp::Delete => store.delete(key).await,
        StoreOp::CompareAndDelete => store.compare_and_delete(key, "NEW").await.map(drop),
        StoreOp::AcquireLease => store
            .try_acquire_lease(key, "me", Duration::from_secs(5))
            .await
            .map(drop),
        StoreOp::ReleaseLease => store.release_lease(key, "me").await,
        other => panic!("not a store operation: {other:?}"),
    }
}

const OPS: [StoreOp; 6] = [
    StoreOp::Get,
    StoreOp::Set,
    StoreOp::Delete,
    StoreOp::CompareAndDelete,
    StoreOp::AcquireLease,
    StoreOp::ReleaseLease,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_and_restarted_gives_typed_errors_then_recovers_without_a_new_store() {
    let mut server = RedisServer::start();
    let store = RedisTokenStore::connect(&server.url())
        .await
        .expect("connect");
    let key = fresh_key(TokenKind::AccessToken);
    store.set(&key, token("BEFORE", 3600)).await.expect("set");
    assert_eq!(
        store.get(&key).await.expect("get").expect("value").secret(),
        "BEFORE"
    );

    server.stop();
    // Two rounds: the first may meet the dead connection, the second the reconnect attempts.
    for round in 0..2 {
        for op in OPS {
            let started = Instant::now();
            let err = run(&store, op, &key)
                .await
                .expect_err("an operation on a stopped Redis must fail");
            let took = started.elapsed();
            assert_eq!(err.op(), op, "the error names the operation");
            assert_eq!(err.to_string(), format!("token store {op} failed"));
            let kind = failure(&err).kind();
            assert!(
                matches!(
                    kind,
                    RedisFailureKind::Connect | RedisFailureKind::Io | RedisFailureKind::Timeout
                ),
                "{op}: unexpected failure kind {kind:?}"
            );
            if round == 1 {
                assert_eq!(kind, RedisFailureKind::Connect, "{op}: {err:?}");
            }
            // Bounded by the operation timeout (1 s) plus scheduling slack.
            assert!(took < Duration::from_millis(1500), "{op} took {took:?}");
            println!("redis down, round {round}: {op} failed in {took:?} ({kind:?})");
        }
    }

    server.restart();
    let restarted = Instant::now();
    let mut errors_after_restart = 0;
    let value = loop {
        match store.get(&key).await {
            Ok(v) => break v,
            Err(e) => {
                errors_after_restart += 1;
                assert!(
                    restarted.elapsed() < Duration::from_secs(5),
                    "the store did not recover within 5 s of the restart: {e:?}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    println!(
        "recovered {:?} after the restart, {errors_after_restart} failed calls in between",
        restarted.elapsed()
    );
    assert!(
        errors_after_restart <= 2,
        "{errors_after_restart} calls failed after Redis was back"
    );
    assert!(
        value.is_none(),
        "a restart without persistence loses the value"
    );
    // Every operation works again on the same store instance.
    store.set(&key, token("AFTER", 3600)).await.expect("set");
    assert_eq!(
        store.get(&key).await.expect("get").expect("value").secret(),
        "AFTER"
    );
    assert!(store.compare_and_delete(&key, "AFTER").await.expect("cad"));
    assert!(
        store
            .try_acquire_lease(&key, "me", Duration::from_secs(5))
            .await
            .expect("lease")
    );
    store.release_lease(&key, "me").await.expect("release");
    store.delete(&key).await.expect("delete");
}

#[tokio::test]
async fn a_hung_redis_times_out_with_a_typed_error() {
    let server = RedisServer::start();
    let timeout = Duration::from_millis(300);
    let store = RedisTokenStore::builder()
        .operation_timeout(timeout)
        .connect(&server.url())
        .await
        .expect("connect");
    let key = fresh_key(TokenKind::AccessToken);
    store.set(&key, token("T", 3600)).await.expect("set");

    // Redis stops answering every client for 1.5 s, as when it hangs.
    let mut admin = raw_connection(&server.url()).await;
    let paused_at = Instant::now();
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(1500)
        .arg("ALL")
        .query_async(&mut admin)
        .await
        .expect("CLIENT PAUSE");
    for op in [StoreOp::Get, StoreOp::AcquireLease] {
        let started = Instant::now();
        let err = run(&store, op, &key).await.expect_err("a hung redis");
        let took = started.elapsed();
        assert_eq!(err.op(), op);
        assert!(failure(&err).is_timeout(), "{op}: {err:?}");
        assert!(
            took >= timeout - Duration::from_millis(20)
                && took < timeout + Duration::from_millis(400),
            "{op} gave up after {took:?}, the timeout is {timeout:?}"
        );
        println!("hung redis: {op} timed out after {took:?}");
    }
    // When Redis answers again, so does the store.
    tokio::time::sleep(Duration::from_millis(1600).saturating_sub(paused_at.elapsed())).await;
    let mut value = None;
    for _ in 0..20 {
        if let Ok(v) = store.get(&key).await {
            value = v;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(value.expect("value after the pause").secret(), "T");
}

#[tokio::test]
async fn connecting_to_nothing_fails_fast_with_a_connect_error() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let err = RedisTokenStore::connect(&format!("redis://127.0.0.1:{port}/"))
        .await
        .expect_err("nothing listens");
    assert_eq!(err.op(), StoreOp::Connect);
    assert_eq!(failure(&err).kind(), RedisFailureKind::Connect);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    for bad in [
        "http://127.0.0.1:6379",
        "not a url",
        "redis://127.0.0.1:6379/notadb",
    ] {
        let err = RedisTokenStore::connect(bad).await.expect_err(bad);
        assert_eq!(err.op(), StoreOp::Connect, "{bad}");
        assert_eq!(failure(&err).kind(), RedisFailureKind::Config, "{bad}");
    }
    let err = RedisTokenStore::connect_cluster(["redis://127.0.0.1:1/", "nope"])
        .await
        .expect_err("bad cluster url");
    assert_eq!(failure(&err).kind(), RedisFailureKind::Config);
}
