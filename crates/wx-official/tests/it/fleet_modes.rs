//! The fleet options on the sandbox: refresh ahead (nobody waits on a refresh) and read-only
//! consumers (no token or ticket request, ever).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha1::{Digest, Sha1};
use tokio::time::Instant;
use wx_core::urlenc::url_with_query;
use wx_core::{
    Error, HttpRequest, HttpTransport, MemoryTokenStore, Refused, TokenKind, TokenStore,
    transport_fn,
};
use wx_official::{Endpoint, TokenMode};
use wx_sandbox::Fault;

use crate::common::*;

const TICKET_PATH: &str = "/cgi-bin/ticket/getticket";
const IP_PATH: &str = "/cgi-bin/get_api_domain_ip";
const PAGE: &str = "https://app.example.com/pay?order=42";
const SLOW: Duration = Duration::from_secs(2);

#[derive(Debug, serde::Deserialize)]
struct Ips {
    ip_list: Vec<String>,
}

/// Waits (up to 2 s) until the sandbox has received `n` requests on `path`: a background
/// refresh is a task of its own and may not have sent its request yet.
async fn wait_for_count(sandbox: &wx_sandbox::Sandbox, path: &str, n: u64) {
    let start = Instant::now();
    while sandbox.count(path) < n && start.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(sandbox.count(path), n, "{path}");
}

/// 100 callers at once; each one's own latency, the token it got, and the slowest latency.
async fn hundred_callers(client: &SandboxClient) -> (Vec<String>, Duration) {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let c = client.clone();
        tasks.spawn(async move {
            let start = Instant::now();
            let t = c.access_token().await.expect("token");
            (t.into_secret(), start.elapsed())
        });
    }
    let results = tasks.join_all().await;
    let slowest = results.iter().map(|(_, d)| *d).max().unwrap_or_default();
    (results.into_iter().map(|(t, _)| t).collect(), slowest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_ahead_callers_never_wait_for_the_refresh() {
    let s = sandbox_setup_with(|b| b.refresh_ahead(true));
    let old = s
        .client
        .access_token()
        .await
        .expect("first token")
        .into_secret();
    // Inside the 300 s margin, not expired; the next token request takes 2 s.
    s.sandbox.clock().advance(Duration::from_secs(7000));
    s.sandbox
        .faults()
        .script_for(TOKEN_PATH, [Fault::Delay(SLOW)]);
    let refresh_started = Instant::now();
    let (tokens, slowest) = hundred_callers(&s.client).await;
    assert!(
        tokens.iter().all(|t| *t == old),
        "everyone got the valid token"
    );
    eprintln!("refresh ahead: slowest of 100 callers {slowest:?} (the refresh takes {SLOW:?})");
    assert!(
        slowest < Duration::from_millis(100),
        "a caller waited {slowest:?} (the refresh takes {SLOW:?})"
    );
    wait_for_count(&s.sandbox, TOKEN_PATH, 2).await;
    // More callers while the refresh is still in flight: still served at once, no second one.
    let (tokens, slowest) = hundred_callers(&s.client).await;
    assert!(tokens.iter().all(|t| *t == old));
    assert!(slowest < Duration::from_millis(100), "{slowest:?}");
    assert_eq!(s.sandbox.count(TOKEN_PATH), 2, "exactly one refresh");

    // Afterwards the new token is served, by the one refresh.
    let new = loop {
        let t = s.client.access_token().await.expect("token").into_secret();
        if t != old {
            break t;
        }
        assert!(
            refresh_started.elapsed() < 10 * SLOW,
            "the refresh never landed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(refresh_started.elapsed() >= SLOW, "the refresh was slow");
    assert_eq!(
        Some(new),
        s.sandbox
            .current_token(APPID)
            .map(wx_core::AccessToken::into_secret)
    );
    assert_eq!(s.sandbox.count(TOKEN_PATH), 2);
}

/// The same scene without refresh ahead: the callers do wait for the slow refresh (so the test
/// above measures the option, not a fast sandbox).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_refresh_ahead_callers_inside_the_margin_wait() {
    let s = sandbox_setup_with(|b| b);
    let old = s
        .client
        .access_token()
        .await
        .expect("first token")
        .into_secret();
    s.sandbox.clock().advance(Duration::from_secs(7000));
    s.sandbox
        .faults()
        .script_for(TOKEN_PATH, [Fault::Delay(SLOW)]);
    let (tokens, slowest) = hundred_callers(&s.client).await;
    assert!(
        tokens.iter().all(|t| *t != old),
        "everyone waited for the new token"
    );
    assert!(slowest >= SLOW, "{slowest:?}");
    assert_eq!(s.sandbox.count(TOKEN_PATH), 2);
}

/// The ticket has the same option.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_ahead_serves_the_ticket_while_it_is_refreshed() {
    let s = sandbox_setup_with(|b| b.refresh_ahead(true));
    let first = s.client.jsapi_ticket().await.expect("ticket").into_secret();
    s.sandbox.clock().advance(Duration::from_secs(7000));
    s.sandbox
        .faults()
        .script_for(TICKET_PATH, [Fault::Delay(SLOW)]);
    let start = Instant::now();
    for _ in 0..20 {
        assert_eq!(
            s.client.jsapi_ticket().await.expect("ticket").secret(),
            first
        );
    }
    wait_for_count(&s.sandbox, TICKET_PATH, 2).await;
    for _ in 0..20 {
        assert_eq!(
            s.client.jsapi_ticket().await.expect("ticket").secret(),
            first
        );
    }
    assert!(start.elapsed() < SLOW, "{:?}", start.elapsed());
    assert_eq!(s.sandbox.count(TICKET_PATH), 2, "one refresh in flight");
}

// ------------------------------------------------------------------ consumer-only

fn signature(ticket: &str, config: &wx_official::JsSdkConfig) -> String {
    let plain = format!(
        "jsapi_ticket={ticket}&noncestr={}&timestamp={}&url={}",
        config.nonce_str, config.timestamp, config.url
    );
    Sha1::digest(plain.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn consumers_send_no_token_or_ticket_request_ever() {
    let sandbox = sandbox();
    let store = MemoryTokenStore::with_clock(Arc::new(sandbox.clock().clone()));
    // The consumer's transport records every path it sends.
    let sent = Arc::new(Mutex::new(Vec::<String>::new()));
    let (log, upstream) = (sent.clone(), sandbox.clone());
    let consumer_transport = transport_fn(move |req: HttpRequest| {
        log.lock().expect("log").push(req.path().to_owned());
        let upstream = upstream.clone();
        async move { upstream.send(req).await }
    });
    let consumer = sandbox_builder(&sandbox)
        .consumer_only(true)
        .build(consumer_transport, store.clone())
        .expect("consumer");
    let leader = sandbox_builder(&sandbox)
        .build(sandbox.clone(), store.clone())
        .expect("leader");
    let sent_paths = || sent.lock().expect("log").clone();
    let is_empty_store = |e: &Error, kind: &str| matches!(e, Error::Refused(Refused::ConsumerStoreEmpty { kind: k }) if *k == kind);

    // An empty store: typed refusals, nothing sent.
    let e = consumer.access_token().await.expect_err("empty");
    assert!(is_empty_store(&e, "access token"), "{e:?}");
    let e = consumer.jsapi_ticket().await.expect_err("empty");
    assert!(is_empty_store(&e, "jsapi ticket"), "{e:?}");
    let e = consumer.js_sdk_config(PAGE).await.expect_err("empty");
    assert!(is_empty_store(&e, "jsapi ticket"), "{e:?}");
    let e = consumer
        .call_with_token::<Ips>(Endpoint::get(IP_PATH))
        .await
        .expect_err("empty");
    assert!(is_empty_store(&e, "access token"), "{e:?}");
    assert!(sent_paths().is_empty(), "{:?}", sent_paths());

    // The leader fetches token and ticket; the consumer uses them.
    let token = leader.access_token().await.expect("leader token");
    let ticket = leader.jsapi_ticket().await.expect("leader ticket");
    assert!(consumer.access_token().await.expect("shared").ct_eq(&token));
    let config = consumer.js_sdk_config(PAGE).await.expect("config");
    assert_eq!(config.signature, signature(ticket.secret(), &config));
    let ips = consumer
        .call_with_token::<Ips>(Endpoint::get(IP_PATH))
        .await
        .expect("api call");
    assert!(!ips.ip_list.is_empty());

    // Someone else fetches a token; 5 minutes later the shared one is "not latest" (40001).
    let url = url_with_query(
        "https://api.weixin.qq.com/cgi-bin/token",
        &[
            ("grant_type", "client_credential"),
            ("appid", APPID),
            ("secret", SECRET),
        ],
    );
    sandbox.send(HttpRequest::get(url)).await.expect("sent");
    sandbox.clock().advance(Duration::from_secs(301));
    let e = consumer
        .call_with_token::<Ips>(Endpoint::get(IP_PATH))
        .await
        .expect_err("rejected, and a consumer does not fetch");
    assert!(is_empty_store(&e, "access token"), "{e:?}");
    let key = consumer.token_key(&TokenKind::AccessToken);
    assert!(
        store.get(&key).await.expect("get").is_none(),
        "the rejected token was dropped for the leader to replace"
    );
    // The leader replaces it; the consumer carries on.
    leader.access_token().await.expect("leader refetches");
    consumer
        .call_with_token::<Ips>(Endpoint::get(IP_PATH))
        .await
        .expect("api call with the new token");
    // Inside the margin a consumer keeps using the shared token rather than asking anyone.
    sandbox.clock().advance(Duration::from_secs(7000));
    consumer.access_token().await.expect("still valid");

    let paths = sent_paths();
    assert!(
        paths.iter().all(|p| p == IP_PATH),
        "the consumer sent {paths:?}"
    );
    assert_eq!(paths.len(), 3, "{paths:?}");
    assert_eq!(sandbox.count(TICKET_PATH), 1, "the leader's only");
}

#[tokio::test]
async fn a_consumer_never_force_refreshes_and_may_report_a_rejected_ticket() {
    let sandbox = sandbox();
    let store = MemoryTokenStore::with_clock(Arc::new(sandbox.clock().clone()));
    let consumer = sandbox_builder(&sandbox)
        .token_mode(TokenMode::Stable)
        .consumer_only(true)
        .build(sandbox.clone(), store.clone())
        .expect("consumer");
    let leader = sandbox_builder(&sandbox)
        .token_mode(TokenMode::Stable)
        .build(sandbox.clone(), store.clone())
        .expect("leader");
    let e = consumer
        .force_refresh_stable_token()
        .await
        .expect_err("consumer");
    assert!(
        matches!(e, Error::InvalidInput(ref i) if i.argument == "consumer_only"),
        "{e:?}"
    );
    leader.jsapi_ticket().await.expect("leader ticket");
    let config = consumer.js_sdk_config(PAGE).await.expect("config");
    // Issue 19 (Low): anyone can post back the genuine configuration they were served. The
    // consumer marks the ticket suspect for the leader instead of emptying the shared store,
    // so every consumer's pages keep working.
    assert!(
        consumer
            .invalidate_jsapi_ticket_for(&config)
            .await
            .expect("marked")
    );
    let kept = consumer
        .jsapi_ticket()
        .await
        .expect("the consumers keep the ticket");
    consumer
        .js_sdk_config(PAGE)
        .await
        .expect("pages still work");
    // The leader checks the mark on a later use: WeChat still answers the ticket, so it stays.
    sandbox.clock().advance(Duration::from_secs(30));
    let checked = leader.jsapi_ticket().await.expect("leader");
    assert_eq!(checked.secret(), kept.secret());
    assert_eq!(
        sandbox.count(TICKET_PATH),
        2,
        "the leader's fetch and its check"
    );
    // The mark is used up: the leader does not check again.
    sandbox.clock().advance(Duration::from_secs(30));
    leader.jsapi_ticket().await.expect("leader");
    assert_eq!(sandbox.count(TICKET_PATH), 2);
    assert_eq!(
        sandbox.count("/cgi-bin/stable_token"),
        1,
        "the leader's only"
    );
}
