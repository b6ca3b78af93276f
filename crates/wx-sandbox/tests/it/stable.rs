//! `cgi-bin/stable_token`: normal mode, force refresh and its limits, JSON-only body, isolation
//! from `cgi-bin/token`.

use std::time::Duration;

use serde_json::json;
use wx_core::{ErrCode, HttpRequest, HttpTransport};
use wx_sandbox::TokenStatus;

use crate::*;

fn body(force: bool) -> Vec<u8> {
    json!({"grant_type": "client_credential", "appid": APP, "secret": SECRET, "force_refresh": force})
        .to_string()
        .into_bytes()
}

/// (token, expires_in) of a successful call.
async fn stable(sb: &Sandbox, force: bool) -> (String, u64) {
    let r = post(sb, "/cgi-bin/stable_token", &body(force)).await;
    assert_eq!(content_type(&r), "application/json; encoding=utf-8");
    let v = json(&r);
    (
        v["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("{v}"))
            .to_owned(),
        v["expires_in"].as_u64().unwrap(),
    )
}

#[tokio::test]
async fn normal_mode_returns_the_same_token_with_its_remaining_lifetime() {
    let sb = sandbox();
    let (t1, e1) = stable(&sb, false).await;
    assert_eq!(e1, 7200);
    sb.clock().advance(Duration::from_secs(1000));
    let (t2, e2) = stable(&sb, false).await;
    assert_eq!(t2, t1);
    assert_eq!(e2, 6200);
    // Last second before the 5-minute window: still the same token.
    sb.clock().advance(Duration::from_secs(5899));
    let (t3, e3) = stable(&sb, false).await;
    assert_eq!((t3.as_str(), e3), (t1.as_str(), 301));
    // Inside the last 5 minutes: rotated; the old one lives out its lifetime.
    sb.clock().advance(Duration::from_secs(1));
    let (t4, e4) = stable(&sb, false).await;
    assert_ne!(t4, t1);
    assert_eq!(e4, 7200);
    assert_eq!(api_with(&sb, &t1).await, None);
    sb.clock().advance(Duration::from_secs(299));
    assert_eq!(api_with(&sb, &t1).await, None);
    sb.clock().advance(Duration::from_secs(1));
    assert_eq!(
        api_with(&sb, &t1).await,
        Some(ErrCode::ACCESS_TOKEN_EXPIRED)
    );
    assert_eq!(api_with(&sb, &t4).await, None);
    assert_eq!(
        sb.current_stable_token(APP).map(|t| t.secret().to_owned()),
        Some(t4)
    );
}

#[tokio::test]
async fn force_refresh_rotates_and_two_calls_30s_apart_kill_the_leaked_token() {
    let sb = sandbox();
    let (leaked, _) = stable(&sb, false).await;
    sb.clock().advance(Duration::from_secs(100));
    let (second, e) = stable(&sb, true).await;
    assert_ne!(second, leaked);
    assert_eq!(e, 7200);
    // After one force call the old token has a 5-minute grace.
    assert_eq!(api_with(&sb, &leaked).await, None);
    // A force call less than 30 s later does not refresh: the current token comes back.
    sb.clock().advance(Duration::from_secs(29));
    let (same, e) = stable(&sb, true).await;
    assert_eq!(same, second);
    assert_eq!(e, 7200 - 29);
    assert_eq!(api_with(&sb, &leaked).await, None);
    // 30 s after the refresh: a new token, and the leaked one is dead at once.
    sb.clock().advance(Duration::from_secs(1));
    let (third, _) = stable(&sb, true).await;
    assert_ne!(third, second);
    assert_eq!(
        api_with(&sb, &leaked).await,
        Some(ErrCode::INVALID_CREDENTIAL)
    );
    assert_eq!(sb.token_status(&leaked), TokenStatus::Replaced);
    // The second one is in its grace period now.
    assert_eq!(api_with(&sb, &second).await, None);
    sb.clock().advance(Duration::from_secs(300));
    assert_eq!(
        api_with(&sb, &second).await,
        Some(ErrCode::INVALID_CREDENTIAL)
    );
    assert_eq!(api_with(&sb, &third).await, None);
    // Normal mode now returns the force-refreshed token.
    assert_eq!(stable(&sb, false).await.0, third);
}

#[tokio::test]
async fn force_refresh_is_limited_to_20_calls_a_day() {
    let sb = sandbox();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..20 {
        seen.insert(stable(&sb, true).await.0);
        sb.clock().advance(Duration::from_secs(31));
    }
    assert_eq!(seen.len(), 20, "each spaced force call refreshed");
    let r = post(&sb, "/cgi-bin/stable_token", &body(true)).await;
    assert_error(&r, ErrCode::DAILY_QUOTA_EXCEEDED);
    // Normal mode still works.
    let (t, _) = stable(&sb, false).await;
    assert!(seen.contains(&t));
    // Next Beijing day: allowed again.
    sb.clock().advance(Duration::from_secs(24 * 3600));
    let (fresh, _) = stable(&sb, true).await;
    assert!(!seen.contains(&fresh));
}

#[tokio::test]
async fn force_calls_within_30s_count_against_the_daily_limit() {
    let sb = sandbox();
    for _ in 0..20 {
        stable(&sb, true).await;
    }
    let r = post(&sb, "/cgi-bin/stable_token", &body(true)).await;
    assert_error(&r, ErrCode::DAILY_QUOTA_EXCEEDED);
}

#[tokio::test]
async fn a_form_or_query_call_is_41002_appid_missing() {
    let sb = sandbox();
    let form = format!("grant_type=client_credential&appid={APP}&secret={SECRET}");
    let mut req = HttpRequest::post_json(format!("{API}/cgi-bin/stable_token"), form.into_bytes());
    req.headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    assert_error(&sb.send(req).await.unwrap(), ErrCode::APPID_MISSING);
    let query = get(
        &sb,
        "/cgi-bin/stable_token",
        &[
            ("grant_type", "client_credential"),
            ("appid", APP),
            ("secret", SECRET),
        ],
    )
    .await;
    assert_error(&query, ErrCode::APPID_MISSING);
    assert_error(
        &post(&sb, "/cgi-bin/stable_token", b"[1,2]").await,
        ErrCode::APPID_MISSING,
    );
    assert!(sb.current_stable_token(APP).is_none());
}

#[tokio::test]
async fn credential_errors() {
    let sb = sandbox();
    let cases = [
        (
            json!({"grant_type": "client_credential", "appid": APP, "secret": "nope"}),
            ErrCode::INVALID_APPSECRET,
        ),
        (
            json!({"grant_type": "client_credential", "appid": "wx00", "secret": SECRET}),
            ErrCode::INVALID_APPID,
        ),
        (
            json!({"grant_type": "password", "appid": APP, "secret": SECRET}),
            ErrCode::INVALID_GRANT_TYPE,
        ),
        (
            json!({"grant_type": "client_credential", "appid": APP}),
            ErrCode::SECRET_MISSING,
        ),
        (
            json!({"grant_type": "client_credential", "secret": SECRET}),
            ErrCode::APPID_MISSING,
        ),
    ];
    for (b, code) in cases {
        let r = post(&sb, "/cgi-bin/stable_token", b.to_string().as_bytes()).await;
        assert_error(&r, code);
    }
}

#[tokio::test]
async fn isolated_from_cgi_bin_token_and_both_authorise_apis() {
    let sb = sandbox();
    let (stable_token, _) = stable(&sb, false).await;
    let base = base_token(&sb).await;
    assert_ne!(stable_token, base);
    // Many base-token calls and 10 minutes later: the stable token is untouched.
    for _ in 0..3 {
        base_token(&sb).await;
    }
    sb.clock().advance(Duration::from_secs(600));
    assert_eq!(api_with(&sb, &stable_token).await, None);
    assert_eq!(
        api_with(&sb, &base).await,
        Some(ErrCode::INVALID_CREDENTIAL)
    );
    // A force refresh of the stable token does not touch the latest base token.
    let latest_base = base_token(&sb).await;
    stable(&sb, true).await;
    sb.clock().advance(Duration::from_secs(31));
    stable(&sb, true).await;
    assert_eq!(api_with(&sb, &latest_base).await, None);
    assert_eq!(sb.count("/cgi-bin/stable_token"), 3);
}
