//! Integration tests of `ReqwestTransport` against servers on loopback (wiremock, or a raw
//! tokio listener where the test must control the bytes and count connections).
#![allow(clippy::unwrap_used)]

mod support;

mod body_cap;
mod config;
mod failures;
mod logging;
mod multipart;
mod passthrough;
mod pool;
