//! A QR-code campaign end to end, on your machine:
//!
//! ```sh
//! cargo run --example campaign
//! ```
//!
//! WeChat is the wx sandbox on a loopback port; the app is an axum server on another loopback
//! port, registered as the account's server URL in safe mode (every push signed and encrypted).
//! The program:
//!
//! 1. creates the campaign's tag and a temporary QR code (7 days) whose scene names the
//!    campaign, through the production stack (`OfficialAccount` over `wx-reqwest`);
//! 2. has a simulated user who does not follow the account scan the code: WeChat pushes
//!    `subscribe` with `EventKey` `qrscene_<campaign>` to the server URL;
//! 3. the server URL opens the push (`wx_official::push`), tags the new follower with the
//!    campaign's tag (`tags/members/batchtagging`) and answers with a welcome text, which the
//!    user receives;
//! 4. lists the tag's members through the paged stream (`client.items(tag::Members)`).
//!
//! Each step prints one line; any failure exits non-zero and says which step failed.

#![allow(clippy::print_stdout)] // printing the steps is this program's job

use std::error::Error as StdError;
use std::process::ExitCode;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::TryStreamExt as _;
use wx_core::crypto::EncodingAesKey;
use wx_core::{AppSecret, MemoryTokenStore, OpenId, ServerToken};
use wx_official::OfficialAccount;
use wx_official::push::{Message, PushConfig, PushQuery, Reply};
use wx_official::qrcode::{self, Scene};
use wx_official::user::{self, tag};
use wx_reqwest::ReqwestTransport;
use wx_sandbox::{PushOutcome, PushTarget, Sandbox, ServerConfig, UserProfile};

const APPID: &str = "wx5a1d0c0ffee0ca4e";
const SECRET: &str = "sandbox-appsecret-not-a-real-one";
/// The server URL's Token and EncodingAESKey, as set in the account's console.
const SERVER_TOKEN: &str = "campaign-server-token";
const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
/// The account's original id (`ToUserName` of every push).
const ORIGINAL_ID: &str = "gh_c0ffee0ca4e1";
/// The user who scans the poster.
pub(crate) const OPENID: &str = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M";
/// The campaign: the QR scene and the tag's name.
pub(crate) const CAMPAIGN: &str = "spring-2026";
pub(crate) const WELCOME: &str = "Welcome to the spring-2026 campaign!";

type Client = OfficialAccount<ReqwestTransport, MemoryTokenStore>;
type Failure = Box<dyn StdError + Send + Sync>;

/// What the server URL needs: the push receiver, the API client, the campaign's tag.
struct AppState {
    push: PushConfig,
    client: Client,
    tag_id: u64,
}

/// What a run found.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// What the user received in answer to the scan.
    pub(crate) reply: Option<String>,
    /// The tag's members, as the stream listed them.
    pub(crate) members: Vec<OpenId>,
    /// How the user followed, as `user/info` reports it.
    pub(crate) subscribe_scene: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(true).await.and_then(|o| check(&o)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("campaign failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Whether the campaign did what it promises: the user was welcomed, followed through the
/// QR code and is the tag's one member.
pub(crate) fn check(outcome: &Outcome) -> Result<(), Failure> {
    if outcome.reply.as_deref() != Some(WELCOME) {
        return Err(format!("the user got {:?}, not the welcome", outcome.reply).into());
    }
    if outcome.subscribe_scene != "ADD_SCENE_QR_CODE" {
        return Err(format!(
            "followed through {}, not the QR code",
            outcome.subscribe_scene
        )
        .into());
    }
    if outcome.members != [OpenId::new(OPENID)] {
        return Err(format!("the tag's members are {:?}", outcome.members).into());
    }
    Ok(())
}

/// The server URL: WeChat's GET check, and the pushes.
fn server_url(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/wx", get(handshake).post(on_push))
        .with_state(state)
}

async fn handshake(State(app): State<Arc<AppState>>, RawQuery(q): RawQuery) -> Response {
    let query = PushQuery::from_query(q.as_deref().unwrap_or(""));
    match app.push.handshake(&query) {
        Ok(echostr) => echostr.into_response(),
        Err(e) => e.status().into_response(),
    }
}

async fn on_push(State(app): State<Arc<AppState>>, RawQuery(q): RawQuery, body: Bytes) -> Response {
    let query = PushQuery::from_query(q.as_deref().unwrap_or(""));
    let incoming = match app.push.open(&query, &body) {
        Ok(incoming) => incoming,
        Err(e) => return e.status().into_response(),
    };
    let reply = match &incoming.message {
        // A follow through the campaign's code: tag the follower, then welcome them.
        Message::Subscribe(s) if s.scene.as_deref() == Some(CAMPAIGN) => {
            let tagging = tag::BatchTagging::new(app.tag_id, [incoming.from_user.clone()]);
            match app.client.send(&tagging).await {
                Ok(_) => Some(Reply::text(WELCOME)),
                // No reply rather than a welcome that promises what did not happen.
                Err(e) => {
                    tracing::warn!(error = %e, "tagging the new follower failed");
                    None
                }
            }
        }
        Message::Scan(s) if s.scene == CAMPAIGN => Some(Reply::text("Welcome back!")),
        _ => None,
    };
    let answer = match reply {
        Some(r) => app.push.reply(&incoming, &r),
        None => wx_official::push::ReplyBody::success(),
    };
    ([(header::CONTENT_TYPE, answer.content_type)], answer.body).into_response()
}

/// Runs the campaign; prints each step when `print` is set.
pub(crate) async fn run(print: bool) -> Result<Outcome, Failure> {
    let say = |line: String| {
        if print {
            println!("{line}");
        }
    };

    // WeChat: the sandbox, with one user who does not follow the account yet.
    let sandbox = Sandbox::builder()
        .app(APPID, SECRET)
        .user(APPID, UserProfile::new(OPENID))
        .build()?;
    sandbox.set_following(APPID, OPENID, false)?;
    let wechat = sandbox.serve().await?;
    let client = OfficialAccount::builder(APPID, AppSecret::new(SECRET))
        .api_base(&wechat.base_url())
        .build(ReqwestTransport::new()?, MemoryTokenStore::new())?;
    say(format!("WeChat simulated at {}", wechat.base_url()));

    // 1. The campaign's tag and QR code.
    let tag_id = client.send(&tag::Create::new(CAMPAIGN)).await?.tag.id;
    say(format!("tag created: {CAMPAIGN:?} has id {tag_id}"));
    let week = 7 * 24 * 3600;
    let qr = client
        .send(&qrcode::Create::temporary(
            Scene::Str(CAMPAIGN.into()),
            week,
        ))
        .await?;
    say(format!(
        "QR code created for scene {CAMPAIGN:?}, valid {} s; poster image: {}",
        qr.expire_seconds.unwrap_or_default(),
        qr.image_url()
    ));

    // The app's server URL, registered in safe mode (WeChat checks it with a GET first).
    let push = PushConfig::new(APPID, ServerToken::new(SERVER_TOKEN))
        .aes_key(EncodingAesKey::new(AES_KEY)?)
        .clock(Arc::new(sandbox.clock().clone()));
    let state = Arc::new(AppState {
        push,
        client: client.clone(),
        tag_id,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/wx", listener.local_addr()?);
    let app_server = tokio::spawn(async move { axum::serve(listener, server_url(state)).await });
    let target = PushTarget::url(&url);
    sandbox
        .set_server(
            APPID,
            ServerConfig::safe(target, SERVER_TOKEN, ORIGINAL_ID, AES_KEY),
        )
        .await?;
    say(format!("server URL {url} registered (safe mode)"));

    // 2-3. A user scans the poster: subscribe with qrscene_, tagged and welcomed by the app.
    let scan = sandbox.scan_qr(APPID, OPENID, &qr.ticket).await?;
    say(format!(
        "user {OPENID} scanned: WeChat pushed {} with EventKey {}",
        scan.fields.get("Event").unwrap_or("?"),
        scan.fields.get("EventKey").unwrap_or("?")
    ));
    let reply = match &scan.outcome {
        PushOutcome::Replied(m) => m.content["Content"].as_str().map(str::to_owned),
        _ => None,
    };
    say(format!(
        "the user received: {}",
        reply.as_deref().unwrap_or("(no reply)")
    ));
    let info = client.send(&user::Info::new(OPENID)).await?;
    say(format!(
        "user/info: following {}, scene {}, QR scene {:?}, tags {:?}",
        info.subscribe, info.subscribe_scene, info.qr_scene_str, info.tagid_list
    ));

    // 4. The tag's members, page by page.
    let members: Vec<OpenId> = client
        .items(tag::Members::new(tag_id))
        .try_collect()
        .await?;
    say(format!("members of {CAMPAIGN:?}: {members:?}"));

    app_server.abort();
    Ok(Outcome {
        reply,
        members,
        subscribe_scene: info.subscribe_scene,
    })
}
