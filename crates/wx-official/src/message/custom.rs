//! Customer-service messages (客服消息): `message/custom/send` and `message/custom/typing`.
//!
//! Allowed within 48 hours of the user's last message or interaction, and only a limited number
//! of times since it (`45015`, `45047`). WeChat has no dedup key for them, so a send is never
//! retried after a timeout: a repeat would reach the user twice.

use serde::Serialize;
use wx_core::{Ack, InvalidInput, OpenId, Result, check_arg};

use super::{MAX_ID_LEN, MAX_URL_LEN};
use crate::endpoint::Endpoint;
use crate::oauth::MAX_OPENID_LEN;
use crate::request::Request;
use crate::url_check::check_http_url;

/// Longest text or title accepted (the client's bound; WeChat answers `45002` for content
/// over its own limit).
const MAX_TEXT_LEN: usize = 8192;

/// `POST /cgi-bin/message/custom/send`: a customer-service message to one user.
///
/// ```
/// use wx_official::Request;
/// use wx_official::message::{CustomMessage, CustomSend};
/// let send = CustomSend::new("o6_bmjrPTlm6_2sgVt7hMZOPfL2M", CustomMessage::text("Your parcel is on its way."))
///     .kf_account("service01@gh_account");
/// let ep = send.endpoint()?;
/// assert!(!ep.is_idempotent(), "never repeated after a timeout");
/// # Ok::<(), wx_core::Error>(())
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct CustomSend {
    touser: OpenId,
    message: CustomMessage,
    kf_account: Option<String>,
}

impl CustomSend {
    /// `message` to `touser`.
    pub fn new(touser: impl Into<OpenId>, message: CustomMessage) -> Self {
        CustomSend {
            touser: touser.into(),
            message,
            kf_account: None,
        }
    }

    /// Sends as customer-service account `account` (`prefix@account_id`) rather than the
    /// account itself.
    pub fn kf_account(mut self, account: impl Into<String>) -> Self {
        self.kf_account = Some(account.into());
        self
    }

    /// The message.
    #[must_use]
    pub fn message(&self) -> &CustomMessage {
        &self.message
    }
}

/// The content of a customer-service message, one variant per `msgtype`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum CustomMessage {
    /// `text`.
    Text {
        /// The text (may hold newlines and `<a href>` links).
        content: String,
    },
    /// `image`: an uploaded image.
    Image {
        /// Its media id.
        media_id: String,
    },
    /// `voice`: an uploaded voice clip.
    Voice {
        /// Its media id.
        media_id: String,
    },
    /// `video`: an uploaded video.
    Video {
        /// Its media id.
        media_id: String,
        /// The media id of its thumbnail.
        thumb_media_id: String,
        /// Its title.
        #[serde(skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        /// Its description.
        #[serde(skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    },
    /// `music`.
    Music {
        /// Its title.
        #[serde(skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        /// Its description.
        #[serde(skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        /// The music's URL.
        musicurl: String,
        /// The high-quality music's URL (played on Wi-Fi).
        hqmusicurl: String,
        /// The media id of its thumbnail.
        thumb_media_id: String,
    },
    /// `news`: one article card with a link (WeChat shows one).
    News {
        /// The article (exactly one).
        articles: Vec<NewsArticle>,
    },
    /// `mpnews`: a news material by media id.
    #[serde(rename = "mpnews")]
    MpNews {
        /// Its media id.
        media_id: String,
    },
    /// `mpnewsarticle`: a published article by its `article_id`.
    #[serde(rename = "mpnewsarticle")]
    MpNewsArticle {
        /// The article's id.
        article_id: String,
    },
    /// `msgmenu`: a menu of replies the user taps (the tap comes back as a text push with
    /// `bizmsgmenuid`).
    #[serde(rename = "msgmenu")]
    MsgMenu {
        /// The text above the options.
        head_content: String,
        /// The options.
        list: Vec<MenuItem>,
        /// The text below the options.
        tail_content: String,
    },
    /// `wxcard`: a card or coupon.
    #[serde(rename = "wxcard")]
    WxCard {
        /// The card's id.
        card_id: String,
    },
    /// `miniprogrampage`: a mini-program card.
    #[serde(rename = "miniprogrampage")]
    MiniProgramPage {
        /// The card's title.
        title: String,
        /// The mini-program's AppID.
        appid: String,
        /// The page path.
        pagepath: String,
        /// The media id of the card's image.
        thumb_media_id: String,
    },
}

/// The one article of a [`CustomMessage::News`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct NewsArticle {
    /// Its title.
    pub title: String,
    /// Its description.
    pub description: String,
    /// The page it opens.
    pub url: String,
    /// Its picture's URL.
    pub picurl: String,
}

impl NewsArticle {
    /// An article card.
    #[must_use]
    pub fn new(
        title: impl Into<String>,
        description: impl Into<String>,
        url: impl Into<String>,
        picurl: impl Into<String>,
    ) -> Self {
        NewsArticle {
            title: title.into(),
            description: description.into(),
            url: url.into(),
            picurl: picurl.into(),
        }
    }
}

/// An option of a [`CustomMessage::MsgMenu`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct MenuItem {
    /// The id the tap reports.
    pub id: String,
    /// The option's text.
    pub content: String,
}

impl MenuItem {
    /// An option.
    #[must_use]
    pub fn new(id: impl Into<String>, content: impl Into<String>) -> Self {
        MenuItem {
            id: id.into(),
            content: content.into(),
        }
    }
}

impl CustomMessage {
    /// A `text` message.
    #[must_use]
    pub fn text(content: impl Into<String>) -> Self {
        CustomMessage::Text {
            content: content.into(),
        }
    }

    /// An `image` message.
    #[must_use]
    pub fn image(media_id: impl Into<String>) -> Self {
        CustomMessage::Image {
            media_id: media_id.into(),
        }
    }

    /// A `news` message with its one article.
    #[must_use]
    pub fn news(article: NewsArticle) -> Self {
        CustomMessage::News {
            articles: vec![article],
        }
    }

    /// WeChat's `msgtype` of the message.
    #[must_use]
    pub fn msg_type(&self) -> &'static str {
        match self {
            CustomMessage::Text { .. } => "text",
            CustomMessage::Image { .. } => "image",
            CustomMessage::Voice { .. } => "voice",
            CustomMessage::Video { .. } => "video",
            CustomMessage::Music { .. } => "music",
            CustomMessage::News { .. } => "news",
            CustomMessage::MpNews { .. } => "mpnews",
            CustomMessage::MpNewsArticle { .. } => "mpnewsarticle",
            CustomMessage::MsgMenu { .. } => "msgmenu",
            CustomMessage::WxCard { .. } => "wxcard",
            CustomMessage::MiniProgramPage { .. } => "miniprogrampage",
        }
    }

    fn check(&self) -> Result<(), InvalidInput> {
        let opt = |arg, v: &Option<String>| v.as_deref().map_or(Ok(()), |v| text(arg, v));
        match self {
            CustomMessage::Text { content } => text("text.content", content),
            CustomMessage::Image { media_id } | CustomMessage::Voice { media_id } => {
                check_arg("media_id", media_id, MAX_ID_LEN)
            }
            CustomMessage::MpNews { media_id } => check_arg("media_id", media_id, MAX_ID_LEN),
            CustomMessage::Video {
                media_id,
                thumb_media_id,
                title,
                description,
            } => {
                check_arg("media_id", media_id, MAX_ID_LEN)?;
                check_arg("thumb_media_id", thumb_media_id, MAX_ID_LEN)?;
                opt("video.title", title)?;
                opt("video.description", description)
            }
            CustomMessage::Music {
                title,
                description,
                musicurl,
                hqmusicurl,
                thumb_media_id,
            } => {
                opt("music.title", title)?;
                opt("music.description", description)?;
                check_http_url("music.musicurl", musicurl, MAX_URL_LEN)?;
                check_http_url("music.hqmusicurl", hqmusicurl, MAX_URL_LEN)?;
                check_arg("thumb_media_id", thumb_media_id, MAX_ID_LEN)
            }
            CustomMessage::News { articles } => {
                let [article] = articles.as_slice() else {
                    return Err(InvalidInput::new(
                        "news.articles",
                        "must hold exactly one article (WeChat answers 45008 for more)",
                    ));
                };
                text("news.title", &article.title)?;
                check_http_url("news.url", &article.url, MAX_URL_LEN)?;
                if !article.picurl.is_empty() {
                    check_http_url("news.picurl", &article.picurl, MAX_URL_LEN)?;
                }
                Ok(())
            }
            CustomMessage::MpNewsArticle { article_id } => {
                check_arg("mpnewsarticle.article_id", article_id, MAX_ID_LEN)
            }
            CustomMessage::MsgMenu { list, .. } => {
                if list.is_empty() {
                    return Err(InvalidInput::new("msgmenu.list", "must hold an option"));
                }
                for item in list {
                    check_arg("msgmenu.list.id", &item.id, MAX_ID_LEN)?;
                    text("msgmenu.list.content", &item.content)?;
                }
                Ok(())
            }
            CustomMessage::WxCard { card_id } => check_arg("wxcard.card_id", card_id, MAX_ID_LEN),
            CustomMessage::MiniProgramPage {
                title,
                appid,
                pagepath,
                thumb_media_id,
            } => {
                text("miniprogrampage.title", title)?;
                check_arg("miniprogrampage.appid", appid, MAX_ID_LEN)?;
                check_arg("miniprogrampage.pagepath", pagepath, MAX_URL_LEN)?;
                check_arg("thumb_media_id", thumb_media_id, MAX_ID_LEN)
            }
        }
    }
}

/// A user-visible text: not empty, bounded; newlines are allowed.
fn text(argument: &'static str, value: &str) -> Result<(), InvalidInput> {
    if value.trim().is_empty() {
        return Err(InvalidInput::new(argument, "must not be empty"));
    }
    if value.len() > MAX_TEXT_LEN {
        return Err(InvalidInput::new(argument, "too long"));
    }
    Ok(())
}

#[derive(Serialize)]
struct Body<'a> {
    touser: &'a str,
    msgtype: &'static str,
    #[serde(flatten)]
    message: &'a CustomMessage,
    #[serde(skip_serializing_if = "Option::is_none")]
    customservice: Option<KfAccount<'a>>,
}

#[derive(Serialize)]
struct KfAccount<'a> {
    kf_account: &'a str,
}

impl Request for CustomSend {
    type Response = Ack;

    fn endpoint(&self) -> Result<Endpoint> {
        check_arg("touser", self.touser.as_str(), MAX_OPENID_LEN)?;
        self.message.check()?;
        if let Some(account) = &self.kf_account {
            check_arg("kf_account", account, MAX_ID_LEN)?;
            if !account.contains('@') {
                return Err(InvalidInput::new("kf_account", "must be `prefix@account_id`").into());
            }
        }
        let body = Body {
            touser: self.touser.as_str(),
            msgtype: self.message.msg_type(),
            message: &self.message,
            customservice: self
                .kf_account
                .as_deref()
                .map(|kf_account| KfAccount { kf_account }),
        };
        // Not idempotent (the default for a POST): no dedup key, never repeated after a timeout.
        Ok(Endpoint::post_json("/cgi-bin/message/custom/send", &body)?.with_base_token())
    }
}

/// Whether the user sees "typing…".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum TypingCommand {
    /// Show "typing…" (for up to 15 seconds, or until a message is sent).
    Typing,
    /// Stop showing it.
    CancelTyping,
}

/// `POST /cgi-bin/message/custom/typing`: shows or hides "typing…" to a user (within the same
/// 48-hour window as customer-service messages). A status, so it is retried after a timeout.
#[derive(Clone, Debug)]
pub struct Typing {
    /// The user.
    pub touser: OpenId,
    /// Show or hide.
    pub command: TypingCommand,
}

impl Typing {
    /// `command` for `touser`.
    #[must_use]
    pub fn new(touser: impl Into<OpenId>, command: TypingCommand) -> Self {
        Typing {
            touser: touser.into(),
            command,
        }
    }
}

impl Request for Typing {
    type Response = Ack;
    fn endpoint(&self) -> Result<Endpoint> {
        check_arg("touser", self.touser.as_str(), MAX_OPENID_LEN)?;
        let body = serde_json::json!({ "touser": self.touser, "command": self.command });
        Ok(
            Endpoint::post_json("/cgi-bin/message/custom/typing", &body)?
                .with_base_token()
                // Setting a status twice changes nothing.
                .idempotent(true),
        )
    }
}

#[cfg(test)]
mod tests {
    use http::Method;
    use serde_json::{Value, json};
    use wx_core::Error;

    use super::*;
    use crate::Auth;

    fn body_of(send: &CustomSend) -> Value {
        let ep = send.endpoint().expect("valid");
        assert_eq!(
            (ep.method(), ep.path()),
            (&Method::POST, "/cgi-bin/message/custom/send")
        );
        assert_eq!(ep.auth_kind(), Auth::BaseToken);
        assert!(!ep.is_idempotent());
        serde_json::from_slice(ep.body().expect("body")).expect("JSON")
    }

    fn refused(send: &CustomSend) -> &'static str {
        match send.endpoint() {
            Err(Error::InvalidInput(i)) => i.argument,
            other => panic!("expected InvalidInput, got {:?}", other.map(|_| ())),
        }
    }

    fn s(v: &str) -> String {
        v.to_owned()
    }

    #[test]
    fn every_message_type_encodes_as_documented() {
        let cases: Vec<(CustomMessage, Value)> = vec![
            (
                CustomMessage::text("Hello World"),
                json!({"text": {"content": "Hello World"}}),
            ),
            (
                CustomMessage::image("MEDIA_ID"),
                json!({"image": {"media_id": "MEDIA_ID"}}),
            ),
            (
                CustomMessage::Voice {
                    media_id: s("MEDIA_ID"),
                },
                json!({"voice": {"media_id": "MEDIA_ID"}}),
            ),
            (
                CustomMessage::Video {
                    media_id: s("MEDIA_ID"),
                    thumb_media_id: s("MEDIA_ID"),
                    title: Some(s("TITLE")),
                    description: Some(s("DESCRIPTION")),
                },
                json!({"video": {"media_id": "MEDIA_ID", "thumb_media_id": "MEDIA_ID", "title": "TITLE", "description": "DESCRIPTION"}}),
            ),
            (
                CustomMessage::Music {
                    title: Some(s("MUSIC_TITLE")),
                    description: None,
                    musicurl: s("https://m.example.com/a.mp3"),
                    hqmusicurl: s("https://m.example.com/a-hq.mp3"),
                    thumb_media_id: s("THUMB_MEDIA_ID"),
                },
                json!({"music": {"title": "MUSIC_TITLE", "musicurl": "https://m.example.com/a.mp3", "hqmusicurl": "https://m.example.com/a-hq.mp3", "thumb_media_id": "THUMB_MEDIA_ID"}}),
            ),
            (
                CustomMessage::news(NewsArticle::new(
                    "Happy Day",
                    "Is Really A Happy Day",
                    "https://example.com/a",
                    "https://example.com/a.png",
                )),
                json!({"news": {"articles": [{"title": "Happy Day", "description": "Is Really A Happy Day", "url": "https://example.com/a", "picurl": "https://example.com/a.png"}]}}),
            ),
            (
                CustomMessage::MpNews {
                    media_id: s("MEDIA_ID"),
                },
                json!({"mpnews": {"media_id": "MEDIA_ID"}}),
            ),
            (
                CustomMessage::MpNewsArticle {
                    article_id: s("ARTICLE_ID"),
                },
                json!({"mpnewsarticle": {"article_id": "ARTICLE_ID"}}),
            ),
            (
                CustomMessage::MsgMenu {
                    head_content: s("您对本次服务是否满意呢? "),
                    list: vec![MenuItem::new("101", "满意"), MenuItem::new("102", "不满意")],
                    tail_content: s("欢迎再次光临"),
                },
                json!({"msgmenu": {"head_content": "您对本次服务是否满意呢? ", "list": [{"id": "101", "content": "满意"}, {"id": "102", "content": "不满意"}], "tail_content": "欢迎再次光临"}}),
            ),
            (
                CustomMessage::WxCard {
                    card_id: s("123dsdajkasd231jhksad"),
                },
                json!({"wxcard": {"card_id": "123dsdajkasd231jhksad"}}),
            ),
            (
                CustomMessage::MiniProgramPage {
                    title: s("title"),
                    appid: s("appid"),
                    pagepath: s("pagepath"),
                    thumb_media_id: s("thumb_media_id"),
                },
                json!({"miniprogrampage": {"title": "title", "appid": "appid", "pagepath": "pagepath", "thumb_media_id": "thumb_media_id"}}),
            ),
        ];
        assert_eq!(cases.len(), 11, "every msgtype");
        for (message, part) in cases {
            let msgtype = message.msg_type();
            let mut expected = json!({"touser": "OPENID", "msgtype": msgtype});
            expected[msgtype] = part[msgtype].clone();
            assert_eq!(
                body_of(&CustomSend::new("OPENID", message)),
                expected,
                "{msgtype}"
            );
        }
    }

    #[test]
    fn kf_account_goes_in_customservice() {
        let send = CustomSend::new("OPENID", CustomMessage::text("hi")).kf_account("test1@kftest");
        assert_eq!(
            body_of(&send),
            json!({"touser": "OPENID", "msgtype": "text", "text": {"content": "hi"}, "customservice": {"kf_account": "test1@kftest"}})
        );
        assert_eq!(
            refused(&CustomSend::new("OPENID", CustomMessage::text("hi")).kf_account("nobody")),
            "kf_account"
        );
    }

    #[test]
    fn arguments_are_checked() {
        let to = |m| CustomSend::new("o1", m);
        assert_eq!(
            refused(&CustomSend::new("", CustomMessage::text("x"))),
            "touser"
        );
        assert_eq!(refused(&to(CustomMessage::text(" \n"))), "text.content");
        let _ = to(CustomMessage::text("line 1\nline 2"))
            .endpoint()
            .expect("newlines are text");
        assert_eq!(refused(&to(CustomMessage::image(""))), "media_id");
        assert_eq!(
            refused(&to(CustomMessage::News { articles: vec![] })),
            "news.articles"
        );
        let a = NewsArticle::new("t", "d", "https://e.com", "");
        assert_eq!(
            refused(&to(CustomMessage::News {
                articles: vec![a.clone(), a.clone()]
            })),
            "news.articles"
        );
        assert_eq!(
            refused(&to(CustomMessage::news(NewsArticle::new(
                "t", "d", "e.com", ""
            )))),
            "news.url"
        );
        let _ = to(CustomMessage::news(a))
            .endpoint()
            .expect("no picture is fine");
        assert_eq!(
            refused(&to(CustomMessage::MsgMenu {
                head_content: s(""),
                list: vec![],
                tail_content: s("")
            })),
            "msgmenu.list"
        );
        assert_eq!(
            refused(&to(CustomMessage::Music {
                title: None,
                description: None,
                musicurl: s("x"),
                hqmusicurl: s("x"),
                thumb_media_id: s("t")
            })),
            "music.musicurl"
        );
    }

    #[test]
    fn typing_encodes_and_is_a_status() {
        let ep = Typing::new("OPENID", TypingCommand::Typing)
            .endpoint()
            .expect("ok");
        assert_eq!(ep.path(), "/cgi-bin/message/custom/typing");
        assert!(ep.is_idempotent());
        let body: Value = serde_json::from_slice(ep.body().expect("body")).expect("JSON");
        assert_eq!(body, json!({"touser": "OPENID", "command": "Typing"}));
        let ep = Typing::new("OPENID", TypingCommand::CancelTyping)
            .endpoint()
            .expect("ok");
        let body: Value = serde_json::from_slice(ep.body().expect("body")).expect("JSON");
        assert_eq!(body["command"], "CancelTyping");
        assert!(Typing::new("", TypingCommand::Typing).endpoint().is_err());
    }
}
