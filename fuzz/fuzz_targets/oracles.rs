//! The properties the `authorize_url` and `oauth_state` fuzz targets check, shared with the
//! regression tests of `tests/reliability` (included there with `#[path]`), so every input the
//! fuzzer ever found is replayed by `cargo test`.
//!
//! Each function takes arbitrary bytes and panics when a property breaks. It returns what
//! happened (`None`: too short to use; `Some(Ok(()))`: accepted; `Some(Err(argument))`: refused,
//! naming the argument), so hand-written cases can check they test what they mean to.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, UNIX_EPOCH};

use wx_core::{
    AppSecret, Clock, Error, HttpTransport, ManualClock, MemoryTokenStore, Scope, TokenStore,
    TransportError, TransportErrorKind, transport_fn,
};
use wx_official::state::{MAX_TTL, StateError, StateSigner};
use wx_official::{AuthorizeUrl, DynOfficialAccount, OfficialAccount};

const APPID: &str = "wx1234567890abcdef";
const AUTHORIZE: &str = "https://open.weixin.qq.com/connect/oauth2/authorize?";

/// A client whose transport refuses everything: building URLs sends nothing.
fn client() -> &'static DynOfficialAccount {
    static CLIENT: OnceLock<DynOfficialAccount> = OnceLock::new();
    CLIENT.get_or_init(|| {
        let transport: Arc<dyn HttpTransport> = Arc::new(transport_fn(|_| async {
            Err(TransportError::from_kind(TransportErrorKind::Other))
        }));
        let store: Arc<dyn TokenStore> = Arc::new(MemoryTokenStore::new());
        OfficialAccount::builder(APPID, AppSecret::new("fuzz-secret"))
            .build(transport, store)
            .expect("valid options")
    })
}

/// WeChat's rule for `state`: at most 128 of `[A-Za-z0-9]`, possibly none.
fn state_ok(state: &str) -> bool {
    state.len() <= 128 && state.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The documented rule for `redirect_uri`: 1 to 2048 bytes, an absolute `http(s)://` URL (scheme
/// in any case) with a host, no whitespace or control character.
fn redirect_ok(uri: &str) -> bool {
    let lower = uri.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    // The host: what stands between `scheme://` (and any `userinfo@`) and the first `/`, `?`,
    // `#` or `:port`.
    let host = rest.map_or("", |r| {
        let authority = &r[..r.find(['/', '?', '#']).unwrap_or(r.len())];
        let host_port = authority.rsplit('@').next().unwrap_or(authority);
        &host_port[..host_port.find(':').unwrap_or(host_port.len())]
    });
    !uri.is_empty()
        && uri.len() <= 2048
        && !host.is_empty()
        && !uri.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Percent-decoding written here, not taken from the SDK, so the round trip is checked by an
/// independent decoder. `None` for a malformed escape.
fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Splits fuzz input `[flags, cut (2 bytes, big-endian), bytes...]` into the flags and two
/// strings: the bytes before `cut` and the rest.
fn split(data: &[u8]) -> Option<(u8, String, String)> {
    let (&flags, rest) = data.split_first()?;
    let (cut, rest) = (rest.get(..2)?, &rest[2..]);
    let at = usize::from(u16::from_be_bytes([cut[0], cut[1]])).min(rest.len());
    let (a, b) = rest.split_at(at);
    Some((
        flags,
        String::from_utf8_lossy(a).into_owned(),
        String::from_utf8_lossy(b).into_owned(),
    ))
}

/// `authorize_url` / `authorize_url_with` with any redirect URI, state and scope: no panic; a
/// URL only for a valid redirect URI and a state matching `^[A-Za-z0-9]{0,128}$`, otherwise
/// `InvalidInput` naming the first bad one; the URL has exactly WeChat's parameters in
/// WeChat's order, ends with `#wechat_redirect`, and its `redirect_uri` percent-decodes back to
/// the input.
pub(crate) fn authorize_url(data: &[u8]) -> Option<Result<(), &'static str>> {
    let (flags, redirect, state) = split(data)?;
    // Steer half the inputs towards valid URLs, so the URL checks run often.
    let redirect = match flags & 3 {
        0 => redirect,
        1 => format!("https://{redirect}"),
        2 => format!("http://{redirect}"),
        _ => format!("HtTpS://{redirect}"),
    };
    let scope = if flags & 4 == 0 {
        Scope::Base
    } else {
        Scope::UserInfo
    };
    let popup = flags & 8 != 0;
    let result = if flags & 16 == 0 && !popup {
        client().authorize_url(&redirect, scope, &state)
    } else {
        client().authorize_url_with(
            &AuthorizeUrl::new(&redirect, scope)
                .state(&state)
                .force_popup(popup),
        )
    };
    let url = match result {
        Ok(url) => url,
        Err(Error::InvalidInput(i)) => {
            let expected = if !redirect_ok(&redirect) {
                "redirect_uri"
            } else {
                assert!(!state_ok(&state), "valid inputs refused: {i}");
                "state"
            };
            assert_eq!(i.argument, expected, "{redirect:?} {state:?}");
            return Some(Err(expected));
        }
        Err(e) => panic!("not an invalid-input error: {e:?}"),
    };
    assert!(redirect_ok(&redirect), "accepted redirect_uri {redirect:?}");
    assert!(state_ok(&state), "accepted state {state:?}");
    let query = url
        .strip_suffix("#wechat_redirect")
        .unwrap_or_else(|| panic!("no #wechat_redirect at the end: {url}"));
    assert!(!query.contains('#'), "a second fragment: {url}");
    let query = query
        .strip_prefix(AUTHORIZE)
        .unwrap_or_else(|| panic!("not the authorize page: {url}"));
    let pairs: Vec<(&str, &str)> = query
        .split('&')
        .map(|p| {
            p.split_once('=')
                .unwrap_or_else(|| panic!("{p:?} in {url}"))
        })
        .collect();
    let names: Vec<&str> = pairs.iter().map(|(k, _)| *k).collect();
    let mut expected = vec!["appid", "redirect_uri", "response_type", "scope", "state"];
    if popup {
        expected.push("forcePopup");
    }
    assert_eq!(names, expected, "{url}");
    assert_eq!(pairs[0].1, APPID);
    assert_eq!(pairs[2].1, "code");
    assert_eq!(pairs[3].1, scope.as_str());
    assert_eq!(pairs[4].1, state);
    if popup {
        assert_eq!(pairs[5].1, "true");
    }
    let encoded = pairs[1].1;
    assert!(
        encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)),
        "unescaped character in {encoded}"
    );
    let decoded = percent_decode(encoded).unwrap_or_else(|| panic!("bad escape in {encoded}"));
    assert_eq!(
        decoded,
        redirect.as_bytes(),
        "redirect_uri does not round-trip"
    );
    Some(Ok(()))
}

/// The rule [`wx_official::state::check_return_path`] documents.
fn return_path_ok(path: &str) -> bool {
    let path_part = path.split(['?', '#']).next().unwrap_or_default();
    let lower = path_part.to_ascii_lowercase();
    path.starts_with('/')
        && !path_part.contains("//")
        && !path_part.split('/').any(|s| s == "." || s == "..")
        && !["%2e", "%2f", "%5c"].iter().any(|e| lower.contains(e))
        && path.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
        && path.len() <= wx_official::state::MAX_RETURN_PATH_LEN
}

/// A signing key never used before in this process. With one key for every run, a state
/// issued in an earlier run is authentic, and libFuzzer, which records the operands of
/// comparisons, does feed those back as input (it found one within seconds).
fn fresh_key() -> [u8; 32] {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let mut key = *b"fuzz-state-key-0123456789abcdef!";
    key[..8].copy_from_slice(&RUNS.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    key
}
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Edits a state as the fuzzer says: replace, delete or insert a character, or truncate.
fn edit(state: &str, edits: &[u8]) -> String {
    let mut s: Vec<u8> = state.as_bytes().to_vec();
    for e in edits.chunks_exact(3) {
        let pos = usize::from(e[1]) % (s.len() + 1);
        let c = ALPHABET[usize::from(e[2]) % 62];
        match e[0] % 5 {
            0 if pos < s.len() => s[pos] = c,
            1 if pos < s.len() => {
                s.remove(pos);
            }
            2 => s.insert(pos, c),
            3 => s.truncate(pos),
            _ => s.insert(pos, e[2]),
        }
    }
    String::from_utf8_lossy(&s).into_owned()
}

/// `StateSigner`: `verify` on any input never panics and never accepts what was not issued;
/// `issue` refuses exactly the invalid lifetimes and return paths (naming which) and otherwise
/// gives a state WeChat accepts, which verifies to the same return path and lifetime, only
/// with its binding, expires exactly at its end, and is refused after any edit.
pub(crate) fn oauth_state(data: &[u8]) -> Option<Result<(), &'static str>> {
    let (flags, path, rest) = split(data)?;
    let (head, tail) = rest.as_bytes().split_at(rest.len().min(4));
    let head: [u8; 4] = std::array::from_fn(|i| head.get(i).copied().unwrap_or(0));
    let ttl = match flags % 8 {
        0 => Duration::from_millis(999),
        1 => Duration::from_secs(1),
        2 => MAX_TTL,
        3 => MAX_TTL + Duration::from_secs(1),
        _ => Duration::from_secs(u64::from(u16::from_be_bytes([head[0], head[1]]))),
    };
    let advance = Duration::from_secs(u64::from(head[2]) * 4 + u64::from(flags >> 7));
    let binding: &[u8] = if flags & 8 == 0 {
        &[]
    } else {
        &tail[..tail.len().min(usize::from(head[3] >> 4))]
    };
    let (edits, arbitrary) = tail.split_at(tail.len().min(usize::from(head[3] & 7) * 3));
    let arbitrary = String::from_utf8_lossy(arbitrary).into_owned();
    let return_path = if flags & 16 != 0 && path.is_empty() {
        None
    } else {
        Some(path.as_str())
    };

    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_714_036_504));
    let signer = StateSigner::new(&fresh_key(), Arc::new(clock.clone())).expect("32-byte key");

    // Never accepted: anything the fuzzer wrote (it cannot know this run's key).
    assert!(signer.verify(&arbitrary).is_err(), "accepted {arbitrary:?}");
    assert!(
        signer.verify_bound(&arbitrary, binding).is_err(),
        "accepted {arbitrary:?}"
    );

    let ttl_ok = ttl >= Duration::from_secs(1) && ttl <= MAX_TTL;
    let issued = signer.issue_bound(binding, return_path, ttl);
    let state = match issued {
        Err(e) => {
            let expected = if !ttl_ok { "ttl" } else { "return_path" };
            assert!(
                !ttl_ok || !return_path.is_none_or(return_path_ok),
                "valid inputs refused: {e} ({return_path:?}, {ttl:?})"
            );
            assert_eq!(e.argument, expected, "{return_path:?} {ttl:?}");
            return Some(Err(expected));
        }
        Ok(state) => state,
    };
    assert!(ttl_ok, "issued with lifetime {ttl:?}");
    assert!(
        return_path.is_none_or(return_path_ok),
        "issued with {return_path:?}"
    );
    assert!(
        !state.is_empty() && state_ok(&state),
        "not a state WeChat accepts: {state:?}"
    );
    client()
        .authorize_url("https://example.com/cb", Scope::Base, &state)
        .expect("the authorize URL takes the state");

    let v = signer
        .verify_bound(&state, binding)
        .unwrap_or_else(|e| panic!("own state refused: {e:?}"));
    assert_eq!(v.return_path.as_deref(), return_path);
    assert_eq!(v.issued_at, clock.now());
    assert_eq!(v.expires_at, v.issued_at + ttl);
    if !binding.is_empty() {
        assert_eq!(signer.verify(&state), Err(StateError::Forged));
        let mut other = binding.to_vec();
        other[0] ^= 1;
        assert_eq!(signer.verify_bound(&state, &other), Err(StateError::Forged));
    }
    let edited = edit(&state, edits);
    if edited != state {
        assert!(
            matches!(
                signer.verify_bound(&edited, binding),
                Err(StateError::Malformed | StateError::Forged)
            ),
            "an edited state was not refused: {state} -> {edited}"
        );
    }

    clock.advance(advance);
    let later = signer.verify_bound(&state, binding);
    if advance < ttl {
        assert_eq!(later.map(|v| v.expires_at), Ok(v.expires_at));
    } else {
        assert_eq!(
            later,
            Err(StateError::Expired {
                expired_at: v.expires_at
            })
        );
    }
    Some(Ok(()))
}
