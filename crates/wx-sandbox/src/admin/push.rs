//! Admin routes of the push direction: register an app's server URL, and make a simulated user
//! act so that WeChat pushes (the report says what the app answered).

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Answer, inbox_message, json_body};
use crate::{PushFailure, PushOutcome, PushReport, Sandbox, ServerSpec, UserAction};

#[derive(Deserialize)]
struct ServerBody {
    appid: String,
    #[serde(flatten)]
    server: ServerSpec,
}

/// `POST /__sandbox/server`: [`Sandbox::set_server`] (the URL check runs first).
pub(super) async fn set_server(sb: Sandbox, body: Bytes) -> Answer {
    let b: ServerBody = json_body(&body)?;
    sb.set_server(&b.appid, b.server.config()).await?;
    Ok(json!({"ok": true}))
}

/// A user action as JSON: `{"kind": "text", "content": "hi"}`, `{"kind": "image", "pic_url"}`,
/// `{"kind": "location", "latitude", "longitude", "scale", "label"}`, `{"kind": "follow"}`,
/// `{"kind": "unfollow"}`, `{"kind": "scan", "scene", "ticket"}`, `{"kind": "click", "key"}`,
/// `{"kind": "view", "url"}`.
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum ActionSpec {
    Text {
        content: String,
    },
    Image {
        pic_url: String,
    },
    Location {
        latitude: f64,
        longitude: f64,
        scale: u32,
        label: String,
    },
    Follow,
    Unfollow,
    Scan {
        scene: String,
        ticket: String,
    },
    Click {
        key: String,
    },
    View {
        url: String,
    },
}

impl From<ActionSpec> for UserAction {
    fn from(a: ActionSpec) -> Self {
        match a {
            ActionSpec::Text { content } => UserAction::text(content),
            ActionSpec::Image { pic_url } => UserAction::image(pic_url),
            ActionSpec::Location {
                latitude,
                longitude,
                scale,
                label,
            } => UserAction::location(latitude, longitude, scale, label),
            ActionSpec::Follow => UserAction::Follow,
            ActionSpec::Unfollow => UserAction::Unfollow,
            ActionSpec::Scan { scene, ticket } => UserAction::scan(scene, ticket),
            ActionSpec::Click { key } => UserAction::click(key),
            ActionSpec::View { url } => UserAction::ViewMenu(url),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActBody {
    appid: String,
    openid: String,
    action: ActionSpec,
}

/// `POST /__sandbox/act`: [`Sandbox::act`], answered with the push's report.
pub(super) async fn act(sb: Sandbox, body: Bytes) -> Answer {
    let b: ActBody = json_body(&body)?;
    let report = sb.act(&b.appid, &b.openid, b.action.into()).await?;
    Ok(report_json(&report))
}

fn report_json(r: &PushReport) -> Value {
    let mut out = json!({
        "appid": r.appid,
        "openid": r.openid,
        "create_time": r.create_time,
        "msg_type": r.fields.get("MsgType"),
        "event": r.fields.get("Event"),
        "attempts": r.attempts,
    });
    let (outcome, detail) = match &r.outcome {
        PushOutcome::NoServer => ("no_server", None),
        PushOutcome::NoReply => ("no_reply", None),
        PushOutcome::Replied(m) => ("replied", Some(("reply", inbox_message(m)))),
        PushOutcome::Transferred => ("transferred", None),
        PushOutcome::Failed(f) => ("failed", Some(("failure", json!(failure_text(f))))),
    };
    out["outcome"] = json!(outcome);
    if let Some((key, value)) = detail {
        out[key] = value;
    }
    out
}

fn failure_text(f: &PushFailure) -> String {
    match f {
        PushFailure::Unanswered(attempts) => format!("no answer: {attempts:?}"),
        PushFailure::BadReply(e) => format!("reply refused: {e}"),
    }
}
