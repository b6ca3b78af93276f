//! The admin API: JSON under [`paths::ADMIN_PREFIX`] (`/__sandbox/`), a prefix WeChat never
//! uses, so a client in any language can set up, inspect and steer a running sandbox (the
//! `wx-sandbox` binary). Admin requests are not counted and never faulted. The protocol is in
//! the crate README.

mod push;

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use wx_core::{Clock as _, HttpRequest, HttpResponse, Scope};

use crate::builder::unix_secs;
use crate::{
    AppConfig, Consent, Fault, FaultMix, InboxMessage, Sandbox, SandboxError, UserProfile, Via,
    paths,
};

/// Largest padding an `oversized` fault may ask for (it is allocated per request).
const MAX_OVERSIZED: usize = 16 << 20;

/// An admin answer or an error with its HTTP status.
type Answer = Result<Value, AdminError>;

/// One admin route.
struct AdminRoute {
    method: &'static str,
    path: &'static str,
    what: &'static str,
    run: Run,
}

/// A handler: answers at once, or (pushes: the app's server is called) later.
#[derive(Clone, Copy)]
enum Run {
    Now(fn(&Sandbox, &HttpRequest) -> Answer),
    Later(fn(Sandbox, Bytes) -> BoxFuture<Answer>),
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

const fn route(
    method: &'static str,
    path: &'static str,
    what: &'static str,
    handler: fn(&Sandbox, &HttpRequest) -> Answer,
) -> AdminRoute {
    AdminRoute {
        method,
        path,
        what,
        run: Run::Now(handler),
    }
}

/// A route whose handler awaits (it takes the sandbox and the body).
const fn route_async(
    method: &'static str,
    path: &'static str,
    what: &'static str,
    handler: fn(Sandbox, Bytes) -> BoxFuture<Answer>,
) -> AdminRoute {
    AdminRoute {
        method,
        path,
        what,
        run: Run::Later(handler),
    }
}

/// Every admin route, relative to the prefix.
const ROUTES: &[AdminRoute] = &[
    route("GET", "", "this list", |_, _| Ok(index())),
    route("GET", "health", "ready check", |_, _| {
        Ok(json!({"ok": true}))
    }),
    route("GET", "state", "apps, users, consent, clock", |sb, _| {
        Ok(state(sb))
    }),
    route("POST", "apps", "add an app (AppConfig JSON)", |sb, r| {
        let config: AppConfig = body(r)?;
        sb.add_app(&config)?;
        Ok(json!({"ok": true}))
    }),
    route(
        "POST",
        "users",
        "add a user: {appid, openid, ...}",
        add_user,
    ),
    route(
        "POST",
        "consent",
        "set consent: {appid, consent}",
        |sb, r| {
            let b: ConsentBody = body(r)?;
            sb.set_consent(&b.appid, b.consent)?;
            Ok(json!({"ok": true}))
        },
    ),
    route(
        "POST",
        "following",
        "follow or unfollow without a push: {appid, openid, following}",
        |sb, r| {
            let b: FollowingBody = body(r)?;
            sb.set_following(&b.appid, &b.openid, b.following)?;
            Ok(json!({"ok": true}))
        },
    ),
    route(
        "POST",
        "code",
        "an OAuth code without a browser: {appid, openid, scope}",
        issue_code,
    ),
    route("GET", "clock", "the sandbox time", |sb, _| Ok(clock(sb))),
    route(
        "POST",
        "clock",
        "move the clock: {advance_secs}",
        |sb, r| {
            let b: ClockBody = body(r)?;
            sb.clock().advance(Duration::from_secs(b.advance_secs));
            Ok(clock(sb))
        },
    ),
    route("GET", "faults", "pending and injected faults", |sb, _| {
        Ok(faults(sb))
    }),
    route(
        "POST",
        "faults",
        "script faults: {faults: [...], path?}",
        script_faults,
    ),
    route(
        "POST",
        "faults/mix",
        "a seeded random mix: {seed, entries: [{fault, probability}], paths?}",
        fault_mix,
    ),
    route("POST", "faults/clear", "remove scripts and mix", |sb, _| {
        sb.faults().clear();
        Ok(faults(sb))
    }),
    route("GET", "counts", "requests per path", |sb, _| Ok(counts(sb))),
    route("POST", "counts/reset", "zero the counters", |sb, _| {
        sb.reset_counts();
        Ok(counts(sb))
    }),
    route(
        "GET",
        "inbox",
        "what a user received: ?appid=&openid=",
        inbox,
    ),
    route_async(
        "POST",
        "server",
        "register the app's server URL (URL check first): {appid, url, token, mode, encoding_aes_key?, original_id}",
        |sb, b| Box::pin(push::set_server(sb, b)),
    ),
    route_async(
        "POST",
        "act",
        "a user sends / follows / scans / clicks, WeChat pushes: {appid, openid, action: {kind, ...}}",
        |sb, b| Box::pin(push::act(sb, b)),
    ),
    route("POST", "reset", "back to the start-up set-up", |sb, _| {
        sb.reset();
        Ok(json!({"ok": true}))
    }),
];

/// Answers `request` if its path is under the admin prefix.
pub(crate) async fn handle(sandbox: &Sandbox, request: &HttpRequest) -> Option<HttpResponse> {
    let path = request.path();
    let sub = path
        .strip_prefix(paths::ADMIN_PREFIX)
        .or_else(|| (path == paths::ADMIN_PREFIX.trim_end_matches('/')).then_some(""))?;
    let sub = sub.trim_end_matches('/');
    let method = request.method.as_str();
    let answer = match ROUTES.iter().find(|r| r.path == sub && r.method == method) {
        Some(r) => match r.run {
            Run::Now(f) => f(sandbox, request),
            Run::Later(f) => f(sandbox.clone(), request.body.clone().unwrap_or_default()).await,
        },
        None if ROUTES.iter().any(|r| r.path == sub) => Err(AdminError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not allowed on this admin path"),
        )),
        None => Err(AdminError::new(
            StatusCode::NOT_FOUND,
            "no such admin path (GET /__sandbox/ lists them)",
        )),
    };
    Some(match answer {
        Ok(value) => json_response(StatusCode::OK, &value),
        Err(e) => json_response(e.status, &json!({"error": e.message})),
    })
}

/// A refused admin request.
#[derive(Debug)]
struct AdminError {
    status: StatusCode,
    message: String,
}

impl AdminError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        AdminError {
            status,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl From<SandboxError> for AdminError {
    fn from(e: SandboxError) -> Self {
        let status = match e {
            SandboxError::UnknownApp | SandboxError::UnknownUser => StatusCode::NOT_FOUND,
            SandboxError::MissingOpenid | SandboxError::InvalidServer => StatusCode::BAD_REQUEST,
            // The app's server URL did not answer WeChat's check.
            SandboxError::HandshakeFailed => StatusCode::BAD_GATEWAY,
            _ => StatusCode::CONFLICT,
        };
        AdminError::new(status, e.to_string())
    }
}

fn json_response(status: StatusCode, value: &Value) -> HttpResponse {
    let mut r = HttpResponse::new(status, value.to_string());
    r.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// The JSON body (an absent body reads as `{}`).
fn body<T: DeserializeOwned>(request: &HttpRequest) -> Result<T, AdminError> {
    json_body(request.body.as_deref().unwrap_or_default())
}

/// `bytes` as JSON (empty reads as `{}`).
fn json_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AdminError> {
    let bytes = if bytes.is_empty() { b"{}" } else { bytes };
    // serde_json's message names the field and position, never echoes the body.
    serde_json::from_slice(bytes).map_err(|e| AdminError::bad(format!("bad JSON body: {e}")))
}

fn query(request: &HttpRequest, name: &str) -> Result<String, AdminError> {
    request
        .query_pairs()
        .into_iter()
        .find(|(k, v)| k == name && !v.is_empty())
        .map(|(_, v)| v)
        .ok_or_else(|| AdminError::bad(format!("query parameter {name} is missing")))
}

fn index() -> Value {
    let routes: Vec<Value> = ROUTES
        .iter()
        .map(|r| json!({"method": r.method, "path": format!("{}{}", paths::ADMIN_PREFIX, r.path), "what": r.what}))
        .collect();
    json!({ "routes": routes })
}

fn secs(t: SystemTime) -> u64 {
    unix_secs(t)
}

fn clock(sb: &Sandbox) -> Value {
    json!({ "now": secs(sb.clock().now()) })
}

fn state(sb: &Sandbox) -> Value {
    let world = sb.world();
    let apps: Vec<Value> = world
        .apps()
        .iter()
        .map(|app| {
            let users: Vec<Value> = app
                .users
                .iter()
                .map(|u| {
                    json!({
                        "openid": u.openid,
                        "nickname": u.nickname,
                        "following": app.is_following(&u.openid),
                    })
                })
                .collect();
            json!({
                "appid": app.appid,
                "name": app.name(),
                "consent": app.consent,
                "oauth_domain": app.oauth_domain,
                "users": users,
            })
        })
        .collect();
    json!({ "now": secs(sb.clock().now()), "apps": apps })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsentBody {
    appid: String,
    consent: Consent,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FollowingBody {
    appid: String,
    openid: String,
    following: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockBody {
    advance_secs: u64,
}

#[derive(Deserialize)]
struct UserBody {
    appid: String,
    #[serde(flatten)]
    user: UserProfile,
}

fn add_user(sb: &Sandbox, r: &HttpRequest) -> Answer {
    let b: UserBody = body(r)?;
    sb.add_user(&b.appid, b.user)?;
    Ok(json!({"ok": true}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeBody {
    appid: String,
    openid: String,
    scope: String,
}

fn issue_code(sb: &Sandbox, r: &HttpRequest) -> Answer {
    let b: CodeBody = body(r)?;
    let scope = Scope::parse(&b.scope)
        .ok_or_else(|| AdminError::bad("scope must be snsapi_base or snsapi_userinfo"))?;
    let code = sb.issue_code(&b.appid, &b.openid, scope)?;
    Ok(json!({ "code": code }))
}

/// A fault as JSON: `{"kind": "busy"}`, `{"kind": "status", "status": 502}`,
/// `{"kind": "delay", "ms": 200}`, `{"kind": "oversized", "bytes": 70000}`, ...
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum FaultSpec {
    Pass,
    Busy,
    Status { status: u16 },
    Delay { ms: u64 },
    Drop,
    DropMidBody,
    Html,
    Empty,
    Truncated,
    Oversized { bytes: usize },
    NonUtf8,
}

impl FaultSpec {
    fn fault(self) -> Result<Fault, AdminError> {
        Ok(match self {
            FaultSpec::Pass => Fault::Pass,
            FaultSpec::Busy => Fault::Busy,
            FaultSpec::Status { status } => Fault::Status(status),
            FaultSpec::Delay { ms } => Fault::Delay(Duration::from_millis(ms)),
            FaultSpec::Drop => Fault::Drop,
            FaultSpec::DropMidBody => Fault::DropMidBody,
            FaultSpec::Html => Fault::Html,
            FaultSpec::Empty => Fault::Empty,
            FaultSpec::Truncated => Fault::Truncated,
            FaultSpec::Oversized { bytes } if bytes <= MAX_OVERSIZED => Fault::Oversized(bytes),
            FaultSpec::Oversized { .. } => {
                return Err(AdminError::bad(format!(
                    "oversized bytes above {MAX_OVERSIZED}"
                )));
            }
            FaultSpec::NonUtf8 => Fault::NonUtf8,
        })
    }
}

fn faults(sb: &Sandbox) -> Value {
    let f = sb.faults();
    json!({
        "pending": f.pending(),
        "injected": f.injected(),
        "injected_by_kind": f.injected_by_kind(),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptBody {
    faults: Vec<FaultSpec>,
    path: Option<String>,
}

fn script_faults(sb: &Sandbox, r: &HttpRequest) -> Answer {
    let b: ScriptBody = body(r)?;
    let script = b
        .faults
        .into_iter()
        .map(FaultSpec::fault)
        .collect::<Result<Vec<_>, _>>()?;
    match &b.path {
        Some(path) => sb.faults().script_for(path, script),
        None => sb.faults().script(script),
    }
    Ok(faults(sb))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MixEntry {
    fault: FaultSpec,
    probability: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MixBody {
    seed: u64,
    entries: Vec<MixEntry>,
    paths: Option<Vec<String>>,
}

fn fault_mix(sb: &Sandbox, r: &HttpRequest) -> Answer {
    let b: MixBody = body(r)?;
    let mut mix = FaultMix::new(b.seed);
    for entry in b.entries {
        mix = mix.with(entry.fault.fault()?, entry.probability);
    }
    if let Some(paths) = b.paths {
        mix = mix.on_paths(paths);
    }
    sb.faults().mix(mix);
    Ok(faults(sb))
}

fn counts(sb: &Sandbox) -> Value {
    json!({ "total": sb.total_count(), "paths": sb.counts() })
}

fn inbox(sb: &Sandbox, r: &HttpRequest) -> Answer {
    let appid = query(r, "appid")?;
    let openid = query(r, "openid")?;
    let messages: Vec<Value> = sb
        .inbox(&appid, &openid)?
        .iter()
        .map(inbox_message)
        .collect();
    Ok(json!({ "messages": messages }))
}

pub(super) fn inbox_message(m: &InboxMessage) -> Value {
    let via = match m.via {
        Via::Reply => "reply",
        Via::Template => "template",
        Via::Subscribe => "subscribe",
        Via::Custom => "custom",
        Via::Platform => "platform",
    };
    json!({ "at": secs(m.at), "via": via, "msg_type": m.msg_type, "content": m.content })
}
