//! The one mapping from reqwest's errors to [`TransportError`].

use std::fmt;

use wx_core::{TransportError, TransportErrorKind};

/// Classifies a reqwest error and strips its URL: WeChat's query strings carry `secret=` and
/// `access_token=`, and reqwest's `Display` and `Debug` print the URL it holds.
///
/// A connect failure is checked before a timeout: when the connect phase times out, reqwest
/// reports both, and "no connection was made" is what tells the caller the request never left.
#[cold]
#[inline(never)]
pub(crate) fn map_error(error: reqwest::Error) -> TransportError {
    let error = error.without_url();
    let kind = if error.is_connect() {
        TransportErrorKind::Connect
    } else if error.is_timeout() {
        TransportErrorKind::Timeout
    } else if error.is_body() || error.is_decode() || error.is_request() {
        TransportErrorKind::Io
    } else {
        TransportErrorKind::Other
    };
    TransportError::new(kind, error)
}

/// A body larger than the cap: declared by `Content-Length`, or counted while streaming.
#[cold]
#[inline(never)]
pub(crate) fn body_too_large(limit: usize, declared: Option<u64>) -> TransportError {
    TransportError::new(
        TransportErrorKind::BodyTooLarge,
        BodyLimitExceeded { limit, declared },
    )
}

/// The detail of a `BodyTooLarge` error (its `source()`).
#[derive(Debug)]
struct BodyLimitExceeded {
    limit: usize,
    declared: Option<u64>,
}

impl fmt::Display for BodyLimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.declared {
            Some(len) => write!(
                f,
                "Content-Length {len} exceeds the limit of {} bytes",
                self.limit
            ),
            None => write!(f, "more than {} bytes received", self.limit),
        }
    }
}

impl std::error::Error for BodyLimitExceeded {}
