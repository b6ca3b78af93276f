//! examples/echo_bot driven through the sandbox's pushes: the bot on a loopback port in safe
//! mode, a simulated user following, writing and clicking; every reply checked by the sandbox
//! as WeChat checks it (encrypted, signed, To/From right), a retried push handled once, a slow
//! answer replaced by `success` within the budget, forged requests refused.

use std::sync::Arc;
use std::time::Duration;

use wx_core::ManualClock;
use wx_sandbox::{
    PushOutcome, PushTarget, Sandbox, SandboxError, ServerConfig, UserAction, UserProfile, Via,
};

#[path = "../../examples/echo_bot.rs"]
#[allow(dead_code)] // its `main` and demo are not called here
mod echo_bot;

use echo_bot::{Bot, HELLO_KEY, REPORT_KEY, Settings};

const APPID: &str = "wx00000000000000b2";
const TOKEN: &str = "echo-bot-test-token";
const KEY: &str = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR";
const GH: &str = "gh_00000000b2b2";
const USER: &str = "o-echo-user";

/// The bot serving on loopback, and a sandbox whose user does not follow it yet.
async fn bot(settings: Settings) -> (Arc<Bot>, Sandbox, String) {
    let bot = Bot::new(settings);
    let app = bot.router(echo_bot::safe_config(APPID, TOKEN, KEY).expect("a valid key"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let url = format!("http://{}/wx", listener.local_addr().expect("bound"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let sandbox = Sandbox::builder()
        .app(APPID, "echo-bot-secret")
        .user(APPID, UserProfile::new(USER))
        // The bot checks no replay window; the sandbox clock can be anything.
        .clock(ManualClock::new(
            std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        ))
        .build()
        .expect("valid set-up");
    sandbox
        .set_following(APPID, USER, false)
        .expect("known user");
    (bot, sandbox, url)
}

fn safe(url: &str) -> ServerConfig {
    ServerConfig::safe(PushTarget::url(url), TOKEN, GH, KEY)
}

fn texts(sandbox: &Sandbox) -> Vec<(Via, String)> {
    sandbox
        .inbox(APPID, USER)
        .expect("known user")
        .into_iter()
        .map(|m| {
            (
                m.via,
                m.content["Content"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn echo_bot_welcomes_echoes_and_answers_the_menu() {
    let (bot, sandbox, url) = bot(Settings::default()).await;
    sandbox
        .set_server(APPID, safe(&url))
        .await
        .expect("the bot answers WeChat's URL check");
    for action in [
        UserAction::Follow,
        UserAction::text("hello <bot> ]]> & co"),
        UserAction::click(HELLO_KEY),
    ] {
        let report = sandbox.act(APPID, USER, action).await.expect("allowed");
        assert_eq!(report.attempts, 1);
        assert!(
            matches!(report.outcome, PushOutcome::Replied(_)),
            "{report:?}"
        );
    }
    // An image is not answered: `success`, nothing in the inbox.
    let report = sandbox
        .act(
            APPID,
            USER,
            UserAction::image("https://mmbiz.qpic.cn/x.jpg"),
        )
        .await
        .expect("allowed");
    assert_eq!(report.outcome, PushOutcome::NoReply);
    assert_eq!(
        texts(&sandbox),
        [
            (
                Via::Reply,
                "Welcome! Send me a message and I will echo it back.".to_owned()
            ),
            (Via::Reply, "You said: hello <bot> ]]> & co".to_owned()),
            (Via::Reply, "Hello from the menu!".to_owned()),
        ]
    );
    assert_eq!(bot.handled(), 4);
}

#[tokio::test]
async fn echo_bot_handles_a_retried_push_once() {
    // The report takes 600 ms, within the bot's budget but past this sandbox's timeout: WeChat
    // gives up on the first attempt and retries the same message.
    let (bot, sandbox, url) = bot(Settings {
        budget: Duration::from_secs(2),
        report_time: Duration::from_millis(600),
    })
    .await;
    let config = safe(&url).timeout(Duration::from_millis(200));
    sandbox.set_server(APPID, config).await.expect("URL check");
    sandbox.set_following(APPID, USER, true).expect("known");
    let report = sandbox
        .act(APPID, USER, UserAction::click(REPORT_KEY))
        .await
        .expect("allowed");
    assert_eq!(report.attempts, 2, "{report:?}");
    assert_eq!(
        report.outcome,
        PushOutcome::NoReply,
        "the retry is answered `success` at once"
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(bot.handled(), 1, "the handler ran once for both attempts");
}

#[tokio::test]
async fn echo_bot_answers_slow_work_with_success_in_time() {
    let (bot, sandbox, url) = bot(Settings {
        budget: Duration::from_millis(300),
        report_time: Duration::from_secs(1),
    })
    .await;
    sandbox
        .set_server(APPID, safe(&url))
        .await
        .expect("URL check");
    sandbox.set_following(APPID, USER, true).expect("known");
    let started = std::time::Instant::now();
    let report = sandbox
        .act(APPID, USER, UserAction::click(REPORT_KEY))
        .await
        .expect("allowed");
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_millis(900),
        "answered after {waited:?}"
    );
    assert_eq!((report.attempts, report.outcome), (1, PushOutcome::NoReply));
    assert!(
        texts(&sandbox).is_empty(),
        "no \"cannot serve you\" notice either"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(bot.late_replies(), ["Your report is ready."]);
}

#[tokio::test]
async fn echo_bot_refuses_forged_requests() {
    let (bot, sandbox, url) = bot(Settings::default()).await;
    // A server Token other than the bot's: WeChat's URL check fails.
    let forged = ServerConfig::safe(PushTarget::url(&url), "guessed-token", GH, KEY);
    assert_eq!(
        sandbox.set_server(APPID, forged).await,
        Err(SandboxError::HandshakeFailed)
    );
    // A push signed with a guessed token: 401, the handler never runs.
    let body = "<xml><ToUserName><![CDATA[gh_00000000b2b2]]></ToUserName>\
                <FromUserName><![CDATA[o-echo-user]]></FromUserName><CreateTime>1700000000</CreateTime>\
                <MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content>\
                <MsgId>1</MsgId></xml>";
    let forged = format!(
        "{url}?signature={}&timestamp=1700000000&nonce=1&openid={USER}",
        wx_core::crypto::signature(&["guessed-token", "1700000000", "1"])
    );
    let answer = reqwest::Client::new()
        .post(&forged)
        .body(body)
        .send()
        .await
        .expect("the bot answers");
    assert_eq!(answer.status(), 401);
    assert_eq!(bot.handled(), 0);
}
