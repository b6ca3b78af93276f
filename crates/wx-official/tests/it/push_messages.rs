//! Every push fixture opened through the public API (plaintext, signed as WeChat signs), with
//! its values asserted; and the check that every push/reply/crypto fixture is used.

use std::path::PathBuf;

use wx_core::ServerToken;
use wx_official::push::*;

const APPID: &str = "wx2c2769f8efd9abc2";

pub(crate) fn push_fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/push")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// Opens a fixture as a plaintext push signed as WeChat signs it.
fn open(name: &str) -> Incoming {
    let config = PushConfig::new(APPID, ServerToken::new("token"));
    let push = TestPush::new(&config).xml(&push_fixture(name));
    config
        .open(&PushQuery::from_query(&push.query), push.body.as_bytes())
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_push_reply_and_crypto_fixture_is_used() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/push");
    let sources = [
        include_str!("push_messages.rs"),
        include_str!("push_modes.rs"),
        include_str!("../../src/push/tests.rs"),
        include_str!("../../../wx-core/src/crypto_tests.rs"),
    ]
    .concat();
    for entry in std::fs::read_dir(dir).expect("fixtures/push") {
        let name = entry
            .expect("entry")
            .file_name()
            .into_string()
            .expect("utf-8");
        let ours = ["msg.", "event.", "reply.", "crypto."]
            .iter()
            .any(|p| name.starts_with(p));
        if ours {
            assert!(
                sources.contains(&format!("{name}\"")),
                "fixture {name} is not used by any push test"
            );
        }
    }
}

#[test]
fn ordinary_messages() {
    let m = open("msg.text.wechatpy_test.xml");
    assert_eq!(m.from_user.as_str(), "fromUser");
    assert_eq!(m.to_account, "toUser");
    assert_eq!(m.create_time, 1_348_831_860);
    assert_eq!(m.msg_type, "text");
    assert_eq!(m.event, None);
    assert_eq!(m.msg_id(), Some(1_234_567_890_123_456));
    let Message::Text(t) = &m.message else {
        panic!("{m:?}")
    };
    assert_eq!(
        (t.msg_id, t.content.as_str()),
        (1_234_567_890_123_456, "this is a test")
    );
    assert!(!m.is_encrypted());

    let m = open("msg.image.wechatpy_test.xml");
    let Message::Image(i) = &m.message else {
        panic!("{m:?}")
    };
    assert_eq!(
        (i.pic_url.as_str(), i.media_id.as_str()),
        ("this is a url", "media_id")
    );

    let m = open("msg.voice.wechatpy_test.xml");
    let Message::Voice(v) = &m.message else {
        panic!("{m:?}")
    };
    assert_eq!(
        (v.media_id.as_str(), v.format.as_str()),
        ("media_id", "Format")
    );
    assert_eq!(v.recognition, None);

    let m = open("msg.video.wechatpy_test.xml");
    let Message::Video(v) = &m.message else {
        panic!("{m:?}")
    };
    assert_eq!(
        (v.media_id.as_str(), v.thumb_media_id.as_str()),
        ("media_id", "thumb_media_id")
    );
    assert_eq!(m.create_time, 1_357_290_913);

    let m = open("msg.shortvideo.labrador_test.xml");
    let Message::ShortVideo(v) = &m.message else {
        panic!("{m:?}")
    };
    assert_eq!(
        (v.msg_id, v.thumb_media_id.as_str()),
        (1_234_567_890_123_456, "thumb_media_id")
    );

    let m = open("msg.location.wechatpy_test.xml");
    let Message::Location(l) = &m.message else {
        panic!("{m:?}")
    };
    assert_eq!(
        (l.latitude, l.longitude, l.scale),
        (23.134521, 113.358803, Some(20.0))
    );
    assert_eq!(l.label, "位置信息");

    let m = open("msg.link.wechatpy_test.xml");
    let Message::Link(l) = &m.message else {
        panic!("{m:?}")
    };
    assert_eq!(l.title, "公众平台官网链接");
    assert_eq!(l.description, "公众平台官网链接");
    assert_eq!(l.url, "url");

    let m = open("msg.unknown_type.wechatpy_test.xml");
    let Message::Unknown(u) = &m.message else {
        panic!("{m:?}")
    };
    assert_eq!((u.msg_type.as_str(), u.event.as_deref()), ("notsure", None));
    assert_eq!(u.fields.text_of("MsgId"), Some("1234567890123456"));
    assert_eq!(m.msg_id(), Some(1_234_567_890_123_456));
}

#[test]
fn follow_scan_location_and_menu_events() {
    let m = open("event.subscribe.wechatpy_test.xml");
    assert_eq!(m.event.as_deref(), Some("subscribe"));
    let Message::Subscribe(s) = &m.message else {
        panic!("{m:?}")
    };
    assert_eq!(
        (
            s.scene.as_deref(),
            s.ticket.as_deref(),
            s.event_key.as_deref()
        ),
        (None, None, None)
    );
    assert_eq!(m.msg_id(), None);

    let m = open("event.subscribe_qrscene.wechatpy_test.xml");
    let Message::Subscribe(s) = &m.message else {
        panic!("{m:?}")
    };
    assert_eq!(s.scene.as_deref(), Some("123123"));
    assert_eq!(s.ticket.as_deref(), Some("TICKET"));
    assert_eq!(s.event_key.as_deref(), Some("qrscene_123123"));

    let m = open("event.unsubscribe.wechatpy_test.xml");
    assert_eq!(m.message, Message::Unsubscribe);
    assert_eq!(m.from_user.as_str(), "FromUser");

    let m = open("event.SCAN.wechatpy_test.xml");
    let Message::Scan(s) = &m.message else {
        panic!("{m:?}")
    };
    assert_eq!(
        (s.scene.as_str(), s.ticket.as_deref()),
        ("SCENE_VALUE", Some("TICKET"))
    );

    let m = open("event.LOCATION.wechatpy_test.xml");
    let Message::ReportLocation(l) = &m.message else {
        panic!("{m:?}")
    };
    assert_eq!(
        (l.latitude, l.longitude, l.precision),
        (23.137466, 113.352425, Some(119.385040))
    );

    let m = open("event.CLICK.wechatpy_test.xml");
    let Message::Click(c) = &m.message else {
        panic!("{m:?}")
    };
    assert_eq!(
        (c.event_key.as_str(), c.menu_id.as_deref()),
        ("EVENTKEY", None)
    );
    assert_eq!(m.event_key(), Some("EVENTKEY"));

    let m = open("event.VIEW.wechatpy_test.xml");
    let Message::View(v) = &m.message else {
        panic!("{m:?}")
    };
    assert_eq!(v.event_key, "www.qq.com");

    let m = open("event.scancode_push.wechatpy_test.xml");
    let Message::ScancodePush(s) = &m.message else {
        panic!("{m:?}")
    };
    assert_eq!(
        (
            s.event_key.as_str(),
            s.scan_type.as_str(),
            s.scan_result.as_str()
        ),
        ("6", "qrcode", "1")
    );

    let m = open("event.scancode_waitmsg.wechatpy_test.xml");
    let Message::ScancodeWaitmsg(s) = &m.message else {
        panic!("{m:?}")
    };
    assert_eq!(s.scan_result, "2");

    let m = open("event.pic_sysphoto.wechatpy_test.xml");
    let Message::PicSysphoto(p) = &m.message else {
        panic!("{m:?}")
    };
    assert_eq!(p.count, 1);
    assert_eq!(p.pic_md5_sums, ["1b5f7c23b5bf75682a53e7b6d163e185"]);

    let m = open("event.location_select.wechatpy_test.xml");
    let Message::LocationSelect(l) = &m.message else {
        panic!("{m:?}")
    };
    assert_eq!(
        (l.latitude, l.longitude, l.scale),
        (23.0, 113.0, Some(15.0))
    );
    assert_eq!(l.label, "广州市海珠区客村艺苑路 106号");
    assert_eq!(l.poiname.as_deref(), Some(""));
}

#[test]
fn job_results_subscriptions_and_customer_service() {
    let m = open("event.TEMPLATESENDJOBFINISH.wechatpy_test.xml");
    let Message::TemplateSendJobFinish(t) = &m.message else {
        panic!("{m:?}")
    };
    assert_eq!((t.msg_id, t.status.as_str()), (200_163_836, "success"));

    let m = open("event.MASSSENDJOBFINISH.wechatpy_test.xml");
    let Message::MassSendJobFinish(j) = &m.message else {
        panic!("{m:?}")
    };
    assert_eq!((j.msg_id, j.status.as_str()), (1_000_001_625, "err(30003)"));
    assert_eq!(
        (j.total_count, j.filter_count, j.sent_count, j.error_count),
        (0, 0, 0, 0)
    );
    assert_eq!(j.copyright_check_state, Some(2));
    assert_eq!(j.copyright_results.len(), 2);
    let second = &j.copyright_results[1];
    assert_eq!((second.article_idx, second.audit_state), (2, 2));
    assert_eq!(second.original_article_url, "Url_2");
    assert!(second.can_reprint && second.need_replace_content && second.need_show_reprint_source);
    // Not modelled, still there.
    let url = m
        .fields()
        .child("ArticleUrlResult")
        .and_then(|r| r.child("ResultList"));
    assert_eq!(
        url.and_then(|l| l.child("item"))
            .and_then(|i| i.text_of("ArticleUrl")),
        Some("Url")
    );

    let m = open("event.PUBLISHJOBFINISH.wxjava_test.xml");
    let Message::PublishJobFinish(p) = &m.message else {
        panic!("{m:?}")
    };
    assert_eq!((p.publish_id.as_str(), p.publish_status), ("2247503051", 0));
    assert_eq!(
        p.article_id.as_deref(),
        Some("b5O2OUs25HBxRceL7hfReg-U9QGeq9zQjiDvy WP4Hq4")
    );
    assert_eq!(
        p.articles
            .iter()
            .map(|a| (a.idx, a.article_url.as_str()))
            .collect::<Vec<_>>(),
        [(1, "ARTICLE_URL"), (2, "ARTICLE_URL_2")]
    );

    let m = open("event.subscribe_msg_change_event_one_list.wechatpy_test.xml");
    let Message::SubscribeMsgChange(items) = &m.message else {
        panic!("{m:?}")
    };
    assert_eq!(items.len(), 1);
    assert_eq!(
        items[0].template_id,
        "VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc"
    );
    assert_eq!(items[0].status, "reject");

    let m = open("event.subscribe_msg_sent_event.wechatpy_test.xml");
    let Message::SubscribeMsgSent(items) = &m.message else {
        panic!("{m:?}")
    };
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].msg_id, 1_700_827_132_819_554_304);
    assert_eq!(
        (items[0].error_code, items[0].error_status.as_str()),
        (0, "success")
    );

    let m = open("event.kf_create_session.wechatpy_test.xml");
    let Message::KfCreateSession(k) = &m.message else {
        panic!("{m:?}")
    };
    assert_eq!(k.kf_account, "test1@test");
    let m = open("event.kf_close_session.wechatpy_test.xml");
    let Message::KfCloseSession(k) = &m.message else {
        panic!("{m:?}")
    };
    assert_eq!(k.kf_account, "test1@test");
    let m = open("event.kf_switch_session.wechatpy_test.xml");
    let Message::KfSwitchSession(k) = &m.message else {
        panic!("{m:?}")
    };
    assert_eq!(
        (k.from_kf_account.as_str(), k.to_kf_account.as_str()),
        ("test1@test", "test2@test")
    );
}

fn open_xml(xml: &str) -> Incoming {
    let config = PushConfig::new(APPID, ServerToken::new("token"));
    let push = TestPush::new(&config).xml(xml);
    config
        .open(&PushQuery::from_query(&push.query), push.body.as_bytes())
        .expect("opens")
}

fn event_xml(event: &str, rest: &str) -> String {
    format!(
        "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o-1]]></FromUserName>\
         <CreateTime>1610969440</CreateTime><MsgType><![CDATA[event]]></MsgType>\
         <Event><![CDATA[{event}]]></Event>{rest}</xml>"
    )
}

#[test]
fn event_keys_lists_ids_and_unknown_events() {
    // An empty EventKey on a plain follow; a payment's key is not a QR scene.
    let m = open_xml(&event_xml("subscribe", "<EventKey><![CDATA[]]></EventKey>"));
    let Message::Subscribe(s) = &m.message else {
        panic!("{m:?}")
    };
    assert_eq!(
        (s.scene.as_deref(), s.event_key.as_deref()),
        (None, Some(""))
    );
    let m = open_xml(&event_xml(
        "subscribe",
        "<EventKey><![CDATA[last_trade_no_4200000]]></EventKey>",
    ));
    let Message::Subscribe(s) = &m.message else {
        panic!("{m:?}")
    };
    assert_eq!(
        (s.scene.as_deref(), s.event_key.as_deref()),
        (None, Some("last_trade_no_4200000"))
    );

    // Two <List> elements (popup), a MenuId, view_miniprogram, the other pic events.
    let lists = "<SubscribeMsgPopupEvent><List><TemplateId><![CDATA[T1]]></TemplateId>\
                 <SubscribeStatusString><![CDATA[accept]]></SubscribeStatusString><PopupScene>2</PopupScene></List>\
                 <List><TemplateId><![CDATA[T2]]></TemplateId><SubscribeStatusString><![CDATA[reject]]></SubscribeStatusString>\
                 <PopupScene>2</PopupScene></List></SubscribeMsgPopupEvent>";
    let m = open_xml(&event_xml("subscribe_msg_popup_event", lists));
    let Message::SubscribeMsgPopup(items) = &m.message else {
        panic!("{m:?}")
    };
    assert_eq!(
        items
            .iter()
            .map(|i| (
                i.template_id.as_str(),
                i.status.as_str(),
                i.popup_scene.as_deref()
            ))
            .collect::<Vec<_>>(),
        [("T1", "accept", Some("2")), ("T2", "reject", Some("2"))]
    );
    let m = open_xml(&event_xml(
        "CLICK",
        "<EventKey>K</EventKey><MenuId>208396938</MenuId>",
    ));
    let Message::Click(c) = &m.message else {
        panic!("{m:?}")
    };
    assert_eq!(c.menu_id.as_deref(), Some("208396938"));
    let m = open_xml(&event_xml(
        "view_miniprogram",
        "<EventKey>pages/index</EventKey>",
    ));
    assert!(matches!(&m.message, Message::ViewMiniprogram(v) if v.event_key == "pages/index"));
    let pics = "<EventKey>6</EventKey><SendPicsInfo><Count>2</Count><PicList><item><PicMd5Sum>a</PicMd5Sum></item>\
                <item><PicMd5Sum>b</PicMd5Sum></item></PicList></SendPicsInfo>";
    let m = open_xml(&event_xml("pic_photo_or_album", pics));
    assert!(
        matches!(&m.message, Message::PicPhotoOrAlbum(p) if p.pic_md5_sums == ["a", "b"] && p.count == 2)
    );
    let m = open_xml(&event_xml("pic_weixin", pics));
    assert!(matches!(&m.message, Message::PicWeixin(_)));

    // A new event is Unknown with every field; so is a known one missing what its type needs.
    let m = open_xml(&event_xml(
        "qualification_verify_success",
        "<ExpiredTime>1442401156</ExpiredTime>",
    ));
    let Message::Unknown(u) = &m.message else {
        panic!("{m:?}")
    };
    assert_eq!(u.event.as_deref(), Some("qualification_verify_success"));
    assert_eq!(u.fields.text_of("ExpiredTime"), Some("1442401156"));
    let m = open_xml(&event_xml("SCAN", ""));
    assert!(matches!(&m.message, Message::Unknown(u) if u.event.as_deref() == Some("SCAN")));

    // 64-bit ids, MsgID spelling, Recognition, MsgDataId/Idx.
    let text = "<xml><ToUserName>gh</ToUserName><FromUserName>o</FromUserName><CreateTime>1</CreateTime>\
                <MsgType>text</MsgType><Content>hi</Content><MsgID>18446744073709551615</MsgID>\
                <MsgDataId>2247483661</MsgDataId><Idx>1</Idx></xml>";
    let m = open_xml(text);
    let Message::Text(t) = &m.message else {
        panic!("{m:?}")
    };
    assert_eq!(
        (t.msg_id, t.msg_data_id, t.idx),
        (u64::MAX, Some(2_247_483_661), Some(1))
    );
    let voice = "<xml><ToUserName>gh</ToUserName><FromUserName>o</FromUserName><CreateTime>1</CreateTime>\
                 <MsgType>voice</MsgType><MediaId>m</MediaId><Format>amr</Format>\
                 <Recognition><![CDATA[腾讯微信团队]]></Recognition><MsgId>5</MsgId></xml>";
    let m = open_xml(voice);
    assert!(
        matches!(&m.message, Message::Voice(v) if v.recognition.as_deref() == Some("腾讯微信团队"))
    );
}

#[test]
fn dedup_keys_tell_retries_from_new_pushes() {
    let a = open("msg.text.wechatpy_test.xml");
    assert_eq!(
        a.dedup_key(),
        open("msg.text.wechatpy_test.xml").dedup_key()
    );
    let b = open("event.CLICK.wechatpy_test.xml");
    let c = open("event.VIEW.wechatpy_test.xml");
    assert_ne!(a.dedup_key(), b.dedup_key());
    // Same user and second, another event: not a duplicate.
    assert_ne!(b.dedup_key(), c.dedup_key());
    let k1 = open_xml(&event_xml("CLICK", "<EventKey>A</EventKey>"));
    let k2 = open_xml(&event_xml("CLICK", "<EventKey>B</EventKey>"));
    assert_ne!(k1.dedup_key(), k2.dedup_key());
}
