//! The message group (template, subscription and customer-service sends) on the recording
//! mock: each endpoint's request as sent and its answer decoded, the real error bodies typed,
//! and which sends are retried after a timeout.

use futures::TryStreamExt as _;
use serde_json::{Value, json};
use wx_core::{ApiErrorKind, ErrCode, Error, RetryHint, TransportErrorKind};
use wx_official::message::{
    AddSubscribeTemplate, AddTemplate, CustomMessage, CustomSend, DeletePrivateTemplate,
    DeleteSubscribeTemplate, GetCategories, GetIndustry, GetPrivateTemplates,
    GetPubTemplateKeywords, GetPubTemplateTitles, GetSubscribeTemplates, KeywordType, SetIndustry,
    SubscribeSend, TemplateSend, Typing, TypingCommand,
};

use crate::common::{err_body, fixture, setup, token_body};

const TEMPLATE_SEND: &str = "/cgi-bin/message/template/send";
const CUSTOM_SEND: &str = "/cgi-bin/message/custom/send";
const OPENID: &str = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M";

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("JSON")
}

fn sent_body(mock: &wx_core::test_util::MockTransport, path: &str, i: usize) -> Value {
    let reqs = mock.requests_to(path);
    json_of(reqs[i].body.as_deref().expect("a body"))
}

/// The official sample request, as a `TemplateSend` (colours are no longer shown since 2023).
fn official_sample() -> TemplateSend {
    TemplateSend::new("OPENID", "ngqIpbwh8bUfcSsECmogfXcV14J0tQlEpBO27izEYtY")
        .url("http://weixin.qq.com/download")
        .miniprogram("xiaochengxuappid12345", "index?foo=bar")
        .data("first", "恭喜你购买成功!")
        .data("keyword1", "巧克力")
        .data("keyword2", "39.8元")
        .data("keyword3", "2014年9月22日")
        .data("remark", "欢迎再次购买!")
}

#[tokio::test]
async fn template_send_posts_the_documented_body_and_reads_the_64_bit_msgid() {
    let s = setup();
    s.mock.push_json(token_body("TOK", 7200));
    s.mock
        .push_json(fixture("push/template_send.success.official_doc.json"));
    let send = official_sample();
    let sent = s.client.send(&send).await.expect("sent");
    assert_eq!(sent.msgid, 200_228_332);

    let req = &s.mock.requests_to(TEMPLATE_SEND)[0];
    assert_eq!(req.query("access_token").as_deref(), Some("TOK"));
    // The documented request without its colours, plus the generated client_msg_id.
    let mut expected = json_of(&fixture("push/template_send.request.official_doc.json"));
    for (_, field) in expected["data"].as_object_mut().expect("data").iter_mut() {
        field.as_object_mut().expect("field").remove("color");
    }
    expected["client_msg_id"] = json!(send.client_msg_id());
    assert_eq!(sent_body(&s.mock, TEMPLATE_SEND, 0), expected);
}

#[tokio::test]
async fn the_errors_of_sends_are_typed_and_explained() {
    let s = setup();
    s.mock.push_json(token_body("TOK", 7200));
    let cases: Vec<(Vec<u8>, ErrCode, ApiErrorKind)> = vec![
        (
            fixture("push/template_send.error_40037_invalid_template_id.go_wxpush_issue15.json"),
            ErrCode::INVALID_TEMPLATE_ID,
            ApiErrorKind::Config,
        ),
        (
            fixture(
                "push/template_send.error_43004_require_subscribe.wxjava_mp_demo_issue103.json",
            ),
            ErrCode::REQUIRE_SUBSCRIBE,
            ApiErrorKind::RecipientNotFollowing,
        ),
        (
            err_body(40003, "invalid openid").into_bytes(),
            ErrCode::INVALID_OPENID,
            ApiErrorKind::InvalidOpenId,
        ),
        (
            err_body(47003, "argument invalid! data.thing1.value invalid").into_bytes(),
            ErrCode::ARGUMENT_INVALID,
            ApiErrorKind::InvalidArgument,
        ),
    ];
    for (body, code, kind) in cases {
        s.mock.push_json(body);
        let e = s
            .client
            .send(&TemplateSend::new(OPENID, "T").data("thing1", "x"))
            .await
            .expect_err("WeChat refused");
        let api = e.api().expect("a WeChat error");
        assert_eq!(
            (api.code, api.kind(), e.retry_hint()),
            (code, kind, RetryHint::Never)
        );
        assert!(api.request_id.is_some(), "rid split off: {api:?}");
        assert!(code.name().is_some(), "a named constant");
        if code == ErrCode::ARGUMENT_INVALID {
            assert_eq!(api.invalid_argument(), Some("data.thing1.value"));
        }
    }
    let cases: Vec<(Vec<u8>, ErrCode)> = vec![
        (
            fixture("push/custom_send.error_45015_out_of_time_limit.edgeone_pusher_issue47.json"),
            ErrCode::RESPONSE_OUT_OF_TIME_LIMIT,
        ),
        (
            err_body(45047, "out of response count limit").into_bytes(),
            ErrCode::OUT_OF_RESPONSE_COUNT_LIMIT,
        ),
    ];
    for (body, code) in cases {
        s.mock.push_json(body);
        let e = s
            .client
            .send(&CustomSend::new(OPENID, CustomMessage::text("hi")))
            .await
            .expect_err("WeChat refused");
        assert_eq!(e.api().map(|a| a.code), Some(code));
        assert_eq!(e.api_kind(), Some(ApiErrorKind::ServiceWindowClosed));
        assert_eq!(e.retry_hint(), RetryHint::Never);
    }
    // One request per refused send: none of these codes is retried.
    assert_eq!(s.mock.count(TEMPLATE_SEND), 4);
    assert_eq!(s.mock.count(CUSTOM_SEND), 2);
    assert_eq!(ErrCode(45015).kind(), ApiErrorKind::ServiceWindowClosed);
    assert_eq!(ErrCode(43101).kind(), ApiErrorKind::SubscriptionMissing);
}

#[tokio::test]
async fn a_timed_out_template_send_is_retried_with_the_same_client_msg_id() {
    let s = setup();
    s.mock.push_json(token_body("TOK", 7200));
    s.mock
        .push_error_for(TEMPLATE_SEND, TransportErrorKind::Timeout);
    s.mock
        .push_json(fixture("push/template_send.success.official_doc.json"));
    let send = TemplateSend::new(OPENID, "T").data("thing1", "x");
    let sent = s.client.send(&send).await.expect("retried, then sent");
    assert_eq!(sent.msgid, 200_228_332);
    assert_eq!(s.mock.count(TEMPLATE_SEND), 2);
    let first = sent_body(&s.mock, TEMPLATE_SEND, 0);
    assert_eq!(
        first,
        sent_body(&s.mock, TEMPLATE_SEND, 1),
        "the very same body"
    );
    assert_eq!(first["client_msg_id"], send.client_msg_id());
}

#[tokio::test]
async fn a_timed_out_customer_service_or_subscription_send_is_not_retried() {
    let s = setup();
    s.mock.push_json(token_body("TOK", 7200));
    s.mock
        .push_error_for(CUSTOM_SEND, TransportErrorKind::Timeout);
    s.mock.push_json(fixture(
        "push/custom_send.success_errmsg_empty.wechatpy_fixture.json",
    ));
    let e = s
        .client
        .send(&CustomSend::new(OPENID, CustomMessage::text("hi")))
        .await
        .expect_err("the timeout is returned");
    assert!(e.transport().is_some_and(|t| t.is_timeout()), "{e:?}");
    assert_eq!(s.mock.count(CUSTOM_SEND), 1, "never sent twice");

    let bizsend = "/cgi-bin/message/subscribe/bizsend";
    s.mock.push_error_for(bizsend, TransportErrorKind::Timeout);
    let e = s
        .client
        .send(&SubscribeSend::new(OPENID, "P").data("thing1", "x"))
        .await
        .expect_err("the timeout is returned");
    assert!(e.transport().is_some_and(|t| t.is_timeout()), "{e:?}");
    assert_eq!(s.mock.count(bizsend), 1);

    // A connect failure certainly sent nothing: that one is retried.
    s.mock
        .push_error_for(CUSTOM_SEND, TransportErrorKind::Connect);
    s.client
        .send(&CustomSend::new(OPENID, CustomMessage::text("hi")))
        .await
        .expect("retried after the connect failure");
    assert_eq!(s.mock.count(CUSTOM_SEND), 3);
}

#[tokio::test]
async fn customer_service_sends_and_typing() {
    let s = setup();
    s.mock.push_json(token_body("TOK", 7200));
    s.mock.push_json(fixture(
        "push/custom_send.success_errmsg_empty.wechatpy_fixture.json",
    ));
    let send =
        CustomSend::new(OPENID, CustomMessage::text("Hello World")).kf_account("test1@kftest");
    s.client.send(&send).await.expect("errmsg \"\" is success");
    assert_eq!(
        sent_body(&s.mock, CUSTOM_SEND, 0),
        json!({"touser": OPENID, "msgtype": "text", "text": {"content": "Hello World"},
               "customservice": {"kf_account": "test1@kftest"}})
    );

    let typing = "/cgi-bin/message/custom/typing";
    s.mock.push_error_for(typing, TransportErrorKind::Timeout);
    s.mock.push_json(r#"{"errcode":0,"errmsg":"ok"}"#);
    s.client
        .send(&Typing::new(OPENID, TypingCommand::Typing))
        .await
        .expect("a status is retried");
    assert_eq!(s.mock.count(typing), 2);
    assert_eq!(
        sent_body(&s.mock, typing, 1),
        json!({"touser": OPENID, "command": "Typing"})
    );
}

#[tokio::test]
async fn template_management_calls() {
    let s = setup();
    s.mock.push_json(token_body("TOK", 7200));
    s.mock.push_json(
        r#"{"template_list":[{"template_id":"iPk5sOIt5X_flOVKn5GrTFpncEYTojx6ddbt8WYoV5s","title":"领取奖金提醒","primary_industry":"IT科技","deputy_industry":"互联网|电子商务","content":"{ {result.DATA} }\n\n领奖金额:{ {withdrawMoney.DATA} }\n","example":"您已提交领奖申请\n\n领奖金额：xxxx元"}]}"#,
    );
    let list = s.client.send(&GetPrivateTemplates).await.expect("listed");
    assert_eq!(list.template_list.len(), 1);
    assert_eq!(list.template_list[0].title, "领取奖金提醒");
    assert_eq!(list.template_list[0].deputy_industry, "互联网|电子商务");

    s.mock.push_json(r#"{"errcode":0,"errmsg":"ok"}"#);
    s.client
        .send(&DeletePrivateTemplate::new(
            "Dyvp3-Ff0cnail_CDSzk1fIc6-9lOkxsQE7exTJbwUE",
        ))
        .await
        .expect("deleted");

    s.mock.push_json(
        r#"{"errcode":0,"errmsg":"ok","template_id":"Doclyl5uP7Aciu-qZ7mJNPtWkbkYnWBWVja26EGbNyk"}"#,
    );
    let added = s
        .client
        .send(&AddTemplate::new("TM00015"))
        .await
        .expect("added");
    assert_eq!(
        added.template_id,
        "Doclyl5uP7Aciu-qZ7mJNPtWkbkYnWBWVja26EGbNyk"
    );

    s.mock.push_json(
        r#"{"primary_industry":{"first_class":"运输与仓储","second_class":"快递"},"secondary_industry":{"first_class":"IT科技","second_class":"互联网|电子商务"}}"#,
    );
    let industries = s.client.send(&GetIndustry).await.expect("read");
    assert_eq!(industries.primary_industry.first_class, "运输与仓储");
    assert_eq!(
        industries.secondary_industry.second_class,
        "互联网|电子商务"
    );

    s.mock.push_json(r#"{"errcode":0,"errmsg":"ok"}"#);
    s.client
        .send(&SetIndustry {
            industry_id1: 1,
            industry_id2: 4,
        })
        .await
        .expect("set");

    let paths: Vec<String> = s
        .mock
        .requests()
        .iter()
        .map(|r| r.path().to_owned())
        .collect();
    assert_eq!(
        paths[1..],
        [
            "/cgi-bin/template/get_all_private_template",
            "/cgi-bin/template/del_private_template",
            "/cgi-bin/template/api_add_template",
            "/cgi-bin/template/get_industry",
            "/cgi-bin/template/api_set_industry",
        ]
    );
    assert!(
        s.mock.requests()[1..]
            .iter()
            .all(|r| r.query("access_token").as_deref() == Some("TOK"))
    );
}

#[tokio::test]
async fn subscription_calls_and_the_title_pages() {
    let s = setup();
    s.mock.push_json(token_body("TOK", 7200));
    s.mock.push_json(
        r#"{"errcode":0,"errmsg":"ok","data":[{"id":616,"name":"公交"},{"id":627,"name":"汽车"}]}"#,
    );
    let cats = s.client.send(&GetCategories).await.expect("categories");
    assert_eq!(
        cats.data.iter().map(|c| c.id).collect::<Vec<_>>(),
        [616, 627]
    );

    // Two pages of titles: the stream stops at the reported count.
    let mut first = GetPubTemplateTitles::new([616]);
    first.limit = 2;
    s.mock.push_json(r#"{"errcode":0,"errmsg":"ok","count":3,"data":[{"tid":99,"title":"付款成功通知","type":2,"categoryId":"616"},{"tid":100,"title":"发货通知","type":2,"categoryId":616}]}"#);
    s.mock.push_json(r#"{"errcode":0,"errmsg":"ok","count":3,"data":[{"tid":"101","title":"到站提醒","type":3,"categoryId":"616"}]}"#);
    let titles: Vec<_> = s
        .client
        .items(first)
        .try_collect()
        .await
        .expect("all titles");
    assert_eq!(
        titles.iter().map(|t| t.tid.as_str()).collect::<Vec<_>>(),
        ["99", "100", "101"]
    );
    let pages = s.mock.requests_to("/wxaapi/newtmpl/getpubtemplatetitles");
    assert_eq!(pages.len(), 2);
    assert_eq!(pages[1].query("start").as_deref(), Some("2"));
    assert_eq!(pages[1].query("ids").as_deref(), Some("616"));

    s.mock.push_json(r#"{"errcode":0,"errmsg":"ok","count":2,"data":[{"kid":1,"name":"物品名称","example":"名称","rule":"thing"},{"kid":2,"name":"付款时间","example":"2019年10月1日 15:01","rule":"time"}]}"#);
    let kws = s
        .client
        .send(&GetPubTemplateKeywords::new("99"))
        .await
        .expect("keywords");
    assert_eq!(kws.data[1].keyword_type(), Some(KeywordType::Time));
    assert_eq!(kws.data[1].data_key(), "time2");

    s.mock.push_json(
        r#"{"errcode":0,"errmsg":"ok","priTmplId":"9Aw5ZV1j9xdWTFEkqCpZ7mIBbSC34khK55OtzUPl0rU"}"#,
    );
    let added = s
        .client
        .send(&AddSubscribeTemplate::new("99", [1, 2]).scene_desc("付款通知"))
        .await
        .expect("added");
    assert_eq!(
        added.pri_tmpl_id,
        "9Aw5ZV1j9xdWTFEkqCpZ7mIBbSC34khK55OtzUPl0rU"
    );
    assert_eq!(
        sent_body(&s.mock, "/wxaapi/newtmpl/addtemplate", 0),
        json!({"tid": "99", "kidList": [1, 2], "sceneDesc": "付款通知"})
    );

    s.mock.push_json(r#"{"errcode":0,"errmsg":"ok","data":[{"priTmplId":"9Aw5ZV1j9xdWTFEkqCpZ7mIBbSC34khK55OtzUPl0rU","title":"付款成功通知","content":"物品名称:{{thing1.DATA}}\n付款时间:{{time2.DATA}}\n","example":"物品名称:名称\n","type":2}]}"#);
    let mine = s.client.send(&GetSubscribeTemplates).await.expect("mine");
    assert_eq!(mine.data[0].kind, 2);
    assert!(mine.data[0].content.contains("{{time2.DATA}}"));

    s.mock.push_json(r#"{"errcode":0,"errmsg":"ok"}"#);
    let send = SubscribeSend::new(OPENID, &*added.pri_tmpl_id)
        .page("https://shop.example.com/orders/1001")
        .data("thing1", "咖啡豆")
        .data("time2", "2019年10月1日 15:01");
    s.client.send(&send).await.expect("sent");
    assert_eq!(
        sent_body(&s.mock, "/cgi-bin/message/subscribe/bizsend", 0),
        json!({"touser": OPENID, "template_id": added.pri_tmpl_id,
               "page": "https://shop.example.com/orders/1001",
               "data": {"thing1": {"value": "咖啡豆"}, "time2": {"value": "2019年10月1日 15:01"}}})
    );

    s.mock.push_json(r#"{"errcode":0,"errmsg":"ok"}"#);
    s.client
        .send(&DeleteSubscribeTemplate::new(added.pri_tmpl_id.clone()))
        .await
        .expect("deleted");

    // A value breaking its keyword's rule is refused before any request.
    let before = s.mock.total();
    let e = s
        .client
        .send(&SubscribeSend::new(OPENID, "P").data("phrase3", "not Chinese"))
        .await
        .expect_err("refused");
    assert!(
        matches!(e, Error::InvalidInput(ref i) if i.argument == "data"),
        "{e:?}"
    );
    assert_eq!(s.mock.total(), before);
}
