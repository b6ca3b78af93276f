//! Integration tests of the sandbox's own rules, in process and over HTTP.
#![allow(clippy::unwrap_used)]

mod binary;
mod consent;
mod faults;
mod oauth;
mod push;
mod server;
mod stable;
mod ticket;
mod token;

use std::time::{Duration, SystemTime};

use serde_json::Value;
use wx_core::urlenc::url_with_query;
use wx_core::{
    ApiError, ErrCode, HttpRequest, HttpResponse, HttpTransport, ManualClock, Sex, decode_response,
};
use wx_sandbox::{Sandbox, UserProfile};

pub(crate) const APP: &str = "wx1234567890abcdef";
pub(crate) const SECRET: &str = "app-secret-0123456789abcdef012345";
pub(crate) const OTHER_APP: &str = "wxfedcba0987654321";
pub(crate) const OTHER_SECRET: &str = "other-secret-0123456789abcdef0123";
pub(crate) const ALICE: &str = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M";
pub(crate) const BOB: &str = "o6_bmasdasdsad6_2sgVt7hMZOPfL";
/// A host that does not exist: the in-process transport never resolves it.
pub(crate) const API: &str = "https://api.weixin.qq.com";

/// 2023-11-15 06:13:20 Beijing time.
pub(crate) fn start() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

pub(crate) fn alice() -> UserProfile {
    UserProfile::new(ALICE)
        .nickname("Alice 🐱")
        .unionid("o6_bmasdasdsad6_2sgVt7hMZOPfL2M")
        .sex(Sex::Female)
        .headimgurl("https://thirdwx.qlogo.cn/mmopen/alice/132")
        .privilege(["chinaunicom"])
}

pub(crate) fn sandbox() -> Sandbox {
    Sandbox::builder()
        .app(APP, SECRET)
        .user(APP, alice())
        .user(APP, UserProfile::new(BOB).nickname("Bob"))
        .app(OTHER_APP, OTHER_SECRET)
        .user(OTHER_APP, UserProfile::new("o-other-alice"))
        .clock(ManualClock::new(start()))
        .seed(20_240_601)
        .build()
        .expect("valid set-up")
}

/// GET `path?query` through the in-process transport.
pub(crate) async fn get(sb: &Sandbox, path: &str, query: &[(&str, &str)]) -> HttpResponse {
    let url = url_with_query(&format!("{API}{path}"), query);
    sb.send(HttpRequest::get(url))
        .await
        .expect("in-process send without faults")
}

/// POST a raw body through the in-process transport.
pub(crate) async fn post(sb: &Sandbox, path: &str, body: &[u8]) -> HttpResponse {
    sb.send(HttpRequest::post_json(
        format!("{API}{path}"),
        body.to_vec(),
    ))
    .await
    .expect("in-process send without faults")
}

pub(crate) fn json(r: &HttpResponse) -> Value {
    serde_json::from_slice(&r.body).expect("the sandbox answers JSON")
}

/// The WeChat error of a response, decoded by wx-core's own envelope decoder.
pub(crate) fn api_error(r: &HttpResponse) -> ApiError {
    match decode_response::<Value>("test", &r.body) {
        Err(e) => e.api().cloned().expect("an API error, not a decode error"),
        Ok(v) => panic!("expected a WeChat error, got success {v}"),
    }
}

/// Asserts the response is the WeChat error `code`, HTTP 200, with a rid suffix.
#[track_caller]
pub(crate) fn assert_error(r: &HttpResponse, code: ErrCode) {
    assert_eq!(r.status, 200);
    let e = api_error(r);
    assert_eq!(e.code, code, "message: {}", e.message);
    let rid = e.request_id.expect("errmsg carries a rid suffix");
    assert_eq!(rid.len(), 26, "{rid}");
}

pub(crate) fn content_type(r: &HttpResponse) -> &str {
    r.headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Fetches a base token for `APP`.
pub(crate) async fn base_token(sb: &Sandbox) -> String {
    let r = get(
        sb,
        "/cgi-bin/token",
        &[
            ("grant_type", "client_credential"),
            ("appid", APP),
            ("secret", SECRET),
        ],
    )
    .await;
    json(&r)["access_token"]
        .as_str()
        .expect("a token")
        .to_owned()
}

/// Calls a base-token API (`get_api_domain_ip`) with `token`; `None` when accepted, else the
/// errcode.
pub(crate) async fn api_with(sb: &Sandbox, token: &str) -> Option<ErrCode> {
    let r = get(sb, "/cgi-bin/get_api_domain_ip", &[("access_token", token)]).await;
    match decode_response::<Value>("test", &r.body) {
        Ok(v) => {
            assert!(v["ip_list"].is_array(), "{v}");
            None
        }
        Err(e) => Some(e.api().expect("api error").code),
    }
}
