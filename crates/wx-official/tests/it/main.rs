//! Integration tests of wx-official: one binary, one module per area. No network: the
//! recording `MockTransport`, and wiremock on loopback for real HTTP.

mod access_token;
mod authorize;
mod common;
mod execute;
mod http;
mod leaks;
mod oauth;
mod over_http;
