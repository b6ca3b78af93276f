//! Shared set-up: a client on the recording mock transport, the manual clock and the memory
//! store, plus fixtures and the secret-leak check.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use wx_core::test_util::MockTransport;
use wx_core::{AppSecret, Error, HttpRequest, ManualClock, MemoryTokenStore, SharedClock};
use wx_official::{Builder, OfficialAccount, RetryPolicy};
use wx_sandbox::{Sandbox, UserProfile};

pub(crate) const APPID: &str = "wx1234567890abcdef";
/// Distinctive values, so a leak is found by a plain substring search.
pub(crate) const SECRET: &str = "S3CR3T-app-secret-0123456789";
pub(crate) const TOKEN_1: &str = "AT-SECRET-one-111";
pub(crate) const TOKEN_2: &str = "AT-SECRET-two-222";
pub(crate) const TOKEN_PATH: &str = "/cgi-bin/token";
pub(crate) const STABLE_PATH: &str = "/cgi-bin/stable_token";

pub(crate) type Client = OfficialAccount<MockTransport, MemoryTokenStore>;

pub(crate) struct Setup {
    pub(crate) client: Client,
    pub(crate) mock: MockTransport,
    pub(crate) clock: ManualClock,
    pub(crate) store: MemoryTokenStore,
}

/// Retries as the default policy does, but with millisecond delays.
pub(crate) fn fast_retry() -> RetryPolicy {
    RetryPolicy::default().with_backoff(Duration::from_millis(1), Duration::from_millis(4))
}

pub(crate) fn builder(clock: &ManualClock) -> Builder {
    let shared: SharedClock = Arc::new(clock.clone());
    OfficialAccount::builder(APPID, AppSecret::new(SECRET))
        .clock(shared)
        .retry_policy(fast_retry())
}

pub(crate) fn setup() -> Setup {
    setup_with(|b| b)
}

pub(crate) fn setup_with(options: impl FnOnce(Builder) -> Builder) -> Setup {
    let clock = ManualClock::starting_now();
    let store = MemoryTokenStore::with_clock(Arc::new(clock.clone()));
    let mock = MockTransport::new();
    let client = options(builder(&clock))
        .build(mock.clone(), store.clone())
        .expect("valid options");
    Setup {
        client,
        mock,
        clock,
        store,
    }
}

pub(crate) fn fixture(name: &str) -> Vec<u8> {
    // The workspace's one copy of the shared fixtures.
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "..",
        "tests",
        "fixtures",
        name,
    ]
    .iter()
    .collect();
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

pub(crate) fn token_body(token: &str, expires_in: u64) -> String {
    format!(r#"{{"access_token":"{token}","expires_in":{expires_in}}}"#)
}

/// A WeChat error body with the request-id suffix real answers carry.
pub(crate) fn err_body(code: i64, msg: &str) -> String {
    format!(r#"{{"errcode":{code},"errmsg":"{msg} rid: 6613a1b2-4c5d6e7f-12345678"}}"#)
}

pub(crate) fn api_code(e: &Error) -> Option<i64> {
    e.api().map(|a| a.code.0)
}

/// The decoded query of a recorded request, in order.
pub(crate) fn query(r: &HttpRequest) -> Vec<(String, String)> {
    r.query_pairs()
}

pub(crate) fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Panics if any of `secrets` (and always the AppSecret) appears in any text of `e`.
pub(crate) fn assert_no_secrets(e: &Error, secrets: &[&str]) {
    let all: Vec<&str> = std::iter::once(SECRET)
        .chain(secrets.iter().copied())
        .collect();
    wx_core::test_util::assert_no_secret(wx_core::test_util::error_texts(e), &all);
}

/// The users registered with the sandbox app.
pub(crate) const ALICE: &str = "o-alice-0123456789abcdefghij";
pub(crate) const BOB: &str = "o-bob-0123456789abcdefghijkl";

pub(crate) type SandboxClient = OfficialAccount<Sandbox, MemoryTokenStore>;

/// A client on the in-process sandbox (the simulated WeChat), sharing the sandbox's clock.
pub(crate) struct SandboxSetup {
    pub(crate) client: SandboxClient,
    pub(crate) sandbox: Sandbox,
    pub(crate) store: MemoryTokenStore,
}

pub(crate) fn sandbox() -> Sandbox {
    Sandbox::builder()
        .app(APPID, SECRET)
        .user(
            APPID,
            UserProfile::new(ALICE).nickname("Alice").unionid("u-alice"),
        )
        .user(APPID, UserProfile::new(BOB).nickname("Bob"))
        .build()
        .expect("valid sandbox set-up")
}

/// A client builder on the sandbox's clock.
pub(crate) fn sandbox_builder(sandbox: &Sandbox) -> Builder {
    builder(sandbox.clock())
}

pub(crate) fn sandbox_setup_with(options: impl FnOnce(Builder) -> Builder) -> SandboxSetup {
    let sandbox = sandbox();
    let store = MemoryTokenStore::with_clock(Arc::new(sandbox.clock().clone()));
    let client = options(sandbox_builder(&sandbox))
        .build(sandbox.clone(), store.clone())
        .expect("valid options");
    SandboxSetup {
        client,
        sandbox,
        store,
    }
}

/// A store whose lease requests take `delay` to be granted (a slow network between the two
/// commands of a refresh: its read and its lease request).
pub(crate) struct SlowLease<S> {
    pub(crate) inner: S,
    pub(crate) delay: Duration,
}

#[async_trait::async_trait]
impl<S: wx_core::TokenStore> wx_core::TokenStore for SlowLease<S> {
    async fn get(
        &self,
        key: &wx_core::TokenKey,
    ) -> Result<Option<wx_core::StoredToken>, wx_core::StoreError> {
        self.inner.get(key).await
    }
    async fn set(
        &self,
        key: &wx_core::TokenKey,
        token: wx_core::StoredToken,
    ) -> Result<(), wx_core::StoreError> {
        self.inner.set(key, token).await
    }
    async fn delete(&self, key: &wx_core::TokenKey) -> Result<(), wx_core::StoreError> {
        self.inner.delete(key).await
    }
    async fn compare_and_delete(
        &self,
        key: &wx_core::TokenKey,
        expected: &str,
    ) -> Result<bool, wx_core::StoreError> {
        self.inner.compare_and_delete(key, expected).await
    }
    async fn try_acquire_lease(
        &self,
        key: &wx_core::TokenKey,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, wx_core::StoreError> {
        tokio::time::sleep(self.delay).await;
        self.inner.try_acquire_lease(key, owner, ttl).await
    }
    async fn release_lease(
        &self,
        key: &wx_core::TokenKey,
        owner: &str,
    ) -> Result<(), wx_core::StoreError> {
        self.inner.release_lease(key, owner).await
    }
}

/// Every item of the paged list `first` starts, through the client's stream.
pub(crate) async fn walk<T, S, R>(client: &OfficialAccount<T, S>, first: R) -> Vec<R::Item>
where
    T: wx_core::HttpTransport + 'static,
    S: wx_core::TokenStore + 'static,
    R: wx_official::paging::Paged,
    R::Response: Send,
{
    use futures::TryStreamExt as _;
    client
        .items(first)
        .try_collect()
        .await
        .expect("the list walks")
}
