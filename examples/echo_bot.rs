//! An Official Account server URL in safe mode, with axum and `wx-axum`: it welcomes new
//! followers, echoes text, answers a menu click, and answers slow work with `success` in time
//! (the late answer goes to a hook that would send it as a customer-service message).
//!
//! ```sh
//! cargo run --example echo_bot     # a demo conversation with the wx sandbox's simulated users
//! WX_APPID=wx... WX_SERVER_TOKEN=... WX_ENCODING_AES_KEY=... cargo run --example echo_bot
//! ```
//!
//! With `WX_APPID`, `WX_SERVER_TOKEN` and `WX_ENCODING_AES_KEY` (the console's 服务器配置, safe
//! mode) it serves `http://0.0.0.0:8080/wx` (`ADDR` changes the address): put it behind the
//! account's server URL. Without them it starts the bot on a loopback port, registers that URL
//! with the sandbox (which runs WeChat's URL check), and prints what a simulated user sees.
//!
//! WeChat retries a push that has no answer within 5 seconds, possibly to another instance:
//! the bot handles each message once through `Dedup` over a token store (in memory here; pass
//! the wx-redis store for a fleet).

#![allow(clippy::print_stdout)] // printing the demo conversation is this program's job

use std::error::Error as StdError;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use wx_axum::{WxServer, endpoint};
use wx_core::crypto::EncodingAesKey;
use wx_core::{MemoryTokenStore, ServerToken};
use wx_official::push::{DEFAULT_BUDGET, Dedup, Incoming, Message, PushConfig, Reply};
use wx_sandbox::{PushOutcome, PushTarget, Sandbox, ServerConfig, UserAction, UserProfile};

/// The menu key whose answer is slow (a report that takes a while to build).
pub(crate) const REPORT_KEY: &str = "REPORT";
/// The menu key answered right away.
pub(crate) const HELLO_KEY: &str = "HELLO";

/// The bot's settings.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    /// How long a handler may take before the push is answered `success`.
    pub(crate) budget: Duration,
    /// How long building the report takes.
    pub(crate) report_time: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            budget: DEFAULT_BUDGET,
            report_time: Duration::from_secs(6),
        }
    }
}

/// The bot: what it answers, and what it counts.
#[derive(Debug, Default)]
pub(crate) struct Bot {
    settings: Settings,
    handled: AtomicUsize,
    late: Mutex<Vec<String>>,
}

impl Bot {
    pub(crate) fn new(settings: Settings) -> Arc<Self> {
        Arc::new(Bot {
            settings,
            ..Bot::default()
        })
    }

    /// Pushes the handler ran for (a retried push counts once).
    pub(crate) fn handled(&self) -> usize {
        self.handled.load(Ordering::SeqCst)
    }

    /// Replies that came after the budget (a real bot sends them as customer-service messages).
    pub(crate) fn late_replies(&self) -> Vec<String> {
        self.late
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    async fn answer(self: Arc<Self>, push: Incoming) -> Reply {
        self.handled.fetch_add(1, Ordering::SeqCst);
        match push.message {
            Message::Subscribe(_) => {
                Reply::text("Welcome! Send me a message and I will echo it back.")
            }
            Message::Text(text) => Reply::text(format!("You said: {}", text.content)),
            Message::Click(click) if click.event_key == HELLO_KEY => {
                Reply::text("Hello from the menu!")
            }
            Message::Click(click) if click.event_key == REPORT_KEY => {
                tokio::time::sleep(self.settings.report_time).await;
                Reply::text("Your report is ready.")
            }
            _ => Reply::Success,
        }
    }

    /// The axum app: the server URL on `/wx`.
    pub(crate) fn router(self: &Arc<Self>, config: PushConfig) -> Router {
        let appid = config.appid().clone();
        let late = Arc::clone(self);
        let server = WxServer::new(config)
            .dedup(Dedup::new(MemoryTokenStore::new(), appid))
            .budget(self.settings.budget)
            .on_late(Arc::new(move |late_reply| {
                // Here a real bot sends the reply as a customer-service message.
                if let Reply::Text(text) = late_reply.reply {
                    late.late
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(text);
                }
            }));
        let bot = Arc::clone(self);
        Router::new().route(
            "/wx",
            endpoint(server, move |push| Arc::clone(&bot).answer(push)),
        )
    }
}

/// The push configuration in safe mode.
pub(crate) fn safe_config(
    appid: &str,
    token: &str,
    encoding_aes_key: &str,
) -> Result<PushConfig, Box<dyn StdError>> {
    let key = EncodingAesKey::new(encoding_aes_key)?;
    Ok(PushConfig::new(appid, ServerToken::new(token)).aes_key(key))
}

const DEMO_APPID: &str = "wx0a1b2c3d4e5f6a7c";
const DEMO_TOKEN: &str = "echo-bot-demo-token";
const DEMO_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const DEMO_GH: &str = "gh_0a1b2c3d4e5f";

async fn demo() -> Result<(), Box<dyn StdError>> {
    let settings = Settings {
        budget: Duration::from_millis(500),
        report_time: Duration::from_secs(1),
    };
    let bot = Bot::new(settings);
    let app = bot.router(safe_config(DEMO_APPID, DEMO_TOKEN, DEMO_KEY)?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/wx", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let sandbox = Sandbox::builder()
        .app(DEMO_APPID, "sandbox-secret")
        .user(DEMO_APPID, UserProfile::new("o-demo-user"))
        .build()?;
    sandbox.set_following(DEMO_APPID, "o-demo-user", false)?;
    let config = ServerConfig::safe(PushTarget::url(&url), DEMO_TOKEN, DEMO_GH, DEMO_KEY);
    sandbox.set_server(DEMO_APPID, config).await?;
    println!("server URL {url} passed WeChat's URL check (safe mode)");
    for action in [
        UserAction::Follow,
        UserAction::text("hello bot"),
        UserAction::click(HELLO_KEY),
        UserAction::click(REPORT_KEY),
    ] {
        let report = sandbox
            .act(DEMO_APPID, "o-demo-user", action.clone())
            .await?;
        let answer = match &report.outcome {
            PushOutcome::Replied(m) => format!("reply {}", m.content),
            PushOutcome::NoReply => "success (no reply)".to_owned(),
            other => format!("{other:?}"),
        };
        println!("user {action:?} -> {answer}");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    for m in sandbox.inbox(DEMO_APPID, "o-demo-user")? {
        println!("inbox ({:?}): {}", m.via, m.content);
    }
    println!(
        "handled {} pushes; late replies (sent another way): {:?}",
        bot.handled(),
        bot.late_replies()
    );
    Ok(())
}

async fn run() -> Result<(), Box<dyn StdError>> {
    let env = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
    let (Some(appid), Some(token), Some(key)) = (
        env("WX_APPID"),
        env("WX_SERVER_TOKEN"),
        env("WX_ENCODING_AES_KEY"),
    ) else {
        return demo().await;
    };
    let app = Bot::new(Settings::default()).router(safe_config(&appid, &token, &key)?);
    let addr = env("ADDR").unwrap_or_else(|| "0.0.0.0:8080".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("echo_bot: server URL http://{addr}/wx");
    axum::serve(listener, app).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo_bot: {e}");
            ExitCode::FAILURE
        }
    }
}
