//! Empty, oversized and control-character arguments to every public function: an invalid-input
//! error naming the argument, the value itself never echoed, and (the recording mock transport
//! proves it) no request sent.

use std::sync::Arc;
use std::time::Duration;

use wx_core::test_util::MockTransport;
use wx_core::{
    AppId, AppSecret, Error, InvalidInput, Lang, ManualClock, MemoryTokenStore, OpenId,
    RefreshToken, Scope, Ticket, WebAccessToken,
};
use wx_official::jssdk::{JsSdkConfig, check_page_url, js_sdk_config};
use wx_official::state::{MAX_TTL, StateError, StateSigner};
use wx_official::verify::{ServerVerifyQuery, VerifyError, verify_echo};
use wx_official::{AuthorizeUrl, Endpoint, OfficialAccount};

use crate::common::{APPID, SECRET, capture_logs};

/// Values that break the common rules, each with a marker so an echo is easy to find.
fn bad_values(max_len: usize) -> Vec<String> {
    vec![
        String::new(),
        format!("MARK{}", "x".repeat(max_len)),
        "MARK\nnewline".into(),
        "MARK\u{0}nul".into(),
        "MARK\u{7f}del".into(),
        "MARK\u{85}next-line".into(),
        "MARK\u{1b}[31mescape".into(),
    ]
}

/// `e` is an invalid-input error naming `argument` that does not repeat `value`.
fn assert_invalid(e: &Error, argument: &str, value: &str) {
    let Error::InvalidInput(i) = e else {
        panic!("expected invalid `{argument}` for {value:?}, got {e:?}");
    };
    assert_invalid_input(i, argument, value);
    assert_eq!(e.retry_hint(), wx_core::RetryHint::Never);
}

fn assert_invalid_input(i: &InvalidInput, argument: &str, value: &str) {
    assert_eq!(i.argument, argument, "{i:?} for {value:?}");
    let shown = format!("{i} {i:?}");
    assert!(shown.contains(argument), "{shown}");
    if value.len() >= 4 {
        assert!(!shown.contains("MARK"), "the value was echoed: {shown}");
    }
}

struct Setup {
    client: OfficialAccount<MockTransport, MemoryTokenStore>,
    mock: MockTransport,
    store: MemoryTokenStore,
}

fn setup() -> Setup {
    let mock = MockTransport::new();
    let store = MemoryTokenStore::new();
    let client = OfficialAccount::builder(APPID, AppSecret::new(SECRET))
        .build(mock.clone(), store.clone())
        .expect("valid client");
    Setup {
        client,
        mock,
        store,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_calls_reject_bad_arguments_before_any_request() {
    capture_logs();
    let s = setup();
    let good_token = WebAccessToken::new("WEB-TOKEN-reliability-good");
    let good_openid = OpenId::new("o-good");
    let mut checked = 0;
    for v in bad_values(512) {
        let e = s.client.exchange_code(&v).await.expect_err("bad code");
        assert_invalid(&e, "code", &v);
        checked += 1;
    }
    for v in bad_values(2048) {
        let e = s
            .client
            .refresh_oauth_token(&RefreshToken::new(v.clone()))
            .await
            .expect_err("bad refresh token");
        assert_invalid(&e, "refresh_token", &v);
        let bad_token = WebAccessToken::new(v.clone());
        let e = s
            .client
            .user_info(&bad_token, &good_openid, Lang::ZhCn)
            .await
            .expect_err("bad web token");
        assert_invalid(&e, "web_token", &v);
        let e = s
            .client
            .check_oauth_token(&bad_token, &good_openid)
            .await
            .expect_err("bad web token");
        assert_invalid(&e, "web_token", &v);
        checked += 3;
    }
    for v in bad_values(128) {
        let openid = OpenId::new(v.clone());
        let e = s
            .client
            .user_info(&good_token, &openid, Lang::En)
            .await
            .expect_err("bad openid");
        assert_invalid(&e, "openid", &v);
        let e = s
            .client
            .check_oauth_token(&good_token, &openid)
            .await
            .expect_err("bad openid");
        assert_invalid(&e, "openid", &v);
        checked += 2;
    }
    // Endpoint paths that would make a malformed URL.
    for path in [
        "",
        "cgi-bin/x",
        "/",
        "/a?b=1",
        "/a#b",
        "/a b",
        "/a\nb",
        "/a\u{0}",
    ] {
        let ep = || Endpoint::get(path);
        let e = s
            .client
            .call::<serde_json::Value>(ep())
            .await
            .expect_err("bad path");
        assert_invalid(&e, "endpoint path", path);
        let e = s
            .client
            .call_with_token::<serde_json::Value>(ep())
            .await
            .expect_err("bad path");
        assert_invalid(&e, "endpoint path", path);
        checked += 2;
    }
    // The client's JS-SDK configuration checks the page URL before fetching a ticket.
    let mut urls = bad_values(4096);
    urls.extend([
        "MARK.example/page".into(),
        "ftp://MARK.example/".into(),
        "https://".into(),
        "https://MARK.example/a b".into(),
    ]);
    for v in &urls {
        let e = s.client.js_sdk_config(v).await.expect_err("bad page url");
        assert_invalid(&e, "url", v);
        checked += 1;
    }
    let e = s
        .client
        .force_refresh_stable_token()
        .await
        .expect_err("normal mode");
    assert_invalid(&e, "token_mode", "");
    checked += 1;
    assert!(checked > 50);
    assert_eq!(s.mock.total(), 0, "{:?}", s.mock.requests());
    assert!(s.store.is_empty(), "no token was fetched or stored");
}

#[test]
fn authorize_urls_reject_bad_redirects_and_states() {
    let s = setup();
    let long_uri = format!("https://a.example/MARK{}", "x".repeat(2048));
    let mut redirects = bad_values(2048);
    redirects.extend([
        long_uri,
        "https://a.example/MARK\n".into(),
        "https://a.example/MARK\u{7}".into(),
        "https://a.example/MARK with space".into(),
        "https://a.example/MARK\u{3000}ideographic-space".into(),
        "MARK.example/cb".into(),
        "/MARK/cb".into(),
        "javascript:MARK(1)".into(),
        "ftp://MARK.example/".into(),
    ]);
    for v in &redirects {
        for scope in [Scope::Base, Scope::UserInfo] {
            let e = s
                .client
                .authorize_url(v, scope, "ok")
                .expect_err("bad redirect_uri");
            assert_invalid(&e, "redirect_uri", v);
            let e = s
                .client
                .authorize_url_with(&AuthorizeUrl::new(v, scope).force_popup(true))
                .expect_err("bad redirect_uri");
            assert_invalid(&e, "redirect_uri", v);
        }
    }
    let mut states = bad_values(128);
    states.retain(|v| !v.is_empty()); // an empty state is allowed (`state=`)
    states.extend([
        "MARK-dash".into(),
        "MARK_underscore".into(),
        "MARK space".into(),
        "MARK&x=1".into(),
        "MARK#frag".into(),
        "MARK\u{e9}".into(),
        format!("MARK{}", "a".repeat(125)),
    ]);
    for v in &states {
        let e = s
            .client
            .authorize_url("https://a.example/cb", Scope::Base, v)
            .expect_err("bad state");
        assert_invalid(&e, "state", v);
        let e = s
            .client
            .authorize_url_with(
                &AuthorizeUrl::new("https://a.example/cb", Scope::UserInfo).state(v),
            )
            .expect_err("bad state");
        assert_invalid(&e, "state", v);
    }
    // The limits themselves are fine.
    let longest = format!("https://a.example/{}", "x".repeat(2048 - 18));
    assert_eq!(longest.len(), 2048);
    s.client
        .authorize_url(&longest, Scope::Base, &"a".repeat(128))
        .expect("2048-byte redirect, 128-byte state");
    assert_eq!(s.mock.total(), 0);
}

#[test]
fn the_builder_rejects_bad_options() {
    let build = |b: wx_official::Builder| {
        b.build(MockTransport::new(), MemoryTokenStore::new())
            .expect_err("bad option")
    };
    let secret = || AppSecret::new(SECRET);
    let mut appids = bad_values(64);
    appids.extend([
        "MARK app".into(),
        "MARK:app".into(),
        "MARK/app".into(),
        "MARK{app}".into(),
        "MARK\u{e9}".into(),
    ]);
    for v in &appids {
        let e = build(OfficialAccount::builder(v.as_str(), secret()));
        assert_invalid(&e, "appid", v);
    }
    for v in bad_values(256) {
        let e = build(OfficialAccount::builder(APPID, AppSecret::new(v.clone())));
        assert_invalid(&e, "secret", &v);
    }
    for v in bad_values(128) {
        let e = build(OfficialAccount::builder(APPID, secret()).key_prefix(&v));
        assert_invalid(&e, "key_prefix", &v);
    }
    let mut bases = bad_values(2048);
    bases.extend([
        "MARK.example".into(),
        "ftp://MARK.example".into(),
        "https://".into(),
        "https:///MARK".into(),
        "https://MARK.example/?q=1".into(),
        "https://MARK.example/#f".into(),
        "https://MARK example/".into(),
    ]);
    for v in &bases {
        let e = build(OfficialAccount::builder(APPID, secret()).api_base(v));
        assert_invalid(&e, "api_base", v);
        let e = build(OfficialAccount::builder(APPID, secret()).open_base(v));
        assert_invalid(&e, "open_base", v);
    }
    let e = build(OfficialAccount::builder(APPID, secret()).request_deadline(Duration::ZERO));
    assert_invalid(&e, "request_deadline", "");
    let e = build(OfficialAccount::builder(APPID, secret()).lease_ttl(Duration::ZERO));
    assert_invalid(&e, "lease_ttl", "");
    let e = build(
        OfficialAccount::builder(APPID, secret())
            .idempotent_code_exchange(Duration::from_millis(999)),
    );
    assert_invalid(&e, "idempotent_code_exchange", "");
}

#[test]
fn js_sdk_functions_reject_bad_arguments() {
    let app = AppId::new(APPID);
    let ticket = Ticket::new("TICKET-reliability-0123456789");
    let url = "https://a.example/page?x=1#top";
    for v in bad_values(128) {
        let e = js_sdk_config(&AppId::new(v.clone()), &ticket, url, 1, "nonce")
            .expect_err("bad app id");
        assert_invalid_input(&e, "app_id", &v);
    }
    let e = js_sdk_config(&app, &Ticket::new(""), url, 1, "nonce").expect_err("empty ticket");
    assert_invalid_input(&e, "ticket", "");
    let mut urls = bad_values(4096);
    urls.extend([
        "MARK.example/page".into(),
        "ftp://MARK.example/".into(),
        "https://".into(),
        "https://:443/MARK".into(),
        "https://MARK.example/a b".into(),
        "https://MARK.example/\u{2028}".into(),
    ]);
    for v in &urls {
        let e = js_sdk_config(&app, &ticket, v, 1, "nonce").expect_err("bad url");
        assert_invalid_input(&e, "url", v);
        let e = JsSdkConfig::generate(&app, &ticket, v, std::time::SystemTime::now())
            .expect_err("bad url");
        assert_invalid_input(&e, "url", v);
        let e = check_page_url(v).expect_err("bad url");
        assert_invalid_input(&e, "url", v);
    }
    let mut nonces = bad_values(64);
    nonces.extend([
        "MARK&x".into(),
        "MARK=x".into(),
        "MARK#x".into(),
        "MARK x".into(),
    ]);
    for v in &nonces {
        let e = js_sdk_config(&app, &ticket, url, 1, v).expect_err("bad nonce");
        assert_invalid_input(&e, "nonce", v);
    }
    js_sdk_config(&app, &ticket, url, 1, "nonce").expect("valid inputs");
}

#[test]
fn state_functions_reject_bad_arguments() {
    let clock = Arc::new(ManualClock::starting_now());
    let e = StateSigner::new(&[7u8; 31], clock.clone()).expect_err("short key");
    assert_invalid_input(&e, "key", "");
    let e = StateSigner::new(&[], clock.clone()).expect_err("empty key");
    assert_invalid_input(&e, "key", "");
    let signer = StateSigner::new(&[7u8; 32], clock).expect("32-byte key");
    let mut paths = bad_values(59);
    paths.extend([
        "MARK".into(),
        "//MARK.example".into(),
        "/\\MARK.example".into(),
        "/MARK space".into(),
        "/MARK\u{e9}".into(),
        format!("/MARK{}", "p".repeat(55)),
    ]);
    for v in &paths {
        let e = signer
            .issue(Some(v), Duration::from_secs(60))
            .expect_err("bad return path");
        assert_invalid_input(&e, "return_path", v);
        let e = signer
            .issue_bound(b"cookie", Some(v), Duration::from_secs(60))
            .expect_err("bad return path");
        assert_invalid_input(&e, "return_path", v);
    }
    for ttl in [
        Duration::ZERO,
        Duration::from_millis(999),
        MAX_TTL + Duration::from_secs(1),
    ] {
        let e = signer.issue(None, ttl).expect_err("bad ttl");
        assert_invalid_input(&e, "ttl", "");
    }
    // Verification of any such string: refused as malformed, without a panic.
    let mut states = bad_values(128);
    states.extend(["MARK-dash".into(), "\u{e9}".repeat(40), "0".repeat(129)]);
    for v in &states {
        assert_eq!(signer.verify(v), Err(StateError::Malformed), "{v:?}");
        assert_eq!(
            signer.verify_bound(v, b"cookie"),
            Err(StateError::Malformed)
        );
    }
}

#[test]
fn server_verification_rejects_missing_parameters() {
    for (query, missing) in [
        ("", "signature"),
        ("signature=", "signature"),
        ("signature=a&timestamp=1&nonce=2", "echostr"),
        ("?signature=a&timestamp=&nonce=2&echostr=3", "timestamp"),
        ("signature=a&timestamp=1&echostr=3&nonce", "nonce"),
    ] {
        assert_eq!(
            ServerVerifyQuery::from_query(query),
            Err(VerifyError::MissingParameter(missing)),
            "{query:?}"
        );
    }
    let q = ServerVerifyQuery::new("sig", "1", "2", "3");
    assert_eq!(verify_echo("", &q), Err(VerifyError::EmptyToken));
    let q = ServerVerifyQuery::new("sig", "1", "", "3");
    assert_eq!(
        verify_echo("token", &q),
        Err(VerifyError::MissingParameter("nonce"))
    );
}
