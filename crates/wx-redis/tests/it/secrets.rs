//! The Redis password never shows in Debug output or in an error chain.

use std::time::Duration;

use wx_core::{StoreOp, TokenKind, TokenStore};
use wx_redis::test_util::RedisServer;
use wx_redis::{RedisFailureKind, RedisTokenStore};

use crate::support::{failure, fresh_key, full_chain, token};

const PASSWORD: &str = "Wx-Pa55word-never-shown";
const WRONG: &str = "Wrong-Pa55word-also-hidden";

fn assert_hidden(what: &str, text: &str) {
    for secret in [PASSWORD, WRONG] {
        assert!(!text.contains(secret), "{what} shows a password: {text}");
    }
}

#[tokio::test]
async fn the_password_is_in_no_debug_output_and_no_error_chain() {
    let mut server = RedisServer::builder().password(PASSWORD).start();
    let url = server.url();
    assert!(
        url.contains(PASSWORD),
        "the test needs the password in the URL"
    );

    let store = RedisTokenStore::connect(&url).await.expect("connect");
    let key = fresh_key(TokenKind::AccessToken);
    store.set(&key, token("T", 3600)).await.expect("set");
    assert_eq!(
        store.get(&key).await.expect("get").expect("value").secret(),
        "T"
    );
    let debug = format!("{store:?}");
    assert_hidden("Debug of the store", &debug);
    assert!(
        debug.contains(&format!("addr: \"127.0.0.1:{}\"", server.port()))
            && debug.contains("db: 0"),
        "Debug shows host, port and db: {debug}"
    );
    assert_hidden(
        "Debug of the builder",
        &format!("{:?}", RedisTokenStore::builder()),
    );

    // The same URL with a username.
    let with_user = url.replace("redis://:", "redis://default:");
    let store2 = RedisTokenStore::connect(&with_user)
        .await
        .expect("connect as default");
    assert_hidden("Debug of the store", &format!("{store2:?}"));
    assert!(!format!("{store2:?}").contains("default"), "{store2:?}");

    // Wrong password: refused at connect, and neither password is shown.
    let err = RedisTokenStore::connect(&url.replace(PASSWORD, WRONG))
        .await
        .expect_err("wrong password");
    assert_eq!(err.op(), StoreOp::Connect);
    assert_eq!(failure(&err).kind(), RedisFailureKind::Auth, "{err:?}");
    assert_hidden("a wrong-password error", &full_chain(&err));

    // Redis stopped: failed operations and a failed connect show no password.
    server.stop();
    for _ in 0..2 {
        let err = store.get(&key).await.expect_err("redis is down");
        assert_eq!(err.op(), StoreOp::Get);
        assert_hidden("a failed get", &full_chain(&err));
        let err = store
            .try_acquire_lease(&key, "me", Duration::from_secs(1))
            .await
            .expect_err("redis is down");
        assert_hidden("a failed lease", &full_chain(&err));
    }
    let err = RedisTokenStore::connect(&url)
        .await
        .expect_err("redis is down");
    assert_eq!(err.op(), StoreOp::Connect);
    let chain = full_chain(&err);
    assert_hidden("a failed connect", &chain);
    assert!(
        chain.contains("could not connect to redis"),
        "the chain says what failed: {chain}"
    );
    let err = RedisTokenStore::connect_cluster([&url])
        .await
        .expect_err("redis is down");
    assert_hidden("a failed cluster connect", &full_chain(&err));
}
