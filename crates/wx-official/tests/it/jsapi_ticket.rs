//! The JS-SDK ticket managed like the base token, `js_sdk_config`, and dropping a ticket the
//! browser rejected: on the recording mock and on the sandbox.

use std::time::{Duration, UNIX_EPOCH};

use sha1::{Digest, Sha1};
use wx_core::urlenc::url_with_query;
use wx_core::{
    AppId, Clock, Error, HttpRequest, HttpResponse, HttpTransport, JsapiTicketResponse, Refused,
    Ticket, TokenKind, TokenStore, decode_response,
};
use wx_official::jssdk::{self, jsapi_signature};
use wx_official::{JSAPI_TICKET_INVALIDATION_SPACING, JsSdkConfig};
use wx_sandbox::Sandbox;

use crate::common::*;

const TICKET_PATH: &str = "/cgi-bin/ticket/getticket";
const TICKET_1: &str = "TK-SECRET-one-bxLdikRXVbTPdHSM05e5u5sUoXNKd8";
const TICKET_2: &str = "TK-SECRET-two-sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3V";
const PAGE: &str = "https://app.example.com/pay?order=42&from=menu";

fn ticket_body(ticket: &str) -> HttpResponse {
    HttpResponse::json(format!(
        r#"{{"errcode":0,"errmsg":"ok","ticket":"{ticket}","expires_in":7200}}"#
    ))
}

/// The signature computed here from WeChat's rule, independently of the crate.
fn expected_signature(ticket: &str, config: &JsSdkConfig) -> String {
    let plain = format!(
        "jsapi_ticket={ticket}&noncestr={}&timestamp={}&url={}",
        config.nonce_str, config.timestamp, config.url
    );
    Sha1::digest(plain.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The ticket the sandbox currently holds for the app, fetched directly with its current token.
async fn sandbox_ticket(sandbox: &Sandbox) -> String {
    let token = sandbox.current_token(APPID).expect("a valid token");
    let url = url_with_query(
        "https://api.weixin.qq.com/cgi-bin/ticket/getticket",
        &[("access_token", token.secret()), ("type", "jsapi")],
    );
    let body = sandbox
        .send(HttpRequest::get(url))
        .await
        .expect("sent")
        .body;
    let r: JsapiTicketResponse =
        decode_response("cgi-bin/ticket/getticket", &body).expect("ticket");
    r.ticket.into_secret()
}

// ------------------------------------------------------------------ the managed ticket

#[tokio::test]
async fn the_ticket_is_fetched_with_the_base_token_and_cached() {
    let s = setup();
    s.mock
        .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    s.mock.push_for(
        TICKET_PATH,
        wx_core::test_util::response(
            200,
            fixture("cgi_bin_ticket_getticket.success.wechatpy.json"),
        ),
    );
    let first = s.client.jsapi_ticket().await.expect("ticket");
    let again = s.client.jsapi_ticket().await.expect("cached");
    assert!(first.ct_eq(&again));
    assert_eq!(s.mock.count(TICKET_PATH), 1);
    let r = &s.mock.requests_to(TICKET_PATH)[0];
    assert_eq!(
        r.url_without_query(),
        "https://api.weixin.qq.com/cgi-bin/ticket/getticket"
    );
    assert_eq!(
        query(r),
        pairs(&[("access_token", TOKEN_1), ("type", "jsapi")])
    );
    let key = s.client.token_key(&TokenKind::JsapiTicket);
    assert_eq!(key.to_string(), format!("wx:{APPID}:jsapi_ticket"));
    let stored = s.store.get(&key).await.expect("get").expect("stored");
    assert_eq!(stored.secret(), first.secret());
    assert_eq!(stored.expires_at, s.clock.now() + Duration::from_secs(7200));
    assert_eq!(format!("{first:?}"), "Ticket([redacted])");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_tasks_cause_one_ticket_request_on_the_sandbox() {
    let s = sandbox_setup_with(|b| b);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..1000 {
        let c = s.client.clone();
        tasks.spawn(async move { c.jsapi_ticket().await });
    }
    let tickets: Vec<Ticket> = tasks
        .join_all()
        .await
        .into_iter()
        .map(|r| r.expect("every task gets the ticket"))
        .collect();
    assert_eq!(tickets.len(), 1000);
    assert_eq!(s.sandbox.count(TICKET_PATH), 1, "one ticket request");
    assert_eq!(s.sandbox.count(TOKEN_PATH), 1, "one token request");
    let real = sandbox_ticket(&s.sandbox).await;
    assert!(tickets.iter().all(|t| t.secret() == real));
    let stored = s
        .store
        .get(&s.client.token_key(&TokenKind::JsapiTicket))
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(stored.secret(), real);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_sharing_a_store_fetch_the_ticket_once() {
    let sandbox = sandbox();
    let store = wx_core::MemoryTokenStore::with_clock(std::sync::Arc::new(sandbox.clock().clone()));
    let a = sandbox_builder(&sandbox)
        .build(sandbox.clone(), store.clone())
        .expect("a");
    let b = sandbox_builder(&sandbox)
        .build(sandbox.clone(), store.clone())
        .expect("b");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..400 {
        let c = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.spawn(async move { c.jsapi_ticket().await.map(Ticket::into_secret) });
    }
    let tickets: std::collections::HashSet<String> = tasks
        .join_all()
        .await
        .into_iter()
        .map(|r| r.expect("ticket"))
        .collect();
    assert_eq!(tickets.len(), 1);
    assert_eq!(sandbox.count(TICKET_PATH), 1);
    assert_eq!(sandbox.count(TOKEN_PATH), 1);
}

#[tokio::test]
async fn the_ticket_is_refreshed_inside_the_margin_only() {
    let s = setup();
    s.mock
        .always(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    s.mock.push_for(TICKET_PATH, ticket_body(TICKET_1));
    s.mock.push_for(TICKET_PATH, ticket_body(TICKET_2));
    assert_eq!(
        s.client.jsapi_ticket().await.expect("t1").secret(),
        TICKET_1
    );
    s.clock.advance(Duration::from_secs(6899));
    assert_eq!(
        s.client.jsapi_ticket().await.expect("t1").secret(),
        TICKET_1
    );
    assert_eq!(s.mock.count(TICKET_PATH), 1, "no fetch before the margin");
    s.clock.advance(Duration::from_secs(1));
    assert_eq!(
        s.client.jsapi_ticket().await.expect("t2").secret(),
        TICKET_2
    );
    assert_eq!(s.mock.count(TICKET_PATH), 2);
}

#[tokio::test]
async fn a_rejected_base_token_behind_the_ticket_is_replaced_and_the_fetch_retried_once() {
    for code in [40001, 40014, 42001] {
        let s = setup();
        s.mock
            .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
        s.mock
            .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_2, 7200)));
        s.mock.push_for(
            TICKET_PATH,
            HttpResponse::json(err_body(code, "invalid credential")),
        );
        s.mock.push_for(TICKET_PATH, ticket_body(TICKET_1));
        let t = s
            .client
            .jsapi_ticket()
            .await
            .expect("ticket after one retry");
        assert_eq!(t.secret(), TICKET_1);
        assert_eq!(s.mock.count(TOKEN_PATH), 2, "{code}");
        assert_eq!(s.mock.count(TICKET_PATH), 2, "{code}");
        let sent = s.mock.requests_to(TICKET_PATH);
        assert_eq!(sent[0].query("access_token").as_deref(), Some(TOKEN_1));
        assert_eq!(sent[1].query("access_token").as_deref(), Some(TOKEN_2));
    }
}

#[tokio::test]
async fn a_second_rejection_is_returned_and_nothing_loops() {
    let s = setup();
    s.mock
        .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    s.mock
        .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_2, 7200)));
    s.mock.always(
        TICKET_PATH,
        HttpResponse::json(err_body(40001, "invalid credential")),
    );
    let e = s.client.jsapi_ticket().await.expect_err("rejected twice");
    assert_eq!(api_code(&e), Some(40001));
    assert_eq!(s.mock.count(TOKEN_PATH), 2);
    assert_eq!(s.mock.count(TICKET_PATH), 2);
    assert_no_secrets(&e, &[TOKEN_1, TOKEN_2]);
}

#[tokio::test]
async fn a_ticket_quota_error_cools_the_ticket_down_without_touching_the_token() {
    let s = setup();
    s.mock
        .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    s.mock.push_for(
        TICKET_PATH,
        HttpResponse::json(err_body(45009, "reach max api daily quota limit")),
    );
    let e = s.client.jsapi_ticket().await.expect_err("quota");
    assert_eq!(api_code(&e), Some(45009));
    let e = s.client.jsapi_ticket().await.expect_err("cooldown");
    assert!(
        matches!(e, Error::Refused(Refused::TokenFetchCooldown { ref cause, .. }) if cause.code.0 == 45009),
        "{e:?}"
    );
    assert_eq!(s.mock.count(TICKET_PATH), 1, "no request in the cooldown");
    assert_eq!(
        s.client.access_token().await.expect("token").secret(),
        TOKEN_1
    );
    assert_eq!(s.mock.count(TOKEN_PATH), 1);
}

#[tokio::test]
async fn an_answer_without_a_ticket_is_a_decode_error() {
    for body in [
        r#"{"errcode":0,"errmsg":"ok","ticket":"","expires_in":7200}"#,
        r#"{"errcode":0,"errmsg":"ok","expires_in":7200}"#,
    ] {
        let s = setup();
        s.mock
            .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
        s.mock.push_for(TICKET_PATH, HttpResponse::json(body));
        let e = s.client.jsapi_ticket().await.expect_err(body);
        assert!(
            matches!(e, Error::Decode(ref d) if d.endpoint == "cgi-bin/ticket/getticket"),
            "{e:?}"
        );
        assert!(
            s.store
                .get(&s.client.token_key(&TokenKind::JsapiTicket))
                .await
                .expect("get")
                .is_none()
        );
    }
}

// ------------------------------------------------------------------ js_sdk_config

#[tokio::test]
async fn js_sdk_config_checks_the_url_before_any_request() {
    let s = setup();
    s.mock
        .always(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    s.mock.always(TICKET_PATH, ticket_body(TICKET_1));
    for url in [
        "",
        "app.example.com/page",
        "/page",
        "ftp://app.example.com/",
        "https://",
        "https://app.example.com/a b",
        "https://app.example.com/\n",
    ] {
        let e = s.client.js_sdk_config(url).await.expect_err(url);
        assert!(
            matches!(e, Error::InvalidInput(ref i) if i.argument == "url"),
            "{url:?}: {e:?}"
        );
    }
    let long = format!("https://a.com/{}", "x".repeat(jssdk::MAX_PAGE_URL_LEN));
    assert!(matches!(
        s.client.js_sdk_config(&long).await,
        Err(Error::InvalidInput(_))
    ));
    assert_eq!(
        s.mock.total(),
        0,
        "no token or ticket request for a bad URL"
    );
}

#[tokio::test]
async fn js_sdk_config_signs_with_the_cached_ticket_and_the_client_clock() {
    // The documented vector's ticket (wechat-api.md §8), served by the mock.
    const DOC_TICKET: &str =
        "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg";
    let s = setup();
    s.mock
        .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    s.mock.push_for(TICKET_PATH, ticket_body(DOC_TICKET));
    let now = s.clock.now();
    let a = s
        .client
        .js_sdk_config("http://mp.weixin.qq.com?params=value#section")
        .await
        .expect("config");
    let b = s
        .client
        .js_sdk_config("http://mp.weixin.qq.com?params=value")
        .await
        .expect("config");
    assert_eq!(a.app_id, AppId::new(APPID));
    assert_eq!(
        a.timestamp,
        now.duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs()
    );
    assert_eq!(
        a.url, "http://mp.weixin.qq.com?params=value",
        "fragment dropped"
    );
    assert_eq!(a.nonce_str.len(), jssdk::NONCE_LEN);
    assert_ne!(a.nonce_str, b.nonce_str, "a fresh nonce per config");
    assert_eq!(a.signature, expected_signature(DOC_TICKET, &a));
    assert_eq!(b.signature, expected_signature(DOC_TICKET, &b));
    assert_eq!(s.mock.count(TICKET_PATH), 1, "the ticket is cached");

    // Given the vector's nonce and timestamp, the pure function gives the vector's signature.
    let fixed = jssdk::js_sdk_config(
        &AppId::new(APPID),
        &Ticket::new(DOC_TICKET),
        &a.url,
        1_414_587_457,
        "Wm3WZYTPz0wzccnW",
    )
    .expect("valid");
    assert_eq!(fixed.signature, "0f9de62fce790f9a083d5c99e95740ceb90c27ed");

    let json = serde_json::to_value(&a).expect("serialise");
    assert_eq!(json["appId"], APPID);
    assert!(!json.to_string().contains(DOC_TICKET));
}

#[tokio::test]
async fn js_sdk_config_equals_the_easywechat_vector() {
    let v: serde_json::Value =
        serde_json::from_slice(&fixture("vector.jssdk_signature.easywechat_test.json"))
            .expect("fixture is JSON");
    let text = |k: &str| v[k].as_str().expect("string").to_owned();
    let config = jssdk::js_sdk_config(
        &AppId::new(v["returned_config_shape"]["appId"].as_str().expect("appId")),
        &Ticket::new(text("jsapi_ticket")),
        &text("url"),
        v["timestamp"].as_u64().expect("timestamp"),
        &text("noncestr"),
    )
    .expect("valid");
    assert_eq!(config.signature, text("expected_signature"));
    assert_eq!(
        serde_json::to_value(&config).expect("serialise"),
        v["returned_config_shape"]
    );
}

#[tokio::test]
async fn a_config_from_the_sandbox_verifies_against_the_sandbox_ticket() {
    let s = sandbox_setup_with(|b| b);
    let config = s.client.js_sdk_config(PAGE).await.expect("config");
    let real = sandbox_ticket(&s.sandbox).await;
    assert_eq!(config.signature, expected_signature(&real, &config));
    assert_eq!(config.url, PAGE);
    assert_eq!(
        config.timestamp,
        s.sandbox
            .clock()
            .now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs()
    );
    // Ours plus the check above.
    assert_eq!(s.sandbox.count(TICKET_PATH), 2);
}

// ------------------------------------------------------------------ rejected tickets

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_ticket_is_rechecked_and_replaced_once_for_all_reporters() {
    let s = setup();
    s.mock
        .always(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    s.mock.push_for(TICKET_PATH, ticket_body(TICKET_1));
    s.mock.push_for(TICKET_PATH, ticket_body(TICKET_2));
    let rejected = s.client.jsapi_ticket().await.expect("t1");
    assert_eq!(rejected.secret(), TICKET_1);

    // 100 pages report the same rejected ticket at once, then ask for a new one.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let (c, t) = (s.client.clone(), rejected.clone());
        tasks.spawn(async move {
            let dropped = c.invalidate_jsapi_ticket(&t).await.expect("store up");
            let now = c.jsapi_ticket().await.expect("ticket");
            (dropped, now.into_secret())
        });
    }
    let results = tasks.join_all().await;
    assert_eq!(
        results.iter().filter(|(d, _)| *d).count(),
        1,
        "dropped once"
    );
    // The old ticket is served until the checked one is stored (the store never goes empty):
    // a page loaded during the check may get either; every page after it gets the new one.
    assert!(results.iter().all(|(_, t)| t == TICKET_1 || t == TICKET_2));
    assert_eq!(
        s.client.jsapi_ticket().await.expect("ticket").secret(),
        TICKET_2
    );
    assert_eq!(s.mock.count(TICKET_PATH), 2, "refetched once");
    assert_eq!(
        s.mock.count(TOKEN_PATH),
        1,
        "the base token was not touched"
    );

    // A stale report of the old ticket does nothing.
    assert!(
        !s.client
            .invalidate_jsapi_ticket(&rejected)
            .await
            .expect("store up")
    );
    // Within the spacing, even a report of the current ticket is ignored...
    let current = Ticket::new(TICKET_2);
    s.clock
        .advance(JSAPI_TICKET_INVALIDATION_SPACING - Duration::from_secs(1));
    assert!(
        !s.client
            .invalidate_jsapi_ticket(&current)
            .await
            .expect("store up")
    );
    assert_eq!(
        s.client.jsapi_ticket().await.expect("kept").secret(),
        TICKET_2
    );
    // ...and checked with WeChat after it: still valid, so kept (never deleted).
    s.clock.advance(Duration::from_secs(1));
    s.mock.push_for(TICKET_PATH, ticket_body(TICKET_2));
    assert!(
        !s.client
            .invalidate_jsapi_ticket(&current)
            .await
            .expect("checked")
    );
    let kept = s
        .store
        .get(&s.client.token_key(&TokenKind::JsapiTicket))
        .await
        .expect("get")
        .expect("kept");
    assert_eq!(kept.secret(), TICKET_2);
    assert_eq!(s.mock.count(TICKET_PATH), 3);
}

/// Issue 19 (Low): posting back the genuine configuration any visitor was served used to drop
/// the ticket. A report is not proof: the ticket is checked with WeChat (one request per
/// spacing), and kept while WeChat still answers it; the store never goes empty.
#[tokio::test]
async fn a_genuine_config_posted_back_is_checked_with_wechat_not_trusted() {
    let s = sandbox_setup_with(|b| b);
    let config = s.client.js_sdk_config(PAGE).await.expect("config");
    let key = s.client.token_key(&TokenKind::JsapiTicket);
    let before = s.store.get(&key).await.expect("get").expect("stored");
    assert!(
        !s.client
            .invalidate_jsapi_ticket_for(&config)
            .await
            .expect("checked"),
        "WeChat still answers the ticket"
    );
    let after = s
        .store
        .get(&key)
        .await
        .expect("get")
        .expect("never deleted");
    assert_eq!(after.secret(), before.secret());
    assert_eq!(s.sandbox.count(TICKET_PATH), 2, "the fetch and one check");
    // More reports within the spacing cost nothing.
    for _ in 0..10 {
        assert!(
            !s.client
                .invalidate_jsapi_ticket_for(&config)
                .await
                .expect("ignored")
        );
    }
    assert_eq!(s.sandbox.count(TICKET_PATH), 2);
    s.client
        .js_sdk_config(PAGE)
        .await
        .expect("pages keep working");
}

#[tokio::test]
async fn the_spacing_between_drops_is_shared_through_the_store() {
    let clock = wx_core::ManualClock::starting_now();
    let store = wx_core::MemoryTokenStore::with_clock(std::sync::Arc::new(clock.clone()));
    let mock = wx_core::test_util::MockTransport::new();
    mock.always(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    mock.push_for(TICKET_PATH, ticket_body(TICKET_1));
    mock.push_for(TICKET_PATH, ticket_body(TICKET_2));
    let a = builder(&clock)
        .build(mock.clone(), store.clone())
        .expect("a");
    let b = builder(&clock)
        .build(mock.clone(), store.clone())
        .expect("b");
    let t1 = a.jsapi_ticket().await.expect("t1");
    assert!(a.invalidate_jsapi_ticket(&t1).await.expect("dropped"));
    let t2 = b.jsapi_ticket().await.expect("t2");
    assert_eq!(t2.secret(), TICKET_2);
    // Another process reports the new ticket right away: refused by the shared lease.
    assert!(!b.invalidate_jsapi_ticket(&t2).await.expect("store up"));
    assert_eq!(a.jsapi_ticket().await.expect("kept").secret(), TICKET_2);
    assert_eq!(mock.count(TICKET_PATH), 2);
}

#[tokio::test]
async fn a_page_report_drops_only_the_ticket_its_config_was_signed_with() {
    let s = setup();
    s.mock
        .always(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    s.mock.push_for(TICKET_PATH, ticket_body(TICKET_1));
    s.mock.push_for(TICKET_PATH, ticket_body(TICKET_2));
    let config = s.client.js_sdk_config(PAGE).await.expect("config");
    // The page posts back the JSON it was given.
    let posted = serde_json::to_string(&config).expect("serialise");
    let reported: JsSdkConfig = serde_json::from_str(&posted).expect("deserialise");
    assert_eq!(reported, config);

    let mut forged = reported.clone();
    forged.signature = "0".repeat(40);
    assert!(
        !s.client
            .invalidate_jsapi_ticket_for(&forged)
            .await
            .expect("store up")
    );
    let mut other_app = reported.clone();
    other_app.app_id = AppId::new("wx0000000000000000");
    assert!(
        !s.client
            .invalidate_jsapi_ticket_for(&other_app)
            .await
            .expect("store up")
    );
    assert_eq!(
        s.client.jsapi_ticket().await.expect("kept").secret(),
        TICKET_1
    );

    assert!(
        s.client
            .invalidate_jsapi_ticket_for(&reported)
            .await
            .expect("dropped")
    );
    let fresh = s.client.js_sdk_config(PAGE).await.expect("config");
    assert_eq!(fresh.signature, expected_signature(TICKET_2, &fresh));
    // The old page's report is now stale.
    s.clock.advance(JSAPI_TICKET_INVALIDATION_SPACING);
    assert!(
        !s.client
            .invalidate_jsapi_ticket_for(&reported)
            .await
            .expect("store up")
    );
    assert_eq!(s.mock.count(TICKET_PATH), 2);
}

/// WeChat answers a ticket fetched again while valid with the same ticket and `expires_in`
/// 7200, so a ticket refreshed inside the margin is recorded past its real end. The page's
/// report recovers with one fetch.
#[tokio::test]
async fn a_ticket_that_died_before_its_recorded_expiry_is_recovered_on_the_sandbox() {
    let s = sandbox_setup_with(|b| b);
    let clock = s.sandbox.clock().clone();
    let first = s.client.jsapi_ticket().await.expect("ticket");
    // Inside the margin: the refresh gets the same ticket back, "valid for 7200 s".
    clock.advance(Duration::from_secs(6950));
    let refreshed = s.client.jsapi_ticket().await.expect("refreshed");
    assert_eq!(refreshed.secret(), first.secret());
    assert_eq!(s.sandbox.count(TICKET_PATH), 2);
    // Past the ticket's real end, the client still holds it; the browser rejects the config.
    clock.advance(Duration::from_secs(300));
    let config = s.client.js_sdk_config(PAGE).await.expect("config");
    assert_eq!(
        config.signature,
        expected_signature(first.secret(), &config)
    );
    assert_eq!(s.sandbox.count(TICKET_PATH), 2);
    assert!(
        s.client
            .invalidate_jsapi_ticket_for(&config)
            .await
            .expect("dropped")
    );
    let config = s.client.js_sdk_config(PAGE).await.expect("config");
    let real = sandbox_ticket(&s.sandbox).await;
    assert_ne!(real, first.secret(), "the sandbox issued a new ticket");
    assert_eq!(config.signature, expected_signature(&real, &config));
    assert_eq!(
        s.sandbox.count(TICKET_PATH),
        4,
        "one refetch, plus the check"
    );
}

#[tokio::test]
async fn tickets_and_configs_never_show_the_ticket() {
    let s = setup();
    s.mock
        .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    s.mock.push_for(TICKET_PATH, ticket_body(TICKET_1));
    let t = s.client.jsapi_ticket().await.expect("ticket");
    let config = s.client.js_sdk_config(PAGE).await.expect("config");
    let shown = format!(
        "{t:?} {config:?} {} {:?}",
        serde_json::to_string(&config).expect("json"),
        s.store
    );
    assert!(!shown.contains(TICKET_1), "{shown}");
    assert_eq!(
        config.signature,
        jsapi_signature(&t, &config.nonce_str, config.timestamp, PAGE)
    );
}
