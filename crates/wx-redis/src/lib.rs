#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

mod error;
mod store;

#[cfg(feature = "test-util")]
pub mod test_util;

pub use error::{RedisFailure, RedisFailureKind};
pub use store::{
    DEFAULT_CONNECTION_TIMEOUT, DEFAULT_OPERATION_TIMEOUT, RedisTokenStore, RedisTokenStoreBuilder,
};

/// The redis crate this store is built on, for [`RedisTokenStore::from_connection_manager`]
/// and [`RedisTokenStore::from_cluster_connection`].
pub use redis;
