//! The account groups (followers, tags, blacklist, QR codes, menus) on the recording mock:
//! each endpoint sends the right request with the base token and decodes the fixture bodies
//! (tests/fixtures/push/); bad limits are refused before any request.

use serde_json::{Value, json};
use wx_core::{Error, OpenId};
use wx_official::menu::{self, Action, Button, Item};
use wx_official::qrcode::{self, Scene};
use wx_official::user::{self, blacklist, tag};

use crate::common::{Setup, fixture, query, setup, token_body, walk};

fn push_fixture(name: &str) -> Vec<u8> {
    fixture(&format!("push/{name}"))
}

fn with_token() -> Setup {
    let s = setup();
    s.mock.push_json(token_body("TOK", 7200));
    s
}

/// The JSON body of the only request to `path`, after checking it carried the token.
fn sent_body(s: &Setup, path: &str) -> Value {
    let reqs = s.mock.requests_to(path);
    assert_eq!(reqs.len(), 1, "one request to {path}");
    assert!(query(&reqs[0]).contains(&("access_token".into(), "TOK".into())));
    serde_json::from_slice(reqs[0].body.as_deref().unwrap_or_default()).expect("JSON body")
}

#[tokio::test]
async fn batchget_decodes_followers_and_the_unfollowed_user_with_openid_only() {
    let s = with_token();
    s.mock.push_json(push_fixture(
        "user_info_batchget.success_mixed_subscribed.wechatpy_fixture.json",
    ));
    let openids = [
        "otvxTs4dckWG7imySrJd6jSi0CWE",
        "otvxTs_JZ6SEiP0imdhpi50fuSZg",
    ];
    let answer = s
        .client
        .send(&user::BatchInfo::new(openids))
        .await
        .expect("decodes");
    let [followed, gone] = &answer.user_info_list[..] else {
        panic!("two records: {answer:?}")
    };
    assert!(followed.subscribe);
    assert_eq!(followed.subscribe_time, Some(1_434_093_047));
    assert!(!gone.subscribe);
    assert_eq!(gone.openid.as_str(), openids[1]);
    assert_eq!(
        gone.unionid.as_ref().map(|u| u.as_str()),
        Some("oR5GjjjrbqBZbrnPwwmSxFukE41U")
    );
    assert_eq!(gone.subscribe_time, None);
    assert_eq!(
        sent_body(&s, "/cgi-bin/user/info/batchget"),
        json!({"user_list": [{"openid": openids[0], "lang": "zh_CN"}, {"openid": openids[1], "lang": "zh_CN"}]})
    );
}

#[tokio::test]
async fn the_follower_stream_stops_at_the_reported_total_despite_a_next_openid() {
    let s = with_token();
    // total 2, both on this page, and still `next_openid: OPENID2` (WeChat's last page).
    s.mock.push_json(push_fixture(
        "user_get.success_next_openid.wechatpy_fixture.json",
    ));
    let all: Vec<OpenId> = walk(&s.client, user::List::new()).await;
    assert_eq!(all, vec![OpenId::new("OPENID1"), OpenId::new("OPENID2")]);
    let reqs = s.mock.requests_to("/cgi-bin/user/get");
    assert_eq!(reqs.len(), 1, "no request past the total");
    assert!(reqs[0].query("next_openid").is_none());
}

#[tokio::test]
async fn the_follower_stream_follows_next_openid_until_the_total() {
    let s = with_token();
    let page = |ids: &[&str], next: &str| {
        json!({"total": 3, "count": ids.len(), "data": {"openid": ids}, "next_openid": next})
            .to_string()
    };
    s.mock.push_json(page(&["o1", "o2"], "o2"));
    s.mock.push_json(page(&["o3"], "o3"));
    let all: Vec<OpenId> = walk(&s.client, user::List::new()).await;
    assert_eq!(all.len(), 3);
    let reqs = s.mock.requests_to("/cgi-bin/user/get");
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[1].query("next_openid").as_deref(), Some("o2"));
}

#[tokio::test]
async fn tag_members_and_blacklist_stream_page_by_page_with_their_cursors() {
    let s = with_token();
    s.mock
        .push_json(r#"{"count":2,"data":{"openid":["o1","o2"]},"next_openid":"o2"}"#);
    s.mock.push_json(r#"{"count":0,"next_openid":""}"#);
    let members: Vec<OpenId> = walk(&s.client, tag::Members::new(134)).await;
    assert_eq!(members.len(), 2);
    let bodies: Vec<Value> = s
        .mock
        .requests_to("/cgi-bin/user/tag/get")
        .iter()
        .map(|r| serde_json::from_slice(r.body.as_deref().unwrap_or_default()).expect("json"))
        .collect();
    assert_eq!(
        bodies,
        vec![
            json!({"tagid": 134, "next_openid": ""}),
            json!({"tagid": 134, "next_openid": "o2"})
        ]
    );

    s.mock
        .push_json(r#"{"total":1,"count":1,"data":{"openid":["o9"]},"next_openid":"o9"}"#);
    let blocked: Vec<OpenId> = walk(&s.client, blacklist::List::new()).await;
    assert_eq!(blocked, vec![OpenId::new("o9")]);
    assert_eq!(
        s.mock.count("/cgi-bin/tags/members/getblacklist"),
        1,
        "stops at total"
    );
}

#[tokio::test]
async fn tags_create_list_and_tagging() {
    let s = with_token();
    s.mock.push_json(r#"{"tag":{"id":134,"name":"广东"}}"#);
    let created = s
        .client
        .send(&tag::Create::new("广东"))
        .await
        .expect("created");
    assert_eq!(created.tag.id, 134);
    assert_eq!(
        sent_body(&s, "/cgi-bin/tags/create"),
        json!({"tag": {"name": "广东"}})
    );
    s.mock.push_json(r#"{"errcode":0,"errmsg":"ok"}"#);
    s.client
        .send(&tag::BatchTagging::new(134, ["o1", "o2"]))
        .await
        .expect("tagged");
    assert_eq!(
        sent_body(&s, "/cgi-bin/tags/members/batchtagging"),
        json!({"openid_list": ["o1", "o2"], "tagid": 134})
    );
    s.mock.push_json(r#"{"tagid_list":[134,2]}"#);
    let ids = s.client.send(&tag::IdsOf::new("o1")).await.expect("ids");
    assert_eq!(ids.tagid_list, vec![134, 2]);
}

#[tokio::test]
async fn qrcode_create_decodes_the_fixture_and_builds_the_image_url() {
    let s = with_token();
    s.mock.push_json(push_fixture(
        "qrcode_create.success_temporary.wechatpy_fixture.json",
    ));
    let qr = s
        .client
        .send(&qrcode::Create::temporary(Scene::Id(123), 1800))
        .await
        .expect("created");
    assert_eq!(qr.expire_seconds, Some(1800));
    assert_eq!(qr.url, "https://weixin.qq.com/q/kZgfwMTm72WWPkovabbI");
    assert_eq!(
        qr.image_url(),
        "https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket=gQH47joAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xL2taZ2Z3TVRtNzJXV1Brb3ZhYmJJAAIEZ23sUwMEmm3sUw%3D%3D"
    );
    assert_eq!(
        sent_body(&s, "/cgi-bin/qrcode/create"),
        json!({"expire_seconds": 1800, "action_name": "QR_SCENE", "action_info": {"scene": {"scene_id": 123}}})
    );
}

#[tokio::test]
async fn menu_get_decodes_the_fixture_and_create_sends_typed_buttons() {
    let s = with_token();
    s.mock
        .push_json(push_fixture("menu_get.success.wechatpy_fixture.json"));
    let menus = s.client.send(&menu::Get).await.expect("decodes");
    assert_eq!(menus.menu.button.len(), 1);
    assert_eq!(
        menus.menu.button[0].action(),
        Some(Action::Click { key: "test".into() })
    );
    assert!(menus.menu.button[0].sub_button.is_empty());

    s.mock.push_json(r#"{"errcode":0,"errmsg":"ok"}"#);
    let create = menu::Create::new([Button::parent(
        "扫码",
        [Item::new(
            "扫一扫",
            Action::ScancodeWaitmsg {
                key: "rselfmenu_0_0".into(),
            },
        )],
    )]);
    s.client.send(&create).await.expect("created");
    assert_eq!(
        sent_body(&s, "/cgi-bin/menu/create"),
        json!({"button": [{"name": "扫码", "sub_button": [
            {"type": "scancode_waitmsg", "name": "扫一扫", "key": "rselfmenu_0_0"}]}]})
    );
}

#[tokio::test]
async fn bad_limits_are_refused_before_any_request() {
    let s = setup();
    let many = |n: usize| (0..n).map(|i| format!("o{i}")).collect::<Vec<_>>();
    let long_name = "一二三四五六"; // 18 bytes
    let results = [
        s.client
            .send(&user::BatchInfo::new(many(101)))
            .await
            .map(drop),
        s.client
            .send(&user::UpdateRemark::new("o1", "x".repeat(31)))
            .await
            .map(drop),
        s.client
            .send(&tag::Create::new("x".repeat(31)))
            .await
            .map(drop),
        s.client.send(&tag::Delete::new(2)).await.map(drop),
        s.client
            .send(&tag::BatchTagging::new(100, many(51)))
            .await
            .map(drop),
        s.client
            .send(&tag::BatchUntagging::new(100, many(51)))
            .await
            .map(drop),
        s.client
            .send(&blacklist::Block::new(many(21)))
            .await
            .map(drop),
        s.client
            .send(&blacklist::Unblock::new(many(21)))
            .await
            .map(drop),
        s.client
            .send(&qrcode::Create::temporary(1u32, 2_592_001))
            .await
            .map(drop),
        s.client
            .send(&qrcode::Create::permanent(100_001u32))
            .await
            .map(drop),
        s.client
            .send(&qrcode::Create::permanent("x".repeat(65)))
            .await
            .map(drop),
        s.client
            .send(&menu::Create::new(
                (0..4).map(|i| Item::click("b", format!("k{i}")).into()),
            ))
            .await
            .map(drop),
        s.client
            .send(&menu::Create::new([Button::parent(
                "p",
                (0..6).map(|i| Item::click("s", format!("k{i}"))),
            )]))
            .await
            .map(drop),
        s.client
            .send(&menu::Create::new([Item::click(long_name, "k").into()]))
            .await
            .map(drop),
        s.client
            .send(&menu::Create::new([
                Item::click("b", "k".repeat(129)).into()
            ]))
            .await
            .map(drop),
        s.client
            .send(&menu::conditional::AddConditional::new(
                [Item::click("b", "k").into()],
                menu::conditional::MatchRule::default(),
            ))
            .await
            .map(drop),
    ];
    for (i, r) in results.into_iter().enumerate() {
        assert!(matches!(r, Err(Error::InvalidInput(_))), "case {i}: {r:?}");
    }
    assert_eq!(s.mock.total(), 0, "nothing sent, not even a token fetch");
}
