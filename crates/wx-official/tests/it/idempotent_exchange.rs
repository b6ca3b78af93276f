//! The opt-in idempotent code exchange: a repeat of a callback (code and verified, browser-bound
//! state) within the window is answered from the store, concurrent exchanges of it send one
//! request, the window ends, and the code with any other state never gets the kept answer.

use std::sync::Arc;
use std::time::Duration;

use wx_core::{
    Clock, Error, HttpResponse, Lang, ManualClock, MemoryTokenStore, OAuthToken, OpenId, Scope,
    StoredToken, TokenKey, TokenStore,
};
use wx_official::{StateSigner, VerifiedState};
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

/// The victim's browser cookie (the state's binding) and the attacker's.
const VICTIM_COOKIE: &[u8] = b"victim-browser-cookie-0001";
const ATTACKER_COOKIE: &[u8] = b"attacker-browser-cookie-02";
const STATE_TTL: Duration = Duration::from_secs(600);

/// The site's state signer (one key for the fleet) on `clock`.
fn signer(clock: &ManualClock) -> StateSigner {
    StateSigner::new(&[42u8; 32], Arc::new(clock.clone())).expect("32-byte key")
}

/// A login started in the browser holding `cookie`, verified at its callback.
fn callback(signer: &StateSigner, cookie: &[u8]) -> VerifiedState {
    let state = signer
        .issue_bound(cookie, Some("/orders/42"), STATE_TTL)
        .expect("state");
    signer.verify_bound(&state, cookie).expect("authentic")
}

/// The keys of the kept exchanges in `store`.
fn kept_keys(store: &MemoryTokenStore) -> Vec<TokenKey> {
    store
        .keys()
        .into_iter()
        .filter(|k| k.kind().as_str().starts_with("oauth_code:"))
        .collect()
}

async fn kept_entry(store: &MemoryTokenStore) -> StoredToken {
    let key = the_kept_key(store);
    store.get(&key).await.expect("get").expect("kept")
}

fn the_kept_key(store: &MemoryTokenStore) -> TokenKey {
    let keys = kept_keys(store);
    assert_eq!(keys.len(), 1, "{keys:?}");
    keys.into_iter().next().expect("one key")
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
async fn a_repeat_of_the_callback_within_the_window_is_answered_from_the_store() {
    let s = setup_with(|b| b.idempotent_code_exchange(WINDOW));
    let v = callback(&signer(&s.clock), VICTIM_COOKIE);
    s.mock.push_for(CODE_PATH, exchange_body(7200));
    s.mock.push_for(
        CODE_PATH,
        HttpResponse::json(err_body(40163, "code been used")),
    );
    let first = s
        .client
        .exchange_code_for(&v, CODE)
        .await
        .expect("exchanged");
    assert_eq!(first.access_token.secret(), WEB_TOKEN);
    assert_eq!(first.expires_in, 7200);
    assert!(first.is_snapshotuser);

    // Kept under a hash (never the code itself) until the window ends.
    let key = the_kept_key(&s.store);
    assert!(!key.to_string().contains(CODE));
    let stored = s.store.get(&key).await.expect("get").expect("kept");
    assert_eq!(stored.expires_at, s.clock.now() + WINDOW);
    assert!(!format!("{stored:?}").contains(WEB_TOKEN));

    s.clock.advance(Duration::from_secs(10));
    let again = s
        .client
        .exchange_code_for(&v, CODE)
        .await
        .expect("from the store");
    assert_same_login(&first, &again);
    assert_eq!(
        again.expires_in, 7190,
        "the web token's lifetime counts down"
    );
    assert_eq!(s.mock.count(CODE_PATH), 1, "one upstream request");

    // After the window WeChat answers: the code was used.
    s.clock.advance(WINDOW);
    assert!(s.store.get(&key).await.expect("get").is_none(), "expired");
    let e = s
        .client
        .exchange_code_for(&v, CODE)
        .await
        .expect_err("used");
    assert_eq!(api_code(&e), Some(40163));
    assert!(e.is_login_restart_required());
    assert_eq!(s.mock.count(CODE_PATH), 2);
}

/// The leaked-code replay (issue 19): the attacker opens `/login` in their own browser, gets a
/// valid state bound to their own cookie, and presents the victim's code with it. The kept
/// answer belongs to the victim's callback: the attacker's exchange goes to WeChat, which says
/// the code was used, and never returns the victim's login.
#[tokio::test]
async fn a_leaked_code_with_the_attackers_own_valid_state_does_not_get_the_victims_login() {
    let s = sandbox_setup_with(|b| b.idempotent_code_exchange(WINDOW));
    let site = signer(s.sandbox.clock());
    let code = s
        .sandbox
        .issue_code(APPID, ALICE, Scope::UserInfo)
        .expect("code");
    let victim = callback(&site, VICTIM_COOKIE);
    let login = s
        .client
        .exchange_code_for(&victim, &code)
        .await
        .expect("the victim logs in");
    assert_eq!(login.openid.as_str(), ALICE);

    // The attacker's own state, issued by the site and verified with the attacker's cookie.
    let attacker = callback(&site, ATTACKER_COOKIE);
    assert!(attacker.is_bound());
    s.sandbox.clock().advance(Duration::from_secs(5));
    let e = s
        .client
        .exchange_code_for(&attacker, &code)
        .await
        .expect_err("not the victim's login");
    assert_eq!(api_code(&e), Some(40163), "{e:?}");
    assert!(e.is_login_restart_required());
    // A second try is no different, and nothing was kept for the attacker's callback.
    let e = s
        .client
        .exchange_code_for(&attacker, &code)
        .await
        .expect_err("still not the victim's login");
    assert_eq!(api_code(&e), Some(40163));
    assert_eq!(kept_keys(&s.store).len(), 1, "only the victim's callback");
    // The victim's own state does not verify with the attacker's cookie.
    let victim_state = site
        .issue_bound(VICTIM_COOKIE, None, STATE_TTL)
        .expect("state");
    assert!(site.verify_bound(&victim_state, ATTACKER_COOKIE).is_err());
    // An unbound state proves no browser: refused before anything is sent.
    let unbound = site
        .verify(&site.issue(None, STATE_TTL).expect("state"))
        .expect("authentic");
    assert!(!unbound.is_bound());
    let e = s
        .client
        .exchange_code_for(&unbound, &code)
        .await
        .expect_err("unbound");
    assert!(
        matches!(e, Error::InvalidInput(ref i) if i.argument == "state"),
        "{e:?}"
    );
    // The victim's reload is still answered.
    let again = s
        .client
        .exchange_code_for(&victim, &code)
        .await
        .expect("the victim's reload");
    assert_same_login(&login, &again);
    assert_eq!(
        s.sandbox.count(CODE_PATH),
        3,
        "the victim's and the attacker's two"
    );
}

#[tokio::test]
async fn the_entry_lives_no_longer_than_the_web_token_or_the_state() {
    let s = setup_with(|b| b.idempotent_code_exchange(Duration::from_secs(300)));
    let v = callback(&signer(&s.clock), VICTIM_COOKIE);
    s.mock.push_for(CODE_PATH, exchange_body(30));
    s.client
        .exchange_code_for(&v, CODE)
        .await
        .expect("exchanged");
    let stored = kept_entry(&s.store).await;
    assert_eq!(stored.expires_at, s.clock.now() + Duration::from_secs(30));

    // A state with 20 s left: its callback cannot come back after that.
    let s = setup_with(|b| b.idempotent_code_exchange(Duration::from_secs(300)));
    let site = signer(&s.clock);
    let state = site
        .issue_bound(VICTIM_COOKIE, None, Duration::from_secs(60))
        .expect("state");
    s.clock.advance(Duration::from_secs(40));
    let v = site.verify_bound(&state, VICTIM_COOKIE).expect("authentic");
    s.mock.push_for(CODE_PATH, exchange_body(7200));
    s.client
        .exchange_code_for(&v, CODE)
        .await
        .expect("exchanged");
    let stored = kept_entry(&s.store).await;
    // The state's expiry is in whole seconds, the entry's lifetime too: it ends in the second
    // before the state's.
    assert!(stored.expires_at <= v.expires_at, "{stored:?} {v:?}");
    assert!(stored.expires_at + Duration::from_secs(1) > v.expires_at);
}

#[tokio::test]
async fn failures_are_not_kept_and_other_codes_are_separate() {
    let s = setup_with(|b| b.idempotent_code_exchange(WINDOW));
    let v = callback(&signer(&s.clock), VICTIM_COOKIE);
    s.mock.push_for(
        CODE_PATH,
        HttpResponse::json(err_body(40029, "invalid code")),
    );
    s.mock.push_for(CODE_PATH, exchange_body(7200));
    s.mock.push_for(CODE_PATH, exchange_body(7200));
    let e = s
        .client
        .exchange_code_for(&v, CODE)
        .await
        .expect_err("invalid");
    assert!(e.is_login_restart_required());
    assert!(s.store.is_empty(), "a failure is not kept");
    s.client
        .exchange_code_for(&v, CODE)
        .await
        .expect("the next try goes upstream");
    s.client
        .exchange_code_for(&v, "another-code")
        .await
        .expect("another code is another exchange");
    assert_eq!(s.mock.count(CODE_PATH), 3);
    let sent = s.mock.requests_to(CODE_PATH);
    assert_eq!(sent[2].query("code").as_deref(), Some("another-code"));
}

#[tokio::test]
async fn off_by_default_and_bad_windows_are_rejected() {
    let s = setup();
    let site = signer(&s.clock);
    s.mock.push_for(CODE_PATH, exchange_body(7200));
    s.mock.push_for(
        CODE_PATH,
        HttpResponse::json(err_body(40163, "code been used")),
    );
    s.mock.push_for(CODE_PATH, exchange_body(7200));
    let v = callback(&site, VICTIM_COOKIE);
    s.client
        .exchange_code_for(&v, CODE)
        .await
        .expect("exchanged");
    let e = s
        .client
        .exchange_code_for(&v, CODE)
        .await
        .expect_err("not kept");
    assert_eq!(api_code(&e), Some(40163));
    // Without the option, any state will do and the plain exchange works.
    s.client.exchange_code("CODE-2").await.expect("plain");
    assert!(s.store.is_empty());

    for window in [
        Duration::ZERO,
        Duration::from_millis(999),
        Duration::from_secs(301),
        Duration::from_secs(7200),
        Duration::MAX,
    ] {
        let e = builder(&ManualClock::starting_now())
            .idempotent_code_exchange(window)
            .build(
                wx_core::test_util::MockTransport::new(),
                MemoryTokenStore::new(),
            )
            .expect_err("outside 1 s ..= 5 min");
        assert!(
            matches!(e, Error::InvalidInput(ref i) if i.argument == "idempotent_code_exchange"),
            "{window:?}: {e:?}"
        );
    }
    assert_eq!(
        wx_official::MAX_CODE_EXCHANGE_WINDOW,
        Duration::from_secs(300)
    );
    setup_with(|b| b.idempotent_code_exchange(Duration::from_secs(300)));
}

#[tokio::test]
async fn with_the_option_on_a_stateless_or_unbound_exchange_is_refused() {
    let s = setup_with(|b| b.idempotent_code_exchange(WINDOW));
    s.mock.always(CODE_PATH, exchange_body(7200));
    let e = s.client.exchange_code(CODE).await.expect_err("no state");
    assert!(
        matches!(e, Error::InvalidInput(ref i) if i.argument == "idempotent_code_exchange"),
        "{e:?}"
    );
    let site = signer(&s.clock);
    let unbound = site
        .verify(&site.issue(None, STATE_TTL).expect("state"))
        .expect("authentic");
    let e = s
        .client
        .exchange_code_for(&unbound, CODE)
        .await
        .expect_err("unbound");
    assert!(
        matches!(e, Error::InvalidInput(ref i) if i.argument == "state"),
        "{e:?}"
    );
    assert_eq!(s.mock.total(), 0);
    assert!(s.store.is_empty());
}

#[tokio::test]
async fn bad_codes_are_rejected_before_the_store_or_a_request() {
    let s = setup_with(|b| b.idempotent_code_exchange(WINDOW));
    let v = callback(&signer(&s.clock), VICTIM_COOKIE);
    for code in ["", "a\nb", &"c".repeat(513)] {
        let e = s
            .client
            .exchange_code_for(&v, code)
            .await
            .expect_err("invalid");
        assert!(matches!(e, Error::InvalidInput(ref i) if i.argument == "code"));
    }
    assert_eq!(s.mock.total(), 0);
}

/// Issue 19 (Low): whoever can write one store key must not choose who a callback logs in. The
/// record is authenticated with a key derived from the AppSecret; a record that fails the check
/// is absent: dropped, and the exchange goes to WeChat (which refuses the used code).
#[tokio::test]
async fn a_forged_or_moved_store_record_is_never_served() {
    let s = setup_with(|b| b.idempotent_code_exchange(WINDOW));
    let site = signer(&s.clock);
    let v = callback(&site, VICTIM_COOKIE);
    s.mock.push_for(CODE_PATH, exchange_body(7200));
    let login = s
        .client
        .exchange_code_for(&v, CODE)
        .await
        .expect("exchanged");
    let key = the_kept_key(&s.store);
    let genuine = kept_entry(&s.store).await;

    // The attacker rewrites the record: the answer's shape, their own identity.
    let forged = format!(
        r#"{{"access_token":"ATTACKER-token","expires_in":7200,"refresh_token":"ATTACKER-rt",
            "openid":"o-attacker","scope":"snsapi_userinfo","is_snapshotuser":0,"received_at":{}}}"#,
        s.clock
            .now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs()
    );
    // Plain (the old format), and behind a made-up tag of the right shape.
    let with_bad_tag = format!("v1.{}.{forged}", "0".repeat(64));
    // The genuine record with its identity edited but its tag kept.
    let edited = genuine.secret().replace("o-1", "o-attacker");
    for value in [forged.clone(), with_bad_tag, edited, "not json".to_owned()] {
        s.store
            .set(
                &key,
                StoredToken::new(value.clone(), s.clock.now() + WINDOW),
            )
            .await
            .expect("set");
        s.mock.push_for(
            CODE_PATH,
            HttpResponse::json(err_body(40163, "code been used")),
        );
        let e = s
            .client
            .exchange_code_for(&v, CODE)
            .await
            .expect_err("the forged record is not served");
        assert_eq!(api_code(&e), Some(40163), "{value}: {e:?}");
        assert!(!format!("{e} {e:?}").contains("o-attacker"));
        assert!(
            s.store.get(&key).await.expect("get").is_none(),
            "the forged record was dropped"
        );
    }

    // A genuine record moved to another callback's key is not served there either.
    let other = callback(&site, ATTACKER_COOKIE);
    s.mock.push_for(CODE_PATH, exchange_body(7200));
    s.client
        .exchange_code_for(&other, "ATTACKER-CODE")
        .await
        .expect("the attacker's own login");
    let their_key = kept_keys(&s.store)
        .into_iter()
        .find(|k| *k != key)
        .expect("their record");
    let theirs = s.store.get(&their_key).await.expect("get").expect("kept");
    s.store.set(&key, theirs).await.expect("set");
    s.mock.push_for(
        CODE_PATH,
        HttpResponse::json(err_body(40163, "code been used")),
    );
    let e = s
        .client
        .exchange_code_for(&v, CODE)
        .await
        .expect_err("a moved record is not served");
    assert_eq!(api_code(&e), Some(40163));
    // The genuine record put back is served as before.
    s.store.set(&key, genuine).await.expect("set");
    let again = s.client.exchange_code_for(&v, CODE).await.expect("genuine");
    assert_same_login(&login, &again);
}

// ------------------------------------------------------------------ on the sandbox

#[tokio::test]
async fn double_redirect_on_the_sandbox_one_upstream_request_then_40163() {
    let s = sandbox_setup_with(|b| b.idempotent_code_exchange(WINDOW));
    let v = callback(&signer(s.sandbox.clock()), VICTIM_COOKIE);
    let code = s
        .sandbox
        .issue_code(APPID, ALICE, Scope::UserInfo)
        .expect("code");
    let first = s
        .client
        .exchange_code_for(&v, &code)
        .await
        .expect("first load");
    let second = s
        .client
        .exchange_code_for(&v, &code)
        .await
        .expect("second load");
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
    let e = s
        .client
        .exchange_code_for(&v, &code)
        .await
        .expect_err("used");
    assert_eq!(api_code(&e), Some(40163));
    assert!(e.is_login_restart_required());
    assert_eq!(s.sandbox.count(CODE_PATH), 2);
}

#[tokio::test]
async fn without_the_option_the_sandbox_refuses_the_second_load() {
    let s = sandbox_setup_with(|b| b);
    let v = callback(&signer(s.sandbox.clock()), VICTIM_COOKIE);
    let code = s
        .sandbox
        .issue_code(APPID, ALICE, Scope::Base)
        .expect("code");
    s.client
        .exchange_code_for(&v, &code)
        .await
        .expect("first load");
    let e = s
        .client
        .exchange_code_for(&v, &code)
        .await
        .expect_err("second load");
    assert_eq!(api_code(&e), Some(40163));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_exchanges_of_one_callback_send_one_request() {
    let s = sandbox_setup_with(|b| b.idempotent_code_exchange(WINDOW));
    let site = signer(s.sandbox.clock());
    let (alice_state, bob_state) = (
        callback(&site, VICTIM_COOKIE),
        callback(&site, ATTACKER_COOKIE),
    );
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
        let (code, state) = if i % 2 == 0 {
            (alice.clone(), alice_state.clone())
        } else {
            (bob.clone(), bob_state.clone())
        };
        tasks.spawn(async move { c.exchange_code_for(&state, &code).await.map(|t| (i, t)) });
    }
    for r in tasks.join_all().await {
        let (i, t) = r.expect("every caller logs in");
        let expected = if i % 2 == 0 { ALICE } else { BOB };
        assert_eq!(t.openid.as_str(), expected);
    }
    assert_eq!(s.sandbox.count(CODE_PATH), 2, "one request per callback");
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
    // Each node verifies the state with its own signer (the fleet's one key).
    let state = signer(sandbox.clock())
        .issue_bound(VICTIM_COOKIE, None, STATE_TTL)
        .expect("state");
    let on_a = signer(sandbox.clock())
        .verify_bound(&state, VICTIM_COOKIE)
        .expect("a");
    let on_b = signer(sandbox.clock())
        .verify_bound(&state, VICTIM_COOKIE)
        .expect("b");
    sandbox
        .faults()
        .script_for(CODE_PATH, [Fault::Delay(Duration::from_millis(100))]);
    // The double redirect lands on two nodes behind the load balancer.
    let (ra, rb) = tokio::join!(
        a.exchange_code_for(&on_a, &code),
        b.exchange_code_for(&on_b, &code)
    );
    assert_same_login(&ra.expect("node a"), &rb.expect("node b"));
    assert_eq!(sandbox.count(CODE_PATH), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_dropped_midway_still_leaves_the_answer_for_the_retry() {
    let s = sandbox_setup_with(|b| b.idempotent_code_exchange(WINDOW));
    let v = callback(&signer(s.sandbox.clock()), VICTIM_COOKIE);
    let code = s
        .sandbox
        .issue_code(APPID, ALICE, Scope::UserInfo)
        .expect("code");
    s.sandbox
        .faults()
        .script_for(CODE_PATH, [Fault::Delay(Duration::from_millis(200))]);
    // The browser gives up on the first load (the handler future is dropped) while WeChat is
    // answering; the code is used by then.
    let gave_up = tokio::time::timeout(
        Duration::from_millis(50),
        s.client.exchange_code_for(&v, &code),
    )
    .await;
    assert!(gave_up.is_err(), "the first load was abandoned");
    let t = s
        .client
        .exchange_code_for(&v, &code)
        .await
        .expect("the reload logs in");
    assert_eq!(t.openid.as_str(), ALICE);
    assert_eq!(s.sandbox.count(CODE_PATH), 1);
}

#[tokio::test]
async fn consumer_only_clients_exchange_codes_too() {
    let s = sandbox_setup_with(|b| b.consumer_only(true).idempotent_code_exchange(WINDOW));
    let v = callback(&signer(s.sandbox.clock()), VICTIM_COOKIE);
    let code = s
        .sandbox
        .issue_code(APPID, ALICE, Scope::Base)
        .expect("code");
    let t = s
        .client
        .exchange_code_for(&v, &code)
        .await
        .expect("exchanged");
    assert_eq!(t.openid.as_str(), ALICE);
    assert_eq!(
        s.client
            .exchange_code_for(&v, &code)
            .await
            .expect("again")
            .openid,
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
    let v = callback(&signer(sandbox.clock()), VICTIM_COOKIE);
    let code = sandbox.issue_code(APPID, ALICE, Scope::Base).expect("code");
    client
        .exchange_code_for(&v, &code)
        .await
        .expect("exchanged");
    let key = the_kept_key(&store);
    assert!(
        key.to_string()
            .starts_with(&format!("shop:{APPID}:oauth_code:"))
    );
    client.exchange_code_for(&v, &code).await.expect("again");
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
    let v = callback(&signer(sandbox.clock()), VICTIM_COOKIE);
    let code = sandbox
        .issue_code(APPID, ALICE, Scope::UserInfo)
        .expect("code");
    sandbox
        .faults()
        .script_for(CODE_PATH, [Fault::Delay(Duration::from_millis(200))]);
    let (a_code, a_state) = (code.clone(), v.clone());
    let a_call = tokio::spawn(async move { a.exchange_code_for(&a_state, &a_code).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let from_b = b.exchange_code_for(&v, &code).await.expect("node b");
    let from_a = a_call.await.expect("task").expect("node a");
    assert_same_login(&from_a, &from_b);
    assert_eq!(sandbox.count(CODE_PATH), 1);
}
