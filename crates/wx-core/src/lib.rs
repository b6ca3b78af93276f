#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

mod clock;
pub mod crypto;
mod decode;
mod errcode;
mod error;
mod id;
mod model;
mod multipart;
mod secret;
mod store;
mod transport;
pub mod urlenc;

#[cfg(feature = "test-util")]
pub mod test_util;

pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use decode::{Ack, decode_response, sanitize};
pub use errcode::{ApiErrorKind, ErrCode, RetryHint};
pub use error::{
    ApiError, BoxError, DecodeError, DecodeReason, Delivery, Error, InvalidInput, Refused, Result,
    StoreError, StoreOp, TransportError, TransportErrorKind, check_arg, split_request_id,
};
pub use id::{AppId, OpenId, UnionId};
pub use model::{AccessTokenResponse, JsapiTicketResponse, Lang, OAuthToken, Scope, Sex, UserInfo};
pub use multipart::{EncodedForm, MultipartForm};
pub use secret::{
    AccessToken, AppSecret, AuthCode, RefreshToken, ServerToken, Ticket, WebAccessToken, ct_eq,
};
pub use store::{MemoryTokenStore, StoredToken, TokenKey, TokenKind, TokenStore};
pub use transport::{
    FnTransport, HttpRequest, HttpResponse, HttpTransport, SendFuture, response_cap, transport_fn,
};

/// `#[serde(deserialize_with = "...")]` helpers for WeChat's loose JSON (numbers sent as
/// strings, `null` for absent, empty strings for none), shared by every group's answer models.
pub mod lenient {
    pub use crate::model::{
        lenient_flag as flag, lenient_opt_i64 as opt_i64, lenient_opt_id as opt_union_id,
        lenient_opt_string as opt_string, lenient_opt_u64 as opt_u64, lenient_string as string,
        lenient_u64 as uint, lenient_vec as strings,
    };
}

/// Re-exports for implementing the traits without naming their dependencies.
pub mod reexports {
    pub use async_trait::async_trait;
    pub use bytes::Bytes;
    pub use http;
}
