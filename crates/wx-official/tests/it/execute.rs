//! The one execute path: calls with the base token, the refresh-once rule, bounded retries,
//! HTTP statuses, hostile bodies and the deadline.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::Method;
use serde::Deserialize;
use wx_core::test_util::{MockTransport, response, transport_fn};
use wx_core::{
    AppSecret, Clock, Error, HttpRequest, HttpResponse, ManualClock, MemoryTokenStore, StoredToken,
    TokenKind, TokenStore, TransportErrorKind,
};
use wx_official::{Endpoint, OfficialAccount, RetryPolicy};

use crate::common::*;

const API_PATH: &str = "/cgi-bin/get_api_domain_ip";

#[derive(Debug, Deserialize)]
struct Ips {
    ip_list: Vec<String>,
}

fn ips_body() -> HttpResponse {
    HttpResponse::json(r#"{"ip_list":["101.226.103.0/25","101.226.233.128/25"]}"#)
}

fn api() -> Endpoint {
    Endpoint::get(API_PATH)
}

/// The (path, access_token) of every request, in order.
fn trail(mock: &MockTransport) -> Vec<(String, Option<String>)> {
    mock.requests()
        .iter()
        .map(|r| (r.path().to_owned(), r.query("access_token")))
        .collect()
}

fn step(path: &str, token: Option<&str>) -> (String, Option<String>) {
    (path.to_owned(), token.map(str::to_owned))
}

#[tokio::test]
async fn call_with_token_adds_the_token_and_decodes() {
    let s = setup();
    s.mock
        .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    s.mock.push_for(API_PATH, ips_body());
    let ips: Ips = s
        .client
        .call_with_token(api().query("extra", "a b/c"))
        .await
        .expect("ips");
    assert_eq!(ips.ip_list.len(), 2);
    let r = &s.mock.requests_to(API_PATH)[0];
    assert_eq!(r.method, Method::GET);
    assert_eq!(
        query(r),
        pairs(&[("access_token", TOKEN_1), ("extra", "a b/c")])
    );
    assert!(
        r.url.contains("extra=a%20b%2Fc"),
        "values are percent-encoded"
    );
}

/// 42001 (and 40001, 40014): one compare-and-delete, one refresh, one retry; a second rejection
/// is returned, not retried again.
#[tokio::test]
async fn a_rejected_token_is_refreshed_and_the_call_retried_exactly_once() {
    for code in [42001, 40001, 40014] {
        let s = setup();
        s.mock
            .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
        s.mock
            .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_2, 7200)));
        s.mock.push_for(
            API_PATH,
            HttpResponse::json(err_body(code, "access_token expired")),
        );
        s.mock.push_for(API_PATH, ips_body());
        let ips: Ips = s.client.call_with_token(api()).await.expect("retried");
        assert_eq!(ips.ip_list.len(), 2);
        assert_eq!(
            trail(&s.mock),
            vec![
                step(TOKEN_PATH, None),
                step(API_PATH, Some(TOKEN_1)),
                step(TOKEN_PATH, None),
                step(API_PATH, Some(TOKEN_2)),
            ],
            "{code}"
        );
        // The new token is the cached one now.
        let stored = s
            .store
            .get(&s.client.token_key(&TokenKind::AccessToken))
            .await
            .expect("get")
            .expect("stored");
        assert_eq!(stored.secret(), TOKEN_2);
    }
}

#[tokio::test]
async fn a_second_rejection_is_returned_not_retried() {
    let s = setup();
    s.mock
        .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    s.mock
        .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_2, 7200)));
    s.mock.always(
        API_PATH,
        HttpResponse::json(err_body(42001, "access_token expired")),
    );
    let e = s
        .client
        .call_with_token::<Ips>(api())
        .await
        .expect_err("rejected twice");
    assert_eq!(api_code(&e), Some(42001));
    assert_eq!(e.api().expect("api").endpoint, "cgi-bin/get_api_domain_ip");
    assert_eq!(s.mock.total(), 4, "token, call, token, call: nothing more");
    assert_no_secrets(&e, &[TOKEN_1, TOKEN_2]);
}

#[tokio::test]
async fn a_token_refreshed_by_someone_else_meanwhile_is_not_deleted() {
    let clock = ManualClock::starting_now();
    let store = MemoryTokenStore::with_clock(Arc::new(clock.clone()));
    let key_store = store.clone();
    let requests = Arc::new(Mutex::new(Vec::<(String, Option<String>)>::new()));
    let log = requests.clone();
    let later = clock.now() + Duration::from_secs(7200);
    let transport = transport_fn(move |req: HttpRequest| {
        let (store, log) = (key_store.clone(), log.clone());
        async move {
            let token = req.query("access_token");
            log.lock()
                .expect("log")
                .push((req.path().to_owned(), token.clone()));
            match (req.path(), token.as_deref()) {
                (TOKEN_PATH, _) => Ok(HttpResponse::json(token_body(TOKEN_1, 7200))),
                (API_PATH, Some(TOKEN_1)) => {
                    // Another process refreshes while our call with TOKEN_1 is in flight.
                    let key = wx_core::TokenKey::new("wx", APPID.into(), TokenKind::AccessToken);
                    store
                        .set(&key, StoredToken::new(TOKEN_2, later))
                        .await
                        .expect("set");
                    Ok(HttpResponse::json(err_body(
                        40001,
                        "invalid credential, access_token is invalid or not latest",
                    )))
                }
                (API_PATH, Some(TOKEN_2)) => Ok(ips_body()),
                _ => Ok(response(404, "")),
            }
        }
    });
    let client = builder(&clock)
        .build(transport, store.clone())
        .expect("client");
    let ips: Ips = client.call_with_token(api()).await.expect("retried");
    assert_eq!(ips.ip_list.len(), 2);
    let seen = requests.lock().expect("log").clone();
    assert_eq!(
        seen,
        vec![
            step(TOKEN_PATH, None),
            step(API_PATH, Some(TOKEN_1)),
            step(API_PATH, Some(TOKEN_2)),
        ],
        "the newer token was used without a second fetch"
    );
    let stored = store
        .get(&client.token_key(&TokenKind::AccessToken))
        .await
        .expect("get")
        .expect("the newer token survived");
    assert_eq!(stored.secret(), TOKEN_2);
}

#[tokio::test]
async fn invalidate_access_token_is_compare_and_delete() {
    let s = setup();
    s.mock
        .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    let t = s.client.access_token().await.expect("t1");
    assert!(
        !s.client
            .invalidate_access_token(&wx_core::AccessToken::new(TOKEN_2))
            .await
            .expect("cad")
    );
    assert!(s.client.invalidate_access_token(&t).await.expect("cad"));
    assert!(
        s.store
            .get(&s.client.token_key(&TokenKind::AccessToken))
            .await
            .expect("get")
            .is_none()
    );
}

#[tokio::test]
async fn a_get_is_retried_on_busy_a_bounded_number_of_times() {
    let s = setup();
    s.mock
        .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    s.mock
        .always(API_PATH, HttpResponse::json(err_body(-1, "system error")));
    let e = s
        .client
        .call_with_token::<Ips>(api())
        .await
        .expect_err("busy");
    assert_eq!(api_code(&e), Some(-1));
    assert_eq!(s.mock.count(API_PATH), 3, "1 try + 2 retries");

    let s = setup_with(|b| b.retry_policy(fast_retry().with_max_retries(4)));
    s.mock
        .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    s.mock.always(
        API_PATH,
        HttpResponse::json(err_body(45011, "api minute-quota reach limit")),
    );
    s.client
        .call_with_token::<Ips>(api())
        .await
        .expect_err("rate limited");
    assert_eq!(s.mock.count(API_PATH), 5);

    let s = setup_with(|b| b.retry_policy(RetryPolicy::disabled()));
    s.mock
        .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    s.mock
        .always(API_PATH, HttpResponse::json(err_body(-1, "system error")));
    s.client
        .call_with_token::<Ips>(api())
        .await
        .expect_err("busy");
    assert_eq!(s.mock.count(API_PATH), 1);
}

#[tokio::test]
async fn a_get_is_retried_after_transient_transport_failures_and_5xx() {
    let s = setup();
    s.mock
        .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    s.mock.push_error_for(API_PATH, TransportErrorKind::Timeout);
    s.mock
        .push_for(API_PATH, response(502, "<html>bad gateway</html>"));
    s.mock.push_for(API_PATH, ips_body());
    let ips: Ips = s.client.call_with_token(api()).await.expect("third try");
    assert_eq!(ips.ip_list.len(), 2);
    assert_eq!(s.mock.count(API_PATH), 3);

    let s = setup();
    s.mock
        .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    s.mock.push_error_for(API_PATH, TransportErrorKind::Connect);
    s.mock.push_error_for(API_PATH, TransportErrorKind::Io);
    s.mock.push_error_for(API_PATH, TransportErrorKind::Connect);
    s.mock.push_for(API_PATH, ips_body());
    let e = s
        .client
        .call_with_token::<Ips>(api())
        .await
        .expect_err("3 failures");
    assert!(e.transport().is_some_and(|t| t.is_connect()), "{e:?}");
    assert_eq!(s.mock.count(API_PATH), 3);
}

#[tokio::test]
async fn failures_retrying_cannot_fix_are_returned_at_once() {
    let s = setup();
    s.mock
        .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    s.mock
        .push_error_for(API_PATH, TransportErrorKind::BodyTooLarge);
    let e = s
        .client
        .call_with_token::<Ips>(api())
        .await
        .expect_err("too large");
    assert!(e.transport().is_some_and(|t| t.is_body_too_large()));
    s.mock.push_for(API_PATH, response(404, "not found"));
    let e = s
        .client
        .call_with_token::<Ips>(api())
        .await
        .expect_err("404");
    assert!(
        matches!(e, Error::HttpStatus { endpoint: "cgi-bin/get_api_domain_ip", status } if status == 404),
        "{e:?}"
    );
    s.mock.push_for(
        API_PATH,
        HttpResponse::json(err_body(48001, "api unauthorized")),
    );
    let e = s
        .client
        .call_with_token::<Ips>(api())
        .await
        .expect_err("48001");
    assert!(e.is_scope_missing());
    assert_eq!(s.mock.count(API_PATH), 3, "each tried once");
    assert_eq!(s.mock.count(TOKEN_PATH), 1, "and no token refresh");
}

#[tokio::test]
async fn a_post_is_never_retried_after_a_timeout() {
    let post = || {
        Endpoint::post_json("/cgi-bin/menu/create", &serde_json::json!({"button": []}))
            .expect("json")
    };
    for failure in [
        Err(TransportErrorKind::Timeout),
        Err(TransportErrorKind::Io),
        Ok(502),
    ] {
        let s = setup();
        s.mock
            .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
        match failure {
            Err(kind) => s.mock.push_error_for("/cgi-bin/menu/create", kind),
            Ok(status) => s
                .mock
                .push_for("/cgi-bin/menu/create", response(status, "")),
        };
        s.mock.push_for(
            "/cgi-bin/menu/create",
            HttpResponse::json(r#"{"errcode":0,"errmsg":"ok"}"#),
        );
        s.client
            .call_with_token::<wx_core::Ack>(post())
            .await
            .expect_err("not retried");
        assert_eq!(s.mock.count("/cgi-bin/menu/create"), 1, "{failure:?}");
    }
    // It is retried when the request certainly had no effect.
    let s = setup();
    s.mock
        .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    s.mock
        .push_error_for("/cgi-bin/menu/create", TransportErrorKind::Connect);
    s.mock.push_for(
        "/cgi-bin/menu/create",
        HttpResponse::json(err_body(-1, "system error")),
    );
    s.mock.push_for(
        "/cgi-bin/menu/create",
        HttpResponse::json(r#"{"errcode":0,"errmsg":"ok"}"#),
    );
    s.client
        .call_with_token::<wx_core::Ack>(post())
        .await
        .expect("retried");
    let sent = s.mock.requests_to("/cgi-bin/menu/create");
    assert_eq!(sent.len(), 3);
    assert_eq!(sent[0].method, Method::POST);
    assert_eq!(sent[0].body.as_deref(), Some(&br#"{"button":[]}"#[..]));
    // An idempotent POST may be retried after a timeout.
    let s = setup();
    s.mock
        .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    s.mock
        .push_error_for("/cgi-bin/menu/create", TransportErrorKind::Timeout);
    s.mock.push_for(
        "/cgi-bin/menu/create",
        HttpResponse::json(r#"{"errcode":0,"errmsg":"ok"}"#),
    );
    s.client
        .call_with_token::<wx_core::Ack>(post().idempotent(true))
        .await
        .expect("retried");
    assert_eq!(s.mock.count("/cgi-bin/menu/create"), 2);
}

#[tokio::test]
async fn hostile_bodies_are_errors_never_panics() {
    let huge = format!(r#"{{"ip_list":["{}"]}}"#, "x".repeat(4 * 1024 * 1024));
    let bodies: Vec<Vec<u8>> = vec![
        b"<!DOCTYPE html><html><head><title>\xe8\xaf\xb7\xe5\x9c\xa8\xe5\xbe\xae\xe4\xbf\xa1\xe5\xae\xa2\xe6\x88\xb7\xe7\xab\xaf\xe6\x89\x93\xe5\xbc\x80\xe9\x93\xbe\xe6\x8e\xa5</title></html>".to_vec(),
        Vec::new(),
        b"   \n".to_vec(),
        br#"{"ip_list":["1.2.3.4""#.to_vec(),
        b"\xff\xfe\xfd".to_vec(),
        b"null".to_vec(),
        b"[1,2,3]".to_vec(),
        br#"{"ip_list":"not a list"}"#.to_vec(),
        br#"{"errcode":"not a number"}"#.to_vec(),
        vec![b'{'; 100_000],
    ];
    for body in bodies {
        let s = setup();
        s.mock
            .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
        s.mock.push_for(API_PATH, response(200, body.clone()));
        let e = s
            .client
            .call_with_token::<Ips>(api())
            .await
            .expect_err("garbage");
        assert!(matches!(e, Error::Decode(_)), "{e:?}");
        assert_eq!(s.mock.count(API_PATH), 1, "a decode error is not retried");
    }
    let s = setup();
    s.mock
        .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    s.mock.push_for(API_PATH, response(200, huge));
    let ips: Ips = s
        .client
        .call_with_token(api())
        .await
        .expect("huge but valid");
    assert_eq!(ips.ip_list[0].len(), 4 * 1024 * 1024);
}

#[tokio::test]
async fn errcode_as_a_string_is_still_an_error() {
    let s = setup();
    s.mock
        .push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    s.mock.push_for(
        API_PATH,
        HttpResponse::json(r#"{"errmsg":"api unauthorized","errcode":"48001"}"#),
    );
    let e = s
        .client
        .call_with_token::<Ips>(api())
        .await
        .expect_err("48001");
    assert_eq!(api_code(&e), Some(48001));
}

#[tokio::test]
async fn a_slow_transport_hits_the_whole_call_deadline() {
    let clock = ManualClock::starting_now();
    let calls = Arc::new(Mutex::new(0u32));
    let counter = calls.clone();
    let transport = transport_fn(move |_req: HttpRequest| {
        let counter = counter.clone();
        async move {
            *counter.lock().expect("count") += 1;
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(HttpResponse::json(token_body(TOKEN_1, 7200)))
        }
    });
    let client = builder(&clock)
        .request_deadline(Duration::from_millis(100))
        .build(transport, MemoryTokenStore::new())
        .expect("client");
    let started = std::time::Instant::now();
    let e = client.access_token().await.expect_err("deadline");
    assert!(
        matches!(e, Error::Deadline { deadline, .. } if deadline == Duration::from_millis(100)),
        "{e:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    let e = client.exchange_code("CODE").await.expect_err("deadline");
    assert!(
        matches!(
            e,
            Error::Deadline {
                operation: "sns/oauth2/access_token",
                ..
            }
        ),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_custom_api_base_with_a_path_prefix_is_used() {
    let clock = ManualClock::starting_now();
    let mock = MockTransport::new();
    mock.push_for(
        "/wechat/cgi-bin/token",
        HttpResponse::json(token_body(TOKEN_1, 7200)),
    );
    let client = OfficialAccount::builder(APPID, AppSecret::new(SECRET))
        .clock(Arc::new(clock))
        .api_base("http://127.0.0.1:8080/wechat/")
        .build(mock.clone(), MemoryTokenStore::new())
        .expect("client");
    client.access_token().await.expect("token");
    assert_eq!(
        mock.requests()[0].url_without_query(),
        "http://127.0.0.1:8080/wechat/cgi-bin/token"
    );
}

#[tokio::test]
async fn a_malformed_endpoint_path_is_rejected_before_sending() {
    let s = setup();
    let e = s
        .client
        .call::<Ips>(Endpoint::get("cgi-bin/x?y=1"))
        .await
        .expect_err("bad path");
    assert!(matches!(e, Error::InvalidInput(ref i) if i.argument == "endpoint path"));
    let e = s
        .client
        .call_with_token::<Ips>(Endpoint::get("/a b"))
        .await
        .expect_err("bad path");
    assert!(matches!(e, Error::InvalidInput(_)));
    assert_eq!(s.mock.total(), 0);
}

/// A call in flight costs its future's size in memory, for as long as WeChat takes to answer:
/// the futures stay small. (A deterministic check of what the `throughput` bench measures; an
/// `async fn` layer that kept its argument, or a rare path not boxed, doubled them before:
/// `user_info` 1,520 bytes, a call 1,168; then 672 and 664; since issue 17's third round one
/// future for the built endpoint and no span wrapper unless traced: 544 and 544; since its
/// fourth round one future for both credentials, which keeps the base token for the one
/// retry: 560 and 536.)
#[test]
fn a_calls_future_stays_small() {
    let s = setup();
    let token = wx_core::WebAccessToken::new("WEBTOKEN");
    let openid = wx_core::OpenId::from("OPENID".to_owned());
    let user_info = s.client.user_info(&token, &openid, wx_core::Lang::ZhCn);
    let call = s.client.call::<Ips>(api().with_base_token());
    let sizes = (size_of_val(&user_info), size_of_val(&call));
    assert!(sizes.0 <= 576 && sizes.1 <= 576, "{sizes:?}");
}

/// A transport that promises to end every send within `promised` and takes `takes` to fail
/// with a timeout.
struct Promises {
    promised: Duration,
    takes: Duration,
    calls: Arc<Mutex<u32>>,
}

#[async_trait::async_trait]
impl wx_core::HttpTransport for Promises {
    async fn send(&self, _: HttpRequest) -> Result<HttpResponse, wx_core::TransportError> {
        *self.calls.lock().expect("count") += 1;
        tokio::time::sleep(self.takes).await;
        Err(wx_core::TransportError::new(
            TransportErrorKind::Timeout,
            "timed out",
        ))
    }

    fn send_timeout(&self) -> Option<Duration> {
        Some(self.promised)
    }
}

/// The deadline holds when the client trusts the transport's own timeout: attempts that end
/// in time run without a timer of the client's, the attempt that would not is bounded by one,
/// and a backoff never passes the deadline.
#[tokio::test(start_paused = true)]
async fn the_deadline_holds_over_a_transport_that_times_out_by_itself() {
    for (deadline_ms, takes_ms, expect_calls) in [
        // 0-300, 301-601, 603-903: each ends before the deadline by the transport's promise;
        // the fourth starts with under 300 ms left and is cut by the client at 1,000 ms.
        (1_000, 300, 4),
        // Less time than the promise from the start: the client's timer bounds the first
        // attempt, though this transport would hang far longer than it promised.
        (200, 10_000, 1),
    ] {
        let calls = Arc::new(Mutex::new(0));
        let transport = Promises {
            promised: Duration::from_millis(300),
            takes: Duration::from_millis(takes_ms),
            calls: calls.clone(),
        };
        let deadline = Duration::from_millis(deadline_ms);
        let client = builder(&ManualClock::starting_now())
            .retry_policy(fast_retry().with_max_retries(5))
            .request_deadline(deadline)
            .build(transport, MemoryTokenStore::new())
            .expect("client");
        let started = tokio::time::Instant::now();
        let e = client.call::<Ips>(api()).await.expect_err("deadline");
        assert!(
            matches!(e, Error::Deadline { operation, deadline: d } if operation == "cgi-bin/get_api_domain_ip" && d == deadline),
            "{e:?}"
        );
        assert_eq!(started.elapsed(), deadline, "ends exactly at the deadline");
        assert_eq!(*calls.lock().expect("count"), expect_calls);
    }
}
