use std::path::PathBuf;

use wx_core::{
    AccessTokenResponse, Ack, ApiErrorKind, DecodeReason, ErrCode, Error, JsapiTicketResponse,
    OAuthToken, RetryHint, Scope, Sex, UserInfo, decode_response,
};

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

#[test]
fn every_fixture_file_is_covered() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    let source = include_str!("fixtures.rs");
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            continue; // push/ is covered by wx-official's push tests (and their own check)
        }
        let name = entry.file_name().into_string().unwrap();
        if name.ends_with(".md") || name.starts_with("vector.") {
            continue; // docs; vectors are checked by wx-official's tests
        }
        assert!(
            source.contains(&format!("\"{name}\"")),
            "fixture {name} is not decoded by any test"
        );
    }
}

#[test]
fn base_token_success() {
    let t: AccessTokenResponse = decode_response(
        "cgi-bin/token",
        &fixture("cgi_bin_token.success.wechatpy.json"),
    )
    .unwrap();
    assert_eq!(t.access_token.secret(), "1234567890");
    assert_eq!(t.expires_in, 7200);
    let t: AccessTokenResponse = decode_response(
        "cgi-bin/token",
        &fixture("cgi_bin_token.success.wxjava_test.json"),
    )
    .unwrap();
    assert_eq!(t.access_token.secret(), "ACCESS_TOKEN");
    assert_eq!(t.expires_in, 7200);
}

#[test]
fn base_token_expires_in_as_string() {
    let t: AccessTokenResponse = decode_response(
        "cgi-bin/token",
        &fixture("cgi_bin_token.success_expires_in_as_string.easywechat_mock.json"),
    )
    .unwrap();
    assert_eq!(t.access_token.secret(), "mock_access_token");
    assert_eq!(t.expires_in, 1500);
}

#[test]
fn ticket_success_with_errcode_zero() {
    let t: JsapiTicketResponse = decode_response(
        "cgi-bin/ticket/getticket",
        &fixture("cgi_bin_ticket_getticket.success.wechatpy.json"),
    )
    .unwrap();
    assert_eq!(
        t.ticket.secret(),
        "bxLdikRXVbTPdHSM05e5u5sUoXNKd8-41ZO3MhKoyN5OfkWITDGgnr2fwJ0m9E8NYzWKVZvdVtaUgWvsdshFKA"
    );
    assert_eq!(t.expires_in, 7200);
}

#[test]
fn errcode_zero_without_errmsg_is_success() {
    let ack: Ack = decode_response(
        "sns/auth",
        &fixture("common.success_errcode0_without_errmsg.silenceper_test.json"),
    )
    .unwrap();
    assert_eq!(ack, Ack {});
    let ack: Ack = decode_response("sns/auth", &fixture("sns_auth.success.wechatpy.json")).unwrap();
    assert_eq!(ack, Ack {});
}

#[test]
fn sns_auth_invalid_openid_is_a_typed_api_error() {
    let err = decode_response::<Ack>(
        "sns/auth",
        &fixture("sns_auth.error_40003_invalid_openid.wxjava_test.json"),
    )
    .unwrap_err();
    let api = err.api().expect("an API error");
    assert_eq!(api.code, ErrCode::INVALID_OPENID);
    assert_eq!(api.message, "invalid openid");
    assert_eq!(api.request_id, None);
    assert_eq!(api.endpoint, "sns/auth");
    assert_eq!(api.kind(), ApiErrorKind::InvalidOpenId);
    assert_eq!(err.retry_hint(), RetryHint::Never);
}

#[test]
fn oauth_token_success() {
    for name in [
        "sns_oauth2_access_token.success.wechatpy.json",
        "sns_oauth2_refresh_token.success.wechatpy.json",
    ] {
        let t: OAuthToken = decode_response("sns/oauth2/access_token", &fixture(name)).unwrap();
        assert_eq!(t.access_token.secret(), "ACCESS_TOKEN");
        assert_eq!(t.refresh_token.secret(), "REFRESH_TOKEN");
        assert_eq!(t.expires_in, 7200);
        assert_eq!(t.openid.as_str(), "OPENID");
        assert_eq!(t.scope, "SCOPE");
        assert!(!t.is_snapshotuser);
        assert!(t.unionid.is_none());
    }
}

#[test]
fn userinfo_sex_as_string() {
    let u: UserInfo = decode_response(
        "sns/userinfo",
        &fixture("sns_userinfo.success_sex_as_string.wechatpy.json"),
    )
    .unwrap();
    assert_eq!(u.openid.as_str(), "OPENID");
    assert_eq!(u.nickname, "NICKNAME");
    assert_eq!(u.sex, Sex::Male);
    assert_eq!(
        (u.province.as_str(), u.city.as_str(), u.country.as_str()),
        ("PROVINCE", "CITY", "COUNTRY")
    );
    assert!(
        u.headimgurl.starts_with("http://wx.qlogo.cn/mmopen/") && u.headimgurl.ends_with("/46")
    );
    assert_eq!(u.privilege, vec!["PRIVILEGE1", "PRIVILEGE2"]);
    assert_eq!(
        u.unionid.as_ref().map(|u| u.as_str()),
        Some("o6_bmasdasdsad6_2sgVt7hMZOPfL")
    );
    assert_eq!(u.language, None);

    let u: UserInfo = decode_response(
        "sns/userinfo",
        &fixture("sns_userinfo.success_sex_as_string_no_unionid.node_webot_mock.json"),
    )
    .unwrap();
    assert_eq!(u.sex, Sex::Male);
    assert!(u.unionid.is_none());
    assert_eq!(u.privilege.len(), 2);
}

#[test]
fn nickname_with_escaped_control_char() {
    let u: UserInfo = decode_response(
        "cgi-bin/user/info",
        &fixture("user_info.quirk_escaped_control_char_in_nickname.chanxuehong_pr187.json"),
    )
    .unwrap();
    assert_eq!(u.nickname, "尐嘴\u{7}乿親");
    assert_eq!(u.sex, Sex::Female);
    assert_eq!(u.language.as_deref(), Some("zh_CN"));
    assert_eq!(u.city, "南昌");
}

#[test]
fn nickname_with_raw_control_char_decodes() {
    let raw = fixture(
        "user_info.quirk_raw_control_char_in_nickname.lanrion_weixin_authorize_pr52.json.raw",
    );
    assert!(raw.contains(&0x14), "the fixture carries a raw 0x14 byte");
    assert!(
        serde_json::from_slice::<serde_json::Value>(&raw).is_err(),
        "strict JSON rejects it"
    );
    let u: UserInfo = decode_response("cgi-bin/user/info", &raw).unwrap();
    assert_eq!(u.nickname, "\u{14}琦娅🍭");
    assert_eq!(u.openid.as_str(), "oH6****C2YA-Og_KNdQQ4QB8");
    assert_eq!(
        u.headimgurl,
        "http://wx.qlogo.cn/mmopen/169t5I0ibYZf16iarTjdQWf3QW5VVKwXRGHSPVj0ibDibqYqLyEQxPMR1HBkibkUlEibmFj8zYkvApibIPicdtIb5tib3MC766DxTaM2D/0"
    );
    assert_eq!(u.city, "东莞");
}

#[test]
fn raw_newline_and_backspace_inside_strings_decode() {
    let body =
        b"{\"openid\":\"o\",\"nickname\":\"a\x08b\",\"city\":\"\x08\",\"province\":\"\n61.1\"}";
    let u: UserInfo = decode_response("sns/userinfo", body).unwrap();
    assert_eq!(u.nickname, "a\u{8}b");
    assert_eq!(u.city, "\u{8}");
    assert_eq!(u.province, "\n61.1");
}

#[test]
fn invalid_utf8_is_replaced_not_fatal() {
    let mut body = b"{\"openid\":\"o\",\"nickname\":\"ab".to_vec();
    body.extend_from_slice(&[0xff, 0xfe]);
    body.extend_from_slice(b"\"}");
    let u: UserInfo = decode_response("sns/userinfo", &body).unwrap();
    assert_eq!(u.nickname, "ab\u{fffd}\u{fffd}");
}

#[test]
fn errcode_as_string_and_key_order() {
    let err = decode_response::<UserInfo>(
        "sns/userinfo",
        br#"{"errmsg":"api unauthorized rid: 1-2-3","errcode":"48001"}"#,
    )
    .unwrap_err();
    assert!(err.is_scope_missing());
    assert_eq!(err.api().unwrap().request_id.as_deref(), Some("1-2-3"));
    assert_eq!(err.api().unwrap().message, "api unauthorized");
}

#[test]
fn every_documented_error_body_maps_to_its_kind() {
    let cases: &[(i64, &str, ApiErrorKind, RetryHint)] = &[
        (-1, "system error", ApiErrorKind::Busy, RetryHint::Backoff),
        (
            40001,
            "invalid credential, access_token is invalid or not latest, could get access_token by getStableAccessToken, more details at https://mmbizurl.cn/s/JtxxFh33r rid: 61250a39-612fed42-36740516",
            ApiErrorKind::TokenInvalid,
            RetryHint::RefreshToken,
        ),
        (
            40014,
            "invalid access_token",
            ApiErrorKind::TokenInvalid,
            RetryHint::RefreshToken,
        ),
        (
            42001,
            "access_token expired rid: a-b-c",
            ApiErrorKind::TokenInvalid,
            RetryHint::RefreshToken,
        ),
        (
            40029,
            "invalid code, rid: x",
            ApiErrorKind::LoginRestartRequired,
            RetryHint::Never,
        ),
        (
            40163,
            "code been used, rid: x",
            ApiErrorKind::LoginRestartRequired,
            RetryHint::Never,
        ),
        (
            42003,
            "code expired",
            ApiErrorKind::LoginRestartRequired,
            RetryHint::Never,
        ),
        (
            40030,
            "invalid refresh_token",
            ApiErrorKind::ReauthorizationRequired,
            RetryHint::Never,
        ),
        (
            42002,
            "refresh_token expired",
            ApiErrorKind::ReauthorizationRequired,
            RetryHint::Never,
        ),
        (
            40013,
            "invalid appid",
            ApiErrorKind::Credentials,
            RetryHint::Never,
        ),
        (
            40125,
            "invalid appsecret",
            ApiErrorKind::Credentials,
            RetryHint::Never,
        ),
        (
            40164,
            "invalid ip 1.2.3.4 ipv6 ::ffff:1.2.3.4, not in whitelist rid: 1",
            ApiErrorKind::IpNotAllowed,
            RetryHint::Never,
        ),
        (
            45009,
            "reach max api daily quota limit",
            ApiErrorKind::QuotaExhausted,
            RetryHint::Never,
        ),
        (
            45011,
            "api minute-quota reach limit must slower retry next minute",
            ApiErrorKind::RateLimited,
            RetryHint::Backoff,
        ),
        (
            48001,
            "api unauthorized",
            ApiErrorKind::ScopeMissing,
            RetryHint::Never,
        ),
        (
            41002,
            "appid missing",
            ApiErrorKind::Config,
            RetryHint::Never,
        ),
    ];
    for (code, msg, kind, hint) in cases {
        let body = serde_json::json!({ "errcode": code, "errmsg": msg }).to_string();
        let err =
            decode_response::<AccessTokenResponse>("cgi-bin/token", body.as_bytes()).unwrap_err();
        let api = err
            .api()
            .unwrap_or_else(|| panic!("{code}: not an API error: {err:?}"));
        assert_eq!(api.code, ErrCode(*code));
        assert_eq!(api.kind(), *kind, "{code}");
        assert_eq!(err.retry_hint(), *hint, "{code}");
        assert!(!api.message.contains("rid:"), "{code}: rid left in message");
    }
}

#[test]
fn non_json_bodies_are_decode_errors_naming_the_endpoint() {
    let html = b"<html><body>\xe8\xaf\xb7\xe5\x9c\xa8\xe5\xbe\xae\xe4\xbf\xa1\xe5\xae\xa2\xe6\x88\xb7\xe7\xab\xaf\xe6\x89\x93\xe5\xbc\x80\xe9\x93\xbe\xe6\x8e\xa5</body></html>";
    for (body, want) in [
        (&html[..], "syntax"),
        (b"", "empty"),
        (b"  \n", "empty"),
        (br#"{"access_token":"AT","expi"#, "eof"),
        (b"[]", "data"),
        (b"[1]", "data"),
        (b"[40001, \"invalid credential\"]", "data"),
        (b"7", "data"),
        (b"null", "data"),
    ] {
        let err = decode_response::<AccessTokenResponse>("cgi-bin/token", body).unwrap_err();
        let Error::Decode(d) = &err else {
            panic!("not a decode error: {err:?}")
        };
        assert_eq!(d.endpoint, "cgi-bin/token");
        let got = match d.reason {
            DecodeReason::Empty => "empty",
            DecodeReason::Syntax { .. } => "syntax",
            DecodeReason::Eof => "eof",
            DecodeReason::Data => "data",
            _ => "other",
        };
        assert_eq!(got, want, "{:?}", String::from_utf8_lossy(body));
        assert!(err.to_string().contains("cgi-bin/token"), "{err}");
    }
}

#[test]
fn decode_errors_name_the_path_and_never_the_value() {
    let err = decode_response::<AccessTokenResponse>(
        "cgi-bin/token",
        br#"{"access_token":"SECRETTOKEN","expires_in":"soon"}"#,
    )
    .unwrap_err();
    let Error::Decode(d) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(d.path, "expires_in");
    assert!(!format!("{err} {err:?}").contains("SECRETTOKEN"));
    assert!(!format!("{err} {err:?}").contains("soon"));

    let err = decode_response::<AccessTokenResponse>("cgi-bin/token", br#"{"expires_in":7200}"#)
        .unwrap_err();
    let Error::Decode(d) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(d.path, ".access_token");
    let err = decode_response::<OAuthToken>(
        "sns/oauth2/access_token",
        br#"{"access_token":"SECRETTOKEN","expires_in":7200,"openid":"o"}"#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("refresh_token"), "{err}");
    assert!(!format!("{err} {err:?}").contains("SECRETTOKEN"));
}

#[test]
fn oauth_token_quirks() {
    let t: OAuthToken = decode_response(
        "sns/oauth2/access_token",
        br#"{"access_token":"A","expires_in":"7200","refresh_token":"R","openid":"o","scope":"snsapi_base,snsapi_userinfo","is_snapshotuser":"1","unionid":"u","extra":{"x":[1]}}"#,
    )
    .unwrap();
    assert!(t.is_snapshotuser);
    assert!(t.has_scope(Scope::UserInfo) && t.has_scope(Scope::Base));
    assert_eq!(t.unionid.unwrap().as_str(), "u");
    let t: OAuthToken = decode_response(
        "sns/oauth2/access_token",
        br#"{"access_token":"A","expires_in":7200,"refresh_token":"R","openid":"o","unionid":null,"scope":null}"#,
    )
    .unwrap();
    assert!(!t.is_snapshotuser && t.unionid.is_none() && t.scope.is_empty());
}

#[test]
fn userinfo_post_2021_blanked_fields() {
    let u: UserInfo = decode_response(
        "sns/userinfo",
        r#"{"openid":"o","nickname":"昵称😀","sex":0,"language":"","city":"","province":"","country":"","headimgurl":"","privilege":null}"#.as_bytes(),
    )
    .unwrap();
    assert_eq!(u.sex, Sex::Unknown);
    assert_eq!(u.language, None);
    assert!(u.privilege.is_empty());
    assert_eq!(u.nickname, "昵称😀");
}
