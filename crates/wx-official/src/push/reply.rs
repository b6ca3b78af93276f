//! Passive replies: the XML answered in the push's HTTP response.

use wx_core::OpenId;

use super::xml::{cdata, number};

/// What to answer a push with. Rendered by [`PushConfig::reply`](super::PushConfig::reply),
/// which swaps To/From, stamps `CreateTime` and encrypts when the push was encrypted.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reply {
    /// No reply: the body `success`, which WeChat treats as "handled, nothing to show".
    Success,
    /// A text message (`Content`).
    Text(String),
    /// An image, by `MediaId`.
    Image(String),
    /// A voice message, by `MediaId`.
    Voice(String),
    /// A video: `MediaId`, `Title`, `Description`.
    Video {
        /// `MediaId`.
        media_id: String,
        /// `Title`.
        title: String,
        /// `Description`.
        description: String,
    },
    /// A music message.
    Music(Music),
    /// A news (article) message. WeChat shows only the first article since 2018-10-12.
    News(Vec<Article>),
    /// Hand the conversation to customer service (`transfer_customer_service`), optionally to
    /// one account (`TransInfo/KfAccount`).
    TransferCustomerService(Option<String>),
}

impl Reply {
    /// A text reply.
    #[must_use]
    pub fn text(content: impl Into<String>) -> Self {
        Reply::Text(content.into())
    }

    /// An image reply.
    #[must_use]
    pub fn image(media_id: impl Into<String>) -> Self {
        Reply::Image(media_id.into())
    }

    /// A voice reply.
    #[must_use]
    pub fn voice(media_id: impl Into<String>) -> Self {
        Reply::Voice(media_id.into())
    }

    /// A video reply.
    #[must_use]
    pub fn video(
        media_id: impl Into<String>,
        title: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        Reply::Video {
            media_id: media_id.into(),
            title: title.into(),
            description: description.into(),
        }
    }

    /// Transfer to customer service, any account.
    #[must_use]
    pub fn transfer_customer_service() -> Self {
        Reply::TransferCustomerService(None)
    }

    /// The reply XML from the account to `user`, or `None` for [`Reply::Success`].
    pub(crate) fn to_xml(&self, user: &OpenId, account: &str, now: u64) -> Option<String> {
        let msg_type = match self {
            Reply::Success => return None,
            Reply::Text(_) => "text",
            Reply::Image(_) => "image",
            Reply::Voice(_) => "voice",
            Reply::Video { .. } => "video",
            Reply::Music(_) => "music",
            Reply::News(_) => "news",
            Reply::TransferCustomerService(_) => "transfer_customer_service",
        };
        let mut out = String::with_capacity(256);
        out.push_str("<xml>");
        cdata(&mut out, "ToUserName", user.as_str());
        cdata(&mut out, "FromUserName", account);
        number(&mut out, "CreateTime", now);
        cdata(&mut out, "MsgType", msg_type);
        match self {
            Reply::Success => {}
            Reply::Text(content) => cdata(&mut out, "Content", content),
            Reply::Image(media_id) => media(&mut out, "Image", media_id),
            Reply::Voice(media_id) => media(&mut out, "Voice", media_id),
            Reply::Video {
                media_id,
                title,
                description,
            } => {
                out.push_str("<Video>");
                cdata(&mut out, "MediaId", media_id);
                cdata(&mut out, "Title", title);
                cdata(&mut out, "Description", description);
                out.push_str("</Video>");
            }
            Reply::Music(m) => {
                out.push_str("<Music>");
                cdata(&mut out, "Title", &m.title);
                cdata(&mut out, "Description", &m.description);
                cdata(&mut out, "ThumbMediaId", &m.thumb_media_id);
                cdata(&mut out, "MusicUrl", &m.music_url);
                cdata(&mut out, "HQMusicUrl", &m.hq_music_url);
                out.push_str("</Music>");
            }
            Reply::News(articles) => {
                number(&mut out, "ArticleCount", articles.len());
                out.push_str("<Articles>");
                for a in articles {
                    out.push_str("<item>");
                    cdata(&mut out, "Title", &a.title);
                    cdata(&mut out, "Description", &a.description);
                    cdata(&mut out, "PicUrl", &a.pic_url);
                    cdata(&mut out, "Url", &a.url);
                    out.push_str("</item>");
                }
                out.push_str("</Articles>");
            }
            Reply::TransferCustomerService(account) => {
                if let Some(kf) = account {
                    out.push_str("<TransInfo>");
                    cdata(&mut out, "KfAccount", kf);
                    out.push_str("</TransInfo>");
                }
            }
        }
        out.push_str("</xml>");
        Some(out)
    }
}

fn media(out: &mut String, wrapper: &str, media_id: &str) {
    out.push('<');
    out.push_str(wrapper);
    out.push('>');
    cdata(out, "MediaId", media_id);
    out.push_str("</");
    out.push_str(wrapper);
    out.push('>');
}

/// A music reply's fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Music {
    /// `Title`.
    pub title: String,
    /// `Description`.
    pub description: String,
    /// `MusicUrl`.
    pub music_url: String,
    /// `HQMusicUrl`: played on Wi-Fi.
    pub hq_music_url: String,
    /// `ThumbMediaId`: the cover.
    pub thumb_media_id: String,
}

/// One article of a news reply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Article {
    /// `Title`.
    pub title: String,
    /// `Description`.
    pub description: String,
    /// `PicUrl`: the cover image.
    pub pic_url: String,
    /// `Url`: opened on tap.
    pub url: String,
}

/// A rendered answer: the HTTP body and its `Content-Type` (status 200).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplyBody {
    /// The body: reply XML, an encrypted envelope, or `success`.
    pub body: String,
    /// `application/xml; charset=utf-8`, or `text/plain; charset=utf-8` for `success`.
    pub content_type: &'static str,
}

impl ReplyBody {
    /// The literal `success` (7 bytes): "no reply", accepted in every mode.
    #[must_use]
    pub fn success() -> Self {
        ReplyBody {
            body: "success".to_owned(),
            content_type: "text/plain; charset=utf-8",
        }
    }

    pub(crate) fn xml(body: String) -> Self {
        ReplyBody {
            body,
            content_type: "application/xml; charset=utf-8",
        }
    }

    /// Whether this is the `success` answer.
    #[must_use]
    pub fn is_success(&self) -> bool {
        self.body == "success"
    }
}

/// The encrypted reply envelope: `Encrypt`, `MsgSignature`, `TimeStamp`, `Nonce`.
pub(crate) fn envelope(encrypt: &str, msg_signature: &str, timestamp: &str, nonce: &str) -> String {
    let mut out = String::with_capacity(encrypt.len() + 200);
    out.push_str("<xml>");
    cdata(&mut out, "Encrypt", encrypt);
    cdata(&mut out, "MsgSignature", msg_signature);
    number(&mut out, "TimeStamp", timestamp);
    cdata(&mut out, "Nonce", nonce);
    out.push_str("</xml>");
    out
}
