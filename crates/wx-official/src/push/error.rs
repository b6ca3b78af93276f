//! Why a push was refused, each reason with its HTTP status.

use http::StatusCode;
use wx_core::crypto::CryptoError;

/// Why a push (or the GET handshake) was refused. Each variant knows the HTTP status to answer
/// with ([`status`](Self::status)); no variant carries the body, a signature or key material.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// A query parameter the request needs is absent or empty (`signature`, `timestamp`,
    /// `nonce`, `echostr`, `msg_signature`).
    #[error("missing query parameter `{0}`")]
    MissingParameter(&'static str),
    /// `timestamp` is not a Unix time in digits or `nonce` is not a short alphanumeric string.
    #[error("timestamp or nonce is malformed")]
    MalformedQuery,
    /// The timestamp is outside the configured replay window.
    #[error("timestamp is outside the replay window")]
    Stale,
    /// `signature` or `msg_signature` does not match: not from WeChat, or another Token.
    #[error("signature does not match")]
    SignatureMismatch,
    /// The body is larger than [`MAX_BODY_LEN`](super::MAX_BODY_LEN).
    #[error("push body is too large")]
    BodyTooLarge,
    /// The body carries a DTD or an entity other than XML's five and character references
    /// (XXE is refused, never resolved).
    #[error("XML with a DTD or entity is refused")]
    DtdOrEntity,
    /// The body (or the decrypted message) is not well-formed `<xml>` in UTF-8, or nests deeper
    /// than WeChat ever does.
    #[error("push body is not well-formed XML")]
    MalformedXml,
    /// A field every push has (`ToUserName`, `FromUserName`, `CreateTime`, `MsgType`) is absent.
    #[error("push has no `{0}`")]
    MissingField(&'static str),
    /// The push is encrypted but no EncodingAESKey is configured.
    #[error("encrypted push but no EncodingAESKey is configured")]
    NoAesKey,
    /// A plaintext push reached a receiver configured to require encryption (safe mode).
    #[error("plaintext push refused: encryption is required")]
    EncryptionRequired,
    /// The encrypted message could not be opened: bad base64, length or padding (a tampered
    /// ciphertext or another key), or a message for another AppID.
    #[error("encrypted push could not be opened")]
    Decrypt(#[source] CryptoError),
    /// The handshake's signature matched but `echostr` is not a value WeChat sends.
    #[error("echostr is not a value WeChat sends")]
    InvalidEchostr,
}

impl PushError {
    /// The HTTP status to answer with: 400 for a malformed request, 401 for a missing or wrong
    /// signature or a stale timestamp, 413 for an oversized body, 500 for a configuration
    /// error of ours (an encrypted push without a configured key).
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            PushError::SignatureMismatch | PushError::Stale => StatusCode::UNAUTHORIZED,
            PushError::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            PushError::NoAesKey => StatusCode::INTERNAL_SERVER_ERROR,
            PushError::Decrypt(CryptoError::AppIdMismatch) | PushError::EncryptionRequired => {
                StatusCode::FORBIDDEN
            }
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl PushError {
    /// The push error of a failed [`SignatureCheck`](crate::verify::SignatureCheck).
    pub(crate) fn from_verify(e: crate::verify::VerifyError) -> Self {
        use crate::verify::VerifyError;
        match e {
            VerifyError::MissingParameter(name) => PushError::MissingParameter(name),
            VerifyError::StaleTimestamp => PushError::Stale,
            // An empty server Token verifies nothing: refused like a wrong signature.
            VerifyError::SignatureMismatch | VerifyError::EmptyToken => {
                PushError::SignatureMismatch
            }
            _ => PushError::MalformedQuery,
        }
    }
}

impl From<CryptoError> for PushError {
    fn from(e: CryptoError) -> Self {
        match e {
            CryptoError::SignatureMismatch => PushError::SignatureMismatch,
            other => PushError::Decrypt(other),
        }
    }
}
