//! The push direction, async side: delivers what the world queued (`World::queue_push`) and
//! what simulated users do (`Sandbox::act`) to each app's server URL, after the world lock is
//! released: signed (and encrypted in the AES modes) as WeChat does, each attempt bounded by the
//! server's timeout, up to three attempts with the same message, the answer checked as WeChat
//! checks it and the result put in the user's inbox.

mod action;
mod config;
mod reply;
mod send;

use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::json;
use tokio::task::JoinHandle;
use wx_core::Clock as _;
use wx_core::crypto::server_signature;

pub use action::UserAction;
pub use config::{PUSH_TIMEOUT, PushMode, PushTarget, ServerConfig};

use crate::builder::unix_secs;
use crate::world::{PushFields, QueuedPush, write_cdata};
use crate::{InboxMessage, Sandbox, SandboxError, Via};
use reply::Checked;

/// Attempts per push: WeChat "总共重试三次" (three tries in all, the same message each time).
pub const PUSH_ATTEMPTS: usize = 3;

/// What WeChat shows the user when the server URL failed every attempt or answered with
/// something that is not a reply.
pub const UNAVAILABLE_NOTICE: &str = "该公众号暂时无法提供服务，请稍后再试";

/// Events no user is waiting on (results of jobs, an unfollow): WeChat shows no reply and no
/// notice for them.
const SILENT_EVENTS: &[&str] = &[
    "unsubscribe",
    "TEMPLATESENDJOBFINISH",
    "MASSSENDJOBFINISH",
    "PUBLISHJOBFINISH",
    "subscribe_msg_sent_event",
    "subscribe_msg_change_event",
];

/// What became of one push.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum PushOutcome {
    /// The app has no server URL: WeChat pushes nothing.
    NoServer,
    /// The app answered `success` or an empty body.
    NoReply,
    /// The app answered with a passive reply (also in the user's inbox, [`Via::Reply`], unless
    /// the push is an event no user waits on, such as `TEMPLATESENDJOBFINISH`).
    Replied(InboxMessage),
    /// The app handed the conversation to its customer-service agents
    /// (`transfer_customer_service`).
    Transferred,
    /// WeChat gave up: the user's inbox shows [`UNAVAILABLE_NOTICE`] ([`Via::Platform`]),
    /// unless the push is an event no user waits on.
    Failed(PushFailure),
}

/// Why WeChat gave up on a push.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PushFailure {
    /// No attempt got an answer: what went wrong each time.
    Unanswered(Vec<AttemptError>),
    /// The app answered, but not with a reply WeChat accepts.
    BadReply(ReplyError),
}

/// Why one attempt got no answer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttemptError {
    /// No complete answer within the timeout (WeChat's 5 seconds).
    Timeout,
    /// The connection failed (refused, reset, the in-process handler failed).
    Unreachable(String),
    /// An HTTP status other than 200.
    Status(u16),
}

/// Why WeChat refuses an answer as a reply.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// Not `success`, not empty and not well-formed `<xml>` (JSON, an error page, a DTD ...).
    #[error("answer is not a well-formed XML reply")]
    Malformed,
    /// A plaintext reply in safe mode.
    #[error("safe mode needs an encrypted reply")]
    NotEncrypted,
    /// The `MsgSignature` of an encrypted reply does not match.
    #[error("encrypted reply signature does not match")]
    Signature,
    /// An encrypted reply that does not decrypt for this AppID with this key (or in plain
    /// mode, where WeChat has no key).
    #[error("encrypted reply cannot be decrypted")]
    NotDecryptable,
    /// `ToUserName` is not the user the push came from.
    #[error("reply ToUserName is not the user")]
    WrongToUser,
    /// `FromUserName` is not the account's original id.
    #[error("reply FromUserName is not the account")]
    WrongFromUser,
    /// A `MsgType` that is not a passive reply type.
    #[error("reply type is not a passive reply type")]
    UnknownType(String),
    /// A field the reply type needs is missing.
    #[error("reply lacks a required field")]
    MissingField(&'static str),
}

/// One push WeChat sent (or would have sent) to an app's server URL, and its outcome.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct PushReport {
    /// The app pushed to.
    pub appid: String,
    /// The user the push is about (its `FromUserName`).
    pub openid: String,
    /// `CreateTime` of the push (seconds from the epoch, sandbox clock).
    pub create_time: u64,
    /// Its fields after the header (`MsgType`, `Event`, ...).
    pub fields: PushFields,
    /// HTTP requests made (0 without a server URL, at most [`PUSH_ATTEMPTS`]).
    pub attempts: usize,
    /// What happened.
    pub outcome: PushOutcome,
}

/// Deliveries started by API calls and not yet awaited by `settle_pushes`.
#[derive(Default)]
pub(crate) struct InFlight(Mutex<Vec<JoinHandle<PushReport>>>);

impl InFlight {
    fn take(&self) -> Vec<JoinHandle<PushReport>> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn add(&self, handle: JoinHandle<PushReport>) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(handle);
    }
}

impl Sandbox {
    /// Starts delivering what the world queued during the last request (called with the world
    /// lock released). Outside a tokio runtime the pushes stay queued for
    /// [`settle_pushes`](Self::settle_pushes).
    pub(crate) fn dispatch_queued(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        for push in self.world().take_pushes() {
            let sandbox = self.clone();
            self.inner
                .pushes
                .add(runtime.spawn(async move { sandbox.deliver(push).await }));
        }
    }

    /// Delivers every push still queued and waits for every delivery in flight (those that API
    /// calls started, such as a template send's `TEMPLATESENDJOBFINISH`); returns their
    /// reports, in the order the pushes were queued.
    pub async fn settle_pushes(&self) -> Vec<PushReport> {
        let mut reports = Vec::new();
        loop {
            let handles = self.inner.pushes.take();
            let queued = self.world().take_pushes();
            if handles.is_empty() && queued.is_empty() {
                return reports;
            }
            for handle in handles {
                // A delivery task only ends by returning (it has no panicking path); a
                // cancelled one (runtime shutting down) has no report to give.
                if let Ok(report) = handle.await {
                    reports.push(report);
                }
            }
            for push in queued {
                reports.push(self.deliver(push).await);
            }
        }
    }

    /// Registers (or replaces) the server configuration of `appid` after WeChat's URL check:
    /// a GET with `signature`, `timestamp`, `nonce` and `echostr` that must be answered with
    /// the `echostr`, as when the URL is saved in the console.
    ///
    /// # Errors
    /// [`SandboxError::UnknownApp`]; [`SandboxError::InvalidServer`] for an EncodingAESKey that
    /// is not 43 base64 characters, a URL that is not `http://host...` or an empty original id;
    /// [`SandboxError::HandshakeFailed`] when the server does not echo.
    pub async fn set_server(&self, appid: &str, config: ServerConfig) -> Result<(), SandboxError> {
        if self.world().app_mut(appid).is_none() {
            return Err(SandboxError::UnknownApp);
        }
        let config = config.checked()?;
        self.handshake(&config).await?;
        let mut world = self.world();
        let app = world.app_mut(appid).ok_or(SandboxError::UnknownApp)?;
        app.push_state().server = Some(config);
        Ok(())
    }

    /// Runs the URL check again for the server registered for `appid` (a server registered
    /// with the builder is not checked, as if it was saved before the test began).
    ///
    /// # Errors
    /// [`SandboxError::UnknownApp`], [`SandboxError::InvalidServer`] when the app has no
    /// server, [`SandboxError::HandshakeFailed`].
    pub async fn verify_server(&self, appid: &str) -> Result<(), SandboxError> {
        let config = {
            let mut world = self.world();
            let app = world.app_mut(appid).ok_or(SandboxError::UnknownApp)?;
            app.push_state().server.clone()
        };
        self.handshake(&config.ok_or(SandboxError::InvalidServer)?)
            .await
    }

    async fn handshake(&self, config: &ServerConfig) -> Result<(), SandboxError> {
        let timestamp = unix_secs(self.clock().now()).to_string();
        let nonce = rand::random::<u32>().to_string();
        let echostr = (rand::random::<u64>() >> 1).to_string();
        let signature = server_signature(&config.token, &timestamp, &nonce);
        let query =
            format!("signature={signature}&echostr={echostr}&timestamp={timestamp}&nonce={nonce}");
        match config
            .target
            .exchange(Method::GET, &query, Bytes::new(), config.timeout)
            .await
        {
            Ok(a) if a.status == StatusCode::OK && a.body == echostr.as_bytes() => Ok(()),
            Ok(a) => {
                tracing::debug!(status = %a.status, "server URL check: no echo");
                Err(SandboxError::HandshakeFailed)
            }
            Err(e) => {
                tracing::debug!(error = ?e, "server URL check failed");
                Err(SandboxError::HandshakeFailed)
            }
        }
    }

    /// A simulated user does something that makes WeChat push to `appid`: the follower
    /// relation and the user's last interaction are updated first, then the push is delivered
    /// (awaited: the report says what the app answered and what the user got).
    ///
    /// # Errors
    /// [`SandboxError::UnknownApp`], [`SandboxError::UnknownUser`];
    /// [`SandboxError::NotFollowing`] for a message, click or unfollow from a non-follower;
    /// [`SandboxError::AlreadyFollowing`] for [`UserAction::Follow`] by a follower.
    pub async fn act(
        &self,
        appid: &str,
        openid: &str,
        action: UserAction,
    ) -> Result<PushReport, SandboxError> {
        let now = self.clock().now();
        let push = self.world().user_acts(appid, openid, &action, now)?;
        Ok(self.deliver(push).await)
    }

    /// Delivers a push with any fields to `appid`'s server URL, about `openid` (an event the
    /// simulated users cannot trigger yet, a malformed one ...), and waits for the outcome.
    pub async fn push(&self, appid: &str, openid: &str, fields: PushFields) -> PushReport {
        let push = QueuedPush {
            appid: appid.to_owned(),
            openid: openid.to_owned(),
            create_time: unix_secs(self.clock().now()),
            fields,
        };
        self.deliver(push).await
    }

    async fn deliver(&self, push: QueuedPush) -> PushReport {
        let server = self.world().server(&push.appid);
        let xml = server.as_ref().map(|s| push.xml(&s.original_id));
        let QueuedPush {
            appid,
            openid,
            create_time,
            fields,
        } = push;
        let mut report = PushReport {
            appid,
            openid,
            create_time,
            fields,
            attempts: 0,
            outcome: PushOutcome::NoServer,
        };
        let (Some(server), Some(xml)) = (server, xml) else {
            return report;
        };
        let (query, body) = self.sign(&server, &report.appid, &report.openid, &xml);
        let mut errors = Vec::new();
        let checked = loop {
            if errors.len() == PUSH_ATTEMPTS {
                break Err(PushFailure::Unanswered(errors));
            }
            report.attempts += 1;
            let sent = server
                .target
                .exchange(Method::POST, &query, body.clone(), server.timeout)
                .await;
            match sent {
                Ok(a) if a.status == StatusCode::OK => {
                    break reply::check(&server, &report.appid, &report.openid, &a.body)
                        .map_err(PushFailure::BadReply);
                }
                Ok(a) => errors.push(AttemptError::Status(a.status.as_u16())),
                Err(e) => errors.push(e),
            }
            tracing::debug!(attempt = report.attempts, error = ?errors.last(), "push attempt failed");
        };
        let now = self.clock().now();
        let (outcome, to_inbox) = match checked {
            Ok(Checked::NoReply) => (PushOutcome::NoReply, None),
            Ok(Checked::Transfer) => (PushOutcome::Transferred, None),
            Ok(Checked::Message(msg_type, content)) => {
                let m = InboxMessage::new(now, Via::Reply, msg_type, content);
                (PushOutcome::Replied(m.clone()), Some(m))
            }
            Err(failure) => {
                let notice = InboxMessage::new(
                    now,
                    Via::Platform,
                    "text",
                    json!({ "Content": UNAVAILABLE_NOTICE }),
                );
                (PushOutcome::Failed(failure), Some(notice))
            }
        };
        let silent = report.fields.get("MsgType") == Some("event")
            && report
                .fields
                .get("Event")
                .is_some_and(|e| SILENT_EVENTS.contains(&e));
        if let Some(message) = to_inbox.filter(|_| !silent)
            && let Some(app) = self.world().app_mut(&report.appid)
        {
            app.deliver(&report.openid, message);
        }
        report.outcome = outcome;
        report
    }

    /// The query string and body of a push, as WeChat signs (and in the AES modes encrypts) it.
    fn sign(&self, server: &ServerConfig, appid: &str, openid: &str, xml: &str) -> (String, Bytes) {
        let timestamp = unix_secs(self.clock().now()).to_string();
        let nonce = rand::random::<u32>().to_string();
        let signature = server_signature(&server.token, &timestamp, &nonce);
        let mut query =
            format!("signature={signature}&timestamp={timestamp}&nonce={nonce}&openid={openid}");
        let Some(key) = server
            .key
            .as_ref()
            .filter(|_| server.mode != PushMode::Plain)
        else {
            return (query, Bytes::from(xml.to_owned()));
        };
        let sealed = key.seal(&server.token, appid, xml.as_bytes(), &timestamp, &nonce);
        query.push_str("&encrypt_type=aes&msg_signature=");
        query.push_str(&sealed.msg_signature);
        let mut body = match server.mode {
            PushMode::Compatible => xml.strip_suffix("</xml>").unwrap_or(xml).to_owned(),
            _ => {
                let mut b = String::from("<xml><ToUserName>");
                write_cdata(&mut b, &server.original_id);
                b.push_str("</ToUserName>");
                b
            }
        };
        body.push_str("<Encrypt>");
        write_cdata(&mut body, &sealed.encrypt);
        body.push_str("</Encrypt></xml>");
        (query, Bytes::from(body))
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::UserProfile;

    #[tokio::test]
    async fn queued_pushes_are_settled_with_their_fields() {
        let sandbox = Sandbox::builder()
            .app("wx1", "s")
            .user("wx1", UserProfile::new("o1"))
            .build()
            .expect("valid");
        let fields = PushFields::event("TEMPLATESENDJOBFINISH")
            .number("MsgID", 200_163_836u64)
            .text("Status", "success");
        sandbox
            .world()
            .queue_push("wx1", "o1", fields.clone(), SystemTime::UNIX_EPOCH);
        let reports = sandbox.settle_pushes().await;
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].openid, "o1");
        assert_eq!(reports[0].fields, fields);
        assert_eq!(reports[0].outcome, PushOutcome::NoServer);
        assert!(sandbox.settle_pushes().await.is_empty());
    }
}
