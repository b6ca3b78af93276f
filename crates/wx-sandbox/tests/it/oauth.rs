//! Web authorization: the authorize page, codes, web tokens, refresh, userinfo, sns/auth.

use std::time::Duration;

use wx_core::urlenc::parse_query;
use wx_core::{ErrCode, OAuthToken, Scope, Sex, UserInfo, decode_response};
use wx_sandbox::{Consent, Sandbox, SandboxError, UserProfile};

use crate::*;

const CALLBACK: &str = "https://app.example.com/wx/callback?from=menu";

pub(crate) async fn authorize(sb: &Sandbox, appid: &str, scope: &str, state: &str) -> HttpResponse {
    get(
        sb,
        "/connect/oauth2/authorize",
        &[
            ("appid", appid),
            ("redirect_uri", CALLBACK),
            ("response_type", "code"),
            ("scope", scope),
            ("state", state),
        ],
    )
    .await
}

pub(crate) fn location(r: &HttpResponse) -> String {
    assert_eq!(r.status, 302, "{:?}", String::from_utf8_lossy(&r.body));
    r.headers
        .get(http::header::LOCATION)
        .expect("a Location")
        .to_str()
        .unwrap()
        .to_owned()
}

/// The query of the redirect, asserting it goes to the callback.
pub(crate) fn callback_params(r: &HttpResponse) -> Vec<(String, String)> {
    let loc = location(r);
    let rest = loc
        .strip_prefix("https://app.example.com/wx/callback?")
        .unwrap_or_else(|| panic!("{loc}"));
    parse_query(rest)
}

pub(crate) fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

async fn exchange(sb: &Sandbox, appid: &str, secret: &str, code: &str) -> HttpResponse {
    get(
        sb,
        "/sns/oauth2/access_token",
        &[
            ("appid", appid),
            ("secret", secret),
            ("code", code),
            ("grant_type", "authorization_code"),
        ],
    )
    .await
}

async fn web_token(sb: &Sandbox, openid: &str, scope: Scope) -> OAuthToken {
    let code = sb.issue_code(APP, openid, scope).unwrap();
    let r = exchange(sb, APP, SECRET, &code).await;
    decode_response("exchange", &r.body).expect("an OAuth token")
}

async fn userinfo(sb: &Sandbox, token: &str, openid: &str) -> HttpResponse {
    get(
        sb,
        "/sns/userinfo",
        &[
            ("access_token", token),
            ("openid", openid),
            ("lang", "zh_CN"),
        ],
    )
    .await
}

async fn refresh(sb: &Sandbox, appid: &str, refresh_token: &str) -> HttpResponse {
    get(
        sb,
        "/sns/oauth2/refresh_token",
        &[
            ("appid", appid),
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

#[tokio::test]
async fn authorize_redirects_with_code_and_state_and_the_code_logs_the_user_in() {
    let sb = sandbox();
    let r = authorize(&sb, APP, "snsapi_userinfo", "xyz123").await;
    let params = callback_params(&r);
    assert_eq!(param(&params, "from"), Some("menu"), "existing query kept");
    assert_eq!(param(&params, "state"), Some("xyz123"));
    let code = param(&params, "code").expect("a code");
    assert_eq!(code.len(), 32);
    let r = exchange(&sb, APP, SECRET, code).await;
    assert_eq!(content_type(&r), "text/plain");
    let t: OAuthToken = decode_response("exchange", &r.body).unwrap();
    assert_eq!(
        t.openid.as_str(),
        ALICE,
        "the first registered user consents"
    );
    assert_eq!(t.scope, "snsapi_userinfo");
    assert_eq!(t.expires_in, 7200);
    assert_eq!(
        t.unionid.as_ref().map(|u| u.as_str()),
        Some("o6_bmasdasdsad6_2sgVt7hMZOPfL2M")
    );
    assert!(!t.is_snapshotuser);
    assert!(
        json(&r).get("is_snapshotuser").is_none(),
        "only present when 1"
    );
    assert_eq!(sb.count("/connect/oauth2/authorize"), 1);
}

#[tokio::test]
async fn consent_chooses_the_user_or_refuses() {
    let sb = sandbox();
    sb.set_consent(APP, Consent::User(BOB.into())).unwrap();
    let params = callback_params(&authorize(&sb, APP, "snsapi_base", "s1").await);
    let r = exchange(&sb, APP, SECRET, param(&params, "code").unwrap()).await;
    assert_eq!(json(&r)["openid"], BOB);
    assert_eq!(json(&r)["scope"], "snsapi_base");

    sb.set_consent(APP, Consent::Deny).unwrap();
    let params = callback_params(&authorize(&sb, APP, "snsapi_userinfo", "s2").await);
    assert_eq!(param(&params, "state"), Some("s2"));
    assert_eq!(param(&params, "code"), None, "refusal carries no code");

    assert_eq!(
        sb.set_consent(APP, Consent::User("o-nobody".into())),
        Err(SandboxError::UnknownUser)
    );
    assert_eq!(
        sb.set_consent("wx-none", Consent::Deny),
        Err(SandboxError::UnknownApp)
    );
}

#[tokio::test]
async fn authorize_errors_are_html_pages_not_json() {
    let sb = Sandbox::builder()
        .app(APP, SECRET)
        .user(APP, alice())
        .oauth_domain(APP, "app.example.com")
        .build()
        .unwrap();
    let page = |r: &HttpResponse| {
        assert_eq!(r.status, 200);
        assert_eq!(content_type(r), "text/html; charset=utf-8");
        assert!(serde_json::from_slice::<serde_json::Value>(&r.body).is_err());
        String::from_utf8(r.body.to_vec()).unwrap()
    };
    let unknown = page(&authorize(&sb, "wx0000000000000000", "snsapi_base", "s").await);
    assert!(unknown.contains("appid"), "{unknown}");
    let scope = page(&authorize(&sb, APP, "snsapi_login", "s").await);
    assert!(scope.contains("10005"), "{scope}");
    let two_scopes = page(&authorize(&sb, APP, "snsapi_base,snsapi_userinfo", "s").await);
    assert!(two_scopes.contains("10005"), "{two_scopes}");
    let other_domain = get(
        &sb,
        "/connect/oauth2/authorize",
        &[
            ("appid", APP),
            ("redirect_uri", "https://evil.example.net/cb"),
            ("response_type", "code"),
            ("scope", "snsapi_base"),
        ],
    )
    .await;
    assert!(page(&other_domain).contains("10003"));
    let no_redirect = get(
        &sb,
        "/connect/oauth2/authorize",
        &[
            ("appid", APP),
            ("response_type", "code"),
            ("scope", "snsapi_base"),
        ],
    )
    .await;
    assert!(page(&no_redirect).contains("10011"));
    // The configured domain is accepted, and the state may be absent.
    let ok = get(
        &sb,
        "/connect/oauth2/authorize",
        &[
            ("appid", APP),
            ("redirect_uri", CALLBACK),
            ("response_type", "code"),
            ("scope", "snsapi_base"),
        ],
    )
    .await;
    assert_eq!(param(&callback_params(&ok), "state"), Some(""));
}

#[tokio::test]
async fn code_is_single_use_40163() {
    let sb = sandbox();
    let code = sb.issue_code(APP, ALICE, Scope::Base).unwrap();
    let first = exchange(&sb, APP, SECRET, &code).await;
    assert!(json(&first)["access_token"].is_string());
    let second = exchange(&sb, APP, SECRET, &code).await;
    assert_error(&second, ErrCode::CODE_BEEN_USED);
    assert_eq!(api_error(&second).message, "code been used");
}

#[tokio::test]
async fn code_expires_after_five_minutes_40029() {
    let sb = sandbox();
    let young = sb.issue_code(APP, ALICE, Scope::Base).unwrap();
    let old = sb.issue_code(APP, ALICE, Scope::Base).unwrap();
    sb.clock().advance(Duration::from_secs(299));
    assert!(json(&exchange(&sb, APP, SECRET, &young).await)["openid"].is_string());
    sb.clock().advance(Duration::from_secs(1));
    assert_error(
        &exchange(&sb, APP, SECRET, &old).await,
        ErrCode::INVALID_CODE,
    );
}

#[tokio::test]
async fn code_of_another_app_wrong_code_and_credentials() {
    let sb = sandbox();
    let code = sb.issue_code(APP, ALICE, Scope::Base).unwrap();
    assert_error(
        &exchange(&sb, OTHER_APP, OTHER_SECRET, &code).await,
        ErrCode::INVALID_CODE,
    );
    assert_error(
        &exchange(&sb, APP, SECRET, "0a1b2c3d4e5f").await,
        ErrCode::INVALID_CODE,
    );
    assert_error(
        &exchange(&sb, APP, "bad-secret", &code).await,
        ErrCode::INVALID_APPSECRET,
    );
    assert_error(
        &exchange(&sb, "wx0000000000000000", SECRET, &code).await,
        ErrCode::INVALID_APPID,
    );
    // None of the failures used the code up.
    assert!(json(&exchange(&sb, APP, SECRET, &code).await)["openid"].is_string());
    assert_eq!(
        sb.issue_code(APP, "o-nobody", Scope::Base),
        Err(SandboxError::UnknownUser)
    );
    assert_eq!(
        sb.issue_code("wx-none", ALICE, Scope::Base),
        Err(SandboxError::UnknownApp)
    );
}

#[tokio::test]
async fn snapshot_user_and_unionid_rules() {
    let sb = Sandbox::builder()
        .app(APP, SECRET)
        .user(
            APP,
            UserProfile::new("o-snap").unionid("u-snap").snapshot(true),
        )
        .build()
        .unwrap();
    let code = sb.issue_code(APP, "o-snap", Scope::Base).unwrap();
    let v = json(&exchange(&sb, APP, SECRET, &code).await);
    assert_eq!(v["is_snapshotuser"], 1);
    assert!(
        v.get("unionid").is_none(),
        "unionid only with snsapi_userinfo"
    );
    let code = sb.issue_code(APP, "o-snap", Scope::UserInfo).unwrap();
    let t: OAuthToken =
        decode_response("exchange", &exchange(&sb, APP, SECRET, &code).await.body).unwrap();
    assert!(t.is_snapshotuser);
    assert_eq!(
        t.unionid.map(|u| u.into_string()).as_deref(),
        Some("u-snap")
    );
}

#[tokio::test]
async fn userinfo_returns_the_profile_for_an_snsapi_userinfo_token() {
    let sb = sandbox();
    let t = web_token(&sb, ALICE, Scope::UserInfo).await;
    let r = userinfo(&sb, t.access_token.secret(), ALICE).await;
    assert_eq!(content_type(&r), "text/plain");
    let u: UserInfo = decode_response("userinfo", &r.body).unwrap();
    assert_eq!(u.openid.as_str(), ALICE);
    assert_eq!(u.nickname, "Alice 🐱");
    assert_eq!(u.sex, Sex::Female);
    assert_eq!(u.headimgurl, "https://thirdwx.qlogo.cn/mmopen/alice/132");
    assert_eq!(u.privilege, vec!["chinaunicom".to_owned()]);
    assert_eq!(
        u.unionid.map(|x| x.into_string()).as_deref(),
        Some("o6_bmasdasdsad6_2sgVt7hMZOPfL2M")
    );
    assert_eq!(json(&r)["sex"], 2, "sex is numeric");
}

#[tokio::test]
async fn userinfo_errors_scope_openid_token() {
    let sb = sandbox();
    let base = web_token(&sb, ALICE, Scope::Base).await;
    assert_error(
        &userinfo(&sb, base.access_token.secret(), ALICE).await,
        ErrCode::API_UNAUTHORIZED,
    );
    let full = web_token(&sb, ALICE, Scope::UserInfo).await;
    assert_error(
        &userinfo(&sb, full.access_token.secret(), BOB).await,
        ErrCode::INVALID_OPENID,
    );
    assert_error(
        &userinfo(&sb, "garbage", ALICE).await,
        ErrCode::INVALID_CREDENTIAL,
    );
    // A base access token is not a web token, and the other way round.
    let base_access = base_token(&sb).await;
    assert_error(
        &userinfo(&sb, &base_access, ALICE).await,
        ErrCode::INVALID_CREDENTIAL,
    );
    assert_eq!(
        api_with(&sb, full.access_token.secret()).await,
        Some(ErrCode::INVALID_CREDENTIAL)
    );
    sb.clock().advance(Duration::from_secs(7200));
    assert_error(
        &userinfo(&sb, full.access_token.secret(), ALICE).await,
        ErrCode::ACCESS_TOKEN_EXPIRED,
    );
}

#[tokio::test]
async fn sns_auth_checks_token_and_openid() {
    let sb = sandbox();
    let t = web_token(&sb, ALICE, Scope::Base).await;
    let auth = |token: String, openid: &'static str| {
        let sb = sb.clone();
        async move {
            get(
                &sb,
                "/sns/auth",
                &[("access_token", &token), ("openid", openid)],
            )
            .await
        }
    };
    let ok = auth(t.access_token.secret().to_owned(), ALICE).await;
    assert_eq!(content_type(&ok), "text/plain");
    assert_eq!(json(&ok), serde_json::json!({"errcode": 0, "errmsg": "ok"}));
    assert_error(
        &auth(t.access_token.secret().to_owned(), BOB).await,
        ErrCode::INVALID_OPENID,
    );
    assert_error(
        &auth("nope".into(), ALICE).await,
        ErrCode::INVALID_CREDENTIAL,
    );
    sb.clock().advance(Duration::from_secs(7200));
    assert_error(
        &auth(t.access_token.secret().to_owned(), ALICE).await,
        ErrCode::ACCESS_TOKEN_EXPIRED,
    );
}

#[tokio::test]
async fn refresh_extends_a_live_web_token_and_replaces_an_expired_one() {
    let sb = sandbox();
    let t = web_token(&sb, ALICE, Scope::UserInfo).await;
    sb.clock().advance(Duration::from_secs(3600));
    let r = refresh(&sb, APP, t.refresh_token.secret()).await;
    let renewed: OAuthToken = decode_response("refresh", &r.body).unwrap();
    assert_eq!(
        renewed.access_token.secret(),
        t.access_token.secret(),
        "extended"
    );
    assert_eq!(renewed.refresh_token.secret(), t.refresh_token.secret());
    assert_eq!(renewed.openid.as_str(), ALICE);
    assert_eq!(renewed.scope, "snsapi_userinfo");
    // Extended: valid 7200 s from the refresh, past its original end.
    sb.clock().advance(Duration::from_secs(7199));
    assert!(json(&userinfo(&sb, t.access_token.secret(), ALICE).await)["nickname"].is_string());
    sb.clock().advance(Duration::from_secs(1));
    assert_error(
        &userinfo(&sb, t.access_token.secret(), ALICE).await,
        ErrCode::ACCESS_TOKEN_EXPIRED,
    );
    // Expired: the refresh issues a new one that works.
    let r = refresh(&sb, APP, t.refresh_token.secret()).await;
    let fresh: OAuthToken = decode_response("refresh", &r.body).unwrap();
    assert_ne!(fresh.access_token.secret(), t.access_token.secret());
    assert!(json(&userinfo(&sb, fresh.access_token.secret(), ALICE).await)["nickname"].is_string());
}

#[tokio::test]
async fn refresh_token_lives_30_days_then_42002() {
    let sb = sandbox();
    let t = web_token(&sb, ALICE, Scope::Base).await;
    sb.clock().advance(Duration::from_secs(30 * 24 * 3600 - 1));
    assert!(json(&refresh(&sb, APP, t.refresh_token.secret()).await)["access_token"].is_string());
    sb.clock().advance(Duration::from_secs(1));
    let r = refresh(&sb, APP, t.refresh_token.secret()).await;
    assert_error(&r, ErrCode::REFRESH_TOKEN_EXPIRED);
}

#[tokio::test]
async fn refresh_errors() {
    let sb = sandbox();
    let t = web_token(&sb, ALICE, Scope::Base).await;
    assert_error(
        &refresh(&sb, APP, "bogus").await,
        ErrCode::INVALID_REFRESH_TOKEN,
    );
    assert_error(
        &refresh(&sb, OTHER_APP, t.refresh_token.secret()).await,
        ErrCode::INVALID_REFRESH_TOKEN,
    );
    assert_error(
        &refresh(&sb, "wx0000000000000000", t.refresh_token.secret()).await,
        ErrCode::INVALID_APPID,
    );
    let wrong_grant = get(
        &sb,
        "/sns/oauth2/refresh_token",
        &[
            ("appid", APP),
            ("grant_type", "client_credential"),
            ("refresh_token", t.refresh_token.secret()),
        ],
    )
    .await;
    assert_error(&wrong_grant, ErrCode::INVALID_GRANT_TYPE);
}
