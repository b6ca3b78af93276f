//! The whole web login on the sandbox: a signed, browser-bound state on the authorize URL, the
//! sandbox's redirect to the callback, the state checked there (tampered, forged, expired
//! refused), the double redirect answered by the idempotent exchange, the profile.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use wx_core::urlenc::parse_query;
use wx_core::{HttpRequest, HttpTransport, Lang, Scope};
use wx_official::{StateError, StateSigner};

use crate::common::*;

const CALLBACK: &str = "https://app.example.com/wx/callback";
const COOKIE: &[u8] = b"browser-cookie-5f2c9a";

/// What the browser does with the authorize URL: WeChat's page (the sandbox's) answers with a
/// redirect to the callback; returns the callback's `code` and `state`.
async fn authorize(s: &SandboxSetup, state: &str) -> (String, String) {
    let url = s
        .client
        .authorize_url(CALLBACK, Scope::UserInfo, state)
        .expect("valid authorize URL");
    // A browser does not send the `#wechat_redirect` fragment.
    let url = url.split('#').next().expect("a URL").to_owned();
    let response = s.sandbox.send(HttpRequest::get(url)).await.expect("sent");
    assert_eq!(response.status, StatusCode::FOUND);
    let location = response
        .headers
        .get(http::header::LOCATION)
        .expect("a redirect")
        .to_str()
        .expect("ASCII")
        .to_owned();
    let (base, query) = location.split_once('?').expect("a query");
    assert_eq!(base, CALLBACK);
    let params = parse_query(query);
    let get = |k: &str| {
        params
            .iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {k} in {location}"))
    };
    (get("code"), get("state"))
}

#[tokio::test]
async fn login_with_a_signed_state_and_a_double_redirect() {
    let s = sandbox_setup_with(|b| b.idempotent_code_exchange(Duration::from_secs(60)));
    let signer =
        StateSigner::new(&[42u8; 32], Arc::new(s.sandbox.clock().clone())).expect("signer");
    let state = signer
        .issue_bound(COOKIE, Some("/orders/42"), Duration::from_secs(600))
        .expect("state");

    let (code, returned) = authorize(&s, &state).await;
    assert_eq!(returned, state, "WeChat echoes the state unchanged");
    let verified = signer.verify_bound(&returned, COOKIE).expect("authentic");
    assert_eq!(verified.return_path.as_deref(), Some("/orders/42"));

    // The callback page is loaded twice (WeChat's double redirect): one upstream exchange.
    let first = s
        .client
        .exchange_code_for(&verified, &code)
        .await
        .expect("first load");
    // The reload verifies the same state with the same cookie again.
    let reloaded = signer.verify_bound(&returned, COOKIE).expect("authentic");
    let second = s
        .client
        .exchange_code_for(&reloaded, &code)
        .await
        .expect("second load");
    assert!(first.access_token.ct_eq(&second.access_token));
    assert_eq!(s.sandbox.count("/sns/oauth2/access_token"), 1);
    let user = s
        .client
        .user_info(&first.access_token, &first.openid, Lang::ZhCn)
        .await
        .expect("profile");
    assert_eq!(user.nickname, "Alice");
    assert_eq!(user.openid.as_str(), ALICE);
}

#[tokio::test]
async fn tampered_forged_and_expired_states_are_refused_at_the_callback() {
    let s = sandbox_setup_with(|b| b);
    let clock = s.sandbox.clock().clone();
    let signer = StateSigner::new(&[42u8; 32], Arc::new(clock.clone())).expect("signer");
    let state = signer
        .issue_bound(COOKIE, Some("/orders/42"), Duration::from_secs(600))
        .expect("state");
    let (_, returned) = authorize(&s, &state).await;

    // Tampered on the way: a truncated state, a changed character.
    assert_eq!(
        signer.verify_bound(&returned[..returned.len() - 5], COOKIE),
        Err(StateError::Malformed)
    );
    let mut changed = returned.clone().into_bytes();
    let last = changed.len() - 1;
    changed[last] = if changed[last] == b'A' { b'B' } else { b'A' };
    let changed = String::from_utf8(changed).expect("ASCII");
    assert!(matches!(
        signer.verify_bound(&changed, COOKIE),
        Err(StateError::Malformed | StateError::Forged)
    ));
    // Forged: another key, or the link opened in another browser (another cookie).
    let other = StateSigner::new(&[7u8; 32], Arc::new(clock.clone())).expect("signer");
    assert_eq!(
        other.verify_bound(&returned, COOKIE),
        Err(StateError::Forged)
    );
    assert_eq!(
        signer.verify_bound(&returned, b"another-browser"),
        Err(StateError::Forged)
    );
    // Expired: the user came back after the state's 10 minutes.
    clock.advance(Duration::from_secs(601));
    assert!(matches!(
        signer.verify_bound(&returned, COOKIE),
        Err(StateError::Expired { .. })
    ));
}
