//! Unit tests of the token manager with a manual clock and in-memory stores.

use std::error::Error as StdError;
use std::sync::atomic::{AtomicUsize, Ordering};

use wx_core::{
    Clock, ErrCode, ManualClock, MemoryTokenStore, StoreError, StoreOp, TransportError,
    TransportErrorKind,
};

use super::*;

fn policy() -> TokenPolicy {
    TokenPolicy {
        margin: Duration::from_secs(300),
        cooldown: Duration::from_secs(60),
        lease_ttl: Duration::from_secs(10),
        lease_wait: Duration::from_secs(5),
        refresh_ahead: false,
        consumer_only: false,
        store_timeout: Duration::from_secs(5),
        local_max_age: Duration::from_secs(10),
    }
}

fn manager(clock: &ManualClock, policy: TokenPolicy) -> TokenManager<MemoryTokenStore> {
    let clock: SharedClock = Arc::new(clock.clone());
    TokenManager::new(
        MemoryTokenStore::with_clock(clock.clone()),
        clock,
        policy,
        Arc::from("wx"),
        AppId::new("wxapp"),
    )
}

/// A fetch counting its calls and answering `value` valid for `secs`.
fn counting(
    calls: &Arc<AtomicUsize>,
    value: &'static str,
    secs: u64,
) -> impl FnOnce() -> FetchFuture + Send + 'static {
    let calls = calls.clone();
    move || {
        Box::pin(async move {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            Ok(Fetched {
                value: value.to_owned(),
                expires_in: secs,
            })
        })
    }
}

#[tokio::test]
async fn a_failed_refresh_is_shared_by_every_waiter() {
    let clock = ManualClock::starting_now();
    let m = manager(&clock, policy());
    let calls = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let (m, calls) = (m.clone(), calls.clone());
        tasks.spawn(async move {
            m.get(&TokenKind::AccessToken, move || {
                Box::pin(async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Err(Error::transport_at(
                        "cgi-bin/token",
                        TransportError::new(TransportErrorKind::Timeout, "read timed out"),
                    ))
                })
            })
            .await
        });
    }
    for r in tasks.join_all().await {
        let e = r.expect_err("the fetch failed");
        let t = e.transport().expect("a transport error");
        assert!(t.is_timeout());
        assert_eq!(
            StdError::source(t).map(ToString::to_string).as_deref(),
            Some("read timed out")
        );
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "one fetch for 50 waiters");
}

#[tokio::test]
async fn a_panicking_fetch_does_not_wedge_the_slot() {
    let clock = ManualClock::starting_now();
    let m = manager(&clock, policy());
    let e = m
        .get(&TokenKind::AccessToken, || {
            Box::pin(async { panic!("fetch bug (expected in this test)") })
        })
        .await
        .expect_err("the fetch panicked");
    assert!(e.to_string().contains("token refresh"), "{e}");
    let calls = Arc::new(AtomicUsize::new(0));
    let t = m
        .get(&TokenKind::AccessToken, counting(&calls, "T2", 7200))
        .await
        .expect("a new refresh runs");
    assert_eq!(t.secret(), "T2");
}

#[tokio::test]
async fn refresh_ahead_serves_the_old_value_and_refreshes_once() {
    let clock = ManualClock::starting_now();
    let m = manager(
        &clock,
        TokenPolicy {
            refresh_ahead: true,
            ..policy()
        },
    );
    let calls = Arc::new(AtomicUsize::new(0));
    let t = m
        .get(&TokenKind::AccessToken, counting(&calls, "T1", 7200))
        .await
        .expect("first fetch");
    assert_eq!(t.secret(), "T1");
    clock.advance(Duration::from_secs(7000)); // inside the 300 s margin, not expired
    let (gate_tx, gate_rx) = tokio::sync::oneshot::channel::<()>();
    let gate = Arc::new(Mutex::new(Some(gate_rx)));
    for _ in 0..20 {
        let (calls, gate) = (calls.clone(), gate.clone());
        let t = m
            .get(&TokenKind::AccessToken, move || {
                Box::pin(async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    let rx = lock(&gate).take();
                    if let Some(rx) = rx {
                        let _ = rx.await;
                    }
                    Ok(Fetched {
                        value: "T2".into(),
                        expires_in: 7200,
                    })
                })
            })
            .await
            .expect("served from the store");
        assert_eq!(t.secret(), "T1", "callers never wait for the refresh");
    }
    gate_tx.send(()).expect("refresh waiting");
    for _ in 0..100 {
        if m.store()
            .get(&m.key(&TokenKind::AccessToken))
            .await
            .expect("get")
            .is_some_and(|t| t.secret() == "T2")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let t = m
        .get(&TokenKind::AccessToken, counting(&calls, "T3", 7200))
        .await
        .expect("get");
    assert_eq!(t.secret(), "T2");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "one initial fetch, one refresh ahead"
    );
}

#[tokio::test]
async fn consumer_only_never_fetches() {
    let clock = ManualClock::starting_now();
    let m = manager(
        &clock,
        TokenPolicy {
            consumer_only: true,
            ..policy()
        },
    );
    let calls = Arc::new(AtomicUsize::new(0));
    let e = m
        .get(&TokenKind::AccessToken, counting(&calls, "T", 7200))
        .await
        .expect_err("empty store");
    assert!(matches!(
        e,
        Error::Refused(Refused::ConsumerStoreEmpty {
            kind: "access token"
        })
    ));
    let key = m.key(&TokenKind::AccessToken);
    m.store()
        .set(
            &key,
            StoredToken::new("SHARED", clock.now() + Duration::from_secs(100)),
        )
        .await
        .expect("set");
    // Inside the margin, but a consumer uses whatever valid value the fleet shares.
    let t = m
        .get(&TokenKind::AccessToken, counting(&calls, "T", 7200))
        .await
        .expect("shared value");
    assert_eq!(t.secret(), "SHARED");
    assert!(
        m.refresh(&TokenKind::AccessToken, counting(&calls, "T", 7200))
            .await
            .is_err()
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn cooldown_is_per_kind_and_ends() {
    let clock = ManualClock::starting_now();
    let m = manager(&clock, policy());
    let fail = || -> FetchFuture {
        Box::pin(async {
            Err(ApiError::new(
                "cgi-bin/token",
                ErrCode(40164),
                "invalid ip 1.2.3.4, not in whitelist rid: r1",
            )
            .into())
        })
    };
    let e = m
        .get(&TokenKind::AccessToken, fail)
        .await
        .expect_err("40164");
    assert_eq!(e.api().map(|a| a.code), Some(ErrCode(40164)));
    let calls = Arc::new(AtomicUsize::new(0));
    let e = m
        .get(&TokenKind::AccessToken, counting(&calls, "T", 7200))
        .await
        .expect_err("in cooldown");
    match e {
        Error::Refused(Refused::TokenFetchCooldown { cause, remaining }) => {
            assert_eq!(cause.code, ErrCode(40164));
            assert_eq!(remaining, Duration::from_secs(60));
        }
        other => panic!("unexpected {other:?}"),
    }
    // Another kind is not affected.
    m.get(&TokenKind::JsapiTicket, counting(&calls, "TICKET", 7200))
        .await
        .expect("other kind");
    clock.advance(Duration::from_secs(60));
    m.get(&TokenKind::AccessToken, counting(&calls, "T", 7200))
        .await
        .expect("cooldown over");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// A store whose reads fail.
struct DownStore;

#[async_trait::async_trait]
impl TokenStore for DownStore {
    async fn get(&self, _: &TokenKey) -> std::result::Result<Option<StoredToken>, StoreError> {
        Err(StoreError::new(StoreOp::Get, "connection refused"))
    }
    async fn set(&self, _: &TokenKey, _: StoredToken) -> std::result::Result<(), StoreError> {
        Err(StoreError::from_op(StoreOp::Set))
    }
    async fn delete(&self, _: &TokenKey) -> std::result::Result<(), StoreError> {
        Err(StoreError::from_op(StoreOp::Delete))
    }
}

#[tokio::test]
async fn a_store_outage_fails_closed_without_fetching() {
    let clock: SharedClock = Arc::new(ManualClock::starting_now());
    let m = TokenManager::new(DownStore, clock, policy(), Arc::from("wx"), AppId::new("a"));
    let calls = Arc::new(AtomicUsize::new(0));
    let e = m
        .get(&TokenKind::AccessToken, counting(&calls, "T", 7200))
        .await
        .expect_err("store down");
    assert!(
        matches!(e, Error::Store(ref s) if s.op() == StoreOp::Get),
        "{e:?}"
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "no fetch while the store is down"
    );
}

/// One store operation that never returns fails as a store error naming it after the store
/// timeout, and does not wedge the refresh that later callers join.
#[tokio::test]
async fn a_hung_store_operation_is_bounded_and_does_not_wedge_the_kind() {
    let clock = ManualClock::starting_now();
    let shared: SharedClock = Arc::new(clock.clone());
    let store = TestStore::new(&clock);
    store.hang_lease.store(true, Ordering::SeqCst);
    let m = TokenManager::new(
        store.clone(),
        shared,
        TokenPolicy {
            store_timeout: Duration::from_millis(100),
            ..policy()
        },
        Arc::from("wx"),
        AppId::new("wxapp"),
    );
    let calls = Arc::new(AtomicUsize::new(0));
    let e = tokio::time::timeout(
        Duration::from_secs(2),
        m.get(&TokenKind::AccessToken, counting(&calls, "T1", 7200)),
    )
    .await
    .expect("bounded by the store timeout")
    .expect_err("the lease never answers");
    assert!(
        matches!(&e, Error::Store(s) if s.op() == StoreOp::AcquireLease),
        "{e:?}"
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "no fetch without the lease"
    );
    store.hang_lease.store(false, Ordering::SeqCst);
    let t = m
        .get(&TokenKind::AccessToken, counting(&calls, "T1", 7200))
        .await
        .expect("the store answers again");
    assert_eq!(t.secret(), "T1");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// Issue 19 (Low): `cooldown(Duration::MAX)` overflowed `now + cooldown` and panicked the
/// refresh task: the caller got "the token refresh task stopped" instead of WeChat's error,
/// no cooldown was recorded and every call fetched again.
#[tokio::test]
async fn a_cooldown_past_the_clock_keeps_the_error_and_holds() {
    let clock = ManualClock::starting_now();
    let m = manager(
        &clock,
        TokenPolicy {
            cooldown: Duration::MAX,
            ..policy()
        },
    );
    let e = m
        .get(&TokenKind::AccessToken, || {
            Box::pin(async {
                Err(ApiError::new("cgi-bin/token", ErrCode(40164), "invalid ip").into())
            })
        })
        .await
        .expect_err("40164");
    assert_eq!(e.api().map(|a| a.code), Some(ErrCode(40164)), "{e:?}");
    let calls = Arc::new(AtomicUsize::new(0));
    let e = m
        .get(&TokenKind::AccessToken, counting(&calls, "T", 7200))
        .await
        .expect_err("in cooldown");
    assert!(
        matches!(e, Error::Refused(Refused::TokenFetchCooldown { .. })),
        "{e:?}"
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "no fetch during the cooldown"
    );
}
/// A memory store that counts the reads reaching it and whose `try_acquire_lease` never
/// answers while `hang_lease` is set (leases and compare-and-delete are the memory store's own).
struct TestStore {
    inner: MemoryTokenStore,
    gets: AtomicUsize,
    hang_lease: std::sync::atomic::AtomicBool,
}

impl TestStore {
    fn new(clock: &ManualClock) -> Arc<Self> {
        Arc::new(TestStore {
            inner: MemoryTokenStore::with_clock(Arc::new(clock.clone())),
            gets: AtomicUsize::new(0),
            hang_lease: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn gets(&self) -> usize {
        self.gets.swap(0, Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl TokenStore for TestStore {
    async fn get(&self, key: &TokenKey) -> std::result::Result<Option<StoredToken>, StoreError> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.inner.get(key).await
    }
    async fn set(&self, key: &TokenKey, t: StoredToken) -> std::result::Result<(), StoreError> {
        self.inner.set(key, t).await
    }
    async fn delete(&self, key: &TokenKey) -> std::result::Result<(), StoreError> {
        self.inner.delete(key).await
    }
    async fn compare_and_delete(
        &self,
        key: &TokenKey,
        expected: &str,
    ) -> std::result::Result<bool, StoreError> {
        self.inner.compare_and_delete(key, expected).await
    }
    async fn try_acquire_lease(
        &self,
        key: &TokenKey,
        owner: &str,
        ttl: Duration,
    ) -> std::result::Result<bool, StoreError> {
        if self.hang_lease.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        self.inner.try_acquire_lease(key, owner, ttl).await
    }
    async fn release_lease(
        &self,
        key: &TokenKey,
        owner: &str,
    ) -> std::result::Result<(), StoreError> {
        self.inner.release_lease(key, owner).await
    }
}

/// A manager of one "process" on the shared `store`.
fn member(
    clock: &ManualClock,
    store: &Arc<TestStore>,
    policy: TokenPolicy,
) -> TokenManager<Arc<TestStore>> {
    TokenManager::new(
        store.clone(),
        Arc::new(clock.clone()),
        policy,
        Arc::from("wx"),
        AppId::new("wxapp"),
    )
}

async fn value(
    m: &TokenManager<Arc<TestStore>>,
    kind: &TokenKind,
    calls: &Arc<AtomicUsize>,
    v: &'static str,
) -> String {
    m.get(kind, counting(calls, v, 7200))
        .await
        .expect("a value")
        .into_secret()
}

#[tokio::test]
async fn a_warm_read_reads_no_store_until_the_age_bound() {
    let clock = ManualClock::starting_now();
    let store = TestStore::new(&clock);
    let m = member(&clock, &store, policy());
    let calls = Arc::new(AtomicUsize::new(0));
    for kind in [TokenKind::AccessToken, TokenKind::JsapiTicket] {
        assert_eq!(value(&m, &kind, &calls, "T1").await, "T1");
        store.gets();
        for _ in 0..100 {
            assert_eq!(value(&m, &kind, &calls, "T2").await, "T1");
        }
        let key = m.key(&kind);
        for _ in 0..100 {
            assert!(m.read_fresh(&key).await.expect("read").is_ok());
        }
        assert_eq!(
            store.gets(),
            0,
            "{kind}: a fetched value is served from the local copy"
        );
        clock.advance(Duration::from_millis(9_999));
        assert_eq!(value(&m, &kind, &calls, "T2").await, "T1");
        assert_eq!(store.gets(), 0, "{kind}: younger than the bound");
        clock.advance(Duration::from_millis(1));
        assert_eq!(value(&m, &kind, &calls, "T2").await, "T1");
        assert_eq!(
            store.gets(),
            1,
            "{kind}: at the bound the store is read again"
        );
        assert_eq!(value(&m, &kind, &calls, "T2").await, "T1");
        assert_eq!(store.gets(), 0, "{kind}: and what it read is kept");
        clock.advance(Duration::from_secs(7200 - 300 - 10));
        assert_eq!(
            value(&m, &kind, &calls, "T2").await,
            "T2",
            "{kind}: the margin still refreshes"
        );
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        4,
        "one fetch and one refresh per kind"
    );
    let off = member(
        &clock,
        &store,
        TokenPolicy {
            local_max_age: Duration::ZERO,
            ..policy()
        },
    );
    store.gets();
    for _ in 0..3 {
        assert_eq!(
            value(&off, &TokenKind::JsapiTicket, &calls, "T3").await,
            "T2"
        );
    }
    assert_eq!(
        store.gets(),
        3,
        "zero max age: every read goes to the store"
    );
}

#[tokio::test]
async fn a_value_another_process_stored_is_seen_after_the_bound() {
    let clock = ManualClock::starting_now();
    let store = TestStore::new(&clock);
    let (a, b) = (
        member(&clock, &store, policy()),
        member(&clock, &store, policy()),
    );
    let calls = Arc::new(AtomicUsize::new(0));
    let kind = TokenKind::AccessToken;
    assert_eq!(value(&a, &kind, &calls, "T1").await, "T1");
    assert_eq!(
        value(&b, &kind, &calls, "X").await,
        "T1",
        "b reads a's token"
    );
    // Another process replaces the token (a stable force refresh, a fetch elsewhere).
    store
        .set(
            &a.key(&kind),
            StoredToken::new("T2", clock.now() + Duration::from_secs(7200)),
        )
        .await
        .expect("set");
    clock.advance(Duration::from_secs(9));
    assert_eq!(
        value(&b, &kind, &calls, "X").await,
        "T1",
        "inside the bound: the local copy"
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        value(&b, &kind, &calls, "X").await,
        "T2",
        "at the bound: the store's"
    );
    assert_eq!(value(&a, &kind, &calls, "X").await, "T2");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "only a fetched");
}

#[tokio::test]
async fn a_rejected_value_is_dropped_at_once_and_refetched_once() {
    let clock = ManualClock::starting_now();
    let store = TestStore::new(&clock);
    let (a, b) = (
        member(&clock, &store, policy()),
        member(&clock, &store, policy()),
    );
    let calls = Arc::new(AtomicUsize::new(0));
    for kind in [TokenKind::AccessToken, TokenKind::JsapiTicket] {
        calls.store(0, Ordering::SeqCst);
        assert_eq!(value(&a, &kind, &calls, "T1").await, "T1");
        assert_eq!(value(&b, &kind, &calls, "X").await, "T1");
        // 50 callers of `a` meet WeChat's rejection of T1 at once.
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..50 {
            let (a, calls, kind) = (a.clone(), calls.clone(), kind.clone());
            tasks.spawn(async move {
                let dropped = a.invalidate(&kind, "T1").await.expect("cad");
                (dropped, value(&a, &kind, &calls, "T2").await)
            });
        }
        let results = tasks.join_all().await;
        assert_eq!(
            results.iter().filter(|(dropped, _)| *dropped).count(),
            1,
            "{kind}: one CAD wins"
        );
        assert!(
            results.iter().all(|(_, v)| v == "T2"),
            "{kind}: nobody is served T1 again"
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "{kind}: one fetch, one refetch"
        );
        // `b` still holds T1 locally; its own rejection drops it without deleting T2.
        assert!(
            !b.invalidate(&kind, "T1").await.expect("cad"),
            "{kind}: T2 is not deleted"
        );
        assert_eq!(
            value(&b, &kind, &calls, "X").await,
            "T2",
            "{kind}: picked up at once"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2, "{kind}: no third fetch");
    }
}

#[tokio::test]
async fn a_refresh_by_this_process_replaces_the_copy_at_once() {
    let clock = ManualClock::starting_now();
    let store = TestStore::new(&clock);
    let m = member(&clock, &store, policy());
    let calls = Arc::new(AtomicUsize::new(0));
    let kind = TokenKind::StableAccessToken;
    assert_eq!(value(&m, &kind, &calls, "S1").await, "S1");
    let forced = m
        .refresh(&kind, counting(&calls, "S2", 7200))
        .await
        .expect("force");
    assert_eq!(forced.secret(), "S2");
    store.gets();
    assert_eq!(value(&m, &kind, &calls, "X").await, "S2");
    assert_eq!(store.gets(), 0, "served from the replaced local copy");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_consumer_serves_its_copy_until_expiry_and_never_fetches() {
    let clock = ManualClock::starting_now();
    let store = TestStore::new(&clock);
    let consumer = member(
        &clock,
        &store,
        TokenPolicy {
            consumer_only: true,
            ..policy()
        },
    );
    let calls = Arc::new(AtomicUsize::new(0));
    let kind = TokenKind::AccessToken;
    let empty = |why: &str| {
        let (consumer, calls, kind, why) = (
            consumer.clone(),
            calls.clone(),
            kind.clone(),
            why.to_owned(),
        );
        async move {
            let e = consumer
                .get(&kind, counting(&calls, "X", 7200))
                .await
                .expect_err(&why);
            assert!(
                matches!(e, Error::Refused(Refused::ConsumerStoreEmpty { .. })),
                "{why}: {e:?}"
            );
        }
    };
    let shared = |value: &'static str, secs: u64| {
        let (store, key) = (store.clone(), consumer.key(&kind));
        let expires_at = clock.now() + Duration::from_secs(secs);
        async move {
            store
                .set(&key, StoredToken::new(value, expires_at))
                .await
                .expect("set")
        }
    };
    empty("empty store").await;
    // The fetching process stored a token inside the margin: a consumer uses it.
    shared("SHARED", 15).await;
    assert_eq!(value(&consumer, &kind, &calls, "X").await, "SHARED");
    store.gets();
    assert_eq!(value(&consumer, &kind, &calls, "X").await, "SHARED");
    assert_eq!(store.gets(), 0, "served from the local copy");
    clock.advance(Duration::from_secs(9));
    store
        .inner
        .delete(&consumer.key(&kind))
        .await
        .expect("delete");
    let young = value(&consumer, &kind, &calls, "X").await;
    assert_eq!(young, "SHARED", "copy still young");
    clock.advance(Duration::from_secs(1));
    empty("past the bound the store is read: empty").await;
    shared("LAST", 5).await;
    assert_eq!(value(&consumer, &kind, &calls, "X").await, "LAST");
    clock.advance(Duration::from_secs(5));
    empty("an expired copy is never served, however young").await;
    assert_eq!(calls.load(Ordering::SeqCst), 0, "a consumer never fetches");
}
