//! Waiting for a refresh's outcome, and handing each waiter its own copy of a shared error.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use wx_core::{
    Error, Refused, Result, StoreError, StoredToken, TransportError, TransportErrorKind,
};

use super::FlightRx;

pub(super) async fn wait(mut rx: FlightRx) -> Result<StoredToken> {
    let outcome = match rx.wait_for(Option::is_some).await {
        Ok(value) => value.clone(),
        Err(_) => None,
    };
    match outcome {
        Some(Ok(token)) => Ok(token),
        Some(Err(e)) => Err(reissue(&e)),
        None => Err(Error::Transport {
            endpoint: "token refresh",
            source: TransportError::new(
                TransportErrorKind::Other,
                "the token refresh task stopped without an answer",
            ),
        }),
    }
}

/// A copy of a refresh's error for each caller that waited for it: the same variant and fields,
/// with the original's source chain shared behind an `Arc`.
fn reissue(e: &Arc<Error>) -> Error {
    let shared = |whole| SharedCause {
        error: e.clone(),
        whole,
    };
    match &**e {
        Error::Api(a) => Error::Api(a.clone()),
        Error::Transport { endpoint, source } => Error::Transport {
            endpoint,
            source: if source.source().is_some() {
                TransportError::new(source.kind(), shared(false))
            } else {
                TransportError::from_kind(source.kind())
            },
        },
        Error::HttpStatus { endpoint, status } => Error::HttpStatus {
            endpoint,
            status: *status,
        },
        Error::Decode(d) => Error::Decode(d.clone()),
        Error::Store(s) => Error::Store(if s.source().is_some() {
            StoreError::new(s.op(), shared(false))
        } else {
            StoreError::from_op(s.op())
        }),
        Error::InvalidInput(i) => Error::InvalidInput(i.clone()),
        Error::Deadline {
            operation,
            deadline,
        } => Error::Deadline {
            operation,
            deadline: *deadline,
        },
        Error::Refused(Refused::LeaseWaitTimedOut { kind }) => {
            Refused::LeaseWaitTimedOut { kind }.into()
        }
        Error::Refused(Refused::TokenFetchCooldown { cause, remaining }) => {
            Refused::TokenFetchCooldown {
                cause: cause.clone(),
                remaining: *remaining,
            }
            .into()
        }
        // A refresh produces none of the others; should a future one appear, keep its text.
        _ => Error::Transport {
            endpoint: "token refresh",
            source: TransportError::new(TransportErrorKind::Other, shared(true)),
        },
    }
}

/// The shared original error: either its inner source (`whole == false`) or all of it.
#[derive(Debug)]
struct SharedCause {
    error: Arc<Error>,
    whole: bool,
}

impl SharedCause {
    fn inner(&self) -> Option<&(dyn StdError + 'static)> {
        if self.whole {
            return Some(&*self.error);
        }
        match &*self.error {
            Error::Transport { source, .. } => source.source(),
            Error::Store(s) => s.source(),
            _ => None,
        }
    }
}

impl fmt::Display for SharedCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.inner() {
            Some(e) => fmt::Display::fmt(e, f),
            None => f.write_str("unknown cause"),
        }
    }
}

impl StdError for SharedCause {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner().and_then(StdError::source)
    }
}
