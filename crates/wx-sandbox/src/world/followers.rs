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
    /// The account's remark for the user (`""` for none). Kept across an unfollow.
    pub(crate) remark: String,
    /// The ids of the user's tags, in tagging order. Kept across an unfollow.
    pub(crate) tag_ids: Vec<u64>,
    /// On the account's blacklist.
    pub(crate) blacklisted: bool,
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
            let before = self.followers.remove(openid);
            let (last_active, remark, tag_ids, blacklisted) = before
                .map(|f| (f.last_active, f.remark, f.tag_ids, f.blacklisted))
                .unwrap_or_default();
            self.followers.insert(
                openid.to_owned(),
                Follower {
                    subscribed: true,
                    subscribe_time: now,
                    subscribe_scene: scene.scene,
                    qr_scene: scene.qr_scene,
                    qr_scene_str: scene.qr_scene_str,
                    last_active,
                    remark,
                    tag_ids,
                    blacklisted,
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
    pub(crate) fn touch(&mut self, openid: &str, now: SystemTime) {
        if let Some(f) = self.followers.get_mut(openid) {
            f.last_active = Some(now);
        }
    }

    /// Whether `openid` follows the app now.
    pub(crate) fn is_following(&self, openid: &str) -> bool {
        self.followers.get(openid).is_some_and(|f| f.subscribed)
    }

    /// The record of `openid` if it follows the app now.
    pub(crate) fn follower_mut(&mut self, openid: &str) -> Option<&mut Follower> {
        self.followers.get_mut(openid).filter(|f| f.subscribed)
    }

    /// The openids of the followers `keep` selects, sorted: the order of the sandbox's paged
    /// lists (`user/get`, a tag's members, the blacklist).
    pub(crate) fn sorted_followers(&self, keep: impl Fn(&Follower) -> bool) -> Vec<&str> {
        let mut ids: Vec<&str> = self
            .followers
            .iter()
            .filter(|(_, f)| f.subscribed && keep(f))
            .map(|(o, _)| o.as_str())
            .collect();
        ids.sort_unstable();
        ids
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
        if let Some(f) = app.followers.get_mut("o1") {
            f.tag_ids.push(100);
        }
        app.unfollow("o1");
        assert!(app.follower_mut("o1").is_none());
        assert!(app.follow("o1", t0, FollowScene::other()));
        assert_eq!(app.followers["o1"].tag_ids, vec![100], "tags kept too");
        assert!(app.follow("o0", t0, FollowScene::other()));
        assert_eq!(app.sorted_followers(|_| true), vec!["o0", "o1"]);
        assert_eq!(app.sorted_followers(|f| f.tag_ids.is_empty()), vec!["o0"]);
    }
}
