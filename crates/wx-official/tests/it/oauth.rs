//! The OAuth functions: exchange_code, refresh_oauth_token, user_info, check_oauth_token.

use http::Method;
use wx_core::test_util::response;
use wx_core::{
    Error, HttpResponse, Lang, OpenId, RefreshToken, Scope, Sex, TransportErrorKind, UnionId,
    WebAccessToken,
};

use crate::common::*;

const CODE_PATH: &str = "/sns/oauth2/access_token";
const REFRESH_PATH: &str = "/sns/oauth2/refresh_token";
const USERINFO_PATH: &str = "/sns/userinfo";
const AUTH_PATH: &str = "/sns/auth";
const WEB_TOKEN: &str = "WEB-SECRET-token-777";
const REFRESH: &str = "RT-SECRET-refresh-888";

fn web_token() -> WebAccessToken {
    WebAccessToken::new(WEB_TOKEN)
}

fn openid() -> OpenId {
    OpenId::new("oLVPpjqs9BhvzwPj5A-vTYAX3GLc")
}

fn assert_invalid(e: &Error, argument: &str) {
    assert!(
        matches!(e, Error::InvalidInput(i) if i.argument == argument),
        "expected invalid `{argument}`, got {e:?}"
    );
}

// ---------------------------------------------------------------- exchange_code

#[tokio::test]
async fn exchange_code_sends_the_documented_request_and_decodes_the_fixture() {
    let s = setup();
    s.mock.push_for(
        CODE_PATH,
        response(
            200,
            fixture("sns_oauth2_access_token.success.wechatpy.json"),
        ),
    );
    let t = s
        .client
        .exchange_code("061Vb3Ga1tRZ1B0lcYFa1Vg3Ga1Vb3G6")
        .await
        .expect("token");
    assert_eq!(t.access_token.secret(), "ACCESS_TOKEN");
    assert_eq!(t.refresh_token.secret(), "REFRESH_TOKEN");
    assert_eq!(t.openid.as_str(), "OPENID");
    assert_eq!(t.expires_in, 7200);
    assert_eq!(t.scope, "SCOPE");
    assert!(!t.is_snapshotuser);
    assert!(t.unionid.is_none());
    let r = &s.mock.requests()[0];
    assert_eq!(r.method, Method::GET);
    assert_eq!(
        r.url_without_query(),
        "https://api.weixin.qq.com/sns/oauth2/access_token"
    );
    assert_eq!(
        query(r),
        pairs(&[
            ("appid", APPID),
            ("secret", SECRET),
            ("code", "061Vb3Ga1tRZ1B0lcYFa1Vg3Ga1Vb3G6"),
            ("grant_type", "authorization_code"),
        ])
    );
    assert_eq!(s.mock.count(TOKEN_PATH), 0, "no base token involved");
}

#[tokio::test]
async fn exchange_code_reads_snapshot_users_and_unionid() {
    let s = setup();
    s.mock.push_for(
        CODE_PATH,
        HttpResponse::json(
            r#"{"access_token":"W","expires_in":"7200","refresh_token":"R","openid":"o1",
                "scope":"snsapi_userinfo","is_snapshotuser":1,"unionid":"u1"}"#,
        ),
    );
    let t = s.client.exchange_code("CODE").await.expect("token");
    assert!(t.is_snapshotuser);
    assert_eq!(t.unionid, Some(UnionId::new("u1")));
    assert!(t.has_scope(Scope::UserInfo));
}

#[tokio::test]
async fn used_expired_or_invalid_codes_say_restart_login_and_are_never_retried() {
    for (code, msg) in [
        (40029, "invalid code"),
        (40163, "code been used"),
        (42003, "code expired"),
    ] {
        let s = setup();
        s.mock
            .always(CODE_PATH, HttpResponse::json(err_body(code, msg)));
        let e = s.client.exchange_code("CODE").await.expect_err("bad code");
        assert_eq!(api_code(&e), Some(code));
        assert!(e.is_login_restart_required(), "{code}");
        assert_eq!(e.api().expect("api").endpoint, "sns/oauth2/access_token");
        assert_eq!(s.mock.total(), 1, "{code} retried");
        assert_no_secrets(&e, &[]);
    }
}

#[tokio::test]
async fn exchange_code_credential_errors_are_returned_and_do_not_touch_the_base_token() {
    for (code, msg) in [
        (40013, "invalid appid"),
        (40125, "invalid appsecret"),
        (40001, "invalid credential"),
        (40164, "invalid ip 1.2.3.4, not in whitelist"),
        (41004, "appsecret missing"),
    ] {
        let s = setup();
        s.mock
            .always(CODE_PATH, HttpResponse::json(err_body(code, msg)));
        s.mock
            .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
        let e = s.client.exchange_code("CODE").await.expect_err("error");
        assert_eq!(api_code(&e), Some(code));
        assert!(!e.is_login_restart_required());
        assert_eq!(s.mock.total(), 1, "{code}");
        // No base-token cooldown was started by an OAuth error.
        s.client
            .access_token()
            .await
            .expect("base token unaffected");
    }
}

#[tokio::test]
async fn exchange_code_is_not_repeated_after_a_timeout_or_5xx_but_is_after_busy() {
    for failure in [
        Err(TransportErrorKind::Timeout),
        Err(TransportErrorKind::Io),
        Ok(503),
    ] {
        let s = setup();
        match failure {
            Err(kind) => s.mock.push_error_for(CODE_PATH, kind),
            Ok(status) => s.mock.push_for(CODE_PATH, response(status, "")),
        };
        s.mock.always(
            CODE_PATH,
            HttpResponse::json(err_body(40163, "code been used")),
        );
        let e = s.client.exchange_code("CODE").await.expect_err("failed");
        assert!(
            !e.is_login_restart_required(),
            "the original failure is reported: {e:?}"
        );
        assert_eq!(s.mock.total(), 1, "{failure:?}");
    }
    let s = setup();
    s.mock
        .push_for(CODE_PATH, HttpResponse::json(err_body(-1, "system error")));
    s.mock
        .push_error_for(CODE_PATH, TransportErrorKind::Connect);
    s.mock.push_for(
        CODE_PATH,
        response(
            200,
            fixture("sns_oauth2_access_token.success.wechatpy.json"),
        ),
    );
    s.client.exchange_code("CODE").await.expect("retried");
    assert_eq!(s.mock.total(), 3);
}

#[tokio::test]
async fn exchange_code_rejects_bad_codes_before_sending() {
    let s = setup();
    for bad in [
        String::new(),
        "a".repeat(513),
        "ab\ncd".to_owned(),
        "a\u{0}".to_owned(),
    ] {
        let e = s.client.exchange_code(&bad).await.expect_err("bad code");
        assert_invalid(&e, "code");
    }
    assert_eq!(s.mock.total(), 0);
}

// ---------------------------------------------------------------- refresh_oauth_token

#[tokio::test]
async fn refresh_sends_the_documented_request_and_decodes_the_fixture() {
    let s = setup();
    s.mock.push_for(
        REFRESH_PATH,
        response(
            200,
            fixture("sns_oauth2_refresh_token.success.wechatpy.json"),
        ),
    );
    let t = s
        .client
        .refresh_oauth_token(&RefreshToken::new(REFRESH))
        .await
        .expect("refreshed");
    assert_eq!(t.access_token.secret(), "ACCESS_TOKEN");
    assert_eq!(t.refresh_token.secret(), "REFRESH_TOKEN");
    assert_eq!(t.openid.as_str(), "OPENID");
    let r = &s.mock.requests()[0];
    assert_eq!(r.method, Method::GET);
    assert_eq!(r.path(), REFRESH_PATH);
    assert_eq!(
        query(r),
        pairs(&[
            ("appid", APPID),
            ("grant_type", "refresh_token"),
            ("refresh_token", REFRESH)
        ])
    );
    assert!(
        r.query("secret").is_none(),
        "refresh does not send the AppSecret"
    );
}

#[tokio::test]
async fn invalid_or_expired_refresh_tokens_say_reauthorize() {
    for (code, msg) in [
        (40030, "invalid refresh_token"),
        (42002, "refresh_token timeout"),
    ] {
        let s = setup();
        s.mock
            .always(REFRESH_PATH, HttpResponse::json(err_body(code, msg)));
        let e = s
            .client
            .refresh_oauth_token(&RefreshToken::new(REFRESH))
            .await
            .expect_err("bad refresh token");
        assert!(e.is_reauthorization_required(), "{code}");
        assert_eq!(s.mock.total(), 1);
        assert_no_secrets(&e, &[REFRESH]);
    }
    let s = setup();
    s.mock.always(
        REFRESH_PATH,
        HttpResponse::json(err_body(40013, "invalid appid")),
    );
    let e = s
        .client
        .refresh_oauth_token(&RefreshToken::new(REFRESH))
        .await
        .expect_err("40013");
    assert_eq!(api_code(&e), Some(40013));
    assert!(!e.is_reauthorization_required());
}

#[tokio::test]
async fn refresh_rejects_bad_refresh_tokens_before_sending() {
    let s = setup();
    for bad in [String::new(), "r".repeat(2049), "r\tr".to_owned()] {
        let e = s
            .client
            .refresh_oauth_token(&RefreshToken::new(bad))
            .await
            .expect_err("bad");
        assert_invalid(&e, "refresh_token");
    }
    assert_eq!(s.mock.total(), 0);
}

// ---------------------------------------------------------------- user_info

#[tokio::test]
async fn user_info_sends_the_documented_request_for_each_language() {
    for (lang, name) in [
        (Lang::ZhCn, "zh_CN"),
        (Lang::ZhTw, "zh_TW"),
        (Lang::En, "en"),
    ] {
        let s = setup();
        s.mock.push_for(
            USERINFO_PATH,
            response(
                200,
                fixture("sns_userinfo.success_sex_as_string.wechatpy.json"),
            ),
        );
        let u = s
            .client
            .user_info(&web_token(), &openid(), lang)
            .await
            .expect("user");
        assert_eq!(u.nickname, "NICKNAME");
        assert_eq!(u.sex, Sex::Male, "sex sent as the string \"1\"");
        assert_eq!(u.privilege, vec!["PRIVILEGE1", "PRIVILEGE2"]);
        assert_eq!(
            u.unionid,
            Some(UnionId::new("o6_bmasdasdsad6_2sgVt7hMZOPfL"))
        );
        assert!(u.headimgurl.ends_with("/46"));
        let r = &s.mock.requests()[0];
        assert_eq!(r.method, Method::GET);
        assert_eq!(r.path(), USERINFO_PATH);
        assert_eq!(
            query(r),
            pairs(&[
                ("access_token", WEB_TOKEN),
                ("openid", openid().as_str()),
                ("lang", name)
            ])
        );
        assert_eq!(
            s.mock.count(TOKEN_PATH),
            0,
            "the base token is not involved"
        );
    }
}

#[tokio::test]
async fn user_info_decodes_the_quirky_fixtures() {
    let s = setup();
    s.mock.push_for(
        USERINFO_PATH,
        response(
            200,
            fixture("sns_userinfo.success_sex_as_string_no_unionid.node_webot_mock.json"),
        ),
    );
    let u = s
        .client
        .user_info(&web_token(), &openid(), Lang::ZhCn)
        .await
        .expect("no unionid");
    assert!(u.unionid.is_none());

    // Raw control byte 0x14 inside the nickname and `\/` escapes (not strict JSON).
    s.mock.push_for(
        USERINFO_PATH,
        response(200, fixture("user_info.quirk_raw_control_char_in_nickname.lanrion_weixin_authorize_pr52.json.raw")),
    );
    let u = s
        .client
        .user_info(&web_token(), &openid(), Lang::ZhCn)
        .await
        .expect("raw ctrl");
    assert_eq!(u.nickname, "\u{14}琦娅🍭");
    assert_eq!(u.sex, Sex::Female);
    assert!(u.headimgurl.starts_with("http://wx.qlogo.cn/mmopen/"));
    assert_eq!(u.language.as_deref(), Some("zh_CN"));

    s.mock.push_for(
        USERINFO_PATH,
        response(
            200,
            fixture("user_info.quirk_escaped_control_char_in_nickname.chanxuehong_pr187.json"),
        ),
    );
    let u = s
        .client
        .user_info(&web_token(), &openid(), Lang::ZhCn)
        .await
        .expect("escaped ctrl");
    assert_eq!(u.nickname, "尐嘴\u{7}乿親");

    // Post-2021 blanked fields.
    s.mock.push_for(
        USERINFO_PATH,
        HttpResponse::json(r#"{"openid":"o1","nickname":"n","sex":0,"language":"","city":"","province":"","country":"","headimgurl":"","privilege":[]}"#),
    );
    let u = s
        .client
        .user_info(&web_token(), &openid(), Lang::ZhCn)
        .await
        .expect("blanked");
    assert_eq!(u.sex, Sex::Unknown);
    assert!(u.language.is_none() && u.city.is_empty());
}

#[tokio::test]
async fn user_info_errors_are_typed_and_web_token_errors_are_returned() {
    let s = setup();
    s.mock.push_for(
        USERINFO_PATH,
        HttpResponse::json(err_body(48001, "api unauthorized")),
    );
    let e = s
        .client
        .user_info(&web_token(), &openid(), Lang::ZhCn)
        .await
        .expect_err("48001");
    assert!(e.is_scope_missing());

    for (code, msg) in [
        (
            40001,
            "invalid credential, access_token is invalid or not latest",
        ),
        (42001, "access_token expired"),
        (40014, "invalid access_token"),
        (40003, "invalid openid"),
        (41001, "access_token missing"),
    ] {
        let s = setup();
        s.mock
            .always(USERINFO_PATH, HttpResponse::json(err_body(code, msg)));
        let e = s
            .client
            .user_info(&web_token(), &openid(), Lang::ZhCn)
            .await
            .expect_err("error");
        assert_eq!(api_code(&e), Some(code));
        assert_eq!(
            s.mock.count(USERINFO_PATH),
            1,
            "{code}: web-token errors are not retried"
        );
        assert_eq!(
            s.mock.count(TOKEN_PATH),
            0,
            "{code}: the base token was fetched"
        );
        assert_no_secrets(&e, &[WEB_TOKEN]);
    }
}

#[tokio::test]
async fn user_info_rejects_bad_arguments_before_sending() {
    let s = setup();
    let cases: Vec<(WebAccessToken, OpenId, &str)> = vec![
        (WebAccessToken::new(""), openid(), "web_token"),
        (WebAccessToken::new("t".repeat(2049)), openid(), "web_token"),
        (WebAccessToken::new("a\rb"), openid(), "web_token"),
        (web_token(), OpenId::new(""), "openid"),
        (web_token(), OpenId::new("o".repeat(129)), "openid"),
        (web_token(), OpenId::new("o\u{7f}"), "openid"),
    ];
    for (token, id, argument) in cases {
        let e = s
            .client
            .user_info(&token, &id, Lang::En)
            .await
            .expect_err(argument);
        assert_invalid(&e, argument);
        let e = s
            .client
            .check_oauth_token(&token, &id)
            .await
            .expect_err(argument);
        assert_invalid(&e, argument);
    }
    assert_eq!(s.mock.total(), 0);
}

// ---------------------------------------------------------------- check_oauth_token

#[tokio::test]
async fn check_oauth_token_true_for_errcode_zero() {
    for file in [
        "sns_auth.success.wechatpy.json",
        "common.success_errcode0_without_errmsg.silenceper_test.json",
    ] {
        let s = setup();
        s.mock.push_for(AUTH_PATH, response(200, fixture(file)));
        assert!(
            s.client
                .check_oauth_token(&web_token(), &openid())
                .await
                .expect(file)
        );
        let r = &s.mock.requests()[0];
        assert_eq!(r.method, Method::GET);
        assert_eq!(
            query(r),
            pairs(&[("access_token", WEB_TOKEN), ("openid", openid().as_str())])
        );
    }
}

#[tokio::test]
async fn check_oauth_token_false_when_wechat_says_invalid() {
    let s = setup();
    s.mock.push_for(
        AUTH_PATH,
        response(
            200,
            fixture("sns_auth.error_40003_invalid_openid.wxjava_test.json"),
        ),
    );
    assert!(
        !s.client
            .check_oauth_token(&web_token(), &openid())
            .await
            .expect("40003")
    );
    for code in [40001, 40003, 40014, 42001] {
        let s = setup();
        s.mock
            .always(AUTH_PATH, HttpResponse::json(err_body(code, "invalid")));
        let valid = s
            .client
            .check_oauth_token(&web_token(), &openid())
            .await
            .expect("an answer about the token");
        assert!(!valid, "{code}");
        assert_eq!(s.mock.total(), 1, "{code}: no retry, no base token");
    }
}

#[tokio::test]
async fn check_oauth_token_errs_when_the_answer_says_nothing_about_the_token() {
    let s = setup();
    s.mock
        .always(AUTH_PATH, HttpResponse::json(err_body(-1, "system error")));
    let e = s
        .client
        .check_oauth_token(&web_token(), &openid())
        .await
        .expect_err("busy");
    assert_eq!(api_code(&e), Some(-1));
    assert_eq!(s.mock.total(), 3, "busy is retried, then reported");

    for (body, what) in [
        (&b"{}"[..], "no errcode"),
        (b"<html>gateway</html>", "html"),
        (b"", "empty"),
    ] {
        let s = setup();
        s.mock.push_for(AUTH_PATH, response(200, body.to_vec()));
        let e = s
            .client
            .check_oauth_token(&web_token(), &openid())
            .await
            .expect_err(what);
        assert!(matches!(e, Error::Decode(_)), "{what}: {e:?}");
    }
    for code in [48001, 41001, 45009] {
        let s = setup();
        s.mock
            .push_for(AUTH_PATH, HttpResponse::json(err_body(code, "x")));
        let e = s
            .client
            .check_oauth_token(&web_token(), &openid())
            .await
            .expect_err("other");
        assert_eq!(api_code(&e), Some(code));
    }
    let s = setup();
    s.mock.always(AUTH_PATH, response(500, "oops"));
    let e = s
        .client
        .check_oauth_token(&web_token(), &openid())
        .await
        .expect_err("500");
    assert!(matches!(e, Error::HttpStatus { status, .. } if status == 500));
    assert_eq!(s.mock.total(), 3);
}
