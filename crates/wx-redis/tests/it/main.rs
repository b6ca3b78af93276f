//! Integration tests of wx-redis against real `redis-server` processes started by the tests
//! (see `wx_redis::test_util`). They need `redis-server` and `redis-cli` on PATH
//! (`apt-get install redis-server`) and fail with that advice when they are missing.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod cluster;
mod failures;
mod lease;
mod secrets;
mod standalone;
mod support;
#[cfg(any(feature = "rustls", feature = "native-tls"))]
mod tls;
