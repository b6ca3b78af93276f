//! The one error type of the SDK.
//!
//! Every `Display` is short; detail sits in [`std::error::Error::source`]. No error ever holds a
//! URL with its query string, a request body or a response body, so no secret can reach one.

use std::fmt;
use std::time::Duration;

use crate::errcode::{ApiErrorKind, ErrCode, RetryHint};

/// A boxed source error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The result type of the SDK.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// WeChat answered with a non-zero `errcode`.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The request did not complete (timeout, connect, io, oversized body...).
    #[error("transport error calling {endpoint}")]
    Transport {
        /// The endpoint being called (a path, never a query string).
        endpoint: &'static str,
        /// The classified transport failure.
        #[source]
        source: TransportError,
    },
    /// WeChat (or a proxy in front of it) answered with an HTTP status other than 2xx.
    #[error("unexpected HTTP status {status} from {endpoint}")]
    HttpStatus {
        /// The endpoint being called.
        endpoint: &'static str,
        /// The status received.
        status: http::StatusCode,
    },
    /// The response body could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The token store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An argument was rejected before any request was sent.
    #[error(transparent)]
    InvalidInput(#[from] InvalidInput),
    /// The client refused to send a request, to protect a quota or respect a WeChat limit.
    #[error(transparent)]
    Refused(#[from] Refused),
    /// The call did not finish within the client's deadline.
    #[error("{operation} did not finish within {deadline:?}")]
    Deadline {
        /// What was being done.
        operation: &'static str,
        /// The deadline that passed.
        deadline: Duration,
    },
}

/// Whether a failed request reached WeChat: what a caller must know before repeating a request
/// that is not idempotent (a customer-service message sent twice reaches the user twice).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Delivery {
    /// Nothing reached WeChat: the input was refused, the client refused to send, the store
    /// failed before the request, or no connection could be made. Repeating is safe.
    NotSent,
    /// The request may have reached WeChat and had its effect: it timed out, the connection
    /// broke after it was written, the deadline passed, or a gateway answered 5xx. Repeat only
    /// what WeChat deduplicates (a template send with the same `client_msg_id`).
    MaybeSent,
    /// WeChat answered: an `errcode`, a non-5xx status, or a body that did not decode. Whether
    /// it had an effect is what the answer says (a `-1` busy or `45011` rate limit had none).
    Answered,
}

impl Error {
    /// Whether the request reached WeChat (see [`Delivery`]).
    ///
    /// ```
    /// use wx_core::{Delivery, Error, TransportError, TransportErrorKind};
    /// let timeout = Error::transport_at("x", TransportError::new(TransportErrorKind::Timeout, "slow"));
    /// assert_eq!(timeout.delivery(), Delivery::MaybeSent);
    /// let refused = Error::transport_at("x", TransportError::new(TransportErrorKind::Connect, "no"));
    /// assert_eq!(refused.delivery(), Delivery::NotSent);
    /// ```
    #[must_use]
    pub fn delivery(&self) -> Delivery {
        match self {
            Error::Api(_) | Error::Decode(_) => Delivery::Answered,
            Error::HttpStatus { status, .. } if status.is_server_error() => Delivery::MaybeSent,
            Error::HttpStatus { .. } => Delivery::Answered,
            Error::Transport { source, .. } => match source.kind() {
                TransportErrorKind::Connect => Delivery::NotSent,
                TransportErrorKind::BodyTooLarge => Delivery::Answered,
                _ => Delivery::MaybeSent,
            },
            Error::Deadline { .. } => Delivery::MaybeSent,
            Error::Store(_) | Error::InvalidInput(_) | Error::Refused(_) => Delivery::NotSent,
        }
    }

    /// What a client should do about this error.
    #[must_use]
    pub fn retry_hint(&self) -> RetryHint {
        match self {
            Error::Api(e) => e.code.retry_hint(),
            Error::Transport { source, .. } => source.retry_hint(),
            Error::HttpStatus { status, .. } => {
                if status.is_server_error() || *status == http::StatusCode::TOO_MANY_REQUESTS {
                    RetryHint::Backoff
                } else {
                    RetryHint::Never
                }
            }
            Error::Deadline { .. } => RetryHint::Backoff,
            Error::Decode(_) | Error::Store(_) | Error::InvalidInput(_) | Error::Refused(_) => {
                RetryHint::Never
            }
        }
    }

    /// The WeChat error, if this is one.
    #[must_use]
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(e) => Some(e),
            _ => None,
        }
    }

    /// The classification of a WeChat error, if this is one.
    #[must_use]
    pub fn api_kind(&self) -> Option<ApiErrorKind> {
        self.api().map(ApiError::kind)
    }

    /// The OAuth code is used, expired or invalid (40029, 40163, 42003): restart the login.
    #[must_use]
    pub fn is_login_restart_required(&self) -> bool {
        self.api_kind() == Some(ApiErrorKind::LoginRestartRequired)
    }

    /// The refresh token is invalid or expired (40030, 42002): the user must authorize again.
    #[must_use]
    pub fn is_reauthorization_required(&self) -> bool {
        self.api_kind() == Some(ApiErrorKind::ReauthorizationRequired)
    }

    /// The token lacks the scope for this call (48001): use `snsapi_userinfo`.
    #[must_use]
    pub fn is_scope_missing(&self) -> bool {
        self.api_kind() == Some(ApiErrorKind::ScopeMissing)
    }

    /// The transport error, if this is one.
    #[must_use]
    pub fn transport(&self) -> Option<&TransportError> {
        match self {
            Error::Transport { source, .. } => Some(source),
            _ => None,
        }
    }

    /// Wraps a transport error with the endpoint it happened on.
    #[must_use]
    pub fn transport_at(endpoint: &'static str, source: TransportError) -> Self {
        Error::Transport { endpoint, source }
    }
}

/// A non-zero `errcode` answer from WeChat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The endpoint that answered (a path such as `sns/userinfo`).
    pub endpoint: &'static str,
    /// The `errcode`.
    pub code: ErrCode,
    /// The `errmsg`, without its request-id suffix.
    pub message: String,
    /// The request id WeChat appends to `errmsg` (` rid: ...`), for support tickets.
    pub request_id: Option<String>,
}

impl ApiError {
    /// Builds an error from an `errcode` and a raw `errmsg`, splitting off the request id.
    #[must_use]
    pub fn new(endpoint: &'static str, code: ErrCode, errmsg: &str) -> Self {
        let (message, request_id) = split_request_id(errmsg);
        ApiError {
            endpoint,
            code,
            message: message.to_owned(),
            request_id,
        }
    }

    /// What the code means for the caller.
    #[must_use]
    pub fn kind(&self) -> ApiErrorKind {
        self.code.kind()
    }

    /// What a client should do about it.
    #[must_use]
    pub fn retry_hint(&self) -> RetryHint {
        self.code.retry_hint()
    }

    /// The field WeChat named in a `47003` "argument invalid" answer: `data.thing1.value` from
    /// `argument invalid! data.thing1.value invalid`. `None` for other codes or when the
    /// message names no field.
    #[must_use]
    pub fn invalid_argument(&self) -> Option<&str> {
        if self.code != ErrCode::ARGUMENT_INVALID {
            return None;
        }
        let rest = self.message.split_once('!').map_or("", |(_, r)| r);
        rest.split_whitespace()
            .next()
            .map(|f| f.trim_end_matches([',', ':', ';']))
            .filter(|f| !f.is_empty())
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WeChat error {} from {}", self.code.0, self.endpoint)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(rid) = &self.request_id {
            write!(f, " (rid {rid})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

/// Splits WeChat's request-id suffix off an `errmsg`: `"invalid openid, rid: 66d1-..."` gives
/// `("invalid openid", Some("66d1-..."))`. Older forms ` hint: [xxx]` and `, hints: [ req_id: xxx ]`
/// are recognised too.
#[must_use]
pub fn split_request_id(errmsg: &str) -> (&str, Option<String>) {
    fn trim(s: &str) -> &str {
        s.trim_end().trim_end_matches(',').trim_end()
    }
    if let Some(pos) = errmsg.rfind("rid:") {
        let before = &errmsg[..pos];
        if pos == 0 || before.ends_with(' ') || before.ends_with(',') {
            let rid = errmsg[pos + 4..].trim();
            if !rid.is_empty() {
                return (trim(before), Some(rid.to_owned()));
            }
        }
    }
    for marker in [" hints: [", " hint: ["] {
        if let Some(pos) = errmsg.rfind(marker) {
            let inner = errmsg[pos + marker.len()..]
                .trim_end()
                .trim_end_matches(']')
                .trim();
            let inner = inner.strip_prefix("req_id:").unwrap_or(inner).trim();
            if !inner.is_empty() {
                return (trim(&errmsg[..pos]), Some(inner.to_owned()));
            }
        }
    }
    (errmsg, None)
}

/// How a transport failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// The request or the response took longer than allowed.
    Timeout,
    /// No connection could be made (refused, DNS, TLS handshake).
    Connect,
    /// The connection failed mid-request (reset, closed, truncated).
    Io,
    /// The response body exceeded the configured cap; the rest was not read.
    BodyTooLarge,
    /// Anything else (a builder error, a protocol violation).
    Other,
}

/// A classified transport failure. Its source chain never contains a URL.
#[derive(Debug)]
pub struct TransportError {
    kind: TransportErrorKind,
    source: Option<BoxError>,
}

impl TransportError {
    /// A transport error of `kind` with an underlying cause. The cause must not contain the
    /// request URL (adapters strip it, e.g. reqwest's `without_url()`).
    #[must_use]
    pub fn new(kind: TransportErrorKind, source: impl Into<BoxError>) -> Self {
        TransportError {
            kind,
            source: Some(source.into()),
        }
    }

    /// A transport error of `kind` without a cause.
    #[must_use]
    pub fn from_kind(kind: TransportErrorKind) -> Self {
        TransportError { kind, source: None }
    }

    /// How it failed.
    #[must_use]
    pub fn kind(&self) -> TransportErrorKind {
        self.kind
    }

    /// A timeout.
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        self.kind == TransportErrorKind::Timeout
    }

    /// A connect failure: the request was certainly not received.
    #[must_use]
    pub fn is_connect(&self) -> bool {
        self.kind == TransportErrorKind::Connect
    }

    /// The body exceeded the cap.
    #[must_use]
    pub fn is_body_too_large(&self) -> bool {
        self.kind == TransportErrorKind::BodyTooLarge
    }

    /// What a client should do: back off on timeout, connect and io failures (the client still
    /// never retries a POST after a timeout), never otherwise.
    #[must_use]
    pub fn retry_hint(&self) -> RetryHint {
        match self.kind {
            TransportErrorKind::Timeout | TransportErrorKind::Connect | TransportErrorKind::Io => {
                RetryHint::Backoff
            }
            TransportErrorKind::BodyTooLarge | TransportErrorKind::Other => RetryHint::Never,
        }
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            TransportErrorKind::Timeout => "timed out",
            TransportErrorKind::Connect => "connection failed",
            TransportErrorKind::Io => "connection broken",
            TransportErrorKind::BodyTooLarge => "response body too large",
            TransportErrorKind::Other => "transport failure",
        })
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// A response body that could not be decoded. It names the endpoint and the JSON path, never
/// the body or a value from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// The endpoint whose response failed to decode.
    pub endpoint: &'static str,
    /// The JSON path where decoding failed (`.` for the document itself).
    pub path: String,
    /// What was wrong, without any value from the body.
    pub reason: DecodeReason,
}

/// Why a body failed to decode.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeReason {
    /// The body is empty.
    Empty,
    /// The body is not JSON (HTML from a proxy, a truncated body...), at this line and column.
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// The body ended early.
    Eof,
    /// A field is missing or has the wrong type.
    Data,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "could not decode the response of {}: ", self.endpoint)?;
        match &self.reason {
            DecodeReason::Empty => f.write_str("empty body"),
            DecodeReason::Syntax { line, column } => {
                write!(f, "not JSON (line {line}, column {column})")
            }
            DecodeReason::Eof => f.write_str("body ended early"),
            DecodeReason::Data => write!(f, "missing or mistyped field at {}", self.path),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Which store operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreOp {
    /// `get`.
    Get,
    /// `set`.
    Set,
    /// `delete`.
    Delete,
    /// `compare_and_delete`.
    CompareAndDelete,
    /// `try_acquire_lease`.
    AcquireLease,
    /// `release_lease`.
    ReleaseLease,
    /// Connecting to the backend.
    Connect,
}

impl fmt::Display for StoreOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreOp::Get => "get",
            StoreOp::Set => "set",
            StoreOp::Delete => "delete",
            StoreOp::CompareAndDelete => "compare-and-delete",
            StoreOp::AcquireLease => "acquire-lease",
            StoreOp::ReleaseLease => "release-lease",
            StoreOp::Connect => "connect",
        })
    }
}

/// A token-store failure, naming the operation. The source must not contain a password.
#[derive(Debug)]
pub struct StoreError {
    op: StoreOp,
    source: Option<BoxError>,
}

impl StoreError {
    /// A failure of `op` caused by `source`.
    #[must_use]
    pub fn new(op: StoreOp, source: impl Into<BoxError>) -> Self {
        StoreError {
            op,
            source: Some(source.into()),
        }
    }

    /// A failure of `op` without a cause.
    #[must_use]
    pub fn from_op(op: StoreOp) -> Self {
        StoreError { op, source: None }
    }

    /// The operation that failed.
    #[must_use]
    pub fn op(&self) -> StoreOp {
        self.op
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "token store {} failed", self.op)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// An argument rejected before any request was sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidInput {
    /// The argument's name (`"code"`, `"redirect_uri"`...).
    pub argument: &'static str,
    /// Why it was rejected (never the value itself: it may be a secret).
    pub reason: &'static str,
}

impl InvalidInput {
    /// Rejects `argument` for `reason`.
    #[must_use]
    pub fn new(argument: &'static str, reason: &'static str) -> Self {
        InvalidInput { argument, reason }
    }
}

impl fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid argument `{}`: {}", self.argument, self.reason)
    }
}

impl std::error::Error for InvalidInput {}

/// Checks the common rules for a string argument: not empty, at most `max_len` bytes, no
/// control characters.
///
/// # Errors
/// [`InvalidInput`] naming `argument`.
pub fn check_arg(argument: &'static str, value: &str, max_len: usize) -> Result<(), InvalidInput> {
    if value.is_empty() {
        return Err(InvalidInput::new(argument, "must not be empty"));
    }
    if value.len() > max_len {
        return Err(InvalidInput::new(argument, "too long"));
    }
    // One pass over the bytes, a fold without early exit that the compiler vectorises: C0
    // controls and DEL, and whether any byte is not ASCII. Only text that is not ASCII (every
    // token, id and URL WeChat issues is) needs the char walk, for the C1 controls.
    let (control, non_ascii) = value
        .bytes()
        .fold((false, false), |(control, non_ascii), b| {
            (control | (b < 0x20) | (b == 0x7f), non_ascii | (b >= 0x80))
        });
    let control = if non_ascii {
        value.chars().any(char::is_control)
    } else {
        control
    };
    if control {
        return Err(InvalidInput::new(
            argument,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// A request the client refused to send.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Refused {
    /// A token fetch failed with a credential-class error; fetches are refused until the
    /// cooldown ends so that a misconfigured fleet cannot burn the daily quota.
    #[error("token fetch refused for {remaining:?} after: {cause}")]
    TokenFetchCooldown {
        /// The error that started the cooldown.
        cause: ApiError,
        /// Time left in the cooldown.
        remaining: Duration,
    },
    /// `force_refresh` of the stable token was called again within WeChat's 30 s spacing.
    #[error(
        "stable token force refresh refused: the last one was less than 30 s ago (retry in {retry_in:?})"
    )]
    ForceRefreshTooSoon {
        /// When a force refresh will be allowed again.
        retry_in: Duration,
    },
    /// `force_refresh` of the stable token reached WeChat's 20-a-day limit.
    #[error("stable token force refresh refused: the daily limit of {limit} is used up")]
    ForceRefreshDailyLimit {
        /// The limit.
        limit: u32,
    },
    /// The client is read-only (consumer mode) and the shared store holds no usable token.
    #[error("no {kind} in the shared store and this client does not fetch tokens")]
    ConsumerStoreEmpty {
        /// The token kind that was missing.
        kind: &'static str,
    },
    /// Another process holds the refresh lease and no token appeared before the wait ended.
    #[error("gave up waiting for another process to refresh the {kind}")]
    LeaseWaitTimedOut {
        /// The token kind being refreshed.
        kind: &'static str,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_says_whether_the_request_left() {
        let t = |k| Error::transport_at("x", TransportError::new(k, "cause"));
        let status = |s: u16| Error::HttpStatus {
            endpoint: "x",
            status: http::StatusCode::from_u16(s).expect("valid"),
        };
        let cases = [
            (t(TransportErrorKind::Connect), Delivery::NotSent),
            (t(TransportErrorKind::Timeout), Delivery::MaybeSent),
            (t(TransportErrorKind::Io), Delivery::MaybeSent),
            (t(TransportErrorKind::Other), Delivery::MaybeSent),
            (t(TransportErrorKind::BodyTooLarge), Delivery::Answered),
            (status(502), Delivery::MaybeSent),
            (status(404), Delivery::Answered),
            (
                Error::Api(ApiError::new("x", ErrCode(43004), "require subscribe")),
                Delivery::Answered,
            ),
            (
                Error::InvalidInput(InvalidInput::new("openid", "empty")),
                Delivery::NotSent,
            ),
            (
                Error::Deadline {
                    operation: "x",
                    deadline: Duration::from_secs(1),
                },
                Delivery::MaybeSent,
            ),
        ];
        for (e, want) in cases {
            assert_eq!(e.delivery(), want, "{e:?}");
        }
    }

    #[test]
    fn request_id_is_split_off() {
        assert_eq!(
            split_request_id("invalid openid, rid: 66d19aa4-5ad5f5c0-0f9d4b0c"),
            (
                "invalid openid",
                Some("66d19aa4-5ad5f5c0-0f9d4b0c".to_owned())
            )
        );
        assert_eq!(
            split_request_id(
                "invalid credential, access_token is invalid or not latest rid: 61250a39-612fed42-36740516"
            ),
            (
                "invalid credential, access_token is invalid or not latest",
                Some("61250a39-612fed42-36740516".to_owned())
            )
        );
        assert_eq!(
            split_request_id("invalid code, hints: [ req_id: abc123 ]"),
            ("invalid code", Some("abc123".to_owned()))
        );
        assert_eq!(
            split_request_id("invalid code hint: [xyz]"),
            ("invalid code", Some("xyz".to_owned()))
        );
        assert_eq!(split_request_id("ok"), ("ok", None));
        assert_eq!(split_request_id("grid:1"), ("grid:1", None));
        assert_eq!(split_request_id(""), ("", None));
    }

    #[test]
    fn error_retry_hints() {
        let api = Error::Api(ApiError::new(
            "sns/userinfo",
            ErrCode(42001),
            "access_token expired",
        ));
        assert_eq!(api.retry_hint(), RetryHint::RefreshToken);
        let t = Error::transport_at(
            "cgi-bin/token",
            TransportError::from_kind(TransportErrorKind::Timeout),
        );
        assert_eq!(t.retry_hint(), RetryHint::Backoff);
        let big = Error::transport_at(
            "x",
            TransportError::from_kind(TransportErrorKind::BodyTooLarge),
        );
        assert_eq!(big.retry_hint(), RetryHint::Never);
        let s500 = Error::HttpStatus {
            endpoint: "x",
            status: http::StatusCode::BAD_GATEWAY,
        };
        assert_eq!(s500.retry_hint(), RetryHint::Backoff);
        let s404 = Error::HttpStatus {
            endpoint: "x",
            status: http::StatusCode::NOT_FOUND,
        };
        assert_eq!(s404.retry_hint(), RetryHint::Never);
        let bad = Error::InvalidInput(InvalidInput::new("code", "must not be empty"));
        assert_eq!(bad.retry_hint(), RetryHint::Never);
        assert_eq!(
            bad.to_string(),
            "invalid argument `code`: must not be empty"
        );
    }

    #[test]
    fn api_error_display_keeps_rid_apart() {
        let e = ApiError::new("sns/auth", ErrCode(40003), "invalid openid, rid: r-1");
        assert_eq!(e.message, "invalid openid");
        assert_eq!(e.request_id.as_deref(), Some("r-1"));
        assert_eq!(
            e.to_string(),
            "WeChat error 40003 from sns/auth: invalid openid (rid r-1)"
        );
    }

    #[test]
    fn invalid_argument_names_the_field() {
        let e = ApiError::new(
            "cgi-bin/message/subscribe/bizsend",
            ErrCode::ARGUMENT_INVALID,
            "argument invalid! data.thing1.value invalid rid: 6613a1b2-4c5d6e7f-12345678",
        );
        assert_eq!(e.invalid_argument(), Some("data.thing1.value"));
        assert_eq!(e.request_id.as_deref(), Some("6613a1b2-4c5d6e7f-12345678"));
        let bare = ApiError::new("x", ErrCode::ARGUMENT_INVALID, "argument invalid!");
        assert_eq!(bare.invalid_argument(), None);
        let other = ApiError::new("x", ErrCode(40003), "argument invalid! touser invalid");
        assert_eq!(other.invalid_argument(), None);
    }

    #[test]
    fn check_arg_rules() {
        assert!(check_arg("code", "abc", 10).is_ok());
        assert_eq!(
            check_arg("code", "", 10).unwrap_err().reason,
            "must not be empty"
        );
        assert_eq!(
            check_arg("code", "abcdefghijk", 10).unwrap_err().reason,
            "too long"
        );
        assert_eq!(check_arg("code", "a\nb", 10).unwrap_err().argument, "code");
    }

    /// The one-pass check agrees with `char::is_control` for every ASCII byte at every place
    /// around the vectorised blocks, and for text that is not ASCII (C1 controls included).
    #[test]
    fn check_arg_finds_every_control_character() {
        for c in (0u8..=127)
            .map(char::from)
            .chain(['é', '中', '\u{85}', '\u{9f}', '\u{a0}'])
        {
            for len in [1usize, 15, 16, 17, 33, 64] {
                for at in [0, len / 2, len - 1] {
                    let value: String = (0..len).map(|i| if i == at { c } else { 'a' }).collect();
                    let refused = check_arg("v", &value, 1_000).is_err();
                    assert_eq!(refused, c.is_control(), "{c:?} at {at} of {len}");
                }
            }
        }
    }
}
