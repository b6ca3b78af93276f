//! Notifying a user, on your machine: an order-shipped template message and a customer-service
//! follow-up, with WeChat simulated by the wx sandbox.
//!
//! ```sh
//! cargo run --example notify
//! ```
//!
//! It starts the sandbox on a loopback port with an app, a follower and the app's "order
//! shipped" template, and plays the app's server URL in process (wx-official's push receiver):
//!
//! 1. the shop sends the template message (`TemplateSend`, through the production stack:
//!    `OfficialAccount<ReqwestTransport, MemoryTokenStore>` over real HTTP);
//! 2. WeChat reports its delivery to the server URL (`TEMPLATESENDJOBFINISH` with the msgid);
//! 3. the user writes "Where is my parcel?", which opens the 48-hour customer-service window;
//! 4. the shop answers with a customer-service message (`CustomSend`);
//! 5. it prints what the user received (the sandbox's inbox of the user).
//!
//! Any failure exits non-zero and says which step failed.

#![allow(clippy::print_stdout)] // printing the report is this program's job

use std::error::Error as StdError;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};

use wx_core::reexports::Bytes;
use wx_core::reexports::http::{Method, Request, Response};
use wx_core::{AppSecret, MemoryTokenStore, ServerToken};
use wx_official::OfficialAccount;
use wx_official::message::{CustomMessage, CustomSend, TemplateSend};
use wx_official::push::{Message, PushConfig, PushQuery};
use wx_reqwest::ReqwestTransport;
use wx_sandbox::{InboxMessage, PushTarget, Sandbox, ServerConfig, UserAction, UserProfile};

const APPID: &str = "wx5a1d0c0ffee0a0b1";
const SECRET: &str = "sandbox-appsecret-not-a-real-one";
const OPENID: &str = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M";
/// The account's "order shipped" template (as `get_all_private_template` would list it).
const SHIPPED_TEMPLATE: &str = "ngqIpbwh8bUfcSsECmogfXcV14J0tQlEpBO27izEYtY";
/// The server URL's Token (shared by WeChat and the app's server).
const SERVER_TOKEN: &str = "notify-example-server-token";

type BoxError = Box<dyn StdError + Send + Sync>;

#[tokio::main]
async fn main() -> ExitCode {
    match run(&mut |line| println!("{line}")).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("notify FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Attaches the step's name to an error.
fn at<E: Into<BoxError>>(step: &'static str) -> impl FnOnce(E) -> BoxError {
    move |e| format!("{step}: {}", e.into()).into()
}

/// The whole flow; `say` receives each line of the report.
pub(crate) async fn run(say: &mut dyn FnMut(String)) -> Result<(), BoxError> {
    let sandbox = Sandbox::builder()
        .app(APPID, SECRET)
        .user(APPID, UserProfile::new(OPENID).nickname("Alice"))
        .build()
        .map_err(at("setup"))?;
    sandbox
        .add_template(
            APPID,
            SHIPPED_TEMPLATE,
            "订单发货通知",
            "商品名称:{{thing1.DATA}}\n快递单号:{{character_string2.DATA}}\n发货时间:{{time3.DATA}}",
        )
        .map_err(at("setup"))?;
    let server = sandbox.serve().await.map_err(at("setup"))?;
    let base = server.base_url();
    say(format!(
        "notify: WeChat simulated by the wx sandbox at {base} (app {APPID}, follower {OPENID})"
    ));

    // The app's server URL, in process: wx-official's receiver checks and types each push.
    let pushes = Arc::new(Mutex::new(Vec::new()));
    sandbox
        .set_server(
            APPID,
            ServerConfig::plain(
                app_server(Arc::clone(&pushes)),
                SERVER_TOKEN,
                "gh_0a1b2c3d4e5f",
            ),
        )
        .await
        .map_err(at("server URL"))?;

    // The production stack; only the API base URL points at the sandbox.
    let client = OfficialAccount::builder(APPID, AppSecret::new(SECRET))
        .api_base(&base)
        .build(
            ReqwestTransport::new().map_err(at("setup"))?,
            MemoryTokenStore::new(),
        )
        .map_err(at("setup"))?;

    // 1. The template message. Its client_msg_id (generated here) makes a retry after a
    //    timeout safe: WeChat sends one message per openid + client_msg_id within 10 minutes.
    let shipped = TemplateSend::new(OPENID, SHIPPED_TEMPLATE)
        .url("https://shop.example.com/orders/1001")
        .data("thing1", "咖啡豆 1 kg")
        .data("character_string2", "SF1234567890")
        .data("time3", "2024年5月1日 15:01");
    let sent = client
        .send(&shipped)
        .await
        .map_err(at("template message"))?;
    say(format!(
        "template message sent: msgid {} (client_msg_id {})",
        sent.msgid,
        shipped.client_msg_id()
    ));

    // 2. WeChat's delivery report reaches the server URL.
    sandbox.settle_pushes().await;
    let finished = take(&pushes).into_iter().find_map(|m| match m {
        Message::TemplateSendJobFinish(done) => Some(done),
        _ => None,
    });
    let done =
        finished.ok_or("delivery report: no TEMPLATESENDJOBFINISH push reached the server URL")?;
    if done.msg_id != sent.msgid {
        return Err("delivery report: the push names another msgid".into());
    }
    say(format!(
        "delivery report pushed to the server URL: TEMPLATESENDJOBFINISH msgid {} status {}",
        done.msg_id, done.status
    ));

    // 3. The user writes back: the 48-hour customer-service window opens.
    sandbox
        .act(APPID, OPENID, UserAction::text("Where is my parcel?"))
        .await
        .map_err(at("user message"))?;
    let asked = take(&pushes)
        .into_iter()
        .any(|m| matches!(m, Message::Text(_)));
    if !asked {
        return Err("user message: the server URL did not receive it".into());
    }
    say("user wrote to the account: \"Where is my parcel?\" (the server URL got it)".to_owned());

    // 4. The customer-service follow-up (never retried after a timeout: it has no dedup key).
    let follow_up = CustomSend::new(
        OPENID,
        CustomMessage::text("Your parcel SF1234567890 left our warehouse; it arrives tomorrow."),
    );
    client
        .send(&follow_up)
        .await
        .map_err(at("customer-service message"))?;
    say("customer-service message sent".to_owned());

    // 5. What the user received.
    let inbox = sandbox.inbox(APPID, OPENID).map_err(at("inbox"))?;
    say(format!("the user's inbox ({} messages):", inbox.len()));
    for message in &inbox {
        say(format!("  {}", describe(message)));
    }
    Ok(())
}

/// The app's server URL: answers WeChat's URL check, opens each push and keeps its message.
fn app_server(seen: Arc<Mutex<Vec<Message>>>) -> PushTarget {
    let config = PushConfig::new(APPID, ServerToken::new(SERVER_TOKEN));
    PushTarget::from_fn(move |req: Request<Bytes>| {
        let config = config.clone();
        let seen = Arc::clone(&seen);
        async move {
            let query = PushQuery::from_query(req.uri().query().unwrap_or(""));
            let answer = if req.method() == Method::GET {
                config.handshake(&query).unwrap_or_default()
            } else {
                match config.open(&query, req.body()) {
                    Ok(incoming) => {
                        seen.lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(incoming.message);
                        "success".to_owned()
                    }
                    Err(e) => format!("refused: {e}"),
                }
            };
            Response::new(Bytes::from(answer))
        }
    })
}

fn take(seen: &Mutex<Vec<Message>>) -> Vec<Message> {
    std::mem::take(&mut *seen.lock().unwrap_or_else(PoisonError::into_inner))
}

/// One line per received message.
fn describe(m: &InboxMessage) -> String {
    let c = &m.content;
    match m.msg_type.as_str() {
        "template" => {
            let fields: Vec<String> = c["data"]
                .as_object()
                .map(|d| {
                    d.iter()
                        .map(|(k, v)| format!("{k}={}", v["value"].as_str().unwrap_or_default()))
                        .collect()
                })
                .unwrap_or_default();
            format!(
                "[template message] {} ({}) opens {}",
                c["title"].as_str().unwrap_or_default(),
                fields.join(", "),
                c["url"].as_str().unwrap_or("nothing")
            )
        }
        "text" => format!(
            "[{:?} text] {}",
            m.via,
            c["content"].as_str().unwrap_or_default()
        ),
        other => format!("[{:?} {other}] {c}", m.via),
    }
}
