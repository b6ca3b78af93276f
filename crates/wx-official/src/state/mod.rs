//! Stateless, signed OAuth `state` values that fit WeChat's limit.
//!
//! WeChat echoes the authorize URL's `state` back to the callback, but accepts at most 128
//! characters of `[A-Za-z0-9]`. [`StateSigner`] packs an issue time, a lifetime, a random nonce
//! and an optional return path into such a string, authenticated with HMAC-SHA256, so the
//! callback can check it without any server-side storage:
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use wx_core::SystemClock;
//! use wx_official::state::StateSigner;
//!
//! let key = [7u8; 32]; // use 32+ random bytes from your secret store
//! let signer = StateSigner::new(&key, Arc::new(SystemClock))?;
//!
//! // Before redirecting to the authorize page:
//! let state = signer.issue(Some("/orders/42"), Duration::from_secs(600))?;
//! assert!(state.len() <= 128 && state.bytes().all(|b| b.is_ascii_alphanumeric()));
//!
//! // In the callback (`?code=...&state=...`):
//! let verified = signer.verify(&state)?;
//! assert_eq!(verified.return_path.as_deref(), Some("/orders/42"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Binding to the browser
//!
//! A signed state proves that this server issued it, not that the browser presenting it is the
//! one it was issued to: an attacker can start a login, authorize with their own WeChat account
//! and send the callback link to a victim (login CSRF). To close that, set a random value in a
//! cookie when redirecting and pass it as the `binding` of [`StateSigner::issue_bound`] and
//! [`StateSigner::verify_bound`]; it is covered by the MAC but not carried in the state.
//!
//! # Format (version 1)
//!
//! `base62(version ‖ issued_at ‖ ttl ‖ nonce ‖ return_path ‖ mac)` where `version` is one byte
//! (1), `issued_at` is Unix seconds as 5 big-endian bytes, `ttl` is seconds as 4 big-endian
//! bytes, `nonce` is 8 random bytes, `return_path` is 0 to [`MAX_RETURN_PATH_LEN`] ASCII bytes
//! and `mac` is HMAC-SHA256 truncated to 16 bytes (128 bits) over a domain-separation label, the
//! binding (length-prefixed) and every byte before the MAC. The base62 alphabet is
//! `0-9A-Za-z`, in blocks of 8 bytes to 11 characters (a shorter last block uses the fewest
//! characters that can hold it), and only the canonical encoding of each byte string decodes.
//!
//! # What the errors mean
//!
//! Verification checks structure first, then the MAC, then the expiry, and reports the first
//! failure, so an expired state is only reported as [`StateError::Expired`] once it is known
//! to be authentic:
//! - [`StateError::Malformed`]: not something this signer could ever have produced: empty,
//!   longer than 128 characters, a character outside `[A-Za-z0-9]`, a length or block value that
//!   is not canonical base62, too short, or an unknown version; or, once the MAC matched, a
//!   lifetime over [`MAX_TTL`] or an issue time more than [`MAX_CLOCK_SKEW`] ahead of the clock
//!   (which [`StateSigner::issue`] never produces). Truncation by a proxy and most random edits
//!   end here.
//! - [`StateError::Forged`]: well-formed, but the MAC does not match: made with another key, or
//!   a state of ours whose bytes were changed (a different return path or expiry), or a bound
//!   state checked with another binding. A MAC cannot tell these apart, and it need not: none
//!   may be trusted.
//! - [`StateError::Expired`]: authentic, but its lifetime has passed.
//!
//! A "tampered" state is thus [`Malformed`](StateError::Malformed) when the edit broke the
//! structure and [`Forged`](StateError::Forged) otherwise; it is never accepted.
//!
//! A state stays valid until it expires and can be presented more than once (there is no
//! storage to remember it); WeChat's `code` is single-use, which bounds what a replay gains.
//! Use [`VerifiedState::nonce`] as a key if you want to make states single-use too.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use wx_core::{InvalidInput, SharedClock};

/// The most characters WeChat accepts in `state` (the rule the authorize URL enforces).
pub use crate::authorize::MAX_STATE_LEN;

/// The longest return path a state can carry, in bytes: what is left of [`MAX_STATE_LEN`]
/// base62 characters (93 bytes) after the 34 fixed bytes.
pub const MAX_RETURN_PATH_LEN: usize = MAX_PAYLOAD_LEN - FIXED_LEN;

/// The longest lifetime a state may be issued with (24 hours). A login round trip takes
/// minutes; a longer lifetime only widens the window for replaying a leaked state.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// How far ahead of the verifying server's clock a state's issue time may be (the clocks of a
/// fleet differ a little); further, it is refused as malformed.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(60);

/// The shortest accepted signing key, in bytes (the HMAC-SHA256 output size).
pub const MIN_KEY_LEN: usize = 32;

const VERSION: u8 = 1;
const ISSUED_LEN: usize = 5;
const TTL_LEN: usize = 4;
const NONCE_LEN: usize = 8;
const MAC_LEN: usize = 16;
const HEADER_LEN: usize = 1 + ISSUED_LEN + TTL_LEN + NONCE_LEN;
const FIXED_LEN: usize = HEADER_LEN + MAC_LEN;
/// Bytes that fit in [`MAX_STATE_LEN`] characters: 11 full blocks (121 chars) and a 5-byte
/// block (7 chars).
const MAX_PAYLOAD_LEN: usize = 93;
/// Domain separation, so that a key shared with another use of HMAC cannot be abused here.
const MAC_LABEL: &[u8] = b"wx-official/oauth-state/v1";

type HmacSha256 = Hmac<Sha256>;

/// Issues and verifies signed OAuth `state` values. See the [module docs](self).
///
/// Cheap to clone. `Debug` never shows the key.
#[derive(Clone)]
pub struct StateSigner {
    /// HMAC already keyed; cloned per use so the raw key is not kept around.
    mac: HmacSha256,
    clock: SharedClock,
}

impl StateSigner {
    /// A signer with `key` (at least [`MIN_KEY_LEN`] bytes of secret randomness, shared by every
    /// server that verifies the states) reading time from `clock`.
    ///
    /// # Errors
    /// [`InvalidInput`] naming `key` when it is shorter than [`MIN_KEY_LEN`] bytes.
    pub fn new(key: &[u8], clock: SharedClock) -> Result<Self, InvalidInput> {
        if key.len() < MIN_KEY_LEN {
            return Err(InvalidInput::new("key", "must be at least 32 bytes"));
        }
        let mac = HmacSha256::new_from_slice(key)
            .map_err(|_| InvalidInput::new("key", "not usable as an HMAC key"))?;
        Ok(StateSigner { mac, clock })
    }

    /// Issues a state valid for `ttl` (whole seconds) that carries `return_path`.
    ///
    /// The result is 47 to 128 characters of `[A-Za-z0-9]`.
    ///
    /// # Errors
    /// [`InvalidInput`] naming:
    /// - `ttl`: shorter than one second or longer than [`MAX_TTL`];
    /// - `return_path`: see [`check_return_path`].
    pub fn issue(&self, return_path: Option<&str>, ttl: Duration) -> Result<String, InvalidInput> {
        self.issue_bound(&[], return_path, ttl)
    }

    /// Like [`issue`](Self::issue), and binds the state to `binding` (for example a random value
    /// also set in a cookie): [`verify_bound`](Self::verify_bound) then accepts it only with the
    /// same binding. The binding is covered by the MAC but not carried in the state. An empty
    /// binding is the same as no binding.
    ///
    /// # Errors
    /// As for [`issue`](Self::issue).
    pub fn issue_bound(
        &self,
        binding: &[u8],
        return_path: Option<&str>,
        ttl: Duration,
    ) -> Result<String, InvalidInput> {
        if ttl < Duration::from_secs(1) {
            return Err(InvalidInput::new("ttl", "must be at least one second"));
        }
        if ttl > MAX_TTL {
            return Err(InvalidInput::new("ttl", "must be at most 24 hours"));
        }
        let path = return_path.unwrap_or_default();
        if let Some(path) = return_path {
            check_return_path(path)?;
        }
        let issued_at = unix_secs(self.clock.now()).min((1 << (8 * ISSUED_LEN)) - 1);
        let ttl = u32::try_from(ttl.as_secs()).unwrap_or(u32::MAX);

        let mut payload = Vec::with_capacity(FIXED_LEN + path.len());
        payload.push(VERSION);
        payload.extend_from_slice(&issued_at.to_be_bytes()[8 - ISSUED_LEN..]);
        payload.extend_from_slice(&ttl.to_be_bytes());
        payload.extend_from_slice(&rand::random::<[u8; NONCE_LEN]>());
        payload.extend_from_slice(path.as_bytes());
        let tag = self.tag(binding, &payload);
        payload.extend_from_slice(&tag);
        Ok(base62::encode(&payload))
    }

    /// Verifies a state received at the callback.
    ///
    /// # Errors
    /// [`StateError::Malformed`], [`StateError::Forged`] or [`StateError::Expired`], as the
    /// [module docs](self#what-the-errors-mean) define them. A state issued with
    /// [`issue_bound`](Self::issue_bound) and a non-empty binding is `Forged` here.
    pub fn verify(&self, state: &str) -> Result<VerifiedState, StateError> {
        self.verify_bound(state, &[])
    }

    /// Verifies a state issued with [`issue_bound`](Self::issue_bound) and the same `binding`.
    ///
    /// # Errors
    /// As for [`verify`](Self::verify); a different binding gives [`StateError::Forged`].
    pub fn verify_bound(&self, state: &str, binding: &[u8]) -> Result<VerifiedState, StateError> {
        if state.is_empty()
            || state.len() > MAX_STATE_LEN
            || !state.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(StateError::Malformed);
        }
        let bytes = base62::decode(state).ok_or(StateError::Malformed)?;
        if bytes.len() < FIXED_LEN || bytes[0] != VERSION {
            return Err(StateError::Malformed);
        }
        let (payload, tag) = bytes.split_at(bytes.len() - MAC_LEN);
        let expected = self.tag(binding, payload);
        if !bool::from(expected.ct_eq(tag)) {
            return Err(StateError::Forged);
        }

        let (header, path) = payload.split_at(HEADER_LEN);
        let mut issued = [0u8; 8];
        issued[8 - ISSUED_LEN..].copy_from_slice(&header[1..=ISSUED_LEN]);
        let mut ttl = [0u8; TTL_LEN];
        ttl.copy_from_slice(&header[1 + ISSUED_LEN..1 + ISSUED_LEN + TTL_LEN]);
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&header[1 + ISSUED_LEN + TTL_LEN..]);

        let return_path = if path.is_empty() {
            None
        } else {
            // Checked when issued; checked again so that a state signed elsewhere with the same
            // key cannot smuggle in an open redirect.
            let path = std::str::from_utf8(path).map_err(|_| StateError::Malformed)?;
            check_return_path(path).map_err(|_| StateError::Malformed)?;
            Some(path.to_owned())
        };
        let issued_at = UNIX_EPOCH + Duration::from_secs(u64::from_be_bytes(issued));
        let ttl = Duration::from_secs(u64::from(u32::from_be_bytes(ttl)));
        // Authentic but never issued by `issue`: a lifetime past the maximum, or an issue time
        // ahead of the clock by more than a fleet's clock skew.
        if ttl > MAX_TTL || issued_at > self.clock.now() + MAX_CLOCK_SKEW {
            return Err(StateError::Malformed);
        }
        let expires_at = issued_at + ttl;
        if self.clock.now() >= expires_at {
            return Err(StateError::Expired {
                expired_at: expires_at,
            });
        }
        Ok(VerifiedState {
            return_path,
            issued_at,
            expires_at,
            nonce: u64::from_be_bytes(nonce),
            callback: (!binding.is_empty()).then_some(CallbackId(expected)),
        })
    }

    fn tag(&self, binding: &[u8], payload: &[u8]) -> [u8; MAC_LEN] {
        let mut mac = self.mac.clone();
        mac.update(MAC_LABEL);
        mac.update(&(binding.len() as u64).to_be_bytes());
        mac.update(binding);
        mac.update(payload);
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; MAC_LEN];
        tag.copy_from_slice(&full[..MAC_LEN]);
        tag
    }
}

impl fmt::Debug for StateSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateSigner")
            .field("key", &"[redacted]")
            .field("clock", &self.clock)
            .finish()
    }
}

/// The content of a state that passed [`StateSigner::verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedState {
    /// The return path given when issuing, already checked by [`check_return_path`]: safe to
    /// redirect to on this site.
    pub return_path: Option<String>,
    /// When the state was issued (whole seconds).
    pub issued_at: SystemTime,
    /// When it stops being accepted.
    pub expires_at: SystemTime,
    /// The random nonce that makes each state unique.
    pub nonce: u64,
    /// Names this callback (this state, verified with this browser's binding) when the binding
    /// was not empty. Private: only a successful [`StateSigner::verify_bound`] makes one, so a
    /// value kept for a callback (the idempotent code exchange) can be served only to a caller
    /// that verified the same state with the same binding.
    callback: Option<CallbackId>,
}

impl VerifiedState {
    /// Whether the state was verified with a non-empty browser binding
    /// ([`StateSigner::verify_bound`]); only a bound state proves which browser presents it.
    #[must_use]
    pub fn is_bound(&self) -> bool {
        self.callback.is_some()
    }

    /// The callback identity of a bound state (see [`is_bound`](Self::is_bound)).
    pub(crate) fn callback_id(&self) -> Option<&[u8]> {
        self.callback.as_ref().map(|c| c.0.as_slice())
    }
}

/// The state's MAC, which covers the binding and the nonce: equal for the same state verified
/// with the same binding (a reload, another server of the fleet), different otherwise. Debug
/// does not show it.
#[derive(Clone, PartialEq, Eq)]
struct CallbackId([u8; MAC_LEN]);

impl fmt::Debug for CallbackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CallbackId(..)")
    }
}

/// Why a state was refused. See the [module docs](self#what-the-errors-mean) for the exact
/// meaning of each variant. In every case, restart the login; never use the state's content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StateError {
    /// Structurally invalid: not a state this signer could have produced.
    Malformed,
    /// Well-formed, but not signed by this key for this binding (forged or modified).
    Forged,
    /// Authentic, but no longer valid.
    Expired {
        /// When it stopped being valid.
        expired_at: SystemTime,
    },
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StateError::Malformed => "OAuth state is malformed",
            StateError::Forged => "OAuth state signature does not match",
            StateError::Expired { .. } => "OAuth state has expired",
        })
    }
}

impl std::error::Error for StateError {}

/// Checks a return path: a path on this site, safe to redirect to.
///
/// It must start with `/` but not `//` (a protocol-relative URL to another host), contain only
/// visible ASCII (`!` to `~`; percent-encode anything else), no `\` (browsers read `/\host` as
/// `//host`), and be at most [`MAX_RETURN_PATH_LEN`] (59) bytes. Its path part (before `?` or
/// `#`) must not contain `//`, `.` or `..` segments, or `%2e`, `%2f`, `%5c` in any case:
/// normalisation would turn `/.//evil.example` into `//evil.example`. A query string and
/// fragment are allowed (`/orders/42?tab=items`).
///
/// # Errors
/// [`InvalidInput`] naming `return_path` with the rule it breaks.
pub fn check_return_path(path: &str) -> Result<(), InvalidInput> {
    let reject = |reason| Err(InvalidInput::new("return_path", reason));
    if !path.starts_with('/') {
        return reject("must start with '/'");
    }
    if path.starts_with("//") {
        return reject("must not start with '//'");
    }
    // Browsers and servers normalise the path part: `/.//evil.example` and `/%2e//evil.example`
    // become `//evil.example`, another host. The query and fragment are not normalised.
    let path_part = path.split(['?', '#']).next().unwrap_or_default();
    if path_part.contains("//") {
        return reject("must not contain '//'");
    }
    if path_part
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return reject("must not contain '.' or '..' segments");
    }
    let lower = path_part.to_ascii_lowercase();
    if ["%2e", "%2f", "%5c"]
        .iter()
        .any(|escape| lower.contains(escape))
    {
        return reject("must not percent-encode '.', '/' or '\\'");
    }
    if !path.bytes().all(|b| b.is_ascii_graphic()) {
        return reject("must contain only visible ASCII characters");
    }
    if path.contains('\\') {
        return reject("must not contain '\\'");
    }
    if path.len() > MAX_RETURN_PATH_LEN {
        return reject("too long: at most 59 bytes");
    }
    Ok(())
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// Canonical block base62: 8 bytes to 11 characters; a shorter last block of `n` bytes to the
/// fewest characters that can hold `256^n` values. Every string decodes to at most one byte
/// string, and only encodings produced by `encode` decode.
mod base62 {
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    const BLOCK_BYTES: usize = 8;
    const BLOCK_CHARS: usize = 11;
    /// `CHARS[n]`: characters for a block of `n` bytes (smallest `k` with `62^k >= 256^n`).
    pub(super) const CHARS: [usize; BLOCK_BYTES + 1] = [0, 2, 3, 5, 6, 7, 9, 10, 11];

    pub(super) fn encode(bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len() / BLOCK_BYTES * BLOCK_CHARS + BLOCK_CHARS);
        for block in bytes.chunks(BLOCK_BYTES) {
            let mut value = block.iter().fold(0u64, |v, &b| (v << 8) | u64::from(b));
            let mut chars = [0u8; BLOCK_CHARS];
            let width = CHARS[block.len()];
            for slot in chars[..width].iter_mut().rev() {
                *slot = ALPHABET[(value % 62) as usize];
                value /= 62;
            }
            out.extend(chars[..width].iter().map(|&c| char::from(c)));
        }
        out
    }

    pub(super) fn decode(s: &str) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(s.len() / BLOCK_CHARS * BLOCK_BYTES + BLOCK_BYTES);
        for block in s.as_bytes().chunks(BLOCK_CHARS) {
            let n = CHARS
                .iter()
                .position(|&k| k == block.len())
                .filter(|&n| n > 0)?;
            let mut value: u128 = 0;
            for &c in block {
                value = value * 62 + u128::from(digit(c)?);
            }
            if value >> (8 * n) != 0 {
                return None; // more than n bytes can hold: not canonical
            }
            out.extend_from_slice(&value.to_be_bytes()[16 - n..]);
        }
        Some(out)
    }

    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'A'..=b'Z' => Some(c - b'A' + 10),
            b'a'..=b'z' => Some(c - b'a' + 36),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
