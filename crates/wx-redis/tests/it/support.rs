//! Shared helpers of the integration tests.

use std::error::Error;
use std::time::{Duration, SystemTime};

use redis::aio::MultiplexedConnection;
use wx_core::{AppId, StoredToken, TokenKey, TokenKind};

/// A key under a fresh random AppID, so tests never see each other's values.
pub(crate) fn fresh_key(kind: TokenKind) -> TokenKey {
    TokenKey::new(
        TokenKey::DEFAULT_PREFIX,
        AppId::new(format!("wxtest{:016x}", rand_u64())),
        kind,
    )
}

pub(crate) fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.finish()
}

/// A token valid for `secs` more seconds.
pub(crate) fn token(value: &str, secs: u64) -> StoredToken {
    StoredToken::new(value, SystemTime::now() + Duration::from_secs(secs))
}

/// A plain connection to look at what the store wrote.
pub(crate) async fn raw_connection(url: &str) -> MultiplexedConnection {
    redis::Client::open(url)
        .expect("valid url")
        .get_multiplexed_async_connection()
        .await
        .expect("raw connection to the test redis")
}

/// Display and Debug of an error and of every source below it.
pub(crate) fn full_chain(err: &(dyn Error + 'static)) -> String {
    let mut out = String::new();
    let mut cur = Some(err);
    while let Some(e) = cur {
        out.push_str(&format!("{e} / {e:?}\n"));
        cur = e.source();
    }
    out
}

/// The `RedisFailure` under a `StoreError`.
pub(crate) fn failure(err: &wx_core::StoreError) -> &wx_redis::RedisFailure {
    err.source()
        .and_then(|s| s.downcast_ref::<wx_redis::RedisFailure>())
        .expect("the source of a wx-redis StoreError is a RedisFailure")
}
