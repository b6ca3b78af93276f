//! A transport wrapper that records what each request met on the wire, and which call sent it.
//!
//! The sandbox decides faults in the order requests arrive, so with 64 tasks nobody knows in
//! advance which call meets which fault. The observer sees each answer as the client does and
//! names the fault it carries ([`Seen`]); the fault test then checks each call's result against
//! what its own requests met, and the observer's totals against the sandbox's count of injected
//! faults, so neither side is taken on trust.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use wx_core::{HttpRequest, HttpResponse, HttpTransport, TransportError, TransportErrorKind};

use crate::common::Secrets;

tokio::task_local! {
    /// The id of the call the current task is making; unset in the token refresh task.
    pub(crate) static CALL: u64;
}

/// Bodies longer than this are padded ones (`Fault::Oversized`): WeChat's answers here are
/// well under 1 KiB.
const PADDED_BODY: usize = 4096;

/// What one request met.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Seen {
    /// A normal answer.
    Pass,
    /// A normal answer padded with spaces (`Fault::Oversized` under the body cap).
    Padded,
    /// `{"errcode":-1}`.
    Busy,
    /// A non-200 status.
    Status(u16),
    /// A 200 `text/html` page.
    Html,
    /// A 200 with an empty body.
    Empty,
    /// A body that is not JSON (the sandbox's half answer).
    Truncated,
    /// A body that is not UTF-8.
    NonUtf8,
    /// The transport timed out (`Fault::Delay` past the timeout).
    Timeout,
    /// The connection broke (`Fault::Drop`, `Fault::DropMidBody`).
    Broken,
    /// The body passed the transport's cap (`Fault::Oversized` over it).
    TooLarge,
    /// The caller gave up (its deadline) before the answer came.
    Cancelled,
    /// Anything else: a connect failure or an unclassified transport error. Never expected.
    Unexpected(TransportErrorKind),
}

impl Seen {
    /// The name of the sandbox fault this corresponds to (`Fault::name`), if any.
    pub(crate) fn fault_name(self) -> Option<&'static str> {
        match self {
            Seen::Padded | Seen::TooLarge => Some("oversized"),
            Seen::Busy => Some("busy"),
            Seen::Status(_) => Some("status"),
            Seen::Html => Some("html"),
            Seen::Empty => Some("empty"),
            Seen::Truncated => Some("truncated"),
            Seen::NonUtf8 => Some("non_utf8"),
            Seen::Timeout => Some("delay"),
            // Drop and DropMidBody look alike to a client: a broken connection.
            Seen::Broken => Some("drop"),
            Seen::Pass | Seen::Cancelled | Seen::Unexpected(_) => None,
        }
    }
}

/// One request as the client sent it.
#[derive(Clone, Debug)]
pub(crate) struct Attempt {
    /// Order in which requests were started.
    pub(crate) seq: u64,
    /// The call that sent it; `None` for the token refresh task (and set-up calls).
    pub(crate) call: Option<u64>,
    /// The phase of the run it was sent in.
    pub(crate) phase: u32,
    pub(crate) path: String,
    pub(crate) seen: Seen,
    pub(crate) elapsed: Duration,
}

#[derive(Default)]
struct Book {
    seq: AtomicU64,
    phase: AtomicU32,
    attempts: Mutex<Vec<Attempt>>,
    secrets: Mutex<Secrets>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Wraps a transport; clones share the record.
#[derive(Clone)]
pub(crate) struct Observer<T> {
    inner: T,
    book: Arc<Book>,
}

impl<T> Observer<T> {
    pub(crate) fn new(inner: T) -> Self {
        Observer {
            inner,
            book: Arc::default(),
        }
    }

    /// Tags the requests sent from now on with `phase`.
    pub(crate) fn set_phase(&self, phase: u32) {
        self.book.phase.store(phase, Ordering::SeqCst);
    }

    /// Every request so far, in the order they were started.
    pub(crate) fn attempts(&self) -> Vec<Attempt> {
        let mut all = lock(&self.book.attempts).clone();
        all.sort_by_key(|a| a.seq);
        all
    }

    /// Requests started so far (answered or not).
    pub(crate) fn started(&self) -> u64 {
        self.book.seq.load(Ordering::SeqCst)
    }

    /// Moves out the secrets found in answers: base and web tokens, refresh tokens, tickets,
    /// and the pieces of them in cut answers.
    pub(crate) fn take_secrets(&self) -> Secrets {
        std::mem::take(&mut *lock(&self.book.secrets))
    }
}

/// Records the attempt when dropped, as `Cancelled` unless it finished.
struct Pending<'a> {
    book: &'a Book,
    attempt: Attempt,
    started: Instant,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.attempt.elapsed = self.started.elapsed();
        lock(&self.book.attempts).push(self.attempt.clone());
    }
}

#[async_trait]
impl<T: HttpTransport> HttpTransport for Observer<T> {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let mut pending = Pending {
            book: &self.book,
            attempt: Attempt {
                seq: self.book.seq.fetch_add(1, Ordering::SeqCst),
                call: CALL.try_with(|id| *id).ok(),
                phase: self.book.phase.load(Ordering::SeqCst),
                path: request.path().to_owned(),
                seen: Seen::Cancelled,
                elapsed: Duration::ZERO,
            },
            started: Instant::now(),
        };
        let result = self.inner.send(request).await;
        if let Ok(response) = &result {
            harvest_secrets(&mut lock(&self.book.secrets), &response.body);
        }
        pending.attempt.seen = classify(&result);
        result
    }
}

/// Names what a request met, from the answer alone.
pub(crate) fn classify(result: &Result<HttpResponse, TransportError>) -> Seen {
    let response = match result {
        Ok(response) => response,
        Err(e) => {
            return match e.kind() {
                TransportErrorKind::Timeout => Seen::Timeout,
                TransportErrorKind::Io => Seen::Broken,
                TransportErrorKind::BodyTooLarge => Seen::TooLarge,
                other => Seen::Unexpected(other),
            };
        }
    };
    if response.status.as_u16() != 200 {
        return Seen::Status(response.status.as_u16());
    }
    let html = response
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if html {
        return Seen::Html;
    }
    let body = &response.body;
    if body.is_empty() {
        return Seen::Empty;
    }
    if std::str::from_utf8(body).is_err() {
        return Seen::NonUtf8;
    }
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Seen::Truncated;
    };
    if json.get("errcode").and_then(serde_json::Value::as_i64) == Some(-1) {
        Seen::Busy
    } else if body.len() > PADDED_BODY {
        Seen::Padded
    } else {
        Seen::Pass
    }
}

/// The JSON fields of WeChat's answers that hold secrets.
const SECRET_FIELDS: [(&str, &str); 3] = [
    ("access_token", "access token"),
    ("refresh_token", "refresh token"),
    ("ticket", "jsapi ticket"),
];

/// Adds every secret value in `body` to `secrets`, also from a cut answer (whatever part of a
/// value it holds, when long enough to search for).
fn harvest_secrets(secrets: &mut Secrets, body: &[u8]) {
    let text = String::from_utf8_lossy(body);
    for (field, label) in SECRET_FIELDS {
        let marker = format!("\"{field}\":\"");
        let mut rest = text.as_ref();
        while let Some(at) = rest.find(&marker) {
            rest = &rest[at + marker.len()..];
            let value = rest.split('"').next().unwrap_or_default();
            if value.len() >= 16 {
                secrets.add(label, value);
            }
        }
    }
}
