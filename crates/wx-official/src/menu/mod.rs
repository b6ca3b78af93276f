//! The custom menu (`cgi-bin/menu/*`): create with typed buttons, read, delete; conditional
//! menus per tag or platform ([`conditional`]); and the menu as it is live now, whoever set it
//! (`get_current_selfmenu_info`).
//!
//! WeChat's limits are checked before sending: 1 to [`MAX_BUTTONS`] top-level buttons, 1 to
//! [`MAX_SUB_BUTTONS`] under a parent, names of at most 16 bytes (top level) and 60 bytes
//! (sub-buttons) in UTF-8, keys of 1 to 128 bytes, URLs of at most 1024 bytes.
//!
//! ```
//! use wx_official::Request as _;
//! use wx_official::menu::{Action, Button, Create, Item};
//!
//! let menu = Create::new([
//!     Item::click("今日歌曲", "V1001_TODAY_MUSIC").into(),
//!     Button::parent("菜单", [
//!         Item::view("搜索", "https://www.soso.com/"),
//!         Item::new("扫码", Action::ScancodePush { key: "rselfmenu_0_1".into() }),
//!     ]),
//! ]);
//! assert_eq!(menu.endpoint()?.name(), "cgi-bin/menu/create");
//! // A sixth character makes a top-level name 18 bytes: refused before sending.
//! assert!(Create::new([Item::click("一二三四五六", "k").into()]).endpoint().is_err());
//! # Ok::<(), wx_core::Error>(())
//! ```

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use wx_core::{Ack, Result, lenient};

use crate::endpoint::Endpoint;
use crate::request::Request;

mod button;
pub mod conditional;

pub(crate) use button::check_buttons;
pub use button::{
    Action, Button, Item, MAX_BUTTON_NAME_BYTES, MAX_BUTTONS, MAX_KEY_BYTES,
    MAX_SUB_BUTTON_NAME_BYTES, MAX_SUB_BUTTONS, MAX_URL_BYTES,
};

/// `POST /cgi-bin/menu/create`: sets the default menu (replacing the current one).
#[derive(Clone, Debug, Serialize)]
#[must_use]
pub struct Create {
    button: Vec<Button>,
}

impl Create {
    /// A menu of `buttons` (1 to 3).
    pub fn new(buttons: impl IntoIterator<Item = Button>) -> Self {
        Create {
            button: buttons.into_iter().collect(),
        }
    }
}

impl Request for Create {
    type Response = Ack;
    fn endpoint(&self) -> Result<Endpoint> {
        check_buttons(&self.button)?;
        // Setting the same menu twice leaves the same menu.
        Ok(Endpoint::post_json("/cgi-bin/menu/create", self)?
            .with_base_token()
            .idempotent(true))
    }
}

/// `GET /cgi-bin/menu/get`: the menus set through the API (default and conditional). WeChat
/// answers `46003` when there is no menu.
#[derive(Clone, Copy, Debug, Default)]
#[must_use]
pub struct Get;

impl Request for Get {
    type Response = Menus;
    fn endpoint(&self) -> Result<Endpoint> {
        Ok(Endpoint::get("/cgi-bin/menu/get").with_base_token())
    }
}

/// `GET /cgi-bin/menu/delete`: deletes the default menu and every conditional menu.
#[derive(Clone, Copy, Debug, Default)]
#[must_use]
pub struct Delete;

impl Request for Delete {
    type Response = Ack;
    fn endpoint(&self) -> Result<Endpoint> {
        Ok(Endpoint::get("/cgi-bin/menu/delete").with_base_token())
    }
}

/// `GET /cgi-bin/get_current_selfmenu_info`: the menu users see now, whether set through the
/// API or on the admin site (where it may hold `text`, `img`, `news`... buttons with `value`).
#[derive(Clone, Copy, Debug, Default)]
#[must_use]
pub struct CurrentSelfMenu;

impl Request for CurrentSelfMenu {
    type Response = SelfMenuInfo;
    fn endpoint(&self) -> Result<Endpoint> {
        Ok(Endpoint::get("/cgi-bin/get_current_selfmenu_info").with_base_token())
    }
}

/// A button as WeChat reports it (`menu/get`, `trymatch`, `get_current_selfmenu_info`):
/// lenient, so a type WeChat adds later still decodes; [`action`](Self::action) gives the
/// typed [`Action`] of the known types.
///
/// `sub_button` comes as an array from `menu/get` and as `{"list": [...]}` from
/// `get_current_selfmenu_info`: both decode into [`sub_button`](Self::sub_button).
#[derive(Clone, Debug, Default, Deserialize)]
#[non_exhaustive]
pub struct ButtonInfo {
    /// WeChat's `type` (`None` for a parent button).
    #[serde(default, rename = "type", deserialize_with = "lenient::opt_string")]
    pub kind: Option<String>,
    /// The shown name.
    #[serde(default, deserialize_with = "lenient::string")]
    pub name: String,
    /// The event key (key types).
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub key: Option<String>,
    /// The URL (`view`, `miniprogram`).
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub url: Option<String>,
    /// The mini program's AppID (`miniprogram`).
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub appid: Option<String>,
    /// The mini program's page (`miniprogram`).
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub pagepath: Option<String>,
    /// The material (`media_id`).
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub media_id: Option<String>,
    /// The article (`article_id`, `article_view_limited`).
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub article_id: Option<String>,
    /// The content of buttons set on the admin site (`text`: the text; `img`, `voice`,
    /// `video`: a media id; `news`: a media id with [`news_info`](Self::news_info)).
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub value: Option<String>,
    /// The articles of a `news` button set on the admin site.
    #[serde(default, deserialize_with = "list_or_array")]
    pub news_info: Vec<NewsInfo>,
    /// The sub-buttons of a parent button.
    #[serde(default, deserialize_with = "list_or_array")]
    pub sub_button: Vec<ButtonInfo>,
}

impl ButtonInfo {
    /// The typed action of a known API type with its field present; `None` for a parent, a
    /// type set on the admin site or one this crate does not know.
    #[must_use]
    pub fn action(&self) -> Option<Action> {
        let s = |v: &Option<String>| v.clone();
        let key = || s(&self.key);
        Some(match self.kind.as_deref()? {
            "click" => Action::Click { key: key()? },
            "view" => Action::View { url: s(&self.url)? },
            "miniprogram" => Action::MiniProgram {
                url: s(&self.url)?,
                appid: s(&self.appid)?,
                pagepath: s(&self.pagepath)?,
            },
            "scancode_push" => Action::ScancodePush { key: key()? },
            "scancode_waitmsg" => Action::ScancodeWaitmsg { key: key()? },
            "pic_sysphoto" => Action::PicSysphoto { key: key()? },
            "pic_photo_or_album" => Action::PicPhotoOrAlbum { key: key()? },
            "pic_weixin" => Action::PicWeixin { key: key()? },
            "location_select" => Action::LocationSelect { key: key()? },
            "media_id" => Action::MediaId {
                media_id: s(&self.media_id)?,
            },
            "article_id" => Action::ArticleId {
                article_id: s(&self.article_id)?,
            },
            "article_view_limited" => Action::ArticleViewLimited {
                article_id: s(&self.article_id)?,
            },
            _ => return None,
        })
    }
}

/// One article of a `news` button set on the admin site.
#[derive(Clone, Debug, Default, Deserialize)]
#[non_exhaustive]
pub struct NewsInfo {
    /// Title.
    #[serde(default, deserialize_with = "lenient::string")]
    pub title: String,
    /// Author.
    #[serde(default, deserialize_with = "lenient::string")]
    pub author: String,
    /// Summary.
    #[serde(default, deserialize_with = "lenient::string")]
    pub digest: String,
    /// Whether the cover shows in the article.
    #[serde(default, deserialize_with = "lenient::flag")]
    pub show_cover: bool,
    /// Cover image URL.
    #[serde(default, deserialize_with = "lenient::string")]
    pub cover_url: String,
    /// The article's URL.
    #[serde(default, deserialize_with = "lenient::string")]
    pub content_url: String,
    /// The "read more" URL.
    #[serde(default, deserialize_with = "lenient::string")]
    pub source_url: String,
}

/// The answer of `menu/get`.
#[derive(Clone, Debug, Default, Deserialize)]
#[non_exhaustive]
pub struct Menus {
    /// The default menu.
    #[serde(default)]
    pub menu: MenuBody,
    /// The conditional menus.
    #[serde(default, deserialize_with = "list_or_array")]
    pub conditionalmenu: Vec<conditional::ConditionalMenu>,
}

/// The buttons of a menu as WeChat reports them.
#[derive(Clone, Debug, Default, Deserialize)]
#[non_exhaustive]
pub struct MenuBody {
    /// The top-level buttons.
    #[serde(default, deserialize_with = "list_or_array")]
    pub button: Vec<ButtonInfo>,
    /// The menu's id, when WeChat gives one.
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub menuid: Option<u64>,
}

/// The answer of `get_current_selfmenu_info`.
#[derive(Clone, Debug, Default, Deserialize)]
#[non_exhaustive]
pub struct SelfMenuInfo {
    /// Whether a menu is switched on.
    #[serde(default, deserialize_with = "lenient::flag")]
    pub is_menu_open: bool,
    /// The live menu.
    #[serde(default)]
    pub selfmenu_info: MenuBody,
}

/// A list WeChat sends as an array, as `{"list": [...]}`, or not at all (`null`).
pub(crate) fn list_or_array<'de, D, T>(d: D) -> std::result::Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Shape<T> {
        Array(Vec<T>),
        List {
            #[serde(default = "Vec::new")]
            list: Vec<T>,
        },
    }
    Ok(match Option::<Shape<T>>::deserialize(d)? {
        None => Vec::new(),
        Some(Shape::Array(v) | Shape::List { list: v }) => v,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::user::tests::{body, refused};

    #[test]
    fn create_sends_the_buttons_under_button() {
        let ep = Create::new([
            Item::click("今日歌曲", "V1001_TODAY_MUSIC").into(),
            Button::parent("菜单", [Item::view("搜索", "http://www.soso.com/")]),
        ])
        .endpoint()
        .expect("valid");
        assert_eq!(ep.path(), "/cgi-bin/menu/create");
        assert_eq!(
            body(&ep),
            json!({"button": [
                {"type": "click", "name": "今日歌曲", "key": "V1001_TODAY_MUSIC"},
                {"name": "菜单", "sub_button": [{"type": "view", "name": "搜索", "url": "http://www.soso.com/"}]}
            ]})
        );
        assert_eq!(refused(&Create::new([])).0, "button");
        assert_eq!(Get.endpoint().expect("valid").path(), "/cgi-bin/menu/get");
        assert_eq!(
            Delete.endpoint().expect("valid").path(),
            "/cgi-bin/menu/delete"
        );
        assert_eq!(
            CurrentSelfMenu.endpoint().expect("valid").path(),
            "/cgi-bin/get_current_selfmenu_info"
        );
    }

    #[test]
    fn sub_buttons_decode_as_an_array_or_as_a_list_object() {
        let get: Menus = serde_json::from_value(json!({"menu": {"button": [
            {"type": "click", "name": "test", "key": "test", "sub_button": []},
            {"name": "p", "sub_button": [{"type": "view", "name": "v", "url": "https://a.example/"}]}
        ]}}))
        .expect("array shape");
        assert_eq!(
            get.menu.button[0].action(),
            Some(Action::Click { key: "test".into() })
        );
        assert_eq!(get.menu.button[1].sub_button.len(), 1);
        let current: SelfMenuInfo = serde_json::from_value(json!({
            "is_menu_open": 1,
            "selfmenu_info": {"button": [
                {"type": "click", "name": "今日歌曲", "key": "V1001_TODAY_MUSIC"},
                {"name": "菜单", "sub_button": {"list": [
                    {"type": "view", "name": "搜索", "url": "http://www.soso.com/"},
                    {"type": "news", "name": "图文", "value": "KQb_w_Tiz-nSdVLoTV35Psmty8hGBulGhEdbb9SKs-o",
                     "news_info": {"list": [{"title": "MULTI_NEWS", "show_cover": 0,
                                             "content_url": "http://mp.weixin.qq.com/s?x"}]}}
                ]}}
            ]}
        }))
        .expect("list-object shape");
        assert!(current.is_menu_open);
        let subs = &current.selfmenu_info.button[1].sub_button;
        assert_eq!(subs.len(), 2);
        assert_eq!(
            subs[0].action(),
            Some(Action::View {
                url: "http://www.soso.com/".into()
            })
        );
        assert_eq!(subs[1].action(), None, "an admin-site type");
        assert_eq!(subs[1].news_info[0].title, "MULTI_NEWS");
        let null: ButtonInfo =
            serde_json::from_value(json!({"name": "x", "sub_button": null})).expect("null");
        assert!(null.sub_button.is_empty());
    }
}
