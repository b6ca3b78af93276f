//! The fuzz properties of `fuzz/fuzz_targets/oracles.rs`, run by `cargo test`: every input the
//! fuzzers found, hand-picked edge cases, and a seeded sweep of random inputs, so the
//! properties keep being checked in CI without `cargo fuzz`.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use wx_core::{Clock, ManualClock};
use wx_official::state::{StateError, StateSigner};

use crate::common::Rng;
use crate::oracles;

/// `oauth_state`, found in its first seconds: an unbound state issued in an earlier run of the
/// target, replayed as input (libFuzzer takes operands of comparisons as input material) and
/// accepted, because every run signed with the same key. The state was authentic, so the
/// fault was the oracle's; the target now signs each run with a key of its own. The input,
/// re-encoded for the current `[flags, cut (u16), bytes]` layout: flags 13 (bound, lifetime
/// from the bytes), empty return path, the replayed state as the arbitrary input.
const STATE_FOUND_REPLAYED_STATE: &[u8] =
    b"\r\x00\x0005KX05KXQ0DkDlA001cmsgkVLJG0y7Hn7B06OCrWdRG4voX97Lz";

#[test]
fn fuzz_findings_replay() {
    // The replayed state is refused now (first check), then the empty return path is.
    assert_eq!(
        oracles::oauth_state(STATE_FOUND_REPLAYED_STATE),
        Some(Err("return_path"))
    );
}

/// What the finding is about, as users meet it: a state is accepted by every signer with the
/// same key (the fleet) until it expires, and by no signer with another key.
#[test]
fn states_are_bound_to_their_key() {
    // States carry whole seconds.
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_714_036_504));
    let a = StateSigner::new(&[1u8; 32], Arc::new(clock.clone())).expect("key");
    let a_too = StateSigner::new(&[1u8; 32], Arc::new(clock.clone())).expect("key");
    let b = StateSigner::new(&[2u8; 32], Arc::new(clock.clone())).expect("key");
    let state = a.issue(Some("/x"), Duration::from_secs(60)).expect("valid");
    assert!(a_too.verify(&state).is_ok());
    assert_eq!(b.verify(&state), Err(StateError::Forged));
    clock.advance(Duration::from_secs(60));
    assert!(
        matches!(a.verify(&state), Err(StateError::Expired { expired_at }) if expired_at == clock.now())
    );
}

/// An input in the fuzz targets' encoding: `[flags, cut (u16 BE), bytes...]`, the bytes split
/// at `cut` into `a` and `b`.
fn with(flags: u8, a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut v = vec![flags];
    v.extend_from_slice(&u16::try_from(a.len()).expect("short").to_be_bytes());
    v.extend_from_slice(a);
    v.extend_from_slice(b);
    v
}

/// Inputs at the edges of the rules.
#[test]
fn edge_cases() {
    // authorize_url: flags 0 raw redirect, 1 https://, 2 http://, 3 HtTpS://; 4 userinfo;
    // 8 popup; 16 the _with form.
    const OK: Option<Result<(), &str>> = Some(Ok(()));
    let redirect_err = Some(Err("redirect_uri"));
    let state_err = Some(Err("state"));
    for (flags, redirect, state, expected) in [
        (
            0u8,
            &b"https://a.example/cb?x=1&y=2#frag"[..],
            &b"abc"[..],
            OK,
        ),
        (1, b"a.example/%zz", b"", OK),
        (1, "a.example/\u{e9}\u{4e2d}".as_bytes(), b"Z9", OK),
        (2, b"a b", b"s", redirect_err),
        (3, b"a\x00", b"s", redirect_err),
        (1, b"a.example", "\u{0661}".as_bytes(), state_err),
        (1, b"a.example", &[b'a'; 128], OK),
        (1, b"a.example", &[b'a'; 129], state_err),
        (0, b"HTTP://X", b"-", state_err),
        (0, b"javascript://x", b"ok", redirect_err),
        (12, b"http://h", b"\xff\xfe", state_err),
        (25, b"a.example/\xf0\x9f\x98\x80", b"ok", OK),
        (9, b"a.example/\xe2\x80\xa8", b"ok", redirect_err),
    ] {
        assert_eq!(
            oracles::authorize_url(&with(flags, redirect, state)),
            expected,
            "{flags} {redirect:?} {state:?}"
        );
    }
    // "https://" + n bytes: 2048 in all is the longest accepted.
    let redirect_len = |n: usize| with(1, &vec![b'x'; n], b"");
    assert_eq!(oracles::authorize_url(&redirect_len(2048 - 8)), OK);
    assert_eq!(
        oracles::authorize_url(&redirect_len(2048 - 7)),
        redirect_err
    );
    assert_eq!(oracles::authorize_url(&[1, 0]), None);

    // oauth_state: flags & 7 picks the lifetime (0: 999 ms, 1: 1 s, 2: 24 h, 3: 24 h + 1 s,
    // else from the first two bytes after the path), 8 binds, 16 issues without a return
    // path, 128 lets one more second pass.
    let ttl_err = Some(Err("ttl"));
    let path_err = Some(Err("return_path"));
    for (flags, path, rest, expected) in [
        (1u8, &b"/"[..], &b"\x00\x00\x00\x00"[..], OK),
        (129, b"/", b"\x00\x00\x00\x00", OK),
        (2, b"/orders/42?tab=items#x", b"\x00\x00\x10\x00", OK),
        (0, b"/", b"", ttl_err),
        (3, b"/", b"", ttl_err),
        (3, b"//evil.example", b"", ttl_err),
        (16 | 1, b"", b"\x00\x00\x00\x00", OK),
        (1, b"", b"\x00\x00\x00\x00", path_err),
        (4, b"/", b"\x00\x00\x00\x00", ttl_err),
        (4, b"/", b"\x00\x05\x01\x00", OK),
        (5, b"//evil.example", b"\x00\x05\x00\x00", path_err),
        (5, b"/\\evil", b"\x00\x05\x00\x00", path_err),
        (5, b"/", b"\x01\x00\x00\x57abcdefghijklmnopqrstuvwxyz", OK),
        (13, b"/a", b"\x01\x00\x00\xf7bindingbytes0123456789", OK),
        (5, b"/\x7f", b"\x01\x00\x00\x00", path_err),
        (6, "/caf\u{e9}".as_bytes(), b"\x01\x00\x00\x00", path_err),
    ] {
        assert_eq!(
            oracles::oauth_state(&with(flags, path, rest)),
            expected,
            "{flags} {path:?} {rest:?}"
        );
    }
    // The longest return path (59 bytes) and one byte more.
    for (n, expected) in [(59, OK), (60, path_err)] {
        let mut path = vec![b'/'];
        path.extend(std::iter::repeat_n(b'p', n - 1));
        assert_eq!(
            oracles::oauth_state(&with(2, &path, b"\x00\x00\x00\x00")),
            expected
        );
    }
}

/// A seeded sweep of structured random inputs: mostly valid, with a bad byte now and then.
#[test]
fn seeded_sweep() {
    let mut rng = Rng::new(0x0A07_5747);
    let byte = |rng: &mut Rng| u8::try_from(rng.below(256)).expect("byte");
    let pick = |rng: &mut Rng, good: &[u8], n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                if rng.below(40) == 0 {
                    byte(rng)
                } else {
                    good[rng.below(good.len())]
                }
            })
            .collect()
    };
    let url_chars: &[u8] = b"aZ09-_.~/:%?&=#+@!$'()*,;[]\xc3\xa9";
    let alnum: &[u8] = b"abcXYZ0189";
    let path_chars: Vec<u8> = (b'!'..=b'~').collect();
    let (mut accepted, mut refused) = ([0; 2], [0; 2]);
    let mut count = |i: usize, outcome: Option<Result<(), &str>>| match outcome {
        Some(Ok(())) => accepted[i] += 1,
        Some(Err(_)) => refused[i] += 1,
        None => {}
    };
    for _ in 0..20_000 {
        let flags = u8::try_from(rng.below(256)).expect("byte");
        let n = rng.below(80);
        let redirect = pick(&mut rng, url_chars, n);
        let n = if rng.below(20) == 0 {
            120 + rng.below(20)
        } else {
            rng.below(40)
        };
        let state = pick(&mut rng, alnum, n);
        count(0, oracles::authorize_url(&with(flags, &redirect, &state)));

        let n = rng.below(64);
        let mut path = vec![b'/'];
        path.extend(pick(&mut rng, &path_chars, n));
        let n = 4 + rng.below(40);
        let rest = pick(&mut rng, alnum, n);
        count(1, oracles::oauth_state(&with(flags, &path, &rest)));
    }
    // Both outcomes are exercised, each often.
    for i in 0..2 {
        assert!(
            accepted[i] > 2_000 && refused[i] > 2_000,
            "{accepted:?} {refused:?}"
        );
    }
}
