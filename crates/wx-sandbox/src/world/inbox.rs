//! What each simulated user received from an app: passive replies to its pushes, template and
//! subscription notices, customer-service messages, and WeChat's own notices (such as "this
//! account cannot serve you right now" after every push attempt failed). Tests read it through
//! [`Sandbox::inbox`](crate::Sandbox::inbox).

use std::time::SystemTime;

use serde_json::Value;

use super::App;
use crate::{Sandbox, SandboxError};

/// How a message reached the user.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Via {
    /// The app's passive reply to a push (in the HTTP answer).
    Reply,
    /// A template message (`message/template/send`).
    Template,
    /// A subscription notice (`message/subscribe/bizsend`).
    Subscribe,
    /// A customer-service message (`message/custom/send`).
    Custom,
    /// WeChat itself (for example when the app's server URL failed every attempt).
    Platform,
}

/// One message a user received.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct InboxMessage {
    /// The sandbox clock's time of delivery.
    pub at: SystemTime,
    /// How it came.
    pub via: Via,
    /// Its type as WeChat names it (`text`, `image`, `news`, `template`, ...).
    pub msg_type: String,
    /// Its content as JSON (the fields of the reply or send body, as the app gave them).
    pub content: Value,
}

impl InboxMessage {
    /// A message delivered at `at`.
    #[must_use]
    pub fn new(at: SystemTime, via: Via, msg_type: impl Into<String>, content: Value) -> Self {
        InboxMessage {
            at,
            via,
            msg_type: msg_type.into(),
            content,
        }
    }
}

/// The inboxes of one app's users.
#[derive(Default)]
struct Inboxes(std::collections::HashMap<String, Vec<InboxMessage>>);

impl App {
    /// Delivers `message` to `openid`'s inbox.
    pub(crate) fn deliver(&mut self, openid: &str, message: InboxMessage) {
        self.ext
            .get_mut::<Inboxes>()
            .0
            .entry(openid.to_owned())
            .or_default()
            .push(message);
    }

    fn inbox(&self, openid: &str) -> Vec<InboxMessage> {
        self.ext
            .get::<Inboxes>()
            .and_then(|i| i.0.get(openid))
            .cloned()
            .unwrap_or_default()
    }
}

impl Sandbox {
    /// What `openid` received from `appid` so far, oldest first.
    ///
    /// # Errors
    /// [`SandboxError::UnknownApp`], [`SandboxError::UnknownUser`].
    pub fn inbox(&self, appid: &str, openid: &str) -> Result<Vec<InboxMessage>, SandboxError> {
        let mut world = self.world();
        let app = world.app_mut(appid).ok_or(SandboxError::UnknownApp)?;
        if !app.users.iter().any(|u| u.openid == openid) {
            return Err(SandboxError::UnknownUser);
        }
        Ok(app.inbox(openid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UserProfile;

    #[test]
    fn delivered_messages_are_read_back_in_order() {
        let sandbox = Sandbox::builder()
            .app("wx1", "s")
            .user("wx1", UserProfile::new("o1"))
            .build()
            .expect("valid");
        assert!(sandbox.inbox("wx1", "o1").expect("known").is_empty());
        let t = SystemTime::UNIX_EPOCH;
        {
            let mut w = sandbox.world();
            let app = w.app_mut("wx1").expect("app");
            app.deliver("o1", InboxMessage::new(t, Via::Reply, "text", "a".into()));
            app.deliver("o1", InboxMessage::new(t, Via::Custom, "text", "b".into()));
        }
        let got = sandbox.inbox("wx1", "o1").expect("known");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].content, "a");
        assert_eq!(got[1].via, Via::Custom);
        assert_eq!(
            sandbox.inbox("wx1", "nobody"),
            Err(SandboxError::UnknownUser)
        );
        assert_eq!(sandbox.inbox("wx2", "o1"), Err(SandboxError::UnknownApp));
    }
}
