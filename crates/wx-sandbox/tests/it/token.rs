//! `cgi-bin/token`: a new token per call, 5-minute grace of the old one, the daily quota,
//! credential errors.

use std::time::Duration;

use wx_core::{AccessTokenResponse, ErrCode, decode_response};
use wx_sandbox::{Sandbox, TokenStatus};

use crate::*;

fn q<'a>(appid: &'a str, secret: &'a str) -> [(&'static str, &'a str); 3] {
    [
        ("grant_type", "client_credential"),
        ("appid", appid),
        ("secret", secret),
    ]
}

#[tokio::test]
async fn issues_a_new_token_on_every_call_with_7200_seconds() {
    let sb = sandbox();
    let r = get(&sb, "/cgi-bin/token", &q(APP, SECRET)).await;
    assert_eq!(r.status, 200);
    assert_eq!(content_type(&r), "application/json; encoding=utf-8");
    let first: AccessTokenResponse = decode_response("token", &r.body).expect("token shape");
    assert_eq!(first.expires_in, 7200);
    assert!(first.access_token.secret().len() >= 100);
    let second = base_token(&sb).await;
    assert_ne!(first.access_token.secret(), second);
    assert_eq!(
        sb.current_token(APP).map(|t| t.secret().to_owned()),
        Some(second)
    );
    assert_eq!(sb.count("/cgi-bin/token"), 2);
}

#[tokio::test]
async fn old_token_stays_valid_for_five_minutes_then_is_not_latest() {
    let sb = sandbox();
    let old = base_token(&sb).await;
    assert_eq!(api_with(&sb, &old).await, None);
    sb.clock().advance(Duration::from_secs(60));
    let new = base_token(&sb).await;
    // Both valid during the grace period.
    sb.clock().advance(Duration::from_secs(299));
    assert_eq!(api_with(&sb, &old).await, None);
    assert_eq!(api_with(&sb, &new).await, None);
    assert_eq!(sb.token_status(&old), TokenStatus::Valid);
    // 300 s after the new one was issued the old one is refused with 40001, the new one works.
    sb.clock().advance(Duration::from_secs(1));
    assert_eq!(api_with(&sb, &old).await, Some(ErrCode::INVALID_CREDENTIAL));
    assert_eq!(sb.token_status(&old), TokenStatus::Replaced);
    assert_eq!(api_with(&sb, &new).await, None);
}

#[tokio::test]
async fn token_expires_after_7200_seconds_with_42001() {
    let sb = sandbox();
    let t = base_token(&sb).await;
    sb.clock().advance(Duration::from_secs(7199));
    assert_eq!(api_with(&sb, &t).await, None);
    sb.clock().advance(Duration::from_secs(1));
    assert_eq!(api_with(&sb, &t).await, Some(ErrCode::ACCESS_TOKEN_EXPIRED));
    assert_eq!(sb.token_status(&t), TokenStatus::Expired);
    assert!(sb.current_token(APP).is_none());
}

#[tokio::test]
async fn bad_token_is_40001_with_wechats_message_and_a_rid() {
    let sb = sandbox();
    let r = get(
        &sb,
        "/cgi-bin/get_api_domain_ip",
        &[("access_token", "not-a-token")],
    )
    .await;
    assert_error(&r, ErrCode::INVALID_CREDENTIAL);
    let raw = json(&r)["errmsg"].as_str().unwrap().to_owned();
    assert!(
        raw.starts_with("invalid credential, access_token is invalid or not latest rid: "),
        "{raw}"
    );
    let rid = api_error(&r).request_id.unwrap();
    let groups: Vec<&str> = rid.split('-').collect();
    assert_eq!(groups.len(), 3);
    assert!(
        groups
            .iter()
            .all(|g| g.len() == 8 && g.bytes().all(|b| b.is_ascii_hexdigit()))
    );
    // The first group is the time, as in WeChat's rids.
    assert_eq!(groups[0], format!("{:08x}", 1_700_000_000u32));
    // A fresh rid per answer.
    let r2 = get(&sb, "/cgi-bin/get_api_domain_ip", &[("access_token", "x")]).await;
    assert_ne!(api_error(&r2).request_id.unwrap(), rid);
    let missing = get(&sb, "/cgi-bin/get_api_domain_ip", &[]).await;
    assert_error(&missing, ErrCode::ACCESS_TOKEN_MISSING);
}

#[tokio::test]
async fn credential_and_parameter_errors() {
    let sb = sandbox();
    let cases: Vec<(Vec<(&str, &str)>, ErrCode)> = vec![
        (q(APP, "wrong-secret").to_vec(), ErrCode::INVALID_APPSECRET),
        (
            q("wx0000000000000000", SECRET).to_vec(),
            ErrCode::INVALID_APPID,
        ),
        // The other app's secret is not this app's.
        (q(APP, OTHER_SECRET).to_vec(), ErrCode::INVALID_APPSECRET),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("appid", APP),
                ("secret", SECRET),
            ],
            ErrCode::INVALID_GRANT_TYPE,
        ),
        (
            vec![("appid", APP), ("secret", SECRET)],
            ErrCode::INVALID_GRANT_TYPE,
        ),
        (
            vec![("grant_type", "client_credential"), ("secret", SECRET)],
            ErrCode::APPID_MISSING,
        ),
        (
            vec![
                ("grant_type", "client_credential"),
                ("appid", ""),
                ("secret", SECRET),
            ],
            ErrCode::APPID_MISSING,
        ),
        (
            vec![("grant_type", "client_credential"), ("appid", APP)],
            ErrCode::SECRET_MISSING,
        ),
    ];
    for (query, code) in cases {
        let r = get(&sb, "/cgi-bin/token", &query).await;
        assert_error(&r, code);
    }
    assert!(
        sb.current_token(APP).is_none(),
        "no failing call issued a token"
    );
    assert_eq!(sb.count("/cgi-bin/token"), 8);
}

#[tokio::test]
async fn quota_of_2000_a_day_then_45009_until_beijing_midnight() {
    let sb = sandbox();
    for i in 0..2000 {
        let r = get(&sb, "/cgi-bin/token", &q(APP, SECRET)).await;
        assert!(json(&r)["access_token"].is_string(), "call {i}");
    }
    let r = get(&sb, "/cgi-bin/token", &q(APP, SECRET)).await;
    assert_error(&r, ErrCode::DAILY_QUOTA_EXCEEDED);
    // Other apps have their own quota.
    let other = get(&sb, "/cgi-bin/token", &q(OTHER_APP, OTHER_SECRET)).await;
    assert!(json(&other)["access_token"].is_string());
    // The day is Beijing's: 1_700_000_000 is 06:13:20 there; midnight is 17h46m40s later.
    sb.clock()
        .advance(Duration::from_secs(17 * 3600 + 46 * 60 + 39));
    let r = get(&sb, "/cgi-bin/token", &q(APP, SECRET)).await;
    assert_error(&r, ErrCode::DAILY_QUOTA_EXCEEDED);
    sb.clock().advance(Duration::from_secs(1));
    let r = get(&sb, "/cgi-bin/token", &q(APP, SECRET)).await;
    assert!(json(&r)["access_token"].is_string(), "{:?}", json(&r));
}

#[tokio::test]
async fn failing_calls_burn_the_quota_too() {
    let sb = Sandbox::builder()
        .app(APP, SECRET)
        .token_daily_quota(3)
        .build()
        .unwrap();
    for _ in 0..3 {
        let r = get(&sb, "/cgi-bin/token", &q(APP, "wrong")).await;
        assert_error(&r, ErrCode::INVALID_APPSECRET);
    }
    let r = get(&sb, "/cgi-bin/token", &q(APP, SECRET)).await;
    assert_error(&r, ErrCode::DAILY_QUOTA_EXCEEDED);
}

#[tokio::test]
async fn counters_count_per_path_and_reset() {
    let sb = sandbox();
    base_token(&sb).await;
    base_token(&sb).await;
    get(&sb, "/sns/auth", &[]).await;
    get(&sb, "/no/such/path", &[]).await;
    assert_eq!(sb.count("/cgi-bin/token"), 2);
    assert_eq!(sb.count("/sns/auth"), 1);
    assert_eq!(sb.count("/no/such/path"), 1);
    assert_eq!(sb.count("/cgi-bin/stable_token"), 0);
    assert_eq!(sb.total_count(), 4);
    assert_eq!(sb.counts().len(), 3);
    sb.reset_counts();
    assert_eq!(sb.total_count(), 0);
    assert_eq!(sb.count("/cgi-bin/token"), 0);
    // Clones share the counters.
    let clone = sb.clone();
    base_token(&clone).await;
    assert_eq!(sb.count("/cgi-bin/token"), 1);
}

#[tokio::test]
async fn unknown_path_is_404() {
    let sb = sandbox();
    let r = get(&sb, "/cgi-bin/nothing", &[]).await;
    assert_eq!(r.status, 404);
}
