//! The managed base access token: fetch, cache, margin, single flight, leases, cooldown, stable
//! mode and its force refresh, store failures, consumer-only mode.

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use wx_core::test_util::{MockTransport, response};
use wx_core::{
    AppSecret, Clock, Error, HttpResponse, MemoryTokenStore, Refused, StoreError, StoreOp,
    StoredToken, TokenKey, TokenKind, TokenStore, TransportErrorKind,
};
use wx_official::{OfficialAccount, TokenMode};

use crate::common::*;

#[tokio::test]
async fn fetches_once_with_the_documented_request_and_caches() {
    let s = setup();
    s.mock
        .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    for _ in 0..3 {
        let t = s.client.access_token().await.expect("token");
        assert_eq!(t.secret(), TOKEN_1);
    }
    assert_eq!(s.mock.total(), 1);
    let r = &s.mock.requests()[0];
    assert_eq!(r.method, Method::GET);
    assert_eq!(
        r.url_without_query(),
        "https://api.weixin.qq.com/cgi-bin/token"
    );
    assert_eq!(
        query(r),
        pairs(&[
            ("grant_type", "client_credential"),
            ("appid", APPID),
            ("secret", SECRET)
        ])
    );
    assert!(r.body.is_none());
    // Stored under the documented key with the absolute expiry.
    let stored = s
        .store
        .get(&s.client.token_key(&TokenKind::AccessToken))
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(stored.secret(), TOKEN_1);
    assert_eq!(stored.expires_at, s.clock.now() + Duration::from_secs(7200));
    assert_eq!(
        s.client.token_key(&TokenKind::AccessToken).to_string(),
        format!("wx:{APPID}:access_token")
    );
}

#[tokio::test]
async fn decodes_every_success_fixture_with_its_expiry() {
    for (file, token, secs) in [
        ("cgi_bin_token.success.wechatpy.json", "1234567890", 7200),
        (
            "cgi_bin_token.success.wxjava_test.json",
            "ACCESS_TOKEN",
            7200,
        ),
        (
            "cgi_bin_token.success_expires_in_as_string.easywechat_mock.json",
            "mock_access_token",
            1500,
        ),
    ] {
        let s = setup();
        // WeChat's content types are unreliable: text/plain must decode the same.
        let mut resp = response(200, fixture(file));
        resp.headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain"),
        );
        s.mock.push_for(TOKEN_PATH, resp);
        assert_eq!(s.client.access_token().await.expect(file).secret(), token);
        let stored = s
            .store
            .get(&s.client.token_key(&TokenKind::AccessToken))
            .await
            .expect("get")
            .expect("stored");
        assert_eq!(
            stored.expires_at,
            s.clock.now() + Duration::from_secs(secs),
            "{file}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_callers_cause_one_request() {
    let s = setup();
    s.mock
        .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..1000 {
        let c = s.client.clone();
        tasks.spawn(async move { c.access_token().await });
    }
    let results = tasks.join_all().await;
    assert_eq!(results.len(), 1000);
    for r in results {
        assert_eq!(r.expect("every caller gets the token").secret(), TOKEN_1);
    }
    assert_eq!(s.mock.count(TOKEN_PATH), 1);
}

/// A custom store with only get/set/delete: its default leases grant everyone, so the
/// in-process single flight alone must keep the request count at one.
struct MinimalStore(MemoryTokenStore);

#[async_trait::async_trait]
impl TokenStore for MinimalStore {
    async fn get(&self, k: &TokenKey) -> Result<Option<StoredToken>, StoreError> {
        self.0.get(k).await
    }
    async fn set(&self, k: &TokenKey, t: StoredToken) -> Result<(), StoreError> {
        self.0.set(k, t).await
    }
    async fn delete(&self, k: &TokenKey) -> Result<(), StoreError> {
        self.0.delete(k).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_flight_holds_with_a_store_whose_leases_grant_everyone() {
    let clock = wx_core::ManualClock::starting_now();
    let mock = MockTransport::new();
    let slow = mock.clone();
    // A slow token endpoint, so that callers pile up while the fetch is in flight.
    let transport = wx_core::transport_fn(move |req: wx_core::HttpRequest| {
        let slow = slow.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            wx_core::HttpTransport::send(&slow, req).await
        }
    });
    mock.push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    let client = builder(&clock)
        .build(
            transport,
            MinimalStore(MemoryTokenStore::with_clock(Arc::new(clock.clone()))),
        )
        .expect("client");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..1000 {
        let c = client.clone();
        tasks.spawn(async move { c.access_token().await });
    }
    for r in tasks.join_all().await {
        assert_eq!(r.expect("token").secret(), TOKEN_1);
    }
    assert_eq!(mock.count(TOKEN_PATH), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_sharing_a_store_with_leases_fetch_once() {
    // Two clients (two "processes") share one store whose leases are exclusive.
    let clock = wx_core::ManualClock::starting_now();
    let store = MemoryTokenStore::with_clock(Arc::new(clock.clone()));
    let mock = MockTransport::new();
    mock.push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    let a = builder(&clock)
        .build(mock.clone(), store.clone())
        .expect("a");
    let b = builder(&clock)
        .build(mock.clone(), store.clone())
        .expect("b");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..400 {
        let c = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.spawn(async move { c.access_token().await });
    }
    for r in tasks.join_all().await {
        assert_eq!(r.expect("token").secret(), TOKEN_1);
    }
    assert_eq!(mock.count(TOKEN_PATH), 1);
}

#[tokio::test]
async fn refreshes_only_inside_the_expiry_margin() {
    let s = setup();
    s.mock
        .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    s.mock
        .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_2, 7200)));
    assert_eq!(s.client.access_token().await.expect("t1").secret(), TOKEN_1);
    // 300 s margin: at 6,899 s the token still has 301 s left.
    s.clock.advance(Duration::from_secs(6899));
    assert_eq!(s.client.access_token().await.expect("t1").secret(), TOKEN_1);
    assert_eq!(s.mock.count(TOKEN_PATH), 1, "no fetch before the margin");
    s.clock.advance(Duration::from_secs(1));
    assert_eq!(s.client.access_token().await.expect("t2").secret(), TOKEN_2);
    assert_eq!(s.client.access_token().await.expect("t2").secret(), TOKEN_2);
    assert_eq!(s.mock.count(TOKEN_PATH), 2, "one fetch inside the margin");
}

#[tokio::test]
async fn a_custom_margin_and_key_prefix_are_used() {
    let s = setup_with(|b| b.expiry_margin(Duration::from_secs(10)).key_prefix("myapp"));
    s.mock
        .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    s.client.access_token().await.expect("t1");
    s.clock.advance(Duration::from_secs(7189));
    s.client.access_token().await.expect("still cached");
    assert_eq!(s.mock.count(TOKEN_PATH), 1);
    let key = TokenKey::new("myapp", APPID.into(), TokenKind::AccessToken);
    assert!(s.store.get(&key).await.expect("get").is_some());
}

/// Every documented error of the token endpoint: returned as the typed WeChat error after one
/// request (never retried), then fetches are refused for the cooldown without a request.
#[tokio::test]
async fn token_endpoint_errors_are_not_retried_and_start_a_cooldown() {
    let cases: &[(i64, &str)] = &[
        (
            40001,
            "invalid credential, access_token is invalid or not latest",
        ),
        (40002, "invalid grant_type"),
        (40013, "invalid appid"),
        (40125, "invalid appsecret"),
        (
            40164,
            "invalid ip 203.0.113.7 ipv6 ::ffff:203.0.113.7, not in whitelist",
        ),
        (40243, "AppSecret已被冻结"),
        (41002, "appid missing"),
        (41004, "appsecret missing"),
        (45009, "reach max api daily quota limit"),
        (
            61004,
            "access clientip is not registered, not in ip-white-list",
        ),
        (89501, "此IP正在等待管理员确认,请联系管理员"),
        (89503, "此IP调用需要管理员确认,请联系管理员"),
        (89506, "24小时内该IP被管理员拒绝调用两次"),
        (89507, "1小时内该IP被管理员拒绝调用一次"),
    ];
    for &(code, msg) in cases {
        let s = setup();
        s.mock
            .push_for(TOKEN_PATH, HttpResponse::json(err_body(code, msg)));
        s.mock
            .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
        let e = s.client.access_token().await.expect_err("error answer");
        assert_eq!(api_code(&e), Some(code));
        let api = e.api().expect("api error");
        assert_eq!(api.endpoint, "cgi-bin/token");
        assert_eq!(
            api.request_id.as_deref(),
            Some("6613a1b2-4c5d6e7f-12345678")
        );
        assert_eq!(s.mock.count(TOKEN_PATH), 1, "{code} was retried");
        assert_no_secrets(&e, &[TOKEN_1]);

        for _ in 0..3 {
            let e = s.client.access_token().await.expect_err("cooldown");
            match &e {
                Error::Refused(Refused::TokenFetchCooldown { cause, remaining }) => {
                    assert_eq!(cause.code.0, code);
                    assert!(*remaining <= Duration::from_secs(60) && !remaining.is_zero());
                }
                other => panic!("{code}: expected a cooldown refusal, got {other:?}"),
            }
            assert!(e.to_string().contains(&code.to_string()), "{e}");
        }
        assert_eq!(
            s.mock.count(TOKEN_PATH),
            1,
            "{code}: a request was sent in the cooldown"
        );

        s.clock.advance(Duration::from_secs(60));
        assert_eq!(
            s.client.access_token().await.expect("after").secret(),
            TOKEN_1
        );
        assert_eq!(s.mock.count(TOKEN_PATH), 2);
    }
}

#[tokio::test]
async fn a_cooldown_still_serves_a_token_another_process_stored() {
    let s = setup();
    s.mock.push_for(
        TOKEN_PATH,
        HttpResponse::json(err_body(40164, "invalid ip 1.2.3.4")),
    );
    s.client.access_token().await.expect_err("40164");
    s.store
        .set(
            &s.client.token_key(&TokenKind::AccessToken),
            StoredToken::new(TOKEN_2, s.clock.now() + Duration::from_secs(7200)),
        )
        .await
        .expect("set");
    assert_eq!(
        s.client.access_token().await.expect("shared").secret(),
        TOKEN_2
    );
    assert_eq!(s.mock.count(TOKEN_PATH), 1);
}

#[tokio::test]
async fn busy_and_transient_failures_of_the_token_get_are_retried_without_cooldown() {
    let s = setup();
    s.mock
        .push_for(TOKEN_PATH, HttpResponse::json(err_body(-1, "system error")));
    s.mock
        .push_error_for(TOKEN_PATH, TransportErrorKind::Timeout);
    s.mock
        .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    assert_eq!(
        s.client.access_token().await.expect("third try").secret(),
        TOKEN_1
    );
    assert_eq!(s.mock.count(TOKEN_PATH), 3);

    let s = setup();
    for _ in 0..3 {
        s.mock
            .push_for(TOKEN_PATH, HttpResponse::json(err_body(-1, "system error")));
    }
    s.mock
        .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    let e = s.client.access_token().await.expect_err("busy 3 times");
    assert_eq!(api_code(&e), Some(-1));
    assert_eq!(s.mock.count(TOKEN_PATH), 3, "1 try + 2 retries");
    // Busy is transient: no cooldown.
    assert_eq!(
        s.client.access_token().await.expect("next").secret(),
        TOKEN_1
    );
}

#[tokio::test]
async fn a_malformed_token_answer_is_a_decode_error() {
    for body in [
        &b"<html><body>502 Bad Gateway</body></html>"[..],
        b"",
        b"{\"access_token\":\"AT\"",
        b"{\"expires_in\":7200}",
        b"{\"access_token\":\"\",\"expires_in\":7200}",
        b"\xff\xfe\x00garbage",
    ] {
        let s = setup();
        s.mock.push_for(TOKEN_PATH, response(200, body.to_vec()));
        let e = s.client.access_token().await.expect_err("malformed");
        assert!(matches!(e, Error::Decode(_)), "{e:?}");
        assert_eq!(s.mock.count(TOKEN_PATH), 1);
    }
}

#[tokio::test]
async fn stable_mode_posts_json_and_caches() {
    let s = setup_with(|b| b.token_mode(TokenMode::Stable));
    s.mock
        .push_for(STABLE_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    assert_eq!(
        s.client.access_token().await.expect("stable").secret(),
        TOKEN_1
    );
    assert_eq!(
        s.client.access_token().await.expect("cached").secret(),
        TOKEN_1
    );
    assert_eq!(s.mock.total(), 1);
    let r = &s.mock.requests()[0];
    assert_eq!(r.method, Method::POST);
    assert_eq!(r.path(), STABLE_PATH);
    assert!(
        r.query_pairs().is_empty(),
        "no query: the secret goes in the body"
    );
    assert_eq!(
        r.headers
            .get(http::header::CONTENT_TYPE)
            .map(|v| v.as_bytes()),
        Some(&b"application/json"[..])
    );
    let body: serde_json::Value =
        serde_json::from_slice(r.body.as_ref().expect("body")).expect("json body");
    assert_eq!(
        body,
        serde_json::json!({"grant_type":"client_credential","appid":APPID,"secret":SECRET,"force_refresh":false})
    );
    assert!(
        s.store
            .get(&s.client.token_key(&TokenKind::StableAccessToken))
            .await
            .expect("get")
            .is_some()
    );
}

#[tokio::test]
async fn stable_post_is_not_retried_after_a_timeout_but_is_after_a_connect_failure() {
    let s = setup_with(|b| b.token_mode(TokenMode::Stable));
    s.mock
        .push_error_for(STABLE_PATH, TransportErrorKind::Timeout);
    s.mock
        .push_for(STABLE_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    let e = s.client.access_token().await.expect_err("timeout");
    assert!(e.transport().is_some_and(|t| t.is_timeout()), "{e:?}");
    assert_eq!(
        s.mock.count(STABLE_PATH),
        1,
        "a POST was retried after a timeout"
    );

    for kind in [TransportErrorKind::Io] {
        let s = setup_with(|b| b.token_mode(TokenMode::Stable));
        s.mock.push_error_for(STABLE_PATH, kind);
        s.mock
            .push_for(STABLE_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
        s.client
            .access_token()
            .await
            .expect_err("broken connection");
        assert_eq!(s.mock.count(STABLE_PATH), 1, "{kind:?}");
    }

    let s = setup_with(|b| b.token_mode(TokenMode::Stable));
    s.mock
        .push_error_for(STABLE_PATH, TransportErrorKind::Connect);
    s.mock.push_for(
        STABLE_PATH,
        HttpResponse::json(err_body(-1, "system error")),
    );
    s.mock
        .push_for(STABLE_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    assert_eq!(
        s.client.access_token().await.expect("retried").secret(),
        TOKEN_1
    );
    assert_eq!(s.mock.count(STABLE_PATH), 3);
}

#[tokio::test]
async fn stable_force_refresh_respects_wechats_limits_without_sending() {
    let s = setup_with(|b| b.token_mode(TokenMode::Stable));
    s.mock
        .push_for(STABLE_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    s.mock
        .push_for(STABLE_PATH, HttpResponse::json(token_body(TOKEN_2, 7200)));
    assert_eq!(
        s.client.access_token().await.expect("normal").secret(),
        TOKEN_1
    );

    let t = s.client.force_refresh_stable_token().await.expect("force");
    assert_eq!(t.secret(), TOKEN_2);
    assert_eq!(
        s.client.access_token().await.expect("cached").secret(),
        TOKEN_2
    );
    let forced = &s.mock.requests_to(STABLE_PATH)[1];
    let body: serde_json::Value =
        serde_json::from_slice(forced.body.as_ref().expect("body")).expect("json");
    assert_eq!(body["force_refresh"], serde_json::Value::Bool(true));
    assert_eq!(s.mock.total(), 2);

    s.clock.advance(Duration::from_secs(29));
    let e = s
        .client
        .force_refresh_stable_token()
        .await
        .expect_err("too soon");
    assert!(
        matches!(e, Error::Refused(Refused::ForceRefreshTooSoon { retry_in }) if retry_in == Duration::from_secs(1)),
        "{e:?}"
    );
    assert_eq!(s.mock.total(), 2, "a refused force refresh sent a request");

    s.clock.advance(Duration::from_secs(1));
    s.mock.push_for(
        STABLE_PATH,
        HttpResponse::json(token_body("AT-SECRET-three", 7200)),
    );
    assert_eq!(
        s.client
            .force_refresh_stable_token()
            .await
            .expect("30 s later")
            .secret(),
        "AT-SECRET-three"
    );
    assert_eq!(s.mock.total(), 3);
}

#[tokio::test]
async fn stable_force_refresh_stops_at_twenty_a_day() {
    let s = setup_with(|b| b.token_mode(TokenMode::Stable));
    // Start at 00:01 China time so the 21 attempts stay within one day.
    let day_start = std::time::UNIX_EPOCH + Duration::from_secs(1_704_038_400 + 60);
    s.clock.set(day_start);
    s.mock
        .always(STABLE_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    for i in 0..20 {
        s.client
            .force_refresh_stable_token()
            .await
            .unwrap_or_else(|e| panic!("force {i}: {e}"));
        s.clock.advance(Duration::from_secs(31));
    }
    let e = s
        .client
        .force_refresh_stable_token()
        .await
        .expect_err("21st");
    assert!(
        matches!(
            e,
            Error::Refused(Refused::ForceRefreshDailyLimit { limit: 20 })
        ),
        "{e:?}"
    );
    assert_eq!(s.mock.count(STABLE_PATH), 20);
    s.clock.set(day_start + Duration::from_secs(86_400));
    s.client
        .force_refresh_stable_token()
        .await
        .expect("next day");
    assert_eq!(s.mock.count(STABLE_PATH), 21);
}

#[tokio::test]
async fn force_refresh_spacing_is_shared_through_the_store() {
    // Two clients ("processes") on one store with exclusive leases: the second is refused.
    let clock = wx_core::ManualClock::starting_now();
    let store = MemoryTokenStore::with_clock(Arc::new(clock.clone()));
    let mock = MockTransport::new();
    mock.always(STABLE_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    let a = builder(&clock)
        .token_mode(TokenMode::Stable)
        .build(mock.clone(), store.clone())
        .expect("a");
    let b = builder(&clock)
        .token_mode(TokenMode::Stable)
        .build(mock.clone(), store.clone())
        .expect("b");
    a.force_refresh_stable_token().await.expect("a forces");
    let e = b
        .force_refresh_stable_token()
        .await
        .expect_err("b too soon");
    assert!(
        matches!(e, Error::Refused(Refused::ForceRefreshTooSoon { .. })),
        "{e:?}"
    );
    assert_eq!(mock.count(STABLE_PATH), 1);
    clock.advance(Duration::from_secs(30));
    b.force_refresh_stable_token().await.expect("b later");
    assert_eq!(mock.count(STABLE_PATH), 2);
}

#[tokio::test]
async fn force_refresh_is_refused_outside_stable_mode_and_in_cooldown() {
    let s = setup();
    let e = s
        .client
        .force_refresh_stable_token()
        .await
        .expect_err("normal mode");
    assert!(
        matches!(e, Error::InvalidInput(ref i) if i.argument == "token_mode"),
        "{e:?}"
    );

    let s = setup_with(|b| b.token_mode(TokenMode::Stable));
    s.mock.push_for(
        STABLE_PATH,
        HttpResponse::json(err_body(40125, "invalid appsecret")),
    );
    s.client.access_token().await.expect_err("40125");
    let e = s
        .client
        .force_refresh_stable_token()
        .await
        .expect_err("cooldown");
    assert!(
        matches!(e, Error::Refused(Refused::TokenFetchCooldown { .. })),
        "{e:?}"
    );
    assert_eq!(s.mock.total(), 1);
}

#[tokio::test]
async fn a_dead_leaders_lease_expires_and_a_waiter_takes_over() {
    let s = setup_with(|b| b.lease_wait(Duration::from_secs(10)));
    let key = s.client.token_key(&TokenKind::AccessToken);
    // Another "process" took the lease and died.
    assert!(
        s.store
            .try_acquire_lease(&key, "dead-process", Duration::from_secs(5))
            .await
            .expect("lease")
    );
    s.mock
        .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    let client = s.client.clone();
    let waiter = tokio::spawn(async move { client.access_token().await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        s.mock.total(),
        0,
        "fetched while another process held the lease"
    );
    s.clock.advance(Duration::from_secs(5)); // the dead leader's lease expires
    let t = waiter.await.expect("join").expect("took over");
    assert_eq!(t.secret(), TOKEN_1);
    assert_eq!(s.mock.count(TOKEN_PATH), 1);
}

#[tokio::test]
async fn a_waiter_uses_the_token_the_lease_holder_stores() {
    let s = setup();
    let key = s.client.token_key(&TokenKind::AccessToken);
    assert!(
        s.store
            .try_acquire_lease(&key, "other-process", Duration::from_secs(20))
            .await
            .expect("lease")
    );
    let client = s.client.clone();
    let waiter = tokio::spawn(async move { client.access_token().await });
    tokio::time::sleep(Duration::from_millis(60)).await;
    s.store
        .set(
            &key,
            StoredToken::new(TOKEN_2, s.clock.now() + Duration::from_secs(7200)),
        )
        .await
        .expect("other process stores");
    let t = waiter.await.expect("join").expect("token");
    assert_eq!(t.secret(), TOKEN_2);
    assert_eq!(s.mock.total(), 0);
}

#[tokio::test]
async fn a_valid_token_is_used_while_another_process_holds_the_lease() {
    let s = setup();
    let key = s.client.token_key(&TokenKind::AccessToken);
    // 100 s left: inside the 300 s margin, still valid.
    s.store
        .set(
            &key,
            StoredToken::new(TOKEN_1, s.clock.now() + Duration::from_secs(100)),
        )
        .await
        .expect("set");
    assert!(
        s.store
            .try_acquire_lease(&key, "refreshing-process", Duration::from_secs(600))
            .await
            .expect("lease")
    );
    let started = std::time::Instant::now();
    assert_eq!(
        s.client.access_token().await.expect("valid").secret(),
        TOKEN_1
    );
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "waited on the other process"
    );
    assert_eq!(s.mock.total(), 0);
    // Once it expires, callers wait for the lease holder's token.
    s.clock.advance(Duration::from_secs(100));
    let s2 = s.client.clone();
    let waiter = tokio::spawn(async move { s2.access_token().await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    s.store
        .set(
            &key,
            StoredToken::new(TOKEN_2, s.clock.now() + Duration::from_secs(7200)),
        )
        .await
        .expect("set");
    assert_eq!(waiter.await.expect("join").expect("new").secret(), TOKEN_2);
    assert_eq!(s.mock.total(), 0);
}

#[tokio::test]
async fn waiting_on_a_lease_gives_up_after_the_bound() {
    let s = setup_with(|b| b.lease_wait(Duration::from_millis(150)));
    let key = s.client.token_key(&TokenKind::AccessToken);
    assert!(
        s.store
            .try_acquire_lease(&key, "stuck", Duration::from_secs(60))
            .await
            .expect("lease")
    );
    let started = std::time::Instant::now();
    let e = s
        .client
        .access_token()
        .await
        .expect_err("lease never freed");
    assert!(
        matches!(
            e,
            Error::Refused(Refused::LeaseWaitTimedOut {
                kind: "access token"
            })
        ),
        "{e:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(s.mock.total(), 0);
}

/// A store that fails every operation.
struct DownStore;

#[async_trait::async_trait]
impl TokenStore for DownStore {
    async fn get(&self, _: &TokenKey) -> Result<Option<StoredToken>, StoreError> {
        Err(StoreError::new(StoreOp::Get, "connection refused"))
    }
    async fn set(&self, _: &TokenKey, _: StoredToken) -> Result<(), StoreError> {
        Err(StoreError::from_op(StoreOp::Set))
    }
    async fn delete(&self, _: &TokenKey) -> Result<(), StoreError> {
        Err(StoreError::from_op(StoreOp::Delete))
    }
}

/// A store whose writes fail.
struct ReadOnlyStore(MemoryTokenStore);

#[async_trait::async_trait]
impl TokenStore for ReadOnlyStore {
    async fn get(&self, k: &TokenKey) -> Result<Option<StoredToken>, StoreError> {
        self.0.get(k).await
    }
    async fn set(&self, _: &TokenKey, _: StoredToken) -> Result<(), StoreError> {
        Err(StoreError::new(StoreOp::Set, "READONLY"))
    }
    async fn delete(&self, k: &TokenKey) -> Result<(), StoreError> {
        self.0.delete(k).await
    }
}

#[tokio::test]
async fn a_store_outage_is_an_error_and_fetches_nothing() {
    let mock = MockTransport::new();
    mock.always(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    let client = OfficialAccount::builder(APPID, AppSecret::new(SECRET))
        .build(mock.clone(), DownStore)
        .expect("client");
    let e = client.access_token().await.expect_err("store down");
    assert!(
        matches!(e, Error::Store(ref s) if s.op() == StoreOp::Get),
        "{e:?}"
    );
    assert_eq!(mock.total(), 0);

    // When only the write fails, the fetched token is still handed out.
    let client = OfficialAccount::builder(APPID, AppSecret::new(SECRET))
        .build(mock.clone(), ReadOnlyStore(MemoryTokenStore::new()))
        .expect("client");
    assert_eq!(
        client.access_token().await.expect("token").secret(),
        TOKEN_1
    );
}

#[tokio::test]
async fn consumer_only_never_calls_the_token_endpoint() {
    let s = setup_with(|b| b.consumer_only(true));
    s.mock
        .always(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    let e = s.client.access_token().await.expect_err("empty store");
    assert!(
        matches!(
            e,
            Error::Refused(Refused::ConsumerStoreEmpty {
                kind: "access token"
            })
        ),
        "{e:?}"
    );
    s.store
        .set(
            &s.client.token_key(&TokenKind::AccessToken),
            StoredToken::new(TOKEN_2, s.clock.now() + Duration::from_secs(120)),
        )
        .await
        .expect("set");
    assert_eq!(
        s.client.access_token().await.expect("shared").secret(),
        TOKEN_2
    );
    s.clock.advance(Duration::from_secs(120));
    assert!(s.client.access_token().await.is_err(), "expired");
    assert_eq!(s.mock.count(TOKEN_PATH), 0);
}

#[tokio::test]
async fn refresh_ahead_serves_the_valid_token_while_one_refresh_runs() {
    let s = setup_with(|b| b.refresh_ahead(true));
    s.mock
        .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    s.mock
        .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_2, 7200)));
    s.client.access_token().await.expect("t1");
    s.clock.advance(Duration::from_secs(7000));
    for _ in 0..50 {
        assert_eq!(
            s.client.access_token().await.expect("old").secret(),
            TOKEN_1
        );
    }
    // The background refresh lands.
    for _ in 0..200 {
        if s.client.access_token().await.expect("token").secret() == TOKEN_2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        s.client.access_token().await.expect("new").secret(),
        TOKEN_2
    );
    assert_eq!(s.mock.count(TOKEN_PATH), 2);
}

#[tokio::test]
async fn builder_rejects_bad_options() {
    let mock = MockTransport::new();
    let store = MemoryTokenStore::new;
    let ok = || OfficialAccount::builder(APPID, AppSecret::new(SECRET));
    let cases = vec![
        (
            "appid",
            OfficialAccount::builder("", AppSecret::new(SECRET)),
        ),
        (
            "appid",
            OfficialAccount::builder("wx:1", AppSecret::new(SECRET)),
        ),
        (
            "appid",
            OfficialAccount::builder("a".repeat(65), AppSecret::new(SECRET)),
        ),
        (
            "secret",
            OfficialAccount::builder(APPID, AppSecret::new("")),
        ),
        (
            "secret",
            OfficialAccount::builder(APPID, AppSecret::new("a\u{0}b")),
        ),
        ("api_base", ok().api_base("api.weixin.qq.com")),
        ("open_base", ok().open_base("https://x/?q=1")),
        ("key_prefix", ok().key_prefix("")),
        ("request_deadline", ok().request_deadline(Duration::ZERO)),
        ("lease_ttl", ok().lease_ttl(Duration::ZERO)),
        // Issue 19 (Low): durations that overflow `now + d` or defeat the cache are refused
        // at build, not discovered as a panicked refresh task or a fetch on every call.
        ("cooldown", ok().cooldown(Duration::MAX)),
        ("cooldown", ok().cooldown(Duration::from_secs(86_401))),
        ("lease_ttl", ok().lease_ttl(Duration::MAX)),
        ("expiry_margin", ok().expiry_margin(Duration::MAX)),
        (
            "expiry_margin",
            ok().expiry_margin(Duration::from_secs(7200)),
        ),
        ("request_deadline", ok().request_deadline(Duration::MAX)),
        ("lease_wait", ok().lease_wait(Duration::MAX)),
        ("store_timeout", ok().store_timeout(Duration::MAX)),
        ("store_timeout", ok().store_timeout(Duration::ZERO)),
    ];
    for (argument, builder) in cases {
        let e = builder.build(mock.clone(), store()).expect_err(argument);
        assert!(
            matches!(e, Error::InvalidInput(ref i) if i.argument == argument),
            "{argument}: {e:?}"
        );
        assert_no_secrets(&e, &[]);
    }
    // The edges of the ranges are accepted.
    ok().cooldown(Duration::from_secs(86_400))
        .expiry_margin(Duration::from_secs(3600))
        .lease_ttl(Duration::from_secs(3600))
        .lease_wait(Duration::ZERO)
        .build(mock.clone(), store())
        .expect("in range");
    let c = OfficialAccount::builder(APPID, AppSecret::new(SECRET))
        .api_base("http://127.0.0.1:9/")
        .build(mock.clone(), store())
        .expect("valid");
    assert_eq!(c.api_base(), "http://127.0.0.1:9");
    let debug = format!("{c:?}");
    assert!(debug.contains(APPID) && !debug.contains(SECRET), "{debug}");
    assert_eq!(mock.total(), 0);
}

/// A refresh granted the lease just after another process stored a token and released the
/// lease reads the store again instead of fetching a second token (which would invalidate the
/// first one five minutes later).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_granted_after_another_refresh_finished_does_not_fetch_again() {
    let clock = wx_core::ManualClock::starting_now();
    let store = MemoryTokenStore::with_clock(Arc::new(clock.clone()));
    let mock = MockTransport::new();
    mock.push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    mock.push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_2, 7200)));
    // The token endpoint answers after 200 ms.
    let slow_endpoint = || {
        let slow = mock.clone();
        wx_core::transport_fn(move |req: wx_core::HttpRequest| {
            let slow = slow.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                wx_core::HttpTransport::send(&slow, req).await
            }
        })
    };
    let a = builder(&clock)
        .build(slow_endpoint(), store.clone())
        .expect("a");
    // B reads the empty store at 50 ms; its lease request lands at 450 ms, after A stored
    // its token (about 200 ms) and released the lease.
    let b = builder(&clock)
        .build(
            slow_endpoint(),
            SlowLease {
                inner: store.clone(),
                delay: Duration::from_millis(400),
            },
        )
        .expect("b");
    let a_call = tokio::spawn(async move { a.access_token().await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let b_token = b.access_token().await.expect("b");
    let a_token = a_call.await.expect("task").expect("a");
    assert_eq!(a_token.secret(), TOKEN_1);
    assert_eq!(b_token.secret(), TOKEN_1);
    assert_eq!(mock.count(TOKEN_PATH), 1);
}
