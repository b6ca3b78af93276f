//! The process-local copy of each managed credential, in front of the store.
//!
//! A warm read of the base token or the JS-SDK ticket costs a lock instead of a store round trip
//! (about 90 µs on Redis over loopback). The value is kept in an `Arc<str>`: the base token is
//! handed out shared ([`AccessToken::from_shared`](wx_core::AccessToken::from_shared), a
//! reference count, no allocation); the ticket, which is read rarely, as a copy. The copy is
//! safe because it is short-lived:
//! - it is served only while it is younger than `max_age` (read from the store or fetched by
//!   this process at most that long ago) and outside the expiry margin; after that the store is
//!   read again, so a value another process stored is picked up within `max_age`;
//! - a value WeChat rejected is dropped from it at once ([`LocalCache::drop_rejected`]);
//! - a value this process fetched replaces it at once.
//!
//! WeChat keeps a replaced base token valid for 5 minutes, and `max_age` is capped well inside
//! that (see `MAX_LOCAL_TOKEN_AGE` in the client), so a copy never outlives the token it holds.
//! Should it anyway (a token revoked some other way), the call that meets the rejection drops
//! it and retries once, as it always did.
//!
//! A *generation* per kind closes the race between a reader and a rejection: a reader notes the
//! generation before it reads the store and may keep what it read only if no rejection came in
//! between, so a rejected value read just before its compare-and-delete is not kept.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use wx_core::{StoredToken, TokenKind, ct_eq};

use super::lock;

/// The generation of a kind's copy when a reader started: hand it back to
/// [`LocalCache::keep`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Generation(u64);

/// A value served from the local copy, shared with it rather than copied. `Debug` hides the
/// value.
pub(crate) struct LocalCopy {
    /// The value.
    pub(crate) value: Arc<str>,
    /// When the value expires.
    pub(crate) expires_at: SystemTime,
}

impl std::fmt::Debug for LocalCopy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCopy")
            .field("value", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl LocalCopy {
    /// The value as a [`StoredToken`] (a copy of the text).
    pub(crate) fn into_stored(self) -> StoredToken {
        StoredToken::new(&*self.value, self.expires_at)
    }
}

#[derive(Default)]
struct Local {
    copy: Option<Kept>,
    generation: u64,
}

struct Kept {
    value: Arc<str>,
    expires_at: SystemTime,
    /// When the value was read from the store or fetched; the copy is served until
    /// `kept_at + max_age`.
    kept_at: SystemTime,
}

/// The local copies of the managed credentials: the base token (normal or stable) and the
/// JS-SDK ticket. One-off values (code exchanges) are never kept here.
pub(crate) struct LocalCache {
    max_age: Duration,
    kinds: [Mutex<Local>; 3],
}

impl LocalCache {
    /// A cache serving copies for at most `max_age`; zero turns it off.
    pub(crate) fn new(max_age: Duration) -> Self {
        LocalCache {
            max_age,
            kinds: Default::default(),
        }
    }

    fn slot(&self, kind: &TokenKind) -> Option<&Mutex<Local>> {
        let i = match kind {
            TokenKind::AccessToken => 0,
            TokenKind::StableAccessToken => 1,
            TokenKind::JsapiTicket => 2,
            _ => return None,
        };
        Some(&self.kinds[i])
    }

    /// The copy of `kind` when it is young enough at `now` and `servable` (given its expiry);
    /// otherwise the generation to hand to [`keep`](Self::keep) after reading the store.
    pub(crate) fn get(
        &self,
        kind: &TokenKind,
        now: SystemTime,
        servable: impl FnOnce(SystemTime) -> bool,
    ) -> Result<LocalCopy, Generation> {
        let Some(slot) = self.slot(kind) else {
            return Err(Generation(0));
        };
        let local = lock(slot);
        match &local.copy {
            Some(copy)
                if now
                    .duration_since(copy.kept_at)
                    .is_ok_and(|age| age < self.max_age)
                    && servable(copy.expires_at) =>
            {
                Ok(LocalCopy {
                    value: copy.value.clone(),
                    expires_at: copy.expires_at,
                })
            }
            _ => Err(Generation(local.generation)),
        }
    }

    /// The current generation of `kind`, for a reader about to read the store.
    pub(crate) fn generation(&self, kind: &TokenKind) -> Generation {
        self.slot(kind)
            .map_or(Generation(0), |slot| Generation(lock(slot).generation))
    }

    /// Keeps `token`, read from the store or fetched at `now`, unless a rejection of `kind` came
    /// in since `seen` was taken.
    pub(crate) fn keep(
        &self,
        kind: &TokenKind,
        seen: Generation,
        token: &StoredToken,
        now: SystemTime,
    ) {
        if self.max_age.is_zero() {
            return;
        }
        let Some(slot) = self.slot(kind) else {
            return;
        };
        let mut local = lock(slot);
        if local.generation == seen.0 {
            local.copy = Some(Kept {
                value: token.secret().into(),
                expires_at: token.expires_at,
                kept_at: now,
            });
        }
    }

    /// Drops the copy of `kind` if it holds `rejected`, and starts a new generation so that no
    /// reader that started before keeps what it read.
    pub(crate) fn drop_rejected(&self, kind: &TokenKind, rejected: &str) {
        let Some(slot) = self.slot(kind) else {
            return;
        };
        let mut local = lock(slot);
        local.generation = local.generation.wrapping_add(1);
        if local
            .copy
            .as_ref()
            .is_some_and(|c| ct_eq(c.value.as_bytes(), rejected.as_bytes()))
        {
            local.copy = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(v: &str, now: SystemTime) -> StoredToken {
        StoredToken::new(v, now + Duration::from_secs(7200))
    }

    #[test]
    fn a_copy_is_served_until_its_age_bound() {
        let cache = LocalCache::new(Duration::from_secs(10));
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let kind = TokenKind::AccessToken;
        let g = cache.get(&kind, now, |_| true).expect_err("empty");
        cache.keep(&kind, g, &token("T1", now), now);
        let at = |s| now + Duration::from_secs(s);
        assert_eq!(
            cache
                .get(&kind, at(9), |_| true)
                .map(|c| c.into_stored().into_secret()),
            Ok("T1".into())
        );
        assert!(
            cache.get(&kind, at(10), |_| true).is_err(),
            "10 s old: read the store"
        );
        assert!(cache.get(&kind, at(5), |_| false).is_err(), "not servable");
        let mut told = None;
        let (first, second) = (
            cache.get(&kind, at(1), |expires_at| {
                told = Some(expires_at);
                true
            }),
            cache.get(&kind, at(2), |_| true),
        );
        assert_eq!(
            told,
            Some(now + Duration::from_secs(7200)),
            "servable sees the expiry"
        );
        let (first, second) = (first.expect("served"), second.expect("served"));
        assert!(
            Arc::ptr_eq(&first.value, &second.value),
            "served shared, not copied"
        );
        assert_eq!(first.expires_at, now + Duration::from_secs(7200));
        assert!(
            cache
                .get(&kind, now - Duration::from_secs(1), |_| true)
                .is_err(),
            "a clock that went back does not extend the copy's life"
        );
        assert!(
            cache.get(&TokenKind::JsapiTicket, at(1), |_| true).is_err(),
            "per kind"
        );
    }

    #[test]
    fn a_rejection_drops_the_copy_and_refuses_what_older_readers_read() {
        let cache = LocalCache::new(Duration::from_secs(10));
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let kind = TokenKind::JsapiTicket;
        let before = cache.generation(&kind);
        cache.keep(&kind, before, &token("T1", now), now);
        cache.drop_rejected(&kind, "OTHER");
        assert_eq!(
            cache
                .get(&kind, now, |_| true)
                .map(|c| c.into_stored().into_secret()),
            Ok("T1".into()),
            "a rejection of another value keeps the copy"
        );
        let g = cache.generation(&kind);
        assert_ne!(g, before, "but starts a new generation");
        cache.drop_rejected(&kind, "T1");
        assert!(cache.get(&kind, now, |_| true).is_err(), "dropped");
        cache.keep(&kind, g, &token("T1", now), now);
        assert!(
            cache.get(&kind, now, |_| true).is_err(),
            "read before the rejection: not kept"
        );
    }

    #[test]
    fn zero_max_age_and_one_off_kinds_keep_nothing() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let off = LocalCache::new(Duration::ZERO);
        let kind = TokenKind::AccessToken;
        off.keep(&kind, off.generation(&kind), &token("T1", now), now);
        assert!(off.get(&kind, now, |_| true).is_err());
        let cache = LocalCache::new(Duration::from_secs(10));
        let code = TokenKind::Custom("oauth_code:ab".into());
        cache.keep(&code, cache.generation(&code), &token("C", now), now);
        assert!(cache.get(&code, now, |_| true).is_err());
    }
}
