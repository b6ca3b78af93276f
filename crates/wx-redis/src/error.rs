//! The cause carried by every [`StoreError`] of this crate.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::{ErrorKind, RedisError};
use wx_core::{StoreError, StoreOp};

/// How a Redis operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RedisFailureKind {
    /// No reply within the operation timeout (a hung or overloaded Redis, a lost network).
    Timeout,
    /// No connection could be made (refused, unreachable, TLS handshake); the command was not
    /// sent. The store keeps trying to reconnect in the background.
    Connect,
    /// The connection broke while the command was in flight; it may or may not have run.
    Io,
    /// Redis rejected the credentials (`WRONGPASS`, `NOAUTH`, `NOPERM`).
    Auth,
    /// Redis answered with an error (`CLUSTERDOWN`, `READONLY`, `OOM`, `LOADING`...).
    Server,
    /// The URL or the options are invalid (bad scheme, TLS without a TLS feature...).
    Config,
    /// A reply or a stored value did not have the expected shape.
    Protocol,
    /// Anything else.
    Other,
}

/// Why a Redis operation failed: the [`source`](std::error::Error::source) of every
/// [`StoreError`] returned by [`RedisTokenStore`](crate::RedisTokenStore).
///
/// It keeps the redis crate's message as text with the connection's password removed, and no
/// source of its own, so an error chain never shows the Redis password (the redis crate's
/// messages carry at most a `host:port`).
#[derive(Clone)]
pub struct RedisFailure {
    kind: RedisFailureKind,
    detail: String,
}

impl RedisFailure {
    pub(crate) fn new(kind: RedisFailureKind, detail: impl Into<String>) -> Self {
        RedisFailure {
            kind,
            detail: detail.into(),
        }
    }

    pub(crate) fn timeout(after: Duration) -> Self {
        RedisFailure::new(
            RedisFailureKind::Timeout,
            format!("no reply within {after:?}"),
        )
    }

    pub(crate) fn from_redis(err: &RedisError, redactor: &Redactor) -> Self {
        RedisFailure::new(classify(err), redactor.scrub(err.to_string()))
    }

    /// While connecting nothing was sent: a broken connection there is a connect failure.
    pub(crate) fn while_connecting(mut self) -> Self {
        if self.kind == RedisFailureKind::Io {
            self.kind = RedisFailureKind::Connect;
        }
        self
    }

    /// How it failed.
    #[must_use]
    pub fn kind(&self) -> RedisFailureKind {
        self.kind
    }

    /// No reply within the operation timeout.
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        self.kind == RedisFailureKind::Timeout
    }

    /// No connection could be made: the command was certainly not run.
    #[must_use]
    pub fn is_connect(&self) -> bool {
        self.kind == RedisFailureKind::Connect
    }
}

fn classify(err: &RedisError) -> RedisFailureKind {
    if err.is_timeout() {
        return RedisFailureKind::Timeout;
    }
    if err.is_connection_refusal() {
        return RedisFailureKind::Connect;
    }
    match err.kind() {
        ErrorKind::AuthenticationFailed => RedisFailureKind::Auth,
        ErrorKind::Server(_) if matches!(err.code(), Some("NOAUTH" | "NOPERM" | "WRONGPASS")) => {
            RedisFailureKind::Auth
        }
        ErrorKind::Server(_) | ErrorKind::Extension => RedisFailureKind::Server,
        ErrorKind::ClusterConnectionNotFound => RedisFailureKind::Connect,
        ErrorKind::Io => RedisFailureKind::Io,
        ErrorKind::InvalidClientConfig => RedisFailureKind::Config,
        ErrorKind::Parse | ErrorKind::UnexpectedReturnType | ErrorKind::RESP3NotSupported => {
            RedisFailureKind::Protocol
        }
        _ => RedisFailureKind::Other,
    }
}

impl fmt::Display for RedisFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            RedisFailureKind::Timeout => "redis timed out",
            RedisFailureKind::Connect => "could not connect to redis",
            RedisFailureKind::Io => "redis connection broken",
            RedisFailureKind::Auth => "redis refused the credentials",
            RedisFailureKind::Server => "redis returned an error",
            RedisFailureKind::Config => "invalid redis configuration",
            RedisFailureKind::Protocol => "unexpected redis reply",
            RedisFailureKind::Other => "redis failure",
        };
        write!(f, "{what}: {}", self.detail)
    }
}

impl fmt::Debug for RedisFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisFailure")
            .field("kind", &self.kind)
            .field("detail", &self.detail)
            .finish()
    }
}

impl std::error::Error for RedisFailure {}

/// Removes the connection's password from text that came from the redis crate. The redis
/// crate's messages do not contain it today; this makes sure a future message cannot leak it.
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    secrets: Arc<[String]>,
}

impl Redactor {
    pub(crate) fn new(passwords: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<String> = passwords.into_iter().filter(|p| !p.is_empty()).collect();
        // Longest first, so that a password containing another one is removed whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor {
            secrets: secrets.into(),
        }
    }

    pub(crate) fn scrub(&self, mut text: String) -> String {
        for secret in self.secrets.iter() {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), "[redacted]");
            }
        }
        text
    }
}

pub(crate) fn store_error(op: StoreOp, failure: RedisFailure) -> StoreError {
    tracing::debug!(op = %op, kind = ?failure.kind, "redis token store operation failed");
    StoreError::new(op, failure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redactor_removes_every_password_occurrence() {
        let r = Redactor::new(["p@ss".to_owned(), "p@ss%40".to_owned(), String::new()]);
        assert_eq!(
            r.scrub("auth p@ss%40 and p@ss failed".to_owned()),
            "auth [redacted] and [redacted] failed"
        );
        assert_eq!(r.scrub("nothing here".to_owned()), "nothing here");
    }

    #[test]
    fn redis_errors_are_classified() {
        let r = Redactor::default();
        let refused: RedisError =
            std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into();
        assert_eq!(
            RedisFailure::from_redis(&refused, &r).kind(),
            RedisFailureKind::Connect
        );
        let timed_out: RedisError = std::io::Error::from(std::io::ErrorKind::TimedOut).into();
        assert!(RedisFailure::from_redis(&timed_out, &r).is_timeout());
        let reset: RedisError = std::io::Error::from(std::io::ErrorKind::ConnectionReset).into();
        assert_eq!(
            RedisFailure::from_redis(&reset, &r).kind(),
            RedisFailureKind::Io
        );
        let auth: RedisError = (
            ErrorKind::AuthenticationFailed,
            "Password authentication failed",
        )
            .into();
        assert_eq!(
            RedisFailure::from_redis(&auth, &r).kind(),
            RedisFailureKind::Auth
        );
        let config: RedisError = (ErrorKind::InvalidClientConfig, "Redis URL did not parse").into();
        assert_eq!(
            RedisFailure::from_redis(&config, &r).to_string(),
            "invalid redis configuration: Redis URL did not parse - InvalidClientConfig"
        );
    }
}
