#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod authorize;
mod batch;
mod builder;
mod client;
mod endpoint;
mod execute;
pub mod oauth;
mod request;
mod retry;
mod ticket;
mod token;
mod url_check;

pub use authorize::{AuthorizeUrl, MAX_REDIRECT_URI_LEN, MAX_STATE_LEN};
pub use batch::{BatchPage, MAX_BATCH_COUNT};
pub use builder::{
    Builder, DEFAULT_LOCAL_TOKEN_AGE, MAX_CODE_EXCHANGE_WINDOW, MAX_LOCAL_TOKEN_AGE,
};
pub use client::{
    DEFAULT_API_BASE, DEFAULT_OPEN_BASE, DynOfficialAccount, OfficialAccount,
    STABLE_FORCE_REFRESH_DAILY_LIMIT, STABLE_FORCE_REFRESH_SPACING, TokenMode,
};
pub use endpoint::{Auth, Endpoint};
pub use jssdk::JsSdkConfig;
pub use media::MediaFile;
pub use request::{FromResponse, Request};
pub use retry::RetryPolicy;
pub use state::{StateError, StateSigner, VerifiedState};
pub use ticket::JSAPI_TICKET_INVALIDATION_SPACING;
/// The contracts this crate builds on, re-exported so one dependency suffices.
pub use wx_core;

pub mod draft;
pub mod freepublish;
pub mod jssdk;
pub mod material;
pub mod media;
pub mod menu;
pub mod message;
pub mod paging;
pub mod push;
pub mod qrcode;
pub mod state;
pub mod user;
pub mod verify;
