#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod builder;
mod error;
mod transport;
mod url_cache;

pub use builder::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_BODY_SIZE, DEFAULT_POOL_IDLE_TIMEOUT, DEFAULT_TIMEOUT,
    DEFAULT_USER_AGENT, ReqwestTransportBuilder,
};
pub use transport::ReqwestTransport;

/// The reqwest version this crate is built on, to name [`reqwest::Proxy`] or build a
/// [`reqwest::Client`] without adding a second, possibly mismatched, dependency.
pub use reqwest;
