//! Test doubles (feature `test-util`): the tools we test with, for users' own tests.
//!
//! - [`MockTransport`]: replays canned responses and records every request.
//! - [`transport_fn`]: a transport from a closure.
//! - [`ManualClock`]: time that moves only when told.
//! - [`token_store_conformance`]: one function that checks any [`TokenStore`].
//! - [`ExpectedRequest`] + [`MockTransport::assert_requests`]: expected requests as data,
//!   compared in one call; [`NeverAnswers`]: a transport that never answers.
//! - [`CapturedLogs`], [`error_texts`], [`assert_no_secret`]: the redaction checks.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};

use crate::error::{TransportError, TransportErrorKind};
use crate::id::AppId;
use crate::store::{StoredToken, TokenKey, TokenKind, TokenStore};
use crate::transport::{HttpRequest, HttpResponse, HttpTransport};

pub use crate::clock::ManualClock;
pub use expect::{ExpectedRequest, NeverAnswers};
pub use logs::{CapturedLogs, assert_no_secret, error_texts};

mod expect;
mod logs;
pub use crate::transport::transport_fn;

/// One canned answer: a response or a transport failure.
#[derive(Debug)]
enum Canned {
    Response(HttpResponse),
    Error(TransportErrorKind),
}

impl Canned {
    /// The canned answer, capped like a real transport caps it: a body over the request's
    /// [`response_limit`](HttpRequest::response_limit) is a `BodyTooLarge` error.
    fn produce(&self, limit: Option<usize>) -> Result<HttpResponse, TransportError> {
        match self {
            Canned::Response(r) if limit.is_some_and(|l| r.body.len() > l) => {
                Err(TransportError::from_kind(TransportErrorKind::BodyTooLarge))
            }
            Canned::Response(r) => Ok(r.clone()),
            Canned::Error(kind) => Err(TransportError::from_kind(*kind)),
        }
    }
}

#[derive(Default)]
struct MockState {
    queue: VecDeque<Canned>,
    by_path: HashMap<String, VecDeque<Canned>>,
    always: HashMap<String, Canned>,
    requests: Vec<HttpRequest>,
}

/// A transport that answers from canned responses and records every request it is sent.
///
/// Answers are chosen in this order: the next one queued for the request's path
/// ([`push_for`](Self::push_for)), the next one in the global queue ([`push`](Self::push)),
/// the standing answer for the path ([`always`](Self::always)). With none left, the request
/// fails with a transport error of kind `Other` (and is still recorded), so a test sees an
/// unexpected request rather than hanging. Clones share the same state.
///
/// A canned body larger than the request's
/// [`response_limit`](HttpRequest::response_limit) fails with `BodyTooLarge`, as a real
/// transport's cap would. Uploads are recorded as sent: read their parts with [`form_parts`].
///
/// ```
/// # tokio_test_block(async {
/// use wx_core::test_util::MockTransport;
/// use wx_core::{HttpRequest, HttpTransport};
/// let mock = MockTransport::new();
/// mock.push_json(r#"{"access_token":"T","expires_in":7200}"#);
/// let resp = mock.send(HttpRequest::get("https://api.weixin.qq.com/cgi-bin/token?appid=a")).await.unwrap();
/// assert_eq!(resp.status, 200);
/// assert_eq!(mock.requests()[0].path(), "/cgi-bin/token");
/// # });
/// # fn tokio_test_block(f: impl std::future::Future<Output = ()>) {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Clone, Default)]
pub struct MockTransport {
    state: Arc<Mutex<MockState>>,
}

impl MockTransport {
    /// A mock with nothing queued.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MockState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `response` for the next request, whatever its path.
    pub fn push(&self, response: HttpResponse) -> &Self {
        self.lock().queue.push_back(Canned::Response(response));
        self
    }

    /// Queues a 200 response with a JSON `body`.
    pub fn push_json(&self, body: impl Into<Bytes>) -> &Self {
        self.push(HttpResponse::json(body))
    }

    /// Queues a transport failure of `kind`.
    pub fn push_error(&self, kind: TransportErrorKind) -> &Self {
        self.lock().queue.push_back(Canned::Error(kind));
        self
    }

    /// Queues `response` for the next request to `path` (e.g. `/cgi-bin/token`).
    pub fn push_for(&self, path: &str, response: HttpResponse) -> &Self {
        self.lock()
            .by_path
            .entry(path.to_owned())
            .or_default()
            .push_back(Canned::Response(response));
        self
    }

    /// Queues a transport failure for the next request to `path`.
    pub fn push_error_for(&self, path: &str, kind: TransportErrorKind) -> &Self {
        self.lock()
            .by_path
            .entry(path.to_owned())
            .or_default()
            .push_back(Canned::Error(kind));
        self
    }

    /// Answers every request to `path` with `response` once its queues are empty.
    pub fn always(&self, path: &str, response: HttpResponse) -> &Self {
        self.lock()
            .always
            .insert(path.to_owned(), Canned::Response(response));
        self
    }

    /// Every request sent so far, in order.
    #[must_use]
    pub fn requests(&self) -> Vec<HttpRequest> {
        self.lock().requests.clone()
    }

    /// The requests sent so far to `path`.
    #[must_use]
    pub fn requests_to(&self, path: &str) -> Vec<HttpRequest> {
        self.lock()
            .requests
            .iter()
            .filter(|r| r.path() == path)
            .cloned()
            .collect()
    }

    /// How many requests were sent to `path`.
    #[must_use]
    pub fn count(&self, path: &str) -> usize {
        self.lock()
            .requests
            .iter()
            .filter(|r| r.path() == path)
            .count()
    }

    /// How many requests were sent in all.
    #[must_use]
    pub fn total(&self) -> usize {
        self.lock().requests.len()
    }

    /// Answers not used yet (queued, global and per path).
    #[must_use]
    pub fn pending(&self) -> usize {
        let s = self.lock();
        s.queue.len() + s.by_path.values().map(VecDeque::len).sum::<usize>()
    }
}

impl fmt::Debug for MockTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("MockTransport")
            .field("requests", &s.requests.len())
            .field("queued", &s.queue.len())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl HttpTransport for MockTransport {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let mut s = self.lock();
        let path = request.path().to_owned();
        let limit = request.response_limit;
        s.requests.push(request);
        if let Some(c) = s.by_path.get_mut(&path).and_then(VecDeque::pop_front) {
            return c.produce(limit);
        }
        if let Some(c) = s.queue.pop_front() {
            return c.produce(limit);
        }
        match s.always.get(&path) {
            Some(c) => c.produce(limit),
            None => Err(TransportError::new(
                TransportErrorKind::Other,
                format!("MockTransport: no canned response for {path}"),
            )),
        }
    }
}

/// A response with any status and body, for queuing into [`MockTransport`].
#[must_use]
pub fn response(status: u16, body: impl Into<Bytes>) -> HttpResponse {
    HttpResponse {
        status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        headers: HeaderMap::new(),
        body: body.into(),
    }
}

/// One part of a `multipart/form-data` body, as a server reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FormPart {
    /// The field name.
    pub name: String,
    /// The filename, for a file part.
    pub filename: Option<String>,
    /// The part's `Content-Type`, if it has one.
    pub content_type: Option<String>,
    /// The part's bytes.
    pub bytes: Bytes,
}

impl FormPart {
    /// The bytes as UTF-8 text, if they are.
    #[must_use]
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.bytes).ok()
    }
}

/// The parts of a `multipart/form-data` request (a recorded upload), parsed by the `multer`
/// crate (an implementation independent of the encoder), in order.
///
/// # Errors
/// When the request has no multipart `Content-Type` with a boundary, no body, or a body that
/// is not well-formed multipart.
pub fn form_parts(request: &HttpRequest) -> Result<Vec<FormPart>, crate::BoxError> {
    use futures_util::FutureExt as _;
    let content_type = request
        .content_type()
        .ok_or("the request has no text Content-Type")?;
    if !content_type
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        return Err("the request is not multipart/form-data".into());
    }
    let boundary = multer::parse_boundary(content_type)?;
    let body = request.body.clone().ok_or("the request has no body")?;
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let parse = async move {
        let mut parts = Vec::new();
        while let Some(field) = multipart.next_field().await? {
            let name = field.name().unwrap_or_default().to_owned();
            let filename = field.file_name().map(str::to_owned);
            let content_type = field.content_type().map(ToString::to_string);
            let bytes = field.bytes().await?;
            parts.push(FormPart {
                name,
                filename,
                content_type,
                bytes,
            });
        }
        Ok::<_, multer::Error>(parts)
    };
    // The body is in memory: the parser never waits.
    match parse.now_or_never() {
        Some(parts) => Ok(parts?),
        None => Err("the multipart parser did not complete".into()),
    }
}

/// Whether a recorded request is a `method` to `path`.
#[must_use]
pub fn is_request(r: &HttpRequest, method: &Method, path: &str) -> bool {
    r.method == *method && r.path() == path
}

/// What [`token_store_conformance`] expects of the store.
#[derive(Clone, Copy, Debug)]
pub struct ConformanceOptions {
    /// The store's leases are exclusive (one owner at a time, until released or expired), as a
    /// store shared by several processes must provide. Stores that keep the single-process
    /// default lease methods set this to `false`.
    pub exclusive_leases: bool,
}

impl Default for ConformanceOptions {
    fn default() -> Self {
        ConformanceOptions {
            exclusive_leases: true,
        }
    }
}

/// Checks that `store` keeps the [`TokenStore`] contract: values round-trip with their expiry,
/// keys are scoped by prefix, AppID and kind, expired values are never returned, delete and
/// compare-and-delete behave (also under 100 concurrent callers), and leases are exclusive
/// when `options.exclusive_leases`. It uses fresh random AppIDs, so it can run against a
/// shared backend. It runs in about two seconds of real time (expiry is checked for real,
/// because a store such as Redis expires values on its own clock).
///
/// # Panics
/// On the first broken rule, with a message that says which.
pub async fn token_store_conformance<S: TokenStore + 'static>(
    store: Arc<S>,
    options: ConformanceOptions,
) {
    let run = format!("conf{}", rand::random::<u64>());
    let key = |app: &str, kind: TokenKind| {
        TokenKey::new("wxtest", AppId::new(format!("{run}{app}")), kind)
    };
    let later = |secs: u64| SystemTime::now() + Duration::from_secs(secs);
    let value = |t: Option<StoredToken>| t.map(|t| t.secret().to_owned());
    let k = key("a", TokenKind::AccessToken);

    // get / set / overwrite / delete
    assert!(
        store.get(&k).await.expect("get on an empty key").is_none(),
        "get of a missing key returned a value"
    );
    let exp = later(3600);
    store
        .set(&k, StoredToken::new("v1", exp))
        .await
        .expect("set");
    let got = store
        .get(&k)
        .await
        .expect("get")
        .expect("a value just set is missing");
    assert_eq!(
        got.secret(),
        "v1",
        "get returned another value than was set"
    );
    let drift = got
        .expires_at
        .duration_since(exp)
        .or_else(|e| Ok::<_, ()>(e.duration()))
        .unwrap_or_default();
    assert!(
        drift <= Duration::from_millis(1),
        "expires_at did not round-trip (drift {drift:?})"
    );
    store
        .set(&k, StoredToken::new("v2", later(3600)))
        .await
        .expect("overwrite");
    assert_eq!(
        value(store.get(&k).await.expect("get")).as_deref(),
        Some("v2"),
        "set did not replace the value"
    );

    // scoping
    let other_kind = k.with_kind(TokenKind::JsapiTicket);
    let other_app = key("b", TokenKind::AccessToken);
    let other_prefix = TokenKey::new("wxtest2", k.appid().clone(), TokenKind::AccessToken);
    for (name, other) in [
        ("kind", &other_kind),
        ("appid", &other_app),
        ("prefix", &other_prefix),
    ] {
        assert!(
            store.get(other).await.expect("get").is_none(),
            "keys differing only in {name} collide"
        );
    }
    store
        .set(&other_kind, StoredToken::new("ticket", later(3600)))
        .await
        .expect("set");
    assert_eq!(
        value(store.get(&k).await.expect("get")).as_deref(),
        Some("v2"),
        "a write to another kind changed this key"
    );

    store.delete(&k).await.expect("delete");
    assert!(
        store.get(&k).await.expect("get").is_none(),
        "delete left the value"
    );
    store
        .delete(&k)
        .await
        .expect("delete of a missing key must succeed");
    assert_eq!(
        value(store.get(&other_kind).await.expect("get")).as_deref(),
        Some("ticket"),
        "delete removed another key"
    );
    store.delete(&other_kind).await.expect("delete");

    // expiry
    let short = key("exp", TokenKind::AccessToken);
    store
        .set(
            &short,
            StoredToken::new("short", SystemTime::now() + Duration::from_millis(400)),
        )
        .await
        .expect("set");
    assert_eq!(
        value(store.get(&short).await.expect("get")).as_deref(),
        Some("short"),
        "an unexpired value is missing"
    );
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert!(
        store.get(&short).await.expect("get").is_none(),
        "an expired value was returned"
    );
    let past = key("past", TokenKind::AccessToken);
    let _ = store
        .set(
            &past,
            StoredToken::new("old", SystemTime::now() - Duration::from_secs(1)),
        )
        .await;
    assert!(
        store.get(&past).await.expect("get").is_none(),
        "a value set already expired was returned"
    );

    // compare-and-delete
    let c = key("cad", TokenKind::AccessToken);
    assert!(
        !store
            .compare_and_delete(&c, "x")
            .await
            .expect("cad on missing"),
        "compare_and_delete of a missing key said it deleted"
    );
    store
        .set(&c, StoredToken::new("A", later(3600)))
        .await
        .expect("set");
    assert!(
        !store.compare_and_delete(&c, "B").await.expect("cad"),
        "compare_and_delete deleted a different value"
    );
    assert_eq!(
        value(store.get(&c).await.expect("get")).as_deref(),
        Some("A"),
        "compare_and_delete with another value removed it"
    );
    assert!(
        store.compare_and_delete(&c, "A").await.expect("cad"),
        "compare_and_delete of the current value did not delete"
    );
    assert!(
        store.get(&c).await.expect("get").is_none(),
        "compare_and_delete left the value"
    );

    // compare-and-delete under 100 concurrent callers: exactly one wins
    store
        .set(&c, StoredToken::new("A", later(3600)))
        .await
        .expect("set");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let (store, c) = (store.clone(), c.clone());
        tasks.spawn(async move {
            store
                .compare_and_delete(&c, "A")
                .await
                .expect("concurrent cad")
        });
    }
    let wins = tasks.join_all().await.into_iter().filter(|w| *w).count();
    assert_eq!(
        wins, 1,
        "{wins} of 100 concurrent compare_and_delete calls deleted the same value"
    );
    // A value written after the rejected one is not removed by a stale compare-and-delete.
    store
        .set(&c, StoredToken::new("B", later(3600)))
        .await
        .expect("set");
    assert!(
        !store.compare_and_delete(&c, "A").await.expect("cad"),
        "stale compare_and_delete removed a newer value"
    );
    assert_eq!(
        value(store.get(&c).await.expect("get")).as_deref(),
        Some("B")
    );
    store.delete(&c).await.expect("delete");

    // leases
    let l = key("lease", TokenKind::AccessToken);
    let ttl = Duration::from_secs(30);
    assert!(
        store
            .try_acquire_lease(&l, "owner-a", ttl)
            .await
            .expect("lease"),
        "a free lease was refused"
    );
    if options.exclusive_leases {
        assert!(
            !store
                .try_acquire_lease(&l, "owner-b", ttl)
                .await
                .expect("lease"),
            "a held lease was granted to another owner"
        );
        store
            .release_lease(&l, "owner-b")
            .await
            .expect("release by a non-owner must not fail");
        assert!(
            !store
                .try_acquire_lease(&l, "owner-b", ttl)
                .await
                .expect("lease"),
            "a non-owner released someone else's lease"
        );
        store.release_lease(&l, "owner-a").await.expect("release");
        assert!(
            store
                .try_acquire_lease(&l, "owner-b", ttl)
                .await
                .expect("lease"),
            "a released lease was not granted"
        );
        store.release_lease(&l, "owner-b").await.expect("release");

        let e = key("lease-exp", TokenKind::AccessToken);
        assert!(
            store
                .try_acquire_lease(&e, "dead", Duration::from_millis(300))
                .await
                .expect("lease")
        );
        assert!(
            !store
                .try_acquire_lease(&e, "next", ttl)
                .await
                .expect("lease")
        );
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(
            store
                .try_acquire_lease(&e, "next", ttl)
                .await
                .expect("lease"),
            "an expired lease was not granted"
        );
        store.release_lease(&e, "next").await.expect("release");

        let r = key("lease-race", TokenKind::AccessToken);
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..100 {
            let (store, r) = (store.clone(), r.clone());
            tasks.spawn(async move {
                store
                    .try_acquire_lease(&r, &format!("o{i}"), ttl)
                    .await
                    .expect("lease")
            });
        }
        let granted = tasks.join_all().await.into_iter().filter(|g| *g).count();
        assert_eq!(
            granted, 1,
            "{granted} of 100 concurrent lease requests were granted"
        );
    } else {
        store.release_lease(&l, "owner-a").await.expect("release");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryTokenStore;

    #[tokio::test]
    async fn memory_store_passes_the_conformance_suite() {
        token_store_conformance(
            Arc::new(MemoryTokenStore::new()),
            ConformanceOptions::default(),
        )
        .await;
    }

    /// A store with only get/set/delete written passes with the default lease methods.
    struct Minimal(MemoryTokenStore);

    #[async_trait]
    impl TokenStore for Minimal {
        async fn get(&self, key: &TokenKey) -> Result<Option<StoredToken>, crate::StoreError> {
            // Yield so that concurrent callers interleave between get and delete.
            tokio::task::yield_now().await;
            self.0.get(key).await
        }
        async fn set(&self, key: &TokenKey, token: StoredToken) -> Result<(), crate::StoreError> {
            self.0.set(key, token).await
        }
        async fn delete(&self, key: &TokenKey) -> Result<(), crate::StoreError> {
            self.0.delete(key).await
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn minimal_store_passes_with_default_methods() {
        token_store_conformance(
            Arc::new(Minimal(MemoryTokenStore::new())),
            ConformanceOptions {
                exclusive_leases: false,
            },
        )
        .await;
    }

    #[tokio::test]
    async fn mock_transport_routes_and_records() {
        let mock = MockTransport::new();
        mock.push_for("/b", response(500, "oops"));
        mock.push_json("{}");
        mock.always("/c", response(200, "c"));
        let r = mock
            .send(HttpRequest::get("http://h/a?x=1"))
            .await
            .expect("a");
        assert_eq!(r.body, "{}");
        let r = mock.send(HttpRequest::get("http://h/b")).await.expect("b");
        assert_eq!(r.status, 500);
        for _ in 0..3 {
            assert_eq!(
                mock.send(HttpRequest::get("http://h/c"))
                    .await
                    .expect("c")
                    .body,
                "c"
            );
        }
        let e = mock
            .send(HttpRequest::get("http://h/d"))
            .await
            .expect_err("nothing left");
        assert_eq!(e.kind(), TransportErrorKind::Other);
        assert_eq!(mock.total(), 6);
        assert_eq!(mock.count("/c"), 3);
        assert_eq!(mock.requests()[0].query("x").as_deref(), Some("1"));
        assert_eq!(mock.pending(), 0);
    }
}
