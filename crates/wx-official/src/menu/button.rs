//! Typed menu buttons and WeChat's limits on them.

use serde::Serialize;
use wx_core::{InvalidInput, Result, check_arg};

use crate::url_check::check_http_url;

/// Top-level buttons of a menu at most.
pub const MAX_BUTTONS: usize = 3;
/// Sub-buttons under one top-level button at most.
pub const MAX_SUB_BUTTONS: usize = 5;
/// Longest top-level button name, in UTF-8 bytes (4 Chinese characters + change).
pub const MAX_BUTTON_NAME_BYTES: usize = 16;
/// Longest sub-button name, in UTF-8 bytes.
pub const MAX_SUB_BUTTON_NAME_BYTES: usize = 60;
/// Longest `key`, in bytes.
pub const MAX_KEY_BYTES: usize = 128;
/// Longest `url`, in bytes.
pub const MAX_URL_BYTES: usize = 1024;
/// Longest `media_id`, `article_id`, mini-program `appid` or `pagepath` accepted, in bytes.
const MAX_ID_BYTES: usize = 1024;

/// What a button does when clicked; WeChat's `type` and its field.
///
/// The `key` types push an event to the server URL with the key (`CLICK`, `scancode_push`,
/// `pic_sysphoto`...); `View` opens a page (pushing `VIEW`); `MiniProgram` opens a mini program
/// (clients too old for it open `url`); `MediaId` / `ArticleId` / `ArticleViewLimited` send or
/// show material without any push.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Action {
    /// `click`: pushes `CLICK` with the key.
    Click {
        /// The event key (1 to 128 bytes).
        key: String,
    },
    /// `view`: opens the URL (pushes `VIEW`).
    View {
        /// The page (http(s), at most 1024 bytes).
        url: String,
    },
    /// `miniprogram`: opens a page of a mini program bound to the account.
    #[serde(rename = "miniprogram")]
    MiniProgram {
        /// The page opened by clients without mini-program support.
        url: String,
        /// The mini program's AppID.
        appid: String,
        /// The mini program's page path.
        pagepath: String,
    },
    /// `scancode_push`: opens the scanner, pushes the result and shows it.
    ScancodePush {
        /// The event key.
        key: String,
    },
    /// `scancode_waitmsg`: opens the scanner, pushes the result and waits for a message.
    ScancodeWaitmsg {
        /// The event key.
        key: String,
    },
    /// `pic_sysphoto`: takes a photo and pushes it.
    PicSysphoto {
        /// The event key.
        key: String,
    },
    /// `pic_photo_or_album`: takes a photo or picks one from the album.
    PicPhotoOrAlbum {
        /// The event key.
        key: String,
    },
    /// `pic_weixin`: picks a photo from the WeChat album.
    PicWeixin {
        /// The event key.
        key: String,
    },
    /// `location_select`: picks a location and pushes it.
    LocationSelect {
        /// The event key.
        key: String,
    },
    /// `media_id`: sends a permanent material to the user (no push).
    MediaId {
        /// The permanent material.
        media_id: String,
    },
    /// `article_id`: sends a published article to the user as a card (no push).
    ArticleId {
        /// The published article.
        article_id: String,
    },
    /// `article_view_limited`: opens a published article (no push).
    ArticleViewLimited {
        /// The published article.
        article_id: String,
    },
}

impl Action {
    /// WeChat's `type` of this action.
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        match self {
            Action::Click { .. } => "click",
            Action::View { .. } => "view",
            Action::MiniProgram { .. } => "miniprogram",
            Action::ScancodePush { .. } => "scancode_push",
            Action::ScancodeWaitmsg { .. } => "scancode_waitmsg",
            Action::PicSysphoto { .. } => "pic_sysphoto",
            Action::PicPhotoOrAlbum { .. } => "pic_photo_or_album",
            Action::PicWeixin { .. } => "pic_weixin",
            Action::LocationSelect { .. } => "location_select",
            Action::MediaId { .. } => "media_id",
            Action::ArticleId { .. } => "article_id",
            Action::ArticleViewLimited { .. } => "article_view_limited",
        }
    }

    /// The event key, for the types that push one.
    #[must_use]
    pub fn key(&self) -> Option<&str> {
        match self {
            Action::Click { key }
            | Action::ScancodePush { key }
            | Action::ScancodeWaitmsg { key }
            | Action::PicSysphoto { key }
            | Action::PicPhotoOrAlbum { key }
            | Action::PicWeixin { key }
            | Action::LocationSelect { key } => Some(key),
            _ => None,
        }
    }

    fn check(&self) -> Result<()> {
        if let Some(key) = self.key() {
            check_arg("key", key, MAX_KEY_BYTES)?;
        }
        match self {
            Action::View { url } => check_http_url("url", url, MAX_URL_BYTES)?,
            Action::MiniProgram {
                url,
                appid,
                pagepath,
            } => {
                check_http_url("url", url, MAX_URL_BYTES)?;
                check_arg("appid", appid, MAX_ID_BYTES)?;
                check_arg("pagepath", pagepath, MAX_ID_BYTES)?;
            }
            Action::MediaId { media_id } => check_arg("media_id", media_id, MAX_ID_BYTES)?,
            Action::ArticleId { article_id } | Action::ArticleViewLimited { article_id } => {
                check_arg("article_id", article_id, MAX_ID_BYTES)?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// A button that acts when clicked: a name and an [`Action`]. Every sub-button is one; a
/// top-level button is one or a [`Button::Parent`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Item {
    /// The shown name.
    pub name: String,
    /// What a click does.
    #[serde(flatten)]
    pub action: Action,
}

impl Item {
    /// A button named `name` doing `action`.
    #[must_use]
    pub fn new(name: impl Into<String>, action: Action) -> Self {
        Item {
            name: name.into(),
            action,
        }
    }

    /// A `click` button.
    #[must_use]
    pub fn click(name: impl Into<String>, key: impl Into<String>) -> Self {
        Item::new(name, Action::Click { key: key.into() })
    }

    /// A `view` button.
    #[must_use]
    pub fn view(name: impl Into<String>, url: impl Into<String>) -> Self {
        Item::new(name, Action::View { url: url.into() })
    }

    fn check(&self, max_name_bytes: usize) -> Result<()> {
        check_name(&self.name, max_name_bytes)?;
        self.action.check()
    }
}

/// A top-level button: one that acts, or a parent opening 1 to 5 sub-buttons.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum Button {
    /// A button that acts itself.
    Item(Item),
    /// A button that opens its sub-buttons (it has no type of its own).
    Parent {
        /// The shown name.
        name: String,
        /// The sub-buttons (1 to 5).
        sub_button: Vec<Item>,
    },
}

impl From<Item> for Button {
    fn from(item: Item) -> Self {
        Button::Item(item)
    }
}

impl Button {
    /// A parent button named `name` opening `sub_buttons`.
    #[must_use]
    pub fn parent(name: impl Into<String>, sub_buttons: impl IntoIterator<Item = Item>) -> Self {
        Button::Parent {
            name: name.into(),
            sub_button: sub_buttons.into_iter().collect(),
        }
    }

    fn check(&self) -> Result<()> {
        match self {
            Button::Item(item) => item.check(MAX_BUTTON_NAME_BYTES),
            Button::Parent { name, sub_button } => {
                check_name(name, MAX_BUTTON_NAME_BYTES)?;
                if sub_button.is_empty() || sub_button.len() > MAX_SUB_BUTTONS {
                    return Err(InvalidInput::new(
                        "sub_button",
                        "a parent button has 1 to 5 sub-buttons",
                    )
                    .into());
                }
                sub_button
                    .iter()
                    .try_for_each(|b| b.check(MAX_SUB_BUTTON_NAME_BYTES))
            }
        }
    }
}

fn check_name(name: &str, max_bytes: usize) -> Result<()> {
    check_arg("name", name, max_bytes).map_err(|e| {
        if e.reason == "too long" {
            InvalidInput::new(
                "name",
                "too long: 16 bytes for a top-level button, 60 for a sub-button (UTF-8)",
            )
        } else {
            e
        }
    })?;
    Ok(())
}

/// Checks a menu's buttons: 1 to 3 top-level buttons, each valid.
pub(crate) fn check_buttons(buttons: &[Button]) -> Result<()> {
    if buttons.is_empty() || buttons.len() > MAX_BUTTONS {
        return Err(InvalidInput::new("button", "a menu has 1 to 3 top-level buttons").into());
    }
    buttons.iter().try_for_each(Button::check)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn key(k: &str) -> String {
        k.to_owned()
    }

    #[test]
    fn every_type_serialises_with_its_field() {
        let cases = [
            (
                Action::Click { key: key("K") },
                json!({"type": "click", "key": "K"}),
            ),
            (
                Action::View {
                    url: key("https://a.example/"),
                },
                json!({"type": "view", "url": "https://a.example/"}),
            ),
            (
                Action::MiniProgram {
                    url: key("http://mp.example"),
                    appid: key("wx286b93c14bbf93aa"),
                    pagepath: key("pages/lunar/index"),
                },
                json!({"type": "miniprogram", "url": "http://mp.example",
                       "appid": "wx286b93c14bbf93aa", "pagepath": "pages/lunar/index"}),
            ),
            (
                Action::ScancodePush { key: key("K") },
                json!({"type": "scancode_push", "key": "K"}),
            ),
            (
                Action::ScancodeWaitmsg { key: key("K") },
                json!({"type": "scancode_waitmsg", "key": "K"}),
            ),
            (
                Action::PicSysphoto { key: key("K") },
                json!({"type": "pic_sysphoto", "key": "K"}),
            ),
            (
                Action::PicPhotoOrAlbum { key: key("K") },
                json!({"type": "pic_photo_or_album", "key": "K"}),
            ),
            (
                Action::PicWeixin { key: key("K") },
                json!({"type": "pic_weixin", "key": "K"}),
            ),
            (
                Action::LocationSelect { key: key("K") },
                json!({"type": "location_select", "key": "K"}),
            ),
            (
                Action::MediaId { media_id: key("M") },
                json!({"type": "media_id", "media_id": "M"}),
            ),
            (
                Action::ArticleId {
                    article_id: key("A"),
                },
                json!({"type": "article_id", "article_id": "A"}),
            ),
            (
                Action::ArticleViewLimited {
                    article_id: key("A"),
                },
                json!({"type": "article_view_limited", "article_id": "A"}),
            ),
        ];
        for (action, expected) in cases {
            let name = action.type_name();
            assert_eq!(expected["type"], name);
            let mut with_name = expected.clone();
            with_name["name"] = json!("N");
            let item = Item::new("N", action);
            assert_eq!(
                serde_json::to_value(&item).expect("serialises"),
                with_name,
                "{name}"
            );
            check_buttons(&[item.into()]).expect(name);
        }
        let parent = Button::parent("菜单", [Item::click("赞", "V1001_GOOD")]);
        assert_eq!(
            serde_json::to_value(&parent).expect("serialises"),
            json!({"name": "菜单", "sub_button": [{"type": "click", "name": "赞", "key": "V1001_GOOD"}]})
        );
    }

    #[test]
    fn limits() {
        let b = |n: usize| -> Vec<Button> {
            (0..n)
                .map(|i| Item::click("b", format!("k{i}")).into())
                .collect()
        };
        check_buttons(&b(3)).expect("3 top-level");
        assert!(check_buttons(&b(4)).is_err());
        assert!(check_buttons(&[]).is_err());
        let subs =
            |n: usize| Button::parent("p", (0..n).map(|i| Item::click("s", format!("k{i}"))));
        check_buttons(&[subs(5)]).expect("5 sub-buttons");
        assert!(check_buttons(&[subs(6)]).is_err());
        assert!(check_buttons(&[subs(0)]).is_err());
        // Names in bytes: 5 Chinese characters are 15 bytes, 6 are 18.
        check_buttons(&[Item::click("一二三四五", "k").into()]).expect("15 bytes");
        assert!(check_buttons(&[Item::click("一二三四五六", "k").into()]).is_err());
        let sub = |name: &str| Button::parent("p", [Item::click(name, "k")]);
        check_buttons(&[sub(&"一".repeat(20))]).expect("60 bytes");
        assert!(check_buttons(&[sub(&"一".repeat(21))]).is_err());
        check_buttons(&[Item::click("b", "k".repeat(128)).into()]).expect("128-byte key");
        assert!(check_buttons(&[Item::click("b", "k".repeat(129)).into()]).is_err());
        assert!(check_buttons(&[Item::click("b", "").into()]).is_err());
        let long_url = format!("https://a.example/{}", "p".repeat(1024 - 18));
        check_buttons(&[Item::view("b", long_url.clone()).into()]).expect("1024-byte url");
        assert!(check_buttons(&[Item::view("b", format!("{long_url}p")).into()]).is_err());
        assert!(check_buttons(&[Item::view("b", "ftp://a.example").into()]).is_err());
    }
}
