//! "Log in with WeChat" in a small axum web app you can click through in a browser:
//!
//! ```sh
//! cargo run --example oauth_login        # then open http://127.0.0.1:3000/
//! PORT=8080 cargo run --example oauth_login
//! ```
//!
//! - `/` is the login page.
//! - `/login?next=/orders/42` sends the browser to WeChat's authorize page with a signed `state`
//!   ([`wx_official::state::StateSigner`]) that carries the return path and expires in 10
//!   minutes. The state is also bound to a random cookie, so a callback link made in another
//!   browser is refused (login CSRF).
//! - `/callback?code=..&state=..` checks the state (a 400 page says whether it expired, was
//!   forged or is malformed; a callback without the login cookie is refused), handles a user who
//!   declined (no `code`), exchanges the code with the verified state, fetches the profile and
//!   redirects to `/me`, which shows it (HTML-escaped: nicknames are user input). The callback's
//!   answers carry `Cache-Control: no-store` and `Referrer-Policy: no-referrer` (its URL holds
//!   the code), cookies are `__Host-` over HTTPS, and failure pages name what failed, not the
//!   upstream error text (that goes to the log).
//!
//! By default WeChat is the wx sandbox, started in this process on another loopback port; both
//! base URLs of the client point at it. Its authorize page is a consent page like WeChat's:
//! "allow" sends the browser back to the callback with a code, "deny" without one.
//!
//! Against the real WeChat, set `WX_APPID`, `WX_APPSECRET` and `PUBLIC_URL`: the `https://` URL
//! under which this app is reachable, on the domain configured as the account's web
//! authorization domain (网页授权域名), e.g. through a reverse proxy to this port. The page must
//! then be opened inside the WeChat app.

#![allow(clippy::print_stdout)] // printing where to point the browser is this program's job

use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use wx_core::{
    AppSecret, Error, InvalidInput, Lang, MemoryTokenStore, Scope, SharedClock, SystemClock,
};
use wx_official::OfficialAccount;
use wx_official::state::{StateError, StateSigner, check_return_path};
use wx_reqwest::ReqwestTransport;
use wx_sandbox::{Consent, Sandbox, SandboxServer, UserProfile};

/// The client this app uses: production transport, in-memory token store (one process).
pub(crate) type Client = OfficialAccount<ReqwestTransport, MemoryTokenStore>;

/// The login cookie: a random value the state is bound to. Over HTTPS it carries the `__Host-`
/// prefix, so the browser accepts it only with `Secure`, `Path=/` and no `Domain` (no sibling
/// subdomain can plant one); plain-HTTP development uses the bare name.
const BINDING_COOKIE: &str = "wx_login";
/// The session cookie set after the login, naming a profile kept in memory.
const SESSION_COOKIE: &str = "wx_session";
/// How long a demo session lasts.
const SESSION_TTL: Duration = Duration::from_secs(3600);
/// How long a started login may take.
const STATE_TTL: Duration = Duration::from_secs(600);

pub(crate) const DEMO_APPID: &str = "wx0a1b2c3d4e5f6a7b";
pub(crate) const DEMO_SECRET: &str = "sandbox-secret-for-the-oauth-demo";

/// Everything the handlers share.
pub(crate) struct Login {
    client: Client,
    signer: StateSigner,
    /// Where WeChat sends the browser back: `{public_url}/callback`.
    callback_url: String,
    /// Whether the cookie may only travel over HTTPS.
    secure_cookie: bool,
    /// The demo's sessions: id -> (profile page, when it ends). A real app has its own.
    sessions: Mutex<HashMap<String, (String, Instant)>>,
}

impl Login {
    /// A login flow for `client`, signing states with `key` (32+ secret random bytes, the same
    /// on every server of a fleet) on `clock`, for an app reachable at `public_url`.
    ///
    /// # Errors
    /// [`InvalidInput`] for a key shorter than 32 bytes.
    pub(crate) fn new(
        client: Client,
        key: &[u8],
        clock: SharedClock,
        public_url: &str,
    ) -> Result<Self, InvalidInput> {
        let public_url = public_url.trim_end_matches('/');
        Ok(Login {
            client,
            signer: StateSigner::new(key, clock)?,
            callback_url: format!("{public_url}/callback"),
            secure_cookie: public_url.starts_with("https://"),
            sessions: Mutex::default(),
        })
    }

    /// The name of cookie `base` for this site: `__Host-{base}` over HTTPS.
    fn cookie_name(&self, base: &str) -> String {
        if self.secure_cookie {
            format!("__Host-{base}")
        } else {
            base.to_owned()
        }
    }

    /// `Set-Cookie` for `name=value` living `max_age` seconds.
    fn set_cookie(&self, base: &str, value: &str, max_age: u64) -> String {
        format!(
            "{}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{}",
            self.cookie_name(base),
            if self.secure_cookie { "; Secure" } else { "" }
        )
    }

    /// Keeps `page` for a new session and returns its id.
    fn start_session(&self, page: String) -> String {
        let id = hex(&rand::random::<[u8; 16]>());
        let now = Instant::now();
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        sessions.retain(|_, (_, until)| *until > now);
        sessions.insert(id.clone(), (page, now + SESSION_TTL));
        id
    }

    fn session_page(&self, id: &str) -> Option<String> {
        let sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        sessions
            .get(id)
            .filter(|(_, until)| *until > Instant::now())
            .map(|(page, _)| page.clone())
    }
}

/// The web app: `/`, `/login`, `/callback`, `/me`.
pub(crate) fn app(login: Arc<Login>) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/login", get(start_login))
        .route("/callback", get(callback))
        .route("/me", get(me))
        .with_state(login)
}

async fn home() -> Html<String> {
    page(
        "Log in with WeChat",
        "<p><a href=\"/login?next=/orders/42\">Log in with WeChat</a> \
         (and come back to <code>/orders/42</code> afterwards)</p>",
    )
}

/// Sends the browser to the authorize page, with a fresh binding cookie.
async fn start_login(
    State(login): State<Arc<Login>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    // Only a path on this site is a safe place to return to (no open redirect).
    let next = params
        .get("next")
        .filter(|p| check_return_path(p).is_ok())
        .map_or("/", String::as_str);
    let binding = hex(&rand::random::<[u8; 16]>());
    let authorize = login
        .signer
        .issue_bound(binding.as_bytes(), Some(next), STATE_TTL)
        .map_err(Error::from)
        .and_then(|state| {
            login
                .client
                .authorize_url(&login.callback_url, Scope::UserInfo, &state)
        });
    let url = match authorize {
        Ok(url) => url,
        Err(e) => {
            return error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Cannot start the login",
                &e,
            );
        }
    };
    let cookie = login.set_cookie(BINDING_COOKIE, &binding, STATE_TTL.as_secs());
    ([(header::SET_COOKIE, cookie)], Redirect::to(&url)).into_response()
}

/// WeChat's redirect back: `?code=..&state=..`, or only `?state=..` when the user declined.
///
/// Its URL holds the code, so every answer keeps it out of caches (`Cache-Control: no-store`)
/// and out of `Referer` headers (`Referrer-Policy: no-referrer`), and a login ends with a
/// redirect to `/me`: the page the user sees, reloads and bookmarks has no code in its URL.
async fn callback(
    State(login): State<Arc<Login>>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut response = callback_answer(&login, &params, &headers).await;
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

async fn callback_answer(
    login: &Login,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Response {
    let state = params.get("state").map_or("", String::as_str);
    // No cookie, no login: an empty binding would be no binding at all, and a state without
    // one proves nothing about the browser presenting it.
    let Some(binding) =
        cookie(headers, &login.cookie_name(BINDING_COOKIE)).filter(|b| !b.is_empty())
    else {
        return state_error_page(StateError::Forged);
    };
    let verified = match login.signer.verify_bound(state, binding.as_bytes()) {
        Ok(v) => v,
        Err(e) => return state_error_page(e),
    };
    let next = verified
        .return_path
        .clone()
        .unwrap_or_else(|| "/".to_owned());

    let Some(code) = params.get("code").filter(|c| !c.is_empty()) else {
        let body = format!(
            "<p>You did not allow the login.</p><p><a href=\"/login?next={}\">Try again</a></p>",
            escape(&wx_core::urlenc::encode_component(&next))
        );
        return page("Login cancelled", &body).into_response();
    };

    // The exchange takes the verified state: with `idempotent_code_exchange` on, a kept answer
    // is served only to this callback (this state in this browser), never to a leaked code.
    let web_login = match login.client.exchange_code_for(&verified, code).await {
        Ok(l) => l,
        Err(e) if e.is_login_restart_required() => {
            let body = "<p>This login link was already used or has expired.</p>\
                        <p><a href=\"/\">Log in again</a></p>";
            return (StatusCode::BAD_REQUEST, page("Login expired", body)).into_response();
        }
        Err(e) => return error_page(StatusCode::BAD_GATEWAY, "WeChat login failed", &e),
    };
    let user = match login
        .client
        .user_info(&web_login.access_token, &web_login.openid, Lang::ZhCn)
        .await
    {
        Ok(u) => u,
        Err(e) => {
            return error_page(
                StatusCode::BAD_GATEWAY,
                "Cannot read your WeChat profile",
                &e,
            );
        }
    };

    // A real app starts its own session here; the demo keeps the profile page for `/me`.
    let mut body = String::new();
    if user.headimgurl.starts_with("https://") || user.headimgurl.starts_with("http://") {
        let _ = write!(
            body,
            "<img src=\"{}\" alt=\"\" width=\"96\">",
            escape(&user.headimgurl)
        );
    }
    let _ = write!(
        body,
        "<h2 id=\"nickname\">{}</h2><dl><dt>openid</dt><dd id=\"openid\">{}</dd>\
         <dt>unionid</dt><dd>{}</dd><dt>scope</dt><dd>{}</dd></dl>\
         <p>Logged in. <a href=\"{}\">Continue to {}</a></p>",
        escape(&user.nickname),
        escape(user.openid.as_str()),
        escape(user.unionid.as_ref().map_or("(none)", |u| u.as_str())),
        escape(&web_login.scope),
        escape(&next),
        escape(&next),
    );
    let session = login.start_session(page("Welcome", &body).0);
    let mut response = Redirect::to("/me").into_response();
    let h = response.headers_mut();
    for cookie in [
        login.set_cookie(BINDING_COOKIE, "", 0),
        login.set_cookie(SESSION_COOKIE, &session, SESSION_TTL.as_secs()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            h.append(header::SET_COOKIE, v);
        }
    }
    response
}

/// The logged-in page, away from the URL that held the code.
async fn me(State(login): State<Arc<Login>>, headers: HeaderMap) -> Response {
    let page =
        cookie(&headers, &login.cookie_name(SESSION_COOKIE)).and_then(|id| login.session_page(&id));
    match page {
        Some(page) => ([(header::CACHE_CONTROL, "no-store")], Html(page)).into_response(),
        None => Redirect::to("/").into_response(),
    }
}

fn state_error_page(e: StateError) -> Response {
    let (title, why) = match e {
        StateError::Expired { .. } => (
            "Login expired",
            "This login has expired: it must be finished within 10 minutes.",
        ),
        StateError::Forged => (
            "Login refused",
            "The login state is forged, or the login was started in another browser.",
        ),
        StateError::Malformed => ("Login refused", "The login state is malformed or missing."),
        _ => ("Login refused", "The login state is not valid."),
    };
    let body = format!("<p>{why}</p><p><a href=\"/\">Log in again</a></p>");
    (StatusCode::BAD_REQUEST, page(title, &body)).into_response()
}

/// A failure page. It names what failed, never the error's text (an upstream or store message
/// is for the operator's log, not for the visitor).
fn error_page(status: StatusCode, title: &str, e: &Error) -> Response {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    tracing::warn!(error = %text, "{title}");
    let body = "<p>Please try again in a moment.</p><p><a href=\"/\">Back</a></p>";
    (status, page(title, body)).into_response()
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{t}</title></head>\
         <body><h1>{t}</h1>{body}</body></html>",
        t = escape(title)
    ))
}

/// Escapes text for HTML content and quoted attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v: &HeaderValue| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// The demo's simulated WeChat: one app and its user, asked on a consent page like WeChat's.
pub(crate) fn demo_sandbox() -> Result<Sandbox, wx_sandbox::SandboxError> {
    Sandbox::builder()
        .app(DEMO_APPID, DEMO_SECRET)
        .account_name(DEMO_APPID, "wx demo shop")
        .consent(DEMO_APPID, Consent::Ask)
        .user(
            DEMO_APPID,
            UserProfile::new("o-demo-ming")
                .nickname("Ming 小明 <sandbox user>")
                .unionid("u-demo-ming"),
        )
        .build()
}

type BoxError = Box<dyn StdError + Send + Sync>;

/// `WX_APPID`, `WX_APPSECRET` and `PUBLIC_URL` for the real WeChat, or none of them.
fn real_settings() -> Result<Option<(String, AppSecret, String)>, BoxError> {
    let var = |name| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    match (var("WX_APPID"), var("WX_APPSECRET"), var("PUBLIC_URL")) {
        (Some(appid), Some(secret), Some(url)) => Ok(Some((appid, AppSecret::new(secret), url))),
        (None, None, None) => Ok(None),
        _ => Err(
            "set all of WX_APPID, WX_APPSECRET and PUBLIC_URL for the real WeChat, or none \
                  of them for the sandbox"
                .into(),
        ),
    }
}

async fn run() -> Result<(), BoxError> {
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p
            .parse()
            .map_err(|_| format!("PORT={p:?} is not a port number"))?,
        Err(_) => 3000,
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{port} ({e}); set PORT to a free port"))?;
    let local_url = format!("http://127.0.0.1:{port}");
    // States die with the process; a fleet shares one key from its secret store instead.
    let key: [u8; 32] = rand::random();
    let transport = ReqwestTransport::new()?;

    // Keep the sandbox server alive as long as the app.
    let (login, _sandbox): (Login, Option<SandboxServer>) = match real_settings()? {
        Some((appid, secret, public_url)) => {
            let client = OfficialAccount::builder(appid.as_str(), secret)
                .build(transport, MemoryTokenStore::new())?;
            println!("WeChat: the real API (WX_APPID={appid}); callback {public_url}/callback");
            (
                Login::new(client, &key, Arc::new(SystemClock), &public_url)?,
                None,
            )
        }
        None => {
            let server = demo_sandbox()?.serve().await?;
            let base = server.base_url();
            let client = OfficialAccount::builder(DEMO_APPID, AppSecret::new(DEMO_SECRET))
                .api_base(&base)
                .open_base(&base)
                .build(transport, MemoryTokenStore::new())?;
            println!("WeChat: the wx sandbox at {base}, whose consent page asks user \"Ming\"");
            (
                Login::new(client, &key, Arc::new(SystemClock), &local_url)?,
                Some(server),
            )
        }
    };
    println!("Open {local_url}/ in a browser (Ctrl-C stops).");
    axum::serve(listener, app(Arc::new(login)))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("oauth_login: {e}");
            ExitCode::FAILURE
        }
    }
}
