//! Integration tests of wx-official: one binary, one module per area. No network: the
//! recording `MockTransport`, the in-process sandbox (`wx-sandbox`), and wiremock on loopback
//! for real HTTP.

mod access_token;
mod account;
mod account_sandbox;
mod authorize;
mod common;
mod execute;
mod fleet_modes;
mod http;
mod idempotent_exchange;
mod jsapi_ticket;
mod leaks;
mod local_copy;
mod login_flow;
mod media;
mod media_sandbox;
mod message;
mod message_sandbox;
mod oauth;
mod over_http;
mod paging;
mod publishing;
mod publishing_sandbox;
mod push_messages;
mod push_modes;
