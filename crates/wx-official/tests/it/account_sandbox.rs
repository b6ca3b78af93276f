//! The account groups end to end on the sandbox: followers (25,000 walked in pages of 10,000),
//! remarks, tags and their members, the blacklist, QR codes a simulated user scans (and that
//! expire), and menus a simulated user clicks. Sandbox limits are shown with raw calls that
//! bypass the client's own checks.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};
use wx_core::{Error, HttpRequest, MemoryTokenStore, OpenId, transport_fn};
use wx_official::Endpoint;
use wx_official::menu::conditional::{AddConditional, DelConditional, MatchRule, TryMatch};
use wx_official::menu::{self, Action, Button, Item};
use wx_official::qrcode::{self, Scene};
use wx_official::user::{self, blacklist, tag};
use wx_sandbox::{InboxMessage, SandboxError, Via, paths};

use crate::common::{
    ALICE, APPID, BOB, SandboxSetup, api_code, sandbox_builder, sandbox_setup_with, walk,
};

fn setup() -> SandboxSetup {
    sandbox_setup_with(|b| b)
}

/// A raw call that skips the client's checks, to show the sandbox's own limits.
async fn raw(s: &SandboxSetup, path: &'static str, body: Value) -> Result<Value, Error> {
    s.client
        .call(Endpoint::post_json(path, &body)?.with_base_token())
        .await
}

fn many(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:05}")).collect()
}

#[tokio::test]
async fn the_follower_stream_walks_25000_followers_in_three_requests() {
    let s = setup();
    // ALICE and BOB follow from the start: 24,998 more make 25,000.
    let added = s
        .sandbox
        .add_followers(APPID, many("o-bulk-", 24_998))
        .expect("app");
    assert_eq!(added, 24_998);
    let seen: Arc<Mutex<Vec<HttpRequest>>> = Arc::default();
    let (sandbox, log) = (s.sandbox.clone(), seen.clone());
    let recording = transport_fn(move |req: HttpRequest| {
        let (sandbox, log) = (sandbox.clone(), log.clone());
        async move {
            log.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(req.clone());
            wx_core::HttpTransport::send(&sandbox, req).await
        }
    });
    let client = sandbox_builder(&s.sandbox)
        .build(
            recording,
            MemoryTokenStore::with_clock(Arc::new(s.sandbox.clock().clone())),
        )
        .expect("valid");
    let all: Vec<OpenId> = walk(&client, user::List::new()).await;
    assert_eq!(all.len(), 25_000);
    let mut unique: Vec<&str> = all.iter().map(OpenId::as_str).collect();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), 25_000, "every follower once");
    let gets: Vec<Option<String>> = seen
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .filter(|r| r.path() == paths::USER_GET)
        .map(|r| r.query("next_openid"))
        .collect();
    // Page 1 without a cursor, pages 2 and 3 from the last openid of the page before; the third
    // page (5,000) still names a next_openid, but the total is reached: no fourth request.
    assert_eq!(
        gets,
        vec![
            None,
            Some(all[9_999].to_string()),
            Some(all[19_999].to_string())
        ]
    );
    assert_eq!(s.sandbox.count(paths::USER_GET), 3);
}

#[tokio::test]
async fn follower_records_remarks_and_batchget() {
    let s = setup();
    let alice = s
        .client
        .send(&user::Info::new(ALICE))
        .await
        .expect("a follower");
    assert!(alice.subscribe);
    assert_eq!(alice.unionid.as_ref().map(|u| u.as_str()), Some("u-alice"));
    assert_eq!(alice.subscribe_scene, "ADD_SCENE_OTHERS");
    assert!(alice.subscribe_time.is_some());
    s.client
        .send(&user::UpdateRemark::new(ALICE, "老客户"))
        .await
        .expect("set");
    let alice = s.client.send(&user::Info::new(ALICE)).await.expect("again");
    assert_eq!(alice.remark, "老客户");

    s.sandbox.set_following(APPID, BOB, false).expect("known");
    let both = s
        .client
        .send(&user::BatchInfo::new([ALICE, BOB]))
        .await
        .expect("batch");
    assert!(both.user_info_list[0].subscribe);
    assert!(!both.user_info_list[1].subscribe);
    assert_eq!(both.user_info_list[1].openid.as_str(), BOB);
    assert_eq!(both.user_info_list[1].subscribe_time, None);

    let e = s
        .client
        .send(&user::Info::new("o-nobody"))
        .await
        .expect_err("unknown");
    assert_eq!(api_code(&e), Some(40003));
    let requests = s.sandbox.total_count();
    let e = s
        .client
        .send(&user::BatchInfo::new(many("o", 101)))
        .await
        .expect_err("too many");
    assert!(matches!(e, Error::InvalidInput(_)));
    assert_eq!(s.sandbox.total_count(), requests, "refused before sending");
    let list: Vec<Value> = many("o", 101)
        .iter()
        .map(|o| json!({"openid": o}))
        .collect();
    let e = raw(&s, paths::USER_INFO_BATCHGET, json!({ "user_list": list }))
        .await
        .expect_err("sandbox limit");
    assert_eq!(api_code(&e), Some(40032));
}

#[tokio::test]
async fn tags_are_created_applied_listed_renamed_and_deleted() {
    let s = setup();
    let vip = s
        .client
        .send(&tag::Create::new("vip"))
        .await
        .expect("created")
        .tag;
    assert_eq!(vip.id, 100);
    let e = s
        .client
        .send(&tag::Create::new("vip"))
        .await
        .expect_err("duplicate");
    assert_eq!(api_code(&e), Some(45157));
    s.client
        .send(&tag::BatchTagging::new(vip.id, [ALICE, BOB]))
        .await
        .expect("tagged");
    let ids = s.client.send(&tag::IdsOf::new(ALICE)).await.expect("ids");
    assert_eq!(ids.tagid_list, vec![vip.id]);
    let members: Vec<OpenId> = walk(&s.client, tag::Members::new(vip.id)).await;
    assert_eq!(members.len(), 2);
    let tags = s.client.send(&tag::List).await.expect("list").tags;
    let names: Vec<(u64, &str, u64)> = tags
        .iter()
        .map(|t| (t.id, t.name.as_str(), t.count))
        .collect();
    assert_eq!(names, vec![(2, "星标组", 0), (100, "vip", 2)]);
    s.client
        .send(&tag::BatchUntagging::new(vip.id, [BOB]))
        .await
        .expect("untagged");
    s.client
        .send(&tag::Update::new(vip.id, "VIP 会员"))
        .await
        .expect("renamed");
    let info = s.client.send(&user::Info::new(ALICE)).await.expect("info");
    assert_eq!(info.tagid_list, vec![vip.id]);
    s.client
        .send(&tag::Delete::new(vip.id))
        .await
        .expect("deleted");
    let info = s.client.send(&user::Info::new(ALICE)).await.expect("info");
    assert!(
        info.tagid_list.is_empty(),
        "a deleted tag leaves its followers"
    );
    let e = s
        .client
        .send(&tag::Delete::new(vip.id))
        .await
        .expect_err("gone");
    assert_eq!(api_code(&e), Some(45159));
    // The sandbox's own limits, past the client's checks.
    let e = raw(&s, paths::TAGS_DELETE, json!({"tag": {"id": 2}}))
        .await
        .expect_err("reserved");
    assert_eq!(api_code(&e), Some(45058));
    let e = raw(
        &s,
        paths::TAGS_CREATE,
        json!({"tag": {"name": "x".repeat(31)}}),
    )
    .await
    .expect_err("long");
    assert_eq!(api_code(&e), Some(45158));
    let e = raw(
        &s,
        paths::TAGS_BATCHTAGGING,
        json!({"openid_list": many("o", 51), "tagid": 2}),
    )
    .await
    .expect_err("51 openids");
    assert_eq!(api_code(&e), Some(40032));
}

#[tokio::test]
async fn a_follower_carries_at_most_20_tags() {
    let s = setup();
    for i in 0..21 {
        let id = s
            .client
            .send(&tag::Create::new(format!("t{i}")))
            .await
            .expect("created")
            .tag
            .id;
        let tagged = s.client.send(&tag::BatchTagging::new(id, [ALICE])).await;
        if i < 20 {
            tagged.expect("within 20");
        } else {
            assert_eq!(api_code(&tagged.expect_err("21st")), Some(45059));
        }
    }
}

#[tokio::test]
async fn a_tags_members_stream_stops_at_the_empty_page_after_the_last() {
    let s = setup();
    let bulk = many("o-t-", 12_000);
    s.sandbox.add_followers(APPID, bulk.clone()).expect("app");
    let id = s
        .client
        .send(&tag::Create::new("big"))
        .await
        .expect("created")
        .tag
        .id;
    for chunk in bulk.chunks(tag::MAX_TAGGING) {
        s.client
            .send(&tag::BatchTagging::new(id, chunk.iter().cloned()))
            .await
            .expect("tagged");
    }
    let members: Vec<OpenId> = walk(&s.client, tag::Members::new(id)).await;
    assert_eq!(members.len(), 12_000);
    // 10,000, then 2,000 (still naming a next_openid: no total here), then the empty page.
    assert_eq!(s.sandbox.count(paths::USER_TAG_GET), 3);
}

#[tokio::test]
async fn the_blacklist_blocks_lists_and_unblocks() {
    let s = setup();
    s.client
        .send(&blacklist::Block::new([ALICE]))
        .await
        .expect("blocked");
    let blocked: Vec<OpenId> = walk(&s.client, blacklist::List::new()).await;
    assert_eq!(blocked, vec![OpenId::new(ALICE)]);
    s.client
        .send(&blacklist::Unblock::new([ALICE]))
        .await
        .expect("unblocked");
    let blocked: Vec<OpenId> = walk(&s.client, blacklist::List::new()).await;
    assert!(blocked.is_empty());
    let e = raw(
        &s,
        paths::BATCH_BLACKLIST,
        json!({"openid_list": many("o", 21)}),
    )
    .await
    .expect_err("21 openids");
    assert_eq!(api_code(&e), Some(40032));
    let e = s
        .client
        .send(&blacklist::Block::new(["o-nobody"]))
        .await
        .expect_err("unknown");
    assert_eq!(api_code(&e), Some(40003));
}

#[tokio::test]
async fn qr_codes_are_scanned_by_simulated_users_and_temporary_ones_expire() {
    let s = setup();
    s.sandbox.set_following(APPID, BOB, false).expect("known");
    let qr = s
        .client
        .send(&qrcode::Create::temporary(Scene::Str("spring".into()), 60))
        .await
        .expect("created");
    assert_eq!(qr.expire_seconds, Some(60));
    assert!(
        qr.image_url().contains("%3D%3D"),
        "ticket encoded: {}",
        qr.image_url()
    );
    let scan = s
        .sandbox
        .scan_qr(APPID, BOB, &qr.ticket)
        .await
        .expect("scanned");
    assert_eq!(scan.fields.get("Event"), Some("subscribe"));
    assert_eq!(scan.fields.get("EventKey"), Some("qrscene_spring"));
    assert_eq!(scan.fields.get("Ticket"), Some(qr.ticket.as_str()));
    let bob = s
        .client
        .send(&user::Info::new(BOB))
        .await
        .expect("now follows");
    assert!(bob.subscribe);
    assert_eq!(bob.subscribe_scene, "ADD_SCENE_QR_CODE");
    assert_eq!(bob.qr_scene_str, "spring");
    let again = s
        .sandbox
        .scan_qr(APPID, ALICE, &qr.ticket)
        .await
        .expect("scanned");
    assert_eq!(again.fields.get("Event"), Some("SCAN"));
    assert_eq!(again.fields.get("EventKey"), Some("spring"));

    let forever = s
        .client
        .send(&qrcode::Create::permanent(42u32))
        .await
        .expect("created");
    assert_eq!(forever.expire_seconds, None);
    s.sandbox.clock().advance(Duration::from_secs(61));
    assert_eq!(
        s.sandbox
            .scan_qr(APPID, ALICE, &qr.ticket)
            .await
            .expect_err("expired"),
        SandboxError::TicketExpired
    );
    let scan = s
        .sandbox
        .scan_qr(APPID, ALICE, &forever.ticket)
        .await
        .expect("permanent");
    assert_eq!(scan.fields.get("EventKey"), Some("42"));
    assert_eq!(
        s.sandbox
            .scan_qr(APPID, ALICE, "gQ-unknown")
            .await
            .expect_err("unknown"),
        SandboxError::UnknownTicket
    );

    // A string scene of digits stays a string scene.
    s.sandbox.set_following(APPID, BOB, false).expect("known");
    let digits = s
        .client
        .send(&qrcode::Create::temporary(Scene::Str("2026".into()), 60))
        .await
        .expect("created");
    s.sandbox
        .scan_qr(APPID, BOB, &digits.ticket)
        .await
        .expect("scanned");
    let bob = s.client.send(&user::Info::new(BOB)).await.expect("follows");
    assert_eq!((bob.qr_scene, bob.qr_scene_str.as_str()), (Some(0), "2026"));

    // The pitfall: a flat `action_info.scene_id` is silently scene 0 (`qrscene_0`).
    let flat = raw(
        &s,
        paths::QRCODE_CREATE,
        json!({
            "expire_seconds": 60, "action_name": "QR_SCENE", "action_info": {"scene_id": 7}
        }),
    )
    .await
    .expect("created anyway");
    s.sandbox.set_following(APPID, BOB, false).expect("known");
    let ticket = flat["ticket"].as_str().expect("ticket");
    let scan = s
        .sandbox
        .scan_qr(APPID, BOB, ticket)
        .await
        .expect("scanned");
    assert_eq!(scan.fields.get("EventKey"), Some("qrscene_0"));
}

#[tokio::test]
async fn menus_are_set_read_matched_clicked_and_deleted() {
    let s = setup();
    let e = s.client.send(&menu::Get).await.expect_err("no menu yet");
    assert_eq!(api_code(&e), Some(46003));
    let view = "https://shop.example/";
    s.client
        .send(&menu::Create::new([
            Item::click("今日歌曲", "V1001_TODAY_MUSIC").into(),
            Button::parent(
                "工具",
                [
                    Item::view("商城", view),
                    Item::new("扫码", Action::ScancodePush { key: "scan".into() }),
                    Item::new(
                        "拍照",
                        Action::PicSysphoto {
                            key: "photo".into(),
                        },
                    ),
                    Item::new(
                        "位置",
                        Action::LocationSelect {
                            key: "where".into(),
                        },
                    ),
                    Item::new(
                        "素材",
                        Action::MediaId {
                            media_id: "MEDIA-1".into(),
                        },
                    ),
                ],
            ),
        ]))
        .await
        .expect("created");
    let got = s.client.send(&menu::Get).await.expect("a menu");
    assert_eq!(
        got.menu.button[0].action(),
        Some(Action::Click {
            key: "V1001_TODAY_MUSIC".into()
        })
    );
    assert_eq!(got.menu.button[1].sub_button.len(), 5);
    let live = s
        .client
        .send(&menu::CurrentSelfMenu)
        .await
        .expect("live menu");
    assert!(live.is_menu_open);
    assert_eq!(
        live.selfmenu_info.button[1].sub_button[0].action(),
        Some(Action::View { url: view.into() }),
        "the {{\"list\": [...]}} shape decodes"
    );

    let click = s
        .sandbox
        .click_menu(APPID, ALICE, "V1001_TODAY_MUSIC")
        .await
        .expect("clicked");
    let click = click.expect("a push");
    assert_eq!(
        (click.fields.get("Event"), click.fields.get("EventKey")),
        (Some("CLICK"), Some("V1001_TODAY_MUSIC"))
    );
    let by_name = s
        .sandbox
        .click_menu(APPID, ALICE, "商城")
        .await
        .expect("clicked")
        .expect("push");
    assert_eq!(
        (by_name.fields.get("Event"), by_name.fields.get("EventKey")),
        (Some("VIEW"), Some(view))
    );
    let scan = s
        .sandbox
        .click_menu(APPID, ALICE, "scan")
        .await
        .expect("clicked")
        .expect("push");
    assert_eq!(scan.fields.get("Event"), Some("scancode_push"));
    assert!(scan.fields.get_node("ScanCodeInfo").is_some());
    let pic = s
        .sandbox
        .click_menu(APPID, ALICE, "photo")
        .await
        .expect("clicked")
        .expect("push");
    assert_eq!(
        pic.fields
            .get_node("SendPicsInfo")
            .and_then(|n| n.get("Count")),
        Some("1")
    );
    let loc = s
        .sandbox
        .click_menu(APPID, ALICE, "where")
        .await
        .expect("clicked")
        .expect("push");
    assert!(loc.fields.get_node("SendLocationInfo").is_some());
    assert!(
        s.sandbox
            .click_menu(APPID, ALICE, "素材")
            .await
            .expect("clicked")
            .is_none()
    );
    let inbox = s.sandbox.inbox(APPID, ALICE).expect("known");
    assert_eq!(
        inbox
            .last()
            .map(|m: &InboxMessage| (m.via.clone(), m.content.clone())),
        Some((Via::Platform, json!({"media_id": "MEDIA-1"})))
    );
    assert_eq!(
        s.sandbox
            .click_menu(APPID, ALICE, "nope")
            .await
            .expect_err("no button"),
        SandboxError::NoSuchButton
    );

    // A conditional menu for a tag: BOB (tagged) sees it, ALICE the default.
    let vip = s
        .client
        .send(&tag::Create::new("vip"))
        .await
        .expect("tag")
        .tag
        .id;
    s.client
        .send(&tag::BatchTagging::new(vip, [BOB]))
        .await
        .expect("tagged");
    let added = s
        .client
        .send(&AddConditional::new(
            [Item::click("会员专享", "VIP").into()],
            MatchRule::tag(vip),
        ))
        .await
        .expect("added");
    let bob_menu = s.client.send(&TryMatch::new(BOB)).await.expect("matched");
    assert_eq!(bob_menu.button[0].key.as_deref(), Some("VIP"));
    let alice_menu = s.client.send(&TryMatch::new(ALICE)).await.expect("matched");
    assert_eq!(
        alice_menu.button[0].key.as_deref(),
        Some("V1001_TODAY_MUSIC")
    );
    let vip_click = s
        .sandbox
        .click_menu(APPID, BOB, "VIP")
        .await
        .expect("clicked")
        .expect("push");
    assert_eq!(vip_click.fields.get("EventKey"), Some("VIP"));
    let got = s.client.send(&menu::Get).await.expect("menus");
    assert_eq!(got.conditionalmenu.len(), 1);
    assert_eq!(got.conditionalmenu[0].matchrule, MatchRule::tag(vip));
    s.client
        .send(&DelConditional::new(added.menuid))
        .await
        .expect("deleted");
    let e = s
        .client
        .send(&DelConditional::new(added.menuid))
        .await
        .expect_err("gone");
    assert_eq!(api_code(&e), Some(65301));

    // The sandbox's limits, past the client's checks.
    let four: Vec<Value> = (0..4)
        .map(|i| json!({"type": "click", "name": "b", "key": format!("k{i}")}))
        .collect();
    let e = raw(&s, paths::MENU_CREATE, json!({ "button": four }))
        .await
        .expect_err("4 buttons");
    assert_eq!(api_code(&e), Some(40016));
    let long = json!({"button": [{"type": "click", "name": "一二三四五六", "key": "k"}]});
    assert_eq!(
        api_code(
            &raw(&s, paths::MENU_CREATE, long)
                .await
                .expect_err("18 bytes")
        ),
        Some(40018)
    );

    s.client.send(&menu::Delete).await.expect("deleted");
    let e = s.client.send(&menu::Get).await.expect_err("no menu");
    assert_eq!(api_code(&e), Some(46003));
    let live = s.client.send(&menu::CurrentSelfMenu).await.expect("answer");
    assert!(!live.is_menu_open);
}
