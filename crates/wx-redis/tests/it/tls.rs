//! `rediss://` with a private CA, through the enabled TLS feature.

use std::path::PathBuf;

use wx_core::{StoreOp, TokenKind, TokenStore};
use wx_redis::test_util::{RedisServer, TlsFiles};
use wx_redis::{RedisFailureKind, RedisTokenStore};

use crate::support::{failure, fresh_key, full_chain, token};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/tls")
}

fn tls_server() -> RedisServer {
    let dir = fixtures();
    RedisServer::builder()
        .password("tls-Pa55")
        .tls(TlsFiles {
            cert: dir.join("server.crt"),
            key: dir.join("server.key"),
            ca: dir.join("ca.crt"),
        })
        .start()
}

#[tokio::test]
async fn rediss_works_with_a_private_root_certificate() {
    let server = tls_server();
    let url = server.url();
    assert!(url.starts_with("rediss://"), "{url}");
    let ca = std::fs::read(fixtures().join("ca.crt")).expect("ca.crt");

    let store = RedisTokenStore::builder()
        .tls_root_certificate(ca.clone())
        .connect(&url)
        .await
        .expect("connect over TLS");
    let key = fresh_key(TokenKind::AccessToken);
    store
        .set(&key, token("TLS-TOKEN", 3600))
        .await
        .expect("set");
    assert_eq!(
        store.get(&key).await.expect("get").expect("value").secret(),
        "TLS-TOKEN"
    );
    assert!(
        store
            .compare_and_delete(&key, "TLS-TOKEN")
            .await
            .expect("cad"),
        "scripts run over TLS too"
    );
    let debug = format!("{store:?}");
    assert!(debug.contains("tls: true"), "{debug}");
    assert!(!debug.contains("tls-Pa55"), "{debug}");

    // Without trusting the private CA the certificate is rejected: verification is on.
    let err = RedisTokenStore::connect(&url)
        .await
        .expect_err("unknown CA must be refused");
    assert_eq!(err.op(), StoreOp::Connect);
    let chain = full_chain(&err);
    assert!(chain.to_lowercase().contains("certificate"), "{chain}");
    assert!(!chain.contains("tls-Pa55"), "{chain}");

    // A root certificate for a plain redis:// URL is a configuration mistake.
    let err = RedisTokenStore::builder()
        .tls_root_certificate(ca)
        .connect(&url.replace("rediss://", "redis://"))
        .await
        .expect_err("root certificate without TLS");
    assert_eq!(failure(&err).kind(), RedisFailureKind::Config);
    let err = RedisTokenStore::builder()
        .tls_root_certificate(std::fs::read(fixtures().join("ca.crt")).expect("ca.crt"))
        .connect_cluster(["redis://127.0.0.1:1/"])
        .await
        .expect_err("root certificate without TLS");
    assert_eq!(failure(&err).kind(), RedisFailureKind::Config);
}
