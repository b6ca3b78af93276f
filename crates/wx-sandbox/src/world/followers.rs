//! Who follows an app: the relation every group reads (sends need a follower, the push
//! direction records follows and the user's last message, the account group lists followers).
//!
//! A user registered with the builder follows the app from the sandbox's start (scene
//! `ADD_SCENE_OTHERS`); a test changes that with `Sandbox::set_following`, and the simulated
//! user's follow / unfollow actions change it as WeChat would.

use std::time::SystemTime;

use super::App;

/// A user's relation to one app.
#[derive(Clone, Debug)]
#[allow(dead_code)] // the scene fields are read by the account group (user/info)
pub(crate) struct Follower {
    /// Follows now.
    pub(crate) subscribed: bool,
    /// When the user last followed.
    pub(crate) subscribe_time: SystemTime,
    /// How they followed (`ADD_SCENE_QR_CODE`, `ADD_SCENE_SEARCH`, ...).
    pub(crate) subscribe_scene: String,
    /// The QR scene they followed through (numeric scene; 0 for none).
    pub(crate) qr_scene: u64,
    /// The QR scene string they followed through (`""` for none).
    pub(crate) qr_scene_str: String,
    /// When the user last sent the app a message or interacted (the 48-hour window of
    /// customer-service messages starts here).
    pub(crate) last_active: Option<SystemTime>,
}

/// Where a follow came from.
#[derive(Clone, Debug, Default)]
pub(crate) struct FollowScene {
    pub(crate) scene: String,
    pub(crate) qr_scene: u64,
    pub(crate) qr_scene_str: String,
}

impl FollowScene {
    /// A follow outside any QR code.
    #[allow(dead_code)]
    pub(crate) fn other() -> Self {
        FollowScene {
            scene: "ADD_SCENE_OTHERS".into(),
            ..FollowScene::default()
        }
    }
}

impl App {
    /// Records that `openid` follows from `now`; returns whether it did not follow before.
    pub(crate) fn follow(&mut self, openid: &str, now: SystemTime, scene: FollowScene) -> bool {
        let was = self.is_following(openid);
        if !was {
            self.followers.insert(
                openid.to_owned(),
                Follower {
                    subscribed: true,
                    subscribe_time: now,
                    subscribe_scene: scene.scene,
                    qr_scene: scene.qr_scene,
                    qr_scene_str: scene.qr_scene_str,
                    last_active: self.followers.get(openid).and_then(|f| f.last_active),
                },
            );
        }
        !was
    }

    /// Records that `openid` stopped following; returns whether it followed.
    pub(crate) fn unfollow(&mut self, openid: &str) -> bool {
        match self.followers.get_mut(openid) {
            Some(f) if f.subscribed => {
                f.subscribed = false;
                true
            }
            _ => false,
        }
    }

    /// Records the user's last interaction (a message it sent, a click) at `now`.
    #[allow(dead_code)]
    pub(crate) fn touch(&mut self, openid: &str, now: SystemTime) {
        if let Some(f) = self.followers.get_mut(openid) {
            f.last_active = Some(now);
        }
    }

    /// Whether `openid` follows the app now.
    pub(crate) fn is_following(&self, openid: &str) -> bool {
        self.followers.get(openid).is_some_and(|f| f.subscribed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follow_unfollow_and_refollow() {
        let t0 = SystemTime::UNIX_EPOCH;
        let mut app = App::new("wx1".into(), "s".into());
        assert!(!app.is_following("o1"));
        assert!(app.follow("o1", t0, FollowScene::other()));
        assert!(
            !app.follow("o1", t0, FollowScene::other()),
            "already following"
        );
        app.touch("o1", t0);
        assert!(app.unfollow("o1"));
        assert!(!app.unfollow("o1"));
        assert!(app.follow("o1", t0, FollowScene::other()));
        assert_eq!(
            app.followers["o1"].last_active,
            Some(t0),
            "kept across a refollow"
        );
    }
}
