//! wx-axum driven by the sandbox's pushes: a real axum app on loopback (and the same Router in
//! process), safe and plain mode, forged requests, retries handled once, slow handlers.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::routing::get;
use tower::ServiceExt as _;
use wx_axum::{Handshake, WxPush, WxServer, endpoint};
use wx_official::push::{Dedup, Incoming, Message, PushConfig, Reply};
use wx_official::wx_core::crypto::EncodingAesKey;
use wx_official::wx_core::{ManualClock, MemoryTokenStore, ServerToken};
use wx_sandbox::{
    AttemptError, PushFailure, PushOutcome, PushTarget, Sandbox, SandboxError, ServerConfig,
    UNAVAILABLE_NOTICE, UserAction, UserProfile, Via,
};

const APP: &str = "wx2c2769f8efd9abc2";
const ALICE: &str = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M";
const TOKEN: &str = "the-server-token";
const GH: &str = "gh_10f6c3c3ac5a";
const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

fn sandbox() -> Sandbox {
    Sandbox::builder()
        .app(APP, "app-secret")
        .user(APP, UserProfile::new(ALICE))
        .clock(ManualClock::new(
            std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        ))
        .build()
        .unwrap()
}

fn push_config(encrypted: bool) -> PushConfig {
    let config = PushConfig::new(APP, ServerToken::new(TOKEN));
    if encrypted {
        config.aes_key(EncodingAesKey::new(KEY).unwrap())
    } else {
        config
    }
}

/// Echoes text, counting handler runs.
fn echo(runs: Arc<AtomicUsize>) -> impl Fn(Incoming) -> std::future::Ready<Reply> + Clone {
    move |push: Incoming| {
        runs.fetch_add(1, Ordering::SeqCst);
        std::future::ready(match push.message {
            Message::Text(t) => Reply::text(format!("you said: {}", t.content)),
            _ => Reply::Success,
        })
    }
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/wx", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn last_text(sb: &Sandbox) -> (Via, String) {
    let inbox = sb.inbox(APP, ALICE).unwrap();
    let m = inbox.last().expect("a message");
    (
        m.via.clone(),
        m.content["Content"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn endpoint_on_loopback_in_safe_mode() {
    let runs = Arc::new(AtomicUsize::new(0));
    let server = WxServer::new(push_config(true));
    let url = serve(Router::new().route("/wx", endpoint(server, echo(Arc::clone(&runs))))).await;
    let sb = sandbox();
    sb.set_server(
        APP,
        ServerConfig::safe(PushTarget::url(&url), TOKEN, GH, KEY),
    )
    .await
    .expect("the endpoint answers the URL check");
    let r = sb
        .act(APP, ALICE, UserAction::text("hi ]]> there"))
        .await
        .unwrap();
    assert!(matches!(r.outcome, PushOutcome::Replied(_)), "{r:?}");
    assert_eq!(
        last_text(&sb),
        (Via::Reply, "you said: hi ]]> there".into())
    );
    let r = sb.act(APP, ALICE, UserAction::click("K")).await.unwrap();
    assert_eq!(r.outcome, PushOutcome::NoReply);
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_wrong_token_is_refused_before_the_handler() {
    let runs = Arc::new(AtomicUsize::new(0));
    let server = WxServer::new(push_config(true));
    let url = serve(Router::new().route("/wx", endpoint(server, echo(Arc::clone(&runs))))).await;
    let sb = sandbox();
    let forged = ServerConfig::safe(PushTarget::url(&url), "not-the-token", GH, KEY);
    assert_eq!(
        sb.set_server(APP, forged.clone()).await,
        Err(SandboxError::HandshakeFailed)
    );
    let sb = Sandbox::builder()
        .app(APP, "app-secret")
        .user(APP, UserProfile::new(ALICE))
        .server(APP, forged)
        .build()
        .unwrap();
    let r = sb.act(APP, ALICE, UserAction::text("hi")).await.unwrap();
    assert_eq!(
        r.outcome,
        PushOutcome::Failed(PushFailure::Unanswered(vec![AttemptError::Status(401); 3]))
    );
    assert_eq!(last_text(&sb), (Via::Platform, UNAVAILABLE_NOTICE.into()));
    assert_eq!(runs.load(Ordering::SeqCst), 0, "never reached the handler");
}

#[tokio::test]
async fn a_retry_is_handled_once() {
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&runs);
    let server = WxServer::new(push_config(true)).dedup(Dedup::new(MemoryTokenStore::new(), APP));
    let handler = move |push: Incoming| {
        let n = counted.fetch_add(1, Ordering::SeqCst);
        async move {
            // Slower than the sandbox's timeout below, within the budget.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let Message::Text(t) = push.message else {
                return Reply::Success;
            };
            Reply::text(format!("{} #{n}", t.content))
        }
    };
    let url = serve(Router::new().route("/wx", endpoint(server, handler))).await;
    let sb = sandbox();
    let config = ServerConfig::safe(PushTarget::url(&url), TOKEN, GH, KEY)
        .timeout(Duration::from_millis(150));
    sb.set_server(APP, config).await.unwrap();
    let r = sb.act(APP, ALICE, UserAction::text("once")).await.unwrap();
    assert_eq!(r.attempts, 2, "{r:?}");
    assert_eq!(
        r.outcome,
        PushOutcome::NoReply,
        "the retry is answered `success`"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the handler ran once");
    assert!(sb.inbox(APP, ALICE).unwrap().is_empty());
}

#[tokio::test]
async fn a_slow_handler_is_answered_success_within_the_budget() {
    let late = Arc::new(AtomicUsize::new(0));
    let seen_late = Arc::clone(&late);
    let server = WxServer::new(push_config(false))
        .budget(Duration::from_millis(100))
        .on_late(Arc::new(move |_| {
            seen_late.fetch_add(1, Ordering::SeqCst);
        }));
    let handler = |_: Incoming| async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        Reply::text("too late")
    };
    let router = Router::new().route("/wx", endpoint(server, handler));
    let sb = sandbox();
    // In process: the Router itself is the target, no socket.
    sb.set_server(
        APP,
        ServerConfig::plain(PushTarget::service("/wx", router), TOKEN, GH),
    )
    .await
    .unwrap();
    let started = tokio::time::Instant::now();
    let r = sb.act(APP, ALICE, UserAction::text("slow")).await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(350));
    assert_eq!((r.attempts, r.outcome), (1, PushOutcome::NoReply));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        late.load(Ordering::SeqCst),
        1,
        "the late reply reached the hook"
    );
}

#[tokio::test]
async fn extractors_in_a_handler_of_ones_own() {
    let app = Router::new()
        .route(
            "/wx",
            get(|h: Handshake| async { h }).post(|push: WxPush| async move {
                match &push.message {
                    Message::Subscribe(_) => push.reply(&Reply::text("welcome")),
                    _ => push.success(),
                }
            }),
        )
        .with_state(WxServer::new(push_config(true)));
    let sb = sandbox();
    sb.set_following(APP, ALICE, false).unwrap();
    let target = PushTarget::service("/wx", app.clone());
    sb.set_server(APP, ServerConfig::compatible(target, TOKEN, GH, KEY))
        .await
        .unwrap();
    sb.act(APP, ALICE, UserAction::Follow).await.unwrap();
    assert_eq!(last_text(&sb), (Via::Reply, "welcome".into()));

    // What WeChat never sends: another method, an unsigned body.
    let put = Request::builder()
        .method(Method::PUT)
        .uri("/wx")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        app.clone().oneshot(put).await.unwrap().status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
    let unsigned = Request::builder()
        .method(Method::POST)
        .uri("/wx?timestamp=1&nonce=2")
        .body(Body::from("<xml><ToUserName>gh</ToUserName></xml>"))
        .unwrap();
    let status = app.clone().oneshot(unsigned).await.unwrap().status();
    assert!(status.is_client_error(), "{status}");
    let check = Request::builder()
        .uri("/wx?signature=0000&timestamp=1&nonce=2&echostr=123")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        app.oneshot(check).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn the_endpoint_is_a_tower_service_without_a_router() {
    use wx_official::wx_core::crypto::server_signature;

    // What hyper (or any tower stack) calls: the MethodRouter itself.
    let service = endpoint::<(), _, _>(
        WxServer::new(push_config(false)),
        echo(Arc::new(AtomicUsize::new(0))),
    );
    let signature = server_signature(&ServerToken::new(TOKEN), "1700000000", "42");
    let check = Request::builder()
        .uri(format!(
            "/wx?signature={signature}&timestamp=1700000000&nonce=42&echostr=5838479218127813673"
        ))
        .body(Body::empty())
        .unwrap();
    let answer = service.oneshot(check).await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let body = axum::body::to_bytes(answer.into_body(), 1024)
        .await
        .unwrap();
    assert_eq!(&body[..], b"5838479218127813673");
}
