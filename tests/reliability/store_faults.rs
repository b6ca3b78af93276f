//! The token store failing under the client: a real Redis killed and restarted mid-run, a user
//! store whose operations return errors, and one whose operations never return.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Deserialize;
use wx_core::test_util::MockTransport;
use wx_core::{
    AppSecret, Error, HttpResponse, ManualClock, MemoryTokenStore, Scope, StoreError, StoreOp,
    StoredToken, TokenKey, TokenStore,
};
use wx_official::{Endpoint, OfficialAccount};
use wx_redis::RedisTokenStore;
use wx_redis::test_util::RedisServer;
use wx_sandbox::{Sandbox, UserProfile, paths};

use crate::common::{APPID, SECRET, Secrets, capture_logs, error_texts, log_bytes, report};

const REDIS_PASSWORD: &str = "redis-password-reliability-5d1c";
const OPERATION_TIMEOUT: Duration = Duration::from_millis(300);

#[derive(Debug, Deserialize)]
struct IpList {
    #[allow(dead_code)] // Decoding it is the point.
    ip_list: Vec<String>,
}

fn domain_ip() -> Endpoint {
    Endpoint::get(paths::API_DOMAIN_IP)
}

struct Outcome {
    started: Instant,
    finished: Instant,
    result: Result<(), Error>,
}

/// Blocks this worker thread (Redis starts and stops synchronously) without stalling the
/// runtime's other tasks.
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    tokio::task::block_in_place(f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_mid_run() {
    capture_logs();
    let mut redis = blocking(|| RedisServer::builder().password(REDIS_PASSWORD).start());
    let store = RedisTokenStore::builder()
        .operation_timeout(OPERATION_TIMEOUT)
        .connect(&redis.url())
        .await
        .expect("connect to redis-server");
    let clock = ManualClock::starting_now();
    let sandbox = Sandbox::builder()
        .app(APPID, SECRET)
        .user(APPID, UserProfile::new("o-store-user"))
        .clock(clock.clone())
        .build()
        .expect("valid sandbox");
    // Every call reads Redis: the process-local token copy is off. (With it on, and this
    // clock standing still, the copy would serve the whole outage; tests/fleet/redis_restart.rs
    // covers the copy's age bound under an outage.)
    let client = OfficialAccount::builder(APPID, AppSecret::new(SECRET))
        .clock(Arc::new(clock.clone()))
        .key_prefix("wx-reliability")
        .local_token_max_age(Duration::ZERO)
        .build(sandbox.clone(), store)
        .expect("valid client");
    let first = client.access_token().await.expect("Redis is up");

    // Eight callers all along: up, killed, restarted.
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let (client, stop) = (client.clone(), stop.clone());
        tasks.spawn(async move {
            let mut outcomes = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let started = Instant::now();
                let result = if i % 2 == 0 {
                    client.access_token().await.map(drop)
                } else {
                    client
                        .call_with_token::<IpList>(domain_ip())
                        .await
                        .map(drop)
                };
                outcomes.push(Outcome {
                    started,
                    finished: Instant::now(),
                    result,
                });
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            outcomes
        });
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let killed = Instant::now();
    blocking(|| redis.stop());
    tokio::time::sleep(Duration::from_millis(400)).await;
    // The web login needs no store: it keeps working while Redis is down.
    let code = sandbox
        .issue_code(APPID, "o-store-user", Scope::Base)
        .expect("user");
    let login = client
        .exchange_code(&code)
        .await
        .expect("OAuth does not need the store");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let tokens_while_down = sandbox.count(paths::TOKEN);
    let restarted_at = Instant::now();
    blocking(|| redis.restart());
    let restarted = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::SeqCst);
    let mut outcomes = Vec::new();
    while let Some(done) = tasks.join_next().await {
        outcomes.extend(done.expect("no caller panicked"));
    }

    // Before the kill: all good. While down: only typed store errors, fast, no token fetched.
    // After the restart: the same client recovers by itself.
    let mut errors = Vec::new();
    let (mut before, mut down, mut after, mut recovered_at) = (0, 0, 0, None::<Duration>);
    let mut slowest_error = Duration::ZERO;
    for o in &outcomes {
        let took = o.finished - o.started;
        if o.finished < killed {
            assert!(o.result.is_ok(), "{:?}", o.result);
            before += 1;
        }
        if o.started > killed + Duration::from_millis(50) && o.finished < restarted_at {
            assert!(o.result.is_err(), "a call succeeded without the store");
            down += 1;
        }
        if let Err(e) = &o.result {
            match e {
                Error::Store(s) => assert!(
                    matches!(s.op(), StoreOp::Get | StoreOp::AcquireLease),
                    "{e:?}"
                ),
                other => panic!("not a store error: {other:?}"),
            }
            assert!(
                e.to_string().starts_with("token store ") && e.to_string().ends_with(" failed"),
                "{e}"
            );
            assert!(took < OPERATION_TIMEOUT * 3, "a store error after {took:?}");
            slowest_error = slowest_error.max(took);
            errors.push(e);
        } else if o.started > restarted {
            after += 1;
            recovered_at = recovered_at.or(Some(o.finished - restarted));
        }
    }
    assert!(
        before > 8 && down > 8 && after > 8,
        "{before} {down} {after}"
    );
    // The last call of every caller succeeded.
    assert!(
        outcomes
            .iter()
            .filter(|o| o.started > restarted + Duration::from_millis(1000))
            .all(|o| o.result.is_ok()),
        "calls still fail a second after Redis is back"
    );
    assert_eq!(
        tokens_while_down, 1,
        "no token was fetched while Redis was down"
    );
    // The restarted Redis is empty: exactly one fetch for the whole client, under the lease.
    assert_eq!(sandbox.count(paths::TOKEN), 2);

    let mut secrets = Secrets::default();
    secrets.add("AppSecret", SECRET);
    secrets.add("Redis password", REDIS_PASSWORD);
    secrets.add("access token", first.secret());
    if let Some(t) = sandbox.current_token(APPID) {
        secrets.add("access token", t.secret());
    }
    secrets.add("web token", login.access_token.secret());
    secrets.add("refresh token", login.refresh_token.secret());
    for e in &errors {
        secrets.assert_absent("a store error", error_texts(*e).as_bytes());
    }
    let logs = log_bytes();
    secrets.assert_absent("the TRACE logs", &logs);
    report(
        "store: redis killed and restarted",
        &format!(
            "calls: {} ({before} before the kill, {down} while down, {after} after the restart)\n\
             store errors: {} (slowest {slowest_error:?}); first success {:?} after redis answered again\n\
             token requests: {} (1 before, 0 while down, 1 after: the restarted Redis was empty)\n",
            outcomes.len(),
            errors.len(),
            recovered_at.unwrap_or_default(),
            sandbox.count(paths::TOKEN),
        ),
    );
}

/// Which operations of a [`FaultyStore`] fail, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Fail,
    Hang,
}

/// A user's store: a memory store whose listed operations return an error, or never return.
#[derive(Default)]
struct FaultyStore {
    inner: MemoryTokenStore,
    faults: Mutex<Vec<(StoreOp, Mode)>>,
}

impl FaultyStore {
    fn inject(&self, faults: &[(StoreOp, Mode)]) {
        *self.faults.lock().unwrap_or_else(PoisonError::into_inner) = faults.to_vec();
    }

    async fn check(&self, op: StoreOp) -> Result<(), StoreError> {
        let mode = self
            .faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|(o, _)| *o == op)
            .map(|(_, m)| *m);
        match mode {
            Some(Mode::Fail) => Err(StoreError::new(op, "backend unavailable")),
            // Like a connection to a blackholed host, with no timeout of its own.
            Some(Mode::Hang) => std::future::pending().await,
            None => Ok(()),
        }
    }
}

#[async_trait]
impl TokenStore for FaultyStore {
    async fn get(&self, key: &TokenKey) -> Result<Option<StoredToken>, StoreError> {
        self.check(StoreOp::Get).await?;
        self.inner.get(key).await
    }
    async fn set(&self, key: &TokenKey, token: StoredToken) -> Result<(), StoreError> {
        self.check(StoreOp::Set).await?;
        self.inner.set(key, token).await
    }
    async fn delete(&self, key: &TokenKey) -> Result<(), StoreError> {
        self.check(StoreOp::Delete).await?;
        self.inner.delete(key).await
    }
    async fn compare_and_delete(&self, key: &TokenKey, expected: &str) -> Result<bool, StoreError> {
        self.check(StoreOp::CompareAndDelete).await?;
        self.inner.compare_and_delete(key, expected).await
    }
    async fn try_acquire_lease(
        &self,
        key: &TokenKey,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        self.check(StoreOp::AcquireLease).await?;
        self.inner.try_acquire_lease(key, owner, ttl).await
    }
    async fn release_lease(&self, key: &TokenKey, owner: &str) -> Result<(), StoreError> {
        self.check(StoreOp::ReleaseLease).await?;
        self.inner.release_lease(key, owner).await
    }
}

const TOKEN_A: &str = "BASE-TOKEN-reliability-aaaaaaaa";
const TOKEN_B: &str = "BASE-TOKEN-reliability-bbbbbbbb";

fn token_body(token: &str) -> HttpResponse {
    HttpResponse::json(format!(r#"{{"access_token":"{token}","expires_in":7200}}"#))
}

struct Faulty {
    client: OfficialAccount<MockTransport, Arc<FaultyStore>>,
    mock: MockTransport,
    store: Arc<FaultyStore>,
}

fn faulty(deadline: Duration) -> Faulty {
    let mock = MockTransport::new();
    let store = Arc::new(FaultyStore::default());
    let client = OfficialAccount::builder(APPID, AppSecret::new(SECRET))
        .request_deadline(deadline)
        .build(mock.clone(), store.clone())
        .expect("valid client");
    Faulty {
        client,
        mock,
        store,
    }
}

fn assert_store_error(e: &Error, op: StoreOp) {
    assert!(matches!(e, Error::Store(s) if s.op() == op), "{e:?}");
    assert_eq!(e.to_string(), format!("token store {op} failed"));
    assert_eq!(e.retry_hint(), wx_core::RetryHint::Never);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_returning_errors_gives_typed_errors_naming_the_operation() {
    capture_logs();
    let mut errors = Vec::new();

    // Reads and leases that fail: a typed error and no token request (failing closed).
    for op in [StoreOp::Get, StoreOp::AcquireLease] {
        let f = faulty(Duration::from_secs(5));
        f.store.inject(&[(op, Mode::Fail)]);
        let e = f.client.access_token().await.expect_err("store fails");
        assert_store_error(&e, op);
        errors.push(e);
        let e = f
            .client
            .call_with_token::<IpList>(domain_ip())
            .await
            .expect_err("store fails");
        assert_store_error(&e, op);
        errors.push(e);
        let e = f.client.jsapi_ticket().await.expect_err("store fails");
        assert_store_error(&e, op);
        errors.push(e);
        assert_eq!(f.mock.total(), 0, "no request while the store fails ({op})");
        // The same client works once the store does.
        f.store.inject(&[]);
        f.mock.push_for(paths::TOKEN, token_body(TOKEN_A));
        assert_eq!(
            f.client.access_token().await.expect("store back").secret(),
            TOKEN_A
        );
    }

    // A write that fails after the fetch: the token is still handed out (the quota is spent
    // and the token valid), and the failure is logged.
    let f = faulty(Duration::from_secs(5));
    f.store.inject(&[
        (StoreOp::Set, Mode::Fail),
        (StoreOp::ReleaseLease, Mode::Fail),
    ]);
    f.mock.push_for(paths::TOKEN, token_body(TOKEN_A));
    assert_eq!(
        f.client.access_token().await.expect("fetched").secret(),
        TOKEN_A
    );
    assert_eq!(f.mock.count(paths::TOKEN), 1);

    // Dropping a rejected token fails: the call ends with that store error, not a loop.
    let f = faulty(Duration::from_secs(5));
    f.mock.push_for(paths::TOKEN, token_body(TOKEN_A));
    f.mock.push_for(paths::TOKEN, token_body(TOKEN_B));
    f.mock.push_for(
        paths::API_DOMAIN_IP,
        HttpResponse::json(r#"{"errcode":40001,"errmsg":"invalid credential rid: r1"}"#),
    );
    f.client.access_token().await.expect("store works");
    f.store.inject(&[(StoreOp::CompareAndDelete, Mode::Fail)]);
    let e = f
        .client
        .call_with_token::<IpList>(domain_ip())
        .await
        .expect_err("cannot drop the rejected token");
    assert_store_error(&e, StoreOp::CompareAndDelete);
    errors.push(e);
    assert_eq!(f.mock.count(paths::TOKEN), 1, "no refetch without the drop");
    assert_eq!(f.mock.count(paths::API_DOMAIN_IP), 1);

    let mut secrets = Secrets::default();
    for s in [SECRET, TOKEN_A, TOKEN_B] {
        secrets.add("secret", s);
    }
    for e in &errors {
        secrets.assert_absent("a store error", error_texts(e).as_bytes());
    }
    let logs = log_bytes();
    let text = String::from_utf8_lossy(&logs);
    assert!(
        text.contains("could not store it"),
        "the failed write is logged"
    );
    assert!(
        text.contains("could not release the refresh lease"),
        "the failed release is logged"
    );
    secrets.assert_absent("the TRACE logs", &logs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_never_answers_is_cut_off_by_the_deadline() {
    capture_logs();
    const DEADLINE: Duration = Duration::from_millis(300);
    const SLACK: Duration = Duration::from_millis(200);
    let mut figures = String::new();
    let mut wedged = Vec::new();
    // `operations`: the deadline may be the call's own or, within a millisecond of it, that of
    // the `call_with_token` inside the ticket's refresh. The client bounds each store operation
    // by its store timeout, which defaults to the request deadline when that is shorter than
    // 5 s: the two fire together, so the typed error is either the deadline or the store error
    // naming the operation that hung. A caller that joins a refresh just as its store operation
    // times out shares that refresh's error at once, so only a deadline has a lower bound.
    let cut_off = |what: &str, took: Duration, e: &Error, operations: &[&str], hung: StoreOp| {
        let deadline = matches!(e, Error::Deadline { operation: op, deadline } if operations.contains(op) && *deadline == DEADLINE);
        let store_timeout = matches!(e, Error::Store(s) if s.op() == hung && s.to_string().contains(&hung.to_string()));
        assert!(deadline || store_timeout, "{what}: {e:?}");
        assert!(
            (store_timeout || took >= DEADLINE) && took <= DEADLINE + SLACK,
            "{what}: gave up after {took:?}"
        );
        format!("{what}: {e} after {took:?}\n")
    };

    // Each store operation on the way to a token, hanging in turn. While it hangs, calls give
    // up at their deadline; once the store answers again, the same client must work.
    for op in [StoreOp::Get, StoreOp::AcquireLease, StoreOp::Set] {
        let f = faulty(DEADLINE);
        f.mock.always(paths::TOKEN, token_body(TOKEN_A));
        f.mock.always(
            paths::API_DOMAIN_IP,
            HttpResponse::json(r#"{"ip_list":["127.0.0.1"]}"#),
        );
        // Reached only when a hung `set` lets the fetched base token through (below).
        f.mock.always(
            paths::TICKET,
            HttpResponse::json(
                r#"{"errcode":0,"errmsg":"ok","ticket":"TICKET-reliability-hang-eeee","expires_in":7200}"#,
            ),
        );
        f.store.inject(&[(op, Mode::Hang)]);
        // A hung `set` is a failed write: the client hands the token it fetched to its callers
        // (documented in wx-official's token module), so those calls may succeed; every other
        // outcome must be a typed error within the deadline.
        let judge =
            |what: String, took: Duration, r: Result<(), Error>, operations: &[&str]| match r {
                Ok(()) if op == StoreOp::Set && took <= DEADLINE + SLACK => {
                    format!("{what}: served the fetched value it could not store, after {took:?}\n")
                }
                Ok(()) => panic!("{what}: succeeded while the store hangs (after {took:?})"),
                Err(e) => cut_off(&what, took, &e, operations, op),
            };
        for _ in 0..2 {
            let started = Instant::now();
            let r = f.client.access_token().await.map(drop);
            figures += &judge(
                format!("access_token, {op} hangs"),
                started.elapsed(),
                r,
                &["access_token"],
            );
            let started = Instant::now();
            let r = f
                .client
                .call_with_token::<IpList>(domain_ip())
                .await
                .map(drop);
            figures += &judge(
                format!("call_with_token, {op} hangs"),
                started.elapsed(),
                r,
                &["cgi-bin/get_api_domain_ip"],
            );
            let started = Instant::now();
            let r = f.client.jsapi_ticket().await.map(drop);
            figures += &judge(
                format!("jsapi_ticket, {op} hangs"),
                started.elapsed(),
                r,
                &["jsapi_ticket", "cgi-bin/ticket/getticket"],
            );
        }
        // The OAuth calls do not touch the store.
        f.mock.push_for(
            paths::CODE_EXCHANGE,
            HttpResponse::json(
                r#"{"access_token":"WEB-TOKEN-reliability-cccc","expires_in":7200,
                    "refresh_token":"REFRESH-TOKEN-reliability-dddd","openid":"o1","scope":"snsapi_base"}"#,
            ),
        );
        f.client
            .exchange_code("CODE")
            .await
            .expect("OAuth does not need the store");

        // The hung operation never returns, but new ones are answered again.
        f.store.inject(&[]);
        let started = Instant::now();
        match f.client.access_token().await {
            Ok(_) => {
                figures += &format!(
                    "{op} answers again: access_token ok after {:?}\n",
                    started.elapsed()
                );
            }
            Err(e) => wedged.push(format!(
                "{op} hung once; the store answers again, yet access_token fails after {:?}: {e:?}",
                started.elapsed()
            )),
        }
    }
    assert!(
        wedged.is_empty(),
        "a store operation that never returned left the client unusable:\n{}",
        wedged.join("\n")
    );
    report("store: hanging operations", &figures);
}
