//! Writing and publishing an article, end to end on the wx sandbox over real HTTP:
//!
//! ```sh
//! cargo run --example publish_article
//! ```
//!
//! It uploads a cover image (a permanent material) and an inline image (for the article body)
//! as multipart uploads through reqwest, writes a draft, publishes it, waits for the
//! `PUBLISHJOBFINISH` push that WeChat sends to the app's server URL, and prints the article's
//! URL. Any failure exits non-zero and says which step failed.

#![allow(clippy::print_stdout)] // printing the report is this program's job

use std::process::ExitCode;
use std::time::Duration;

use tokio::sync::mpsc;
use wx_core::reexports::Bytes;
use wx_core::reexports::http::{Request, Response};
use wx_core::{AppSecret, MemoryTokenStore, ServerToken};
use wx_official::OfficialAccount;
use wx_official::draft::{AddDraft, Article};
use wx_official::freepublish::{GetPublishStatus, SubmitPublish};
use wx_official::material::AddMaterial;
use wx_official::media::{UploadFile, UploadImage};
use wx_official::push::{Message, PushConfig, PushQuery};
use wx_reqwest::ReqwestTransport;
use wx_sandbox::{PUBLISH_DELAY, PushTarget, Sandbox, ServerConfig};

const APPID: &str = "wx5a1d0c0ffee0c0de";
const SECRET: &str = "sandbox-appsecret-not-a-real-one";
const SERVER_TOKEN: &str = "the-server-token";

/// A tiny JPEG-looking file (the sandbox checks names, types and sizes, not pixels).
const JPEG: &[u8] = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9";

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("publish_article failed: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let sandbox = Sandbox::builder().app(APPID, SECRET).build()?;
    // The app's server URL, in process: it opens each push as the app would and hands the
    // publish result to the program.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let receiver = PushConfig::new(APPID, ServerToken::new(SERVER_TOKEN));
    let target = PushTarget::from_fn(move |req: Request<Bytes>| {
        let tx = tx.clone();
        let receiver = receiver.clone();
        async move {
            let query = PushQuery::from_query(req.uri().query().unwrap_or_default());
            if let Some(echo) = query.echostr.clone() {
                return Response::new(Bytes::from(echo));
            }
            if let Ok(incoming) = receiver.open(&query, req.body())
                && let Message::PublishJobFinish(done) = incoming.message
            {
                let _ = tx.send(done);
            }
            Response::new(Bytes::from_static(b"success"))
        }
    });
    sandbox
        .set_server(
            APPID,
            ServerConfig::plain(target, SERVER_TOKEN, "gh_0123456789ab"),
        )
        .await?;
    let server = sandbox.serve().await?;
    let client = OfficialAccount::builder(APPID, AppSecret::new(SECRET))
        .api_base(&server.base_url())
        .build(ReqwestTransport::new()?, MemoryTokenStore::new())?;

    let cover = client
        .send(&AddMaterial::image(UploadFile::new("cover.jpg", JPEG)))
        .await?;
    println!(
        "uploaded the cover image: media_id of {} chars",
        cover.media_id.len()
    );
    let inline = client
        .send(&UploadImage::new(UploadFile::new(
            "inline.png",
            &b"\x89PNG\r\n\x1a\n"[..],
        )))
        .await?;
    println!("uploaded the inline image: {}", inline.url);

    let article = Article::new(
        "Hello from wx",
        format!("<p>Written with wx.</p><img src=\"{}\"/>", inline.url),
        cover.media_id.clone(),
    )
    .author("wx")
    .digest("A first article");
    let draft = client.send(&AddDraft::new(vec![article])).await?;
    println!(
        "wrote the draft: media_id of {} chars",
        draft.media_id.len()
    );

    let submitted = client
        .send(&SubmitPublish::new(draft.media_id.clone()))
        .await?;
    println!(
        "submitted for publishing: publish_id {}",
        submitted.publish_id
    );

    // Publishing takes a while; the sandbox's clock moves when told.
    sandbox.clock().advance(PUBLISH_DELAY);
    let status = client
        .send(&GetPublishStatus::new(submitted.publish_id.clone()))
        .await?;
    println!("publish status: {:?}", status.state());
    let done = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await?
        .ok_or("the server URL stopped")?;
    if done.publish_id != submitted.publish_id || done.publish_status != 0 {
        return Err(format!("unexpected PUBLISHJOBFINISH: {done:?}").into());
    }
    let url = done
        .articles
        .first()
        .map(|a| a.article_url.clone())
        .ok_or("no article URL")?;
    println!("PUBLISHJOBFINISH received; article URL: {url}");
    server.shutdown().await;
    Ok(())
}
