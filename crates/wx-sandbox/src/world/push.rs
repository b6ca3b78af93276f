//! The push direction's state in the world: the outbox every group fills from its synchronous
//! handlers (`World::queue_push`), drained by the async side (`crate::push`) after the world lock
//! is released.

use std::fmt::Display;
use std::time::SystemTime;

use rand::Rng as _;

use super::{App, FollowScene, World};
use crate::builder::unix_secs;
use crate::push::ServerConfig;
use crate::{SandboxError, UserAction};

/// The fields of one push after its header (`ToUserName`, `FromUserName`, `CreateTime`, which
/// the sandbox fills in): `MsgType`, `Event`, `EventKey`, `MsgId`, ... in order. Text fields are
/// written as CDATA, numbers bare, as WeChat writes them; a node holds nested fields
/// (`ScanCodeInfo`, `CopyrightCheckResult`, `PublishEventInfo`, ...).
///
/// ```
/// use wx_sandbox::PushFields;
/// let fields = PushFields::event("TEMPLATESENDJOBFINISH")
///     .number("MsgID", 200163836u64)
///     .text("Status", "success");
/// assert_eq!(fields.get("Event"), Some("TEMPLATESENDJOBFINISH"));
/// assert_eq!(fields.get("MsgID"), Some("200163836"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PushFields(Vec<(String, Value)>);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Value {
    Text(String),
    Number(String),
    Node(PushFields),
}

impl PushFields {
    /// No fields yet: the children of a [`node`](Self::node).
    #[must_use]
    pub fn new() -> Self {
        PushFields::default()
    }

    /// An ordinary message: `MsgType` = `msg_type` (`text`, `image`, `location`, ...).
    #[must_use]
    pub fn message(msg_type: &str) -> Self {
        PushFields::new().text("MsgType", msg_type)
    }

    /// An event: `MsgType` = `event` and `Event` = `event` (`subscribe`, `CLICK`, ...).
    #[must_use]
    pub fn event(event: &str) -> Self {
        PushFields::message("event").text("Event", event)
    }

    /// Adds a text field (written as CDATA).
    #[must_use]
    pub fn text(mut self, name: &str, value: impl Into<String>) -> Self {
        self.0.push((name.to_owned(), Value::Text(value.into())));
        self
    }

    /// Adds a numeric field (written bare: `MsgId`, `Latitude`, `Scale`, ...).
    #[must_use]
    pub fn number(mut self, name: &str, value: impl Display) -> Self {
        self.0
            .push((name.to_owned(), Value::Number(value.to_string())));
        self
    }

    /// Adds an element holding nested fields (repeat the name for a list of `item`s).
    #[must_use]
    pub fn node(mut self, name: &str, children: PushFields) -> Self {
        self.0.push((name.to_owned(), Value::Node(children)));
        self
    }

    /// The first top-level text or numeric field called `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| match v {
                Value::Text(s) | Value::Number(s) => Some(s.as_str()),
                Value::Node(_) => None,
            })
    }

    /// The first top-level node called `name`.
    #[must_use]
    pub fn get_node(&self, name: &str) -> Option<&PushFields> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| match v {
                Value::Node(f) => Some(f),
                _ => None,
            })
    }

    fn write(&self, out: &mut String) {
        for (name, value) in &self.0 {
            out.push('<');
            out.push_str(name);
            out.push('>');
            match value {
                Value::Text(s) => write_cdata(out, s),
                Value::Number(s) => out.push_str(s),
                Value::Node(children) => children.write(out),
            }
            out.push_str("</");
            out.push_str(name);
            out.push('>');
        }
    }
}

/// `<![CDATA[...]]>`, with any `]]>` inside split across two sections.
pub(crate) fn write_cdata(out: &mut String, s: &str) {
    out.push_str("<![CDATA[");
    out.push_str(&s.replace("]]>", "]]]]><![CDATA[>"));
    out.push_str("]]>");
}

/// A push waiting for delivery.
#[derive(Clone, Debug)]
pub(crate) struct QueuedPush {
    pub(crate) appid: String,
    pub(crate) openid: String,
    /// `CreateTime`: seconds from the epoch at queueing.
    pub(crate) create_time: u64,
    pub(crate) fields: PushFields,
}

impl QueuedPush {
    /// The plaintext XML body: header, then the fields.
    pub(crate) fn xml(&self, original_id: &str) -> String {
        let mut out = String::from("<xml><ToUserName>");
        write_cdata(&mut out, original_id);
        out.push_str("</ToUserName><FromUserName>");
        write_cdata(&mut out, &self.openid);
        out.push_str("</FromUserName><CreateTime>");
        out.push_str(&self.create_time.to_string());
        out.push_str("</CreateTime>");
        self.fields.write(&mut out);
        out.push_str("</xml>");
        out
    }
}

/// Per-app state of the push direction.
#[derive(Default)]
pub(crate) struct PushState {
    /// The server configuration (服务器配置), if the app has one.
    pub(crate) server: Option<ServerConfig>,
    outbox: Vec<QueuedPush>,
}

impl App {
    pub(crate) fn push_state(&mut self) -> &mut PushState {
        self.ext.get_mut::<PushState>()
    }

    /// Follows `openid` through a QR code with `scene` (or records a scan when it already
    /// follows) and returns the push WeChat sends: `subscribe` with `EventKey` =
    /// `qrscene_<scene>`, or `SCAN` with the bare scene; both carry the `Ticket`.
    fn scanned(&mut self, openid: &str, scene: &str, ticket: &str, now: SystemTime) -> PushFields {
        let qr = match scene.parse::<u64>() {
            Ok(n) => FollowScene {
                scene: "ADD_SCENE_QR_CODE".into(),
                qr_scene: n,
                ..FollowScene::default()
            },
            Err(_) => FollowScene {
                scene: "ADD_SCENE_QR_CODE".into(),
                qr_scene_str: scene.to_owned(),
                ..FollowScene::default()
            },
        };
        let fields = if self.follow(openid, now, qr) {
            PushFields::event("subscribe").text("EventKey", format!("qrscene_{scene}"))
        } else {
            PushFields::event("SCAN").text("EventKey", scene)
        };
        self.touch(openid, now);
        fields.text("Ticket", ticket)
    }
}

impl World {
    /// Records a push from WeChat to `appid`'s server URL about `openid` (the push's
    /// `FromUserName`), created `now`. Call it from any synchronous handler: the sandbox
    /// delivers it after the world lock is released (see `Sandbox::settle_pushes`). An app
    /// without a server URL receives nothing, as on WeChat. Unknown apps are ignored.
    pub(crate) fn queue_push(
        &mut self,
        appid: &str,
        openid: &str,
        fields: PushFields,
        now: SystemTime,
    ) {
        if let Some(app) = self.app_mut(appid) {
            let push = QueuedPush {
                appid: appid.to_owned(),
                openid: openid.to_owned(),
                create_time: unix_secs(now),
                fields,
            };
            app.push_state().outbox.push(push);
        }
    }

    /// Applies what a simulated user does to the follower relation (follows, unfollows, last
    /// interaction) and returns the push WeChat sends about it.
    ///
    /// # Errors
    /// [`SandboxError::UnknownApp`], [`SandboxError::UnknownUser`];
    /// [`SandboxError::NotFollowing`] for a message, click or unfollow from a non-follower
    /// (WeChat offers no chat with an account one does not follow);
    /// [`SandboxError::AlreadyFollowing`] for a follow by a follower.
    pub(crate) fn user_acts(
        &mut self,
        appid: &str,
        openid: &str,
        action: &UserAction,
        now: SystemTime,
    ) -> Result<QueuedPush, SandboxError> {
        let msg_id = self.msg_id();
        let media_id = self.random_string(64);
        let app = self.app_mut(appid).ok_or(SandboxError::UnknownApp)?;
        if app.user(openid).is_none() {
            return Err(SandboxError::UnknownUser);
        }
        let following = app.is_following(openid);
        let needs_follower = !matches!(action, UserAction::Follow | UserAction::ScanQr { .. });
        if needs_follower && !following {
            return Err(SandboxError::NotFollowing);
        }
        let fields = match action {
            UserAction::Text(content) => PushFields::message("text")
                .text("Content", content.as_str())
                .number("MsgId", msg_id),
            UserAction::Image { pic_url } => PushFields::message("image")
                .text("PicUrl", pic_url.as_str())
                .text("MediaId", media_id)
                .number("MsgId", msg_id),
            UserAction::Location {
                latitude,
                longitude,
                scale,
                label,
            } => PushFields::message("location")
                .number("Location_X", latitude)
                .number("Location_Y", longitude)
                .number("Scale", scale)
                .text("Label", label.as_str())
                .number("MsgId", msg_id),
            UserAction::Follow => {
                if following {
                    return Err(SandboxError::AlreadyFollowing);
                }
                let scene = FollowScene {
                    scene: "ADD_SCENE_SEARCH".into(),
                    ..FollowScene::default()
                };
                app.follow(openid, now, scene);
                PushFields::event("subscribe")
            }
            UserAction::Unfollow => {
                app.unfollow(openid);
                PushFields::event("unsubscribe")
            }
            UserAction::ScanQr { scene, ticket } => app.scanned(openid, scene, ticket, now),
            UserAction::ClickMenu(key) => PushFields::event("CLICK").text("EventKey", key.as_str()),
            UserAction::ViewMenu(url) => PushFields::event("VIEW").text("EventKey", url.as_str()),
        };
        if !matches!(action, UserAction::Unfollow) {
            app.touch(openid, now);
        }
        Ok(QueuedPush {
            appid: appid.to_owned(),
            openid: openid.to_owned(),
            create_time: unix_secs(now),
            fields,
        })
    }

    /// A message id as WeChat's: 64 bits, above 2^53 so a float-based parser loses digits.
    pub(crate) fn msg_id(&mut self) -> u64 {
        (1 << 62) | (self.rng.random::<u64>() >> 2)
    }

    /// The server configuration of `appid`, if any.
    pub(crate) fn server(&mut self, appid: &str) -> Option<ServerConfig> {
        self.app_mut(appid)?.push_state().server.clone()
    }

    /// Takes every queued push, oldest first per app.
    pub(crate) fn take_pushes(&mut self) -> Vec<QueuedPush> {
        self.apps
            .iter_mut()
            .flat_map(|a| std::mem::take(&mut a.push_state().outbox))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_push_renders_as_wechat_writes_it() {
        let push = QueuedPush {
            appid: "wx1".into(),
            openid: "o1".into(),
            create_time: 1_348_831_860,
            fields: PushFields::message("text")
                .text("Content", "a]]>b")
                .number("MsgId", 1_234_567_890_123_456u64)
                .node("ScanCodeInfo", PushFields::new().text("ScanType", "qrcode")),
        };
        assert_eq!(
            push.xml("gh_1"),
            "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o1]]>\
             </FromUserName><CreateTime>1348831860</CreateTime><MsgType><![CDATA[text]]>\
             </MsgType><Content><![CDATA[a]]]]><![CDATA[>b]]></Content><MsgId>1234567890123456\
             </MsgId><ScanCodeInfo><ScanType><![CDATA[qrcode]]></ScanType></ScanCodeInfo></xml>"
        );
        assert_eq!(push.fields.get("MsgId"), Some("1234567890123456"));
        assert_eq!(
            push.fields
                .get_node("ScanCodeInfo")
                .and_then(|n| n.get("ScanType")),
            Some("qrcode")
        );
    }

    #[test]
    fn the_outbox_is_per_app_and_drained_once() {
        let mut w = World::new(
            vec![
                App::new("wx1".into(), "s".into()),
                App::new("wx2".into(), "s".into()),
            ],
            1,
            2000,
        );
        let t = SystemTime::UNIX_EPOCH;
        w.queue_push("wx1", "o1", PushFields::event("subscribe"), t);
        w.queue_push("wx2", "o2", PushFields::event("CLICK"), t);
        w.queue_push("nope", "o3", PushFields::event("CLICK"), t);
        let taken = w.take_pushes();
        assert_eq!(taken.len(), 2);
        assert_eq!(
            (taken[0].appid.as_str(), taken[0].openid.as_str()),
            ("wx1", "o1")
        );
        assert_eq!(taken[1].fields.get("Event"), Some("CLICK"));
        assert!(w.take_pushes().is_empty());
    }

    #[test]
    fn actions_touch_the_follower_and_scans_follow_through_the_qr_scene() {
        let mut app = App::new("wx1".into(), "s".into());
        app.users.push(crate::UserProfile::new("o1"));
        let mut w = World::new(vec![app], 1, 2000);
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(100);
        let push = w
            .user_acts("wx1", "o1", &UserAction::scan("scene-a", "tk"), t)
            .expect("known user");
        assert_eq!(push.fields.get("EventKey"), Some("qrscene_scene-a"));
        let f = &w.app_mut("wx1").expect("app").followers["o1"];
        assert!(f.subscribed);
        assert_eq!(f.subscribe_scene, "ADD_SCENE_QR_CODE");
        assert_eq!((f.qr_scene, f.qr_scene_str.as_str()), (0, "scene-a"));
        assert_eq!(f.last_active, Some(t));
        let later = t + std::time::Duration::from_secs(60);
        w.user_acts("wx1", "o1", &UserAction::click("K"), later)
            .expect("a follower clicks");
        assert_eq!(
            w.app_mut("wx1").expect("app").followers["o1"].last_active,
            Some(later)
        );
        assert_eq!(
            w.user_acts("wx1", "o9", &UserAction::scan("1", "tk"), t)
                .err(),
            Some(SandboxError::UnknownUser)
        );
    }
}
