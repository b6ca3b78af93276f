//! Server URL verification (消息推送 接入) and push-message signatures.
//!
//! When a server URL is configured, WeChat sends
//! `GET <url>?signature=..&timestamp=..&nonce=..&echostr=..`. The server proves it knows the
//! configured Token by checking `signature = hex_lower(sha1(sort([token, timestamp, nonce]).join()))`
//! (strings sorted bytewise) and answering the raw `echostr`. Later message POSTs carry the same
//! `signature`; in safe mode they also carry `msg_signature`, the same hash over four strings
//! including the `Encrypt` element.
//!
//! The Token here is the one typed into the console for the server URL; it is unrelated to the
//! access token. All comparisons are constant-time.
//!
//! # Checked or bare
//!
//! The signature covers only the Token, `timestamp` and `nonce`: a signed URL taken from an
//! access log stays valid forever, and digits can move between `timestamp` and `nonce` without
//! changing it (`1714036504`/`1514711492` and `4`/`1514711492171403650` sort and concatenate to
//! the same string). [`SignatureCheck`] is the checked entry point: `timestamp` must be decimal
//! digits within a skew window of the clock ([`DEFAULT_MAX_SKEW`]), `nonce` decimal digits of at
//! most [`MAX_NONCE_LEN`], then the signature is compared. The bare functions
//! ([`verify_server_signature`], [`verify_echo`]...) check the signature alone.
//!
//! In plaintext mode **the body of a message POST is not authenticated by `signature`**: anyone
//! who saw one signed URL can post any XML with it within the skew window. Use safe mode, whose
//! `msg_signature` covers the encrypted body ([`SignatureCheck::check_msg`]), when the content of
//! a push matters.
//!
//! ```
//! use wx_official::verify::{ServerVerifyQuery, verify_echo};
//!
//! // The query string of WeChat's GET request to the configured URL.
//! let query = "signature=f464b24fc39322e44b38aa78f5edd27bd1441696\
//!              &echostr=4375120948345356249&timestamp=1714036504&nonce=1514711492";
//! let parsed = ServerVerifyQuery::from_query(query)?;
//! // Answer with this body, as text/plain.
//! assert_eq!(verify_echo("AAAAA", &parsed)?, "4375120948345356249");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::time::{Duration, UNIX_EPOCH};

use subtle::ConstantTimeEq;
use wx_core::SharedClock;
use wx_core::crypto::ServerToken;

/// The default skew window of [`SignatureCheck`]: how far a request's `timestamp` may be from
/// the server's clock, either way (5 minutes). WeChat stamps each attempt of a push afresh.
pub const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(300);

/// The most digits of a `timestamp` accepted by [`SignatureCheck`] (Unix seconds take 10 until
/// the year 2286).
pub const MAX_TIMESTAMP_LEN: usize = 11;

/// The most digits of a `nonce` accepted by [`SignatureCheck`]: WeChat's nonces are decimal
/// 32-bit numbers (`1514711492`, `486452656` in its samples), at most 10 digits.
pub const MAX_NONCE_LEN: usize = 10;

/// The checked entry point for WeChat's server signatures: the shape of `timestamp` and `nonce`,
/// the timestamp within a skew window of the clock, then the signature (constant time). See the
/// [module docs](self#checked-or-bare).
///
/// ```
/// use std::sync::Arc;
/// use std::time::{Duration, UNIX_EPOCH};
/// use wx_core::ManualClock;
/// use wx_core::crypto::ServerToken;
/// use wx_official::verify::{SignatureCheck, VerifyError};
///
/// let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_714_036_510));
/// let check = SignatureCheck::new(ServerToken::new("AAAAA"), Arc::new(clock.clone()));
/// let signature = "f464b24fc39322e44b38aa78f5edd27bd1441696";
/// check.check("1714036504", "1514711492", signature)?;
/// // The same signature with digits moved from the timestamp to the nonce: refused.
/// assert!(check.check("4", "1514711492171403650", signature).is_err());
/// // The same request an hour later (from an access log): refused.
/// clock.advance(Duration::from_secs(3600));
/// assert_eq!(
///     check.check("1714036504", "1514711492", signature),
///     Err(VerifyError::StaleTimestamp)
/// );
/// # Ok::<(), VerifyError>(())
/// ```
#[derive(Clone, Debug)]
pub struct SignatureCheck {
    token: ServerToken,
    clock: SharedClock,
    max_skew: Duration,
}

impl SignatureCheck {
    /// A check with the server `token`, reading time from `clock`, with the
    /// [`DEFAULT_MAX_SKEW`] window.
    #[must_use]
    pub fn new(token: ServerToken, clock: SharedClock) -> Self {
        SignatureCheck {
            token,
            clock,
            max_skew: DEFAULT_MAX_SKEW,
        }
    }

    /// Sets the skew window (any value; a longer one lets a captured request be replayed for
    /// longer).
    #[must_use]
    pub fn with_max_skew(mut self, max_skew: Duration) -> Self {
        self.max_skew = max_skew;
        self
    }

    /// The server token.
    #[must_use]
    pub fn token(&self) -> &ServerToken {
        &self.token
    }

    /// Checks `timestamp` and `nonce` alone (for a caller that checks the signature another way,
    /// such as opening a safe-mode message): `timestamp` is 1 to [`MAX_TIMESTAMP_LEN`] decimal
    /// digits without a leading zero and within the skew window of the clock, `nonce` 1 to
    /// [`MAX_NONCE_LEN`] decimal digits. Returns the timestamp in Unix seconds.
    ///
    /// # Errors
    /// [`VerifyError::MissingParameter`] for an empty value, [`VerifyError::MalformedTimestamp`],
    /// [`VerifyError::MalformedNonce`], [`VerifyError::StaleTimestamp`].
    pub fn check_fresh(&self, timestamp: &str, nonce: &str) -> Result<u64, VerifyError> {
        if timestamp.is_empty() {
            return Err(VerifyError::MissingParameter("timestamp"));
        }
        if nonce.is_empty() {
            return Err(VerifyError::MissingParameter("nonce"));
        }
        let canonical = timestamp.len() <= MAX_TIMESTAMP_LEN
            && timestamp.bytes().all(|b| b.is_ascii_digit())
            && (timestamp == "0" || !timestamp.starts_with('0'));
        let ts: u64 = canonical
            .then(|| timestamp.parse().ok())
            .flatten()
            .ok_or(VerifyError::MalformedTimestamp)?;
        if nonce.len() > MAX_NONCE_LEN || !nonce.bytes().all(|b| b.is_ascii_digit()) {
            return Err(VerifyError::MalformedNonce);
        }
        let now = self
            .clock
            .now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if now.abs_diff(ts) > self.max_skew.as_secs() {
            return Err(VerifyError::StaleTimestamp);
        }
        Ok(ts)
    }

    /// Checks a plaintext-mode `signature` (URL verification, message POSTs): [`check_fresh`],
    /// then the signature over the Token, `timestamp` and `nonce`. It does not cover a POST's
    /// body.
    ///
    /// # Errors
    /// [`VerifyError::EmptyToken`], the errors of [`check_fresh`], then
    /// [`VerifyError::MissingParameter`] (`signature`) or [`VerifyError::SignatureMismatch`].
    ///
    /// [`check_fresh`]: Self::check_fresh
    pub fn check(&self, timestamp: &str, nonce: &str, signature: &str) -> Result<(), VerifyError> {
        self.check_parts(timestamp, nonce, None, signature)
    }

    /// Checks a safe-mode `msg_signature` over the Token, `timestamp`, `nonce` and the message's
    /// `Encrypt` value, after [`check_fresh`](Self::check_fresh).
    ///
    /// # Errors
    /// As [`check`](Self::check), naming `msg_signature` when it is empty.
    pub fn check_msg(
        &self,
        timestamp: &str,
        nonce: &str,
        encrypt: &str,
        msg_signature: &str,
    ) -> Result<(), VerifyError> {
        self.check_parts(timestamp, nonce, Some(encrypt), msg_signature)
    }

    /// [`verify_echo`] with the checks of [`check`](Self::check).
    ///
    /// # Errors
    /// As [`check`](Self::check), then [`VerifyError::MissingParameter`] (`echostr`) or
    /// [`VerifyError::InvalidEchostr`].
    pub fn echo<'q>(&self, query: &'q ServerVerifyQuery) -> Result<&'q str, VerifyError> {
        self.check(&query.timestamp, &query.nonce, &query.signature)?;
        verify_echo(self.token.secret(), query)
    }

    fn check_parts(
        &self,
        timestamp: &str,
        nonce: &str,
        encrypt: Option<&str>,
        signature: &str,
    ) -> Result<(), VerifyError> {
        if self.token.is_empty() {
            return Err(VerifyError::EmptyToken);
        }
        self.check_fresh(timestamp, nonce)?;
        let (name, expected) = match encrypt {
            None => (
                "signature",
                wx_core::crypto::server_signature(&self.token, timestamp, nonce),
            ),
            Some(encrypt) => (
                "msg_signature",
                wx_core::crypto::msg_signature(&self.token, timestamp, nonce, encrypt),
            ),
        };
        if signature.is_empty() {
            return Err(VerifyError::MissingParameter(name));
        }
        if wx_core::crypto::signature_matches(&self.token, &expected, signature) {
            Ok(())
        } else {
            Err(VerifyError::SignatureMismatch)
        }
    }
}

/// Longest `echostr` accepted by [`verify_echo`].
pub const MAX_ECHOSTR_LEN: usize = 256;

/// The signature WeChat computes for a server request: lowercase hex SHA-1 of `token`,
/// `timestamp` and `nonce` sorted bytewise and concatenated.
#[must_use]
pub fn server_signature(token: &str, timestamp: &str, nonce: &str) -> String {
    sorted_sha1_hex(&mut [token, timestamp, nonce])
}

/// Whether `signature` is WeChat's signature over `token`, `timestamp` and `nonce`
/// (constant-time comparison; hex case is ignored).
///
/// Bare: no check of the timestamp or of the shape of the values (see the
/// [module docs](self#checked-or-bare)); a server should use [`SignatureCheck::check`].
///
/// Always `false` when `token` is empty: an empty Token would let anyone compute the signature.
#[must_use]
pub fn verify_server_signature(token: &str, timestamp: &str, nonce: &str, signature: &str) -> bool {
    !token.is_empty() && hex_ct_eq(&server_signature(token, timestamp, nonce), signature)
}

/// The safe-mode message signature (`msg_signature`): lowercase hex SHA-1 of `token`,
/// `timestamp`, `nonce` and the message's `Encrypt` value, sorted bytewise and concatenated.
#[must_use]
pub fn msg_signature(token: &str, timestamp: &str, nonce: &str, encrypt: &str) -> String {
    sorted_sha1_hex(&mut [token, timestamp, nonce, encrypt])
}

/// Whether `signature` is the safe-mode `msg_signature` of `encrypt` (constant-time comparison;
/// hex case is ignored). Always `false` when `token` is empty.
#[must_use]
pub fn verify_msg_signature(
    token: &str,
    timestamp: &str,
    nonce: &str,
    encrypt: &str,
    signature: &str,
) -> bool {
    !token.is_empty() && hex_ct_eq(&msg_signature(token, timestamp, nonce, encrypt), signature)
}

/// The query parameters of WeChat's server URL verification request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerVerifyQuery {
    /// `signature`: hex SHA-1 over the Token, `timestamp` and `nonce`.
    pub signature: String,
    /// `timestamp` (Unix seconds, as sent).
    pub timestamp: String,
    /// `nonce` (as sent).
    pub nonce: String,
    /// `echostr`: the value to send back when the signature is valid.
    pub echostr: String,
}

impl ServerVerifyQuery {
    /// Builds the query from its four values (for frameworks that already parsed the query).
    #[must_use]
    pub fn new(
        signature: impl Into<String>,
        timestamp: impl Into<String>,
        nonce: impl Into<String>,
        echostr: impl Into<String>,
    ) -> Self {
        ServerVerifyQuery {
            signature: signature.into(),
            timestamp: timestamp.into(),
            nonce: nonce.into(),
            echostr: echostr.into(),
        }
    }

    /// Parses a raw query string (`signature=..&timestamp=..&nonce=..&echostr=..`, with or without
    /// a leading `?`; percent-escapes decoded; other parameters ignored; the first occurrence of a
    /// repeated parameter wins).
    ///
    /// # Errors
    /// [`VerifyError::MissingParameter`] naming the first of `signature`, `timestamp`, `nonce`,
    /// `echostr` that is absent or empty.
    pub fn from_query(query: &str) -> Result<Self, VerifyError> {
        let pairs = wx_core::urlenc::parse_query(query.strip_prefix('?').unwrap_or(query));
        let get = |name: &'static str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty())
                .ok_or(VerifyError::MissingParameter(name))
        };
        Ok(ServerVerifyQuery {
            signature: get("signature")?,
            timestamp: get("timestamp")?,
            nonce: get("nonce")?,
            echostr: get("echostr")?,
        })
    }
}

/// Checks a server URL verification request and returns the `echostr` to answer with.
///
/// Bare: the timestamp is not checked; [`SignatureCheck::echo`] adds the checks.
///
/// Send the returned string as the whole response body (`text/plain`, not JSON, not quoted).
///
/// # Errors
/// - [`VerifyError::EmptyToken`]: `token` is empty (a configuration error);
/// - [`VerifyError::MissingParameter`]: a parameter is empty;
/// - [`VerifyError::SignatureMismatch`]: the signature is not WeChat's for this Token;
/// - [`VerifyError::InvalidEchostr`]: the signature is valid but `echostr` is longer than
///   [`MAX_ECHOSTR_LEN`] or has a character outside `[A-Za-z0-9+/=_.-]`. The signature does not
///   cover `echostr`, so anyone who saw one valid request could replay it with content of their
///   choosing; WeChat's echostr is digits, so nothing else is reflected.
pub fn verify_echo<'q>(token: &str, query: &'q ServerVerifyQuery) -> Result<&'q str, VerifyError> {
    if token.is_empty() {
        return Err(VerifyError::EmptyToken);
    }
    for (name, value) in [
        ("signature", &query.signature),
        ("timestamp", &query.timestamp),
        ("nonce", &query.nonce),
        ("echostr", &query.echostr),
    ] {
        if value.is_empty() {
            return Err(VerifyError::MissingParameter(name));
        }
    }
    if !verify_server_signature(token, &query.timestamp, &query.nonce, &query.signature) {
        return Err(VerifyError::SignatureMismatch);
    }
    let echostr = query.echostr.as_str();
    let safe =
        |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'_' | b'.' | b'-');
    if echostr.len() > MAX_ECHOSTR_LEN || !echostr.bytes().all(safe) {
        return Err(VerifyError::InvalidEchostr);
    }
    Ok(echostr)
}

/// Why a server verification request was refused. Answer it with HTTP 403 (or 400 for
/// [`MissingParameter`](Self::MissingParameter), [`MalformedTimestamp`](Self::MalformedTimestamp)
/// and [`MalformedNonce`](Self::MalformedNonce)); never echo anything back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// The configured Token is empty.
    EmptyToken,
    /// A required query parameter is absent or empty.
    MissingParameter(&'static str),
    /// The signature does not match: the request is not from WeChat, or the Token differs.
    SignatureMismatch,
    /// The signature matched but `echostr` is not a value WeChat sends.
    InvalidEchostr,
    /// `timestamp` is not 1 to [`MAX_TIMESTAMP_LEN`] decimal digits without a leading zero
    /// ([`SignatureCheck`] only).
    MalformedTimestamp,
    /// `nonce` is not 1 to [`MAX_NONCE_LEN`] decimal digits ([`SignatureCheck`] only).
    MalformedNonce,
    /// `timestamp` is further from the clock than the skew window: a replayed or delayed request
    /// ([`SignatureCheck`] only).
    StaleTimestamp,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::EmptyToken => f.write_str("server verification token is empty"),
            VerifyError::MissingParameter(name) => write!(f, "missing query parameter `{name}`"),
            VerifyError::SignatureMismatch => f.write_str("signature does not match"),
            VerifyError::InvalidEchostr => f.write_str("echostr is not a value WeChat sends"),
            VerifyError::MalformedTimestamp => {
                f.write_str("timestamp is not a Unix time in digits")
            }
            VerifyError::MalformedNonce => f.write_str("nonce is not a value WeChat sends"),
            VerifyError::StaleTimestamp => f.write_str("timestamp is outside the skew window"),
        }
    }
}

impl std::error::Error for VerifyError {}

fn sorted_sha1_hex(parts: &mut [&str]) -> String {
    // Bytewise order, as PHP's sort(SORT_STRING) in the official sample; never numeric order.
    wx_core::crypto::signature(parts)
}

/// Constant-time comparison of our lowercase hex digest with a received one of any case.
fn hex_ct_eq(expected_lower: &str, received: &str) -> bool {
    if received.len() != expected_lower.len() {
        return false;
    }
    let received = received.to_ascii_lowercase();
    expected_lower.as_bytes().ct_eq(received.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jssdk::hex_lower;
    use sha1::{Digest, Sha1};

    /// wechatpy's vector, kept in the repository's fixtures.
    const WECHATPY: &str =
        include_str!("../../../tests/fixtures/vector.server_verify.wechatpy_test.json");

    fn field<'a>(v: &'a serde_json::Value, name: &str) -> &'a str {
        v[name].as_str().expect("string field in fixture")
    }

    #[test]
    fn matches_the_wechatpy_vectors() {
        let v: serde_json::Value = serde_json::from_str(WECHATPY).expect("fixture is JSON");
        let (token, ts, nonce) = (
            field(&v, "token"),
            field(&v, "timestamp"),
            field(&v, "nonce"),
        );
        assert_eq!(
            server_signature(token, ts, nonce),
            field(&v, "valid_signature")
        );
        assert!(verify_server_signature(
            token,
            ts,
            nonce,
            field(&v, "valid_signature")
        ));
        assert!(!verify_server_signature(
            token,
            ts,
            nonce,
            field(&v, "invalid_signature")
        ));
    }

    #[test]
    fn matches_the_official_vectors() {
        // wechat-api.md §9: sorted ["1514711492", "1714036504", "AAAAA"].
        assert_eq!(
            server_signature("AAAAA", "1714036504", "1514711492"),
            "f464b24fc39322e44b38aa78f5edd27bd1441696"
        );
        assert_eq!(
            server_signature("AAAAA", "1714037059", "486452656"),
            "899cf89e464efb63f54ddac96b0a0a235f53aa78"
        );
        assert!(verify_server_signature(
            "AAAAA",
            "1714037059",
            "486452656",
            "899cf89e464efb63f54ddac96b0a0a235f53aa78"
        ));
    }

    #[test]
    fn sorting_is_bytewise_not_numeric() {
        // Numerically 486452656 < 1714037059, bytewise "1714037059" < "486452656": the vector
        // only matches with bytewise order.
        let bytewise = hex_lower(&Sha1::digest(b"1714037059486452656AAAAA"));
        let numeric = hex_lower(&Sha1::digest(b"4864526561714037059AAAAA"));
        assert_eq!(
            server_signature("AAAAA", "1714037059", "486452656"),
            bytewise
        );
        assert_ne!(bytewise, numeric);
        // The order of the arguments does not matter, only their values.
        assert_eq!(
            server_signature("486452656", "AAAAA", "1714037059"),
            bytewise
        );
    }

    #[test]
    fn rejects_wrong_signatures_and_empty_token() {
        let good = "f464b24fc39322e44b38aa78f5edd27bd1441696";
        let (ts, nonce) = ("1714036504", "1514711492");
        assert!(verify_server_signature("AAAAA", ts, nonce, good));
        assert!(verify_server_signature(
            "AAAAA",
            ts,
            nonce,
            &good.to_ascii_uppercase()
        ));
        assert!(!verify_server_signature("AAAAB", ts, nonce, good));
        assert!(!verify_server_signature("AAAAA", "1714036505", nonce, good));
        assert!(!verify_server_signature("AAAAA", ts, "1514711493", good));
        assert!(!verify_server_signature("AAAAA", ts, nonce, &good[..39]));
        assert!(!verify_server_signature("AAAAA", ts, nonce, ""));
        assert!(!verify_server_signature(
            "AAAAA",
            ts,
            nonce,
            &format!("{good}0")
        ));
        // Every single-character change of the signature is refused.
        for i in 0..good.len() {
            let mut bytes = good.as_bytes().to_vec();
            bytes[i] = if bytes[i] == b'0' { b'1' } else { b'0' };
            let changed = String::from_utf8(bytes).expect("ascii");
            assert!(
                !verify_server_signature("AAAAA", ts, nonce, &changed),
                "{changed}"
            );
        }
        // An empty Token never verifies, even with the signature computed for it.
        let for_empty = server_signature("", ts, nonce);
        assert!(!verify_server_signature("", ts, nonce, &for_empty));
    }

    #[test]
    fn echo_round_trip_from_a_raw_query() {
        let q = ServerVerifyQuery::from_query(
            "?signature=f464b24fc39322e44b38aa78f5edd27bd1441696&echostr=4375120948345356249\
             &timestamp=1714036504&nonce=1514711492&extra=ignored",
        )
        .expect("all parameters present");
        assert_eq!(
            q,
            ServerVerifyQuery::new(
                "f464b24fc39322e44b38aa78f5edd27bd1441696",
                "1714036504",
                "1514711492",
                "4375120948345356249"
            )
        );
        assert_eq!(verify_echo("AAAAA", &q), Ok("4375120948345356249"));
        assert_eq!(
            verify_echo("BBBBB", &q),
            Err(VerifyError::SignatureMismatch)
        );
        assert_eq!(verify_echo("", &q), Err(VerifyError::EmptyToken));
    }

    #[test]
    fn missing_parameters_are_named() {
        let full = [
            ("signature", "f464b24fc39322e44b38aa78f5edd27bd1441696"),
            ("timestamp", "1714036504"),
            ("nonce", "1514711492"),
            ("echostr", "4375120948345356249"),
        ];
        for skip in 0..full.len() {
            for empty_instead in [false, true] {
                let query: Vec<String> = full
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != skip || empty_instead)
                    .map(|(i, (k, v))| {
                        if i == skip {
                            format!("{k}=")
                        } else {
                            format!("{k}={v}")
                        }
                    })
                    .collect();
                let err = ServerVerifyQuery::from_query(&query.join("&")).expect_err("missing");
                assert_eq!(err, VerifyError::MissingParameter(full[skip].0));
            }
        }
        let mut q = ServerVerifyQuery::new("s", "t", "n", "e");
        q.nonce.clear();
        assert_eq!(
            verify_echo("AAAAA", &q),
            Err(VerifyError::MissingParameter("nonce"))
        );
    }

    #[test]
    fn echostr_is_reflected_only_when_safe() {
        let (ts, nonce) = ("1714036504", "1514711492");
        let sig = server_signature("AAAAA", ts, nonce);
        // Percent-decoded values are what is checked: %3C is '<'.
        let q = ServerVerifyQuery::from_query(&format!(
            "signature={sig}&timestamp={ts}&nonce={nonce}&echostr=%3Cscript%3E"
        ))
        .expect("parameters present");
        assert_eq!(q.echostr, "<script>");
        assert_eq!(verify_echo("AAAAA", &q), Err(VerifyError::InvalidEchostr));
        let long = ServerVerifyQuery::new(&sig, ts, nonce, "1".repeat(MAX_ECHOSTR_LEN + 1));
        assert_eq!(
            verify_echo("AAAAA", &long),
            Err(VerifyError::InvalidEchostr)
        );
        let b64 = ServerVerifyQuery::new(&sig, ts, nonce, "aB9+/=_.-");
        assert_eq!(verify_echo("AAAAA", &b64), Ok("aB9+/=_.-"));
        // A bad signature is reported as such, whatever the echostr.
        let forged = ServerVerifyQuery::new("0".repeat(40), ts, nonce, "<script>");
        assert_eq!(
            verify_echo("AAAAA", &forged),
            Err(VerifyError::SignatureMismatch)
        );
    }

    #[test]
    fn msg_signature_matches_the_official_sample() {
        // Tencent's WXBizMsgCrypt Python sample (Sample.py, "测试解密接口"), as reproduced in
        // charlesXu86/Chatbot_CN `Chatbot_Web/impl/weixin/Sample.py`; recomputed locally.
        let (token, ts, nonce) = ("spamtest", "1409735669", "1320562132");
        let encrypt = "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=";
        let expected = "5d197aaffba7e9b25a30732f161a50dee96bd5fa";
        assert_eq!(msg_signature(token, ts, nonce, encrypt), expected);
        assert!(verify_msg_signature(token, ts, nonce, encrypt, expected));
        // Any change of the encrypted body is refused.
        let changed = encrypt.replacen('h', "H", 1);
        assert!(!verify_msg_signature(token, ts, nonce, &changed, expected));
        assert!(!verify_msg_signature(
            token,
            "1409735670",
            nonce,
            encrypt,
            expected
        ));
        // The plain signature over three strings is a different value.
        assert!(!verify_server_signature(token, ts, nonce, expected));
        let for_empty = msg_signature("", ts, nonce, encrypt);
        assert!(!verify_msg_signature("", ts, nonce, encrypt, &for_empty));
    }

    fn checker_at(unix: u64) -> (SignatureCheck, wx_core::ManualClock) {
        let clock = wx_core::ManualClock::new(UNIX_EPOCH + Duration::from_secs(unix));
        let check = SignatureCheck::new(
            ServerToken::new("AAAAA"),
            std::sync::Arc::new(clock.clone()),
        );
        (check, clock)
    }

    /// Issue 19 (Low): the bare check accepts digits moved between timestamp and nonce and a
    /// URL from an access log forever; the checked entry point refuses both.
    #[test]
    fn the_checked_entry_point_refuses_shifted_digits_and_old_timestamps() {
        let good = "f464b24fc39322e44b38aa78f5edd27bd1441696";
        // The bare check: both splits verify (why the checked entry point exists).
        assert!(verify_server_signature(
            "AAAAA",
            "1714036504",
            "1514711492",
            good
        ));
        assert!(verify_server_signature(
            "AAAAA",
            "4",
            "1514711492171403650",
            good
        ));

        let (check, clock) = checker_at(1_714_036_504 + 10);
        assert_eq!(check.check("1714036504", "1514711492", good), Ok(()));
        assert_eq!(
            check.check("4", "1514711492171403650", good),
            Err(VerifyError::MalformedNonce)
        );
        // Even with a nonce of plausible length, a timestamp far from the clock is refused.
        assert_eq!(
            check.check(
                "4",
                "1514711492",
                &server_signature("AAAAA", "4", "1514711492")
            ),
            Err(VerifyError::StaleTimestamp)
        );
        // The skew window, both ways, at its edges.
        clock.advance(Duration::from_secs(290));
        assert_eq!(check.check("1714036504", "1514711492", good), Ok(()));
        clock.advance(Duration::from_secs(1));
        assert_eq!(
            check.check("1714036504", "1514711492", good),
            Err(VerifyError::StaleTimestamp)
        );
        let (early, _) = checker_at(1_714_036_504 - 300);
        assert_eq!(early.check("1714036504", "1514711492", good), Ok(()));
        let (too_early, _) = checker_at(1_714_036_504 - 301);
        assert_eq!(
            too_early.check("1714036504", "1514711492", good),
            Err(VerifyError::StaleTimestamp)
        );
        // A day later (the URL in an access log), and with a custom window.
        let (later, _) = checker_at(1_714_036_504 + 86_400);
        assert_eq!(
            later.check("1714036504", "1514711492", good),
            Err(VerifyError::StaleTimestamp)
        );
        let later = later.with_max_skew(Duration::MAX);
        assert_eq!(later.check("1714036504", "1514711492", good), Ok(()));
    }

    #[test]
    fn the_checked_entry_point_refuses_malformed_values_before_the_signature() {
        let (check, _) = checker_at(1_714_036_504);
        let good = "f464b24fc39322e44b38aa78f5edd27bd1441696";
        for ts in [
            "01714036504",
            "1714036504 ",
            "+1714036504",
            "17140365041234",
            "1e9",
            "x",
        ] {
            assert_eq!(
                check.check(ts, "1514711492", good),
                Err(VerifyError::MalformedTimestamp),
                "{ts:?}"
            );
        }
        for nonce in ["15147114921", "abc", "-1", "1514 711"] {
            assert_eq!(
                check.check("1714036504", nonce, good),
                Err(VerifyError::MalformedNonce),
                "{nonce:?}"
            );
        }
        assert_eq!(
            check.check("", "1514711492", good),
            Err(VerifyError::MissingParameter("timestamp"))
        );
        assert_eq!(
            check.check("1714036504", "", good),
            Err(VerifyError::MissingParameter("nonce"))
        );
        assert_eq!(
            check.check("1714036504", "1514711492", ""),
            Err(VerifyError::MissingParameter("signature"))
        );
        assert_eq!(
            check.check("1714036504", "1514711492", &good.replace('f', "e")),
            Err(VerifyError::SignatureMismatch)
        );
        let empty = SignatureCheck::new(
            ServerToken::new(""),
            std::sync::Arc::new(wx_core::ManualClock::starting_now()),
        );
        assert_eq!(
            empty.check("1714036504", "1514711492", good),
            Err(VerifyError::EmptyToken)
        );
        // Debug never shows the token.
        assert!(!format!("{check:?}").contains("AAAAA"));
    }

    #[test]
    fn the_checked_msg_signature_and_echo() {
        let (ts, nonce) = ("1409735669", "1320562132");
        let encrypt = "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3";
        let clock = wx_core::ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_409_735_669));
        let check = SignatureCheck::new(ServerToken::new("spamtest"), std::sync::Arc::new(clock));
        let sig = msg_signature("spamtest", ts, nonce, encrypt);
        assert_eq!(check.check_msg(ts, nonce, encrypt, &sig), Ok(()));
        assert_eq!(
            check.check_msg(ts, nonce, &encrypt.replacen('h', "H", 1), &sig),
            Err(VerifyError::SignatureMismatch)
        );
        assert_eq!(
            check.check_msg(ts, nonce, encrypt, ""),
            Err(VerifyError::MissingParameter("msg_signature"))
        );
        assert_eq!(check.check_fresh(ts, nonce), Ok(1_409_735_669));

        let (check, clock) = checker_at(1_714_036_504);
        let q = ServerVerifyQuery::new(
            "f464b24fc39322e44b38aa78f5edd27bd1441696",
            "1714036504",
            "1514711492",
            "4375120948345356249",
        );
        assert_eq!(check.echo(&q), Ok("4375120948345356249"));
        clock.advance(Duration::from_secs(301));
        assert_eq!(check.echo(&q), Err(VerifyError::StaleTimestamp));
        assert_eq!(verify_echo("AAAAA", &q), Ok("4375120948345356249"), "bare");
    }
}
