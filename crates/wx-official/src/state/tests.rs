//! Tests of the signed OAuth state.

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
