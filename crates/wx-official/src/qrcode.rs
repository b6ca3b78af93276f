//! Parametric QR codes (`cgi-bin/qrcode/create`) and their image URL (`showqrcode`).
//!
//! A QR code carries a scene: a number or a string. Scanning it pushes `subscribe` with
//! `EventKey` `qrscene_<scene>` (a new follower) or `SCAN` with the bare scene (a follower),
//! plus the `Ticket`. Temporary codes live up to 30 days; permanent ones never expire but an
//! account has at most 100,000 numeric scenes.
//!
//! The request body nests the scene as `action_info.scene.scene_id`; a flat
//! `action_info.scene_id` is silently read by WeChat as scene 0 (`qrscene_0`). The body is
//! built here from [`Scene`], so it cannot be got wrong:
//!
//! ```
//! use wx_official::Request as _;
//! use wx_official::qrcode::{Create, Scene};
//!
//! let ep = Create::temporary(Scene::Str("spring-sale".into()), 7 * 24 * 3600).endpoint()?;
//! assert_eq!(ep.name(), "cgi-bin/qrcode/create");
//! // 0 is no permanent scene: refused before sending.
//! assert!(Create::permanent(0u32).endpoint().is_err());
//! assert_eq!(
//!     wx_official::qrcode::image_url("gQH47joAAAAAAAAAASxodHRwOi8v+/="),
//!     "https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket=gQH47joAAAAAAAAAASxodHRwOi8v%2B%2F%3D"
//! );
//! # Ok::<(), wx_core::Error>(())
//! ```

use serde::{Deserialize, Serialize};
use wx_core::urlenc::encode_component;
use wx_core::{InvalidInput, Result, lenient};

use crate::endpoint::Endpoint;
use crate::request::Request;

/// Longest lifetime of a temporary QR code: 30 days, in seconds.
pub const MAX_EXPIRE_SECONDS: u32 = 2_592_000;
/// Largest numeric scene of a permanent QR code (scenes are 1 to 100,000).
pub const MAX_PERMANENT_SCENE_ID: u32 = 100_000;
/// Largest numeric scene of a temporary QR code: WeChat reads it as a non-zero 32-bit integer.
pub const MAX_TEMPORARY_SCENE_ID: u32 = 2_147_483_647;
/// Longest string scene, in characters (1 to 64).
pub const MAX_SCENE_STR_CHARS: usize = 64;
/// Where WeChat serves a ticket's image.
pub const SHOWQRCODE_URL: &str = "https://mp.weixin.qq.com/cgi-bin/showqrcode";

/// What a QR code carries back in the scan push.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scene {
    /// A numeric scene (`QR_SCENE` / `QR_LIMIT_SCENE`).
    Id(u32),
    /// A string scene (`QR_STR_SCENE` / `QR_LIMIT_STR_SCENE`), 1 to 64 characters.
    Str(String),
}

impl From<u32> for Scene {
    fn from(id: u32) -> Self {
        Scene::Id(id)
    }
}

impl From<&str> for Scene {
    fn from(s: &str) -> Self {
        Scene::Str(s.to_owned())
    }
}

impl From<String> for Scene {
    fn from(s: String) -> Self {
        Scene::Str(s)
    }
}

/// `POST /cgi-bin/qrcode/create`: a temporary or permanent QR code for a scene.
#[derive(Clone, Debug)]
#[must_use]
pub struct Create {
    scene: Scene,
    /// `None`: permanent.
    expire_seconds: Option<u32>,
}

impl Create {
    /// A temporary code (`QR_SCENE` / `QR_STR_SCENE`) valid `expire_seconds` (1 to
    /// [`MAX_EXPIRE_SECONDS`], 30 days). A numeric scene is 1 to 2,147,483,647.
    pub fn temporary(scene: impl Into<Scene>, expire_seconds: u32) -> Self {
        Create {
            scene: scene.into(),
            expire_seconds: Some(expire_seconds),
        }
    }

    /// A permanent code (`QR_LIMIT_SCENE` with a scene of 1 to 100,000 / `QR_LIMIT_STR_SCENE`).
    pub fn permanent(scene: impl Into<Scene>) -> Self {
        Create {
            scene: scene.into(),
            expire_seconds: None,
        }
    }

    /// WeChat's `action_name` for this code.
    #[must_use]
    pub fn action_name(&self) -> &'static str {
        match (&self.scene, self.expire_seconds) {
            (Scene::Id(_), Some(_)) => "QR_SCENE",
            (Scene::Str(_), Some(_)) => "QR_STR_SCENE",
            (Scene::Id(_), None) => "QR_LIMIT_SCENE",
            (Scene::Str(_), None) => "QR_LIMIT_STR_SCENE",
        }
    }

    fn check(&self) -> Result<()> {
        let refuse = |arg, reason| Err(InvalidInput::new(arg, reason).into());
        if let Some(e) = self.expire_seconds
            && !(1..=MAX_EXPIRE_SECONDS).contains(&e)
        {
            return refuse("expire_seconds", "must be 1 to 2592000 (30 days)");
        }
        match &self.scene {
            Scene::Id(0) => refuse("scene_id", "must not be 0"),
            Scene::Id(id) if self.expire_seconds.is_none() && *id > MAX_PERMANENT_SCENE_ID => {
                refuse("scene_id", "a permanent scene is 1 to 100000")
            }
            Scene::Id(id) if *id > MAX_TEMPORARY_SCENE_ID => {
                refuse("scene_id", "a temporary scene is 1 to 2147483647")
            }
            Scene::Str(s) if s.is_empty() || s.chars().count() > MAX_SCENE_STR_CHARS => {
                refuse("scene_str", "must be 1 to 64 characters")
            }
            Scene::Str(s) if s.chars().any(char::is_control) => {
                refuse("scene_str", "must not contain control characters")
            }
            _ => Ok(()),
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    expire_seconds: Option<u32>,
    action_name: &'static str,
    action_info: ActionInfo<'a>,
}

#[derive(Serialize)]
struct ActionInfo<'a> {
    scene: SceneBody<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum SceneBody<'a> {
    Id { scene_id: u32 },
    Str { scene_str: &'a str },
}

impl Request for Create {
    type Response = QrCode;
    fn endpoint(&self) -> Result<Endpoint> {
        self.check()?;
        let scene = match &self.scene {
            Scene::Id(id) => SceneBody::Id { scene_id: *id },
            Scene::Str(s) => SceneBody::Str { scene_str: s },
        };
        let body = Body {
            expire_seconds: self.expire_seconds,
            action_name: self.action_name(),
            action_info: ActionInfo { scene },
        };
        Ok(Endpoint::post_json("/cgi-bin/qrcode/create", &body)?.with_base_token())
    }
}

/// A created QR code.
#[derive(Clone, Debug, Deserialize)]
#[non_exhaustive]
pub struct QrCode {
    /// The ticket: fetch the image with it ([`image_url`](Self::image_url)); the scan push
    /// carries it as `Ticket`. Not a credential: it is printed in the code itself.
    pub ticket: String,
    /// Lifetime in seconds (temporary codes only).
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub expire_seconds: Option<u64>,
    /// The URL the code encodes (make your own image from it if you like).
    #[serde(default, deserialize_with = "lenient::string")]
    pub url: String,
}

impl QrCode {
    /// The code's image on WeChat (`showqrcode?ticket=`, the ticket percent-encoded).
    #[must_use]
    pub fn image_url(&self) -> String {
        image_url(&self.ticket)
    }
}

/// The image URL of `ticket` on WeChat (`showqrcode`), the ticket percent-encoded (tickets
/// hold base64's `+`, `/` and `=`).
#[must_use]
pub fn image_url(ticket: &str) -> String {
    format!("{SHOWQRCODE_URL}?ticket={}", encode_component(ticket))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::user::tests::{body, refused};

    #[test]
    fn each_kind_nests_the_scene_under_action_info_scene() {
        let ep = Create::temporary(123u32, 604_800)
            .endpoint()
            .expect("valid");
        assert_eq!(ep.path(), "/cgi-bin/qrcode/create");
        assert!(!ep.is_idempotent());
        assert_eq!(
            body(&ep),
            json!({"expire_seconds": 604800, "action_name": "QR_SCENE",
                   "action_info": {"scene": {"scene_id": 123}}})
        );
        let ep = Create::temporary("s1", 60).endpoint().expect("valid");
        assert_eq!(
            body(&ep),
            json!({"expire_seconds": 60, "action_name": "QR_STR_SCENE",
                   "action_info": {"scene": {"scene_str": "s1"}}})
        );
        let ep = Create::permanent(100_000u32).endpoint().expect("valid");
        assert_eq!(
            body(&ep),
            json!({"action_name": "QR_LIMIT_SCENE", "action_info": {"scene": {"scene_id": 100000}}})
        );
        let ep = Create::permanent("门店-42").endpoint().expect("valid");
        assert_eq!(
            body(&ep),
            json!({"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": "门店-42"}}})
        );
    }

    #[test]
    fn limits_are_refused_before_sending() {
        let _ = Create::temporary(1u32, MAX_EXPIRE_SECONDS)
            .endpoint()
            .expect("30 days");
        assert_eq!(
            refused(&Create::temporary(1u32, MAX_EXPIRE_SECONDS + 1)).0,
            "expire_seconds"
        );
        assert_eq!(refused(&Create::temporary(1u32, 0)).0, "expire_seconds");
        assert_eq!(refused(&Create::temporary(0u32, 60)).0, "scene_id");
        let _ = Create::temporary(MAX_TEMPORARY_SCENE_ID, 60)
            .endpoint()
            .expect("i32::MAX");
        assert_eq!(refused(&Create::temporary(u32::MAX, 60)).0, "scene_id");
        assert_eq!(refused(&Create::permanent(0u32)).0, "scene_id");
        assert_eq!(refused(&Create::permanent(100_001u32)).0, "scene_id");
        let _ = Create::permanent("码".repeat(64))
            .endpoint()
            .expect("64 characters");
        assert_eq!(refused(&Create::permanent("码".repeat(65))).0, "scene_str");
        assert_eq!(refused(&Create::temporary("", 60)).0, "scene_str");
        assert_eq!(refused(&Create::temporary("a\nb", 60)).0, "scene_str");
    }

    #[test]
    fn the_answer_decodes_and_the_image_url_encodes_the_ticket() {
        let q: QrCode = serde_json::from_value(json!({
            "ticket": "gQH47joAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xL2taZ2Z3TVRtNzJXV1Brb3ZhYmJJAAIEZ23sUwMEmm3sUw==",
            "expire_seconds": 1800, "url": "https://weixin.qq.com/q/kZgfwMTm72WWPkovabbI"
        }))
        .expect("decodes");
        assert_eq!(q.expire_seconds, Some(1800));
        assert!(
            q.image_url().ends_with("JAAIEZ23sUwMEmm3sUw%3D%3D"),
            "{}",
            q.image_url()
        );
        assert_eq!(
            image_url("a+b/c"),
            format!("{SHOWQRCODE_URL}?ticket=a%2Bb%2Fc")
        );
    }
}
