//! The opt-in idempotent code exchange: a repeat of a code within the window is answered from
//! the store, concurrent exchanges of one code send one request, the window ends.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wx_core::{
    Clock, Error, HttpResponse, Lang, MemoryTokenStore, OAuthToken, OpenId, Scope, StoredToken,
    TokenKind, TokenStore,
};
use wx_sandbox::Fault;

use crate::common::*;

const CODE_PATH: &str = "/sns/oauth2/access_token";
const CODE: &str = "061Vb3Ga1tRZ1B0lcYFa1Vg3Ga1Vb3G6";
const WEB_TOKEN: &str = "WEB-SECRET-token-777";
const REFRESH: &str = "RT-SECRET-refresh-888";
const WINDOW: Duration = Duration::from_secs(60);

fn exchange_body(expires_in: u64) -> HttpResponse {
    HttpResponse::json(format!(
        r#"{{"access_token":"{WEB_TOKEN}","expires_in":{expires_in},"refresh_token":"{REFRESH}",
            "openid":"o-1","scope":"snsapi_userinfo","is_snapshotuser":1,"unionid":"u-1"}}"#
    ))
}

fn code_key_kind(code: &str) -> TokenKind {
    let hex: String = Sha256::digest(code.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    TokenKind::Custom(format!("oauth_code:{hex}").into())
}

fn assert_same_login(a: &OAuthToken, b: &OAuthToken) {
    assert!(a.access_token.ct_eq(&b.access_token));
    assert!(a.refresh_token.ct_eq(&b.refresh_token));
    assert_eq!(a.openid, b.openid);
    assert_eq!(a.unionid, b.unionid);
    assert_eq!(a.scope, b.scope);
    assert_eq!(a.is_snapshotuser, b.is_snapshotuser);
}

#[tokio::test]
async fn a_repeat_within_the_window_is_answered_from_the_store() {
    let s = setup_with(|b| b.idempotent_code_exchange(WINDOW));
    s.mock.push_for(CODE_PATH, exchange_body(7200));
    s.mock.push_for(
        CODE_PATH,
        HttpResponse::json(err_body(40163, "code been used")),
    );
    let first = s.client.exchange_code(CODE).await.expect("exchanged");
    assert_eq!(first.access_token.secret(), WEB_TOKEN);
    assert_eq!(first.expires_in, 7200);
    assert!(first.is_snapshotuser);

    // Kept under the hash of the code (never the code itself) until the window ends.
    let key = s.client.token_key(&code_key_kind(CODE));
    assert!(!key.to_string().contains(CODE));
    let stored = s.store.get(&key).await.expect("get").expect("kept");
    assert_eq!(stored.expires_at, s.clock.now() + WINDOW);
    assert!(!format!("{stored:?}").contains(WEB_TOKEN));

    s.clock.advance(Duration::from_secs(10));
    let again = s.client.exchange_code(CODE).await.expect("from the store");
    assert_same_login(&first, &again);
    assert_eq!(
        again.expires_in, 7190,
        "the web token's lifetime counts down"
    );
    assert_eq!(s.mock.count(CODE_PATH), 1, "one upstream request");

    // After the window WeChat answers: the code was used.
    s.clock.advance(WINDOW);
    assert!(s.store.get(&key).await.expect("get").is_none(), "expired");
    let e = s.client.exchange_code(CODE).await.expect_err("used");
    assert_eq!(api_code(&e), Some(40163));
    assert!(e.is_login_restart_required());
    assert_eq!(s.mock.count(CODE_PATH), 2);
}

#[tokio::test]
async fn the_entry_lives_no_longer_than_the_web_token() {
    let s = setup_with(|b| b.idempotent_code_exchange(Duration::from_secs(600)));
    s.mock.push_for(CODE_PATH, exchange_body(30));
    s.client.exchange_code(CODE).await.expect("exchanged");
    let stored = s
        .store
        .get(&s.client.token_key(&code_key_kind(CODE)))
        .await
        .expect("get")
        .expect("kept");
    assert_eq!(stored.expires_at, s.clock.now() + Duration::from_secs(30));
}

#[tokio::test]
async fn failures_are_not_kept_and_other_codes_are_separate() {
    let s = setup_with(|b| b.idempotent_code_exchange(WINDOW));
    s.mock.push_for(
        CODE_PATH,
        HttpResponse::json(err_body(40029, "invalid code")),
    );
    s.mock.push_for(CODE_PATH, exchange_body(7200));
    s.mock.push_for(CODE_PATH, exchange_body(7200));
    let e = s.client.exchange_code(CODE).await.expect_err("invalid");
    assert!(e.is_login_restart_required());
    assert!(s.store.is_empty(), "a failure is not kept");
    s.client
        .exchange_code(CODE)
        .await
        .expect("the next try goes upstream");
    s.client
        .exchange_code("another-code")
        .await
        .expect("another code is another exchange");
    assert_eq!(s.mock.count(CODE_PATH), 3);
    let sent = s.mock.requests_to(CODE_PATH);
    assert_eq!(sent[2].query("code").as_deref(), Some("another-code"));
}

#[tokio::test]
async fn off_by_default_and_bad_windows_are_rejected() {
    let s = setup();
    s.mock.push_for(CODE_PATH, exchange_body(7200));
    s.mock.push_for(
        CODE_PATH,
        HttpResponse::json(err_body(40163, "code been used")),
    );
    s.client.exchange_code(CODE).await.expect("exchanged");
    let e = s.client.exchange_code(CODE).await.expect_err("not kept");
    assert_eq!(api_code(&e), Some(40163));
    assert!(s.store.is_empty());

    for window in [Duration::ZERO, Duration::from_millis(999)] {
        let e = builder(&wx_core::ManualClock::starting_now())
            .idempotent_code_exchange(window)
            .build(
                wx_core::test_util::MockTransport::new(),
                MemoryTokenStore::new(),
            )
            .expect_err("too short");
        assert!(
            matches!(e, Error::InvalidInput(ref i) if i.argument == "idempotent_code_exchange"),
            "{e:?}"
        );
    }
}

#[tokio::test]
async fn bad_codes_are_rejected_before_the_store_or_a_request() {
    let s = setup_with(|b| b.idempotent_code_exchange(WINDOW));
    for code in ["", "a\nb", &"c".repeat(513)] {
        let e = s.client.exchange_code(code).await.expect_err("invalid");
        assert!(matches!(e, Error::InvalidInput(ref i) if i.argument == "code"));
    }
    assert_eq!(s.mock.total(), 0);
}

#[tokio::test]
async fn an_unreadable_entry_is_a_decode_error_not_a_second_exchange() {
    let s = setup_with(|b| b.idempotent_code_exchange(WINDOW));
    s.mock.always(CODE_PATH, exchange_body(7200));
    s.store
        .set(
            &s.client.token_key(&code_key_kind(CODE)),
            StoredToken::new("not json", s.clock.now() + WINDOW),
        )
        .await
        .expect("set");
    let e = s.client.exchange_code(CODE).await.expect_err("garbage");
    assert!(
        matches!(e, Error::Decode(ref d) if d.endpoint == "sns/oauth2/access_token"),
        "{e:?}"
    );
    assert!(!format!("{e} {e:?}").contains("not json"));
    assert_eq!(s.mock.count(CODE_PATH), 0);
}

// ------------------------------------------------------------------ on the sandbox

#[tokio::test]
async fn double_redirect_on_the_sandbox_one_upstream_request_then_40163() {
    let s = sandbox_setup_with(|b| b.idempotent_code_exchange(WINDOW));
    let code = s
        .sandbox
        .issue_code(APPID, ALICE, Scope::UserInfo)
        .expect("code");
    let first = s.client.exchange_code(&code).await.expect("first load");
    let second = s.client.exchange_code(&code).await.expect("second load");
    assert_same_login(&first, &second);
    assert_eq!(first.openid, OpenId::new(ALICE));
    assert_eq!(s.sandbox.count(CODE_PATH), 1);
    // The replayed web token is WeChat's: it reads the profile.
    let user = s
        .client
        .user_info(&second.access_token, &second.openid, Lang::ZhCn)
        .await
        .expect("profile");
    assert_eq!(user.nickname, "Alice");

    // After the window, the sandbox (like WeChat) says the code was used.
    s.sandbox.clock().advance(WINDOW + Duration::from_secs(1));
    let e = s.client.exchange_code(&code).await.expect_err("used");
    assert_eq!(api_code(&e), Some(40163));
    assert!(e.is_login_restart_required());
    assert_eq!(s.sandbox.count(CODE_PATH), 2);
}

#[tokio::test]
async fn without_the_option_the_sandbox_refuses_the_second_load() {
    let s = sandbox_setup_with(|b| b);
    let code = s
        .sandbox
        .issue_code(APPID, ALICE, Scope::Base)
        .expect("code");
    s.client.exchange_code(&code).await.expect("first load");
    let e = s
        .client
        .exchange_code(&code)
        .await
        .expect_err("second load");
    assert_eq!(api_code(&e), Some(40163));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_exchanges_of_one_code_send_one_request() {
    let s = sandbox_setup_with(|b| b.idempotent_code_exchange(WINDOW));
    let alice = s
        .sandbox
        .issue_code(APPID, ALICE, Scope::UserInfo)
        .expect("code");
    let bob = s.sandbox.issue_code(APPID, BOB, Scope::Base).expect("code");
    // A slow exchange, so that the callers pile up while it is in flight.
    s.sandbox.faults().script_for(
        CODE_PATH,
        [
            Fault::Delay(Duration::from_millis(100)),
            Fault::Delay(Duration::from_millis(100)),
        ],
    );
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200 {
        let c = s.client.clone();
        let code = if i % 2 == 0 {
            alice.clone()
        } else {
            bob.clone()
        };
        tasks.spawn(async move { c.exchange_code(&code).await.map(|t| (i, t)) });
    }
    for r in tasks.join_all().await {
        let (i, t) = r.expect("every caller logs in");
        let expected = if i % 2 == 0 { ALICE } else { BOB };
        assert_eq!(t.openid.as_str(), expected);
    }
    assert_eq!(s.sandbox.count(CODE_PATH), 2, "one request per code");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_sharing_a_store_exchange_a_code_once() {
    let sandbox = sandbox();
    let store = MemoryTokenStore::with_clock(Arc::new(sandbox.clock().clone()));
    let a = sandbox_builder(&sandbox)
        .idempotent_code_exchange(WINDOW)
        .build(sandbox.clone(), store.clone())
        .expect("a");
    let b = sandbox_builder(&sandbox)
        .idempotent_code_exchange(WINDOW)
        .build(sandbox.clone(), store.clone())
        .expect("b");
    let code = sandbox
        .issue_code(APPID, ALICE, Scope::UserInfo)
        .expect("code");
    sandbox
        .faults()
        .script_for(CODE_PATH, [Fault::Delay(Duration::from_millis(100))]);
    // The double redirect lands on two nodes behind the load balancer.
    let (ra, rb) = tokio::join!(a.exchange_code(&code), b.exchange_code(&code));
    assert_same_login(&ra.expect("node a"), &rb.expect("node b"));
    assert_eq!(sandbox.count(CODE_PATH), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_dropped_midway_still_leaves_the_answer_for_the_retry() {
    let s = sandbox_setup_with(|b| b.idempotent_code_exchange(WINDOW));
    let code = s
        .sandbox
        .issue_code(APPID, ALICE, Scope::UserInfo)
        .expect("code");
    s.sandbox
        .faults()
        .script_for(CODE_PATH, [Fault::Delay(Duration::from_millis(200))]);
    // The browser gives up on the first load (the handler future is dropped) while WeChat is
    // answering; the code is used by then.
    let gave_up =
        tokio::time::timeout(Duration::from_millis(50), s.client.exchange_code(&code)).await;
    assert!(gave_up.is_err(), "the first load was abandoned");
    let t = s
        .client
        .exchange_code(&code)
        .await
        .expect("the reload logs in");
    assert_eq!(t.openid.as_str(), ALICE);
    assert_eq!(s.sandbox.count(CODE_PATH), 1);
}

#[tokio::test]
async fn consumer_only_clients_exchange_codes_too() {
    let s = sandbox_setup_with(|b| b.consumer_only(true).idempotent_code_exchange(WINDOW));
    let code = s
        .sandbox
        .issue_code(APPID, ALICE, Scope::Base)
        .expect("code");
    let t = s.client.exchange_code(&code).await.expect("exchanged");
    assert_eq!(t.openid.as_str(), ALICE);
    assert_eq!(
        s.client.exchange_code(&code).await.expect("again").openid,
        t.openid
    );
    assert_eq!(s.sandbox.count(CODE_PATH), 1);
    assert_eq!(s.sandbox.count(TOKEN_PATH), 0);
}

#[tokio::test]
async fn the_dyn_client_and_a_custom_prefix_keep_entries_under_the_prefix() {
    let sandbox = sandbox();
    let store = MemoryTokenStore::with_clock(Arc::new(sandbox.clock().clone()));
    let client: wx_official::DynOfficialAccount = sandbox_builder(&sandbox)
        .key_prefix("shop")
        .idempotent_code_exchange(WINDOW)
        .build(
            Arc::new(sandbox.clone()) as Arc<dyn wx_core::HttpTransport>,
            Arc::new(store.clone()) as Arc<dyn TokenStore>,
        )
        .expect("client");
    let code = sandbox.issue_code(APPID, ALICE, Scope::Base).expect("code");
    client.exchange_code(&code).await.expect("exchanged");
    let key = client.token_key(&code_key_kind(&code));
    assert!(
        key.to_string()
            .starts_with(&format!("shop:{APPID}:oauth_code:"))
    );
    assert!(store.get(&key).await.expect("get").is_some());
    client.exchange_code(&code).await.expect("again");
    assert_eq!(sandbox.count(CODE_PATH), 1);
}

/// The double redirect on two nodes, where the second node's lease request is slow: granted
/// after the first node stored the answer and released the lease, it reads the store again
/// rather than spending the code a second time (which would answer 40163).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_granted_the_lease_after_the_exchange_finished_reads_the_answer() {
    let sandbox = sandbox();
    let store = MemoryTokenStore::with_clock(Arc::new(sandbox.clock().clone()));
    let a = sandbox_builder(&sandbox)
        .idempotent_code_exchange(WINDOW)
        .build(sandbox.clone(), store.clone())
        .expect("a");
    let b = sandbox_builder(&sandbox)
        .idempotent_code_exchange(WINDOW)
        .build(
            sandbox.clone(),
            SlowLease {
                inner: store.clone(),
                delay: Duration::from_millis(400),
            },
        )
        .expect("b");
    let code = sandbox
        .issue_code(APPID, ALICE, Scope::UserInfo)
        .expect("code");
    sandbox
        .faults()
        .script_for(CODE_PATH, [Fault::Delay(Duration::from_millis(200))]);
    let a_code = code.clone();
    let a_call = tokio::spawn(async move { a.exchange_code(&a_code).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let from_b = b.exchange_code(&code).await.expect("node b");
    let from_a = a_call.await.expect("task").expect("node a");
    assert_same_login(&from_a, &from_b);
    assert_eq!(sandbox.count(CODE_PATH), 1);
}
