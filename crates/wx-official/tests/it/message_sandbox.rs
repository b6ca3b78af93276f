//! The message group against the sandbox: WeChat's rules for each send (who may receive what,
//! and when), delivery into the user's inbox, the TEMPLATESENDJOBFINISH push, the template
//! libraries, and the retry guarantees with an answer lost after the sandbox acted.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt as _;
use http::{Method, Request, Response};
use serde_json::json;
use wx_core::{
    ApiErrorKind, ErrCode, Error, HttpRequest, HttpResponse, HttpTransport, MemoryTokenStore,
    ServerToken, TransportError, TransportErrorKind,
};
use wx_official::message::{
    AddSubscribeTemplate, AddTemplate, CustomMessage, CustomSend, DeletePrivateTemplate,
    DeleteSubscribeTemplate, GetCategories, GetIndustry, GetPrivateTemplates,
    GetPubTemplateKeywords, GetPubTemplateTitles, GetSubscribeTemplates, MenuItem, NewsArticle,
    SetIndustry, SubscribeSend, TemplateSend, Typing, TypingCommand,
};
use wx_official::push::{Message, PushConfig, PushQuery};
use wx_official::{Endpoint, OfficialAccount};
use wx_sandbox::{PushOutcome, PushTarget, Sandbox, ServerConfig, UserAction, Via, paths};

use crate::common::{
    ALICE, APPID, BOB, SandboxSetup, sandbox, sandbox_builder, sandbox_setup_with,
};

const SHIPPED: &str = "TPL-order-shipped-0123456789abcdefghijklmno";
const NOTICE: &str = "SUB-parcel-signed-0123456789abcdefghijklmno";

fn setup() -> SandboxSetup {
    let s = sandbox_setup_with(|b| b);
    s.sandbox
        .add_template(
            APPID,
            SHIPPED,
            "订单发货通知",
            "商品:{{thing1.DATA}}\n单号:{{character_string2.DATA}}",
        )
        .expect("app");
    s.sandbox
        .add_subscribe_template(
            APPID,
            NOTICE,
            "包裹签收提醒",
            &[("快递单号", "character_string1"), ("签收时间", "time2")],
        )
        .expect("app");
    s
}

fn shipped(to: &str) -> TemplateSend {
    TemplateSend::new(to, SHIPPED)
        .url("https://shop.example.com/orders/1001")
        .data("thing1", "咖啡豆 1 kg")
        .data("character_string2", "SF1234567890")
}

fn code(e: &Error) -> Option<ErrCode> {
    e.api().map(|a| a.code)
}

#[tokio::test]
async fn a_template_message_reaches_a_follower_once_per_client_msg_id() {
    let s = setup();
    let send = shipped(ALICE);
    let sent = s.client.send(&send).await.expect("sent");
    let inbox = s.sandbox.inbox(APPID, ALICE).expect("user");
    assert_eq!(inbox.len(), 1);
    assert_eq!(
        (&inbox[0].via, inbox[0].msg_type.as_str()),
        (&Via::Template, "template")
    );
    assert_eq!(inbox[0].content["msgid"], json!(sent.msgid));
    assert_eq!(inbox[0].content["title"], "订单发货通知");
    assert_eq!(
        inbox[0].content["data"]["character_string2"]["value"],
        "SF1234567890"
    );
    assert_eq!(
        inbox[0].content["url"],
        "https://shop.example.com/orders/1001"
    );
    assert!(sent.msgid > u64::from(u32::MAX), "a 64-bit msgid survives");

    // The same value again (same client_msg_id) within 10 minutes: the first msgid, no delivery.
    s.sandbox.clock().advance(Duration::from_secs(599));
    let again = s.client.send(&send).await.expect("answered");
    assert_eq!(again.msgid, sent.msgid);
    assert_eq!(s.sandbox.inbox(APPID, ALICE).expect("user").len(), 1);
    // Another user with the same id, or a new message, is delivered.
    s.client
        .send(&send.clone().data("thing1", "x"))
        .await
        .expect("same id, same user: still deduplicated");
    s.client.send(&shipped(ALICE)).await.expect("a new message");
    assert_eq!(s.sandbox.inbox(APPID, ALICE).expect("user").len(), 2);
    // After the window the id is forgotten.
    s.sandbox.clock().advance(Duration::from_secs(2));
    let late = s.client.send(&send).await.expect("sent again");
    assert_ne!(late.msgid, sent.msgid);
    assert_eq!(s.sandbox.inbox(APPID, ALICE).expect("user").len(), 3);
}

#[tokio::test]
async fn template_sends_obey_wechats_rules_with_typed_errors() {
    let s = setup();
    let e = s
        .client
        .send(&TemplateSend::new(ALICE, "no-such-template").data("thing1", "x"))
        .await
        .expect_err("unknown template");
    assert_eq!(code(&e), Some(ErrCode::INVALID_TEMPLATE_ID));
    let e = s
        .client
        .send(&shipped("o-stranger-not-a-user"))
        .await
        .expect_err("unknown openid");
    assert_eq!(code(&e), Some(ErrCode::INVALID_OPENID));
    assert_eq!(e.api_kind(), Some(ApiErrorKind::InvalidOpenId));
    s.sandbox.set_following(APPID, BOB, false).expect("user");
    let e = s
        .client
        .send(&shipped(BOB))
        .await
        .expect_err("not following");
    assert_eq!(code(&e), Some(ErrCode::REQUIRE_SUBSCRIBE));
    assert_eq!(e.api_kind(), Some(ApiErrorKind::RecipientNotFollowing));
    assert!(e.api().and_then(|a| a.request_id.as_ref()).is_some());
    assert!(s.sandbox.inbox(APPID, ALICE).expect("user").is_empty());
    assert!(s.sandbox.inbox(APPID, BOB).expect("user").is_empty());
    // One request each: none of these is retried.
    assert_eq!(s.sandbox.count(paths::TEMPLATE_SEND), 3);
}

/// The sandbox, except that the answer to the first request on `path` is lost after the
/// sandbox handled it: the client sees a timeout although the send took effect.
#[derive(Clone)]
struct LoseFirstAnswer {
    sandbox: Sandbox,
    path: &'static str,
    lost: Arc<AtomicBool>,
}

#[async_trait::async_trait]
impl HttpTransport for LoseFirstAnswer {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let on_path = request.path() == self.path;
        let answer = self.sandbox.send(request).await;
        if on_path && !self.lost.swap(true, Ordering::SeqCst) {
            return Err(TransportError::from_kind(TransportErrorKind::Timeout));
        }
        answer
    }
}

fn losing_client(
    sandbox: &Sandbox,
    path: &'static str,
) -> OfficialAccount<LoseFirstAnswer, MemoryTokenStore> {
    let transport = LoseFirstAnswer {
        sandbox: sandbox.clone(),
        path,
        lost: Arc::new(AtomicBool::new(false)),
    };
    let store = MemoryTokenStore::with_clock(Arc::new(sandbox.clock().clone()));
    sandbox_builder(sandbox)
        .build(transport, store)
        .expect("valid")
}

#[tokio::test]
async fn a_timed_out_template_send_is_retried_and_delivered_once() {
    let s = setup();
    let client = losing_client(&s.sandbox, paths::TEMPLATE_SEND);
    let sent = client
        .send(&shipped(ALICE))
        .await
        .expect("retried, then answered");
    assert_eq!(s.sandbox.count(paths::TEMPLATE_SEND), 2, "sent twice");
    let inbox = s.sandbox.inbox(APPID, ALICE).expect("user");
    assert_eq!(inbox.len(), 1, "delivered once: {inbox:?}");
    assert_eq!(
        inbox[0].content["msgid"],
        json!(sent.msgid),
        "the first send's msgid"
    );
}

#[tokio::test]
async fn a_timed_out_customer_service_send_is_not_retried() {
    let s = setup();
    s.sandbox
        .act(APPID, ALICE, UserAction::text("where is my parcel?"))
        .await
        .expect("follower");
    let client = losing_client(&s.sandbox, paths::CUSTOM_SEND);
    let e = client
        .send(&CustomSend::new(
            ALICE,
            CustomMessage::text("It left our warehouse."),
        ))
        .await
        .expect_err("the timeout is returned");
    assert!(
        e.transport().is_some_and(TransportError::is_timeout),
        "{e:?}"
    );
    assert_eq!(s.sandbox.count(paths::CUSTOM_SEND), 1, "never repeated");
    let inbox = s.sandbox.inbox(APPID, ALICE).expect("user");
    let custom: Vec<_> = inbox.iter().filter(|m| m.via == Via::Custom).collect();
    assert_eq!(custom.len(), 1, "the user got it once");
}

#[tokio::test]
async fn customer_service_messages_need_the_48_hour_window() {
    let s = setup();
    let hello = || CustomSend::new(ALICE, CustomMessage::text("hello"));
    // A follower who never wrote: outside the window.
    let e = s
        .client
        .send(&hello())
        .await
        .expect_err("no interaction yet");
    assert_eq!(code(&e), Some(ErrCode::RESPONSE_OUT_OF_TIME_LIMIT));
    assert_eq!(e.api_kind(), Some(ApiErrorKind::ServiceWindowClosed));
    let e = s
        .client
        .send(&Typing::new(ALICE, TypingCommand::Typing))
        .await
        .expect_err("typing too");
    assert_eq!(code(&e), Some(ErrCode::RESPONSE_OUT_OF_TIME_LIMIT));

    s.sandbox
        .act(APPID, ALICE, UserAction::text("hi"))
        .await
        .expect("follower");
    s.client
        .send(&Typing::new(ALICE, TypingCommand::Typing))
        .await
        .expect("typing");
    let messages = [
        CustomMessage::text("line 1\nline 2"),
        CustomMessage::image("MEDIA_ID"),
        CustomMessage::news(NewsArticle::new(
            "Shipped",
            "Order 1001",
            "https://shop.example.com/o/1001",
            "",
        )),
        CustomMessage::MsgMenu {
            head_content: "Was this helpful?".into(),
            list: vec![MenuItem::new("101", "Yes"), MenuItem::new("102", "No")],
            tail_content: String::new(),
        },
    ];
    for m in &messages {
        s.client
            .send(&CustomSend::new(ALICE, m.clone()))
            .await
            .expect("inside the window");
    }
    let inbox = s.sandbox.inbox(APPID, ALICE).expect("user");
    let custom: Vec<_> = inbox.iter().filter(|m| m.via == Via::Custom).collect();
    let types: Vec<&str> = custom.iter().map(|m| m.msg_type.as_str()).collect();
    assert_eq!(types, ["text", "image", "news", "msgmenu"]);
    assert_eq!(custom[0].content["content"], "line 1\nline 2");
    assert_eq!(custom[3].content["list"][1]["id"], "102");

    // 48 hours after the last message it is still open; one second later it is closed.
    s.sandbox.clock().advance(Duration::from_secs(48 * 3600));
    s.client.send(&hello()).await.expect("at 48 h");
    s.sandbox.clock().advance(Duration::from_secs(1));
    let e = s.client.send(&hello()).await.expect_err("past 48 h");
    assert_eq!(code(&e), Some(ErrCode::RESPONSE_OUT_OF_TIME_LIMIT));
    // Writing again reopens it; unfollowing closes it.
    s.sandbox
        .act(APPID, ALICE, UserAction::text("again"))
        .await
        .expect("follower");
    s.client.send(&hello()).await.expect("reopened");
    s.sandbox
        .act(APPID, ALICE, UserAction::Unfollow)
        .await
        .expect("follower");
    let e = s.client.send(&hello()).await.expect_err("unfollowed");
    assert_eq!(code(&e), Some(ErrCode::RESPONSE_OUT_OF_TIME_LIMIT));
    let e = s
        .client
        .send(&CustomSend::new(
            "o-stranger-not-a-user",
            CustomMessage::text("x"),
        ))
        .await
        .expect_err("unknown openid");
    assert_eq!(code(&e), Some(ErrCode::INVALID_OPENID));
}

#[tokio::test]
async fn one_notice_per_accepted_subscription() {
    let s = setup();
    let notice = || {
        SubscribeSend::new(ALICE, NOTICE)
            .page("https://shop.example.com/orders/1001")
            .data("character_string1", "SF1234567890")
            .data("time2", "2024年5月2日 10:30")
    };
    let e = s.client.send(&notice()).await.expect_err("not accepted");
    assert_eq!(code(&e), Some(ErrCode::USER_REFUSED_MESSAGE));
    assert_eq!(e.api_kind(), Some(ApiErrorKind::SubscriptionMissing));
    s.sandbox
        .accept_subscription(APPID, ALICE, NOTICE)
        .expect("known");
    s.client.send(&notice()).await.expect("delivered");
    let e = s.client.send(&notice()).await.expect_err("used up");
    assert_eq!(code(&e), Some(ErrCode::USER_REFUSED_MESSAGE));
    let inbox = s.sandbox.inbox(APPID, ALICE).expect("user");
    assert_eq!(inbox.len(), 1);
    assert_eq!(
        (&inbox[0].via, inbox[0].msg_type.as_str()),
        (&Via::Subscribe, "subscribe")
    );
    assert_eq!(
        inbox[0].content["data"]["time2"]["value"],
        "2024年5月2日 10:30"
    );
    assert_eq!(
        s.sandbox.accept_subscription(APPID, ALICE, "nope"),
        Err(wx_sandbox::SandboxError::UnknownTemplate)
    );

    // A value WeChat refuses (sent untyped, past the client's checks): 47003 names the field.
    s.sandbox
        .accept_subscription(APPID, ALICE, NOTICE)
        .expect("known");
    let body = json!({"touser": ALICE, "template_id": NOTICE, "data": {
        "character_string1": {"value": "X".repeat(40)}, "time2": {"value": "10:30"}}});
    let ep = Endpoint::post_json("/cgi-bin/message/subscribe/bizsend", &body)
        .expect("json")
        .with_base_token();
    let e = s
        .client
        .call::<wx_core::Ack>(ep)
        .await
        .expect_err("too long");
    assert_eq!(code(&e), Some(ErrCode::ARGUMENT_INVALID));
    assert_eq!(e.api_kind(), Some(ApiErrorKind::InvalidArgument));
    assert_eq!(
        e.api().and_then(|a| a.invalid_argument()),
        Some("data.character_string1.value")
    );
    // The typed request refuses the same value before sending.
    let before = s.sandbox.count(paths::SUBSCRIBE_SEND);
    let e = s
        .client
        .send(&notice().data("character_string1", "X".repeat(40)))
        .await
        .expect_err("refused");
    assert!(matches!(e, Error::InvalidInput(_)), "{e:?}");
    assert_eq!(s.sandbox.count(paths::SUBSCRIBE_SEND), before);
}

#[tokio::test]
async fn the_subscription_library_from_category_to_notice() {
    let s = setup();
    let cats = s.client.send(&GetCategories).await.expect("categories");
    let parcel = cats
        .data
        .iter()
        .find(|c| c.name == "快递、物流")
        .expect("a category")
        .id;
    let mut first = GetPubTemplateTitles::new([parcel]);
    first.limit = 1;
    let titles: Vec<_> = s
        .client
        .items(first)
        .try_collect()
        .await
        .expect("every title");
    assert_eq!(titles.len(), 2);
    assert_eq!(
        s.sandbox.count(paths::SUBSCRIBE_TITLES),
        2,
        "one page each, stopped at the count"
    );
    let shipped = titles
        .iter()
        .find(|t| t.title == "订单发货通知")
        .expect("a title");
    let keywords = s
        .client
        .send(&GetPubTemplateKeywords::new(shipped.tid.clone()))
        .await
        .expect("keywords");
    let chosen: Vec<_> = keywords
        .data
        .iter()
        .filter(|k| k.kid == 1 || k.kid == 3)
        .collect();
    let added = s
        .client
        .send(
            &AddSubscribeTemplate::new(shipped.tid.clone(), chosen.iter().map(|k| k.kid))
                .scene_desc("发货通知"),
        )
        .await
        .expect("added");
    let mine = s.client.send(&GetSubscribeTemplates).await.expect("listed");
    let t = mine
        .data
        .iter()
        .find(|t| t.pri_tmpl_id == added.pri_tmpl_id)
        .expect("listed");
    assert!(
        t.content.contains("{{thing1.DATA}}") && t.content.contains("{{time3.DATA}}"),
        "{}",
        t.content
    );

    s.sandbox
        .accept_subscription(APPID, BOB, &added.pri_tmpl_id)
        .expect("known");
    let mut send = SubscribeSend::new(BOB, added.pri_tmpl_id.clone());
    for k in &chosen {
        send = send.data(k.data_key(), k.example.clone());
    }
    s.client
        .send(&send)
        .await
        .expect("every keyword filled by its example");
    assert_eq!(
        s.sandbox.inbox(APPID, BOB).expect("user")[0].content["data"]["thing1"]["value"],
        "咖啡豆 1 kg"
    );

    s.client
        .send(&DeleteSubscribeTemplate::new(added.pri_tmpl_id.clone()))
        .await
        .expect("deleted");
    let e = s
        .client
        .send(&DeleteSubscribeTemplate::new(added.pri_tmpl_id))
        .await
        .expect_err("gone");
    assert_eq!(code(&e), Some(ErrCode::INVALID_TEMPLATE_ID));
}

#[tokio::test]
async fn template_management_on_the_sandbox() {
    let s = setup();
    s.client
        .send(&SetIndustry {
            industry_id1: 1,
            industry_id2: 4,
        })
        .await
        .expect("set");
    let industries = s.client.send(&GetIndustry).await.expect("read");
    assert_eq!(industries.primary_industry.second_class, "互联网|电子商务");
    assert_eq!(industries.secondary_industry.second_class, "电子技术");

    let added = s
        .client
        .send(&AddTemplate::new("OPENTM207498902").keywords(["商品名称", "快递单号"]))
        .await
        .expect("added");
    let list = s.client.send(&GetPrivateTemplates).await.expect("listed");
    let ids: Vec<&str> = list
        .template_list
        .iter()
        .map(|t| t.template_id.as_str())
        .collect();
    assert_eq!(ids, [SHIPPED, added.template_id.as_str()]);
    assert_eq!(list.template_list[1].primary_industry, "IT科技");
    assert!(list.template_list[1].content.contains("{{keyword2.DATA}}"));

    s.client
        .send(&TemplateSend::new(ALICE, added.template_id.clone()).data("keyword1", "咖啡豆"))
        .await
        .expect("the added template sends");
    s.client
        .send(&DeletePrivateTemplate::new(added.template_id.clone()))
        .await
        .expect("deleted");
    let e = s
        .client
        .send(&TemplateSend::new(ALICE, added.template_id).data("keyword1", "咖啡豆"))
        .await
        .expect_err("deleted template");
    assert_eq!(code(&e), Some(ErrCode::INVALID_TEMPLATE_ID));
}

#[tokio::test]
async fn a_template_send_is_followed_by_its_job_finish_push() {
    let s = setup();
    let token = "server-token-for-message-tests";
    let config = PushConfig::new(APPID, ServerToken::new(token));
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let target = {
        let seen = Arc::clone(&seen);
        PushTarget::from_fn(move |req: Request<Bytes>| {
            let config = config.clone();
            let seen = Arc::clone(&seen);
            async move {
                let query = PushQuery::from_query(req.uri().query().unwrap_or(""));
                let body = if req.method() == Method::GET {
                    config.handshake(&query).expect("WeChat's handshake")
                } else {
                    let incoming = config.open(&query, req.body()).expect("a signed push");
                    seen.lock().expect("lock").push(incoming);
                    "success".to_owned()
                };
                Response::new(Bytes::from(body))
            }
        })
    };
    s.sandbox
        .set_server(APPID, ServerConfig::plain(target, token, "gh_0123456789ab"))
        .await
        .expect("handshake");
    let sent = s.client.send(&shipped(ALICE)).await.expect("sent");
    let reports = s.sandbox.settle_pushes().await;
    assert_eq!(reports.len(), 1);
    assert_eq!(
        reports[0].fields.get("Event"),
        Some("TEMPLATESENDJOBFINISH")
    );
    assert!(
        matches!(reports[0].outcome, PushOutcome::NoReply),
        "{:?}",
        reports[0].outcome
    );
    let seen = seen.lock().expect("lock");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].from_user.as_str(), ALICE);
    let Message::TemplateSendJobFinish(done) = &seen[0].message else {
        panic!("a typed TEMPLATESENDJOBFINISH, got {:?}", seen[0].message);
    };
    assert_eq!((done.msg_id, done.status.as_str()), (sent.msgid, "success"));
}

#[tokio::test]
async fn without_a_server_url_nothing_is_pushed() {
    let sandbox = sandbox();
    sandbox
        .add_template(APPID, SHIPPED, "订单发货通知", "")
        .expect("app");
    let store = MemoryTokenStore::with_clock(Arc::new(sandbox.clock().clone()));
    let client = sandbox_builder(&sandbox)
        .build(sandbox.clone(), store)
        .expect("valid");
    client.send(&shipped(ALICE)).await.expect("sent");
    let reports = sandbox.settle_pushes().await;
    assert!(
        reports
            .iter()
            .all(|r| matches!(r.outcome, PushOutcome::NoServer)),
        "{reports:?}"
    );
}
