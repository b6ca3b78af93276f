//! WeChat's message crypto (消息加解密, "WXBizMsgCrypt"): the SHA-1 signatures of the server URL
//! and safe mode's AES-256-CBC envelope.
//!
//! One implementation for both directions: the push receiver of `wx-official` opens what WeChat
//! sends and seals its replies with it, and the sandbox seals its pushes and opens the replies
//! with the same code, exactly as WeChat does.
//!
//! The scheme (official Technical Plan of the message encryption):
//! - signatures: lowercase hex SHA-1 of the strings `[token, timestamp, nonce]` (plus `Encrypt`
//!   for `msg_signature`) sorted bytewise and concatenated;
//! - key: `base64_decode(EncodingAESKey + "=")`, 32 bytes. WeChat's consoles hand out keys whose
//!   last base64 symbol has non-zero trailing bits, so those bits are ignored, not refused;
//! - AES-256-CBC with IV = the key's first 16 bytes and PKCS#7 padding to a multiple of **32**
//!   bytes (pad bytes 1..=32; a 16-byte unpadder refuses about half of real messages);
//! - plaintext = 16 random bytes | message length (4 bytes, big-endian) | message | AppID, and
//!   the AppID at the end must be ours.
//!
//! ```
//! use wx_core::crypto::{EncodingAesKey, ServerToken};
//!
//! let key = EncodingAesKey::new("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")?;
//! let token = ServerToken::new("spamtest");
//! let sealed = key.seal(&token, "wx2c2769f8efd9abc2", b"<xml/>", "1409735669", "1320562132");
//! let opened = key.open(
//!     &token,
//!     "wx2c2769f8efd9abc2",
//!     &sealed.encrypt,
//!     "1409735669",
//!     "1320562132",
//!     &sealed.msg_signature,
//! )?;
//! assert_eq!(opened, b"<xml/>");
//! # Ok::<(), wx_core::crypto::CryptoError>(())
//! ```

use std::fmt;

use aes::Aes256;
use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

pub use crate::secret::ServerToken;

/// Length of an EncodingAESKey as typed into the console (base64 of 32 bytes without the `=`).
pub const ENCODING_AES_KEY_LEN: usize = 43;

/// PKCS#7 block size of WeChat's scheme (not AES's 16).
pub const PAD_BLOCK: usize = 32;

const PREFIX_LEN: usize = 16;
const HEADER_LEN: usize = PREFIX_LEN + 4;

/// Why a key could not be read or an encrypted message could not be opened. No variant carries
/// input bytes, key material or plaintext.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The EncodingAESKey is not 43 base64 characters.
    #[error("EncodingAESKey is not 43 base64 characters")]
    InvalidKey,
    /// The `msg_signature` does not match the Token, timestamp, nonce and `Encrypt`.
    #[error("message signature does not match")]
    SignatureMismatch,
    /// `Encrypt` is not base64.
    #[error("encrypted message is not base64")]
    Base64,
    /// The ciphertext is empty or not a whole number of AES blocks.
    #[error("ciphertext length is not a multiple of the block size")]
    CiphertextLength,
    /// The PKCS#7 padding is not 1..=32 bytes of the pad value (a wrong key or a tampered body).
    #[error("bad padding after decryption")]
    Padding,
    /// The length field points past the end of the decrypted payload.
    #[error("bad message length after decryption")]
    MessageLength,
    /// The AppID (receive id) at the end of the payload is not ours.
    #[error("message is for another AppID")]
    AppIdMismatch,
}

/// A decoded EncodingAESKey (32 bytes). `Debug` prints `EncodingAesKey([redacted])`; there is
/// no `Display`, no `PartialEq` and no way to read the key back.
#[derive(Clone)]
pub struct EncodingAesKey {
    key: [u8; 32],
}

impl fmt::Debug for EncodingAesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EncodingAesKey([redacted])")
    }
}

/// An encrypted message and its signature: the `Encrypt` and `msg_signature` (in a reply:
/// `MsgSignature`) values of one envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Sealed {
    /// Base64 of the ciphertext (the `Encrypt` element).
    pub encrypt: String,
    /// Lowercase hex SHA-1 over the Token, timestamp, nonce and `encrypt`.
    pub msg_signature: String,
}

impl EncodingAesKey {
    /// Decodes the 43-character EncodingAESKey from the console. Non-zero trailing bits of the
    /// last symbol are accepted, as WeChat does.
    ///
    /// # Errors
    /// [`CryptoError::InvalidKey`] when `encoding_aes_key` is not 43 standard base64 characters.
    pub fn new(encoding_aes_key: &str) -> Result<Self, CryptoError> {
        const LENIENT: GeneralPurpose = GeneralPurpose::new(
            &alphabet::STANDARD,
            GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
        );
        if encoding_aes_key.len() != ENCODING_AES_KEY_LEN {
            return Err(CryptoError::InvalidKey);
        }
        let mut padded = [0u8; ENCODING_AES_KEY_LEN + 1];
        padded[..ENCODING_AES_KEY_LEN].copy_from_slice(encoding_aes_key.as_bytes());
        padded[ENCODING_AES_KEY_LEN] = b'=';
        let mut key = [0u8; 32];
        match LENIENT.decode_slice(padded, &mut key) {
            Ok(32) => Ok(EncodingAesKey { key }),
            _ => Err(CryptoError::InvalidKey),
        }
    }

    /// Encrypts `message` for `appid` with a fresh random 16-byte prefix; returns the base64
    /// `Encrypt` value.
    #[must_use]
    pub fn encrypt(&self, message: &[u8], appid: &str) -> String {
        self.encrypt_with_prefix(&rand::random::<[u8; PREFIX_LEN]>(), message, appid)
    }

    /// Encrypts with a given prefix instead of a random one: for reproducing published vectors.
    /// Real messages use [`encrypt`](Self::encrypt); a reused prefix leaks whether two messages
    /// start alike.
    #[must_use]
    pub fn encrypt_with_prefix(&self, prefix: &[u8; 16], message: &[u8], appid: &str) -> String {
        let body_len = HEADER_LEN + message.len() + appid.len();
        // 1..=32 pad bytes: a whole block when the body is already a multiple of 32.
        let pad = PAD_BLOCK - body_len % PAD_BLOCK;
        let mut buf = Vec::with_capacity(body_len + pad);
        buf.extend_from_slice(prefix);
        // WeChat's length field is 32 bits; a longer message cannot be expressed. Pushes and
        // replies are a few KiB, so saturating keeps this total instead of panicking.
        let len = u32::try_from(message.len()).unwrap_or(u32::MAX);
        buf.extend_from_slice(&len.to_be_bytes());
        buf.extend_from_slice(message);
        buf.extend_from_slice(appid.as_bytes());
        #[allow(clippy::cast_possible_truncation)] // pad is 1..=32
        buf.resize(body_len + pad, pad as u8);
        let total = buf.len();
        let cipher = cbc::Encryptor::<Aes256>::new(&self.key.into(), self.iv().into());
        // The buffer is a whole number of blocks, so NoPadding cannot fail; fall back to an
        // empty slice rather than panic if that ever changed.
        let ciphertext = cipher
            .encrypt_padded_mut::<NoPadding>(&mut buf, total)
            .unwrap_or_default();
        STANDARD.encode(ciphertext)
    }

    /// Decrypts a base64 `Encrypt` value and returns the message, after checking the padding,
    /// the length field and that the trailing AppID is `appid`.
    ///
    /// Call it only on a value whose signature was checked ([`open`](Self::open) does both):
    /// the distinct errors would otherwise be a padding oracle.
    ///
    /// # Errors
    /// [`CryptoError::Base64`], [`CryptoError::CiphertextLength`], [`CryptoError::Padding`],
    /// [`CryptoError::MessageLength`] or [`CryptoError::AppIdMismatch`].
    pub fn decrypt(&self, encrypt: &str, appid: &str) -> Result<Vec<u8>, CryptoError> {
        let mut buf = STANDARD
            .decode(encrypt.trim())
            .map_err(|_| CryptoError::Base64)?;
        if buf.is_empty() || buf.len() % 16 != 0 {
            return Err(CryptoError::CiphertextLength);
        }
        let cipher = cbc::Decryptor::<Aes256>::new(&self.key.into(), self.iv().into());
        let plain = cipher
            .decrypt_padded_mut::<NoPadding>(&mut buf)
            .map_err(|_| CryptoError::CiphertextLength)?;
        let unpadded = unpad32(plain).ok_or(CryptoError::Padding)?;
        let (len_bytes, rest) = unpadded
            .get(PREFIX_LEN..)
            .and_then(|r| r.split_first_chunk::<4>())
            .ok_or(CryptoError::MessageLength)?;
        let len = usize::try_from(u32::from_be_bytes(*len_bytes))
            .map_err(|_| CryptoError::MessageLength)?;
        let (message, receive_id) = rest
            .split_at_checked(len)
            .ok_or(CryptoError::MessageLength)?;
        if receive_id != appid.as_bytes() {
            return Err(CryptoError::AppIdMismatch);
        }
        Ok(message.to_vec())
    }

    /// Encrypts `message` for `appid` (fresh random prefix) and signs the result with `token`,
    /// `timestamp` and `nonce`: the `Encrypt` and `MsgSignature` of a reply or a push.
    #[must_use]
    pub fn seal(
        &self,
        token: &ServerToken,
        appid: &str,
        message: &[u8],
        timestamp: &str,
        nonce: &str,
    ) -> Sealed {
        let encrypt = self.encrypt(message, appid);
        let msg_signature = msg_signature(token, timestamp, nonce, &encrypt);
        Sealed {
            encrypt,
            msg_signature,
        }
    }

    /// Checks `msg_signature` over `encrypt` (constant time), then decrypts it for `appid`.
    ///
    /// # Errors
    /// [`CryptoError::SignatureMismatch`] first, then the errors of [`decrypt`](Self::decrypt).
    pub fn open(
        &self,
        token: &ServerToken,
        appid: &str,
        encrypt: &str,
        timestamp: &str,
        nonce: &str,
        msg_signature: &str,
    ) -> Result<Vec<u8>, CryptoError> {
        let expected = self::msg_signature(token, timestamp, nonce, encrypt);
        if !signature_matches(token, &expected, msg_signature) {
            return Err(CryptoError::SignatureMismatch);
        }
        self.decrypt(encrypt, appid)
    }

    fn iv(&self) -> &[u8; 16] {
        self.key.first_chunk::<16>().unwrap_or(&[0; 16])
    }
}

/// PKCS#7 with pad bytes 1..=32; `None` when the padding is not that.
fn unpad32(plain: &[u8]) -> Option<&[u8]> {
    let pad = usize::from(*plain.last()?);
    if pad == 0 || pad > PAD_BLOCK || pad > plain.len() {
        return None;
    }
    let (body, padding) = plain.split_at(plain.len() - pad);
    padding
        .iter()
        .all(|&b| usize::from(b) == pad)
        .then_some(body)
}

/// WeChat's signature: lowercase hex SHA-1 of `parts` sorted bytewise (PHP's
/// `sort(SORT_STRING)` in the official sample, never numeric order) and concatenated.
#[must_use]
pub fn signature(parts: &[&str]) -> String {
    let mut sorted = parts.to_vec();
    sorted.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    let mut hasher = Sha1::new();
    for part in &sorted {
        hasher.update(part.as_bytes());
    }
    hex_lower(&hasher.finalize())
}

/// The plaintext-mode `signature` of a server request: [`signature`] over the Token,
/// `timestamp` and `nonce`.
#[must_use]
pub fn server_signature(token: &ServerToken, timestamp: &str, nonce: &str) -> String {
    signature(&[token.secret(), timestamp, nonce])
}

/// The safe-mode `msg_signature`: [`signature`] over the Token, `timestamp`, `nonce` and the
/// `Encrypt` value.
#[must_use]
pub fn msg_signature(token: &ServerToken, timestamp: &str, nonce: &str, encrypt: &str) -> String {
    signature(&[token.secret(), timestamp, nonce, encrypt])
}

/// Whether a received hex signature equals our lowercase one: constant time, hex case ignored,
/// and always `false` for an empty Token (anyone could compute its signatures).
#[must_use]
pub fn signature_matches(token: &ServerToken, expected_lower: &str, received: &str) -> bool {
    if token.is_empty() || received.len() != expected_lower.len() {
        return false;
    }
    let received = received.to_ascii_lowercase();
    expected_lower.as_bytes().ct_eq(received.as_bytes()).into()
}

fn hex_lower(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
#[path = "crypto_tests.rs"]
mod tests;
