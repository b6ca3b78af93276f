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
mod tests {
    use std::sync::Arc;

    use rand::Rng;
    use wx_core::{Clock, ManualClock};

    use super::*;

    const KEY: [u8; 32] = *b"0123456789abcdef0123456789abcdef";
    const TTL: Duration = Duration::from_secs(300);

    fn clock() -> ManualClock {
        ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_714_036_504))
    }

    fn signer(clock: &ManualClock) -> StateSigner {
        StateSigner::new(&KEY, Arc::new(clock.clone())).expect("32-byte key")
    }

    fn is_wechat_state(s: &str) -> bool {
        (1..=MAX_STATE_LEN).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
    }

    #[test]
    fn round_trip_with_and_without_return_path() {
        let clock = clock();
        let s = signer(&clock);
        let now = clock.now();
        for path in [
            None,
            Some("/"),
            Some("/orders/42"),
            Some("/a?b=c&d=%20#frag"),
        ] {
            let state = s.issue(path, TTL).expect("valid");
            assert!(is_wechat_state(&state), "{state}");
            let v = s.verify(&state).expect("fresh state verifies");
            assert_eq!(v.return_path.as_deref(), path);
            assert_eq!(v.issued_at, now);
            assert_eq!(v.expires_at, now + TTL);
        }
        // Each state is unique, even with identical inputs at the same instant.
        let a = s.issue(Some("/x"), TTL).expect("valid");
        let b = s.issue(Some("/x"), TTL).expect("valid");
        assert_ne!(a, b);
        assert_ne!(
            s.verify(&a).expect("valid").nonce,
            s.verify(&b).expect("valid").nonce
        );
        // Another signer with the same key (another server of the fleet) accepts it.
        let other = StateSigner::new(&KEY, Arc::new(clock)).expect("key");
        assert_eq!(other.verify(&a), s.verify(&a));
    }

    #[test]
    fn the_longest_return_path_fits_in_128_characters() {
        let clock = clock();
        let s = signer(&clock);
        assert_eq!(MAX_RETURN_PATH_LEN, 59);
        let longest = format!("/{}", "p".repeat(MAX_RETURN_PATH_LEN - 1));
        let state = s.issue(Some(&longest), MAX_TTL).expect("fits");
        assert_eq!(state.len(), MAX_STATE_LEN);
        assert_eq!(
            s.verify(&state).expect("valid").return_path.as_deref(),
            Some(longest.as_str())
        );
        let too_long = format!("{longest}p");
        assert_eq!(
            s.issue(Some(&too_long), TTL),
            Err(InvalidInput::new(
                "return_path",
                "too long: at most 59 bytes"
            ))
        );
        assert_eq!(s.issue(None, TTL).expect("valid").len(), 47);
    }

    #[test]
    fn expires_after_its_ttl() {
        let clock = clock();
        let s = signer(&clock);
        let issued = clock.now();
        let state = s.issue(Some("/orders/42"), TTL).expect("valid");
        clock.advance(TTL - Duration::from_secs(1));
        assert!(s.verify(&state).is_ok(), "valid one second before expiry");
        clock.advance(Duration::from_secs(1));
        assert_eq!(
            s.verify(&state),
            Err(StateError::Expired {
                expired_at: issued + TTL
            })
        );
        clock.advance(Duration::from_secs(10 * 365 * 24 * 3600));
        assert_eq!(
            s.verify(&state),
            Err(StateError::Expired {
                expired_at: issued + TTL
            })
        );
    }

    #[test]
    fn another_key_is_forged_even_when_expired() {
        let clock = clock();
        let mine = signer(&clock);
        let theirs = StateSigner::new(&[9u8; 32], Arc::new(clock.clone())).expect("key");
        let state = theirs.issue(Some("/orders/42"), TTL).expect("valid");
        assert_eq!(mine.verify(&state), Err(StateError::Forged));
        // An expired state with a bad MAC is reported as forged, not expired.
        clock.advance(TTL * 2);
        assert_eq!(mine.verify(&state), Err(StateError::Forged));
    }

    #[test]
    fn bindings_must_match() {
        let clock = clock();
        let s = signer(&clock);
        let state = s
            .issue_bound(b"cookie-value-1", Some("/x"), TTL)
            .expect("valid");
        assert!(s.verify_bound(&state, b"cookie-value-1").is_ok());
        assert_eq!(
            s.verify_bound(&state, b"cookie-value-2"),
            Err(StateError::Forged)
        );
        assert_eq!(s.verify(&state), Err(StateError::Forged));
        // No binding and an empty binding are the same.
        let unbound = s.issue(None, TTL).expect("valid");
        assert!(s.verify_bound(&unbound, b"").is_ok());
        assert_eq!(s.verify_bound(&unbound, b"x"), Err(StateError::Forged));
    }

    #[test]
    fn the_callback_identity_is_the_state_in_its_browser() {
        let clock = clock();
        let s = signer(&clock);
        let state = s.issue_bound(b"cookie-1", None, TTL).expect("valid");
        let first = s.verify_bound(&state, b"cookie-1").expect("valid");
        assert!(first.is_bound());
        // The same state and binding again (a reload, another server): the same callback.
        let other_server = StateSigner::new(&KEY, Arc::new(clock)).expect("key");
        let again = other_server
            .verify_bound(&state, b"cookie-1")
            .expect("valid");
        assert_eq!(first.callback_id(), again.callback_id());
        assert_eq!(first, again);
        // Another state in another browser: another callback.
        let theirs = s.issue_bound(b"cookie-2", None, TTL).expect("valid");
        let theirs = s.verify_bound(&theirs, b"cookie-2").expect("valid");
        assert_ne!(first.callback_id(), theirs.callback_id());
        // An unbound state names no callback; Debug shows no MAC bytes.
        let unbound = s
            .verify(&s.issue(None, TTL).expect("valid"))
            .expect("valid");
        assert!(!unbound.is_bound() && unbound.callback_id().is_none());
        assert!(format!("{first:?}").contains("CallbackId(..)"));
    }

    #[test]
    fn every_single_character_change_is_refused() {
        let clock = clock();
        let s = signer(&clock);
        let state = s.issue(Some("/orders/42?tab=items"), TTL).expect("valid");
        let alphabet: Vec<u8> = (b'0'..=b'9')
            .chain(b'A'..=b'Z')
            .chain(b'a'..=b'z')
            .collect();
        let (mut malformed, mut forged) = (0, 0);
        for i in 0..state.len() {
            for &c in &alphabet {
                let mut bytes = state.as_bytes().to_vec();
                if bytes[i] == c {
                    continue;
                }
                bytes[i] = c;
                let changed = String::from_utf8(bytes).expect("ascii");
                match s.verify(&changed) {
                    Err(StateError::Malformed) => malformed += 1,
                    Err(StateError::Forged) => forged += 1,
                    other => panic!("accepted or misreported {changed}: {other:?}"),
                }
            }
        }
        assert_eq!(malformed + forged, state.len() * 61);
        // Both outcomes occur: overflowing a block is malformed, a canonical edit is forged.
        assert!(malformed > 0 && forged > 0, "{malformed} {forged}");
        // Truncation, extension and non-alphanumerics never pass either.
        for changed in [
            &state[..state.len() - 1],
            &state[1..],
            &format!("{state}0"),
            &format!("{}-", &state[..state.len() - 1]),
            &format!("{state}{}", "0".repeat(MAX_STATE_LEN)),
            "",
        ] {
            assert!(
                matches!(
                    s.verify(changed),
                    Err(StateError::Malformed | StateError::Forged)
                ),
                "{changed}"
            );
        }
    }

    #[test]
    fn re_encoded_edits_of_the_payload_are_forged() {
        let clock = clock();
        let s = signer(&clock);
        let state = s.issue(Some("/orders/42"), TTL).expect("valid");
        let bytes = base62::decode(&state).expect("our own state decodes");
        // Change the issue time, the lifetime, the nonce, the return path or the MAC:
        // each is well-formed after re-encoding, and each is refused as forged.
        for index in [
            ISSUED_LEN,
            1 + ISSUED_LEN,
            HEADER_LEN - 1,
            HEADER_LEN + 1,
            bytes.len() - 1,
        ] {
            let mut edited = bytes.clone();
            edited[index] ^= 0x01;
            let edited = base62::encode(&edited);
            assert!(is_wechat_state(&edited));
            assert_eq!(s.verify(&edited), Err(StateError::Forged), "byte {index}");
        }
        // An open redirect inserted with a re-encoding is refused too.
        let mut evil = bytes[..HEADER_LEN].to_vec();
        evil.extend_from_slice(b"//evil.example");
        evil.extend_from_slice(&bytes[bytes.len() - MAC_LEN..]);
        assert_eq!(s.verify(&base62::encode(&evil)), Err(StateError::Forged));
        // A wrong version is structurally invalid.
        let mut v2 = bytes;
        v2[0] = 2;
        assert_eq!(s.verify(&base62::encode(&v2)), Err(StateError::Malformed));
    }

    #[test]
    fn many_random_states_fit_wechat_and_round_trip() {
        let clock = clock();
        let s = signer(&clock);
        let mut rng = rand::rng();
        let path_chars: Vec<u8> = (b'!'..=b'~').filter(|&b| b != b'\\').collect();
        for _ in 0..2000 {
            let path = if rng.random_bool(0.1) {
                None
            } else {
                let len = rng.random_range(0..MAX_RETURN_PATH_LEN);
                let mut p = String::from("/");
                for _ in 0..len {
                    p.push(char::from(
                        path_chars[rng.random_range(0..path_chars.len())],
                    ));
                }
                if check_return_path(&p).is_err() {
                    continue; // the rule is tested on its own below
                }
                Some(p)
            };
            let ttl = Duration::from_secs(rng.random_range(1..=MAX_TTL.as_secs()));
            let state = s.issue(path.as_deref(), ttl).expect("valid path");
            assert!(is_wechat_state(&state), "{state}");
            let v = s.verify(&state).expect("round trip");
            assert_eq!(v.return_path, path);
            assert_eq!(v.expires_at, clock.now() + ttl);
        }
    }

    #[test]
    fn open_redirects_and_bad_paths_are_rejected() {
        let clock = clock();
        let s = signer(&clock);
        for (path, reason) in [
            ("", "must start with '/'"),
            ("orders", "must start with '/'"),
            ("https://evil.example/", "must start with '/'"),
            ("//evil.example", "must not start with '//'"),
            ("/\\evil.example", "must not contain '\\'"),
            ("/a\\b", "must not contain '\\'"),
            ("/a b", "must contain only visible ASCII characters"),
            ("/a\nb", "must contain only visible ASCII characters"),
            ("/\u{0}", "must contain only visible ASCII characters"),
            ("/caf\u{e9}", "must contain only visible ASCII characters"),
            // Issue 19 (Info): paths that normalise to another host.
            ("/.//evil.example", "must not contain '//'"),
            ("/a//evil.example", "must not contain '//'"),
            ("/./evil", "must not contain '.' or '..' segments"),
            ("/a/../b", "must not contain '.' or '..' segments"),
            ("/a/..", "must not contain '.' or '..' segments"),
            ("/%2e//x", "must not contain '//'"),
            ("/%2E%2E/x", "must not percent-encode '.', '/' or '\\'"),
            (
                "/%2fevil.example",
                "must not percent-encode '.', '/' or '\\'",
            ),
            ("/a%5Cb", "must not percent-encode '.', '/' or '\\'"),
        ] {
            assert_eq!(
                s.issue(Some(path), TTL),
                Err(InvalidInput::new("return_path", reason)),
                "{path:?}"
            );
        }
    }

    #[test]
    fn queries_may_hold_what_paths_may_not() {
        assert_eq!(check_return_path("/a?next=//x/../%2e#/./"), Ok(()));
    }

    /// Issue 19 (Info): an authentic state with a lifetime past the maximum or an issue time in
    /// the future (made with the key, not by `issue`) is refused.
    #[test]
    fn authentic_states_issue_never_makes_are_refused() {
        let clock = clock();
        let s = signer(&clock);
        let ahead = ManualClock::new(clock.now() + Duration::from_secs(3600));
        let from_the_future = signer(&ahead).issue(None, TTL).expect("valid");
        assert_eq!(s.verify(&from_the_future), Err(StateError::Malformed));
        // A fleet's clock skew is tolerated.
        let skewed = ManualClock::new(clock.now() + MAX_CLOCK_SKEW);
        let state = signer(&skewed).issue(None, TTL).expect("valid");
        assert!(s.verify(&state).is_ok());

        let unix = clock
            .now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs();
        let mut payload = vec![VERSION];
        payload.extend_from_slice(&unix.to_be_bytes()[8 - ISSUED_LEN..]);
        let too_long = u32::try_from(MAX_TTL.as_secs() + 1).expect("fits");
        payload.extend_from_slice(&too_long.to_be_bytes());
        payload.extend_from_slice(&[7u8; NONCE_LEN]);
        let tag = s.tag(&[], &payload);
        payload.extend_from_slice(&tag);
        assert_eq!(
            s.verify(&base62::encode(&payload)),
            Err(StateError::Malformed)
        );
    }

    #[test]
    fn bad_ttl_and_short_keys_are_rejected() {
        let clock = clock();
        let s = signer(&clock);
        assert_eq!(
            s.issue(None, Duration::from_millis(999)),
            Err(InvalidInput::new("ttl", "must be at least one second"))
        );
        assert_eq!(
            s.issue(None, MAX_TTL + Duration::from_secs(1)),
            Err(InvalidInput::new("ttl", "must be at most 24 hours"))
        );
        assert!(s.issue(None, MAX_TTL).is_ok());
        let err = StateSigner::new(&[1u8; MIN_KEY_LEN - 1], Arc::new(clock)).expect_err("31 bytes");
        assert_eq!(err, InvalidInput::new("key", "must be at least 32 bytes"));
    }

    #[test]
    fn debug_never_shows_the_key() {
        let clock = clock();
        let key = *b"SUPER-SECRET-KEY-do-not-log-1234";
        let s = StateSigner::new(&key, Arc::new(clock)).expect("key");
        let shown = format!("{s:?} {s:#?}");
        assert!(shown.contains("[redacted]"), "{shown}");
        assert!(!shown.contains("SUPER-SECRET"), "{shown}");
        // Nor as bytes (some Debug impls print key material as a list of numbers).
        assert!(!shown.contains(&format!("{:?}", &key[..4])), "{shown}");
    }

    #[test]
    fn base62_blocks_are_minimal_and_canonical() {
        for n in 1..=8u32 {
            let k = base62::CHARS[n as usize];
            let bits = 8 * n;
            assert!(
                62f64.powi(k as i32) >= 2f64.powi(bits as i32),
                "{n} bytes fit {k} chars"
            );
            assert!(
                62f64.powi(k as i32 - 1) < 2f64.powi(bits as i32),
                "{k} is the fewest"
            );
        }
        let mut rng = rand::rng();
        for len in 0..=MAX_PAYLOAD_LEN {
            let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            let text = base62::encode(&bytes);
            assert!(text.len() <= MAX_STATE_LEN || len > MAX_PAYLOAD_LEN);
            assert_eq!(base62::decode(&text).as_deref(), Some(bytes.as_slice()));
        }
        assert_eq!(
            base62::encode(&[0xFF; MAX_PAYLOAD_LEN]).len(),
            MAX_STATE_LEN
        );
        assert!(base62::encode(&[0xFF; MAX_PAYLOAD_LEN + 1]).len() > MAX_STATE_LEN);
        // Edge values: all zeros and all ones in every block size.
        for n in 1..=8 {
            for fill in [0x00u8, 0xFF] {
                let bytes = vec![fill; n];
                assert_eq!(base62::decode(&base62::encode(&bytes)), Some(bytes));
            }
        }
        // Lengths that no block size produces, and out-of-range block values, do not decode.
        assert_eq!(base62::decode("0"), None);
        assert_eq!(base62::decode("0000"), None);
        assert_eq!(base62::decode("zz"), None, "62^2-1 > 255");
        assert_eq!(base62::decode("zzzzzzzzzzz"), None, "62^11-1 > 2^64-1");
        // Any random alphanumeric string that decodes re-encodes to itself.
        let alphabet: Vec<u8> = (b'0'..=b'9')
            .chain(b'A'..=b'Z')
            .chain(b'a'..=b'z')
            .collect();
        for _ in 0..2000 {
            let len = rng.random_range(1..=MAX_STATE_LEN);
            let s: String = (0..len)
                .map(|_| char::from(alphabet[rng.random_range(0..62)]))
                .collect();
            if let Some(bytes) = base62::decode(&s) {
                assert_eq!(base62::encode(&bytes), s);
            }
        }
    }
}
