//! Typed incoming messages and events.
//!
//! A known `MsgType` / `Event` whose fields fit becomes its typed variant; anything else (a new
//! event, or a known one missing a field its type needs) is [`Message::Unknown`] with every
//! field kept. Never an error.

use super::xml::Element;

/// What a user sent, or what happened: one variant per message type and event WeChat pushes.
///
/// The fields every push has (sender, account, time) are on [`Incoming`](super::Incoming);
/// every field, typed or not, stays readable through
/// [`Incoming::fields`](super::Incoming::fields).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Message {
    /// `text`: the user typed something.
    Text(Text),
    /// `image`.
    Image(Image),
    /// `voice` (with `Recognition` when speech recognition is on).
    Voice(Voice),
    /// `video`.
    Video(Video),
    /// `shortvideo`.
    ShortVideo(Video),
    /// `location`: the user shared a location.
    Location(Location),
    /// `link`.
    Link(Link),
    /// Event `subscribe`: a follow, plain or by scanning a parametric QR code.
    Subscribe(Subscribe),
    /// Event `unsubscribe`.
    Unsubscribe,
    /// Event `SCAN`: a follower scanned a parametric QR code.
    Scan(Scan),
    /// Event `LOCATION`: the location reported when a follower opens the chat.
    ReportLocation(ReportLocation),
    /// Event `CLICK`: a menu key.
    Click(MenuEvent),
    /// Event `VIEW`: a menu link (the URL is the event key).
    View(MenuEvent),
    /// Event `view_miniprogram`: a menu item opening a mini program (the page path is the key).
    ViewMiniprogram(MenuEvent),
    /// Event `scancode_push`.
    ScancodePush(ScanCode),
    /// Event `scancode_waitmsg`.
    ScancodeWaitmsg(ScanCode),
    /// Event `pic_sysphoto`.
    PicSysphoto(SendPics),
    /// Event `pic_photo_or_album`.
    PicPhotoOrAlbum(SendPics),
    /// Event `pic_weixin`.
    PicWeixin(SendPics),
    /// Event `location_select`.
    LocationSelect(LocationSelect),
    /// Event `TEMPLATESENDJOBFINISH`: the delivery result of a template message.
    TemplateSendJobFinish(TemplateSendJobFinish),
    /// Event `MASSSENDJOBFINISH`: the result of a mass send.
    MassSendJobFinish(MassSendJobFinish),
    /// Event `PUBLISHJOBFINISH`: the result of a free publish.
    PublishJobFinish(PublishJobFinish),
    /// Event `subscribe_msg_popup_event`: the user answered a subscription prompt.
    SubscribeMsgPopup(Vec<SubscribeMsgChoice>),
    /// Event `subscribe_msg_change_event`: the user changed a subscription in settings.
    SubscribeMsgChange(Vec<SubscribeMsgChoice>),
    /// Event `subscribe_msg_sent_event`: delivery results of subscription messages.
    SubscribeMsgSent(Vec<SubscribeMsgSent>),
    /// Event `kf_create_session`.
    KfCreateSession(KfSession),
    /// Event `kf_close_session`.
    KfCloseSession(KfSession),
    /// Event `kf_switch_session`.
    KfSwitchSession(KfSwitchSession),
    /// Anything else: a type or event this version does not model, or a known one without a
    /// field its type needs. Every field is kept.
    Unknown(Unknown),
}

/// A `text` message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Text {
    /// `MsgId` (64-bit).
    pub msg_id: u64,
    /// `Content`.
    pub content: String,
    /// `MsgDataId`: the article the message was sent from, if any.
    pub msg_data_id: Option<u64>,
    /// `Idx`: the article's position, with `msg_data_id`.
    pub idx: Option<u32>,
}

/// An `image` message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Image {
    /// `MsgId`.
    pub msg_id: u64,
    /// `PicUrl`.
    pub pic_url: String,
    /// `MediaId`: download it with the temporary-media API.
    pub media_id: String,
}

/// A `voice` message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Voice {
    /// `MsgId`.
    pub msg_id: u64,
    /// `MediaId`.
    pub media_id: String,
    /// `Format` (`amr`, `speex`).
    pub format: String,
    /// `Recognition`: the recognised text, when speech recognition is on.
    pub recognition: Option<String>,
}

/// A `video` or `shortvideo` message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Video {
    /// `MsgId`.
    pub msg_id: u64,
    /// `MediaId`.
    pub media_id: String,
    /// `ThumbMediaId`.
    pub thumb_media_id: String,
}

/// A `location` message.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Location {
    /// `MsgId`.
    pub msg_id: u64,
    /// `Location_X`: latitude.
    pub latitude: f64,
    /// `Location_Y`: longitude.
    pub longitude: f64,
    /// `Scale`: map zoom.
    pub scale: Option<f64>,
    /// `Label`: the place's description.
    pub label: String,
}

/// A `link` message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Link {
    /// `MsgId`.
    pub msg_id: u64,
    /// `Title`.
    pub title: String,
    /// `Description`.
    pub description: String,
    /// `Url`.
    pub url: String,
}

/// A `subscribe` event.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Subscribe {
    /// The QR scene when the follow came from a parametric QR code: `EventKey` without its
    /// `qrscene_` prefix. `None` for a plain follow, and for an `EventKey` without the prefix
    /// (such as `last_trade_no_...` after a payment), which is not a QR scene.
    pub scene: Option<String>,
    /// `Ticket` of the QR code, with a scene.
    pub ticket: Option<String>,
    /// `EventKey` as sent: absent (`None`), empty, `qrscene_...` or anything else.
    pub event_key: Option<String>,
}

/// A `SCAN` event (the user already follows the account).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Scan {
    /// `EventKey`: the scene, without prefix.
    pub scene: String,
    /// `Ticket` of the QR code.
    pub ticket: Option<String>,
}

/// A `LOCATION` event.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ReportLocation {
    /// `Latitude`.
    pub latitude: f64,
    /// `Longitude`.
    pub longitude: f64,
    /// `Precision`.
    pub precision: Option<f64>,
}

/// A menu event without a payload: `CLICK`, `VIEW`, `view_miniprogram`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MenuEvent {
    /// `EventKey`: the menu key, the URL or the mini-program page path.
    pub event_key: String,
    /// `MenuId`, sent when the menu is a conditional one.
    pub menu_id: Option<String>,
}

/// A `scancode_push` or `scancode_waitmsg` event.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScanCode {
    /// `EventKey`: the menu key.
    pub event_key: String,
    /// `ScanCodeInfo/ScanType` (`qrcode`, `barcode`).
    pub scan_type: String,
    /// `ScanCodeInfo/ScanResult`.
    pub scan_result: String,
}

/// A `pic_sysphoto`, `pic_photo_or_album` or `pic_weixin` event.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SendPics {
    /// `EventKey`: the menu key.
    pub event_key: String,
    /// `SendPicsInfo/Count`.
    pub count: u32,
    /// `SendPicsInfo/PicList/item/PicMd5Sum`, one per picture.
    pub pic_md5_sums: Vec<String>,
}

/// A `location_select` event.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct LocationSelect {
    /// `EventKey`: the menu key.
    pub event_key: String,
    /// `SendLocationInfo/Location_X`: latitude.
    pub latitude: f64,
    /// `SendLocationInfo/Location_Y`: longitude.
    pub longitude: f64,
    /// `SendLocationInfo/Scale`.
    pub scale: Option<f64>,
    /// `SendLocationInfo/Label`.
    pub label: String,
    /// `SendLocationInfo/Poiname` (often empty).
    pub poiname: Option<String>,
}

/// A `TEMPLATESENDJOBFINISH` event.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TemplateSendJobFinish {
    /// `MsgID`: the `msgid` the send call returned.
    pub msg_id: u64,
    /// `Status`: `success`, `failed:user block`, `failed: system failed`.
    pub status: String,
}

/// A `MASSSENDJOBFINISH` event.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MassSendJobFinish {
    /// `MsgID`: the `msg_id` of the mass send.
    pub msg_id: u64,
    /// `Status`: `send success`, `send fail`, `err(num)`.
    pub status: String,
    /// `TotalCount`.
    pub total_count: u64,
    /// `FilterCount`.
    pub filter_count: u64,
    /// `SentCount`.
    pub sent_count: u64,
    /// `ErrorCount`.
    pub error_count: u64,
    /// `CopyrightCheckResult/CheckState`, when a copyright check ran.
    pub copyright_check_state: Option<i64>,
    /// `CopyrightCheckResult/ResultList/item`, one per checked article.
    pub copyright_results: Vec<CopyrightResult>,
}

/// One article of a mass send's copyright check.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CopyrightResult {
    /// `ArticleIdx` (from 1).
    pub article_idx: u32,
    /// `UserDeclareState`.
    pub user_declare_state: i64,
    /// `AuditState`.
    pub audit_state: i64,
    /// `OriginalArticleUrl`.
    pub original_article_url: String,
    /// `OriginalArticleType`.
    pub original_article_type: i64,
    /// `CanReprint`.
    pub can_reprint: bool,
    /// `NeedReplaceContent`.
    pub need_replace_content: bool,
    /// `NeedShowReprintSource`.
    pub need_show_reprint_source: bool,
}

/// A `PUBLISHJOBFINISH` event (lower_snake_case children under `PublishEventInfo`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PublishJobFinish {
    /// `publish_id`, as the freepublish API returns it.
    pub publish_id: String,
    /// `publish_status`: 0 success, 1 publishing, 2 original-check failure, 3 regular failure,
    /// 4 platform review failure, 5 deleted after success, 6 banned after success.
    pub publish_status: i64,
    /// `article_id`, on success.
    pub article_id: Option<String>,
    /// `article_detail/item`: each published article.
    pub articles: Vec<PublishedArticle>,
    /// `fail_idx`: positions of articles that failed the check.
    pub fail_idx: Vec<u32>,
}

/// One article of a `PUBLISHJOBFINISH` event.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PublishedArticle {
    /// `idx` (from 1).
    pub idx: u32,
    /// `article_url`.
    pub article_url: String,
}

/// One `<List>` of a `subscribe_msg_popup_event` or `subscribe_msg_change_event`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscribeMsgChoice {
    /// `TemplateId`.
    pub template_id: String,
    /// `SubscribeStatusString`: `accept` or `reject`.
    pub status: String,
    /// `PopupScene` (popup events only): 1 from a payment, 2 from an article, 3 from the
    /// account's profile... as WeChat documents it.
    pub popup_scene: Option<String>,
}

/// One `<List>` of a `subscribe_msg_sent_event`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscribeMsgSent {
    /// `TemplateId`.
    pub template_id: String,
    /// `MsgID`.
    pub msg_id: u64,
    /// `ErrorCode`: 0 when delivered.
    pub error_code: i64,
    /// `ErrorStatus`: `success`, `failed:user block`, `failed:system failed`.
    pub error_status: String,
}

/// A `kf_create_session` or `kf_close_session` event.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KfSession {
    /// `KfAccount`.
    pub kf_account: String,
}

/// A `kf_switch_session` event.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KfSwitchSession {
    /// `FromKfAccount`.
    pub from_kf_account: String,
    /// `ToKfAccount`.
    pub to_kf_account: String,
}

/// A push this version does not model, with every field.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Unknown {
    /// `MsgType`.
    pub msg_type: String,
    /// `Event`, for `MsgType=event`.
    pub event: Option<String>,
    /// The whole `<xml>` element.
    pub fields: Element,
}

/// The typed message of a push's `<xml>` element; [`Message::Unknown`] when it does not fit.
pub(crate) fn classify(xml: &Element, msg_type: &str, event: Option<&str>) -> Message {
    let typed = match event {
        None => message(xml, msg_type),
        Some(event) => event_of(xml, event),
    };
    typed.unwrap_or_else(|| {
        Message::Unknown(Unknown {
            msg_type: msg_type.to_owned(),
            event: event.map(str::to_owned),
            fields: xml.clone(),
        })
    })
}

/// `MsgId`, or `MsgID` as some pushes spell it.
fn msg_id(xml: &Element) -> Option<u64> {
    xml.number("MsgId").or_else(|| xml.number("MsgID"))
}

fn message(x: &Element, msg_type: &str) -> Option<Message> {
    let id = msg_id(x);
    Some(match msg_type {
        "text" => Message::Text(Text {
            msg_id: id?,
            content: x.string("Content")?,
            msg_data_id: x.number("MsgDataId"),
            idx: x.number("Idx"),
        }),
        "image" => Message::Image(Image {
            msg_id: id?,
            pic_url: x.string("PicUrl").unwrap_or_default(),
            media_id: x.string("MediaId")?,
        }),
        "voice" => Message::Voice(Voice {
            msg_id: id?,
            media_id: x.string("MediaId")?,
            format: x.string("Format").unwrap_or_default(),
            recognition: x.string("Recognition"),
        }),
        "video" | "shortvideo" => {
            let video = Video {
                msg_id: id?,
                media_id: x.string("MediaId")?,
                thumb_media_id: x.string("ThumbMediaId").unwrap_or_default(),
            };
            if msg_type == "video" {
                Message::Video(video)
            } else {
                Message::ShortVideo(video)
            }
        }
        "location" => Message::Location(Location {
            msg_id: id?,
            latitude: x.number("Location_X")?,
            longitude: x.number("Location_Y")?,
            scale: x.number("Scale"),
            label: x.string("Label").unwrap_or_default(),
        }),
        "link" => Message::Link(Link {
            msg_id: id?,
            title: x.string("Title").unwrap_or_default(),
            description: x.string("Description").unwrap_or_default(),
            url: x.string("Url")?,
        }),
        _ => return None,
    })
}

fn event_of(x: &Element, event: &str) -> Option<Message> {
    let key = || x.string("EventKey");
    let menu = || {
        Some(MenuEvent {
            event_key: key()?,
            menu_id: x.string("MenuId"),
        })
    };
    Some(match event {
        "subscribe" => {
            let event_key = key();
            Message::Subscribe(Subscribe {
                scene: event_key
                    .as_deref()
                    .and_then(|k| k.strip_prefix("qrscene_"))
                    .map(str::to_owned),
                ticket: x.string("Ticket").filter(|t| !t.is_empty()),
                event_key,
            })
        }
        "unsubscribe" => Message::Unsubscribe,
        "SCAN" => Message::Scan(Scan {
            scene: key()?,
            ticket: x.string("Ticket").filter(|t| !t.is_empty()),
        }),
        "LOCATION" => Message::ReportLocation(ReportLocation {
            latitude: x.number("Latitude")?,
            longitude: x.number("Longitude")?,
            precision: x.number("Precision"),
        }),
        "CLICK" => Message::Click(menu()?),
        "VIEW" => Message::View(menu()?),
        "view_miniprogram" => Message::ViewMiniprogram(menu()?),
        "scancode_push" | "scancode_waitmsg" => {
            let info = x.child("ScanCodeInfo")?;
            let scan = ScanCode {
                event_key: key().unwrap_or_default(),
                scan_type: info.string("ScanType").unwrap_or_default(),
                scan_result: info.string("ScanResult")?,
            };
            if event == "scancode_push" {
                Message::ScancodePush(scan)
            } else {
                Message::ScancodeWaitmsg(scan)
            }
        }
        "pic_sysphoto" | "pic_photo_or_album" | "pic_weixin" => {
            let info = x.child("SendPicsInfo")?;
            let pic_md5_sums: Vec<String> = info
                .child("PicList")
                .into_iter()
                .flat_map(|list| list.children_named("item"))
                .filter_map(|item| item.string("PicMd5Sum"))
                .collect();
            let pics = SendPics {
                event_key: key().unwrap_or_default(),
                count: info
                    .number("Count")
                    .unwrap_or_else(|| u32::try_from(pic_md5_sums.len()).unwrap_or(u32::MAX)),
                pic_md5_sums,
            };
            match event {
                "pic_sysphoto" => Message::PicSysphoto(pics),
                "pic_photo_or_album" => Message::PicPhotoOrAlbum(pics),
                _ => Message::PicWeixin(pics),
            }
        }
        "location_select" => {
            let info = x.child("SendLocationInfo")?;
            Message::LocationSelect(LocationSelect {
                event_key: key().unwrap_or_default(),
                latitude: info.number("Location_X")?,
                longitude: info.number("Location_Y")?,
                scale: info.number("Scale"),
                label: info.string("Label").unwrap_or_default(),
                poiname: info.string("Poiname"),
            })
        }
        "TEMPLATESENDJOBFINISH" => Message::TemplateSendJobFinish(TemplateSendJobFinish {
            msg_id: msg_id(x)?,
            status: x.string("Status")?,
        }),
        "MASSSENDJOBFINISH" => Message::MassSendJobFinish(mass_send(x)?),
        "PUBLISHJOBFINISH" => Message::PublishJobFinish(publish(x.child("PublishEventInfo")?)?),
        "subscribe_msg_popup_event" => {
            Message::SubscribeMsgPopup(choices(x.child("SubscribeMsgPopupEvent")?))
        }
        "subscribe_msg_change_event" => {
            Message::SubscribeMsgChange(choices(x.child("SubscribeMsgChangeEvent")?))
        }
        "subscribe_msg_sent_event" => Message::SubscribeMsgSent(
            x.child("SubscribeMsgSentEvent")?
                .children_named("List")
                .map(|l| {
                    Some(SubscribeMsgSent {
                        template_id: l.string("TemplateId")?,
                        msg_id: msg_id(l)?,
                        error_code: l.number("ErrorCode").unwrap_or_default(),
                        error_status: l.string("ErrorStatus").unwrap_or_default(),
                    })
                })
                .collect::<Option<_>>()?,
        ),
        "kf_create_session" | "kf_close_session" => {
            let session = KfSession {
                kf_account: x.string("KfAccount")?,
            };
            if event == "kf_create_session" {
                Message::KfCreateSession(session)
            } else {
                Message::KfCloseSession(session)
            }
        }
        "kf_switch_session" => Message::KfSwitchSession(KfSwitchSession {
            from_kf_account: x.string("FromKfAccount")?,
            to_kf_account: x.string("ToKfAccount")?,
        }),
        _ => return None,
    })
}

fn mass_send(x: &Element) -> Option<MassSendJobFinish> {
    let check = x.child("CopyrightCheckResult");
    let flag = |item: &Element, name: &str| item.number::<i64>(name).is_some_and(|v| v != 0);
    Some(MassSendJobFinish {
        msg_id: msg_id(x)?,
        status: x.string("Status")?,
        total_count: x.number("TotalCount").unwrap_or_default(),
        filter_count: x.number("FilterCount").unwrap_or_default(),
        sent_count: x.number("SentCount").unwrap_or_default(),
        error_count: x.number("ErrorCount").unwrap_or_default(),
        copyright_check_state: check.and_then(|c| c.number("CheckState")),
        copyright_results: check
            .and_then(|c| c.child("ResultList"))
            .into_iter()
            .flat_map(|list| list.children_named("item"))
            .map(|item| CopyrightResult {
                article_idx: item.number("ArticleIdx").unwrap_or_default(),
                user_declare_state: item.number("UserDeclareState").unwrap_or_default(),
                audit_state: item.number("AuditState").unwrap_or_default(),
                original_article_url: item.string("OriginalArticleUrl").unwrap_or_default(),
                original_article_type: item.number("OriginalArticleType").unwrap_or_default(),
                can_reprint: flag(item, "CanReprint"),
                need_replace_content: flag(item, "NeedReplaceContent"),
                need_show_reprint_source: flag(item, "NeedShowReprintSource"),
            })
            .collect(),
    })
}

fn publish(info: &Element) -> Option<PublishJobFinish> {
    Some(PublishJobFinish {
        publish_id: info.string("publish_id")?.trim().to_owned(),
        publish_status: info.number("publish_status")?,
        article_id: info.string("article_id"),
        articles: info
            .child("article_detail")
            .into_iter()
            .flat_map(|d| d.children_named("item"))
            .map(|item| PublishedArticle {
                idx: item.number("idx").unwrap_or_default(),
                article_url: item.string("article_url").unwrap_or_default(),
            })
            .collect(),
        fail_idx: info
            .children_named("fail_idx")
            .filter_map(|f| f.text.trim().parse().ok())
            .collect(),
    })
}

fn choices(event: &Element) -> Vec<SubscribeMsgChoice> {
    event
        .children_named("List")
        .filter_map(|l| {
            Some(SubscribeMsgChoice {
                template_id: l.string("TemplateId")?,
                status: l.string("SubscribeStatusString").unwrap_or_default(),
                popup_scene: l.string("PopupScene"),
            })
        })
        .collect()
}
