//! The push direction: WeChat's requests to an app's server URL (signed, encrypted in the AES
//! modes, retried), the checks of the app's answer, and what the user sees. The app side here is
//! written with wx-core's crypto only, so it checks the sandbox's wire format independently of
//! wx-official's receiver.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use wx_core::crypto::{EncodingAesKey, ServerToken, msg_signature, server_signature};
use wx_sandbox::{
    AttemptError, PushFailure, PushFields, PushOutcome, PushTarget, ReplyError, SandboxError,
    ServerConfig, UNAVAILABLE_NOTICE, UserAction, Via,
};

use crate::*;

const TOKEN: &str = "server-token-0123";
const GH: &str = "gh_10f6c3c3ac5a";
const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

/// The text of the first `<name>` element, CDATA unwrapped.
fn field(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{name}>"))?;
    let v = &xml[start..end];
    Some(
        v.strip_prefix("<![CDATA[")
            .and_then(|v| v.strip_suffix("]]>"))
            .unwrap_or(v)
            .to_owned(),
    )
}

fn query(req: &Request<Bytes>) -> HashMap<String, String> {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// What the app saw and how it answers.
#[derive(Clone, Default)]
struct App {
    seen: Arc<Mutex<Vec<Request<Bytes>>>>,
}

impl App {
    fn requests(&self) -> Vec<Request<Bytes>> {
        self.seen.lock().unwrap().clone()
    }

    /// A target answering every request with `answer(request, attempt)`.
    fn target(
        &self,
        answer: impl Fn(&Request<Bytes>, usize) -> Response<Bytes> + Send + Sync + 'static,
    ) -> PushTarget {
        let seen = Arc::clone(&self.seen);
        let answer = Arc::new(answer);
        PushTarget::from_fn(move |req: Request<Bytes>| {
            let seen = Arc::clone(&seen);
            let answer = Arc::clone(&answer);
            async move {
                let n = {
                    let mut seen = seen.lock().unwrap();
                    seen.push(req.clone());
                    seen.len()
                };
                answer(&req, n)
            }
        })
    }
}

fn ok(body: impl Into<Bytes>) -> Response<Bytes> {
    Response::new(body.into())
}

fn text_reply(to: &str, content: &str) -> String {
    format!(
        "<xml><ToUserName><![CDATA[{to}]]></ToUserName><FromUserName><![CDATA[{GH}]]>\
         </FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType>\
         <Content><![CDATA[{content}]]></Content></xml>"
    )
}

/// The plaintext of a push in any mode, after checking its signatures as a server must.
fn open_push(req: &Request<Bytes>) -> String {
    let q = query(req);
    let token = ServerToken::new(TOKEN);
    assert_eq!(
        q["signature"],
        server_signature(&token, &q["timestamp"], &q["nonce"])
    );
    let body = std::str::from_utf8(req.body()).unwrap().to_owned();
    match field(&body, "Encrypt") {
        None => body,
        Some(encrypt) => {
            assert_eq!(q["encrypt_type"], "aes");
            let key = EncodingAesKey::new(KEY).unwrap();
            let plain = key
                .open(
                    &token,
                    APP,
                    &encrypt,
                    &q["timestamp"],
                    &q["nonce"],
                    &q["msg_signature"],
                )
                .expect("a valid msg_signature and ciphertext for our AppID");
            String::from_utf8(plain).unwrap()
        }
    }
}

/// An encrypted reply envelope, as a safe-mode server writes it.
fn seal_reply(plain: &str, nonce: &str) -> String {
    let key = EncodingAesKey::new(KEY).unwrap();
    let sealed = key.seal(
        &ServerToken::new(TOKEN),
        APP,
        plain.as_bytes(),
        "1700000001",
        nonce,
    );
    format!(
        "<xml><Encrypt><![CDATA[{}]]></Encrypt><MsgSignature><![CDATA[{}]]></MsgSignature>\
         <TimeStamp>1700000001</TimeStamp><Nonce><![CDATA[{nonce}]]></Nonce></xml>",
        sealed.encrypt, sealed.msg_signature
    )
}

async fn with_server(config: ServerConfig) -> wx_sandbox::Sandbox {
    let sb = sandbox();
    sb.set_server(APP, config).await.expect("handshake passes");
    sb
}

/// Answers the URL check, then `answer` for the pushes.
fn echoing(
    answer: impl Fn(&Request<Bytes>, usize) -> Response<Bytes> + Send + Sync + 'static,
) -> impl Fn(&Request<Bytes>, usize) -> Response<Bytes> + Send + Sync + 'static {
    move |req, n| {
        if req.method() == Method::GET {
            ok(query(req)["echostr"].clone())
        } else {
            answer(req, n)
        }
    }
}

#[tokio::test]
async fn plain_text_message_is_signed_and_the_reply_reaches_the_inbox() {
    let app = App::default();
    let target = app.target(echoing(|req, _| {
        let push = open_push(req);
        ok(text_reply(
            &field(&push, "FromUserName").unwrap(),
            "you said: hi",
        ))
    }));
    let sb = with_server(ServerConfig::plain(target, TOKEN, GH)).await;
    let report = sb.act(APP, ALICE, UserAction::text("hi")).await.unwrap();

    let reqs = app.requests();
    assert_eq!(reqs.len(), 2, "URL check, then one push");
    let check = query(&reqs[0]);
    assert_eq!(reqs[0].method(), Method::GET);
    assert_eq!(
        check["signature"],
        server_signature(
            &ServerToken::new(TOKEN),
            &check["timestamp"],
            &check["nonce"]
        )
    );
    let push = &reqs[1];
    assert_eq!(push.method(), Method::POST);
    let q = query(push);
    assert_eq!(q["openid"], ALICE);
    assert_eq!(q["timestamp"], "1700000000", "the sandbox clock");
    assert!(!q.contains_key("encrypt_type") && !q.contains_key("msg_signature"));
    let xml = open_push(push);
    assert_eq!(field(&xml, "ToUserName").unwrap(), GH);
    assert_eq!(field(&xml, "FromUserName").unwrap(), ALICE);
    assert_eq!(field(&xml, "CreateTime").unwrap(), "1700000000");
    assert_eq!(field(&xml, "MsgType").unwrap(), "text");
    assert_eq!(field(&xml, "Content").unwrap(), "hi");
    let msg_id: u64 = field(&xml, "MsgId").unwrap().parse().unwrap();
    assert!(msg_id > 1 << 53, "64-bit ids: {msg_id}");

    assert_eq!(report.attempts, 1);
    let PushOutcome::Replied(reply) = &report.outcome else {
        panic!("{report:?}")
    };
    assert_eq!(reply.content["Content"], "you said: hi");
    let inbox = sb.inbox(APP, ALICE).unwrap();
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].via, Via::Reply);
    assert_eq!(inbox[0].msg_type, "text");
    assert_eq!(inbox[0].content["Content"], "you said: hi");
}

#[tokio::test]
async fn safe_mode_sends_only_the_envelope_and_needs_an_encrypted_reply() {
    let app = App::default();
    let target = app.target(echoing(|req, _| {
        let push = open_push(req);
        let content = field(&push, "Content").unwrap();
        let to = field(&push, "FromUserName").unwrap();
        match content.as_str() {
            "plain please" => ok(text_reply(&to, "plain")),
            "forge" => {
                let sealed = seal_reply(&text_reply(&to, "forged"), "1");
                ok(sealed.replace("<Nonce><![CDATA[1]]>", "<Nonce><![CDATA[2]]>"))
            }
            _ => ok(seal_reply(
                &text_reply(&to, &format!("sealed: {content}")),
                "42",
            )),
        }
    }));
    let sb = with_server(ServerConfig::safe(target, TOKEN, GH, KEY)).await;

    let report = sb.act(APP, ALICE, UserAction::text("a]]>b")).await.unwrap();
    let req = &app.requests()[1];
    let body = std::str::from_utf8(req.body()).unwrap();
    assert_eq!(field(body, "ToUserName").unwrap(), GH);
    assert!(field(body, "Encrypt").is_some());
    assert!(
        field(body, "FromUserName").is_none() && field(body, "Content").is_none(),
        "{body}"
    );
    let q = query(req);
    assert_eq!(
        q["msg_signature"],
        msg_signature(
            &ServerToken::new(TOKEN),
            &q["timestamp"],
            &q["nonce"],
            &field(body, "Encrypt").unwrap()
        )
    );
    // `]]>` in the user's text survives the CDATA of the push.
    assert_eq!(field(&open_push(req), "MsgType").unwrap(), "text");
    let PushOutcome::Replied(m) = &report.outcome else {
        panic!("{report:?}")
    };
    assert_eq!(m.content["Content"], "sealed: a]]>b");

    let report = sb
        .act(APP, ALICE, UserAction::text("plain please"))
        .await
        .unwrap();
    assert_eq!(
        report.outcome,
        PushOutcome::Failed(PushFailure::BadReply(ReplyError::NotEncrypted))
    );
    let report = sb.act(APP, ALICE, UserAction::text("forge")).await.unwrap();
    assert_eq!(
        report.outcome,
        PushOutcome::Failed(PushFailure::BadReply(ReplyError::Signature))
    );
    assert_eq!(report.attempts, 1, "a bad reply is not retried");
    let inbox = sb.inbox(APP, ALICE).unwrap();
    let shown: Vec<(&Via, &str)> = inbox
        .iter()
        .map(|m| (&m.via, m.content["Content"].as_str().unwrap()))
        .collect();
    assert_eq!(
        shown,
        [
            (&Via::Reply, "sealed: a]]>b"),
            (&Via::Platform, UNAVAILABLE_NOTICE),
            (&Via::Platform, UNAVAILABLE_NOTICE)
        ]
    );
}

#[tokio::test]
async fn compatible_mode_sends_both_and_takes_either_reply() {
    let app = App::default();
    let target = app.target(echoing(|req, n| {
        let push = open_push(req);
        let to = field(&push, "FromUserName").unwrap();
        if n % 2 == 0 {
            ok(text_reply(&to, "plain"))
        } else {
            ok(seal_reply(&text_reply(&to, "sealed"), "7"))
        }
    }));
    let sb = with_server(ServerConfig::compatible(target, TOKEN, GH, KEY)).await;
    for _ in 0..2 {
        sb.act(APP, ALICE, UserAction::image("https://mmbiz.qpic.cn/x.jpg"))
            .await
            .unwrap();
    }
    let req = &app.requests()[1];
    let body = std::str::from_utf8(req.body()).unwrap();
    assert_eq!(field(body, "MsgType").unwrap(), "image");
    assert_eq!(
        field(body, "PicUrl").unwrap(),
        "https://mmbiz.qpic.cn/x.jpg"
    );
    assert!(field(body, "Encrypt").is_some());
    let inner = open_push(req);
    assert_eq!(field(&inner, "PicUrl"), field(body, "PicUrl"));
    assert_eq!(field(&inner, "MediaId").map(|m| m.len()), Some(64));
    let got: Vec<String> = sb
        .inbox(APP, ALICE)
        .unwrap()
        .iter()
        .map(|m| m.content["Content"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, ["plain", "sealed"]);
}

#[tokio::test]
async fn follow_unfollow_scan_click_and_location_push_the_right_events() {
    let app = App::default();
    let target = app.target(echoing(|_, _| ok("success")));
    let sb = with_server(ServerConfig::plain(target, TOKEN, GH)).await;

    sb.set_following(APP, BOB, false).unwrap();
    assert_eq!(
        sb.act(APP, BOB, UserAction::text("hi")).await.unwrap_err(),
        SandboxError::NotFollowing
    );
    let r = sb.act(APP, BOB, UserAction::Follow).await.unwrap();
    assert_eq!(r.outcome, PushOutcome::NoReply);
    assert_eq!(r.fields.get("Event"), Some("subscribe"));
    assert_eq!(
        r.fields.get("EventKey"),
        None,
        "a plain follow has no EventKey"
    );
    assert_eq!(sb.is_following(APP, BOB), Some(true));
    assert_eq!(
        sb.act(APP, BOB, UserAction::Follow).await.unwrap_err(),
        SandboxError::AlreadyFollowing
    );
    let r = sb.act(APP, BOB, UserAction::Unfollow).await.unwrap();
    assert_eq!(r.fields.get("Event"), Some("unsubscribe"));
    assert_eq!(sb.is_following(APP, BOB), Some(false));

    // A non-follower scanning a QR code follows through it; a follower gets SCAN.
    let r = sb
        .act(
            APP,
            BOB,
            UserAction::scan("123123", "gQH47joAAAAAAAAAASxodHRw"),
        )
        .await
        .unwrap();
    assert_eq!(r.fields.get("Event"), Some("subscribe"));
    assert_eq!(r.fields.get("EventKey"), Some("qrscene_123123"));
    assert_eq!(r.fields.get("Ticket"), Some("gQH47joAAAAAAAAAASxodHRw"));
    assert_eq!(sb.is_following(APP, BOB), Some(true));
    let r = sb
        .act(
            APP,
            BOB,
            UserAction::scan("123123", "gQH47joAAAAAAAAAASxodHRw"),
        )
        .await
        .unwrap();
    assert_eq!(r.fields.get("Event"), Some("SCAN"));
    assert_eq!(r.fields.get("EventKey"), Some("123123"));

    let r = sb
        .act(APP, BOB, UserAction::click("V1001_TODAY_MUSIC"))
        .await
        .unwrap();
    assert_eq!(r.fields.get("Event"), Some("CLICK"));
    assert_eq!(r.fields.get("EventKey"), Some("V1001_TODAY_MUSIC"));
    let r = sb
        .act(
            APP,
            BOB,
            UserAction::location(23.134521, 113.358803, 20, "位置信息"),
        )
        .await
        .unwrap();
    assert_eq!(r.fields.get("MsgType"), Some("location"));
    let xml = open_push(app.requests().last().unwrap());
    assert_eq!(field(&xml, "Location_X").unwrap(), "23.134521");
    assert_eq!(field(&xml, "Label").unwrap(), "位置信息");
    assert!(
        sb.inbox(APP, BOB).unwrap().is_empty(),
        "`success` means no reply"
    );
    assert_eq!(app.requests().len(), 7, "URL check and six pushes");
}

#[tokio::test]
async fn retries_send_the_same_request_and_the_user_sees_the_notice_after_three_failures() {
    let app = App::default();
    let target = app.target(echoing(|req, n| {
        let push = open_push(req);
        match (field(&push, "Content").unwrap().as_str(), n) {
            // Attempt 1 (request 2) fails with a 502, attempt 2 answers.
            ("flaky", 2) => Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .body(Bytes::new())
                .unwrap(),
            ("flaky", _) => ok(text_reply(ALICE, "second time lucky")),
            _ => Response::builder()
                .status(StatusCode::INTERNAL_SERVER_ERROR)
                .body(Bytes::new())
                .unwrap(),
        }
    }));
    let sb = with_server(ServerConfig::plain(target, TOKEN, GH)).await;
    let r = sb.act(APP, ALICE, UserAction::text("flaky")).await.unwrap();
    assert_eq!(r.attempts, 2);
    let reqs = app.requests();
    assert_eq!(
        reqs[1].uri(),
        reqs[2].uri(),
        "same signature, timestamp and nonce"
    );
    assert_eq!(reqs[1].body(), reqs[2].body(), "same message");
    assert!(matches!(r.outcome, PushOutcome::Replied(_)));

    let r = sb.act(APP, ALICE, UserAction::text("down")).await.unwrap();
    assert_eq!(r.attempts, 3);
    assert_eq!(
        r.outcome,
        PushOutcome::Failed(PushFailure::Unanswered(vec![AttemptError::Status(500); 3]))
    );
    let inbox = sb.inbox(APP, ALICE).unwrap();
    assert_eq!(inbox.last().unwrap().via, Via::Platform);
    assert_eq!(inbox.last().unwrap().content["Content"], UNAVAILABLE_NOTICE);
}

#[tokio::test]
async fn a_slow_server_times_out_and_is_retried() {
    let app = App::default();
    let seen = Arc::clone(&app.seen);
    let slow = PushTarget::from_fn(move |req: Request<Bytes>| {
        let seen = Arc::clone(&seen);
        async move {
            let n = {
                let mut s = seen.lock().unwrap();
                s.push(req.clone());
                s.len()
            };
            if n == 1 {
                tokio::time::sleep(Duration::from_millis(400)).await;
            }
            ok("")
        }
    });
    let config = ServerConfig::plain(slow, TOKEN, GH).timeout(Duration::from_millis(100));
    let sb = Sandbox::builder()
        .app(APP, SECRET)
        .user(APP, alice())
        .server(APP, config)
        .clock(ManualClock::new(start()))
        .build()
        .unwrap();
    let r = sb.act(APP, ALICE, UserAction::text("hi")).await.unwrap();
    assert_eq!(r.attempts, 2);
    assert_eq!(r.outcome, PushOutcome::NoReply);
    assert_eq!(
        app.requests().len(),
        2,
        "builder servers skip the URL check"
    );
}

#[tokio::test]
async fn the_url_check_must_echo() {
    let sb = sandbox();
    let app = App::default();
    let wrong = app.target(|_, _| ok("not the echostr"));
    assert_eq!(
        sb.set_server(APP, ServerConfig::plain(wrong, TOKEN, GH))
            .await,
        Err(SandboxError::HandshakeFailed)
    );
    let echo = App::default().target(echoing(|_, _| ok("success")));
    assert_eq!(
        sb.set_server(APP, ServerConfig::safe(echo.clone(), TOKEN, GH, "short"))
            .await,
        Err(SandboxError::InvalidServer)
    );
    assert_eq!(
        sb.set_server("wxnope", ServerConfig::plain(echo.clone(), TOKEN, GH))
            .await,
        Err(SandboxError::UnknownApp)
    );
    assert_eq!(
        sb.set_server(
            APP,
            ServerConfig::plain(PushTarget::url("ftp://x/"), TOKEN, GH)
        )
        .await,
        Err(SandboxError::InvalidServer)
    );
    // Without a server, a push goes nowhere.
    let r = sb.act(APP, ALICE, UserAction::text("hi")).await.unwrap();
    assert_eq!((r.attempts, r.outcome), (0, PushOutcome::NoServer));
    sb.set_server(APP, ServerConfig::plain(echo, TOKEN, GH))
        .await
        .unwrap();
    sb.verify_server(APP).await.unwrap();
    let r = sb
        .push(
            APP,
            ALICE,
            PushFields::event("kf_create_session").text("KfAccount", "test1@test"),
        )
        .await;
    assert_eq!(r.outcome, PushOutcome::NoReply);
}

/// A server URL on loopback: a real HTTP server (hyper) whose answers come from `answer`;
/// returns its URL.
async fn serve_app(
    answer: impl Fn(&Request<Bytes>, usize) -> Response<Bytes> + Send + Sync + 'static,
) -> (String, App) {
    use http_body_util::{BodyExt, Full};
    use hyper::server::conn::http1;
    use hyper_util::rt::TokioIo;

    let app = App::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/wx?tenant=7", listener.local_addr().unwrap());
    let seen = Arc::clone(&app.seen);
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let seen = Arc::clone(&seen);
            let answer = Arc::clone(&answer);
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let seen = Arc::clone(&seen);
                let answer = Arc::clone(&answer);
                async move {
                    let (parts, body) = req.into_parts();
                    let body = body.collect().await?.to_bytes();
                    let req = Request::from_parts(parts, body);
                    let n = {
                        let mut s = seen.lock().unwrap();
                        s.push(req.clone());
                        s.len()
                    };
                    Ok::<_, hyper::Error>(answer(&req, n).map(Full::new))
                }
            });
            tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
        }
    });
    (url, app)
}

#[tokio::test]
async fn over_loopback_http_in_safe_mode() {
    let (url, app) = serve_app(echoing(|req, _| {
        let push = open_push(req);
        ok(seal_reply(
            &text_reply(&field(&push, "FromUserName").unwrap(), "over http"),
            "9",
        ))
    }))
    .await;
    let sb = with_server(ServerConfig::safe(PushTarget::url(&url), TOKEN, GH, KEY)).await;
    let r = sb
        .act(APP, ALICE, UserAction::click("MENU_KEY"))
        .await
        .unwrap();
    let PushOutcome::Replied(m) = &r.outcome else {
        panic!("{r:?}")
    };
    assert_eq!(m.content["Content"], "over http");
    let reqs = app.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[1].uri().path(), "/wx");
    let q = query(&reqs[1]);
    assert_eq!(q["tenant"], "7", "the URL's own query is kept");
    assert_eq!(reqs[1].headers()[http::header::CONTENT_TYPE], "text/xml");
    assert_eq!(field(&open_push(&reqs[1]), "EventKey").unwrap(), "MENU_KEY");
}

#[tokio::test]
async fn an_unreachable_url_fails_three_times() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/wx", listener.local_addr().unwrap());
    drop(listener);
    let config = ServerConfig::plain(PushTarget::url(&url), TOKEN, GH);
    let sb = Sandbox::builder()
        .app(APP, SECRET)
        .user(APP, alice())
        .server(APP, config.clone())
        .build()
        .unwrap();
    assert_eq!(
        sb.verify_server(APP).await,
        Err(SandboxError::HandshakeFailed)
    );
    let r = sb
        .act(APP, ALICE, UserAction::text("anyone?"))
        .await
        .unwrap();
    let PushOutcome::Failed(PushFailure::Unanswered(errors)) = &r.outcome else {
        panic!("{r:?}")
    };
    assert_eq!(errors.len(), 3);
    assert!(
        errors
            .iter()
            .all(|e| matches!(e, AttemptError::Unreachable(_))),
        "{errors:?}"
    );
    assert_eq!(
        sb.inbox(APP, ALICE).unwrap()[0].content["Content"],
        UNAVAILABLE_NOTICE
    );
}
