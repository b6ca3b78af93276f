//! The process-local copy of the base token and the JS-SDK ticket in front of the store: a warm
//! read touches no store, the copy's age is bounded, a rejected copy is recovered with one
//! retry, and the option is validated.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::Deserialize;
use wx_core::test_util::transport_fn;
use wx_core::{
    AppSecret, Error, HttpRequest, HttpResponse, ManualClock, MemoryTokenStore, StoreError,
    StoredToken, TokenKey, TokenStore,
};
use wx_official::{
    DEFAULT_LOCAL_TOKEN_AGE, Endpoint, MAX_LOCAL_TOKEN_AGE, OfficialAccount, TokenMode,
};

use crate::common::*;

const API_PATH: &str = "/cgi-bin/get_api_domain_ip";

#[derive(Debug, Deserialize)]
struct Ips {
    ip_list: Vec<String>,
}

/// A memory store counting the reads that reach it.
#[derive(Clone)]
struct CountingStore {
    inner: MemoryTokenStore,
    gets: Arc<AtomicUsize>,
}

impl CountingStore {
    fn new(clock: &ManualClock) -> Self {
        CountingStore {
            inner: MemoryTokenStore::with_clock(Arc::new(clock.clone())),
            gets: Arc::default(),
        }
    }

    /// The reads since the last call.
    fn gets(&self) -> usize {
        self.gets.swap(0, Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl TokenStore for CountingStore {
    async fn get(&self, k: &TokenKey) -> Result<Option<StoredToken>, StoreError> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.inner.get(k).await
    }
    async fn set(&self, k: &TokenKey, t: StoredToken) -> Result<(), StoreError> {
        self.inner.set(k, t).await
    }
    async fn delete(&self, k: &TokenKey) -> Result<(), StoreError> {
        self.inner.delete(k).await
    }
    async fn compare_and_delete(&self, k: &TokenKey, expected: &str) -> Result<bool, StoreError> {
        self.inner.compare_and_delete(k, expected).await
    }
    async fn try_acquire_lease(
        &self,
        k: &TokenKey,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        self.inner.try_acquire_lease(k, owner, ttl).await
    }
    async fn release_lease(&self, k: &TokenKey, owner: &str) -> Result<(), StoreError> {
        self.inner.release_lease(k, owner).await
    }
}

#[tokio::test]
async fn warm_tokens_and_tickets_read_no_store_until_the_age_bound() {
    for mode in [TokenMode::Normal, TokenMode::Stable] {
        let sandbox = sandbox();
        let store = CountingStore::new(sandbox.clock());
        let client = sandbox_builder(&sandbox)
            .token_mode(mode)
            .build(sandbox.clone(), store.clone())
            .expect("client");
        let token = client.access_token().await.expect("token");
        let ticket = client.jsapi_ticket().await.expect("ticket");
        store.gets();
        let (a, b) = (
            client.access_token().await.expect("warm token"),
            client.access_token().await.expect("warm token"),
        );
        assert!(
            std::ptr::eq(a.secret(), b.secret()),
            "{mode:?}: warm reads share the local copy's value instead of copying it"
        );
        for _ in 0..100 {
            let t = client.access_token().await.expect("warm token");
            assert_eq!(t.secret(), token.secret());
            let t = client.jsapi_ticket().await.expect("warm ticket");
            assert_eq!(t.secret(), ticket.secret());
            let _: Ips = client
                .call_with_token(Endpoint::get(API_PATH))
                .await
                .expect("api call");
        }
        assert_eq!(store.gets(), 0, "{mode:?}: no store read while warm");
        sandbox.clock().advance(DEFAULT_LOCAL_TOKEN_AGE);
        client.access_token().await.expect("token");
        client.jsapi_ticket().await.expect("ticket");
        assert_eq!(store.gets(), 2, "{mode:?}: one read of each at the bound");
        let token_path = match mode {
            TokenMode::Stable => STABLE_PATH,
            _ => TOKEN_PATH,
        };
        assert_eq!(sandbox.count(token_path), 1, "{mode:?}");
        assert_eq!(sandbox.count("/cgi-bin/ticket/getticket"), 1, "{mode:?}");
    }
}

/// Process B's copy holds a token WeChat no longer accepts (process A replaced it, and this
/// transport refuses a replaced token at once, stricter than WeChat's 5-minute grace): B's next
/// call is rejected once, drops its copy, finds A's token in the store without a fetch, and is
/// retried once.
#[tokio::test]
async fn a_copy_rejected_by_wechat_is_dropped_and_the_call_retried_once() {
    let clock = ManualClock::starting_now();
    let store = CountingStore::new(&clock);
    let issued = Arc::new(AtomicUsize::new(0));
    let calls = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let transport = Arc::new({
        let (issued, calls) = (issued.clone(), calls.clone());
        transport_fn(move |req: HttpRequest| {
            let (issued, calls) = (issued.clone(), calls.clone());
            async move {
                if req.path() == TOKEN_PATH {
                    let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
                    return Ok(HttpResponse::json(token_body(&format!("AT-{n}"), 7200)));
                }
                let token = req.query("access_token").unwrap_or_default();
                calls.lock().expect("log").push(token.clone());
                let current = format!("AT-{}", issued.load(Ordering::SeqCst));
                Ok(HttpResponse::json(if token == current {
                    r#"{"ip_list":["1.1.1.1"]}"#.to_owned()
                } else {
                    err_body(
                        40001,
                        "invalid credential, access_token is invalid or not latest",
                    )
                }))
            }
        })
    });
    let member = || {
        builder(&clock)
            .build(transport.clone(), store.clone())
            .expect("client")
    };
    let (a, b) = (member(), member());
    let _: Ips = a.call_with_token(Endpoint::get(API_PATH)).await.expect("a");
    let _: Ips = b.call_with_token(Endpoint::get(API_PATH)).await.expect("b");
    // A meets a revocation of AT-1 (say, a refresh elsewhere) and replaces it.
    let stale = a.access_token().await.expect("a's copy");
    assert!(a.invalidate_access_token(&stale).await.expect("cad"));
    let fresh = a.access_token().await.expect("a refetches");
    assert_eq!(fresh.secret(), "AT-2");
    store.gets();
    let ips: Ips = b
        .call_with_token(Endpoint::get(API_PATH))
        .await
        .expect("b recovers");
    assert_eq!(ips.ip_list, ["1.1.1.1"]);
    assert_eq!(
        *calls.lock().expect("log"),
        ["AT-1", "AT-1", "AT-1", "AT-2"],
        "b's stale copy was tried once, then the stored token"
    );
    assert_eq!(
        store.gets(),
        1,
        "b read the store once, after dropping its copy"
    );
    assert_eq!(issued.load(Ordering::SeqCst), 2, "no fetch by b");
    let t = b.access_token().await.expect("b's new copy");
    assert_eq!(t.secret(), "AT-2");
    assert_eq!(store.gets(), 0);
}

#[tokio::test]
async fn the_age_bound_is_validated_and_zero_reads_the_store_every_time() {
    let clock = ManualClock::starting_now();
    let build = |age| {
        OfficialAccount::builder(APPID, AppSecret::new(SECRET))
            .local_token_max_age(age)
            .build(
                wx_core::test_util::MockTransport::new(),
                MemoryTokenStore::new(),
            )
    };
    let e = build(MAX_LOCAL_TOKEN_AGE + Duration::from_millis(1)).expect_err("over the cap");
    assert!(
        matches!(e, Error::InvalidInput(ref i) if i.argument == "local_token_max_age"),
        "{e:?}"
    );
    build(MAX_LOCAL_TOKEN_AGE).expect("at the cap");
    assert!(
        MAX_LOCAL_TOKEN_AGE < Duration::from_secs(300)
            && DEFAULT_LOCAL_TOKEN_AGE <= MAX_LOCAL_TOKEN_AGE
    );

    let store = CountingStore::new(&clock);
    let mock = wx_core::test_util::MockTransport::new();
    mock.push_for(TOKEN_PATH, HttpResponse::json(token_body(TOKEN_1, 7200)));
    let client = builder(&clock)
        .local_token_max_age(Duration::ZERO)
        .build(mock.clone(), store.clone())
        .expect("off");
    for _ in 0..5 {
        assert_eq!(client.access_token().await.expect("t").secret(), TOKEN_1);
    }
    assert_eq!(
        store.gets(),
        3 + 4,
        "a miss reads three times (the hot path, the refresh, under the lease), then one read a call"
    );
    assert_eq!(mock.count(TOKEN_PATH), 1);
}
